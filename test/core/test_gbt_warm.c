/*
 * test_gbt_warm.c: unit tests of gbt warm start (TreeParams.warm_start,
 * trees_bins_add_model_cuts, gbt_warm_margins): continuing on the same
 * rows gives the model of one longer fit, the parent's thresholds become
 * bin edges of other rows, and its margins on binned rows are the raw ones.
 */
#include <math.h>

#include "mltest.h"
#include "trees.h"
#include "trees_int.h"

/* Column-major rows, binned, with class and regression targets. */
typedef struct WSet
{
	int64_t		n;
	int			d;
	double	   *X;
	int32_t    *yc;
	double	   *yr;
	TreeBins	bins;
	uint8_t    *B;
} WSet;

static MlEnv env1;

/* n rows of d features from seed; class = 3 bands of a score, regression = the score. */
static void
wset_make(WSet *s, int64_t n, int d, uint64_t seed, int max_bins)
{
	MlRng		r;
	MlError		err = {0};
	int64_t		i;
	int			j;

	memset(s, 0, sizeof(*s));
	s->n = n;
	s->d = d;
	s->X = calloc((size_t) n * d, sizeof(double));
	s->yc = calloc(n, sizeof(int32_t));
	s->yr = calloc(n, sizeof(double));
	ml_rng_seed(&r, seed);
	for (i = 0; i < n; i++)
	{
		double		score = 0;

		for (j = 0; j < d; j++)
		{
			double		v = ml_rng_uniform(&r) * 10;

			s->X[(size_t) j * n + i] = (i + j) % 17 == 0 ? NAN : v;
			score += (j + 1) * (isnan(s->X[(size_t) j * n + i]) ? 5 : v);
		}
		score += ml_rng_uniform(&r) * 8;
		s->yr[i] = score;
		s->yc[i] = score < 20 * d / 2.0 ? 0 : score < 26 * d / 2.0 ? 1 : 2;
	}
	if (trees_bins_fit(&env1, s->X, n, d, max_bins, 0, 1, &s->bins, &err) != ML_OK)
		printf("# bins: %s\n", err.msg);
	s->B = malloc((size_t) n * d);
	trees_bins_apply(&env1, &s->bins, s->X, n, s->B, 0);
}

/* Re-bins the rows after the bins changed. */
static void
wset_rebin(WSet *s)
{
	trees_bins_apply(&env1, &s->bins, s->X, s->n, s->B, 0);
}

static void
wset_free(WSet *s)
{
	trees_bins_free(&env1, &s->bins);
	free(s->X);
	free(s->yc);
	free(s->yr);
	free(s->B);
}

static MlStatus
wfit(const WSet *s, int n_classes, const TreeParams *p, TreeModel *m, MlError *err)
{
	TreeData	data;

	memset(&data, 0, sizeof(data));
	data.B = s->B;
	data.n = s->n;
	data.d = s->d;
	data.bins = &s->bins;
	data.y_class = s->yc;
	data.n_classes = n_classes;
	data.y = s->yr;
	memset(err, 0, sizeof(*err));
	return trees_fit(&env1, &data, p, m, NULL, err);
}

/* True when two models serialize to the same bytes. */
static bool
same_model(const TreeModel *a, const TreeModel *b)
{
	MlBuf		x,
				y;
	bool		same;

	ml_buf_init(&x, &env1);
	ml_buf_init(&y, &env1);
	trees_write(&x, a);
	trees_write(&y, b);
	same = x.len == y.len && memcmp(x.data, y.data, x.len) == 0;
	ml_free(&env1, x.data);
	ml_free(&env1, y.data);
	return same;
}

/* 30 + 20 rounds on the same rows = 50 rounds, for multi-class and regression. */
static void
test_same_rows(void)
{
	WSet		s;
	TreeParams	p;
	TreeModel	m30,
				m50,
				mw;
	MlError		err;
	int			task;

	wset_make(&s, 3000, 4, 7, 64);
	for (task = 0; task < 2; task++)
	{
		MlTask		t = task == 0 ? ML_TASK_CLASSIFY : ML_TASK_REGRESS;
		int			k = task == 0 ? 3 : 0;

		trees_params_default(&p, TREE_ALGO_GBT, t);
		p.max_depth = 4;
		p.n_estimators = 30;
		CHECK(wfit(&s, k, &p, &m30, &err) == ML_OK, "same rows %d: 30 rounds (%s)", task, err.msg);
		p.n_estimators = 50;
		CHECK(wfit(&s, k, &p, &m50, &err) == ML_OK, "same rows %d: 50 rounds (%s)", task, err.msg);
		p.n_estimators = 20;
		p.warm_start = &m30;
		CHECK(wfit(&s, k, &p, &mw, &err) == ML_OK, "same rows %d: 30 + 20 rounds (%s)", task, err.msg);
		CHECK(mw.n_trees == m50.n_trees && mw.best_iteration == 49 && same_model(&mw, &m50),
			  "same rows, %s: warm-started 30 + 20 rounds serialize as 50 rounds (%u trees)",
			  task == 0 ? "multi:softmax" : "reg:squarederror", mw.n_trees);
		trees_model_free(&env1, &mw);
		p.n_estimators = 0;
		CHECK(wfit(&s, k, &p, &mw, &err) == ML_OK && mw.n_trees == m30.n_trees &&
			  memcmp(mw.nodes, m30.nodes, sizeof(TreeNode) * m30.tree_start[m30.n_trees]) == 0,
			  "same rows %d: 0 rounds keep the parent's trees", task);
		trees_model_free(&env1, &mw);
		trees_model_free(&env1, &m30);
		trees_model_free(&env1, &m50);
	}
	wset_free(&s);
}

