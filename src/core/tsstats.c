/*
 * tsstats.c: exact summary statistics of a (time, value) series: moments,
 * quantiles, trend and the order-dependent figures, from points sorted by
 * (ts, v). See tsstats.h.
 */
#include "tsstats.h"

#include <math.h>
#include <string.h>

const double ts_quantile_levels[TS_N_QUANTILES] = {0.05, 0.25, 0.5, 0.75, 0.95};

/* Microseconds per hour: the slope is per hour. */
#define TS_US_PER_HOUR 3600e6
/* b - a in microseconds for a <= b, exact without signed overflow. */
static inline double
ts_diff_us(int64_t a, int64_t b)
{
	return (double) ((uint64_t) b - (uint64_t) a);
}

/* Sorts at least this large call env->check once per merge. */
#define TS_CHECK_SIZE ((int64_t) 1 << 20)

bool
ts_points_sorted(const TsPoint *p, int64_t n)
{
	int64_t		i;

	for (i = 1; i < n; i++)
		if (ts_point_less(&p[i], &p[i - 1]))
			return false;
	return true;
}

/* Insertion sort of a short run of points. */
static void
points_insertion_sort(TsPoint *a, int64_t n)
{
	int64_t		i,
				j;
	TsPoint		x;

	for (i = 1; i < n; i++)
	{
		x = a[i];
		for (j = i; j > 0 && ts_point_less(&x, &a[j - 1]); j--)
			a[j] = a[j - 1];
		a[j] = x;
	}
}

/*
 * Top-down merge sort of a[0..n) with tmp (n/2 + 1 points) as scratch. Two
 * halves already in order are not merged, so sorted runs cost one comparison.
 * Returns false when env->check asked to stop.
 */
static bool
points_merge_sort(const MlEnv *env, TsPoint *a, TsPoint *tmp, int64_t n)
{
	int64_t		h,
				i,
				j,
				k;

	if (n <= 24)
	{
		points_insertion_sort(a, n);
		return true;
	}
	h = n / 2;
	if (!points_merge_sort(env, a, tmp, h) || !points_merge_sort(env, a + h, tmp, n - h))
		return false;
	if (!ts_point_less(&a[h], &a[h - 1]))
		return true;
	memcpy(tmp, a, sizeof(TsPoint) * (size_t) h);
	i = 0;
	j = h;
	k = 0;
	while (i < h && j < n)
	{
		if (ts_point_less(&a[j], &tmp[i]))
			a[k++] = a[j++];
		else
			a[k++] = tmp[i++];
	}
	while (i < h)
		a[k++] = tmp[i++];
	if (n >= TS_CHECK_SIZE && ml_check(env, "sort", 0, 0, NAN))
		return false;
	return true;
}

MlStatus
ts_sort_points(const MlEnv *env, TsPoint *p, int64_t n, MlError *err)
{
	TsPoint    *tmp;
	bool		done;

	if (n < 2 || ts_points_sorted(p, n))
		return ML_OK;
	tmp = ml_alloc(env, sizeof(TsPoint) * (size_t) (n / 2 + 1));
	if (tmp == NULL)
		return ml_fail(err, ML_ERR_MEMORY, "ts_features: out of memory sorting %lld readings",
					   (long long) n);
	done = points_merge_sort(env, p, tmp, n);
	ml_free(env, tmp);
	if (!done)
		return ml_fail_cancelled(err);
	return ML_OK;
}

/* Sift-down for the heapsort fallback of ts_select. */
static void
heap_sift(double *v, int64_t root, int64_t n)
{
	int64_t		child;
	double		x = v[root];

	while ((child = 2 * root + 1) < n)
	{
		if (child + 1 < n && v[child + 1] > v[child])
			child++;
		if (!(v[child] > x))
			break;
		v[root] = v[child];
		root = child;
	}
	v[root] = x;
}

/* Heapsort: the O(n log n) worst-case fallback of ts_select. */
static void
heap_sort(double *v, int64_t n)
{
	int64_t		i;
	double		x;

	for (i = n / 2 - 1; i >= 0; i--)
		heap_sift(v, i, n);
	for (i = n - 1; i > 0; i--)
	{
		x = v[0];
		v[0] = v[i];
		v[i] = x;
		heap_sift(v, 0, i);
	}
}

