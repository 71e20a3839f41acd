/*
 * predict.c: scoring. The name form resolves model_ref once per statement
 * (cached in fn_extra) and takes the decoded model from a small backend-wide
 * cache keyed by (model, version, sha256), so the artifact is decoded once
 * per backend, not per row or per statement. The bytea form decodes once per
 * distinct artifact seen by the call site.
 */
#include "mlpipe.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "storage/proc.h"
#include "storage/sinval.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include <math.h>

PG_FUNCTION_INFO_V1(mlpipe_predict_ref);
PG_FUNCTION_INFO_V1(mlpipe_predict_bytea);
PG_FUNCTION_INFO_V1(mlpipe_predict_label_ref);
PG_FUNCTION_INFO_V1(mlpipe_predict_label_bytea);
PG_FUNCTION_INFO_V1(mlpipe_predict_proba_ref);
PG_FUNCTION_INFO_V1(mlpipe_predict_proba_bytea);
PG_FUNCTION_INFO_V1(mlpipe_score_class_ref);
PG_FUNCTION_INFO_V1(mlpipe_score_label_ref);
PG_FUNCTION_INFO_V1(mlpipe_score_proba_ref);

#define BACKEND_CACHE_SIZE 16

typedef struct CachedModel
{
	MemoryContext cxt;			/* owns model and key; NULL when the slot is free */
	char	   *model;
	int			version;
	char		sha256[65];
	uint64		last_used;
	uint64		generation;		/* changes whenever the slot is refilled */
	MlModel		decoded;
} CachedModel;

static CachedModel backend_cache[BACKEND_CACHE_SIZE];
static uint64 cache_clock = 0;
static uint64 cache_generation = 0;

/*
 * Per call site: the reference last resolved, the cache slot it resolved to
 * and that slot's generation. A call site re-resolves when the reference
 * text changes, when the slot was refilled by another call site, or when a
 * later command of the transaction may have moved an alias.
 */
typedef struct RefCache
{
	text	   *ref;			/* 4-byte-header copy */
	CachedModel *slot;
	uint64		generation;
	CommandId	command;
	double	   *scratch;		/* sized for the slot's model */
	size_t		scratch_len;
	char	   *model_name;
	int			version;
	uint64		epoch;			/* registry_epoch when resolved */
	PredictSite site;
} RefCache;

/*
 * Decodes an artifact into m, its memory in cxt; a corrupt artifact is
 * XX001. pe, when not NULL, gets the env m was decoded in, for further
 * core calls on m; `what` names the work in progress lines.
 */
void
model_decode(MemoryContext cxt, bytea *artifact, const char *what, PgEnv *pe, MlModel *m)
{
	PgEnv		local;
	MlError		err = {0};

	if (pe == NULL)
		pe = &local;
	pg_env_init(pe, cxt, what, false);
	if (ml_model_read(&pe->env, (uint8_t *) VARDATA_ANY(artifact), VARSIZE_ANY_EXHDR(artifact), m, &err) != ML_OK)
		pg_report_ml_error(&err);
}

/* The cached decoded model for (model, version, sha256), or NULL. */
static CachedModel *
backend_cache_lookup(const char *model, int version, const char *sha)
{
	int			i;

	for (i = 0; i < BACKEND_CACHE_SIZE; i++)
	{
		CachedModel *c = &backend_cache[i];

		if (c->cxt && c->version == version && strcmp(c->model, model) == 0 &&
			strcmp(c->sha256, sha) == 0)
		{
			c->last_used = ++cache_clock;
			return c;
		}
	}
	return NULL;
}

/* Decodes artifact into a free or least recently used cache slot. */
static CachedModel *
backend_cache_insert(const char *model, int version, const char *sha, bytea *artifact)
{
	CachedModel *slot = &backend_cache[0];
	MemoryContext cxt;
	int			i;

	for (i = 0; i < BACKEND_CACHE_SIZE; i++)
	{
		if (backend_cache[i].cxt == NULL)
		{
			slot = &backend_cache[i];
			break;
		}
		if (backend_cache[i].last_used < slot->last_used)
			slot = &backend_cache[i];
	}
	if (slot->cxt)
		MemoryContextDelete(slot->cxt);
	slot->cxt = NULL;
	/* Decode under the caller's context, so an error frees it; keep it only on success. */
	cxt = AllocSetContextCreate(CurrentMemoryContext, "mlpipe model cache", ALLOCSET_SMALL_SIZES);
	model_decode(cxt, artifact, "decode", NULL, &slot->decoded);
	MemoryContextSetParent(cxt, TopMemoryContext);
	slot->model = MemoryContextStrdup(cxt, model);
	slot->version = version;
	strlcpy(slot->sha256, sha, sizeof(slot->sha256));
	slot->last_used = ++cache_clock;
	slot->generation = ++cache_generation;
	slot->cxt = cxt;
	return slot;
}