/*
 * Other rows with coarser bins: after trees_bins_add_model_cuts every
 * parent threshold is a cut, and the parent's margins on the binned rows
 * equal its raw-value predictions.
 */
static void
test_new_rows(void)
{
	WSet		a,
				b;
	TreeParams	p;
	TreeModel	parent,
				mw;
	MlError		err = {0};
	float	   *margin;
	TreeData	data;
	uint32_t	k;
	int64_t		i;
	bool		all_cuts = true;
	double		worst = 0;
	double		x[8];

	wset_make(&a, 2000, 3, 11, 256);
	wset_make(&b, 1500, 3, 12, 16);
	trees_params_default(&p, TREE_ALGO_GBT, ML_TASK_REGRESS);
	p.n_estimators = 15;
	CHECK(wfit(&a, 0, &p, &parent, &err) == ML_OK, "new rows: parent fits (%s)", err.msg);
	CHECK(trees_bins_add_model_cuts(&env1, &b.bins, &parent, 256, &err) == ML_OK,
		  "new rows: thresholds merged (%s)", err.msg);
	wset_rebin(&b);
	for (k = 0; k < parent.tree_start[parent.n_trees]; k++)
	{
		const TreeNode *nd = &parent.nodes[k];
		int			j,
					c;
		bool		found = false;

		if (nd->feature & TREE_NODE_LEAF || nd->value >= 1e308)
			continue;
		j = (int) (nd->feature & TREE_NODE_FEATURE_MASK);
		for (c = 0; c < b.bins.n_bins[j] - 1; c++)
			found |= b.bins.cuts[(size_t) j * 256 + c] == nd->value;
		all_cuts &= found;
	}
	CHECK(all_cuts, "new rows: every parent threshold is a bin edge of the new rows");
	memset(&data, 0, sizeof(data));
	data.B = b.B;
	data.n = b.n;
	data.d = b.d;
	data.bins = &b.bins;
	data.y = b.yr;
	margin = malloc(sizeof(float) * b.n);
	CHECK(gbt_warm_margins(&env1, &parent, &data, margin, &err) == ML_OK, "new rows: margins (%s)", err.msg);
	for (i = 0; i < b.n; i++)
	{
		double		out;
		int			j;

		for (j = 0; j < b.d; j++)
			x[j] = b.X[(size_t) j * b.n + i];
		trees_predict_row(&parent, x, &out);
		if (fabs(out - margin[i]) / (1 + fabs(out)) > worst)
			worst = fabs(out - margin[i]) / (1 + fabs(out));
	}
	CHECK(worst < 1e-5, "new rows: binned margins = raw predictions (worst relative gap %.2g)", worst);
	p.n_estimators = 10;
	p.warm_start = &parent;
	CHECK(wfit(&b, 0, &p, &mw, &err) == ML_OK && mw.n_trees == 25 && mw.best_iteration == 24,
		  "new rows: 15 + 10 rounds (%s)", err.msg);
	trees_model_free(&env1, &mw);
	/* a parent with other features is refused */
	{
		WSet		c;

		wset_make(&c, 500, 2, 13, 32);
		CHECK(wfit(&c, 0, &p, &mw, &err) == ML_ERR_PARAM,
			  "new rows: 2 features against a 3-feature parent: %s", err.msg);
		wset_free(&c);
	}
	/* classification cannot continue regression */
	p.task = ML_TASK_CLASSIFY;
	CHECK(wfit(&b, 3, &p, &mw, &err) == ML_ERR_PARAM, "new rows: classification on a regression parent: %s",
		  err.msg);
	free(margin);
	trees_model_free(&env1, &parent);
	wset_free(&a);
	wset_free(&b);
}

int
main(void)
{
	env1 = mlt_env(1);
	test_same_rows();
	test_new_rows();
	return mlt_done();
}
