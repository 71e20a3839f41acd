/*
 * test_explain.c: TreeSHAP (treeshap.c) and the k-means explanation.
 *
 * A tree whose Shapley values are worked out by hand (in the comments),
 * NaN routing by default direction, random trees (repeated features, zero
 * covers, NaN) checked against brute-force Shapley values over every
 * feature subset, additivity (contributions + expected value == raw output
 * within 1e-9, and == what trees_predict_row returns) on hand-built and on
 * trained decision trees, forests and gbt models, the batch form on
 * threads, bad covers, and k-means distance shares.
 */
#include <math.h>

#include "explain.h"
#include "mltest.h"

static MlEnv env1;

/* A model spec built by hand: nodes in the flattened layout. */
typedef struct Spec
{
	TreeAlgorithm algo;
	MlTask		task;
	TreeObjective obj;
	uint32_t	d;
	uint32_t	K;				/* classes, 0 regression */
	uint32_t	tpr;
	uint32_t	leaf_width;
	uint32_t	n_trees;
	uint32_t	tree_start[64];
	uint32_t	leaf_start[64];
	TreeNode	nodes[4096];
	double		leaf_values[8192];
	double		base[8];
	double		cover[4096];
} Spec;

/* Turns a spec into a real model through the codec (depths, fast layout). */
static bool
spec_model(const Spec *s, TreeModel *out)
{
	TreeModel	m;
	MlBuf		b;
	MlReader	r;
	MlError		err = {0};
	double		imp[64] = {0};
	bool		ok;

	memset(&m, 0, sizeof(m));
	m.algorithm = s->algo;
	m.task = s->task;
	m.objective = s->obj;
	m.n_features = s->d;
	m.n_classes = s->K;
	m.n_outputs = s->K ? s->K : 1;
	m.leaf_width = s->leaf_width;
	m.trees_per_round = s->tpr;
	m.n_trees = s->n_trees;
	m.tree_start = (uint32_t *) s->tree_start;
	m.leaf_start = s->leaf_width > 1 ? (uint32_t *) s->leaf_start : NULL;
	m.nodes = (TreeNode *) s->nodes;
	m.leaf_values = s->leaf_width > 1 ? (double *) s->leaf_values : NULL;
	m.base_score = s->algo == TREE_ALGO_GBT ? (double *) s->base : NULL;
	m.importance = imp;
	m.best_iteration = s->algo == TREE_ALGO_GBT ? (int32_t) (s->n_trees / s->tpr - 1) : -1;
	m.oob_score = NAN;
	m.valid_loss = NAN;
	m.learning_rate = s->algo == TREE_ALGO_GBT ? 0.3 : 0;
	ml_buf_init(&b, &env1);
	trees_write(&b, &m);
	ml_rd_init(&r, b.data, b.len, &env1, &err);
	ok = trees_read(&r, &env1, out);
	if (!ok)
		printf("# spec_model: %s\n", err.msg);
	free(b.data);
	return ok;
}

static void
split(TreeNode *n, uint32_t f, double thr, bool nan_left, uint32_t left)
{
	n->value = thr;
	n->feature = f | (nan_left ? TREE_NODE_DEFAULT_LEFT : 0);
	n->aux = left;
}

static void
leaf(TreeNode *n, double v)
{
	n->value = v;
	n->feature = TREE_NODE_LEAF;
	n->aux = 0;
}

/*
 * The hand tree (regression gbt, base 0):
 *   0: x0 <= 0 (cover 10) -> 1 (cover 6), 2 (cover 4, leaf 10)
 *   1: x1 <= 0 -> 3 (cover 3, leaf 1), 4 (cover 3, leaf 3)
 * E = 0.6 * (0.5 * 1 + 0.5 * 3) + 0.4 * 10 = 5.2.
 * x = (-1, 1): f = 3; f({0}) = 2, f({1}) = 0.6 * 3 + 4 = 5.8, so
 *   phi0 = ((2 - 5.2) + (3 - 5.8)) / 2 = -3.0, phi1 = ((5.8 - 5.2) + (3 - 2)) / 2 = 0.8.
 * x = (1, NaN): f = 10; f({0}) = 10; f({1}) = 0.6 * 1 + 4 = 4.6 when NaN
 *   goes left (5.8 when it goes right), so phi0 = (4.8 + 5.4) / 2 = 5.1,
 *   phi1 = (-0.6 + 0) / 2 = -0.3 (right: phi0 = 4.5, phi1 = 0.3).
 */
