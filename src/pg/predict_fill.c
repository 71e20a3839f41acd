/*
 * predict_fill.c: predict_table's write into a new table (issue #13).
 *
 * CREATE TABLE AS inserts its rows one at a time (a WAL record, a buffer
 * lock and a page search per row). predict_table instead creates the
 * target with CREATE TABLE AS ... WITH NO DATA (the same columns, types
 * and typmods) and fills it here: the scoring SELECT runs through SPI (a
 * parallel plan as CREATE TABLE AS gets: the leader alone writes), and a
 * DestReceiver buffers its rows and writes them with table_multi_insert,
 * as COPY FROM does (one WAL record and one buffer lock per page). The
 * rows written are the same.
 *
 * Only for a plain table created in this transaction without indexes,
 * triggers, constraints or row-level security (what WITH NO DATA makes):
 * table_multi_insert maintains none of them.
 */
#include "mlpipe.h"

#include "access/heapam.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "tcop/dest.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(mlpipe_fill_table);

/* COPY FROM's limits for one table_multi_insert (copyfrom.c). */
#define FILL_MAX_ROWS 1000
#define FILL_MAX_BYTES 65535

/* The DestReceiver the scoring SELECT's rows go to. */
typedef struct FillReceiver
{
	DestReceiver pub;
	Relation	rel;
	TupleTableSlot *slots[FILL_MAX_ROWS];	/* the buffered rows */
	int			n_buffered;
	Size		bytes_buffered;
	CommandId	cid;			/* the rows' command id (the statement's, as CTAS) */
	BulkInsertState bistate;
	MemoryContext slot_cxt;		/* the slots and their rows' copies */
	MemoryContext flush_cxt;	/* table_multi_insert's memory, reset per flush */
	int64		rows;
} FillReceiver;

/* Refuses a target table_multi_insert could not fill correctly (see above). */
static void
fill_check_target(Relation rel)
{
	TupleConstr *c = RelationGetDescr(rel)->constr;

	if (rel->rd_rel->relkind != RELKIND_RELATION || rel->rd_rel->relhasindex ||
		rel->trigdesc != NULL || rel->rd_rel->relrowsecurity ||
		(c != NULL && (c->num_check > 0 || c->has_not_null || c->has_generated_stored)) ||
		(rel->rd_createSubid == InvalidSubTransactionId &&
		 rel->rd_firstRelfilenodeSubid == InvalidSubTransactionId))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot fill table \"%s\" in bulk", RelationGetRelationName(rel)),
				 errdetail("Only a plain table created in this transaction, without indexes, "
						   "triggers, constraints or row-level security, is filled this way.")));
}

/* rStartup: the query's columns must be the table's; the rows' command id. */
static void
fill_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
	FillReceiver *r = (FillReceiver *) self;
	TupleDesc	td = RelationGetDescr(r->rel);
	int			i;

	if (typeinfo->natts != td->natts)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("the query returns %d columns, table \"%s\" has %d",
						typeinfo->natts, RelationGetRelationName(r->rel), td->natts)));
	/* the same type, and the same typmod where the table's column has one */
	for (i = 0; i < td->natts; i++)
		if (TupleDescAttr(td, i)->attisdropped ||
			TupleDescAttr(td, i)->atttypid != TupleDescAttr(typeinfo, i)->atttypid ||
			(TupleDescAttr(td, i)->atttypmod != -1 &&
			 TupleDescAttr(td, i)->atttypmod != TupleDescAttr(typeinfo, i)->atttypmod))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column %d of the query has type %s, of table \"%s\" %s", i + 1,
							format_type_with_typemod(TupleDescAttr(typeinfo, i)->atttypid,
													 TupleDescAttr(typeinfo, i)->atttypmod),
							RelationGetRelationName(r->rel),
							format_type_with_typemod(TupleDescAttr(td, i)->atttypid,
													 TupleDescAttr(td, i)->atttypmod))));
	/* as CREATE TABLE AS's intorel_startup: before the plan enters parallel mode */
	r->cid = GetCurrentCommandId(true);
}

/* Writes the buffered rows (one table_multi_insert) and empties the buffer. */
static void
fill_flush(FillReceiver *r)
{
	MemoryContext old;
	int			i;

	if (r->n_buffered == 0)
		return;
	old = MemoryContextSwitchTo(r->flush_cxt);
	table_multi_insert(r->rel, r->slots, r->n_buffered, r->cid, TABLE_INSERT_SKIP_FSM, r->bistate);
	MemoryContextSwitchTo(old);
	MemoryContextReset(r->flush_cxt);
	for (i = 0; i < r->n_buffered; i++)
		ExecClearTuple(r->slots[i]);
	r->rows += r->n_buffered;
	r->n_buffered = 0;
	r->bytes_buffered = 0;
	CHECK_FOR_INTERRUPTS();
}

