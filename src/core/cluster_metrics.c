/*
 * cluster_metrics.c: silhouette, Calinski-Harabasz and Davies-Bouldin, as
 * scikit-learn 1.2 defines them (Euclidean distance; labels are first
 * compacted to the clusters present, and a score is undefined, here NaN,
 * unless 2 <= distinct labels <= rows - 1).
 *
 * Every sum over rows runs in fixed blocks of MC_BLOCK rows, each block
 * summed in order and the blocks combined in order with a compensated sum,
 * so results do not depend on the thread count. Distances are computed
 * directly (sqrt of the sum of squared differences), which is more accurate
 * than scikit-learn's |x|^2 - 2 x.y + |y|^2; the two agree to ~1e-12.
 */
#include "cluster_metrics.h"

#include <math.h>
#include <string.h>
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define MC_X86 1
#endif

#define MC_BLOCK		4096	/* rows per block for the O(n d) metrics */
#define MC_SLAB_WORK	(1 << 27)	/* work units between checks */
#define MC_MAX_TASKS	64



typedef MlBlockFn McBlockFn;
typedef MlCombineFn McCombineFn;

/* The shared block runner (mlcore.h). */
static MlStatus
mc_run(const MlEnv *env, int64_t nblocks, int64_t slab, McBlockFn block,
	   McCombineFn combine, void *arg, const char *stage, MlError *err)
{
	return ml_run_blocks(env, nblocks, slab, MC_MAX_TASKS, block, combine, arg,
						 stage, 0, 0, 0.0, err);
}

/* Task slots for env's thread count. */
static int
mc_tasks(const MlEnv *env)
{
	return env->n_threads < 1 ? 1 : env->n_threads > MC_MAX_TASKS ? MC_MAX_TASKS : env->n_threads;
}

/* Blocks per parallel call for work_per_block units each, between checks. */
static int64_t
mc_slab(const MlEnv *env, int64_t nblocks, double work_per_block)
{
	double		s = ceil((double) MC_SLAB_WORK / (work_per_block < 1 ? 1 : work_per_block));

	if (s < mc_tasks(env))
		s = mc_tasks(env);
	if (s > (double) nblocks)
		s = (double) nblocks;
	return (int64_t) s;
}

/* Squared Euclidean distance, summed in feature order. */
static inline double
mc_dist2(const double *a, const double *b, int d)
{
	double		s = 0.0;
	int			j;

	for (j = 0; j < d; j++)
	{
		double		t = a[j] - b[j];

		s += t * t;
	}
	return s;
}

/* Checks the inputs; counts rows per label and the distinct labels. */
static MlStatus
mc_prepare(const MlEnv *env, const double *X, int64_t n, int d, const int *labels, int k,
		   int64_t **counts_out, int *distinct, MlError *err)
{
	int64_t    *cnt,
				i;
	int			c;

	*counts_out = NULL;
	if (k < 1)
		return ml_fail(err, ML_ERR_PARAM, "clustering metrics need k >= 1, not %d", k);
	if (d < 1)
		return ml_fail(err, ML_ERR_DATA, "clustering metrics need at least one feature");
	if (n < 0 || (n > 0 && (X == NULL || labels == NULL)))
		return ml_fail(err, ML_ERR_DATA, "clustering metrics: no data");
	cnt = ml_calloc(env, (size_t) k, sizeof(int64_t));
	if (cnt == NULL)
		return ml_fail(err, ML_ERR_MEMORY, "out of memory for clustering metrics");
	for (i = 0; i < n; i++)
	{
		if (labels[i] < 0 || labels[i] >= k)
		{
			ml_free(env, cnt);
			return ml_fail(err, ML_ERR_DATA, "label %d of row %lld is outside [0, %d)",
						   labels[i], (long long) i + 1, k);
		}
		cnt[labels[i]]++;
	}
	*distinct = 0;
	for (c = 0; c < k; c++)
		*distinct += cnt[c] > 0;
	*counts_out = cnt;
	return ML_OK;
}

/* ---------------------------------------------------------------------- */
/* Per-cluster sums over rows: means, squared deviations, distances       */
/* ---------------------------------------------------------------------- */

enum
{
	MC_SUM_X,					/* sums[c][j] += x_j */
	MC_SUM_SQDEV,				/* sums[c][0] += |x - mean_c|^2 */
	MC_SUM_DIST					/* sums[c][0] += |x - mean_c| */
};

