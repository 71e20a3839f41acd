/*
 * agg_state.c: helpers shared by the glue's aggregates (metric_aggs_*.c,
 * features.c, drift.c); see agg_state.h: argument checks, the checked
 * reader of serial states, and LabeledRows. The state type itself, and
 * the expanded object that holds a state between rows, are in
 * agg_state_type.c.
 */
#include "agg_state.h"

#include "libpq/pqformat.h"
#include "nodes/primnodes.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include <math.h>

/*
 * The aggregate's memory context; 0A000 naming fn when a support function
 * is called directly (the transition and combine functions of aggregates
 * over SQL types are callable from SQL).
 */
MemoryContext
agg_context(FunctionCallInfo fcinfo, const char *fn)
{
	MemoryContext ctx;

	if (!AggCheckCallContext(fcinfo, &ctx))
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("%s can only be called by its aggregate", fn),
						errhint("It is a support function of an mlpipe aggregate; call the aggregate instead.")));
	return ctx;
}

/* The name of the aggregate being computed, or dflt. */
const char *
agg_name(FunctionCallInfo fcinfo, const char *dflt)
{
	Aggref	   *ref = AggGetAggref(fcinfo);
	char	   *name = ref ? get_func_name(ref->aggfnoid) : NULL;

	return name ? name : dflt;
}

/* Argument 0 as it is (NULL when NULL): the state for an ignored row or an empty second state. */
Datum
agg_state_unchanged(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	PG_RETURN_DATUM(PG_GETARG_DATUM(0));
}

/* 22000 unless v is finite: scikit-learn refuses NaN and infinity too. */
void
agg_check_finite(double v, const char *agg, const char *what)
{
	if (!isfinite(v))
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("mlpipe.%s: %s is %s", agg, what, isnan(v) ? "NaN" : "infinite"),
						errhint("Filter such rows out, or replace them, before aggregating.")));
}

/* The elements of a one-dimensional float8[] without NULLs, each finite; 22000 otherwise. */
double *
agg_float8_array(ArrayType *a, int *n, const char *agg, const char *what)
{
	double	   *v;
	int			i;

	if (ARR_NDIM(a) > 1)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("mlpipe.%s: %s must be a one-dimensional array", agg, what)));
	if (ARR_HASNULL(a) && array_contains_nulls(a))
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("mlpipe.%s: %s contains a NULL element", agg, what)));
	*n = ARR_NDIM(a) == 1 ? ARR_DIMS(a)[0] : 0;
	v = (double *) ARR_DATA_PTR(a);
	for (i = 0; i < *n; i++)
		agg_check_finite(v[i], agg, what);
	return v;
}

/* A float8 result, or SQL NULL for NaN (an undefined metric). */
Datum
agg_float8_or_null(FunctionCallInfo fcinfo, double v)
{
	if (isnan(v))
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(v);
}

/* Appends len bytes at p (nothing for 0: p may be NULL then). */
void
agg_send_bytes(StringInfo buf, const void *p, Size len)
{
	if (len > 0)
		pq_sendbytes(buf, p, len);
}

/* 22P02: the serial form of a `family` state is corrupt (detail says how). */
void
agg_state_corrupt(const char *family, const char *detail)
{
	ereport(ERROR, (errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					errmsg("invalid mlpipe.agg_state: corrupt %s state", family),
					errdetail("%s", detail),
					errhint("An mlpipe.agg_state is written by an mlpipe aggregate (Citus ships it as text between nodes); it cannot be edited.")));
}

/* 22P02 unless len more bytes are there. */
static void
agg_get_check(StringInfo buf, Size len)
{
	if (len > (Size) (buf->len - buf->cursor))
		agg_state_corrupt("aggregate", "The state ends early.");
}

/* A network-order int32 of a serial state. */
int32
agg_get_int32(StringInfo buf)
{
	agg_get_check(buf, 4);
	return (int32) pq_getmsgint(buf, 4);
}

/* A network-order int64 of a serial state. */
int64
agg_get_int64(StringInfo buf)
{
	agg_get_check(buf, 8);
	return pq_getmsgint64(buf);
}

/* A float8 of a serial state (its 8 bytes: bit-exact). */
double
agg_get_float8(StringInfo buf)
{
	agg_get_check(buf, 8);
	return pq_getmsgfloat8(buf);
}

/* len bytes of a serial state, in place. */
const char *
agg_get_bytes(StringInfo buf, Size len)
{
	const char *p = buf->data + buf->cursor;

	agg_get_check(buf, len);
	buf->cursor += len;
	return p;
}

/* 22P02 unless every byte of the serial state was read. */
void
agg_get_end(StringInfo buf)
{
	if (buf->cursor != buf->len)
		agg_state_corrupt("aggregate", "The state has bytes left over after its last field.");
}

