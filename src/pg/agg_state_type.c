/*
 * agg_state_type.c: mlpipe.agg_state, the state type (STYPE) of every
 * user-facing mlpipe aggregate, and the expanded object that holds a state
 * between rows.
 *
 * Why a real type: Citus splits an aggregate into a partial aggregate on
 * the shards and a combine on the coordinator only when its STYPE is not a
 * pseudo-type such as `internal`; it ships each shard's state through the
 * type's text output and input functions (test/citus/DESIGN.md).
 *
 * Flat form (the datum on disk, in a tuple, on the wire): a varlena holding
 * an 8-byte header (magic "MLAS", format version, AggStateKind) and then
 * the family's serial form, the one the `internal` states used between
 * parallel workers. Text form: \x and the hex of header and serial form
 * (what byteaout prints), so doubles travel as their 8 bytes. The input
 * and receive functions read the whole state before accepting it: garbage
 * is 22P02, never a crash.
 *
 * In memory: an expanded object (AggStateObj) holding the family's C
 * struct. nodeAgg, nodeWindowAgg and Citus keep a read-write expanded
 * transition value without copying it when it is a child of the aggregate
 * context, so the per-row cost is the `internal` one. get_flat_size writes
 * the serial form once and caches it for flatten_into.
 */
#include "agg_state.h"

#include "libpq/pqformat.h"
#include "nodes/primnodes.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

PG_FUNCTION_INFO_V1(mlpipe_agg_state_in);
PG_FUNCTION_INFO_V1(mlpipe_agg_state_out);
PG_FUNCTION_INFO_V1(mlpipe_agg_state_recv);
PG_FUNCTION_INFO_V1(mlpipe_agg_state_send);

/* The header of the flat form, in the byte order of the machine. */
typedef struct AggStateHeader
{
	uint32		magic;
	uint16		version;
	uint16		kind;			/* AggStateKind */
} AggStateHeader;

#define AGG_STATE_MAGIC 0x53414c4d	/* "MLAS" in memory on little-endian */
#define AGG_STATE_VERSION 1

/* The family of a kind, or NULL. */
static const AggFamily *
agg_family(int kind)
{
	static const AggFamily *const families[] = {
		NULL, &feat_family, &label_family, &loss_family, &score_family, &reg_family, &points_family
	};

	if (kind < 1 || kind > AGG_KIND_MAX)
		return NULL;
	return families[kind];
}

static Size agg_state_get_flat_size(ExpandedObjectHeader *eohptr);
static void agg_state_flatten_into(ExpandedObjectHeader *eohptr, void *result, Size allocated_size);

static const ExpandedObjectMethods agg_state_methods = {
	agg_state_get_flat_size,
	agg_state_flatten_into
};

/* ---------------------------------------------------------------------- */
/* The expanded object                                                    */
/* ---------------------------------------------------------------------- */

/*
 * A new, empty object of `family` in a new context under parent: a small
 * one (1 kB first block), since a hash aggregate keeps one per group; the
 * large arrays of the states that keep every row get blocks of their own.
 */
AggStateObj *
agg_state_create(FunctionCallInfo fcinfo, MemoryContext parent, const AggFamily *family)
{
	MemoryContext ctx = AllocSetContextCreate(parent, "mlpipe.agg_state", ALLOCSET_SMALL_SIZES);
	AggStateObj *obj = MemoryContextAllocZero(ctx, sizeof(AggStateObj));
	Aggref	   *ref = fcinfo ? AggGetAggref(fcinfo) : NULL;

	EOH_init_header(&obj->hdr, &agg_state_methods, ctx);
	obj->family = family;
	obj->aggfnoid = ref ? ref->aggfnoid : InvalidOid;
	obj->fn_oid = (fcinfo && fcinfo->flinfo) ? fcinfo->flinfo->fn_oid : InvalidOid;
	return obj;
}

/*
 * The name of the aggregate that made obj, when it is an mlpipe aggregate
 * (under Citus the Aggref is worker_partial_agg's), else the family's.
 */
const char *
agg_state_name(const AggStateObj *obj)
{
	char	   *name;

	if (!OidIsValid(obj->aggfnoid) || !OidIsValid(obj->fn_oid) ||
		get_func_namespace(obj->aggfnoid) != get_func_namespace(obj->fn_oid))
		return obj->family->name;
	name = get_func_name(obj->aggfnoid);
	return name ? name : obj->family->name;
}

