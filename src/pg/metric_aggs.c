/*
 * metric_aggs.c: evaluation metrics as SQL aggregates usable on any table
 * (mlpipe.accuracy, f1_macro, confusion_matrix, log_loss, roc_auc, rmse,
 * r2, silhouette, ...). The arithmetic is src/core's (metrics.c and
 * cluster_metrics.c), the same definitions as the metrics stored with a
 * trained version.
 *
 * States are `internal`, allocated in the aggregate context, with combine,
 * serial and deserial functions so every aggregate is PARALLEL SAFE. Label
 * metrics keep a confusion matrix, log_loss and the regression metrics keep
 * running sums; roc_auc and the clustering metrics need every point and keep
 * them (scores, or feature vectors and labels) in the state.
 *
 * NULLs: a row with a NULL in any argument is ignored; no rows give NULL;
 * a metric that is undefined on the rows (roc_auc with one class present,
 * silhouette with one cluster) is NULL. NaN or infinite numbers, arrays
 * with NULL elements or of the wrong length are errors (22000), as
 * scikit-learn rejects them.
 */
#include "mlpipe.h"

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "kmeans.h"
#include "cluster_metrics.h"
#include "metrics.h"

#include <float.h>
#include <math.h>

#define LABEL_MAX	2048		/* distinct labels in a confusion matrix */

/* ---------------------------------------------------------------------- */
/* Shared helpers                                                         */
/* ---------------------------------------------------------------------- */

/* The aggregate's memory context; an error when called outside one. */
static MemoryContext
agg_context(FunctionCallInfo fcinfo, const char *fn)
{
	MemoryContext ctx;

	if (!AggCheckCallContext(fcinfo, &ctx))
		elog(ERROR, "%s called in a non-aggregate context", fn);
	return ctx;
}

/*
 * The name of the aggregate being computed ("mlpipe.rmse"), for messages
 * from transition functions that several aggregates share.
 */
static const char *
agg_name(FunctionCallInfo fcinfo, const char *dflt)
{
	Aggref	   *ref = AggGetAggref(fcinfo);
	char	   *name = ref ? get_func_name(ref->aggfnoid) : NULL;

	return name ? name : dflt;
}

/* 22000 unless v is finite: scikit-learn refuses NaN and infinity too. */
static inline void
check_finite(double v, const char *agg, const char *what)
{
	if (!isfinite(v))
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("mlpipe.%s: %s is %s", agg, what, isnan(v) ? "NaN" : "infinite"),
						errhint("Filter such rows out, or replace them, before aggregating.")));
}

/*
 * The elements of a one-dimensional float8[] without NULLs, each finite;
 * 22000 otherwise. *n gets the length.
 */
static double *
float8_array(ArrayType *a, int *n, const char *agg, const char *what)
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
		check_finite(v[i], agg, what);
	return v;
}

/* A jsonb number, or JSON null for NaN (an undefined metric). */
static Datum
float8_or_null(FunctionCallInfo fcinfo, double v)
{
	if (isnan(v))
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(v);
}

static void
send_bytes(StringInfo buf, const void *p, Size len)
{
	if (len > 0)
		pq_sendbytes(buf, p, len);
}

static bytea *
finish_serial(StringInfo buf, const char *agg)
{
	if ((Size) buf->len + VARHDRSZ > MaxAllocSize)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("mlpipe.%s: the aggregate state (%d bytes) is too large to pass between parallel workers",
							   agg, buf->len),
						errhint("SET max_parallel_workers_per_gather = 0 for this query.")));
	return pq_endtypsend(buf);
}

/* A StringInfo over a bytea, for pq_getmsg* (which check every read). */
static void
serial_reader(StringInfo buf, bytea *b)
{
	buf->data = VARDATA_ANY(b);
	buf->len = VARSIZE_ANY_EXHDR(b);
	buf->maxlen = buf->len;
	buf->cursor = 0;
}

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

