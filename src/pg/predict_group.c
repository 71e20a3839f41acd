/*
 * predict_group.c: scoring rows by a grouped model's name
 * (docs/grouped-models.md). The row forms of predict, predict_label and
 * predict_proba ask row_site_for() for the model of each row: for an
 * ordinary reference that is predict.c's call-site cache, as before; for
 * the name of a grouped model, the row's group columns pick the group's
 * model, decoded once per call site and group (a per-statement cache of
 * group -> model) from mlpipe_internal._group_model. A group without a model
 * (never trained, skipped, no production version, or a NULL group value)
 * uses the grouped model's fallback, or has no model: the row scores NULL.
 *
 * Which names are grouped models is a backend-wide list, read again when
 * the registry's epoch moves (a grouped training always writes versions).
 */
#include "mlpipe.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/typcache.h"

/* A grouped model: its name and group columns (backend-wide list). */
typedef struct GroupedParent
{
	char	   *name;
	int			n_by;
	char	  **by;
} GroupedParent;

static MemoryContext parents_cxt = NULL;
static GroupedParent *parents = NULL;
static int	n_parents = 0;
static uint64 parents_epoch = 0;	/* 0: never loaded, or epoch unknown */

/* One group's model at a call site; has_model false when its rows score NULL. */
typedef struct GroupSlot
{
	char	   *key;			/* hash key: length-prefixed values */
	bool		has_model;
	MlModel		model;
	PredictSite site;
} GroupSlot;

/* What one call site keeps: the reference's kind, and for a grouped model its routing. */
typedef struct RowRefSite
{
	void	   *inner;			/* predict.c's call-site cache (ordinary references) */
	text	   *ref;			/* the reference this was decided for */
	const GroupedParent *parent;	/* NULL: an ordinary reference */
	MemoryContext cxt;			/* routing memory: row types, decoded models */
	Oid			typid;
	int32		typmod;
	TupleDesc	td;
	int		   *att;			/* n_by attribute numbers of the group columns */
	FmgrInfo   *out;
	HTAB	   *slots;			/* key -> GroupSlot */
	uint64		model_gen;
} RowRefSite;

/* Reads the grouped models' names and group columns when the registry moved. */
static void
parents_refresh(void)
{
	uint64		epoch = predict_registry_epoch();
	MemoryContext old;
	Oid			nsp;
	uint64		i;

	if (epoch != 0 && epoch == parents_epoch)
		return;
	if (parents_cxt == NULL)
		parents_cxt = AllocSetContextCreate(TopMemoryContext, "mlpipe grouped models",
											ALLOCSET_SMALL_SIZES);
	MemoryContextReset(parents_cxt);
	parents = NULL;
	n_parents = 0;
	parents_epoch = 0;
	/* A database whose mlpipe is older than 0.4.0 has no grouped models. */
	nsp = get_namespace_oid("mlpipe", true);
	if (!OidIsValid(nsp) || !OidIsValid(get_relname_relid("grouped_models", nsp)))
		return;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT name, group_by FROM mlpipe.grouped_models", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read mlpipe.grouped_models");
	old = MemoryContextSwitchTo(parents_cxt);
	parents = palloc0(sizeof(GroupedParent) * Max(SPI_processed, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		by = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull);
		Datum	   *elems;
		int			j;

		parents[i].name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		deconstruct_array(DatumGetArrayTypeP(by), TEXTOID, -1, false, TYPALIGN_INT,
						  &elems, NULL, &parents[i].n_by);
		parents[i].by = palloc(sizeof(char *) * parents[i].n_by);
		for (j = 0; j < parents[i].n_by; j++)
			parents[i].by[j] = TextDatumGetCString(elems[j]);
	}
	n_parents = (int) SPI_processed;
	MemoryContextSwitchTo(old);
	SPI_finish();
	parents_epoch = epoch;
}

