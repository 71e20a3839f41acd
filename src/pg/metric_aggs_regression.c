/*
 * metric_aggs_regression.c: the regression metric aggregates mlpipe.rmse,
 * mae, r2 and mape over (y_true, y_pred) float8, one running-sum state
 * (src/core/metrics.c's RegAccum) for all four.
 *
 * The state is an mlpipe.agg_state of kind AGG_KIND_REG (agg_state_type.c)
 * holding a RegAccum, with a combine function: every aggregate is PARALLEL
 * SAFE, and Citus splits it into shard partials and a coordinator combine.
 * NULLs: a row with a NULL in any argument is ignored; no rows give NULL.
 * NaN or infinite numbers, arrays with NULL elements or of the wrong length
 * are errors (22000), as scikit-learn rejects them.
 */
#include "agg_state.h"

#include "libpq/pqformat.h"

#include "metrics.h"

#include <math.h>

/* Serial form of a RegAccum: its fields in order. */
static void
reg_write(StringInfo buf, const void *p, const char *agg)
{
	const RegAccum *st = p;

	pq_sendint64(buf, st->n);
	pq_sendfloat8(buf, st->mean_y);
	pq_sendfloat8(buf, st->m2_y);
	pq_sendfloat8(buf, st->se);
	pq_sendfloat8(buf, st->ae);
	pq_sendfloat8(buf, st->ape);
}

/* A RegAccum in ctx from reg_write's form. */
static void *
reg_read(StringInfo buf, MemoryContext ctx)
{
	RegAccum   *st = MemoryContextAllocZero(ctx, sizeof(RegAccum));

	st->n = agg_get_int64(buf);
	st->mean_y = agg_get_float8(buf);
	st->m2_y = agg_get_float8(buf);
	st->se = agg_get_float8(buf);
	st->ae = agg_get_float8(buf);
	st->ape = agg_get_float8(buf);
	if (st->n < 0)
		agg_state_corrupt("regression metric", "The row count is negative.");
	return st;
}

const AggFamily reg_family = {AGG_KIND_REG, "regression metric", reg_write, reg_read};

/* The RegAccum of argument argno (a flat state read into ctx), or NULL. */
static RegAccum *
reg_arg(FunctionCallInfo fcinfo, int argno, MemoryContext ctx)
{
	AggStateObj *obj = agg_state_arg(fcinfo, argno, &reg_family, ctx);

	return obj ? (RegAccum *) obj->st : NULL;
}

/* An empty regression state under ctx. */
static AggStateObj *
reg_new(FunctionCallInfo fcinfo, MemoryContext ctx)
{
	AggStateObj *obj = agg_state_create(fcinfo, ctx, &reg_family);

	obj->st = MemoryContextAllocZero(AGG_STATE_CTX(obj), sizeof(RegAccum));
	return obj;
}

/* Transition of the regression metrics: one (y_true, y_pred) pair; NULLs are ignored. */
PG_FUNCTION_INFO_V1(mlpipe_reg_trans);
Datum
mlpipe_reg_trans(PG_FUNCTION_ARGS)
{
	MemoryContext ctx = agg_context(fcinfo, "regression metric");
	AggStateObj *obj;
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
	if ((obj = agg_state_arg(fcinfo, 0, &reg_family, ctx)) == NULL)
		obj = reg_new(fcinfo, ctx);
	metrics_reg_add(obj->st, y, p);
	AGG_STATE_RETURN(obj);
}

/* Combine of the regression metrics (metrics_reg_merge). */
PG_FUNCTION_INFO_V1(mlpipe_reg_combine);
Datum
mlpipe_reg_combine(PG_FUNCTION_ARGS)
{
	MemoryContext ctx = agg_context(fcinfo, "regression metric combine");
	AggStateObj *a;
	RegAccum   *b = reg_arg(fcinfo, 1, CurrentMemoryContext);

	if (b == NULL)
		return agg_state_unchanged(fcinfo);
	if ((a = agg_state_arg(fcinfo, 0, &reg_family, ctx)) == NULL)
		a = reg_new(fcinfo, ctx);
	metrics_reg_merge(a->st, b);
	AGG_STATE_RETURN(a);
}

/*
 * The finals: a metric of the state; NULL without rows. r2 is undefined
 * (NULL) below 2 rows, as scikit-learn returns NaN there.
 */
#define REG_FINAL(fname, field, min_n) \
PG_FUNCTION_INFO_V1(fname); \
Datum \
fname(PG_FUNCTION_ARGS) \
{ \
	RegAccum   *st; \
	RegMetrics	rm; \
	MlError		err = {0}; \
	if ((st = reg_arg(fcinfo, 0, CurrentMemoryContext)) == NULL) \
		PG_RETURN_NULL(); \
	if (st->n < (min_n)) \
		PG_RETURN_NULL(); \
	ML_CHECK_STATUS(metrics_reg_finish(st, &rm, &err), &err); \
	return agg_float8_or_null(fcinfo, rm.field); \
}

REG_FINAL(mlpipe_rmse_final, rmse, 1)
REG_FINAL(mlpipe_mae_final, mae, 1)
REG_FINAL(mlpipe_r2_final, r2, 2)
REG_FINAL(mlpipe_mape_final, mape, 1)