static void
classes_write(StringInfo buf, const ClassList *cl)
{
	pq_sendint32(buf, (int32) cl->raw_len);
	send_bytes(buf, cl->raw, cl->raw_len);
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
/* Label pairs: accuracy, precision/recall/F1, confusion_matrix           */
/* ---------------------------------------------------------------------- */

typedef enum LabelKind
{
	LABEL_TEXT = 1,
	LABEL_INT = 2,
	LABEL_BOOL = 3
} LabelKind;

typedef struct LabelState
{
	int32		kind;			/* LabelKind of the inputs */
	int			n_labels;
	int			cap;			/* side of counts */
	char	  **labels;			/* n_labels strings */
	int			hcap;			/* power of two > 2 * n_labels */
	int32	   *slots;			/* open addressing: label index + 1, 0 empty */
	int64	   *counts;			/* cap x cap, [true * cap + predicted] */
	int64		n;
	MemoryContext ctx;
} LabelState;

static LabelState *
label_state_new(MemoryContext ctx, int kind)
{
	LabelState *st = MemoryContextAllocZero(ctx, sizeof(LabelState));

	st->kind = kind;
	st->ctx = ctx;
	st->cap = 8;
	st->hcap = 32;
	st->labels = MemoryContextAlloc(ctx, sizeof(char *) * st->cap);
	st->slots = MemoryContextAllocZero(ctx, sizeof(int32) * st->hcap);
	st->counts = MemoryContextAllocZero(ctx, sizeof(int64) * st->cap * st->cap);
	return st;
}

/* Index of label s (len bytes) in the state, adding it when new. */
static int
label_index(LabelState *st, const char *s, int len, const char *agg)
{
	uint32		h = hash_bytes((const unsigned char *) s, len);
	uint32		mask = st->hcap - 1;
	uint32		i = h & mask;
	int			id;

	while (st->slots[i] != 0)
	{
		const char *l = st->labels[st->slots[i] - 1];

		if ((int) strlen(l) == len && memcmp(l, s, len) == 0)
			return st->slots[i] - 1;
		i = (i + 1) & mask;
	}
	if (st->n_labels >= LABEL_MAX)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("mlpipe.%s: more than %d distinct labels", agg, LABEL_MAX)));
	if (st->n_labels == st->cap)
	{
		/* grow the matrix, keeping rows in place at the new width */
		int			ncap = st->cap * 2;
		int64	   *nc = MemoryContextAllocZero(st->ctx, sizeof(int64) * ncap * ncap);
		int			r;

		for (r = 0; r < st->n_labels; r++)
			memcpy(nc + (Size) r * ncap, st->counts + (Size) r * st->cap, sizeof(int64) * st->n_labels);
		pfree(st->counts);
		st->counts = nc;
		st->labels = repalloc(st->labels, sizeof(char *) * ncap);
		st->cap = ncap;
	}
	id = st->n_labels++;
	st->labels[id] = MemoryContextAlloc(st->ctx, len + 1);
	memcpy(st->labels[id], s, len);
	st->labels[id][len] = '\0';
	st->slots[i] = id + 1;
	if (st->n_labels * 2 >= st->hcap)
	{
		int			nh = st->hcap * 2;
		int32	   *ns = MemoryContextAllocZero(st->ctx, sizeof(int32) * nh);
		int			j;

		for (j = 0; j < st->n_labels; j++)
		{
			uint32		k = hash_bytes((const unsigned char *) st->labels[j], strlen(st->labels[j])) & (nh - 1);

			while (ns[k] != 0)
				k = (k + 1) & (nh - 1);
			ns[k] = j + 1;
		}
		pfree(st->slots);
		st->slots = ns;
		st->hcap = nh;
	}
	return id;
}

static void
label_add(LabelState *st, const char *t, int tlen, const char *p, int plen, int64 count,
		  const char *agg)
{
	int			ti = label_index(st, t, tlen, agg);
	int			pi = label_index(st, p, plen, agg);

	st->counts[(Size) ti * st->cap + pi] += count;
	st->n += count;
}

/* The text form of a label argument: text as is, integers in decimal, booleans as true/false. */
static const char *
label_text(FunctionCallInfo fcinfo, int argno, int kind, int *len, char *buf)
{
	if (kind == LABEL_TEXT)
	{
		text	   *t = PG_GETARG_TEXT_PP(argno);

		*len = VARSIZE_ANY_EXHDR(t);
		return VARDATA_ANY(t);
	}
	if (kind == LABEL_INT)
		*len = snprintf(buf, 24, INT64_FORMAT, PG_GETARG_INT64(argno));
	else
		*len = snprintf(buf, 24, "%s", PG_GETARG_BOOL(argno) ? "true" : "false");
	return buf;
}