/* The grouped model a reference names, or NULL (ordinary references, name@...). */
static const GroupedParent *
parent_of(text *ref)
{
	char	   *name = text_to_cstring(ref);
	int			i;

	if (strchr(name, '@') != NULL)
		return NULL;
	AcceptInvalidationMessages();
	parents_refresh();
	for (i = 0; i < n_parents; i++)
		if (strcmp(parents[i].name, name) == 0)
			return &parents[i];
	return NULL;
}

/* The call site's state, deciding once per reference whether it names a grouped model. */
static RowRefSite *
row_ref_site(FunctionCallInfo fcinfo, text *ref)
{
	RowRefSite *rs = fcinfo->flinfo->fn_extra;

	if (rs == NULL)
	{
		rs = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(RowRefSite));
		fcinfo->flinfo->fn_extra = rs;
	}
	if (rs->ref != NULL && VARSIZE_ANY_EXHDR(rs->ref) == VARSIZE_ANY_EXHDR(ref) &&
		memcmp(VARDATA_ANY(rs->ref), VARDATA_ANY(ref), VARSIZE_ANY_EXHDR(ref)) == 0)
		return rs;
	if (rs->ref)
		pfree(rs->ref);
	if (rs->cxt)
		MemoryContextDelete(rs->cxt);
	rs->cxt = NULL;
	rs->ref = (text *) MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, VARSIZE_ANY(ref));
	memcpy(rs->ref, ref, VARSIZE_ANY(ref));
	rs->parent = parent_of(ref);
	if (rs->parent == NULL)
		return rs;
	/* The parent's name and columns are copied: the backend list may be reloaded. */
	rs->cxt = AllocSetContextCreate(fcinfo->flinfo->fn_mcxt, "mlpipe group routing",
									ALLOCSET_DEFAULT_SIZES);
	{
		MemoryContext old = MemoryContextSwitchTo(rs->cxt);
		GroupedParent *p = palloc(sizeof(GroupedParent));
		int			j;

		p->name = pstrdup(rs->parent->name);
		p->n_by = rs->parent->n_by;
		p->by = palloc(sizeof(char *) * p->n_by);
		for (j = 0; j < p->n_by; j++)
			p->by[j] = pstrdup(rs->parent->by[j]);
		rs->parent = p;
		MemoryContextSwitchTo(old);
	}
	rs->slots = pg_cstring_htab("mlpipe group models", 64, sizeof(GroupSlot), rs->cxt);
	rs->typid = InvalidOid;
	return rs;
}

/* Finds the group columns in the row type (once per row type), 22000 when one is missing. */
static void
route_plan(RowRefSite *rs, Oid typid, int32 typmod)
{
	MemoryContext old = MemoryContextSwitchTo(rs->cxt);
	const GroupedParent *p = rs->parent;
	int			j;

	rs->td = lookup_rowtype_tupdesc_copy(typid, typmod);
	rs->att = palloc(sizeof(int) * p->n_by);
	rs->out = palloc(sizeof(FmgrInfo) * p->n_by);
	for (j = 0; j < p->n_by; j++)
	{
		Oid			outfn;
		bool		varlena;

		rs->att[j] = source_find_column(rs->td, p->by[j]);
		if (rs->att[j] < 0)
			ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
							errmsg("the row has no column \"%s\", which grouped model \"%s\" routes by",
								   p->by[j], p->name),
							errhint("Pass the whole row (or a row with every group_by column) so each row reaches its group's model.")));
		getTypeOutputInfo(TupleDescAttr(rs->td, rs->att[j])->atttypid, &outfn, &varlena);
		fmgr_info_cxt(outfn, &rs->out[j], rs->cxt);
	}
	rs->typid = typid;
	rs->typmod = typmod;
	MemoryContextSwitchTo(old);
}