typedef struct McSums
{
	const double *X;
	int64_t		n;
	int			d;
	int			k;
	const int  *labels;
	int			what;
	int			width;			/* values per cluster: d or 1 */
	const double *means;		/* k x d */
	double	   *part;			/* slab x k x width */
	double	   *acc;			/* k x width */
	double	   *comp;			/* k x width */
} McSums;

/* Block b's per-cluster sums of x, |x - mean|^2 or |x - mean|. */
static void
mc_sums_block(void *arg, int64_t b, int64_t slot, int task)
{
	McSums	   *S = arg;
	int			d = S->d,
				j;
	size_t		kw = (size_t) S->k * S->width;
	double	   *p = S->part + (size_t) slot * kw;
	int64_t		i,
				r1 = (b + 1) * MC_BLOCK < S->n ? (b + 1) * MC_BLOCK : S->n;

	memset(p, 0, sizeof(double) * kw);
	for (i = b * MC_BLOCK; i < r1; i++)
	{
		const double *x = S->X + (size_t) i * d;
		int			c = S->labels[i];

		if (S->what == MC_SUM_X)
		{
			double	   *s = p + (size_t) c * d;

			for (j = 0; j < d; j++)
				s[j] += x[j];
		}
		else
		{
			double		v = mc_dist2(x, S->means + (size_t) c * d, d);

			p[c] += S->what == MC_SUM_DIST ? sqrt(v) : v;
		}
	}
}

/* Adds the blocks' partial sums into the compensated totals, in block order. */
static void
mc_sums_combine(void *arg, int64_t b0, int64_t b1)
{
	McSums	   *S = arg;
	size_t		kw = (size_t) S->k * S->width,
				idx;
	int64_t		b;

	for (b = b0; b < b1; b++)
	{
		const double *p = S->part + (size_t) (b - b0) * kw;

		for (idx = 0; idx < kw; idx++)
			ml_neumaier_add(&S->acc[idx], &S->comp[idx], p[idx]);
	}
}

/* out[c * width + ...] = the compensated per-cluster sums. */
static MlStatus
mc_cluster_sums(const MlEnv *env, const double *X, int64_t n, int d, const int *labels,
				int k, int what, const double *means, double *out, MlError *err)
{
	McSums		S;
	int64_t		nblocks = (n + MC_BLOCK - 1) / MC_BLOCK;
	int64_t		slab = mc_slab(env, nblocks, (double) MC_BLOCK * d);
	size_t		kw,
				idx;
	MlStatus	st;

	S.X = X;
	S.n = n;
	S.d = d;
	S.k = k;
	S.labels = labels;
	S.what = what;
	S.width = what == MC_SUM_X ? d : 1;
	S.means = means;
	kw = (size_t) k * S.width;
	S.part = ml_calloc(env, (size_t) (slab < 1 ? 1 : slab), kw * sizeof(double));
	S.comp = ml_calloc(env, kw, sizeof(double));
	S.acc = out;
	if (S.part == NULL || S.comp == NULL)
	{
		ml_free(env, S.part);
		ml_free(env, S.comp);
		return ml_fail(err, ML_ERR_MEMORY, "out of memory for clustering metrics");
	}
	memset(out, 0, kw * sizeof(double));
	st = mc_run(env, nblocks, slab, mc_sums_block, mc_sums_combine, &S, "cluster metrics", err);
	for (idx = 0; idx < kw; idx++)
		out[idx] += S.comp[idx];
	ml_free(env, S.part);
	ml_free(env, S.comp);
	return st;
}

/* Cluster means (k x d; rows of absent clusters are zero). */
static MlStatus
mc_means(const MlEnv *env, const double *X, int64_t n, int d, const int *labels, int k,
		 const int64_t *cnt, double *means, MlError *err)
{
	MlStatus	st = mc_cluster_sums(env, X, n, d, labels, k, MC_SUM_X, NULL, means, err);
	int			c,
				j;

	if (st != ML_OK)
		return st;
	for (c = 0; c < k; c++)
		if (cnt[c] > 0)
			for (j = 0; j < d; j++)
				means[(size_t) c * d + j] /= (double) cnt[c];
	return ML_OK;
}

/* What Calinski-Harabasz and Davies-Bouldin both start from. */
typedef struct McCentres
{
	int64_t    *cnt;			/* k: rows per label */
	int			nl;				/* distinct labels */
	double	   *means;			/* k x d cluster means */
	double	   *intra;			/* k: per-cluster sums of `what` around the means */
} McCentres;

