/*
 * kmeans.c: Lloyd k-means (Hamerly-accelerated, same results as plain
 * Lloyd), mini-batch k-means, k-means++ / random / given seeding, predict,
 * and the MODEL section codec.
 *
 * Behaviour follows scikit-learn 1.2's KMeans(algorithm="lloyd") and
 * MiniBatchKMeans: the same iteration, empty-cluster relocation, stopping
 * rules (labels unchanged, or total squared centre shift <= tol times the
 * mean feature variance), a final E-step when not strictly converged, and
 * the greedy k-means++ with 2 + log(k) local trials.
 *
 * Determinism. The Lloyd M-step sums are exact (128-bit fixed point, see
 * km_lloyd_exact; a double-sum fallback exists for data whose exponent range
 * is too wide, or compilers without __int128). Every other reduction over
 * rows goes through fixed blocks of KM_BLOCK rows: each block is summed in
 * order into its own slot and the slots are combined in block order on the
 * main thread. Which thread runs a block never matters, so a fit gives the
 * same bits for any thread count.
 *
 * Exactness of the acceleration. "Plain Lloyd" here is: the squared distance
 * of x to c is km_dist2 (a fixed summation order), and a row goes to the
 * lowest-index centre with the smallest such value. Hamerly's bounds skip
 * the scan of all centres only when they prove, with a relative slack
 * (KM_SLACK) far above the rounding error of any of these quantities, that
 * the current centre is strictly nearest; every other row is scanned exactly
 * as plain Lloyd scans it. So labels, centres and inertia are bit-identical
 * with and without KM_FLAG_PLAIN_LLOYD (the tests check it).
 *
 * Cosine distance is spherical k-means: rows (after standardising, when
 * asked) are scaled to unit L2 length, centroids are the normalised means,
 * and a row goes to the centroid of largest cosine, computed as the smallest
 * squared Euclidean distance between unit vectors (|x - c|^2 = 2 - 2 cos).
 * Inertia is sum(1 - cos(x, c)) = sum |x - c|^2 / 2, which is the accurate
 * way to evaluate it for nearly aligned vectors.
 */
#include "kmeans.h"
#include "artifact.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define KM_BLOCK		4096	/* rows per block: the unit of every reduction */
#define KM_SLAB_WORK	(1 << 27)	/* distance terms per parallel call, between checks */
#define KM_MAX_TASKS	64
#define KM_MAX_K		1000000
#define KM_SLACK		1e-9	/* relative slack on every distance bound */
#define KM_TINY			1e-140	/* no pruning below this (squares could underflow) */
#define KM_HUGE			1e150	/* bounds are clamped here (squares stay finite) */
#define KM_MAX_ALLOCS	96

/*
 * The hot loops also get an AVX2 build chosen at load time (GCC on x86-64).
 * It runs the same IEEE operations in the same order, only wider (no FMA),
 * so both builds give the same bits.
 */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && \
	defined(__linux__) && !defined(KM_NO_CLONES)
#define KM_HOT __attribute__((target_clones("avx2", "default")))
#else
#define KM_HOT
#endif

#if defined(__SIZEOF_INT128__)
#define KM_HAVE_INT128 1
typedef __int128 km_i128;
#endif

/* ---------------------------------------------------------------------- */
/* Small numeric kernels                                                  */
/* ---------------------------------------------------------------------- */

/*
 * The reference squared distance: four lanes, lane r summing (x_j - c_j)^2
 * over the features j = r (mod 4) in order, then (L0 + L1) + (L2 + L3).
 * The lanes break the dependency chain (and vectorise); km_scan computes
 * the very same expression, so both give the same bits.
 */
static inline double
km_dist2(const double *x, const double *c, int d)
{
	double		a0 = 0.0,
				a1 = 0.0,
				a2 = 0.0,
				a3 = 0.0,
				t;
	int			j = 0;

	for (; j + 4 <= d; j += 4)
	{
		double		t0 = x[j] - c[j],
					t1 = x[j + 1] - c[j + 1],
					t2 = x[j + 2] - c[j + 2],
					t3 = x[j + 3] - c[j + 3];

		a0 += t0 * t0;
		a1 += t1 * t1;
		a2 += t2 * t2;
		a3 += t3 * t3;
	}
	if (j < d)
	{
		t = x[j] - c[j];
		a0 += t * t;
		j++;
	}
	if (j < d)
	{
		t = x[j] - c[j];
		a1 += t * t;
		j++;
	}
	if (j < d)
	{
		t = x[j] - c[j];
		a2 += t * t;
	}
	return (a0 + a1) + (a2 + a3);
}

/* Four doubles; GCC and Clang turn these into SSE2 pairs or AVX registers. */
typedef double km_v4 __attribute__((vector_size(32)));

/* v = the four doubles at p (a macro: a function returning km_v4 would
 * have an ABI that depends on AVX). */
#define KM_LOAD4(v, p) memcpy(&(v), (p), sizeof(km_v4))

/*
 * Squared distances of x to all k centres into dist[0..k), CT being the
 * centres transposed (d x k). Four centres at a time, with the four lanes of
 * km_dist2 held in four vectors: every value equals km_dist2's bit for bit.
 */
static inline void
km_scan(const double *x, const double *CT, int k, int d, double *restrict dist)
{
	int			c0 = 0,
				j;
	size_t		stride = (size_t) k;

	for (; c0 + 4 <= k; c0 += 4)
	{
		const double *col = CT + c0;
		km_v4		a0 = {0, 0, 0, 0},
					a1 = a0,
					a2 = a0,
					a3 = a0,
					t,
					y;

		for (j = 0; j + 4 <= d; j += 4)
		{
			KM_LOAD4(y, col + j * stride);
			t = x[j] - y;
			a0 += t * t;
			KM_LOAD4(y, col + (j + 1) * stride);
			t = x[j + 1] - y;
			a1 += t * t;
			KM_LOAD4(y, col + (j + 2) * stride);
			t = x[j + 2] - y;
			a2 += t * t;
			KM_LOAD4(y, col + (j + 3) * stride);
			t = x[j + 3] - y;
			a3 += t * t;
		}
		if (j < d)
		{
			KM_LOAD4(y, col + j * stride);
			t = x[j] - y;
			a0 += t * t;
			j++;
		}
		if (j < d)
		{
			KM_LOAD4(y, col + j * stride);
			t = x[j] - y;
			a1 += t * t;
			j++;
		}
		if (j < d)
		{
			KM_LOAD4(y, col + j * stride);
			t = x[j] - y;
			a2 += t * t;
		}
		t = (a0 + a1) + (a2 + a3);
		memcpy(dist + c0, &t, sizeof(t));
	}
	for (; c0 < k; c0++)
	{
		double		b[4] = {0, 0, 0, 0};

		for (j = 0; j < d; j++)
		{
			double		t = x[j] - CT[j * stride + c0];

			b[j & 3] += t * t;
		}
		dist[c0] = (b[0] + b[1]) + (b[2] + b[3]);
	}
}

/* Lowest index of the minimum; *second gets the next smallest value. */
static inline int
km_argmin2(const double *dist, int k, double *second)
{
	int			best = 0,
				c;
	double		b = dist[0],
				s = INFINITY;

	for (c = 1; c < k; c++)
	{
		double		v = dist[c];

		if (v < b)
		{
			s = b;
			b = v;
			best = c;
		}
		else if (v < s)
			s = v;
	}
	*second = s;
	return best;
}

static void
km_transpose(const double *C, int k, int d, double *CT)
{
	int			c,
				j;

	for (c = 0; c < k; c++)
		for (j = 0; j < d; j++)
			CT[(size_t) j * k + c] = C[(size_t) c * d + j];
}


/*
 * The row transform shared by training and predict, so both compute the
 * same bits: (x - mean) / scale when standardising, then division by the L2
 * norm for cosine. Returns false for a zero row under cosine.
 */
static bool
km_transform_row(const double *x, int d, const double *mean, const double *scale,
				 bool cosine, double *out)
{
	int			j;

	if (mean)
		for (j = 0; j < d; j++)
			out[j] = (x[j] - mean[j]) / scale[j];
	else if (out != x)
		memcpy(out, x, sizeof(double) * d);
	if (cosine)
	{
		double		s = 0.0,
					norm;

		for (j = 0; j < d; j++)
			s += out[j] * out[j];
		norm = sqrt(s);
		if (!(norm > 0.0) || !isfinite(norm))
			return false;
		for (j = 0; j < d; j++)
			out[j] = out[j] / norm;
	}
	return true;
}

/* ---------------------------------------------------------------------- */
/* Fit context: allocations, errors, the block runner                     */
/* ---------------------------------------------------------------------- */

typedef struct KmFit
{
	const MlEnv *env;
	MlError    *err;
	const double *W;			/* working rows (transformed), n x d */
	int64_t		n;
	int			d;
	int			k;
	int			nt;				/* task slots (scratch is per task) */
	int64_t		nblocks;
	size_t		dist_stride;	/* doubles of F->dist per task */
	bool		cosine;
	bool		plain;
	int			max_iter;
	double		tol;			/* scaled: tol * mean variance */
	void	   *allocs[KM_MAX_ALLOCS];
	int			n_allocs;
	/* Lloyd scratch, allocated once per fit */
	double	   *lb;				/* n lower bounds (NULL when plain) */
	double	   *CT;				/* d x k */
	double	   *Cnew;			/* k x d */
	double	   *sums;			/* k x d */
	int64_t    *counts;			/* k */
	double	   *shift;			/* k */
	double	   *down;			/* k */
	double	   *half;			/* k */
	double	   *psums;			/* slab x k x d */
	int64_t    *pcounts;		/* slab x k */
	int64_t		slab;			/* blocks per parallel call in the Lloyd pass */
	double	   *pval;			/* nblocks: per-block inertia */
	int64_t    *pchanged;		/* nblocks */
	double	   *dist;			/* nt x 4 max(k, 64) */
	double	   *reloc;			/* n, allocated on first empty cluster */
	int		   *empty;			/* k: the empty clusters, ascending */
	int64_t    *far;			/* k: the rows they take, farthest first */
	double	   *up;				/* k: upper-bound increments (exact path) */
	double	   *ub;				/* n upper bounds (exact path) */
	bool		exact;			/* exact incremental sums (km_lloyd_exact) */
#ifdef KM_HAVE_INT128
	int		   *lsb;			/* d: exponent of the lowest bit of column j */
	km_i128    *S;				/* k x d exact sums, scaled by 2^-lsb[j] */
	km_i128    *tS;				/* nt x k x d per-task deltas */
	int64_t    *tcnt;			/* nt x k per-task count deltas */
	km_i128    *Srel;			/* k x d, copy for relocation */
	int64_t    *crel;			/* k, copy for relocation */
	int		   *need;			/* nt x KM_BLOCK rows failing the bound test */
	double	   *need_l;			/* nt x KM_BLOCK their lower bounds */
#endif
	int		   *map;			/* k, for the same-clustering test */
	double		last_value;		/* for progress reports between slabs */
	/* k-means++ scratch, allocated on first use for pp_cap rows */
	int64_t		pp_cap;
	double	   *pp_closest;
	double	   *pp_pval;
	double	   *pp_prefix;
	double	   *pp_candT;
} KmFit;

static void *
km_alloc(KmFit *F, size_t n, size_t size, const char *what)
{
	size_t		bytes;
	void	   *p = NULL;

	if (F->n_allocs < KM_MAX_ALLOCS && ml_mul_size(n, size, &bytes))
		p = ml_alloc(F->env, bytes);
	if (p == NULL)
	{
		ml_fail(F->err, ML_ERR_MEMORY, "out of memory: k-means needs %zu x %zu bytes for %s",
				n, size, what);
		return NULL;
	}
	F->allocs[F->n_allocs++] = p;
	return p;
}