static Datum
label_trans(FunctionCallInfo fcinfo, int kind, const char *agg)
{
	MemoryContext ctx = agg_context(fcinfo, agg);
	LabelState *st = PG_ARGISNULL(0) ? NULL : (LabelState *) PG_GETARG_POINTER(0);
	char		tb[24],
				pb[24];
	const char *t,
			   *p;
	int			tlen,
				plen;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
	{
		if (st == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(st);
	}
	if (st == NULL)
		st = label_state_new(ctx, kind);
	t = label_text(fcinfo, 1, kind, &tlen, tb);
	p = label_text(fcinfo, 2, kind, &plen, pb);
	if (st->n_labels >= LABEL_MAX - 1)
		agg = agg_name(fcinfo, agg);	/* near the limit: name the aggregate in the error */
	label_add(st, t, tlen, p, plen, 1, agg);
	PG_RETURN_POINTER(st);
}

PG_FUNCTION_INFO_V1(mlpipe_label_trans_text);
Datum
mlpipe_label_trans_text(PG_FUNCTION_ARGS)
{
	return label_trans(fcinfo, LABEL_TEXT, "label metric");
}

PG_FUNCTION_INFO_V1(mlpipe_label_trans_int8);
Datum
mlpipe_label_trans_int8(PG_FUNCTION_ARGS)
{
	return label_trans(fcinfo, LABEL_INT, "label metric");
}

PG_FUNCTION_INFO_V1(mlpipe_label_trans_bool);
Datum
mlpipe_label_trans_bool(PG_FUNCTION_ARGS)
{
	return label_trans(fcinfo, LABEL_BOOL, "label metric");
}

/* Writes kind, labels and the used part of the matrix. */
static void
label_write(StringInfo buf, const LabelState *st)
{
	int			i,
				j;

	pq_sendint32(buf, st->kind);
	pq_sendint32(buf, st->n_labels);
	for (i = 0; i < st->n_labels; i++)
	{
		int			len = strlen(st->labels[i]);

		pq_sendint32(buf, len);
		send_bytes(buf, st->labels[i], len);
	}
	for (i = 0; i < st->n_labels; i++)
		for (j = 0; j < st->n_labels; j++)
			pq_sendint64(buf, st->counts[(Size) i * st->cap + j]);
}

/* Merges a serialised state into st (created in ctx when NULL). */
static LabelState *
label_read_into(StringInfo buf, LabelState *st, MemoryContext ctx)
{
	int32		kind = pq_getmsgint(buf, 4);
	int32		n = pq_getmsgint(buf, 4);
	int		   *map;
	int			i,
				j;

	if (kind < LABEL_TEXT || kind > LABEL_BOOL || n < 0 || n > LABEL_MAX)
		elog(ERROR, "mlpipe: corrupt label metric state");
	if (st == NULL)
		st = label_state_new(ctx, kind);
	map = palloc(sizeof(int) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		int32		len = pq_getmsgint(buf, 4);

		if (len < 0 || len > buf->len - buf->cursor)
			elog(ERROR, "mlpipe: corrupt label metric state");
		map[i] = label_index(st, pq_getmsgbytes(buf, len), len, "label metric");
	}
	for (i = 0; i < n; i++)
		for (j = 0; j < n; j++)
		{
			int64		c = pq_getmsgint64(buf);

			if (c < 0)
				elog(ERROR, "mlpipe: corrupt label metric state");
			st->counts[(Size) map[i] * st->cap + map[j]] += c;
			st->n += c;
		}
	pfree(map);
	return st;
}

PG_FUNCTION_INFO_V1(mlpipe_label_serial);
Datum
mlpipe_label_serial(PG_FUNCTION_ARGS)
{
	StringInfoData buf;

	agg_context(fcinfo, "label metric serial");
	pq_begintypsend(&buf);
	label_write(&buf, (LabelState *) PG_GETARG_POINTER(0));
	PG_RETURN_BYTEA_P(finish_serial(&buf, "label metric"));
}

PG_FUNCTION_INFO_V1(mlpipe_label_deserial);
Datum
mlpipe_label_deserial(PG_FUNCTION_ARGS)
{
	StringInfoData buf;
	LabelState *st;

	agg_context(fcinfo, "label metric deserial");
	serial_reader(&buf, PG_GETARG_BYTEA_PP(0));
	st = label_read_into(&buf, NULL, CurrentMemoryContext);
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(st);
}

PG_FUNCTION_INFO_V1(mlpipe_label_combine);
Datum
mlpipe_label_combine(PG_FUNCTION_ARGS)
{
	MemoryContext ctx = agg_context(fcinfo, "label metric combine");
	LabelState *a = PG_ARGISNULL(0) ? NULL : (LabelState *) PG_GETARG_POINTER(0);
	LabelState *b = PG_ARGISNULL(1) ? NULL : (LabelState *) PG_GETARG_POINTER(1);
	int			i,
				j;

	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
	if (a == NULL)
		a = label_state_new(ctx, b->kind);
	for (i = 0; i < b->n_labels; i++)
		for (j = 0; j < b->n_labels; j++)
		{
			int64		c = b->counts[(Size) i * b->cap + j];

			if (c > 0)
				label_add(a, b->labels[i], strlen(b->labels[i]), b->labels[j],
						  strlen(b->labels[j]), c, "label metric");
		}
	PG_RETURN_POINTER(a);
}

static int	label_sort_kind;

/* Orders label strings as scikit-learn sorts the labels: numbers by value. */
static int
label_cmp(const void *a, const void *b)
{
	const char *x = *(char *const *) a,
			   *y = *(char *const *) b;

	if (label_sort_kind == LABEL_INT)
	{
		long long	u = strtoll(x, NULL, 10),
					v = strtoll(y, NULL, 10);

		return (u > v) - (u < v);
	}
	return strcmp(x, y);
}

/* The labels in sorted order: order[i] is the state index of the i-th label. */
static int *
label_order(const LabelState *st)
{
	char	  **sorted = palloc(sizeof(char *) * Max(st->n_labels, 1));
	int		   *order = palloc(sizeof(int) * Max(st->n_labels, 1));
	int			i;

	memcpy(sorted, st->labels, sizeof(char *) * st->n_labels);
	label_sort_kind = st->kind;
	qsort(sorted, st->n_labels, sizeof(char *), label_cmp);
	/* labels are distinct strings: map each back to its index */
	for (i = 0; i < st->n_labels; i++)
		order[i] = label_index((LabelState *) st, sorted[i], strlen(sorted[i]), "label metric");
	return order;
}

/* Accuracy, macro and weighted scores of a state, through metrics_from_counts. */
static void
label_metrics(const LabelState *st, ClassMetrics *cm)
{
	int			k = st->n_labels,
				i,
				j;
	int64	   *tp = palloc0(sizeof(int64) * Max(k, 1) * 3);
	int64	   *support = tp + k,
			   *predicted = tp + 2 * k;

	for (i = 0; i < k; i++)
		for (j = 0; j < k; j++)
		{
			int64		c = st->counts[(Size) i * st->cap + j];

			support[i] += c;
			predicted[j] += c;
			if (i == j)
				tp[i] += c;
		}
	metrics_from_counts((const int64_t *) tp, (const int64_t *) support,
						(const int64_t *) predicted, k, st->n, cm);
}

#define LABEL_FINAL(fname, field) \
PG_FUNCTION_INFO_V1(fname); \
Datum \
fname(PG_FUNCTION_ARGS) \
{ \
	ClassMetrics cm; \
	if (PG_ARGISNULL(0)) \
		PG_RETURN_NULL(); \
	label_metrics((LabelState *) PG_GETARG_POINTER(0), &cm); \
	return float8_or_null(fcinfo, cm.field); \
}

LABEL_FINAL(mlpipe_accuracy_final, accuracy)
LABEL_FINAL(mlpipe_precision_macro_final, precision_macro)
LABEL_FINAL(mlpipe_recall_macro_final, recall_macro)
LABEL_FINAL(mlpipe_f1_macro_final, f1_macro)
LABEL_FINAL(mlpipe_f1_weighted_final, f1_weighted)

/* {"labels": [...], "matrix": [[...], ...]}: rows are true labels, columns predictions. */
PG_FUNCTION_INFO_V1(mlpipe_confusion_matrix_final);
Datum
mlpipe_confusion_matrix_final(PG_FUNCTION_ARGS)
{
	LabelState *st;
	StringInfoData s;
	int		   *order;
	int			i,
				j;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	st = (LabelState *) PG_GETARG_POINTER(0);
	order = label_order(st);
	initStringInfo(&s);
	appendStringInfoString(&s, "{\"labels\": [");
	for (i = 0; i < st->n_labels; i++)
	{
		if (i)
			appendStringInfoString(&s, ", ");
		if (st->kind == LABEL_TEXT)
			escape_json(&s, st->labels[order[i]]);
		else
			appendStringInfoString(&s, st->labels[order[i]]);
	}
	appendStringInfoString(&s, "], \"matrix\": [");
	for (i = 0; i < st->n_labels; i++)
	{
		appendStringInfoString(&s, i ? ", [" : "[");
		for (j = 0; j < st->n_labels; j++)
			appendStringInfo(&s, "%s" INT64_FORMAT, j ? ", " : "",
							 st->counts[(Size) order[i] * st->cap + order[j]]);
		appendStringInfoChar(&s, ']');
	}
	appendStringInfoString(&s, "]}");
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(s.data));
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
	{
		if (st == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(st);
	}
	if (st == NULL)
		st = MemoryContextAllocZero(ctx, sizeof(LossState));
	proba[1] = PG_GETARG_FLOAT8(2);
	check_finite(proba[1], "log_loss", "the probability");
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
	{
		if (st == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(st);
	}
	if (st == NULL)
		st = MemoryContextAllocZero(ctx, sizeof(LossState));
	classes_row(&st->cl, PG_GETARG_ARRAYTYPE_P(3), ctx, "log_loss");
	p = float8_array(PG_GETARG_ARRAYTYPE_P(2), &k, "log_loss", "proba");
	if (k != st->cl.k)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("mlpipe.log_loss: proba has %d elements but classes has %d", k, st->cl.k)));
	y = classes_find(&st->cl, PG_GETARG_TEXT_PP(1), "log_loss");
	loss_add(st, metrics_log_loss_row(p, k, y));
	st->n++;
	PG_RETURN_POINTER(st);
}

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
	PG_RETURN_BYTEA_P(finish_serial(&buf, "log_loss"));
}

