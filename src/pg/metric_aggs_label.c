/*
 * metric_aggs_label.c: the label-pair metric aggregates mlpipe.accuracy,
 * precision_macro, recall_macro, f1_macro, f1_weighted and confusion_matrix
 * over (y_true, y_pred) of text, bigint or boolean, and precision, recall
 * and f1 of a named positive class over (y_true, y_pred, positive). The
 * state is a confusion matrix (and the positive class, when named); the
 * arithmetic is src/core/metrics.c's, the same definitions as the metrics
 * stored with a trained version.
 *
 * The state is an mlpipe.agg_state of kind AGG_KIND_LABEL (agg_state_type.c)
 * holding a LabelState, with a combine function: every aggregate is
 * PARALLEL SAFE, and Citus splits it into shard partials and a coordinator
 * combine. A new aggregate on this state needs only a final function that
 * takes the state with label_arg (see test/citus/DESIGN.md).
 * NULLs: a row with a NULL label is ignored (a NULL positive class is an
 * error); no rows give NULL.
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

/* An empty label state for labels of `kind` under ctx. */
static AggStateObj *
label_obj_new(FunctionCallInfo fcinfo, MemoryContext ctx, int kind)
{
	AggStateObj *obj = agg_state_create(fcinfo, ctx, &label_family);

	obj->st = label_state_new(AGG_STATE_CTX(obj), kind);
	return obj;
}

/*
 * The LabelState of argument argno (a flat state read into ctx), or NULL:
 * what every final function of a label metric starts with.
 */
static LabelState *
label_arg(FunctionCallInfo fcinfo, int argno, MemoryContext ctx)
{
	AggStateObj *obj = agg_state_arg(fcinfo, argno, &label_family, ctx);

	return obj ? (LabelState *) obj->st : NULL;
}

/* 22023: a state of text labels met one of bigint labels (a state passed by hand). */
static void
label_kind_mismatch(const char *agg)
{
	ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("mlpipe.%s: the state holds labels of another type", agg),
					errhint("Combine states of the same (y_true, y_pred) types only.")));
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

/*
 * Adds one (y_true, y_pred) pair, neither NULL, to the state at argument 0
 * (a new one in ctx when NULL); the object, for the caller to return.
 */
static AggStateObj *
label_trans_row(FunctionCallInfo fcinfo, MemoryContext ctx, int kind, const char *agg)
{
	AggStateObj *obj;
	LabelState *st;
	char		tb[24],
				pb[24];
	const char *t,
			   *p;
	int			tlen,
				plen;

	if ((obj = agg_state_arg(fcinfo, 0, &label_family, ctx)) == NULL)
		obj = label_obj_new(fcinfo, ctx, kind);
	st = obj->st;
	if (st->kind != kind)
		label_kind_mismatch(agg_name(fcinfo, agg));
	t = label_text(fcinfo, 1, kind, &tlen, tb);
	p = label_text(fcinfo, 2, kind, &plen, pb);
	if (st->n_labels >= LABEL_MAX - 1)
		agg = agg_name(fcinfo, agg);	/* near the limit: name the aggregate in the error */
	label_add(st, t, tlen, p, plen, 1, agg);
	return obj;
}

/* Transition of the label metrics: one (y_true, y_pred) pair; NULLs are ignored. */
static Datum
label_trans(FunctionCallInfo fcinfo, int kind, const char *agg)
{
	MemoryContext ctx = agg_context(fcinfo, agg);

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		return agg_state_unchanged(fcinfo);
	AGG_STATE_RETURN(label_trans_row(fcinfo, ctx, kind, agg));
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
	MemoryContext ctx = agg_context(fcinfo, "label metric");
	AggStateObj *obj;
	char		buf[24];
	const char *s;
	int			len;

	if (PG_ARGISNULL(3))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("mlpipe.%s: the positive class is NULL", agg_name(fcinfo, "f1")),
						errhint("Name the class the score is about, e.g. mlpipe.%s(y, y_hat, 'yes').",
								agg_name(fcinfo, "f1"))));
	if (!PG_ARGISNULL(1) && !PG_ARGISNULL(2))
		obj = label_trans_row(fcinfo, ctx, kind, "label metric");
	else if ((obj = agg_state_arg(fcinfo, 0, &label_family, ctx)) == NULL)
		PG_RETURN_NULL();		/* no pair yet: the state stays NULL */
	s = label_text(fcinfo, 3, kind, &len, buf);
	label_set_positive(obj->st, s, len, fcinfo);
	AGG_STATE_RETURN(obj);
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

