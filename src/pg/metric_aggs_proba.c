/*
 * metric_aggs_proba.c: the probability metric aggregates mlpipe.log_loss
 * (a running sum of per-row losses) and mlpipe.roc_auc (every row kept),
 * each in a binary form (boolean truth, one probability or score) and a
 * multiclass form (text truth, a float8[] of probabilities in the order of
 * a classes text[]), and mlpipe.average_precision on roc_auc's binary state. The arithmetic is src/core/metrics.c's. A metric that
 * is undefined on the rows (roc_auc with one class present) is NULL.
 *
 * States are `internal`, allocated in the aggregate context, with combine,
 * serial and deserial functions so every aggregate is PARALLEL SAFE.
 * NULLs: a row with a NULL in any argument is ignored; no rows give NULL.
 * NaN or infinite numbers, arrays with NULL elements or of the wrong length
 * are errors (22000), as scikit-learn rejects them.
 */
#include "agg_state.h"

#include "catalog/pg_type.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"

#include "curves.h"
#include "metrics.h"

#include <float.h>

/* ---------------------------------------------------------------------- */
/* Class list: the classes text[] argument of log_loss / roc_auc          */
/* ---------------------------------------------------------------------- */

typedef struct ClassList
{
	int			k;
	char	  **names;			/* k NUL-terminated labels */
	char	   *raw;			/* the array as given, to compare later rows */
	Size		raw_len;
} ClassList;

/* Parses a classes array (>= 2 distinct labels, no NULLs) into ctx. */
static void
classes_set(ClassList *cl, ArrayType *a, MemoryContext ctx, const char *agg)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i,
				j;
	MemoryContext old = MemoryContextSwitchTo(ctx);

	if (ARR_NDIM(a) > 1)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("mlpipe.%s: classes must be a one-dimensional text array", agg)));
	deconstruct_array(a, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	if (n < 2)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("mlpipe.%s: classes must name at least 2 classes, not %d", agg, n)));
	cl->names = palloc(sizeof(char *) * n);
	for (i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("mlpipe.%s: classes contains a NULL", agg)));
		cl->names[i] = TextDatumGetCString(elems[i]);
		for (j = 0; j < i; j++)
			if (strcmp(cl->names[j], cl->names[i]) == 0)
				ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								errmsg("mlpipe.%s: class \"%s\" appears twice in classes", agg, cl->names[i])));
	}
	cl->k = n;
	cl->raw_len = VARSIZE(a);
	cl->raw = palloc(cl->raw_len);
	memcpy(cl->raw, a, cl->raw_len);
	MemoryContextSwitchTo(old);
}

/* True when raw (len bytes) is the classes array cl was set from. */
static bool
classes_same(const ClassList *cl, const char *raw, Size len)
{
	return cl->raw_len == len && memcmp(cl->raw, raw, len) == 0;
}

/* Sets cl from a row's classes, or checks the row gives the same ones. */
static void
classes_row(ClassList *cl, ArrayType *a, MemoryContext ctx, const char *agg)
{
	if (cl->k == 0)
		classes_set(cl, a, ctx, agg);
	else if (!classes_same(cl, (const char *) a, VARSIZE(a)))
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("mlpipe.%s: classes must be the same array in every row", agg)));
}

/* The index of label in cl; 22000 naming the label when it is not there. */
static int
classes_find(const ClassList *cl, text *label, const char *agg)
{
	const char *s = VARDATA_ANY(label);
	int			len = VARSIZE_ANY_EXHDR(label);
	int			c;

	for (c = 0; c < cl->k; c++)
		if ((int) strlen(cl->names[c]) == len && memcmp(cl->names[c], s, len) == 0)
			return c;
	ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
					errmsg("mlpipe.%s: label \"%s\" is not among classes", agg, text_to_cstring(label)),
					errhint("classes lists every label, in the order of the probabilities.")));
	return -1;
}

/* Serial form of cl: the array as given (length 0 when unset). */
static void
classes_write(StringInfo buf, const ClassList *cl)
{
	pq_sendint32(buf, (int32) cl->raw_len);
	agg_send_bytes(buf, cl->raw, cl->raw_len);
}