PG_FUNCTION_INFO_V1(mlpipe_log_loss_deserial);
Datum
mlpipe_log_loss_deserial(PG_FUNCTION_ARGS)
{
	LossState  *st = palloc0(sizeof(LossState));
	StringInfoData buf;

	agg_context(fcinfo, "log_loss deserial");
	serial_reader(&buf, PG_GETARG_BYTEA_PP(0));
	st->n = pq_getmsgint64(&buf);
	st->sum = pq_getmsgfloat8(&buf);
	st->comp = pq_getmsgfloat8(&buf);
	classes_read(&buf, &st->cl, CurrentMemoryContext, "log_loss");
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(st);
}

PG_FUNCTION_INFO_V1(mlpipe_log_loss_combine);
Datum
mlpipe_log_loss_combine(PG_FUNCTION_ARGS)
{
	MemoryContext ctx = agg_context(fcinfo, "log_loss combine");
	LossState  *a = PG_ARGISNULL(0) ? NULL : (LossState *) PG_GETARG_POINTER(0);
	LossState  *b = PG_ARGISNULL(1) ? NULL : (LossState *) PG_GETARG_POINTER(1);

	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
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

/*
 * Rows kept whole, for the metrics that need every row (roc_auc, the
 * clustering metrics): one int32 id per row (class or cluster label) and
 * `width` doubles (scores or coordinates). Append, merge and (de)serialize
 * are shared by their aggregates.
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

static LabeledRows *
rows_new(MemoryContext ctx, int width)
{
	LabeledRows *r = MemoryContextAllocZero(ctx, sizeof(LabeledRows));

	r->ctx = ctx;
	r->width = width;
	return r;
}

/* Room for `more` rows. */
static void
rows_reserve(LabeledRows *r, int64 more, const char *what)
{
	int64		need = r->n + more;

	if (need <= r->cap)
		return;
	if (need > (int64) (MaxAllocHugeSize / (sizeof(double) * r->width + sizeof(int32))))
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("mlpipe.%s: too many rows (" INT64_FORMAT ")", what, need)));
	r->cap = Max(need, Max(r->cap * 2, 1024));
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
static void
rows_add(LabeledRows *r, int32 id, const double *val, const char *what)
{
	rows_reserve(r, 1, what);
	r->id[r->n] = id;
	memcpy(r->val + (Size) r->n * r->width, val, sizeof(double) * r->width);
	r->n++;
}

