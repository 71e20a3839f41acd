/* tree_model.c: params, fit dispatch, model assembly and the memory estimate. */
#include "trees_int.h"

#include <float.h>
#include <math.h>
#include <string.h>

void
trees_params_default(TreeParams *p, TreeAlgorithm algorithm, MlTask task)
{
	memset(p, 0, sizeof(*p));
	p->algorithm = algorithm;
	p->task = task;
	p->max_depth = algorithm == TREE_ALGO_GBT ? 6 : 0;
	p->max_bins = 256;
	p->class_weight = TREE_CW_NONE;
	p->seed = 42;
	p->criterion = TREE_CRIT_DEFAULT;
	p->min_samples_leaf = 1;
	p->min_samples_split = 2;
	p->ccp_alpha = 0;
	p->max_features = TREE_MF_DEFAULT;
	p->max_features_value = 0;
	p->bootstrap = true;
	p->oob_score = algorithm == TREE_ALGO_RANDOM_FOREST;
	p->n_estimators = 100;
	p->objective = TREE_OBJ_DEFAULT;
	p->learning_rate = 0.3;
	p->max_leaves = 0;
	p->min_child_weight = 1;
	p->l2 = 1;
	p->gamma = 0;
	p->subsample = 1;
	p->colsample = 1;
	p->early_stopping_rounds = 0;
}

