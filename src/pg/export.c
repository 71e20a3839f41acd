/*
 * export.c: what an artifact holds, read from its bytes: mlpipe.export
 * (the artifact rendered as readable JSON), feature importance (per model
 * feature, and per explained column for explain_global), whether the model
 * stores preprocessing, and which inputs it cannot take NULL in.
 */
#include "mlpipe.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "artifact.h"
#include "explain.h"

#include <math.h>

PG_FUNCTION_INFO_V1(mlpipe_export_bytea);
PG_FUNCTION_INFO_V1(mlpipe_importance_bytea);
PG_FUNCTION_INFO_V1(mlpipe_has_preprocessing);
PG_FUNCTION_INFO_V1(mlpipe_null_intolerant_inputs);
PG_FUNCTION_INFO_V1(mlpipe_explained_importance);

/* A JSON array of n numbers. */
static cJSON *
number_array(const double *v, int n)
{
	return cJSON_CreateDoubleArray(v, n);
}

/* A JSON array of n strings. */
static cJSON *
string_array(char **v, uint32 n)
{
	return cJSON_CreateStringArray((const char *const *) v, (int) n);
}

/* The k-means part of the export: k, distance, centroids (also in data units when standardized). */
static void
export_kmeans(cJSON *doc, const KmModel *km)
{
	cJSON	   *cs = cJSON_CreateArray();
	int			i,
				j;

	cJSON_AddNumberToObject(doc, "k", km->k);
	cJSON_AddStringToObject(doc, "distance", km->distance == KM_DIST_COSINE ? "cosine" : "l2");
	cJSON_AddBoolToObject(doc, "standardize", km->standardize);
	for (i = 0; i < km->k; i++)
		cJSON_AddItemToArray(cs, number_array(km->centroids + (size_t) i * km->d, km->d));
	cJSON_AddItemToObject(doc, "centroids", cs);
	if (km->standardize)
	{
		cJSON	   *raw = cJSON_CreateArray();
		double	   *row = palloc(sizeof(double) * km->d);

		cJSON_AddItemToObject(doc, "mean", number_array(km->mean, km->d));
		cJSON_AddItemToObject(doc, "scale", number_array(km->scale, km->d));
		/* Centroids back in the units of the data, for reading. */
		for (i = 0; i < km->k; i++)
		{
			for (j = 0; j < km->d; j++)
				row[j] = km->centroids[(size_t) i * km->d + j] * km->scale[j] + km->mean[j];
			cJSON_AddItemToArray(raw, number_array(row, km->d));
		}
		cJSON_AddItemToObject(doc, "centroids_raw", raw);
	}
}

/* The anomaly threshold of a k-means model trained with contamination. */
static void
export_anomaly(cJSON *doc, const KmAnomaly *a, int k)
{
	cJSON	   *an = cJSON_AddObjectToObject(doc, "anomaly");

	cJSON_AddNumberToObject(an, "contamination", a->contamination);
	cJSON_AddNumberToObject(an, "threshold", a->threshold);
	cJSON_AddItemToObject(an, "scales", number_array(a->scale, k));
}

