/*
 * test_xgb_import.c: the XGBoost JSON importer on small documents written
 * here: what each objective scores (margins, probabilities, base_score,
 * multi-class tree order), XGBoost's float split rule converted exactly,
 * default directions, covers, feature names, the codec round trip, and one
 * document per error path, checking the status and the JSON path named.
 */
#include <float.h>
#include <math.h>

#include "explain.h"
#include "mltest.h"
#include "xgb_import.h"

static MlEnv env1;

/* One tree's JSON from its arrays (as strings, e.g. "[1,-1,-1]"). */
static void
tree_json(char *out, size_t cap, int n, const char *left, const char *right, const char *feat,
		  const char *cond, const char *dl, const char *hess)
{
	snprintf(out, cap,
			 "{\"base_weights\":[],\"default_left\":%s,\"id\":0,\"left_children\":%s,"
			 "\"loss_changes\":[],\"parents\":[],\"right_children\":%s,\"split_conditions\":%s,"
			 "\"split_indices\":%s,\"sum_hessian\":%s,"
			 "\"tree_param\":{\"num_deleted\":\"0\",\"num_feature\":\"2\",\"num_nodes\":\"%d\","
			 "\"size_leaf_vector\":\"0\"}}",
			 dl, left, right, cond, feat, hess, n);
}

/* A whole document. */
static char *
doc_json(const char *objective, const char *num_class, const char *base_score,
		 const char *tree_info, const char *trees)
{
	size_t		cap = strlen(trees) + 2048;
	char	   *d = malloc(cap);

	snprintf(d, cap,
			 "{\"learner\":{\"attributes\":{},\"feature_names\":[\"a\",\"b\"],\"feature_types\":[],"
			 "\"gradient_booster\":{\"model\":{\"gbtree_model_param\":{\"num_parallel_tree\":\"1\","
			 "\"num_trees\":\"1\",\"size_leaf_vector\":\"0\"},\"tree_info\":%s,\"trees\":[%s]},"
			 "\"name\":\"gbtree\"},\"learner_model_param\":{\"base_score\":\"%s\","
			 "\"boost_from_average\":\"1\",\"num_class\":\"%s\",\"num_feature\":\"2\","
			 "\"num_target\":\"1\"},\"objective\":{\"name\":\"%s\"}},\"version\":[1,7,4]}",
			 tree_info, trees, base_score, num_class, objective);
	return d;
}

/* The stump x0 < cond ? lo : hi (NaN left when dl is 1), covers 10 / 4 / 6. */
static void
stump(char *out, size_t cap, const char *cond, double lo, double hi, int dl)
{
	char		c[128],
				d[32];

	snprintf(c, sizeof(c), "[%s,%.9g,%.9g]", cond, lo, hi);
	snprintf(d, sizeof(d), "[%d,0,0]", dl);
	tree_json(out, cap, 3, "[1,-1,-1]", "[2,-1,-1]", "[0,0,0]", c, d, "[10,4,6]");
}

static MlStatus
import(const char *doc, XgbImport *imp, MlError *err)
{
	memset(err, 0, sizeof(*err));
	return xgb_import_json(&env1, doc, strlen(doc), imp, err);
}

