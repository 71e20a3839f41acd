/*
 * metric_aggs_proba.c: the probability metric aggregates mlpipe.log_loss
 * (a running sum of per-row losses) and mlpipe.roc_auc (every row kept),
 * each in a binary form (boolean truth, one probability or score) and a
 * multiclass form (text truth, a float8[] of probabilities in the order of
 * a classes text[]), and mlpipe.average_precision on roc_auc's binary
 * state. The arithmetic is src/core/metrics.c's (curves.c's for
 * average_precision). A metric that is undefined on the rows (roc_auc with
 * one class present) is NULL.
 *
 * The states are mlpipe.agg_state values (agg_state_type.c) of kinds
 * AGG_KIND_LOSS (LossState) and AGG_KIND_SCORE (ScoreState), with combine
 * functions: every aggregate is PARALLEL SAFE, and Citus splits it into
 * shard partials and a coordinator combine.
 * NULLs: a row with a NULL in any argument is ignored; no rows give NULL.
 * NaN or infinite numbers, arrays with NULL elements or of the wrong length
 * are errors (22000), as scikit-learn rejects them.
 */
#include "agg_state.h"

#include "catalog/pg_type.h"
#include "access/tupmacs.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"

#include "curves.h"
#include "metrics.h"

#include <float.h>
#include <math.h>

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

/*
 * True when the elements of a one-dimensional text array without NULLs
 * (read from a state) are plain (not compressed, not external) and lie
 * within the array: deconstruct_array trusts them.
 */
static bool
classes_texts_fit(ArrayType *a)
{
	const char *p = ARR_DATA_PTR(a),
			   *end = (const char *) a + VARSIZE(a);
	int			i;

	/* the walk of deconstruct_array: each element, then aligned to int */
	for (i = 0; i < ARR_DIMS(a)[0]; i++)
	{
		Size		len;

		if (p >= end || VARATT_IS_1B_E(p) ||
			(!VARATT_IS_1B(p) && (end - p < VARHDRSZ || !VARATT_IS_4B_U(p))))
			return false;
		len = VARSIZE_ANY(p);
		if (len < (Size) (VARATT_IS_1B(p) ? 1 : VARHDRSZ) || len > (Size) (end - p))
			return false;
		p = (const char *) att_align_nominal(p + len, TYPALIGN_INT);
	}
	return true;
}

