/*
 * fit_decision.c: params.threshold for binary tree classifiers. A number
 * in [0, 1] is stored as it is; a metric name ("f1", "accuracy",
 * "recall_macro", "precision_macro", "f1_macro") picks the threshold that
 * maximises that metric on the test split (src/core/curves.c). The
 * threshold goes into the artifact's DECISION section; the test metrics
 * are those of the thresholded predictions. Every binary classifier's
 * metrics also get the positive class's (classes[1]) precision, recall,
 * f1 and the average precision of its probability.
 *
 * params.calibrate ('platt' or 'isotonic') holds out calibration_size
 * (default 0.2) of the training rows, seeded and stratified, trains on the
 * rest, and fits the calibration on the held-out rows' class-1
 * probabilities (src/core/calibrate.c); predict_proba then returns the
 * calibrated probability, and the threshold applies to it.
 */
#include "fit_trees_int.h"

#include "utils/builtins.h"

#include "calibrate.h"
#include "curves.h"
#include "split.h"

#include <math.h>

/* Reads params.threshold before any data is read. */
void
decision_params_read(cJSON *params, DecisionParams *dp)
{
	cJSON	   *t = cJSON_GetObjectItemCaseSensitive(params, "threshold");

	static const char *const methods[] = {"platt", "isotonic", NULL};
	const char *cal;

	memset(dp, 0, sizeof(*dp));
	cal = params_choice(params, "calibrate", NULL, methods);
	dp->calibrate = cal == NULL ? CAL_NONE : strcmp(cal, "platt") == 0 ? CAL_PLATT : CAL_ISOTONIC;
	dp->calibration_size = params_number(params, "calibration_size", 0.2, 0.01, 0.9);
	if (!dp->calibrate && cJSON_GetObjectItemCaseSensitive(params, "calibration_size"))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("parameter \"calibration_size\" is only used with calibrate"),
						errhint("Add \"calibrate\": \"platt\" or \"isotonic\".")));
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
	if ((dp->given || dp->calibrate) && (task != ML_TASK_CLASSIFY || n_classes != 2))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("parameter \"%s\" is for binary classification, but \"%s\" is %s",
							   dp->given ? "threshold" : "calibrate",
							   target, task != ML_TASK_CLASSIFY ? "a regression target" : "a multiclass target"),
						errhint("Remove params.%s.", dp->given ? "threshold" : "calibrate")));
}

/*
 * Holds out the calibration rows: a seeded stratified share of the n
 * training rows (binned B, classes y) moves to *Bcal / *ycal, the rest is
 * compacted in place. Returns how many rows were held out (0 without
 * params.calibrate); 22000 when too few rows of a class remain.
 */
int64
decision_carve(const DecisionParams *dp, PgEnv *pe, uint8 *B, int32 *y, int64 n, int d,
			   uint64 seed, uint8 **Bcal, int32 **ycal)
{
	uint8	   *is_cal;
	int64		ncal,
				r,
				a = 0,
				b = 0;
	MlError		err = {0};

	if (!dp->calibrate)
		return 0;
	is_cal = palloc_extended(Max(n, 1), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	ML_CHECK_STATUS(split_test_rows(&pe->env, n, y, 2, dp->calibration_size,
									seed ^ UINT64CONST(0xca11b), is_cal, &ncal, &err), &err);
	if (ncal < 2 || ncal == n)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("too few training rows (" INT64_FORMAT ") to hold out a calibration set", n),
						errhint("Calibrate a model trained on more rows, or leave out params.calibrate.")));
	*Bcal = MemoryContextAllocHuge(CurrentMemoryContext, (Size) ncal * d);
	*ycal = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(int32) * ncal);
	for (r = 0; r < n; r++)
	{
		if (is_cal[r])
		{
			memcpy(*Bcal + (Size) b * d, B + (Size) r * d, d);
			(*ycal)[b++] = y[r];
		}
		else
		{
			if (a != r)
			{
				memcpy(B + (Size) a * d, B + (Size) r * d, d);
				y[a] = y[r];
			}
			a++;
		}
	}
	pfree(is_cal);
	return ncal;
}

