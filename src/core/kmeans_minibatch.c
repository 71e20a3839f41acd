/*
 * kmeans_minibatch.c: MiniBatchKMeans (scikit-learn 1.2). km_minibatch runs
 * the phases: scratch, initial centres (n_init restarts on random subsets),
 * then per step: draw a batch, assign it, move the centres to their count-
 * weighted running means, reassign low-count centres, check convergence;
 * finally the labels, inertia and counts over all rows.
 */
#include "kmeans_int.h"

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

/* qsort order of KmPair: by value, ties by the lower index. */
static int
km_pair_cmp(const void *a, const void *b)
{
	const KmPair *x = a,
			   *y = b;

	if (x->v != y->v)
		return x->v < y->v ? -1 : 1;
	return (x->i > y->i) - (x->i < y->i);
}

/* Everything one mini-batch run keeps between its phases. */
typedef struct KmMb
{
	KmFit	   *F;
	const KmParams *p;
	MlRng	   *rng;
	int64_t		batch;			/* rows per step */
	int64_t		init_size;		/* rows per init subset */
	int64_t		since_reassign; /* rows seen since the last reassignment */
	int64_t    *idx;			/* the batch (and the random init's picks) */
	int64_t    *valid;			/* init: the validation subset */
	int64_t    *perm;			/* batch: reassignment permutation */
	int		   *blab;			/* batch labels */
	double	   *cnt;			/* k running counts */
	double	   *Cr;				/* running means (unnormalised for cosine) */
	double	   *Cn;				/* the step's new running means */
	double	   *Cu;				/* the centres rows are assigned to */
	double	   *CTb;			/* Cu transposed */
	double	   *C;				/* cosine: last good unit centres */
	bool	   *reas;			/* k: centre is reassigned this step */
	KmPair	   *pairs;			/* k: counts sorted, for the reassignment cap */
	/* early stopping, as MiniBatchKMeans._mini_batch_convergence */
	double		ewa;
	double		ewa_min;
	bool		have_ewa;
	bool		have_min;
	int			no_improvement;
} KmMb;

/* Sizes and scratch of a run. */
static MlStatus
km_mb_alloc(KmMb *M)
{
	KmFit	   *F = M->F;
	int			k = F->k,
				d = F->d;
	int64_t		n = F->n,
				batch = M->p->batch_size < n ? M->p->batch_size : n,
				init_size;

	init_size = 3 * batch;
	if (init_size < k)
		init_size = 3 * (int64_t) k;
	if (init_size > n)
		init_size = n;
	M->batch = batch;
	M->init_size = init_size;
	M->idx = km_alloc(F, (size_t) (batch > init_size ? batch : init_size), sizeof(int64_t), "mini-batch");
	M->valid = km_alloc(F, (size_t) init_size, sizeof(int64_t), "mini-batch");
	M->perm = km_alloc(F, (size_t) batch, sizeof(int64_t), "mini-batch");
	M->blab = km_alloc(F, (size_t) batch, sizeof(int), "mini-batch");
	M->cnt = km_alloc(F, (size_t) k, sizeof(double), "mini-batch");
	M->Cr = km_alloc(F, (size_t) k * d, sizeof(double), "mini-batch");
	M->Cn = km_alloc(F, (size_t) k * d, sizeof(double), "mini-batch");
	M->Cu = km_alloc(F, (size_t) k * d, sizeof(double), "mini-batch");
	M->CTb = km_alloc(F, (size_t) KM_LANES(k) * d, sizeof(double), "mini-batch");
	M->reas = km_alloc(F, (size_t) k, sizeof(bool), "mini-batch");
	M->pairs = km_alloc(F, (size_t) k, sizeof(KmPair), "mini-batch");
	if (!M->idx || !M->valid || !M->perm || !M->blab || !M->cnt || !M->Cr || !M->Cn ||
		!M->Cu || !M->CTb || !M->reas || !M->pairs)
		return F->err->code;
	return ML_OK;
}

/*
 * Initial centres into M->Cr: n_init seedings, each on its own random
 * subset of init_size rows, judged by the inertia of one shared validation
 * subset; the first best wins.
 */