static void
hand_spec(Spec *s, bool nan_left)
{
	memset(s, 0, sizeof(*s));
	s->algo = TREE_ALGO_GBT;
	s->task = ML_TASK_REGRESS;
	s->obj = TREE_OBJ_REG_SQUAREDERROR;
	s->d = 2;
	s->tpr = 1;
	s->leaf_width = 1;
	s->n_trees = 1;
	s->tree_start[1] = 5;
	split(&s->nodes[0], 0, 0, true, 1);
	split(&s->nodes[1], 1, 0, nan_left, 3);
	leaf(&s->nodes[2], 10);
	leaf(&s->nodes[3], 1);
	leaf(&s->nodes[4], 3);
	s->cover[0] = 10;
	s->cover[1] = 6;
	s->cover[2] = 4;
	s->cover[3] = 3;
	s->cover[4] = 3;
}

static void
test_hand_tree(void)
{
	Spec		s;
	TreeModel	m;
	TreeExplainer *ex;
	MlError		err = {0};
	double		phi[3],
				ev;
	double		x1[2] = {-1, 1},
				x2[2] = {1, NAN},
				x3[2] = {-1, NAN};
	int			pass;

	for (pass = 0; pass < 2; pass++)
	{
		bool		nan_left = pass == 0;

		hand_spec(&s, nan_left);
		if (!spec_model(&s, &m))
		{
			CHECK(false, "hand tree builds");
			return;
		}
		CHECK(tree_explainer_build(&env1, &m, s.cover, &ex, &err) == ML_OK, "hand tree explainer: %s",
			  err.msg);
		tree_explainer_expected(ex, &ev);
		CHECK(fabs(ev - 5.2) < 1e-12, "hand tree: expected value 5.2 (%.15g)", ev);
		tree_explain_row(ex, x1, phi);
		CHECK(fabs(phi[0] + 3.0) < 1e-12 && fabs(phi[1] - 0.8) < 1e-12 && fabs(phi[2] - 5.2) < 1e-12,
			  "hand tree x=(-1,1): phi = (-3, 0.8 | 5.2), got (%.15g, %.15g | %.15g)",
			  phi[0], phi[1], phi[2]);
		tree_explain_row(ex, x2, phi);
		if (nan_left)
			CHECK(fabs(phi[0] - 5.1) < 1e-12 && fabs(phi[1] + 0.3) < 1e-12,
				  "hand tree x=(1,NaN), NaN left: phi = (5.1, -0.3), got (%.15g, %.15g)",
				  phi[0], phi[1]);
		else
			CHECK(fabs(phi[0] - 4.5) < 1e-12 && fabs(phi[1] - 0.3) < 1e-12,
				  "hand tree x=(1,NaN), NaN right: phi = (4.5, 0.3), got (%.15g, %.15g)",
				  phi[0], phi[1]);
		tree_explain_row(ex, x3, phi);
		{
			double		want = nan_left ? 1 : 3,
						out;

			trees_predict_row(&m, x3, &out);
			CHECK(fabs(phi[0] + phi[1] + phi[2] - want) < 1e-12 && out == want,
				  "hand tree x=(-1,NaN) follows the default side (%s): sum %.15g, predict %g",
				  nan_left ? "left" : "right", phi[0] + phi[1] + phi[2], out);
		}
		tree_explainer_free(&env1, ex);
		trees_model_free(&env1, &m);
	}
}

/* ---- random trees against brute force ---- */

static uint64_t rng_state = 12345;

static double
urand(void)
{
	rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (double) (rng_state >> 11) / 9007199254740992.0;
}