MlStatus
trees_params_validate(const TreeParams *p, int d, int n_classes, MlError *err)
{
	if (p->algorithm < TREE_ALGO_DECISION_TREE || p->algorithm > TREE_ALGO_GBT)
		return ml_fail(err, ML_ERR_PARAM, "unknown tree algorithm %d", (int) p->algorithm);
	if (p->task != ML_TASK_CLASSIFY && p->task != ML_TASK_REGRESS)
		return ml_fail(err, ML_ERR_PARAM, "tree task must be classification or regression");
	if (p->max_depth < 0 || p->max_depth > TREES_MAX_DEPTH)
		return ml_fail(err, ML_ERR_PARAM,
					   "max_depth must be between 1 and %d (0 for no limit), got %d",
					   TREES_MAX_DEPTH, p->max_depth);
	if (p->max_bins < 2 || p->max_bins > TREES_MAX_BINS)
		return ml_fail(err, ML_ERR_PARAM, "max_bins must be between 2 and %d, got %d",
					   TREES_MAX_BINS, p->max_bins);
	if (p->n_threads < 0)
		return ml_fail(err, ML_ERR_PARAM, "n_threads must be >= 0, got %d", p->n_threads);
	if (p->class_weight < TREE_CW_NONE || p->class_weight > TREE_CW_GIVEN)
		return ml_fail(err, ML_ERR_PARAM, "unknown class_weight mode %d", (int) p->class_weight);
	if (p->class_weight != TREE_CW_NONE && p->task != ML_TASK_CLASSIFY)
		return ml_fail(err, ML_ERR_PARAM, "class_weight applies to classification only");
	if (p->class_weight == TREE_CW_GIVEN)
	{
		int			k;

		if (!p->class_weights)
			return ml_fail(err, ML_ERR_PARAM, "class_weight needs one weight per class");
		for (k = 0; k < n_classes; k++)
			if (!isfinite(p->class_weights[k]) || p->class_weights[k] <= 0)
				return ml_fail(err, ML_ERR_PARAM,
							   "class_weight for class %d must be a finite number > 0", k);
	}
	if (p->algorithm != TREE_ALGO_GBT)
	{
		if (p->criterion < TREE_CRIT_DEFAULT || p->criterion > TREE_CRIT_SQUARED_ERROR)
			return ml_fail(err, ML_ERR_PARAM,
						   "criterion must be gini, entropy or squared_error");
		if (p->task == ML_TASK_CLASSIFY && p->criterion == TREE_CRIT_SQUARED_ERROR)
			return ml_fail(err, ML_ERR_PARAM,
						   "criterion squared_error is for regression; use gini or entropy");
		if (p->task == ML_TASK_REGRESS &&
			(p->criterion == TREE_CRIT_GINI || p->criterion == TREE_CRIT_ENTROPY))
			return ml_fail(err, ML_ERR_PARAM,
						   "criterion gini/entropy is for classification; use squared_error");
		if (p->min_samples_leaf < 1)
			return ml_fail(err, ML_ERR_PARAM, "min_samples_leaf must be >= 1, got %d",
						   p->min_samples_leaf);
		if (p->min_samples_split < 2)
			return ml_fail(err, ML_ERR_PARAM, "min_samples_split must be >= 2, got %d",
						   p->min_samples_split);
		if (!(p->ccp_alpha >= 0) || !isfinite(p->ccp_alpha))
			return ml_fail(err, ML_ERR_PARAM, "ccp_alpha must be a finite number >= 0");
		switch (p->max_features)
		{
			case TREE_MF_DEFAULT:
			case TREE_MF_ALL:
			case TREE_MF_SQRT:
			case TREE_MF_LOG2:
				break;
			case TREE_MF_FRACTION:
				if (!(p->max_features_value > 0 && p->max_features_value <= 1))
					return ml_fail(err, ML_ERR_PARAM,
								   "max_features as a fraction must be in (0, 1]");
				break;
			case TREE_MF_COUNT:
				if (!(p->max_features_value >= 1 && p->max_features_value <= d) ||
					p->max_features_value != floor(p->max_features_value))
					return ml_fail(err, ML_ERR_PARAM,
								   "max_features as a count must be an integer between 1 and %d",
								   d);
				break;
			default:
				return ml_fail(err, ML_ERR_PARAM,
							   "max_features must be sqrt, log2, a fraction or a count");
		}
	}
	if (p->algorithm != TREE_ALGO_DECISION_TREE &&
		(p->n_estimators < (p->warm_start ? 0 : 1) || p->n_estimators > TREES_MAX_ESTIMATORS))
		return ml_fail(err, ML_ERR_PARAM, "n_estimators must be between 1 and %d, got %d",
					   TREES_MAX_ESTIMATORS, p->n_estimators);
	if (p->algorithm == TREE_ALGO_GBT)
	{
		if (!(p->learning_rate > 0 && p->learning_rate <= 1))
			return ml_fail(err, ML_ERR_PARAM, "learning_rate must be in (0, 1], got %g",
						   p->learning_rate);
		if (p->max_leaves != 0 && (p->max_leaves < 2 || p->max_leaves > TREES_MAX_LEAVES))
			return ml_fail(err, ML_ERR_PARAM,
						   "max_leaves must be between 2 and %d (0 for depth-wise growth), got %d",
						   TREES_MAX_LEAVES, p->max_leaves);
		if (p->max_leaves == 0 && p->max_depth == 0)
			return ml_fail(err, ML_ERR_PARAM,
						   "gbt needs max_depth between 1 and %d unless max_leaves is set",
						   TREES_MAX_DEPTH);
		if (p->max_leaves == 0 && p->max_depth > 20)
			return ml_fail(err, ML_ERR_PARAM,
						   "gbt max_depth must be between 1 and 20 for depth-wise growth (set max_leaves for deeper trees), got %d",
						   p->max_depth);
		if (!(p->min_child_weight >= 0) || !isfinite(p->min_child_weight))
			return ml_fail(err, ML_ERR_PARAM, "min_child_weight must be a finite number >= 0");
		if (!(p->l2 >= 0) || !isfinite(p->l2))
			return ml_fail(err, ML_ERR_PARAM, "l2 must be a finite number >= 0");
		if (!(p->gamma >= 0) || !isfinite(p->gamma))
			return ml_fail(err, ML_ERR_PARAM, "gamma must be a finite number >= 0");
		if (!(p->subsample > 0 && p->subsample <= 1))
			return ml_fail(err, ML_ERR_PARAM, "subsample must be in (0, 1], got %g", p->subsample);
		if (!(p->colsample > 0 && p->colsample <= 1))
			return ml_fail(err, ML_ERR_PARAM, "colsample must be in (0, 1], got %g", p->colsample);
		if (p->early_stopping_rounds < 0)
			return ml_fail(err, ML_ERR_PARAM, "early_stopping_rounds must be >= 0, got %d",
						   p->early_stopping_rounds);
		switch (p->objective)
		{
			case TREE_OBJ_DEFAULT:
				break;
			case TREE_OBJ_BINARY_LOGISTIC:
				if (p->task != ML_TASK_CLASSIFY || n_classes != 2)
					return ml_fail(err, ML_ERR_PARAM,
								   "objective binary:logistic needs a target with 2 classes");
				break;
			case TREE_OBJ_MULTI_SOFTMAX:
				if (p->task != ML_TASK_CLASSIFY)
					return ml_fail(err, ML_ERR_PARAM,
								   "objective multi:softmax needs a classification target");
				break;
			case TREE_OBJ_REG_SQUAREDERROR:
				if (p->task != ML_TASK_REGRESS)
					return ml_fail(err, ML_ERR_PARAM,
								   "objective reg:squarederror needs a regression target");
				break;
			default:
				return ml_fail(err, ML_ERR_PARAM,
							   "unknown objective %d (binary:logistic, multi:softmax or reg:squarederror)",
							   (int) p->objective);
		}
	}
	return ML_OK;
}