/* Drops the cached serial form (the state is about to change, or be read). */
static void
agg_state_drop_flat(AggStateObj *obj)
{
	if (obj->flat.data != NULL)
	{
		pfree(obj->flat.data);
		obj->flat.data = NULL;
	}
}

/*
 * Flat size: header and serial form, written once into the cache. 54000
 * naming the aggregate when over 1 GB (a varlena cannot hold it).
 */
static Size
agg_state_get_flat_size(ExpandedObjectHeader *eohptr)
{
	AggStateObj *obj = (AggStateObj *) eohptr;
	AggStateHeader h = {AGG_STATE_MAGIC, AGG_STATE_VERSION, obj->family->kind};
	MemoryContext old;

	if (obj->flat.data == NULL)
	{
		old = MemoryContextSwitchTo(AGG_STATE_CTX(obj));
		initStringInfo(&obj->flat);
		appendBinaryStringInfo(&obj->flat, (const char *) &h, sizeof(h));
		obj->family->write(&obj->flat, obj->st, agg_state_name(obj));
		MemoryContextSwitchTo(old);
	}
	if ((Size) obj->flat.len + VARHDRSZ > MaxAllocSize)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("mlpipe.%s: the aggregate state (%d bytes) is over 1 GB and cannot be flattened",
							   agg_state_name(obj), obj->flat.len),
						errdetail("A state is flattened to pass from a parallel worker or from a Citus worker."),
						errhint("SET max_parallel_workers_per_gather = 0, GROUP BY the distribution column on Citus, or aggregate smaller groups.")));
	return VARHDRSZ + obj->flat.len;
}

/* Copies the cached serial form behind a varlena header. */
static void
agg_state_flatten_into(ExpandedObjectHeader *eohptr, void *result, Size allocated_size)
{
	AggStateObj *obj = (AggStateObj *) eohptr;
	Size		len = agg_state_get_flat_size(eohptr);

	Assert(allocated_size == len);
	SET_VARSIZE(result, len);
	memcpy(VARDATA(result), obj->flat.data, len - VARHDRSZ);
}

/*
 * Reads a flat state (header and serial form, len bytes at data) into a
 * new object under ctx; 22P02 for anything but a whole, valid state.
 * family is the one expected, or NULL for any.
 */
AggStateObj *
agg_state_read(const char *data, Size len, const AggFamily *family, MemoryContext ctx)
{
	AggStateHeader h;
	const AggFamily *f;
	AggStateObj *obj;
	StringInfoData buf;

	if (len < sizeof(h))
		agg_state_corrupt("aggregate", "The state is shorter than its header.");
	memcpy(&h, data, sizeof(h));
	if (h.magic != AGG_STATE_MAGIC)
		agg_state_corrupt("aggregate", "The state does not begin with the mlpipe.agg_state magic.");
	if (h.version != AGG_STATE_VERSION)
		agg_state_corrupt("aggregate", psprintf("Format version %d is not %d.", h.version, AGG_STATE_VERSION));
	if ((f = agg_family(h.kind)) == NULL)
		agg_state_corrupt("aggregate", psprintf("Kind %d is not a state family.", h.kind));
	if (family != NULL && f != family)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("mlpipe.agg_state holds a %s state, not a %s state", f->name, family->name),
						errhint("Pass a state to the final or combine function of the aggregate that wrote it.")));
	obj = agg_state_create(NULL, ctx, f);
	buf.data = (char *) data + sizeof(h);
	buf.len = len - sizeof(h);
	buf.maxlen = buf.len;
	buf.cursor = 0;
	obj->st = f->read(&buf, AGG_STATE_CTX(obj));
	agg_get_end(&buf);
	return obj;
}

