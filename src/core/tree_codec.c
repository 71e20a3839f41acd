/*
 * tree_codec.c: the tree model's section payload, its validating reader and
 * the JSON export.
 *
 * Payload (little-endian):
 *   u8 version (2) | u8 has_cover (version 2 only) | u8 algorithm | u8 task | u8 objective
 *   u32 n_features | u32 n_classes | u32 leaf_width | u32 trees_per_round
 *   i32 best_iteration | f64 oob_score (NaN: none) | f64 valid_loss (NaN: none)
 *   f64 learning_rate | f64 base_score[gbt ? trees_per_round : 0]
 *   f64 importance[n_features]
 *   u32 n_trees, then per tree:
 *     u32 n_nodes | n_nodes x (f64 value | u32 feature | u32 aux)
 *     has_cover: n_nodes x f64 cover (TreeSHAP; finite, >= 0)
 *     leaf_width > 1: u32 n_leaves | n_leaves x leaf_width f64
 * The reader accepts exactly what the writer can produce: every count is
 * bounded by the bytes left, children point forward and inside the tree,
 * features exist, numbers are finite, class tables are distributions.
 * Version 1 (no has_cover byte, no covers) still reads, with cover NULL.
 */
#include "trees_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TREE_CODEC_VERSION 2

void
trees_write(MlBuf *b, const TreeModel *m)
{
	uint32_t	t,
				k;
	uint32_t	nbase = m->algorithm == TREE_ALGO_GBT ? m->trees_per_round : 0;

	ml_buf_put_u8(b, TREE_CODEC_VERSION);
	ml_buf_put_u8(b, m->cover != NULL ? 1 : 0);
	ml_buf_put_u8(b, (uint8_t) m->algorithm);
	ml_buf_put_u8(b, (uint8_t) m->task);
	ml_buf_put_u8(b, (uint8_t) m->objective);
	ml_buf_put_u32(b, m->n_features);
	ml_buf_put_u32(b, m->n_classes);
	ml_buf_put_u32(b, m->leaf_width);
	ml_buf_put_u32(b, m->trees_per_round);
	ml_buf_put_i32(b, m->best_iteration);
	ml_buf_put_f64(b, m->oob_score);
	ml_buf_put_f64(b, m->valid_loss);
	ml_buf_put_f64(b, m->learning_rate);
	ml_buf_put_f64s(b, m->base_score, nbase);
	ml_buf_put_f64s(b, m->importance, m->n_features);
	ml_buf_put_u32(b, m->n_trees);
	for (t = 0; t < m->n_trees; t++)
	{
		uint32_t	s = m->tree_start[t],
					e = m->tree_start[t + 1];

		ml_buf_put_u32(b, e - s);
		for (k = s; k < e; k++)
		{
			ml_buf_put_f64(b, m->nodes[k].value);
			ml_buf_put_u32(b, m->nodes[k].feature);
			ml_buf_put_u32(b, m->nodes[k].aux);
		}
		if (m->cover != NULL)
			ml_buf_put_f64s(b, m->cover + s, e - s);
		if (m->leaf_width > 1)
		{
			uint32_t	l0 = m->leaf_start[t],
						l1 = m->leaf_start[t + 1];

			ml_buf_put_u32(b, l1 - l0);
			ml_buf_put_f64s(b, m->leaf_values + (size_t) l0 * m->leaf_width,
							(size_t) (l1 - l0) * m->leaf_width);
		}
	}
}

static bool
corrupt(MlReader *r, const char *fmt, uint32_t a, uint32_t b)
{
	char		msg[256];

	snprintf(msg, sizeof(msg), fmt, a, b);
	ml_fail(r->err, ML_ERR_CORRUPT, "tree model corrupt: %s", msg);
	return false;
}

/* A double that may be NaN (meaning "none") but not infinite. */
static bool
rd_opt(MlReader *r, double *v, const char *what)
{
	if (!ml_rd_f64(r, v, what))
		return false;
	if (isinf(*v))
	{
		ml_fail(r->err, ML_ERR_CORRUPT, "tree model corrupt: %s is infinite", what);
		return false;
	}
	return true;
}

