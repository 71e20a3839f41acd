/*
 * test_curves.c: unit tests of src/core/curves.c against the examples of
 * scikit-learn's documentation (roc_curve, precision_recall_curve,
 * average_precision_score) and hand-counted cases: ties, drop_intermediate,
 * no positives, and the threshold that maximises each metric.
 * Prints TAP; exits non-zero on failure.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mltest.h"
#include "curves.h"

#define NEAR(a, b) (fabs((a) - (b)) < 1e-12)

/* scikit-learn's example: y = [0 0 1 1], scores = [0.1 0.4 0.35 0.8]. */
static void
test_sklearn_example(void)
{
	MlEnv		env = mlt_env(1);
	MlError		err = {0};
	const uint8_t y[] = {0, 0, 1, 1};
	const double s[] = {0.1, 0.4, 0.35, 0.8};
	BinaryCurve c;
	bool		keep[4];

	CHECK(curve_binary(&env, y, s, 4, &c, &err) == ML_OK && c.n == 4, "4 distinct scores");
	CHECK(c.threshold[0] == 0.8 && c.threshold[3] == 0.1, "thresholds descend");
	CHECK(c.tps[0] == 1 && c.fps[0] == 0 && c.tps[1] == 1 && c.fps[1] == 1 &&
		  c.tps[2] == 2 && c.fps[2] == 1 && c.tps[3] == 2 && c.fps[3] == 2,
		  "cumulative counts (1,0) (1,1) (2,1) (2,2)");
	/* precision_recall_curve: precision [0.5 0.667 0.5 1 1], recall [1 1 0.5 0.5 0] (reversed) */
	CHECK(NEAR(curve_precision(&c, 2), 2.0 / 3) && NEAR(curve_recall(&c, 1), 0.5),
		  "precision 2/3 at 0.35, recall 0.5 at 0.4");
	CHECK(NEAR(curve_average_precision(&c), 0.5 + 0.5 * 2.0 / 3),
		  "average precision 0.8333 (%.15g)", curve_average_precision(&c));
	CHECK(curve_roc_keep(&c, true, keep) == 4, "every point is a corner");
	curve_free(&env, &c);
}

/* Collinear points are dropped; ties make one point; no positives. */
static void
test_drop_and_ties(void)
{
	MlEnv		env = mlt_env(1);
	MlError		err = {0};
	const uint8_t y[] = {1, 1, 1, 0, 0, 1};
	const double s[] = {0.9, 0.8, 0.7, 0.6, 0.5, 0.5};
	const uint8_t none[] = {0, 0, 0};
	BinaryCurve c;
	bool		keep[6];
	double		v;

	CHECK(curve_binary(&env, y, s, 6, &c, &err) == ML_OK && c.n == 5, "a tie makes one point");
	CHECK(c.tps[4] == 4 && c.fps[4] == 2, "the tie point holds both rows");
	/* tps 1 2 3 3 4, fps 0 0 0 1 2: 0.8 is collinear with its neighbours */
	CHECK(curve_roc_keep(&c, true, keep) == 4 && !keep[1] && keep[2], "drop_intermediate drops 0.8 only");
	CHECK(curve_roc_keep(&c, false, keep) == 5, "without it every point stays");
	CHECK(curve_best_threshold(&c, TM_F1, &v) == 2 && NEAR(v, 6.0 / 7),
		  "best F1 at 0.7: 2*3/(6+0+1) (%.12g)", v);
	CHECK(curve_best_threshold(&c, TM_ACCURACY, &v) == 2 && NEAR(v, 5.0 / 6), "best accuracy 5/6 at 0.7");
	CHECK(NEAR(curve_metric_at(&c, 4, TM_RECALL_MACRO), 0.5), "everything positive: balanced accuracy 0.5");
	CHECK(NEAR(curve_metric_at(&c, 0, TM_PRECISION_MACRO), (1.0 + 2.0 / 5) / 2),
		  "precision_macro at 0.9: (1 + 2/5) / 2");
	CHECK(NEAR(curve_metric_at(&c, 2, TM_F1_MACRO), (6.0 / 7 + 0.8) / 2), "f1_macro at 0.7");
	curve_free(&env, &c);

	CHECK(curve_binary(&env, none, s, 3, &c, &err) == ML_OK && isnan(curve_average_precision(&c)),
		  "no positives: average precision is NaN");
	curve_free(&env, &c);
	CHECK(curve_binary(&env, none, s, 0, &c, &err) == ML_ERR_DATA, "no rows is ML_ERR_DATA");
	CHECK(threshold_metric_from_name("f1") == TM_F1 && threshold_metric_from_name("auc") == 0,
		  "metric names");
}

int
main(void)
{
	test_sklearn_example();
	test_drop_and_ties();
	return mlt_done();
}
