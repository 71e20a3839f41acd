/*
 * metric_aggs_label.c: the label-pair metric aggregates mlpipe.accuracy,
 * precision_macro, recall_macro, f1_macro, f1_weighted and confusion_matrix
 * over (y_true, y_pred) of text, bigint or boolean, and precision, recall
 * and f1 of a named positive class over (y_true, y_pred, positive). The state is a
 * confusion matrix; the arithmetic is src/core/metrics.c's, the same
 * definitions as the metrics stored with a trained version.
 *
 * States are `internal`, allocated in the aggregate context, with combine,
 * serial and deserial functions so every aggregate is PARALLEL SAFE.
 * NULLs: a row with a NULL in any argument is ignored; no rows give NULL.
 * NaN or infinite numbers, arrays with NULL elements or of the wrong length
 * are errors (22000), as scikit-learn rejects them.
 */
#include "agg_state.h"

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/json.h"

#include "metrics.h"

#define LABEL_MAX	2048		/* distinct labels in a confusion matrix */

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
	char	   *positive;		/* the positive class of precision / recall / f1, or NULL */
	MemoryContext ctx;
} LabelState;

/* An empty state for labels of `kind`, in ctx. */
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
		int64	   *nc;
		int			r;

		pg_memory_check((double) sizeof(int64) * ncap * ncap,
						"Raise mlpipe.max_memory, or aggregate fewer distinct labels.",
						"mlpipe.%s's confusion matrix for %d labels", agg, ncap);
		nc = MemoryContextAllocZero(st->ctx, sizeof(int64) * ncap * ncap);

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

/* Adds count to the (t, p) cell, adding either label when new. */
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

/* Transition of the label metrics: one (y_true, y_pred) pair; NULLs are ignored. */
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
		return agg_state_unchanged(fcinfo);
	if (st == NULL)
		st = label_state_new(ctx, kind);
	t = label_text(fcinfo, 1, kind, &tlen, tb);
	p = label_text(fcinfo, 2, kind, &plen, pb);
	if (st->n_labels >= LABEL_MAX - 1)
		agg = agg_name(fcinfo, agg);	/* near the limit: name the aggregate in the error */
	label_add(st, t, tlen, p, plen, 1, agg);
	PG_RETURN_POINTER(st);
}

/* Transition for (text, text) labels. */
PG_FUNCTION_INFO_V1(mlpipe_label_trans_text);
Datum
mlpipe_label_trans_text(PG_FUNCTION_ARGS)
{
	return label_trans(fcinfo, LABEL_TEXT, "label metric");
}

/* Transition for (bigint, bigint) labels. */
PG_FUNCTION_INFO_V1(mlpipe_label_trans_int8);
Datum
mlpipe_label_trans_int8(PG_FUNCTION_ARGS)
{
	return label_trans(fcinfo, LABEL_INT, "label metric");
}

/* Transition for (boolean, boolean) labels. */
PG_FUNCTION_INFO_V1(mlpipe_label_trans_bool);
Datum
mlpipe_label_trans_bool(PG_FUNCTION_ARGS)
{
	return label_trans(fcinfo, LABEL_BOOL, "label metric");
}

/*
 * Sets the state's positive class from a row, or checks the row names the
 * same one: precision, recall and f1 score one class for the whole group.
 */
static void
label_set_positive(LabelState *st, const char *s, int len, FunctionCallInfo fcinfo)
{
	const char *agg;

	if (st->positive == NULL)
	{
		st->positive = MemoryContextAlloc(st->ctx, len + 1);
		memcpy(st->positive, s, len);
		st->positive[len] = '\0';
	}
	else if ((int) strlen(st->positive) != len || memcmp(st->positive, s, len) != 0)
	{
		/* the aggregate's name is looked up only for the message */
		agg = fcinfo ? agg_name(fcinfo, "f1") : "label metric";
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("mlpipe.%s: the positive class must be the same in every row", agg),
						errdetail("\"%s\" and then \"%.*s\".", st->positive, len, s),
						errhint("Pass a constant, e.g. mlpipe.f1(y, y_hat, 'yes').")));
	}
}