/* Reads what classes_write wrote; the array goes through classes_set again. */
static void
classes_read(StringInfo buf, ClassList *cl, MemoryContext ctx, const char *agg)
{
	int32		len = agg_get_int32(buf);
	ArrayType  *a;

	memset(cl, 0, sizeof(*cl));
	if (len == 0)
		return;
	if (len < (int32) sizeof(ArrayType) || len > buf->len - buf->cursor)
		agg_state_corrupt(agg, "The classes array's length passes the end of the state.");
	a = palloc(len);
	memcpy(a, agg_get_bytes(buf, len), len);
	if (VARSIZE(a) != (Size) len || ARR_NDIM(a) != 1 || ARR_ELEMTYPE(a) != TEXTOID ||
		ARR_HASNULL(a) || ARR_DATA_OFFSET(a) > (Size) len ||
		(Size) ARR_DIMS(a)[0] > ((Size) len - ARR_DATA_OFFSET(a)) / VARHDRSZ ||
		!classes_texts_fit(a))
		agg_state_corrupt(agg, "The classes array is malformed.");
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

/* Serial form of a LossState: count, sum, compensation, classes. */
static void
loss_write(StringInfo buf, const void *p, const char *agg)
{
	const LossState *st = p;

	pq_sendint64(buf, st->n);
	pq_sendfloat8(buf, st->sum);
	pq_sendfloat8(buf, st->comp);
	classes_write(buf, &st->cl);
}

/* A LossState in ctx from loss_write's form. */
static void *
loss_read(StringInfo buf, MemoryContext ctx)
{
	LossState  *st = MemoryContextAllocZero(ctx, sizeof(LossState));

	st->n = agg_get_int64(buf);
	st->sum = agg_get_float8(buf);
	st->comp = agg_get_float8(buf);
	if (st->n < 0 || !isfinite(st->sum) || !isfinite(st->comp))
		agg_state_corrupt("log_loss", "The row count is negative, or the sum is not finite.");
	classes_read(buf, &st->cl, ctx, "log_loss");
	return st;
}

const AggFamily loss_family = {AGG_KIND_LOSS, "log_loss", loss_write, loss_read};

/* The log_loss state at argument argno, created empty under ctx when NULL (create) or NULL. */
static AggStateObj *
loss_arg(FunctionCallInfo fcinfo, int argno, MemoryContext ctx, bool create)
{
	AggStateObj *obj = agg_state_arg(fcinfo, argno, &loss_family, ctx);

	if (obj == NULL && create)
	{
		obj = agg_state_create(fcinfo, ctx, &loss_family);
		obj->st = MemoryContextAllocZero(AGG_STATE_CTX(obj), sizeof(LossState));
	}
	return obj;
}

/* log_loss(y_true boolean, p float8): p is the probability of true. */
PG_FUNCTION_INFO_V1(mlpipe_log_loss_trans_bool);
Datum
mlpipe_log_loss_trans_bool(PG_FUNCTION_ARGS)
{
	MemoryContext ctx = agg_context(fcinfo, "log_loss");
	AggStateObj *obj;
	LossState  *st;
	double		proba[2];

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		return agg_state_unchanged(fcinfo);
	obj = loss_arg(fcinfo, 0, ctx, true);
	st = obj->st;
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
	AGG_STATE_RETURN(obj);
}

/* log_loss(y_true text, proba float8[], classes text[]): proba in classes' order. */
PG_FUNCTION_INFO_V1(mlpipe_log_loss_trans_multi);
Datum
mlpipe_log_loss_trans_multi(PG_FUNCTION_ARGS)
{
	MemoryContext ctx = agg_context(fcinfo, "log_loss");
	AggStateObj *obj;
	LossState  *st;
	double	   *p;
	int			k,
				y;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		return agg_state_unchanged(fcinfo);
	obj = loss_arg(fcinfo, 0, ctx, true);
	st = obj->st;
	classes_row(&st->cl, PG_GETARG_ARRAYTYPE_P(3), AGG_STATE_CTX(obj), "log_loss");
	p = agg_float8_array(PG_GETARG_ARRAYTYPE_P(2), &k, "log_loss", "proba");
	if (k != st->cl.k)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("mlpipe.log_loss: proba has %d elements but classes has %d", k, st->cl.k)));
	y = classes_find(&st->cl, PG_GETARG_TEXT_PP(1), "log_loss");
	loss_add(st, metrics_log_loss_row(p, k, y));
	st->n++;
	AGG_STATE_RETURN(obj);
}

/* Combine of log_loss: sums added; both states must use the same classes. */
PG_FUNCTION_INFO_V1(mlpipe_log_loss_combine);
Datum
mlpipe_log_loss_combine(PG_FUNCTION_ARGS)
{
	MemoryContext ctx = agg_context(fcinfo, "log_loss combine");
	AggStateObj *bobj = loss_arg(fcinfo, 1, CurrentMemoryContext, false);
	AggStateObj *obj;
	LossState  *a,
			   *b;

	if (bobj == NULL)
		return agg_state_unchanged(fcinfo);
	b = bobj->st;
	obj = loss_arg(fcinfo, 0, ctx, true);
	a = obj->st;
	if (b->cl.k > 0)
	{
		if (a->cl.k == 0)
			classes_set(&a->cl, (ArrayType *) b->cl.raw, AGG_STATE_CTX(obj), "log_loss");
		else if (!classes_same(&a->cl, b->cl.raw, b->cl.raw_len))
			ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
							errmsg("mlpipe.log_loss: classes must be the same array in every row")));
	}
	a->n += b->n;
	loss_add(a, b->sum);
	loss_add(a, b->comp);
	AGG_STATE_RETURN(obj);
}

