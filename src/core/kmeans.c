/*
 * kmeans.c: the public k-means entry points: kmeans_fit (validation, then
 * the fit's phases: input check, column moments, working rows, tolerance,
 * scratch, starting centres, Lloyd restarts or mini-batch, metrics),
 * kmeans_predict, kmeans_memory_estimate and kmeans_model_free. The
 * algorithms live in kmeans_lloyd.c, kmeans_hamerly.c, kmeans_init.c and
 * kmeans_minibatch.c, the codec in kmeans_codec.c (kmeans_int.h lists them).
 *
 * Behaviour follows scikit-learn 1.2's KMeans(algorithm="lloyd") and
 * MiniBatchKMeans: the same iteration, empty-cluster relocation, stopping
 * rules (labels unchanged, or total squared centre shift <= tol times the
 * mean feature variance), a final E-step when not strictly converged, and
 * the greedy k-means++ with 2 + log(k) local trials.
 *
 * Determinism. The Lloyd M-step sums are exact (128-bit fixed point, see
 * kmeans_hamerly.c; a double-sum fallback exists for data whose exponent range
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
#include "kmeans_int.h"
#include "cluster_metrics.h"

/* ---------------------------------------------------------------------- */
/* Fit context: allocations, errors, the block runner                     */
/* ---------------------------------------------------------------------- */

/* n x size bytes that live until km_free_all; NULL (F->err set) on failure. */
void *
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

/* Frees everything km_alloc gave out for this fit. */
static void
km_free_all(KmFit *F)
{
	int			i;

	for (i = 0; i < F->n_allocs; i++)
		ml_free(F->env, F->allocs[i]);
	F->n_allocs = 0;
}

/* The shared block runner (mlcore.h), with k-means' task cap. */
MlStatus
km_run(KmFit *F, int64_t nblocks, int64_t slab, MlBlockFn block, MlCombineFn combine,
	   void *arg, const char *stage, int iter, int max_iter, double value)
{
	return ml_run_blocks(F->env, nblocks, slab, KM_MAX_TASKS, block, combine, arg,
						 stage, iter, max_iter, value, F->err);
}

/* Blocks per parallel call for work of `cost` distance terms per row. */
int64_t
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

/* Records the first non-finite value of block b, if any. */
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

/* ML_ERR_DATA naming the first non-finite value of X (row-major order). */
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

/* Block b's compensated column sums (pass 1) or squared deviations (pass 2). */
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

/* Adds the blocks' partial sums into the totals, in block order. */
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
				j,
				pass;
	MlStatus	st;

	M.X = X;
	M.n = F->n;
	M.d = d;
	M.part = km_alloc(F, (size_t) slab * 2, (size_t) d * sizeof(double), "column moments");
	M.acc = km_alloc(F, 2 * (size_t) d, sizeof(double), "column moments");
	if (!M.part || !M.acc)
		return F->err->code;
	/* pass 0: sums, into mean; pass 1: squared deviations from it, into var */
	for (pass = 0; pass < 2; pass++)
	{
		double	   *out = pass == 0 ? mean : var;

		M.mean = pass == 0 ? NULL : mean;
		memset(M.acc, 0, sizeof(double) * 2 * d);
		st = km_run(F, F->nblocks, slab, km_moments_block, km_moments_combine, &M,
					"standardize", 0, 0, 0.0);
		if (st != ML_OK)
			return st;
		for (j = 0; j < d; j++)
			out[j] = (M.acc[j] + M.acc[d + j]) / (double) F->n;
	}
	return ML_OK;
}

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

/* Checks params and the data shape (see kmeans_fit in kmeans.h). */
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

/*
 * The model's mean and scale when standardising: the warm-start model's,
 * else the column means and standard deviations of X (a zero or non-finite
 * deviation scales by 1). var is d doubles of scratch.
 */
static MlStatus
km_fit_scale(KmFit *F, const double *X, const KmParams *p, KmModel *out, double *var)
{
	const KmModel *w = p->warm_start;
	int			d = F->d,
				c;
	MlStatus	st;

	if (!p->standardize)
		return ML_OK;
	out->mean = ml_alloc(F->env, sizeof(double) * d);
	out->scale = ml_alloc(F->env, sizeof(double) * d);
	if (!out->mean || !out->scale)
		return ml_fail(F->err, ML_ERR_MEMORY, "out of memory for the k-means model");
	if (w)
	{
		memcpy(out->mean, w->mean, sizeof(double) * d);
		memcpy(out->scale, w->scale, sizeof(double) * d);
		return ML_OK;
	}
	st = km_moments(F, X, out->mean, var);
	if (st != ML_OK)
		return st;
	for (c = 0; c < d; c++)
	{
		double		sd = sqrt(var[c]);

		out->scale[c] = sd > 0.0 && isfinite(sd) ? sd : 1.0;
	}
	return ML_OK;
}

