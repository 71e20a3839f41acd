/*
 * tsstats.h: summary statistics of a series of (time, value) points, for the
 * feature aggregates mlpipe.ts_features and mlpipe.summary.
 *
 * The aggregates keep every point of a group, so every figure is exact and
 * computed at the end from the points sorted by (ts, value): the result does
 * not depend on the order the rows arrived in, nor on how parallel partial
 * states were merged, down to the last bit.
 */
#ifndef TSSTATS_H
#define TSSTATS_H

#include "mlcore.h"

/* One reading; ts in microseconds (PostgreSQL's timestamptz), v finite or +-Inf. */
typedef struct TsPoint
{
	int64_t		ts;
	double		v;
} TsPoint;

#define TS_N_QUANTILES 5
extern const double ts_quantile_levels[TS_N_QUANTILES];	/* .05 .25 .5 .75 .95 */

/* What ts_summarize computes; NaN stands for "undefined" (SQL NULL). */
typedef struct TsSummary
{
	int64_t		n;
	double		mean;
	double		std;			/* sample standard deviation (n - 1), like stddev() */
	double		min;
	double		max;
	double		q[TS_N_QUANTILES];	/* linear interpolation, like percentile_cont */
	double		skewness;		/* adjusted Fisher-Pearson G1 (scipy bias=False) */
	double		kurtosis;		/* adjusted excess kurtosis G2 (scipy bias=False) */
	double		slope;			/* least-squares slope of v against ts, per hour */
	double		first;			/* v at the smallest (ts, v) */
	double		last;			/* v at the largest (ts, v) */
	double		mean_abs_change;	/* mean |v[i+1] - v[i]| in time order */
	double		autocorr_lag1;	/* Pearson correlation of v[i] with v[i+1] */
	double		longest_gap;	/* largest ts[i+1] - ts[i], in seconds */
} TsSummary;

/* True when a comes before b in the (ts, v) order. */
static inline bool
ts_point_less(const TsPoint *a, const TsPoint *b)
{
	return a->ts < b->ts || (a->ts == b->ts && a->v < b->v);
}

/* True when p[0..n) is in (ts, v) order. */
bool		ts_points_sorted(const TsPoint *p, int64_t n);

/* Sorts p[0..n) by (ts, v): a merge sort, linear on sorted runs. */
MlStatus	ts_sort_points(const MlEnv *env, TsPoint *p, int64_t n, MlError *err);

/*
 * Every figure of TsSummary from n >= 1 points already in (ts, v) order.
 * Sums run in that order, so equal point sets give bit-identical results.
 * Uses n doubles of scratch memory for the quantiles.
 */
MlStatus	ts_summarize(const MlEnv *env, const TsPoint *p, int64_t n, TsSummary *out,
						 MlError *err);

/*
 * The k-th smallest (0-based) of v[0..n), partially reordering v
 * (introselect: quickselect with a heapsort fallback, O(n)).
 */
double		ts_select(double *v, int64_t n, int64_t k);

#endif