MlStatus
trees_class_weights(const MlEnv *env, const TreeData *data, const TreeParams *p,
					double **out, MlError *err)
{
	int			K = data->n_classes,
				k;
	double	   *w = ml_calloc(env, K, sizeof(double));
	int64_t		i,
				tot = 0;

	*out = NULL;
	if (!w)
		return ml_fail(err, ML_ERR_MEMORY, "out of memory for class weights");
	if (p->class_weight == TREE_CW_GIVEN)
	{
		for (k = 0; k < K; k++)
			w[k] = p->class_weights[k];
	}
	else if (p->class_weight == TREE_CW_BALANCED)
	{
		for (i = 0; i < data->n; i++)
			if (!(data->valid_mask && data->valid_mask[i]))
			{
				w[data->y_class[i]] += 1;
				tot++;
			}
		for (k = 0; k < K; k++)
			w[k] = w[k] > 0 ? (double) tot / ((double) K * w[k]) : 1.0;
	}
	else
		for (k = 0; k < K; k++)
			w[k] = 1.0;
	*out = w;
	return ML_OK;
}

size_t
trees_memory_needed(int64_t n, int d, int n_classes, const TreeParams *p)
{
	size_t		core;

	if (n < 0 || d < 0)
		return SIZE_MAX;
	core = p->algorithm == TREE_ALGO_GBT ? gbt_memory_needed(n, d, n_classes, p) :
		cart_memory_needed(n, d, n_classes, p);
	return core;
}

MlStatus
trees_fit(const MlEnv *env, const TreeData *data, const TreeParams *p, TreeModel *out,
		  TreeFitInfo *info, MlError *err)
{
	MlStatus	st;
	MlEnv		e = *env;
	int64_t		i,
				n_train = 0;

	memset(out, 0, sizeof(*out));
	if (info)
		memset(info, 0, sizeof(*info));
	if (data->n <= 0)
		return ml_fail(err, ML_ERR_DATA, "no rows to train on");
	if (data->d <= 0 || data->d > ML_MAX_FEATURES)
		return ml_fail(err, ML_ERR_DATA, "feature count %d out of range [1, %d]", data->d,
					   ML_MAX_FEATURES);
	if (!data->bins || data->bins->d != data->d || !data->B)
		return ml_fail(err, ML_ERR_DATA, "binned matrix and bin edges do not match");
	st = trees_params_validate(p, data->d, p->task == ML_TASK_CLASSIFY ? data->n_classes : 0, err);
	if (st != ML_OK)
		return st;
	if (p->task == ML_TASK_CLASSIFY)
	{
		int			first = -1;
		bool		two = false;

		if (!data->y_class)
			return ml_fail(err, ML_ERR_DATA, "classification needs class labels");
		if (data->n_classes < 2 || data->n_classes > ML_MAX_CLASSES)
			return ml_fail(err, ML_ERR_DATA,
						   "classification needs between 2 and %d classes, got %d",
						   ML_MAX_CLASSES, data->n_classes);
		for (i = 0; i < data->n; i++)
		{
			int			y = data->y_class[i];

			if (y < 0 || y >= data->n_classes)
				return ml_fail(err, ML_ERR_DATA, "class label %d of row %lld is out of range [0, %d)",
							   y, (long long) i, data->n_classes);
			if (data->valid_mask && data->valid_mask[i])
				continue;
			n_train++;
			if (first < 0)
				first = y;
			else if (y != first)
				two = true;
		}
		if (n_train > 0 && !two)
			return ml_fail(err, ML_ERR_DATA,
						   "the target has a single class in the training rows; classification needs two or more");
	}
	else
	{
		/* only gbt reads the float copy of the targets */
		if (data->y_float ? p->algorithm != TREE_ALGO_GBT : !data->y)
			return ml_fail(err, ML_ERR_DATA, "regression needs a target");
		for (i = 0; i < data->n; i++)
		{
			double		y = gbt_target(data, (size_t) i);

			if (!isfinite(y))
				return ml_fail(err, ML_ERR_DATA, "regression target of row %lld is %s",
							   (long long) i, isnan(y) ? "NaN or NULL" : "infinite");
			if (!(data->valid_mask && data->valid_mask[i]))
				n_train++;
		}
	}
	if (n_train == 0)
		return ml_fail(err, ML_ERR_DATA, "no training rows (every row is in the validation set)");
	for (i = 0; i < data->d; i++)
		if (data->bins->n_bins[i] < 1 || data->bins->n_bins[i] > TREES_MAX_VALUE_BINS)
			return ml_fail(err, ML_ERR_DATA, "bin edges of feature %lld are invalid", (long long) i);
	/* Codes beyond a feature's missing code would index past its histogram. */
	{
		int			j,
					d = data->d;
		uint8_t		lim[256];
		bool		bad = false;
		const uint8_t *B = data->B;

		if (d <= 256)
		{
			for (j = 0; j < d; j++)
				lim[j] = (uint8_t) data->bins->n_bins[j];
			for (i = 0; i < data->n && !bad; i++)
			{
				const uint8_t *row = B + (size_t) i * d;

				for (j = 0; j < d; j++)
					bad |= row[j] > lim[j];
			}
		}
		else
			for (i = 0; i < data->n * d && !bad; i++)
				bad = B[i] > data->bins->n_bins[i % d];
		if (bad)
			return ml_fail(err, ML_ERR_DATA,
						   "binned matrix has codes outside the bin edges (bin it with trees_bins_apply)");
	}
	if (p->n_threads > 0 && p->n_threads < e.n_threads)
		e.n_threads = p->n_threads;
	if (p->algorithm == TREE_ALGO_GBT)
		return gbt_fit(&e, data, p, out, info, err);
	return cart_fit(&e, data, p, out, info, err);
}

