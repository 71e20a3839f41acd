/*
 * kmeans_int.h: what the k-means modules share internally (not for the glue
 * or other subsystems): the hot distance kernels, the row transform, the fit
 * state KmFit and the functions one module calls in another.
 *
 *   kmeans.c            public entry points: validation, the fit's phases
 *                       (input check, moments, working rows, scratch,
 *                       restarts, metrics), predict, the memory estimate
 *   kmeans_lloyd.c      the Lloyd pass (plain or Hamerly-pruned), empty-
 *                       cluster relocation, the Lloyd driver and its
 *                       double-sum M-step
 *   kmeans_hamerly.c    the exact path: 128-bit incremental sums and the
 *                       two-phase Hamerly pass (needs __int128)
 *   kmeans_init.c       k-means++, random and given/warm-start seeding
 *   kmeans_minibatch.c  MiniBatchKMeans
 *   kmeans_codec.c      the MODEL section writer and validating reader
 *
 * See kmeans.c for the determinism and exactness arguments every module
 * relies on.
 */
#ifndef KMEANS_INT_H
#define KMEANS_INT_H

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

/* k rounded up to a multiple of 4: the columns of a transposed centre matrix. */
#define KM_LANES(k) (((k) + 3) & ~3)

/* Four doubles; GCC and Clang turn these into SSE2 pairs or AVX registers. */
typedef double km_v4 __attribute__((vector_size(32)));

/* v = the four doubles at p (a macro: a function returning km_v4 would
 * have an ABI that depends on AVX). */
#define KM_LOAD4(v, p) memcpy(&(v), (p), sizeof(km_v4))

/*
 * Squared distances of x to all k centres into dist[0..KM_LANES(k)), CT
 * being the centres transposed (d x KM_LANES(k), km_transpose). Four
 * centres at a time, with the four lanes of km_dist2 held in four vectors:
 * every value equals km_dist2's bit for bit. The last group's padding
 * lanes (zero centres) give values past dist[k - 1] that callers ignore;
 * computing them costs less than a scalar loop over the last k % 4 centres
 * (a third of the scan at k = 10).
 */
static inline void
km_scan(const double *x, const double *CT, int k, int d, double *restrict dist)
{
	int			c0 = 0,
				j;
	size_t		stride = (size_t) KM_LANES(k);

	for (; c0 < k; c0 += 4)
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

/*
 * CT (d x KM_LANES(k)) = C (k x d) transposed, for km_scan; the padding
 * columns are zero.
 */
static inline void
km_transpose(const double *C, int k, int d, double *CT)
{
	int			c,
				j,
				kp = KM_LANES(k);

	for (c = 0; c < kp; c++)
		for (j = 0; j < d; j++)
			CT[(size_t) j * kp + c] = c < k ? C[(size_t) c * d + j] : 0.0;
}

/* Scales c (d values) to unit L2 length in place; false when it is the zero vector. */
static inline bool
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
 * The row transform shared by training and predict, so both compute the
 * same bits: (x - mean) / scale when standardising, then division by the L2
 * norm for cosine. Returns false for a zero row under cosine.
 */
static inline bool
km_transform_row(const double *x, int d, const double *mean, const double *scale,
				 bool cosine, double *out)
{
	int			j;

	if (mean)
		for (j = 0; j < d; j++)
			out[j] = (x[j] - mean[j]) / scale[j];
	else if (out != x)
		memcpy(out, x, sizeof(double) * d);
	return !cosine || km_normalise(out, d);
}

/* ---------------------------------------------------------------------- */
/* Fit state                                                              */
/* ---------------------------------------------------------------------- */

/*
 * Everything one fit needs: the working rows, the sizes, the scratch of
 * every phase (allocated through km_alloc, freed together at the end).
 */
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
	int		   *msb;			/* d: exponent of the highest bit of column j */
	double	   *mref;			/* d: reference point of the squared norms,
								 * on the lsb grid (near the data's mean) */
	int			qlsb;			/* exponent of the lowest bit of Q */
	double		qscale;			/* 2^-qlsb (0 when the squares overflow) */
	km_i128    *Q;				/* k: exact sums of |x - mref|^2, scaled by
								 * 2^-qlsb (the inertia without a pass) */
	km_i128    *tQ;				/* nt x k per-task deltas of Q */
	int		   *need;			/* nt x KM_BLOCK rows failing the bound test */
	double	   *need_l;			/* nt x KM_BLOCK their lower bounds */
#endif
	int		   *map;			/* k, for the same-clustering test */
	double		last_value;		/* for progress reports between slabs */
	MlTrace    *trace;			/* the current run's per-iteration figures */
	double		t0_ms;			/* when the fit began */
	/* k-means++ scratch, allocated on first use for pp_cap rows */
	int64_t		pp_cap;
	double	   *pp_closest;
	double	   *pp_pval;
	double	   *pp_prefix;
	double	   *pp_candT;
} KmFit;

