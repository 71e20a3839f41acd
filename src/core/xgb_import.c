/*
 * xgb_import.c: reads an XGBoost 1.x JSON model into an mlpipe gbt model
 * (see xgb_import.h for what is supported and how splits are converted).
 *
 * The document is checked as it is read: every member the model needs must
 * be there with the right type, per-node arrays must have num_nodes
 * entries, the nodes reachable from the root must form a tree (children in
 * range, no node reached twice), features must be below num_feature and
 * numbers finite. Each failure names the JSON path. The trees are then laid
 * out breadth first (children adjacent, after their parent), written with
 * the tree codec and read back, so the result is exactly what an artifact
 * holds and the codec's own checks apply too.
 */
#include "xgb_import.h"

#include <float.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explain.h"			/* TREESHAP_MAX_DEPTH */

#define XGB_TREES "learner.gradient_booster.model.trees"

/* ML_ERR_DATA (or code) with "XGBoost model: <path>: <what>". */
static MlStatus
bad(MlError *err, MlStatus code, const char *path, const char *fmt,...)
	__attribute__((format(printf, 4, 5)));

static MlStatus
bad(MlError *err, MlStatus code, const char *path, const char *fmt,...)
{
	char		what[300];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return ml_fail(err, code, "XGBoost model: %s: %s", path, what);
}

/* Member name of obj, which must be an object of the given cJSON type mask. */
static MlStatus
member(const cJSON *obj, const char *path, const char *name, int type, const cJSON **out,
	   MlError *err)
{
	const cJSON *it = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, name) : NULL;
	char		p[200];

	*out = NULL;
	snprintf(p, sizeof(p), "%s%s%s", path, *path ? "." : "", name);
	if (!it)
		return bad(err, ML_ERR_DATA, p, "missing");
	if (!(it->type & type))
		return bad(err, ML_ERR_DATA, p, "has the wrong type");
	*out = it;
	return ML_OK;
}

/* An integer written as a string ("10"), as XGBoost writes model params. */
static MlStatus
int_param(const cJSON *obj, const char *path, const char *name, long lo, long hi, long *out,
		  MlError *err)
{
	const cJSON *it = NULL;
	MlStatus	st = member(obj, path, name, cJSON_String | cJSON_Number, &it, err);
	char	   *end;
	char		p[200];
	long		v;

	if (st != ML_OK)
		return st;
	snprintf(p, sizeof(p), "%s.%s", path, name);
	if (cJSON_IsNumber(it))
	{
		v = (long) it->valuedouble;
		if ((double) v != it->valuedouble)
			return bad(err, ML_ERR_DATA, p, "is not an integer");
	}
	else
	{
		v = strtol(it->valuestring, &end, 10);
		if (end == it->valuestring || *end != '\0')
			return bad(err, ML_ERR_DATA, p, "\"%.40s\" is not an integer", it->valuestring);
	}
	if (v < lo || v > hi)
		return bad(err, ML_ERR_DATA, p, "%ld is out of range [%ld, %ld]", v, lo, hi);
	*out = v;
	return ML_OK;
}

/*
 * A numeric array of exactly n entries (bool entries read as 0/1) into
 * out[n]. An integer array (integral) rejects fractions.
 */
static MlStatus
num_array(const cJSON *tree, const char *tpath, const char *name, long n, bool integral,
		  double *out, MlError *err)
{
	const cJSON *arr = NULL,
			   *it;
	MlStatus	st = member(tree, tpath, name, cJSON_Array, &arr, err);
	long		i = 0;
	char		p[200];

	if (st != ML_OK)
		return st;
	for (it = arr->child; it; it = it->next, i++)
	{
		snprintf(p, sizeof(p), "%s.%s[%ld]", tpath, name, i);
		if (i >= n)
			return bad(err, ML_ERR_DATA, p, "more entries than num_nodes (%ld)", n);
		if (cJSON_IsBool(it))
			out[i] = cJSON_IsTrue(it) ? 1 : 0;
		else if (cJSON_IsNumber(it) && isfinite(it->valuedouble))
			out[i] = it->valuedouble;
		else
			return bad(err, ML_ERR_DATA, p, "is not a finite number");
		if (integral && out[i] != floor(out[i]))
			return bad(err, ML_ERR_DATA, p, "is not an integer");
	}
	if (i != n)
	{
		snprintf(p, sizeof(p), "%s.%s", tpath, name);
		return bad(err, ML_ERR_DATA, p, "has %ld entries, num_nodes is %ld", i, n);
	}
	return ML_OK;
}

