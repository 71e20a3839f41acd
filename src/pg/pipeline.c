/*
 * pipeline.c: validation of pipeline configs (mlpipe_internal._pipeline_check).
 * A config is {"description": ..., "steps": [{"kind": ..., ...}, ...]}; every
 * key of every step is checked against the step kind's table, and every
 * error names its path in the config (steps[1].algoritm) so a typo is found
 * when the pipeline is created, not at 3 a.m. when pg_cron runs it.
 * Running the steps is plpgsql's job (sql/src/60-pipelines.sql).
 */
#include "mlpipe.h"

#include "catalog/namespace.h"
#include "nodes/parsenodes.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/varlena.h"

#include <ctype.h>
#include <math.h>

PG_FUNCTION_INFO_V1(mlpipe_pipeline_check);

#define PIPELINE_MAX_STEPS 100

typedef enum KeyType
{
	K_STRING,					/* non-empty string */
	K_MODEL,					/* a model name: non-empty, no '@' */
	K_STRINGS,					/* array of non-empty strings */
	K_OBJECT,					/* JSON object, passed on as is */
	K_INT,						/* integer in [lo, hi] */
	K_CHOICE,					/* one of choices */
	K_SOURCE,					/* relation name, earlier step's into, or SELECT */
	K_INTO						/* a table name: [schema.]table */
} KeyType;

typedef struct KeySpec
{
	const char *key;
	KeyType		type;
	bool		required;
	const char *const *choices;
	int			lo,
				hi;
} KeySpec;

typedef struct StepSpec
{
	const char *kind;
	const KeySpec *keys;
} StepSpec;

static const char *const algorithms[] = {
	"kmeans", "minibatch_kmeans", "decision_tree", "random_forest", "gbt", NULL
};
static const char *const periods[] = {"minute", "hour", "day", "week", "month", NULL};
static const char *const features_modes[] = {"replace", "append", NULL};
static const char *const predict_modes[] = {"append", "replace", "upsert", NULL};
static const char *const on_null_modes[] = {"error", "skip", "null", NULL};
static const char *const strategies[] = {"grid", "random", NULL};
static const char *const kinds[] = {"features", "train", "search", "predict", "evaluate", "drift", NULL};
static const char *const root_keys[] = {"steps", "description", NULL};

static const KeySpec features_keys[] = {
	{"kind", K_STRING, true}, {"name", K_STRING, false},
	{"source", K_SOURCE, true}, {"group_by", K_STRINGS, false}, {"ts", K_STRING, true},
	{"values", K_STRINGS, true}, {"period", K_CHOICE, false, periods},
	{"stats", K_STRINGS, false}, {"into", K_INTO, true},
	{"mode", K_CHOICE, false, features_modes}, {NULL}
};
static const KeySpec train_keys[] = {
	{"kind", K_STRING, true}, {"name", K_STRING, false},
	{"model", K_MODEL, true}, {"algorithm", K_CHOICE, true, algorithms},
	{"source", K_SOURCE, true}, {"target", K_STRING, false}, {"features", K_STRINGS, false},
	{"params", K_OBJECT, false}, {"gate", K_OBJECT, false}, {NULL}
};
static const KeySpec search_keys[] = {
	{"kind", K_STRING, true}, {"name", K_STRING, false},
	{"model", K_MODEL, true}, {"algorithm", K_CHOICE, true, algorithms},
	{"source", K_SOURCE, true}, {"target", K_STRING, true}, {"features", K_STRINGS, false},
	{"space", K_OBJECT, true}, {"strategy", K_CHOICE, false, strategies},
	{"folds", K_INT, false, NULL, 2, 100}, {"trials", K_INT, false, NULL, 1, 100000},
	{"gate", K_OBJECT, false}, {NULL}
};
static const KeySpec predict_keys[] = {
	{"kind", K_STRING, true}, {"name", K_STRING, false},
	{"model", K_STRING, true}, {"source", K_SOURCE, true}, {"into", K_INTO, true},
	{"key", K_STRING, true}, {"mode", K_CHOICE, false, predict_modes},
	{"on_null", K_CHOICE, false, on_null_modes}, {NULL}
};
static const KeySpec evaluate_keys[] = {
	{"kind", K_STRING, true}, {"name", K_STRING, false},
	{"model", K_STRING, true}, {"source", K_SOURCE, true}, {NULL}
};

