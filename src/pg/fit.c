/*
 * fit.c: mlpipe._fit, the C half of mlpipe.train. It checks the algorithm,
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

/*
 * Trains algorithm on source and returns the fit_result row (of type td)
 * with its fit token issued: the body of mlpipe._fit, shared with grouped
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

	for (i = 0; algorithms[i]; i++)
		if (strcmp(algorithm, algorithms[i]) == 0)
			break;
	if (algorithms[i] == NULL)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("unknown algorithm \"%s\"", algorithm),
						errhint("Algorithms: kmeans, minibatch_kmeans, decision_tree, random_forest, gbt.")));

	memset(&fo, 0, sizeof(fo));
	fo.profile_sample = take_profile_sample(params);
	if (i <= 1)
		fit_kmeans(algorithm, source, target, features, params, warm, &fo);
	else
	{
		if (warm != NULL)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("%s does not support warm_start", algorithm)));
		fit_trees(algorithm, source, target, features, params, &fo);
	}

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

/* mlpipe._fit(algorithm, source, target, features, params, warm_start) -> fit_result. */
Datum
mlpipe_fit(PG_FUNCTION_ARGS)
{
	TupleDesc	td;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("%s must not be NULL", PG_ARGISNULL(0) ? "algorithm" : "source")));
	if (get_call_result_type(fcinfo, NULL, &td) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "mlpipe._fit must return a composite type");
	PG_RETURN_DATUM(fit_result_datum(text_to_cstring(PG_GETARG_TEXT_PP(0)),
									 text_to_cstring(PG_GETARG_TEXT_PP(1)),
									 PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2)),
									 PG_ARGISNULL(3) ? NULL : PG_GETARG_ARRAYTYPE_P(3),
									 PG_ARGISNULL(4) ? NULL : PG_GETARG_JSONB_P(4),
									 PG_ARGISNULL(5) ? NULL : PG_GETARG_BYTEA_PP(5),
									 BlessTupleDesc(td)));
}
