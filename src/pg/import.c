/*
 * import.c: mlpipe_internal._import_fit, the C half of mlpipe.import. It reads an
 * XGBoost JSON model (src/core/xgb_import.c) or mlpipe's own export of a
 * tree model (src/core/tree_json_import.c), maps its features to column
 * names, writes an ordinary artifact (with node covers, for explain) and
 * returns a fit_result with a fit token, so that mlpipe_internal._register
 * records it exactly as it records a trained model.
 */
#include "mlpipe.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "xgb_import.h"

PG_FUNCTION_INFO_V1(mlpipe_import_fit);

/* A text[] of n C strings. */
static Datum
names_array(char **items, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));
	int			i;

	for (i = 0; i < n; i++)
		d[i] = CStringGetTextDatum(items[i]);
	return PointerGetDatum(construct_array(d, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * n names from a text[] argument (NULL array: NULL). 22023 when the count
 * is not n or an element is NULL or empty.
 */
static char **
names_from_array(ArrayType *a, int n, const char *what)
{
	Datum	   *ev;
	bool	   *en;
	int			ne,
				i;
	char	  **out;

	if (a == NULL)
		return NULL;
	deconstruct_array(a, TEXTOID, -1, false, TYPALIGN_INT, &ev, &en, &ne);
	if (ne != n)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("%s has %d names, the imported model has %d", what, ne, n)));
	out = palloc(sizeof(char *) * n);
	for (i = 0; i < n; i++)
	{
		if (en[i] || VARSIZE_ANY_EXHDR(DatumGetTextPP(ev[i])) == 0)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("%s[%d] is NULL or empty", what, i + 1)));
		out[i] = TextDatumGetCString(ev[i]);
	}
	return out;
}

/* Raises the importer's error: 22023 for what is unsupported, 22P02 for a malformed document. */
static void
report_import_error(const MlError *err)
{
	if (err->code == ML_ERR_PARAM)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("%s", err->msg),
						errhint("mlpipe.import reads XGBoost 1.x JSON (Booster.save_model(\"m.json\")) "
								"with binary:logistic, multi:softprob, multi:softmax or reg:squarederror.")));
	if (err->code == ML_ERR_DATA)
		ereport(ERROR, (errcode(ERRCODE_INVALID_TEXT_REPRESENTATION), errmsg("%s", err->msg)));
	pg_report_ml_error(err);
}

/* Feature names: the given ones, else the document's, else 22023. */
static char **
import_features(XgbImport *imp, ArrayType *given)
{
	int			d = (int) imp->model.n_features;
	char	  **names = names_from_array(given, d, "features");
	int			i,
				j;

	if (names == NULL && imp->feature_names != NULL)
	{
		names = palloc(sizeof(char *) * d);
		for (i = 0; i < d; i++)
			names[i] = pstrdup(imp->feature_names[i]);
	}
	if (names == NULL)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("the XGBoost model has no feature names"),
						errhint("Pass features => ARRAY[...] with the %d column names in XGBoost's feature order.", d)));
	for (i = 0; i < d; i++)
		for (j = 0; j < i; j++)
			if (strcmp(names[i], names[j]) == 0)
				ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								errmsg("feature \"%s\" appears twice", names[i])));
	return names;
}

/* Class labels: the given ones, else "0", "1", ... as XGBoost numbers them. */
static char **
import_classes(XgbImport *imp, ArrayType *given)
{
	int			k = (int) imp->model.n_classes;
	char	  **labels;
	int			i;

	if (imp->model.task != ML_TASK_CLASSIFY)
	{
		if (given != NULL)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("classes given for a %s model", imp->objective)));
		return NULL;
	}
	labels = names_from_array(given, k, "classes");
	if (labels == NULL)
	{
		labels = palloc(sizeof(char *) * k);
		for (i = 0; i < k; i++)
			labels[i] = psprintf("%d", i);
	}
	return labels;
}

/* What either format gives: the model, its names and its lineage. */
typedef struct Imported
{
	TreeModel  *model;
	char	  **features;
	char	  **classes;			/* NULL for regression */
	const char *algorithm;		/* decision_tree, random_forest or gbt */
	cJSON	   *from;			/* lineage.imported */
} Imported;