static const StepSpec steps_spec[] = {
	{"features", features_keys}, {"train", train_keys}, {"search", search_keys},
	{"predict", predict_keys}, {"evaluate", evaluate_keys}, {"drift", evaluate_keys},
	{NULL}
};

/* What the checks of one config share: tables written by earlier steps. */
typedef struct CheckState
{
	bool		check_sources;	/* look relations up (as the caller) */
	List	   *written;		/* List of name Lists, the into of each earlier step */
} CheckState;

/* The message of the error being handled; clears it (caller switched context back). */
static char *
caught_message(MemoryContext cxt)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(cxt);
	edata = CopyErrorData();
	FlushErrorState();
	return edata->message;
}

/* Parses [schema.]name as the server would; NULL when it is no valid name. */
static List *
parse_qualified(const char *s, char **why)
{
	MemoryContext cxt = CurrentMemoryContext;
	List	   *volatile names = NIL;

	PG_TRY();
	{
		names = stringToQualifiedNameList(s);
	}
	PG_CATCH();
	{
		*why = caught_message(cxt);
		return NULL;
	}
	PG_END_TRY();
	return names;
}

/* Whether a source reads as a query (first word SELECT/WITH/VALUES/TABLE) rather than a name. */
static bool
looks_like_query(const char *s)
{
	static const char *const words[] = {"select", "with", "values", "table", NULL};
	int			i;

	while (*s && (isspace((unsigned char) *s) || *s == '('))
		s++;
	for (i = 0; words[i]; i++)
	{
		size_t		n = strlen(words[i]);

		if (pg_strncasecmp(s, words[i], n) == 0 &&
			(s[n] == '\0' || isspace((unsigned char) s[n]) || s[n] == '(' || s[n] == '*'))
			return true;
	}
	return false;
}

/*
 * A query source must be one read-only SELECT: raw parsing only (no catalog
 * lookups), so tables that earlier steps will create are fine; no SELECT
 * INTO, no data-modifying WITH, no second statement after a semicolon.
 */
static void
check_query(const char *path, const char *sql)
{
	MemoryContext cxt = CurrentMemoryContext;
	List	   *volatile stmts = NIL;
	char	   *volatile why = NULL;
	Node	   *stmt;
	ListCell   *lc;

	PG_TRY();
	{
		stmts = pg_parse_query(sql);
	}
	PG_CATCH();
	{
		why = caught_message(cxt);
	}
	PG_END_TRY();
	if (why)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("%s is not a valid query: %s", path, why)));
	if (list_length(stmts) != 1)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("%s must be a single SELECT query, not %d statements", path,
							   list_length(stmts)),
						errhint("Remove the semicolon and what follows it.")));
	stmt = ((RawStmt *) linitial(stmts))->stmt;
	if (!IsA(stmt, SelectStmt))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("%s must be a SELECT query", path)));
	if (((SelectStmt *) stmt)->intoClause != NULL)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("%s must not be SELECT ... INTO", path),
						errhint("Use a features or predict step with \"into\" to write a table.")));
	if (((SelectStmt *) stmt)->withClause != NULL)
		foreach(lc, ((SelectStmt *) stmt)->withClause->ctes)
		{
			CommonTableExpr *cte = lfirst_node(CommonTableExpr, lc);

			if (!IsA(cte->ctequery, SelectStmt))
				ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								errmsg("%s must not modify data (WITH \"%s\" AS (%s ...))", path,
									   cte->ctename, IsA(cte->ctequery, DeleteStmt) ? "DELETE" :
									   IsA(cte->ctequery, UpdateStmt) ? "UPDATE" : "INSERT")));
		}
}

