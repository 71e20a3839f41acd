/*
 * treeshap.c: exact path-dependent TreeSHAP (Lundberg, Erion and Lee 2018,
 * "Consistent Individualized Feature Attribution for Tree Ensembles",
 * Algorithm 2) for mlpipe's flattened tree models, and node covers from
 * rows.
 *
 * For one tree and one row, the algorithm walks every root-leaf path once,
 * keeping the "unique path" of the features split on so far with, for each,
 * the share of the cover that goes the way the row goes (one fraction: 1 on
 * the row's side, 0 on the other) and the share of the cover the side gets
 * (zero fraction). At a leaf, each feature on the path gets the leaf value
 * times the Shapley-weighted difference of the two fractions. A feature
 * split on twice is merged into one path element (unwind, then extend with
 * the product of fractions). The cost is O(leaves * depth^2) per tree.
 *
 * The zero fractions (cover of a node / cover of its parent) and each
 * tree's expected value are computed once, in tree_explainer_build.
 */
#include "explain.h"

#include <string.h>

/* One element of the unique path. */
typedef struct PathElem
{
	int32_t		feature;
	double		zero;			/* share of the cover that follows this side */
	double		one;			/* 1 when the row follows this side, else 0 */
	double		pweight;		/* permutation weight */
} PathElem;

struct TreeExplainer
{
	const TreeModel *m;
	uint32_t	n_out;			/* explained outputs */
	uint32_t	max_depth;		/* deepest tree */
	size_t		path_len;		/* PathElem per scratch */
	double	   *zf;				/* per node: cover / cover of parent (root: 1) */
	double	   *expected;		/* n_out values */
	double		scale;			/* 1 (gbt) or 1 / n_trees (mean of trees) */
	double	   *tables;			/* 4 * S * S: PathTables' arrays */
	uint32_t	S;				/* max_depth + 2 */
	PathElem   *scratch;		/* for tree_explain_row */
};

uint32_t
tree_explain_n_outputs(const TreeModel *m)
{
	return m->algorithm == TREE_ALGO_GBT ? m->trees_per_round : m->leaf_width;
}

/* Leaf reached by x in tree t (tree-local index); NaN takes the default side. */
static uint32_t
leaf_of(const TreeModel *m, uint32_t t, const double *x)
{
	const TreeNode *nodes = m->nodes + m->tree_start[t];
	uint32_t	k = 0;

	while (!(nodes[k].feature & TREE_NODE_LEAF))
	{
		const TreeNode *nd = &nodes[k];
		double		v = x[nd->feature & TREE_NODE_FEATURE_MASK];
		bool		left = isnan(v) ? (nd->feature & TREE_NODE_DEFAULT_LEFT) != 0 : !(v > nd->value);

		k = nd->aux + (left ? 0 : 1);
	}
	return k;
}

void
tree_explain_raw(const TreeModel *m, const double *x, double *out)
{
	uint32_t	n_out = tree_explain_n_outputs(m),
				t,
				c;

	for (c = 0; c < n_out; c++)
		out[c] = m->algorithm == TREE_ALGO_GBT ? m->base_score[c] : 0.0;
	if (m->algorithm == TREE_ALGO_GBT)
	{
		/* per-group sums first, then the base: the scorer's order of additions */
		double		acc[64];
		double	   *a = n_out <= 64 ? acc : NULL;

		if (a)
		{
			memset(a, 0, sizeof(double) * n_out);
			for (t = 0; t < m->n_trees; t++)
				a[t % n_out] += m->nodes[m->tree_start[t] + leaf_of(m, t, x)].value;
			for (c = 0; c < n_out; c++)
				out[c] = a[c] + m->base_score[c];
		}
		else
			for (t = 0; t < m->n_trees; t++)
				out[t % n_out] += m->nodes[m->tree_start[t] + leaf_of(m, t, x)].value;
		return;
	}
	for (t = 0; t < m->n_trees; t++)
	{
		const TreeNode *leaf = &m->nodes[m->tree_start[t] + leaf_of(m, t, x)];

		if (m->leaf_width > 1)
		{
			const double *lv = m->leaf_values +
				(size_t) (m->leaf_start[t] + leaf->aux) * m->leaf_width;

			for (c = 0; c < n_out; c++)
				out[c] += lv[c];
		}
		else
			out[0] += leaf->value;
	}
	for (c = 0; c < n_out; c++)
		out[c] /= m->n_trees;
}