/*
 * Transition of precision / recall / f1 for a positive class: one
 * (y_true, y_pred) pair and the class. A NULL class is an error (the
 * result would not say which class it is about); NULL labels are ignored.
 */
static Datum
label_trans_positive(FunctionCallInfo fcinfo, int kind)
{
	LabelState *st;
	char		buf[24];
	const char *s;
	int			len;

	if (PG_ARGISNULL(3))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("mlpipe.%s: the positive class is NULL", agg_name(fcinfo, "f1")),
						errhint("Name the class the score is about, e.g. mlpipe.%s(y, y_hat, 'yes').",
								agg_name(fcinfo, "f1"))));
	st = (LabelState *) DatumGetPointer(label_trans(fcinfo, kind, "label metric"));
	if (st == NULL)
		PG_RETURN_NULL();
	s = label_text(fcinfo, 3, kind, &len, buf);
	label_set_positive(st, s, len, fcinfo);
	PG_RETURN_POINTER(st);
}

/* Transition for (text, text, text) labels and positive class. */
PG_FUNCTION_INFO_V1(mlpipe_label_pos_trans_text);
Datum
mlpipe_label_pos_trans_text(PG_FUNCTION_ARGS)
{
	return label_trans_positive(fcinfo, LABEL_TEXT);
}

/* Transition for (bigint, bigint, bigint) labels and positive class. */
PG_FUNCTION_INFO_V1(mlpipe_label_pos_trans_int8);
Datum
mlpipe_label_pos_trans_int8(PG_FUNCTION_ARGS)
{
	return label_trans_positive(fcinfo, LABEL_INT);
}

/* Transition for (boolean, boolean, boolean) labels and positive class. */
PG_FUNCTION_INFO_V1(mlpipe_label_pos_trans_bool);
Datum
mlpipe_label_pos_trans_bool(PG_FUNCTION_ARGS)
{
	return label_trans_positive(fcinfo, LABEL_BOOL);
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
		agg_send_bytes(buf, st->labels[i], len);
	}
	for (i = 0; i < st->n_labels; i++)
		for (j = 0; j < st->n_labels; j++)
			pq_sendint64(buf, st->counts[(Size) i * st->cap + j]);
	/* the positive class (precision / recall / f1) trails, only when set */
	if (st->positive != NULL)
	{
		int			len = strlen(st->positive);

		pq_sendint32(buf, len);
		agg_send_bytes(buf, st->positive, len);
	}
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
	if (buf->cursor < buf->len)
	{
		int32		len = pq_getmsgint(buf, 4);

		if (len < 0 || len > buf->len - buf->cursor)
			elog(ERROR, "mlpipe: corrupt label metric state");
		label_set_positive(st, pq_getmsgbytes(buf, len), len, NULL);
	}
	return st;
}

/* Serial of the label metrics (label_write's form). */
PG_FUNCTION_INFO_V1(mlpipe_label_serial);
Datum
mlpipe_label_serial(PG_FUNCTION_ARGS)
{
	StringInfoData buf;

	agg_context(fcinfo, "label metric serial");
	pq_begintypsend(&buf);
	label_write(&buf, (LabelState *) PG_GETARG_POINTER(0));
	PG_RETURN_BYTEA_P(agg_finish_serial(&buf, "label metric"));
}

/* Deserial of the label metrics. */
PG_FUNCTION_INFO_V1(mlpipe_label_deserial);
Datum
mlpipe_label_deserial(PG_FUNCTION_ARGS)
{
	StringInfoData buf;
	LabelState *st;

	agg_context(fcinfo, "label metric deserial");
	agg_serial_reader(&buf, PG_GETARG_BYTEA_PP(0));
	st = label_read_into(&buf, NULL, CurrentMemoryContext);
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(st);
}