static void
km_free_all(KmFit *F)
{
	int			i;

	for (i = 0; i < F->n_allocs; i++)
		ml_free(F->env, F->allocs[i]);
	F->n_allocs = 0;
}


/* The shared block runner (mlcore.h), with k-means' cancel message and task cap. */
typedef MlBlockFn KmBlockFn;
typedef MlCombineFn KmCombineFn;

static MlStatus
km_run(KmFit *F, int64_t nblocks, int64_t slab, KmBlockFn block, KmCombineFn combine,
	   void *arg, const char *stage, int iter, int max_iter, double value)
{
	return ml_run_blocks(F->env, nblocks, slab, KM_MAX_TASKS, block, combine, arg,
						 stage, iter, max_iter, value, F->err);
}

/* Blocks per parallel call for work of `cost` distance terms per row. */
static int64_t
km_slab_for(const KmFit *F, double cost)
{
	double		per_block = (double) KM_BLOCK * (cost < 1 ? 1 : cost);
	double		s = ceil((double) KM_SLAB_WORK / per_block);

	if (s < F->nt)
		s = F->nt;
	if (s > (double) F->nblocks)
		s = (double) F->nblocks;
	return (int64_t) s;
}

static inline int64_t
km_block_end(int64_t b, int64_t n)
{
	int64_t		r1 = (b + 1) * KM_BLOCK;

	return r1 < n ? r1 : n;
}

/* ---------------------------------------------------------------------- */
/* Input check: every value finite                                        */
/* ---------------------------------------------------------------------- */

typedef struct KmFinite
{
	const double *X;
	int64_t		n;
	int			d;
	int64_t    *first_bad;		/* per block: first non-finite index, or -1 */
} KmFinite;

static void
km_finite_block(void *arg, int64_t b, int64_t slot, int task)
{
	KmFinite   *V = arg;
	int64_t		i = b * KM_BLOCK * V->d,
				end = km_block_end(b, V->n) * V->d;
	uint64_t	acc = 0;

	/*
	 * The exponent field plus one unit carries into bit 63 exactly when it is
	 * all ones (Inf or NaN); integer operations, so the loop vectorises.
	 */
	for (; i < end; i++)
	{
		uint64_t	u;

		memcpy(&u, V->X + i, 8);
		acc |= (u & UINT64_C(0x7FF0000000000000)) + (UINT64_C(1) << 52);
	}
	V->first_bad[b] = -1;
	if (acc >> 63)
		for (i = b * KM_BLOCK * V->d; i < end; i++)
			if (!isfinite(V->X[i]))
			{
				V->first_bad[b] = i;
				break;
			}
}

static MlStatus
km_check_finite(KmFit *F, const double *X)
{
	KmFinite	V;
	int64_t		b;
	MlStatus	st;

	V.X = X;
	V.n = F->n;
	V.d = F->d;
	V.first_bad = km_alloc(F, (size_t) F->nblocks, sizeof(int64_t), "the input check");
	if (!V.first_bad)
		return F->err->code;
	st = km_run(F, F->nblocks, km_slab_for(F, F->d), km_finite_block, NULL, &V,
				"kmeans", 0, 0, 0.0);
	if (st != ML_OK)
		return st;
	for (b = 0; b < F->nblocks; b++)
		if (V.first_bad[b] >= 0)
			return ml_fail(F->err, ML_ERR_DATA,
						   "k-means needs finite values: row %lld, feature %lld is %g",
						   (long long) (V.first_bad[b] / F->d) + 1,
						   (long long) (V.first_bad[b] % F->d) + 1, X[V.first_bad[b]]);
	return ML_OK;
}

/* ---------------------------------------------------------------------- */
/* Column moments (standardize, tolerance)                                */
/* ---------------------------------------------------------------------- */

typedef struct KmMoments
{
	const double *X;
	int64_t		n;
	int			d;
	const double *mean;			/* NULL: pass 1 (sums); else pass 2 (squared deviations) */
	double	   *part;			/* slab x 2d: sum, compensation */
	double	   *acc;			/* 2d */
} KmMoments;

static void
km_moments_block(void *arg, int64_t b, int64_t slot, int task)
{
	KmMoments  *M = arg;
	int			d = M->d;
	double	   *s = M->part + (size_t) slot * 2 * d;
	double	   *comp = s + d;
	int64_t		i,
				r1 = km_block_end(b, M->n);
	int			j;

	memset(s, 0, sizeof(double) * 2 * d);
	for (i = b * KM_BLOCK; i < r1; i++)
	{
		const double *x = M->X + (size_t) i * d;

		if (M->mean)
			for (j = 0; j < d; j++)
			{
				double		t = x[j] - M->mean[j];

				ml_neumaier_add(&s[j], &comp[j], t * t);
			}
		else
			for (j = 0; j < d; j++)
				ml_neumaier_add(&s[j], &comp[j], x[j]);
	}
}

static void
km_moments_combine(void *arg, int64_t b0, int64_t b1)
{
	KmMoments  *M = arg;
	int			d = M->d;
	int64_t		b;
	int			j;

	for (b = b0; b < b1; b++)
	{
		const double *s = M->part + (size_t) (b - b0) * 2 * d;

		for (j = 0; j < d; j++)
		{
			ml_neumaier_add(&M->acc[j], &M->acc[d + j], s[j]);
			ml_neumaier_add(&M->acc[j], &M->acc[d + j], s[d + j]);
		}
	}
}

/* Population mean and variance (ddof 0) of each column of X. */
static MlStatus
km_moments(KmFit *F, const double *X, double *mean, double *var)
{
	KmMoments	M;
	int64_t		slab = km_slab_for(F, 4.0 * F->d);
	int			d = F->d,
				j;
	MlStatus	st;

	M.X = X;
	M.n = F->n;
	M.d = d;
	M.mean = NULL;
	M.part = km_alloc(F, (size_t) slab * 2, (size_t) d * sizeof(double), "column moments");
	M.acc = km_alloc(F, 2 * (size_t) d, sizeof(double), "column moments");
	if (!M.part || !M.acc)
		return F->err->code;
	memset(M.acc, 0, sizeof(double) * 2 * d);
	st = km_run(F, F->nblocks, slab, km_moments_block, km_moments_combine, &M,
				"standardize", 0, 0, 0.0);
	if (st != ML_OK)
		return st;
	for (j = 0; j < d; j++)
		mean[j] = (M.acc[j] + M.acc[d + j]) / (double) F->n;
	M.mean = mean;
	memset(M.acc, 0, sizeof(double) * 2 * d);
	st = km_run(F, F->nblocks, slab, km_moments_block, km_moments_combine, &M,
				"standardize", 0, 0, 0.0);
	if (st != ML_OK)
		return st;
	for (j = 0; j < d; j++)
		var[j] = (M.acc[j] + M.acc[d + j]) / (double) F->n;
	return ML_OK;
}

/* ---------------------------------------------------------------------- */
/* The Lloyd pass: assignment (pruned or full), sums, counts, inertia     */
/* ---------------------------------------------------------------------- */

enum
{
	KM_PASS_SCAN,				/* scan every centre for every row */
	KM_PASS_BOUND,				/* Hamerly: scan only where the bounds fail */
	KM_PASS_KEEP				/* keep labels, only measure */
};

typedef struct KmPass
{
	KmFit	   *F;
	const double *C;			/* k x d centres */
	int			mode;
	bool		accumulate;		/* sums and counts for the M-step */
	int		   *labels;
	double	   *out_d2;			/* KEEP only: per-row squared distance, or NULL */
} KmPass;

KM_HOT static void
km_pass_block(void *arg, int64_t b, int64_t slot, int task)
{
	KmPass	   *P = arg;
	KmFit	   *F = P->F;
	int			k = F->k,
				d = F->d,
				j;
	const double *C = P->C;
	const double *CT = F->CT;
	double	   *dist = F->dist + (size_t) task * F->dist_stride;
	double	   *lb = F->lb;
	int		   *labels = P->labels;
	double	   *sums = NULL;
	int64_t    *counts = NULL;
	double		inertia = 0.0;
	int64_t		changed = 0,
				i,
				r1 = km_block_end(b, F->n);
	const double sq_slack = (1.0 + KM_SLACK) * (1.0 + KM_SLACK);
	const double lb_shrink = 1.0 - 8 * DBL_EPSILON;

	if (P->accumulate)
	{
		sums = F->psums + (size_t) slot * k * d;
		counts = F->pcounts + (size_t) slot * k;
		memset(sums, 0, sizeof(double) * k * d);
		memset(counts, 0, sizeof(int64_t) * k);
	}
	for (i = b * KM_BLOCK; i < r1; i++)
	{
		const double *x = F->W + (size_t) i * d;
		int			old = labels[i],
					a;
		double		d2,
					second;

		if (P->mode == KM_PASS_KEEP)
		{
			a = old;
			d2 = km_dist2(x, C + (size_t) a * d, d);
			if (P->out_d2)
				P->out_d2[i] = d2;
		}
		else if (P->mode == KM_PASS_BOUND)
		{
			/* l: lower bound on the distance to every other centre */
			double		l = lb[i] * lb_shrink - F->down[old];
			double		m = l > F->half[old] ? l : F->half[old];
			double		mm = m * (1.0 - KM_SLACK);

			d2 = km_dist2(x, C + (size_t) old * d, d);
			if (mm > KM_TINY && d2 * sq_slack < mm * mm)
			{
				a = old;
				lb[i] = l;
			}
			else
			{
				km_scan(x, CT, k, d, dist);
				a = km_argmin2(dist, k, &second);
				l = sqrt(second) * (1.0 - KM_SLACK);
				lb[i] = l < KM_HUGE ? l : KM_HUGE;
				if (a != old)
					d2 = km_dist2(x, C + (size_t) a * d, d);
			}
		}
		else
		{
			km_scan(x, CT, k, d, dist);
			a = km_argmin2(dist, k, &second);
			if (lb)
			{
				double		l = sqrt(second) * (1.0 - KM_SLACK);

				lb[i] = l < KM_HUGE ? l : KM_HUGE;
			}
			d2 = km_dist2(x, C + (size_t) a * d, d);
		}
		labels[i] = a;
		changed += a != old;
		inertia += d2;
		if (sums)
		{
			double	   *s = sums + (size_t) a * d;

			counts[a]++;
			for (j = 0; j < d; j++)
				s[j] += x[j];
		}
	}
	F->pval[b] = inertia;
	F->pchanged[b] = changed;
}

static void
km_pass_combine(void *arg, int64_t b0, int64_t b1)
{
	KmPass	   *P = arg;
	KmFit	   *F = P->F;
	size_t		kd = (size_t) F->k * F->d,
				idx;
	int64_t		b;
	int			c;

	if (!P->accumulate)
		return;
	for (b = b0; b < b1; b++)
	{
		const double *s = F->psums + (size_t) (b - b0) * kd;
		const int64_t *cnt = F->pcounts + (size_t) (b - b0) * F->k;

		for (idx = 0; idx < kd; idx++)
			F->sums[idx] += s[idx];
		for (c = 0; c < F->k; c++)
			F->counts[c] += cnt[c];
	}
}