/* Appends a random tree (BFS order) at node offset base; returns its node count. */
static uint32_t
random_tree(Spec *s, uint32_t base, uint32_t leaf0, uint32_t *n_leaves, int max_depth,
			bool zero_covers)
{
	uint32_t	count = 1,
				q,
				leaves = 0;
	int			depth[512];

	depth[0] = 0;
	for (q = 0; q < count; q++)
	{
		TreeNode   *n = &s->nodes[base + q];

		if (depth[q] < max_depth && count + 2 <= 500 && urand() < 0.8)
		{
			/* few features, so features repeat on a path */
			split(n, (uint32_t) (urand() * s->d), floor(urand() * 5) - 2, urand() < 0.5, count);
			depth[count] = depth[count + 1] = depth[q] + 1;
			count += 2;
		}
		else
		{
			uint32_t	c;

			n->feature = TREE_NODE_LEAF;
			if (s->leaf_width > 1)
			{
				double		sum = 0,
						   *lv = s->leaf_values + (size_t) (leaf0 + leaves) * s->leaf_width;

				for (c = 0; c < s->leaf_width; c++)
					sum += lv[c] = urand() + 0.01;
				for (c = 0; c < s->leaf_width; c++)
					lv[c] /= sum;
				n->value = 0;
				n->aux = leaves++;
			}
			else
			{
				n->value = urand() * 4 - 2;
				n->aux = 0;
			}
			s->cover[base + q] = zero_covers && urand() < 0.15 ? 0 : 1 + floor(urand() * 20);
		}
	}
	/* internal covers: sum of the children (children come after parents) */
	for (q = count; q-- > 0;)
		if (!(s->nodes[base + q].feature & TREE_NODE_LEAF))
		{
			uint32_t	l = s->nodes[base + q].aux;

			s->cover[base + q] = s->cover[base + l] + s->cover[base + l + 1];
		}
	*n_leaves = leaves;
	return count;
}

/* f_S(x) of one tree (path-dependent conditional expectation). */
static void
cond_exp(const Spec *s, uint32_t t, uint32_t k, const double *x, unsigned S, double *out)
{
	const TreeNode *nodes = s->nodes + s->tree_start[t];
	const double *cv = s->cover + s->tree_start[t];
	const TreeNode *n = &nodes[k];
	uint32_t	c,
				K = s->leaf_width;

	if (n->feature & TREE_NODE_LEAF)
	{
		if (K > 1)
			memcpy(out, s->leaf_values + (size_t) (s->leaf_start[t] + n->aux) * K, sizeof(double) * K);
		else
			out[0] = n->value;
		return;
	}
	{
		uint32_t	f = n->feature & TREE_NODE_FEATURE_MASK;

		if (S & (1u << f))
		{
			bool		left = isnan(x[f]) ? (n->feature & TREE_NODE_DEFAULT_LEFT) != 0 :
				x[f] <= n->value;

			cond_exp(s, t, n->aux + (left ? 0 : 1), x, S, out);
		}
		else
		{
			double		a[16],
						b[16],
						w = cv[k],
						fl = w > 0 ? cv[n->aux] / w : 0.5,
						fr = w > 0 ? cv[n->aux + 1] / w : 0.5;

			cond_exp(s, t, n->aux, x, S, a);
			cond_exp(s, t, n->aux + 1, x, S, b);
			for (c = 0; c < K; c++)
				out[c] = fl * a[c] + fr * b[c];
		}
	}
}

/* Brute-force Shapley values of the whole model, XGBoost's layout. */
static void
brute_shap(const Spec *s, const double *x, double *phi)
{
	uint32_t	d = s->d,
				n_out = s->algo == TREE_ALGO_GBT ? s->tpr : s->leaf_width,
				t,
				c,
				j;
	unsigned	S;
	double		scale = s->algo == TREE_ALGO_GBT ? 1.0 : 1.0 / s->n_trees;
	double		fact[16];

	fact[0] = 1;
	for (j = 1; j < 16; j++)
		fact[j] = fact[j - 1] * j;
	memset(phi, 0, sizeof(double) * n_out * (d + 1));
	for (t = 0; t < s->n_trees; t++)
	{
		double	   *p = phi + (s->algo == TREE_ALGO_GBT ? t % s->tpr : 0) * (d + 1);
		uint32_t	K = s->leaf_width;
		double		e0[16];

		cond_exp(s, t, 0, x, 0, e0);
		for (c = 0; c < K; c++)
			p[c * (d + 1) + d] += e0[c] * scale;
		for (j = 0; j < d; j++)
			for (S = 0; S < (1u << d); S++)
			{
				double		a[16],
							b[16],
							w;
				int			size = __builtin_popcount(S);

				if (S & (1u << j))
					continue;
				w = fact[size] * fact[d - size - 1] / fact[d];
				cond_exp(s, t, 0, x, S | (1u << j), a);
				cond_exp(s, t, 0, x, S, b);
				for (c = 0; c < K; c++)
					p[c * (d + 1) + j] += w * (a[c] - b[c]) * scale;
			}
	}
	if (s->algo == TREE_ALGO_GBT)
		for (c = 0; c < n_out; c++)
			phi[c * (d + 1) + d] += s->base[c];
}