/* mlpipe.export(bytea): the artifact as jsonb (algorithm, features, the model). */
Datum
mlpipe_export_bytea(PG_FUNCTION_ARGS)
{
	bytea	   *blob = PG_GETARG_BYTEA_PP(0);
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "mlpipe export",
											  ALLOCSET_DEFAULT_SIZES);
	PgEnv		pe;
	MlModel		m;
	cJSON	   *doc;
	static const char *const tasks[] = {"clustering", "classification", "regression"};

	model_decode(cxt, blob, "export", &pe, &m);
	doc = cJSON_CreateObject();
	cJSON_AddStringToObject(doc, "algorithm", ml_kind_name(m.kind));
	cJSON_AddNumberToObject(doc, "format", m.format);
	cJSON_AddStringToObject(doc, "task", tasks[m.meta.task]);
	cJSON_AddItemToObject(doc, "features", string_array(m.meta.feature_names, m.meta.n_features));
	if (m.meta.n_classes)
		cJSON_AddItemToObject(doc, "classes", string_array(m.meta.class_labels, m.meta.n_classes));
	if (m.prep.n_in > 0)
		cJSON_AddItemToObject(doc, "preprocess", prep_export(&m.prep));
	if (m.dec.present)
		cJSON_AddItemToObject(doc, "decision", decision_export(&m.dec));
	if (m.kind == ML_KIND_KMEANS)
	{
		export_kmeans(doc, &m.km);
		if (m.anomaly.present)
			export_anomaly(doc, &m.anomaly, m.km.k);
	}
	else
	{
		/*
		 * The trees' JSON goes into the document as written: cJSON would
		 * print its numbers with 15 digits where 17 may be needed, and the
		 * export must read back (mlpipe.import) as the very same model.
		 */
		MlBuf		b;
		char	   *head;
		StringInfoData s;

		ml_buf_init(&b, &pe.env);
		trees_export_json(&b, &m.tm, (const char *const *) m.meta.feature_names);
		if (b.failed || b.len == 0)
			elog(ERROR, "could not render the trees as JSON");
		head = cJSON_PrintUnformatted(doc);
		if (head == NULL || strlen(head) < 2)
			elog(ERROR, "could not render JSON");
		initStringInfo(&s);
		appendBinaryStringInfo(&s, head, strlen(head) - 1);
		appendStringInfo(&s, ",\"model\":%s}", (const char *) b.data);
		PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(s.data)));
	}
	PG_RETURN_DATUM(cjson_to_jsonb(doc));
}

/*
 * Feature importance of a tree model: total gain (gbt) or total weighted
 * impurity decrease (trees, forests) per feature, normalised to sum to 1,
 * in training feature order.
 */