/* One pass; *inertia and *changed are the block totals in block order. */
static MlStatus
km_pass(KmFit *F, const double *C, int *labels, int mode, bool accumulate,
		double *out_d2, int iter, double *inertia, int64_t *changed)
{
	KmPass		P;
	MlStatus	st;
	int64_t		b,
				slab;
	double		tot = 0.0;
	int64_t		ch = 0;

	P.F = F;
	P.C = C;
	P.mode = mode;
	P.accumulate = accumulate;
	P.labels = labels;
	P.out_d2 = out_d2;
	if (mode != KM_PASS_KEEP)
		km_transpose(C, F->k, F->d, F->CT);
	if (accumulate)
	{
		memset(F->sums, 0, sizeof(double) * F->k * F->d);
		memset(F->counts, 0, sizeof(int64_t) * F->k);
	}
	slab = accumulate ? F->slab :
		km_slab_for(F, mode == KM_PASS_KEEP ? (double) F->d : (double) F->k * F->d);
	st = km_run(F, F->nblocks, slab, km_pass_block, km_pass_combine, &P,
				"kmeans", iter, F->max_iter, F->last_value);
	if (st != ML_OK)
		return st;
	for (b = 0; b < F->nblocks; b++)
	{
		tot += F->pval[b];
		ch += F->pchanged[b];
	}
	*inertia = tot;
	if (changed)
		*changed = ch;
	return ML_OK;
}

#define KM_FAR_WORSE(d, a, b) ((d)[a] < (d)[b] || ((d)[a] == (d)[b] && (a) > (b)))

/* Restores the far-rows min-heap (root = nearest row, then the higher row) after its root changed. */
static void
km_far_sift_down(int64_t *heap, int h, const double *dist)
{
	int			pos = 0;

	for (;;)
	{
		int			l = 2 * pos + 1,
					r = l + 1,
					w = pos;
		int64_t		t;

		if (l < h && KM_FAR_WORSE(dist, heap[l], heap[w]))
			w = l;
		if (r < h && KM_FAR_WORSE(dist, heap[r], heap[w]))
			w = r;
		if (w == pos)
			return;
		t = heap[pos];
		heap[pos] = heap[w];
		heap[w] = t;
		pos = w;
	}
}

/*
 * Empty clusters, as scikit-learn's _relocate_empty_clusters_dense: each
 * empty cluster (ascending index) takes the row farthest from its centre
 * (C, the centres the rows were assigned with; farthest first, ties to the
 * lower row), which leaves its old cluster. Labels are not changed.
 */
static MlStatus
km_far_rows(KmFit *F, const double *C, const int64_t *counts, int *labels, int iter,
			int *n_empty_out)
{
	int			k = F->k,
				n_empty = 0,
				c,
				h;
	int		   *empty = F->empty;
	int64_t    *heap = F->far;
	int64_t		i;
	double		unused;
	MlStatus	st;

	*n_empty_out = 0;
	for (c = 0; c < k; c++)
		n_empty += counts[c] == 0;
	if (n_empty == 0)
		return ML_OK;
	if (F->reloc == NULL &&
		(F->reloc = km_alloc(F, (size_t) F->n, sizeof(double), "empty-cluster relocation")) == NULL)
		return F->err->code;
	st = km_pass(F, C, labels, KM_PASS_KEEP, false, F->reloc, iter, &unused, NULL);
	if (st != ML_OK)
		return st;
	/* a min-heap of the n_empty farthest rows: root = nearest, then higher row */
#define KM_WORSE(a, b) KM_FAR_WORSE(F->reloc, a, b)
	h = 0;
	for (i = 0; i < F->n; i++)
	{
		int			pos;

		if (h < n_empty)
		{
			pos = h++;
			heap[pos] = i;
			while (pos > 0 && KM_WORSE(heap[pos], heap[(pos - 1) / 2]))
			{
				int64_t		t = heap[pos];

				heap[pos] = heap[(pos - 1) / 2];
				heap[(pos - 1) / 2] = t;
				pos = (pos - 1) / 2;
			}
		}
		else if (KM_WORSE(heap[0], i))
		{
			heap[0] = i;
			km_far_sift_down(heap, h, F->reloc);
		}
	}
	/* pop nearest-first, filling from the back: heap becomes farthest-first */
	while (h > 1)
	{
		int64_t		t = heap[0];

		heap[0] = heap[--h];
		heap[h] = t;
		km_far_sift_down(heap, h, F->reloc);
	}
#undef KM_WORSE
	h = 0;
	for (c = 0; c < k; c++)
		if (counts[c] == 0)
			empty[h++] = c;
	*n_empty_out = n_empty;
	return ML_OK;
}

/*
 * Empty clusters, as scikit-learn's _relocate_empty_clusters_dense: each
 * empty cluster (ascending index) takes the row farthest from its centre
 * (C, the centres the rows were assigned with; farthest first, ties to the
 * lower row), which leaves its old cluster. Labels are not changed. This is
 * the double-sum version; the exact one is in km_lloyd_exact.
 */
static MlStatus
km_relocate(KmFit *F, const double *C, int *labels, int iter)
{
	int			d = F->d,
				n_empty,
				h,
				j;
	MlStatus	st = km_far_rows(F, C, F->counts, labels, iter, &n_empty);

	if (st != ML_OK)
		return st;
	for (h = 0; h < n_empty; h++)
	{
		int64_t		far = F->far[h];
		int			nw = F->empty[h],
					old = labels[far];
		const double *x = F->W + (size_t) far * d;

		for (j = 0; j < d; j++)
		{
			F->sums[(size_t) old * d + j] -= x[j];
			F->sums[(size_t) nw * d + j] = x[j];
		}
		F->counts[nw] = 1;
		F->counts[old] -= 1;
	}
	return ML_OK;
}

/* Normalise centre c of C in place; false when it is the zero vector. */
static bool
km_normalise(double *c, int d)
{
	double		s = 0.0,
				norm;
	int			j;

	for (j = 0; j < d; j++)
		s += c[j] * c[j];
	norm = sqrt(s);
	if (!(norm > 0.0) || !isfinite(norm))
		return false;
	for (j = 0; j < d; j++)
		c[j] = c[j] / norm;
	return true;
}

/*
 * Bounds for the next pruned pass: down[c] = largest shift of any other
 * centre, half[c] = half the distance from c to its nearest other centre,
 * both conservative by KM_SLACK.
 */
static void
km_bounds_prep(KmFit *F, const double *C)
{
	int			k = F->k,
				d = F->d,
				c,
				e,
				arg1 = -1;
	double		m1 = 0.0,
				m2 = 0.0;

	for (c = 0; c < k; c++)
	{
		double		s = F->shift[c];

		if (s > m1)
		{
			m2 = m1;
			m1 = s;
			arg1 = c;
		}
		else if (s > m2)
			m2 = s;
	}
	for (c = 0; c < k; c++)
		F->down[c] = (c == arg1 ? m2 : m1) * (1.0 + KM_SLACK);
	if (F->up)
		for (c = 0; c < k; c++)
			F->up[c] = F->shift[c] * (1.0 + KM_SLACK);
	for (c = 0; c < k; c++)
		F->half[c] = INFINITY;
	if ((double) k * k * d > 5e7)
	{
		/* too many centres for the pairwise distances: rely on lb alone */
		for (c = 0; c < k; c++)
			F->half[c] = 0.0;
		return;
	}
	for (c = 0; c < k; c++)
		for (e = c + 1; e < k; e++)
		{
			double		dd = km_dist2(C + (size_t) c * d, C + (size_t) e * d, d);

			if (dd < F->half[c])
				F->half[c] = dd;
			if (dd < F->half[e])
				F->half[e] = dd;
		}
	for (c = 0; c < k; c++)
	{
		double		h = 0.5 * sqrt(F->half[c]) * (1.0 - KM_SLACK);

		F->half[c] = h < KM_HUGE ? h : KM_HUGE;
	}
}

/*
 * The end of a Lloyd iteration, whichever M-step produced F->Cnew: centre
 * shifts (the bounds need them), the new centres into C, progress, and
 * scikit-learn's stopping rules (no label changed: strict; or total squared
 * shift at most tol).
 */
static MlStatus
km_lloyd_step_end(KmFit *F, double *C, int iter, int64_t changed, bool *stop, bool *strict)
{
	int			k = F->k,
				d = F->d,
				c;
	double		tot = 0.0;

	for (c = 0; c < k; c++)
	{
		F->shift[c] = sqrt(km_dist2(F->Cnew + (size_t) c * d, C + (size_t) c * d, d));
		tot += F->shift[c] * F->shift[c];
	}
	memcpy(C, F->Cnew, sizeof(double) * k * d);
	if (!F->plain)
		km_bounds_prep(F, C);
	F->last_value = tot;
	if (ml_check(F->env, "kmeans", iter + 1, F->max_iter, tot))
		return ml_fail_cancelled(F->err);
	*strict = changed == 0;
	*stop = *strict || tot <= F->tol;
	return ML_OK;
}

/* The final E-step: scikit-learn reruns it unless the run converged strictly. */
static MlStatus
km_lloyd_finish(KmFit *F, double *C, int *labels, int iter, bool strict,
				double *inertia_out, int *iters_out)
{
	double		inertia;
	MlStatus	st;

	*iters_out = iter < F->max_iter ? iter + 1 : F->max_iter;
	st = km_pass(F, C, labels,
				 strict ? KM_PASS_KEEP : F->plain ? KM_PASS_SCAN : KM_PASS_BOUND,
				 false, NULL, *iters_out, &inertia, NULL);
	if (st != ML_OK)
		return st;
	*inertia_out = inertia;
	return ML_OK;
}

/*
 * One Lloyd run from the centres in C (k x d, working space); C receives
 * the final centres, labels the final assignment.
 */
static MlStatus
km_lloyd(KmFit *F, double *C, int *labels, double *inertia_out, int *iters_out)
{
	int			k = F->k,
				d = F->d,
				iter,
				c,
				j;
	int64_t		i,
				changed;
	bool		strict = false;
	double		inertia;
	MlStatus	st;

	for (i = 0; i < F->n; i++)
		labels[i] = -1;
	for (iter = 0; iter < F->max_iter; iter++)
	{
		int			mode = (iter == 0 || F->plain) ? KM_PASS_SCAN : KM_PASS_BOUND;
		bool		stop;

		st = km_pass(F, C, labels, mode, true, NULL, iter + 1, &inertia, &changed);
		if (st != ML_OK)
			return st;
		st = km_relocate(F, C, labels, iter + 1);
		if (st != ML_OK)
			return st;
		/* M-step: means (times the reciprocal, as scikit-learn) */
		for (c = 0; c < k; c++)
		{
			double	   *cn = F->Cnew + (size_t) c * d;
			const double *s = F->sums + (size_t) c * d;

			if (F->counts[c] > 0)
			{
				double		alpha = 1.0 / (double) F->counts[c];

				for (j = 0; j < d; j++)
					cn[j] = s[j] * alpha;
			}
			else
				memcpy(cn, s, sizeof(double) * d);
			if (F->cosine && !km_normalise(cn, d))
				memcpy(cn, C + (size_t) c * d, sizeof(double) * d);
			for (j = 0; j < d; j++)
				if (!isfinite(cn[j]))
					return ml_fail(F->err, ML_ERR_DATA,
								   "k-means centroids overflowed: the data values are too large");
		}
		st = km_lloyd_step_end(F, C, iter, changed, &stop, &strict);
		if (st != ML_OK)
			return st;
		if (stop)
			break;
	}
	return km_lloyd_finish(F, C, labels, iter, strict, inertia_out, iters_out);
}


#ifdef KM_HAVE_INT128
/* ---------------------------------------------------------------------- */
/* Lloyd with exact incremental sums                                      */
/* ---------------------------------------------------------------------- */

/*
 * Column j of the working rows is summed as integers in units of 2^lsb[j],
 * lsb[j] being the lowest set bit of any value in the column, in 128 bits.
 * When every column's range (highest bit - lowest bit) plus log2(n) fits,
 * these sums are exact, so they can be updated incrementally (only rows
 * that change cluster touch them, in any order, on any thread) and still
 * equal the sums recomputed from scratch. Pruned rows then cost no read of
 * the row at all, which is what makes an iteration cheap. The mean is the
 * exact sum rounded to double, times 1 / count, as scikit-learn computes it.
 */