/*
 * Serial form: kind, labels and the used part of the matrix, then the
 * positive class (precision / recall / f1) when the state has one.
 */
static void
label_write(StringInfo buf, const void *p, const char *agg)
{
	const LabelState *st = p;
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

/*
 * Reads the optional trailing positive class of label_write's form into st:
 * its length, then its bytes (no zero byte). A state that already names a
 * class (label_read_into merging into one) must name the same.
 */
static void
label_read_positive(StringInfo buf, LabelState *st)
{
	int32		len = agg_get_int32(buf);
	const char *s;

	if (len < 0 || len > buf->len - buf->cursor)
		agg_state_corrupt("label metric", "The positive class's length passes the end of the state.");
	s = agg_get_bytes(buf, len);
	if (memchr(s, '\0', len) != NULL)
		agg_state_corrupt("label metric", "The positive class contains a zero byte.");
	if (st->positive != NULL &&
		((int) strlen(st->positive) != len || memcmp(st->positive, s, len) != 0))
		agg_state_corrupt("label metric", "The state names two positive classes.");
	label_set_positive(st, s, len, NULL);
}

/* Merges a serialised state into st (created in ctx when NULL). */
static LabelState *
label_read_into(StringInfo buf, LabelState *st, MemoryContext ctx)
{
	int32		kind = agg_get_int32(buf);
	int32		n = agg_get_int32(buf);
	int		   *map;
	int			i,
				j;

	if (kind < LABEL_TEXT || kind > LABEL_BOOL || n < 0 || n > LABEL_MAX)
		agg_state_corrupt("label metric", "The label kind or count is out of range.");
	if (st == NULL)
		st = label_state_new(ctx, kind);
	map = palloc(sizeof(int) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		int32		len = agg_get_int32(buf);
		const char *l;

		if (len < 0 || len > buf->len - buf->cursor)
			agg_state_corrupt("label metric", "A label's length passes the end of the state.");
		l = agg_get_bytes(buf, len);
		if (memchr(l, '\0', len) != NULL)
			agg_state_corrupt("label metric", "A label contains a zero byte.");
		map[i] = label_index(st, l, len, "label metric");
	}
	for (i = 0; i < n; i++)
		for (j = 0; j < n; j++)
		{
			int64		c = agg_get_int64(buf);

			if (c < 0 || c > PG_INT64_MAX - st->n)
				agg_state_corrupt("label metric", "A count is negative, or the counts overflow.");
			st->counts[(Size) map[i] * st->cap + map[j]] += c;
			st->n += c;
		}
	pfree(map);
	if (buf->cursor < buf->len)
		label_read_positive(buf, st);
	return st;
}

/* A LabelState in ctx from label_write's form (label_read_into a new state). */
static void *
label_read(StringInfo buf, MemoryContext ctx)
{
	return label_read_into(buf, NULL, ctx);
}

const AggFamily label_family = {AGG_KIND_LABEL, "label metric", label_write, label_read};

/* Combine of the label metrics: b's counts added to a, label by label. */
PG_FUNCTION_INFO_V1(mlpipe_label_combine);
Datum
mlpipe_label_combine(PG_FUNCTION_ARGS)
{
	MemoryContext ctx = agg_context(fcinfo, "label metric combine");
	LabelState *b = label_arg(fcinfo, 1, CurrentMemoryContext);
	AggStateObj *obj;
	LabelState *a;
	int			i,
				j;

	if (b == NULL)
		return agg_state_unchanged(fcinfo);
	if ((obj = agg_state_arg(fcinfo, 0, &label_family, ctx)) == NULL)
		obj = label_obj_new(fcinfo, ctx, b->kind);
	a = obj->st;
	if (a->kind != b->kind)
		label_kind_mismatch(agg_name(fcinfo, "label metric"));
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
	AGG_STATE_RETURN(obj);
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
	LabelState *st = label_arg(fcinfo, 0, CurrentMemoryContext); \
	if (st == NULL) \
		PG_RETURN_NULL(); \
	label_metrics(st, &cm); \
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

	if ((st = label_arg(fcinfo, 0, CurrentMemoryContext)) == NULL ||
		st->positive == NULL)
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

	if ((st = label_arg(fcinfo, 0, CurrentMemoryContext)) == NULL)
		PG_RETURN_NULL();
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