/* A random model of the given kind: n_trees trees of depth <= max_depth. */
static void
random_spec(Spec *s, TreeAlgorithm algo, MlTask task, uint32_t K, uint32_t n_trees,
			int max_depth, bool zero_covers)
{
	uint32_t	t,
				node = 0,
				lf = 0,
				c;

	memset(s, 0, sizeof(*s));
	s->algo = algo;
	s->task = task;
	s->d = 5;
	s->K = task == ML_TASK_CLASSIFY ? K : 0;
	s->leaf_width = algo != TREE_ALGO_GBT && task == ML_TASK_CLASSIFY ? K : 1;
	s->tpr = algo == TREE_ALGO_GBT && task == ML_TASK_CLASSIFY && K > 2 ? K : 1;
	s->obj = algo != TREE_ALGO_GBT ? TREE_OBJ_DEFAULT :
		task == ML_TASK_REGRESS ? TREE_OBJ_REG_SQUAREDERROR :
		K > 2 ? TREE_OBJ_MULTI_SOFTMAX : TREE_OBJ_BINARY_LOGISTIC;
	s->n_trees = n_trees;
	for (c = 0; c < s->tpr; c++)
		s->base[c] = urand() - 0.5;
	for (t = 0; t < n_trees; t++)
	{
		uint32_t	nl = 0;

		s->tree_start[t] = node;
		s->leaf_start[t] = lf;
		node += random_tree(s, node, lf, &nl, max_depth, zero_covers);
		lf += nl;
	}
	s->tree_start[n_trees] = node;
	s->leaf_start[n_trees] = lf;
}

static void
random_row(double *x, int d)
{
	int			j;

	for (j = 0; j < d; j++)
		x[j] = urand() < 0.1 ? NAN : floor(urand() * 7) - 3 + 0.5 * (urand() < 0.3);
}

/* Explains rows of a random model; compares with brute force and the scorer. */
static void
check_random(const char *what, TreeAlgorithm algo, MlTask task, uint32_t K, uint32_t n_trees,
			 int max_depth, bool zero_covers)
{
	static Spec s;
	TreeModel	m;
	TreeExplainer *ex;
	MlError		err = {0};
	double		worst_brute = 0,
				worst_add = 0,
				worst_pred = 0;
	int			row;

	random_spec(&s, algo, task, K, n_trees, max_depth, zero_covers);
	if (!spec_model(&s, &m))
	{
		CHECK(false, "%s: model builds", what);
		return;
	}
	if (tree_explainer_build(&env1, &m, s.cover, &ex, &err) != ML_OK)
	{
		CHECK(false, "%s: explainer: %s", what, err.msg);
		trees_model_free(&env1, &m);
		return;
	}
	for (row = 0; row < 40; row++)
	{
		double		x[5],
					phi[16 * 6],
					ref[16 * 6],
					raw[16],
					pred[16];
		uint32_t	n_out = tree_explain_n_outputs(&m),
					c,
					j;

		random_row(x, 5);
		tree_explain_row(ex, x, phi);
		brute_shap(&s, x, ref);
		tree_explain_raw(&m, x, raw);
		trees_predict_row(&m, x, pred);
		for (c = 0; c < n_out * 6; c++)
			worst_brute = fmax(worst_brute, fabs(phi[c] - ref[c]));
		for (c = 0; c < n_out; c++)
		{
			double		sum = 0,
						p;

			for (j = 0; j <= 5; j++)
				sum += phi[c * 6 + j];
			worst_add = fmax(worst_add, fabs(sum - raw[c]));
			/* what the scorer returns, from the raw output */
			if (m.algorithm != TREE_ALGO_GBT || m.objective == TREE_OBJ_REG_SQUAREDERROR)
				p = raw[c];
			else if (m.objective == TREE_OBJ_BINARY_LOGISTIC)
				p = 1 / (1 + exp(-raw[0]));
			else
			{
				double		z = 0;
				uint32_t	k;

				for (k = 0; k < n_out; k++)
					z += exp(raw[k] - raw[c]);
				p = 1 / z;
			}
			worst_pred = fmax(worst_pred,
							  fabs(p - pred[m.objective == TREE_OBJ_BINARY_LOGISTIC ? 1 : c]));
		}
	}
	CHECK(worst_brute < 1e-12, "%s: TreeSHAP == brute-force Shapley values (max diff %.3g)", what,
		  worst_brute);
	CHECK(worst_add < 1e-9, "%s: contributions + expected value == raw output (max diff %.3g)",
		  what, worst_add);
	CHECK(worst_pred < 1e-12, "%s: the raw output is what the scorer returns (max diff %.3g)", what,
		  worst_pred);
	tree_explainer_free(&env1, ex);
	trees_model_free(&env1, &m);
}

