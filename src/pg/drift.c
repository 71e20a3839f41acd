/*
 * drift.c: the small C helpers behind training profiles, mlpipe.drift and
 * mlpipe.predict_table (sql/0.3.0/50-scoring.sql): the SELECT a source
 * stands for, its column names and types, and a parallel-safe aggregate
 * that counts rows per bin. The statistics themselves (PSI, null rates)
 * are plain SQL over these counts.
 */
#include "mlpipe.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/lsyscache.h"

PG_FUNCTION_INFO_V1(mlpipe_source_sql);
PG_FUNCTION_INFO_V1(mlpipe_source_columns);
PG_FUNCTION_INFO_V1(mlpipe_bin_counts_accum);
PG_FUNCTION_INFO_V1(mlpipe_bin_counts_combine);
PG_FUNCTION_INFO_V1(mlpipe_bin_of);
PG_FUNCTION_INFO_V1(mlpipe_has_preprocessing);

#define BIN_COUNTS_MAX 100000

/*
 * mlpipe._source_sql(source): the SELECT that a source (table, view or
 * query) stands for, exactly as training reads it, so the SQL side can wrap
 * it (as_of filters, checks, profiles, scoring) without re-parsing sources.
 */
Datum
mlpipe_source_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(source_query(text_to_cstring(PG_GETARG_TEXT_PP(0)))));
}

/*
 * mlpipe._source_columns(source): (name, type) of each column of a source,
 * in order, found by planning and running it with LIMIT 0 as the caller.
 */
Datum
mlpipe_source_columns(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *query = source_query(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	TupleDesc	td;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute(psprintf("SELECT * FROM (%s\n) AS mlpipe_columns LIMIT 0", query), true, 0)
		!= SPI_OK_SELECT || SPI_tuptable == NULL)
		elog(ERROR, "could not describe the source");
	td = SPI_tuptable->tupdesc;
	for (i = 0; i < td->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(td, i);
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		if (a->attisdropped)
			continue;
		values[0] = CStringGetTextDatum(NameStr(a->attname));
		values[1] = ObjectIdGetDatum(a->atttypid);
		values[2] = Int32GetDatum(i + 1);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();
	PG_RETURN_NULL();
}

/* A bigint[] of n zeros in memory context cxt. */
static ArrayType *
zero_counts(MemoryContext cxt, int n)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	Datum	   *z = palloc(sizeof(Datum) * n);
	ArrayType  *a;
	int			i;

	for (i = 0; i < n; i++)
		z[i] = Int64GetDatum(0);
	a = construct_array(z, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
	pfree(z);
	MemoryContextSwitchTo(old);
	return a;
}

/*
 * Transition of mlpipe._bin_counts(bin int, nbins int): adds one to
 * counts[bin] (0-based). The state is a plain bigint[] updated in place
 * inside the aggregate context, so no serial functions are needed for
 * parallel plans. NULL bins are not counted.
 */
Datum
mlpipe_bin_counts_accum(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	ArrayType  *state;
	int			nbins,
				bin;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "mlpipe._bin_counts called outside an aggregate");
	if (PG_ARGISNULL(2))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("nbins must not be NULL")));
	nbins = PG_GETARG_INT32(2);
	if (nbins < 1 || nbins > BIN_COUNTS_MAX)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("nbins = %d is outside 1..%d", nbins, BIN_COUNTS_MAX)));
	state = PG_ARGISNULL(0) ? zero_counts(aggcxt, nbins) : PG_GETARG_ARRAYTYPE_P(0);
	if (ArrayGetNItems(ARR_NDIM(state), ARR_DIMS(state)) != nbins)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("nbins changed within one aggregate (%d, was %d)", nbins,
							   ArrayGetNItems(ARR_NDIM(state), ARR_DIMS(state)))));
	if (PG_ARGISNULL(1))
		PG_RETURN_ARRAYTYPE_P(state);
	bin = PG_GETARG_INT32(1);
	if (bin < 0 || bin >= nbins)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("bin %d is outside 0..%d", bin, nbins - 1)));
	((int64 *) ARR_DATA_PTR(state))[bin]++;
	PG_RETURN_ARRAYTYPE_P(state);
}

/* Combine of mlpipe._bin_counts: adds the second state into the first. */
Datum
mlpipe_bin_counts_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	ArrayType  *a,
			   *b;
	int64	   *pa,
			   *pb;
	int			n,
				i;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "mlpipe._bin_counts combine called outside an aggregate");
	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_ARRAYTYPE_P(PG_GETARG_ARRAYTYPE_P(0));
	}
	b = PG_GETARG_ARRAYTYPE_P(1);
	n = ArrayGetNItems(ARR_NDIM(b), ARR_DIMS(b));
	if (PG_ARGISNULL(0))
	{
		a = zero_counts(aggcxt, n);
	}
	else
		a = PG_GETARG_ARRAYTYPE_P(0);
	if (ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a)) != n)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("bin count arrays of different lengths")));
	pa = (int64 *) ARR_DATA_PTR(a);
	pb = (int64 *) ARR_DATA_PTR(b);
	for (i = 0; i < n; i++)
		pa[i] += pb[i];
	PG_RETURN_ARRAYTYPE_P(a);
}

/*
 * mlpipe._bin_of(x, edges): the drift bin of x given sorted distinct edges
 * e[1..n]: 0 below e[1], 2k - 1 for x = e[k], 2k for e[k] < x < e[k+1]
 * (2n above the maximum); 2n + 1 bins. A binary search over the array as
 * it is stored: called once per row and feature, so it must not copy.
 * NaN sorts above every number, as in PostgreSQL.
 */
Datum
mlpipe_bin_of(PG_FUNCTION_ARGS)
{
	float8		x = PG_GETARG_FLOAT8(0);
	ArrayType  *e = PG_GETARG_ARRAYTYPE_P(1);
	const float8 *v;
	int			n,
				lo = 0,
				hi;

	if (ARR_NDIM(e) > 1 || ARR_HASNULL(e) || ARR_ELEMTYPE(e) != FLOAT8OID)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("bin edges must be a one-dimensional float8[] without NULLs")));
	n = ArrayGetNItems(ARR_NDIM(e), ARR_DIMS(e));
	v = (const float8 *) ARR_DATA_PTR(e);
	/* k = the number of edges <= x (float8 order: NaN is the largest). */
	hi = n;
	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (float8_le(v[mid], x))
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		PG_RETURN_INT32(0);
	PG_RETURN_INT32(float8_eq(v[lo - 1], x) ? 2 * lo - 1 : 2 * lo);
}

/*
 * mlpipe._has_preprocessing(artifact): true when the model stores
 * preprocessing, so only the row form of predict scores raw columns; a
 * model without it scores the float8[] form the same, faster.
 */
Datum
mlpipe_has_preprocessing(PG_FUNCTION_ARGS)
{
	bytea	   *blob = PG_GETARG_BYTEA_PP(0);
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "mlpipe prep probe",
											  ALLOCSET_SMALL_SIZES);
	PgEnv		pe;
	MlModel		m;
	MlError		err = {0};
	bool		has;

	pg_env_init(&pe, cxt, "decode", false);
	if (ml_model_read(&pe.env, (uint8_t *) VARDATA_ANY(blob), VARSIZE_ANY_EXHDR(blob), &m, &err) != ML_OK)
		pg_report_ml_error(&err);
	has = m.prep.n_in > 0;
	MemoryContextDelete(cxt);
	PG_RETURN_BOOL(has);
}
