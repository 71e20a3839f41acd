/* binning.c: per-feature bin edges from a sample and the byte matrix they give. */
#include "trees_int.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* qsort/bsearch order of doubles without NaN. */
int
trees_cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/* Sorts v[0..n) (no NaN) and drops duplicates; returns the new count. */
int
trees_sort_unique(double *v, int n)
{
	int			i,
				m = 0;

	qsort(v, n, sizeof(double), trees_cmp_double);
	for (i = 0; i < n; i++)
		if (m == 0 || v[i] != v[m - 1])
			v[m++] = v[i];
	return m;
}

/* Order-preserving map of a finite double to an unsigned key. */
static inline uint64_t
dkey(double v)
{
	uint64_t	u;

	memcpy(&u, &v, 8);
	return (u & UINT64_C(0x8000000000000000)) ? ~u : (u | UINT64_C(0x8000000000000000));
}

static inline double
dval(uint64_t k)
{
	uint64_t	u = (k & UINT64_C(0x8000000000000000)) ? (k & ~UINT64_C(0x8000000000000000)) : ~k;
	double		v;

	memcpy(&v, &u, 8);
	return v;
}

/* LSD radix sort of n keys (4 passes of 16 bits); tmp holds n keys, cnt 65536. */
static void
radix_sort(uint64_t *a, uint64_t *tmp, int64_t n, uint32_t *cnt)
{
	int			pass;

	for (pass = 0; pass < 4; pass++)
	{
		int			shift = pass * 16;
		int64_t		i;
		uint32_t	sum = 0;

		memset(cnt, 0, 65536 * sizeof(uint32_t));
		for (i = 0; i < n; i++)
			cnt[(a[i] >> shift) & 0xFFFF]++;
		if (cnt[(a[0] >> shift) & 0xFFFF] == (uint32_t) n)
			continue;			/* all equal in this digit */
		for (i = 0; i < 65536; i++)
		{
			uint32_t	c = cnt[i];

			cnt[i] = sum;
			sum += c;
		}
		for (i = 0; i < n; i++)
			tmp[cnt[(a[i] >> shift) & 0xFFFF]++] = a[i];
		memcpy(a, tmp, n * sizeof(uint64_t));
	}
}

/* A cut between distinct sorted values a < b: their midpoint, kept in [a, b). */
static double
cut_between(double a, double b)
{
	double		mid = a / 2 + b / 2;

	if (!(mid < b) || mid < a)
		mid = a;
	return mid;
}

typedef struct BinFitTask
{
	const double *X;
	int64_t		n;
	int			d;
	int			max_vb;
	const int64_t *rows;		/* sample row ids, or NULL for all */
	int64_t		m;				/* rows in the sample */
	uint64_t  **keys;			/* per task: 2*m keys */
	uint32_t  **cnt;			/* per task: 65536 */
	TreeBins   *out;
} BinFitTask;

/* Edges for one feature from its sorted finite values s[0..m). */
static void
fit_feature(const uint64_t *s, int64_t m, int max_vb, double *cuts, uint16_t *nb)
{
	int64_t		i,
				distinct = 0;
	int			nc = 0;
	int			k;

	for (k = 0; k < 256; k++)
		cuts[k] = INFINITY;
	if (m == 0)
	{
		*nb = 1;
		return;
	}
	for (i = 0; i < m; i++)
		if (i == 0 || s[i] != s[i - 1])
			distinct++;
	if (distinct <= max_vb)
	{
		for (i = 1; i < m; i++)
			if (s[i] != s[i - 1])
				cuts[nc++] = cut_between(dval(s[i - 1]), dval(s[i]));
	}
	else
	{
		/* Greedy equal-count bins over distinct values (as LightGBM). */
		int64_t		rest = m;
		int			bins_left = max_vb;
		double		mean = (double) rest / bins_left;
		int64_t		acc = 0;

		i = 0;
		while (i < m && nc < max_vb - 1)
		{
			int64_t		j = i;
			int64_t		c;

			while (j < m && s[j] == s[i])
				j++;
			c = j - i;
			/* A heavy value gets a bin of its own: close the current one first. */
			if (acc > 0 && c >= mean)
			{
				cuts[nc++] = cut_between(dval(s[i - 1]), dval(s[i]));
				rest -= acc;
				bins_left--;
				acc = 0;
				mean = bins_left > 0 ? (double) rest / bins_left : (double) rest;
				if (nc >= max_vb - 1)
					break;
			}
			acc += c;
			if (acc >= mean && j < m)
			{
				cuts[nc++] = cut_between(dval(s[i]), dval(s[j]));
				rest -= acc;
				bins_left--;
				acc = 0;
				mean = bins_left > 0 ? (double) rest / bins_left : (double) rest;
			}
			i = j;
		}
	}
	/* Cuts must be finite (an Inf value only ever sits at the ends). */
	k = 0;
	for (i = 0; i < nc; i++)
		if (isfinite(cuts[i]) && (k == 0 || cuts[i] > cuts[k - 1]))
			cuts[k++] = cuts[i];
	for (i = k; i < 256; i++)
		cuts[i] = INFINITY;
	*nb = (uint16_t) (k + 1);
}

