/*
 * features.c: the feature aggregates mlpipe.ts_features(timestamptz, float8)
 * and mlpipe.summary(float8).
 *
 * The state, an mlpipe.agg_state of kind AGG_KIND_FEATURES
 * (agg_state_type.c), keeps every usable (ts, value) point of its group,
 * plus the count of missing ones. Partial states (parallel workers, Citus
 * shards) are flattened as the raw points and concatenated by the combine
 * function; the final function sorts the points by (ts, value) and hands
 * them to src/core/tsstats.c, so each result is exact and the same
 * whatever the order of the rows or the shape of the plan.
 */
#include "agg_state.h"

#include "tsstats.h"

#include "access/htup_details.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include <math.h>

PG_FUNCTION_INFO_V1(mlpipe_ts_features_trans);
PG_FUNCTION_INFO_V1(mlpipe_summary_trans);
PG_FUNCTION_INFO_V1(mlpipe_features_combine);
PG_FUNCTION_INFO_V1(mlpipe_ts_features_final);
PG_FUNCTION_INFO_V1(mlpipe_summary_final);

/*
 * Points one group may keep: the serialized state must fit in one bytea
 * (1 GB), and mlpipe.max_memory bounds it further.
 */
#define FEAT_MAX_POINTS ((int64) 64 * 1000 * 1000)

typedef struct FeatState
{
	int64		n;				/* points kept */
	int64		cap;			/* points allocated */
	int64		n_null;			/* NULL or NaN values, NULL timestamps */
	bool		sorted;			/* pts[0..n) is in (ts, v) order */
	bool		timed;			/* ts_features (else summary, ts = 0) */
	TsPoint    *pts;			/* in the aggregate context */
} FeatState;

/* Serial form: this header, then n TsPoints as they are in memory. */
typedef struct FeatWire
{
	uint32		magic;
	uint16		version;
	uint16		flags;			/* FEAT_SORTED | FEAT_TIMED */
	int64		n;
	int64		n_null;
} FeatWire;

#define FEAT_MAGIC 0x5354464d	/* "MFTS" */
#define FEAT_WIRE_VERSION 1
#define FEAT_SORTED 1
#define FEAT_TIMED 2

/* The aggregate a state belongs to, for messages. */
static const char *
feat_name(const FeatState *st)
{
	return st->timed ? "ts_features" : "summary";
}

/* 22023 unless st is a state of ts_features (timed) or of summary. */
static void
feat_check_timed(const FeatState *st, bool timed)
{
	if (st->timed != timed)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("mlpipe.agg_state holds a %s state, not a %s state",
							   feat_name(st), timed ? "ts_features" : "summary"),
						errhint("Pass a state to the final or combine function of the aggregate that wrote it.")));
}

/* The most points a group may keep: mlpipe.max_memory / 16 bytes, at most 64M. */
static int64
feat_limit(void)
{
	int64		by_budget = (int64) mlpipe_max_memory_kb() * 1024 / (int64) sizeof(TsPoint);

	return Min(by_budget, FEAT_MAX_POINTS);
}

/* Room for `more` points, doubling; 54000 over the limit. */
static void
feat_reserve(FeatState *st, MemoryContext aggcxt, int64 more)
{
	int64		need = st->n + more,
				limit = feat_limit(),
				cap;

	if (need <= st->cap)
		return;
	if (need > limit)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s: a group has more than %lld readings", feat_name(st), (long long) limit),
				 errdetail("Each group keeps its readings (16 bytes each) until its result is computed; "
						   "mlpipe.max_memory is %d kB and the hard limit is %lld readings.",
						   mlpipe_max_memory_kb(), (long long) FEAT_MAX_POINTS),
				 errhint("Raise mlpipe.max_memory or aggregate smaller groups (for example per day).")));
	cap = Max(st->cap * 2, 64);
	cap = Min(Max(cap, need), limit);
	if (st->pts == NULL)
		st->pts = MemoryContextAllocHuge(aggcxt, sizeof(TsPoint) * cap);
	else
		st->pts = repalloc_huge(st->pts, sizeof(TsPoint) * cap);
	st->cap = cap;
}

