/*
 * source_read.c: reads a training source (table, view or SELECT) in one
 * pass. The executor hands each result row to a DestReceiver, which
 * deforms it in place (no tuple copy, no tuple table) and passes it to
 * source_scan.c (source_scan_row); per-row memory lives in a context
 * reset every SOURCE_BATCH rows, where the cancel check also is. The query
 * runs as the calling user through SPI, so grants and row-level security
 * apply, read-only with the statement's snapshot, planned as the former
 * cursor's query was (never parallel: see source_scan). Grouped training's
 * stored rows (source_replay) go through the same decoding. Also the dense
 * row-major matrix k-means trains on (source_load).
 */
#include "mlpipe.h"
#include "source_int.h"

#include "access/htup_details.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "tcop/dest.h"
#include "utils/memutils.h"
#include "utils/plancache.h"

/*
 * Grouped training (fit_groups.c) reads the source once and then trains on
 * one group's rows after the other: while source_replay is set, source_scan
 * reads those stored rows instead of running the source query, so each
 * group's fit sees exactly the rows, in the order, that a query filtering
 * the source on the group would give.
 */
const SourceReplay *source_replay = NULL;

/* source_scan over source_replay's rows, SOURCE_BATCH at a time. */
static void
replay_rows(SourceScan *ss, MemoryContext batch_cxt)
{
	TupleDesc	td = source_replay->tupdesc;
	Datum	   *values = palloc(sizeof(Datum) * Max(td->natts, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(td->natts, 1));
	int64		i;

	source_scan_describe(ss, td);
	for (i = 0; i < source_replay->n; i++)
	{
		MemoryContext old = MemoryContextSwitchTo(batch_cxt);

		heap_deform_tuple(source_replay->rows[i], td, values, nulls);
		source_scan_row(ss, i + 1, values, nulls, false);
		MemoryContextSwitchTo(old);
		if ((i + 1) % SOURCE_BATCH == 0)
		{
			MemoryContextReset(batch_cxt);
			CHECK_FOR_INTERRUPTS();
		}
	}
	pfree(values);
	pfree(nulls);
}

/* The DestReceiver the source query's rows go to. */
typedef struct ScanReceiver
{
	DestReceiver pub;
	SourceScan *ss;
	MemoryContext batch_cxt;	/* per-row memory, reset every SOURCE_BATCH rows */
	int64		rowno;			/* rows received so far */
} ScanReceiver;

/* rStartup: the row description (sent even when no row follows). */
static void
receiver_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
	ScanReceiver *r = (ScanReceiver *) self;

	source_scan_describe(r->ss, typeinfo);
}

/*
 * receiveSlot: one row, deformed in the slot (its values point into the
 * executor's tuple; nothing is copied) and decoded; every SOURCE_BATCH
 * rows the per-row memory is reset and interrupts are checked.
 */
static bool
receiver_slot(TupleTableSlot *slot, DestReceiver *self)
{
	ScanReceiver *r = (ScanReceiver *) self;
	MemoryContext old;

	slot_getallattrs(slot);
	old = MemoryContextSwitchTo(r->batch_cxt);
	r->rowno++;
	source_scan_row(r->ss, r->rowno, slot->tts_values, slot->tts_isnull, true);
	MemoryContextSwitchTo(old);
	if (r->rowno % SOURCE_BATCH == 0)
	{
		MemoryContextReset(r->batch_cxt);
		CHECK_FOR_INTERRUPTS();
	}
	return true;
}

/* rShutdown and rDestroy: nothing to do (the receiver lives on source_scan's stack). */
static void
receiver_noop(DestReceiver *self)
{
}

/*
 * Refuses a plan that does not return one set of rows, with the error
 * SPI_cursor_open gave when the source was read through a cursor.
 */
static void
check_row_plan(SPIPlanPtr plan)
{
	List	   *sources;
	CachedPlanSource *ps;

	if (SPI_is_cursor_plan(plan))
		return;
	sources = SPI_plan_get_plan_sources(plan);
	if (list_length(sources) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_CURSOR_DEFINITION),
				 errmsg("cannot open multi-query plan as cursor")));
	ps = (CachedPlanSource *) linitial(sources);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_CURSOR_DEFINITION),
			 errmsg("cannot open %s query as cursor",
					/* a SELECT that returns no rows is SELECT INTO */
					ps->commandTag == CMDTAG_SELECT ? "SELECT INTO" :
					GetCommandTagName(ps->commandTag))));
}

/*
 * The planner's estimate of the rows plan returns (0 when there is none).
 * The plan is not saved, so SPI hands its cached plan out with no resource
 * owner, and it is released the same way.
 */
static double
plan_row_estimate(SPIPlanPtr plan)
{
	CachedPlan *cp = SPI_plan_get_cached_plan(plan);
	double		rows = 0;

	if (cp == NULL)
		return 0;
	if (list_length(cp->stmt_list) == 1)
	{
		PlannedStmt *ps = linitial_node(PlannedStmt, cp->stmt_list);

		if (ps->planTree != NULL)
			rows = ps->planTree->plan_rows;
	}
	ReleaseCachedPlan(cp, NULL);
	return rows;
}

/*
 * One pass over the source: the executor feeds every row to a
 * ScanReceiver (or source_replay's stored rows are read).
 *
 * The query is planned as the cursor that read it before was
 * (CURSOR_OPT_NO_SCROLL, without CURSOR_OPT_PARALLEL_OK), so the same plan
 * gives the rows in the same order, and never in parallel: a parallel
 * worker would be a second CPU behind mlpipe.threads = 1, the leader still
 * decodes every row (the larger part of the read) after a copy through the
 * worker's tuple queue, and rows would come in an order that changes from
 * run to run (row numbers in errors, first-seen order of categories).
 */