double
ts_select(double *v, int64_t n, int64_t k)
{
	int64_t		lo = 0,
				hi = n - 1,
				i,
				j,
				mid,
				m;
	int			budget = 8;
	double		pivot,
				x;

	for (m = n; m > 1; m >>= 1)
		budget += 2;
	while (hi > lo)
	{
		if (hi - lo < 16)
		{
			for (i = lo + 1; i <= hi; i++)
			{
				x = v[i];
				for (j = i; j > lo && v[j - 1] > x; j--)
					v[j] = v[j - 1];
				v[j] = x;
			}
			break;
		}
		if (budget-- == 0)
		{
			heap_sort(v + lo, hi - lo + 1);
			break;
		}
		/* Median of three: v[lo] <= pivot <= v[hi] bound both scans. */
		mid = lo + (hi - lo) / 2;
		if (v[mid] < v[lo])
		{
			x = v[mid]; v[mid] = v[lo]; v[lo] = x;
		}
		if (v[hi] < v[lo])
		{
			x = v[hi]; v[hi] = v[lo]; v[lo] = x;
		}
		if (v[hi] < v[mid])
		{
			x = v[hi]; v[hi] = v[mid]; v[mid] = x;
		}
		pivot = v[mid];
		i = lo;
		j = hi;
		while (i <= j)
		{
			while (v[i] < pivot)
				i++;
			while (v[j] > pivot)
				j--;
			if (i <= j)
			{
				x = v[i]; v[i] = v[j]; v[j] = x;
				i++;
				j--;
			}
		}
		/* Now v[lo..j] <= pivot <= v[i..hi], and v(j..i) == pivot. */
		if (k <= j)
			hi = j;
		else if (k >= i)
			lo = i;
		else
			return v[k];
	}
	return v[k];
}

/* Neumaier's compensated sum, so the mean of long series keeps its digits. */
typedef struct KSum
{
	double		s;
	double		c;
} KSum;

static inline void
ksum_add(KSum *k, double x)
{
	ml_neumaier_add(&k->s, &k->c, x);
}

static inline double
ksum_value(const KSum *k)
{
	return k->s + k->c;
}

/*
 * The quantiles of the values, interpolated like percentile_cont: rank
 * q * (n - 1) between the two order statistics around it. The ranks needed
 * are selected in increasing order, each from what lies above the previous.
 */
static MlStatus
summary_quantiles(const MlEnv *env, const TsPoint *p, int64_t n, TsSummary *out, MlError *err)
{
	double	   *v;
	int64_t		i,
				base = 0,
				prev = -1,
				rank[2 * TS_N_QUANTILES];
	double		got[2 * TS_N_QUANTILES],
				pos,
				frac;
	int			q,
				r,
				nr = 0;

	v = ml_alloc(env, sizeof(double) * (size_t) n);
	if (v == NULL)
		return ml_fail(err, ML_ERR_MEMORY, "ts_features: out of memory for the quantiles of %lld readings",
					   (long long) n);
	for (i = 0; i < n; i++)
		v[i] = p[i].v;
	for (q = 0; q < TS_N_QUANTILES; q++)
	{
		pos = ts_quantile_levels[q] * (double) (n - 1);
		rank[nr++] = (int64_t) floor(pos);
		rank[nr++] = (int64_t) floor(pos) + 1 < n ? (int64_t) floor(pos) + 1 : n - 1;
	}
	/* rank[] is non-decreasing: the levels increase. */
	for (r = 0; r < nr; r++)
	{
		if (rank[r] == prev)
		{
			got[r] = got[r - 1];
			continue;
		}
		got[r] = ts_select(v + base, n - base, rank[r] - base);
		base = rank[r] + 1;
		prev = rank[r];
	}
	for (q = 0; q < TS_N_QUANTILES; q++)
	{
		pos = ts_quantile_levels[q] * (double) (n - 1);
		frac = pos - floor(pos);
		out->q[q] = frac > 0 ? got[2 * q] + frac * (got[2 * q + 1] - got[2 * q]) : got[2 * q];
	}
	ml_free(env, v);
	return ML_OK;
}

