/*
 * agg_state.h: helpers shared by the glue's aggregates (metric_aggs_*.c,
 * features.c, drift.c): the aggregate memory context, the NULL-state
 * prologues of transition and combine functions, the serial form of
 * `internal` states for parallel workers, checks of float8 inputs, and
 * LabeledRows, a state that keeps every row (an id and some doubles).
 */
#ifndef MLPIPE_AGG_STATE_H
#define MLPIPE_AGG_STATE_H

#include "mlpipe.h"

#include "lib/stringinfo.h"

/* The aggregate's memory context; 0A000 naming fn when called outside one. */
MemoryContext agg_context(FunctionCallInfo fcinfo, const char *fn);

/*
 * The name of the aggregate being computed ("rmse"), or dflt, for messages
 * from transition functions that several aggregates share.
 */
const char *agg_name(FunctionCallInfo fcinfo, const char *dflt);

/*
 * The state argument (argument 0) returned as it is, NULL when it is NULL:
 * what a transition function returns for a row it ignores, and a combine
 * function when its second state is NULL.
 */
Datum		agg_state_unchanged(FunctionCallInfo fcinfo);

/* 22000 unless v is finite: scikit-learn refuses NaN and infinity too. */
void		agg_check_finite(double v, const char *agg, const char *what);

/*
 * The elements of a one-dimensional float8[] without NULLs, each finite;
 * 22000 otherwise. *n gets the length.
 */
double	   *agg_float8_array(ArrayType *a, int *n, const char *agg, const char *what);

/* A float8 result, or SQL NULL for NaN (an undefined metric). */
Datum		agg_float8_or_null(FunctionCallInfo fcinfo, double v);

/* Serial form: len bytes at p (nothing for 0). */
void		agg_send_bytes(StringInfo buf, const void *p, Size len);

/* The bytea of a serial state begun with pq_begintypsend; 54000 over 1 GB. */
bytea	   *agg_finish_serial(StringInfo buf, const char *agg);

/* A StringInfo over a serial state, for pq_getmsg* (which check every read). */
void		agg_serial_reader(StringInfo buf, bytea *b);

/*
 * Rows kept whole, for the aggregates that need every row (roc_auc, the
 * clustering metrics): one int32 id per row (class or cluster label) and
 * `width` doubles (scores or coordinates).
 */
typedef struct LabeledRows
{
	int64		n;
	int64		cap;			/* rows allocated */
	int			width;			/* doubles per row */
	int32	   *id;
	double	   *val;			/* n * width, row-major */
	MemoryContext ctx;
} LabeledRows;

LabeledRows *labeled_rows_new(MemoryContext ctx, int width);
/* One row: its id and width doubles; `what` names the aggregate in errors. */
void		labeled_rows_add(LabeledRows *r, int32 id, const double *val, const char *what);
/* Appends b's rows to a (same width). */
void		labeled_rows_append(LabeledRows *a, const LabeledRows *b, const char *what);
/* Serial form: width, n, ids, values. */
void		labeled_rows_send(StringInfo buf, const LabeledRows *r, const char *what);
/* Reads labeled_rows_send's form into ctx, the counts bounded by the bytes present. */
LabeledRows *labeled_rows_recv(StringInfo buf, MemoryContext ctx, const char *what);

#endif