static bool
read_header(MlReader *r, TreeModel *m, bool *has_cover)
{
	uint8_t		ver,
				algo,
				task,
				obj;
	uint32_t	nbase;

	if (!ml_rd_u8(r, &ver, "tree codec version"))
		return false;
	if (ver != 1 && ver != TREE_CODEC_VERSION)
		return corrupt(r, "unknown tree codec version %u", ver, 0);
	*has_cover = false;
	if (ver >= 2)
	{
		uint8_t		hc;

		if (!ml_rd_u8(r, &hc, "cover flag"))
			return false;
		if (hc > 1)
			return corrupt(r, "cover flag %u is not 0 or 1", hc, 0);
		*has_cover = hc == 1;
	}
	if (!ml_rd_u8(r, &algo, "algorithm") ||
		!ml_rd_u8(r, &task, "task") || !ml_rd_u8(r, &obj, "objective"))
		return false;
	if (algo > TREE_ALGO_GBT)
		return corrupt(r, "unknown algorithm %u", algo, 0);
	if (task != ML_TASK_CLASSIFY && task != ML_TASK_REGRESS)
		return corrupt(r, "unknown task %u", task, 0);
	if (obj > TREE_OBJ_REG_SQUAREDERROR)
		return corrupt(r, "unknown objective %u", obj, 0);
	m->algorithm = (TreeAlgorithm) algo;
	m->task = (MlTask) task;
	m->objective = (TreeObjective) obj;
	if (!ml_rd_u32(r, &m->n_features, "feature count") ||
		!ml_rd_u32(r, &m->n_classes, "class count") ||
		!ml_rd_u32(r, &m->leaf_width, "leaf width") ||
		!ml_rd_u32(r, &m->trees_per_round, "trees per round") ||
		!ml_rd_i32(r, &m->best_iteration, "best iteration") ||
		!rd_opt(r, &m->oob_score, "oob score") ||
		!rd_opt(r, &m->valid_loss, "validation loss") ||
		!ml_rd_finite(r, &m->learning_rate, "learning rate"))
		return false;
	if (m->n_features < 1 || m->n_features > ML_MAX_FEATURES)
		return corrupt(r, "feature count %u out of range", m->n_features, 0);
	if (task == ML_TASK_CLASSIFY ? (m->n_classes < 2 || m->n_classes > ML_MAX_CLASSES)
		: m->n_classes != 0)
		return corrupt(r, "class count %u does not fit task %u", m->n_classes, task);
	m->n_outputs = task == ML_TASK_CLASSIFY ? m->n_classes : 1;
	if (m->algorithm == TREE_ALGO_GBT)
	{
		uint32_t	want_tpr = obj == TREE_OBJ_MULTI_SOFTMAX ? m->n_classes : 1;

		if ((obj == TREE_OBJ_REG_SQUAREDERROR) != (task == ML_TASK_REGRESS) ||
			obj == TREE_OBJ_DEFAULT ||
			(obj == TREE_OBJ_BINARY_LOGISTIC && m->n_classes != 2))
			return corrupt(r, "objective %u does not fit task %u", obj, task);
		if (m->leaf_width != 1 || m->trees_per_round != want_tpr)
			return corrupt(r, "leaf width %u / trees per round %u inconsistent",
						   m->leaf_width, m->trees_per_round);
		if (!(m->learning_rate > 0 && m->learning_rate <= 1))
			return corrupt(r, "learning rate out of range", 0, 0);
		if (!isnan(m->oob_score))
			return corrupt(r, "gbt carries an oob score", 0, 0);
	}
	else
	{
		uint32_t	want_w = task == ML_TASK_CLASSIFY ? m->n_classes : 1;

		if (obj != TREE_OBJ_DEFAULT || m->leaf_width != want_w || m->trees_per_round != 1)
			return corrupt(r, "leaf width %u / trees per round %u inconsistent",
						   m->leaf_width, m->trees_per_round);
		if (m->best_iteration != -1 || !isnan(m->valid_loss))
			return corrupt(r, "a forest carries boosting fields", 0, 0);
		if (m->learning_rate != 0)
			return corrupt(r, "a forest carries a learning rate", 0, 0);
	}
	nbase = m->algorithm == TREE_ALGO_GBT ? m->trees_per_round : 0;
	if (nbase > 0)
	{
		if (ml_rd_left(r) / 8 < nbase)
			return corrupt(r, "base scores truncated", 0, 0);
		if (!ml_rd_f64s(r, nbase, &m->base_score, "base score"))
			return false;
	}
	if (ml_rd_left(r) / 8 < m->n_features)
		return corrupt(r, "importances truncated", 0, 0);
	if (!ml_rd_f64s(r, m->n_features, &m->importance, "importance"))
		return false;
	{
		uint32_t	j;

		for (j = 0; j < m->n_features; j++)
			if (m->importance[j] < 0)
				return corrupt(r, "importance of feature %u is negative", j, 0);
	}
	return true;
}