/*
 * The set-up both scores share: the input checks and counts, then, when
 * the score is defined (2 <= distinct labels <= n - 1; *defined says so),
 * the cluster means and the per-cluster sums of what (MC_SUM_SQDEV or
 * MC_SUM_DIST) around them. mc_centres_free releases cs in every case.
 */
static MlStatus
mc_centres(const MlEnv *env, const double *X, int64_t n, int d, const int *labels, int k,
		   int what, McCentres *cs, bool *defined, MlError *err)
{
	MlStatus	st;

	memset(cs, 0, sizeof(*cs));
	*defined = false;
	st = mc_prepare(env, X, n, d, labels, k, &cs->cnt, &cs->nl, err);
	if (st != ML_OK || !(cs->nl > 1 && cs->nl < n))
		return st;
	cs->means = ml_alloc(env, sizeof(double) * k * d);
	cs->intra = ml_alloc(env, sizeof(double) * k);
	if (!cs->means || !cs->intra)
		return ml_fail(err, ML_ERR_MEMORY, "out of memory for clustering metrics");
	st = mc_means(env, X, n, d, labels, k, cs->cnt, cs->means, err);
	if (st == ML_OK)
		st = mc_cluster_sums(env, X, n, d, labels, k, what, cs->means, cs->intra, err);
	*defined = st == ML_OK;
	return st;
}

/* Frees what mc_centres allocated. */
static void
mc_centres_free(const MlEnv *env, McCentres *cs)
{
	ml_free(env, cs->cnt);
	ml_free(env, cs->means);
	ml_free(env, cs->intra);
}

/* Working memory of mc_centres and its callers (cluster_metrics.h). */
double
cluster_centres_bytes(const MlEnv *env, int64_t n, int d, int k)
{
	int64_t		nblocks = (n + MC_BLOCK - 1) / MC_BLOCK;
	double		slab = (double) mc_slab(env, nblocks, (double) MC_BLOCK * d);

	/* cnt, means, intra, the overall mean, and mc_cluster_sums' widest part + comp */
	return sizeof(double) * ((double) k * (d + 2) + d + (slab < 1 ? 1 : slab) * k * d + (double) k * d);
}

/*
 * Calinski-Harabasz: between-cluster dispersion over within-cluster
 * dispersion, times (n - labels) / (labels - 1); 1 when every cluster is a
 * single point.
 */
MlStatus
cluster_calinski_harabasz(const MlEnv *env, const double *X, int64_t n, int d,
						  const int *labels, int k, double *out, MlError *err)
{
	McCentres	cs;
	const int64_t *cnt;
	const double *means;
	bool		defined;
	int			c,
				j;
	double	   *mean = NULL;
	double		extra = 0.0,
				intra_tot = 0.0,
				intra_comp = 0.0;
	MlStatus	st;

	*out = NAN;
	st = mc_centres(env, X, n, d, labels, k, MC_SUM_SQDEV, &cs, &defined, err);
	if (st != ML_OK || !defined)
		goto done;
	cnt = cs.cnt;
	means = cs.means;
	mean = ml_calloc(env, (size_t) d, sizeof(double));
	if (!mean)
	{
		st = ml_fail(err, ML_ERR_MEMORY, "out of memory for clustering metrics");
		goto done;
	}
	/* the overall mean, from the cluster sums (compensated) */
	for (j = 0; j < d; j++)
	{
		double		s = 0.0,
					cp = 0.0;

		for (c = 0; c < k; c++)
			if (cnt[c] > 0)
				ml_neumaier_add(&s, &cp, means[(size_t) c * d + j] * (double) cnt[c]);
		mean[j] = (s + cp) / (double) n;
	}
	for (c = 0; c < k; c++)
		if (cnt[c] > 0)
		{
			extra += (double) cnt[c] * mc_dist2(means + (size_t) c * d, mean, d);
			ml_neumaier_add(&intra_tot, &intra_comp, cs.intra[c]);
		}
	intra_tot += intra_comp;
	*out = intra_tot == 0.0 ? 1.0 :
		extra * (double) (n - cs.nl) / (intra_tot * ((double) cs.nl - 1.0));
done:
	mc_centres_free(env, &cs);
	ml_free(env, mean);
	return st;
}

/*
 * Davies-Bouldin: the mean over clusters of the largest (s_c + s_e) /
 * |mean_c - mean_e|, s_c being the mean distance of c's rows to its mean;
 * 0 when all those distances or all centroid distances are (near) zero.
 */