static MlStatus
km_mb_init(KmMb *M)
{
	KmFit	   *F = M->F;
	int			k = F->k,
				d = F->d,
				r;
	int64_t		n = F->n,
				init_size = M->init_size,
				i;
	double		best = INFINITY;
	double	   *sub,
			   *Ctry;

	sub = km_alloc(F, (size_t) init_size * d, sizeof(double), "mini-batch init");
	Ctry = km_alloc(F, (size_t) k * d, sizeof(double), "mini-batch init");
	if (!sub || !Ctry)
		return F->err->code;
	for (i = 0; i < init_size; i++)
		M->valid[i] = (int64_t) ml_rng_below(M->rng, (uint64_t) n);
	for (r = 0; r < M->p->n_init; r++)
	{
		double		v;
		MlStatus	st;

		for (i = 0; i < init_size; i++)
		{
			int64_t		row = (int64_t) ml_rng_below(M->rng, (uint64_t) n);

			memcpy(sub + (size_t) i * d, F->W + (size_t) row * d, sizeof(double) * d);
		}
		st = km_init_seed(F, M->p->init, sub, init_size, M->rng, &M->idx, Ctry);
		if (st != ML_OK)
			return st;
		v = km_subset_inertia(F, F->W, M->valid, init_size, Ctry, M->CTb);
		if (r == 0 || v < best)
		{
			best = v;
			memcpy(M->Cr, Ctry, sizeof(double) * k * d);
		}
	}
	return ML_OK;
}

/*
 * Draws the step's batch (with replacement) and decides whether centres
 * are reassigned this step: when one has count 0, or every 10 k rows.
 */
static bool
km_mb_draw(KmMb *M)
{
	KmFit	   *F = M->F;
	int64_t		i;
	int			c;
	bool		reassign = false;

	for (i = 0; i < M->batch; i++)
		M->idx[i] = (int64_t) ml_rng_below(M->rng, (uint64_t) F->n);
	M->since_reassign += M->batch;
	for (c = 0; c < F->k; c++)
		if (M->cnt[c] == 0.0)
			reassign = true;
	if (reassign || M->since_reassign >= 10 * (int64_t) F->k)
	{
		M->since_reassign = 0;
		reassign = true;
	}
	return reassign;
}

/* Assigns the batch to the current centres; returns the batch inertia. */
static double
km_mb_assign(KmMb *M)
{
	KmFit	   *F = M->F;
	int			k = F->k,
				d = F->d;
	int64_t		i;
	double		bi = 0.0;

	km_transpose(M->Cu, k, d, M->CTb);
	for (i = 0; i < M->batch; i++)
	{
		double		d2;

		M->blab[i] = km_nearest(F->W + (size_t) M->idx[i] * d, M->CTb, k, d, F->dist, &d2);
		bi += d2;
	}
	return bi;
}

