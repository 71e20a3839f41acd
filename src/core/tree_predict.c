/*
 * tree_predict.c: the derived scoring layouts of a flattened model and the
 * scoring of one row (tree_predict_batch.c scores blocks of rows).
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
#include "tree_walk.h"

#include <math.h>
#include <string.h>

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
void
tree_quant_accumulate_binned(const TreeModel *m, const uint32_t *xb, double *acc)
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
	tree_quant_accumulate_binned(m, xb, acc);
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
void
tree_finish_row(const TreeModel *m, const double *acc, double *out)
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

void
trees_predict_row(const TreeModel *m, const double *x, double *out)
{
	double		local[PRED_STACK];
	uint32_t	w = m->algorithm == TREE_ALGO_GBT ? m->trees_per_round : m->leaf_width;
	/* finish_row works in place, so wide models accumulate straight into out */
	double	   *acc = w <= PRED_STACK ? local : out;

	memset(acc, 0, sizeof(double) * w);
	accumulate_row(m, x, acc);
	tree_finish_row(m, acc, out);
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