/* ---- the path algebra (Algorithm 2's EXTEND, UNWIND and the unwound sum) ----
 *
 * In the path-dependent algorithm every one fraction is exactly 0 or 1 (the
 * root's is 1, a hot child inherits its element's, a cold child gets 0), so
 * the divisions by it are dropped. The ratios of path positions come from
 * tables built once per explainer (S = max_depth + 2 columns a row):
 * up[ud*S+i] = (ud+1)/(i+1), down[ud*S+i] = (ud-i)/(ud+1),
 * inv_down[ud*S+i] = (ud+1)/(ud-i) and ext[ud*S+i] = (i+1)/(ud+1).
 */
typedef struct PathTables
{
	uint32_t	S;
	const double *up;
	const double *down;
	const double *inv_down;
	const double *ext;
} PathTables;

static inline void
extend_path(const PathTables *tb, PathElem *path, uint32_t ud, double zero, double one,
			int32_t feature)
{
	const double *ext = tb->ext + (size_t) ud * tb->S;
	const double *down = tb->down + (size_t) ud * tb->S;
	int			i;

	path[ud].feature = feature;
	path[ud].zero = zero;
	path[ud].one = one;
	path[ud].pweight = ud == 0 ? 1.0 : 0.0;
	for (i = (int) ud - 1; i >= 0; i--)
	{
		path[i + 1].pweight += one * path[i].pweight * ext[i];
		path[i].pweight = zero * path[i].pweight * down[i];
	}
}

static inline void
unwind_path(const PathTables *tb, PathElem *path, uint32_t ud, uint32_t idx)
{
	double		one = path[idx].one,
				zero = path[idx].zero,
				next = path[ud].pweight;
	const double *up = tb->up + (size_t) ud * tb->S;
	const double *down = tb->down + (size_t) ud * tb->S;
	const double *inv_down = tb->inv_down + (size_t) ud * tb->S;
	int			i;

	if (one != 0)
	{
		for (i = (int) ud - 1; i >= 0; i--)
		{
			double		tmp = path[i].pweight;

			path[i].pweight = next * up[i];
			next = tmp - path[i].pweight * zero * down[i];
		}
	}
	else
	{
		double		inv_zero = 1.0 / zero;

		for (i = (int) ud - 1; i >= 0; i--)
			path[i].pweight = path[i].pweight * inv_down[i] * inv_zero;
	}
	for (i = (int) idx; i < (int) ud; i++)
	{
		path[i].feature = path[i + 1].feature;
		path[i].zero = path[i + 1].zero;
		path[i].one = path[i + 1].one;
	}
}

/* Total permutation weight of the path with element idx taken out. */
static inline double
unwound_sum(const PathTables *tb, const PathElem *path, uint32_t ud, uint32_t idx)
{
	double		zero = path[idx].zero,
				next = path[ud].pweight,
				total = 0;
	const double *up = tb->up + (size_t) ud * tb->S;
	const double *down = tb->down + (size_t) ud * tb->S;
	int			i;

	if (path[idx].one != 0)
	{
		for (i = (int) ud - 1; i >= 0; i--)
		{
			double		tmp = next * up[i];

			total += tmp;
			next = path[i].pweight - tmp * zero * down[i];
		}
	}
	else
	{
		const double *inv_down = tb->inv_down + (size_t) ud * tb->S;

		for (i = (int) ud - 1; i >= 0; i--)
			total += path[i].pweight * inv_down[i];
		total /= zero;
	}
	return total;
}

/* What one tree's walk for one row needs. */
typedef struct ShapWalk
{
	const TreeModel *m;
	const TreeNode *nodes;		/* the tree's nodes */
	const double *zf;			/* the tree's zero fractions */
	const double *leaf_table;	/* leaf_width > 1: the tree's leaf rows */
	PathTables	tb;
	uint32_t	K;				/* leaf_width */
	uint32_t	stride;			/* d + 1 */
	const double *x;
	double	   *phi;			/* the output block(s) this tree adds to */
	double		scale;
} ShapWalk;

