/*
 * cluster_metrics_blocked.c: the silhouette's pairwise distances for wide
 * data, as a cache-blocked matrix product: |a - b|^2 = |a|^2 + |b|^2 - 2 a.b
 * over tiles of MC_T x MC_T rows (what BLAS-backed scikit-learn does), on
 * the shared block runner (one block = one tile row, so threads never
 * matter).
 *
 * Accuracy. The rows are first centred on the sample mean (distances do not
 * change; the cancellation in the formula shrinks). Every dot product, and
 * every squared norm, is one fused multiply-add chain over the features in
 * order, so a row's norm equals its dot product with itself bit for bit:
 * equal rows are exactly 0 apart. A pair whose formula value is at most
 * MC_TAU times |a|^2 + |b|^2 (near rows, where the formula loses digits) is
 * recomputed directly from the original rows, exactly as the direct kernel
 * does; MC_TAU is 1/64, raised to (d + 3) 1.2e-6 from 13,000 features. For
 * every other pair the formula's error is at most about (2d + 4) 2^-53
 * (|a|^2 + |b|^2), i.e. a relative error of at most (d + 3) 2^-53 / tau
 * <= 1e-10 in the distance. With the sums' rounding (at most m 2^-53
 * relative, both kernels) the mean silhouette moves by at most twice the
 * sum: below 1e-9 (absolute) for every d <= ML_MAX_FEATURES and m <= 10^6
 * (test_kmeans.c checks it against the direct kernel).
 *
 * The fused multiply-add chain is the same on every CPU (the x86 AVX2+FMA
 * kernel and the portable fma() kernel give the same bits); only the
 * distance assembly may be contracted differently where the compiler
 * targets FMA by default (not x86-64's baseline).
 */
#include "cluster_metrics.h"

#include <math.h>
#include <string.h>
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define MCB_X86 1
#endif

#define MC_T		128			/* rows (and columns) per tile */
#define MC_MR		4			/* rows per micro-tile */
#define MC_NR		8			/* columns per micro-tile (one packed group) */
#define MC_KC		256			/* features per pass over a tile */
#define MC_TAU		(1.0 / 64)	/* recompute pairs closer than this (relative), */
#define MC_TAU_PER_D 1.2e-6		/* ... or than (d + 3) times this when larger */
#define MC_MAX_TASKS 64

/*
 * One micro-tile: C[r][c] (r < MC_MR, c < MC_NR, row stride ldc) continued
 * (or started, when first) with the features [f0, f1). A is a packed group
 * (feature f of its row r at A[f * MC_NR + r]), B too.
 */
typedef void (*McbKernelFn) (const double *A, const double *B, int f0, int f1,
							 double *C, int ldc, bool first);

/* The portable micro-kernel: one fma() chain per pair. */
static void
mcb_kernel_fma(const double *A, const double *B, int f0, int f1, double *C, int ldc,
			   bool first)
{
	double		acc[MC_MR][MC_NR];
	int			r,
				c,
				f;

	for (r = 0; r < MC_MR; r++)
		for (c = 0; c < MC_NR; c++)
			acc[r][c] = first ? 0.0 : C[r * ldc + c];
	for (f = f0; f < f1; f++)
		for (r = 0; r < MC_MR; r++)
		{
			double		a = A[(size_t) f * MC_NR + r];

			for (c = 0; c < MC_NR; c++)
				acc[r][c] = fma(a, B[(size_t) f * MC_NR + c], acc[r][c]);
		}
	for (r = 0; r < MC_MR; r++)
		for (c = 0; c < MC_NR; c++)
			C[r * ldc + c] = acc[r][c];
}

