/*
 * metric_curves.c: mlpipe.roc_curve and mlpipe.pr_curve, the points of a
 * binary scorer's ROC and precision-recall curves as rows a BI tool can
 * plot, from two parallel arrays (array_agg of the truth and the score).
 * The points are src/core/curves.c's, scikit-learn's roc_curve and
 * precision_recall_curve. (mlpipe.calibration, in fit_decision.c, reads
 * its arrays with curve_array_pairs too.)
 */
#include "mlpipe.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/lsyscache.h"

#include "curves.h"
#include "fit_trees_int.h"

#include <math.h>

/*
 * The (truth, score) pairs of the two array arguments, pairs with a NULL
 * left out (as the metric aggregates ignore such rows), none when an array
 * is NULL; 22000 for arrays of different lengths, more than one dimension
 * or non-finite scores.
 */
int64
curve_array_pairs(FunctionCallInfo fcinfo, const char *fn, uint8 **truth, double **score)
{
	ArrayType  *ya,
			   *sa;
	Datum	   *yv,
			   *sv;
	bool	   *yn,
			   *sn;
	int			ny,
				ns,
				i;
	int64		n = 0;

	/* a NULL array holds no pairs (the functions are not strict) */
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		return 0;
	ya = PG_GETARG_ARRAYTYPE_P(0);
	sa = PG_GETARG_ARRAYTYPE_P(1);
	if (ARR_NDIM(ya) > 1 || ARR_NDIM(sa) > 1)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("mlpipe.%s: y_true and score must be one-dimensional arrays", fn)));
	deconstruct_array(ya, BOOLOID, 1, true, TYPALIGN_CHAR, &yv, &yn, &ny);
	deconstruct_array(sa, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &sv, &sn, &ns);
	if (ny != ns)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("mlpipe.%s: y_true has %d elements but score has %d", fn, ny, ns),
						errhint("Aggregate both in one query: array_agg(y ORDER BY id), array_agg(p ORDER BY id).")));
	*truth = palloc(Max(ny, 1));
	*score = palloc(sizeof(double) * Max(ny, 1));
	for (i = 0; i < ny; i++)
	{
		if (yn[i] || sn[i])
			continue;
		(*score)[n] = DatumGetFloat8(sv[i]);
		if (!isfinite((*score)[n]))
			ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
							errmsg("mlpipe.%s: score %d is %g", fn, i + 1, (*score)[n]),
							errhint("Scores must be finite numbers.")));
		(*truth)[n++] = DatumGetBool(yv[i]) ? 1 : 0;
	}
	return n;
}

/* The curve of the arguments' pairs; false (an empty result) when there are none. */
static bool
curve_of_args(FunctionCallInfo fcinfo, const char *fn, PgEnv *pe, BinaryCurve *c)
{
	MlError		err = {0};
	uint8	   *truth;
	double	   *score;
	int64		n = curve_array_pairs(fcinfo, fn, &truth, &score);

	if (n == 0)
		return false;
	pg_env_init(pe, CurrentMemoryContext, fn, false);
	ML_CHECK_STATUS(curve_binary(&pe->env, truth, score, n, c, &err), &err);
	return true;
}

/* One result row of three float8 columns; NaN goes out as NULL. */
static void
curve_put(ReturnSetInfo *rsi, double a, double b, double c)
{
	Datum		v[3] = {Float8GetDatum(a), Float8GetDatum(b), Float8GetDatum(c)};
	bool		nulls[3] = {isnan(a), isnan(b), isnan(c)};

	tuplestore_putvalues(rsi->setResult, rsi->setDesc, v, nulls);
}

/*
 * roc_curve(y_true boolean[], score float8[], drop_intermediate boolean):
 * (threshold, fpr, tpr), first the point (0, 0) at the highest score + 1,
 * then thresholds descending. fpr (tpr) is NULL without negatives (positives).
 */
PG_FUNCTION_INFO_V1(mlpipe_roc_curve);
Datum
mlpipe_roc_curve(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsi = (ReturnSetInfo *) fcinfo->resultinfo;
	PgEnv		pe;
	BinaryCurve c;
	bool	   *keep;
	int64		i;

	InitMaterializedSRF(fcinfo, 0);
	if (!curve_of_args(fcinfo, "roc_curve", &pe, &c))
		PG_RETURN_NULL();
	keep = palloc(sizeof(bool) * c.n);
	curve_roc_keep(&c, PG_ARGISNULL(2) || PG_GETARG_BOOL(2), keep);
	/* scikit-learn 1.2 starts at threshold[0] + 1 (1.3 and later: infinity) */
	curve_put(rsi, c.threshold[0] + 1, c.nneg > 0 ? 0.0 : NAN, c.npos > 0 ? 0.0 : NAN);
	for (i = 0; i < c.n; i++)
		if (keep[i])
			curve_put(rsi, c.threshold[i],
					  c.nneg > 0 ? (double) c.fps[i] / c.nneg : NAN,
					  c.npos > 0 ? (double) c.tps[i] / c.npos : NAN);
	curve_free(&pe.env, &c);
	PG_RETURN_NULL();
}

/*
 * pr_curve(y_true boolean[], score float8[]): (threshold, precision,
 * recall) with thresholds ascending, then the point (precision 1, recall 0)
 * with a NULL threshold, as scikit-learn's precision_recall_curve.
 */
PG_FUNCTION_INFO_V1(mlpipe_pr_curve);
Datum
mlpipe_pr_curve(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsi = (ReturnSetInfo *) fcinfo->resultinfo;
	PgEnv		pe;
	BinaryCurve c;
	int64		i;

	InitMaterializedSRF(fcinfo, 0);
	if (!curve_of_args(fcinfo, "pr_curve", &pe, &c))
		PG_RETURN_NULL();
	for (i = c.n - 1; i >= 0; i--)
		curve_put(rsi, c.threshold[i], curve_precision(&c, i), curve_recall(&c, i));
	curve_put(rsi, NAN, 1.0, 0.0);
	curve_free(&pe.env, &c);
	PG_RETURN_NULL();
}