/* Exponents of the lowest and highest set bits of a nonzero double. */
static inline void
km_bit_range(double x, int *lo, int *hi)
{
	uint64_t	b,
				m;
	int			e;

	memcpy(&b, &x, 8);
	e = (int) ((b >> 52) & 0x7ff);
	m = b & UINT64_C(0xFFFFFFFFFFFFF);
	if (e)
		m |= UINT64_C(1) << 52;
	else
		e = 1;
	*lo = e - 1075 + __builtin_ctzll(m);
	*hi = e - 1075 + 63 - __builtin_clzll(m);
}

/* x / 2^lsb as an exact 128-bit integer (x's bits all lie at or above lsb). */
static inline km_i128
km_fix(double x, int lsb)
{
	uint64_t	b,
				m;
	int			e,
				sh;
	km_i128		v;

	memcpy(&b, &x, 8);
	e = (int) ((b >> 52) & 0x7ff);
	m = b & UINT64_C(0xFFFFFFFFFFFFF);
	if (e)
		m |= UINT64_C(1) << 52;
	else
		e = 1;
	if (m == 0)
		return 0;
	sh = e - 1075 - lsb;
	v = sh >= 0 ? (km_i128) m << sh : (km_i128) (m >> -sh);
	return (b >> 63) ? -v : v;
}

typedef struct KmRange
{
	KmFit	   *F;
	int		   *part;			/* slab x 2d: lowest, highest bit */
	int		   *lo;				/* d */
	int		   *hi;				/* d */
} KmRange;

static void
km_range_block(void *arg, int64_t b, int64_t slot, int task)
{
	KmRange    *R = arg;
	KmFit	   *F = R->F;
	int			d = F->d,
				j;
	int		   *lo = R->part + (size_t) slot * 2 * d,
			   *hi = lo + d;
	int64_t		i,
				r1 = km_block_end(b, F->n);

	for (j = 0; j < d; j++)
	{
		lo[j] = INT32_MAX;
		hi[j] = INT32_MIN;
	}
	for (i = b * KM_BLOCK; i < r1; i++)
	{
		const double *x = F->W + (size_t) i * d;

		for (j = 0; j < d; j++)
			if (x[j] != 0.0)
			{
				int			l,
							h;

				km_bit_range(x[j], &l, &h);
				if (l < lo[j])
					lo[j] = l;
				if (h > hi[j])
					hi[j] = h;
			}
	}
}

static void
km_range_combine(void *arg, int64_t b0, int64_t b1)
{
	KmRange    *R = arg;
	int			d = R->F->d,
				j;
	int64_t		b;

	for (b = b0; b < b1; b++)
	{
		const int  *lo = R->part + (size_t) (b - b0) * 2 * d,
				   *hi = lo + d;

		for (j = 0; j < d; j++)
		{
			if (lo[j] < R->lo[j])
				R->lo[j] = lo[j];
			if (hi[j] > R->hi[j])
				R->hi[j] = hi[j];
		}
	}
}

/*
 * Decides whether the exact path applies (__int128, the bit range of every
 * column, memory for the per-task sums) and allocates its state.
 */
static MlStatus
km_exact_prepare(KmFit *F)
{
	KmRange		R;
	int			d = F->d,
				j,
				logn = 0;
	int64_t		slab = km_slab_for(F, (double) d);
	size_t		kd = (size_t) F->k * d,
				bytes;
	MlStatus	st;

	F->exact = false;
	if (!ml_mul_size(kd, sizeof(km_i128) * (F->nt + 2), &bytes) || bytes > ((size_t) 1 << 30))
		return ML_OK;
	while (logn < 63 && ((int64_t) 1 << logn) < F->n)
		logn++;
	R.F = F;
	R.part = km_alloc(F, (size_t) slab * 2, (size_t) d * sizeof(int), "column ranges");
	R.lo = km_alloc(F, (size_t) d, sizeof(int), "column ranges");
	R.hi = km_alloc(F, (size_t) d, sizeof(int), "column ranges");
	if (!R.part || !R.lo || !R.hi)
		return F->err->code;
	for (j = 0; j < d; j++)
	{
		R.lo[j] = INT32_MAX;
		R.hi[j] = INT32_MIN;
	}
	st = km_run(F, F->nblocks, slab, km_range_block, km_range_combine, &R, "kmeans", 0, 0, 0.0);
	if (st != ML_OK)
		return st;
	for (j = 0; j < d; j++)
	{
		if (R.lo[j] == INT32_MAX)
			R.lo[j] = R.hi[j] = 0;	/* an all-zero column */
		/* |sum| < n * 2^(hi - lo + 1), and per-task deltas < 2n * that */
		if (R.hi[j] - R.lo[j] + 1 + logn + 2 > 126)
			return ML_OK;
	}
	F->lsb = R.lo;
	F->S = km_alloc(F, kd, sizeof(km_i128), "exact centroid sums");
	F->Srel = km_alloc(F, kd, sizeof(km_i128), "exact centroid sums");
	F->tS = km_alloc(F, kd * F->nt, sizeof(km_i128), "exact centroid sums");
	F->tcnt = km_alloc(F, (size_t) F->k * F->nt, sizeof(int64_t), "cluster sizes");
	F->crel = km_alloc(F, (size_t) F->k, sizeof(int64_t), "cluster sizes");
	F->ub = km_alloc(F, (size_t) F->n, sizeof(double), "distance bounds");
	F->up = km_alloc(F, (size_t) F->k, sizeof(double), "distance bounds");
	F->need = km_alloc(F, (size_t) F->nt * KM_BLOCK, sizeof(int), "distance bounds");
	F->need_l = km_alloc(F, (size_t) F->nt * KM_BLOCK, sizeof(double), "distance bounds");
	if (!F->S || !F->Srel || !F->tS || !F->tcnt || !F->crel || !F->ub || !F->up ||
		!F->need || !F->need_l)
		return F->err->code;
	F->exact = true;
	return ML_OK;
}

typedef struct KmXPass
{
	KmFit	   *F;
	const double *C;
	int			mode;			/* KM_PASS_SCAN or KM_PASS_BOUND */
	int		   *labels;
} KmXPass;

/* Moves row i from cluster old to a in the task's exact deltas. */
static inline void
km_xmove(KmFit *F, km_i128 *ts, int64_t *tc, const double *x, int old, int a)
{
	int			d = F->d,
				j;
	km_i128    *sa = ts + (size_t) a * d;

	tc[a]++;
	if (old >= 0)
	{
		km_i128    *so = ts + (size_t) old * d;

		tc[old]--;
		for (j = 0; j < d; j++)
		{
			km_i128		v = km_fix(x[j], F->lsb[j]);

			sa[j] += v;
			so[j] -= v;
		}
	}
	else
		for (j = 0; j < d; j++)
			sa[j] += km_fix(x[j], F->lsb[j]);
}

/*
 * Scans row i over all centres, updates its bounds (when pruning) and moves
 * it if its nearest centre changed. Returns 1 when it moved.
 */
static inline int
km_xscan(KmFit *F, int64_t i, int *labels, km_i128 *ts, int64_t *tc, double *dist)
{
	const double *x = F->W + (size_t) i * F->d;
	int			old = labels[i],
				a;
	double		second;

	km_scan(x, F->CT, F->k, F->d, dist);
	a = km_argmin2(dist, F->k, &second);
	if (F->lb)
	{
		double		u = sqrt(dist[a]) * (1.0 + KM_SLACK),
					l = sqrt(second) * (1.0 - KM_SLACK);

		F->ub[i] = u < KM_HUGE ? u : KM_HUGE;
		F->lb[i] = l < KM_HUGE ? l : KM_HUGE;
	}
	if (a == old)
		return 0;
	labels[i] = a;
	km_xmove(F, ts, tc, x, old, a);
	return 1;
}

KM_HOT static void
km_xpass_block(void *arg, int64_t b, int64_t slot, int task)
{
	KmXPass    *P = arg;
	KmFit	   *F = P->F;
	int			k = F->k,
				d = F->d;
	const double *C = P->C;
	double	   *dist = F->dist + (size_t) task * F->dist_stride;
	double	   *ub = F->ub,
			   *lb = F->lb;
	int		   *labels = P->labels;
	km_i128    *ts = F->tS + (size_t) task * k * d;
	int64_t    *tc = F->tcnt + (size_t) task * k;
	int		   *need = F->need + (size_t) task * KM_BLOCK;
	double	   *need_l = F->need_l + (size_t) task * KM_BLOCK;
	int64_t		changed = 0,
				i,
				r0 = b * KM_BLOCK,
				r1 = km_block_end(b, F->n);
	int			n_need = 0,
				q,
				lines = (int) (((size_t) d * sizeof(double) + 63) / 64);
	const double grow = 1.0 + 8 * DBL_EPSILON;
	const double shrink = 1.0 - 8 * DBL_EPSILON;

	if (lines > 4)
		lines = 4;
	if (P->mode != KM_PASS_BOUND)
	{
		for (i = r0; i < r1; i++)
			changed += km_xscan(F, i, labels, ts, tc, dist);
		F->pchanged[b] = changed;
		return;
	}
	/*
	 * Phase 1, Hamerly's test on the bounds alone (u >= d(x, own centre),
	 * l <= d(x, any other centre)); the rows that fail are prefetched.
	 */
	for (i = r0; i < r1; i++)
	{
		int			old = labels[i];
		double		u = (ub[i] + F->up[old]) * grow;
		double		l = lb[i] * shrink - F->down[old];
		double		m = l > F->half[old] ? l : F->half[old];
		double		mm = m * (1.0 - KM_SLACK);

		ub[i] = u;
		lb[i] = l;
		if (!(mm > KM_TINY && u * (1.0 + KM_SLACK) < mm))
		{
			const char *px = (const char *) (F->W + (size_t) i * d);

			need[n_need] = (int) (i - r0);
			need_l[n_need++] = mm;
			for (q = 0; q < lines; q++)
				__builtin_prefetch(px + 64 * q);
		}
	}
	/* Phase 2: tighten u with the exact distance; scan where that fails. */
	for (q = 0; q < n_need; q++)
	{
		int64_t		row = r0 + need[q];
		int			old = labels[row];
		double		mm = need_l[q];
		double		u = sqrt(km_dist2(F->W + (size_t) row * d, C + (size_t) old * d, d)) *
			(1.0 + KM_SLACK);

		if (mm > KM_TINY && u * (1.0 + KM_SLACK) < mm)
			ub[row] = u;
		else
			changed += km_xscan(F, row, labels, ts, tc, dist);
	}
	F->pchanged[b] = changed;
}

/* A pass that moves rows between clusters and updates F->S / F->counts. */
static MlStatus
km_xpass(KmFit *F, const double *C, int *labels, int mode, int iter, int64_t *changed)
{
	KmXPass		P;
	MlStatus	st;
	size_t		kd = (size_t) F->k * F->d,
				idx;
	int64_t		b;
	int			t,
				c;

	P.F = F;
	P.C = C;
	P.mode = mode;
	P.labels = labels;
	km_transpose(C, F->k, F->d, F->CT);
	memset(F->tS, 0, sizeof(km_i128) * kd * F->nt);
	memset(F->tcnt, 0, sizeof(int64_t) * F->k * F->nt);
	st = km_run(F, F->nblocks, km_slab_for(F, (double) F->k * F->d), km_xpass_block, NULL, &P,
				"kmeans", iter, F->max_iter, F->last_value);
	if (st != ML_OK)
		return st;
	for (t = 0; t < F->nt; t++)
	{
		const km_i128 *ts = F->tS + (size_t) t * kd;
		const int64_t *tc = F->tcnt + (size_t) t * F->k;

		for (idx = 0; idx < kd; idx++)
			F->S[idx] += ts[idx];
		for (c = 0; c < F->k; c++)
			F->counts[c] += tc[c];
	}
	*changed = 0;
	for (b = 0; b < F->nblocks; b++)
		*changed += F->pchanged[b];
	return ML_OK;
}

