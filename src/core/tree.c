/*
 * tree.c: CART trees (scikit-learn's DecisionTree/RandomForest semantics)
 * grown depth first on binned rows, with minimal cost-complexity pruning.
 *
 * A node's split is searched on per-feature histograms of its rows (class
 * weight sums + row count, or sum w*y, sum w, count); features are drawn in
 * a random order and, as scikit-learn does, constant features do not count
 * towards max_features. Missing values try both sides. A worker (one tree)
 * allocates nothing: its scratch comes from the main thread (cart_work_*).
 */
#include "trees_int.h"

#include <float.h>
#include <math.h>
#include <string.h>

#define CART_EPS DBL_EPSILON

static double
impurity_cls(const CartShared *s, const double *c, double W)
{
	int			k;
	double		v = 0;

	if (W <= 0)
		return 0;
	if (s->crit == TREE_CRIT_ENTROPY)
	{
		for (k = 0; k < s->K; k++)
			if (c[k] > 0)
			{
				double		q = c[k] / W;

				v -= q * log2(q);
			}
		return v;
	}
	for (k = 0; k < s->K; k++)
		v += (c[k] / W) * (c[k] / W);
	return 1.0 - v;
}

/* Histogram of the node's rows for the listed features (S stats per slot). */
static void
cart_hist(const CartShared *s, CartWork *w, const TrainNode *nd, const int *feats, int nf)
{
	const uint8_t *B = s->data->B;
	size_t		d = (size_t) s->d;
	int			S = s->S,
				q;
	uint32_t	k;
	double	   *h = w->hist;

	for (q = 0; q < nf; q++)
	{
		int			j = feats[q];

		memset(h + (size_t) s->off[j] * S, 0, sizeof(double) * S * (s->nb[j] + 1));
	}
	if (s->K > 0)
	{
		const int32_t *y = s->data->y_class;
		int			K = s->K;

		for (k = nd->begin; k < nd->end; k++)
		{
			uint32_t	r = w->idx[k];
			const uint8_t *row = B + r * d;
			double		wt = w->w[r];
			int			yc = y[r];

			for (q = 0; q < nf; q++)
			{
				int			j = feats[q];
				double	   *hp = h + (size_t) (s->off[j] + row[j]) * S;

				hp[yc] += wt;
				hp[K] += 1;
			}
		}
	}
	else
	{
		const double *y = s->data->y;

		for (k = nd->begin; k < nd->end; k++)
		{
			uint32_t	r = w->idx[k];
			const uint8_t *row = B + r * d;
			double		wt = w->w[r];
			double		wy = wt * y[r];

			for (q = 0; q < nf; q++)
			{
				int			j = feats[q];
				double	   *hp = h + (size_t) (s->off[j] + row[j]) * S;

				hp[0] += wy;
				hp[1] += wt;
				hp[2] += 1;
			}
		}
	}
}

typedef struct CartSplit
{
	double		score;			/* proxy to maximise */
	int			feature;
	int			bin;
	int			dl;
} CartSplit;

/*
 * Proxy score of a split (higher is better) from the left stats; T holds the
 * node totals. Classification gini: sum_s sum_k c^2 / W_s; entropy:
 * -sum_s (W_s log W_s - sum_k c log c); regression: sum_s S_s^2 / W_s.
 */
static double
proxy(const CartShared *s, const double *L, const double *T, double *Rtmp)
{
	int			k;

	if (s->K > 0)
	{
		int			K = s->K;
		double		WL = 0,
					WR = 0,
					a = 0,
					b = 0;

		for (k = 0; k < K; k++)
		{
			Rtmp[k] = T[k] - L[k];
			if (Rtmp[k] < 0)
				Rtmp[k] = 0;
			WL += L[k];
			WR += Rtmp[k];
		}
		if (WL <= 0 || WR <= 0)
			return -INFINITY;
		if (s->crit == TREE_CRIT_ENTROPY)
		{
			a = WL * log(WL);
			b = WR * log(WR);
			for (k = 0; k < K; k++)
			{
				if (L[k] > 0)
					a -= L[k] * log(L[k]);
				if (Rtmp[k] > 0)
					b -= Rtmp[k] * log(Rtmp[k]);
			}
			return -(a + b);
		}
		for (k = 0; k < K; k++)
		{
			a += L[k] * L[k];
			b += Rtmp[k] * Rtmp[k];
		}
		return a / WL + b / WR;
	}
	else
	{
		double		SL = L[0],
					WL = L[1],
					SR = T[0] - L[0],
					WR = T[1] - L[1];

		if (WL <= 0 || WR <= 0)
			return -INFINITY;
		return SL * SL / WL + SR * SR / WR;
	}
}