/* Algorithm 2's RECURSE: the path so far is parent[0 .. ud - 1]. */
static void
shap_recurse(const ShapWalk *w, uint32_t k, PathElem *parent, uint32_t ud,
			 double zero, double one, int32_t feature)
{
	PathElem   *path = parent + ud;
	const TreeNode *nd = &w->nodes[k];
	uint32_t	i;

	/* the path gets its own copy, so the siblings' walks see the parent's */
	if (ud > 0)
		memcpy(path, parent, sizeof(PathElem) * ud);
	extend_path(&w->tb, path, ud, zero, one, feature);
	if (nd->feature & TREE_NODE_LEAF)
	{
		for (i = 1; i <= ud; i++)
		{
			double		s = unwound_sum(&w->tb, path, ud, i) * (path[i].one - path[i].zero) * w->scale;
			double	   *p = w->phi + path[i].feature;

			if (w->K > 1)
			{
				const double *lv = w->leaf_table + (size_t) nd->aux * w->K;
				uint32_t	c;

				for (c = 0; c < w->K; c++)
					p[(size_t) c * w->stride] += s * lv[c];
			}
			else
				*p += s * nd->value;
		}
		return;
	}
	{
		int32_t		f = (int32_t) (nd->feature & TREE_NODE_FEATURE_MASK);
		double		v = w->x[f];
		bool		left = isnan(v) ? (nd->feature & TREE_NODE_DEFAULT_LEFT) != 0 :
			!(v > nd->value);
		uint32_t	hot = nd->aux + (left ? 0 : 1),
					cold = nd->aux + (left ? 1 : 0);
		double		in_zero = 1,
					in_one = 1;

		/* a feature already on the path: take it out, merge its fractions */
		for (i = 1; i <= ud; i++)
			if (path[i].feature == f)
				break;
		if (i <= ud)
		{
			in_zero = path[i].zero;
			in_one = path[i].one;
			unwind_path(&w->tb, path, ud, i);
			ud--;
		}
		shap_recurse(w, hot, path, ud + 1, w->zf[hot] * in_zero, in_one, f);
		/* a side no cover reaches adds exactly nothing (and would divide by 0) */
		if (w->zf[cold] * in_zero > 0)
			shap_recurse(w, cold, path, ud + 1, w->zf[cold] * in_zero, 0, f);
	}
}

/* Adds the contributions of every tree for row x to phi (already zeroed). */
static void
explain_into(const TreeExplainer *ex, const double *x, double *phi, PathElem *scratch)
{
	const TreeModel *m = ex->m;
	uint32_t	stride = m->n_features + 1,
				t,
				c;
	ShapWalk	w;

	w.m = m;
	w.tb.S = ex->S;
	w.tb.up = ex->tables;
	w.tb.down = ex->tables + (size_t) ex->S * ex->S;
	w.tb.inv_down = ex->tables + (size_t) 2 * ex->S * ex->S;
	w.tb.ext = ex->tables + (size_t) 3 * ex->S * ex->S;
	w.K = m->leaf_width;
	w.stride = stride;
	w.x = x;
	w.scale = ex->scale;
	for (t = 0; t < m->n_trees; t++)
	{
		uint32_t	s = m->tree_start[t];

		w.nodes = m->nodes + s;
		w.zf = ex->zf + s;
		w.leaf_table = w.K > 1 ? m->leaf_values + (size_t) m->leaf_start[t] * w.K : NULL;
		w.phi = phi + (size_t) (m->algorithm == TREE_ALGO_GBT ? t % m->trees_per_round : 0) * stride;
		shap_recurse(&w, 0, scratch, 0, 1.0, 1.0, -1);
	}
	for (c = 0; c < ex->n_out; c++)
		phi[(size_t) c * stride + m->n_features] = ex->expected[c];
}

void
tree_explain_row(TreeExplainer *ex, const double *x, double *phi)
{
	memset(phi, 0, sizeof(double) * ex->n_out * (ex->m->n_features + 1));
	explain_into(ex, x, phi, ex->scratch);
}

void
tree_explainer_expected(const TreeExplainer *ex, double *out)
{
	memcpy(out, ex->expected, sizeof(double) * ex->n_out);
}

/* Zero fractions and the expected value of tree t (added into ex->expected). */
static void
prepare_tree(TreeExplainer *ex, uint32_t t, const double *cover, double *ev)
{
	const TreeModel *m = ex->m;
	uint32_t	s = m->tree_start[t],
				n = m->tree_start[t + 1] - s,
				K = m->leaf_width,
				k,
				c;
	const TreeNode *nodes = m->nodes + s;
	double	   *zf = ex->zf + s;
	double	   *out = ex->expected +
		(m->algorithm == TREE_ALGO_GBT ? t % m->trees_per_round : 0);

	zf[0] = 1.0;
	for (k = 0; k < n; k++)
		if (!(nodes[k].feature & TREE_NODE_LEAF))
		{
			uint32_t	l = nodes[k].aux;
			double		w = cover[s + k];

			zf[l] = w > 0 ? cover[s + l] / w : 0.5;
			zf[l + 1] = w > 0 ? cover[s + l + 1] / w : 0.5;
		}
	/* expected values bottom-up: children come after their parent */
	for (k = n; k-- > 0;)
	{
		double	   *e = ev + (size_t) k * K;

		if (nodes[k].feature & TREE_NODE_LEAF)
		{
			if (K > 1)
				memcpy(e, m->leaf_values + (size_t) (m->leaf_start[t] + nodes[k].aux) * K,
					   sizeof(double) * K);
			else
				e[0] = nodes[k].value;
		}
		else
		{
			uint32_t	l = nodes[k].aux;

			for (c = 0; c < K; c++)
				e[c] = zf[l] * ev[(size_t) l * K + c] + zf[l + 1] * ev[(size_t) (l + 1) * K + c];
		}
	}
	for (c = 0; c < K; c++)
		out[c] += ev[c] * ex->scale;
}

