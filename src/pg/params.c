/*
 * params.c: reading params jsonb. cJSON allocates with palloc, so an error
 * anywhere frees the parse tree with the memory context. Every key is
 * checked against the algorithm's list: a typo must never train a default.
 */
#include "mlpipe.h"

#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/fmgrprotos.h"
#include "utils/varlena.h"

#include <math.h>

/* cJSON allocation hook: palloc, so cJSON trees die with the memory context. */
static void *
cjson_palloc(size_t n)
{
	return palloc(n);
}

/* cJSON free hook. */
static void
cjson_pfree(void *p)
{
	if (p)
		pfree(p);
}

/* Points cJSON at palloc/pfree (called once, at load). */
void
mlpipe_cjson_init(void)
{
	cJSON_Hooks hooks = {cjson_palloc, cjson_pfree};

	cJSON_InitHooks(&hooks);
}

/* The params jsonb as a cJSON object ({} for NULL); 22023 unless an object. */
cJSON *
params_parse(Jsonb *params)
{
	char	   *text;
	cJSON	   *root;

	if (params == NULL)
		return cJSON_CreateObject();
	text = JsonbToCString(NULL, &params->root, VARSIZE(params));
	root = cJSON_ParseWithLength(text, strlen(text));
	if (root == NULL)
		ereport(ERROR, (errcode(ERRCODE_INVALID_JSON_TEXT), errmsg("params is not valid JSON")));
	if (!cJSON_IsObject(root))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("params must be a JSON object")));
	return root;
}

/* The allowed key closest to a misspelt one, or NULL when none is close. */
const char *
params_closest_key(const char *key, const char *const *allowed)
{
	const char *best = NULL;
	int			best_d = 4;
	int			i;

	for (i = 0; allowed[i]; i++)
	{
		int			d = varstr_levenshtein(key, strlen(key), allowed[i], strlen(allowed[i]),
										   1, 1, 1, false);

		if (d < best_d)
		{
			best_d = d;
			best = allowed[i];
		}
	}
	return best;
}

/* The names, joined by ", ", for hints. */
char *
params_join_names(const char *const *names)
{
	StringInfoData s;
	int			i;

	initStringInfo(&s);
	for (i = 0; names[i]; i++)
		appendStringInfo(&s, "%s%s", i ? ", " : "", names[i]);
	return s.data;
}

/* 22023 for a key of root not in allowed, with the nearest allowed name as a hint. */
void
params_check_keys(cJSON *root, const char *context, const char *const *allowed)
{
	cJSON	   *item;
	int			i;

	cJSON_ArrayForEach(item, root)
	{
		bool		ok = false;

		for (i = 0; allowed[i]; i++)
			if (strcmp(item->string, allowed[i]) == 0)
				ok = true;
		if (!ok)
		{
			const char *near = params_closest_key(item->string, allowed);

			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown parameter \"%s\" for %s", item->string, context),
					 near ? errhint("Did you mean \"%s\"? Allowed parameters: %s.", near, params_join_names(allowed))
					 : errhint("Allowed parameters: %s.", params_join_names(allowed))));
		}
	}
}

/* params[key], or NULL when the key is absent or JSON null (both mean: the default). */
cJSON *
params_item(cJSON *root, const char *key)
{
	cJSON	   *v = cJSON_GetObjectItemCaseSensitive(root, key);

	return v == NULL || cJSON_IsNull(v) ? NULL : v;
}

/* params[key] as a finite number in [lo, hi], dflt when absent (22023 otherwise). */
double
params_number(cJSON *root, const char *key, double dflt, double lo, double hi)
{
	cJSON	   *v = params_item(root, key);

	if (v == NULL)
		return dflt;
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("parameter \"%s\" must be a number", key)));
	if (v->valuedouble < lo || v->valuedouble > hi)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("parameter \"%s\" = %g is out of range", key, v->valuedouble),
						errhint("\"%s\" must be between %g and %g.", key, lo, hi)));
	return v->valuedouble;
}

/* params[key] as an integer in [lo, hi], dflt when absent (22023 otherwise). */
int
params_int(cJSON *root, const char *key, int dflt, int lo, int hi)
{
	cJSON	   *v = params_item(root, key);

	if (v == NULL)
		return dflt;
	if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("parameter \"%s\" must be an integer", key)));
	if (v->valuedouble < lo || v->valuedouble > hi)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("parameter \"%s\" = %.0f is out of range", key, v->valuedouble),
						errhint("\"%s\" must be between %d and %d.", key, lo, hi)));
	return (int) v->valuedouble;
}

/* params[key] as a boolean, dflt when absent (22023 otherwise). */
bool
params_bool(cJSON *root, const char *key, bool dflt)
{
	cJSON	   *v = params_item(root, key);

	if (v == NULL)
		return dflt;
	if (!cJSON_IsBool(v))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("parameter \"%s\" must be true or false", key)));
	return cJSON_IsTrue(v);
}

/* params[key] as one of the allowed strings, dflt when absent (22023 otherwise). */
const char *
params_choice(cJSON *root, const char *key, const char *dflt, const char *const *allowed)
{
	cJSON	   *v = params_item(root, key);
	int			i;

	if (v == NULL)
		return dflt;
	if (cJSON_IsString(v))
		for (i = 0; allowed[i]; i++)
			if (strcmp(v->valuestring, allowed[i]) == 0)
				return allowed[i];
	ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("parameter \"%s\" has an invalid value", key),
					errhint("\"%s\" must be one of: %s.", key, params_join_names(allowed))));
	return NULL;				/* keep compiler quiet */
}

