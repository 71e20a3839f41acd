/*
 * metrics.h: evaluation metrics with scikit-learn's definitions, on plain
 * arrays. Used for the test-split metrics stored with a version.
 */
#ifndef METRICS_H
#define METRICS_H

#include "mlcore.h"

typedef struct ClassMetrics
{
	double		accuracy;
	double		precision_macro;
	double		recall_macro;
	double		f1_macro;
	double		f1_weighted;
	double		log_loss;		/* clipped to [eps, 1 - eps] and renormalised, as scikit-learn 1.2 */
	double		roc_auc;		/* binary, or macro one-vs-rest; NaN if undefined */
} ClassMetrics;

typedef struct RegMetrics
{
	double		rmse;
	double		mae;
	double		r2;
	double		mape;			/* scikit-learn: |e| / max(|y|, eps) */
} RegMetrics;

/*
 * y[n] in [0, k); pred[n] the predicted class; proba[n * k] row-major (may be
 * NULL: log_loss and roc_auc are then NaN). Macro averages are over the
 * classes present in y or pred, as scikit-learn's default labels.
 */
MlStatus	metrics_classification(const MlEnv *env, const int32_t *y, const int32_t *pred,
								   const double *proba, int64_t n, int k,
								   ClassMetrics *out, MlError *err);
MlStatus	metrics_regression(const double *y, const double *pred, int64_t n,
							   RegMetrics *out, MlError *err);
/*
 * Area under the ROC curve of score for the positives (truth nonzero), with
 * ties given half credit (the Mann-Whitney statistic). NaN when one class is
 * absent. Sorts a copy of the scores.
 */
MlStatus	metrics_roc_auc(const MlEnv *env, const uint8_t *truth, const double *score,
							int64_t n, double *out, MlError *err);

#endif
