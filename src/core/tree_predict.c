/*
 * tree_predict.c: scoring raw rows with a flattened model.
 *
 * Every tree is walked a fixed number of steps (its depth) without
 * branches: a leaf is a fixed point of the step, NaN goes to the learned
 * default side. Several trees (one row) or several rows (one tree) are
 * walked in lock step so the loads of independent paths overlap. Models
 * with a quantised layout (tree_quant.c) walk compact node words against
 * the row binned once per feature: the same comparisons, so the same bits;
 * their one-row walk is compiled once per depth (quant_groups).
 */
#include "trees_int.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define PRED_HAVE_AVX512 1
#endif

/* One tree's arrays in the complete-tree layout. */
typedef struct FastTree
{
	double	   *thr;
	uint32_t   *feat;
	uint8_t    *nanr;
	double	   *leaf;
} FastTree;

/* Copies tree node k and its subtree into complete-tree position pos. */
static void
fast_fill(const TreeNode *tn, uint32_t k, uint32_t pos, uint32_t level, const struct TreeFast *f,
		  const FastTree *o)
{
	const TreeNode *nd = &tn[k];

	if (level == f->depth)
	{
		o->leaf[pos - f->n_int] = nd->value;
		return;
	}
	if (nd->feature & TREE_NODE_LEAF)
	{
		/* a shallow leaf: both sides of a dummy split reach the same value */
		o->thr[pos] = 0;
		o->feat[pos] = 0;
		o->nanr[pos] = 0;
		fast_fill(tn, k, 2 * pos + 1, level + 1, f, o);
		fast_fill(tn, k, 2 * pos + 2, level + 1, f, o);
		return;
	}
	o->thr[pos] = nd->value;
	o->feat[pos] = nd->feature & TREE_NODE_FEATURE_MASK;
	o->nanr[pos] = (nd->feature & TREE_NODE_DEFAULT_LEFT) ? 0 : 1;
	fast_fill(tn, nd->aux, 2 * pos + 1, level + 1, f, o);
	fast_fill(tn, nd->aux + 1, 2 * pos + 2, level + 1, f, o);
}

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


/*
 * Builds the derived scoring layouts of a model (complete binary trees and,
 * where it applies, the quantised walk); none when the model does not
 * qualify. False on OOM.
 */
bool
tree_fast_build(const MlEnv *env, TreeModel *m)
{
	uint32_t	t,
				D = 0;
	size_t		bytes,
				n_int,
				n_leaf,
				nt;
	struct TreeFast *f;
	char	   *blk;

	tree_fast_free(env, m);
	if (m->leaf_width != 1 || m->n_trees == 0)
		return true;
	for (t = 0; t < m->n_trees; t++)
		if (m->tree_depth[t] > D)
			D = m->tree_depth[t];
	if (D > FAST_MAX_DEPTH)
		return true;
	n_int = ((size_t) 1 << D) - 1;
	n_leaf = (size_t) 1 << D;
	nt = m->n_trees;
	bytes = sizeof(struct TreeFast) + 64 +
		nt * (n_int * (sizeof(double) + sizeof(uint32_t) + 1) + n_leaf * sizeof(double));
	if (bytes > ((size_t) 256 << 20))
		return true;
	blk = ml_alloc(env, bytes);
	if (!blk)
		return false;
	f = (struct TreeFast *) blk;
	f->depth = D;
	f->n_int = (uint32_t) n_int;
	f->n_leaf = (uint32_t) n_leaf;
	f->thr = (double *) (blk + ((sizeof(struct TreeFast) + 15) & ~(size_t) 15));
	f->leaf = f->thr + nt * n_int;
	f->feat = (uint32_t *) (f->leaf + nt * n_leaf);
	f->nanr = (uint8_t *) (f->feat + nt * n_int);
	for (t = 0; t < m->n_trees; t++)
	{
		FastTree	o = fast_tree(f, t);

		fast_fill(m->nodes + m->tree_start[t], 0, 0, 0, f, &o);
	}
	f->quant = NULL;
	m->fast = f;
	return tree_quant_build(env, m, f);
}

/* Frees the derived scoring layouts. */
void
tree_fast_free(const MlEnv *env, TreeModel *m)
{
	if (m->fast)
		ml_free(env, m->fast->quant);
	ml_free(env, m->fast);
	m->fast = NULL;
}


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
 * Adds the leaves k[0..n) (complete-tree indices) of trees t..t+n-1 in tree
 * order: to *sum with one tree per round (the caller keeps it in a
 * register: acc may alias the model's arrays, so updates through it would
 * go to memory each time), else to acc[*c] with a class counter that wraps
 * instead of a division per tree.
 */
static inline void
add_leaves(const struct TreeFast *f, uint32_t t, const uint32_t *k, int n, uint32_t tpr,
		   double *sum, double *acc, uint32_t *c)
{
	const double *lf = f->leaf + (size_t) t * f->n_leaf - f->n_int;
	int			i;

	if (tpr == 1)
	{
		double		s = *sum;

		for (i = 0; i < n; i++)
			s += lf[(size_t) i * f->n_leaf + k[i]];
		*sum = s;
		return;
	}
	for (i = 0; i < n; i++)
	{
		acc[*c] += lf[(size_t) i * f->n_leaf + k[i]];
		if (++*c == tpr)
			*c = 0;
	}
}