/* Reads and checks one tree's nodes (and leaf table) into place. */
static bool
read_tree(MlReader *r, TreeModel *m, uint32_t t, uint32_t n_nodes, uint32_t node0,
		  uint32_t leaf0, uint32_t *n_leaves_out)
{
	uint32_t	k,
				leaves = 0,
				n_tab = 0;
	uint32_t	K = m->leaf_width;
	TreeNode   *nodes = m->nodes + node0;

	for (k = 0; k < n_nodes; k++)
	{
		TreeNode   *nd = &nodes[k];

		if (!ml_rd_finite(r, &nd->value, "node value") ||
			!ml_rd_u32(r, &nd->feature, "node feature") ||
			!ml_rd_u32(r, &nd->aux, "node child"))
			return false;
		if (nd->feature & TREE_NODE_LEAF)
		{
			if (nd->feature != TREE_NODE_LEAF)
				return corrupt(r, "leaf %u of tree %u has stray flags", k, t);
			leaves++;
			if (K == 1 && nd->aux != 0)
				return corrupt(r, "leaf %u of tree %u has a table index", k, t);
			if (K > 1 && nd->value != 0)
				return corrupt(r, "leaf %u of tree %u has a scalar value", k, t);
		}
		else
		{
			uint32_t	f = nd->feature & ~TREE_NODE_DEFAULT_LEFT;

			if (f >= m->n_features)
				return corrupt(r, "node %u of tree %u splits on a missing feature", k, t);
			if (nd->aux <= k || nd->aux >= n_nodes - 1)
				return corrupt(r, "node %u of tree %u has a child out of range", k, t);
		}
	}
	if (m->cover != NULL)
		for (k = 0; k < n_nodes; k++)
		{
			double	   *c = &m->cover[node0 + k];

			if (!ml_rd_f64(r, c, "node cover"))
				return false;
			if (!isfinite(*c) || *c < 0)
				return corrupt(r, "node %u of tree %u has a bad cover", k, t);
		}
	if (K > 1)
	{
		if (!ml_rd_count(r, 1, n_nodes, (size_t) 8 * K, &n_tab, "leaf table size"))
			return false;
		for (k = 0; k < n_nodes; k++)
			if ((nodes[k].feature & TREE_NODE_LEAF) && nodes[k].aux >= n_tab)
				return corrupt(r, "leaf %u of tree %u points past its table", k, t);
		for (k = 0; k < n_tab; k++)
		{
			double	   *v = m->leaf_values + (size_t) (leaf0 + k) * K;
			double		sum = 0;
			uint32_t	c;

			for (c = 0; c < K; c++)
			{
				if (!ml_rd_f64(r, &v[c], "leaf table"))
					return false;
				if (!isfinite(v[c]) || v[c] < 0 || v[c] > 1)
					return corrupt(r, "leaf table of tree %u has a bad probability at %u", t, k);
				sum += v[c];
			}
			if (fabs(sum - 1.0) > 1e-6)
				return corrupt(r, "leaf table row %u of tree %u does not sum to 1", k, t);
		}
	}
	*n_leaves_out = n_tab;
	(void) leaves;
	return true;
}