void
trees_model_free(const MlEnv *env, TreeModel *m)
{
	ml_free(env, m->tree_start);
	ml_free(env, m->tree_depth);
	ml_free(env, m->leaf_start);
	ml_free(env, m->nodes);
	ml_free(env, m->leaf_values);
	ml_free(env, m->base_score);
	ml_free(env, m->importance);
	ml_free(env, m->cover);
	tree_fast_free(env, m);
	m->tree_start = m->tree_depth = m->leaf_start = NULL;
	m->nodes = NULL;
	m->leaf_values = m->base_score = m->importance = m->cover = NULL;
	m->n_trees = 0;
}

MlKind
trees_kind(const TreeModel *m)
{
	switch (m->algorithm)
	{
		case TREE_ALGO_DECISION_TREE:
			return ML_KIND_DECISION_TREE;
		case TREE_ALGO_RANDOM_FOREST:
			return ML_KIND_RANDOM_FOREST;
		case TREE_ALGO_GBT:
			break;
	}
	return ML_KIND_GBT;
}


/* Leaves of every tree of a model (training info of every algorithm). */
int
tm_count_leaves(const TreeModel *m)
{
	uint32_t	r;
	int			n_leaves = 0;

	for (r = 0; r < m->tree_start[m->n_trees]; r++)
		if (m->nodes[r].feature == TREE_NODE_LEAF)
			n_leaves++;
	return n_leaves;
}
/* Grows an env array to hold at least need elements of size sz. */
static bool
grow(const MlEnv *env, void **arr, uint32_t *cap, uint64_t need, size_t sz)
{
	uint64_t	nc;
	void	   *p;

	if (need <= *cap)
		return true;
	if (need > UINT32_MAX - 1)
		return false;
	nc = *cap ? (uint64_t) *cap * 2 : 64;
	while (nc < need)
		nc *= 2;
	if (nc > UINT32_MAX - 1)
		nc = UINT32_MAX - 1;
	p = ml_alloc(env, (size_t) nc * sz);
	if (!p)
		return false;
	if (*arr && *cap)
		memcpy(p, *arr, (size_t) *cap * sz);
	ml_free(env, *arr);
	*arr = p;
	*cap = (uint32_t) nc;
	return true;
}