/*
 * F->W, the rows the clustering runs on: X itself, or a copy standardised
 * and/or unit-normalised (cosine) with the model's transform.
 */
static MlStatus
km_fit_working_rows(KmFit *F, const double *X, const KmParams *p, const KmModel *out)
{
	int64_t		n = F->n,
				i;
	int			d = F->d;
	double	   *W;

	if (!p->standardize && !F->cosine)
	{
		F->W = X;
		return ML_OK;
	}
	W = km_alloc(F, (size_t) n * d, sizeof(double), "the standardised/normalised rows");
	if (!W)
		return F->err->code;
	for (i = 0; i < n; i++)
	{
		if (!km_transform_row(X + (size_t) i * d, d, out->mean, out->scale, F->cosine,
							  W + (size_t) i * d))
			return ml_fail(F->err, ML_ERR_DATA,
						   "row %lld is a zero vector%s: cosine distance needs rows of nonzero length",
						   (long long) i + 1, p->standardize ? " after standardizing" : "");
		if ((i & 0xffff) == 0xffff && ml_check(F->env, "kmeans", 0, 0, 0.0))
			return ml_fail_cancelled(F->err);
	}
	F->W = W;
	return ML_OK;
}

/* scikit-learn's _tolerance: F->tol = tol * mean variance of the working rows. */
static MlStatus
km_fit_tolerance(KmFit *F, const KmParams *p, double *var)
{
	double		tolvar = 0.0,
			   *mean;
	int			c;
	MlStatus	st;

	F->tol = 0.0;
	if (!(p->tol > 0.0))
		return ML_OK;
	mean = km_alloc(F, (size_t) F->d, sizeof(double), "column means");
	if (!mean)
		return F->err->code;
	st = km_moments(F, F->W, mean, var);
	if (st != ML_OK)
		return st;
	for (c = 0; c < F->d; c++)
		tolvar += var[c];
	F->tol = p->tol * (tolvar / F->d);
	return ML_OK;
}

/* The centres and labels of the current run and of the best run so far. */
typedef struct KmRuns
{
	double	   *C;				/* k x d, the current run */
	double	   *Cbest;			/* k x d, the best run (first: the supplied start) */
	int		   *labels;			/* n */
	int		   *best_labels;	/* n */
	double		best_inertia;
} KmRuns;

/*
 * The scratch of every phase: centres, sums, bounds, block partials, and
 * the exact path's state when it applies (Lloyd without KM_FLAG_DOUBLE_SUMS).
 */
static MlStatus
km_fit_scratch(KmFit *F, const KmParams *p, unsigned flags, KmRuns *R)
{
	int64_t		n = F->n;
	int			d = F->d,
				k = F->k;
	size_t		dist_per_task = 4 * ((size_t) k > 64 ? (size_t) k : 64);

	F->dist_stride = dist_per_task;
	R->C = km_alloc(F, (size_t) k * d, sizeof(double), "centroids");
	R->Cbest = km_alloc(F, (size_t) k * d, sizeof(double), "centroids");
	F->CT = km_alloc(F, (size_t) KM_LANES(k) * d, sizeof(double), "centroids");
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
	R->labels = km_alloc(F, (size_t) n, sizeof(int), "labels");
	R->best_labels = km_alloc(F, (size_t) n, sizeof(int), "labels");
	if (!R->C || !R->Cbest || !F->CT || !F->Cnew || !F->sums || !F->counts || !F->shift ||
		!F->down || !F->half || !F->map || !F->pval || !F->pchanged || !F->dist ||
		!R->labels || !R->best_labels)
		return F->err->code;
	F->empty = km_alloc(F, (size_t) k, sizeof(int), "empty clusters");
	F->far = km_alloc(F, (size_t) k, sizeof(int64_t), "empty clusters");
	if (!F->empty || !F->far)
		return F->err->code;
#ifdef KM_HAVE_INT128
	if (!p->minibatch && !(flags & KM_FLAG_DOUBLE_SUMS))
	{
		MlStatus	st = km_exact_prepare(F);

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
			return F->err->code;
	}
	if (!F->plain && !p->minibatch)
	{
		F->lb = km_alloc(F, (size_t) n, sizeof(double), "distance bounds");
		if (!F->lb)
			return F->err->code;
	}
	return ML_OK;
}