/* An empty state under aggcxt. */
static AggStateObj *
feat_new(FunctionCallInfo fcinfo, MemoryContext aggcxt, bool timed)
{
	AggStateObj *obj = agg_state_create(fcinfo, aggcxt, &feat_family);
	FeatState  *st = MemoryContextAllocZero(AGG_STATE_CTX(obj), sizeof(FeatState));

	st->sorted = true;
	st->timed = timed;
	obj->st = st;
	return obj;
}

/*
 * The state of a transition function (argument 0), created under aggcxt
 * when NULL; 22023 when it belongs to the other feature aggregate.
 */
static AggStateObj *
feat_trans_state(FunctionCallInfo fcinfo, MemoryContext aggcxt, bool timed)
{
	AggStateObj *obj = agg_state_arg(fcinfo, 0, &feat_family, aggcxt);

	if (obj == NULL)
		return feat_new(fcinfo, aggcxt, timed);
	feat_check_timed(obj->st, timed);
	return obj;
}

/* Appends one point, keeping track of whether the points are still in order. */
static inline void
feat_add(FeatState *st, MemoryContext aggcxt, int64 ts, double v)
{
	TsPoint    *p;

	if (st->n == st->cap)
		feat_reserve(st, aggcxt, 1);
	p = &st->pts[st->n];
	p->ts = ts;
	p->v = v;
	if (st->n > 0 && st->sorted && ts_point_less(p, p - 1))
		st->sorted = false;
	st->n++;
}

/*
 * ts_features transition: NULL values, NaN values and NULL timestamps are
 * counted as missing; an infinite timestamp is an error (no time order).
 */
Datum
mlpipe_ts_features_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = agg_context(fcinfo, "mlpipe_internal._ts_features_trans");
	AggStateObj *obj = feat_trans_state(fcinfo, aggcxt, true);
	FeatState  *st = obj->st;
	TimestampTz ts;
	double		v;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || isnan(v = PG_GETARG_FLOAT8(2)))
	{
		st->n_null++;
		AGG_STATE_RETURN(obj);
	}
	ts = PG_GETARG_TIMESTAMPTZ(1);
	if (TIMESTAMP_NOT_FINITE(ts))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("ts_features: timestamp %s is not finite", timestamptz_to_str(ts)),
				 errhint("Filter out infinite timestamps or set them to NULL (counted in n_null).")));
	feat_add(st, AGG_STATE_CTX(obj), ts, v);
	AGG_STATE_RETURN(obj);
}

/* summary transition: every value at time 0, so the order is the value order. */
Datum
mlpipe_summary_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = agg_context(fcinfo, "mlpipe_internal._summary_trans");
	AggStateObj *obj = feat_trans_state(fcinfo, aggcxt, false);
	FeatState  *st = obj->st;
	double		v;

	if (PG_ARGISNULL(1) || isnan(v = PG_GETARG_FLOAT8(1)))
		st->n_null++;
	else
		feat_add(st, AGG_STATE_CTX(obj), 0, v);
	AGG_STATE_RETURN(obj);
}

/*
 * Combine: appends b's points to a (a copy of b in the aggregate context
 * when a is NULL). Not strict: either state may be NULL.
 */
Datum
mlpipe_features_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = agg_context(fcinfo, "mlpipe_internal._features_combine");
	AggStateObj *bobj = agg_state_arg(fcinfo, 1, &feat_family, CurrentMemoryContext);
	AggStateObj *obj;
	FeatState  *a,
			   *b;
	bool		in_order;

	if (bobj == NULL)
		return agg_state_unchanged(fcinfo);
	b = bobj->st;
	if ((obj = agg_state_arg(fcinfo, 0, &feat_family, aggcxt)) == NULL)
		obj = feat_new(fcinfo, aggcxt, b->timed);
	a = obj->st;
	feat_check_timed(a, b->timed);
	in_order = a->sorted && b->sorted &&
		(a->n == 0 || b->n == 0 || !ts_point_less(&b->pts[0], &a->pts[a->n - 1]));
	if (b->n > 0)
	{
		feat_reserve(a, AGG_STATE_CTX(obj), b->n);
		memcpy(a->pts + a->n, b->pts, sizeof(TsPoint) * b->n);
		a->n += b->n;
	}
	a->sorted = in_order;
	a->n_null += b->n_null;
	AGG_STATE_RETURN(obj);
}