/* Appends b's rows to a (same width). */
static void
rows_append(LabeledRows *a, const LabeledRows *b, const char *what)
{
	rows_reserve(a, b->n, what);
	memcpy(a->id + a->n, b->id, sizeof(int32) * b->n);
	memcpy(a->val + (Size) a->n * a->width, b->val, sizeof(double) * a->width * b->n);
	a->n += b->n;
}

/* Serial form: width, n, ids, values. */
static void
rows_send(StringInfo buf, const LabeledRows *r, const char *what)
{
	if ((double) r->n * (sizeof(double) * r->width + sizeof(int32)) > (double) MaxAllocSize)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("mlpipe.%s: " INT64_FORMAT " rows are too many to pass between parallel workers",
							   what, r->n),
						errhint("SET max_parallel_workers_per_gather = 0 for this query.")));
	pq_sendint32(buf, r->width);
	pq_sendint64(buf, r->n);
	send_bytes(buf, r->id, sizeof(int32) * r->n);
	send_bytes(buf, r->val, sizeof(double) * r->width * r->n);
}

/* Reads rows_send's form, with the counts bounded by the bytes present. */
static LabeledRows *
rows_recv(StringInfo buf, MemoryContext ctx, const char *what)
{
	LabeledRows *r;
	int32		width = pq_getmsgint(buf, 4);
	int64		n = pq_getmsgint64(buf);

	if (width < 1 || n < 0 || n > (int64) (buf->len / (sizeof(double) * width + sizeof(int32))))
		elog(ERROR, "mlpipe.%s: corrupt aggregate state", what);
	r = rows_new(ctx, width);
	rows_reserve(r, n, what);
	memcpy(r->id, pq_getmsgbytes(buf, sizeof(int32) * n), sizeof(int32) * n);
	memcpy(r->val, pq_getmsgbytes(buf, sizeof(double) * width * n), sizeof(double) * width * n);
	r->n = n;
	return r;
}