#ifdef MCB_X86
/* The same chains, 4 rows x 8 columns in eight AVX2 accumulators. */
__attribute__((target("avx2,fma")))
static void
mcb_kernel_avx2(const double *A, const double *B, int f0, int f1, double *C, int ldc,
				bool first)
{
	__m256d		c00,
				c01,
				c10,
				c11,
				c20,
				c21,
				c30,
				c31;
	int			f;

	if (first)
	{
		c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = _mm256_setzero_pd();
	}
	else
	{
		c00 = _mm256_loadu_pd(C);
		c01 = _mm256_loadu_pd(C + 4);
		c10 = _mm256_loadu_pd(C + ldc);
		c11 = _mm256_loadu_pd(C + ldc + 4);
		c20 = _mm256_loadu_pd(C + 2 * ldc);
		c21 = _mm256_loadu_pd(C + 2 * ldc + 4);
		c30 = _mm256_loadu_pd(C + 3 * ldc);
		c31 = _mm256_loadu_pd(C + 3 * ldc + 4);
	}
	for (f = f0; f < f1; f++)
	{
		const double *a = A + (size_t) f * MC_NR;
		const double *b = B + (size_t) f * MC_NR;
		__m256d		b0 = _mm256_loadu_pd(b),
					b1 = _mm256_loadu_pd(b + 4),
					x;

		x = _mm256_broadcast_sd(a);
		c00 = _mm256_fmadd_pd(x, b0, c00);
		c01 = _mm256_fmadd_pd(x, b1, c01);
		x = _mm256_broadcast_sd(a + 1);
		c10 = _mm256_fmadd_pd(x, b0, c10);
		c11 = _mm256_fmadd_pd(x, b1, c11);
		x = _mm256_broadcast_sd(a + 2);
		c20 = _mm256_fmadd_pd(x, b0, c20);
		c21 = _mm256_fmadd_pd(x, b1, c21);
		x = _mm256_broadcast_sd(a + 3);
		c30 = _mm256_fmadd_pd(x, b0, c30);
		c31 = _mm256_fmadd_pd(x, b1, c31);
	}
	_mm256_storeu_pd(C, c00);
	_mm256_storeu_pd(C + 4, c01);
	_mm256_storeu_pd(C + ldc, c10);
	_mm256_storeu_pd(C + ldc + 4, c11);
	_mm256_storeu_pd(C + 2 * ldc, c20);
	_mm256_storeu_pd(C + 2 * ldc + 4, c21);
	_mm256_storeu_pd(C + 3 * ldc, c30);
	_mm256_storeu_pd(C + 3 * ldc + 4, c31);
}
#endif

/* True when this build and CPU have the fast fused kernel (else fma() is slow or emulated). */
bool
mc_blocked_available(void)
{
#ifdef MCB_X86
	return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#elif defined(FP_FAST_FMA)
	return true;
#else
	return false;
#endif
}

typedef struct McBlk
{
	const double *X;			/* the original rows */
	int			d;
	int			k;
	int64_t		m;				/* rows in the sample */
	int64_t		mp;				/* m rounded up to a multiple of MC_T */
	const int64_t *order;		/* sorted position -> row of X */
	const int  *lab;			/* sorted labels */
	const int64_t *start;		/* k + 1 cluster offsets in the sorted order */
	const double *P;			/* packed centred rows: groups of MC_NR, feature-major */
	const double *nrm;			/* mp squared norms (same fma chain) */
	double		tau;			/* recompute pairs with d2 <= tau (|a|^2 + |b|^2) */
	double	   *scratch;		/* tasks x (MC_T^2 + MC_T k) */
	double	   *s;				/* m silhouette values */
	McbKernelFn kernel;
} McBlk;

/* Squared distance summed in feature order: the direct kernel's value for a pair. */
static double
mcb_direct2(const double *a, const double *b, int d)
{
	double		acc = 0.0;
	int			j;

	for (j = 0; j < d; j++)
	{
		double		t = a[j] - b[j];

		acc += t * t;
	}
	return acc;
}

