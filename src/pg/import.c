/*
 * import.c: mlpipe_internal._import_fit, the C half of mlpipe.import. It reads an
 * XGBoost JSON model (src/core/xgb_import.c), maps its features to column
 * names, writes an ordinary gbt artifact (with node covers, for explain)
 * and returns a fit_result with a fit token, so that mlpipe_internal._register
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
						errmsg("%s has %d names, the XGBoost model has %d", what, ne, n)));
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

/* mlpipe_internal._import_fit(doc jsonb, features text[], classes text[]) -> fit_result. */
Datum
mlpipe_import_fit(PG_FUNCTION_ARGS)
{
	Jsonb	   *doc;
	char	   *text;
	PgEnv		pe;
	MemoryContext mcxt;
	XgbImport	imp;
	MlError		err = {0};
	MlMeta		meta;
	MlBuf		buf;
	char	  **features;
	char	  **classes;
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
	doc = PG_GETARG_JSONB_P(0);
	text = JsonbToCString(NULL, &doc->root, VARSIZE(doc));
	mcxt = AllocSetContextCreate(CurrentMemoryContext, "mlpipe import", ALLOCSET_DEFAULT_SIZES);
	pg_env_init(&pe, mcxt, "import", false);
	if (xgb_import_json(&pe.env, text, strlen(text), &imp, &err) != ML_OK)
		report_import_error(&err);
	features = import_features(&imp, PG_ARGISNULL(1) ? NULL : PG_GETARG_ARRAYTYPE_P(1));
	classes = import_classes(&imp, PG_ARGISNULL(2) ? NULL : PG_GETARG_ARRAYTYPE_P(2));
	classify = imp.model.task == ML_TASK_CLASSIFY;

	memset(&meta, 0, sizeof(meta));
	meta.task = imp.model.task;
	meta.n_features = imp.model.n_features;
	meta.feature_names = features;
	meta.n_classes = classify ? imp.model.n_classes : 0;
	meta.class_labels = classes;
	ML_CHECK_STATUS(ml_model_write_trees(&buf, &pe.env, &meta, &imp.model, NULL, NULL, &err), &err);
	artifact = palloc(VARHDRSZ + buf.len);
	SET_VARSIZE(artifact, VARHDRSZ + buf.len);
	memcpy(VARDATA(artifact), buf.data, buf.len);

	/*
	 * No test rows: the main metric is there but undefined, so the default
	 * gate promotes a first version and keeps a later one as a candidate.
	 */
	metrics = cJSON_CreateObject();
	cJSON_AddNullToObject(metrics, classify ? "accuracy" : "rmse");
	params_json_number(metrics, "trees", imp.model.n_trees);
	info = cJSON_CreateObject();
	params_json_number(info, "training_rows", 0);
	{
		cJSON	   *from = cJSON_AddObjectToObject(info, "imported");

		cJSON_AddStringToObject(from, "format", "xgboost_json");
		cJSON_AddStringToObject(from, "xgboost_version",
								psprintf("%d.%d.%d", imp.version[0], imp.version[1], imp.version[2]));
		cJSON_AddStringToObject(from, "objective", imp.objective);
		cJSON_AddBoolToObject(from, "feature_names_from_document", PG_ARGISNULL(1));
	}

	if (get_call_result_type(fcinfo, NULL, &td) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "mlpipe_internal._import_fit must return a composite type");
	td = BlessTupleDesc(td);
	values[0] = PointerGetDatum(artifact);
	values[1] = CStringGetTextDatum(classify ? "classification" : "regression");
	values[2] = names_array(features, (int) imp.model.n_features);
	values[3] = classify ? names_array(classes, (int) imp.model.n_classes) : (Datum) 0;
	nulls[3] = !classify;
	values[4] = cjson_to_jsonb(metrics);
	values[5] = cjson_to_jsonb(info);
	tup = heap_form_tuple(td, values, nulls);
	cJSON_Delete(metrics);
	cJSON_Delete(info);
	xgb_import_free(&pe.env, &imp);
	MemoryContextDelete(mcxt);
	result = HeapTupleGetDatum(tup);
	/* Registered as a gbt version, through the same token as a trained one. */
	fit_token_issue(DatumGetHeapTupleHeader(result), "gbt");
	PG_RETURN_DATUM(result);
}