/* km_lloyd on exact sums: the same iteration, stopping rules and result. */
static MlStatus
km_lloyd_exact(KmFit *F, double *C, int *labels, double *inertia_out, int *iters_out)
{
	int			k = F->k,
				d = F->d,
				iter,
				c,
				j,
				h,
				n_empty;
	int64_t		i,
				changed;
	bool		strict = false;
	MlStatus	st;

	for (i = 0; i < F->n; i++)
		labels[i] = -1;
	memset(F->S, 0, sizeof(km_i128) * k * d);
	memset(F->counts, 0, sizeof(int64_t) * k);
	for (iter = 0; iter < F->max_iter; iter++)
	{
		bool		stop;
		const km_i128 *S = F->S;
		const int64_t *cnt = F->counts;

		st = km_xpass(F, C, labels, (iter == 0 || F->plain) ? KM_PASS_SCAN : KM_PASS_BOUND,
					  iter + 1, &changed);
		if (st != ML_OK)
			return st;
		st = km_far_rows(F, C, F->counts, labels, iter + 1, &n_empty);
		if (st != ML_OK)
			return st;
		if (n_empty > 0)
		{
			memcpy(F->Srel, F->S, sizeof(km_i128) * k * d);
			memcpy(F->crel, F->counts, sizeof(int64_t) * k);
			for (h = 0; h < n_empty; h++)
			{
				int64_t		far = F->far[h];
				int			nw = F->empty[h],
							old = labels[far];
				const double *x = F->W + (size_t) far * d;

				for (j = 0; j < d; j++)
				{
					km_i128		v = km_fix(x[j], F->lsb[j]);

					F->Srel[(size_t) old * d + j] -= v;
					F->Srel[(size_t) nw * d + j] = v;
				}
				F->crel[nw] = 1;
				F->crel[old] -= 1;
			}
			S = F->Srel;
			cnt = F->crel;
		}
		for (c = 0; c < k; c++)
		{
			double	   *cn = F->Cnew + (size_t) c * d;
			double		alpha = cnt[c] > 0 ? 1.0 / (double) cnt[c] : 1.0;

			for (j = 0; j < d; j++)
			{
				cn[j] = ldexp((double) S[(size_t) c * d + j], F->lsb[j]) * alpha;
				if (!isfinite(cn[j]))
					return ml_fail(F->err, ML_ERR_DATA,
								   "k-means centroids overflowed: the data values are too large");
			}
			if (F->cosine && !km_normalise(cn, d))
				memcpy(cn, C + (size_t) c * d, sizeof(double) * d);
		}
		st = km_lloyd_step_end(F, C, iter, changed, &stop, &strict);
		if (st != ML_OK)
			return st;
		if (stop)
			break;
	}
	return km_lloyd_finish(F, C, labels, iter, strict, inertia_out, iters_out);
}
#endif							/* KM_HAVE_INT128 */

/* ---------------------------------------------------------------------- */
/* Seeding                                                                */
/* ---------------------------------------------------------------------- */

typedef struct KmPP
{
	KmFit	   *F;
	const double *W;
	int64_t		n;
	double	   *closest;		/* n */
	const double *center;		/* pass A: the centre just added */
	bool		first;
	const double *cand;			/* pass B: trials x d */
	int			trials;
	double	   *pval;			/* pass A: nblocks sums; pass B: nblocks x trials */
} KmPP;

static void
km_pp_update_block(void *arg, int64_t b, int64_t slot, int task)
{
	KmPP	   *P = arg;
	int			d = P->F->d;
	int64_t		i,
				r1 = km_block_end(b, P->n);
	double		s = 0.0;

	for (i = b * KM_BLOCK; i < r1; i++)
	{
		double		v = km_dist2(P->W + (size_t) i * d, P->center, d);

		if (P->first || v < P->closest[i])
			P->closest[i] = v;
		s += P->closest[i];
	}
	P->pval[b] = s;
}

KM_HOT static void
km_pp_trials_block(void *arg, int64_t b, int64_t slot, int task)
{
	KmPP	   *P = arg;
	int			d = P->F->d,
				t,
				nt = P->trials;
	double	   *pot = P->pval + (size_t) b * nt;
	int64_t		i,
				r1 = km_block_end(b, P->n);

	for (t = 0; t < nt; t++)
		pot[t] = 0.0;
	for (i = b * KM_BLOCK; i < r1; i++)
	{
		const double *x = P->W + (size_t) i * d;
		double		cl = P->closest[i];

		for (t = 0; t < nt; t++)
		{
			double		v = km_dist2(x, P->cand + (size_t) t * d, d);

			pot[t] += v < cl ? v : cl;
		}
	}
}

/*
 * Greedy k-means++ (scikit-learn's _kmeans_plusplus): the first centre
 * uniformly, then for each next centre 2 + floor(log k) candidates drawn
 * with probability proportional to D^2 (searchsorted on the cumulative sum),
 * keeping the candidate that most lowers the potential. F->dist must hold
 * nt x max(k, trials) doubles.
 */
static MlStatus
km_kmeanspp(KmFit *F, const double *W, int64_t n, MlRng *rng, double *C)
{
	int			k = F->k,
				d = F->d,
				trials = 2 + (int) log((double) k),
				c,
				t;
	int64_t		nb = (n + KM_BLOCK - 1) / KM_BLOCK,
				b,
				first;
	int64_t		cand[64];
	double		pot_t[64];
	double	   *prefix,
			   *candT;
	double		pot;
	KmPP		P;
	MlStatus	st;

	if (trials > 64)
		trials = 64;
	if (F->pp_closest == NULL)
	{
		F->pp_cap = n;
		F->pp_closest = km_alloc(F, (size_t) n, sizeof(double), "k-means++ distances");
		F->pp_pval = km_alloc(F, (size_t) nb, sizeof(double) * 64, "k-means++ potentials");
		F->pp_prefix = km_alloc(F, (size_t) nb + 1, sizeof(double), "k-means++ potentials");
		F->pp_candT = km_alloc(F, (size_t) d, sizeof(double) * 64, "k-means++ candidates");
		if (!F->pp_closest || !F->pp_pval || !F->pp_prefix || !F->pp_candT)
			return F->err->code;
	}
	if (n > F->pp_cap)
		return ml_fail(F->err, ML_ERR_INTERNAL, "k-means++ scratch is too small");
	P.F = F;
	P.W = W;
	P.n = n;
	P.closest = F->pp_closest;
	P.pval = F->pp_pval;
	prefix = F->pp_prefix;
	candT = F->pp_candT;
	P.cand = candT;
	P.trials = trials;

	first = (int64_t) ml_rng_below(rng, (uint64_t) n);
	memcpy(C, W + (size_t) first * d, sizeof(double) * d);
	for (c = 1; c < k; c++)
	{
		int			best = 0;

		/* pass A: D^2 to the nearest chosen centre, and block sums */
		P.center = C + (size_t) (c - 1) * d;
		P.first = c == 1;
		st = km_run(F, nb, km_slab_for(F, d), km_pp_update_block, NULL, &P,
					"kmeans++", c, k, 0.0);
		if (st != ML_OK)
			return st;
		prefix[0] = 0.0;
		for (b = 0; b < nb; b++)
			prefix[b + 1] = prefix[b] + P.pval[b];
		pot = prefix[nb];

		/* candidates: the first row whose cumulative D^2 reaches u * pot */
		for (t = 0; t < trials; t++)
		{
			double		r = ml_rng_uniform(rng) * pot;
			int64_t		lo = 0,
						hi = nb - 1,
						i,
						r1;
			double		local = 0.0;

			while (lo < hi)
			{
				int64_t		mid = lo + (hi - lo) / 2;

				if (prefix[mid + 1] >= r)
					hi = mid;
				else
					lo = mid + 1;
			}
			cand[t] = n - 1;
			r1 = km_block_end(lo, n);
			for (i = lo * KM_BLOCK; i < r1; i++)
			{
				local += P.closest[i];
				if (prefix[lo] + local >= r)
				{
					cand[t] = i;
					break;
				}
			}
		}
		/* pass B: the potential with each candidate added */
		for (t = 0; t < trials; t++)
		{
			int			j;

			for (j = 0; j < d; j++)
				candT[(size_t) t * d + j] = W[(size_t) cand[t] * d + j];
		}
		st = km_run(F, nb, km_slab_for(F, (double) trials * d), km_pp_trials_block, NULL, &P,
					"kmeans++", c, k, pot);
		if (st != ML_OK)
			return st;
		for (t = 0; t < trials; t++)
		{
			pot_t[t] = 0.0;
			for (b = 0; b < nb; b++)
				pot_t[t] += P.pval[(size_t) b * trials + t];
		}
		for (t = 1; t < trials; t++)
			if (pot_t[t] < pot_t[best])
				best = t;
		memcpy(C + (size_t) c * d, W + (size_t) cand[best] * d, sizeof(double) * d);
		if (ml_check(F->env, "kmeans++", c, k, pot_t[best]))
			return ml_fail_cancelled(F->err);
	}
	return ML_OK;
}

/*
 * m distinct indices of [0, n) in random order: selection sampling (Knuth's
 * algorithm S, which needs no memory beyond the output) then a shuffle.
 */
static MlStatus
km_sample_indices(const MlEnv *env, MlRng *rng, int64_t n, int64_t m, int64_t *out,
				  bool shuffle, MlError *err)
{
	int64_t		i,
				got = 0;

	for (i = 0; i < n && got < m; i++)
	{
		if ((double) (n - i) * ml_rng_uniform(rng) < (double) (m - got))
			out[got++] = i;
		if ((i & 0xffff) == 0xffff && ml_check(env, "sampling", 0, 0, 0.0))
			return ml_fail_cancelled(err);
	}
	/* (n - i) * u < (m - got) always holds once m - got == n - i */
	if (shuffle)
		for (i = m - 1; i > 0; i--)
		{
			int64_t		j = (int64_t) ml_rng_below(rng, (uint64_t) i + 1),
						t = out[i];

			out[i] = out[j];
			out[j] = t;
		}
	return ML_OK;
}

/* ---------------------------------------------------------------------- */
/* Mini-batch                                                             */
/* ---------------------------------------------------------------------- */

/* Nearest centre of x by full scan (CT: d x k). */
static inline int
km_nearest(const double *x, const double *CT, int k, int d, double *dist, double *d2)
{
	double		second;
	int			a;

	km_scan(x, CT, k, d, dist);
	a = km_argmin2(dist, k, &second);
	*d2 = dist[a];
	return a;
}

/* Inertia of rows idx[0..m) (or 0..m when idx is NULL) against C. */
static double
km_subset_inertia(KmFit *F, const double *W, const int64_t *idx, int64_t m,
				  const double *C, double *CT)
{
	int64_t		i;
	double		s = 0.0,
				d2;

	km_transpose(C, F->k, F->d, CT);
	for (i = 0; i < m; i++)
	{
		km_nearest(W + (size_t) (idx ? idx[i] : i) * F->d, CT, F->k, F->d, F->dist, &d2);
		s += d2;
	}
	return s;
}

typedef struct KmPair
{
	double		v;
	int			i;
} KmPair;

static int
km_pair_cmp(const void *a, const void *b)
{
	const KmPair *x = a,
			   *y = b;

	if (x->v != y->v)
		return x->v < y->v ? -1 : 1;
	return (x->i > y->i) - (x->i < y->i);
}

typedef struct KmMbState
{
	double		ewa;
	double		ewa_min;
	bool		have_ewa;
	bool		have_min;
	int			no_improvement;
} KmMbState;

