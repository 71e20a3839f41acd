/*
 * kmeans_hamerly.c: Lloyd with exact incremental sums and Hamerly's bounds,
 * the path kmeans_fit takes whenever the data allows it (see
 * km_exact_prepare).
 *
 * Column j of the working rows is summed as integers in units of 2^lsb[j],
 * lsb[j] being the lowest set bit of any value in the column, in 128 bits.
 * When every column's range (highest bit - lowest bit) plus log2(n) fits,
 * these sums are exact, so they can be updated incrementally (only rows
 * that change cluster touch them, in any order, on any thread) and still
 * equal the sums recomputed from scratch. Pruned rows then cost no read of
 * the row at all, which is what makes an iteration cheap. The mean is the
 * exact sum rounded to double, times 1 / count, as scikit-learn computes it.
 */
#include "kmeans_int.h"

#include <limits.h>

#ifdef KM_HAVE_INT128

/*
 * x as sign * m * 2^scale with an integer significand m (the hidden bit
 * made explicit; subnormals have scale -1074). Returns the raw bits.
 */
static inline uint64_t
km_split(double x, uint64_t *m, int *scale)
{
	uint64_t	b;
	int			e;

	memcpy(&b, &x, 8);
	e = (int) ((b >> 52) & 0x7ff);
	*m = b & UINT64_C(0xFFFFFFFFFFFFF);
	if (e)
		*m |= UINT64_C(1) << 52;
	else
		e = 1;
	*scale = e - 1075;
	return b;
}

/* Exponents of the lowest and highest set bits of a nonzero double. */
static inline void
km_bit_range(double x, int *lo, int *hi)
{
	uint64_t	m;
	int			scale;

	km_split(x, &m, &scale);
	*lo = scale + __builtin_ctzll(m);
	*hi = scale + 63 - __builtin_clzll(m);
}