/* Reads what classes_write wrote; the array goes through classes_set again. */
static void
classes_read(StringInfo buf, ClassList *cl, MemoryContext ctx, const char *agg)
{
	int32		len = pq_getmsgint(buf, 4);
	ArrayType  *a;

	memset(cl, 0, sizeof(*cl));
	if (len == 0)
		return;
	if (len < (int32) sizeof(ArrayType) || len > buf->len - buf->cursor)
		elog(ERROR, "mlpipe.%s: corrupt aggregate state", agg);
	a = palloc(len);
	memcpy(a, pq_getmsgbytes(buf, len), len);
	if (VARSIZE(a) != (Size) len)
		elog(ERROR, "mlpipe.%s: corrupt aggregate state", agg);
	classes_set(cl, a, ctx, agg);
}

/* ---------------------------------------------------------------------- */
/* log_loss: running sum of per-row losses                                */
/* ---------------------------------------------------------------------- */

typedef struct LossState
{
	int64		n;
	double		sum;
	double		comp;			/* Neumaier compensation */
	ClassList	cl;				/* multiclass form only */
} LossState;

/* Adds v to the compensated sum of losses. */
static void
loss_add(LossState *st, double v)
{
	ml_neumaier_add(&st->sum, &st->comp, v);
}

/* log_loss(y_true boolean, p float8): p is the probability of true. */
PG_FUNCTION_INFO_V1(mlpipe_log_loss_trans_bool);
Datum
mlpipe_log_loss_trans_bool(PG_FUNCTION_ARGS)
{
	MemoryContext ctx = agg_context(fcinfo, "log_loss");
	LossState  *st = PG_ARGISNULL(0) ? NULL : (LossState *) PG_GETARG_POINTER(0);
	double		proba[2];

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		return agg_state_unchanged(fcinfo);
	if (st == NULL)
		st = MemoryContextAllocZero(ctx, sizeof(LossState));
	proba[1] = PG_GETARG_FLOAT8(2);
	agg_check_finite(proba[1], "log_loss", "the probability");
	if (proba[1] < 0 || proba[1] > 1)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("mlpipe.log_loss: probability %g is outside [0, 1]", proba[1])));
	/* scikit-learn clips p before it forms 1 - p */
	proba[1] = proba[1] < DBL_EPSILON ? DBL_EPSILON : proba[1] > 1 - DBL_EPSILON ? 1 - DBL_EPSILON : proba[1];
	proba[0] = 1 - proba[1];
	loss_add(st, metrics_log_loss_row(proba, 2, PG_GETARG_BOOL(1) ? 1 : 0));
	st->n++;
	PG_RETURN_POINTER(st);
}

/* log_loss(y_true text, proba float8[], classes text[]): proba in classes' order. */
PG_FUNCTION_INFO_V1(mlpipe_log_loss_trans_multi);
Datum
mlpipe_log_loss_trans_multi(PG_FUNCTION_ARGS)
{
	MemoryContext ctx = agg_context(fcinfo, "log_loss");
	LossState  *st = PG_ARGISNULL(0) ? NULL : (LossState *) PG_GETARG_POINTER(0);
	double	   *p;
	int			k,
				y;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		return agg_state_unchanged(fcinfo);
	if (st == NULL)
		st = MemoryContextAllocZero(ctx, sizeof(LossState));
	classes_row(&st->cl, PG_GETARG_ARRAYTYPE_P(3), ctx, "log_loss");
	p = agg_float8_array(PG_GETARG_ARRAYTYPE_P(2), &k, "log_loss", "proba");
	if (k != st->cl.k)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("mlpipe.log_loss: proba has %d elements but classes has %d", k, st->cl.k)));
	y = classes_find(&st->cl, PG_GETARG_TEXT_PP(1), "log_loss");
	loss_add(st, metrics_log_loss_row(p, k, y));
	st->n++;
	PG_RETURN_POINTER(st);
}