bool
trees_read(MlReader *r, const MlEnv *env, TreeModel *m)
{
	MlReader	scan;
	uint32_t	n_trees,
				t;
	uint64_t	total_nodes = 0,
				total_leaves = 0;
	uint32_t	node0 = 0,
				leaf0 = 0;
	bool		has_cover = false;
	size_t		node_bytes;

	memset(m, 0, sizeof(*m));
	if (!read_header(r, m, &has_cover))
		goto fail;
	node_bytes = has_cover ? 24 : 16;
	if (!ml_rd_count(r, 1, UINT32_MAX / 2, 20, &n_trees, "tree count"))
		goto fail;
	if (m->algorithm == TREE_ALGO_DECISION_TREE && n_trees != 1)
	{
		corrupt(r, "a decision tree model holds %u trees", n_trees, 0);
		goto fail;
	}
	if (n_trees % m->trees_per_round != 0)
	{
		corrupt(r, "%u trees is not a whole number of rounds of %u", n_trees, m->trees_per_round);
		goto fail;
	}
	if (m->algorithm == TREE_ALGO_GBT &&
		(uint32_t) m->best_iteration + 1 != n_trees / m->trees_per_round)
	{
		corrupt(r, "best iteration %u does not match %u rounds", (uint32_t) m->best_iteration,
				n_trees / m->trees_per_round);
		goto fail;
	}
	/* Pass 1: sizes, so the arrays are allocated once. */
	scan = *r;
	for (t = 0; t < n_trees; t++)
	{
		uint32_t	nn,
					nl;
		MlReader	skip;

		if (!ml_rd_count(&scan, 1, UINT32_MAX / 2, node_bytes, &nn, "node count") ||
			!ml_rd_sub(&scan, (size_t) nn * node_bytes, &skip, "nodes"))
			goto fail;
		total_nodes += nn;
		if (m->leaf_width > 1)
		{
			if (!ml_rd_count(&scan, 1, nn, (size_t) 8 * m->leaf_width, &nl, "leaf table size") ||
				!ml_rd_sub(&scan, (size_t) nl * 8 * m->leaf_width, &skip, "leaf table"))
				goto fail;
			total_leaves += nl;
		}
		if (total_nodes > UINT32_MAX / 2 || total_leaves > UINT32_MAX / 2)
		{
			corrupt(r, "too many nodes", 0, 0);
			goto fail;
		}
	}
	m->n_trees = n_trees;
	m->tree_start = ml_alloc(env, sizeof(uint32_t) * ((size_t) n_trees + 1));
	m->nodes = ml_alloc(env, sizeof(TreeNode) * (size_t) total_nodes);
	if (has_cover && !(m->cover = ml_alloc(env, sizeof(double) * (size_t) total_nodes)))
	{
		ml_fail(r->err, ML_ERR_MEMORY, "out of memory reading a tree model");
		goto fail;
	}
	if (m->leaf_width > 1)
	{
		m->leaf_start = ml_alloc(env, sizeof(uint32_t) * ((size_t) n_trees + 1));
		m->leaf_values = ml_alloc(env, sizeof(double) * (size_t) total_leaves * m->leaf_width);
	}
	if (!m->tree_start || !m->nodes ||
		(m->leaf_width > 1 && (!m->leaf_start || !m->leaf_values)))
	{
		ml_fail(r->err, ML_ERR_MEMORY, "out of memory reading a tree model");
		goto fail;
	}
	/* Pass 2: read and check. */
	for (t = 0; t < n_trees; t++)
	{
		uint32_t	nn,
					nl = 0;

		if (!ml_rd_count(r, 1, UINT32_MAX / 2, node_bytes, &nn, "node count"))
			goto fail;
		m->tree_start[t] = node0;
		if (m->leaf_width > 1)
			m->leaf_start[t] = leaf0;
		if (!read_tree(r, m, t, nn, node0, leaf0, &nl))
			goto fail;
		node0 += nn;
		leaf0 += nl;
	}
	m->tree_start[n_trees] = node0;
	if (m->leaf_width > 1)
		m->leaf_start[n_trees] = leaf0;
	if (!ml_rd_end(r, "tree model"))
		goto fail;
	if (!tm_finish(env, m, r->err))
		goto fail;
	return true;

fail:
	trees_model_free(env, m);
	return false;
}

/* ---- JSON ---- */

static void
jputs(MlBuf *b, const char *s)
{
	ml_buf_put_bytes(b, s, strlen(s));
}