/*
 * MiniBatchKMeans (scikit-learn 1.2): inits on random subsets of
 * 3 * batch_size rows judged on a validation subset, then
 * max_iter * n / batch_size steps on batches drawn with replacement; each
 * centre moves to the running mean of every row it has been given (count-
 * weighted), low-count centres are reassigned to batch rows, and the run
 * stops early on a small centre change (tol > 0) or when the smoothed batch
 * inertia has not improved for 10 steps. So max_iter counts passes (epochs)
 * over the data. A warm start continues from the model's centroids with its
 * counts as the prior weights: incremental learning on new rows.
 */
static MlStatus
km_minibatch(KmFit *F, const KmParams *p, const double *C0, const double *counts0,
			 MlRng *rng, double *C, int *labels, double *inertia_out, int *iters_out,
			 double *counts_out)
{
	int			k = F->k,
				d = F->d,
				c,
				j,
				r;
	int64_t		n = F->n,
				batch = p->batch_size < n ? p->batch_size : n,
				init_size,
				n_steps,
				step,
				i,
				since_reassign = 0;
	int64_t    *idx,
			   *valid,
			   *perm;
	int		   *blab;
	double	   *cnt,
			   *Cr,				/* running means (unnormalised for cosine) */
			   *Cn,
			   *Cu,				/* the centres rows are assigned to */
			   *sub,
			   *Ctry,
			   *CTb;
	bool	   *reas;
	KmPair	   *pairs;
	KmMbState	S = {0};
	MlStatus	st;
	double		inertia;

	init_size = 3 * batch;
	if (init_size < k)
		init_size = 3 * (int64_t) k;
	if (init_size > n)
		init_size = n;
	idx = km_alloc(F, (size_t) (batch > init_size ? batch : init_size), sizeof(int64_t), "mini-batch");
	valid = km_alloc(F, (size_t) init_size, sizeof(int64_t), "mini-batch");
	perm = km_alloc(F, (size_t) batch, sizeof(int64_t), "mini-batch");
	blab = km_alloc(F, (size_t) batch, sizeof(int), "mini-batch");
	cnt = km_alloc(F, (size_t) k, sizeof(double), "mini-batch");
	Cr = km_alloc(F, (size_t) k * d, sizeof(double), "mini-batch");
	Cn = km_alloc(F, (size_t) k * d, sizeof(double), "mini-batch");
	Cu = km_alloc(F, (size_t) k * d, sizeof(double), "mini-batch");
	CTb = km_alloc(F, (size_t) k * d, sizeof(double), "mini-batch");
	reas = km_alloc(F, (size_t) k, sizeof(bool), "mini-batch");
	pairs = km_alloc(F, (size_t) k, sizeof(KmPair), "mini-batch");
	if (!idx || !valid || !perm || !blab || !cnt || !Cr || !Cn || !Cu || !CTb || !reas || !pairs)
		return F->err->code;

	/* initial centres */
	if (C0)
		memcpy(Cr, C0, sizeof(double) * k * d);
	else
	{
		double		best = INFINITY;

		sub = km_alloc(F, (size_t) init_size * d, sizeof(double), "mini-batch init");
		Ctry = km_alloc(F, (size_t) k * d, sizeof(double), "mini-batch init");
		if (!sub || !Ctry)
			return F->err->code;
		for (i = 0; i < init_size; i++)
			valid[i] = (int64_t) ml_rng_below(rng, (uint64_t) n);
		for (r = 0; r < p->n_init; r++)
		{
			double		v;

			for (i = 0; i < init_size; i++)
			{
				int64_t		row = (int64_t) ml_rng_below(rng, (uint64_t) n);

				memcpy(sub + (size_t) i * d, F->W + (size_t) row * d, sizeof(double) * d);
			}
			if (p->init == KM_INIT_KMEANSPP)
			{
				st = km_kmeanspp(F, sub, init_size, rng, Ctry);
				if (st != ML_OK)
					return st;
			}
			else
			{
				st = km_sample_indices(F->env, rng, init_size, k, idx, true, F->err);
				if (st != ML_OK)
					return st;
				for (c = 0; c < k; c++)
					memcpy(Ctry + (size_t) c * d, sub + (size_t) idx[c] * d, sizeof(double) * d);
			}
			v = km_subset_inertia(F, F->W, valid, init_size, Ctry, CTb);
			if (r == 0 || v < best)
			{
				best = v;
				memcpy(Cr, Ctry, sizeof(double) * k * d);
			}
		}
	}
	for (c = 0; c < k; c++)
		cnt[c] = counts0 ? counts0[c] : 0.0;
	memcpy(C, Cr, sizeof(double) * k * d);	/* unit rows already for cosine */

	n_steps = (int64_t) p->max_iter > INT64_MAX / n ? INT64_MAX / batch :
		(int64_t) p->max_iter * n / batch;
	if (n_steps < 1)
		n_steps = 1;
	memcpy(Cu, Cr, sizeof(double) * k * d);
	for (step = 0; step < n_steps; step++)
	{
		bool		reassign = false;
		double		sqdiff = 0.0;
		double		bi = 0.0;

		for (i = 0; i < batch; i++)
			idx[i] = (int64_t) ml_rng_below(rng, (uint64_t) n);
		since_reassign += batch;
		for (c = 0; c < k; c++)
			if (cnt[c] == 0.0)
				reassign = true;
		if (reassign || since_reassign >= 10 * (int64_t) k)
		{
			since_reassign = 0;
			reassign = true;
		}
		/* assign the batch to the current centres */
		km_transpose(Cu, k, d, CTb);
		for (i = 0; i < batch; i++)
		{
			double		d2;

			blab[i] = km_nearest(F->W + (size_t) idx[i] * d, CTb, k, d, F->dist, &d2);
			bi += d2;
		}
		/* count-weighted running means, rows added in batch order */
		for (c = 0; c < k; c++)
			F->counts[c] = 0;
		for (i = 0; i < batch; i++)
			F->counts[blab[i]]++;
		for (c = 0; c < k; c++)
		{
			double	   *cn = Cn + (size_t) c * d;
			const double *co = Cr + (size_t) c * d;

			if (F->counts[c] > 0)
				for (j = 0; j < d; j++)
					cn[j] = co[j] * cnt[c];
			else
				memcpy(cn, co, sizeof(double) * d);
		}
		for (i = 0; i < batch; i++)
		{
			double	   *cn = Cn + (size_t) blab[i] * d;
			const double *x = F->W + (size_t) idx[i] * d;

			for (j = 0; j < d; j++)
				cn[j] += x[j];
		}
		for (c = 0; c < k; c++)
			if (F->counts[c] > 0)
			{
				double		alpha;

				cnt[c] += (double) F->counts[c];
				alpha = 1.0 / cnt[c];
				for (j = 0; j < d; j++)
					Cn[(size_t) c * d + j] *= alpha;
			}
		/* reassign centres with very low counts to random batch rows */
		if (reassign)
		{
			double		mx = 0.0,
						mn = INFINITY;
			int64_t		n_re = 0,
						cap = (int64_t) (0.5 * (double) batch);

			for (c = 0; c < k; c++)
				if (cnt[c] > mx)
					mx = cnt[c];
			for (c = 0; c < k; c++)
			{
				reas[c] = cnt[c] < 0.01 * mx;
				n_re += reas[c];
			}
			if (n_re > 0.5 * (double) batch)
			{
				/* only the cap lowest counts (ties: lower index first) */
				for (c = 0; c < k; c++)
				{
					pairs[c].v = cnt[c];
					pairs[c].i = c;
				}
				qsort(pairs, k, sizeof(KmPair), km_pair_cmp);
				for (c = 0; c < k; c++)
					reas[pairs[c].i] = c < cap;
				n_re = cap;
			}
			if (n_re > 0)
			{
				int64_t		got = 0;

				/* n_re distinct batch rows, uniformly (partial Fisher-Yates) */
				for (i = 0; i < batch; i++)
					perm[i] = i;
				for (i = 0; i < n_re; i++)
				{
					int64_t		jj = i + (int64_t) ml_rng_below(rng, (uint64_t) (batch - i)),
								t = perm[i];

					perm[i] = perm[jj];
					perm[jj] = t;
				}
				for (c = 0; c < k; c++)
					if (!reas[c] && cnt[c] < mn)
						mn = cnt[c];
				for (c = 0; c < k; c++)
					if (reas[c])
					{
						memcpy(Cn + (size_t) c * d, F->W + (size_t) idx[perm[got++]] * d,
							   sizeof(double) * d);
						cnt[c] = mn;
					}
			}
		}
		for (c = 0; c < k * d; c++)
			if (!isfinite(Cn[c]))
				return ml_fail(F->err, ML_ERR_DATA,
							   "k-means centroids overflowed: the data values are too large");
		if (F->tol > 0.0)
			for (c = 0; c < k * d; c++)
			{
				double		t = Cn[c] - Cr[c];

				sqdiff += t * t;
			}
		memcpy(Cr, Cn, sizeof(double) * k * d);
		memcpy(Cu, Cr, sizeof(double) * k * d);
		if (F->cosine)
			for (c = 0; c < k; c++)
				if (!km_normalise(Cu + (size_t) c * d, d))
					memcpy(Cu + (size_t) c * d, C + (size_t) c * d, sizeof(double) * d);
		if (F->cosine)
			memcpy(C, Cu, sizeof(double) * k * d);	/* last good unit centres */

		/* early stopping, as MiniBatchKMeans._mini_batch_convergence */
		bi /= (double) batch;
		if (step > 0)
		{
			if (!S.have_ewa)
			{
				S.ewa = bi;
				S.have_ewa = true;
			}
			else
			{
				double		alpha = (double) batch * 2.0 / ((double) n + 1.0);

				if (alpha > 1.0)
					alpha = 1.0;
				S.ewa = S.ewa * (1.0 - alpha) + bi * alpha;
			}
			if (F->tol > 0.0 && sqdiff <= F->tol)
			{
				step++;
				break;
			}
			if (!S.have_min || S.ewa < S.ewa_min)
			{
				S.no_improvement = 0;
				S.ewa_min = S.ewa;
				S.have_min = true;
			}
			else
				S.no_improvement++;
			if (S.no_improvement >= 10)
			{
				step++;
				break;
			}
		}
		if ((step & 63) == 63 &&
			ml_check(F->env, "minibatch kmeans",
					 (int) ((double) step * batch / n) + 1, p->max_iter, S.ewa))
			return ml_fail_cancelled(F->err);
	}
	if (step > n_steps)
		step = n_steps;
	*iters_out = (int) ceil((double) step * (double) batch / (double) n);
	if (*iters_out < 1)
		*iters_out = 1;
	memcpy(C, Cu, sizeof(double) * k * d);
	/* labels and inertia over all rows */
	for (i = 0; i < n; i++)
		labels[i] = 0;
	st = km_pass(F, C, labels, KM_PASS_SCAN, false, NULL, p->max_iter, &inertia, NULL);
	if (st != ML_OK)
		return st;
	*inertia_out = inertia;
	for (c = 0; c < k; c++)
		counts_out[c] = counts0 ? counts0[c] : 0.0;
	for (i = 0; i < n; i++)
		counts_out[labels[i]] += 1.0;
	return ML_OK;
}

/* ---------------------------------------------------------------------- */
/* kmeans_fit                                                             */
/* ---------------------------------------------------------------------- */

/* scikit-learn's _is_same_clustering: equal up to a relabelling. */
static bool
km_same_clustering(const int *a, const int *b, int64_t n, int k, int *map)
{
	int64_t		i;
	int			c;

	for (c = 0; c < k; c++)
		map[c] = -1;
	for (i = 0; i < n; i++)
	{
		if (map[a[i]] == -1)
			map[a[i]] = b[i];
		else if (map[a[i]] != b[i])
			return false;
	}
	return true;
}