/*
 * The mlpipe threshold for XGBoost's split condition t: (float) x < t
 * exactly when x <= the returned double. The doubles rounding below t are
 * those below the midpoint between t and the float before it; the midpoint
 * itself rounds to whichever of the two has an even mantissa.
 */
static double
threshold_from_float(float t)
{
	float		prev = nextafterf(t, -INFINITY);
	double		lo,
				mid;
	bool		prev_even;

	if (isinf(prev))
	{
		/* t = -FLT_MAX: the float "before" it is 2^128 in magnitude (-inf) */
		lo = -ldexp(1.0, 128);
		prev_even = true;
	}
	else
	{
		uint32_t	bits;

		memcpy(&bits, &prev, sizeof(bits));
		lo = prev;
		prev_even = (bits & 1) == 0;
	}
	mid = (lo + (double) t) / 2;	/* exact: floats have 24-bit mantissas */
	return prev_even ? mid : nextafter(mid, -INFINITY);
}

/* What one XGBoost tree holds, as C arrays (num_nodes each). */
typedef struct XgbTree
{
	long		n;
	double	   *left;
	double	   *right;
	double	   *feature;
	double	   *cond;
	double	   *default_left;
	double	   *hess;
	double	   *gain;			/* loss_changes, or NULL */
	double	   *split_type;		/* or NULL */
} XgbTree;

/* What the whole import holds while it runs. */
typedef struct XgbBuild
{
	const MlEnv *env;
	MlError    *err;
	long		n_features;
	TreeModel	tm;				/* being assembled (env arrays) */
	double	   *cover;
	uint32_t	cap_nodes;
	uint32_t	n_nodes;
	int32_t    *queue;			/* BFS order of XGBoost node ids */
	uint8_t    *seen;
	uint32_t   *depth;
	long		cap_tree;		/* size of queue/seen/depth */
} XgbBuild;

/* Grows b's node arrays to hold need nodes. */
static bool
grow_nodes(XgbBuild *b, uint64_t need)
{
	uint64_t	cap = b->cap_nodes ? b->cap_nodes : 256;
	TreeNode   *nn;
	double	   *nc;

	if (need <= b->cap_nodes)
		return true;
	if (need > UINT32_MAX / 4)
		return false;
	while (cap < need)
		cap *= 2;
	nn = ml_alloc(b->env, sizeof(TreeNode) * cap);
	nc = ml_alloc(b->env, sizeof(double) * cap);
	if (!nn || !nc)
	{
		ml_free(b->env, nn);
		ml_free(b->env, nc);
		return false;
	}
	if (b->n_nodes)
	{
		memcpy(nn, b->tm.nodes, sizeof(TreeNode) * b->n_nodes);
		memcpy(nc, b->cover, sizeof(double) * b->n_nodes);
	}
	ml_free(b->env, b->tm.nodes);
	ml_free(b->env, b->cover);
	b->tm.nodes = nn;
	b->cover = nc;
	b->cap_nodes = (uint32_t) cap;
	return true;
}