/* A number in the fewest digits (15 to 17) that read back as exactly v; null if not finite. */
static void
jnum(MlBuf *b, double v)
{
	char		tmp[40];
	int			digits;

	if (!isfinite(v))
	{
		jputs(b, "null");
		return;
	}
	for (digits = 15; digits < 17; digits++)
	{
		snprintf(tmp, sizeof(tmp), "%.*g", digits, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	if (digits == 17)
		snprintf(tmp, sizeof(tmp), "%.17g", v);
	jputs(b, tmp);
}

static void
jint(MlBuf *b, long long v)
{
	char		tmp[32];

	snprintf(tmp, sizeof(tmp), "%lld", v);
	jputs(b, tmp);
}

static void
jstr(MlBuf *b, const char *s)
{
	const unsigned char *p;

	ml_buf_put_u8(b, '"');
	for (p = (const unsigned char *) s; *p; p++)
	{
		if (*p == '"' || *p == '\\')
		{
			ml_buf_put_u8(b, '\\');
			ml_buf_put_u8(b, *p);
		}
		else if (*p < 0x20)
		{
			char		tmp[8];

			snprintf(tmp, sizeof(tmp), "\\u%04x", *p);
			jputs(b, tmp);
		}
		else
			ml_buf_put_u8(b, *p);
	}
	ml_buf_put_u8(b, '"');
}

static const char *
objective_name(TreeObjective o)
{
	switch (o)
	{
		case TREE_OBJ_BINARY_LOGISTIC:
			return "binary:logistic";
		case TREE_OBJ_MULTI_SOFTMAX:
			return "multi:softmax";
		case TREE_OBJ_REG_SQUAREDERROR:
			return "reg:squarederror";
		case TREE_OBJ_DEFAULT:
			break;
	}
	return NULL;
}

void
trees_export_json(MlBuf *b, const TreeModel *m, const char *const *feature_names)
{
	uint32_t	t,
				k,
				c;
	static const char *const algos[] = {"decision_tree", "random_forest", "gbt"};

	jputs(b, "{\"algorithm\":");
	jstr(b, algos[m->algorithm]);
	jputs(b, ",\"task\":");
	jstr(b, m->task == ML_TASK_CLASSIFY ? "classification" : "regression");
	if (objective_name(m->objective))
	{
		jputs(b, ",\"objective\":");
		jstr(b, objective_name(m->objective));
	}
	jputs(b, ",\"n_features\":");
	jint(b, m->n_features);
	jputs(b, ",\"n_classes\":");
	jint(b, m->n_classes);
	jputs(b, ",\"n_trees\":");
	jint(b, m->n_trees);
	if (m->algorithm == TREE_ALGO_GBT)
	{
		jputs(b, ",\"trees_per_round\":");
		jint(b, m->trees_per_round);
		jputs(b, ",\"best_iteration\":");
		jint(b, m->best_iteration);
		jputs(b, ",\"learning_rate\":");
		jnum(b, m->learning_rate);
		jputs(b, ",\"validation_loss\":");
		jnum(b, m->valid_loss);
		jputs(b, ",\"base_score\":[");
		for (c = 0; c < m->trees_per_round; c++)
		{
			if (c)
				jputs(b, ",");
			jnum(b, m->base_score[c]);
		}
		jputs(b, "]");
	}
	else
	{
		jputs(b, ",\"oob_score\":");
		jnum(b, m->oob_score);
	}
	jputs(b, ",\"feature_importance\":[");
	for (k = 0; k < m->n_features; k++)
	{
		if (k)
			jputs(b, ",");
		jnum(b, m->importance[k]);
	}
	jputs(b, "],\"trees\":[");
	for (t = 0; t < m->n_trees; t++)
	{
		uint32_t	s = m->tree_start[t],
					e = m->tree_start[t + 1];

		jputs(b, t ? ",{\"nodes\":[" : "{\"nodes\":[");
		for (k = s; k < e; k++)
		{
			const TreeNode *nd = &m->nodes[k];

			jputs(b, k > s ? ",{\"id\":" : "{\"id\":");
			jint(b, k - s);
			if (m->cover != NULL)
			{
				jputs(b, ",\"cover\":");
				jnum(b, m->cover[k]);
			}
			if (nd->feature & TREE_NODE_LEAF)
			{
				jputs(b, ",\"leaf\":");
				if (m->leaf_width > 1)
				{
					const double *lv = m->leaf_values +
						(size_t) (m->leaf_start[t] + nd->aux) * m->leaf_width;

					jputs(b, "[");
					for (c = 0; c < m->leaf_width; c++)
					{
						if (c)
							jputs(b, ",");
						jnum(b, lv[c]);
					}
					jputs(b, "]");
				}
				else
					jnum(b, nd->value);
			}
			else
			{
				uint32_t	f = nd->feature & TREE_NODE_FEATURE_MASK;

				jputs(b, ",\"feature\":");
				if (feature_names)
					jstr(b, feature_names[f]);
				else
					jint(b, f);
				jputs(b, ",\"threshold\":");
				jnum(b, nd->value);
				jputs(b, ",\"missing\":");
				jstr(b, (nd->feature & TREE_NODE_DEFAULT_LEFT) ? "left" : "right");
				jputs(b, ",\"left\":");
				jint(b, nd->aux);
				jputs(b, ",\"right\":");
				jint(b, (long long) nd->aux + 1);
			}
			jputs(b, "}");
		}
		jputs(b, "]}");
	}
	jputs(b, "]}");
	ml_buf_put_u8(b, 0);
}