static SPIPlanPtr resolve_plan = NULL;
static const char *resolve_plan_schema = NULL;	/* the schema it calls */

/*
 * The backend's resolved references, across statements: model_ref text ->
 * (model, version, sha256). A one-row predict spent about half its time in
 * the SPI lookup (two SECURITY DEFINER plpgsql functions) that used to run
 * at every statement. An entry is valid while registry_epoch has not moved
 * since it was resolved; the epoch moves whenever a relcache invalidation
 * names mlpipe.models, model_versions or aliases (or resets the relcache).
 * Every statement that writes those tables sends one, through the
 * statement-level trigger mlpipe_internal._registry_changed (predict_support.c):
 * other backends receive
 * it once the writer commits (ref_cache_get accepts pending invalidations
 * at the first call of each statement), this backend at the next command,
 * and again if the writer's transaction aborts. So the next statement after
 * a promote, a rollback or a new version, in any session, resolves anew.
 */
#define REF_KEY_LEN 512

typedef struct RefEntry
{
	char		ref[REF_KEY_LEN];	/* hash key: the model_ref text */
	char		model[REF_KEY_LEN];
	int			version;
	char		sha256[65];
	uint64		epoch;
	/* the statement that last used this entry (see ref_used_this_statement) */
	LocalTransactionId stmt_lxid;
	CommandId	stmt_cmd;
	TimestampTz stmt_ts;
} RefEntry;

static HTAB *ref_entries = NULL;
static uint64 registry_epoch = 1;
static bool registry_callback_set = false;
static Oid	registry_relids[3] = {InvalidOid, InvalidOid, InvalidOid};

/* Relcache callback: a registry table (or everything) changed. */
static void
registry_relcache_callback(Datum arg, Oid relid)
{
	int			i;

	if (relid == InvalidOid)
	{
		registry_epoch++;
		return;
	}
	for (i = 0; i < lengthof(registry_relids); i++)
		if (registry_relids[i] == relid)
		{
			registry_epoch++;
			/* Looked up again: the extension may have been dropped and recreated. */
			memset(registry_relids, 0, sizeof(registry_relids));
			return;
		}
}

/* True when the registry tables' OIDs are known (looked up when needed). */
static bool
registry_relids_known(void)
{
	static const char *const names[3] = {"models", "model_versions", "aliases"};
	Oid			nsp;
	int			i;

	if (!registry_callback_set)
	{
		CacheRegisterRelcacheCallback(registry_relcache_callback, (Datum) 0);
		registry_callback_set = true;
	}
	if (OidIsValid(registry_relids[0]) && OidIsValid(registry_relids[1]) &&
		OidIsValid(registry_relids[2]))
		return true;
	nsp = get_namespace_oid("mlpipe", true);
	if (!OidIsValid(nsp))
		return false;
	for (i = 0; i < lengthof(names); i++)
	{
		registry_relids[i] = get_relname_relid(names[i], nsp);
		if (!OidIsValid(registry_relids[i]))
			return false;
	}
	return true;
}

/*
 * The registry's epoch: it moves whenever a relcache invalidation names a
 * registry table; 0 while the tables are unknown (grouped routing reloads
 * its list of grouped models when it moves, predict_group.c).
 */
uint64
predict_registry_epoch(void)
{
	return registry_relids_known() ? registry_epoch : 0;
}

/* True when e was used by the current statement. */
static bool
ref_entry_this_statement(const RefEntry *e)
{
	return e->stmt_lxid == MyProc->lxid && e->stmt_cmd == GetCurrentCommandId(false) &&
		e->stmt_ts == GetCurrentStatementStartTimestamp();
}