/* Fits the calibration on the held-out rows' class-1 probabilities into dec. */
void
decision_calibrate_fit(const DecisionParams *dp, PgEnv *pe, const int32 *y, const double *score,
					   int64 n, MlDecision *dec)
{
	uint8	   *truth = palloc(Max(n, 1));
	MlError		err = {0};
	int64		r;

	for (r = 0; r < n; r++)
		truth[r] = y[r] == 1;
	memset(dec, 0, sizeof(*dec));
	dec->present = true;
	dec->method = dp->calibrate;
	if (dp->calibrate == CAL_PLATT)
		ML_CHECK_STATUS(calib_fit_platt(&pe->env, truth, score, n, &dec->platt_a, &dec->platt_b, &err), &err);
	else
		ML_CHECK_STATUS(calib_fit_isotonic(&pe->env, truth, score, n, dec, &err), &err);
	pfree(truth);
}

/*
 * The threshold of a binary fit: the given one, or the one that maximises
 * the metric on the n test rows (truth, (calibrated) score of class 1).
 * Sets dec's threshold; its calibration stays.
 */
void
decision_choose(const DecisionParams *dp, PgEnv *pe, const uint8 *truth, const double *score,
				int64 n, MlDecision *dec)
{
	BinaryCurve c;
	MlError		err = {0};
	double		best;
	int64		i;

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
	MlError		err = {0};
	double		ap;
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
	/* the figure alone: the curve would hold 24 more bytes a row */
	ML_CHECK_STATUS(curve_average_precision_of(&pe->env, truth, score, n, &ap, &err), &err);
	params_json_number(metrics, "average_precision", ap);
	if (dec->has_threshold)
		params_json_number(metrics, "threshold", dec->threshold);
}

/*
 * {"threshold": t, "calibration": {"method": "platt", "a": a, "b": b} or
 * {"method": "isotonic", "x": [...], "y": [...]}}, the parts present.
 */
cJSON *
decision_export(const MlDecision *d)
{
	cJSON	   *o = cJSON_CreateObject();
	cJSON	   *c;

	if (d->has_threshold)
		cJSON_AddNumberToObject(o, "threshold", d->threshold);
	if (d->method == CAL_NONE)
		return o;
	c = cJSON_AddObjectToObject(o, "calibration");
	cJSON_AddStringToObject(c, "method", d->method == CAL_PLATT ? "platt" : "isotonic");
	if (d->method == CAL_PLATT)
	{
		cJSON_AddNumberToObject(c, "a", d->platt_a);
		cJSON_AddNumberToObject(c, "b", d->platt_b);
	}
	else
	{
		cJSON_AddItemToObject(c, "x", cJSON_CreateDoubleArray(d->knot_x, (int) d->n_knots));
		cJSON_AddItemToObject(c, "y", cJSON_CreateDoubleArray(d->knot_y, (int) d->n_knots));
	}
	return o;
}

/*
 * mlpipe.calibration(y_true boolean[], score float8[], method text):
 * the calibration params.calibrate would store, fitted on the given pairs
 * (pairs with a NULL left out), as decision_export's "calibration" object.
 */
PG_FUNCTION_INFO_V1(mlpipe_calibration);
Datum
mlpipe_calibration(PG_FUNCTION_ARGS)
{
	static const char *const methods[] = {"platt", "isotonic", NULL};
	DecisionParams dp;
	MlDecision	dec;
	PgEnv		pe;
	uint8	   *truth;
	double	   *score;
	int32	   *y;
	int64		n,
				i;
	cJSON	   *doc;
	char	   *method = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));

	memset(&dp, 0, sizeof(dp));
	for (i = 0; methods[i]; i++)
		if (method && strcmp(method, methods[i]) == 0)
			dp.calibrate = i == 0 ? CAL_PLATT : CAL_ISOTONIC;
	if (dp.calibrate == CAL_NONE)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("mlpipe.calibration: unknown method %s%s%s", method ? "\"" : "",
							   method ? method : "NULL", method ? "\"" : ""),
						errhint("Methods: platt, isotonic.")));
	n = curve_array_pairs(fcinfo, "calibration", &truth, &score);
	if (n == 0)
		PG_RETURN_NULL();
	y = palloc(sizeof(int32) * n);
	for (i = 0; i < n; i++)
		y[i] = truth[i];
	pg_env_init(&pe, CurrentMemoryContext, "calibration", false);
	decision_calibrate_fit(&dp, &pe, y, score, n, &dec);
	doc = decision_export(&dec);
	PG_RETURN_DATUM(cjson_to_jsonb(cJSON_DetachItemFromObject(doc, "calibration")));
}