static void
test_binary(void)
{
	char		t0[1024],
				t1[1024],
				trees[2100];
	char	   *doc;
	XgbImport	imp;
	MlError		err;
	double		x[2] = {0.25, 0},
				p[2],
				raw;

	stump(t0, sizeof(t0), "0.5", -0.4, 0.6, 1);
	tree_json(t1, sizeof(t1), 1, "[-1]", "[-1]", "[0]", "[0.1]", "[0]", "[10]");
	snprintf(trees, sizeof(trees), "%s,%s", t0, t1);
	doc = doc_json("binary:logistic", "0", "5E-1", "[0,0]", trees);
	CHECK(import(doc, &imp, &err) == ML_OK, "binary:logistic imports: %s", err.msg);
	free(doc);
	if (!imp.model.nodes)
		return;
	CHECK(imp.model.algorithm == TREE_ALGO_GBT && imp.model.n_classes == 2 &&
		  imp.model.n_trees == 2 && imp.model.base_score[0] == 0 &&
		  strcmp(imp.objective, "binary:logistic") == 0,
		  "binary: gbt, 2 classes, 2 trees, base margin logit(0.5) = 0");
	CHECK(imp.feature_names && strcmp(imp.feature_names[1], "b") == 0, "binary: feature names kept");
	trees_predict_row(&imp.model, x, p);
	tree_explain_raw(&imp.model, x, &raw);
	CHECK(fabs(raw - (-0.4f + 0.1f)) < 1e-7 && fabs(p[1] - 1 / (1 + exp(-raw))) < 1e-15,
		  "binary: x0 = 0.25 < 0.5 goes left: margin %.9g, p %.9g", raw, p[1]);
	x[0] = 0.5;
	tree_explain_raw(&imp.model, x, &raw);
	CHECK(fabs(raw - (0.6f + 0.1f)) < 1e-7, "binary: x0 = 0.5 is not < 0.5: right (%.9g)", raw);
	x[0] = NAN;
	tree_explain_raw(&imp.model, x, &raw);
	CHECK(fabs(raw - (-0.4f + 0.1f)) < 1e-7, "binary: NaN takes default_left (%.9g)", raw);
	CHECK(imp.cover[0] == 10 && imp.cover[1] == 4 && imp.cover[2] == 6 && imp.cover[3] == 10,
		  "binary: sum_hessian kept as covers");
	{
		TreeExplainer *ex;
		double		phi[3];

		CHECK(tree_explainer_build(&env1, &imp.model, imp.cover, &ex, &err) == ML_OK,
			  "binary: explainer on an imported model");
		x[0] = 0.25;
		tree_explain_row(ex, x, phi);
		/* E = 0.4 * -0.4 + 0.6 * 0.6 + 0.1; phi0 = -0.4 - (0.4 * -0.4 + 0.6 * 0.6) */
		CHECK(fabs(phi[2] - ((double) 0.4 * -0.4f + 0.6 * 0.6f + 0.1f)) < 1e-7 &&
			  fabs(phi[0] - (-0.4f - (0.4 * -0.4f + 0.6 * 0.6f))) < 1e-7 && phi[1] == 0,
			  "binary: contributions of a stump (%.9g, %.9g | %.9g)", phi[0], phi[1], phi[2]);
		tree_explainer_free(&env1, ex);
	}
	xgb_import_free(&env1, &imp);
}

/* XGBoost compares floats: (float) x < t. Check doubles around the cut. */
static void
test_float_split_rule(void)
{
	const char *conds[] = {"0.1", "-0.1", "1e-40", "0", "-3.4028234663852886e38", "16777217",
	"1.5"};
	int			i,
				bad = 0,
				tried = 0;

	for (i = 0; i < (int) (sizeof(conds) / sizeof(conds[0])); i++)
	{
		char		t0[1024];
		char	   *doc;
		XgbImport	imp;
		MlError		err;
		float		t = (float) strtod(conds[i], NULL);
		float		prev = nextafterf(t, -INFINITY);
		double		lo = isinf(prev) ? -ldexp(1, 128) : prev;
		double		mid = (lo + (double) t) / 2,
					probes[9];
		int			k;

		stump(t0, sizeof(t0), conds[i], -1, 1, 0);
		doc = doc_json("reg:squarederror", "0", "0", "[0]", t0);
		if (import(doc, &imp, &err) != ML_OK)
		{
			CHECK(false, "split rule: condition %s imports: %s", conds[i], err.msg);
			free(doc);
			continue;
		}
		free(doc);
		probes[0] = mid;
		probes[1] = nextafter(mid, -INFINITY);
		probes[2] = nextafter(mid, INFINITY);
		probes[3] = t;
		probes[4] = nextafter((double) t, -INFINITY);
		probes[5] = lo;
		probes[6] = nextafter(lo, INFINITY);
		probes[7] = nextafter((double) t, INFINITY);
		probes[8] = (lo + mid) / 2;
		for (k = 0; k < 9; k++)
		{
			double		x[2] = {probes[k], 0},
						out;
			bool		xgb_left = (float) probes[k] < t;

			trees_predict_row(&imp.model, x, &out);
			tried++;
			if ((out < 0) != xgb_left)
			{
				bad++;
				printf("# condition %s, x %.17g: mlpipe %s, XGBoost %s\n", conds[i], probes[k],
					   out < 0 ? "left" : "right", xgb_left ? "left" : "right");
			}
		}
		xgb_import_free(&env1, &imp);
	}
	CHECK(bad == 0, "split rule: (float) x < t == x <= threshold on %d doubles at the float edges",
		  tried);
}

