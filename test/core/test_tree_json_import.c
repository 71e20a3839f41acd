/*
 * test_tree_json_import.c: mlpipe's tree export read back
 * (src/core/tree_json_import.c): for every tree algorithm and task, the
 * model read from trees_export_json's document writes the same artifact
 * bytes and predicts the same; malformed documents are refused with the
 * JSON path.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>

#include "trees.h"
#include "mltest.h"

static MlEnv env1;
static uint64_t rng = 88172645463325252ull;

/* Uniform in [0, 1), xorshift64. */
static double
urand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double) (rng >> 11) / 9007199254740992.0;
}

/* A model of algo/task trained on n random rows of d features (with NaNs). */
static bool
train(TreeAlgorithm algo, MlTask task, int K, int64_t n, int d, double *Xr, TreeModel *m)
{
	double	   *Xc = malloc(sizeof(double) * n * d),
			   *yr = malloc(sizeof(double) * n);
	int32_t    *yc = malloc(sizeof(int32_t) * n);
	uint8_t    *B = malloc(n * d);
	TreeBins	bins;
	TreeData	data;
	TreeParams	p;
	MlError		err = {0};
	int64_t		i;
	int			j;
	bool		ok;

	for (i = 0; i < n; i++)
	{
		for (j = 0; j < d; j++)
		{
			double		v = urand() < 0.05 ? NAN : urand() * 10;

			Xc[j * n + i] = v;
			Xr[i * d + j] = v;
		}
		yr[i] = (isnan(Xr[i * d]) ? 3 : Xr[i * d]) + 0.5 * urand() + (isnan(Xr[i * d + 1]) ? 0 : Xr[i * d + 1] / 4);
		yc[i] = (int32_t) fmin(K - 1, floor(yr[i] * K / 13.0));
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
	p.n_estimators = 9;
	p.max_depth = 5;
	ok = trees_fit(&env1, &data, &p, m, NULL, &err) == ML_OK;
	CHECK(ok, "fit: %s", err.msg);
	trees_bins_free(&env1, &bins);
	free(Xc);
	free(yr);
	free(yc);
	free(B);
	return ok;
}

/* The model's export as a parsed document. */
static cJSON *
export_doc(const TreeModel *m, const char *const *names)
{
	MlBuf		b;
	cJSON	   *doc;

	ml_buf_init(&b, &env1);
	trees_export_json(&b, m, names);
	doc = cJSON_Parse((const char *) b.data);
	free(b.data);
	return doc;
}

/* True when a and b write the same artifact bytes. */
static bool
same_bytes(const TreeModel *a, const TreeModel *b)
{
	MlBuf		x,
				y;
	bool		same;

	ml_buf_init(&x, &env1);
	ml_buf_init(&y, &env1);
	trees_write(&x, a);
	trees_write(&y, b);
	same = !x.failed && !y.failed && x.len == y.len && memcmp(x.data, y.data, x.len) == 0;
	free(x.data);
	free(y.data);
	return same;
}

static void
check_round_trip(const char *what, TreeAlgorithm algo, MlTask task, int K)
{
	static const char *const names[] = {"a", "b", "c", "d"};
	int64_t		n = 500,
				i;
	int			d = 4;
	double	   *X = malloc(sizeof(double) * n * d);
	TreeModel	m,
				back;
	MlError		err = {0};
	cJSON	   *doc;
	double		worst = 0;

	if (!train(algo, task, K, n, d, X, &m))
		return;
	/* Covers as explain uses them (trained models store them). */
	doc = export_doc(&m, names);
	CHECK(doc != NULL, "%s: the export parses", what);
	CHECK(trees_import_json(&env1, doc, names, 4, &back, &err) == ML_OK, "%s: read back: %s", what, err.msg);
	CHECK(same_bytes(&m, &back), "%s: the model read back writes the same artifact bytes", what);
	for (i = 0; i < n; i++)
	{
		double		p1[8],
					p2[8];
		uint32_t	c;

		trees_predict_row(&m, X + i * d, p1);
		trees_predict_row(&back, X + i * d, p2);
		for (c = 0; c < m.n_outputs; c++)
			worst = fmax(worst, fabs(p1[c] - p2[c]));
	}
	CHECK(worst == 0, "%s: identical predictions on %ld rows (max diff %g)", what, (long) n, worst);
	trees_model_free(&env1, &back);
	cJSON_Delete(doc);
	trees_model_free(&env1, &m);
	free(X);
}

/* Edits doc at path (a JSON pointer-ish walk) and expects a refusal naming where. */
static void
check_refused(const char *what, cJSON *doc, const char *want)
{
	static const char *const names[] = {"a", "b", "c", "d"};
	TreeModel	back;
	MlError		err = {0};
	MlStatus	st = trees_import_json(&env1, doc, names, 4, &back, &err);

	CHECK(st != ML_OK && strstr(err.msg, want) != NULL, "%s refused: %s", what, err.msg);
	if (st == ML_OK)
		trees_model_free(&env1, &back);
}

static void
check_malformed(void)
{
	static const char *const names[] = {"a", "b", "c", "d"};
	int64_t		n = 300;
	double	   *X = malloc(sizeof(double) * n * 4);
	TreeModel	m;
	cJSON	   *doc,
			   *node;

	if (!train(TREE_ALGO_GBT, ML_TASK_CLASSIFY, 2, n, 4, X, &m))
		return;
	doc = export_doc(&m, names);
	node = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "trees"), 2), "nodes"), 0);
	cJSON_ReplaceItemInObject(node, "left", cJSON_CreateNumber(0));
	check_refused("a child before its parent", doc, "model.trees[2].nodes[0]");
	cJSON_Delete(doc);

	doc = export_doc(&m, names);
	node = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "trees"), 0), "nodes"), 0);
	cJSON_ReplaceItemInObject(node, "feature", cJSON_CreateString("zz"));
	check_refused("an unknown feature", doc, "not one of the model's features");
	cJSON_Delete(doc);

	doc = export_doc(&m, names);
	node = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "trees"), 1), "nodes"), 1);
	cJSON_DeleteItemFromObject(node, "cover");
	check_refused("a node without its cover", doc, "on every node or on none");
	cJSON_Delete(doc);

	doc = export_doc(&m, names);
	cJSON_ReplaceItemInObject(doc, "n_trees", cJSON_CreateNumber(m.n_trees + 1));
	check_refused("a wrong tree count", doc, "model.trees");
	cJSON_Delete(doc);

	doc = export_doc(&m, names);
	cJSON_ReplaceItemInObject(doc, "learning_rate", cJSON_CreateNumber(7));
	check_refused("a learning rate the codec refuses", doc, "learning rate");
	cJSON_Delete(doc);

	doc = export_doc(&m, names);
	{
		TreeModel	back;
		MlError		err = {0};

		CHECK(trees_import_json(&env1, doc, names, 3, &back, &err) == ML_ERR_DATA &&
			  strstr(err.msg, "names 3") != NULL, "fewer names than features: %s", err.msg);
	}
	cJSON_ReplaceItemInObject(doc, "algorithm", cJSON_CreateString("kmeans"));
	{
		TreeModel	back;
		MlError		err = {0};

		CHECK(trees_import_json(&env1, doc, names, 4, &back, &err) == ML_ERR_PARAM,
			  "a non-tree algorithm is a parameter error: %s", err.msg);
	}
	cJSON_Delete(doc);
	trees_model_free(&env1, &m);
	free(X);
}

int
main(void)
{
	env1 = mlt_env(1);
	check_round_trip("gbt binary", TREE_ALGO_GBT, ML_TASK_CLASSIFY, 2);
	check_round_trip("gbt 3 classes", TREE_ALGO_GBT, ML_TASK_CLASSIFY, 3);
	check_round_trip("gbt regression", TREE_ALGO_GBT, ML_TASK_REGRESS, 0);
	check_round_trip("decision tree classifier", TREE_ALGO_DECISION_TREE, ML_TASK_CLASSIFY, 3);
	check_round_trip("decision tree regression", TREE_ALGO_DECISION_TREE, ML_TASK_REGRESS, 0);
	check_round_trip("random forest classifier", TREE_ALGO_RANDOM_FOREST, ML_TASK_CLASSIFY, 4);
	check_round_trip("random forest regression", TREE_ALGO_RANDOM_FOREST, ML_TASK_REGRESS, 0);
	check_malformed();
	return mlt_done();
}
