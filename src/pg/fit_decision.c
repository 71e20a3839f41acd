/*
 * fit_decision.c: params.threshold for binary tree classifiers. A number
 * in [0, 1] is stored as it is; a metric name ("f1", "accuracy",
 * "recall_macro", "precision_macro", "f1_macro") picks the threshold that
 * maximises that metric on the test split (src/core/curves.c). The
 * threshold goes into the artifact's DECISION section; the test metrics
 * are those of the thresholded predictions. Every binary classifier's
 * metrics also get the positive class's (classes[1]) precision, recall,
 * f1 and the average precision of its probability.
 */
#include "fit_trees_int.h"

#include "curves.h"

#include <math.h>

/* Reads params.threshold before any data is read. */
void
decision_params_read(cJSON *params, DecisionParams *dp)
{
	cJSON	   *t = cJSON_GetObjectItemCaseSensitive(params, "threshold");

	memset(dp, 0, sizeof(*dp));
	if (t == NULL || cJSON_IsNull(t))
		return;
	if (cJSON_IsNumber(t))
	{
		if (!(t->valuedouble >= 0 && t->valuedouble <= 1))
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("parameter \"threshold\" must be between 0 and 1, not %g", t->valuedouble),
							errhint("It is the probability of the positive class from which a row is called positive.")));
		dp->given = true;
		dp->threshold = t->valuedouble;
		return;
	}
	if (cJSON_IsString(t) && (dp->metric = threshold_metric_from_name(t->valuestring)) != 0)
	{
		dp->given = true;
		dp->metric_name = pstrdup(t->valuestring);
		return;
	}
	ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("parameter \"threshold\" must be a number in [0, 1] or a metric name"),
					errhint("Metrics a threshold can be tuned for: f1, accuracy, recall_macro, precision_macro, f1_macro.")));
}

/* 22023 when a threshold is given for anything but a binary classifier. */
void
decision_params_check_task(const DecisionParams *dp, MlTask task, int n_classes, const char *target)
{
	if (dp->given && (task != ML_TASK_CLASSIFY || n_classes != 2))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("parameter \"threshold\" is for binary classification, but \"%s\" is %s",
							   target, task != ML_TASK_CLASSIFY ? "a regression target" : "a multiclass target"),
						errhint("Remove params.threshold.")));
}

/*
 * The threshold of a binary fit: the given one, or the one that maximises
 * the metric on the n test rows (truth, score of class 1). Sets dec.
 */
void
decision_choose(const DecisionParams *dp, PgEnv *pe, const uint8 *truth, const double *score,
				int64 n, MlDecision *dec)
{
	BinaryCurve c;
	MlError		err = {0};
	double		best;
	int64		i;

	memset(dec, 0, sizeof(*dec));
	if (!dp->given)
		return;
	dec->present = dec->has_threshold = true;
	dec->threshold = dp->threshold;
	if (dp->metric == 0)
		return;
	ML_CHECK_STATUS(curve_binary(&pe->env, truth, score, n, &c, &err), &err);
	i = curve_best_threshold(&c, dp->metric, &best);
	dec->threshold = Min(Max(c.threshold[i], 0.0), 1.0);
	curve_free(&pe->env, &c);
}

/*
 * The binary metrics of the n test rows: precision, recall and f1 of class
 * 1 at the decision (pred), and average precision of the score.
 */
void
decision_binary_metrics(PgEnv *pe, const uint8 *truth, const double *score, const uint8 *pred,
						int64 n, const MlDecision *dec, cJSON *metrics)
{
	BinaryCurve c;
	MlError		err = {0};
	int64		tp = 0,
				npos = 0,
				npred = 0,
				i;

	for (i = 0; i < n; i++)
	{
		npos += truth[i];
		npred += pred[i];
		tp += truth[i] & pred[i];
	}
	params_json_number(metrics, "precision", npred > 0 ? (double) tp / npred : 0.0);
	params_json_number(metrics, "recall", npos > 0 ? (double) tp / npos : 0.0);
	params_json_number(metrics, "f1", npos + npred > 0 ? 2.0 * tp / (npos + npred) : 0.0);
	ML_CHECK_STATUS(curve_binary(&pe->env, truth, score, n, &c, &err), &err);
	params_json_number(metrics, "average_precision", curve_average_precision(&c));
	curve_free(&pe->env, &c);
	if (dec->has_threshold)
		params_json_number(metrics, "threshold", dec->threshold);
}