/* Adds one tree's leaf k as add_leaves does. */
static inline void
add_leaf1(const struct TreeFast *f, uint32_t t, uint32_t k, uint32_t tpr,
		  double *sum, double *acc, uint32_t *c)
{
	double		v = f->leaf[(size_t) t * f->n_leaf + k - f->n_int];

	if (tpr == 1)
		*sum += v;
	else
	{
		acc[*c] += v;
		if (++*c == tpr)
			*c = 0;
	}
}

/*
 * Fast layout, one row: sixteen trees in lock step (their node loads
 * overlap), summed in tree order: the same additions in the same order as
 * one tree at a time, so the same bits.
 */
static void
fast_accumulate_row(const TreeModel *m, const double *x, double *acc)
{
	const struct TreeFast *f = m->fast;
	uint32_t	D = f->depth,
				tpr = m->trees_per_round,
				nt = m->n_trees,
				n_int = f->n_int,
				t = 0,
				c = 0,
				s;
	bool		nan = row_has_nan(x, m->n_features);
	double		sum = acc[0];

	if (!nan)
	{
		for (; t + 16 <= nt; t += 16)
		{
			const double *th = f->thr + (size_t) t * n_int;
			const uint32_t *fe = f->feat + (size_t) t * n_int;
			uint32_t	k[16] = {0};
			int			i;

			for (s = 0; s < D; s++)
				for (i = 0; i < 16; i++)
					k[i] = 2 * k[i] + 1 +
						(x[fe[i * n_int + k[i]]] > th[i * n_int + k[i]]);
			add_leaves(f, t, k, 8, tpr, &sum, acc, &c);
			add_leaves(f, t + 8, k + 8, 8, tpr, &sum, acc, &c);
		}
		for (; t + 8 <= nt; t += 8)
		{
			const double *th = f->thr + (size_t) t * n_int;
			const uint32_t *fe = f->feat + (size_t) t * n_int;
			uint32_t	k[8] = {0};
			int			i;

			for (s = 0; s < D; s++)
				for (i = 0; i < 8; i++)
					k[i] = 2 * k[i] + 1 +
						(x[fe[i * n_int + k[i]]] > th[i * n_int + k[i]]);
			add_leaves(f, t, k, 8, tpr, &sum, acc, &c);
		}
	}
	for (; t < nt; t++)
	{
		FastTree	a = fast_tree(f, t);
		uint32_t	k = 0;

		for (s = 0; s < D; s++)
			k = fast_step_nan(&a, k, x);
		add_leaf1(f, t, k, tpr, &sum, acc, &c);
	}
	if (tpr == 1)
		acc[0] = sum;
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

/*
 * QUANT_STEP as four instructions, for quant_walk_group: a tree's index is
 * kept raw (r becomes 2r + 1 if right, one add with carry) and its offsets
 * go into the address: gs points at the level's first node word (g + 2^s -
 * 1) and disp is the tree's offset in bytes, a constant once inlined. GCC's
 * code for QUANT_STEP takes five, the offset's lea being the fifth: one-row
 * scoring measured about 6% faster with this. The same steps, so the same
 * leaves. Not under AddressSanitizer, which does not see inside assembly,
 * nor without optimisation (disp must fold to a constant).
 */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && defined(__OPTIMIZE__) && \
	!defined(__SANITIZE_ADDRESS__) && !defined(HIST_UNDER_ASAN)
#define QUANT_WALK_ASM 1
#define QUANT_STEP_ASM(gs_, r_, disp_, xb_) \
	do { \
		uint64_t	w_, f_; \
		__asm__("movl %c[dp](%[gp],%[rk],4), %k[wd]\n\t" \
				"movzwl %w[wd], %k[fe]\n\t" \
				"cmpl (%[xp],%[fe],4), %k[wd]\n\t" \
				"adcq %[rk], %[rk]" \
				: [rk] "+r"(r_), [wd] "=&r"(w_), [fe] "=&r"(f_) \
				: [gp] "r"(gs_), [xp] "r"(xb_), [dp] "i"(disp_) \
				: "cc", "memory"); \
	} while (0)
_Static_assert(QUANT_GROUP == 16, "quant_walk_group walks a group as two of QUANT_STEPS8");
/* Trees o .. o + 7 of the group one level down (P4: a tree's bytes). */
#define QUANT_STEPS8(gs, R, o, P4, xb) \
	do { \
		QUANT_STEP_ASM(gs, R[(o) + 0], ((o) + 0) * (P4), xb); \
		QUANT_STEP_ASM(gs, R[(o) + 1], ((o) + 1) * (P4), xb); \
		QUANT_STEP_ASM(gs, R[(o) + 2], ((o) + 2) * (P4), xb); \
		QUANT_STEP_ASM(gs, R[(o) + 3], ((o) + 3) * (P4), xb); \
		QUANT_STEP_ASM(gs, R[(o) + 4], ((o) + 4) * (P4), xb); \
		QUANT_STEP_ASM(gs, R[(o) + 5], ((o) + 5) * (P4), xb); \
		QUANT_STEP_ASM(gs, R[(o) + 6], ((o) + 6) * (P4), xb); \
		QUANT_STEP_ASM(gs, R[(o) + 7], ((o) + 7) * (P4), xb); \
	} while (0)
#endif

/*
 * Walks trees t .. t + n - 1 (n = QUANT_GROUP or half of it; node words
 * from g = their first) depth levels for the binned row xb and leaves
 * their tree-local leaf indices in k, the n walks in lock step so that
 * their loads overlap. With QUANT_WALK_ASM a tree's raw index r is its
 * position within its level (the node is g[i 2^depth + 2^s - 1 + r] at
 * level s, the leaf 2^depth - 1 + r). Otherwise tree i's index is kept
 * offset by i 2^depth, so every step reads g at that index; inlined with a
 * constant depth the offsets are constants and the indices stay in
 * registers.
 */
static inline __attribute__((always_inline)) void
quant_walk_group(const uint32_t *g, const uint32_t *xb, uint32_t depth, int n, uint32_t *k)
{
#ifdef QUANT_WALK_ASM
	const size_t P4 = sizeof(uint32_t) << depth;
	uint64_t	R[QUANT_GROUP] = {0};
	uint32_t	s;
	int			i;

	for (s = 0; s < depth; s++)
	{
		const uint32_t *gs = g + ((size_t) 1 << s) - 1;

		QUANT_STEPS8(gs, R, 0, P4, xb);
		if (n > QUANT_GROUP / 2)
			QUANT_STEPS8(gs, R, 8, P4, xb);
	}
	for (i = 0; i < n; i++)
		k[i] = (uint32_t) R[i] + ((uint32_t) 1 << depth) - 1;
#else
	const size_t P = (size_t) 1 << depth;
	size_t		K[QUANT_GROUP];
	uint32_t	s;
	int			i;

#if defined(__GNUC__)
	/* one base register: without this GCC adds the group's offset at every step */
	__asm__("" : "+r"(g));
#endif

	for (i = 0; i < n; i++)
		K[i] = (size_t) i * P;
	for (s = 0; s < depth; s++)
		for (i = 0; i < n; i++)
			QUANT_STEP(g, K[i], 1 - (size_t) i * P, xb);
	for (i = 0; i < n; i++)
		k[i] = (uint32_t) (K[i] - (size_t) i * P);
#endif
}

/*
 * Walks the trees of m in groups of QUANT_GROUP for the binned row xb (the
 * last group may end in padding trees, see QUANT_NODE) and adds the leaves
 * of the real ones in tree order (add_leaves). Inlined once per depth
 * (quant_accumulate_binned).
 */
static inline __attribute__((always_inline)) void
quant_groups(const TreeModel *m, const uint32_t *xb, uint32_t depth, double *sum, double *acc,
			 uint32_t *c)
{
	const struct TreeFast *f = m->fast;
	const uint32_t *node = f->quant->node;
	uint32_t	tpr = m->trees_per_round,
				nt = m->n_trees,
				t;

	for (t = 0; t < nt; t += QUANT_GROUP)
	{
		uint32_t	k[QUANT_GROUP];

		/* a last group of at most half the trees walks half a group */
		if (nt - t <= QUANT_GROUP / 2)
			quant_walk_group(node + ((size_t) t << depth), xb, depth, QUANT_GROUP / 2, k);
		else
			quant_walk_group(node + ((size_t) t << depth), xb, depth, QUANT_GROUP, k);
		add_leaves(f, t, k, nt - t < QUANT_GROUP ? (int) (nt - t) : QUANT_GROUP, tpr, sum, acc, c);
	}
}

/*
 * Quantised layout, one binned row xb: QUANT_GROUP trees in lock step over
 * node words that sit in L1 (the walk specialised by depth); NaN needs no
 * second walk. Leaves as in fast_accumulate_row: the same bits.
 * (Walking 16 trees with AVX2 gathers was slower than this on the AMD EPYC
 * it was measured on.)
 */
static void
quant_accumulate_binned(const TreeModel *m, const uint32_t *xb, double *acc)
{
	uint32_t	c = 0;
	double		sum = acc[0];

	switch (m->fast->depth)
	{
#define QUANT_DEPTH_CASE(dd) \
		case dd: \
			quant_groups(m, xb, dd, &sum, acc, &c); \
			break;
			/* tree_fast_build keeps depth <= FAST_MAX_DEPTH = 10 */
			QUANT_DEPTH_CASE(0)
			QUANT_DEPTH_CASE(1)
			QUANT_DEPTH_CASE(2)
			QUANT_DEPTH_CASE(3)
			QUANT_DEPTH_CASE(4)
			QUANT_DEPTH_CASE(5)
			QUANT_DEPTH_CASE(6)
			QUANT_DEPTH_CASE(7)
			QUANT_DEPTH_CASE(8)
			QUANT_DEPTH_CASE(9)
			QUANT_DEPTH_CASE(10)
#undef QUANT_DEPTH_CASE
	}
	if (m->trees_per_round == 1)
		acc[0] = sum;
}

/* Quantised layout, one row: bin it, then quant_accumulate_binned. */
static void
quant_accumulate_row(const TreeModel *m, const double *x, double *acc)
{
	uint32_t	xb[2 * QUANT_MAX_FEATURES];

	tree_quant_bin_row(m->fast->quant, x, xb);
	quant_accumulate_binned(m, xb, acc);
}

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

/* Raw per-tree accumulation for one row: acc has trees_per_round (gbt),
 * leaf_width (DT/RF classify) or 1 entries. */
static void
accumulate_row(const TreeModel *m, const double *x, double *acc)
{
	uint32_t	t = 0,
				nt = m->n_trees;
	uint32_t	K = m->leaf_width;
	uint32_t	tpr = m->trees_per_round;

	if (m->fast && m->fast->quant)
	{
		quant_accumulate_row(m, x, acc);
		return;
	}
	if (m->fast)
	{
		fast_accumulate_row(m, x, acc);
		return;
	}
	if (K > 1)
	{
		for (t = 0; t < nt; t++)
		{
			const TreeNode *nodes = m->nodes + m->tree_start[t];
			uint32_t	k = 0,
						s,
						c;
			const double *lv;

			for (s = 0; s < m->tree_depth[t]; s++)
				k = tstep(nodes, k, x);
			lv = m->leaf_values + (size_t) (m->leaf_start[t] + nodes[k].aux) * K;
			for (c = 0; c < K; c++)
				acc[c] += lv[c];
		}
		return;
	}
	/* Scalar leaves: four trees in lock step. */
	for (; t + 4 <= nt; t += 4)
	{
		const TreeNode *n0 = m->nodes + m->tree_start[t];
		const TreeNode *n1 = m->nodes + m->tree_start[t + 1];
		const TreeNode *n2 = m->nodes + m->tree_start[t + 2];
		const TreeNode *n3 = m->nodes + m->tree_start[t + 3];
		uint32_t	k0 = 0,
					k1 = 0,
					k2 = 0,
					k3 = 0,
					s;
		uint32_t	dmax = m->tree_depth[t];

		if (m->tree_depth[t + 1] > dmax)
			dmax = m->tree_depth[t + 1];
		if (m->tree_depth[t + 2] > dmax)
			dmax = m->tree_depth[t + 2];
		if (m->tree_depth[t + 3] > dmax)
			dmax = m->tree_depth[t + 3];
		for (s = 0; s < dmax; s++)
		{
			k0 = tstep(n0, k0, x);
			k1 = tstep(n1, k1, x);
			k2 = tstep(n2, k2, x);
			k3 = tstep(n3, k3, x);
		}
		/* tree order, so batch and row scoring give the same bits */
		acc[t % tpr] += n0[k0].value;
		acc[(t + 1) % tpr] += n1[k1].value;
		acc[(t + 2) % tpr] += n2[k2].value;
		acc[(t + 3) % tpr] += n3[k3].value;
	}
	for (; t < nt; t++)
	{
		const TreeNode *nodes = m->nodes + m->tree_start[t];
		uint32_t	k = 0,
					s;

		for (s = 0; s < m->tree_depth[t]; s++)
			k = tstep(nodes, k, x);
		acc[t % tpr] += nodes[k].value;
	}
}

/* Turns accumulated sums into outputs. */
static void
finish_row(const TreeModel *m, const double *acc, double *out)
{
	uint32_t	c;

	if (m->algorithm == TREE_ALGO_GBT)
	{
		if (m->objective == TREE_OBJ_REG_SQUAREDERROR)
			out[0] = acc[0] + m->base_score[0];
		else if (m->objective == TREE_OBJ_BINARY_LOGISTIC)
		{
			double		p = 1.0 / (1.0 + exp(-(acc[0] + m->base_score[0])));

			out[0] = 1.0 - p;
			out[1] = p;
		}
		else
		{
			double		mx = -INFINITY,
						sum = 0;
			uint32_t	K = m->trees_per_round;

			for (c = 0; c < K; c++)
			{
				out[c] = acc[c] + m->base_score[c];
				if (out[c] > mx)
					mx = out[c];
			}
			for (c = 0; c < K; c++)
			{
				out[c] = exp(out[c] - mx);
				sum += out[c];
			}
			for (c = 0; c < K; c++)
				out[c] /= sum;
		}
		return;
	}
	if (m->leaf_width > 1)
	{
		double		sum = 0;

		for (c = 0; c < m->leaf_width; c++)
			sum += acc[c];
		for (c = 0; c < m->leaf_width; c++)
			out[c] = sum > 0 ? acc[c] / sum : 1.0 / m->leaf_width;
		return;
	}
	out[0] = acc[0] / (m->n_trees ? m->n_trees : 1);
	if (m->task == ML_TASK_CLASSIFY)
	{
		/* cannot happen: classifiers keep leaf tables */
		out[0] = 0;
	}
}

#define PRED_STACK 64

void
trees_predict_row(const TreeModel *m, const double *x, double *out)
{
	double		local[PRED_STACK];
	uint32_t	w = m->algorithm == TREE_ALGO_GBT ? m->trees_per_round : m->leaf_width;
	/* finish_row works in place, so wide models accumulate straight into out */
	double	   *acc = w <= PRED_STACK ? local : out;

	memset(acc, 0, sizeof(double) * w);
	accumulate_row(m, x, acc);
	finish_row(m, acc, out);
}

int
trees_class_of(const TreeModel *m, const double *proba)
{
	uint32_t	c;
	int			best = 0;

	if (m->task != ML_TASK_CLASSIFY)
		return 0;
	for (c = 1; c < m->n_outputs; c++)
		if (proba[c] > proba[best])
			best = (int) c;
	return best;
}

int
trees_predict_class(const TreeModel *m, const double *x, double *proba)
{
	trees_predict_row(m, x, proba);
	return trees_class_of(m, proba);
}

/* ---- batch ---- */

#define ROWS_PER_BLOCK 8

typedef struct PredTask
{
	const TreeModel *m;
	const double *X;
	int64_t		n;
	double	   *out;
	int64_t		n_blocks;
} PredTask;

/* Scalar-leaf models: ROWS_PER_BLOCK rows walk each tree in lock step. */
static void
predict_block_scalar(const TreeModel *m, const double *X, int64_t r0, int rows, double *out)
{
	double		acc[ROWS_PER_BLOCK][PRED_STACK];
	uint32_t	tpr = m->trees_per_round;
	size_t		d = m->n_features;
	uint32_t	t;
	int			r;

	for (r = 0; r < rows; r++)
		memset(acc[r], 0, sizeof(double) * tpr);
	for (t = 0; t < m->n_trees; t++)
	{
		const TreeNode *nodes = m->nodes + m->tree_start[t];
		uint32_t	k[ROWS_PER_BLOCK] = {0};
		uint32_t	s,
					dep = m->tree_depth[t],
					c = t % tpr;

		if (rows == ROWS_PER_BLOCK)
		{
			const double *x0 = X + (size_t) r0 * d;

			for (s = 0; s < dep; s++)
			{
				k[0] = tstep(nodes, k[0], x0);
				k[1] = tstep(nodes, k[1], x0 + d);
				k[2] = tstep(nodes, k[2], x0 + 2 * d);
				k[3] = tstep(nodes, k[3], x0 + 3 * d);
				k[4] = tstep(nodes, k[4], x0 + 4 * d);
				k[5] = tstep(nodes, k[5], x0 + 5 * d);
				k[6] = tstep(nodes, k[6], x0 + 6 * d);
				k[7] = tstep(nodes, k[7], x0 + 7 * d);
			}
		}
		else
		{
			for (s = 0; s < dep; s++)
				for (r = 0; r < rows; r++)
					k[r] = tstep(nodes, k[r], X + (size_t) (r0 + r) * d);
		}
		for (r = 0; r < rows; r++)
			acc[r][c] += nodes[k[r]].value;
	}
	for (r = 0; r < rows; r++)
		finish_row(m, acc[r], out + (size_t) (r0 + r) * m->n_outputs);
}

/*
 * Quantised layout: ROWS_PER_BLOCK rows are binned, then walk each tree in
 * lock step (NaN needs no second walk).
 */
static void
predict_block_quant(const TreeModel *m, const double *X, int64_t r0, int rows, double *out)
{
	const struct TreeFast *f = m->fast;
	const struct TreeQuant *q = f->quant;
	double		acc[ROWS_PER_BLOCK][PRED_STACK];
	uint32_t	xb[ROWS_PER_BLOCK][2 * QUANT_MAX_FEATURES];
	uint32_t	tpr = m->trees_per_round,
				D = f->depth,
				n_int = f->n_int;
	size_t		d = m->n_features;
	uint32_t	t,
				s;
	int			r;

	for (r = 0; r < rows; r++)
	{
		memset(acc[r], 0, sizeof(double) * tpr);
		tree_quant_bin_row(q, X + (size_t) (r0 + r) * d, xb[r]);
	}
	for (t = 0; t < m->n_trees; t++)
	{
		const uint32_t *nd = q->node + QUANT_NODE(t, 0, n_int);
		const double *lf = f->leaf + (size_t) t * f->n_leaf - n_int;
		uint32_t	c = t % tpr;

		if (rows == ROWS_PER_BLOCK)
		{
			uint32_t	k[ROWS_PER_BLOCK] = {0};

			for (s = 0; s < D; s++)
				for (r = 0; r < ROWS_PER_BLOCK; r++)
					QUANT_STEP(nd, k[r], 1, xb[r]);
			for (r = 0; r < ROWS_PER_BLOCK; r++)
				acc[r][c] += lf[k[r]];
		}
		else
		{
			for (r = 0; r < rows; r++)
			{
				uint32_t	k = 0;

				for (s = 0; s < D; s++)
					QUANT_STEP(nd, k, 1, xb[r]);
				acc[r][c] += lf[k];
			}
		}
	}
	for (r = 0; r < rows; r++)
		finish_row(m, acc[r], out + (size_t) (r0 + r) * m->n_outputs);
}

/*
 * Fast layout: ROWS_PER_BLOCK rows walk each tree in lock step; a block
 * with NaN takes the quantised walk where the model has one (the NaN-aware
 * double walk goes one row and one tree at a time).
 */
static void
predict_block_fast(const TreeModel *m, const double *X, int64_t r0, int rows, double *out)
{
	const struct TreeFast *f = m->fast;
	double		acc[ROWS_PER_BLOCK][PRED_STACK];
	uint32_t	tpr = m->trees_per_round,
				D = f->depth;
	size_t		d = m->n_features;
	const double *x0 = X + (size_t) r0 * d;
	uint32_t	t,
				s;
	int			r;
	bool		nan = false;
	const double *xr[ROWS_PER_BLOCK];

	for (r = 0; r < rows; r++)
	{
		xr[r] = x0 + (size_t) r * d;
		memset(acc[r], 0, sizeof(double) * tpr);
		nan |= row_has_nan(xr[r], (uint32_t) d);
	}
	if (nan && f->quant)
	{
		predict_block_quant(m, X, r0, rows, out);
		return;
	}
	for (t = 0; t < m->n_trees; t++)
	{
		FastTree	o = fast_tree(f, t);
		const double *th = o.thr;
		const uint32_t *fe = o.feat;
		const double *lf = o.leaf - f->n_int;
		uint32_t	c = t % tpr;

		if (rows == ROWS_PER_BLOCK && !nan)
		{
			/* eight independent chains: node loads overlap */
			uint32_t	k0 = 0,
						k1 = 0,
						k2 = 0,
						k3 = 0,
						k4 = 0,
						k5 = 0,
						k6 = 0,
						k7 = 0;

			for (s = 0; s < D; s++)
			{
				k0 = 2 * k0 + 1 + (xr[0][fe[k0]] > th[k0]);
				k1 = 2 * k1 + 1 + (xr[1][fe[k1]] > th[k1]);
				k2 = 2 * k2 + 1 + (xr[2][fe[k2]] > th[k2]);
				k3 = 2 * k3 + 1 + (xr[3][fe[k3]] > th[k3]);
				k4 = 2 * k4 + 1 + (xr[4][fe[k4]] > th[k4]);
				k5 = 2 * k5 + 1 + (xr[5][fe[k5]] > th[k5]);
				k6 = 2 * k6 + 1 + (xr[6][fe[k6]] > th[k6]);
				k7 = 2 * k7 + 1 + (xr[7][fe[k7]] > th[k7]);
			}
			acc[0][c] += lf[k0];
			acc[1][c] += lf[k1];
			acc[2][c] += lf[k2];
			acc[3][c] += lf[k3];
			acc[4][c] += lf[k4];
			acc[5][c] += lf[k5];
			acc[6][c] += lf[k6];
			acc[7][c] += lf[k7];
		}
		else
		{
			for (r = 0; r < rows; r++)
			{
				uint32_t	k = 0;

				for (s = 0; s < D; s++)
					k = fast_step_nan(&o, k, xr[r]);
				acc[r][c] += lf[k];
			}
		}
	}
	for (r = 0; r < rows; r++)
		finish_row(m, acc[r], out + (size_t) (r0 + r) * m->n_outputs);
}

static void
pred_task(void *arg, int task, int n_tasks)
{
	PredTask   *p = arg;
	const TreeModel *m = p->m;
	int64_t		b0 = p->n_blocks * task / n_tasks,
				b1 = p->n_blocks * (task + 1) / n_tasks,
				b;
	bool		scalar = m->leaf_width == 1 && m->trees_per_round <= PRED_STACK;

	for (b = b0; b < b1; b++)
	{
		int64_t		r0 = b * ROWS_PER_BLOCK;
		int			rows = (int) (p->n - r0 < ROWS_PER_BLOCK ? p->n - r0 : ROWS_PER_BLOCK);

		if (scalar && m->fast)
			predict_block_fast(m, p->X, r0, rows, p->out);
		else if (scalar)
			predict_block_scalar(m, p->X, r0, rows, p->out);
		else
		{
			int			r;

			for (r = 0; r < rows; r++)
				trees_predict_row(m, p->X + (size_t) (r0 + r) * m->n_features,
								  p->out + (size_t) (r0 + r) * m->n_outputs);
		}
	}
}

void
trees_predict_batch(const MlEnv *env, const TreeModel *m, const double *X, int64_t n,
					double *out)
{
	PredTask	t;
	int64_t		tasks;

	if (n <= 0)
		return;
	t.m = m;
	t.X = X;
	t.n = n;
	t.out = out;
	t.n_blocks = (n + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK;
	tasks = t.n_blocks / 512 + 1;
	if (env == NULL || tasks <= 1)
		pred_task(&t, 0, 1);
	else
		ml_parallel_for(env, tasks > 64 ? 64 : (int) tasks, pred_task, &t);
}

/* ---- rows given as bin codes ---- */

/*
 * The quantised walk's binned row for every bin code of every feature the
 * trees use: a row of codes becomes xb by two lookups a used feature.
 */
struct TreeCodeMap
{
	uint32_t	n_features;
	uint32_t	n_used;
	uint32_t   *used;			/* n_used feature numbers (a copy of the layout's) */
	uint32_t   *lo;				/* n_used x 256: xb[j] for code c at lo[u * 256 + c] */
	uint32_t   *hi;				/* the same for xb[n_features + j] */
};

/*
 * The code map of m (see trees.h): each of the 256 rows holding code c in
 * every feature binned once by the model's own binning, its used
 * features' bins kept per code.
 */
bool
trees_code_map_build(const MlEnv *env, const TreeModel *m, const double *code_values,
					 TreeCodeMap **out)
{
	const struct TreeQuant *q = m->fast ? m->fast->quant : NULL;
	uint32_t	d = m->n_features,
				u,
				c;
	uint32_t   *xb;
	TreeCodeMap *map;

	*out = NULL;
	if (q == NULL)
		return true;			/* no quantised walk: score the values */
	map = ml_alloc(env, sizeof(TreeCodeMap));
	xb = ml_alloc(env, sizeof(uint32_t) * 2 * d);
	if (map)
	{
		map->used = ml_alloc(env, sizeof(uint32_t) * (q->n_used + 1));
		map->lo = ml_alloc(env, sizeof(uint32_t) * 256 * (q->n_used + 1));
		map->hi = ml_alloc(env, sizeof(uint32_t) * 256 * (q->n_used + 1));
	}
	if (!map || !xb || !map->used || !map->lo || !map->hi)
	{
		ml_free(env, xb);
		if (map)
			trees_code_map_free(env, map);
		return false;
	}
	map->n_features = d;
	map->n_used = q->n_used;
	memcpy(map->used, q->used, sizeof(uint32_t) * q->n_used);
	/* the bins of the row that holds code c in every feature: exact by construction */
	for (c = 0; c < 256; c++)
	{
		tree_quant_bin_row(q, code_values + (size_t) c * d, xb);
		for (u = 0; u < q->n_used; u++)
		{
			map->lo[u * 256 + c] = xb[q->used[u]];
			map->hi[u * 256 + c] = xb[d + q->used[u]];
		}
	}
	ml_free(env, xb);
	*out = map;
	return true;
}

/* Frees what trees_code_map_build allocated (NULL is fine). */
void
trees_code_map_free(const MlEnv *env, TreeCodeMap *map)
{
	if (map == NULL)
		return;
	ml_free(env, map->used);
	ml_free(env, map->lo);
	ml_free(env, map->hi);
	ml_free(env, map);
}

/* Rows trees_predict_codes walks tree by tree (lanes of quant_trees16). */
#define CODE_ROWS 16
/* Widest model it does so for: CODE_ROWS binned rows of 2d words on the stack. */
#define CODE_ROWS_MAX_FEATURES 64

/*
 * Whether trees_predict_codes walks CODE_ROWS rows tree by tree: one tree
 * a round, every tree's node words in four AVX-512 registers (depth at
 * most 6), and a CPU with AVX-512F (tree_quant_simd_max lets tests turn
 * it off).
 */
static bool
code_rows_simd(const TreeModel *m, uint32_t d)
{
#ifdef PRED_HAVE_AVX512
	return m->trees_per_round == 1 && m->fast->depth <= 6 && d <= CODE_ROWS_MAX_FEATURES &&
		tree_quant_simd_max >= QUANT_SIMD_AVX512 && __builtin_cpu_supports("avx512f");
#else
	return false;
#endif
}

#ifdef PRED_HAVE_AVX512
/* Trees quant_trees16 walks in lock step (their gathers overlap). */
#define CODE_TREES 4

/*
 * quant_accumulate_binned for CODE_ROWS binned rows at once (xb16, stride
 * words apart; acc16: their sums, added to): a row a lane, CODE_TREES
 * trees in lock step. A tree's node words sit in four registers (a lookup
 * is a permute), the rows' words are gathered, and each lane adds its
 * leaves in tree order: the same additions in the same order, so the same
 * bits, with no chain of dependent adds across the trees of one row.
 */
__attribute__((target("avx512f")))
static void
quant_trees16(const TreeModel *m, const uint32_t *xb16, uint32_t stride, double *acc16)
{
	const struct TreeFast *f = m->fast;
	const uint32_t *node = f->quant->node;
	uint32_t	depth = f->depth,
				words = 1u << depth,
				nt = m->n_trees,
				t,
				s;
	const __m512i lane_off = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
																	10, 11, 12, 13, 14, 15),
												_mm512_set1_epi32((int) stride)),
				one = _mm512_set1_epi32(1),
				b5 = _mm512_set1_epi32(32),
				low16 = _mm512_set1_epi32(0xFFFF),
				n_int = _mm512_set1_epi32((int) f->n_int);
	__mmask16	wm[4];
	__m512d		s0 = _mm512_loadu_pd(acc16),
				s1 = _mm512_loadu_pd(acc16 + 8);
	int			q,
				i,
				nw;

	/* the words of a tree of this depth in each register (none past the tree) */
	for (q = 0; q < 4; q++)
		wm[q] = words >= 16 * (uint32_t) (q + 1) ? 0xFFFF :
			words > 16 * (uint32_t) q ? (__mmask16) ((1u << (words - 16 * q)) - 1) : 0;
	for (t = 0; t < nt; t += (uint32_t) nw)
	{
		__m512i		nd[CODE_TREES][4],
					k[CODE_TREES];

		nw = nt - t >= CODE_TREES ? CODE_TREES : 1;
		for (i = 0; i < nw; i++)
		{
			const uint32_t *g = node + ((size_t) (t + i) << depth);

			for (q = 0; q < 4; q++)
				nd[i][q] = _mm512_maskz_loadu_epi32(wm[q], g + 16 * q);
			k[i] = _mm512_setzero_si512();
		}
		for (s = 0; s < depth; s++)
			for (i = 0; i < nw; i++)
			{
				__mmask16	hi = _mm512_test_epi32_mask(k[i], b5);
				__m512i		w = _mm512_mask_blend_epi32(hi,
														_mm512_permutex2var_epi32(nd[i][0], k[i], nd[i][1]),
														_mm512_permutex2var_epi32(nd[i][2], k[i], nd[i][3])),
							x = _mm512_i32gather_epi32(_mm512_add_epi32(lane_off,
																		_mm512_and_si512(w, low16)),
													   (const void *) xb16, 4);

				/* QUANT_STEP: k = 2k + 1 + (x > w), unsigned */
				k[i] = _mm512_add_epi32(_mm512_add_epi32(k[i], k[i]), one);
				k[i] = _mm512_mask_add_epi32(k[i], _mm512_cmpgt_epu32_mask(x, w), k[i], one);
			}
		for (i = 0; i < nw; i++)
		{
			const double *lf = f->leaf + (size_t) (t + i) * f->n_leaf;
			__m512i		leaf = _mm512_sub_epi32(k[i], n_int);

			s0 = _mm512_add_pd(s0, _mm512_i32gather_pd(_mm512_castsi512_si256(leaf), lf, 8));
			s1 = _mm512_add_pd(s1, _mm512_i32gather_pd(_mm512_extracti64x4_epi64(leaf, 1), lf, 8));
		}
	}
	_mm512_storeu_pd(acc16, s0);
	_mm512_storeu_pd(acc16 + 8, s1);
}
#endif