/* Records that the current statement uses e. */
static void
ref_entry_mark(RefEntry *e)
{
	e->stmt_lxid = MyProc->lxid;
	e->stmt_cmd = GetCurrentCommandId(false);
	e->stmt_ts = GetCurrentStatementStartTimestamp();
}

/* The reference's valid entry, or NULL. */
static RefEntry *
ref_entry_find(const char *ref)
{
	RefEntry   *e;

	if (ref_entries == NULL || strlen(ref) >= REF_KEY_LEN)
		return NULL;
	e = hash_search(ref_entries, ref, HASH_FIND, NULL);
	if (e == NULL)
		return NULL;
	if (e->epoch != registry_epoch && !ref_entry_this_statement(e))
		return NULL;
	ref_entry_mark(e);
	return e;
}

/*
 * The backend's entry for ref when a call site of the current statement has
 * already used it. Every call site of a statement must score with the same
 * version: a promote that commits while the statement runs becomes visible
 * to snapshots before its invalidation arrives, so a second call site that
 * took in the invalidation and resolved anew could see a newer version than
 * the first (a torn read). The first resolution of a statement therefore
 * holds for the rest of it.
 */
static RefEntry *
ref_used_this_statement(text *ref)
{
	char		key[REF_KEY_LEN];
	RefEntry   *e;

	if (ref_entries == NULL || VARSIZE_ANY_EXHDR(ref) >= REF_KEY_LEN)
		return NULL;
	memcpy(key, VARDATA_ANY(ref), VARSIZE_ANY_EXHDR(ref));
	key[VARSIZE_ANY_EXHDR(ref)] = '\0';
	e = hash_search(ref_entries, key, HASH_FIND, NULL);
	return e != NULL && ref_entry_this_statement(e) ? e : NULL;
}

/*
 * Remembers a resolution made at epoch. Not under REPEATABLE READ or
 * SERIALIZABLE: their snapshot may predate a change whose invalidation has
 * already moved the epoch, and the entry would outlive the transaction.
 */
static void
ref_entry_store(const char *ref, const char *model, int version, const char *sha, uint64 epoch)
{
	RefEntry   *e;

	if (IsolationUsesXactSnapshot() || strlen(ref) >= REF_KEY_LEN ||
		strlen(model) >= REF_KEY_LEN || epoch != registry_epoch || !registry_relids_known())
		return;
	if (ref_entries == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = REF_KEY_LEN;
		ctl.entrysize = sizeof(RefEntry);
		ref_entries = hash_create("mlpipe model references", 64, &ctl, HASH_ELEM | HASH_STRINGS);
	}
	if (hash_get_num_entries(ref_entries) >= 1024)
	{
		hash_destroy(ref_entries);
		ref_entries = NULL;
		ref_entry_store(ref, model, version, sha, epoch);
		return;
	}
	e = hash_search(ref_entries, ref, HASH_ENTER, NULL);
	strlcpy(e->model, model, REF_KEY_LEN);
	e->version = version;
	strlcpy(e->sha256, sha, sizeof(e->sha256));
	e->epoch = epoch;
	ref_entry_mark(e);
}