/* ---------------------------------------------------------------------- */
/* roc_auc: every (label, scores) row kept                                */
/* ---------------------------------------------------------------------- */

typedef struct ScoreState
{
	LabeledRows *rows;			/* id: binary 0/1, multiclass index in classes; val: the scores */
	ClassList	cl;
} ScoreState;

static ScoreState *
score_state_new(MemoryContext ctx, int k)
{
	ScoreState *st = MemoryContextAllocZero(ctx, sizeof(ScoreState));

	st->rows = rows_new(ctx, k);
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
	{
		if (st == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(st);
	}
	s = PG_GETARG_FLOAT8(2);
	check_finite(s, "roc_auc", "the score");
	if (st == NULL)
		st = score_state_new(ctx, 1);
	rows_add(st->rows, PG_GETARG_BOOL(1) ? 1 : 0, &s, "roc_auc");
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
	{
		if (st == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(st);
	}
	if (st == NULL)
	{
		memset(&probe, 0, sizeof(probe));
		classes_set(&probe, PG_GETARG_ARRAYTYPE_P(3), ctx, "roc_auc");
		st = score_state_new(ctx, probe.k);
		st->cl = probe;
	}
	else
		classes_row(&st->cl, PG_GETARG_ARRAYTYPE_P(3), ctx, "roc_auc");
	p = float8_array(PG_GETARG_ARRAYTYPE_P(2), &k, "roc_auc", "proba");
	if (k != st->rows->width)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("mlpipe.roc_auc: proba has %d elements but classes has %d", k, st->rows->width)));
	rows_add(st->rows, classes_find(&st->cl, PG_GETARG_TEXT_PP(1), "roc_auc"), p, "roc_auc");
	PG_RETURN_POINTER(st);
}

PG_FUNCTION_INFO_V1(mlpipe_roc_auc_serial);
Datum
mlpipe_roc_auc_serial(PG_FUNCTION_ARGS)
{
	ScoreState *st = (ScoreState *) PG_GETARG_POINTER(0);
	StringInfoData buf;

	agg_context(fcinfo, "roc_auc serial");
	pq_begintypsend(&buf);
	rows_send(&buf, st->rows, "roc_auc");
	classes_write(&buf, &st->cl);
	PG_RETURN_BYTEA_P(finish_serial(&buf, "roc_auc"));
}

PG_FUNCTION_INFO_V1(mlpipe_roc_auc_deserial);
Datum
mlpipe_roc_auc_deserial(PG_FUNCTION_ARGS)
{
	StringInfoData buf;
	ScoreState *st;
	int			k;
	int64		i;

	agg_context(fcinfo, "roc_auc deserial");
	serial_reader(&buf, PG_GETARG_BYTEA_PP(0));
	st = MemoryContextAllocZero(CurrentMemoryContext, sizeof(ScoreState));
	st->rows = rows_recv(&buf, CurrentMemoryContext, "roc_auc");
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

PG_FUNCTION_INFO_V1(mlpipe_roc_auc_combine);
Datum
mlpipe_roc_auc_combine(PG_FUNCTION_ARGS)
{
	MemoryContext ctx = agg_context(fcinfo, "roc_auc combine");
	ScoreState *a = PG_ARGISNULL(0) ? NULL : (ScoreState *) PG_GETARG_POINTER(0);
	ScoreState *b = PG_ARGISNULL(1) ? NULL : (ScoreState *) PG_GETARG_POINTER(1);

	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
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
	rows_append(a->rows, b->rows, "roc_auc");
	PG_RETURN_POINTER(a);
}

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
	return float8_or_null(fcinfo, auc);
}