MlStatus
cluster_davies_bouldin(const MlEnv *env, const double *X, int64_t n, int d,
					   const int *labels, int k, double *out, MlError *err)
{
	McCentres	cs;
	const int64_t *cnt;
	const double *means;
	double	   *intra;
	bool		defined;
	int			c,
				e;
	bool		intra_zero = true,
				cd_zero = true;
	double		total = 0.0,
				comp = 0.0;
	MlStatus	st;

	*out = NAN;
	st = mc_centres(env, X, n, d, labels, k, MC_SUM_DIST, &cs, &defined, err);
	if (st != ML_OK || !defined)
		goto done;
	cnt = cs.cnt;
	means = cs.means;
	intra = cs.intra;
	for (c = 0; c < k; c++)
		if (cnt[c] > 0)
		{
			intra[c] /= (double) cnt[c];
			if (fabs(intra[c]) > 1e-8)
				intra_zero = false;
		}
	/* np.allclose(centroid_distances, 0): every distance within 1e-8 */
	for (c = 0; c < k && cd_zero; c++)
		for (e = c + 1; e < k; e++)
			if (cnt[c] > 0 && cnt[e] > 0 &&
				sqrt(mc_dist2(means + (size_t) c * d, means + (size_t) e * d, d)) > 1e-8)
			{
				cd_zero = false;
				break;
			}
	if (intra_zero || cd_zero)
	{
		*out = 0.0;
		goto done;
	}
	for (c = 0; c < k; c++)
	{
		double		best = 0.0;

		if (cnt[c] == 0)
			continue;
		for (e = 0; e < k; e++)
		{
			double		dist,
						ratio;

			if (cnt[e] == 0 || e == c)
				continue;
			dist = sqrt(mc_dist2(means + (size_t) c * d, means + (size_t) e * d, d));
			/* scikit-learn sets zero centroid distances to inf: ratio 0 */
			ratio = dist == 0.0 ? 0.0 : (intra[c] + intra[e]) / dist;
			if (ratio > best)
				best = ratio;
		}
		ml_neumaier_add(&total, &comp, best);
	}
	*out = (total + comp) / (double) cs.nl;
done:
	mc_centres_free(env, &cs);
	return st;
}

/* ---------------------------------------------------------------------- */
/* Silhouette                                                             */
/* ---------------------------------------------------------------------- */

#define MC_R	4				/* query rows per tile */
#define MC_TILE 8				/* columns per tile */

/*
 * The silhouette's distance sums. Column p of a cluster's sorted rows adds
 * sqrt(sum_j (x_j - y_j)^2), the squares accumulated in feature order, to
 * lane (p - p0) mod 8 of the query row; lanes are summed in column order and
 * combined pairwise at the end. The SSE2, AVX and scalar kernels below all
 * compute exactly this (vector lanes are independent columns), so the result
 * does not depend on the instruction set, the grouping of rows or threads.
 */
struct McSil;
typedef void (*McTileFn) (const struct McSil *S, const double *xr, int64_t p,
						  double lanes[MC_R][MC_TILE]);

typedef struct McSil
{
	int64_t		m;				/* rows in the (sampled) set */
	int64_t		stride;			/* XT row length: m + MC_TILE padding */
	int			d;
	int			k;
	const double *XT;			/* d x stride, rows sorted by label */
	const int  *lab;			/* m labels, sorted */
	const int64_t *start;		/* k + 1 offsets of each cluster in the sorted order */
	double	   *s;				/* m silhouette values */
	double	   *scratch;		/* tasks x (MC_R d + MC_R k) */
	McTileFn	tile;			/* full-tile kernel for this CPU */
} McSil;

/* Any tile of len <= MC_TILE columns, one pair at a time. */
static void
mc_tile_scalar(const McSil *S, const double *xr, int64_t p, int len,
			   double lanes[MC_R][MC_TILE])
{
	int			r,
				q,
				j,
				d = S->d;

	for (r = 0; r < MC_R; r++)
		for (q = 0; q < len; q++)
		{
			double		acc = 0.0;

			for (j = 0; j < d; j++)
			{
				double		t = xr[r * d + j] - S->XT[(size_t) j * S->stride + p + q];

				acc += t * t;
			}
			lanes[r][q] += sqrt(acc);
		}
}

/* A full tile with the scalar kernel (no x86 vector unit). */
static void
mc_tile_generic(const McSil *S, const double *xr, int64_t p, double lanes[MC_R][MC_TILE])
{
	mc_tile_scalar(S, xr, p, MC_TILE, lanes);
}