/*
 * The binned row (2d words at x) of coded row `codes`: each used feature's
 * code looked up in the map; the other features' words are left as they are.
 */
static inline void
code_row_bins(const TreeCodeMap *map, const uint8_t *codes, uint32_t *x)
{
	uint32_t	d = map->n_features,
				u;

	for (u = 0; u < map->n_used; u++)
	{
		uint32_t	j = map->used[u],
					c = codes[j];

		x[j] = map->lo[u * 256 + c];
		x[d + j] = map->hi[u * 256 + c];
	}
}

/* A call of trees_predict_codes, shared by its tasks. */
typedef struct CodeTask
{
	const TreeModel *m;
	const TreeCodeMap *map;
	const uint8_t *B;
	int64_t		n;
	double	   *out;
} CodeTask;

/*
 * Rows [n t / nt, n (t + 1) / nt) of a CodeTask: each row's codes looked
 * up into the binned row, then trees_predict_row's walk and finish (the
 * same bits: the binned row is the one the row's values would bin to).
 */
static void
code_task(void *arg, int task, int n_tasks)
{
	const CodeTask *p = arg;
	const TreeModel *m = p->m;
	const TreeCodeMap *map = p->map;
	uint32_t	xb[2 * QUANT_MAX_FEATURES];
	double		local[PRED_STACK];
	uint32_t	d = map->n_features,
				w = m->trees_per_round;
	int64_t		r0 = p->n * task / n_tasks,
				r1 = p->n * (task + 1) / n_tasks,
				r;

	r = r0;
#ifdef PRED_HAVE_AVX512
	if (code_rows_simd(m, d))
	{
		uint32_t	xb16[CODE_ROWS * 2 * CODE_ROWS_MAX_FEATURES];
		double		acc16[CODE_ROWS];
		int			i;

		memset(xb16, 0, sizeof(uint32_t) * CODE_ROWS * 2 * d);
		for (; r + CODE_ROWS <= r1; r += CODE_ROWS)
		{
			for (i = 0; i < CODE_ROWS; i++)
				code_row_bins(map, p->B + (size_t) (r + i) * d, xb16 + (size_t) i * 2 * d);
			memset(acc16, 0, sizeof(acc16));
			quant_trees16(m, xb16, 2 * d, acc16);
			for (i = 0; i < CODE_ROWS; i++)
				finish_row(m, acc16 + i, p->out + (size_t) (r + i) * m->n_outputs);
		}
	}
#endif
	/* features no split uses stay 0, as tree_quant_bin_row leaves them */
	memset(xb, 0, sizeof(uint32_t) * 2 * d);
	for (; r < r1; r++)
	{
		double	   *out = p->out + (size_t) r * m->n_outputs;
		double	   *acc = w <= PRED_STACK ? local : out;

		code_row_bins(map, p->B + (size_t) r * d, xb);
		memset(acc, 0, sizeof(double) * w);
		quant_accumulate_binned(m, xb, acc);
		finish_row(m, acc, out);
	}
}

/* Scores n coded rows (see trees.h): code_task over up to 64 tasks. */
void
trees_predict_codes(const MlEnv *env, const TreeModel *m, const TreeCodeMap *map,
					const uint8_t *B, int64_t n, double *out)
{
	CodeTask	t;
	int64_t		tasks = n / 4096 + 1;

	if (n <= 0)
		return;
	t.m = m;
	t.map = map;
	t.B = B;
	t.n = n;
	t.out = out;
	if (env == NULL || tasks <= 1)
		code_task(&t, 0, 1);
	else
		ml_parallel_for(env, tasks > 64 ? 64 : (int) tasks, code_task, &t);
}
