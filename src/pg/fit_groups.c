/*
 * fit_groups.c: mlpipe_internal._fit_groups, the C half of training one model per
 * group (params.group_by, docs/grouped-models.md). It reads the source once
 * through an SPI cursor, keeps every row in memory partitioned by the text
 * of its group columns, then trains the groups one after the other through
 * fit_result_datum (the body of mlpipe_internal._fit), with source_scan replaying
 * the group's rows (source_replay). A group's model is so the model that
 * training on the source filtered to that group would give, byte for byte.
 */
#include "mlpipe.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/typcache.h"

PG_FUNCTION_INFO_V1(mlpipe_fit_groups);

#define GROUP_BATCH 10000

/* One group: its key (the text of each group column) and its rows. */
typedef struct RowGroup
{
	char	  **parts;			/* n_by texts, or NULL for the rows with a NULL key */
	HeapTuple  *rows;
	int64		n;
	int64		cap;
} RowGroup;

/* The hash table entry: an encoded key and its group's index. */
typedef struct GroupEntry
{
	char	   *key;
	int			index;
} GroupEntry;

/* The source, read once and partitioned. */
typedef struct Groups
{
	MemoryContext cxt;
	TupleDesc	tupdesc;
	int			n_by;
	int		   *by_att;			/* n_by attribute numbers, 0-based */
	FmgrInfo   *by_out;			/* n_by output functions */
	HTAB	   *index;
	RowGroup	   *groups;			/* in order of first appearance */
	int			n;
	int			cap;
	RowGroup		null_key;		/* rows with a NULL in a group column */
	Size		bytes;			/* tuple bytes kept */
	MemoryContext scratch;		/* per-batch: a row's key texts */
} Groups;

/*
 * True for the types whose output text depends on DateStyle, TimeZone or
 * IntervalStyle: a group key is the column's text, and scoring must find
 * the same text in every session.
 */
static bool
group_type_refused(Oid type)
{
	type = getBaseType(type);
	return type == DATEOID || type == TIMEOID || type == TIMETZOID || type == TIMESTAMPOID ||
		type == TIMESTAMPTZOID || type == INTERVALOID;
}

/* Finds the group columns in the source's row description and their output functions. */
static void
groups_plan(Groups *G, TupleDesc td, char **by, int n_by)
{
	int			i;

	G->tupdesc = CreateTupleDescCopy(td);
	G->n_by = n_by;
	G->by_att = palloc(sizeof(int) * n_by);
	G->by_out = palloc(sizeof(FmgrInfo) * n_by);
	for (i = 0; i < n_by; i++)
	{
		Oid			outfn;
		bool		varlena;

		G->by_att[i] = source_find_column(td, by[i]);
		if (G->by_att[i] < 0)
			ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
							errmsg("params.group_by names column \"%s\", which is not in the source", by[i]),
							errhint("group_by takes the names of one or more columns of the source.")));
		if (group_type_refused(TupleDescAttr(td, G->by_att[i])->atttypid))
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("group_by column \"%s\" has type %s, whose text depends on the session's settings",
								   by[i], format_type_be(TupleDescAttr(td, G->by_att[i])->atttypid)),
							errhint("Group by a text, integer, boolean or enum column; for a date, group by e.g. to_char(d, 'YYYY-MM') AS month in a source query.")));
		getTypeOutputInfo(TupleDescAttr(td, G->by_att[i])->atttypid, &outfn, &varlena);
		fmgr_info_cxt(outfn, &G->by_out[i], G->cxt);
	}
}

/* Appends a copy of tuple to group g, within mlpipe.max_memory. */
static void
group_add(Groups *G, RowGroup *g, HeapTuple tuple)
{
	if (g->n == g->cap)
	{
		g->cap = g->cap ? g->cap * 2 : 64;
		g->rows = g->rows ? repalloc_huge(g->rows, sizeof(HeapTuple) * g->cap)
			: MemoryContextAllocHuge(G->cxt, sizeof(HeapTuple) * g->cap);
	}
	g->rows[g->n++] = heap_copytuple(tuple);
	G->bytes += tuple->t_len + HEAPTUPLESIZE + sizeof(HeapTuple);
	if (G->bytes > (Size) mlpipe_max_memory_kb() * 1024)
		pg_memory_check((double) G->bytes, "Raise mlpipe.max_memory, or train on fewer rows.",
						"the rows of %d groups", G->n);
}

