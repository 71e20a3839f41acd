/*
 * kmeans_lloyd.c: the Lloyd iteration. The assignment pass (every centre
 * scanned, or Hamerly's bounds skipping the scan where they prove the
 * current centre nearest), scikit-learn's empty-cluster relocation, the
 * pruning bounds, the stopping rules, and km_lloyd_run: the one Lloyd
 * driver, which the double-sum M-step here and the exact one in
 * kmeans_hamerly.c both plug into.
 */
#include "kmeans_int.h"

/* ---------------------------------------------------------------------- */
/* The Lloyd pass: assignment (pruned or full), sums, counts, inertia     */
/* ---------------------------------------------------------------------- */

typedef struct KmPass
{
	KmFit	   *F;
	const double *C;			/* k x d centres */
	int			mode;
	bool		accumulate;		/* sums and counts for the M-step */
	int		   *labels;
	double	   *out_d2;			/* KEEP only: per-row squared distance, or NULL */
} KmPass;

/*
 * Block b of a Lloyd pass: assigns each row (full scan, bound test, or
 * kept), records its squared distance, and sums the rows per cluster when
 * accumulating.
 */
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

/* Adds the blocks' cluster sums and counts into F->sums / F->counts, in block order. */
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
MlStatus
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
 * Empty clusters, as scikit-learn's _relocate_empty_clusters_dense: finds
 * the empty clusters (into F->empty, ascending) and the rows they take
 * (into F->far): the rows farthest from their centre (C, the centres the
 * rows were assigned with; farthest first, ties to the lower row).
 * *n_empty_out is their number; km_apply_relocations moves them.
 */
MlStatus
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
 * Moves the rows km_far_rows chose, in its order: row far[h] leaves its
 * cluster for the empty cluster empty[h], in a kind's sums (move) and in
 * counts. Labels are not changed (scikit-learn's relocation does not
 * change them either; the next pass does).
 */
void
km_apply_relocations(KmFit *F, const int *labels, int n_empty, void *sums,
					 int64_t *counts, KmMoveFn move)
{
	int			h;

	for (h = 0; h < n_empty; h++)
	{
		int64_t		far = F->far[h];
		int			nw = F->empty[h],
					old = labels[far];

		move(F, sums, F->W + (size_t) far * F->d, old, nw);
		counts[nw] = 1;
		counts[old] -= 1;
	}
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
 * One Lloyd run from the centres in C (k x d, working space) with the
 * M-step sums kept as `kind` keeps them; C receives the final centres,
 * labels the final assignment. The first pass scans every centre, later
 * ones prune with Hamerly's bounds unless F->plain.
 */
MlStatus
km_lloyd_run(KmFit *F, const KmLloydKind *kind, double *C, int *labels,
			 double *inertia_out, int *iters_out)
{
	int64_t		i,
				changed;
	int			iter;
	bool		strict = false;
	MlStatus	st;

	for (i = 0; i < F->n; i++)
		labels[i] = -1;
	if (kind->start)
		kind->start(F, C);
	for (iter = 0; iter < F->max_iter; iter++)
	{
		int			mode = (iter == 0 || F->plain) ? KM_PASS_SCAN : KM_PASS_BOUND;
		bool		stop = false;
		double		inertia;

		st = kind->assign(F, C, labels, mode, iter + 1, &changed, &inertia);
		if (st != ML_OK)
			return st;
		ml_trace_add(F->env, F->trace, F->cosine ? 0.5 * inertia : inertia, NAN);
		st = kind->mstep(F, C, labels, iter + 1);
		if (st != ML_OK)
			return st;
		st = km_lloyd_step_end(F, C, iter, changed, &stop, &strict);
		if (st != ML_OK)
			return st;
		if (stop)
			break;
	}
	return km_lloyd_finish(F, C, labels, iter, strict, inertia_out, iters_out);
}

/* ---------------------------------------------------------------------- */
/* The double-sum M-step                                                  */
/* ---------------------------------------------------------------------- */

/* Assignment with sums and counts recomputed from scratch (F->sums, F->counts). */
static MlStatus
km_sums_assign(KmFit *F, const double *C, int *labels, int mode, int iter, int64_t *changed,
			   double *inertia)
{
	return km_pass(F, C, labels, mode, true, NULL, iter, inertia, changed);
}

/* Relocation in double sums: the row's values leave old and become nw's sum. */
static void
km_sums_move(KmFit *F, void *sums, const double *x, int old, int nw)
{
	double	   *S = sums;
	int			d = F->d,
				j;

	for (j = 0; j < d; j++)
	{
		S[(size_t) old * d + j] -= x[j];
		S[(size_t) nw * d + j] = x[j];
	}
}

/*
 * Empty clusters relocated in F->sums / F->counts, then the means (sums
 * times the reciprocal count, as scikit-learn), normalised for cosine.
 */
static MlStatus
km_sums_mstep(KmFit *F, const double *C, int *labels, int iter)
{
	int			k = F->k,
				d = F->d,
				n_empty,
				c,
				j;
	MlStatus	st = km_far_rows(F, C, F->counts, labels, iter, &n_empty);

	if (st != ML_OK)
		return st;
	km_apply_relocations(F, labels, n_empty, F->sums, F->counts, km_sums_move);
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
	return ML_OK;
}

static const KmLloydKind km_sums_kind = {NULL, km_sums_assign, km_sums_mstep};

/* One Lloyd run on double sums (the fallback of the exact path). */
MlStatus
km_lloyd(KmFit *F, double *C, int *labels, double *inertia_out, int *iters_out)
{
	return km_lloyd_run(F, &km_sums_kind, C, labels, inertia_out, iters_out);
}