/* Final of log_loss: the mean loss, NULL without rows. */
PG_FUNCTION_INFO_V1(mlpipe_log_loss_final);
Datum
mlpipe_log_loss_final(PG_FUNCTION_ARGS)
{
	AggStateObj *obj = loss_arg(fcinfo, 0, CurrentMemoryContext, false);
	LossState  *st;

	if (obj == NULL)
		PG_RETURN_NULL();
	st = obj->st;
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

/* An empty roc_auc state of k scores per row under ctx. */
static AggStateObj *
score_obj_new(FunctionCallInfo fcinfo, MemoryContext ctx, int k)
{
	AggStateObj *obj = agg_state_create(fcinfo, ctx, &score_family);
	ScoreState *st = MemoryContextAllocZero(AGG_STATE_CTX(obj), sizeof(ScoreState));

	st->rows = labeled_rows_new(AGG_STATE_CTX(obj), k);
	obj->st = st;
	return obj;
}

/* Serial form of a ScoreState: the rows, then the classes. */
static void
score_write(StringInfo buf, const void *p, const char *agg)
{
	const ScoreState *st = p;

	labeled_rows_send(buf, st->rows, agg);
	classes_write(buf, &st->cl);
}

/* A ScoreState in ctx from score_write's form; ids are checked against the classes. */
static void *
score_read(StringInfo buf, MemoryContext ctx)
{
	ScoreState *st = MemoryContextAllocZero(ctx, sizeof(ScoreState));
	int			k;
	int64		i;

	st->rows = labeled_rows_recv(buf, ctx, "roc_auc");
	k = st->rows->width;
	classes_read(buf, &st->cl, ctx, "roc_auc");
	if (k > 1 && st->cl.k != k)
		agg_state_corrupt("roc_auc", "The score width does not match the classes.");
	for (i = 0; i < st->rows->n; i++)
		if (st->rows->id[i] < 0 || st->rows->id[i] >= Max(k, 2))
			agg_state_corrupt("roc_auc", "A row's class is out of range.");
	return st;
}

const AggFamily score_family = {AGG_KIND_SCORE, "roc_auc", score_write, score_read};

/* roc_auc(y_true boolean, score float8): higher scores mean true. */
PG_FUNCTION_INFO_V1(mlpipe_roc_auc_trans_bool);
Datum
mlpipe_roc_auc_trans_bool(PG_FUNCTION_ARGS)
{
	MemoryContext ctx = agg_context(fcinfo, "roc_auc");
	AggStateObj *obj;
	ScoreState *st;
	double		s;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		return agg_state_unchanged(fcinfo);
	s = PG_GETARG_FLOAT8(2);
	if (!isfinite(s))			/* shared with average_precision: name the aggregate */
		agg_check_finite(s, agg_name(fcinfo, "roc_auc"), "the score");
	if ((obj = agg_state_arg(fcinfo, 0, &score_family, ctx)) == NULL)
		obj = score_obj_new(fcinfo, ctx, 1);
	st = obj->st;
	if (st->rows->width != 1)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("mlpipe.%s: the state holds multiclass rows", agg_name(fcinfo, "roc_auc"))));
	labeled_rows_add(st->rows, PG_GETARG_BOOL(1) ? 1 : 0, &s, "roc_auc");
	AGG_STATE_RETURN(obj);
}

/* roc_auc(y_true text, proba float8[], classes text[]): macro one-vs-rest. */
PG_FUNCTION_INFO_V1(mlpipe_roc_auc_trans_multi);
Datum
mlpipe_roc_auc_trans_multi(PG_FUNCTION_ARGS)
{
	MemoryContext ctx = agg_context(fcinfo, "roc_auc");
	AggStateObj *obj;
	ScoreState *st;
	ClassList	probe;
	double	   *p;
	int			k;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		return agg_state_unchanged(fcinfo);
	if ((obj = agg_state_arg(fcinfo, 0, &score_family, ctx)) == NULL)
	{
		memset(&probe, 0, sizeof(probe));
		classes_set(&probe, PG_GETARG_ARRAYTYPE_P(3), CurrentMemoryContext, "roc_auc");
		obj = score_obj_new(fcinfo, ctx, probe.k);
		st = obj->st;
		classes_set(&st->cl, PG_GETARG_ARRAYTYPE_P(3), AGG_STATE_CTX(obj), "roc_auc");
	}
	else
	{
		st = obj->st;
		classes_row(&st->cl, PG_GETARG_ARRAYTYPE_P(3), AGG_STATE_CTX(obj), "roc_auc");
	}
	p = agg_float8_array(PG_GETARG_ARRAYTYPE_P(2), &k, "roc_auc", "proba");
	if (k != st->rows->width)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("mlpipe.roc_auc: proba has %d elements but classes has %d", k, st->rows->width)));
	labeled_rows_add(st->rows, classes_find(&st->cl, PG_GETARG_TEXT_PP(1), "roc_auc"), p, "roc_auc");
	AGG_STATE_RETURN(obj);
}

