/*
 * tree_json_import.c: mlpipe's own tree export read back. trees_export_json
 * (the "model" member of mlpipe.export) writes every number with the digits
 * it needs to read back exactly, so reading it gives the same doubles and the
 * same model: the same predictions, and with node covers (exported since
 * 0.4.0) the same explanations. What is read is checked as the artifact
 * codec checks an artifact (the model is written and read back through it),
 * so a hand-edited document cannot make an inconsistent model.
 */
#include "trees.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define JI_MAX_TREES	1000000
#define JI_MAX_NODES	100000000

/* What a read collects before the codec round trip. */
typedef struct JiBuild
{
	const MlEnv *env;
	MlError    *err;
	TreeModel	tm;
	uint32_t	n_nodes;
	uint32_t	n_leaves;
	bool		has_cover;
} JiBuild;

/* ML_ERR_DATA "mlpipe export: <path>: <message>". */
static MlStatus
bad(MlError *err, const char *path, const char *fmt,...)
	__attribute__((format(printf, 3, 4)));

static MlStatus
bad(MlError *err, const char *path, const char *fmt,...)
{
	char		msg[400];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return ml_fail(err, ML_ERR_DATA, "mlpipe export: %s: %s", path, msg);
}

/* A number member (null is NaN when nullable); ML_ERR_DATA when missing or mistyped. */
static MlStatus
num(const cJSON *obj, const char *path, const char *name, bool nullable, double *out, MlError *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

	if (v != NULL && nullable && cJSON_IsNull(v))
	{
		*out = NAN;
		return ML_OK;
	}
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
		return bad(err, path, "\"%s\" must be a finite number", name);
	*out = v->valuedouble;
	return ML_OK;
}

/* An integer member in [lo, hi]. */
static MlStatus
count(const cJSON *obj, const char *path, const char *name, double lo, double hi, uint32_t *out,
	  MlError *err)
{
	double		v = 0;
	MlStatus	st = num(obj, path, name, false, &v, err);

	if (st != ML_OK)
		return st;
	if (v != floor(v) || v < lo || v > hi)
		return bad(err, path, "\"%s\" must be an integer in [%.0f, %.0f]", name, lo, hi);
	*out = (uint32_t) (int64_t) v;
	return ML_OK;
}

/* n numbers of array a (named name at path) into out. */
static MlStatus
array_numbers(const cJSON *a, const char *path, const char *name, uint32_t n, double *out,
			  MlError *err)
{
	const cJSON *it;
	uint32_t	i = 0;

	if (!cJSON_IsArray(a) || (uint32_t) cJSON_GetArraySize(a) != n)
		return bad(err, path, "\"%s\" must be an array of %u numbers", name, n);
	cJSON_ArrayForEach(it, a)
	{
		if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble))
			return bad(err, path, "\"%s\"[%u] must be a finite number", name, i);
		out[i++] = it->valuedouble;
	}
	return ML_OK;
}

/* n numbers of an array member into out. */
static MlStatus
numbers(const cJSON *obj, const char *path, const char *name, uint32_t n, double *out, MlError *err)
{
	return array_numbers(cJSON_GetObjectItemCaseSensitive(obj, name), path, name, n, out, err);
}