/* Two qualified names denote the same table: equal, or equal last parts when one is unqualified. */
static bool
same_table(List *a, List *b)
{
	if (list_length(a) == list_length(b))
		return strcmp(NameListToString(a), NameListToString(b)) == 0;
	if (list_length(a) == 1 || list_length(b) == 1)
		return strcmp(strVal(llast(a)), strVal(llast(b))) == 0;
	return false;
}

/* A source: an existing relation (as the caller sees it), an earlier step's into, or a query. */
static void
check_source(CheckState *cs, const char *path, const char *src)
{
	List	   *names;
	char	   *why = NULL;
	ListCell   *lc;

	if (looks_like_query(src))
	{
		check_query(path, src);
		return;
	}
	names = parse_qualified(src, &why);
	if (names == NULL || list_length(names) > 3)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("%s \"%s\" is neither a table name nor a SELECT query", path, src),
						why ? errdetail("%s", why) : 0,
						errhint("Quote unusual names as in SQL (\"My Table\"), or start a query with SELECT.")));
	foreach(lc, cs->written)
		if (same_table(names, (List *) lfirst(lc)))
			return;
	if (cs->check_sources &&
		!OidIsValid(RangeVarGetRelid(makeRangeVarFromNameList(names), NoLock, true)))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("%s: relation \"%s\" does not exist and no earlier step writes it", path, src),
						errhint("Create the table first, or put the step that writes it (\"into\") earlier.")));
}

/* The target table of a step: [schema.]table, remembered for later steps' sources. */
static void
check_into(CheckState *cs, const char *path, const char *into)
{
	char	   *why = NULL;
	List	   *names = parse_qualified(into, &why);

	if (names == NULL || list_length(names) > 2)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("%s \"%s\" is not a table name", path, into),
						why ? errdetail("%s", why) : 0,
						errhint("Use table or schema.table; quote unusual names as in SQL.")));
	if (cs->check_sources && list_length(names) == 2 &&
		!OidIsValid(get_namespace_oid(strVal(linitial(names)), true)))
		ereport(ERROR, (errcode(ERRCODE_INVALID_SCHEMA_NAME),
						errmsg("%s \"%s\": schema \"%s\" does not exist", path, into, strVal(linitial(names))),
						errhint("Create it first: CREATE SCHEMA %s;", quote_identifier(strVal(linitial(names))))));
	cs->written = lappend(cs->written, names);
}

/* errcontext of a value check: where in the config the value is. */
static void
config_path_context(void *arg)
{
	errcontext("pipeline config %s", (const char *) arg);
}

/* fit_check_params(algorithm, params, target) with the config path as the error's context. */
static void
check_values_at(const char *path, const char *algorithm, cJSON *params, const char *target)
{
	ErrorContextCallback cb;

	cb.callback = config_path_context;
	cb.arg = (void *) path;
	cb.previous = error_context_stack;
	error_context_stack = &cb;
	fit_check_params(algorithm, params, target);
	error_context_stack = cb.previous;
}

/*
 * The values of a train step's params, as mlpipe.train checks them before
 * reading data (same SQLSTATE, message and HINT); for a search step, each
 * value a list of its space offers and each end of a range, one at a time.
 */