static void
test_multi_and_regression(void)
{
	char		t[6][1024],
				trees[6200];
	char	   *doc;
	XgbImport	imp;
	MlError		err;
	double		x[2] = {1, 0},
				raw[3];
	int			i;

	/* trees grouped by class in the document (as num_parallel_tree does) */
	for (i = 0; i < 6; i++)
		stump(t[i], sizeof(t[i]), "0", i, 10 * (i + 1), 0);
	snprintf(trees, sizeof(trees), "%s,%s,%s,%s,%s,%s", t[0], t[1], t[2], t[3], t[4], t[5]);
	doc = doc_json("multi:softprob", "3", "5E-1", "[0,0,1,1,2,2]", trees);
	CHECK(import(doc, &imp, &err) == ML_OK, "multi:softprob imports: %s", err.msg);
	free(doc);
	if (!imp.model.nodes)
		return;
	tree_explain_raw(&imp.model, x, raw);
	CHECK(imp.model.trees_per_round == 3 && raw[0] == 0.5 + 10 + 20 && raw[1] == 0.5 + 30 + 40 &&
		  raw[2] == 0.5 + 50 + 60, "multi: trees regrouped round-robin, base 0.5 per class (%g %g %g)",
		  raw[0], raw[1], raw[2]);
	xgb_import_free(&env1, &imp);
	doc = doc_json("multi:softmax", "3", "5E-1", "[0,1,2,0,1,2]", trees);
	CHECK(import(doc, &imp, &err) == ML_OK && imp.model.n_outputs == 3,
		  "multi:softmax imports with 3 outputs: %s", err.msg);
	free(doc);
	xgb_import_free(&env1, &imp);
	doc = doc_json("reg:squarederror", "0", "1.25E1", "[0]", t[1]);
	CHECK(import(doc, &imp, &err) == ML_OK, "reg:squarederror imports: %s", err.msg);
	free(doc);
	{
		double		out;

		trees_predict_row(&imp.model, x, &out);
		CHECK(imp.model.task == ML_TASK_REGRESS && out == 12.5 + 20,
			  "regression: base_score 12.5 + leaf 20 = %g", out);
	}
	xgb_import_free(&env1, &imp);
}

/* One bad document: status and a substring of the message. */
static void
bad_doc(const char *what, const char *doc, MlStatus want, const char *path)
{
	XgbImport	imp;
	MlError		err;
	MlStatus	st = import(doc, &imp, &err);

	CHECK(st == want && strstr(err.msg, path) != NULL && imp.model.nodes == NULL,
		  "%s: %s naming \"%s\": %s", what, want == ML_ERR_PARAM ? "PARAM" : "DATA", path, err.msg);
}

/* A bad document from a binary one with one tree (given) and extra text replaced. */
static void
bad_tree(const char *what, int n, const char *left, const char *right, const char *feat,
		 const char *cond, const char *dl, const char *hess, const char *path)
{
	char		t0[1024],
				t1[1024],
				trees[2100];
	char	   *doc;

	stump(t0, sizeof(t0), "0.5", -1, 1, 1);
	tree_json(t1, sizeof(t1), n, left, right, feat, cond, dl, hess);
	snprintf(trees, sizeof(trees), "%s,%s", t0, t1);
	doc = doc_json("binary:logistic", "0", "0.5", "[0,0]", trees);
	bad_doc(what, doc, ML_ERR_DATA, path);
	free(doc);
}