/* Scans one feature's histogram for the best split; counts at index S-1. */
static void
scan_feature(const CartShared *s, CartWork *w, int j, const double *T, CartSplit *best)
{
	int			S = s->S,
				nbj = s->nb[j],
				b,
				c;
	const double *h = w->hist + (size_t) s->off[j] * S;
	const double *miss = h + (size_t) nbj * S;
	double	   *L = w->scan;
	double	   *L2 = w->scan + S;
	double	   *Rt = w->scan + 2 * S;
	double		nT = T[S - 1],
				nmiss = miss[S - 1];
	double		msl = s->msl;

	memset(L, 0, sizeof(double) * S);
	for (b = 0; b < nbj; b++)
	{
		const double *hb = h + (size_t) b * S;
		double		sc;

		if (hb[S - 1] == 0 && b < nbj - 1)
			continue;			/* empty bin: same split as the previous one */
		for (c = 0; c < S; c++)
			L[c] += hb[c];
		if (b == nbj - 1 && nmiss == 0)
			break;
		/* missing right */
		if (L[S - 1] >= msl && nT - L[S - 1] >= msl)
		{
			sc = proxy(s, L, T, Rt);
			if (sc > best->score)
			{
				best->score = sc;
				best->feature = j;
				best->bin = b;
				best->dl = nmiss > 0 ? 0 : (L[S - 1] >= nT - L[S - 1]);
			}
		}
		/* missing left */
		if (nmiss > 0 && b < nbj - 1)
		{
			for (c = 0; c < S; c++)
				L2[c] = L[c] + miss[c];
			if (L2[S - 1] >= msl && nT - L2[S - 1] >= msl)
			{
				sc = proxy(s, L2, T, Rt);
				if (sc > best->score)
				{
					best->score = sc;
					best->feature = j;
					best->bin = b;
					best->dl = 1;
				}
			}
		}
	}
}

/* Node totals (S stats), impurity, weight and the regression mean. */
static void
node_stats(const CartShared *s, CartWork *w, TrainNode *nd, double *T)
{
	uint32_t	k;
	int			S = s->S;

	memset(T, 0, sizeof(double) * S);
	if (s->K > 0)
	{
		for (k = nd->begin; k < nd->end; k++)
		{
			uint32_t	r = w->idx[k];

			T[s->data->y_class[r]] += w->w[r];
		}
		T[S - 1] = nd->end - nd->begin;
		nd->weight = 0;
		for (k = 0; k < (uint32_t) s->K; k++)
			nd->weight += T[k];
		nd->impurity = impurity_cls(s, T, nd->weight);
		nd->value = 0;
	}
	else
	{
		double		s2 = 0;

		for (k = nd->begin; k < nd->end; k++)
		{
			uint32_t	r = w->idx[k];
			double		wt = w->w[r],
						y = s->data->y[r];

			T[0] += wt * y;
			T[1] += wt;
			s2 += wt * y * y;
		}
		T[2] = nd->end - nd->begin;
		nd->weight = T[1];
		nd->value = T[1] > 0 ? T[0] / T[1] : 0;
		nd->impurity = T[1] > 0 ? s2 / T[1] - nd->value * nd->value : 0;
		if (nd->impurity < 0)
			nd->impurity = 0;
	}
}

static uint32_t
cart_partition(const CartShared *s, CartWork *w, const TrainNode *nd)
{
	uint32_t   *ix = w->idx;
	uint32_t	wpos = nd->begin,
				t = 0,
				k;
	size_t		d = (size_t) s->d;
	const uint8_t *col = s->data->B + nd->feature;
	int			nbf = s->nb[nd->feature];

	for (k = nd->begin; k < nd->end; k++)
	{
		uint32_t	r = ix[k];
		int			c = col[r * d];
		uint32_t	left = (uint32_t) (c <= nd->bin) | ((uint32_t) (c == nbf) & (uint32_t) (nd->default_left != 0));

		ix[wpos] = r;
		w->tmp[t] = r;
		wpos += left;
		t += !left;
	}
	memcpy(ix + wpos, w->tmp, sizeof(uint32_t) * t);
	return wpos;
}

/* Minimal cost-complexity pruning (scikit-learn's): repeatedly collapse the
 * weakest link while its effective alpha is <= ccp_alpha. */
static void
cart_prune(const CartShared *s, CartWork *w)
{
	TrainNode  *tn = w->tn;
	int			n = w->n_tn,
				k;
	double		Wroot = tn[0].weight > 0 ? tn[0].weight : 1;

	for (;;)
	{
		int			best = -1;
		double		best_alpha = INFINITY;

		memset(w->reach, 0, n);
		w->reach[0] = 1;
		for (k = 0; k < n; k++)
			if (w->reach[k] && tn[k].left >= 0)
				w->reach[tn[k].left] = w->reach[tn[k].left + 1] = 1;
		for (k = n - 1; k >= 0; k--)
		{
			if (tn[k].left < 0)
			{
				w->rsub[k] = tn[k].impurity * tn[k].weight / Wroot;
				w->nleaf[k] = 1;
			}
			else
			{
				w->rsub[k] = w->rsub[tn[k].left] + w->rsub[tn[k].left + 1];
				w->nleaf[k] = w->nleaf[tn[k].left] + w->nleaf[tn[k].left + 1];
			}
		}
		for (k = 0; k < n; k++)
			if (w->reach[k] && tn[k].left >= 0)
			{
				double		alpha = (tn[k].impurity * tn[k].weight / Wroot - w->rsub[k]) / (w->nleaf[k] - 1);

				if (alpha < best_alpha)
				{
					best_alpha = alpha;
					best = k;
				}
			}
		if (best < 0 || best_alpha > s->p->ccp_alpha)
			break;
		tn[best].left = -1;
	}
}

