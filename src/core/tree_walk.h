/*
 * tree_walk.h: the walk steps and helpers shared by the one-row walks
 * (tree_predict.c) and the block walks (tree_predict_batch.c). Private to
 * those two files.
 */
#ifndef MLPIPE_TREE_WALK_H
#define MLPIPE_TREE_WALK_H

#include "trees_int.h"

/* Outputs a row accumulates on the stack (wider models use their output array). */
#define PRED_STACK 64

/* One tree's arrays in the complete-tree layout. */
typedef struct FastTree
{
	double	   *thr;
	uint32_t   *feat;
	uint8_t    *nanr;
	double	   *leaf;
} FastTree;

/* Tree t's arrays. */
static inline FastTree
fast_tree(const struct TreeFast *f, uint32_t t)
{
	FastTree	o;

	o.thr = f->thr + (size_t) t * f->n_int;
	o.feat = f->feat + (size_t) t * f->n_int;
	o.nanr = f->nanr + (size_t) t * f->n_int;
	o.leaf = f->leaf + (size_t) t * f->n_leaf;
	return o;
}

/* True when any of the row's d values is NaN. */
static inline bool
row_has_nan(const double *x, uint32_t d)
{
	uint32_t	j;
	int			any = 0;

	for (j = 0; j < d; j++)
		any |= x[j] != x[j];
	return any != 0;
}

/* One step of the fast walk that honours NaN default sides. */
static inline uint32_t
fast_step_nan(const FastTree *o, uint32_t k, const double *x)
{
	double		v = x[o->feat[k]];

	return 2 * k + 1 + ((uint32_t) (v > o->thr[k]) | ((uint32_t) (v != v) & o->nanr[k]));
}

/*
 * One step of the quantised walk: node k's word nd[k] against the binned
 * row xb (see struct TreeQuant: one load of the node, one of the row); k
 * becomes 2k + c + (1 if right): c = 1 for a tree-local index, 1 - o for
 * an index offset by o (quant_walk_group).
 */
#define QUANT_STEP(nd, k, c, xb) \
	do { \
		uint32_t	w_ = (nd)[k]; \
		(k) = 2 * (k) + (c) + ((xb)[w_ & 0xFFFF] > w_); \
	} while (0)

/* One step from node k (tree-local index) for row x; a leaf stays put. */
static inline uint32_t
tstep(const TreeNode *nodes, uint32_t k, const double *x)
{
	const TreeNode *nd = nodes + k;
	uint32_t	f = nd->feature;
	double		v = x[f & TREE_NODE_FEATURE_MASK];
	uint32_t	isnan_ = v != v;
	uint32_t	right = (v > nd->value) | (isnan_ & ((~f >> 30) & 1));
	uint32_t	next = nd->aux + right;

	return (f & TREE_NODE_LEAF) ? k : next;
}

/* tree_predict.c: the quantised one-row walk of a binned row, adding to acc. */
void		tree_quant_accumulate_binned(const TreeModel *m, const uint32_t *xb, double *acc);
/* tree_predict.c: a row's accumulated sums into its outputs. */
void		tree_finish_row(const TreeModel *m, const double *acc, double *out);

#endif							/* MLPIPE_TREE_WALK_H */