/*
 * Lloyd from n_init starts (one when the centres are supplied: they are in
 * R->Cbest); the run of least inertia wins, unless it is the same
 * clustering as the best so far (scikit-learn's rule). Fills
 * res->iterations / best_init and the model's counts.
 */
static MlStatus
km_fit_lloyd(KmFit *F, const KmParams *p, MlRng *rng, bool supplied, KmRuns *R,
			 KmModel *out, KmResult *res)
{
	int64_t		n = F->n,
				i;
	int			k = F->k,
				d = F->d,
				n_init = supplied ? 1 : p->n_init,
				r,
				c;
	int64_t    *pick = NULL;
	MlTrace		cur = {0};
	MlStatus	st = ML_OK;

	F->trace = p->trace ? &cur : NULL;
	for (r = 0; r < n_init; r++)
	{
		double		inertia = 0.0;
		int			iters = 0;

		ml_trace_start(&cur, F->t0_ms);
		if (supplied)
			memcpy(R->C, R->Cbest, sizeof(double) * k * d);
		else if ((st = km_init_seed(F, p->init, F->W, n, rng, &pick, R->C)) != ML_OK)
			break;
#ifdef KM_HAVE_INT128
		if (F->exact)
			st = km_lloyd_exact(F, R->C, R->labels, &inertia, &iters);
		else
#endif
			st = km_lloyd(F, R->C, R->labels, &inertia, &iters);
		if (st != ML_OK)
			break;
		if (r == 0 ||
			(inertia < R->best_inertia &&
			 !km_same_clustering(R->labels, R->best_labels, n, k, F->map)))
		{
			int		   *t = R->best_labels;

			R->best_labels = R->labels;
			R->labels = t;
			R->best_inertia = inertia;
			res->iterations = iters;
			res->best_init = r;
			if (p->trace)		/* the winner's figures; cur takes the old buffers */
			{
				MlTrace		tt = *p->trace;

				*p->trace = cur;
				cur = tt;
			}
			memcpy(R->Cbest, R->C, sizeof(double) * k * d);
		}
	}
	F->trace = NULL;
	ml_trace_free(F->env, &cur);
	if (st != ML_OK)
		return st;
	for (c = 0; c < k; c++)
		out->counts[c] = 0.0;
	for (i = 0; i < n; i++)
		out->counts[R->best_labels[i]] += 1.0;
	return ML_OK;
}

/*
 * The result: centroids and inertia (cosine: sum of 1 - cos), the labels
 * when asked, and the clustering metrics in the working space unless
 * KM_FLAG_NO_METRICS.
 */
static MlStatus
km_fit_results(KmFit *F, const KmParams *p, unsigned flags, const KmRuns *R,
			   int *labels_out, KmModel *out, KmResult *res)
{
	int64_t		n = F->n;
	int			d = F->d,
				k = F->k;
	MlStatus	st;

	memcpy(out->centroids, R->Cbest, sizeof(double) * k * d);
	res->inertia = F->cosine ? 0.5 * R->best_inertia : R->best_inertia;
	res->silhouette = NAN;
	res->calinski_harabasz = NAN;
	res->davies_bouldin = NAN;
	if (labels_out)
		memcpy(labels_out, R->best_labels, sizeof(int) * n);
	if (flags & KM_FLAG_NO_METRICS)
		return ML_OK;
	st = cluster_silhouette_ex(F->env, F->W, n, d, R->best_labels, k, p->sample_size,
							   p->seed, CLUSTER_SIL_AUTO, &res->silhouette,
							   &res->silhouette_rows, F->err);
	if (st == ML_OK)
		st = cluster_calinski_harabasz(F->env, F->W, n, d, R->best_labels, k,
									   &res->calinski_harabasz, F->err);
	if (st == ML_OK)
		st = cluster_davies_bouldin(F->env, F->W, n, d, R->best_labels, k,
									&res->davies_bouldin, F->err);
	return st;
}