/* Last row (exclusive) of block b of n rows. */
static inline int64_t
km_block_end(int64_t b, int64_t n)
{
	int64_t		r1 = (b + 1) * KM_BLOCK;

	return r1 < n ? r1 : n;
}

/* How a Lloyd pass assigns rows (km_pass, km_xpass). */
enum
{
	KM_PASS_SCAN,				/* scan every centre for every row */
	KM_PASS_BOUND,				/* Hamerly: scan only where the bounds fail */
	KM_PASS_KEEP				/* keep labels, only measure */
};

/*
 * One kind of Lloyd iteration for km_lloyd_run: how the M-step's sums are
 * kept. start (may be NULL) runs once before the first iteration, with the
 * initial centres; assign runs the assignment pass in the given mode,
 * counts the rows whose label changed and gives the inertia of the new
 * labels against C; mstep relocates rows to empty clusters and writes the new
 * centres into F->Cnew (C: the centres the rows were assigned with).
 */
typedef struct KmLloydKind
{
	void		(*start) (KmFit *F, const double *C);
	MlStatus	(*assign) (KmFit *F, const double *C, int *labels, int mode, int iter,
						   int64_t *changed, double *inertia);
	MlStatus	(*mstep) (KmFit *F, const double *C, int *labels, int iter);
} KmLloydKind;

/* Applies one relocation to a kind's sums: row x leaves cluster old for the empty nw. */
typedef void (*KmMoveFn) (KmFit *F, void *sums, const double *x, int old, int nw);

/* kmeans.c: the fit context */
void	   *km_alloc(KmFit *F, size_t n, size_t size, const char *what);
MlStatus	km_run(KmFit *F, int64_t nblocks, int64_t slab, MlBlockFn block,
				   MlCombineFn combine, void *arg, const char *stage, int iter,
				   int max_iter, double value);
int64_t		km_slab_for(const KmFit *F, double cost);

/* kmeans_lloyd.c */
MlStatus	km_pass(KmFit *F, const double *C, int *labels, int mode, bool accumulate,
					double *out_d2, int iter, double *inertia, int64_t *changed);
MlStatus	km_far_rows(KmFit *F, const double *C, const int64_t *counts, int *labels,
						int iter, int *n_empty_out);
void		km_apply_relocations(KmFit *F, const int *labels, int n_empty, void *sums,
								 int64_t *counts, KmMoveFn move);
MlStatus	km_lloyd_run(KmFit *F, const KmLloydKind *kind, double *C, int *labels,
						 double *inertia_out, int *iters_out);
MlStatus	km_lloyd(KmFit *F, double *C, int *labels, double *inertia_out,
					 int *iters_out);

/* kmeans_hamerly.c */
#ifdef KM_HAVE_INT128
MlStatus	km_exact_prepare(KmFit *F);
MlStatus	km_lloyd_exact(KmFit *F, double *C, int *labels, double *inertia_out,
						   int *iters_out);
#endif

/* kmeans_init.c */
MlStatus	km_kmeanspp(KmFit *F, const double *W, int64_t n, MlRng *rng, double *C);
MlStatus	km_sample_indices(const MlEnv *env, MlRng *rng, int64_t n, int64_t m,
							  int64_t *out, bool shuffle, MlError *err);
MlStatus	km_init_seed(KmFit *F, KmInit init, const double *W, int64_t n,
						 MlRng *rng, int64_t **pick, double *C);
MlStatus	km_init_supplied(KmFit *F, const KmParams *p, const KmModel *out,
							 double *C, bool *have);

/* kmeans_minibatch.c */
MlStatus	km_minibatch(KmFit *F, const KmParams *p, const double *C0,
						 const double *counts0, MlRng *rng, double *C, int *labels,
						 double *inertia_out, int *iters_out, double *counts_out);

#endif							/* KMEANS_INT_H */