/* Looks up and decodes a group's model through mlpipe_internal._group_model. */
static void
slot_load(RowRefSite *rs, GroupSlot *slot, Datum key_array)
{
	Oid			argtypes[2] = {TEXTOID, TEXTARRAYOID};
	Datum		args[2];
	bool		isnull;
	bytea	   *artifact = NULL;

	args[0] = CStringGetTextDatum(rs->parent->name);
	args[1] = key_array;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT model, version, artifact FROM mlpipe_internal._group_model($1, $2)",
							  2, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up a group's model");
	if (SPI_processed == 1)
	{
		Datum		a = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull);

		if (!isnull)
		{
			MemoryContext old = MemoryContextSwitchTo(rs->cxt);

			artifact = (bytea *) PG_DETOAST_DATUM_COPY(a);
			MemoryContextSwitchTo(old);
		}
	}
	SPI_finish();
	slot->has_model = artifact != NULL;
	if (!slot->has_model)
		return;
	model_decode(rs->cxt, artifact, "a group's model", NULL, &slot->model);
	slot->site.model = &slot->model;
	slot->site.scratch = MemoryContextAlloc(rs->cxt, sizeof(double) * Max(slot->model.scratch_len, 1));
	slot->site.model_gen = ++rs->model_gen;
	slot->site.row_plan = NULL;
}

/* The group's model for one row of a grouped model, or NULL (the row scores NULL). */
static PredictSite *
route_row(RowRefSite *rs, HeapTupleHeader th)
{
	Oid			typid = HeapTupleHeaderGetTypeId(th);
	int32		typmod = HeapTupleHeaderGetTypMod(th);
	const GroupedParent *p = rs->parent;
	HeapTupleData tup;
	StringInfoData key;
	Datum	   *parts;
	GroupSlot  *slot;
	bool		found;
	int			j;

	if (rs->typid != typid || rs->typmod != typmod)
		route_plan(rs, typid, typmod);
	tup.t_len = HeapTupleHeaderGetDatumLength(th);
	ItemPointerSetInvalid(&tup.t_self);
	tup.t_tableOid = InvalidOid;
	tup.t_data = th;
	initStringInfo(&key);
	parts = palloc(sizeof(Datum) * p->n_by);
	for (j = 0; j < p->n_by; j++)
	{
		bool		isnull;
		Datum		d = heap_getattr(&tup, rs->att[j] + 1, rs->td, &isnull);
		char	   *s;

		if (isnull)
		{
			/* No group: a NULL group value is never trained; the fallback scores it. */
			appendStringInfoString(&key, "N");
			parts = NULL;
			break;
		}
		s = OutputFunctionCall(&rs->out[j], d);
		appendStringInfo(&key, "%zu:%s", strlen(s), s);
		parts[j] = CStringGetTextDatum(s);
	}
	slot = hash_search(rs->slots, &key.data, HASH_FIND, NULL);
	if (slot == NULL)
	{
		char	   *k = MemoryContextStrdup(rs->cxt, key.data);

		slot = hash_search(rs->slots, &k, HASH_ENTER, &found);
		slot->key = k;
		slot->has_model = false;
		/* A NULL group value: an empty key, which no trained group has. */
		slot_load(rs, slot, PointerGetDatum(parts
											? construct_array(parts, p->n_by, TEXTOID, -1, false, TYPALIGN_INT)
											: construct_empty_array(TEXTOID)));
	}
	return slot->has_model ? &slot->site : NULL;
}

/*
 * The model to score this row with at this call site: predict.c's for an
 * ordinary reference, the row's group's for a grouped model (NULL: the row
 * scores NULL).
 */
PredictSite *
row_site_for(FunctionCallInfo fcinfo, text *ref, HeapTupleHeader th)
{
	RowRefSite *rs = row_ref_site(fcinfo, ref);

	if (rs->parent != NULL)
		return route_row(rs, th);
	/* predict.c's call-site cache, kept in our state rather than fn_extra. */
	return predict_site_ref_in(fcinfo, ref, &rs->inner);
}