/* The ratio tables of PathTables. */
static void
fill_tables(TreeExplainer *ex)
{
	uint32_t	S = ex->S,
				ud,
				i;
	double	   *up = ex->tables,
			   *down = up + (size_t) S * S,
			   *inv_down = down + (size_t) S * S,
			   *ext = inv_down + (size_t) S * S;

	for (ud = 0; ud < S; ud++)
		for (i = 0; i < ud; i++)
		{
			up[ud * S + i] = (double) (ud + 1) / (i + 1);
			down[ud * S + i] = (double) (ud - i) / (ud + 1);
			inv_down[ud * S + i] = (double) (ud + 1) / (ud - i);
			ext[ud * S + i] = (double) (i + 1) / (ud + 1);
		}
}

MlStatus
tree_explainer_build(const MlEnv *env, const TreeModel *m, const double *cover,
					 TreeExplainer **out, MlError *err)
{
	TreeExplainer *ex;
	uint32_t	t,
				c,
				total = m->tree_start[m->n_trees],
				max_nodes = 0;
	size_t		k;
	double	   *ev = NULL;

	*out = NULL;
	if (m->n_trees == 0)
		return ml_fail(err, ML_ERR_DATA, "the model has no trees to explain");
	for (k = 0; k < total; k++)
		if (!isfinite(cover[k]) || cover[k] < 0)
			return ml_fail(err, ML_ERR_DATA, "cover of node %zu is %g; covers must be finite and >= 0",
						   k, cover[k]);
	ex = ml_calloc(env, 1, sizeof(TreeExplainer));
	if (!ex)
		return ml_fail(err, ML_ERR_MEMORY, "out of memory for the explainer");
	ex->m = m;
	ex->n_out = tree_explain_n_outputs(m);
	ex->scale = m->algorithm == TREE_ALGO_GBT ? 1.0 : 1.0 / m->n_trees;
	for (t = 0; t < m->n_trees; t++)
	{
		if (m->tree_depth[t] > ex->max_depth)
			ex->max_depth = m->tree_depth[t];
		if (m->tree_start[t + 1] - m->tree_start[t] > max_nodes)
			max_nodes = m->tree_start[t + 1] - m->tree_start[t];
	}
	if (ex->max_depth > TREESHAP_MAX_DEPTH)
	{
		tree_explainer_free(env, ex);
		return ml_fail(err, ML_ERR_DATA, "a tree of the model is %u levels deep; at most %d can be explained",
					   ex->max_depth, TREESHAP_MAX_DEPTH);
	}
	/* the walk at depth u holds u + 1 elements above the copies of its parents */
	ex->path_len = ((size_t) ex->max_depth + 2) * (ex->max_depth + 3) / 2;
	ex->zf = ml_alloc(env, sizeof(double) * (size_t) total);
	ex->expected = ml_calloc(env, ex->n_out, sizeof(double));
	ex->scratch = ml_alloc(env, sizeof(PathElem) * ex->path_len);
	ex->S = ex->max_depth + 2;
	ex->tables = ml_calloc(env, (size_t) 4 * ex->S * ex->S, sizeof(double));
	ev = ml_alloc(env, sizeof(double) * (size_t) max_nodes * m->leaf_width);
	if (!ex->zf || !ex->expected || !ex->scratch || !ex->tables || !ev)
	{
		ml_free(env, ev);
		tree_explainer_free(env, ex);
		return ml_fail(err, ML_ERR_MEMORY, "out of memory for the explainer");
	}
	fill_tables(ex);
	for (t = 0; t < m->n_trees; t++)
		prepare_tree(ex, t, cover, ev);
	ml_free(env, ev);
	if (m->algorithm == TREE_ALGO_GBT)
	{
		/* per-group sums first, then the base, as the scorer adds them */
		for (c = 0; c < ex->n_out; c++)
			ex->expected[c] += m->base_score[c];
	}
	*out = ex;
	return ML_OK;
}