/* Resolves a reference through the registry and returns its cache slot. */
static CachedModel *
resolve_model_spi(text *ref, char **model_out, int *version_out)
{
	Oid			argtypes[2] = {TEXTOID, INT4OID};
	Datum		args[2];
	bool		isnull;
	char	   *model,
			   *sha;
	int			version;
	CachedModel *c;
	MemoryContext caller = CurrentMemoryContext;
	uint64		epoch = registry_epoch; /* before the lookup: a change during it wins */

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/*
	 * Planned once per backend (a one-row predict is mostly this lookup),
	 * and again when ALTER EXTENSION UPDATE moved the internal functions.
	 */
	if (resolve_plan != NULL && strcmp(resolve_plan_schema, mlpipe_internal_schema()) != 0)
	{
		SPI_freeplan(resolve_plan);
		resolve_plan = NULL;
	}
	if (resolve_plan == NULL)
	{
		SPIPlanPtr	plan;

		resolve_plan_schema = mlpipe_internal_schema();
		plan = SPI_prepare(psprintf("SELECT model, version, sha256 FROM %s._resolve_key($1)",
									resolve_plan_schema), 1, argtypes);

		if (plan == NULL || SPI_keepplan(plan) != 0)
			elog(ERROR, "could not prepare the model lookup");
		resolve_plan = plan;
	}
	args[0] = PointerGetDatum(ref);
	if (SPI_execute_plan(resolve_plan, args, NULL, true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not resolve model reference");
	model = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	version = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	sha = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
	if (model == NULL || sha == NULL)
		elog(ERROR, "could not resolve model reference");
	ref_entry_store(text_to_cstring(ref), model, version, sha, epoch);
	c = backend_cache_lookup(model, version, sha);
	if (c == NULL)
	{
		bytea	   *artifact;

		args[0] = CStringGetTextDatum(model);
		args[1] = Int32GetDatum(version);
		if (SPI_execute_with_args(psprintf("SELECT %s._artifact_at($1, $2)", mlpipe_internal_schema()),
								  2, argtypes, args,
								  NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "could not read the artifact of %s@%d", model, version);
		artifact = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		if (isnull)
			elog(ERROR, "artifact of %s@%d is NULL", model, version);
		c = backend_cache_insert(model, version, sha, artifact);
	}
	*model_out = MemoryContextStrdup(caller, model);
	*version_out = version;
	SPI_finish();
	return c;
}

/*
 * Resolves a reference and returns its cache slot: from the backend's
 * entries when still valid and the model still decoded, else through the
 * registry (SPI).
 */
static CachedModel *
resolve_model(text *ref, char **model_out, int *version_out)
{
	char	   *key = text_to_cstring(ref);
	RefEntry   *e = ref_entry_find(key);

	pfree(key);
	if (e != NULL)
	{
		CachedModel *c = backend_cache_lookup(e->model, e->version, e->sha256);

		if (c != NULL)
		{
			*model_out = pstrdup(e->model);
			*version_out = e->version;
			return c;
		}
	}
	return resolve_model_spi(ref, model_out, version_out);
}

/*
 * The model for a reference at this call site: resolved at the first row of
 * a statement (from the backend's entries when the registry has not changed
 * since), and again only when the reference text changes.
 */
static RefCache *
ref_cache_get(FunctionCallInfo fcinfo, text *ref, void **slot)
{
	RefCache   *rc = *slot;
	MemoryContext old;

	CommandId	command = GetCurrentCommandId(false);

	/*
	 * Once per statement: take in registry changes other sessions committed.
	 * Within a statement the call site keeps what it resolved, as before.
	 */
	RefEntry   *memo = NULL;

	if (rc == NULL || rc->command != command)
	{
		memo = ref_used_this_statement(ref);
		if (memo == NULL)
			AcceptInvalidationMessages();
	}
	if (rc != NULL && rc->ref != NULL &&
		(rc->command == command || rc->epoch == registry_epoch) &&
		rc->slot->cxt != NULL && rc->slot->generation == rc->generation &&
		VARSIZE_ANY_EXHDR(rc->ref) == VARSIZE_ANY_EXHDR(ref) &&
		memcmp(VARDATA_ANY(rc->ref), VARDATA_ANY(ref), VARSIZE_ANY_EXHDR(ref)) == 0 &&
		(memo == NULL || (memo->version == rc->version && strcmp(memo->model, rc->model_name) == 0)))
	{
		if (rc->command != command && memo == NULL)
		{
			/* the statement's first use: later call sites of it follow this one */
			char	   *key = text_to_cstring(ref);

			(void) ref_entry_find(key);
			pfree(key);
		}
		rc->command = command;
		rc->slot->last_used = ++cache_clock;
		return rc;
	}
	old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
	if (rc == NULL)
		rc = palloc0(sizeof(RefCache));
	else
	{
		/* Drop what the previous reference owned before resolving anew. */
		if (rc->ref)
			pfree(rc->ref);
		if (rc->model_name)
			pfree(rc->model_name);
		rc->ref = NULL;
		rc->model_name = NULL;
	}
	*slot = rc;
	rc->epoch = registry_epoch; /* before resolving: a change during it wins */
	rc->slot = resolve_model(ref, &rc->model_name, &rc->version);
	rc->generation = rc->slot->generation;
	rc->command = command;
	if (rc->scratch == NULL || rc->scratch_len < Max(rc->slot->decoded.scratch_len, 1))
	{
		if (rc->scratch)
			pfree(rc->scratch);
		rc->scratch_len = Max(rc->slot->decoded.scratch_len, 1);
		rc->scratch = palloc(sizeof(double) * rc->scratch_len);
	}
	rc->ref = (text *) PG_DETOAST_DATUM_COPY(PointerGetDatum(ref));
	rc->site.model = &rc->slot->decoded;
	rc->site.scratch = rc->scratch;
	rc->site.model_gen = rc->generation;
	MemoryContextSwitchTo(old);
	return rc;
}

/* The decoded model a reference (name or name@version) resolves to. */
const MlModel *
model_cache_get_ref(FunctionCallInfo fcinfo, text *ref)
{
	return &ref_cache_get(fcinfo, ref, &fcinfo->flinfo->fn_extra)->slot->decoded;
}

/* The call site's model for a reference (see PredictSite). */
PredictSite *
predict_site_ref(FunctionCallInfo fcinfo, text *ref)
{
	return &ref_cache_get(fcinfo, ref, &fcinfo->flinfo->fn_extra)->site;
}

/* predict_site_ref with the call site's cache in *slot instead of fn_extra (predict_group.c). */
PredictSite *
predict_site_ref_in(FunctionCallInfo fcinfo, text *ref, void **slot)
{
	return &ref_cache_get(fcinfo, ref, slot)->site;
}

/* The model's feature names for messages, the first 20 of them. */
static char *
feature_list(const MlModel *m)
{
	StringInfoData s;
	uint32		i;

	initStringInfo(&s);
	for (i = 0; i < m->meta.n_features && i < 20; i++)
		appendStringInfo(&s, "%s%s", i ? ", " : "", m->meta.feature_names[i]);
	if (m->meta.n_features > 20)
		appendStringInfo(&s, ", ... (%u in all)", m->meta.n_features);
	return s.data;
}

/*
 * Checks a float8[] against the model and returns its values: no copy
 * unless the array has NULL elements, which become NaN (missing) for models
 * that route missing values.
 */
static const double *
feature_values(const MlModel *m, ArrayType *a)
{
	int			n;

	if (ARR_NDIM(a) > 1)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("features must be a one-dimensional array")));
	n = ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));
	if (n != (int) m->meta.n_features)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("model expects %u features, got %d", m->meta.n_features, n),
						errhint("The features are, in order: %s.", feature_list(m))));
	if (ARR_HASNULL(a) && array_contains_nulls(a))
	{
		Datum	   *ev;
		bool	   *en;
		int			ne,
					i;
		double	   *x;

		deconstruct_array(a, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &ev, &en, &ne);
		if (!ml_model_handles_missing(m))
			for (i = 0; i < ne; i++)
				if (en[i])
					ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
									errmsg("feature %d (\"%s\") is NULL", i + 1, m->meta.feature_names[i]),
									errhint("This model needs a value for every feature: filter the row out "
											"or impute it (params.preprocess when training).")));
		x = palloc(sizeof(double) * ne);
		for (i = 0; i < ne; i++)
			x[i] = en[i] ? NAN : DatumGetFloat8(ev[i]);
		return x;
	}
	return (const double *) ARR_DATA_PTR(a);
}

