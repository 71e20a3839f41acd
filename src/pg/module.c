/*
 * module.c: module magic, the GUCs and the accessors through which the glue
 * reads mlpipe.max_memory and mlpipe.threads, and the planner hook of
 * predict_support.c (scoring by name on Citus).
 *
 * A custom setting given before the library loads (connection options,
 * ALTER ROLE/DATABASE SET, postgresql.conf) is a placeholder until
 * DefineCustomIntVariable; an out-of-range placeholder value then only gets
 * a WARNING and the variable keeps its default. mlpipe remembers such a
 * refused value and every use of the setting (the accessors below) fails
 * with 22023 naming the setting, the value and the allowed range, until a
 * valid value is set in the session: a bad limit never silently becomes
 * the 2 GB / CPU-count default.
 */
#include "mlpipe.h"

#include "catalog/namespace.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "predict_support.h"

#include <limits.h>
#include <unistd.h>

PG_MODULE_MAGIC;

bool		mlpipe_progress = true;
static int	progress_interval_ms = 1000;
static int	max_memory_kb = 2 * 1024 * 1024;
static int	threads = 2;

#define MAX_MEMORY_MIN_KB	1024
#define THREADS_MAX			64

/* The placeholder text refused at load, or NULL (reset when the setting is assigned). */
static char *refused_max_memory = NULL;
static char *refused_threads = NULL;

void		_PG_init(void);

/* Assign hooks: a value that reaches the variable replaces any refused one. */
static void
assign_max_memory(int newval, void *extra)
{
	refused_max_memory = NULL;
}

static void
assign_threads(int newval, void *extra)
{
	refused_threads = NULL;
}

/*
 * The placeholder value of a custom setting given before load, copied to
 * TopMemoryContext, or NULL when none was given.
 */
static char *
placeholder_value(const char *name)
{
	const char *v = GetConfigOption(name, true, false);

	return v ? MemoryContextStrdup(TopMemoryContext, v) : NULL;
}

/*
 * raw (a placeholder's text) unless the integer setting accepts it: NULL
 * when raw is NULL or parses within [lo, hi] with the setting's unit.
 */
static char *
refused_if_invalid(char *raw, int flags, int lo, int hi)
{
	int			v;

	if (raw == NULL)
		return NULL;
	if (parse_int(raw, &v, flags, NULL) && v >= lo && v <= hi)
		return NULL;
	return raw;
}

void
_PG_init(void)
{
	long		cpus = sysconf(_SC_NPROCESSORS_ONLN);
	char	   *raw_memory = placeholder_value("mlpipe.max_memory");
	char	   *raw_threads = placeholder_value("mlpipe.threads");

	threads = cpus < 1 ? 1 : (cpus > 4 ? 4 : (int) cpus);

	DefineCustomBoolVariable("mlpipe.progress",
							 "Print NOTICE progress lines during long training.",
							 NULL, &mlpipe_progress, true,
							 PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("mlpipe.progress_interval",
							"Least time between two progress lines of one training, search or cross-validation.",
							"0 prints a line at every check (tests).",
							&progress_interval_ms, 1000, 0, 3600 * 1000,
							PGC_USERSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("mlpipe.max_memory",
							"Memory a training or a metric aggregate may use for its rows and work.",
							"Over it, SQLSTATE 54000 before allocating more.",
							&max_memory_kb, 2 * 1024 * 1024, MAX_MEMORY_MIN_KB, INT_MAX,
							PGC_USERSET, GUC_UNIT_KB, NULL, assign_max_memory, NULL);
	DefineCustomIntVariable("mlpipe.threads",
							"Compute threads one training may use (1 = none).",
							"Defaults to the number of CPUs, at most 4.",
							&threads, threads, 1, THREADS_MAX,
							PGC_USERSET, 0, NULL, assign_threads, NULL);
	/* after the definitions: their assign hooks clear these */
	refused_max_memory = refused_if_invalid(raw_memory, GUC_UNIT_KB, MAX_MEMORY_MIN_KB, INT_MAX);
	refused_threads = refused_if_invalid(raw_threads, 0, 1, THREADS_MAX);
	MarkGUCPrefixReserved("mlpipe");
	mlpipe_cjson_init();
	predict_support_init();
}

/* 22023 for a setting whose value was refused at load. */
static void
report_refused(const char *name, const char *raw, const char *range)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s = \"%s\" is invalid; it must be %s", name, raw, range),
			 errdetail("The value was set before mlpipe was loaded, so PostgreSQL only warned and kept the default; "
					   "mlpipe refuses to run with a limit other than the one asked for."),
			 errhint("SET %s to a valid value (or RESET it) in this session, and correct it where it is set "
					 "(connection options, ALTER ROLE/DATABASE ... SET, postgresql.conf).", name)));
}

/* mlpipe.max_memory in kB; 22023 when the value given before load was refused. */
int
mlpipe_max_memory_kb(void)
{
	if (refused_max_memory)
		report_refused("mlpipe.max_memory", refused_max_memory, "between 1MB and 2147483647kB");
	return max_memory_kb;
}

/* mlpipe.threads; 22023 when the value given before load was refused. */
int
mlpipe_threads(void)
{
	if (refused_threads)
		report_refused("mlpipe.threads", refused_threads, "an integer between 1 and 64");
	return threads;
}

/* mlpipe.progress_interval in milliseconds. */
int
mlpipe_progress_interval_ms(void)
{
	return progress_interval_ms;
}

/*
 * The schema of mlpipe's internal (_-prefixed) functions: mlpipe_internal
 * from 0.4.0 on; mlpipe while an older installation runs this library
 * before ALTER EXTENSION mlpipe UPDATE moves them.
 */
const char *
mlpipe_internal_schema(void)
{
	return OidIsValid(get_namespace_oid("mlpipe_internal", true)) ? "mlpipe_internal" : "mlpipe";
}
