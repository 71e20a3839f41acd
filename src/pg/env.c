/*
 * env.c: the MlEnv that src/core runs in inside a backend. Memory comes from
 * a private context (an error or cancel frees all of it at once); check()
 * honours cancel and statement_timeout and prints progress about once a second.
 */
#include "mlpipe.h"

#include "lib/stringinfo.h"
#include "miscadmin.h"
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

/* MlEnv.check: honours cancel and timeouts; with mlpipe.progress, a NOTICE about once a second. */
static int
pg_env_check(void *ctx, const char *stage, int iter, int max_iter, double value)
{
	PgEnv	   *pe = ctx;
	int64		now;
	double		elapsed;

	CHECK_FOR_INTERRUPTS();
	if (!mlpipe_progress)
		return 0;
	now = pg_env_now_us();
	if (now - pe->last_notice_us < 1000000)
		return 0;
	pe->last_notice_us = now;
	elapsed = (now - pe->start_us) / 1e6;
	/* Core names its stage; the algorithm's own name means the main loop. */
	if (strcmp(stage, pe->what) == 0)
		stage = "iteration";
	if (iter > 0 && max_iter > 0 && !isnan(value))
		ereport(NOTICE,
				(errmsg("%s: %s %d/%d, %s %.6g, %.1f s elapsed, at most %.1f s left",
						pe->what, stage, iter, max_iter, pe->value_name, value, elapsed,
						elapsed / iter * (max_iter - iter))));
	else if (iter > 0 && max_iter > 0)
		ereport(NOTICE,
				(errmsg("%s: %s %d/%d, %.1f s elapsed, at most %.1f s left",
						pe->what, stage, iter, max_iter, elapsed,
						elapsed / iter * (max_iter - iter))));
	else
		ereport(NOTICE,
				(errmsg("%s: %s, %.1f s elapsed", pe->what, stage, elapsed)));
	return 0;
}

/* Sets up pe: memory in mcxt, `what` for progress lines, threads only when asked for. */
void
pg_env_init(PgEnv *pe, MemoryContext mcxt, const char *what, bool threads)
{
	pe->env.alloc = pg_env_alloc;
	pe->env.free = pg_env_free;
	pe->env.check = pg_env_check;
	pe->env.ctx = pe;
	pe->env.n_threads = threads ? mlpipe_threads() : 1;
	pe->mcxt = mcxt;
	pe->what = what;
	pe->value_name = "loss";
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