/* The header: algorithm, task, objective, counts and the model-wide numbers. */
static MlStatus
read_header(JiBuild *b, const cJSON *doc)
{
	static const char *const algos[] = {"decision_tree", "random_forest", "gbt"};
	static const char *const objectives[] = {"", "binary:logistic", "multi:softmax", "reg:squarederror"};
	const cJSON *algo = cJSON_GetObjectItemCaseSensitive(doc, "algorithm"),
			   *task = cJSON_GetObjectItemCaseSensitive(doc, "task"),
			   *obj = cJSON_GetObjectItemCaseSensitive(doc, "objective");
	TreeModel  *m = &b->tm;
	int			i;
	MlStatus	st;

	if (!cJSON_IsString(algo) || !cJSON_IsString(task))
		return bad(b->err, "model", "\"algorithm\" and \"task\" must be strings");
	for (i = 0; i < 3 && strcmp(algo->valuestring, algos[i]) != 0; i++)
		;
	if (i == 3)
		return ml_fail(b->err, ML_ERR_PARAM, "mlpipe export: model.algorithm \"%.40s\" is not a tree model",
					   algo->valuestring);
	m->algorithm = (TreeAlgorithm) i;
	if (strcmp(task->valuestring, "classification") != 0 && strcmp(task->valuestring, "regression") != 0)
		return bad(b->err, "model.task", "must be classification or regression");
	m->task = strcmp(task->valuestring, "classification") == 0 ? ML_TASK_CLASSIFY : ML_TASK_REGRESS;
	m->objective = TREE_OBJ_DEFAULT;
	if (obj != NULL)
	{
		for (i = 1; i < 4 && !(cJSON_IsString(obj) && strcmp(obj->valuestring, objectives[i]) == 0); i++)
			;
		if (i == 4)
			return bad(b->err, "model.objective", "is not binary:logistic, multi:softmax or reg:squarederror");
		m->objective = (TreeObjective) i;
	}
	if ((st = count(doc, "model", "n_features", 1, ML_MAX_FEATURES, &m->n_features, b->err)) != ML_OK ||
		(st = count(doc, "model", "n_classes", 0, ML_MAX_CLASSES, &m->n_classes, b->err)) != ML_OK ||
		(st = count(doc, "model", "n_trees", 1, JI_MAX_TREES, &m->n_trees, b->err)) != ML_OK)
		return st;
	m->oob_score = NAN;
	m->valid_loss = NAN;
	m->best_iteration = -1;
	m->trees_per_round = 1;
	m->leaf_width = m->algorithm != TREE_ALGO_GBT && m->task == ML_TASK_CLASSIFY ? m->n_classes : 1;
	if (m->algorithm == TREE_ALGO_GBT)
	{
		double		best = 0;

		if ((st = count(doc, "model", "trees_per_round", 1, ML_MAX_CLASSES, &m->trees_per_round, b->err)) != ML_OK ||
			(st = num(doc, "model", "best_iteration", false, &best, b->err)) != ML_OK ||
			(st = num(doc, "model", "learning_rate", false, &m->learning_rate, b->err)) != ML_OK ||
			(st = num(doc, "model", "validation_loss", true, &m->valid_loss, b->err)) != ML_OK)
			return st;
		if (best != floor(best) || best < -1 || best > JI_MAX_TREES)
			return bad(b->err, "model.best_iteration", "must be an integer >= -1");
		m->best_iteration = (int32_t) best;
		m->base_score = ml_alloc(b->env, sizeof(double) * m->trees_per_round);
		if (m->base_score == NULL)
			return ml_fail(b->err, ML_ERR_MEMORY, "out of memory reading an mlpipe export");
		if ((st = numbers(doc, "model", "base_score", m->trees_per_round, m->base_score, b->err)) != ML_OK)
			return st;
	}
	else if ((st = num(doc, "model", "oob_score", true, &m->oob_score, b->err)) != ML_OK)
		return st;
	m->importance = ml_alloc(b->env, sizeof(double) * m->n_features);
	if (m->importance == NULL)
		return ml_fail(b->err, ML_ERR_MEMORY, "out of memory reading an mlpipe export");
	return numbers(doc, "model", "feature_importance", m->n_features, m->importance, b->err);
}

/* Grows the node (and cover, leaf table) arrays to hold `need` nodes and leaves. */
static MlStatus
grow(JiBuild *b, uint32_t need)
{
	TreeModel  *m = &b->tm;
	TreeNode   *nodes = ml_alloc(b->env, sizeof(TreeNode) * (size_t) need);
	double	   *cover = ml_alloc(b->env, sizeof(double) * (size_t) need);
	double	   *leaves = m->leaf_width > 1 ? ml_alloc(b->env, sizeof(double) * (size_t) need * m->leaf_width) : NULL;

	if (!nodes || !cover || (m->leaf_width > 1 && !leaves))
	{
		ml_free(b->env, nodes);
		ml_free(b->env, cover);
		ml_free(b->env, leaves);
		return ml_fail(b->err, ML_ERR_MEMORY, "out of memory reading an mlpipe export");
	}
	if (b->n_nodes)
	{
		memcpy(nodes, m->nodes, sizeof(TreeNode) * b->n_nodes);
		memcpy(cover, m->cover, sizeof(double) * b->n_nodes);
		if (leaves)
			memcpy(leaves, m->leaf_values, sizeof(double) * (size_t) b->n_leaves * m->leaf_width);
	}
	ml_free(b->env, m->nodes);
	ml_free(b->env, m->cover);
	ml_free(b->env, m->leaf_values);
	m->nodes = nodes;
	m->cover = cover;
	m->leaf_values = leaves;
	return ML_OK;
}