#ifdef MC_X86
/* Two query rows at a time, 8 columns in four SSE2 registers each. */
static void
mc_tile_sse2(const McSil *S, const double *xr, int64_t p, double lanes[MC_R][MC_TILE])
{
	int			r,
				j,
				q,
				d = S->d;

	for (r = 0; r < MC_R; r += 2)
	{
		const double *col = S->XT + p;
		const double *x0 = xr + (size_t) r * d,
				   *x1 = x0 + d;
		__m128d		c0 = _mm_loadu_pd(col),
					c1 = _mm_loadu_pd(col + 2),
					c2 = _mm_loadu_pd(col + 4),
					c3 = _mm_loadu_pd(col + 6);
		__m128d		v = _mm_set1_pd(x0[0]),
					w = _mm_set1_pd(x1[0]);
		__m128d		a0 = _mm_sub_pd(v, c0),
					a1 = _mm_sub_pd(v, c1),
					a2 = _mm_sub_pd(v, c2),
					a3 = _mm_sub_pd(v, c3),
					b0 = _mm_sub_pd(w, c0),
					b1 = _mm_sub_pd(w, c1),
					b2 = _mm_sub_pd(w, c2),
					b3 = _mm_sub_pd(w, c3);

		a0 = _mm_mul_pd(a0, a0);
		a1 = _mm_mul_pd(a1, a1);
		a2 = _mm_mul_pd(a2, a2);
		a3 = _mm_mul_pd(a3, a3);
		b0 = _mm_mul_pd(b0, b0);
		b1 = _mm_mul_pd(b1, b1);
		b2 = _mm_mul_pd(b2, b2);
		b3 = _mm_mul_pd(b3, b3);
		for (j = 1; j < d; j++)
		{
			__m128d		t;

			col = S->XT + (size_t) j * S->stride + p;
			c0 = _mm_loadu_pd(col);
			c1 = _mm_loadu_pd(col + 2);
			c2 = _mm_loadu_pd(col + 4);
			c3 = _mm_loadu_pd(col + 6);
			v = _mm_set1_pd(x0[j]);
			w = _mm_set1_pd(x1[j]);
			t = _mm_sub_pd(v, c0);
			a0 = _mm_add_pd(a0, _mm_mul_pd(t, t));
			t = _mm_sub_pd(v, c1);
			a1 = _mm_add_pd(a1, _mm_mul_pd(t, t));
			t = _mm_sub_pd(v, c2);
			a2 = _mm_add_pd(a2, _mm_mul_pd(t, t));
			t = _mm_sub_pd(v, c3);
			a3 = _mm_add_pd(a3, _mm_mul_pd(t, t));
			t = _mm_sub_pd(w, c0);
			b0 = _mm_add_pd(b0, _mm_mul_pd(t, t));
			t = _mm_sub_pd(w, c1);
			b1 = _mm_add_pd(b1, _mm_mul_pd(t, t));
			t = _mm_sub_pd(w, c2);
			b2 = _mm_add_pd(b2, _mm_mul_pd(t, t));
			t = _mm_sub_pd(w, c3);
			b3 = _mm_add_pd(b3, _mm_mul_pd(t, t));
		}
		q = 0;
		_mm_storeu_pd(&lanes[r][q], _mm_add_pd(_mm_loadu_pd(&lanes[r][q]), _mm_sqrt_pd(a0)));
		_mm_storeu_pd(&lanes[r][q + 2], _mm_add_pd(_mm_loadu_pd(&lanes[r][q + 2]), _mm_sqrt_pd(a1)));
		_mm_storeu_pd(&lanes[r][q + 4], _mm_add_pd(_mm_loadu_pd(&lanes[r][q + 4]), _mm_sqrt_pd(a2)));
		_mm_storeu_pd(&lanes[r][q + 6], _mm_add_pd(_mm_loadu_pd(&lanes[r][q + 6]), _mm_sqrt_pd(a3)));
		_mm_storeu_pd(&lanes[r + 1][q], _mm_add_pd(_mm_loadu_pd(&lanes[r + 1][q]), _mm_sqrt_pd(b0)));
		_mm_storeu_pd(&lanes[r + 1][q + 2], _mm_add_pd(_mm_loadu_pd(&lanes[r + 1][q + 2]), _mm_sqrt_pd(b1)));
		_mm_storeu_pd(&lanes[r + 1][q + 4], _mm_add_pd(_mm_loadu_pd(&lanes[r + 1][q + 4]), _mm_sqrt_pd(b2)));
		_mm_storeu_pd(&lanes[r + 1][q + 6], _mm_add_pd(_mm_loadu_pd(&lanes[r + 1][q + 6]), _mm_sqrt_pd(b3)));
	}
}