/* ---------------------------------------------------------------------- */
/* LabeledRows                                                            */
/* ---------------------------------------------------------------------- */

/* An empty set of rows of `width` doubles each, in ctx. */
LabeledRows *
labeled_rows_new(MemoryContext ctx, int width)
{
	LabeledRows *r = MemoryContextAllocZero(ctx, sizeof(LabeledRows));

	r->ctx = ctx;
	r->width = width;
	return r;
}

/*
 * Room for `more` rows, within mlpipe.max_memory (54000 with the figure
 * over it): the capacity doubles, clamped to what the budget allows.
 */
static void
labeled_rows_reserve(LabeledRows *r, int64 more, const char *what)
{
	int64		need = r->n + more;
	double		row_bytes = sizeof(double) * r->width + sizeof(int32);
	int64		by_budget;

	if (need <= r->cap)
		return;
	pg_memory_check(need * row_bytes, "Raise mlpipe.max_memory, or aggregate a sample or smaller groups.",
					"mlpipe.%s keeping " INT64_FORMAT " rows of %d values", what, need, r->width);
	if (need > (int64) (MaxAllocHugeSize / row_bytes))
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("mlpipe.%s: too many rows (" INT64_FORMAT ")", what, need)));
	by_budget = (int64) ((double) mlpipe_max_memory_kb() * 1024.0 / row_bytes);
	r->cap = Max(need, Min(Max(r->cap * 2, 1024), by_budget));
	if (r->id == NULL)
	{
		r->id = MemoryContextAllocHuge(r->ctx, sizeof(int32) * r->cap);
		r->val = MemoryContextAllocHuge(r->ctx, sizeof(double) * r->width * r->cap);
	}
	else
	{
		r->id = repalloc_huge(r->id, sizeof(int32) * r->cap);
		r->val = repalloc_huge(r->val, sizeof(double) * r->width * r->cap);
	}
}

/* One row: its id and width doubles. */
void
labeled_rows_add(LabeledRows *r, int32 id, const double *val, const char *what)
{
	labeled_rows_reserve(r, 1, what);
	r->id[r->n] = id;
	memcpy(r->val + (Size) r->n * r->width, val, sizeof(double) * r->width);
	r->n++;
}

/* Appends b's rows to a (same width). */
void
labeled_rows_append(LabeledRows *a, const LabeledRows *b, const char *what)
{
	labeled_rows_reserve(a, b->n, what);
	memcpy(a->id + a->n, b->id, sizeof(int32) * b->n);
	memcpy(a->val + (Size) a->n * a->width, b->val, sizeof(double) * a->width * b->n);
	a->n += b->n;
}

/* Serial form: width, n, ids, values; 54000 when too large for one bytea. */
void
labeled_rows_send(StringInfo buf, const LabeledRows *r, const char *what)
{
	if ((double) r->n * (sizeof(double) * r->width + sizeof(int32)) > (double) MaxAllocSize)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("mlpipe.%s: the aggregate state of " INT64_FORMAT " rows is over 1 GB and cannot be flattened",
							   what, r->n),
						errdetail("A state is flattened to pass from a parallel worker or from a Citus worker."),
						errhint("SET max_parallel_workers_per_gather = 0, GROUP BY the distribution column on Citus, or aggregate smaller groups.")));
	pq_sendint32(buf, r->width);
	pq_sendint64(buf, r->n);
	agg_send_bytes(buf, r->id, sizeof(int32) * r->n);
	agg_send_bytes(buf, r->val, sizeof(double) * r->width * r->n);
}

/* Reads labeled_rows_send's form, the counts bounded by the bytes present. */
LabeledRows *
labeled_rows_recv(StringInfo buf, MemoryContext ctx, const char *what)
{
	LabeledRows *r;
	int32		width = agg_get_int32(buf);
	int64		n = agg_get_int64(buf);
	int64		i;

	if (width < 1 || n < 0 || n > (int64) (buf->len / (sizeof(double) * width + sizeof(int32))))
		agg_state_corrupt(what, "The row count or width does not match the bytes.");
	r = labeled_rows_new(ctx, width);
	labeled_rows_reserve(r, n, what);
	memcpy(r->id, agg_get_bytes(buf, sizeof(int32) * n), sizeof(int32) * n);
	memcpy(r->val, agg_get_bytes(buf, sizeof(double) * width * n), sizeof(double) * width * n);
	r->n = n;
	/* the transition functions admit finite values only; the finals rely on it */
	for (i = 0; i < n * width; i++)
		if (!isfinite(r->val[i]))
			agg_state_corrupt(what, "A value is NaN or infinite.");
	return r;
}