/* The valid binary document with one substring replaced. */
static void
bad_edit(const char *what, const char *from, const char *to, MlStatus want, const char *path)
{
	char		t0[1024];
	char	   *doc,
			   *out,
			   *at;

	stump(t0, sizeof(t0), "0.5", -1, 1, 1);
	doc = doc_json("binary:logistic", "0", "0.5", "[0]", t0);
	at = strstr(doc, from);
	if (!at)
	{
		CHECK(false, "%s: test edit \"%s\" not found", what, from);
		free(doc);
		return;
	}
	out = malloc(strlen(doc) + strlen(to) + 1);
	memcpy(out, doc, at - doc);
	strcpy(out + (at - doc), to);
	strcat(out, at + strlen(from));
	bad_doc(what, out, want, path);
	free(out);
	free(doc);
}

static void
test_errors(void)
{
	char	   *deep;

	bad_doc("not JSON", "{\"learner\":", ML_ERR_DATA, "not valid JSON");
	bad_doc("not an object", "[1,2]", ML_ERR_DATA, "(document)");
	bad_doc("no version", "{\"learner\":{}}", ML_ERR_DATA, "version");
	bad_edit("version 2", "\"version\":[1,7,4]", "\"version\":[2,0,0]", ML_ERR_PARAM, "version");
	bad_edit("version not numbers", "\"version\":[1,7,4]", "\"version\":[\"1\"]", ML_ERR_DATA,
			 "version");
	bad_edit("no learner", "{\"learner\":", "{\"learnr\":", ML_ERR_DATA, "learner: missing");
	bad_edit("dart booster", "\"name\":\"gbtree\"", "\"name\":\"dart\"", ML_ERR_PARAM,
			 "learner.gradient_booster.name");
	bad_edit("unsupported objective", "binary:logistic", "reg:logistic", ML_ERR_PARAM,
			 "learner.objective.name");
	bad_edit("objective not a string", "\"name\":\"binary:logistic\"", "\"name\":3", ML_ERR_DATA,
			 "learner.objective.name");
	bad_edit("num_feature not an integer", "\"num_feature\":\"2\",\"num_target", "\"num_feature\":\"two\",\"num_target",
			 ML_ERR_DATA, "learner.learner_model_param.num_feature");
	bad_edit("num_feature 0", "\"num_feature\":\"2\",\"num_target", "\"num_feature\":\"0\",\"num_target", ML_ERR_DATA,
			 "learner.learner_model_param.num_feature");
	bad_edit("num_class missing", "\"num_class\":\"0\",", "", ML_ERR_DATA,
			 "learner.learner_model_param.num_class");
	bad_edit("softprob with 1 class", "binary:logistic", "multi:softprob", ML_ERR_DATA,
			 "learner.learner_model_param.num_class");
	bad_edit("base_score 1 for binary", "\"base_score\":\"0.5\"", "\"base_score\":\"1\"",
			 ML_ERR_DATA, "learner.learner_model_param.base_score");
	bad_edit("base_score not a number", "\"base_score\":\"0.5\"", "\"base_score\":\"half\"",
			 ML_ERR_DATA, "learner.learner_model_param.base_score");
	bad_edit("no trees", "\"trees\":[{", "\"trees\":[],\"x\":[{", ML_ERR_DATA,
			 "learner.gradient_booster.model.trees: the model has no trees");
	bad_edit("tree_info too long", "\"tree_info\":[0]", "\"tree_info\":[0,0]", ML_ERR_DATA,
			 "learner.gradient_booster.model.tree_info");
	bad_edit("tree_info group out of range", "\"tree_info\":[0]", "\"tree_info\":[1]",
			 ML_ERR_DATA, "learner.gradient_booster.model.tree_info[0]");
	bad_edit("tree not an object", "\"tree_info\":[0],\"trees\":[{",
			 "\"tree_info\":[0,0],\"trees\":[7,{", ML_ERR_DATA,
			 "learner.gradient_booster.model.trees[0]: is not an object");
	bad_edit("num_nodes missing", "\"num_nodes\":\"3\",", "", ML_ERR_DATA,
			 "learner.gradient_booster.model.trees[0].tree_param.num_nodes");
	bad_edit("default_left a string", "\"default_left\":[1,0,0]", "\"default_left\":[\"y\",0,0]",
			 ML_ERR_DATA, "learner.gradient_booster.model.trees[0].default_left[0]");
	bad_edit("feature name not a string", "[\"a\",\"b\"]", "[\"a\",2]", ML_ERR_DATA,
			 "learner.feature_names[1]");
	bad_edit("categorical split", "\"sum_hessian\"", "\"split_type\":[1,0,0],\"sum_hessian\"",
			 ML_ERR_PARAM, "learner.gradient_booster.model.trees[0].split_type[0]");
	{
		char		t0[1024],
					trees[4200];
		char	   *doc;

		stump(t0, sizeof(t0), "0.5", -1, 1, 1);
		snprintf(trees, sizeof(trees), "%s,%s,%s", t0, t0, t0);
		doc = doc_json("multi:softprob", "2", "0.5", "[0,0,1]", trees);
		bad_doc("3 trees for 2 classes", doc, ML_ERR_DATA, "not a whole number of rounds");
		free(doc);
		snprintf(trees, sizeof(trees), "%s,%s,%s,%s", t0, t0, t0, t0);
		doc = doc_json("multi:softprob", "2", "0.5", "[0,0,0,1]", trees);
		bad_doc("unequal trees per class", doc, ML_ERR_DATA,
				"learner.gradient_booster.model.tree_info[2]");
		free(doc);
	}
	bad_tree("array shorter than num_nodes", 3, "[1,-1]", "[2,-1,-1]", "[0,0,0]", "[0,1,2]",
			 "[0,0,0]", "[3,1,2]", "trees[1].left_children: has 2 entries");
	bad_tree("array longer than num_nodes", 3, "[1,-1,-1]", "[2,-1,-1]", "[0,0,0]", "[0,1,2]",
			 "[0,0,0]", "[3,1,2,4]", "trees[1].sum_hessian[3]");
	bad_tree("left child out of range", 3, "[7,-1,-1]", "[2,-1,-1]", "[0,0,0]", "[0,1,2]",
			 "[0,0,0]", "[3,1,2]", "learner.gradient_booster.model.trees[1].left_children[0]");
	bad_tree("right child negative", 3, "[1,-1,-1]", "[-1,-1,-1]", "[0,0,0]", "[0,1,2]",
			 "[0,0,0]", "[3,1,2]", "learner.gradient_booster.model.trees[1].right_children[0]");
	bad_tree("both children the same", 3, "[1,-1,-1]", "[1,-1,-1]", "[0,0,0]", "[0,1,2]",
			 "[0,0,0]", "[3,1,2]", "trees[1].right_children[0]");
	bad_tree("child fraction", 3, "[1.5,-1,-1]", "[2,-1,-1]", "[0,0,0]", "[0,1,2]",
			 "[0,0,0]", "[3,1,2]", "trees[1].left_children[0]: is not an integer");
	bad_tree("cycle back to the root", 3, "[1,0,-1]", "[2,2,-1]", "[0,0,0]", "[0,1,2]",
			 "[0,0,0]", "[3,1,2]", "trees[1].left_children[1]: node 0 is reached twice");
	bad_tree("shared node", 5, "[1,3,3,-1,-1]", "[2,4,4,-1,-1]", "[0,0,0,0,0]", "[0,1,2,3,4]",
			 "[0,0,0,0,0]", "[3,1,2,1,1]", "trees[1].left_children[2]: node 3 is reached twice");
	bad_tree("feature out of range", 3, "[1,-1,-1]", "[2,-1,-1]", "[2,0,0]", "[0,1,2]",
			 "[0,0,0]", "[3,1,2]", "learner.gradient_booster.model.trees[1].split_indices[0]");
	bad_tree("feature negative", 3, "[1,-1,-1]", "[2,-1,-1]", "[-1,0,0]", "[0,1,2]",
			 "[0,0,0]", "[3,1,2]", "trees[1].split_indices[0]");
	bad_tree("negative hessian", 3, "[1,-1,-1]", "[2,-1,-1]", "[0,0,0]", "[0,1,2]",
			 "[0,0,0]", "[3,-1,2]", "trees[1].sum_hessian[1]");
	bad_tree("split beyond float range", 3, "[1,-1,-1]", "[2,-1,-1]", "[0,0,0]", "[1e39,1,2]",
			 "[0,0,0]", "[3,1,2]", "trees[1].split_conditions[0]");
	bad_tree("leaf beyond float range", 3, "[1,-1,-1]", "[2,-1,-1]", "[0,0,0]", "[0,-1e300,2]",
			 "[0,0,0]", "[3,1,2]", "trees[1].split_conditions[1]");
	bad_tree("one child only", 3, "[1,-1,-1]", "[2,-1,0]", "[0,0,0]", "[0,1,2]",
			 "[0,0,0]", "[3,1,2]", "trees[1].left_children[2]");
	bad_tree("split_conditions not an array", 3, "[1,-1,-1]", "[2,-1,-1]", "[0,0,0]", "{}",
			 "[0,0,0]", "[3,1,2]", "trees[1].split_conditions: has the wrong type");
	/* a chain deeper than TREESHAP_MAX_DEPTH */
	{
		int			n = 2 * 140 + 1,
					i;
		size_t		cap = (size_t) n * 48 + 4096;
		char	   *l = malloc(cap),
				   *r = malloc(cap),
				   *f = malloc(cap),
				   *c = malloc(cap),
				   *dl = malloc(cap),
				   *h = malloc(cap),
				   *tree = malloc(cap * 7),
				   *doc;
		size_t		pl = 0,
					pr = 0,
					pf = 0,
					pc = 0,
					pd = 0,
					ph = 0;

		for (i = 0; i < n; i++)
		{
			/* node 2k splits to 2k+1 (leaf) and 2k+2 */
			bool		internal = i % 2 == 0 && i + 2 < n;
			const char *sep = i ? "," : "[";

			pl += sprintf(l + pl, "%s%d", sep, internal ? i + 1 : -1);
			pr += sprintf(r + pr, "%s%d", sep, internal ? i + 2 : -1);
			pf += sprintf(f + pf, "%s0", sep);
			pc += sprintf(c + pc, "%s%d", sep, i);
			pd += sprintf(dl + pd, "%s0", sep);
			ph += sprintf(h + ph, "%s1", sep);
		}
		strcat(l, "]");
		strcat(r, "]");
		strcat(f, "]");
		strcat(c, "]");
		strcat(dl, "]");
		strcat(h, "]");
		tree_json(tree, cap * 7, n, l, r, f, c, dl, h);
		doc = doc_json("reg:squarederror", "0", "0", "[0]", tree);
		deep = doc;
		bad_doc("a chain 140 deep", deep, ML_ERR_DATA, "deeper than 128");
		free(doc);
		free(l);
		free(r);
		free(f);
		free(c);
		free(dl);
		free(h);
		free(tree);
	}
}