/* Combine of roc_auc: b's rows appended to a (same classes). */
PG_FUNCTION_INFO_V1(mlpipe_roc_auc_combine);
Datum
mlpipe_roc_auc_combine(PG_FUNCTION_ARGS)
{
	MemoryContext ctx = agg_context(fcinfo, "roc_auc combine");
	AggStateObj *bobj = agg_state_arg(fcinfo, 1, &score_family, CurrentMemoryContext);
	AggStateObj *obj;
	ScoreState *a,
			   *b;

	if (bobj == NULL)
		return agg_state_unchanged(fcinfo);
	b = bobj->st;
	if ((obj = agg_state_arg(fcinfo, 0, &score_family, ctx)) == NULL)
	{
		obj = score_obj_new(fcinfo, ctx, b->rows->width);
		a = obj->st;
		if (b->cl.k > 0)
			classes_set(&a->cl, (ArrayType *) b->cl.raw, AGG_STATE_CTX(obj), "roc_auc");
	}
	a = obj->st;
	if (a->rows->width != b->rows->width ||
		(b->cl.k > 0 && !classes_same(&a->cl, b->cl.raw, b->cl.raw_len)))
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("mlpipe.roc_auc: classes must be the same array in every row")));
	labeled_rows_append(a->rows, b->rows, "roc_auc");
	AGG_STATE_RETURN(obj);
}

/* Final of roc_auc: binary AUC, or macro one-vs-rest; NULL when undefined. */
PG_FUNCTION_INFO_V1(mlpipe_roc_auc_final);
Datum
mlpipe_roc_auc_final(PG_FUNCTION_ARGS)
{
	AggStateObj *obj = agg_state_arg(fcinfo, 0, &score_family, CurrentMemoryContext);
	LabeledRows *r;
	PgEnv		pe;
	MlError		err = {0};
	double		auc;
	MlStatus	rc;

	if (obj == NULL)
		PG_RETURN_NULL();
	r = ((ScoreState *) obj->st)->rows;
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
	AggStateObj *obj = agg_state_arg(fcinfo, 0, &score_family, CurrentMemoryContext);
	LabeledRows *r;
	PgEnv		pe;
	MlError		err = {0};
	uint8	   *truth;
	double		ap;
	int64		i;

	if (obj == NULL)
		PG_RETURN_NULL();
	r = ((ScoreState *) obj->st)->rows;
	if (r->width != 1)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("mlpipe.average_precision takes a boolean truth and one score per row")));
	if (r->n == 0)
		PG_RETURN_NULL();
	pg_env_init(&pe, CurrentMemoryContext, "average_precision", false);
	/* the rows sorted by score (16 bytes a row) and the truth: no curve is kept */
	pg_memory_check((double) r->cap * (sizeof(double) + sizeof(int32)) +
					(double) r->n * (16 + 1),
					"Raise mlpipe.max_memory, or aggregate a sample of the rows.",
					"mlpipe.average_precision of " INT64_FORMAT " rows", r->n);
	truth = palloc(r->n);
	for (i = 0; i < r->n; i++)
		truth[i] = (uint8) r->id[i];
	ML_CHECK_STATUS(curve_average_precision_of(&pe.env, truth, r->val, r->n, &ap, &err), &err);
	return agg_float8_or_null(fcinfo, ap);
}
