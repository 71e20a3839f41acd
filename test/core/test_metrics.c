/*
 * test_metrics.c: unit tests of src/core/metrics.c against hand-computed
 * values (the examples of scikit-learn's documentation where there is one):
 * accuracy and macro / weighted precision, recall and F1 from counts and
 * from labels, log_loss with its clipping, roc_auc (ties, one class absent,
 * one-vs-rest), and the regression metrics with their streaming merge and
 * edge cases; average precision without the curve = from the curve, bit for
 * bit. Prints TAP; exits non-zero on failure.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mltest.h"
#include "metrics.h"
#include "curves.h"

#define NEAR(a, b) (fabs((a) - (b)) < 1e-9)

/* scikit-learn's example: y = [0 1 2 0 1 2], pred = [0 2 1 0 0 1]. */
static void
test_label_metrics(void)
{
	MlEnv		env = mlt_env(1);
	MlError		err = {0};
	const int32_t y[] = {0, 1, 2, 0, 1, 2};
	const int32_t pred[] = {0, 2, 1, 0, 0, 1};
	ClassMetrics m;

	CHECK(metrics_classification(&env, y, pred, NULL, 6, 3, &m, &err) == ML_OK,
		  "classification metrics of 6 rows");
	CHECK(NEAR(m.accuracy, 2.0 / 6), "accuracy 2/6 (%.12g)", m.accuracy);
	/* class 0: tp 2, predicted 3, support 2; classes 1 and 2: tp 0 */
	CHECK(NEAR(m.precision_macro, (2.0 / 3) / 3), "precision_macro 0.2222 (%.12g)", m.precision_macro);
	CHECK(NEAR(m.recall_macro, 1.0 / 3), "recall_macro 0.3333 (%.12g)", m.recall_macro);
	CHECK(NEAR(m.f1_macro, 0.8 / 3), "f1_macro 0.2667 (%.12g)", m.f1_macro);
	CHECK(NEAR(m.f1_weighted, 0.8 * 2 / 6), "f1_weighted 0.2667 (%.12g)", m.f1_weighted);
	CHECK(isnan(m.log_loss) && isnan(m.roc_auc), "no probabilities: log_loss and roc_auc are NaN");

	CHECK(metrics_classification(&env, y, pred, NULL, 0, 3, &m, &err) == ML_ERR_DATA,
		  "no rows is ML_ERR_DATA (%s)", err.msg);
}

/* metrics_from_counts: absent classes are left out; zero_division = 0. */
static void
test_from_counts(void)
{
	/* classes 0..3; class 2 neither true nor predicted; class 3 predicted only */
	const int64_t tp[] = {3, 1, 0, 0};
	const int64_t support[] = {4, 2, 0, 0};
	const int64_t predicted[] = {3, 2, 0, 1};
	ClassMetrics m;
	double		f0 = 2 * 1.0 * 0.75 / 1.75,
				f1 = 0.5;

	metrics_from_counts(tp, support, predicted, 4, 6, &m);
	CHECK(NEAR(m.accuracy, 4.0 / 6), "accuracy 4/6 (%.12g)", m.accuracy);
	/* present: 0, 1, 3 (3 has precision 0: one prediction, no hit) */
	CHECK(NEAR(m.precision_macro, (1.0 + 0.5 + 0.0) / 3), "precision_macro over 3 present classes (%.12g)",
		  m.precision_macro);
	CHECK(NEAR(m.recall_macro, (0.75 + 0.5 + 0.0) / 3), "recall_macro: no support is 0 (%.12g)",
		  m.recall_macro);
	CHECK(NEAR(m.f1_macro, (f0 + f1) / 3), "f1_macro (%.12g)", m.f1_macro);
	CHECK(NEAR(m.f1_weighted, (f0 * 4 + f1 * 2) / 6), "f1_weighted by support (%.12g)", m.f1_weighted);

	{
		const int64_t z[] = {0, 0};

		metrics_from_counts(z, z, z, 2, 0, &m);
		CHECK(isnan(m.accuracy) && isnan(m.f1_macro) && isnan(m.f1_weighted),
			  "no rows and no classes: NaN, not a division by zero");
	}
}