/* Import, write as an artifact payload, read back: same scores. */
static void
test_round_trip(void)
{
	char		t0[1024];
	char	   *doc;
	XgbImport	imp;
	MlError		err;
	MlBuf		b;
	MlReader	r;
	TreeModel	m2;
	double		x[2] = {0.3, 1},
				p1[2],
				p2[2];
	bool		ok;

	stump(t0, sizeof(t0), "0.30000001", -0.25, 0.75, 0);
	doc = doc_json("binary:logistic", "0", "0.3", "[0]", t0);
	CHECK(import(doc, &imp, &err) == ML_OK, "round trip: imports: %s", err.msg);
	free(doc);
	if (!imp.model.nodes)
		return;
	ml_buf_init(&b, &env1);
	trees_write(&b, &imp.model);
	ml_rd_init(&r, b.data, b.len, &env1, &err);
	ok = trees_read(&r, &env1, &m2);
	trees_predict_row(&imp.model, x, p1);
	if (ok)
		trees_predict_row(&m2, x, p2);
	CHECK(ok && p1[1] == p2[1] && fabs(imp.model.base_score[0] - log(0.3 / 0.7)) < 1e-6,
		  "round trip: the codec reads the imported model back, same scores; base margin logit(0.3)");
	if (ok)
		trees_model_free(&env1, &m2);
	free(b.data);
	xgb_import_free(&env1, &imp);
}

int
main(void)
{
	env1 = mlt_env(1);
	test_binary();
	test_float_split_rule();
	test_multi_and_regression();
	test_round_trip();
	test_errors();
	return mlt_done();
}