/* Four query rows, 8 columns in two AVX registers each. */
__attribute__((target("avx")))
static void
mc_tile_avx(const McSil *S, const double *xr, int64_t p, double lanes[MC_R][MC_TILE])
{
	int			j,
				r,
				d = S->d;
	const double *col = S->XT + p;
	__m256d		c0 = _mm256_loadu_pd(col),
				c1 = _mm256_loadu_pd(col + 4);
	__m256d		acc[MC_R][2];

	for (r = 0; r < MC_R; r++)
	{
		__m256d		v = _mm256_set1_pd(xr[(size_t) r * d]),
					t0 = _mm256_sub_pd(v, c0),
					t1 = _mm256_sub_pd(v, c1);

		acc[r][0] = _mm256_mul_pd(t0, t0);
		acc[r][1] = _mm256_mul_pd(t1, t1);
	}
	for (j = 1; j < d; j++)
	{
		col = S->XT + (size_t) j * S->stride + p;
		c0 = _mm256_loadu_pd(col);
		c1 = _mm256_loadu_pd(col + 4);
		for (r = 0; r < MC_R; r++)
		{
			__m256d		v = _mm256_set1_pd(xr[(size_t) r * d + j]),
						t0 = _mm256_sub_pd(v, c0),
						t1 = _mm256_sub_pd(v, c1);

			acc[r][0] = _mm256_add_pd(acc[r][0], _mm256_mul_pd(t0, t0));
			acc[r][1] = _mm256_add_pd(acc[r][1], _mm256_mul_pd(t1, t1));
		}
	}
	for (r = 0; r < MC_R; r++)
	{
		_mm256_storeu_pd(&lanes[r][0], _mm256_add_pd(_mm256_loadu_pd(&lanes[r][0]),
													  _mm256_sqrt_pd(acc[r][0])));
		_mm256_storeu_pd(&lanes[r][4], _mm256_add_pd(_mm256_loadu_pd(&lanes[r][4]),
													  _mm256_sqrt_pd(acc[r][1])));
	}
}
#endif

/* Sums of the distances from the MC_R rows xr to sorted rows [p0, p1). */
static void
mc_tile_sums(const McSil *S, const double *xr, int64_t p0, int64_t p1, double *out)
{
	double		lanes[MC_R][MC_TILE];
	int64_t		p;
	int			r;

	memset(lanes, 0, sizeof(lanes));
	for (p = p0; p + MC_TILE <= p1; p += MC_TILE)
		S->tile(S, xr, p, lanes);
	if (p < p1)
		mc_tile_scalar(S, xr, p, (int) (p1 - p), lanes);
	for (r = 0; r < MC_R; r++)
		out[r] = ((lanes[r][0] + lanes[r][1]) + (lanes[r][2] + lanes[r][3])) +
			((lanes[r][4] + lanes[r][5]) + (lanes[r][6] + lanes[r][7]));
}

/* Silhouette values of the MC_R sorted rows of block b. */
static void
mc_sil_block(void *arg, int64_t b, int64_t slot, int task)
{
	McSil	   *S = arg;
	int			d = S->d,
				k = S->k,
				c,
				j,
				r;
	double	   *xr = S->scratch + (size_t) task * MC_R * (d + k);
	double	   *csum = xr + (size_t) MC_R * d;	/* k x MC_R */
	int64_t		i0 = b * MC_R,
				i;

	for (r = 0; r < MC_R; r++)
	{
		/* a short last block repeats its last row */
		int64_t		row = i0 + r < S->m ? i0 + r : S->m - 1;

		for (j = 0; j < d; j++)
			xr[r * d + j] = S->XT[(size_t) j * S->stride + row];
	}
	for (c = 0; c < k; c++)
		if (S->start[c + 1] > S->start[c])
			mc_tile_sums(S, xr, S->start[c], S->start[c + 1], csum + (size_t) c * MC_R);
	for (r = 0; r < MC_R && i0 + r < S->m; r++)
	{
		int			own;
		int64_t		n_own;
		double		a,
					bmin = INFINITY,
					mx;

		i = i0 + r;
		own = S->lab[i];
		n_own = S->start[own + 1] - S->start[own];
		if (n_own <= 1)
		{
			/* scikit-learn: 0/0 for a singleton, then nan_to_num: 0 */
			S->s[i] = 0.0;
			continue;
		}
		a = csum[(size_t) own * MC_R + r] / (double) (n_own - 1);
		for (c = 0; c < k; c++)
		{
			int64_t		nc = S->start[c + 1] - S->start[c];

			if (c != own && nc > 0)
			{
				double		v = csum[(size_t) c * MC_R + r] / (double) nc;

				if (v < bmin)
					bmin = v;
			}
		}
		mx = a > bmin ? a : bmin;
		S->s[i] = mx > 0.0 ? (bmin - a) / mx : 0.0;
	}
}