MlStatus
ts_summarize(const MlEnv *env, const TsPoint *p, int64_t n, TsSummary *out, MlError *err)
{
	KSum		sum = {0, 0},
				tsum = {0, 0},
				sa = {0, 0},
				sb = {0, 0};
	double		mean,
				tbar,
				d,
				d2,
				dt,
				m2 = 0,
				m3 = 0,
				m4 = 0,
				sxx = 0,
				sxy = 0,
				change = 0,
				gap = 0,
				ma,
				mb,
				saa = 0,
				sbb = 0,
				sab = 0,
				g1,
				g2,
				dn = (double) n;
	int64_t		i;

	if (n < 1)
		return ml_fail(err, ML_ERR_DATA, "ts_features: no readings to summarize");
	out->n = n;
	out->min = out->max = p[0].v;
	out->first = p[0].v;
	out->last = p[n - 1].v;

	/* Pass 1: sums of values and of hours since the first reading. */
	for (i = 0; i < n; i++)
	{
		ksum_add(&sum, p[i].v);
		ksum_add(&tsum, ts_diff_us(p[0].ts, p[i].ts) / TS_US_PER_HOUR);
		if (p[i].v < out->min)
			out->min = p[i].v;
		if (p[i].v > out->max)
			out->max = p[i].v;
	}
	mean = ksum_value(&sum) / dn;
	tbar = ksum_value(&tsum) / dn;
	out->mean = mean;
	if (ml_check(env, "ts_features", 0, 0, NAN))
		return ml_fail_cancelled(err);

	/* Pass 2: centred moments and the trend. */
	for (i = 0; i < n; i++)
	{
		d = p[i].v - mean;
		d2 = d * d;
		m2 += d2;
		m3 += d2 * d;
		m4 += d2 * d2;
		dt = ts_diff_us(p[0].ts, p[i].ts) / TS_US_PER_HOUR - tbar;
		sxx += dt * dt;
		sxy += dt * d;
	}
	out->std = n > 1 ? sqrt(m2 / (dn - 1)) : NAN;
	out->skewness = out->kurtosis = NAN;
	if (n >= 3 && m2 > 0)
	{
		g1 = (m3 / dn) / pow(m2 / dn, 1.5);
		out->skewness = g1 * sqrt(dn * (dn - 1)) / (dn - 2);
	}
	if (n >= 4 && m2 > 0)
	{
		g2 = (m4 / dn) / ((m2 / dn) * (m2 / dn)) - 3.0;
		out->kurtosis = ((dn + 1) * g2 + 6.0) * (dn - 1) / ((dn - 2) * (dn - 3));
	}
	out->slope = n >= 2 && sxx > 0 ? sxy / sxx : NAN;

	/* Pass 3: consecutive pairs in time order. */
	out->mean_abs_change = out->longest_gap = out->autocorr_lag1 = NAN;
	if (n >= 2)
	{
		for (i = 1; i < n; i++)
		{
			change += fabs(p[i].v - p[i - 1].v);
			dt = ts_diff_us(p[i - 1].ts, p[i].ts);
			if (dt > gap)
				gap = dt;
			ksum_add(&sa, p[i - 1].v);
			ksum_add(&sb, p[i].v);
		}
		out->mean_abs_change = change / (dn - 1);
		out->longest_gap = gap / 1e6;
	}
	if (n >= 3)
	{
		ma = ksum_value(&sa) / (dn - 1);
		mb = ksum_value(&sb) / (dn - 1);
		for (i = 1; i < n; i++)
		{
			saa += (p[i - 1].v - ma) * (p[i - 1].v - ma);
			sbb += (p[i].v - mb) * (p[i].v - mb);
			sab += (p[i - 1].v - ma) * (p[i].v - mb);
		}
		if (saa > 0 && sbb > 0)
			out->autocorr_lag1 = sab / sqrt(saa * sbb);
	}
	if (ml_check(env, "ts_features", 0, 0, NAN))
		return ml_fail_cancelled(err);
	return summary_quantiles(env, p, n, out, err);
}
