/*
 * features.c: the feature aggregates mlpipe.ts_features(timestamptz, float8)
 * and mlpipe.summary(float8).
 *
 * The state keeps every usable (ts, value) point of its group in the
 * aggregate's memory context, plus the count of missing ones. Partial states
 * (parallel workers) are serialized as the raw points and concatenated by the
 * combine function; the final function sorts the points by (ts, value) and
 * hands them to src/core/tsstats.c, so each result is exact and the same
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
PG_FUNCTION_INFO_V1(mlpipe_features_serial);
PG_FUNCTION_INFO_V1(mlpipe_features_deserial);
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

/* Serialized state: this header, then n TsPoints as they are in memory. */
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

/* An empty state in the aggregate context. */
static FeatState *
feat_new(MemoryContext aggcxt, bool timed)
{
	FeatState  *st = MemoryContextAllocZero(aggcxt, sizeof(FeatState));

	st->sorted = true;
	st->timed = timed;
	return st;
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
	MemoryContext aggcxt = agg_context(fcinfo, "mlpipe._ts_features_trans");
	FeatState  *st = PG_ARGISNULL(0) ? feat_new(aggcxt, true) : (FeatState *) PG_GETARG_POINTER(0);
	TimestampTz ts;
	double		v;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || isnan(v = PG_GETARG_FLOAT8(2)))
	{
		st->n_null++;
		PG_RETURN_POINTER(st);
	}
	ts = PG_GETARG_TIMESTAMPTZ(1);
	if (TIMESTAMP_NOT_FINITE(ts))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("ts_features: timestamp %s is not finite", timestamptz_to_str(ts)),
				 errhint("Filter out infinite timestamps or set them to NULL (counted in n_null).")));
	feat_add(st, aggcxt, ts, v);
	PG_RETURN_POINTER(st);
}

/* summary transition: every value at time 0, so the order is the value order. */
Datum
mlpipe_summary_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = agg_context(fcinfo, "mlpipe._summary_trans");
	FeatState  *st = PG_ARGISNULL(0) ? feat_new(aggcxt, false) : (FeatState *) PG_GETARG_POINTER(0);
	double		v;

	if (PG_ARGISNULL(1) || isnan(v = PG_GETARG_FLOAT8(1)))
		st->n_null++;
	else
		feat_add(st, aggcxt, 0, v);
	PG_RETURN_POINTER(st);
}

/*
 * Combine: appends b's points to a (a copy of b in the aggregate context
 * when a is NULL). Not strict: either state may be NULL.
 */
Datum
mlpipe_features_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = agg_context(fcinfo, "mlpipe._features_combine");
	FeatState  *a = PG_ARGISNULL(0) ? NULL : (FeatState *) PG_GETARG_POINTER(0);
	FeatState  *b = PG_ARGISNULL(1) ? NULL : (FeatState *) PG_GETARG_POINTER(1);
	bool		in_order;

	if (b == NULL)
		return agg_state_unchanged(fcinfo);
	if (a == NULL)
		a = feat_new(aggcxt, b->timed);
	in_order = a->sorted && b->sorted &&
		(a->n == 0 || b->n == 0 || !ts_point_less(&b->pts[0], &a->pts[a->n - 1]));
	if (b->n > 0)
	{
		feat_reserve(a, aggcxt, b->n);
		memcpy(a->pts + a->n, b->pts, sizeof(TsPoint) * b->n);
		a->n += b->n;
	}
	a->sorted = in_order;
	a->n_null += b->n_null;
	PG_RETURN_POINTER(a);
}

/* Serial: the header and the points, for a parallel worker's partial state. */
Datum
mlpipe_features_serial(PG_FUNCTION_ARGS)
{
	FeatState  *st = (FeatState *) PG_GETARG_POINTER(0);
	Size		len = VARHDRSZ + sizeof(FeatWire) + sizeof(TsPoint) * st->n;
	bytea	   *out;
	FeatWire	w;

	/* Cannot happen: FEAT_MAX_POINTS keeps a state under 1 GB. */
	if (len > MaxAllocSize)
		elog(ERROR, "%s: partial state of %lld readings is too large", feat_name(st), (long long) st->n);
	out = palloc(len);
	w.magic = FEAT_MAGIC;
	w.version = FEAT_WIRE_VERSION;
	w.flags = (st->sorted ? FEAT_SORTED : 0) | (st->timed ? FEAT_TIMED : 0);
	w.n = st->n;
	w.n_null = st->n_null;
	SET_VARSIZE(out, len);
	memcpy(VARDATA(out), &w, sizeof(w));
	if (st->n > 0)
		memcpy(VARDATA(out) + sizeof(w), st->pts, sizeof(TsPoint) * st->n);
	PG_RETURN_BYTEA_P(out);
}

/* Deserial: checks the header and the length before trusting a count. */
Datum
mlpipe_features_deserial(PG_FUNCTION_ARGS)
{
	bytea	   *in = PG_GETARG_BYTEA_PP(0);
	Size		len = VARSIZE_ANY_EXHDR(in);
	const char *data = VARDATA_ANY(in);
	FeatWire	w;
	FeatState  *st;

	if (len < sizeof(w))
		elog(ERROR, "mlpipe: feature state too short (%zu bytes)", len);
	memcpy(&w, data, sizeof(w));
	if (w.magic != FEAT_MAGIC || w.version != FEAT_WIRE_VERSION || w.n < 0 || w.n_null < 0 ||
		w.n > FEAT_MAX_POINTS || len != sizeof(w) + sizeof(TsPoint) * (Size) w.n)
		elog(ERROR, "mlpipe: corrupt feature state (%zu bytes)", len);
	st = palloc0(sizeof(FeatState));
	st->timed = (w.flags & FEAT_TIMED) != 0;
	st->sorted = (w.flags & FEAT_SORTED) != 0;
	st->n = st->cap = w.n;
	st->n_null = w.n_null;
	if (w.n > 0)
	{
		st->pts = palloc_extended(sizeof(TsPoint) * w.n, MCXT_ALLOC_HUGE);
		memcpy(st->pts, data + sizeof(w), sizeof(TsPoint) * w.n);
	}
	PG_RETURN_POINTER(st);
}

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
	FeatState  *st = PG_ARGISNULL(0) ? NULL : (FeatState *) PG_GETARG_POINTER(0);
	TupleDesc	td;
	Datum		values[TS_SUMMARY_NATTS];
	bool		nulls[TS_SUMMARY_NATTS];
	TsSummary	s;
	int			i;

	if (st == NULL)
		PG_RETURN_NULL();
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