/* An XGBoost document into *out. */
static void
import_xgboost(PgEnv *pe, const cJSON *root, FunctionCallInfo fcinfo, Imported *out)
{
	XgbImport  *imp = palloc0(sizeof(XgbImport));
	MlError		err = {0};

	if (xgb_import_cjson(&pe->env, root, imp, &err) != ML_OK)
		report_import_error(&err);
	out->model = &imp->model;
	out->features = import_features(imp, PG_ARGISNULL(1) ? NULL : PG_GETARG_ARRAYTYPE_P(1));
	out->classes = import_classes(imp, PG_ARGISNULL(2) ? NULL : PG_GETARG_ARRAYTYPE_P(2));
	out->algorithm = "gbt";
	out->from = cJSON_CreateObject();
	cJSON_AddStringToObject(out->from, "format", "xgboost_json");
	cJSON_AddStringToObject(out->from, "xgboost_version",
							psprintf("%d.%d.%d", imp->version[0], imp->version[1], imp->version[2]));
	cJSON_AddStringToObject(out->from, "objective", imp->objective);
	cJSON_AddBoolToObject(out->from, "feature_names_from_document", PG_ARGISNULL(1));
}

/* n strings of the export's member `name`, or 22P02. */
static char **
export_names(const cJSON *root, const char *name, uint32 n)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, name),
			   *it;
	char	  **out = palloc(sizeof(char *) * Max(n, 1));
	uint32		i = 0;

	if (!cJSON_IsArray(a) || (uint32) cJSON_GetArraySize(a) != n)
		ereport(ERROR, (errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
						errmsg("mlpipe export: \"%s\" must be an array of %u names", name, n)));
	cJSON_ArrayForEach(it, a)
	{
		if (!cJSON_IsString(it) || it->valuestring[0] == '\0')
			ereport(ERROR, (errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
							errmsg("mlpipe export: %s[%u] must be a non-empty string", name, i)));
		out[i++] = pstrdup(it->valuestring);
	}
	return out;
}

/*
 * An mlpipe.export document of a tree model into *out: the same trees
 * (so the same predictions), the document's feature and class names
 * unless features / classes rename them.
 */
static void
import_mlpipe_export(PgEnv *pe, const cJSON *root, FunctionCallInfo fcinfo, Imported *out)
{
	const cJSON *algo = cJSON_GetObjectItemCaseSensitive(root, "algorithm");
	TreeModel  *tm = palloc0(sizeof(TreeModel));
	MlError		err = {0};
	char	  **names;
	uint32		d,
				k;

	if (cJSON_IsString(algo) && strcmp(algo->valuestring, "kmeans") == 0)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("mlpipe.import reads the export of tree models, not of k-means"),
						errhint("Copy a k-means model with its artifact (mlpipe.artifact).")));
	if (cJSON_GetObjectItemCaseSensitive(root, "preprocess") != NULL)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("mlpipe.import does not read the export of a model with preprocessing"),
						errhint("Copy it with its artifact (mlpipe.artifact), which keeps the preprocessing.")));
	{
		const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
		const cJSON *feats = cJSON_GetObjectItemCaseSensitive(root, "features");

		d = cJSON_IsArray(feats) ? (uint32) cJSON_GetArraySize(feats) : 0;
		names = export_names(root, "features", d);
		if (trees_import_json(&pe->env, model, (const char *const *) names, d, tm, &err) != ML_OK)
			report_import_error(&err);
	}
	if (tm->n_features != d)
		ereport(ERROR, (errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
						errmsg("mlpipe export: \"features\" has %u names, the model has %u features",
							   d, tm->n_features)));
	k = tm->task == ML_TASK_CLASSIFY ? tm->n_classes : 0;
	out->model = tm;
	out->features = PG_ARGISNULL(1) ? names : names_from_array(PG_GETARG_ARRAYTYPE_P(1), (int) d, "features");
	if (k == 0 && !PG_ARGISNULL(2))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("classes given for a regression model")));
	out->classes = k == 0 ? NULL : PG_ARGISNULL(2) ? export_names(root, "classes", k)
		: names_from_array(PG_GETARG_ARRAYTYPE_P(2), (int) k, "classes");
	out->algorithm = ml_kind_name(trees_kind(tm));
	out->from = cJSON_CreateObject();
	cJSON_AddStringToObject(out->from, "format", "mlpipe_export");
	cJSON_AddStringToObject(out->from, "algorithm", out->algorithm);
	cJSON_AddBoolToObject(out->from, "feature_names_from_document", PG_ARGISNULL(1));
}