/* G (MC_T x MC_T) = dot products of the rows of tile I with those of tile J. */
static void
mcb_gram(const McBlk *B, int64_t I, int64_t J, double *G)
{
	int			d = B->d,
				f0,
				im,
				jn;
	size_t		group = (size_t) MC_NR * d;

	for (f0 = 0; f0 < d; f0 += MC_KC)
	{
		int			f1 = f0 + MC_KC < d ? f0 + MC_KC : d;

		for (jn = 0; jn < MC_T / MC_NR; jn++)
		{
			const double *Bp = B->P + (size_t) (J * (MC_T / MC_NR) + jn) * group;

			for (im = 0; im < MC_T / MC_MR; im++)
			{
				/* A's rows: half of an MC_NR group of the same packing */
				int64_t		row0 = I * MC_T + (int64_t) im * MC_MR;
				const double *Ap = B->P + (size_t) (row0 / MC_NR) * group + row0 % MC_NR;

				B->kernel(Ap, Bp, f0, f1, G + (size_t) im * MC_MR * MC_T + jn * MC_NR, MC_T,
						  f0 == 0);
			}
		}
	}
}

/*
 * Adds the distances of tile I's rows to tile J's rows into acc (MC_T x k,
 * per row and cluster), column by column in order.
 */
static void
mcb_accumulate(const McBlk *B, int64_t I, int64_t J, const double *G, double *acc)
{
	int			k = B->k,
				r,
				c;
	int64_t		i0 = I * MC_T,
				j0 = J * MC_T,
				rows = B->m - i0 < MC_T ? B->m - i0 : MC_T,
				cols = B->m - j0 < MC_T ? B->m - j0 : MC_T;

	for (r = 0; r < rows; r++)
	{
		const double *g = G + (size_t) r * MC_T;
		double		ni = B->nrm[i0 + r];
		double	   *a = acc + (size_t) r * k;

		for (c = 0; c < cols; c++)
		{
			double		nj = B->nrm[j0 + c],
						sum = ni + nj,
						twice = 2.0 * g[c],
						d2 = sum - twice;

			if (d2 <= B->tau * sum)
				d2 = mcb_direct2(B->X + (size_t) B->order[i0 + r] * B->d,
								 B->X + (size_t) B->order[j0 + c] * B->d, B->d);
			a[B->lab[j0 + c]] += sqrt(d2);
		}
	}
}

/* Silhouette values of the rows of tile I (one block of the runner). */
static void
mcb_tile_row(void *arg, int64_t I, int64_t slot, int task)
{
	McBlk	   *B = arg;
	int			k = B->k,
				c,
				r;
	double	   *G = B->scratch + (size_t) task * ((size_t) MC_T * MC_T + (size_t) MC_T * k);
	double	   *acc = G + (size_t) MC_T * MC_T;
	int64_t		J,
				i0 = I * MC_T;

	memset(acc, 0, sizeof(double) * MC_T * k);
	for (J = 0; J < B->mp / MC_T; J++)
	{
		mcb_gram(B, I, J, G);
		mcb_accumulate(B, I, J, G, acc);
	}
	for (r = 0; r < MC_T && i0 + r < B->m; r++)
	{
		int64_t		i = i0 + r,
					n_own;
		int			own = B->lab[i];
		const double *a = acc + (size_t) r * k;
		double		own_mean,
					bmin = INFINITY,
					mx;

		n_own = B->start[own + 1] - B->start[own];
		if (n_own <= 1)
		{
			B->s[i] = 0.0;		/* scikit-learn: a singleton scores 0 */
			continue;
		}
		own_mean = a[own] / (double) (n_own - 1);
		for (c = 0; c < k; c++)
		{
			int64_t		nc = B->start[c + 1] - B->start[c];

			if (c != own && nc > 0 && a[c] / (double) nc < bmin)
				bmin = a[c] / (double) nc;
		}
		mx = own_mean > bmin ? own_mean : bmin;
		B->s[i] = mx > 0.0 ? (bmin - own_mean) / mx : 0.0;
	}
}

/*
 * Packs the m sorted rows, centred on their mean, into groups of MC_NR rows
 * stored feature-major (zero rows pad to mp), and their squared norms.
 */