/* Serial form: the FeatWire header and the points as they are in memory. */
static void
feat_write(StringInfo buf, const void *p, const char *agg)
{
	const FeatState *st = p;
	FeatWire	w;

	w.magic = FEAT_MAGIC;
	w.version = FEAT_WIRE_VERSION;
	w.flags = (st->sorted ? FEAT_SORTED : 0) | (st->timed ? FEAT_TIMED : 0);
	w.n = st->n;
	w.n_null = st->n_null;
	appendBinaryStringInfo(buf, (const char *) &w, sizeof(w));
	agg_send_bytes(buf, st->pts, sizeof(TsPoint) * st->n);
}

/*
 * 22P02 unless the points are what the transition functions keep: values
 * not NaN, finite timestamps (0 for summary), and in (ts, value) order when
 * the state says so; the final's sort and selection rely on all three.
 */
static void
feat_check_points(const FeatState *st)
{
	int64		i;

	for (i = 0; i < st->n; i++)
	{
		const TsPoint *p = &st->pts[i];

		if (isnan(p->v) || TIMESTAMP_NOT_FINITE(p->ts) || (!st->timed && p->ts != 0))
			agg_state_corrupt("feature", "A reading is NaN, or its time is not finite (or not 0 for summary).");
		if (st->sorted && i > 0 && ts_point_less(p, p - 1))
			agg_state_corrupt("feature", "The state says its readings are in order, and they are not.");
	}
}

/* A FeatState in ctx from feat_write's form; the header and length are checked before a count is trusted. */
static void *
feat_read(StringInfo buf, MemoryContext ctx)
{
	FeatWire	w;
	FeatState  *st;

	memcpy(&w, agg_get_bytes(buf, sizeof(w)), sizeof(w));
	if (w.magic != FEAT_MAGIC || w.version != FEAT_WIRE_VERSION || w.n < 0 || w.n_null < 0 ||
		w.n > FEAT_MAX_POINTS || (w.flags & ~(FEAT_SORTED | FEAT_TIMED)) != 0 ||
		(Size) (buf->len - buf->cursor) != sizeof(TsPoint) * (Size) w.n)
		agg_state_corrupt("feature", "The header does not match the readings that follow.");
	st = MemoryContextAllocZero(ctx, sizeof(FeatState));
	st->timed = (w.flags & FEAT_TIMED) != 0;
	st->sorted = (w.flags & FEAT_SORTED) != 0;
	st->n = st->cap = w.n;
	st->n_null = w.n_null;
	if (w.n > 0)
	{
		st->pts = MemoryContextAllocHuge(ctx, sizeof(TsPoint) * w.n);
		memcpy(st->pts, agg_get_bytes(buf, sizeof(TsPoint) * w.n), sizeof(TsPoint) * w.n);
	}
	feat_check_points(st);
	return st;
}

const AggFamily feat_family = {AGG_KIND_FEATURES, "feature", feat_write, feat_read};

/*
 * Sorts the state's points in place (same points, so the state stays valid
 * for further transitions and final calls) and summarizes them.
 */
static void
feat_compute(FeatState *st, TsSummary *sum)
{
	PgEnv		pe;
	MlError		err = {0};
	MlStatus	rc;

	pg_env_init(&pe, CurrentMemoryContext, feat_name(st), false);
	if (!st->sorted)
	{
		rc = ts_sort_points(&pe.env, st->pts, st->n, &err);
		ML_CHECK_STATUS(rc, &err);
		st->sorted = true;
	}
	rc = ts_summarize(&pe.env, st->pts, st->n, sum, &err);
	ML_CHECK_STATUS(rc, &err);
}