static void
bins_fit_task(void *arg, int task, int n_tasks)
{
	BinFitTask *t = arg;
	int			j;
	uint64_t   *keys = t->keys[task];
	uint64_t   *tmp = keys + t->m;

	for (j = task; j < t->d; j += n_tasks)
	{
		const double *col = t->X + (size_t) j * t->n;
		int64_t		i,
					m = 0;

		for (i = 0; i < t->m; i++)
		{
			double		v = col[t->rows ? t->rows[i] : i];

			if (isfinite(v))
				keys[m++] = dkey(v);
		}
		if (m > 1)
			radix_sort(keys, tmp, m, t->cnt[task]);
		fit_feature(keys, m, t->max_vb, t->out->cuts + (size_t) j * 256,
					&t->out->n_bins[j]);
	}
}

MlStatus
trees_bins_fit(const MlEnv *env, const double *X, int64_t n, int d, int max_bins,
			   int64_t sample_rows, uint64_t seed, TreeBins *out, MlError *err)
{
	BinFitTask	t;
	int			nt,
				k;
	int64_t    *rows = NULL;
	int64_t		m = n;

	memset(out, 0, sizeof(*out));
	if (n <= 0 || d <= 0)
		return ml_fail(err, ML_ERR_DATA, "no rows or no features to bin (n=%lld, d=%d)",
					   (long long) n, d);
	if (d > ML_MAX_FEATURES)
		return ml_fail(err, ML_ERR_PARAM, "%d features exceed the limit of %d", d,
					   ML_MAX_FEATURES);
	if (max_bins < 2 || max_bins > TREES_MAX_BINS)
		return ml_fail(err, ML_ERR_PARAM, "max_bins must be between 2 and %d, got %d",
					   TREES_MAX_BINS, max_bins);
	if (sample_rows > 0 && n > sample_rows)
	{
		/* Seeded sample without replacement (Floyd's method over a bitmap would
		 * need more memory; a partial shuffle of indices is simple enough). */
		MlRng		rng;
		int64_t		i;
		uint8_t    *mark = ml_calloc(env, (size_t) n, 1);

		if (!mark)
			return ml_fail(err, ML_ERR_MEMORY, "out of memory sampling rows for binning");
		rows = ml_alloc(env, sizeof(int64_t) * (size_t) sample_rows);
		if (!rows)
		{
			ml_free(env, mark);
			return ml_fail(err, ML_ERR_MEMORY, "out of memory sampling rows for binning");
		}
		ml_rng_seed(&rng, seed ^ UINT64_C(0xB1B1B1B1));
		for (i = n - sample_rows; i < n; i++)
		{
			int64_t		r = (int64_t) ml_rng_below(&rng, (uint64_t) i + 1);

			if (mark[r])
				r = i;
			mark[r] = 1;
		}
		m = 0;
		for (i = 0; i < n; i++)
			if (mark[i])
				rows[m++] = i;
		ml_free(env, mark);
	}
	out->d = d;
	out->n_bins = ml_calloc(env, d, sizeof(uint16_t));
	out->cuts = ml_alloc(env, sizeof(double) * 256 * (size_t) d);
	nt = env->n_threads > 1 ? env->n_threads : 1;
	if (nt > d)
		nt = d;
	if (nt > 64)
		nt = 64;
	memset(&t, 0, sizeof(t));
	t.keys = ml_calloc(env, nt, sizeof(uint64_t *));
	t.cnt = ml_calloc(env, nt, sizeof(uint32_t *));
	if (!out->n_bins || !out->cuts || !t.keys || !t.cnt)
		goto oom;
	for (k = 0; k < nt; k++)
	{
		t.keys[k] = ml_alloc(env, sizeof(uint64_t) * 2 * (size_t) m);
		t.cnt[k] = ml_alloc(env, sizeof(uint32_t) * 65536);
		if (!t.keys[k] || !t.cnt[k])
			goto oom;
	}
	t.X = X;
	t.n = n;
	t.d = d;
	t.max_vb = max_bins < TREES_MAX_VALUE_BINS ? max_bins : TREES_MAX_VALUE_BINS;
	t.rows = rows;
	t.m = m;
	t.out = out;
	ml_parallel_for(env, nt, bins_fit_task, &t);
	for (k = 0; k < nt; k++)
	{
		ml_free(env, t.keys[k]);
		ml_free(env, t.cnt[k]);
	}
	ml_free(env, t.keys);
	ml_free(env, t.cnt);
	ml_free(env, rows);
	return ML_OK;

oom:
	if (t.keys)
		for (k = 0; k < nt; k++)
			ml_free(env, t.keys[k]);
	if (t.cnt)
		for (k = 0; k < nt; k++)
			ml_free(env, t.cnt[k]);
	ml_free(env, t.keys);
	ml_free(env, t.cnt);
	ml_free(env, rows);
	trees_bins_free(env, out);
	return ml_fail(err, ML_ERR_MEMORY, "out of memory fitting bin edges for %d features", d);
}

