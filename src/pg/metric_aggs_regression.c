/*
 * metric_aggs_regression.c: the regression metric aggregates mlpipe.rmse,
 * mae, r2 and mape over (y_true, y_pred) float8, one running-sum state
 * (src/core/metrics.c's RegAccum) for all four.
 *
 * States are `internal`, allocated in the aggregate context, with combine,
 * serial and deserial functions so every aggregate is PARALLEL SAFE.
 * NULLs: a row with a NULL in any argument is ignored; no rows give NULL.
 * NaN or infinite numbers, arrays with NULL elements or of the wrong length
 * are errors (22000), as scikit-learn rejects them.
 */
#include "agg_state.h"

#include "libpq/pqformat.h"

#include "metrics.h"

#include <math.h>

/* Transition of the regression metrics: one (y_true, y_pred) pair; NULLs are ignored. */
PG_FUNCTION_INFO_V1(mlpipe_reg_trans);
Datum
mlpipe_reg_trans(PG_FUNCTION_ARGS)
{
	MemoryContext ctx = agg_context(fcinfo, "regression metric");
	RegAccum   *st = PG_ARGISNULL(0) ? NULL : (RegAccum *) PG_GETARG_POINTER(0);
	double		y,
				p;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		return agg_state_unchanged(fcinfo);
	y = PG_GETARG_FLOAT8(1);
	p = PG_GETARG_FLOAT8(2);
	if (!isfinite(y) || !isfinite(p))
	{
		agg_check_finite(y, agg_name(fcinfo, "regression metric"), "y_true");
		agg_check_finite(p, agg_name(fcinfo, "regression metric"), "y_pred");
	}
	if (st == NULL)
		st = MemoryContextAllocZero(ctx, sizeof(RegAccum));
	metrics_reg_add(st, y, p);
	PG_RETURN_POINTER(st);
}

/* Serial of the regression metrics: the RegAccum fields. */
PG_FUNCTION_INFO_V1(mlpipe_reg_serial);
Datum
mlpipe_reg_serial(PG_FUNCTION_ARGS)
{
	RegAccum   *st = (RegAccum *) PG_GETARG_POINTER(0);
	StringInfoData buf;

	agg_context(fcinfo, "regression metric serial");
	pq_begintypsend(&buf);
	pq_sendint64(&buf, st->n);
	pq_sendfloat8(&buf, st->mean_y);
	pq_sendfloat8(&buf, st->m2_y);
	pq_sendfloat8(&buf, st->se);
	pq_sendfloat8(&buf, st->ae);
	pq_sendfloat8(&buf, st->ape);
	PG_RETURN_BYTEA_P(agg_finish_serial(&buf, "regression metric"));
}

/* Deserial of the regression metrics. */
PG_FUNCTION_INFO_V1(mlpipe_reg_deserial);
Datum
mlpipe_reg_deserial(PG_FUNCTION_ARGS)
{
	RegAccum   *st = palloc0(sizeof(RegAccum));
	StringInfoData buf;

	agg_context(fcinfo, "regression metric deserial");
	agg_serial_reader(&buf, PG_GETARG_BYTEA_PP(0));
	st->n = pq_getmsgint64(&buf);
	st->mean_y = pq_getmsgfloat8(&buf);
	st->m2_y = pq_getmsgfloat8(&buf);
	st->se = pq_getmsgfloat8(&buf);
	st->ae = pq_getmsgfloat8(&buf);
	st->ape = pq_getmsgfloat8(&buf);
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(st);
}

/* Combine of the regression metrics (metrics_reg_merge). */
PG_FUNCTION_INFO_V1(mlpipe_reg_combine);
Datum
mlpipe_reg_combine(PG_FUNCTION_ARGS)
{
	MemoryContext ctx = agg_context(fcinfo, "regression metric combine");
	RegAccum   *a = PG_ARGISNULL(0) ? NULL : (RegAccum *) PG_GETARG_POINTER(0);
	RegAccum   *b = PG_ARGISNULL(1) ? NULL : (RegAccum *) PG_GETARG_POINTER(1);

	if (b == NULL)
		return agg_state_unchanged(fcinfo);
	if (a == NULL)
		a = MemoryContextAllocZero(ctx, sizeof(RegAccum));
	metrics_reg_merge(a, b);
	PG_RETURN_POINTER(a);
}

/* r2 is undefined (NULL) below 2 rows, as scikit-learn returns NaN there. */
#define REG_FINAL(fname, field, min_n) \
PG_FUNCTION_INFO_V1(fname); \
Datum \
fname(PG_FUNCTION_ARGS) \
{ \
	RegAccum   *st; \
	RegMetrics	rm; \
	MlError		err = {0}; \
	if (PG_ARGISNULL(0)) \
		PG_RETURN_NULL(); \
	st = (RegAccum *) PG_GETARG_POINTER(0); \
	if (st->n < (min_n)) \
		PG_RETURN_NULL(); \
	ML_CHECK_STATUS(metrics_reg_finish(st, &rm, &err), &err); \
	return agg_float8_or_null(fcinfo, rm.field); \
}

REG_FINAL(mlpipe_rmse_final, rmse, 1)
REG_FINAL(mlpipe_mae_final, mae, 1)
REG_FINAL(mlpipe_r2_final, r2, 2)
REG_FINAL(mlpipe_mape_final, mape, 1)