static void
check_algorithm_values(cJSON *step, const char *prefix, const char *algorithm, cJSON *params, bool search)
{
	cJSON	   *target = cJSON_GetObjectItemCaseSensitive(step, "target");
	const char *tgt = cJSON_IsString(target) ? target->valuestring : NULL;
	cJSON	   *choice;

	if (!search)
	{
		check_values_at(psprintf("%s.params", prefix), algorithm, params, tgt);
		return;
	}
	cJSON_ArrayForEach(choice, params)
	{
		static const char *const ends[] = {"min", "max", NULL};
		cJSON	   *v;
		int			i = 0;

		if (cJSON_IsArray(choice))
			cJSON_ArrayForEach(v, choice)
			{
				cJSON	   *one = cJSON_CreateObject();

				cJSON_AddItemToObject(one, choice->string, cJSON_Duplicate(v, true));
				check_values_at(psprintf("%s.space.%s[%d]", prefix, choice->string, i++), algorithm, one, tgt);
				cJSON_Delete(one);
			}
		else if (cJSON_IsObject(choice))
			for (i = 0; ends[i]; i++)
			{
				cJSON	   *end = cJSON_GetObjectItemCaseSensitive(choice, ends[i]);
				cJSON	   *one;

				if (!cJSON_IsNumber(end))
					continue;	/* the search says what a range needs */
				one = cJSON_CreateObject();
				/* an "int" range draws whole numbers */
				if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(choice, "int")))
					cJSON_AddNumberToObject(one, choice->string, rint(end->valuedouble));
				else
					cJSON_AddItemToObject(one, choice->string, cJSON_Duplicate(end, true));
				check_values_at(psprintf("%s.space.%s.%s", prefix, choice->string, ends[i]), algorithm, one, tgt);
				cJSON_Delete(one);
			}
	}
}

/*
 * A train step's params are checked as train checks them (keys and values:
 * fit_check_params, the same messages). A search step's space: its keys
 * against the algorithm's (a misspelt n_estimator fails when the pipeline
 * is created, not when it runs), then each value it offers.
 */
static void
check_algorithm_params(cJSON *step, const char *prefix, bool search)
{
	cJSON	   *alg = cJSON_GetObjectItemCaseSensitive(step, "algorithm");
	cJSON	   *params = cJSON_GetObjectItemCaseSensitive(step, search ? "space" : "params");
	const char *allowed[80];
	int			na = 0,
				i;

	if (!cJSON_IsString(alg))
		return;
	if (!search)
	{
		cJSON	   *none = cJSON_CreateObject();

		check_algorithm_values(step, prefix, alg->valuestring, cJSON_IsObject(params) ? params : none, false);
		cJSON_Delete(none);
		return;
	}
	if (!cJSON_IsObject(params))
		return;
	if (strcmp(alg->valuestring, "kmeans") == 0 || strcmp(alg->valuestring, "minibatch_kmeans") == 0)
	{
		const char *const *keys = kmeans_param_keys(strcmp(alg->valuestring, "minibatch_kmeans") == 0);

		for (i = 0; keys[i]; i++)
			allowed[na++] = keys[i];
	}
	else
	{
		trees_param_keys(alg->valuestring, allowed);
		while (allowed[na])
			na++;
	}
	allowed[na] = NULL;
	params_check_keys(params, psprintf("%s.space (%s)", prefix, alg->valuestring), allowed);
	check_algorithm_values(step, prefix, alg->valuestring, params, true);
}

/* 22032: the value at path is not what its key needs. */
static void
type_error(const char *path, const char *what)
{
	ereport(ERROR, (errcode(ERRCODE_INVALID_JSON_TEXT),
					errmsg("%s must be %s", path, what)));
}

