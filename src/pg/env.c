/*
 * env.c: the MlEnv that src/core runs in inside a backend. Memory comes from
 * a private context (an error or cancel frees all of it at once); check()
 * honours cancel and statement_timeout and prints progress (progress.c).
 * Also the glue's hash tables keyed by a C string (pg_cstring_htab).
 */
#include "mlpipe.h"

#include "common/hashfn.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include <math.h>

/* Microseconds since 2000, for progress timing. */
int64
pg_env_now_us(void)
{
	return (int64) GetCurrentTimestamp();
}

/*
 * palloc aligns to 8 bytes; core may use 16-byte vector types, so every
 * block is aligned to a cache line, with the palloc'd address stored just
 * before it for pg_env_free.
 */
#define PG_ENV_ALIGN 64

/* MlEnv.alloc: PG_ENV_ALIGN-aligned memory in pe->mcxt, NULL when it cannot be had. */
static void *
pg_env_alloc(void *ctx, size_t size)
{
	PgEnv	   *pe = ctx;
	char	   *raw;
	uintptr_t	aligned;

	if (size > SIZE_MAX - PG_ENV_ALIGN - sizeof(void *))
		return NULL;
	raw = MemoryContextAllocExtended(pe->mcxt, size + PG_ENV_ALIGN + sizeof(void *),
									 MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
	if (raw == NULL)
		return NULL;
	aligned = ((uintptr_t) raw + sizeof(void *) + PG_ENV_ALIGN - 1) & ~(uintptr_t) (PG_ENV_ALIGN - 1);
	((void **) aligned)[-1] = raw;
	return (void *) aligned;
}

/* MlEnv.free: releases what pg_env_alloc returned. */
static void
pg_env_free(void *ctx, void *ptr)
{
	pfree(((void **) ptr)[-1]);
}

/*
 * The main loop of each training algorithm: the stage core reports it
 * under (with units done / total), what a unit is, what the value is, and
 * whether it may stop early (so the estimate is an upper one).
 */
typedef struct LoopKind
{
	const char *what;
	const char *stage;
	const char *unit;
	const char *value_name;
	bool		capped;
} LoopKind;

static const LoopKind loop_kinds[] = {
	{"kmeans", "kmeans", "iteration", "squared centre shift", true},
	{"minibatch_kmeans", "minibatch kmeans", "pass", "smoothed batch inertia", true},
	{"decision_tree", "decision_tree", "tree", NULL, false},
	{"random_forest", "random_forest", "tree", NULL, false},
	{"gbt", "gbt", "round", "validation loss", true},
	{NULL, NULL, NULL, NULL, false}
};

/*
 * Takes in a report of the main loop: done units of total, at now. A count
 * lower than the last starts a new run of the loop (k-means' next init).
 */
static void
loop_observe(PgEnv *pe, int done, int total, double value, int64 now)
{
	if (pe->loop_total == 0 || done < pe->loop_done)
	{
		pe->loop_first_done = done;
		pe->loop_first_us = now;
		pe->loop_done_us = now;
	}
	else if (done > pe->loop_done)
		pe->loop_done_us = now;
	pe->loop_total = total;
	pe->loop_done = done;
	pe->loop_value = value;
}

/*
 * The main loop's line: units done / total, the elapsed time, the value
 * when core has one, and the time left at the pace of the units timed so
 * far (from when the loop was first seen to when its last unit was done),
 * less the time the unit in progress has run.
 */
static void
loop_notice(PgEnv *pe, int64 now)
{
	int			timed = pe->loop_done - pe->loop_first_done;
	char		est[64] = "";

	if (timed > 0 && pe->loop_total > pe->loop_done)
	{
		double		per = (pe->loop_done_us - pe->loop_first_us) / 1e6 / timed;
		double		left = per * (pe->loop_total - pe->loop_done) - (now - pe->loop_done_us) / 1e6;

		snprintf(est, sizeof(est), pe->loop_capped ? ", at most %.1f s left" : ", about %.1f s left",
				 left > 0 ? left : 0.0);
	}
	if (pe->value_name && !isnan(pe->loop_value))
		progress_notice("%s: %s %d/%d done, %s %.6g, %.1f s elapsed%s", pe->what, pe->loop_unit,
						pe->loop_done, pe->loop_total, pe->value_name, pe->loop_value,
						(now - pe->start_us) / 1e6, est);
	else
		progress_notice("%s: %s %d/%d done, %.1f s elapsed%s", pe->what, pe->loop_unit,
						pe->loop_done, pe->loop_total, (now - pe->start_us) / 1e6, est);
}

/*
 * MlEnv.check: honours cancel and timeouts; with mlpipe.progress, a NOTICE
 * at most once per mlpipe.progress_interval (and when the last unit of the
 * main loop is done, if a line went out before: a short training is silent). While the main loop runs, every check reports it;
 * other stages (initialisation, preprocessing, metrics) report themselves.
 */
static int
pg_env_check(void *ctx, const char *stage, int iter, int max_iter, double value)
{
	PgEnv	   *pe = ctx;
	int64		now;
	bool		in_loop;
	bool		last;

	CHECK_FOR_INTERRUPTS();
	if (!mlpipe_progress)
		return 0;
	now = pg_env_now_us();
	in_loop = pe->loop_stage && strcmp(stage, pe->loop_stage) == 0 && max_iter > 0;
	/* the closing line only for a training that has already said something */
	last = in_loop && iter == max_iter && pe->loop_done < max_iter &&
		pe->last_notice_us != pe->start_us;
	if (in_loop)
		loop_observe(pe, iter, max_iter, value, now);
	else if (pe->stage == NULL || strcmp(stage, pe->stage) != 0)
	{
		pe->stage = stage;
		pe->stage_first = iter;
		pe->stage_start_us = now;
	}
	if (!progress_due(&pe->last_notice_us, now) && !last)
		return 0;
	if (in_loop || (pe->loop_total > 0 && pe->loop_done < pe->loop_total &&
					strcmp(stage, "tree") == 0))
		loop_notice(pe, now);
	else if (iter >= 0 && max_iter > 0)
		progress_notice("%s: %s %d/%d, %.1f s elapsed%s", pe->what, stage, iter, max_iter,
						(now - pe->start_us) / 1e6,
						progress_estimate((now - pe->stage_start_us) / 1e6, iter - pe->stage_first,
										  max_iter - pe->stage_first, false));
	else
		progress_notice("%s: %s, %.1f s elapsed", pe->what,
						pe->loop_stage && strcmp(stage, pe->loop_stage) == 0 ? "preparing the data" : stage,
						(now - pe->start_us) / 1e6);
	return 0;
}

/* Memory context callback: stops and joins the env's pool workers. */
static void
pg_env_pool_destroy(void *arg)
{
	ml_pool_destroy((MlPool *) arg);
}

/*
 * Gives pe persistent worker threads (started at the first parallel step,
 * then waiting between steps) that live as long as pe's memory context:
 * they are joined when the context is deleted or reset, so also when an
 * error or a cancel unwinds the statement. For a private context that
 * lives as long as one training; without it (or when the pool cannot be
 * had) every parallel step starts and joins its own threads.
 */
void
pg_env_pool(PgEnv *pe)
{
	MemoryContextCallback *cb;

	if (pe->env.n_threads <= 1 || pe->env.pool != NULL)
		return;
	cb = MemoryContextAlloc(pe->mcxt, sizeof(MemoryContextCallback));
	pe->env.pool = ml_pool_create(pe->env.n_threads);
	if (pe->env.pool == NULL)
		return;
	cb->func = pg_env_pool_destroy;
	cb->arg = pe->env.pool;
	MemoryContextRegisterResetCallback(pe->mcxt, cb);
}

/* Sets up pe: memory in mcxt, `what` (and its main loop) for progress lines, threads only when asked for. */
void
pg_env_init(PgEnv *pe, MemoryContext mcxt, const char *what, bool threads)
{
	const LoopKind *lk;

	memset(pe, 0, sizeof(*pe));
	pe->env.alloc = pg_env_alloc;
	pe->env.free = pg_env_free;
	pe->env.check = pg_env_check;
	pe->env.ctx = pe;
	pe->env.n_threads = threads ? mlpipe_threads() : 1;
	pe->mcxt = mcxt;
	pe->what = what;
	pe->loop_value = NAN;
	for (lk = loop_kinds; lk->what; lk++)
		if (strcmp(lk->what, what) == 0)
		{
			pe->loop_stage = lk->stage;
			pe->loop_unit = lk->unit;
			pe->value_name = lk->value_name;
			pe->loop_capped = lk->capped;
		}
	pe->start_us = pg_env_now_us();
	pe->last_notice_us = pe->start_us;
}

/* 54000 when need bytes exceed mlpipe.max_memory (mlpipe.h). */
void
pg_memory_check(double need, const char *hint, const char *fmt,...)
{
	int			budget_kb = mlpipe_max_memory_kb();
	StringInfoData what;

	if (need <= (double) budget_kb * 1024.0)
		return;
	initStringInfo(&what);
	for (;;)
	{
		va_list		args;
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&what, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&what, needed);
	}
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("%s needs %.1f MB, over mlpipe.max_memory = %d %s",
					what.data, ceil(need / 104857.6) / 10.0,	/* rounded up: never "64.0 over 64" */
					budget_kb % 1024 == 0 ? budget_kb / 1024 : budget_kb,
					budget_kb % 1024 == 0 ? "MB" : "kB"),
			 hint ? errhint("%s", hint) : 0));
}

