/*
 * fit_token.c: the fit token. mlpipe_internal._register is SECURITY DEFINER and a
 * trainer may call it directly, so it must not accept a fit_result that
 * mlpipe_internal._fit did not produce (a forged artifact, or real artifact with
 * doctored metrics to pass a gate). _fit records a SHA-256 digest of every
 * result it returns, with the algorithm, in backend memory for the current
 * transaction; _register claims the digest through mlpipe_internal._fit_claim before
 * writing anything. Nothing of this is visible to SQL but the claim.
 */
#include "mlpipe.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/typcache.h"

PG_FUNCTION_INFO_V1(mlpipe_fit_claim);

/* Digests issued in the current top-level transaction (lxid). */
static uint8 (*issued)[PG_SHA256_DIGEST_LENGTH] = NULL;
static int	n_issued = 0;
static int	cap_issued = 0;
static LocalTransactionId issued_lxid = InvalidLocalTransactionId;

/* Forgets the tokens of an earlier transaction. */
static void
tokens_for_this_xact(void)
{
	if (issued_lxid != MyProc->lxid)
	{
		n_issued = 0;
		issued_lxid = MyProc->lxid;
	}
}

/* Feeds len bytes to the digest; XX000 if the hash library fails. */
static void
digest_update(pg_cryptohash_ctx *ctx, const void *data, size_t len)
{
	if (pg_cryptohash_update(ctx, (const uint8 *) data, len) < 0)
		elog(ERROR, "could not update the fit digest: %s", pg_cryptohash_error(ctx));
}

/*
 * info holds lineage notes the caller may extend (mlpipe_internal._train adds its
 * own); only the row counts and the training trace (the rows of
 * mlpipe.training_iterations) in it are bound to the token.
 */
static void
digest_info(pg_cryptohash_ctx *ctx, Jsonb *info)
{
	static const char *const keys[] = {"training_rows", "skipped_rows", "trace", NULL};
	int			i;

	for (i = 0; keys[i]; i++)
	{
		JsonbValue *v = JB_ROOT_IS_OBJECT(info)
			? getKeyJsonValueFromContainer(&info->root, keys[i], strlen(keys[i]), NULL)
			: NULL;
		char	   *txt = (v && v->type == jbvNumeric)
			? DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)))
			: (v && v->type == jbvBinary)
			? JsonbToCString(NULL, v->val.binary.data, v->val.binary.len)
			: "-";
		uint32		len = strlen(txt);

		digest_update(ctx, &len, sizeof(len));
		digest_update(ctx, txt, len);
	}
}

/*
 * SHA-256 over the algorithm and every field of a fit_result (null flags,
 * lengths and the detoasted bytes), so that any change to the artifact,
 * task, features, classes, metrics or the row counts changes the digest.
 */
static void
fit_digest(HeapTupleHeader rec, const char *algorithm, uint8 *out)
{
	TupleDesc	td = lookup_rowtype_tupdesc(HeapTupleHeaderGetTypeId(rec),
											HeapTupleHeaderGetTypMod(rec));
	HeapTupleData tuple;
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);
	int			i;
	uint32		len;

	tuple.t_len = HeapTupleHeaderGetDatumLength(rec);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = rec;
	if (ctx == NULL || pg_cryptohash_init(ctx) < 0)
		elog(ERROR, "could not start the fit digest");
	len = strlen(algorithm);
	digest_update(ctx, &len, sizeof(len));
	digest_update(ctx, algorithm, len);
	for (i = 0; i < td->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(td, i);
		bool		isnull;
		Datum		d;
		uint8		flag;

		if (att->attisdropped)
			continue;
		d = heap_getattr(&tuple, i + 1, td, &isnull);
		flag = isnull ? 0 : 1;
		digest_update(ctx, &flag, 1);
		if (isnull)
			continue;
		if (strcmp(NameStr(att->attname), "info") == 0 && att->atttypid == JSONBOID)
			digest_info(ctx, DatumGetJsonbP(d));
		else if (att->attlen == -1)
		{
			struct varlena *v = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(d));

			len = VARSIZE_ANY_EXHDR(v);
			digest_update(ctx, &len, sizeof(len));
			digest_update(ctx, VARDATA_ANY(v), len);
		}
		else if (att->attbyval)
			digest_update(ctx, &d, sizeof(Datum));
		else if (att->attlen > 0)
			digest_update(ctx, DatumGetPointer(d), att->attlen);
		else
			elog(ERROR, "mlpipe.fit_result has a field of unsupported type");
	}
	ReleaseTupleDesc(td);
	if (pg_cryptohash_final(ctx, out, PG_SHA256_DIGEST_LENGTH) < 0)
		elog(ERROR, "could not finish the fit digest: %s", pg_cryptohash_error(ctx));
	pg_cryptohash_free(ctx);
}

/* Called by mlpipe_internal._fit on the result it is about to return. */
void
fit_token_issue(HeapTupleHeader rec, const char *algorithm)
{
	uint8		dg[PG_SHA256_DIGEST_LENGTH];

	fit_digest(rec, algorithm, dg);
	tokens_for_this_xact();
	if (n_issued == cap_issued)
	{
		int			cap = cap_issued ? cap_issued * 2 : 16;

		issued = issued
			? repalloc(issued, (Size) cap * PG_SHA256_DIGEST_LENGTH)
			: MemoryContextAlloc(TopMemoryContext, (Size) cap * PG_SHA256_DIGEST_LENGTH);
		cap_issued = cap;
	}
	memcpy(issued[n_issued++], dg, PG_SHA256_DIGEST_LENGTH);
}

/*
 * mlpipe_internal._fit_claim(fit, algorithm) -> boolean: true, once, when _fit
 * returned exactly this result for this algorithm in this transaction.
 * The token is used up so one fit cannot be registered twice.
 */
Datum
mlpipe_fit_claim(PG_FUNCTION_ARGS)
{
	uint8		dg[PG_SHA256_DIGEST_LENGTH];
	int			i;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_BOOL(false);
	fit_digest(PG_GETARG_HEAPTUPLEHEADER(0), text_to_cstring(PG_GETARG_TEXT_PP(1)), dg);
	tokens_for_this_xact();
	for (i = 0; i < n_issued; i++)
		if (memcmp(issued[i], dg, PG_SHA256_DIGEST_LENGTH) == 0)
		{
			memmove(issued[i], issued[n_issued - 1], PG_SHA256_DIGEST_LENGTH);
			n_issued--;
			PG_RETURN_BOOL(true);
		}
	PG_RETURN_BOOL(false);
}