MlStatus
tm_append_tree(const MlEnv *env, ModelBuilder *mb, const TrainNode *tn,
			   const TreeBins *bins, const double *leafvec, MlError *err)
{
	TreeModel  *m = mb->m;
	uint32_t	count = 0,
				leaves = 0,
				head,
				tail;
	int32_t    *queue;
	uint32_t	base = mb->n_nodes,
				lbase = mb->n_leaves;
	uint32_t	K = m->leaf_width;
	uint32_t	t;

	/* Count reachable nodes. */
	queue = NULL;
	{
		uint32_t	cap = 0;

		/* size of the training tree: reachable nodes, found breadth first */
		head = 0;
		tail = 0;
		if (!grow(env, (void **) &queue, &cap, 64, sizeof(int32_t)))
			goto oom;
		queue[tail++] = 0;
		while (head < tail)
		{
			int32_t		k = queue[head++];

			count++;
			if (tn[k].left >= 0)
			{
				if (!grow(env, (void **) &queue, &cap, (uint64_t) tail + 2, sizeof(int32_t)))
					goto oom;
				queue[tail++] = tn[k].left;
				queue[tail++] = tn[k].left + 1;
			}
			else
				leaves++;
		}
	}
	t = m->n_trees;
	if (!grow(env, (void **) &m->tree_start, &mb->cap_trees, (uint64_t) t + 2, sizeof(uint32_t)))
		goto oom;
	if (!grow(env, (void **) &m->nodes, &mb->cap_nodes, (uint64_t) base + count, sizeof(TreeNode)))
		goto oom;
	if (!grow(env, (void **) &m->cover, &mb->cap_cover, (uint64_t) base + count, sizeof(double)))
		goto oom;
	if (K > 1)
	{
		if (!grow(env, (void **) &m->leaf_start, &mb->cap_lstart, (uint64_t) t + 2,
				  sizeof(uint32_t)))
			goto oom;
		if (!grow(env, (void **) &m->leaf_values, &mb->cap_leaves,
				  ((uint64_t) lbase + leaves) * K, sizeof(double)))
			goto oom;
	}
	if (t == 0)
	{
		m->tree_start[0] = 0;
		if (K > 1)
			m->leaf_start[0] = 0;
	}
	/* Emit in BFS order: node q of the queue becomes base + q; children adjacent. */
	{
		uint32_t	q,
					next = 1,
					leaf = 0;

		for (q = 0; q < count; q++)
		{
			const TrainNode *s = &tn[queue[q]];
			TreeNode   *o = &m->nodes[base + q];

			/* TreeSHAP's cover: the hessian sum (gbt) or weighted rows (CART). */
			m->cover[base + q] = m->algorithm == TREE_ALGO_GBT ? s->hess_sum : s->weight;
			if (s->left >= 0)
			{
				int			j = s->feature;
				int			nb = bins->n_bins[j];
				double		thr = s->bin >= nb - 1 ? DBL_MAX : bins->cuts[(size_t) j * 256 + s->bin];

				o->value = thr;
				o->feature = (uint32_t) j | (s->default_left ? TREE_NODE_DEFAULT_LEFT : 0);
				o->aux = next;
				next += 2;
				m->importance[j] += s->gain;
			}
			else
			{
				o->feature = TREE_NODE_LEAF;
				if (K > 1)
				{
					o->value = 0;
					o->aux = leaf;
					memcpy(m->leaf_values + (size_t) (lbase + leaf) * K,
						   leafvec + (size_t) queue[q] * K, sizeof(double) * K);
					leaf++;
				}
				else
				{
					o->value = s->value;
					o->aux = 0;
				}
			}
		}
	}
	ml_free(env, queue);
	mb->n_nodes = base + count;
	mb->n_leaves = lbase + leaves;
	m->n_trees = t + 1;
	m->tree_start[t + 1] = mb->n_nodes;
	if (K > 1)
		m->leaf_start[t + 1] = mb->n_leaves;
	return ML_OK;

oom:
	ml_free(env, queue);
	return ml_fail(err, ML_ERR_MEMORY, "out of memory assembling the tree model");
}

bool
tm_finish(const MlEnv *env, TreeModel *m, MlError *err)
{
	uint32_t	t;

	ml_free(env, m->tree_depth);
	m->tree_depth = ml_calloc(env, m->n_trees ? m->n_trees : 1, sizeof(uint32_t));
	if (!m->tree_depth)
	{
		ml_fail(err, ML_ERR_MEMORY, "out of memory for tree depths");
		return false;
	}
	for (t = 0; t < m->n_trees; t++)
	{
		uint32_t	s = m->tree_start[t],
					e = m->tree_start[t + 1],
					k,
					maxd = 0;
		uint32_t   *depth;

		depth = ml_calloc(env, e - s, sizeof(uint32_t));
		if (!depth)
		{
			ml_fail(err, ML_ERR_MEMORY, "out of memory for tree depths");
			return false;
		}
		/* Children come after parents: one forward pass gives the longest path. */
		for (k = 0; k < e - s; k++)
		{
			const TreeNode *nd = &m->nodes[s + k];

			if (!(nd->feature & TREE_NODE_LEAF))
			{
				uint32_t	c = nd->aux;

				if (depth[c] < depth[k] + 1)
					depth[c] = depth[k] + 1;
				if (depth[c + 1] < depth[k] + 1)
					depth[c + 1] = depth[k] + 1;
			}
			else if (depth[k] > maxd)
				maxd = depth[k];
		}
		ml_free(env, depth);
		m->tree_depth[t] = maxd;
	}
	if (!tree_fast_build(env, m))
	{
		ml_fail(err, ML_ERR_MEMORY, "out of memory for the scoring layout");
		return false;
	}
	return true;
}