/* The group a row belongs to (created when new), or NULL for a NULL key. */
static RowGroup *
group_of(Groups *G, HeapTuple tuple, int max_groups)
{
	MemoryContext old = MemoryContextSwitchTo(G->scratch);
	char	  **parts = palloc(sizeof(char *) * G->n_by);
	StringInfoData key;
	GroupEntry *e;
	bool		found;
	int			i;

	initStringInfo(&key);
	for (i = 0; i < G->n_by; i++)
	{
		bool		isnull;
		Datum		d = heap_getattr(tuple, G->by_att[i] + 1, G->tupdesc, &isnull);

		if (isnull)
		{
			MemoryContextSwitchTo(old);
			return NULL;
		}
		parts[i] = OutputFunctionCall(&G->by_out[i], d);
		/* Length-prefixed, so that no value can fake a boundary. */
		appendStringInfo(&key, "%zu:%s", strlen(parts[i]), parts[i]);
	}
	MemoryContextSwitchTo(old);
	e = hash_search(G->index, &key.data, HASH_FIND, NULL);
	if (e)
		return &G->groups[e->index];
	if (G->n >= max_groups)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("the source has more than %d groups", max_groups),
						errhint("Raise params.max_groups, or group by fewer or coarser columns.")));
	if (G->n == G->cap)
	{
		G->cap = G->cap ? G->cap * 2 : 16;
		G->groups = G->groups ? repalloc(G->groups, sizeof(RowGroup) * G->cap)
			: palloc(sizeof(RowGroup) * G->cap);
	}
	memset(&G->groups[G->n], 0, sizeof(RowGroup));
	G->groups[G->n].parts = palloc(sizeof(char *) * G->n_by);
	for (i = 0; i < G->n_by; i++)
		G->groups[G->n].parts[i] = pstrdup(parts[i]);
	e = hash_search(G->index, &key.data, HASH_ENTER, &found);
	e->key = pstrdup(key.data);
	e->index = G->n;
	return &G->groups[G->n++];
}

/*
 * Reads the source once, as the caller, and partitions its rows by the
 * group columns; everything lives in G->cxt.
 */
static void
groups_read(Groups *G, const char *source, char **by, int n_by, int max_groups)
{
	char	   *query = source_query(source);
	MemoryContext old;
	SPIPlanPtr	plan;
	Portal		portal;

	G->scratch = AllocSetContextCreate(G->cxt, "mlpipe group keys", ALLOCSET_DEFAULT_SIZES);
	G->index = pg_cstring_htab("mlpipe groups", 256, sizeof(GroupEntry), G->cxt);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	plan = SPI_prepare_cursor(query, 0, NULL, CURSOR_OPT_NO_SCROLL);
	if (plan == NULL)
		elog(ERROR, "could not prepare the source query: %s", SPI_result_code_string(SPI_result));
	portal = SPI_cursor_open(NULL, plan, NULL, NULL, true);
	for (;;)
	{
		uint64		i;

		SPI_cursor_fetch(portal, true, GROUP_BATCH);
		if (SPI_tuptable == NULL)
			break;
		old = MemoryContextSwitchTo(G->cxt);
		if (G->tupdesc == NULL)
			groups_plan(G, SPI_tuptable->tupdesc, by, n_by);
		for (i = 0; i < SPI_processed; i++)
		{
			RowGroup	   *g = group_of(G, SPI_tuptable->vals[i], max_groups);

			group_add(G, g ? g : &G->null_key, SPI_tuptable->vals[i]);
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(G->scratch);
		if (SPI_processed == 0)
			break;
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	SPI_finish();
}

/* Error context while a group trains: which group it is. */
static void
group_error_context(void *arg)
{
	const char *key = arg;

	errcontext("training group %s", key);
}

/* The group's key as a text[]. */
static Datum
group_key_array(Groups *G, RowGroup *g)
{
	Datum	   *d = palloc(sizeof(Datum) * G->n_by);
	int			i;

	for (i = 0; i < G->n_by; i++)
		d[i] = CStringGetTextDatum(g->parts[i]);
	return PointerGetDatum(construct_array(d, G->n_by, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * Trains one group with source_scan replaying its rows; the fit_result
 * row, its fit token issued. source_replay is cleared on the way out, error
 * or not.
 */
static Datum
group_fit(Groups *G, RowGroup *g, const char *algorithm, const char *source, const char *target,
		  ArrayType *features, Jsonb *params, TupleDesc fit_td)
{
	SourceReplay replay = {G->tupdesc, g->rows, g->n};
	ErrorContextCallback ctx;
	Datum		result;
	StringInfoData key;
	int			i;

	initStringInfo(&key);
	for (i = 0; i < G->n_by; i++)
		appendStringInfo(&key, "%s%s = %s", i ? ", " : "",
						 NameStr(TupleDescAttr(G->tupdesc, G->by_att[i])->attname),
						 quote_literal_cstr(g->parts[i]));
	ctx.callback = group_error_context;
	ctx.arg = key.data;
	source_replay = &replay;
	PG_TRY();
	{
		/* Pushed inside PG_TRY, which restores the stack it saw on the way out. */
		ctx.previous = error_context_stack;
		error_context_stack = &ctx;
		result = fit_result_datum(algorithm, source, target, features, params, NULL, fit_td);
		error_context_stack = ctx.previous;
	}
	PG_FINALLY();
	{
		source_replay = NULL;
	}
	PG_END_TRY();
	return result;
}

/* The text[] argument n as C strings (1 to 8 of them, none NULL). */
static char **
group_columns(FunctionCallInfo fcinfo, int n, int *count)
{
	Datum	   *elems;
	bool	   *nulls;
	char	  **out;
	int			i;

	if (PG_ARGISNULL(n))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("group_by must not be NULL")));
	deconstruct_array(PG_GETARG_ARRAYTYPE_P(n), TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, count);
	if (*count < 1 || *count > 8)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("params.group_by names %d columns; it takes 1 to 8", *count)));
	out = palloc(sizeof(char *) * *count);
	for (i = 0; i < *count; i++)
	{
		if (nulls[i])
			ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
							errmsg("params.group_by contains a NULL name")));
		out[i] = TextDatumGetCString(elems[i]);
	}
	return out;
}