/* One value against its key's spec; the path names it in every error. */
static void
check_value(CheckState *cs, const char *path, const KeySpec *ks, cJSON *v)
{
	cJSON	   *it;
	int			i = 0;

	switch (ks->type)
	{
		case K_STRING:
		case K_MODEL:
		case K_SOURCE:
		case K_INTO:
			if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
				type_error(path, "a non-empty string");
			if (ks->type == K_MODEL && (strchr(v->valuestring, '@') || strlen(v->valuestring) > 200))
				ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								errmsg("%s \"%s\" is not a valid model name", path, v->valuestring),
								errhint("A model name is 1 to 200 characters, without \"@\".")));
			if (ks->type == K_SOURCE)
				check_source(cs, path, v->valuestring);
			if (ks->type == K_INTO)
				check_into(cs, path, v->valuestring);
			break;
		case K_STRINGS:
			if (!cJSON_IsArray(v))
				type_error(path, "an array of strings");
			cJSON_ArrayForEach(it, v)
			{
				if (!cJSON_IsString(it) || it->valuestring[0] == '\0')
					ereport(ERROR, (errcode(ERRCODE_INVALID_JSON_TEXT),
									errmsg("%s[%d] must be a non-empty string", path, i)));
				i++;
			}
			if (i == 0 && ks->required)
				ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								errmsg("%s must name at least one column", path)));
			break;
		case K_OBJECT:
			if (!cJSON_IsObject(v))
				type_error(path, "a JSON object");
			break;
		case K_INT:
			if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble))
				type_error(path, "an integer");
			if (v->valuedouble < ks->lo || v->valuedouble > ks->hi)
				ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								errmsg("%s = %.0f is out of range", path, v->valuedouble),
								errhint("It must be between %d and %d.", ks->lo, ks->hi)));
			break;
		case K_CHOICE:
			if (!cJSON_IsString(v))
				type_error(path, "a string");
			for (i = 0; ks->choices[i]; i++)
				if (strcmp(v->valuestring, ks->choices[i]) == 0)
					return;
			{
				const char *near = params_closest_key(v->valuestring, ks->choices);

				ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								errmsg("%s has unknown value \"%s\"", path, v->valuestring),
								near ? errhint("Did you mean \"%s\"? Allowed: %s.", near, params_join_names(ks->choices))
								: errhint("Allowed: %s.", params_join_names(ks->choices))));
			}
			break;
	}
}

/* The names of a key table, for hints. */
static const char **
key_names(const KeySpec *keys)
{
	int			n = 0,
				i;
	const char **names;

	while (keys[n].key)
		n++;
	names = palloc(sizeof(char *) * (n + 1));
	for (i = 0; i < n; i++)
		names[i] = keys[i].key;
	names[n] = NULL;
	return names;
}

/* The required keys of a key table, for hints. */
static const char **
required_names(const KeySpec *keys)
{
	const char **names = key_names(keys);
	int			n = 0,
				i;

	for (i = 0; keys[i].key; i++)
		if (keys[i].required)
			names[n++] = keys[i].key;
	names[n] = NULL;
	return names;
}

/* Unknown keys in an object: 22023 naming the path, with the nearest allowed key. */
static void
check_keys(cJSON *obj, const char *prefix, const char *const *allowed)
{
	cJSON	   *item;
	int			i;

	cJSON_ArrayForEach(item, obj)
	{
		bool		ok = false;
		const char *near;

		for (i = 0; allowed[i]; i++)
			if (strcmp(item->string, allowed[i]) == 0)
				ok = true;
		if (ok)
			continue;
		near = params_closest_key(item->string, allowed);
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("unknown key %s%s%s in pipeline config", prefix, *prefix ? "." : "",
							   item->string),
						near ? errhint("Did you mean \"%s\"? Allowed keys: %s.", near, params_join_names(allowed))
						: errhint("Allowed keys: %s.", params_join_names(allowed))));
	}
}