/* The feature index of a node: a name of feature_names, or a number. */
static MlStatus
node_feature(JiBuild *b, const cJSON *f, const char *path, const char *const *names, uint32_t *out)
{
	uint32_t	j;

	if (cJSON_IsString(f) && names != NULL)
		for (j = 0; j < b->tm.n_features; j++)
			if (strcmp(names[j], f->valuestring) == 0)
			{
				*out = j;
				return ML_OK;
			}
	if (cJSON_IsNumber(f) && f->valuedouble == floor(f->valuedouble) && f->valuedouble >= 0 &&
		f->valuedouble < b->tm.n_features)
	{
		*out = (uint32_t) f->valuedouble;
		return ML_OK;
	}
	return bad(b->err, path, "\"feature\" is not one of the model's features");
}

/* One node of tree t (k: its index in the tree, n: the tree's node count). */
static MlStatus
read_node(JiBuild *b, const cJSON *nd, uint32_t t, uint32_t k, uint32_t n, const char *const *names)
{
	char		path[80];
	TreeModel  *m = &b->tm;
	TreeNode   *o = &m->nodes[b->n_nodes];
	const cJSON *leaf = cJSON_GetObjectItemCaseSensitive(nd, "leaf");
	const cJSON *cover = cJSON_GetObjectItemCaseSensitive(nd, "cover");
	uint32_t	id;
	MlStatus	st;

	snprintf(path, sizeof(path), "model.trees[%u].nodes[%u]", t, k);
	if ((st = count(nd, path, "id", k, k, &id, b->err)) != ML_OK)
		return st;
	if ((cover != NULL) != b->has_cover)
		return bad(b->err, path, "\"cover\" must be on every node or on none");
	if (cover != NULL && (st = num(nd, path, "cover", false, &m->cover[b->n_nodes], b->err)) != ML_OK)
		return st;
	if (leaf != NULL)
	{
		o->feature = TREE_NODE_LEAF;
		o->value = 0;
		o->aux = 0;
		if (m->leaf_width > 1)
		{
			/* A class distribution: the leaf's row of its tree's leaf table. */
			if ((st = array_numbers(leaf, path, "leaf", m->leaf_width,
									m->leaf_values + (size_t) b->n_leaves * m->leaf_width,
									b->err)) != ML_OK)
				return st;
			o->aux = b->n_leaves - m->leaf_start[t];
		}
		else if ((st = num(nd, path, "leaf", false, &o->value, b->err)) != ML_OK)
			return st;
		b->n_leaves++;
	}
	else
	{
		const cJSON *missing = cJSON_GetObjectItemCaseSensitive(nd, "missing");
		uint32_t	f = 0,
					left = 0,
					right;

		if ((st = node_feature(b, cJSON_GetObjectItemCaseSensitive(nd, "feature"), path, names, &f)) != ML_OK ||
			(st = num(nd, path, "threshold", false, &o->value, b->err)) != ML_OK ||
			(st = count(nd, path, "left", k + 1, (double) n - 2, &left, b->err)) != ML_OK ||
			(st = count(nd, path, "right", left + 1, left + 1, &right, b->err)) != ML_OK)
			return st;
		if (!cJSON_IsString(missing) ||
			(strcmp(missing->valuestring, "left") != 0 && strcmp(missing->valuestring, "right") != 0))
			return bad(b->err, path, "\"missing\" must be \"left\" or \"right\"");
		o->feature = f | (strcmp(missing->valuestring, "left") == 0 ? TREE_NODE_DEFAULT_LEFT : 0);
		o->aux = left;
	}
	b->n_nodes++;
	return ML_OK;
}

