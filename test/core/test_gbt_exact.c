/*
 * test_gbt_exact.c: gbt's exact sums (docs/trees.md, "Exact sums"). The
 * gradient pass puts every g and h on a power-of-two grid whose quantum q
 * keeps the sum of their magnitudes over the training rows below 2^53 q
 * (gbt_loss.c), with no logistic or softmax hessian 0 (margins to +-30
 * put p (1 - p) far below the quantum): checked for each objective, class
 * weights, and squared error with targets of a large range and of a tiny
 * one, over rounds whose largest |g| grows and shrinks. Then the sums do
 * not depend on the order of rows: the same rows permuted train the same
 * model bytes, on 1 and on 2 threads. Last, the logistic losses (summed as
 * the log of a product, gbt_loss.c) against the row-by-row sum of libm's
 * -log(p), also where every p is clamped at 1e-15.
 */
#include <math.h>

#include "mltest.h"
#include "mltest_trees.h"
#include "mlbuf.h"
#include "trees_int.h"

#define N_PASS 50001			/* rows of the gradient-pass checks */
#define N_ROWS 140000			/* rows of the permuted fits: > 2 row tasks */
#define N_FEAT 5

static MlEnv env1,
			env2;

/* A uniform double in [0, 1) from the test's own generator. */
static double
unit(MlRng *r)
{
	return ml_rng_uniform(r);
}

/*
 * Whether n values v[0], v[stride], ... are multiples of q and their
 * magnitudes sum (in double, forward and backward alike: exactly) below
 * 2^53 q.
 */
static bool
on_grid(const float *v, size_t n, size_t stride, double q)
{
	double		fw = 0,
				bw = 0;
	size_t		i;

	if (!(q > 0))
		return false;
	for (i = 0; i < n; i++)
	{
		double		x = v[i * stride];

		if (fmod(x, q) != 0)
			return false;
		fw += fabs(x);
		bw += fabs((double) v[(n - 1 - i) * stride]);
	}
	return fw == bw && fw < 0x1p53 * q;
}

/* A binary logistic gradient pass over data's rows: margins m, pairs into gh. */
static void
logistic_args(GbtGrad *a, const TreeData *data, const float *m, float *gh)
{
	memset(a, 0, sizeof(*a));
	a->data = data;
	a->margin = m;
	a->gh = gh;
	a->K = 1;
	a->obj = TREE_OBJ_BINARY_LOGISTIC;
}

/*
 * One gradient pass of objective obj (K margins a row) over margins m
 * on 2 tasks; checks its g and h against their quanta (and that no
 * hessian is 0: XGBoost's floor, as one quantum), named `what`.
 */
static void
check_pass(GbtGrad *a, const char *what)
{
	size_t		n = (size_t) a->data->n;
	bool		ok = true;
	int			c;

	a->n_rows = (uint32_t) n;
	gbt_grad_run(&env2, 2, a);
	for (c = 0; c < a->K; c++)
	{
		ok &= on_grid(a->gh + (size_t) c * 2 * n, n, 2, a->qg);
		if (a->obj == TREE_OBJ_REG_SQUAREDERROR)
			ok &= a->qh == 0 && a->gh[(size_t) c * 2 * n + 1] == 1.0f;
		else
		{
			size_t		i;

			ok &= on_grid(a->gh + (size_t) c * 2 * n + 1, n, 2, a->qh);
			for (i = 0; i < n; i++)
				ok &= a->gh[(size_t) c * 2 * n + 2 * i + 1] >= a->qh;	/* never 0 */
		}
	}
	CHECK(ok, "%s: g on a grid of 2^%d, h of 2^%d (0: h = 1), sums of |values| below 2^53 quanta",
		  what, ilogb(a->qg), a->qh > 0 ? ilogb(a->qh) : 0);
}