void
tree_explainer_free(const MlEnv *env, TreeExplainer *ex)
{
	if (!ex)
		return;
	ml_free(env, ex->zf);
	ml_free(env, ex->expected);
	ml_free(env, ex->scratch);
	ml_free(env, ex->tables);
	ml_free(env, ex);
}

/* ---- batch ---- */

typedef struct ExplainTask
{
	const TreeExplainer *ex;
	const double *X;
	int64_t		n;
	double	   *phi;
	PathElem   *scratch;		/* path_len per task */
} ExplainTask;

static void
explain_task(void *arg, int task, int n_tasks)
{
	ExplainTask *p = arg;
	const TreeExplainer *ex = p->ex;
	size_t		d = ex->m->n_features,
				width = (size_t) ex->n_out * (d + 1);
	int64_t		i0 = p->n * task / n_tasks,
				i1 = p->n * (task + 1) / n_tasks,
				i;

	for (i = i0; i < i1; i++)
	{
		double	   *phi = p->phi + (size_t) i * width;

		memset(phi, 0, sizeof(double) * width);
		explain_into(ex, p->X + (size_t) i * d, phi, p->scratch + (size_t) task * ex->path_len);
	}
}

MlStatus
tree_explain_batch(const MlEnv *env, TreeExplainer *ex, const double *X, int64_t n,
				   double *phi, MlError *err)
{
	ExplainTask t;
	int			tasks = env && env->n_threads > 1 ? env->n_threads : 1;

	if (n <= 0)
		return ML_OK;
	if (tasks > 64)
		tasks = 64;
	if (n < 64 * (int64_t) tasks)
		tasks = 1;
	t.ex = ex;
	t.X = X;
	t.n = n;
	t.phi = phi;
	if (tasks == 1)
	{
		t.scratch = ex->scratch;
		explain_task(&t, 0, 1);
		return ML_OK;
	}
	t.scratch = ml_alloc(env, sizeof(PathElem) * ex->path_len * tasks);
	if (!t.scratch)
		return ml_fail(err, ML_ERR_MEMORY, "out of memory for explanation scratch");
	/* ml_parallel_for runs min(n_threads, tasks) tasks, each with its scratch */
	ml_parallel_for(env, tasks, explain_task, &t);
	ml_free(env, t.scratch);
	return ML_OK;
}

/* ---- covers from rows ---- */

MlStatus
tree_covers_from_rows(const MlEnv *env, const TreeModel *m, const double *X, int64_t n,
					  const double *w, double **cover_out, MlError *err)
{
	uint32_t	total = m->tree_start[m->n_trees],
				t;
	int64_t		i;
	double	   *cover;

	*cover_out = NULL;
	if (w)
		for (i = 0; i < n; i++)
			if (!isfinite(w[i]) || w[i] < 0)
				return ml_fail(err, ML_ERR_DATA, "weight of row %lld is %g; weights must be finite and >= 0",
							   (long long) i, w[i]);
	cover = ml_calloc(env, total ? total : 1, sizeof(double));
	if (!cover)
		return ml_fail(err, ML_ERR_MEMORY, "out of memory for node covers");
	for (t = 0; t < m->n_trees; t++)
	{
		const TreeNode *nodes = m->nodes + m->tree_start[t];
		double	   *cv = cover + m->tree_start[t];

		for (i = 0; i < n; i++)
		{
			const double *x = X + (size_t) i * m->n_features;
			double		wi = w ? w[i] : 1.0;
			uint32_t	k = 0;

			cv[0] += wi;
			while (!(nodes[k].feature & TREE_NODE_LEAF))
			{
				const TreeNode *nd = &nodes[k];
				double		v = x[nd->feature & TREE_NODE_FEATURE_MASK];
				bool		left = isnan(v) ? (nd->feature & TREE_NODE_DEFAULT_LEFT) != 0 :
					!(v > nd->value);

				k = nd->aux + (left ? 0 : 1);
				cv[k] += wi;
			}
		}
		if (ml_check(env, "tree covers", (int) t, (int) m->n_trees, 0) != 0)
		{
			ml_free(env, cover);
			return ml_fail_cancelled(err);
		}
	}
	*cover_out = cover;
	return ML_OK;
}