/*
 * The covers a trained model stores (tree codec version 2): present, equal
 * to the training counts for a decision tree, kept bit for bit by the
 * codec; a version 1 payload (no cover flag, no covers) still reads, with
 * cover NULL.
 */
static void
check_stored_covers(TreeModel *m, const double *row_cover, const char *what)
{
	uint32_t	nn = m->tree_start[m->n_trees],
				k;
	bool		same = true;
	MlBuf		b;
	MlReader	r;
	MlError		err = {0};
	TreeModel	back,
				old;
	double	   *keep;

	CHECK(m->cover != NULL, "%s: the trained model stores node covers", what);
	if (m->cover == NULL)
		return;
	if (m->algorithm == TREE_ALGO_DECISION_TREE)
	{
		for (k = 0; k < nn; k++)
			same = same && m->cover[k] == row_cover[k];
		CHECK(same, "%s: stored covers == training counts", what);
	}
	ml_buf_init(&b, &env1);
	trees_write(&b, m);
	ml_rd_init(&r, b.data, b.len, &env1, &err);
	same = trees_read(&r, &env1, &back) && back.cover != NULL;
	for (k = 0; same && k < nn; k++)
		same = memcmp(&back.cover[k], &m->cover[k], sizeof(double)) == 0;
	CHECK(same, "%s: codec v2 keeps the covers (%u nodes) %s", what, nn, err.msg);
	trees_model_free(&env1, &back);
	free(b.data);
	/* Version 1: written without covers, then the flag byte removed. */
	keep = m->cover;
	m->cover = NULL;
	ml_buf_init(&b, &env1);
	trees_write(&b, m);
	m->cover = keep;
	b.data[0] = 1;
	memmove(b.data + 1, b.data + 2, b.len - 2);
	ml_rd_init(&r, b.data, b.len - 1, &env1, &err);
	same = trees_read(&r, &env1, &old);
	CHECK(same && old.cover == NULL && old.tree_start[old.n_trees] == nn,
		  "%s: a version 1 payload reads, without covers %s", what, err.msg);
	if (same)
		trees_model_free(&env1, &old);
	free(b.data);
}

/* ---- trained models: additivity on a fit's own rows, covers from rows ---- */