/* mlpipe_internal._import_fit(doc jsonb, features text[], classes text[]) -> fit_result. */
Datum
mlpipe_import_fit(PG_FUNCTION_ARGS)
{
	cJSON	   *root;
	PgEnv		pe;
	MemoryContext mcxt;
	Imported	imp = {0};
	MlError		err = {0};
	MlMeta		meta;
	MlBuf		buf;
	bytea	   *artifact;
	cJSON	   *metrics,
			   *info;
	TupleDesc	td;
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, false, false};
	HeapTuple	tup;
	Datum		result;
	bool		classify;

	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("doc must not be NULL")));
	mcxt = AllocSetContextCreate(CurrentMemoryContext, "mlpipe import", ALLOCSET_DEFAULT_SIZES);
	pg_env_init(&pe, mcxt, "import", false);
	root = jsonb_to_cjson(PG_GETARG_JSONB_P(0));
	/* mlpipe.export output has "algorithm" and no "learner" (XGBoost's). */
	if (cJSON_IsObject(root) && cJSON_GetObjectItemCaseSensitive(root, "learner") == NULL &&
		cJSON_GetObjectItemCaseSensitive(root, "algorithm") != NULL)
		import_mlpipe_export(&pe, root, fcinfo, &imp);
	else
		import_xgboost(&pe, root, fcinfo, &imp);
	cJSON_Delete(root);
	classify = imp.model->task == ML_TASK_CLASSIFY;

	memset(&meta, 0, sizeof(meta));
	meta.task = imp.model->task;
	meta.n_features = imp.model->n_features;
	meta.feature_names = imp.features;
	meta.n_classes = classify ? imp.model->n_classes : 0;
	meta.class_labels = imp.classes;
	ML_CHECK_STATUS(ml_model_write_trees(&buf, &pe.env, &meta, imp.model, NULL, NULL, &err), &err);
	artifact = palloc(VARHDRSZ + buf.len);
	SET_VARSIZE(artifact, VARHDRSZ + buf.len);
	memcpy(VARDATA(artifact), buf.data, buf.len);

	/*
	 * No test rows: the main metric is there but undefined, so the default
	 * gate promotes a first version and keeps a later one as a candidate.
	 */
	metrics = cJSON_CreateObject();
	cJSON_AddNullToObject(metrics, classify ? "accuracy" : "rmse");
	params_json_number(metrics, "trees", imp.model->n_trees);
	info = cJSON_CreateObject();
	params_json_number(info, "training_rows", 0);
	cJSON_AddItemToObject(info, "imported", imp.from);

	if (get_call_result_type(fcinfo, NULL, &td) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "mlpipe_internal._import_fit must return a composite type");
	td = BlessTupleDesc(td);
	values[0] = PointerGetDatum(artifact);
	values[1] = CStringGetTextDatum(classify ? "classification" : "regression");
	values[2] = names_array(imp.features, (int) imp.model->n_features);
	values[3] = classify ? names_array(imp.classes, (int) imp.model->n_classes) : (Datum) 0;
	nulls[3] = !classify;
	values[4] = cjson_to_jsonb(metrics);
	values[5] = cjson_to_jsonb(info);
	tup = heap_form_tuple(td, values, nulls);
	cJSON_Delete(metrics);
	cJSON_Delete(info);
	result = HeapTupleGetDatum(tup);
	/* Registered under its algorithm, through the same token as a trained one. */
	fit_token_issue(DatumGetHeapTupleHeader(result), imp.algorithm);
	MemoryContextDelete(mcxt);
	PG_RETURN_DATUM(result);
}
