/*
 * fit.c: mlpipe_internal._fit, the C half of mlpipe.train. It checks the algorithm,
 * hands the work to fit_kmeans.c or fit_trees.c, builds the fit_result row
 * and issues the fit token for it (fit_token.c). Registering the result is
 * plpgsql's job (sql/), in the caller's transaction.
 */
#include "mlpipe.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

PG_FUNCTION_INFO_V1(mlpipe_fit);
PG_FUNCTION_INFO_V1(mlpipe_check_params);

static const char *const algorithms[] = {
	"kmeans", "minibatch_kmeans", "decision_tree", "random_forest", "gbt", NULL
};

/* A text[] of n C strings. */
static Datum
text_array(char **items, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));
	int			i;

	for (i = 0; i < n; i++)
		d[i] = CStringGetTextDatum(items[i]);
	return PointerGetDatum(construct_array(d, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * params.profile_sample, which _train passes for the training profile:
 * taken out of params (the algorithms do not know it) and checked.
 */
static int
take_profile_sample(cJSON *params)
{
	cJSON	   *item = cJSON_DetachItemFromObjectCaseSensitive(params, "profile_sample");
	double		v;

	if (item == NULL)
		return 0;
	v = cJSON_IsNumber(item) ? item->valuedouble : -1;
	cJSON_Delete(item);
	if (!(v >= 0 && v <= 10000000) || v != floor(v))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("params.profile_sample must be an integer in 0..10000000 (0: no profile)")));
	return (int) v;
}

/* fit_result.info: the fit's info, with the profile (JSON text) under "profile". */
static Datum
info_with_profile(cJSON *info, const char *profile)
{
	char	   *s = cJSON_PrintUnformatted(info);
	size_t		len;

	if (s == NULL)
		elog(ERROR, "could not render JSON");
	if (profile != NULL)
	{
		len = strlen(s);
		Assert(len >= 2 && s[len - 1] == '}');
		s = psprintf("%.*s%s\"profile\": %s}", (int) (len - 1), s, len > 2 ? ", " : "", profile);
	}
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(s));
}

/* The index of algorithm in algorithms[] (0, 1: k-means), or 22023 naming the choices. */
static int
algorithm_index(const char *algorithm)
{
	int			i;

	for (i = 0; algorithms[i]; i++)
		if (strcmp(algorithm, algorithms[i]) == 0)
			return i;
	ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("unknown algorithm \"%s\"", algorithm),
					errhint("Algorithms: kmeans, minibatch_kmeans, decision_tree, random_forest, gbt.")));
	return -1;					/* keep compiler quiet */
}

/*
 * Everything _fit checks before it reads data, for an algorithm, the params
 * _fit gets (train's own keys removed) and the target: the same functions,
 * so the same SQLSTATE, message and HINT. warm says whether a warm start
 * was asked for. Returns the algorithm's index.
 */
static int
check_fit_params(const char *algorithm, cJSON *params, const char *target, bool warm)
{
	int			i = algorithm_index(algorithm);

	if (i <= 1)
		kmeans_check_params(algorithm, params, target);
	else if (warm && strcmp(algorithm, "gbt") != 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("%s does not support warm_start", algorithm),
						errhint("warm_start continues kmeans, minibatch_kmeans and gbt models.")));
	else
		trees_check_params(algorithm, params, target);
	return i;
}

/*
 * What mlpipe.train checks of (algorithm, params, target) before it reads
 * any data, for create_pipeline: train's own keys (as_of, as_of_column,
 * checks: they need the source) set aside, profile_sample ranged, then
 * check_fit_params. params is not changed.
 */
void
fit_check_params(const char *algorithm, cJSON *params, const char *target)
{
	static const char *const train_only[] = {"as_of", "as_of_column", "checks", NULL};
	cJSON	   *p = cJSON_Duplicate(params, true);
	cJSON	   *warm;
	int			i;

	if (p == NULL)
		elog(ERROR, "out of memory");
	(void) algorithm_index(algorithm);
	for (i = 0; train_only[i]; i++)
		cJSON_DeleteItemFromObjectCaseSensitive(p, train_only[i]);
	(void) take_profile_sample(p);
	warm = cJSON_GetObjectItemCaseSensitive(p, "warm_start");
	if (warm && !cJSON_IsString(warm))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("params.warm_start must be a model reference such as 'sensors@3'")));
	check_fit_params(algorithm, p, target, warm != NULL);
	cJSON_Delete(p);
}

/* mlpipe_internal._check_params(algorithm, params, target): fit_check_params from SQL. */
Datum
mlpipe_check_params(PG_FUNCTION_ARGS)
{
	cJSON	   *params;

	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("algorithm must not be NULL")));
	params = params_parse(PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1));
	fit_check_params(text_to_cstring(PG_GETARG_TEXT_PP(0)), params,
					 PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2)));
	PG_RETURN_VOID();
}

/*
 * Trains algorithm on source and returns the fit_result row (of type td)
 * with its fit token issued: the body of mlpipe_internal._fit, shared with grouped
 * training (fit_groups.c), which calls it once per group.
 */
Datum
fit_result_datum(const char *algorithm, const char *source, const char *target,
				 ArrayType *features, Jsonb *params_jsonb, bytea *warm, TupleDesc td)
{
	cJSON	   *params = params_parse(params_jsonb);
	FitOutput	fo;
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, false, false};
	HeapTuple	tup;
	Datum		result;
	int			i;

	(void) algorithm_index(algorithm);
	memset(&fo, 0, sizeof(fo));
	fo.profile_sample = take_profile_sample(params);
	/* every check that needs no data, before reading any (as create_pipeline runs them) */
	i = check_fit_params(algorithm, params, target, warm != NULL);
	if (i <= 1)
		fit_kmeans(algorithm, source, target, features, params, warm, &fo);
	else
		fit_trees(algorithm, source, target, features, params, warm, &fo);

	values[0] = PointerGetDatum(fo.artifact);
	values[1] = CStringGetTextDatum(fo.task);
	values[2] = text_array(fo.features, fo.n_features);
	values[3] = fo.n_classes ? text_array(fo.classes, fo.n_classes) : (Datum) 0;
	nulls[3] = fo.n_classes == 0;
	values[4] = cjson_to_jsonb(fo.metrics);
	values[5] = info_with_profile(fo.info, fo.profile);
	tup = heap_form_tuple(td, values, nulls);
	MemoryContextDelete(fo.mcxt);
	result = HeapTupleGetDatum(tup);
	/* The token _register claims: only a result _fit made can be registered. */
	fit_token_issue(DatumGetHeapTupleHeader(result), algorithm);
	return result;
}

/* mlpipe_internal._fit(algorithm, source, target, features, params, warm_start) -> fit_result. */
Datum
mlpipe_fit(PG_FUNCTION_ARGS)
{
	TupleDesc	td;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("%s must not be NULL", PG_ARGISNULL(0) ? "algorithm" : "source")));
	if (get_call_result_type(fcinfo, NULL, &td) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "mlpipe_internal._fit must return a composite type");
	PG_RETURN_DATUM(fit_result_datum(text_to_cstring(PG_GETARG_TEXT_PP(0)),
									 text_to_cstring(PG_GETARG_TEXT_PP(1)),
									 PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2)),
									 PG_ARGISNULL(3) ? NULL : PG_GETARG_ARRAYTYPE_P(3),
									 PG_ARGISNULL(4) ? NULL : PG_GETARG_JSONB_P(4),
									 PG_ARGISNULL(5) ? NULL : PG_GETARG_BYTEA_PP(5),
									 BlessTupleDesc(td)));
}
