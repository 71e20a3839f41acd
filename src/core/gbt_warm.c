/*
 * gbt_warm.c: what a gbt warm start (TreeParams.warm_start) needs beyond a
 * fresh fit: the parent's split thresholds merged into the bin edges, the
 * parent's margins computed from the binned rows, and the parent's trees
 * copied to the front of the new model.
 *
 * Why the thresholds become bin edges: training sees only bin codes, so the
 * parent's trees can be evaluated on the binned rows exactly when every
 * threshold they test is a cut (x <= t iff code <= the cut's index). The
 * parent's thresholds are its own bin edges, at most 254 a feature, so they
 * always fit; the new rows' quantile cuts fill the rest of max_bins.
 */
#include "trees_int.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* True when v is in sorted a[n]. */
static bool
has_value(const double *a, int n, double v)
{
	return bsearch(&v, a, n, sizeof(double), trees_cmp_double) != NULL;
}

/*
 * Makes every threshold of m a cut of bins, feature by feature: the
 * parent's thresholds all kept, the existing cuts evenly thinned into the
 * room max_bins leaves.
 */
MlStatus
trees_bins_add_model_cuts(const MlEnv *env, TreeBins *bins, const TreeModel *m,
						  int max_bins, MlError *err)
{
	int			max_cuts = (max_bins > TREES_MAX_VALUE_BINS + 1 ? TREES_MAX_VALUE_BINS + 1 : max_bins) - 2;
	uint32_t	n_nodes = m->tree_start[m->n_trees];
	double	   *keep = ml_alloc(env, sizeof(double) * ((size_t) n_nodes + 1));
	double	   *merged = ml_alloc(env, sizeof(double) * ((size_t) n_nodes + 512));
	int			j;

	if (!keep || !merged)
	{
		ml_free(env, keep);
		ml_free(env, merged);
		return ml_fail(err, ML_ERR_MEMORY, "out of memory merging the warm-start thresholds");
	}
	if (max_cuts < 0)
		max_cuts = 0;
	for (j = 0; j < bins->d; j++)
	{
		double	   *cuts = bins->cuts + (size_t) j * 256;
		int			nk = 0,
					nnew = 0,
					have = bins->n_bins[j] - 1,
					room,
					i,
					nm;
		uint32_t	k;

		for (k = 0; k < n_nodes; k++)
		{
			const TreeNode *nd = &m->nodes[k];

			/* DBL_MAX: every value goes left, which the last value bin does */
			if (!(nd->feature & TREE_NODE_LEAF) &&
				(int) (nd->feature & TREE_NODE_FEATURE_MASK) == j && nd->value < DBL_MAX)
				keep[nk++] = nd->value;
		}
		nk = trees_sort_unique(keep, nk);
		if (nk > max_cuts)
		{
			ml_free(env, keep);
			ml_free(env, merged);
			return ml_fail(err, ML_ERR_PARAM,
						   "the warm-start model has %d thresholds on feature %d, more than max_bins = %d allows",
						   nk, j + 1, max_bins);
		}
		/* the new rows' cuts not already kept, thinned evenly to the room left */
		for (i = 0; i < have; i++)
			if (!has_value(keep, nk, cuts[i]))
				nnew++;
		room = max_cuts - nk;
		nm = 0;
		for (i = 0; i < nk; i++)
			merged[nm++] = keep[i];
		{
			int			seen = 0,
						taken = 0;

			for (i = 0; i < have; i++)
			{
				if (has_value(keep, nk, cuts[i]))
					continue;
				/* take the new cut when it reaches the next even share */
				if (nnew <= room ||
					(int64_t) (seen + 1) * room / nnew > taken)
				{
					merged[nm++] = cuts[i];
					taken++;
				}
				seen++;
			}
		}
		nm = trees_sort_unique(merged, nm);
		for (i = 0; i < 256; i++)
			cuts[i] = i < nm ? merged[i] : INFINITY;
		bins->n_bins[j] = (uint16_t) (nm + 1);
	}
	ml_free(env, keep);
	ml_free(env, merged);
	return ML_OK;
}

/*
 * The bin index of each internal node's threshold in the model m (the
 * code at or below which rows go left), in code[node]; false when a
 * threshold is not a cut of bins.
 */
static bool
threshold_codes(const TreeModel *m, const TreeBins *bins, uint16_t *code)
{
	uint32_t	k,
				n_nodes = m->tree_start[m->n_trees];

	for (k = 0; k < n_nodes; k++)
	{
		const TreeNode *nd = &m->nodes[k];
		int			j,
					nb;
		const double *cuts;
		const double *hit;

		code[k] = 0;
		if (nd->feature & TREE_NODE_LEAF)
			continue;
		j = (int) (nd->feature & TREE_NODE_FEATURE_MASK);
		nb = bins->n_bins[j];
		if (nd->value >= DBL_MAX)
		{
			code[k] = (uint16_t) (nb - 1);
			continue;
		}
		cuts = bins->cuts + (size_t) j * 256;
		hit = nb > 1 ? bsearch(&nd->value, cuts, nb - 1, sizeof(double), trees_cmp_double) : NULL;
		if (!hit)
			return false;
		code[k] = (uint16_t) (hit - cuts);
	}
	return true;
}