/* Reads the per-node arrays of one tree. */
static MlStatus
read_tree_arrays(XgbBuild *b, const cJSON *tree, const char *tpath, XgbTree *xt)
{
	const cJSON *tp = NULL;
	long		n = 0;
	MlStatus	st;
	double	  **arrs[] = {&xt->left, &xt->right, &xt->feature, &xt->cond, &xt->default_left,
	&xt->hess, &xt->gain, &xt->split_type};
	size_t		i;

	memset(xt, 0, sizeof(*xt));
	if ((st = member(tree, tpath, "tree_param", cJSON_Object, &tp, b->err)) != ML_OK)
		return st;
	{
		char		p[200];

		snprintf(p, sizeof(p), "%s.tree_param", tpath);
		if ((st = int_param(tp, p, "num_nodes", 1, 1L << 26, &n, b->err)) != ML_OK)
			return st;
	}
	xt->n = n;
	for (i = 0; i < sizeof(arrs) / sizeof(arrs[0]); i++)
	{
		*arrs[i] = ml_alloc(b->env, sizeof(double) * (size_t) n);
		if (!*arrs[i])
			return ml_fail(b->err, ML_ERR_MEMORY, "out of memory importing an XGBoost model");
	}
	if ((st = num_array(tree, tpath, "left_children", n, true, xt->left, b->err)) != ML_OK ||
		(st = num_array(tree, tpath, "right_children", n, true, xt->right, b->err)) != ML_OK ||
		(st = num_array(tree, tpath, "split_indices", n, true, xt->feature, b->err)) != ML_OK ||
		(st = num_array(tree, tpath, "split_conditions", n, false, xt->cond, b->err)) != ML_OK ||
		(st = num_array(tree, tpath, "default_left", n, true, xt->default_left, b->err)) != ML_OK ||
		(st = num_array(tree, tpath, "sum_hessian", n, false, xt->hess, b->err)) != ML_OK)
		return st;
	/*
	 * Optional: gains for the importances (informational, so ignored unless
	 * one per node), split types to refuse categorical splits.
	 */
	if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(tree, "loss_changes")) == n &&
		(st = num_array(tree, tpath, "loss_changes", n, false, xt->gain, b->err)) != ML_OK)
		return st;
	if (cJSON_GetObjectItemCaseSensitive(tree, "split_type") &&
		(st = num_array(tree, tpath, "split_type", n, true, xt->split_type, b->err)) != ML_OK)
		return st;
	if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(tree, "loss_changes")) != n)
		memset(xt->gain, 0, sizeof(double) * (size_t) n);
	if (!cJSON_GetObjectItemCaseSensitive(tree, "split_type"))
		memset(xt->split_type, 0, sizeof(double) * (size_t) n);
	return ML_OK;
}

static void
free_tree_arrays(const MlEnv *env, XgbTree *xt)
{
	ml_free(env, xt->left);
	ml_free(env, xt->right);
	ml_free(env, xt->feature);
	ml_free(env, xt->cond);
	ml_free(env, xt->default_left);
	ml_free(env, xt->hess);
	ml_free(env, xt->gain);
	ml_free(env, xt->split_type);
}

/* Checks one reachable split node i of a tree and queues its children. */
static MlStatus
check_split(XgbBuild *b, const XgbTree *xt, const char *tpath, long i, uint32_t *tail)
{
	char		p[200];
	double		l = xt->left[i],
				r = xt->right[i],
				f = xt->feature[i];
	uint32_t	dep = b->depth[i] + 1;

	if (l < 0 || l >= xt->n || l == i)
	{
		snprintf(p, sizeof(p), "%s.left_children[%ld]", tpath, i);
		return bad(b->err, ML_ERR_DATA, p, "child %.0f is out of range [0, %ld) or the node itself",
				   l, xt->n);
	}
	if (r < 0 || r >= xt->n || r == i || r == l)
	{
		snprintf(p, sizeof(p), "%s.right_children[%ld]", tpath, i);
		return bad(b->err, ML_ERR_DATA, p,
				   "child %.0f is out of range [0, %ld), the node itself or the left child",
				   r, xt->n);
	}
	if (f < 0 || f >= b->n_features)
	{
		snprintf(p, sizeof(p), "%s.split_indices[%ld]", tpath, i);
		return bad(b->err, ML_ERR_DATA, p, "feature %.0f is out of range [0, %ld)", f, b->n_features);
	}
	if (xt->split_type[i] != 0)
	{
		snprintf(p, sizeof(p), "%s.split_type[%ld]", tpath, i);
		return bad(b->err, ML_ERR_PARAM, p, "categorical splits are not supported");
	}
	if (!isfinite((float) xt->cond[i]))
	{
		snprintf(p, sizeof(p), "%s.split_conditions[%ld]", tpath, i);
		return bad(b->err, ML_ERR_DATA, p, "%g is not a finite float", xt->cond[i]);
	}
	if (dep > TREESHAP_MAX_DEPTH)
	{
		snprintf(p, sizeof(p), "%s.left_children[%ld]", tpath, i);
		return bad(b->err, ML_ERR_DATA, p, "the tree is deeper than %d levels", TREESHAP_MAX_DEPTH);
	}
	if (b->seen[(long) l] || b->seen[(long) r])
	{
		snprintf(p, sizeof(p), "%s.%s_children[%ld]", tpath, b->seen[(long) l] ? "left" : "right", i);
		return bad(b->err, ML_ERR_DATA, p, "node %.0f is reached twice (a cycle or a shared node)",
				   b->seen[(long) l] ? l : r);
	}
	b->seen[(long) l] = b->seen[(long) r] = 1;
	b->depth[(long) l] = b->depth[(long) r] = dep;
	b->queue[(*tail)++] = (int32_t) l;
	b->queue[(*tail)++] = (int32_t) r;
	return ML_OK;
}