/*
 * *rows_out = m of the n row indices, ascending, drawn uniformly without
 * replacement (selection sampling) with seed; the caller frees it.
 */
static MlStatus
mc_sample_rows(const MlEnv *env, int64_t n, int64_t m, uint64_t seed, int64_t **rows_out,
			   MlError *err)
{
	MlRng		rng;
	int64_t		got = 0,
				i,
			   *rows;

	*rows_out = rows = ml_alloc(env, sizeof(int64_t) * (size_t) m);
	if (rows == NULL)
		return ml_fail(err, ML_ERR_MEMORY, "out of memory for the silhouette sample");
	ml_rng_seed(&rng, seed);
	for (i = 0; i < n && got < m; i++)
	{
		if ((double) (n - i) * ml_rng_uniform(&rng) < (double) (m - got))
			rows[got++] = i;
		if ((i & 0xffff) == 0xffff && ml_check(env, "silhouette", 0, 0, 0.0))
			return ml_fail_cancelled(err);
	}
	return ML_OK;
}

/*
 * Working memory of the silhouette (cluster_metrics.h): the direct kernel's
 * buffers; the blocked kernel for wide data needs no more than these.
 */
double
cluster_silhouette_bytes(const MlEnv *env, int64_t n, int d, int k, int64_t sample_size)
{
	double		m = (double) ((sample_size > 0 && n > sample_size) ? sample_size : n);

	/* cnt, start, fill; rows (sampled); lab, s; scratch; XT */
	return sizeof(int64_t) * (3.0 * k + 1) +
		(m < (double) n ? sizeof(int64_t) * m : 0.0) +
		(sizeof(int) + sizeof(double)) * m +
		sizeof(double) * (double) mc_tasks(env) * MC_R * ((double) d + k) +
		sizeof(double) * (m + MC_TILE) * d;
}

/* The default sample: largest m with m^2 d <= CLUSTER_SIL_WORK (cluster_metrics.h). */
int64_t
cluster_silhouette_default_rows(int64_t n, int d)
{
	double		m = floor(sqrt(CLUSTER_SIL_WORK / (double) (d < 1 ? 1 : d)));

	if (m > CLUSTER_SIL_MAX_ROWS)
		m = CLUSTER_SIL_MAX_ROWS;
	if (m < 2)
		m = 2;
	return (double) n < m ? n : (int64_t) m;
}

/* The silhouette values of the m sorted rows by the direct kernel, into s. */
static MlStatus
mc_silhouette_direct(const MlEnv *env, const double *X, int d, int k, int64_t m,
					 const int64_t *order, const int *lab, const int64_t *start,
					 double *s, MlError *err)
{
	int			nt = mc_tasks(env),
				j;
	int64_t		i,
				nblocks;
	double	   *XT,
			   *scratch;
	McSil		S;
	MlStatus	st;

	scratch = ml_alloc(env, sizeof(double) * (size_t) nt * MC_R * (d + k));
	XT = ml_calloc(env, (size_t) m + MC_TILE, sizeof(double) * d);
	if (!scratch || !XT)
	{
		ml_free(env, scratch);
		ml_free(env, XT);
		return ml_fail(err, ML_ERR_MEMORY, "out of memory for the silhouette of %lld rows",
					   (long long) m);
	}
	/* the sorted rows, feature-major */
	for (i = 0; i < m; i++)
		for (j = 0; j < d; j++)
			XT[(size_t) j * (m + MC_TILE) + i] = X[(size_t) order[i] * d + j];
	S.m = m;
	S.stride = m + MC_TILE;
	S.d = d;
	S.k = k;
	S.XT = XT;
	S.lab = lab;
	S.start = start;
	S.s = s;
	S.scratch = scratch;
	S.tile = mc_tile_generic;
#ifdef MC_X86
	S.tile = __builtin_cpu_supports("avx") ? mc_tile_avx : mc_tile_sse2;
#endif
	nblocks = (m + MC_R - 1) / MC_R;
	st = mc_run(env, nblocks, mc_slab(env, nblocks, (double) MC_R * m * (d + 2)),
				mc_sil_block, NULL, &S, "silhouette", err);
	ml_free(env, scratch);
	ml_free(env, XT);
	return st;
}