/*
 * Turns a core failure into an ereport: parameters 22023, data 22000, a
 * corrupt artifact XX001, the memory budget 54000, anything else XX000.
 */
void
pg_report_ml_error(const MlError *err)
{
	int			code;

	switch (err->code)
	{
		case ML_ERR_PARAM:
			code = ERRCODE_INVALID_PARAMETER_VALUE;
			break;
		case ML_ERR_DATA:
			code = ERRCODE_DATA_EXCEPTION;
			break;
		case ML_ERR_CORRUPT:
			code = ERRCODE_DATA_CORRUPTED;
			break;
		case ML_ERR_MEMORY:
			code = ERRCODE_PROGRAM_LIMIT_EXCEEDED;
			break;
		default:
			code = ERRCODE_INTERNAL_ERROR;
			break;
	}
	ereport(ERROR, (errcode(code), errmsg("%s", err->msg[0] ? err->msg : "mlpipe: unknown error")));
	pg_unreachable();
}

/* Hash of a key that is a C string pointer: the text it points to. */
static uint32
cstring_key_hash(const void *key, Size keysize)
{
	const char *s = *(const char *const *) key;

	return DatumGetUInt32(hash_any((const unsigned char *) s, strlen(s)));
}

/* Match of two such keys (hash_search: 0 when equal). */
static int
cstring_key_match(const void *a, const void *b, Size keysize)
{
	return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/*
 * A hash table in mcxt whose entries (entrysize bytes) start with a char *
 * key and are found by the text it points to: the category dictionaries,
 * grouped training's groups and grouped scoring's models.
 */
struct HTAB *
pg_cstring_htab(const char *name, long nelem, Size entrysize, MemoryContext mcxt)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(char *);
	ctl.entrysize = entrysize;
	ctl.hash = cstring_key_hash;
	ctl.match = cstring_key_match;
	ctl.hcxt = mcxt;
	return hash_create(name, nelem, &ctl, HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
}