/* One step: its kind, then its keys (unknown first, so a typo beats "missing"), then values. */
static void
check_step(CheckState *cs, cJSON *step, int index)
{
	char		prefix[32];
	char	   *path;
	cJSON	   *kind = cJSON_GetObjectItemCaseSensitive(step, "kind");
	const StepSpec *spec = NULL;
	const KeySpec *ks;
	int			i;

	snprintf(prefix, sizeof(prefix), "steps[%d]", index);
	if (!cJSON_IsObject(step))
		type_error(prefix, "a JSON object with a \"kind\"");
	if (kind == NULL)
		ereport(ERROR, (errcode(ERRCODE_INVALID_JSON_TEXT),
						errmsg("%s has no \"kind\"", prefix),
						errhint("kind is one of: %s.", params_join_names(kinds))));
	if (!cJSON_IsString(kind))
		type_error(psprintf("%s.kind", prefix), "a string");
	for (i = 0; steps_spec[i].kind; i++)
		if (strcmp(kind->valuestring, steps_spec[i].kind) == 0)
			spec = &steps_spec[i];
	if (spec == NULL)
	{
		const char *near = params_closest_key(kind->valuestring, kinds);

		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("%s.kind \"%s\" is not a step kind", prefix, kind->valuestring),
						near ? errhint("Did you mean \"%s\"? Step kinds: %s.", near, params_join_names(kinds))
						: errhint("Step kinds: %s.", params_join_names(kinds))));
	}
	check_keys(step, prefix, key_names(spec->keys));
	for (ks = spec->keys; ks->key; ks++)
	{
		cJSON	   *v = params_item(step, ks->key);

		path = psprintf("%s.%s", prefix, ks->key);
		if (v == NULL)
		{
			if (ks->required)
				ereport(ERROR, (errcode(ERRCODE_INVALID_JSON_TEXT),
								errmsg("%s is missing: a %s step needs \"%s\"", path, spec->kind, ks->key),
								errhint("Required keys of a %s step: %s.", spec->kind,
										params_join_names((const char *const *) required_names(spec->keys)))));
			continue;
		}
		check_value(cs, path, ks, v);
	}
	if (strcmp(spec->kind, "train") == 0 || strcmp(spec->kind, "search") == 0)
		check_algorithm_params(step, prefix, strcmp(spec->kind, "search") == 0);
}

/*
 * mlpipe_internal._pipeline_check(config text, check_sources boolean) RETURNS jsonb:
 * parses the config with cJSON and validates it (see the file comment);
 * returns it as jsonb. check_sources looks source relations up as the
 * caller; the registry writer re-checks the shape only (its search_path is
 * pinned, so names would not resolve there).
 */
Datum
mlpipe_pipeline_check(PG_FUNCTION_ARGS)
{
	char	   *t = text_to_cstring(PG_GETARG_TEXT_PP(0));	/* NUL-terminated for the error pointer */
	CheckState	cs = {PG_GETARG_BOOL(1), NIL};
	cJSON	   *root,
			   *steps,
			   *step,
			   *desc;
	int			i = 0;

	root = cJSON_ParseWithLength(t, strlen(t));
	if (root == NULL)
		ereport(ERROR, (errcode(ERRCODE_INVALID_JSON_TEXT),
						errmsg("pipeline config is not valid JSON"),
						errdetail("The parser stopped near: \"%.40s\".",
								  cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() : "")));
	if (!cJSON_IsObject(root))
		ereport(ERROR, (errcode(ERRCODE_INVALID_JSON_TEXT),
						errmsg("pipeline config must be a JSON object with \"steps\""),
						errhint("For example {\"steps\": [{\"kind\": \"train\", ...}]}.")));
	check_keys(root, "", root_keys);
	desc = cJSON_GetObjectItemCaseSensitive(root, "description");
	if (desc && !cJSON_IsString(desc) && !cJSON_IsNull(desc))
		type_error("description", "a string");
	steps = cJSON_GetObjectItemCaseSensitive(root, "steps");
	if (steps == NULL)
		ereport(ERROR, (errcode(ERRCODE_INVALID_JSON_TEXT),
						errmsg("pipeline config has no \"steps\""),
						errhint("For example {\"steps\": [{\"kind\": \"train\", ...}]}.")));
	if (!cJSON_IsArray(steps))
		type_error("steps", "an array of steps");
	if (cJSON_GetArraySize(steps) == 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("pipeline config has no steps")));
	if (cJSON_GetArraySize(steps) > PIPELINE_MAX_STEPS)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("pipeline config has %d steps, more than the limit of %d",
							   cJSON_GetArraySize(steps), PIPELINE_MAX_STEPS)));
	cJSON_ArrayForEach(step, steps)
		check_step(&cs, step, i++);
	PG_RETURN_DATUM(cjson_to_jsonb(root));
}