/* Binary log_loss and roc_auc of scikit-learn's roc_auc_score example. */
static void
test_binary_proba(void)
{
	MlEnv		env = mlt_env(1);
	MlError		err = {0};
	const int32_t y[] = {0, 0, 1, 1};
	const int32_t pred[] = {0, 0, 0, 1};
	const double proba[] = {0.9, 0.1, 0.6, 0.4, 0.65, 0.35, 0.2, 0.8};
	double		want_ll = (-log(0.9) - log(0.6) - log(0.35) - log(0.8)) / 4;
	ClassMetrics m;

	CHECK(metrics_classification(&env, y, pred, proba, 4, 2, &m, &err) == ML_OK,
		  "binary classification with probabilities");
	CHECK(NEAR(m.log_loss, want_ll), "log_loss 0.4723 (%.12g, want %.12g)", m.log_loss, want_ll);
	CHECK(NEAR(m.roc_auc, 0.75), "roc_auc 0.75 (%.12g)", m.roc_auc);
}

/* One row's log-loss: clipping to [eps, 1 - eps], renormalising. */
static void
test_log_loss_row(void)
{
	const double eps = 2.220446049250313e-16;
	const double sure[] = {0.0, 1.0};
	const double unnorm[] = {0.2, 0.6};
	const double over[] = {1.0, 3.0};
	const double third[] = {1.0 / 3, 1.0 / 3, 1.0 / 3};

	CHECK(NEAR(metrics_log_loss_row(sure, 2, 0), -log(eps)),
		  "p = 0 for the truth is clipped to eps: -log(eps) = 36.04, not infinity");
	CHECK(metrics_log_loss_row(sure, 2, 1) < 1e-15, "p = 1 for the truth: about 0");
	CHECK(NEAR(metrics_log_loss_row(unnorm, 2, 1), -log(0.75)), "a row is renormalised: 0.6 / 0.8");
	CHECK(NEAR(metrics_log_loss_row(over, 2, 1), log(2.0)),
		  "values over 1 are clipped to 1 - eps first: 3 and 1 weigh the same");
	CHECK(NEAR(metrics_log_loss_row(third, 3, 2), log(3.0)), "uniform over 3 classes: log 3");
}

/* roc_auc: ties at half credit, one class absent, perfect and reversed order. */
static void
test_roc_auc(void)
{
	MlEnv		env = mlt_env(1);
	MlError		err = {0};
	double		auc;
	const uint8_t t2[] = {0, 1};
	const double tie[] = {0.5, 0.5};
	const uint8_t t4[] = {0, 1, 0, 1};
	const double perfect[] = {0.1, 0.9, 0.2, 0.8};
	const double reversed[] = {0.9, 0.1, 0.8, 0.2};
	const uint8_t all1[] = {1, 1, 1};
	const double s3[] = {0.1, 0.2, 0.3};
	/* positives 2, 4; negatives 1, 3, 3: pairs (2>1, 2<3, 2<3, 4>1, 4>3, 4>3) */
	const uint8_t t5[] = {0, 1, 0, 1, 0};
	const double s5[] = {1, 2, 3, 4, 3};

	CHECK(metrics_roc_auc(&env, t2, tie, 2, &auc, &err) == ML_OK && NEAR(auc, 0.5),
		  "one tied pair: 0.5 (%.12g)", auc);
	CHECK(metrics_roc_auc(&env, t4, perfect, 4, &auc, &err) == ML_OK && NEAR(auc, 1.0),
		  "perfect ranking: 1 (%.12g)", auc);
	CHECK(metrics_roc_auc(&env, t4, reversed, 4, &auc, &err) == ML_OK && NEAR(auc, 0.0),
		  "reversed ranking: 0 (%.12g)", auc);
	CHECK(metrics_roc_auc(&env, all1, s3, 3, &auc, &err) == ML_OK && isnan(auc),
		  "one class absent: NaN");
	CHECK(metrics_roc_auc(&env, t5, s5, 5, &auc, &err) == ML_OK && NEAR(auc, 4.0 / 6),
		  "Mann-Whitney count: 4 of 6 pairs (%.12g)", auc);
}