void
source_scan(const SourceSpec *spec, MemoryContext mcxt, SourceRowFn fn, void *arg,
			SourceInfo *info)
{
	char	   *query = source_query(spec->source);
	SourceScan *ss = source_scan_begin(spec, mcxt, fn, arg, info);
	MemoryContext batch_cxt;
	SPIPlanPtr	plan;
	SPIExecuteOptions opts;
	ScanReceiver r;
	int			rc;

	batch_cxt = AllocSetContextCreate(CurrentMemoryContext, "mlpipe source batch",
									  ALLOCSET_DEFAULT_SIZES);
	if (source_replay != NULL)
	{
		replay_rows(ss, batch_cxt);
		MemoryContextDelete(batch_cxt);
		source_scan_end(ss, 0);
		return;
	}
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	plan = SPI_prepare_cursor(query, 0, NULL, CURSOR_OPT_NO_SCROLL);
	if (plan == NULL)
		elog(ERROR, "could not prepare the source query: %s", SPI_result_code_string(SPI_result));
	check_row_plan(plan);
	info->est_rows = plan_row_estimate(plan);

	memset(&r, 0, sizeof(r));
	r.pub.receiveSlot = receiver_slot;
	r.pub.rStartup = receiver_startup;
	r.pub.rShutdown = receiver_noop;
	r.pub.rDestroy = receiver_noop;
	r.pub.mydest = DestNone;
	r.ss = ss;
	r.batch_cxt = batch_cxt;
	memset(&opts, 0, sizeof(opts));
	opts.read_only = true;
	opts.dest = &r.pub;
	rc = SPI_execute_plan_extended(plan, &opts);
	if (rc < 0)
		elog(ERROR, "could not run the source query: %s", SPI_result_code_string(rc));
	SPI_finish();
	MemoryContextDelete(batch_cxt);
	source_scan_end(ss, r.rowno);
}

/*
 * The k-means consumer: append every row to a growing row-major matrix.
 * Its first size is the rows the planner expects (dense_plan): doubling
 * from a small start copies the matrix at every growth (realloc cannot
 * move a block whose huge-page advice split its mapping), so the last
 * growth held the old matrix and its copy: 2.06 GB for 10M x 16 (1.2 GB of
 * rows). Memory never touched costs nothing, so an estimate too high is
 * harmless; after one too low the matrix doubles as it always did.
 */
typedef struct DenseSink
{
	SourceData *out;
	int64		cap;
	int64		first_cap;		/* rows of the first allocation */
	MemoryContext mcxt;
} DenseSink;

/* source_load's row callback: appends x, growing the matrix within mlpipe.max_memory. */
static void
dense_append(void *arg, const double *x, const SourceTarget *t, int64 rowno)
{
	DenseSink  *ds = arg;
	SourceData *out = ds->out;

	if (out->n == ds->cap)
	{
		int64		newcap = ds->cap ? ds->cap * 2 : ds->first_cap;
		Size		budget = (Size) mlpipe_max_memory_kb() * 1024;
		Size		bytes;

		if ((Size) newcap * out->d * sizeof(double) > budget)
		{
			/* The smallest growth that still fits, before giving up. */
			newcap = budget / (out->d * sizeof(double));
			if (newcap <= out->n)
				pg_memory_check((double) (out->n + 1) * out->d * sizeof(double),
								"Raise mlpipe.max_memory, or train on a sample of the source.",
								"training data of more than " INT64_FORMAT " rows x %d features",
								out->n, out->d);
		}
		bytes = (Size) newcap * out->d * sizeof(double);
		out->X = out->X ? repalloc_huge(out->X, bytes) : MemoryContextAllocHuge(ds->mcxt, bytes);
		ml_advise_huge_pages(out->X, bytes);
		ds->cap = newcap;
	}
	memcpy(out->X + (Size) out->n * out->d, x, sizeof(double) * out->d);
	out->n++;
}

/*
 * source_load's plan callback: the matrix width, and its first size: the
 * planner's estimate and 2% more, where that is above the default start
 * and fits in mlpipe.max_memory (a wild overestimate keeps the default).
 */
static void
dense_plan(void *arg, const SourceInfo *info)
{
	DenseSink  *ds = arg;
	double		want = info->est_rows * 1.02 + 1024;

	ds->out->d = info->d;
	if (want > ds->first_cap &&
		want * sizeof(double) * Max(info->d, 1) <= (double) mlpipe_max_memory_kb() * 1024)
		ds->first_cap = (int64) want;
}

/* source_scan into a dense row-major matrix (k-means), within mlpipe.max_memory. */
void
source_load(const SourceSpec *spec_in, MemoryContext mcxt, SourceData *out)
{
	SourceSpec	spec = *spec_in;
	DenseSink	ds = {out, 0, 16384, mcxt};
	SourceInfo	info;

	memset(out, 0, sizeof(*out));
	spec.on_plan = dense_plan;
	source_scan(&spec, mcxt, dense_append, &ds, &info);
	out->skipped = info.skipped;
	out->feature_names = info.feature_names;
	out->categorical = info.categorical;
	out->dicts = info.dicts;
	out->any_categorical = info.any_categorical;
	out->id_like = info.id_like;
	out->n_id_like = info.n_id_like;
}