/* ---------------------------------------------------------------------- */
/* Regression: running sums (core's RegAccum)                             */
/* ---------------------------------------------------------------------- */

PG_FUNCTION_INFO_V1(mlpipe_reg_trans);
Datum
mlpipe_reg_trans(PG_FUNCTION_ARGS)
{
	MemoryContext ctx = agg_context(fcinfo, "regression metric");
	RegAccum   *st = PG_ARGISNULL(0) ? NULL : (RegAccum *) PG_GETARG_POINTER(0);
	double		y,
				p;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
	{
		if (st == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(st);
	}
	y = PG_GETARG_FLOAT8(1);
	p = PG_GETARG_FLOAT8(2);
	if (!isfinite(y) || !isfinite(p))
	{
		check_finite(y, agg_name(fcinfo, "regression metric"), "y_true");
		check_finite(p, agg_name(fcinfo, "regression metric"), "y_pred");
	}
	if (st == NULL)
		st = MemoryContextAllocZero(ctx, sizeof(RegAccum));
	metrics_reg_add(st, y, p);
	PG_RETURN_POINTER(st);
}

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
	PG_RETURN_BYTEA_P(finish_serial(&buf, "regression metric"));
}

PG_FUNCTION_INFO_V1(mlpipe_reg_deserial);
Datum
mlpipe_reg_deserial(PG_FUNCTION_ARGS)
{
	RegAccum   *st = palloc0(sizeof(RegAccum));
	StringInfoData buf;

	agg_context(fcinfo, "regression metric deserial");
	serial_reader(&buf, PG_GETARG_BYTEA_PP(0));
	st->n = pq_getmsgint64(&buf);
	st->mean_y = pq_getmsgfloat8(&buf);
	st->m2_y = pq_getmsgfloat8(&buf);
	st->se = pq_getmsgfloat8(&buf);
	st->ae = pq_getmsgfloat8(&buf);
	st->ape = pq_getmsgfloat8(&buf);
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(st);
}

PG_FUNCTION_INFO_V1(mlpipe_reg_combine);
Datum
mlpipe_reg_combine(PG_FUNCTION_ARGS)
{
	MemoryContext ctx = agg_context(fcinfo, "regression metric combine");
	RegAccum   *a = PG_ARGISNULL(0) ? NULL : (RegAccum *) PG_GETARG_POINTER(0);
	RegAccum   *b = PG_ARGISNULL(1) ? NULL : (RegAccum *) PG_GETARG_POINTER(1);

	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
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
	return float8_or_null(fcinfo, rm.field); \
}

REG_FINAL(mlpipe_rmse_final, rmse, 1)
REG_FINAL(mlpipe_mae_final, mae, 1)
REG_FINAL(mlpipe_r2_final, r2, 2)
REG_FINAL(mlpipe_mape_final, mape, 1)

/* ---------------------------------------------------------------------- */
/* Clustering: every point and its label                                  */
/* ---------------------------------------------------------------------- */

/* The points (val, width = d) and their labels (id). */
typedef LabeledRows PointState;

/* (x float8[], label int): one point; every x has the same length. */
PG_FUNCTION_INFO_V1(mlpipe_points_trans);
Datum
mlpipe_points_trans(PG_FUNCTION_ARGS)
{
	MemoryContext ctx = agg_context(fcinfo, "clustering metric");
	PointState *st = PG_ARGISNULL(0) ? NULL : (PointState *) PG_GETARG_POINTER(0);
	double	   *x;
	int			d;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
	{
		if (st == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(st);
	}
	x = float8_array(PG_GETARG_ARRAYTYPE_P(1), &d, agg_name(fcinfo, "clustering metric"), "x");
	if (d == 0)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("mlpipe.%s: x is empty; a point needs at least one feature",
							   agg_name(fcinfo, "clustering metric"))));
	if (st == NULL)
		st = rows_new(ctx, d);
	if (d != st->width)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("mlpipe.%s: x has %d elements here but %d in earlier rows",
							   agg_name(fcinfo, "clustering metric"), d, st->width),
						errhint("Every point needs the same number of features.")));
	rows_add(st, PG_GETARG_INT32(2), x, "clustering metric");
	PG_RETURN_POINTER(st);
}