/* The fit proper, phase by phase; the caller frees F's scratch. */
static MlStatus
km_fit_inner(KmFit *F, const double *X, const KmParams *p, unsigned flags, int *labels_out,
			 KmModel *out, KmResult *res)
{
	const KmModel *w = p->warm_start;
	int			d = F->d,
				k = F->k;
	double	   *var;
	KmRuns		R = {0};
	bool		supplied;
	MlRng		rng;
	MlStatus	st;

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
		return F->err->code;
	if ((st = km_fit_scale(F, X, p, out, var)) != ML_OK ||
		(st = km_fit_working_rows(F, X, p, out)) != ML_OK ||
		(st = km_fit_tolerance(F, p, var)) != ML_OK ||
		(st = km_fit_scratch(F, p, flags, &R)) != ML_OK)
		return st;
	out->centroids = ml_alloc(F->env, sizeof(double) * k * d);
	out->counts = ml_alloc(F->env, sizeof(double) * k);
	if (!out->centroids || !out->counts)
		return ml_fail(F->err, ML_ERR_MEMORY, "out of memory for the k-means model");
	/* initial centroids in the working space (given: transformed here) */
	st = km_init_supplied(F, p, out, R.Cbest, &supplied);
	if (st != ML_OK)
		return st;
	R.best_inertia = INFINITY;
	if (p->minibatch)
	{
		if (p->trace)
			ml_trace_start(p->trace, F->t0_ms);
		F->trace = p->trace;
		st = km_minibatch(F, p, supplied ? R.Cbest : NULL, w ? w->counts : NULL, &rng, R.C,
						  R.best_labels, &R.best_inertia, &res->iterations, out->counts);
		if (st != ML_OK)
			return st;
		memcpy(R.Cbest, R.C, sizeof(double) * k * d);
		res->best_init = 0;
	}
	else if ((st = km_fit_lloyd(F, p, &rng, supplied, &R, out, res)) != ML_OK)
		return st;
	return km_fit_results(F, p, flags, &R, labels_out, out, res);
}

/* kmeans_fit with flags and labels (kmeans.h): sets up the fit state, runs it, frees its scratch. */
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
	F.t0_ms = ml_now_ms();
	st = km_fit_inner(&F, X, p, flags, labels, out, res);
	km_free_all(&F);
	if (st != ML_OK)
	{
		kmeans_model_free(env, out);
		if (p->trace)
			ml_trace_free(env, p->trace);
		res->inertia = NAN;
	}
	return st;
}

/* Fits a model (kmeans.h). */
MlStatus
kmeans_fit(const MlEnv *env, const double *X, int64_t n, int d, const KmParams *p,
		   KmModel *out, KmResult *res, MlError *err)
{
	return kmeans_fit_ex(env, X, n, d, p, 0, NULL, out, res, err);
}

/* An upper bound on what kmeans_fit allocates, mirroring its allocations (kmeans.h). */
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
				m = (double) (p->sample_size < 0 ? cluster_silhouette_default_rows(n > 0 ? n : 0, d) :
							  p->sample_size > 0 && n > p->sample_size ? p->sample_size : n),
				b = 0.0;

	b += nb * 8 * 4 + slab * 2 * D * 8;		/* block partials, moments */
	if (p->standardize || p->distance == KM_DIST_COSINE)
		b += N * D * 8;			/* the working rows */
	b += 8 * KD * 8 + 10 * K * 8 + T * 4 * fmax(K, 64) * 8;	/* centres, scratch */
	b += 2 * (KM_LANES(p->k > 0 ? p->k : 1) - K) * D * 8;	/* transposed centres' padding */
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
		b += K * 16 * (T + 1) + D * 8;	/* the inertia sums */
		b += slab * (KD + K) * 8;	/* double-sum partials, when used */
		if (p->init == KM_INIT_KMEANSPP)
			b += N * 8 + (nb + 1) * 64 * 8 * 2 + D * 64 * 8;
	}
	b += KD * 8 + K * 8 + 2 * D * 8;	/* the model */
	b += 2 * 2 * 24 * ((double) (p->max_iter > 0 ? p->max_iter : 1) + 64);	/* two traces */
	/* metrics: silhouette's sorted copy (direct or packed), CH/DB partials */
	b += m * 28 + (m + 128) * D * 8 + T * 4 * (D + K) * 8 + K * 24;
	b += T * 128 * (128 + K) * 8;	/* the blocked kernel's tiles */
	b += KD * 8 * 3 + slab * KD * 8;
	b *= 1.25;
	return b >= (double) SIZE_MAX ? SIZE_MAX : (size_t) b;
}

/* Frees a model's arrays and clears the pointers. */
void
kmeans_model_free(const MlEnv *env, KmModel *m)
{
	ml_free(env, m->mean);
	ml_free(env, m->scale);
	ml_free(env, m->centroids);
	ml_free(env, m->counts);
	m->mean = m->scale = m->centroids = m->counts = NULL;
}

/* Nearest centroid of a raw row, transformed as in training; -1 when it cannot be placed. */
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
