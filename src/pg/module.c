/* module.c: module magic, the GUCs and the planner hook (predict_support.c). */
#include "mlpipe.h"

#include "utils/guc.h"

#include "predict_support.h"

#include <limits.h>
#include <unistd.h>

PG_MODULE_MAGIC;

bool		mlpipe_progress = true;
int			mlpipe_max_memory_kb = 2 * 1024 * 1024;
int			mlpipe_threads = 2;

void		_PG_init(void);

void
_PG_init(void)
{
	long		cpus = sysconf(_SC_NPROCESSORS_ONLN);

	mlpipe_threads = cpus < 1 ? 1 : (cpus > 4 ? 4 : (int) cpus);

	DefineCustomBoolVariable("mlpipe.progress",
							 "Print NOTICE progress lines during long training.",
							 NULL, &mlpipe_progress, true,
							 PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("mlpipe.max_memory",
							"Memory a training may use for its data and model.",
							"Training fails with SQLSTATE 54000 before allocating more.",
							&mlpipe_max_memory_kb, 2 * 1024 * 1024, 1024, INT_MAX,
							PGC_USERSET, GUC_UNIT_KB, NULL, NULL, NULL);
	DefineCustomIntVariable("mlpipe.threads",
							"Compute threads one training may use (1 = none).",
							"Defaults to the number of CPUs, at most 4.",
							&mlpipe_threads, mlpipe_threads, 1, 64,
							PGC_USERSET, 0, NULL, NULL, NULL);
	MarkGUCPrefixReserved("mlpipe");
	mlpipe_cjson_init();
	predict_support_init();
}