static MlStatus
km_validate(const double *X, int64_t n, int d, const KmParams *p, MlError *err)
{
	const KmModel *w = p->warm_start;
	int64_t		i;

	if (p->k < 1)
		return ml_fail(err, ML_ERR_PARAM, "k must be at least 1");
	if (p->k > KM_MAX_K)
		return ml_fail(err, ML_ERR_PARAM, "k = %d exceeds the limit of %d clusters",
					   p->k, KM_MAX_K);
	if (p->n_init < 1)
		return ml_fail(err, ML_ERR_PARAM, "n_init must be at least 1, not %d", p->n_init);
	if (p->max_iter < 1)
		return ml_fail(err, ML_ERR_PARAM, "max_iter must be at least 1, not %d", p->max_iter);
	if (!(p->tol >= 0.0) || !isfinite(p->tol))
		return ml_fail(err, ML_ERR_PARAM, "tol must be a finite number >= 0, not %g", p->tol);
	if (p->minibatch && p->batch_size < 1)
		return ml_fail(err, ML_ERR_PARAM, "batch_size must be at least 1, not %d",
					   p->batch_size);
	if (p->distance != KM_DIST_L2 && p->distance != KM_DIST_COSINE)
		return ml_fail(err, ML_ERR_PARAM, "unknown distance %d", (int) p->distance);
	if (p->init != KM_INIT_KMEANSPP && p->init != KM_INIT_RANDOM && p->init != KM_INIT_GIVEN)
		return ml_fail(err, ML_ERR_PARAM, "unknown init method %d", (int) p->init);
	if (p->init == KM_INIT_GIVEN && p->given == NULL)
		return ml_fail(err, ML_ERR_PARAM, "init = given needs the k initial centroids");
	if (w && p->init == KM_INIT_GIVEN)
		return ml_fail(err, ML_ERR_PARAM,
					   "warm_start and init = given both supply the initial centroids; use one");
	if (d < 1 || d > ML_MAX_FEATURES)
		return ml_fail(err, ML_ERR_DATA, "k-means needs 1 to %d features, not %d",
					   ML_MAX_FEATURES, d);
	if (n < 1 || X == NULL)
		return ml_fail(err, ML_ERR_DATA, "k-means needs at least one training row");
	if (w)
	{
		if (w->k != p->k)
			return ml_fail(err, ML_ERR_PARAM,
						   "warm_start model has k = %d but k = %d was asked", w->k, p->k);
		if (w->d != d)
			return ml_fail(err, ML_ERR_PARAM,
						   "warm_start model has %d features but the data has %d", w->d, d);
		if (w->distance != p->distance)
			return ml_fail(err, ML_ERR_PARAM,
						   "warm_start model uses distance %s but %s was asked",
						   w->distance == KM_DIST_COSINE ? "cosine" : "l2",
						   p->distance == KM_DIST_COSINE ? "cosine" : "l2");
		if (w->standardize != p->standardize)
			return ml_fail(err, ML_ERR_PARAM,
						   "warm_start model has standardize = %s but standardize = %s was asked",
						   w->standardize ? "true" : "false", p->standardize ? "true" : "false");
		if (w->centroids == NULL || (w->standardize && (!w->mean || !w->scale)))
			return ml_fail(err, ML_ERR_PARAM, "warm_start model is incomplete");
	}
	/* Mini-batch warm starts may update a model from fewer rows than k. */
	if ((int64_t) p->k > n && !(w && p->minibatch))
		return ml_fail(err, ML_ERR_DATA, "k = %d exceeds the %lld training rows",
					   p->k, (long long) n);
	if (p->init == KM_INIT_GIVEN)
		for (i = 0; i < (int64_t) p->k * d; i++)
			if (!isfinite(p->given[i]))
				return ml_fail(err, ML_ERR_PARAM,
							   "initial centroid %lld has a non-finite value in feature %lld",
							   (long long) (i / d), (long long) (i % d));
	return ML_OK;
}

static MlStatus
km_fit_inner(KmFit *F, const double *X, const KmParams *p, unsigned flags, int *labels_out,
			 KmModel *out, KmResult *res)
{
	const MlEnv *env = F->env;
	MlError    *err = F->err;
	const KmModel *w = p->warm_start;
	int64_t		n = F->n,
				i;
	int			d = F->d,
				k = F->k,
				c,
				r,
				n_init;
	double	   *var,
			   *C,
			   *Cbest,
			   *W = NULL;
	int		   *labels,
			   *best_labels;
	int64_t    *pick = NULL;
	double		best_inertia = INFINITY,
				tolvar = 0.0;
	MlRng		rng;
	MlStatus	st;
	size_t		dist_per_task;

	ml_rng_seed(&rng, p->seed);
	out->k = k;
	out->d = d;
	out->distance = p->distance;
	out->standardize = p->standardize;

	st = km_check_finite(F, X);
	if (st != ML_OK)
		return st;
	var = km_alloc(F, (size_t) d, sizeof(double), "column variances");
	if (!var)
		return err->code;
	/* mean and scale: the warm model's, else computed */
	if (p->standardize)
	{
		out->mean = ml_alloc(env, sizeof(double) * d);
		out->scale = ml_alloc(env, sizeof(double) * d);
		if (!out->mean || !out->scale)
			return ml_fail(err, ML_ERR_MEMORY, "out of memory for the k-means model");
		if (w)
		{
			memcpy(out->mean, w->mean, sizeof(double) * d);
			memcpy(out->scale, w->scale, sizeof(double) * d);
		}
		else
		{
			st = km_moments(F, X, out->mean, var);
			if (st != ML_OK)
				return st;
			for (c = 0; c < d; c++)
			{
				double		sd = sqrt(var[c]);

				out->scale[c] = sd > 0.0 && isfinite(sd) ? sd : 1.0;
			}
		}
	}
	/* the working rows */
	if (p->standardize || F->cosine)
	{
		W = km_alloc(F, (size_t) n * d, sizeof(double), "the standardised/normalised rows");
		if (!W)
			return err->code;
		for (i = 0; i < n; i++)
		{
			if (!km_transform_row(X + (size_t) i * d, d, out->mean, out->scale, F->cosine,
								  W + (size_t) i * d))
				return ml_fail(err, ML_ERR_DATA,
							   "row %lld is a zero vector%s: cosine distance needs rows of nonzero length",
							   (long long) i + 1, p->standardize ? " after standardizing" : "");
			if ((i & 0xffff) == 0xffff && ml_check(env, "kmeans", 0, 0, 0.0))
				return ml_fail_cancelled(err);
		}
		F->W = W;
	}
	else
		F->W = X;

	/* scikit-learn's _tolerance: tol * mean variance of the working rows */
	if (p->tol > 0.0)
	{
		double	   *mean = km_alloc(F, (size_t) d, sizeof(double), "column means");

		if (!mean)
			return err->code;
		st = km_moments(F, F->W, mean, var);
		if (st != ML_OK)
			return st;
		for (c = 0; c < d; c++)
			tolvar += var[c];
		F->tol = p->tol * (tolvar / d);
	}
	else
		F->tol = 0.0;

	/* scratch */
	dist_per_task = 4 * ((size_t) k > 64 ? (size_t) k : 64);
	F->dist_stride = dist_per_task;
	C = km_alloc(F, (size_t) k * d, sizeof(double), "centroids");
	Cbest = km_alloc(F, (size_t) k * d, sizeof(double), "centroids");
	F->CT = km_alloc(F, (size_t) k * d, sizeof(double), "centroids");
	F->Cnew = km_alloc(F, (size_t) k * d, sizeof(double), "centroids");
	F->sums = km_alloc(F, (size_t) k * d, sizeof(double), "centroid sums");
	F->counts = km_alloc(F, (size_t) k, sizeof(int64_t), "cluster sizes");
	F->shift = km_alloc(F, (size_t) k, sizeof(double), "centroid shifts");
	F->down = km_alloc(F, (size_t) k, sizeof(double), "distance bounds");
	F->half = km_alloc(F, (size_t) k, sizeof(double), "distance bounds");
	F->map = km_alloc(F, (size_t) k, sizeof(int), "labels");
	F->pval = km_alloc(F, (size_t) F->nblocks, sizeof(double), "block sums");
	F->pchanged = km_alloc(F, (size_t) F->nblocks, sizeof(int64_t), "block sums");
	F->dist = km_alloc(F, (size_t) F->nt, dist_per_task * sizeof(double), "distances");
	labels = km_alloc(F, (size_t) n, sizeof(int), "labels");
	best_labels = km_alloc(F, (size_t) n, sizeof(int), "labels");
	if (!C || !Cbest || !F->CT || !F->Cnew || !F->sums || !F->counts || !F->shift ||
		!F->down || !F->half || !F->map || !F->pval || !F->pchanged || !F->dist ||
		!labels || !best_labels)
		return err->code;
	F->empty = km_alloc(F, (size_t) k, sizeof(int), "empty clusters");
	F->far = km_alloc(F, (size_t) k, sizeof(int64_t), "empty clusters");
	if (!F->empty || !F->far)
		return err->code;
#ifdef KM_HAVE_INT128
	if (!p->minibatch && !(flags & KM_FLAG_DOUBLE_SUMS))
	{
		st = km_exact_prepare(F);
		if (st != ML_OK)
			return st;
	}
#endif
	if (!F->exact)
	{
		F->slab = km_slab_for(F, (double) k * d + d);
		F->psums = km_alloc(F, (size_t) F->slab * k, (size_t) d * sizeof(double), "centroid sums");
		F->pcounts = km_alloc(F, (size_t) F->slab * k, sizeof(int64_t), "cluster sizes");
		if (!F->psums || !F->pcounts)
			return err->code;
	}
	if (!F->plain && !p->minibatch)
	{
		F->lb = km_alloc(F, (size_t) n, sizeof(double), "distance bounds");
		if (!F->lb)
			return err->code;
	}

	out->centroids = ml_alloc(env, sizeof(double) * k * d);
	out->counts = ml_alloc(env, sizeof(double) * k);
	if (!out->centroids || !out->counts)
		return ml_fail(err, ML_ERR_MEMORY, "out of memory for the k-means model");

	/* initial centroids in the working space (given: transformed here) */
	n_init = (p->init == KM_INIT_GIVEN || w) ? 1 : p->n_init;
	if (p->init == KM_INIT_GIVEN)
		for (c = 0; c < k; c++)
			if (!km_transform_row(p->given + (size_t) c * d, d, out->mean, out->scale,
								  F->cosine, Cbest + (size_t) c * d))
				return ml_fail(err, ML_ERR_PARAM,
							   "initial centroid %d is a zero vector%s: cosine distance needs nonzero centroids",
							   c + 1, p->standardize ? " after standardizing" : "");
	if (w)
	{
		memcpy(Cbest, w->centroids, sizeof(double) * k * d);
		if (F->cosine)
			for (c = 0; c < k; c++)
				if (!km_normalise(Cbest + (size_t) c * d, d))
					return ml_fail(err, ML_ERR_PARAM,
								   "warm_start centroid %d is a zero vector", c + 1);
	}

	if (p->minibatch)
	{
		const double *C0 = (p->init == KM_INIT_GIVEN || w) ? Cbest : NULL;

		st = km_minibatch(F, p, C0, w ? w->counts : NULL, &rng, C, best_labels,
						  &best_inertia, &res->iterations, out->counts);
		if (st != ML_OK)
			return st;
		memcpy(Cbest, C, sizeof(double) * k * d);
		res->best_init = 0;
	}
	else
	{
		for (r = 0; r < n_init; r++)
		{
			double		inertia = 0.0;
			int			iters = 0;

			if (p->init == KM_INIT_GIVEN || w)
				memcpy(C, Cbest, sizeof(double) * k * d);
			else if (p->init == KM_INIT_KMEANSPP)
			{
				st = km_kmeanspp(F, F->W, n, &rng, C);
				if (st != ML_OK)
					return st;
			}
			else
			{
				if (pick == NULL &&
					(pick = km_alloc(F, (size_t) k, sizeof(int64_t), "random init")) == NULL)
					return err->code;
				st = km_sample_indices(env, &rng, n, k, pick, true, err);
				if (st != ML_OK)
					return st;
				for (c = 0; c < k; c++)
					memcpy(C + (size_t) c * d, F->W + (size_t) pick[c] * d, sizeof(double) * d);
			}
#ifdef KM_HAVE_INT128
			if (F->exact)
				st = km_lloyd_exact(F, C, labels, &inertia, &iters);
			else
#endif
				st = km_lloyd(F, C, labels, &inertia, &iters);
			if (st != ML_OK)
				return st;
			if (r == 0 ||
				(inertia < best_inertia &&
				 !km_same_clustering(labels, best_labels, n, k, F->map)))
			{
				int		   *t = best_labels;

				best_labels = labels;
				labels = t;
				best_inertia = inertia;
				res->iterations = iters;
				res->best_init = r;
				memcpy(Cbest, C, sizeof(double) * k * d);
			}
		}
		for (c = 0; c < k; c++)
			out->counts[c] = 0.0;
		for (i = 0; i < n; i++)
			out->counts[best_labels[i]] += 1.0;
	}
	memcpy(out->centroids, Cbest, sizeof(double) * k * d);
	res->inertia = F->cosine ? 0.5 * best_inertia : best_inertia;
	res->silhouette = NAN;
	res->calinski_harabasz = NAN;
	res->davies_bouldin = NAN;
	if (labels_out)
		memcpy(labels_out, best_labels, sizeof(int) * n);
	if (!(flags & KM_FLAG_NO_METRICS))
	{
		st = cluster_silhouette(env, F->W, n, d, best_labels, k, p->sample_size, p->seed,
								&res->silhouette, err);
		if (st == ML_OK)
			st = cluster_calinski_harabasz(env, F->W, n, d, best_labels, k,
										   &res->calinski_harabasz, err);
		if (st == ML_OK)
			st = cluster_davies_bouldin(env, F->W, n, d, best_labels, k,
										&res->davies_bouldin, err);
		if (st != ML_OK)
			return st;
	}
	return ML_OK;
}