static void
check_trained(const char *what, TreeAlgorithm algo, MlTask task, int K)
{
	int64_t		n = 600,
				i;
	int			d = 4,
				j;
	double	   *Xc = malloc(sizeof(double) * n * d),
			   *Xr = malloc(sizeof(double) * n * d),
			   *cover = NULL,
			   *phi,
				worst = 0;
	int32_t    *yc = malloc(sizeof(int32_t) * n);
	double	   *yr = malloc(sizeof(double) * n);
	uint8_t    *B = malloc(n * d);
	TreeBins	bins;
	TreeData	data;
	TreeParams	p;
	TreeModel	m;
	TreeExplainer *ex;
	MlError		err = {0};
	uint32_t	n_out;

	for (i = 0; i < n; i++)
	{
		for (j = 0; j < d; j++)
		{
			double		v = urand() < 0.05 ? NAN : urand() * 10;

			Xc[j * n + i] = v;
			Xr[i * d + j] = v;
		}
		yr[i] = (isnan(Xr[i * d]) ? 3 : Xr[i * d]) + 0.5 * urand();
		yc[i] = (int32_t) fmin(K - 1, floor(yr[i] * K / 10.5));
	}
	trees_bins_fit(&env1, Xc, n, d, 64, 0, 1, &bins, &err);
	trees_bins_apply(&env1, &bins, Xc, n, B, 0);
	memset(&data, 0, sizeof(data));
	data.B = B;
	data.n = n;
	data.d = d;
	data.bins = &bins;
	data.y_class = yc;
	data.n_classes = K;
	data.y = yr;
	trees_params_default(&p, algo, task);
	p.n_estimators = 12;
	p.max_depth = 5;
	if (trees_fit(&env1, &data, &p, &m, NULL, &err) != ML_OK)
	{
		CHECK(false, "%s: fit: %s", what, err.msg);
		goto out;
	}
	CHECK(tree_covers_from_rows(&env1, &m, Xr, n, NULL, &cover, &err) == ML_OK &&
		  cover[0] == (double) n, "%s: covers from the training rows (root %g)", what,
		  cover ? cover[0] : -1);
	check_stored_covers(&m, cover, what);
	CHECK(tree_explainer_build(&env1, &m, cover, &ex, &err) == ML_OK, "%s: explainer: %s", what,
		  err.msg);
	n_out = tree_explain_n_outputs(&m);
	phi = malloc(sizeof(double) * n * n_out * (d + 1));
	CHECK(tree_explain_batch(&env1, ex, Xr, n, phi, &err) == ML_OK, "%s: batch", what);
	for (i = 0; i < n; i++)
	{
		double		raw[8],
					pred[8],
					one[8 * 5];
		uint32_t	c;

		tree_explain_raw(&m, Xr + i * d, raw);
		trees_predict_row(&m, Xr + i * d, pred);
		tree_explain_row(ex, Xr + i * d, one);
		for (c = 0; c < n_out; c++)
		{
			double		sum = 0;

			for (j = 0; j <= d; j++)
			{
				sum += phi[(i * n_out + c) * (d + 1) + j];
				worst = fmax(worst, fabs(one[c * (d + 1) + j] - phi[(i * n_out + c) * (d + 1) + j]));
			}
			worst = fmax(worst, fabs(sum - raw[c]));
			if (m.algorithm != TREE_ALGO_GBT)
				worst = fmax(worst, fabs(raw[c] - pred[c]));
			else if (m.objective == TREE_OBJ_REG_SQUAREDERROR)
				worst = fmax(worst, fabs(raw[0] - pred[0]));
			else if (m.objective == TREE_OBJ_BINARY_LOGISTIC)
				worst = fmax(worst, fabs(1 / (1 + exp(-raw[0])) - pred[1]));
		}
	}
	CHECK(worst < 1e-9, "%s: additivity, batch == row, raw == scorer on %lld rows (max diff %.3g)",
		  what, (long long) n, worst);
	free(phi);
	tree_explainer_free(&env1, ex);
	trees_model_free(&env1, &m);
out:
	free(cover);
	trees_bins_free(&env1, &bins);
	free(Xc);
	free(Xr);
	free(yc);
	free(yr);
	free(B);
}