/* A float8 datum, NULL for NaN (an undefined figure). */
static inline void
feat_put(Datum *values, bool *nulls, int i, double x)
{
	nulls[i] = isnan(x);
	values[i] = Float8GetDatum(x);
}

/* The result row type, blessed once per call site. */
static TupleDesc
feat_tupdesc(FunctionCallInfo fcinfo, int natts)
{
	TupleDesc	td = fcinfo->flinfo->fn_extra;
	MemoryContext old;

	if (td != NULL)
		return td;
	old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
	if (get_call_result_type(fcinfo, NULL, &td) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "mlpipe: feature aggregate must return a composite type");
	if (td->natts != natts)
		elog(ERROR, "mlpipe: feature result type has %d columns, expected %d", td->natts, natts);
	td = BlessTupleDesc(td);
	MemoryContextSwitchTo(old);
	fcinfo->flinfo->fn_extra = td;
	return td;
}

/*
 * Fills the columns both result types share, in their order: n, n_null,
 * mean, std, min, max, q05, q25, median, q75, q95, skewness, kurtosis.
 * Returns the next column. With no usable points only n and n_null are set.
 */
static int
feat_common(FeatState *st, const TsSummary *s, Datum *values, bool *nulls)
{
	int			i = 0,
				q;

	values[i] = Int64GetDatum(st->n);
	nulls[i++] = false;
	values[i] = Int64GetDatum(st->n_null);
	nulls[i++] = false;
	if (s == NULL)
		return i;
	feat_put(values, nulls, i++, s->mean);
	feat_put(values, nulls, i++, s->std);
	feat_put(values, nulls, i++, s->min);
	feat_put(values, nulls, i++, s->max);
	for (q = 0; q < TS_N_QUANTILES; q++)
		feat_put(values, nulls, i++, s->q[q]);
	feat_put(values, nulls, i++, s->skewness);
	feat_put(values, nulls, i++, s->kurtosis);
	return i;
}

#define SUMMARY_NATTS 13
#define TS_SUMMARY_NATTS 19

/*
 * The result row of both final functions (NULL for a group without rows):
 * feat_common's columns, then for ts_features (natts = TS_SUMMARY_NATTS)
 * the ones that depend on time order. See docs/features.md.
 */
static Datum
feat_final(FunctionCallInfo fcinfo, int natts)
{
	AggStateObj *obj = agg_state_arg(fcinfo, 0, &feat_family, CurrentMemoryContext);
	FeatState  *st;
	TupleDesc	td;
	Datum		values[TS_SUMMARY_NATTS];
	bool		nulls[TS_SUMMARY_NATTS];
	TsSummary	s;
	int			i;

	if (obj == NULL)
		PG_RETURN_NULL();
	st = obj->st;
	feat_check_timed(st, natts == TS_SUMMARY_NATTS);
	td = feat_tupdesc(fcinfo, natts);
	memset(nulls, true, sizeof(nulls));
	memset(values, 0, sizeof(values));
	if (st->n == 0)
		feat_common(st, NULL, values, nulls);
	else
	{
		feat_compute(st, &s);
		i = feat_common(st, &s, values, nulls);
		if (natts == TS_SUMMARY_NATTS)
		{
			feat_put(values, nulls, i++, s.slope);
			feat_put(values, nulls, i++, s.first);
			feat_put(values, nulls, i++, s.last);
			feat_put(values, nulls, i++, s.mean_abs_change);
			feat_put(values, nulls, i++, s.autocorr_lag1);
			feat_put(values, nulls, i++, s.longest_gap);
		}
		Assert(i == natts);
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(td, values, nulls)));
}

/* ts_features final: every column. */
Datum
mlpipe_ts_features_final(PG_FUNCTION_ARGS)
{
	return feat_final(fcinfo, TS_SUMMARY_NATTS);
}

/* summary final: the order-free columns of ts_features. */
Datum
mlpipe_summary_final(PG_FUNCTION_ARGS)
{
	return feat_final(fcinfo, SUMMARY_NATTS);
}