/*
 * The margins of m on data's binned rows (K x n, class-major): the base
 * margins, then each tree's leaf added as a float in tree order, as the
 * boosting loop adds them, so a continued fit matches one longer fit.
 */
MlStatus
gbt_warm_margins(const MlEnv *env, const TreeModel *m, const TreeData *data,
				 float *margin, MlError *err)
{
	uint32_t	n_nodes = m->tree_start[m->n_trees];
	uint16_t   *code = ml_alloc(env, sizeof(uint16_t) * ((size_t) n_nodes + 1));
	uint32_t	K = m->trees_per_round,
				t;
	int64_t		i;
	int			d = data->d;

	if (!code)
		return ml_fail(err, ML_ERR_MEMORY, "out of memory for the warm-start margins");
	if (!threshold_codes(m, data->bins, code))
	{
		ml_free(env, code);
		return ml_fail(err, ML_ERR_PARAM,
					   "the bin edges do not hold every threshold of the warm-start model");
	}
	for (i = 0; i < data->n; i++)
	{
		const uint8_t *row = data->B + (size_t) i * d;

		for (t = 0; t < K; t++)
			margin[(size_t) t * data->n + i] = (float) m->base_score[t];
		/* tree by tree, as the rounds added them, so the sums match a fresh fit's */
		for (t = 0; t < m->n_trees; t++)
		{
			uint32_t	s = m->tree_start[t],
						k = 0;

			for (;;)
			{
				const TreeNode *nd = &m->nodes[s + k];
				int			j;
				int			c;

				if (nd->feature & TREE_NODE_LEAF)
					break;
				j = (int) (nd->feature & TREE_NODE_FEATURE_MASK);
				c = row[j];
				if (c == data->bins->n_bins[j])
					k = nd->feature & TREE_NODE_DEFAULT_LEFT ? nd->aux : nd->aux + 1;
				else
					k = c <= code[s + k] ? nd->aux : nd->aux + 1;
			}
			margin[(size_t) (t % K) * data->n + i] += (float) m->nodes[s + k].value;
		}
	}
	ml_free(env, code);
	return ML_OK;
}

/* ML_ERR_PARAM unless m is a gbt model this data and objective can continue. */
MlStatus
gbt_warm_check(const TreeModel *m, const TreeData *data, TreeObjective obj, MlError *err)
{
	if (m->algorithm != TREE_ALGO_GBT)
		return ml_fail(err, ML_ERR_PARAM, "warm_start needs a gbt model");
	if (m->objective != obj)
		return ml_fail(err, ML_ERR_PARAM, "the warm-start model's objective differs from this training's");
	if ((int) m->n_features != data->d)
		return ml_fail(err, ML_ERR_PARAM, "the warm-start model has %u features, the data %d",
					   m->n_features, data->d);
	if ((int) m->n_classes != data->n_classes)
		return ml_fail(err, ML_ERR_PARAM, "the warm-start model has %u classes, the data %d",
					   m->n_classes, data->n_classes);
	if (m->leaf_width != 1 || m->cover == NULL || m->base_score == NULL)
		return ml_fail(err, ML_ERR_PARAM,
					   "the warm-start model has no node covers (an imported model without them)");
	return ML_OK;
}

/* Copies src's trees, node covers included, into the empty model mb builds. */
MlStatus
tm_copy_trees(const MlEnv *env, ModelBuilder *mb, const TreeModel *src, MlError *err)
{
	TreeModel  *m = mb->m;
	uint32_t	n_nodes = src->tree_start[src->n_trees],
				t;

	m->tree_start = ml_alloc(env, sizeof(uint32_t) * ((size_t) src->n_trees + 64));
	m->nodes = ml_alloc(env, sizeof(TreeNode) * ((size_t) n_nodes + 64));
	m->cover = ml_alloc(env, sizeof(double) * ((size_t) n_nodes + 64));
	if (!m->tree_start || !m->nodes || !m->cover)
		return ml_fail(err, ML_ERR_MEMORY, "out of memory copying the warm-start trees");
	mb->cap_trees = src->n_trees + 64;
	mb->cap_nodes = n_nodes + 64;
	mb->cap_cover = n_nodes + 64;
	for (t = 0; t <= src->n_trees; t++)
		m->tree_start[t] = src->tree_start[t];
	memcpy(m->nodes, src->nodes, sizeof(TreeNode) * n_nodes);
	memcpy(m->cover, src->cover, sizeof(double) * n_nodes);
	mb->n_nodes = n_nodes;
	m->n_trees = src->n_trees;
	return ML_OK;
}