/* A float8[] argument as the model's features (checked as predict checks them). */
const double *
predict_array_features(const MlModel *m, ArrayType *a)
{
	return feature_values(m, a);
}

/* The prediction for one float8[] row (class index, value or cluster); proba when not NULL. */
static double
predict_one(const MlModel *m, ArrayType *a, double *scratch, double *proba)
{
	MlError		err;
	double		out;

	/* not `= {0}`: that clears the 512-byte message at every row */
	err.code = ML_OK;
	err.msg[0] = '\0';
	if (ml_model_predict(m, feature_values(m, a), scratch, &out, proba, &err) != ML_OK)
		pg_report_ml_error(&err);
	return out;
}

/* 42809 naming fn unless m is a classification model. */
void
predict_require_classifier(const MlModel *m, const char *fn)
{
	if (m->meta.task != ML_TASK_CLASSIFY)
		ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
						errmsg("%s needs a classification model; this one is %s",
							   fn, m->meta.task == ML_TASK_REGRESS ? "a regression model" : "a clustering model"),
						errhint("Use mlpipe.predict for its output.")));
}

/* predict_label for one float8[] row: the class label as text. */
static Datum
label_datum(const MlModel *m, ArrayType *a, double *scratch)
{
	int			c;

	predict_require_classifier(m, "predict_label");
	c = (int) predict_one(m, a, scratch, NULL);
	return CStringGetTextDatum(m->meta.class_labels[c]);
}