/* Mean silhouette of all rows or a seeded sample (cluster_metrics.h). */
MlStatus
cluster_silhouette(const MlEnv *env, const double *X, int64_t n, int d, const int *labels,
				   int k, int64_t sample_size, uint64_t seed, double *out, MlError *err)
{
	return cluster_silhouette_ex(env, X, n, d, labels, k, sample_size, seed,
								 CLUSTER_SIL_AUTO, out, NULL, err);
}

/* cluster_silhouette with a chosen kernel, reporting the rows scored (cluster_metrics.h). */
MlStatus
cluster_silhouette_ex(const MlEnv *env, const double *X, int64_t n, int d, const int *labels,
					  int k, int64_t sample_size, uint64_t seed, ClusterSilKernel kernel,
					  double *out, int64_t *rows_used, MlError *err)
{
	int64_t    *cnt,
			   *rows = NULL,
			   *start = NULL,
			   *fill = NULL,
			   *order = NULL,
				m,
				i;
	int			nl,
				c;
	int		   *lab = NULL;
	double	   *s = NULL;
	double		tot = 0.0,
				comp = 0.0;
	MlStatus	st;

	*out = NAN;
	if (rows_used)
		*rows_used = 0;
	st = mc_prepare(env, X, n, d, labels, k, &cnt, &nl, err);
	if (st != ML_OK)
		return st;
	if (sample_size < 0)
		sample_size = cluster_silhouette_default_rows(n, d);
	m = (sample_size > 0 && n > sample_size) ? sample_size : n;
	if (rows_used)
		*rows_used = m;
	if (m < n)
	{
		st = mc_sample_rows(env, n, m, seed, &rows, err);
		if (st != ML_OK)
			goto done;
		memset(cnt, 0, sizeof(int64_t) * k);
		for (i = 0; i < m; i++)
			cnt[labels[rows[i]]]++;
		nl = 0;
		for (c = 0; c < k; c++)
			nl += cnt[c] > 0;
	}
	if (!(nl > 1 && nl < m))
		goto done;				/* NaN, as scikit-learn raises here */

	/* the rows sorted by label (stably) */
	start = ml_alloc(env, sizeof(int64_t) * ((size_t) k + 1));
	fill = ml_alloc(env, sizeof(int64_t) * (size_t) k);
	order = ml_alloc(env, sizeof(int64_t) * (size_t) m);
	lab = ml_alloc(env, sizeof(int) * (size_t) m);
	s = ml_alloc(env, sizeof(double) * (size_t) m);
	if (!start || !fill || !order || !lab || !s)
	{
		st = ml_fail(err, ML_ERR_MEMORY, "out of memory for the silhouette of %lld rows",
					 (long long) m);
		goto done;
	}
	start[0] = 0;
	for (c = 0; c < k; c++)
		start[c + 1] = start[c] + cnt[c];
	memcpy(fill, start, sizeof(int64_t) * k);
	for (i = 0; i < m; i++)
	{
		int64_t		row = rows ? rows[i] : i;
		int64_t		p = fill[labels[row]]++;

		lab[p] = labels[row];
		order[p] = row;
	}
	if (kernel == CLUSTER_SIL_AUTO)
		kernel = d >= CLUSTER_SIL_BLOCKED_MIN_D && mc_blocked_available() ?
			CLUSTER_SIL_BLOCKED : CLUSTER_SIL_DIRECT;
	if (kernel == CLUSTER_SIL_DIRECT)
		st = mc_silhouette_direct(env, X, d, k, m, order, lab, start, s, err);
	else
		st = mc_silhouette_blocked(env, X, d, k, m, order, lab, start, s,
								   kernel == CLUSTER_SIL_BLOCKED_PORTABLE, err);
	if (st != ML_OK)
		goto done;
	for (i = 0; i < m; i++)
		ml_neumaier_add(&tot, &comp, s[i]);
	*out = (tot + comp) / (double) m;
done:
	ml_free(env, cnt);
	ml_free(env, rows);
	ml_free(env, start);
	ml_free(env, fill);
	ml_free(env, order);
	ml_free(env, lab);
	ml_free(env, s);
	return st;
}