/* The state at argument argno: see agg_state.h. */
AggStateObj *
agg_state_arg(FunctionCallInfo fcinfo, int argno, const AggFamily *family, MemoryContext ctx)
{
	Datum		d;
	struct varlena *v;

	if (PG_ARGISNULL(argno))
		return NULL;
	d = PG_GETARG_DATUM(argno);
	if (VARATT_IS_EXTERNAL_EXPANDED(DatumGetPointer(d)))
	{
		AggStateObj *obj = (AggStateObj *) DatumGetEOHP(d);

		if (obj->hdr.eoh_methods != &agg_state_methods)
			elog(ERROR, "mlpipe: an expanded object that is not an mlpipe.agg_state");
		if (obj->family != family)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("mlpipe.agg_state holds a %s state, not a %s state",
								   obj->family->name, family->name),
							errhint("Pass a state to the final or combine function of the aggregate that wrote it.")));
		agg_state_drop_flat(obj);
		return obj;
	}
	v = PG_DETOAST_DATUM_PACKED(d);
	return agg_state_read(VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v), family, ctx);
}

/* ---------------------------------------------------------------------- */
/* Type I/O                                                               */
/* ---------------------------------------------------------------------- */

/* A flat state checked by reading it whole (the object is thrown away). */
static bytea *
agg_state_checked(const char *data, Size len)
{
	MemoryContext tmp = AllocSetContextCreate(CurrentMemoryContext, "mlpipe.agg_state check",
											  ALLOCSET_DEFAULT_SIZES);
	bytea	   *out;

	agg_state_read(data, len, NULL, tmp);
	MemoryContextDelete(tmp);
	out = palloc(VARHDRSZ + len);
	SET_VARSIZE(out, VARHDRSZ + len);
	memcpy(VARDATA(out), data, len);
	return out;
}

/* The value of one hex digit, or -1. */
static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Text input: \x and an even number of hex digits, then the state checked whole; 22P02 otherwise. */
Datum
mlpipe_agg_state_in(PG_FUNCTION_ARGS)
{
	const char *s = PG_GETARG_CSTRING(0);
	Size		slen = strlen(s),
				len,
				i;
	char	   *data;

	if (slen < 2 || s[0] != '\\' || s[1] != 'x' || (slen - 2) % 2 != 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
						errmsg("invalid input syntax for type mlpipe.agg_state"),
						errdetail("The text form is \\x followed by an even number of hex digits."),
						errhint("An mlpipe.agg_state is written by an mlpipe aggregate; it cannot be typed by hand.")));
	len = (slen - 2) / 2;
	data = palloc(Max(len, 1));
	for (i = 0; i < len; i++)
	{
		int			hi = hex_value(s[2 + 2 * i]),
					lo = hex_value(s[3 + 2 * i]);

		if (hi < 0 || lo < 0)
			ereport(ERROR, (errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
							errmsg("invalid input syntax for type mlpipe.agg_state"),
							errdetail("\"%.2s\" at offset %zu is not a hex digit pair.", s + 2 + 2 * i, 2 + 2 * i)));
		data[i] = (char) (hi << 4 | lo);
	}
	PG_RETURN_BYTEA_P(agg_state_checked(data, len));
}

/*
 * Text output: \x and the hex of header and serial form (an expanded
 * state is flattened by the detoast). 54000 when the text would pass 1 GB.
 */
Datum
mlpipe_agg_state_out(PG_FUNCTION_ARGS)
{
	struct varlena *v = PG_DETOAST_DATUM_PACKED(PG_GETARG_DATUM(0));
	Size		len = VARSIZE_ANY_EXHDR(v);
	char	   *out;

	if (len > (MaxAllocSize - 3) / 2)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("an mlpipe.agg_state of %zu bytes is too large for its text form (over 1 GB)", len),
						errdetail("Citus passes the partial state of an aggregate from a worker as text."),
						errhint("GROUP BY the distribution column so that the whole aggregate runs on the workers, or aggregate smaller groups.")));
	out = palloc(3 + 2 * len);
	out[0] = '\\';
	out[1] = 'x';
	hex_encode(VARDATA_ANY(v), len, out + 2);
	out[2 + 2 * len] = '\0';
	PG_RETURN_CSTRING(out);
}

/* Binary input: the flat form's bytes, checked whole like the text input. */
Datum
mlpipe_agg_state_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	Size		len = buf->len - buf->cursor;
	const char *data = pq_getmsgbytes(buf, len);

	PG_RETURN_BYTEA_P(agg_state_checked(data, len));
}

/* Binary output: the flat form's bytes. */
Datum
mlpipe_agg_state_send(PG_FUNCTION_ARGS)
{
	struct varlena *v = PG_DETOAST_DATUM_PACKED(PG_GETARG_DATUM(0));
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendbytes(&buf, VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v));
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}