/* Count-weighted running means into M->Cn, rows added in batch order. */
static void
km_mb_update_means(KmMb *M)
{
	KmFit	   *F = M->F;
	int			k = F->k,
				d = F->d,
				c,
				j;
	int64_t		i;
	double	   *Cn = M->Cn,
			   *cnt = M->cnt;

	for (c = 0; c < k; c++)
		F->counts[c] = 0;
	for (i = 0; i < M->batch; i++)
		F->counts[M->blab[i]]++;
	for (c = 0; c < k; c++)
	{
		double	   *cn = Cn + (size_t) c * d;
		const double *co = M->Cr + (size_t) c * d;

		if (F->counts[c] > 0)
			for (j = 0; j < d; j++)
				cn[j] = co[j] * cnt[c];
		else
			memcpy(cn, co, sizeof(double) * d);
	}
	for (i = 0; i < M->batch; i++)
	{
		double	   *cn = Cn + (size_t) M->blab[i] * d;
		const double *x = F->W + (size_t) M->idx[i] * d;

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
}

/*
 * Marks in M->reas the centres whose count is below 1% of the largest,
 * at most half a batch of them (the lowest counts, ties to the lower
 * index); returns how many.
 */
static int64_t
km_mb_mark_low(KmMb *M)
{
	int			k = M->F->k,
				c;
	double		mx = 0.0;
	int64_t		n_re = 0,
				cap = (int64_t) (0.5 * (double) M->batch);

	for (c = 0; c < k; c++)
		if (M->cnt[c] > mx)
			mx = M->cnt[c];
	for (c = 0; c < k; c++)
	{
		M->reas[c] = M->cnt[c] < 0.01 * mx;
		n_re += M->reas[c];
	}
	if (n_re > 0.5 * (double) M->batch)
	{
		for (c = 0; c < k; c++)
		{
			M->pairs[c].v = M->cnt[c];
			M->pairs[c].i = c;
		}
		qsort(M->pairs, k, sizeof(KmPair), km_pair_cmp);
		for (c = 0; c < k; c++)
			M->reas[M->pairs[c].i] = c < cap;
		n_re = cap;
	}
	return n_re;
}

/*
 * Reassigns the centres with very low counts to distinct random batch rows
 * (partial Fisher-Yates); they take the smallest count of the others.
 */
static void
km_mb_reassign(KmMb *M)
{
	KmFit	   *F = M->F;
	int			k = F->k,
				d = F->d,
				c;
	int64_t		n_re = km_mb_mark_low(M),
				got = 0,
				i;
	double		mn = INFINITY;

	if (n_re <= 0)
		return;
	for (i = 0; i < M->batch; i++)
		M->perm[i] = i;
	for (i = 0; i < n_re; i++)
	{
		int64_t		jj = i + (int64_t) ml_rng_below(M->rng, (uint64_t) (M->batch - i)),
					t = M->perm[i];

		M->perm[i] = M->perm[jj];
		M->perm[jj] = t;
	}
	for (c = 0; c < k; c++)
		if (!M->reas[c] && M->cnt[c] < mn)
			mn = M->cnt[c];
	for (c = 0; c < k; c++)
		if (M->reas[c])
		{
			memcpy(M->Cn + (size_t) c * d, F->W + (size_t) M->idx[M->perm[got++]] * d,
				   sizeof(double) * d);
			M->cnt[c] = mn;
		}
}

/*
 * Makes the step's means current (checking them finite): Cr, the assigned
 * centres Cu (normalised for cosine; a zero mean keeps the last good unit
 * centre) and, for cosine, M->C. *sqdiff is the squared centre change when
 * tol > 0.
 */
static MlStatus
km_mb_commit(KmMb *M, double *sqdiff)
{
	KmFit	   *F = M->F;
	int			k = F->k,
				d = F->d,
				c;
	double	   *Cn = M->Cn;

	*sqdiff = 0.0;
	for (c = 0; c < k * d; c++)
		if (!isfinite(Cn[c]))
			return ml_fail(F->err, ML_ERR_DATA,
						   "k-means centroids overflowed: the data values are too large");
	if (F->tol > 0.0)
		for (c = 0; c < k * d; c++)
		{
			double		t = Cn[c] - M->Cr[c];

			*sqdiff += t * t;
		}
	memcpy(M->Cr, Cn, sizeof(double) * k * d);
	memcpy(M->Cu, M->Cr, sizeof(double) * k * d);
	if (F->cosine)
		for (c = 0; c < k; c++)
			if (!km_normalise(M->Cu + (size_t) c * d, d))
				memcpy(M->Cu + (size_t) c * d, M->C + (size_t) c * d, sizeof(double) * d);
	if (F->cosine)
		memcpy(M->C, M->Cu, sizeof(double) * k * d);	/* last good unit centres */
	return ML_OK;
}

/*
 * MiniBatchKMeans._mini_batch_convergence: true when the run stops after
 * this step, on a small centre change (tol > 0) or when the smoothed batch
 * inertia bi has not improved for 10 steps.
 */
static bool
km_mb_converged(KmMb *M, int64_t step, double bi, double sqdiff)
{
	KmFit	   *F = M->F;

	bi /= (double) M->batch;
	if (step == 0)
		return false;
	if (!M->have_ewa)
	{
		M->ewa = bi;
		M->have_ewa = true;
	}
	else
	{
		double		alpha = (double) M->batch * 2.0 / ((double) F->n + 1.0);

		if (alpha > 1.0)
			alpha = 1.0;
		M->ewa = M->ewa * (1.0 - alpha) + bi * alpha;
	}
	if (F->tol > 0.0 && sqdiff <= F->tol)
		return true;
	if (!M->have_min || M->ewa < M->ewa_min)
	{
		M->no_improvement = 0;
		M->ewa_min = M->ewa;
		M->have_min = true;
	}
	else
		M->no_improvement++;
	return M->no_improvement >= 10;
}

/*
 * The steps: max_iter * n / batch of them at most. Returns in *steps_out
 * how many ran. At the end of each epoch (and at the last step) the trace
 * gets the smoothed batch inertia per row (the batch's own before there is
 * a smoothed one) times n: an estimate of the inertia, not a pass.
 */
static MlStatus
km_mb_steps(KmMb *M, int64_t *steps_out)
{
	KmFit	   *F = M->F;
	int64_t		n = F->n,
				batch = M->batch,
				n_steps,
				step,
				last_epoch = 0;

	n_steps = (int64_t) M->p->max_iter > INT64_MAX / n ? INT64_MAX / batch :
		(int64_t) M->p->max_iter * n / batch;
	if (n_steps < 1)
		n_steps = 1;
	memcpy(M->Cu, M->Cr, sizeof(double) * F->k * F->d);
	for (step = 0; step < n_steps; step++)
	{
		bool		reassign = km_mb_draw(M);
		double		bi = km_mb_assign(M),
					sqdiff;
		MlStatus	st;
		bool		stop;
		int64_t		epoch;

		km_mb_update_means(M);
		if (reassign)
			km_mb_reassign(M);
		st = km_mb_commit(M, &sqdiff);
		if (st != ML_OK)
			return st;
		stop = km_mb_converged(M, step, bi, sqdiff);
		epoch = (int64_t) ((double) (step + 1) * batch / n);

		if (stop || epoch > last_epoch || step + 1 == n_steps)
		{
			ml_trace_add(F->env, F->trace,
						 (M->have_ewa ? M->ewa : bi / (double) batch) * (double) n, NAN);
			last_epoch = epoch;
		}
		if (stop)
		{
			step++;
			break;
		}
		if ((step & 63) == 63 &&
			ml_check(F->env, "minibatch kmeans",
					 (int) ((double) step * batch / n), M->p->max_iter, M->ewa))
			return ml_fail_cancelled(F->err);
	}
	*steps_out = step > n_steps ? n_steps : step;
	return ML_OK;
}

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
MlStatus
km_minibatch(KmFit *F, const KmParams *p, const double *C0, const double *counts0,
			 MlRng *rng, double *C, int *labels, double *inertia_out, int *iters_out,
			 double *counts_out)
{
	int			k = F->k,
				d = F->d,
				c;
	int64_t		n = F->n,
				steps = 0,
				i;
	KmMb		M = {0};
	MlStatus	st;

	M.F = F;
	M.p = p;
	M.rng = rng;
	M.C = C;
	st = km_mb_alloc(&M);
	if (st != ML_OK)
		return st;
	if (C0)
		memcpy(M.Cr, C0, sizeof(double) * k * d);
	else if ((st = km_mb_init(&M)) != ML_OK)
		return st;
	for (c = 0; c < k; c++)
		M.cnt[c] = counts0 ? counts0[c] : 0.0;
	memcpy(C, M.Cr, sizeof(double) * k * d);	/* unit rows already for cosine */
	st = km_mb_steps(&M, &steps);
	if (st != ML_OK)
		return st;
	*iters_out = (int) ceil((double) steps * (double) M.batch / (double) n);
	if (*iters_out < 1)
		*iters_out = 1;
	memcpy(C, M.Cu, sizeof(double) * k * d);
	/* labels and inertia over all rows */
	for (i = 0; i < n; i++)
		labels[i] = 0;
	st = km_pass(F, C, labels, KM_PASS_SCAN, false, NULL, p->max_iter, inertia_out, NULL);
	if (st != ML_OK)
		return st;
	for (c = 0; c < k; c++)
		counts_out[c] = counts0 ? counts0[c] : 0.0;
	for (i = 0; i < n; i++)
		counts_out[labels[i]] += 1.0;
	return ML_OK;
}