/* Serial of log_loss: count, sum, compensation, classes. */
PG_FUNCTION_INFO_V1(mlpipe_log_loss_serial);
Datum
mlpipe_log_loss_serial(PG_FUNCTION_ARGS)
{
	LossState  *st = (LossState *) PG_GETARG_POINTER(0);
	StringInfoData buf;

	agg_context(fcinfo, "log_loss serial");
	pq_begintypsend(&buf);
	pq_sendint64(&buf, st->n);
	pq_sendfloat8(&buf, st->sum);
	pq_sendfloat8(&buf, st->comp);
	classes_write(&buf, &st->cl);
	PG_RETURN_BYTEA_P(agg_finish_serial(&buf, "log_loss"));
}

/* Deserial of log_loss. */
PG_FUNCTION_INFO_V1(mlpipe_log_loss_deserial);
Datum
mlpipe_log_loss_deserial(PG_FUNCTION_ARGS)
{
	LossState  *st = palloc0(sizeof(LossState));
	StringInfoData buf;

	agg_context(fcinfo, "log_loss deserial");
	agg_serial_reader(&buf, PG_GETARG_BYTEA_PP(0));
	st->n = pq_getmsgint64(&buf);
	st->sum = pq_getmsgfloat8(&buf);
	st->comp = pq_getmsgfloat8(&buf);
	classes_read(&buf, &st->cl, CurrentMemoryContext, "log_loss");
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(st);
}

/* Combine of log_loss: sums added; both states must use the same classes. */
PG_FUNCTION_INFO_V1(mlpipe_log_loss_combine);
Datum
mlpipe_log_loss_combine(PG_FUNCTION_ARGS)
{
	MemoryContext ctx = agg_context(fcinfo, "log_loss combine");
	LossState  *a = PG_ARGISNULL(0) ? NULL : (LossState *) PG_GETARG_POINTER(0);
	LossState  *b = PG_ARGISNULL(1) ? NULL : (LossState *) PG_GETARG_POINTER(1);

	if (b == NULL)
		return agg_state_unchanged(fcinfo);
	if (a == NULL)
		a = MemoryContextAllocZero(ctx, sizeof(LossState));
	if (b->cl.k > 0)
	{
		if (a->cl.k == 0)
			classes_set(&a->cl, (ArrayType *) b->cl.raw, ctx, "log_loss");
		else if (!classes_same(&a->cl, b->cl.raw, b->cl.raw_len))
			ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
							errmsg("mlpipe.log_loss: classes must be the same array in every row")));
	}
	a->n += b->n;
	loss_add(a, b->sum);
	loss_add(a, b->comp);
	PG_RETURN_POINTER(a);
}

/* Final of log_loss: the mean loss, NULL without rows. */
PG_FUNCTION_INFO_V1(mlpipe_log_loss_final);
Datum
mlpipe_log_loss_final(PG_FUNCTION_ARGS)
{
	LossState  *st;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	st = (LossState *) PG_GETARG_POINTER(0);
	if (st->n == 0)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8((st->sum + st->comp) / (double) st->n);
}

/* ---------------------------------------------------------------------- */
/* roc_auc: every (label, scores) row kept                                */
/* ---------------------------------------------------------------------- */

typedef struct ScoreState
{
	LabeledRows *rows;			/* id: binary 0/1, multiclass index in classes; val: the scores */
	ClassList	cl;
} ScoreState;

/* An empty roc_auc state of k scores per row, in ctx. */
static ScoreState *
score_state_new(MemoryContext ctx, int k)
{
	ScoreState *st = MemoryContextAllocZero(ctx, sizeof(ScoreState));

	st->rows = labeled_rows_new(ctx, k);
	return st;
}

/* roc_auc(y_true boolean, score float8): higher scores mean true. */
PG_FUNCTION_INFO_V1(mlpipe_roc_auc_trans_bool);
Datum
mlpipe_roc_auc_trans_bool(PG_FUNCTION_ARGS)
{
	MemoryContext ctx = agg_context(fcinfo, "roc_auc");
	ScoreState *st = PG_ARGISNULL(0) ? NULL : (ScoreState *) PG_GETARG_POINTER(0);
	double		s;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		return agg_state_unchanged(fcinfo);
	s = PG_GETARG_FLOAT8(2);
	if (!isfinite(s))			/* shared with average_precision: name the aggregate */
		agg_check_finite(s, agg_name(fcinfo, "roc_auc"), "the score");
	if (st == NULL)
		st = score_state_new(ctx, 1);
	labeled_rows_add(st->rows, PG_GETARG_BOOL(1) ? 1 : 0, &s, "roc_auc");
	PG_RETURN_POINTER(st);
}