MlStatus
kmeans_fit_ex(const MlEnv *env, const double *X, int64_t n, int d, const KmParams *p,
			  unsigned flags, int *labels, KmModel *out, KmResult *res, MlError *err)
{
	KmFit		F;
	MlStatus	st;

	memset(out, 0, sizeof(*out));
	memset(res, 0, sizeof(*res));
	res->silhouette = res->calinski_harabasz = res->davies_bouldin = NAN;
	st = km_validate(X, n, d, p, err);
	if (st != ML_OK)
		return st;
	memset(&F, 0, sizeof(F));
	F.env = env;
	F.err = err;
	F.n = n;
	F.d = d;
	F.k = p->k;
	F.nt = env->n_threads < 1 ? 1 : env->n_threads > KM_MAX_TASKS ? KM_MAX_TASKS : env->n_threads;
	F.nblocks = (n + KM_BLOCK - 1) / KM_BLOCK;
	F.cosine = p->distance == KM_DIST_COSINE;
	F.plain = (flags & KM_FLAG_PLAIN_LLOYD) != 0;
	F.max_iter = p->max_iter;
	st = km_fit_inner(&F, X, p, flags, labels, out, res);
	km_free_all(&F);
	if (st != ML_OK)
	{
		kmeans_model_free(env, out);
		res->inertia = NAN;
	}
	return st;
}

MlStatus
kmeans_fit(const MlEnv *env, const double *X, int64_t n, int d, const KmParams *p,
		   KmModel *out, KmResult *res, MlError *err)
{
	return kmeans_fit_ex(env, X, n, d, p, 0, NULL, out, res, err);
}

size_t
kmeans_memory_estimate(int64_t n, int d, const KmParams *p, int n_threads)
{
	double		N = (double) (n > 0 ? n : 0),
				D = d > 0 ? d : 1,
				K = p->k > 0 ? p->k : 1,
				T = n_threads < 1 ? 1 : n_threads > KM_MAX_TASKS ? KM_MAX_TASKS : n_threads,
				KD = K * D,
				nb = ceil(N / KM_BLOCK),
				slab = fmax(T, fmin(nb, ceil((double) KM_SLAB_WORK / (KM_BLOCK * (KD + D))))),
				m = (p->sample_size > 0 && N > (double) p->sample_size) ? (double) p->sample_size : N,
				b = 0.0;

	b += nb * 8 * 4 + slab * 2 * D * 8;		/* block partials, moments */
	if (p->standardize || p->distance == KM_DIST_COSINE)
		b += N * D * 8;			/* the working rows */
	b += 8 * KD * 8 + 10 * K * 8 + T * 4 * fmax(K, 64) * 8;	/* centres, scratch */
	b += N * 8;					/* labels, twice */
	if (p->minibatch)
	{
		double		batch = fmin((double) (p->batch_size > 0 ? p->batch_size : 1), N),
					init = fmin(N, fmax(3 * batch, 3 * K));

		b += init * 8 * 2 + batch * 20 + K * 32 + init * D * 8 + KD * 8;
		b += init * 8 + (init / KM_BLOCK + 1) * 64 * 8 * 2 + D * 64 * 8;	/* k-means++ */
	}
	else
	{
		b += N * 8 * 3;			/* lower and upper bounds, relocation distances */
		b += KD * 16 * (T + 2) + K * 8 * (T + 1) + T * KM_BLOCK * 12 + slab * 2 * D * 4;
		b += slab * (KD + K) * 8;	/* double-sum partials, when used */
		if (p->init == KM_INIT_KMEANSPP)
			b += N * 8 + (nb + 1) * 64 * 8 * 2 + D * 64 * 8;
	}
	b += KD * 8 + K * 8 + 2 * D * 8;	/* the model */
	/* metrics: silhouette's sorted copy, CH/DB partials */
	b += m * 20 + (m + 8) * D * 8 + T * 4 * (D + K) * 8 + K * 24;
	b += KD * 8 * 3 + slab * KD * 8;
	b *= 1.25;
	return b >= (double) SIZE_MAX ? SIZE_MAX : (size_t) b;
}

void
kmeans_model_free(const MlEnv *env, KmModel *m)
{
	ml_free(env, m->mean);
	ml_free(env, m->scale);
	ml_free(env, m->centroids);
	ml_free(env, m->counts);
	m->mean = m->scale = m->centroids = m->counts = NULL;
}

int
kmeans_predict(const KmModel *m, const double *x, double *scratch)
{
	const double *row = x;
	int			k = m->k,
				d = m->d,
				best = 0,
				c;
	double		bd = INFINITY;

	if (m->standardize || m->distance == KM_DIST_COSINE)
	{
		if (!km_transform_row(x, d, m->standardize ? m->mean : NULL, m->scale,
							  m->distance == KM_DIST_COSINE, scratch))
			return -1;
		row = scratch;
	}
	for (c = 0; c < k; c++)
	{
		double		v = km_dist2(row, m->centroids + (size_t) c * d, d);

		if (v < bd)
		{
			bd = v;
			best = c;
		}
	}
	return best;
}

/* ---------------------------------------------------------------------- */
/* Codec                                                                  */
/* ---------------------------------------------------------------------- */

void
kmeans_write(MlBuf *b, const KmModel *m)
{
	size_t		kd = (size_t) m->k * m->d;

	ml_buf_put_u32(b, (uint32_t) m->k);
	ml_buf_put_u32(b, (uint32_t) m->d);
	ml_buf_put_u8(b, (uint8_t) m->distance);
	ml_buf_put_u8(b, m->standardize ? 1 : 0);
	if (m->standardize)
	{
		ml_buf_put_f64s(b, m->mean, m->d);
		ml_buf_put_f64s(b, m->scale, m->d);
	}
	ml_buf_put_f64s(b, m->centroids, kd);
	ml_buf_put_f64s(b, m->counts, m->k);
}

static bool
km_read_inner(MlReader *r, KmModel *m)
{
	uint32_t	k,
				d;
	uint8_t		dist,
				stdz;
	size_t		kd,
				need;
	int			j;

	/* each centroid takes at least 8 bytes per feature plus its count */
	if (!ml_rd_count(r, 1, KM_MAX_K, 16, &k, "k-means cluster count"))
		return false;
	if (!ml_rd_count(r, 1, ML_MAX_FEATURES, 8, &d, "k-means feature count"))
		return false;
	if (!ml_rd_u8(r, &dist, "k-means distance") || !ml_rd_u8(r, &stdz, "k-means standardize"))
		return false;
	if (dist != KM_DIST_L2 && dist != KM_DIST_COSINE)
	{
		ml_fail(r->err, ML_ERR_CORRUPT, "artifact corrupt: unknown k-means distance %u", dist);
		return false;
	}
	if (stdz > 1)
	{
		ml_fail(r->err, ML_ERR_CORRUPT, "artifact corrupt: k-means standardize flag is %u", stdz);
		return false;
	}
	/* k * (d + 1) + (standardize ? 2d : 0) doubles must be present */
	if (!ml_mul_size(k, (size_t) d + 1, &kd) ||
		!ml_add_size(kd, stdz ? 2 * (size_t) d : 0, &need) ||
		!ml_mul_size(need, 8, &need) || need > ml_rd_left(r))
	{
		ml_fail(r->err, ML_ERR_CORRUPT,
				"artifact corrupt: %u k-means centroids of %u features need more than the %zu bytes left",
				k, d, ml_rd_left(r));
		return false;
	}
	m->k = (int) k;
	m->d = (int) d;
	m->distance = (KmDistance) dist;
	m->standardize = stdz == 1;
	if (m->standardize)
	{
		if (!ml_rd_f64s(r, d, &m->mean, "k-means mean") ||
			!ml_rd_f64s(r, d, &m->scale, "k-means scale"))
			return false;
		for (j = 0; j < (int) d; j++)
			if (!(m->scale[j] > 0.0))
			{
				ml_fail(r->err, ML_ERR_CORRUPT,
						"artifact corrupt: k-means scale of feature %d is not positive", j + 1);
				return false;
			}
	}
	if (!ml_rd_f64s(r, (size_t) k * d, &m->centroids, "k-means centroids") ||
		!ml_rd_f64s(r, k, &m->counts, "k-means counts"))
		return false;
	for (j = 0; j < (int) k; j++)
		if (m->counts[j] < 0.0)
		{
			ml_fail(r->err, ML_ERR_CORRUPT,
					"artifact corrupt: k-means count of cluster %d is negative", j + 1);
			return false;
		}
	if (m->distance == KM_DIST_COSINE)
		for (j = 0; j < (int) k; j++)
		{
			double		s = 0.0;
			int			e;

			for (e = 0; e < (int) d; e++)
				s += m->centroids[(size_t) j * d + e] * m->centroids[(size_t) j * d + e];
			if (!(fabs(s - 1.0) < 1e-6))
			{
				ml_fail(r->err, ML_ERR_CORRUPT,
						"artifact corrupt: cosine k-means centroid %d is not a unit vector", j + 1);
				return false;
			}
		}
	return ml_rd_end(r, "k-means model section");
}

bool
kmeans_read(MlReader *r, KmModel *m)
{
	memset(m, 0, sizeof(*m));
	if (km_read_inner(r, m))
		return true;
	kmeans_model_free(r->env, m);
	memset(m, 0, sizeof(*m));
	return false;
}