/* Grows one tree on rows w->idx[0, w->n_idx) with weights w->w. */
void
cart_grow(const CartShared *s, CartWork *w)
{
	int			S = s->S;
	int			sp = 0;
	uint32_t	pops = 0;
	TrainNode  *root = &w->tn[0];

	w->n_tn = 1;
	memset(root, 0, sizeof(*root));
	root->left = -1;
	root->hist = -1;
	root->begin = 0;
	root->end = w->n_idx;
	w->stack[sp++] = 0;
	w->cancelled = false;
	while (sp > 0)
	{
		int			id = w->stack[--sp];
		TrainNode  *nd = &w->tn[id];
		double	   *T = w->scan + 3 * S;
		uint32_t	nn = nd->end - nd->begin;
		CartSplit	best;
		int			tried = 0,
					remaining = s->d,
					nonconst = 0;

		if (w->check_env && (++pops & 1023) == 0 &&
			ml_check(w->check_env, "tree", 0, 0, NAN))
		{
			w->cancelled = true;
			return;
		}

		node_stats(s, w, nd, T);
		if (nd->depth >= s->max_depth || nn < (uint32_t) s->mss ||
			nn < 2 * (uint32_t) s->msl || nd->impurity <= CART_EPS ||
			w->n_tn + 2 > w->max_tn)
			continue;
		best.score = -INFINITY;
		best.feature = -1;
		best.bin = 0;
		best.dl = 0;
		{
			int			q;

			for (q = 0; q < s->d; q++)
				w->feat[q] = q;
		}
		/* Draw features until mtry non-constant ones were searched. */
		while (remaining > 0 && nonconst < s->mtry)
		{
			int			want = s->mtry - nonconst,
						q,
						got = 0;
			int		   *batch = w->feat + tried;

			if (want > remaining)
				want = remaining;
			for (q = 0; q < want; q++)
			{
				int			r = tried + q + (int) ml_rng_below(&w->rng, (uint64_t) (remaining - q));
				int			tmp = w->feat[tried + q];

				w->feat[tried + q] = w->feat[r];
				w->feat[r] = tmp;
			}
			cart_hist(s, w, nd, batch, want);
			for (q = 0; q < want; q++)
			{
				int			j = batch[q],
							b,
							filled = 0;
				const double *h = w->hist + (size_t) s->off[j] * S;

				for (b = 0; b <= s->nb[j] && filled < 2; b++)
					if (h[(size_t) b * S + S - 1] > 0)
						filled++;
				if (filled < 2)
					continue;	/* constant in this node */
				got++;
				scan_feature(s, w, j, T, &best);
			}
			nonconst += got;
			tried += want;
			remaining -= want;
		}
		if (best.feature < 0)
			continue;
		{
			int			l = w->n_tn;
			uint32_t	mid;
			TrainNode  *L,
					   *R;

			nd->left = l;
			nd->feature = best.feature;
			nd->bin = best.bin;
			nd->default_left = (uint8_t) best.dl;
			mid = cart_partition(s, w, nd);
			w->n_tn += 2;
			L = &w->tn[l];
			R = &w->tn[l + 1];
			memset(L, 0, sizeof(*L) * 2);
			L->left = R->left = -1;
			L->hist = R->hist = -1;
			L->depth = R->depth = nd->depth + 1;
			L->begin = nd->begin;
			L->end = mid;
			R->begin = mid;
			R->end = nd->end;
			w->stack[sp++] = l + 1;
			w->stack[sp++] = l;
		}
	}
	/* weighted impurity decrease of each split (for importances) */
	{
		int			k;

		for (k = 0; k < w->n_tn; k++)
		{
			TrainNode  *nd = &w->tn[k];

			if (nd->left >= 0)
			{
				const TrainNode *L = &w->tn[nd->left],
						   *R = &w->tn[nd->left + 1];
				double		g = nd->impurity * nd->weight - L->impurity * L->weight - R->impurity * R->weight;

				nd->gain = g > 0 ? g : 0;
			}
		}
	}
	if (s->p->ccp_alpha > 0 && w->n_tn > 1)
		cart_prune(s, w);
}