/* x / 2^lsb as an exact 128-bit integer (x's bits all lie at or above lsb). */
static inline km_i128
km_fix(double x, int lsb)
{
	uint64_t	b,
				m;
	int			scale,
				sh;
	km_i128		v;

	b = km_split(x, &m, &scale);
	if (m == 0)
		return 0;
	sh = scale - lsb;
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

/* Lowest and highest set bit of each column over block b's rows. */
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

/* Merges the blocks' bit ranges into the column totals. */
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
MlStatus
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
	F->msb = R.hi;
	F->mref = km_alloc(F, (size_t) d, sizeof(double), "inertia sums");
	F->Q = km_alloc(F, (size_t) F->k, sizeof(km_i128), "inertia sums");
	F->tQ = km_alloc(F, (size_t) F->k * F->nt, sizeof(km_i128), "inertia sums");
	if (!F->mref || !F->Q || !F->tQ)
		return F->err->code;
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

/* |x - mref|^2 as a 128-bit integer in units of 2^qlsb (truncated; below 2^80). */
static inline km_i128
km_xnorm(const KmFit *F, const double *x)
{
	return (km_i128) (km_dist2(x, F->mref, F->d) * F->qscale);
}

/*
 * Moves |x - mref|^2 from cluster old (when >= 0) to a in the task's Q
 * deltas (tc locates the task). Kept out of line: inlined, it made GCC
 * stop inlining km_scan into km_xscan (45% more CPU on a 1M x 8 bench).
 */
static __attribute__((noinline)) void
km_xmove_q(KmFit *F, const int64_t *tc, const double *x, int old, int a)
{
	km_i128    *tq = F->tQ + (size_t) (tc - F->tcnt);
	km_i128		q = km_xnorm(F, x);

	tq[a] += q;
	if (old >= 0)
		tq[old] -= q;
}

/* Moves row i from cluster old to a in the task's exact deltas. */
static inline void
km_xmove(KmFit *F, km_i128 *ts, int64_t *tc, const double *x, int old, int a)
{
	int			d = F->d,
				j;
	km_i128    *sa = ts + (size_t) a * d;

	km_xmove_q(F, tc, x, old, a);
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

/*
 * Block b of an exact pass: a full scan of every row (SCAN), or Hamerly's
 * test first and a scan only where it fails (BOUND); moved rows go into the
 * task's deltas.
 */
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

/*
 * The inertia of the current labels against C from the exact sums, without
 * a pass over the rows: per cluster, with y = x - mref and e = C_c - mref,
 * sum |x - C_c|^2 = sum |y|^2 - 2 e . sum y + n_c |e|^2. mref near the
 * data's mean keeps the cancellation small; every term is a fixed-order
 * sum of exact integers, so the figure does not depend on the threads.
 */
static double
km_xinertia(const KmFit *F, const double *C)
{
	int			k = F->k,
				d = F->d,
				c,
				j;
	double		tot = 0.0;

	if (F->qlsb == INT_MAX)
		return NAN;
	for (c = 0; c < k; c++)
	{
		double		q = ldexp((double) F->Q[c], F->qlsb),
					cross = 0.0,
					ee = 0.0;

		for (j = 0; j < d; j++)
		{
			km_i128		m = (km_i128) ldexp(F->mref[j], -F->lsb[j]);
			double		sy = ldexp((double) (F->S[(size_t) c * d + j] - F->counts[c] * m),
								   F->lsb[j]);
			double		e = C[(size_t) c * d + j] - F->mref[j];

			cross += e * sy;
			ee += e * e;
		}
		tot += q - 2.0 * cross + (double) F->counts[c] * ee;
	}
	return tot > 0.0 ? tot : 0.0;
}

/*
 * The assignment pass of the exact kind: moves rows between clusters and
 * updates F->S / F->counts / F->Q; *inertia is that of the new labels.
 */
static MlStatus
km_xpass(KmFit *F, const double *C, int *labels, int mode, int iter, int64_t *changed,
		 double *inertia)
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
	memset(F->tQ, 0, sizeof(km_i128) * F->k * F->nt);
	/*
	 * A pruned pass scans few rows: sized by its full-scan cost, a slab would
	 * be a fraction of the pass, and every slab is a join of the workers (on
	 * a loaded machine, a wait for the last descheduled one). The slab size
	 * does not change the result: blocks own their rows, sums are exact.
	 */
	st = km_run(F, F->nblocks,
				km_slab_for(F, mode == KM_PASS_BOUND ? (double) F->d : (double) F->k * F->d),
				km_xpass_block, NULL, &P, "kmeans", iter, F->max_iter, F->last_value);
	if (st != ML_OK)
		return st;
	for (t = 0; t < F->nt; t++)
	{
		const km_i128 *ts = F->tS + (size_t) t * kd;
		const int64_t *tc = F->tcnt + (size_t) t * F->k;
		const km_i128 *tq = F->tQ + (size_t) t * F->k;

		for (idx = 0; idx < kd; idx++)
			F->S[idx] += ts[idx];
		for (c = 0; c < F->k; c++)
		{
			F->counts[c] += tc[c];
			F->Q[c] += tq[c];
		}
	}
	*changed = 0;
	for (b = 0; b < F->nblocks; b++)
		*changed += F->pchanged[b];
	*inertia = km_xinertia(F, C);
	return ML_OK;
}

/*
 * Before the first pass: every row is unassigned, every sum zero; mref is
 * the mean of the initial centres rounded onto each column's bit grid (so
 * n_c * mref is exact in the sums), and Q's unit leaves 80 bits for one
 * row's |x - mref|^2 (so Q stays within 128 bits for 2^46 rows).
 */
static void
km_exact_start(KmFit *F, const double *C)
{
	int			k = F->k,
				d = F->d,
				c,
				j;
	double		qmax = 0.0;

	memset(F->S, 0, sizeof(km_i128) * k * d);
	memset(F->counts, 0, sizeof(int64_t) * k);
	memset(F->Q, 0, sizeof(km_i128) * k);
	for (j = 0; j < d; j++)
	{
		double		m = 0.0,
					r;

		for (c = 0; c < k; c++)
			m += C[(size_t) c * d + j];
		m = ldexp(rint(ldexp(m / k, -F->lsb[j])), F->lsb[j]);
		F->mref[j] = isfinite(m) ? m : 0.0;
		r = ldexp(1.0, F->msb[j] + 1) + fabs(F->mref[j]);
		qmax += r * r;
	}
	/* INT_MAX: squares overflow, no inertia figures (the fit is unaffected) */
	F->qlsb = !isfinite(qmax) ? INT_MAX : (qmax > 0.0 ? ilogb(qmax) + 1 : 0) - 80;
	F->qscale = F->qlsb == INT_MAX ? 0.0 : ldexp(1.0, -F->qlsb);
}

/* Relocation in exact sums: the row's values leave old and become nw's sum. */
static void
km_exact_move(KmFit *F, void *sums, const double *x, int old, int nw)
{
	km_i128    *S = sums;
	int			d = F->d,
				j;

	for (j = 0; j < d; j++)
	{
		km_i128		v = km_fix(x[j], F->lsb[j]);

		S[(size_t) old * d + j] -= v;
		S[(size_t) nw * d + j] = v;
	}
}

/*
 * Empty clusters relocated in copies of the sums (F->Srel, F->crel: the
 * incremental F->S must stay the sums of the current labels), then the
 * means: the exact sum rounded to double, times 1 / count.
 */
static MlStatus
km_exact_mstep(KmFit *F, const double *C, int *labels, int iter)
{
	int			k = F->k,
				d = F->d,
				n_empty,
				c,
				j;
	const km_i128 *S = F->S;
	const int64_t *cnt = F->counts;
	MlStatus	st = km_far_rows(F, C, F->counts, labels, iter, &n_empty);

	if (st != ML_OK)
		return st;
	if (n_empty > 0)
	{
		memcpy(F->Srel, F->S, sizeof(km_i128) * k * d);
		memcpy(F->crel, F->counts, sizeof(int64_t) * k);
		km_apply_relocations(F, labels, n_empty, F->Srel, F->crel, km_exact_move);
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
	return ML_OK;
}

static const KmLloydKind km_exact_kind = {km_exact_start, km_xpass, km_exact_mstep};

/* km_lloyd on exact sums: the same iteration, stopping rules and result. */
MlStatus
km_lloyd_exact(KmFit *F, double *C, int *labels, double *inertia_out, int *iters_out)
{
	return km_lloyd_run(F, &km_exact_kind, C, labels, inertia_out, iters_out);
}

#endif							/* KM_HAVE_INT128 */