Datum
mlpipe_importance_bytea(PG_FUNCTION_ARGS)
{
	bytea	   *blob = PG_GETARG_BYTEA_PP(0);
	MlModel		m;
	Datum	   *d;
	double		total = 0;
	uint32		j;

	model_decode(CurrentMemoryContext, blob, "importance", NULL, &m);
	if (m.kind == ML_KIND_KMEANS)
		ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
						errmsg("feature importance is defined for tree models, not k-means")));
	for (j = 0; j < m.tm.n_features; j++)
		total += m.tm.importance[j];
	d = palloc(sizeof(Datum) * m.tm.n_features);
	for (j = 0; j < m.tm.n_features; j++)
		d[j] = Float8GetDatum(total > 0 ? m.tm.importance[j] / total : 0.0);
	PG_RETURN_ARRAYTYPE_P(construct_array(d, m.tm.n_features, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/*
 * mlpipe_internal._has_preprocessing(artifact): true when the model stores
 * preprocessing, so only the row form of predict scores raw columns; a
 * model without it scores the float8[] form the same, faster. Read from
 * the section list (header and CRC checked; the PREPROCESS section is
 * written only when there is preprocessing), not by decoding the model:
 * predict_table asks once a call, and decoding a 100-tree gbt (and its
 * scoring layout) took longer than the rest of the call's checks.
 */
Datum
mlpipe_has_preprocessing(PG_FUNCTION_ARGS)
{
	bytea	   *blob = PG_GETARG_BYTEA_PP(0);
	PgEnv		pe;
	MlArtifact	a;
	MlSection	tag;
	MlReader	sec;
	MlError		err;
	bool		has = false;

	err.code = ML_OK;
	err.msg[0] = '\0';
	pg_env_init(&pe, CurrentMemoryContext, "decode", false);
	if (artifact_open((const uint8_t *) VARDATA_ANY(blob), VARSIZE_ANY_EXHDR(blob), &pe.env, &a, &err) != ML_OK)
		pg_report_ml_error(&err);
	while (artifact_next_section(&a, &tag, &sec, &err))
		if (tag == ML_SEC_PREPROCESS && sec.len > 0)
			has = true;
	if (err.code != ML_OK)
		pg_report_ml_error(&err);
	PG_RETURN_BOOL(has);
}

/*
 * mlpipe_internal._null_intolerant_inputs(artifact): the raw inputs (column names,
 * "x[i]" for an array element) in which a NULL makes scoring fail, for
 * predict_table's on_null: every input of a model that cannot route a
 * missing value (k-means) unless its preprocessing imputes it, and every
 * input whose preprocessing has impute = error. Trees route missing
 * values, and a NULL category is a level of its own, so those are absent.
 */
Datum
mlpipe_null_intolerant_inputs(PG_FUNCTION_ARGS)
{
	bytea	   *blob = PG_GETARG_BYTEA_PP(0);
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "mlpipe null probe",
											  ALLOCSET_SMALL_SIZES);
	MemoryContext old;
	MlModel		m;
	bool		routes;
	int			n = 0;
	uint32		i;
	Datum	   *names;
	ArrayType  *result;

	model_decode(cxt, blob, "decode", NULL, &m);
	routes = ml_model_handles_missing(&m);
	old = MemoryContextSwitchTo(cxt);
	names = palloc(sizeof(Datum) * (m.prep.n_in > 0 ? m.prep.n_in : m.meta.n_features + 1));
	if (m.prep.n_in == 0 && !routes)
		for (i = 0; i < m.meta.n_features; i++)
			names[n++] = CStringGetTextDatum(m.meta.feature_names[i]);
	for (i = 0; i < m.prep.n_in; i++)
	{
		const PpColumn *c = &m.prep.cols[i];

		if (c->impute == PP_IMPUTE_ERROR || (!c->categorical && c->impute == PP_IMPUTE_NONE && !routes))
			names[n++] = CStringGetTextDatum(c->name);
	}
	MemoryContextSwitchTo(old);
	result = construct_array(names, n, TEXTOID, -1, false, TYPALIGN_INT);
	MemoryContextDelete(cxt);
	PG_RETURN_ARRAYTYPE_P(result);
}

/*
 * mlpipe_internal._explained_importance(artifact) -> (feature, gain_importance):
 * the features as mlpipe.explain's row form reports them (the original
 * columns of a model with preprocessing, each with the summed importance of
 * its encoded features), with the normalised gain importance, in training
 * order. 42809 for k-means.
 */
Datum
mlpipe_explained_importance(PG_FUNCTION_ARGS)
{
	bytea	   *blob = PG_GETARG_BYTEA_PP(0);
	ReturnSetInfo *rsi = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "mlpipe importance",
											  ALLOCSET_DEFAULT_SIZES);
	PgEnv		pe;
	MlModel		m;
	MlError		err = {0};
	ExplainGroups g = {0};
	double	   *imp;
	double		total = 0;
	uint32		j,
				n;

	InitMaterializedSRF(fcinfo, 0);
	model_decode(cxt, blob, "importance", &pe, &m);
	if (m.kind == ML_KIND_KMEANS)
		ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
						errmsg("feature importance is defined for tree models, not k-means")));
	for (j = 0; j < m.tm.n_features; j++)
		total += m.tm.importance[j];
	n = m.tm.n_features;
	imp = m.tm.importance;
	if (m.prep.n_in > 0)
	{
		if (explain_groups_build(&pe.env, &m.prep, &g, &err) != ML_OK)
			pg_report_ml_error(&err);
		n = g.n_groups;
		imp = palloc(sizeof(double) * Max(n, 1));
		explain_groups_sum(&g, m.tm.importance, m.tm.n_features, imp);
	}
	for (j = 0; j < n; j++)
	{
		Datum		v[2];
		bool		nulls[2] = {false, false};

		v[0] = CStringGetTextDatum(m.prep.n_in > 0 ? g.names[j] : m.meta.feature_names[j]);
		v[1] = Float8GetDatum(total > 0 ? imp[j] / total : 0.0);
		tuplestore_putvalues(rsi->setResult, rsi->setDesc, v, nulls);
	}
	MemoryContextDelete(cxt);
	return (Datum) 0;
}