/* One-vs-rest: k = 2 is class 1's AUC; k = 3 averages the classes present. */
static void
test_roc_auc_ovr(void)
{
	MlEnv		env = mlt_env(1);
	MlError		err = {0};
	double		auc;
	const int32_t y2[] = {0, 0, 1, 1};
	const double p2[] = {0.9, 0.1, 0.6, 0.4, 0.65, 0.35, 0.2, 0.8};
	const int32_t y3[] = {0, 1, 2, 2};
	const double p3[] = {
		0.8, 0.1, 0.1,
		0.1, 0.8, 0.1,
		0.1, 0.1, 0.8,
		0.6, 0.3, 0.1			/* a class-2 row ranked low for 2: class 2 AUC 0.5 */
	};
	/* class 0: positives row 0 (0.8) vs 0.1, 0.1, 0.6: 1; class 1: 0.8 vs 0.1, 0.1, 0.3: 1;
	 * class 2: positives 0.8, 0.1 vs negatives 0.1, 0.1: (1 + 1 + 0.5 + 0.5) / 4 = 0.75 */
	const int32_t y_missing[] = {0, 0, 1, 1};
	const double p_missing[] = {
		0.7, 0.2, 0.1,
		0.6, 0.3, 0.1,
		0.2, 0.7, 0.1,
		0.3, 0.6, 0.1
	};

	CHECK(metrics_roc_auc_ovr(&env, y2, p2, 4, 2, &auc, &err) == ML_OK && NEAR(auc, 0.75),
		  "k = 2: the AUC of class 1 (%.12g)", auc);
	CHECK(metrics_roc_auc_ovr(&env, y3, p3, 4, 3, &auc, &err) == ML_OK &&
		  NEAR(auc, (1.0 + 1.0 + 0.75) / 3), "k = 3: macro one-vs-rest (%.12g)", auc);
	CHECK(metrics_roc_auc_ovr(&env, y_missing, p_missing, 4, 3, &auc, &err) == ML_OK &&
		  NEAR(auc, 1.0), "a class absent from y is left out (%.12g)", auc);
}

/* scikit-learn's regression examples: y = [3 -0.5 2 7], pred = [2.5 0 2 8]. */
static void
test_regression(void)
{
	MlError		err = {0};
	const double y[] = {3, -0.5, 2, 7};
	const double pred[] = {2.5, 0, 2, 8};
	RegMetrics	m;
	double		mean = 11.5 / 4,
				ss_tot = 0;
	int			i;

	for (i = 0; i < 4; i++)
		ss_tot += (y[i] - mean) * (y[i] - mean);
	CHECK(metrics_regression(y, pred, 4, &m, &err) == ML_OK, "regression metrics of 4 rows");
	CHECK(NEAR(m.rmse, sqrt(0.375)), "rmse sqrt(0.375) = 0.6124 (%.12g)", m.rmse);
	CHECK(NEAR(m.mae, 0.5), "mae 0.5 (%.12g)", m.mae);
	CHECK(NEAR(m.r2, 1 - 1.5 / ss_tot) && NEAR(m.r2, 0.948608137044968),
		  "r2 0.9486 (%.12g)", m.r2);
	CHECK(NEAR(m.mape, (0.5 / 3 + 1.0 + 0 + 1.0 / 7) / 4), "mape 0.3274 (%.12g)", m.mape);

	CHECK(metrics_regression(y, pred, 0, &m, &err) == ML_ERR_DATA, "no rows is ML_ERR_DATA");
}