/* predict_proba for one float8[] row: a float8[] in class order. */
static Datum
proba_datum(const MlModel *m, ArrayType *a, double *scratch)
{
	uint32		k = m->meta.n_classes;
	double	   *p;
	Datum	   *d;
	uint32		i;

	predict_require_classifier(m, "predict_proba");
	p = palloc(sizeof(double) * k);
	d = palloc(sizeof(Datum) * k);
	predict_one(m, a, scratch, p);
	for (i = 0; i < k; i++)
		d[i] = Float8GetDatum(p[i]);
	return PointerGetDatum(construct_array(d, k, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/* mlpipe.predict(ref, float8[]). */
Datum
mlpipe_predict_ref(PG_FUNCTION_ARGS)
{
	RefCache   *rc = ref_cache_get(fcinfo, PG_GETARG_TEXT_PP(0), &fcinfo->flinfo->fn_extra);
	ArrayType  *a = PG_GETARG_ARRAYTYPE_P(1);

	PG_RETURN_FLOAT8(predict_one(&rc->slot->decoded, a, rc->scratch, NULL));
}

/* mlpipe.predict_label(ref, float8[]). */
Datum
mlpipe_predict_label_ref(PG_FUNCTION_ARGS)
{
	RefCache   *rc = ref_cache_get(fcinfo, PG_GETARG_TEXT_PP(0), &fcinfo->flinfo->fn_extra);

	PG_RETURN_DATUM(label_datum(&rc->slot->decoded, PG_GETARG_ARRAYTYPE_P(1), rc->scratch));
}

/* mlpipe.predict_proba(ref, float8[]). */
Datum
mlpipe_predict_proba_ref(PG_FUNCTION_ARGS)
{
	RefCache   *rc = ref_cache_get(fcinfo, PG_GETARG_TEXT_PP(0), &fcinfo->flinfo->fn_extra);

	PG_RETURN_DATUM(proba_datum(&rc->slot->decoded, PG_GETARG_ARRAYTYPE_P(1), rc->scratch));
}

/*
 * The last row a classifier scored through the _score_* accessors, per
 * backend: predict_table asks for the class, the label and the
 * probabilities of each row through three calls with the same arguments,
 * and the second and third find the row here instead of scoring it again.
 * Keyed by the cache slot's model and generation and the bytes of the
 * features array as passed, so a hit is exactly the result a new
 * evaluation would give, found without checking the array again.
 */
typedef struct ScoreMemo
{
	MemoryContext cxt;
	const MlModel *model;		/* NULL: empty */
	uint64		generation;
	uint32		n_classes;
	ArrayType  *raw;			/* the features array of the last row */
	Size		raw_len;
	Size		raw_cap;
	double	   *proba;
	double		cls;
	/* the model's class labels as text (_score_label), built once per model */
	MemoryContext label_cxt;
	const MlModel *label_model;
	uint64		label_generation;
	text	  **labels;
} ScoreMemo;

static ScoreMemo score_memo;

/* Scores a row for the _score_* accessors, or finds it in the memo. */
static const ScoreMemo *
score_row(FunctionCallInfo fcinfo, const char *fn)
{
	RefCache   *rc = ref_cache_get(fcinfo, PG_GETARG_TEXT_PP(0), &fcinfo->flinfo->fn_extra);
	const MlModel *m = &rc->slot->decoded;
	ArrayType  *a = PG_GETARG_ARRAYTYPE_P(1);
	Size		len = VARSIZE(a);
	const double *x;
	MlError		err;
	ScoreMemo  *sm = &score_memo;

	if (sm->model == m && sm->generation == rc->generation && sm->raw_len == len &&
		memcmp(sm->raw, a, len) == 0)
		return sm;
	predict_require_classifier(m, fn);
	x = feature_values(m, a);
	if (sm->cxt == NULL)
		sm->cxt = AllocSetContextCreate(TopMemoryContext, "mlpipe score memo", ALLOCSET_SMALL_SIZES);
	if (sm->raw == NULL || sm->raw_cap < len || sm->n_classes != m->meta.n_classes)
	{
		MemoryContextReset(sm->cxt);
		sm->n_classes = m->meta.n_classes;
		sm->raw_cap = Max(len, sm->raw_cap);
		sm->raw = MemoryContextAlloc(sm->cxt, sm->raw_cap);
		sm->proba = MemoryContextAlloc(sm->cxt, sizeof(double) * Max(sm->n_classes, 1));
	}
	sm->model = NULL;			/* empty until this row is scored */
	err.code = ML_OK;			/* as predict_one: no 512-byte clear a row */
	err.msg[0] = '\0';
	if (ml_model_predict(m, x, rc->scratch, &sm->cls, sm->proba, &err) != ML_OK)
		pg_report_ml_error(&err);
	memcpy(sm->raw, a, len);
	sm->raw_len = len;
	sm->model = m;
	sm->generation = rc->generation;
	return sm;
}

/* _score_class(ref, x): mlpipe.predict of a classifier, memoised (see score_row). */
Datum
mlpipe_score_class_ref(PG_FUNCTION_ARGS)
{
	PG_RETURN_FLOAT8(score_row(fcinfo, "_score_class")->cls);
}

/* The memo's model's class labels as text, built at its first label. */
static text *const *
memo_labels(ScoreMemo *sm)
{
	uint32		c;

	if (sm->label_model == sm->model && sm->label_generation == sm->generation)
		return sm->labels;
	if (sm->label_cxt == NULL)
		sm->label_cxt = AllocSetContextCreate(TopMemoryContext, "mlpipe score labels",
											  ALLOCSET_SMALL_SIZES);
	MemoryContextReset(sm->label_cxt);
	sm->label_model = NULL;
	sm->labels = MemoryContextAlloc(sm->label_cxt, sizeof(text *) * Max(sm->n_classes, 1));
	for (c = 0; c < sm->n_classes; c++)
	{
		const char *l = sm->model->meta.class_labels[c];
		Size		n = strlen(l);

		sm->labels[c] = MemoryContextAlloc(sm->label_cxt, VARHDRSZ + n);
		SET_VARSIZE(sm->labels[c], VARHDRSZ + n);
		memcpy(VARDATA(sm->labels[c]), l, n);
	}
	sm->label_model = sm->model;
	sm->label_generation = sm->generation;
	return sm->labels;
}

/* _score_label(ref, x): mlpipe.predict_label, memoised; a copy of the prebuilt text. */
Datum
mlpipe_score_label_ref(PG_FUNCTION_ARGS)
{
	const ScoreMemo *sm = score_row(fcinfo, "_score_label");
	const text *l = memo_labels(&score_memo)[(int) sm->cls];
	text	   *t = palloc(VARSIZE(l));

	memcpy(t, l, VARSIZE(l));
	PG_RETURN_TEXT_P(t);
}

/*
 * _score_proba(ref, x): mlpipe.predict_proba, memoised; the float8[] built
 * directly, as construct_array lays it out (one dimension, no NULLs).
 */
Datum
mlpipe_score_proba_ref(PG_FUNCTION_ARGS)
{
	const ScoreMemo *sm = score_row(fcinfo, "_score_proba");
	Size		len = ARR_OVERHEAD_NONULLS(1) + sizeof(double) * sm->n_classes;
	ArrayType  *r = palloc0(len);

	SET_VARSIZE(r, len);
	r->ndim = 1;
	r->dataoffset = 0;
	r->elemtype = FLOAT8OID;
	ARR_DIMS(r)[0] = (int) sm->n_classes;
	ARR_LBOUND(r)[0] = 1;
	memcpy(ARR_DATA_PTR(r), sm->proba, sizeof(double) * sm->n_classes);
	PG_RETURN_ARRAYTYPE_P(r);
}

/*
 * Per call site of the bytea form: the artifact last decoded, keyed by its
 * length and header (magic, format, kind, flags, payload length and the
 * CRC32C of the whole artifact), not by its bytes: comparing a 105 KB
 * artifact on every row cost more than scoring it (issues #11, #13). The
 * datum pointer alone is no key: per-row values are freed and the next
 * row's artifact (often of the same size) may land at the same address.
 * Two artifacts of one length with equal headers differ with probability
 * about 2^-32 (an accidental CRC32C collision).
 */
#define BLOB_KEY_BYTES 20		/* the artifact header, see src/core/artifact.h */

typedef struct BlobCache
{
	Size		size;			/* VARSIZE_ANY_EXHDR of the artifact */
	uint8		key[BLOB_KEY_BYTES];	/* its first bytes (the header) */
	bytea	   *blob;			/* a full copy, only for artifacts shorter than the key */
	MemoryContext cxt;
	MlModel		model;
	double	   *scratch;
	PredictSite site;
} BlobCache;

static uint64 blob_generation = 0;

/* True when blob is the artifact bc decoded (same length and header). */
static bool
blob_cache_matches(const BlobCache *bc, bytea *blob)
{
	Size		size = VARSIZE_ANY_EXHDR(blob);

	if (bc == NULL || bc->size != size)
		return false;
	if (size < BLOB_KEY_BYTES)
		return memcmp(VARDATA_ANY(bc->blob), VARDATA_ANY(blob), size) == 0;
	return memcmp(bc->key, VARDATA_ANY(blob), BLOB_KEY_BYTES) == 0;
}

/* The call site's decoded model for an artifact, decoded again only when the artifact changes. */
static BlobCache *
blob_cache_get(FunctionCallInfo fcinfo, bytea *blob)
{
	BlobCache  *bc = fcinfo->flinfo->fn_extra;

	if (!blob_cache_matches(bc, blob))
	{
		MemoryContext cxt = AllocSetContextCreate(fcinfo->flinfo->fn_mcxt, "mlpipe blob model",
												  ALLOCSET_SMALL_SIZES);
		MlModel		m;
		Size		size = VARSIZE_ANY_EXHDR(blob);

		model_decode(cxt, blob, "decode", NULL, &m);
		if (bc == NULL)
			bc = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(BlobCache));
		else
			MemoryContextDelete(bc->cxt);
		bc->cxt = cxt;
		bc->model = m;
		bc->size = size;
		bc->blob = NULL;
		if (size < BLOB_KEY_BYTES)
		{
			bc->blob = (bytea *) MemoryContextAlloc(cxt, VARSIZE_ANY(blob));
			memcpy(bc->blob, blob, VARSIZE_ANY(blob));
		}
		else
			memcpy(bc->key, VARDATA_ANY(blob), BLOB_KEY_BYTES);
		bc->scratch = MemoryContextAlloc(cxt, sizeof(double) * Max(m.scratch_len, 1));
		bc->site.model = &bc->model;
		bc->site.scratch = bc->scratch;
		bc->site.model_gen = ++blob_generation;
		fcinfo->flinfo->fn_extra = bc;
	}
	return bc;
}

/* The call site's model for an artifact (see PredictSite). */
PredictSite *
predict_site_blob(FunctionCallInfo fcinfo, bytea *blob)
{
	return &blob_cache_get(fcinfo, blob)->site;
}

/* mlpipe.predict(bytea, float8[]). */
Datum
mlpipe_predict_bytea(PG_FUNCTION_ARGS)
{
	BlobCache  *bc = blob_cache_get(fcinfo, PG_GETARG_BYTEA_PP(0));

	PG_RETURN_FLOAT8(predict_one(&bc->model, PG_GETARG_ARRAYTYPE_P(1), bc->scratch, NULL));
}

/* mlpipe.predict_label(bytea, float8[]). */
Datum
mlpipe_predict_label_bytea(PG_FUNCTION_ARGS)
{
	BlobCache  *bc = blob_cache_get(fcinfo, PG_GETARG_BYTEA_PP(0));

	PG_RETURN_DATUM(label_datum(&bc->model, PG_GETARG_ARRAYTYPE_P(1), bc->scratch));
}

/* mlpipe.predict_proba(bytea, float8[]). */
Datum
mlpipe_predict_proba_bytea(PG_FUNCTION_ARGS)
{
	BlobCache  *bc = blob_cache_get(fcinfo, PG_GETARG_BYTEA_PP(0));

	PG_RETURN_DATUM(proba_datum(&bc->model, PG_GETARG_ARRAYTYPE_P(1), bc->scratch));
}