/* Appends one XGBoost tree (document index ti) to the model, breadth first. */
static MlStatus
append_tree(XgbBuild *b, const cJSON *tree, long ti)
{
	char		tpath[120],
				p[200];
	XgbTree		xt;
	MlStatus	st;
	uint32_t	head = 0,
				tail = 0,
				base = b->n_nodes,
				q,
				next = 1;

	snprintf(tpath, sizeof(tpath), XGB_TREES "[%ld]", ti);
	if (!cJSON_IsObject(tree))
		return bad(b->err, ML_ERR_DATA, tpath, "is not an object");
	st = read_tree_arrays(b, tree, tpath, &xt);
	if (st != ML_OK)
		goto done;
	if (xt.n > b->cap_tree)
	{
		ml_free(b->env, b->queue);
		ml_free(b->env, b->seen);
		ml_free(b->env, b->depth);
		b->queue = ml_alloc(b->env, sizeof(int32_t) * (size_t) xt.n);
		b->seen = ml_alloc(b->env, (size_t) xt.n);
		b->depth = ml_alloc(b->env, sizeof(uint32_t) * (size_t) xt.n);
		b->cap_tree = xt.n;
		if (!b->queue || !b->seen || !b->depth)
		{
			b->cap_tree = 0;
			st = ml_fail(b->err, ML_ERR_MEMORY, "out of memory importing an XGBoost model");
			goto done;
		}
	}
	memset(b->seen, 0, (size_t) xt.n);
	b->seen[0] = 1;
	b->depth[0] = 0;
	b->queue[tail++] = 0;
	/* pass 1: walk from the root, checking; the queue becomes the BFS order */
	while (head < tail)
	{
		long		i = b->queue[head++];

		if (xt.left[i] == -1 && xt.right[i] == -1)
		{
			if (!isfinite((float) xt.cond[i]))
			{
				snprintf(p, sizeof(p), "%s.split_conditions[%ld]", tpath, i);
				st = bad(b->err, ML_ERR_DATA, p, "leaf value %g is not a finite float", xt.cond[i]);
				goto done;
			}
		}
		else if ((st = check_split(b, &xt, tpath, i, &tail)) != ML_OK)
			goto done;
		if (!(xt.hess[i] >= 0) || !isfinite((float) xt.hess[i]))
		{
			snprintf(p, sizeof(p), "%s.sum_hessian[%ld]", tpath, i);
			st = bad(b->err, ML_ERR_DATA, p, "%g is not a finite float >= 0", xt.hess[i]);
			goto done;
		}
	}
	if (!grow_nodes(b, (uint64_t) base + tail))
	{
		st = ml_fail(b->err, ML_ERR_MEMORY, "out of memory importing an XGBoost model");
		goto done;
	}
	/* pass 2: emit; queue position q becomes node base + q, children adjacent */
	for (q = 0; q < tail; q++)
	{
		long		i = b->queue[q];
		TreeNode   *o = &b->tm.nodes[base + q];

		b->cover[base + q] = (double) (float) xt.hess[i];
		if (xt.left[i] == -1)
		{
			o->value = (double) (float) xt.cond[i];
			o->feature = TREE_NODE_LEAF;
			o->aux = 0;
		}
		else
		{
			uint32_t	f = (uint32_t) xt.feature[i];

			o->value = threshold_from_float((float) xt.cond[i]);
			o->feature = f | (xt.default_left[i] != 0 ? TREE_NODE_DEFAULT_LEFT : 0);
			o->aux = next;
			next += 2;
			if (isfinite(xt.gain[i]) && xt.gain[i] > 0)
				b->tm.importance[f] += xt.gain[i];
		}
	}
	b->n_nodes = base + tail;
	st = ML_OK;
done:
	free_tree_arrays(b->env, &xt);
	return st;
}