/* r2 of a constant truth, mape of a zero truth, and the streaming merge. */
static void
test_regression_edges(void)
{
	MlError		err = {0};
	RegMetrics	m,
				whole;
	RegAccum	a,
				b,
				c,
				empty;
	const double ones[] = {1, 1, 1};
	const double off[] = {1, 2, 1};
	const double zero_y[] = {0};
	const double zero_p[] = {1};
	double		y[100],
				p[100];
	int			i;

	CHECK(metrics_regression(ones, ones, 3, &m, &err) == ML_OK && m.r2 == 1.0 && m.rmse == 0,
		  "constant truth predicted exactly: r2 = 1");
	CHECK(metrics_regression(ones, off, 3, &m, &err) == ML_OK && m.r2 == 0.0,
		  "constant truth predicted wrongly: r2 = 0");
	CHECK(metrics_regression(zero_y, zero_p, 1, &m, &err) == ML_OK &&
		  NEAR(m.mape, 1.0 / 2.220446049250313e-16), "a zero truth divides by eps (%.6g)", m.mape);

	/* 100 rows in one accumulator or merged from three parts (one empty) */
	for (i = 0; i < 100; i++)
	{
		y[i] = 1000 + sin(i) * 3;
		p[i] = y[i] + cos(i * 7.0);
	}
	metrics_regression(y, p, 100, &whole, &err);
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	memset(&c, 0, sizeof(c));
	memset(&empty, 0, sizeof(empty));
	for (i = 0; i < 100; i++)
		metrics_reg_add(i < 37 ? &a : i < 80 ? &b : &c, y[i], p[i]);
	metrics_reg_merge(&a, &empty);
	metrics_reg_merge(&empty, &b);
	metrics_reg_merge(&a, &empty);
	metrics_reg_merge(&a, &c);
	CHECK(a.n == 100, "merged count 100 (%lld)", (long long) a.n);
	CHECK(metrics_reg_finish(&a, &m, &err) == ML_OK &&
		  fabs(m.r2 - whole.r2) < 1e-12 && fabs(m.rmse - whole.rmse) < 1e-12 &&
		  fabs(m.mae - whole.mae) < 1e-12 && fabs(m.mape - whole.mape) < 1e-12,
		  "merging partial sums gives the one-pass figures (r2 %.15g vs %.15g)", m.r2, whole.r2);
	memset(&empty, 0, sizeof(empty));
	CHECK(metrics_reg_finish(&empty, &m, &err) == ML_ERR_DATA, "finishing no rows is ML_ERR_DATA");
}

/*
 * curve_average_precision_of gives curve_average_precision's bits (scores
 * with many ties and without, few positives, none).
 */
static void
test_average_precision_of(void)
{
	MlEnv		env = mlt_env(1);
	int			n = 20000,
				k,
				i;
	uint8_t    *truth = malloc(n);
	double	   *score = malloc(sizeof(double) * n);
	bool		same = true;

	for (k = 0; k < 4; k++)
	{
		MlRng		r;
		BinaryCurve c;
		MlError		err = {0};
		double		a1,
					a2 = 0;

		ml_rng_seed(&r, 17 + k);
		for (i = 0; i < n; i++)
		{
			double		u = ml_rng_uniform(&r);

			score[i] = k == 0 ? floor(u * 50) / 50 : u;	/* k 0: ties */
			truth[i] = k == 3 ? 0 : ml_rng_uniform(&r) < (k == 2 ? 0.01 : 0.3 + 0.4 * u);
		}
		curve_binary(&env, truth, score, n, &c, &err);
		a1 = curve_average_precision(&c);
		curve_free(&env, &c);
		same &= curve_average_precision_of(&env, truth, score, n, &a2, &err) == ML_OK &&
			(k == 3 ? isnan(a1) && isnan(a2) : memcmp(&a1, &a2, sizeof(double)) == 0);
	}
	CHECK(same, "average precision without the curve = from the curve, bit for bit");
	free(truth);
	free(score);
}

int
main(void)
{
	test_average_precision_of();
	test_label_metrics();
	test_from_counts();
	test_binary_proba();
	test_log_loss_row();
	test_roc_auc();
	test_roc_auc_ovr();
	test_regression();
	test_regression_edges();
	return mlt_done();
}
