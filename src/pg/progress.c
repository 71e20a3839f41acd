/*
 * progress.c: the NOTICE progress lines of long work. Training loops (env.c),
 * search and cross-validation (mlpipe_internal._progress, from plpgsql) print through
 * here, at most one line per mlpipe.progress_interval each; the lines of the
 * current or last statement are kept for mlpipe_internal._progress_log(), so tests
 * can read what a training said.
 */
#include "mlpipe.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(mlpipe_progress_line);
PG_FUNCTION_INFO_V1(mlpipe_progress_log);

/* Lines kept for _progress_log: the first PROGRESS_LOG_MAX of a statement. */
#define PROGRESS_LOG_MAX 1000

static char **log_lines = NULL;
static int	log_n = 0;
static TimestampTz log_statement = 0;	/* start of the statement they belong to */

/* Forgets the lines of an earlier statement. */
static void
progress_log_start(void)
{
	TimestampTz stmt = GetCurrentStatementStartTimestamp();
	int			i;

	if (stmt == log_statement)
		return;
	for (i = 0; i < log_n; i++)
		pfree(log_lines[i]);
	log_n = 0;
	log_statement = stmt;
}

/* True (and *last_us set to now) when a line may go out now. */
bool
progress_due(int64 *last_us, int64 now_us)
{
	if (now_us - *last_us < (int64) mlpipe_progress_interval_ms() * 1000)
		return false;
	*last_us = now_us;
	return true;
}

/* Prints one progress line as a NOTICE and keeps it for _progress_log. */
void
progress_notice(const char *fmt,...)
{
	StringInfoData line;

	initStringInfo(&line);
	for (;;)
	{
		va_list		args;
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&line, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&line, needed);
	}
	progress_log_start();
	if (log_lines == NULL)
		log_lines = MemoryContextAlloc(TopMemoryContext, sizeof(char *) * PROGRESS_LOG_MAX);
	if (log_n < PROGRESS_LOG_MAX)
		log_lines[log_n++] = MemoryContextStrdup(TopMemoryContext, line.data);
	ereport(NOTICE, (errmsg_internal("%s", line.data)));
	pfree(line.data);
}

/*
 * The estimate part of a progress line: per unit from the time units took
 * so far (seconds_done over done units), for the total - done still to go.
 * Empty before the first unit is done.
 */
const char *
progress_estimate(double seconds_done, int done, int total, bool capped)
{
	double		left;

	if (done <= 0 || total <= done)
		return "";
	left = seconds_done / done * (total - done);
	return psprintf(capped ? ", at most %.1f s left" : ", about %.1f s left", left);
}

/*
 * mlpipe_internal._progress(what, stage, done, total, started), for plpgsql:
 * "what: stage done/total done, E s elapsed, about L s left" (search,
 * cross-validation), or with done and total NULL "what: stage, E s elapsed"
 * (a step such as storing a large artifact). E counts from started. Lines
 * keep the interval and go to the log like training lines; a stage line
 * only comes once the work has run for an interval. Nothing with
 * mlpipe.progress off.
 */
Datum
mlpipe_progress_line(PG_FUNCTION_ARGS)
{
	static int64 last_us = 0;
	static TimestampTz last_statement = 0;
	int64		now = GetCurrentTimestamp();
	TimestampTz started;
	const char *what;
	const char *stage;
	double		elapsed;

	if (!mlpipe_progress || PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(4))
		PG_RETURN_VOID();
	started = PG_GETARG_TIMESTAMPTZ(4);
	/* each statement starts its own interval, from when its work started */
	if (last_statement != GetCurrentStatementStartTimestamp())
	{
		last_statement = GetCurrentStatementStartTimestamp();
		last_us = started;
	}
	what = text_to_cstring(PG_GETARG_TEXT_PP(0));
	stage = text_to_cstring(PG_GETARG_TEXT_PP(1));
	elapsed = (now - started) / 1e6;
	if (PG_ARGISNULL(2) || PG_ARGISNULL(3))
	{
		if (now - started >= (int64) mlpipe_progress_interval_ms() * 1000)
		{
			last_us = now;
			progress_notice("%s: %s, %.1f s elapsed", what, stage, elapsed);
		}
	}
	else
	{
		int			done = PG_GETARG_INT32(2);
		int			total = PG_GETARG_INT32(3);

		if (progress_due(&last_us, now) || done == total)
			progress_notice("%s: %s %d/%d done, %.1f s elapsed%s", what, stage, done, total,
							elapsed, progress_estimate(elapsed, done, total, false));
	}
	PG_RETURN_VOID();
}

/* mlpipe_internal._progress_log(): the progress lines of this session's current or last statement that printed any. */
Datum
mlpipe_progress_log(PG_FUNCTION_ARGS)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(log_n, 1));
	int			i;

	for (i = 0; i < log_n; i++)
		d[i] = CStringGetTextDatum(log_lines[i]);
	PG_RETURN_ARRAYTYPE_P(construct_array(d, log_n, TEXTOID, -1, false, TYPALIGN_INT));
}