/* Objective, classes and base margin from learner. */
static MlStatus
read_learner_params(XgbBuild *b, const cJSON *learner, XgbImport *out, long *n_class)
{
	const cJSON *obj = NULL,
			   *name = NULL,
			   *lmp = NULL,
			   *bs = NULL;
	MlStatus	st;
	TreeModel  *m = &b->tm;
	double		base;
	char	   *end;
	uint32_t	c;

	if ((st = member(learner, "learner", "objective", cJSON_Object, &obj, b->err)) != ML_OK ||
		(st = member(obj, "learner.objective", "name", cJSON_String, &name, b->err)) != ML_OK ||
		(st = member(learner, "learner", "learner_model_param", cJSON_Object, &lmp, b->err)) != ML_OK ||
		(st = int_param(lmp, "learner.learner_model_param", "num_feature", 1, ML_MAX_FEATURES,
						&b->n_features, b->err)) != ML_OK ||
		(st = int_param(lmp, "learner.learner_model_param", "num_class", 0, ML_MAX_CLASSES,
						n_class, b->err)) != ML_OK ||
		(st = member(lmp, "learner.learner_model_param", "base_score", cJSON_String | cJSON_Number,
					 &bs, b->err)) != ML_OK)
		return st;
	snprintf(out->objective, sizeof(out->objective), "%s", name->valuestring);
	m->algorithm = TREE_ALGO_GBT;
	m->n_features = (uint32_t) b->n_features;
	if (strcmp(name->valuestring, "binary:logistic") == 0)
	{
		m->task = ML_TASK_CLASSIFY;
		m->objective = TREE_OBJ_BINARY_LOGISTIC;
		m->n_classes = 2;
		m->trees_per_round = 1;
	}
	else if (strcmp(name->valuestring, "multi:softprob") == 0 ||
			 strcmp(name->valuestring, "multi:softmax") == 0)
	{
		if (*n_class < 2)
			return bad(b->err, ML_ERR_DATA, "learner.learner_model_param.num_class",
					   "%s needs num_class >= 2, got %ld", name->valuestring, *n_class);
		m->task = ML_TASK_CLASSIFY;
		m->objective = TREE_OBJ_MULTI_SOFTMAX;
		m->n_classes = (uint32_t) *n_class;
		m->trees_per_round = (uint32_t) *n_class;
	}
	else if (strcmp(name->valuestring, "reg:squarederror") == 0)
	{
		m->task = ML_TASK_REGRESS;
		m->objective = TREE_OBJ_REG_SQUAREDERROR;
		m->n_classes = 0;
		m->trees_per_round = 1;
	}
	else
		return bad(b->err, ML_ERR_PARAM, "learner.objective.name",
				   "objective \"%.60s\" is not supported (binary:logistic, multi:softprob, multi:softmax, reg:squarederror)",
				   name->valuestring);
	m->n_outputs = m->task == ML_TASK_CLASSIFY ? m->n_classes : 1;
	m->leaf_width = 1;
	if (cJSON_IsNumber(bs))
		base = bs->valuedouble;
	else
	{
		base = strtod(bs->valuestring, &end);
		if (end == bs->valuestring || *end != '\0')
			return bad(b->err, ML_ERR_DATA, "learner.learner_model_param.base_score",
					   "\"%.40s\" is not a number", bs->valuestring);
	}
	if (!isfinite((float) base))
		return bad(b->err, ML_ERR_DATA, "learner.learner_model_param.base_score",
				   "%g is not a finite float", base);
	m->base_score = ml_alloc(b->env, sizeof(double) * m->trees_per_round);
	m->importance = ml_calloc(b->env, m->n_features, sizeof(double));
	if (!m->base_score || !m->importance)
		return ml_fail(b->err, ML_ERR_MEMORY, "out of memory importing an XGBoost model");
	if (m->objective == TREE_OBJ_BINARY_LOGISTIC)
	{
		float		p = (float) base;

		if (!(p > 0 && p < 1))
			return bad(b->err, ML_ERR_DATA, "learner.learner_model_param.base_score",
					   "binary:logistic needs a base_score in (0, 1), got %g", base);
		/* XGBoost's ProbToMargin, in float as XGBoost computes it */
		base = (double) (-logf(1.0f / p - 1.0f));
	}
	else
		base = (double) (float) base;
	for (c = 0; c < m->trees_per_round; c++)
		m->base_score[c] = base;
	return ML_OK;
}