/*
 * mlpipe_internal._fit_groups(algorithm, source, target, features, params, group_by,
 * max_groups, min_rows) -> (group_key, rows, fit): one row per group in
 * order of first appearance, fit NULL for a group of fewer than min_rows
 * rows (not trained); a last row with group_key NULL counts the rows whose
 * group columns hold a NULL (never trained), when there are any.
 */
Datum
mlpipe_fit_groups(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsi = (ReturnSetInfo *) fcinfo->resultinfo;
	const char *algorithm,
			   *source,
			   *target;
	ArrayType  *features;
	Jsonb	   *params;
	char	  **by;
	int			n_by;
	int			max_groups;
	int64		min_rows;
	Groups		G;
	TupleDesc	fit_td;
	MemoryContext per_group;
	int			i;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(6) || PG_ARGISNULL(7))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("algorithm, source, max_groups and min_rows must not be NULL")));
	algorithm = text_to_cstring(PG_GETARG_TEXT_PP(0));
	source = text_to_cstring(PG_GETARG_TEXT_PP(1));
	target = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	features = PG_ARGISNULL(3) ? NULL : PG_GETARG_ARRAYTYPE_P(3);
	params = PG_ARGISNULL(4) ? NULL : PG_GETARG_JSONB_P(4);
	by = group_columns(fcinfo, 5, &n_by);
	max_groups = PG_GETARG_INT32(6);
	min_rows = PG_GETARG_INT64(7);

	InitMaterializedSRF(fcinfo, 0);
	fit_td = lookup_rowtype_tupdesc_copy(TupleDescAttr(rsi->setDesc, 2)->atttypid, -1);
	fit_td = BlessTupleDesc(fit_td);

	memset(&G, 0, sizeof(G));
	G.cxt = AllocSetContextCreate(CurrentMemoryContext, "mlpipe grouped source",
								  ALLOCSET_DEFAULT_SIZES);
	groups_read(&G, source, by, n_by, max_groups);
	if (G.tupdesc == NULL)
		elog(ERROR, "the source query returned no row description");
	if (G.n == 0)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("the source has no group: %s", G.null_key.n ? "every row has a NULL group column" : "it returned no rows"),
						errhint("Training needs at least one row with a value in every group_by column.")));

	per_group = AllocSetContextCreate(CurrentMemoryContext, "mlpipe group fit",
									  ALLOCSET_DEFAULT_SIZES);
	for (i = 0; i < G.n; i++)
	{
		RowGroup	   *g = &G.groups[i];
		MemoryContext old = MemoryContextSwitchTo(per_group);
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		values[0] = group_key_array(&G, g);
		values[1] = Int64GetDatum(g->n);
		if (g->n < min_rows)
			nulls[2] = true;
		else
			values[2] = group_fit(&G, g, algorithm, source, target, features, params, fit_td);
		tuplestore_putvalues(rsi->setResult, rsi->setDesc, values, nulls);
		MemoryContextSwitchTo(old);
		MemoryContextReset(per_group);
		CHECK_FOR_INTERRUPTS();
	}
	if (G.null_key.n > 0)
	{
		Datum		values[3] = {(Datum) 0, Int64GetDatum(G.null_key.n), (Datum) 0};
		bool		nulls[3] = {true, false, true};

		tuplestore_putvalues(rsi->setResult, rsi->setDesc, values, nulls);
	}
	MemoryContextDelete(per_group);
	MemoryContextDelete(G.cxt);
	return (Datum) 0;
}
