/*
 * calibrate.h: fitting a binary classifier's probability calibration on
 * held-out (truth, score) pairs, as scikit-learn's CalibratedClassifierCV:
 * Platt's sigmoid (method='sigmoid', its smoothed targets, here solved by
 * Newton's method to convergence where scikit-learn stops BFGS at gtol
 * 1e-5) and isotonic regression (IsotonicRegression(out_of_bounds='clip'):
 * PAVA on the scores merged within 1e-15, redundant knots dropped).
 */
#ifndef CALIBRATE_H
#define CALIBRATE_H

#include "decision.h"

/* Platt's a and b: p = 1 / (1 + exp(a s + b)). ML_ERR_DATA for no rows. */
MlStatus	calib_fit_platt(const MlEnv *env, const uint8_t *truth, const double *score,
							int64_t n, double *a, double *b, MlError *err);

/* Isotonic knots into d (method, n_knots, knot_x, knot_y allocated in env). */
MlStatus	calib_fit_isotonic(const MlEnv *env, const uint8_t *truth, const double *score,
							   int64_t n, MlDecision *d, MlError *err);

#endif