/* roc_auc(y_true text, proba float8[], classes text[]): macro one-vs-rest. */
PG_FUNCTION_INFO_V1(mlpipe_roc_auc_trans_multi);
Datum
mlpipe_roc_auc_trans_multi(PG_FUNCTION_ARGS)
{
	MemoryContext ctx = agg_context(fcinfo, "roc_auc");
	ScoreState *st = PG_ARGISNULL(0) ? NULL : (ScoreState *) PG_GETARG_POINTER(0);
	ClassList	probe;
	double	   *p;
	int			k;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		return agg_state_unchanged(fcinfo);
	if (st == NULL)
	{
		memset(&probe, 0, sizeof(probe));
		classes_set(&probe, PG_GETARG_ARRAYTYPE_P(3), ctx, "roc_auc");
		st = score_state_new(ctx, probe.k);
		st->cl = probe;
	}
	else
		classes_row(&st->cl, PG_GETARG_ARRAYTYPE_P(3), ctx, "roc_auc");
	p = agg_float8_array(PG_GETARG_ARRAYTYPE_P(2), &k, "roc_auc", "proba");
	if (k != st->rows->width)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("mlpipe.roc_auc: proba has %d elements but classes has %d", k, st->rows->width)));
	labeled_rows_add(st->rows, classes_find(&st->cl, PG_GETARG_TEXT_PP(1), "roc_auc"), p, "roc_auc");
	PG_RETURN_POINTER(st);
}

/* Serial of roc_auc: the rows, then the classes. */
PG_FUNCTION_INFO_V1(mlpipe_roc_auc_serial);
Datum
mlpipe_roc_auc_serial(PG_FUNCTION_ARGS)
{
	ScoreState *st = (ScoreState *) PG_GETARG_POINTER(0);
	StringInfoData buf;

	agg_context(fcinfo, "roc_auc serial");
	pq_begintypsend(&buf);
	labeled_rows_send(&buf, st->rows, "roc_auc");
	classes_write(&buf, &st->cl);
	PG_RETURN_BYTEA_P(agg_finish_serial(&buf, "roc_auc"));
}

/* Deserial of roc_auc; ids are checked against the classes. */
PG_FUNCTION_INFO_V1(mlpipe_roc_auc_deserial);
Datum
mlpipe_roc_auc_deserial(PG_FUNCTION_ARGS)
{
	StringInfoData buf;
	ScoreState *st;
	int			k;
	int64		i;

	agg_context(fcinfo, "roc_auc deserial");
	agg_serial_reader(&buf, PG_GETARG_BYTEA_PP(0));
	st = MemoryContextAllocZero(CurrentMemoryContext, sizeof(ScoreState));
	st->rows = labeled_rows_recv(&buf, CurrentMemoryContext, "roc_auc");
	k = st->rows->width;
	classes_read(&buf, &st->cl, CurrentMemoryContext, "roc_auc");
	pq_getmsgend(&buf);
	if (k > 1 && st->cl.k != k)
		elog(ERROR, "mlpipe.roc_auc: corrupt aggregate state");
	for (i = 0; i < st->rows->n; i++)
		if (st->rows->id[i] < 0 || st->rows->id[i] >= Max(k, 2))
			elog(ERROR, "mlpipe.roc_auc: corrupt aggregate state");
	PG_RETURN_POINTER(st);
}

