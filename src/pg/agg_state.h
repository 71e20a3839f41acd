/*
 * agg_state.h: helpers shared by the glue's aggregates (metric_aggs_*.c,
 * features.c, drift.c): the aggregate memory context, the NULL-state
 * prologues of transition and combine functions, the serial form of the
 * states and its checked reader, checks of float8 inputs, LabeledRows (a
 * state that keeps every row: an id and some doubles), and the state type
 * mlpipe.agg_state (agg_state_type.c) that every user-facing aggregate uses
 * as its STYPE, so that Citus can split the aggregates (test/citus/DESIGN.md).
 */
#ifndef MLPIPE_AGG_STATE_H
#define MLPIPE_AGG_STATE_H

#include "mlpipe.h"

#include "lib/stringinfo.h"
#include "utils/expandeddatum.h"

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

/*
 * Readers of a serial state: each checks that the bytes are there, and a
 * short or corrupt state is 22P02 (the text input of mlpipe.agg_state is a
 * trust boundary: Citus feeds it text from another node).
 */
int32		agg_get_int32(StringInfo buf);
int64		agg_get_int64(StringInfo buf);
double		agg_get_float8(StringInfo buf);
const char *agg_get_bytes(StringInfo buf, Size len);
/* 22P02 unless every byte was read. */
void		agg_get_end(StringInfo buf);
/* 22P02: the serial form of a `family` state is corrupt (detail says how). */
void		agg_state_corrupt(const char *family, const char *detail) pg_attribute_noreturn();

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
/* Serial form: width, n, ids, values; 54000 naming `what` over 1 GB. */
void		labeled_rows_send(StringInfo buf, const LabeledRows *r, const char *what);
/* Reads labeled_rows_send's form into ctx, the counts bounded by the bytes present. */
LabeledRows *labeled_rows_recv(StringInfo buf, MemoryContext ctx, const char *what);

/* ---------------------------------------------------------------------- */
/* mlpipe.agg_state (agg_state_type.c)                                    */
/* ---------------------------------------------------------------------- */

/*
 * The families of states, written in the flat form's header. A new
 * aggregate on an existing family reuses its kind; a new family takes the
 * next number (never renumber: states cross nodes and versions).
 */
typedef enum AggStateKind
{
	AGG_KIND_FEATURES = 1,		/* ts_features, summary (features.c) */
	AGG_KIND_LABEL = 2,			/* label metrics (metric_aggs_label.c) */
	AGG_KIND_LOSS = 3,			/* log_loss (metric_aggs_proba.c) */
	AGG_KIND_SCORE = 4,			/* roc_auc (metric_aggs_proba.c) */
	AGG_KIND_REG = 5,			/* regression metrics */
	AGG_KIND_POINTS = 6,		/* clustering metrics */
	AGG_KIND_MAX = 6
} AggStateKind;

/* How a family's C struct is written to and read from its serial form. */
typedef struct AggFamily
{
	AggStateKind kind;
	const char *name;			/* "regression metric", for messages */
	/* appends the serial form of st; agg names the aggregate in errors */
	void		(*write) (StringInfo buf, const void *st, const char *agg);
	/* a new struct in ctx from the serial form, every count checked */
	void	   *(*read) (StringInfo buf, MemoryContext ctx);
} AggFamily;

/*
 * An mlpipe.agg_state in memory: an expanded object (utils/expandeddatum.h)
 * whose private part is the family's C struct, allocated in the object's
 * own context (AGG_STATE_CTX), a child of the aggregate context. The
 * aggregate keeps the read-write pointer between rows, so rows cost what
 * they cost with `internal`; it is flattened only where a flat datum is
 * needed (a parallel worker's result, Citus' worker_partial_agg).
 */
typedef struct AggStateObj
{
	ExpandedObjectHeader hdr;
	const AggFamily *family;
	void	   *st;				/* the family's struct */
	Oid			aggfnoid;		/* the aggregate, for messages (or InvalidOid) */
	Oid			fn_oid;			/* the support function that created it */
	StringInfoData flat;		/* serial form cached by get_flat_size, or data NULL */
} AggStateObj;

/* The families, each defined in the file of its aggregates. */
extern const AggFamily feat_family;
extern const AggFamily label_family;
extern const AggFamily loss_family;
extern const AggFamily score_family;
extern const AggFamily reg_family;
extern const AggFamily points_family;

#define AGG_STATE_CTX(obj) ((obj)->hdr.eoh_context)
#define AGG_STATE_RETURN(obj) PG_RETURN_DATUM(EOHPGetRWDatum(&(obj)->hdr))

/* A new, empty object of `family` under parent (st still NULL). */
AggStateObj *agg_state_create(FunctionCallInfo fcinfo, MemoryContext parent,
							  const AggFamily *family);

/*
 * The state at argument argno: NULL for SQL NULL; the object itself when it
 * is one of ours (22023 when of another family); a flat state read into a
 * new object under ctx.
 */
AggStateObj *agg_state_arg(FunctionCallInfo fcinfo, int argno, const AggFamily *family,
						   MemoryContext ctx);

/*
 * A flat state (header and serial form, len bytes at data) read into a new
 * object under ctx; 22P02 unless whole and valid, 22023 when not of
 * `family` (NULL: any family).
 */
AggStateObj *agg_state_read(const char *data, Size len, const AggFamily *family, MemoryContext ctx);

/* The name of the aggregate that made obj, or its family's name. */
const char *agg_state_name(const AggStateObj *obj);

#endif
