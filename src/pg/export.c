/*
 * export.c: what an artifact holds, read from its bytes: mlpipe.export
 * (the artifact rendered as readable JSON), feature importance, and
 * whether the model stores preprocessing.
 */
#include "mlpipe.h"

#include "catalog/pg_type.h"
#include "utils/memutils.h"

#include <math.h>

PG_FUNCTION_INFO_V1(mlpipe_export_bytea);
PG_FUNCTION_INFO_V1(mlpipe_importance_bytea);
PG_FUNCTION_INFO_V1(mlpipe_has_preprocessing);

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
	if (m.kind == ML_KIND_KMEANS)
	{
		export_kmeans(doc, &m.km);
		if (m.anomaly.present)
			export_anomaly(doc, &m.anomaly, m.km.k);
	}
	else
	{
		MlBuf		b;
		cJSON	   *trees;

		ml_buf_init(&b, &pe.env);
		trees_export_json(&b, &m.tm, (const char *const *) m.meta.feature_names);
		if (b.failed || b.len == 0)
			elog(ERROR, "could not render the trees as JSON");
		trees = cJSON_ParseWithLength((const char *) b.data, b.len - 1);
		if (trees == NULL)
			elog(ERROR, "the trees' JSON does not parse");
		cJSON_AddItemToObject(doc, "model", trees);
	}
	if (m.prep.n_in > 0)
		cJSON_AddItemToObject(doc, "preprocess", prep_export(&m.prep));
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
 * mlpipe._has_preprocessing(artifact): true when the model stores
 * preprocessing, so only the row form of predict scores raw columns; a
 * model without it scores the float8[] form the same, faster.
 */
Datum
mlpipe_has_preprocessing(PG_FUNCTION_ARGS)
{
	bytea	   *blob = PG_GETARG_BYTEA_PP(0);
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "mlpipe prep probe",
											  ALLOCSET_SMALL_SIZES);
	MlModel		m;
	bool		has;

	model_decode(cxt, blob, "decode", NULL, &m);
	has = m.prep.n_in > 0;
	MemoryContextDelete(cxt);
	PG_RETURN_BOOL(has);
}
