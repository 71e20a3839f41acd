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
 * Streaming regression sums: mergeable, so SQL aggregates and the batch
 * metrics share one definition. y's mean and squared deviations are kept
 * with Welford's update (Chan's merge), which r2 needs in one pass.
 */
typedef struct RegAccum
{
	int64_t		n;
	double		mean_y;
	double		m2_y;			/* sum of (y - mean_y)^2 */
	double		se;				/* sum of squared errors */
	double		ae;				/* sum of absolute errors */
	double		ape;			/* sum of |e| / max(|y|, eps) */
} RegAccum;

void		metrics_reg_add(RegAccum *a, double y, double pred);
void		metrics_reg_merge(RegAccum *a, const RegAccum *b);
/* ML_ERR_DATA when a->n == 0. */
MlStatus	metrics_reg_finish(const RegAccum *a, RegMetrics *out, MlError *err);

/*
 * Accuracy and macro / weighted precision, recall and F1 from per-class
 * counts (true positives, rows of the class, rows predicted as the class),
 * n rows in all. Classes with neither support nor predictions are left out,
 * as scikit-learn's default labels (those in y_true or y_pred).
 */
void		metrics_from_counts(const int64_t *tp, const int64_t *support,
								const int64_t *predicted, int k, int64_t n,
								ClassMetrics *out);

/*
 * One row's log-loss term, as scikit-learn 1.2: every probability clipped
 * to [eps, 1 - eps] (eps = DBL_EPSILON), the row renormalised, -log p[y].
 */
double		metrics_log_loss_row(const double *proba, int k, int y);

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

/*
 * roc_auc of proba[n * k] (row-major, class order) against y[n] in [0, k):
 * for k = 2 the AUC of class 1, otherwise the macro average of one-vs-rest
 * AUCs over the classes present in y (an absent class is left out, where
 * scikit-learn raises). NaN when no class is defined.
 */
MlStatus	metrics_roc_auc_ovr(const MlEnv *env, const int32_t *y, const double *proba,
								int64_t n, int k, double *out, MlError *err);

#endif