/* The quantum rule for every objective the trainer has. */
static void
check_quanta(void)
{
	static float margin[3 * N_PASS],
				gh[3 * 2 * N_PASS];
	static int32_t y2[N_PASS],
				y3[N_PASS];
	static double yr[N_PASS];
	double		cw[3] = {0.7, 2.5, 1.0};
	TreeData	data;
	GbtGrad		a;
	MlRng		r;
	size_t		i;
	int			range;

	ml_rng_seed(&r, 5);
	for (i = 0; i < 3 * N_PASS; i++)
		margin[i] = (float) (60.0 * unit(&r) - 30.0);
	for (i = 0; i < N_PASS; i++)
	{
		y2[i] = unit(&r) < 0.4;
		y3[i] = (int32_t) (3 * unit(&r));
	}
	memset(&data, 0, sizeof(data));
	data.n = N_PASS;
	logistic_args(&a, &data, margin, gh);
	data.n_classes = 2;
	data.y_class = y2;
	check_pass(&a, "binary:logistic");
	a.cw = cw;
	check_pass(&a, "binary:logistic, class weights");
	a.obj = TREE_OBJ_MULTI_SOFTMAX;
	a.K = 3;
	data.n_classes = 3;
	data.y_class = y3;
	check_pass(&a, "multi:softmax, class weights");
	a.cw = NULL;
	check_pass(&a, "multi:softmax");

	/* squared error: targets up to 1e12, then within 1e-3; margins near them */
	a.obj = TREE_OBJ_REG_SQUAREDERROR;
	a.K = 1;
	data.n_classes = 0;
	data.y_class = NULL;
	data.y = yr;
	for (range = 0; range < 2; range++)
	{
		double		s = range == 0 ? 1e12 : 1e-3;

		for (i = 0; i < N_PASS; i++)
		{
			yr[i] = s * (2 * unit(&r) - 1);
			margin[i] = (float) (yr[i] + s * 0.01 * (unit(&r) - 0.5));
		}
		check_pass(&a, range == 0 ? "squared error, targets to 1e12"
				   : "squared error, targets within 1e-3");
		/* the next round's gradients 100x larger, then smaller */
		for (i = 0; i < N_PASS; i++)
			margin[i] = (float) (yr[i] + s * (unit(&r) - 0.5));
		check_pass(&a, "squared error, largest |g| 100x larger");
		for (i = 0; i < N_PASS; i++)
			margin[i] = (float) (yr[i] + s * 0.001 * (unit(&r) - 0.5));
		check_pass(&a, "squared error, largest |g| 1000x smaller");
	}
}

/* A fit of 12 rounds, depth 6 (0 on failure), the model's hash. */
static uint64_t
fit_hash(const TreeData *data, MlTask task, const MlEnv *env)
{
	TreeParams	p;
	TreeModel	m;
	TreeFitInfo info;
	MlError		err = {0};
	uint64_t	h;

	trees_params_default(&p, TREE_ALGO_GBT, task);
	p.n_estimators = 12;
	p.max_depth = 6;
	p.learning_rate = 1.0;		/* confident rows soon: gradients of many magnitudes */
	p.colsample = 0.8;
	p.seed = 3;
	if (trees_fit(env, data, &p, &m, &info, &err) != ML_OK)
	{
		printf("# %s\n", err.msg);
		return 0;
	}
	h = mlt_model_hash(&env1, &m);
	trees_model_free(env, &m);
	return h;
}

/*
 * The same rows in another order train the same bytes: binary, three
 * classes and regression (targets on a grid of 2^-10, a seventh of them
 * large, so the base margin, the mean summed in row order, is exact too),
 * on 1 and 2 threads. Without the grids the two classification fits
 * differ (checked when this test was written); the regression fit did not.
 */
static void
check_permuted(void)
{
	static double X[(size_t) N_ROWS * N_FEAT];
	static uint8_t B[(size_t) N_ROWS * N_FEAT],
				Bp[(size_t) N_ROWS * N_FEAT];
	static int32_t y2[N_ROWS],
				y3[N_ROWS],
				y2p[N_ROWS],
				y3p[N_ROWS];
	static double yr[N_ROWS],
				yrp[N_ROWS];
	static uint32_t perm[N_ROWS];
	TreeBins	bins;
	MlError		err = {0};
	MlRng		r;
	size_t		i;
	int			j,
				t;

	ml_rng_seed(&r, 11);
	for (i = 0; i < N_ROWS; i++)
	{
		double		s = 0;

		for (j = 0; j < N_FEAT; j++)
		{
			double		v = 10 * unit(&r);

			X[(size_t) j * N_ROWS + i] = (i * 3 + j) % 19 == 0 ? NAN : v;
			s += (j + 1) * (isnan(X[(size_t) j * N_ROWS + i]) ? 3 : v);
		}
		s += 15 * unit(&r);
		yr[i] = ldexp(floor(s * 1024), -10) * (i % 7 == 0 ? 1000 : 1);	/* residuals of many magnitudes */
		y2[i] = s > 90;
		y3[i] = s < 75 ? 0 : s < 100 ? 1 : 2;
		perm[i] = (uint32_t) i;
	}
	for (i = N_ROWS - 1; i > 0; i--)
	{
		size_t		k = (size_t) (unit(&r) * (i + 1));
		uint32_t	x = perm[i];

		perm[i] = perm[k];
		perm[k] = x;
	}
	if (trees_bins_fit(&env1, X, N_ROWS, N_FEAT, 256, 50000, 3, &bins, &err) != ML_OK)
	{
		CHECK(false, "bins fitted");
		return;
	}
	trees_bins_apply(&env1, &bins, X, N_ROWS, B, 0);
	for (i = 0; i < N_ROWS; i++)
	{
		memcpy(Bp + i * N_FEAT, B + (size_t) perm[i] * N_FEAT, N_FEAT);
		y2p[i] = y2[perm[i]];
		y3p[i] = y3[perm[i]];
		yrp[i] = yr[perm[i]];
	}
	for (t = 0; t < 3; t++)
	{
		static const char *names[] = {"binary", "three classes", "regression"};
		TreeData	d0,
					d1;
		MlTask		task = t == 2 ? ML_TASK_REGRESS : ML_TASK_CLASSIFY;
		uint64_t	h0,
					h1,
					h2;

		memset(&d0, 0, sizeof(d0));
		d0.B = B;
		d0.n = N_ROWS;
		d0.d = N_FEAT;
		d0.bins = &bins;
		d0.n_classes = t == 0 ? 2 : t == 1 ? 3 : 0;
		d0.y_class = t == 0 ? y2 : t == 1 ? y3 : NULL;
		d0.y = t == 2 ? yr : NULL;
		d1 = d0;
		d1.B = Bp;
		d1.y_class = t == 0 ? y2p : t == 1 ? y3p : NULL;
		d1.y = t == 2 ? yrp : NULL;
		h0 = fit_hash(&d0, task, &env1);
		h1 = fit_hash(&d1, task, &env1);
		h2 = fit_hash(&d1, task, &env2);
		CHECK(h0 != 0 && h0 == h1 && h1 == h2,
			  "%s: rows permuted train the same bytes (1 and 2 threads)", names[t]);
	}
	trees_bins_free(&env1, &bins);
}