/* Optional learner.feature_names: kept when there is one per feature. */
static MlStatus
read_feature_names(XgbBuild *b, const cJSON *learner, XgbImport *out)
{
	const cJSON *names = cJSON_GetObjectItemCaseSensitive(learner, "feature_names"),
			   *it;
	long		i = 0;

	if (!cJSON_IsArray(names) || cJSON_GetArraySize(names) != b->n_features)
		return ML_OK;
	out->feature_names = ml_calloc(b->env, (size_t) b->n_features, sizeof(char *));
	if (!out->feature_names)
		return ml_fail(b->err, ML_ERR_MEMORY, "out of memory importing an XGBoost model");
	for (it = names->child; it; it = it->next, i++)
	{
		char		p[80];

		if (!cJSON_IsString(it) || strlen(it->valuestring) > ML_MAX_NAME_LEN)
		{
			snprintf(p, sizeof(p), "learner.feature_names[%ld]", i);
			return bad(b->err, ML_ERR_DATA, p, "is not a string of at most %d bytes",
					   ML_MAX_NAME_LEN);
		}
		out->feature_names[i] = ml_strdup(b->env, it->valuestring);
		if (!out->feature_names[i])
			return ml_fail(b->err, ML_ERR_MEMORY, "out of memory importing an XGBoost model");
	}
	return ML_OK;
}

/*
 * The document order of the trees so that tree t of the model scores class
 * t % K: class c's trees in document order, interleaved round by round.
 */
static MlStatus
tree_order(XgbBuild *b, const cJSON *gbm, long n_trees, long K, long *order)
{
	const cJSON *info = NULL,
			   *it;
	long		i = 0,
				c;
	long	   *count;
	MlStatus	st = member(gbm, "learner.gradient_booster.model", "tree_info", cJSON_Array, &info,
						   b->err);

	if (st != ML_OK)
		return st;
	if (cJSON_GetArraySize(info) != n_trees)
		return bad(b->err, ML_ERR_DATA, "learner.gradient_booster.model.tree_info",
				   "has %d entries for %ld trees", cJSON_GetArraySize(info), n_trees);
	count = ml_calloc(b->env, (size_t) K, sizeof(long));
	if (!count)
		return ml_fail(b->err, ML_ERR_MEMORY, "out of memory importing an XGBoost model");
	for (it = info->child; it; it = it->next, i++)
	{
		double		v = cJSON_IsNumber(it) ? it->valuedouble : -1;

		if (!(v >= 0 && v < K) || v != floor(v))
		{
			char		p[80];

			ml_free(b->env, count);
			snprintf(p, sizeof(p), "learner.gradient_booster.model.tree_info[%ld]", i);
			return bad(b->err, ML_ERR_DATA, p, "group is not an integer in [0, %ld)", K);
		}
		c = (long) v;
		if (count[c] >= n_trees / K)
		{
			char		p[80];

			ml_free(b->env, count);
			snprintf(p, sizeof(p), "learner.gradient_booster.model.tree_info[%ld]", i);
			return bad(b->err, ML_ERR_DATA, p, "class %ld has more trees than the others", c);
		}
		/* the r-th tree of class c goes to position r * K + c */
		order[count[c]++ * K + c] = i;
	}
	ml_free(b->env, count);
	return ML_OK;
}