static void
test_bad_covers(void)
{
	Spec		s;
	TreeModel	m;
	TreeExplainer *ex = NULL;
	MlError		err = {0};

	hand_spec(&s, true);
	spec_model(&s, &m);
	s.cover[3] = NAN;
	CHECK(tree_explainer_build(&env1, &m, s.cover, &ex, &err) == ML_ERR_DATA && !ex,
		  "a NaN cover is ML_ERR_DATA: %s", err.msg);
	memset(&err, 0, sizeof(err));
	s.cover[3] = -1;
	CHECK(tree_explainer_build(&env1, &m, s.cover, &ex, &err) == ML_ERR_DATA,
		  "a negative cover is ML_ERR_DATA: %s", err.msg);
	{
		double		X[4] = {1, 1, NAN, 0},
					w[2] = {1, -2},
				   *cv = NULL;

		memset(&err, 0, sizeof(err));
		CHECK(tree_covers_from_rows(&env1, &m, X, 2, w, &cv, &err) == ML_ERR_DATA && !cv,
			  "a negative row weight is ML_ERR_DATA: %s", err.msg);
	}
	trees_model_free(&env1, &m);
}

static void
test_kmeans(void)
{
	KmModel		m;
	double		cen[6] = {0, 0, 0, 10, 10, 10},
				mean[3] = {1, 2, 3},
				scale[3] = {2, 2, 4};
	double		x[3] = {1, 2, 2},
				term[3],
				share[3],
				scratch[3],
				dist2;
	int			c;

	memset(&m, 0, sizeof(m));
	m.k = 2;
	m.d = 3;
	m.centroids = cen;
	m.distance = KM_DIST_L2;
	c = kmeans_explain_row(&m, x, &dist2, term, share, scratch);
	CHECK(c == 0 && dist2 == 9 && term[0] == 1 && term[1] == 4 && term[2] == 4 &&
		  fabs(share[0] + share[1] + share[2] - 1) < 1e-15 && fabs(share[1] - 4.0 / 9) < 1e-15,
		  "k-means: cluster 0, distance^2 9 = 1 + 4 + 4, shares sum to 1");
	m.standardize = true;
	m.mean = mean;
	m.scale = scale;
	x[0] = 21;
	x[1] = 22;
	x[2] = 43;
	c = kmeans_explain_row(&m, x, &dist2, term, NULL, scratch);
	CHECK(c == 1 && dist2 == 0 && term[0] == 0, "k-means standardised: on centroid 1, distance 0");
	m.distance = KM_DIST_COSINE;
	m.standardize = false;
	x[0] = x[1] = x[2] = 0;
	CHECK(kmeans_explain_row(&m, x, &dist2, term, share, scratch) == -1,
		  "k-means cosine: a zero row cannot be placed");
}

int
main(void)
{
	env1 = mlt_env(1);
	test_hand_tree();
	test_bad_covers();
	check_random("gbt regression", TREE_ALGO_GBT, ML_TASK_REGRESS, 0, 6, 5, false);
	check_random("gbt binary", TREE_ALGO_GBT, ML_TASK_CLASSIFY, 2, 5, 6, false);
	check_random("gbt 3 classes", TREE_ALGO_GBT, ML_TASK_CLASSIFY, 3, 9, 4, true);
	check_random("decision tree classifier", TREE_ALGO_DECISION_TREE, ML_TASK_CLASSIFY, 3, 1, 7, true);
	check_random("random forest classifier", TREE_ALGO_RANDOM_FOREST, ML_TASK_CLASSIFY, 4, 5, 6, false);
	check_random("random forest regression, zero covers", TREE_ALGO_RANDOM_FOREST, ML_TASK_REGRESS, 0,
				 4, 8, true);
	check_trained("trained gbt regression", TREE_ALGO_GBT, ML_TASK_REGRESS, 0);
	check_trained("trained gbt binary", TREE_ALGO_GBT, ML_TASK_CLASSIFY, 2);
	check_trained("trained gbt 3 classes", TREE_ALGO_GBT, ML_TASK_CLASSIFY, 3);
	check_trained("trained decision tree", TREE_ALGO_DECISION_TREE, ML_TASK_CLASSIFY, 3);
	check_trained("trained random forest", TREE_ALGO_RANDOM_FOREST, ML_TASK_CLASSIFY, 3);
	check_trained("trained random forest regression", TREE_ALGO_RANDOM_FOREST, ML_TASK_REGRESS, 0);
	env1 = mlt_env(2);
	check_trained("trained gbt binary, 2 threads", TREE_ALGO_GBT, ML_TASK_CLASSIFY, 2);
	env1 = mlt_env(1);
	test_kmeans();
	return mlt_done();
}