/* Every tree's nodes, in order. */
static MlStatus
read_trees(JiBuild *b, const cJSON *doc, const char *const *names)
{
	const cJSON *trees = cJSON_GetObjectItemCaseSensitive(doc, "trees"),
			   *tree,
			   *nd;
	TreeModel  *m = &b->tm;
	uint32_t	t = 0,
				total = 0;
	MlStatus	st;

	if (!cJSON_IsArray(trees) || (uint32_t) cJSON_GetArraySize(trees) != m->n_trees)
		return bad(b->err, "model.trees", "must be an array of n_trees trees");
	cJSON_ArrayForEach(tree, trees)
	{
		const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(tree, "nodes");
		int			n = cJSON_IsArray(nodes) ? cJSON_GetArraySize(nodes) : 0;

		if (n < 1 || (double) total + n > JI_MAX_NODES)
			return bad(b->err, "model.trees", "tree %u has no nodes, or the trees too many", t);
		total += (uint32_t) n;
		t++;
	}
	m->tree_start = ml_alloc(b->env, sizeof(uint32_t) * (m->n_trees + 1));
	m->leaf_start = m->leaf_width > 1 ? ml_alloc(b->env, sizeof(uint32_t) * (m->n_trees + 1)) : NULL;
	if (!m->tree_start || (m->leaf_width > 1 && !m->leaf_start))
		return ml_fail(b->err, ML_ERR_MEMORY, "out of memory reading an mlpipe export");
	if ((st = grow(b, total)) != ML_OK)
		return st;
	/* Covers: on every node of every tree, or on none (the first node says which). */
	nd = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(trees, 0), "nodes"), 0);
	b->has_cover = cJSON_GetObjectItemCaseSensitive(nd, "cover") != NULL;
	t = 0;
	cJSON_ArrayForEach(tree, trees)
	{
		const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(tree, "nodes");
		uint32_t	k = 0,
					n = (uint32_t) cJSON_GetArraySize(nodes);

		m->tree_start[t] = b->n_nodes;
		if (m->leaf_start)
			m->leaf_start[t] = b->n_leaves;
		cJSON_ArrayForEach(nd, nodes)
		{
			if (!cJSON_IsObject(nd))
				return bad(b->err, "model.trees", "tree %u node %u is not an object", t, k);
			if ((st = read_node(b, nd, t, k, n, names)) != ML_OK)
				return st;
			k++;
		}
		t++;
	}
	m->tree_start[m->n_trees] = b->n_nodes;
	if (m->leaf_start)
		m->leaf_start[m->n_trees] = b->n_leaves;
	if (!b->has_cover)
	{
		ml_free(b->env, m->cover);
		m->cover = NULL;
	}
	return ML_OK;
}

/* Writes the collected model with the codec and reads it back into out (the codec's checks). */
static MlStatus
codec_round_trip(JiBuild *b, TreeModel *out)
{
	MlBuf		buf;
	MlReader	r;
	bool		ok;

	ml_buf_init(&buf, b->env);
	trees_write(&buf, &b->tm);
	if (buf.failed)
	{
		ml_free(b->env, buf.data);
		return ml_fail(b->err, ML_ERR_MEMORY, "out of memory reading an mlpipe export");
	}
	ml_rd_init(&r, buf.data, buf.len, b->env, b->err);
	ok = trees_read(&r, b->env, out);
	ml_free(b->env, buf.data);
	if (!ok)
	{
		char		msg[sizeof(b->err->msg)];

		snprintf(msg, sizeof(msg), "%s", b->err->msg);
		b->err->code = ML_OK;
		return bad(b->err, "model", "%s", msg);
	}
	return ML_OK;
}

MlStatus
trees_import_json(const MlEnv *env, const cJSON *doc, const char *const *feature_names,
				  uint32_t n_names, TreeModel *out, MlError *err)
{
	JiBuild		b;
	MlStatus	st;

	memset(out, 0, sizeof(*out));
	memset(&b, 0, sizeof(b));
	b.env = env;
	b.err = err;
	if (!cJSON_IsObject(doc))
		return bad(err, "model", "is not a JSON object");
	if ((st = read_header(&b, doc)) == ML_OK && feature_names != NULL && n_names != b.tm.n_features)
		st = bad(err, "model.n_features", "the model has %u features, the document names %u",
				 b.tm.n_features, n_names);
	if (st == ML_OK &&
		(st = read_trees(&b, doc, feature_names)) == ML_OK)
		st = codec_round_trip(&b, out);
	trees_model_free(env, &b.tm);
	return st;
}