/*
 * The row-by-row logloss of n margins m with classes y: -log of each
 * row's p of its class (clamped at 1e-15), summed in order with libm.
 */
static double
naive_logloss(const float *m, const int32_t *y, size_t n)
{
	double		s = 0;
	size_t		i;

	for (i = 0; i < n; i++)
	{
		double		p = 1.0 / (1.0 + exp(-(double) m[i]));

		p = y[i] == 0 ? 1.0 - p : p;
		s += -log(p < 1e-15 ? 1e-15 : p);
	}
	return s;
}

/*
 * The training loss (chunk sums, 1 and 2 threads), the gradient pass's
 * loss of the same margins and the validation loss against naive_logloss:
 * the first two equal bit for bit, all within a relative 1e-12 (the
 * product's factors round to 2^-53 each, as the terms of a sum do).
 */
static void
check_logistic_loss(void)
{
	static float margin[N_PASS],
				gh[2 * N_PASS];
	static int32_t y[N_PASS];
	double		part[N_PASS / GBT_LOSS_CHUNK + 1];
	TreeData	data;
	GbtGrad		a;
	MlRng		r;
	size_t		i;
	int			spread;

	ml_rng_seed(&r, 11);
	memset(&data, 0, sizeof(data));
	data.n = N_PASS;
	data.n_classes = 2;
	data.y_class = y;
	for (spread = 0; spread < 2; spread++)
	{
		double		naive,
					t1,
					t2,
					v,
					gp;

		for (i = 0; i < N_PASS; i++)
		{
			y[i] = unit(&r) < 0.4;
			/* spread 1: every row far on the wrong side, p clamped at 1e-15 */
			margin[i] = spread == 0 ? (float) (16.0 * unit(&r) - 8.0) : (y[i] ? -40.0f : 40.0f);
		}
		naive = naive_logloss(margin, y, N_PASS);
		t1 = gbt_train_loss_of(&env1, 1, &data, TREE_OBJ_BINARY_LOGISTIC, 1, margin, NULL, N_PASS, part);
		t2 = gbt_train_loss_of(&env2, 2, &data, TREE_OBJ_BINARY_LOGISTIC, 1, margin, NULL, N_PASS, part);
		v = gbt_valid_loss(&data, TREE_OBJ_BINARY_LOGISTIC, 1, margin, NULL, N_PASS) * N_PASS;
		logistic_args(&a, &data, margin, gh);
		a.n_rows = N_PASS;
		a.loss_part = part;
		gbt_grad_run(&env2, 2, &a);
		gp = gbt_loss_total(TREE_OBJ_BINARY_LOGISTIC, part, N_PASS);
		CHECK(memcmp(&t1, &t2, sizeof(double)) == 0 && memcmp(&gp, &t1, sizeof(double)) == 0 &&
			  fabs(t1 * N_PASS - naive) <= 1e-12 * naive && fabs(v - naive) <= 1e-12 * naive,
			  "logloss as the log of a product (%s): %.17g, row by row %.17g",
			  spread ? "every p clamped at 1e-15" : "margins in [-8, 8]", t1 * N_PASS, naive);
	}
}

int
main(void)
{
	env1 = mlt_env(1);
	env2 = mlt_env(2);
	check_quanta();
	check_permuted();
	check_logistic_loss();
	return mlt_done();
}
