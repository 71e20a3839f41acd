/*
 * tree_quant.c: building the quantised scoring layout of a tree model (see
 * struct TreeQuant in trees_int.h); tree_predict.c walks it.
 */
#include "trees_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

bool		tree_quant_always = false;

/* qsort order of doubles (no NaN among them). */
static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/* How many of the n sorted values in c lie below x (n >= 1). */
static uint32_t
count_below(const double *c, uint32_t n, double x)
{
	uint32_t	i = 0;

	while (i < n && c[i] < x)
		i++;
	return i;
}

/*
 * Sorts and deduplicates each feature's thresholds in all (grouped by
 * feature, cnt[j] .. cnt[j + 1]), moving them to the front; cnt becomes the
 * offsets of the distinct lists. False when a threshold is NaN.
 */
static bool
quant_sort_cuts(double *all, uint32_t *cnt, uint32_t d)
{
	uint32_t	j,
				i,
				n_cuts = 0,
				b = cnt[0];

	for (j = 0; j < d; j++)
	{
		uint32_t	e = cnt[j + 1];

		for (i = b; i < e; i++)
			if (all[i] != all[i])
				return false;
		qsort(all + b, e - b, sizeof(double), cmp_double);
		cnt[j] = n_cuts;
		for (i = b; i < e; i++)
			if (i == b || all[i] != all[n_cuts - 1])
				all[n_cuts++] = all[i];
		b = e;
	}
	cnt[d] = n_cuts;
	return true;
}

/*
 * Builds the quantised layout from the model's splits and the fast layout
 * (cnt: d + 1 counters, all: one double per node, both scratch); leaves
 * f->quant NULL when a threshold is NaN, a feature has too many of them, or
 * binning a row would cost more steps than the walk takes. False on OOM.
 */
static bool
quant_layout(const MlEnv *env, const TreeModel *m, struct TreeFast *f, uint32_t *cnt, double *all)
{
	uint32_t	d = m->n_features,
				n_nodes = m->tree_start[m->n_trees],
				j,
				i,
				nu = 0,
				width = 1,
				log_w = 0;
	size_t		nq = (size_t) ((m->n_trees + 7) / 8) * 8 * f->n_int;
	struct TreeQuant *q;
	char	   *blk;

	memset(cnt, 0, sizeof(uint32_t) * (d + 1));
	/* count splits per feature, then gather them grouped by feature */
	for (i = 0; i < n_nodes; i++)
		if (!(m->nodes[i].feature & TREE_NODE_LEAF))
			cnt[(m->nodes[i].feature & TREE_NODE_FEATURE_MASK) + 1]++;
	for (j = 0; j < d; j++)
		cnt[j + 1] += cnt[j];
	for (i = 0; i < n_nodes; i++)
	{
		const TreeNode *nd = &m->nodes[i];

		if (!(nd->feature & TREE_NODE_LEAF))
			all[cnt[nd->feature & TREE_NODE_FEATURE_MASK]++] = nd->value;
	}
	for (j = d; j > 0; j--)
		cnt[j] = cnt[j - 1];
	cnt[0] = 0;
	if (!quant_sort_cuts(all, cnt, d))
		return true;
	for (j = 0; j < d; j++)
	{
		uint32_t	n = cnt[j + 1] - cnt[j];

		if (n > QUANT_MAX_CUTS)
			return true;
		nu += n > 0;
		while (width < n + 1)
		{
			width *= 2;
			log_w++;
		}
	}
	/* binning costs nu * log_w steps, the walk n_trees * depth; padding stays small */
	if (((size_t) nu * log_w > (size_t) m->n_trees * f->depth && !tree_quant_always) ||
		(size_t) nu * width > 4 * (size_t) cnt[d] + 32768)
		return true;
	blk = ml_alloc(env, sizeof(struct TreeQuant) + 16 + sizeof(double) * nu * width +
				   sizeof(uint32_t) * (nq + nu));
	if (!blk)
		return false;
	q = (struct TreeQuant *) blk;
	q->n_features = d;
	q->n_used = nu;
	q->width = width;
	q->cuts = (double *) (blk + ((sizeof(struct TreeQuant) + 15) & ~(size_t) 15));
	q->node = (uint16_t *) (q->cuts + (size_t) nu * width);
	q->used = (uint32_t *) (q->node + 2 * nq);
	for (j = 0, nu = 0; j < d; j++)
	{
		uint32_t	n = cnt[j + 1] - cnt[j];

		if (n == 0)
			continue;
		q->used[nu] = j;
		for (i = 0; i < width; i++)
			q->cuts[(size_t) nu * width + i] = i < n ? all[cnt[j] + i] : INFINITY;
		nu++;
	}
	memset(q->node, 0, sizeof(uint16_t) * 2 * nq);
	for (i = 0; i < (size_t) m->n_trees * f->n_int; i++)
	{
		uint32_t	fj = f->feat[i],
					n = cnt[fj + 1] - cnt[fj],
					idx = 0,
					t = i / f->n_int,
					k = i % f->n_int;

		/* a shallow leaf's dummy split has both sides equal: any index will do */
		if (n)
			idx = count_below(all + cnt[fj], n, f->thr[i]);
		if (idx >= n)
			idx = 0;
		q->node[2 * QUANT_NODE(t, k, f->n_int)] = (uint16_t) (fj + (f->nanr[i] ? d : 0));
		q->node[2 * QUANT_NODE(t, k, f->n_int) + 1] = (uint16_t) idx;
	}
	f->quant = q;
	return true;
}

/* Builds the quantised layout (quant_layout with its scratch); false on OOM. */
bool
tree_quant_build(const MlEnv *env, const TreeModel *m, struct TreeFast *f)
{
	uint32_t	d = m->n_features;
	uint32_t   *cnt;
	double	   *all;
	bool		ok;

	if (d == 0 || d > QUANT_MAX_FEATURES)
		return true;
	cnt = ml_alloc(env, sizeof(uint32_t) * (d + 1));
	all = ml_alloc(env, sizeof(double) * (m->tree_start[m->n_trees] + 1));
	ok = cnt && all && quant_layout(env, m, f, cnt, all);
	ml_free(env, cnt);
	ml_free(env, all);
	return ok;
}

/* True when m scores through the quantised walk. */
bool
tree_quant_active(const TreeModel *m)
{
	return m->fast != NULL && m->fast->quant != NULL;
}

/* Drops the quantised walk only (tests compare it with the double walk). */
void
tree_quant_free(const MlEnv *env, TreeModel *m)
{
	if (m->fast)
	{
		ml_free(env, m->fast->quant);
		m->fast->quant = NULL;
	}
}