/* The trees, in order, into b->tm; then the codec round trip into out. */
static MlStatus
read_trees(XgbBuild *b, const cJSON *gbm, XgbImport *out)
{
	const cJSON *trees = NULL,
			   *it,
			  **byidx = NULL;
	long		n_trees,
				K = b->tm.trees_per_round,
				i;
	long	   *order = NULL;
	MlStatus	st;

	if ((st = member(gbm, "learner.gradient_booster.model", "trees", cJSON_Array, &trees,
					 b->err)) != ML_OK)
		return st;
	n_trees = cJSON_GetArraySize(trees);
	if (n_trees < 1)
		return bad(b->err, ML_ERR_DATA, XGB_TREES, "the model has no trees");
	if (n_trees % K != 0)
		return bad(b->err, ML_ERR_DATA, XGB_TREES, "%ld trees is not a whole number of rounds of %ld classes",
				   n_trees, K);
	order = ml_alloc(b->env, sizeof(long) * (size_t) n_trees);
	byidx = ml_alloc(b->env, sizeof(cJSON *) * (size_t) n_trees);
	b->tm.tree_start = ml_alloc(b->env, sizeof(uint32_t) * ((size_t) n_trees + 1));
	if (!order || !byidx || !b->tm.tree_start)
	{
		st = ml_fail(b->err, ML_ERR_MEMORY, "out of memory importing an XGBoost model");
		goto done;
	}
	for (it = trees->child, i = 0; it; it = it->next, i++)
		byidx[i] = it;
	if ((st = tree_order(b, gbm, n_trees, K, order)) != ML_OK)
		goto done;
	for (i = 0; i < n_trees; i++)
	{
		b->tm.tree_start[i] = b->n_nodes;
		if ((st = append_tree(b, byidx[order[i]], order[i])) != ML_OK)
			goto done;
	}
	b->tm.tree_start[n_trees] = b->n_nodes;
	b->tm.n_trees = (uint32_t) n_trees;
	b->tm.best_iteration = (int32_t) (n_trees / K - 1);
	st = ML_OK;
done:
	ml_free(b->env, order);
	ml_free(b->env, byidx);
	return st;
}

/* Writes b->tm with the codec and reads it back into out->model. */
static MlStatus
codec_round_trip(XgbBuild *b, XgbImport *out)
{
	MlBuf		buf;
	MlReader	r;
	bool		ok;

	ml_buf_init(&buf, b->env);
	trees_write(&buf, &b->tm);
	if (buf.failed)
	{
		ml_free(b->env, buf.data);
		return ml_fail(b->err, ML_ERR_MEMORY, "out of memory importing an XGBoost model");
	}
	ml_rd_init(&r, buf.data, buf.len, b->env, b->err);
	ok = trees_read(&r, b->env, &out->model);
	ml_free(b->env, buf.data);
	if (!ok)
	{
		/* the checks above should leave nothing the codec refuses */
		b->err->code = ML_ERR_DATA;
		return ML_ERR_DATA;
	}
	return ML_OK;
}

