/*
 * curves.h: the threshold curves of a binary scorer, with scikit-learn's
 * definitions: the (threshold, true positives, false positives) counts
 * behind roc_curve and precision_recall_curve, the ROC points kept by
 * drop_intermediate, average precision (the step-wise PR-AUC), and the
 * decision threshold that maximises a metric.
 */
#ifndef CURVES_H
#define CURVES_H

#include "mlcore.h"

#include <stdbool.h>

/*
 * Counts at every distinct score, highest first (scikit-learn's
 * _binary_clf_curve): rows with score >= threshold[i] hold tps[i] positives
 * and fps[i] negatives.
 */
typedef struct BinaryCurve
{
	int64_t		n;				/* distinct scores */
	double	   *threshold;		/* n, descending */
	int64_t    *tps;			/* n, cumulative true positives */
	int64_t    *fps;			/* n, cumulative false positives */
	int64_t		npos;			/* positives in all */
	int64_t		nneg;			/* negatives in all */
} BinaryCurve;

/* The curve of n rows (truth nonzero = positive); ML_ERR_DATA when n == 0. */
MlStatus	curve_binary(const MlEnv *env, const uint8_t *truth, const double *score,
						 int64_t n, BinaryCurve *out, MlError *err);
void		curve_free(const MlEnv *env, BinaryCurve *c);

/*
 * Which points roc_curve keeps: keep[i] for i < c->n. Without
 * drop_intermediate every point; with it (scikit-learn's default) the
 * first, the last and every corner (a nonzero second difference of fps or
 * tps). Returns how many are kept.
 */
int64_t		curve_roc_keep(const BinaryCurve *c, bool drop_intermediate, bool *keep);

/* Precision (0 where nothing is predicted positive) and recall at point i. */
double		curve_precision(const BinaryCurve *c, int64_t i);
double		curve_recall(const BinaryCurve *c, int64_t i);

/*
 * Average precision: sum over the points of (R_i - R_{i-1}) P_i, recall
 * rising (scikit-learn's average_precision_score, not a trapezoid). NaN when
 * there is no positive.
 */
double		curve_average_precision(const BinaryCurve *c);
/* The same figure from the rows, without keeping the curve (less memory). */
MlStatus	curve_average_precision_of(const MlEnv *env, const uint8_t *truth,
									   const double *score, int64_t n, double *ap,
									   MlError *err);

/* The metrics a decision threshold can be tuned for. */
typedef enum ThresholdMetric
{
	TM_F1 = 1,					/* F1 of the positive class */
	TM_ACCURACY,
	TM_RECALL_MACRO,			/* balanced accuracy */
	TM_PRECISION_MACRO,
	TM_F1_MACRO
} ThresholdMetric;

/* The metric for a name ("f1", "accuracy", ...); 0 when unknown. */
ThresholdMetric threshold_metric_from_name(const char *name);

/* The metric's value when rows with score >= c->threshold[i] are called positive. */
double		curve_metric_at(const BinaryCurve *c, int64_t i, ThresholdMetric m);

/*
 * The point whose threshold maximises m (the highest threshold among
 * ties); -1 when the curve is empty.
 */
int64_t		curve_best_threshold(const BinaryCurve *c, ThresholdMetric m, double *value);

#endif