/* params.seed: any integer in [0, 2^53]; 0 when absent, so runs are reproducible by default. */
uint64
params_seed(cJSON *root)
{
	return (uint64) params_number(root, "seed", 0, 0, 9007199254740992.0);
}

/* Adds a number, or JSON null for NaN/Inf (a metric undefined for this model). */
void
params_json_number(cJSON *obj, const char *key, double v)
{
	if (isfinite(v))
		cJSON_AddNumberToObject(obj, key, v);
	else
		cJSON_AddNullToObject(obj, key);
}

/*
 * A training trace under obj's key "trace": three arrays (training_loss,
 * validation_loss, elapsed_ms), one value per iteration, null where
 * undefined. _register moves it into mlpipe.training_iterations.
 */
void
params_json_trace(cJSON *obj, const MlTrace *t)
{
	static const char *const names[] = {"training_loss", "validation_loss", "elapsed_ms"};
	cJSON	   *tr;
	int			a,
				i;

	if (t->n == 0)
		return;
	tr = cJSON_AddObjectToObject(obj, "trace");
	for (a = 0; a < 3; a++)
	{
		const double *v = a == 0 ? t->train_loss : a == 1 ? t->valid_loss : t->elapsed_ms;
		cJSON	   *arr = cJSON_AddArrayToObject(tr, names[a]);

		for (i = 0; i < t->n; i++)
			cJSON_AddItemToArray(arr, isfinite(v[i]) ? cJSON_CreateNumber(v[i]) : cJSON_CreateNull());
	}
	if (t->truncated)
		cJSON_AddTrueToObject(tr, "truncated");
}

/* params.exclude: NULL when absent, else an array of column names (22023 otherwise). */
cJSON *
params_exclude(cJSON *root)
{
	cJSON	   *ex = params_item(root, "exclude");
	cJSON	   *it;

	if (ex == NULL)
		return NULL;
	if (!cJSON_IsArray(ex))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("parameter \"exclude\" must be an array of column names")));
	cJSON_ArrayForEach(it, ex)
		if (!cJSON_IsString(it))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("parameter \"exclude\" must be an array of column names")));
	return ex;
}

/* Converts a cJSON tree to jsonb through its text form. */
Datum
cjson_to_jsonb(cJSON *node)
{
	char	   *s = cJSON_PrintUnformatted(node);

	if (s == NULL)
		elog(ERROR, "could not render JSON");
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(s));
}

/* A scalar jsonb value as a cJSON node; numbers through float8, which is exact. */
static cJSON *
jsonb_scalar_to_cjson(const JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			return cJSON_CreateNull();
		case jbvString:
			return cJSON_CreateString(pnstrdup(v->val.string.val, v->val.string.len));
		case jbvNumeric:
			return cJSON_CreateNumber(DatumGetFloat8(DirectFunctionCall1(numeric_float8,
																		 NumericGetDatum(v->val.numeric))));
		case jbvBool:
			return cJSON_CreateBool(v->val.boolean);
		default:
			elog(ERROR, "unexpected jsonb value type %d", (int) v->type);
	}
	return NULL;
}

/* Adds node to the innermost open container of stack (under key in an object), or makes it *root. */
static void
jsonb_attach(List *stack, const char *key, cJSON *node, cJSON **root)
{
	cJSON	   *parent;

	if (node == NULL)
		elog(ERROR, "out of memory converting jsonb");
	if (stack == NIL)
	{
		*root = node;
		return;
	}
	parent = (cJSON *) linitial(stack);
	if (cJSON_IsArray(parent))
		cJSON_AddItemToArray(parent, node);
	else
		cJSON_AddItemToObject(parent, key, node);
}

/*
 * A jsonb document as a cJSON tree, walked rather than printed and parsed:
 * jsonb prints a number like 1e308 as all its 309 digits, and cJSON reads
 * at most 63 characters of a number, so the text round trip would lose it.
 */
cJSON *
jsonb_to_cjson(Jsonb *jb)
{
	JsonbIterator *it = JsonbIteratorInit(&jb->root);
	JsonbValue	v;
	JsonbIteratorToken tok;
	List	   *stack = NIL;
	cJSON	   *root = NULL,
			   *node;
	char	   *key = NULL;
	bool		raw_scalar = false;

	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		switch (tok)
		{
			case WJB_BEGIN_ARRAY:
			case WJB_BEGIN_OBJECT:
				node = tok == WJB_BEGIN_ARRAY ? cJSON_CreateArray() : cJSON_CreateObject();
				if (tok == WJB_BEGIN_ARRAY && stack == NIL && v.val.array.rawScalar)
					raw_scalar = true;
				jsonb_attach(stack, key, node, &root);
				stack = lcons(node, stack);
				break;
			case WJB_END_ARRAY:
			case WJB_END_OBJECT:
				stack = list_delete_first(stack);
				break;
			case WJB_KEY:
				key = pnstrdup(v.val.string.val, v.val.string.len);
				break;
			case WJB_VALUE:
			case WJB_ELEM:
				jsonb_attach(stack, key, jsonb_scalar_to_cjson(&v), &root);
				break;
			default:
				break;
		}
	}
	/* A scalar document is a one-element "raw scalar" array in jsonb. */
	if (raw_scalar && root != NULL)
	{
		node = cJSON_DetachItemFromArray(root, 0);
		cJSON_Delete(root);
		root = node;
	}
	return root;
}
