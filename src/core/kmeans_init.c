/*
 * kmeans_init.c: the starting centres of a k-means run: greedy k-means++
 * (scikit-learn's _kmeans_plusplus), k distinct random rows, or the given /
 * warm-start centroids brought into the working space.
 */
#include "kmeans_int.h"

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

/* k-means++ pass A on block b: D^2 to the nearest centre so far, and its block sum. */
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

/* k-means++ pass B on block b: the potential with each candidate added. */
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

/* The k-means++ scratch, allocated on first use for n rows. */
static MlStatus
km_pp_scratch(KmFit *F, int64_t n, int64_t nb)
{
	if (F->pp_closest == NULL)
	{
		F->pp_cap = n;
		F->pp_closest = km_alloc(F, (size_t) n, sizeof(double), "k-means++ distances");
		F->pp_pval = km_alloc(F, (size_t) nb, sizeof(double) * 64, "k-means++ potentials");
		F->pp_prefix = km_alloc(F, (size_t) nb + 1, sizeof(double), "k-means++ potentials");
		F->pp_candT = km_alloc(F, (size_t) F->d, sizeof(double) * 64, "k-means++ candidates");
		if (!F->pp_closest || !F->pp_pval || !F->pp_prefix || !F->pp_candT)
			return F->err->code;
	}
	if (n > F->pp_cap)
		return ml_fail(F->err, ML_ERR_INTERNAL, "k-means++ scratch is too small");
	return ML_OK;
}

/*
 * Draws the trials candidates into cand: for each, the first row whose
 * cumulative D^2 reaches u * pot (scikit-learn's searchsorted), found by
 * bisection over the block prefix sums, then within the block.
 */
static void
km_pp_candidates(const KmPP *P, const double *prefix, int64_t nb, double pot, MlRng *rng,
				 int64_t *cand)
{
	int			t;

	for (t = 0; t < P->trials; t++)
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
		cand[t] = P->n - 1;
		r1 = km_block_end(lo, P->n);
		for (i = lo * KM_BLOCK; i < r1; i++)
		{
			local += P->closest[i];
			if (prefix[lo] + local >= r)
			{
				cand[t] = i;
				break;
			}
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
MlStatus
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
	st = km_pp_scratch(F, n, nb);
	if (st != ML_OK)
		return st;
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
		km_pp_candidates(&P, prefix, nb, pot, rng, cand);
		/* pass B: the potential with each candidate added */
		for (t = 0; t < trials; t++)
			memcpy(candT + (size_t) t * d, W + (size_t) cand[t] * d, sizeof(double) * d);
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
MlStatus
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

/*
 * Seeds C (k x d) from the n rows W with init (k-means++ or random: k
 * distinct rows in random order). *pick is the random init's index scratch
 * (k entries), allocated here on first use.
 */
MlStatus
km_init_seed(KmFit *F, KmInit init, const double *W, int64_t n, MlRng *rng,
			 int64_t **pick, double *C)
{
	int			c,
				d = F->d;
	MlStatus	st;

	if (init == KM_INIT_KMEANSPP)
		return km_kmeanspp(F, W, n, rng, C);
	if (*pick == NULL &&
		(*pick = km_alloc(F, (size_t) F->k, sizeof(int64_t), "random init")) == NULL)
		return F->err->code;
	st = km_sample_indices(F->env, rng, n, F->k, *pick, true, F->err);
	if (st != ML_OK)
		return st;
	for (c = 0; c < F->k; c++)
		memcpy(C + (size_t) c * d, W + (size_t) (*pick)[c] * d, sizeof(double) * d);
	return ML_OK;
}

/*
 * The supplied starting centres in the working space, into C: init = given
 * (raw-space rows, transformed with the model's mean/scale and normalised
 * for cosine) or the warm-start model's centroids (normalised for cosine).
 * Returns false in *have when neither applies.
 */
MlStatus
km_init_supplied(KmFit *F, const KmParams *p, const KmModel *out, double *C, bool *have)
{
	const KmModel *w = p->warm_start;
	int			k = F->k,
				d = F->d,
				c;

	*have = p->init == KM_INIT_GIVEN || w != NULL;
	if (p->init == KM_INIT_GIVEN)
		for (c = 0; c < k; c++)
			if (!km_transform_row(p->given + (size_t) c * d, d, out->mean, out->scale,
								  F->cosine, C + (size_t) c * d))
				return ml_fail(F->err, ML_ERR_PARAM,
							   "initial centroid %d is a zero vector%s: cosine distance needs nonzero centroids",
							   c + 1, p->standardize ? " after standardizing" : "");
	if (w)
	{
		memcpy(C, w->centroids, sizeof(double) * k * d);
		if (F->cosine)
			for (c = 0; c < k; c++)
				if (!km_normalise(C + (size_t) c * d, d))
					return ml_fail(F->err, ML_ERR_PARAM,
								   "warm_start centroid %d is a zero vector", c + 1);
	}
	return ML_OK;
}