/* Combine of roc_auc: b's rows appended to a (same classes). */
PG_FUNCTION_INFO_V1(mlpipe_roc_auc_combine);
Datum
mlpipe_roc_auc_combine(PG_FUNCTION_ARGS)
{
	MemoryContext ctx = agg_context(fcinfo, "roc_auc combine");
	ScoreState *a = PG_ARGISNULL(0) ? NULL : (ScoreState *) PG_GETARG_POINTER(0);
	ScoreState *b = PG_ARGISNULL(1) ? NULL : (ScoreState *) PG_GETARG_POINTER(1);

	if (b == NULL)
		return agg_state_unchanged(fcinfo);
	if (a == NULL)
	{
		a = score_state_new(ctx, b->rows->width);
		if (b->cl.k > 0)
			classes_set(&a->cl, (ArrayType *) b->cl.raw, ctx, "roc_auc");
	}
	else if (a->rows->width != b->rows->width ||
			 (b->cl.k > 0 && !classes_same(&a->cl, b->cl.raw, b->cl.raw_len)))
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("mlpipe.roc_auc: classes must be the same array in every row")));
	labeled_rows_append(a->rows, b->rows, "roc_auc");
	PG_RETURN_POINTER(a);
}

/* Final of roc_auc: binary AUC, or macro one-vs-rest; NULL when undefined. */
PG_FUNCTION_INFO_V1(mlpipe_roc_auc_final);
Datum
mlpipe_roc_auc_final(PG_FUNCTION_ARGS)
{
	LabeledRows *r;
	PgEnv		pe;
	MlError		err = {0};
	double		auc;
	MlStatus	rc;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	r = ((ScoreState *) PG_GETARG_POINTER(0))->rows;
	pg_env_init(&pe, CurrentMemoryContext, "roc_auc", false);
	/* the kept rows, then the ranking's (score, truth) pairs, truths and scores */
	pg_memory_check((double) r->cap * (sizeof(double) * r->width + sizeof(int32)) +
					(double) r->n * (16 + 1 + 1 + sizeof(double)),
					"Raise mlpipe.max_memory, or aggregate a sample of the rows.",
					"mlpipe.roc_auc of " INT64_FORMAT " rows", r->n);
	if (r->width == 1)
	{
		uint8	   *truth = palloc(Max(r->n, 1));
		int64		i;

		for (i = 0; i < r->n; i++)
			truth[i] = (uint8) r->id[i];
		rc = metrics_roc_auc(&pe.env, truth, r->val, r->n, &auc, &err);
	}
	else
		rc = metrics_roc_auc_ovr(&pe.env, r->id, r->val, r->n, r->width, &auc, &err);
	ML_CHECK_STATUS(rc, &err);
	return agg_float8_or_null(fcinfo, auc);
}

/*
 * Final of average_precision (the roc_auc state, binary form): scikit-learn's
 * average_precision_score, the step-wise area under the precision-recall
 * curve. NULL without a positive row (scikit-learn warns and gives 0).
 */
PG_FUNCTION_INFO_V1(mlpipe_average_precision_final);
Datum
mlpipe_average_precision_final(PG_FUNCTION_ARGS)
{
	LabeledRows *r;
	PgEnv		pe;
	MlError		err = {0};
	BinaryCurve c;
	uint8	   *truth;
	double		ap;
	int64		i;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	r = ((ScoreState *) PG_GETARG_POINTER(0))->rows;
	if (r->width != 1)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("mlpipe.average_precision takes a boolean truth and one score per row")));
	if (r->n == 0)
		PG_RETURN_NULL();
	pg_env_init(&pe, CurrentMemoryContext, "average_precision", false);
	pg_memory_check((double) r->cap * (sizeof(double) + sizeof(int32)) +
					(double) r->n * (16 + 1 + 8 + 8 + 8),
					"Raise mlpipe.max_memory, or aggregate a sample of the rows.",
					"mlpipe.average_precision of " INT64_FORMAT " rows", r->n);
	truth = palloc(r->n);
	for (i = 0; i < r->n; i++)
		truth[i] = (uint8) r->id[i];
	ML_CHECK_STATUS(curve_binary(&pe.env, truth, r->val, r->n, &c, &err), &err);
	ap = curve_average_precision(&c);
	curve_free(&pe.env, &c);
	return agg_float8_or_null(fcinfo, ap);
}