/* receiveSlot: one row, copied into the buffer; a full buffer is written. */
static bool
fill_receive(TupleTableSlot *slot, DestReceiver *self)
{
	FillReceiver *r = (FillReceiver *) self;
	TupleTableSlot *dst = r->slots[r->n_buffered];

	if (dst == NULL)
	{
		/* not in the executor's memory: the slots outlive its query */
		MemoryContext old = MemoryContextSwitchTo(r->slot_cxt);

		dst = r->slots[r->n_buffered] = table_slot_create(r->rel, NULL);
		MemoryContextSwitchTo(old);
	}
	ExecCopySlot(dst, slot);
	/* the heap's slot holds a formed tuple; other table AMs count rows only */
	if (TTS_IS_BUFFERTUPLE(dst))
		r->bytes_buffered += ((BufferHeapTupleTableSlot *) dst)->base.tuple->t_len;
	if (++r->n_buffered == FILL_MAX_ROWS || r->bytes_buffered >= FILL_MAX_BYTES)
		fill_flush(r);
	return true;
}

/* rShutdown: writes what is left. */
static void
fill_shutdown(DestReceiver *self)
{
	fill_flush((FillReceiver *) self);
}

/* rDestroy: nothing (the receiver lives on mlpipe_fill_table's stack). */
static void
fill_destroy(DestReceiver *self)
{
}

/*
 * _fill_table(target regclass, query text) RETURNS bigint: runs query (as
 * the caller) and writes its rows into target (see the file comment); the
 * number of rows written. The caller needs INSERT on target.
 */
Datum
mlpipe_fill_table(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	char	   *query = text_to_cstring(PG_GETARG_TEXT_PP(1));
	AclResult	acl;
	FillReceiver r;
	SPIPrepareOptions popts;
	SPIExecuteOptions opts;
	SPIPlanPtr	plan;
	int			rc,
				i;

	memset(&r, 0, sizeof(r));
	r.rel = table_open(relid, RowExclusiveLock);
	acl = pg_class_aclcheck(relid, GetUserId(), ACL_INSERT);
	if (acl != ACLCHECK_OK)
		aclcheck_error(acl, get_relkind_objtype(r.rel->rd_rel->relkind), RelationGetRelationName(r.rel));
	fill_check_target(r.rel);
	/* the xid the rows carry, assigned now: not possible in parallel mode */
	(void) GetCurrentTransactionId();
	r.pub.receiveSlot = fill_receive;
	r.pub.rStartup = fill_startup;
	r.pub.rShutdown = fill_shutdown;
	r.pub.rDestroy = fill_destroy;
	r.pub.mydest = DestNone;
	r.bistate = GetBulkInsertState();
	r.slot_cxt = CurrentMemoryContext;
	r.flush_cxt = AllocSetContextCreate(CurrentMemoryContext, "mlpipe fill flush",
										ALLOCSET_DEFAULT_SIZES);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* planned as plpgsql's EXECUTE plans it: parallel allowed */
	memset(&popts, 0, sizeof(popts));
	popts.cursorOptions = CURSOR_OPT_PARALLEL_OK;
	plan = SPI_prepare_extended(query, &popts);
	if (plan == NULL)
		elog(ERROR, "could not prepare the query: %s", SPI_result_code_string(SPI_result));
	if (!SPI_is_cursor_plan(plan))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the query to fill table \"%s\" from must be one query that returns rows",
						RelationGetRelationName(r.rel))));
	memset(&opts, 0, sizeof(opts));
	opts.read_only = false;		/* as EXECUTE in a volatile function: a new snapshot */
	opts.dest = &r.pub;
	rc = SPI_execute_plan_extended(plan, &opts);
	if (rc < 0)
		elog(ERROR, "could not run the query: %s", SPI_result_code_string(rc));
	SPI_finish();

	for (i = 0; i < FILL_MAX_ROWS && r.slots[i] != NULL; i++)
		ExecDropSingleTupleTableSlot(r.slots[i]);
	FreeBulkInsertState(r.bistate);
	table_finish_bulk_insert(r.rel, TABLE_INSERT_SKIP_FSM);
	MemoryContextDelete(r.flush_cxt);
	table_close(r.rel, NoLock);
	PG_RETURN_INT64(r.rows);
}