/* Combine of the label metrics: b's counts added to a, label by label. */
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
		return agg_state_unchanged(fcinfo);
	if (a == NULL)
		a = label_state_new(ctx, b->kind);
	if (b->positive != NULL)
		label_set_positive(a, b->positive, strlen(b->positive), fcinfo);
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

/*
 * Orders label strings as scikit-learn sorts the labels: numbers by value.
 * arg points to the LabelKind of the labels.
 */
static int
label_cmp(const void *a, const void *b, void *arg)
{
	const char *x = *(char *const *) a,
			   *y = *(char *const *) b;

	if (*(const int32 *) arg == LABEL_INT)
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
	qsort_arg(sorted, st->n_labels, sizeof(char *), label_cmp, (void *) &st->kind);
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
	return agg_float8_or_null(fcinfo, cm.field); \
}

LABEL_FINAL(mlpipe_accuracy_final, accuracy)
LABEL_FINAL(mlpipe_precision_macro_final, precision_macro)
LABEL_FINAL(mlpipe_recall_macro_final, recall_macro)
LABEL_FINAL(mlpipe_f1_macro_final, f1_macro)
LABEL_FINAL(mlpipe_f1_weighted_final, f1_weighted)

/*
 * Precision, recall or F1 (which: 'p', 'r', 'f') of the state's positive
 * class, one-vs-rest: scikit-learn's average='binary' when there are two
 * labels, labels=[positive] otherwise; 0 for a zero denominator. As
 * scikit-learn's pos_label check, 22023 when the class is in neither y_true
 * nor y_pred while two other labels are; with one label only, 0.
 */
static Datum
label_positive_final(FunctionCallInfo fcinfo, char which)
{
	LabelState *st;
	int			p,
				i;
	int64		tp,
				support = 0,
				predicted = 0;
	const char *agg = which == 'p' ? "precision" : which == 'r' ? "recall" : "f1";

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	st = (LabelState *) PG_GETARG_POINTER(0);
	if (st->positive == NULL)
		PG_RETURN_NULL();
	for (p = 0; p < st->n_labels; p++)
		if (strcmp(st->labels[p], st->positive) == 0)
			break;
	if (p == st->n_labels && st->n_labels >= 2)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("mlpipe.%s: the positive class \"%s\" is in neither y_true nor y_pred",
							   agg, st->positive),
						errhint("Check the spelling and type of the class; labels compare as text.")));
	if (p == st->n_labels)
		PG_RETURN_FLOAT8(0.0);
	tp = st->counts[(Size) p * st->cap + p];
	for (i = 0; i < st->n_labels; i++)
	{
		support += st->counts[(Size) p * st->cap + i];
		predicted += st->counts[(Size) i * st->cap + p];
	}
	if (which == 'p')
		PG_RETURN_FLOAT8(predicted > 0 ? (double) tp / predicted : 0.0);
	if (which == 'r')
		PG_RETURN_FLOAT8(support > 0 ? (double) tp / support : 0.0);
	PG_RETURN_FLOAT8(support + predicted > 0 ? 2.0 * tp / (support + predicted) : 0.0);
}

/* Final of mlpipe.precision(y_true, y_pred, positive). */
PG_FUNCTION_INFO_V1(mlpipe_precision_final);
Datum
mlpipe_precision_final(PG_FUNCTION_ARGS)
{
	return label_positive_final(fcinfo, 'p');
}

/* Final of mlpipe.recall(y_true, y_pred, positive). */
PG_FUNCTION_INFO_V1(mlpipe_recall_final);
Datum
mlpipe_recall_final(PG_FUNCTION_ARGS)
{
	return label_positive_final(fcinfo, 'r');
}

/* Final of mlpipe.f1(y_true, y_pred, positive). */
PG_FUNCTION_INFO_V1(mlpipe_f1_final);
Datum
mlpipe_f1_final(PG_FUNCTION_ARGS)
{
	return label_positive_final(fcinfo, 'f');
}

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