MlStatus
xgb_import_cjson(const MlEnv *env, const cJSON *root, XgbImport *out, MlError *err)
{
	XgbBuild	b;
	const cJSON *learner = NULL,
			   *ver = NULL,
			   *gb = NULL,
			   *gname = NULL,
			   *gbm = NULL;
	long		n_class = 0;
	MlStatus	st;
	int			i;

	memset(out, 0, sizeof(*out));
	memset(&b, 0, sizeof(b));
	b.env = env;
	b.err = err;
	b.tm.oob_score = NAN;
	b.tm.valid_loss = NAN;
	b.tm.learning_rate = 1.0;	/* XGBoost's eta is not in the model; it is in the leaves */
	if (!cJSON_IsObject(root))
		return bad(err, ML_ERR_DATA, "(document)", "is not a JSON object");
	if ((st = member(root, "", "version", cJSON_Array, &ver, err)) != ML_OK)
		goto fail;
	for (i = 0; i < 3; i++)
	{
		const cJSON *v = cJSON_GetArrayItem(ver, i);

		if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 1000)
		{
			st = bad(err, ML_ERR_DATA, "version", "is not [major, minor, patch]");
			goto fail;
		}
		out->version[i] = (int) v->valuedouble;
	}
	if (out->version[0] != 1)
	{
		st = bad(err, ML_ERR_PARAM, "version", "XGBoost %d.%d.%d documents are not supported (1.x is)",
				 out->version[0], out->version[1], out->version[2]);
		goto fail;
	}
	if ((st = member(root, "", "learner", cJSON_Object, &learner, err)) != ML_OK ||
		(st = member(learner, "learner", "gradient_booster", cJSON_Object, &gb, err)) != ML_OK ||
		(st = member(gb, "learner.gradient_booster", "name", cJSON_String, &gname, err)) != ML_OK)
		goto fail;
	if (strcmp(gname->valuestring, "gbtree") != 0)
	{
		st = bad(err, ML_ERR_PARAM, "learner.gradient_booster.name",
				 "booster \"%.40s\" is not supported (gbtree is)", gname->valuestring);
		goto fail;
	}
	if ((st = member(gb, "learner.gradient_booster", "model", cJSON_Object, &gbm, err)) != ML_OK ||
		(st = read_learner_params(&b, learner, out, &n_class)) != ML_OK ||
		(st = read_feature_names(&b, learner, out)) != ML_OK ||
		(st = read_trees(&b, gbm, out)) != ML_OK ||
		(st = codec_round_trip(&b, out)) != ML_OK)
		goto fail;
	out->cover = b.cover;
	b.cover = NULL;
	/* The model keeps its own copy, so an artifact written from it has covers. */
	{
		size_t		n = out->model.tree_start[out->model.n_trees];

		out->model.cover = ml_alloc(env, sizeof(double) * (n ? n : 1));
		if (out->model.cover == NULL)
		{
			st = ml_fail(err, ML_ERR_MEMORY, "out of memory importing an XGBoost model");
			goto fail;
		}
		memcpy(out->model.cover, out->cover, sizeof(double) * n);
	}
	trees_model_free(env, &b.tm);
	ml_free(env, b.queue);
	ml_free(env, b.seen);
	ml_free(env, b.depth);
	return ML_OK;

fail:
	if (out->feature_names)
	{
		long		j;

		for (j = 0; j < b.n_features; j++)
			ml_free(env, out->feature_names[j]);
		ml_free(env, out->feature_names);
		out->feature_names = NULL;
	}
	trees_model_free(env, &b.tm);
	ml_free(env, b.cover);
	ml_free(env, b.queue);
	ml_free(env, b.seen);
	ml_free(env, b.depth);
	xgb_import_free(env, out);
	return st;
}

MlStatus
xgb_import_json(const MlEnv *env, const char *text, size_t len, XgbImport *out, MlError *err)
{
	cJSON	   *root;
	MlStatus	st;

	memset(out, 0, sizeof(*out));
	root = cJSON_ParseWithLength(text, len);
	if (!root)
		return ml_fail(err, ML_ERR_DATA, "XGBoost model: the document is not valid JSON");
	st = xgb_import_cjson(env, root, out, err);
	cJSON_Delete(root);
	return st;
}

void
xgb_import_free(const MlEnv *env, XgbImport *imp)
{
	uint32_t	j;

	if (imp->feature_names)
		for (j = 0; j < imp->model.n_features; j++)
			ml_free(env, imp->feature_names[j]);
	ml_free(env, imp->feature_names);
	ml_free(env, imp->cover);
	trees_model_free(env, &imp->model);
	memset(imp, 0, sizeof(*imp));
}
