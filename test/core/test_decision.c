/*
 * test_decision.c: unit tests of src/core/decision.c (the DECISION section
 * codec, threshold and calibration applied) and src/core/calibrate.c
 * (isotonic knots by hand, Platt's fit against values from scikit-learn's
 * _sigmoid_calibration, its gradient at the optimum). Prints TAP; exits
 * non-zero on failure.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mltest.h"
#include "calibrate.h"

#define NEAR(a, b, tol) (fabs((a) - (b)) < (tol))

/* Writes d, reads it back; true when it reads. */
static bool
roundtrip(const MlDecision *d, MlDecision *out, MlEnv *env)
{
	MlBuf		b;
	MlReader	r;
	MlError		err = {0};
	bool		ok;

	ml_buf_init(&b, env);
	decision_write(&b, d);
	ml_rd_init(&r, b.data, b.len, env, &err);
	ok = decision_read(&r, out);
	ml_free(env, b.data);
	return ok;
}

/* Section codec and its validation; apply with and without a threshold. */
static void
test_codec(void)
{
	MlEnv		env = mlt_env(1);
	double		x[] = {0.1, 0.4, 0.8},
				y[] = {0.0, 0.5, 1.0},
				proba[2];
	MlDecision	d = {true, true, 0.3, CAL_ISOTONIC, 0, 0, 3, x, y},
				e;

	CHECK(roundtrip(&d, &e, &env) && e.has_threshold && e.threshold == 0.3 && e.n_knots == 3 &&
		  e.knot_x[2] == 0.8 && e.knot_y[1] == 0.5, "isotonic section round trip");
	CHECK(NEAR(decision_calibrate(&e, 0.25), 0.25, 1e-15) && decision_calibrate(&e, 0.0) == 0.0 &&
		  decision_calibrate(&e, 0.95) == 1.0, "interpolates between knots, clips at the ends");
	CHECK(decision_apply(&e, 0.25, proba) == 0 && NEAR(proba[0], 0.75, 1e-15), "0.25 < threshold 0.3: class 0");
	CHECK(decision_apply(&e, 0.32, proba) == 1, "calibrated 0.366 >= 0.3: class 1");
	free(e.knot_x);
	free(e.knot_y);
	y[1] = 0.9;
	y[2] = 0.8;
	CHECK(!roundtrip(&d, &e, &env), "decreasing knots are corrupt");
	free(e.knot_x);
	free(e.knot_y);
	d.method = CAL_PLATT;
	d.platt_a = -2;
	d.platt_b = 1;
	d.has_threshold = false;
	d.threshold = 0;
	CHECK(roundtrip(&d, &e, &env) && e.method == CAL_PLATT && !e.has_threshold, "platt section round trip");
	CHECK(NEAR(decision_calibrate(&e, 0.5), 0.5, 1e-15), "platt: 1 / (1 + exp(-1 + 1)) = 0.5");
	CHECK(decision_apply(&e, 0.6, NULL) == 1 && decision_apply(&e, 0.5, NULL) == 0,
		  "no threshold: the more probable class, class 0 on a tie");
	d.has_threshold = true;
	d.threshold = 1.5;
	CHECK(!roundtrip(&d, &e, &env), "a threshold above 1 is corrupt");
}

/* Isotonic knots by hand; Platt against scikit-learn 1.2's result. */
static void
test_fit(void)
{
	MlEnv		env = mlt_env(1);
	MlError		err = {0};
	const uint8_t t[] = {1, 0, 1, 0, 1};
	const double s[] = {0.9, 0.1, 0.4, 0.5, 0.8};
	const uint8_t t2[] = {0, 1, 0, 1};
	const double s2[] = {0.3, 0.3 + 1e-16, 0.7, 0.7};
	MlDecision	d;
	double		a,
				b;

	memset(&d, 0, sizeof(d));
	CHECK(calib_fit_isotonic(&env, t, s, 5, &d, &err) == ML_OK && d.n_knots == 5, "5 knots");
	CHECK(d.knot_y[0] == 0 && d.knot_y[1] == 0.5 && d.knot_y[2] == 0.5 && d.knot_y[3] == 1 &&
		  d.knot_x[1] == 0.4 && d.knot_x[2] == 0.5, "0.4 and 0.5 pooled to 0.5");
	free(d.knot_x);
	free(d.knot_y);
	CHECK(calib_fit_isotonic(&env, t2, s2, 4, &d, &err) == ML_OK && d.n_knots == 2 &&
		  d.knot_y[0] == 0.5 && d.knot_y[1] == 0.5, "scores within 1e-15 merge; equal y: the ends only");
	free(d.knot_x);
	free(d.knot_y);
	/* scikit-learn's _sigmoid_calibration (BFGS, gtol 1e-5): (-2.8491068527581054, 1.171040103690234) */
	CHECK(calib_fit_platt(&env, t, s, 5, &a, &b, &err) == ML_OK &&
		  NEAR(a, -2.8491068527581054, 1e-6) && NEAR(b, 1.171040103690234, 1e-6),
		  "platt a %.15g b %.15g", a, b);
	CHECK(calib_fit_platt(&env, t, s, 0, &a, &b, &err) == ML_ERR_DATA, "no rows is ML_ERR_DATA");
}

int
main(void)
{
	test_codec();
	test_fit();
	return mlt_done();
}