static void
mcb_pack(const double *X, int d, int64_t m, int64_t mp, const int64_t *order,
		 double *mean, double *P, double *nrm)
{
	int64_t		i;
	int			j;

	memset(mean, 0, sizeof(double) * d);
	for (i = 0; i < m; i++)
		for (j = 0; j < d; j++)
			mean[j] += X[(size_t) order[i] * d + j];
	for (j = 0; j < d; j++)
		mean[j] /= (double) m;
	memset(P, 0, sizeof(double) * (size_t) mp * d);
	for (i = 0; i < m; i++)
	{
		const double *x = X + (size_t) order[i] * d;
		double	   *g = P + (size_t) (i / MC_NR) * MC_NR * d + i % MC_NR;
		double		acc = 0.0;

		for (j = 0; j < d; j++)
		{
			double		y = x[j] - mean[j];

			g[(size_t) j * MC_NR] = y;
			acc = fma(y, y, acc);
		}
		nrm[i] = acc;
	}
	for (; i < mp; i++)
		nrm[i] = 0.0;
}

/* The silhouette value of each sorted row, by the blocked kernel (cluster_metrics.h). */
MlStatus
mc_silhouette_blocked(const MlEnv *env, const double *X, int d, int k, int64_t m,
					  const int64_t *order, const int *lab, const int64_t *start,
					  double *s, bool portable, MlError *err)
{
	McBlk		B;
	int			nt = env->n_threads < 1 ? 1 : env->n_threads > MC_MAX_TASKS ? MC_MAX_TASKS : env->n_threads;
	int64_t		mp = (m + MC_T - 1) / MC_T * MC_T,
				ntiles = mp / MC_T,
				slab;
	double	   *P,
			   *nrm,
			   *mean,
			   *scratch;
	size_t		per_task = (size_t) MC_T * MC_T + (size_t) MC_T * k,
				bytes;
	MlStatus	st;

	if (!ml_mul_size((size_t) mp, (size_t) d * sizeof(double), &bytes) ||
		!ml_mul_size(per_task * sizeof(double), (size_t) nt, &bytes))
		return ml_fail(err, ML_ERR_MEMORY, "the silhouette of %lld rows is too large",
					   (long long) m);
	P = ml_alloc(env, sizeof(double) * (size_t) mp * d);
	nrm = ml_alloc(env, sizeof(double) * (size_t) mp);
	mean = ml_alloc(env, sizeof(double) * d);
	scratch = ml_alloc(env, sizeof(double) * per_task * nt);
	if (!P || !nrm || !mean || !scratch)
	{
		st = ml_fail(err, ML_ERR_MEMORY, "out of memory for the silhouette of %lld rows",
					 (long long) m);
		goto done;
	}
	mcb_pack(X, d, m, mp, order, mean, P, nrm);
	B.X = X;
	B.d = d;
	B.k = k;
	B.m = m;
	B.mp = mp;
	B.order = order;
	B.lab = lab;
	B.start = start;
	B.P = P;
	B.nrm = nrm;
	B.tau = fmax(MC_TAU, (d + 3) * MC_TAU_PER_D);
	B.scratch = scratch;
	B.s = s;
	B.kernel = mcb_kernel_fma;
#ifdef MCB_X86
	if (!portable && mc_blocked_available())
		B.kernel = mcb_kernel_avx2;
#endif
	/*
	 * about 2^30 multiply-adds (a fraction of a second) between cancellation
	 * checks: few joins of the workers, and tile rows handed out dynamically
	 */
	slab = (int64_t) ceil((double) (1 << 30) / ((double) MC_T * mp * d));
	if (slab < nt)
		slab = nt;
	if (slab > ntiles)
		slab = ntiles;
	st = ml_run_blocks(env, ntiles, slab, MC_MAX_TASKS, mcb_tile_row, NULL, &B,
					   "silhouette", 0, 0, 0.0, err);
done:
	ml_free(env, P);
	ml_free(env, nrm);
	ml_free(env, mean);
	ml_free(env, scratch);
	return st;
}