/* Bin code of v: branch-free lower bound over 256 padded cuts. */
static inline uint8_t
bin_of(const double *cuts, int nb, double v)
{
	int			lo = 0;

	if (v != v)
		return (uint8_t) nb;
	lo += (cuts[lo + 127] < v) ? 128 : 0;
	lo += (cuts[lo + 63] < v) ? 64 : 0;
	lo += (cuts[lo + 31] < v) ? 32 : 0;
	lo += (cuts[lo + 15] < v) ? 16 : 0;
	lo += (cuts[lo + 7] < v) ? 8 : 0;
	lo += (cuts[lo + 3] < v) ? 4 : 0;
	lo += (cuts[lo + 1] < v) ? 2 : 0;
	lo += (cuts[lo] < v) ? 1 : 0;
	if (lo > nb - 1)
		lo = nb - 1;			/* +Inf beyond the padding */
	return (uint8_t) lo;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define BINS_HAVE_AVX512 1

/*
 * bin_of by counting instead of halving: bin_of's lower bound over the
 * sorted cuts is the number of cuts below v (at most 255), which is 16
 * times the number of coarse cuts below v (every 16th cut, the last of
 * each 16) plus the number below v among the 16 cuts of that bucket: four
 * 8-lane ordered compares and two bit counts a value, no dependent loads.
 * The same clamp and NaN code: the same bytes.
 */
__attribute__((target("avx512f,popcnt")))
static inline uint8_t
bin_of_avx512(const double *cuts, __m512d coarse_lo, __m512d coarse_hi, int nb, double v)
{
	__m512d		vv = _mm512_set1_pd(v);
	unsigned	b = (unsigned) __builtin_popcount(_mm512_cmp_pd_mask(coarse_lo, vv, _CMP_LT_OQ) |
												  (_mm512_cmp_pd_mask(coarse_hi, vv, _CMP_LT_OQ) << 8));
	const double *fine;
	int			lo;

	if (v != v)
		return (uint8_t) nb;
	b = b < 15 ? b : 15;
	fine = cuts + 16 * b;
	lo = (int) (16 * b) + __builtin_popcount(_mm512_cmp_pd_mask(_mm512_loadu_pd(fine), vv, _CMP_LT_OQ) |
											 (_mm512_cmp_pd_mask(_mm512_loadu_pd(fine + 8), vv, _CMP_LT_OQ) << 8));
	lo = lo < 255 ? lo : 255;
	if (lo > nb - 1)
		lo = nb - 1;
	return (uint8_t) lo;
}

/* Bins rows i0..i1 of one feature column col into o[i * d] with bin_of_avx512. */
__attribute__((target("avx512f,popcnt")))
static void
bins_column_avx512(const double *cuts, int nb, const double *col, uint8_t *o, int d,
				   int64_t i0, int64_t i1)
{
	__m512i		stride = _mm512_set_epi64(128, 112, 96, 80, 64, 48, 32, 16);
	__m512d		coarse_lo = _mm512_i64gather_pd(stride, cuts + 15 - 16, 8),
				coarse_hi = _mm512_i64gather_pd(stride, cuts + 15 + 128 - 16, 8);
	int64_t		i;

	for (i = i0; i < i1; i++)
		o[(size_t) i * d] = bin_of_avx512(cuts, coarse_lo, coarse_hi, nb, col[i]);
}
#endif

typedef struct BinApplyTask
{
	const TreeBins *bins;
	const double *X;
	size_t		ld;				/* column stride of X */
	int64_t		m;
	uint8_t    *B;
	int64_t		row0;
} BinApplyTask;

static void
bins_apply_task(void *arg, int task, int n_tasks)
{
	BinApplyTask *t = arg;
	int			d = t->bins->d;
	int64_t		i0 = t->m * task / n_tasks,
				i1 = t->m * (task + 1) / n_tasks,
				c0;
	int			j;
	bool		simd = false;

#ifdef BINS_HAVE_AVX512
	simd = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("popcnt");
#endif

	/* chunks of rows, so the bytes being written stay in cache */
	for (c0 = i0; c0 < i1; c0 += 2048)
	{
		int64_t		c1 = c0 + 2048 < i1 ? c0 + 2048 : i1;

		for (j = 0; j < d; j++)
		{
			const double *cuts = t->bins->cuts + (size_t) j * 256;
			int			nb = t->bins->n_bins[j];
			const double *col = t->X + (size_t) j * t->ld;
			uint8_t    *o = t->B + (size_t) t->row0 * d + j;
			int64_t		i = c0;

#ifdef BINS_HAVE_AVX512
			if (simd)
			{
				bins_column_avx512(cuts, nb, col, o, d, c0, c1);
				i = c1;
			}
#endif
			for (; i < c1; i++)
				o[(size_t) i * d] = bin_of(cuts, nb, col[i]);
		}
	}
}

void
trees_bins_apply(const MlEnv *env, const TreeBins *bins, const double *X, int64_t m,
				 uint8_t *B, int64_t row0)
{
	BinApplyTask t;
	int64_t		blocks;

	t.bins = bins;
	t.X = X;
	t.ld = (size_t) m;
	t.m = m;
	t.B = B;
	t.row0 = row0;
	if (m <= 0)
		return;
	blocks = m / 65536 + 1;
	if (env == NULL)
		bins_apply_task(&t, 0, 1);
	else
		ml_parallel_for(env, blocks > 64 ? 64 : (int) blocks, bins_apply_task, &t);
}

void
trees_bins_apply_block(const TreeBins *bins, const double *X, size_t ld, int64_t m,
					   uint8_t *B, int64_t row0)
{
	BinApplyTask t;

	t.bins = bins;
	t.X = X;
	t.ld = ld;
	t.m = m;
	t.B = B;
	t.row0 = row0;
	if (m > 0)
		bins_apply_task(&t, 0, 1);
}

void
trees_bins_apply_row(const TreeBins *bins, const double *x, uint8_t *out)
{
	int			j;

	for (j = 0; j < bins->d; j++)
		out[j] = bin_of(bins->cuts + (size_t) j * 256, bins->n_bins[j], x[j]);
}

void
trees_bins_free(const MlEnv *env, TreeBins *bins)
{
	ml_free(env, bins->n_bins);
	ml_free(env, bins->cuts);
	bins->n_bins = NULL;
	bins->cuts = NULL;
}

/* Histogram slot offsets of the features (their bins + a missing slot each). */
uint32_t
trees_hist_offsets(const TreeBins *bins, int d, uint32_t *off)
{
	uint32_t	slots = 0;
	int			j;

	for (j = 0; j < d; j++)
	{
		off[j] = slots;
		slots += (uint32_t) bins->n_bins[j] + 1;
	}
	off[d] = slots;
	return slots;
}