PG_FUNCTION_INFO_V1(mlpipe_points_serial);
Datum
mlpipe_points_serial(PG_FUNCTION_ARGS)
{
	PointState *st = (PointState *) PG_GETARG_POINTER(0);
	StringInfoData buf;

	agg_context(fcinfo, "clustering metric serial");
	pq_begintypsend(&buf);
	rows_send(&buf, st, "clustering metric");
	PG_RETURN_BYTEA_P(finish_serial(&buf, "clustering metric"));
}

PG_FUNCTION_INFO_V1(mlpipe_points_deserial);
Datum
mlpipe_points_deserial(PG_FUNCTION_ARGS)
{
	StringInfoData buf;
	PointState *st;

	agg_context(fcinfo, "clustering metric deserial");
	serial_reader(&buf, PG_GETARG_BYTEA_PP(0));
	st = rows_recv(&buf, CurrentMemoryContext, "clustering metric");
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(st);
}

PG_FUNCTION_INFO_V1(mlpipe_points_combine);
Datum
mlpipe_points_combine(PG_FUNCTION_ARGS)
{
	MemoryContext ctx = agg_context(fcinfo, "clustering metric combine");
	PointState *a = PG_ARGISNULL(0) ? NULL : (PointState *) PG_GETARG_POINTER(0);
	PointState *b = PG_ARGISNULL(1) ? NULL : (PointState *) PG_GETARG_POINTER(1);

	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
	if (a == NULL)
		a = rows_new(ctx, b->width);
	if (a->width != b->width)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("mlpipe: x has %d elements in some rows and %d in others", b->width, a->width)));
	rows_append(a, b, "clustering metric");
	PG_RETURN_POINTER(a);
}

static int
cmp_int32(const void *a, const void *b)
{
	int32		x = *(const int32 *) a,
				y = *(const int32 *) b;

	return (x > y) - (x < y);
}

/* Labels compacted to [0, k) in sorted order (scikit-learn's LabelEncoder). */
static int *
points_labels(const PointState *st, int *k_out)
{
	int32	   *u = palloc(sizeof(int32) * Max(st->n, 1));
	int		   *lab = palloc(sizeof(int) * Max(st->n, 1));
	int64		i,
				k = 0;

	memcpy(u, st->id, sizeof(int32) * st->n);
	qsort(u, st->n, sizeof(int32), cmp_int32);
	for (i = 0; i < st->n; i++)
		if (i == 0 || u[i] != u[k - 1])
			u[k++] = u[i];
	for (i = 0; i < st->n; i++)
		lab[i] = (int32 *) bsearch(&st->id[i], u, k, sizeof(int32), cmp_int32) - u;
	*k_out = (int) k;
	return lab;
}

typedef enum ClusterMetric
{
	CM_SILHOUETTE,
	CM_CALINSKI,
	CM_DAVIES
} ClusterMetric;

static Datum
points_final(FunctionCallInfo fcinfo, ClusterMetric which, const char *name)
{
	PointState *st;
	PgEnv		pe;
	MlError		err = {0};
	double		v = NAN;
	int		   *lab;
	int			k;
	MlStatus	rc;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	st = (PointState *) PG_GETARG_POINTER(0);
	lab = points_labels(st, &k);
	pg_env_init(&pe, CurrentMemoryContext, name, true);
	if (which == CM_SILHOUETTE)
		rc = cluster_silhouette(&pe.env, st->val, st->n, st->width, lab, k, 0, 0, &v, &err);
	else if (which == CM_CALINSKI)
		rc = cluster_calinski_harabasz(&pe.env, st->val, st->n, st->width, lab, k, &v, &err);
	else
		rc = cluster_davies_bouldin(&pe.env, st->val, st->n, st->width, lab, k, &v, &err);
	ML_CHECK_STATUS(rc, &err);
	return float8_or_null(fcinfo, v);
}

PG_FUNCTION_INFO_V1(mlpipe_silhouette_final);
Datum
mlpipe_silhouette_final(PG_FUNCTION_ARGS)
{
	return points_final(fcinfo, CM_SILHOUETTE, "silhouette");
}

PG_FUNCTION_INFO_V1(mlpipe_calinski_harabasz_final);
Datum
mlpipe_calinski_harabasz_final(PG_FUNCTION_ARGS)
{
	return points_final(fcinfo, CM_CALINSKI, "calinski_harabasz");
}

PG_FUNCTION_INFO_V1(mlpipe_davies_bouldin_final);
Datum
mlpipe_davies_bouldin_final(PG_FUNCTION_ARGS)
{
	return points_final(fcinfo, CM_DAVIES, "davies_bouldin");
}
