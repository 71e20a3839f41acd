/*
 * drift.c: the C half of training profiles and mlpipe.drift
 * (sql/src/30-scoring.sql): mlpipe_internal._bin_of, the bin of a value given a
 * profile's edges, and mlpipe_internal._bin_counts, a parallel-safe aggregate that
 * counts rows per bin. The statistics themselves (PSI, null rates) are
 * plain SQL over these counts.
 */
#include "agg_state.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/float.h"

PG_FUNCTION_INFO_V1(mlpipe_bin_counts_accum);
PG_FUNCTION_INFO_V1(mlpipe_bin_counts_combine);
PG_FUNCTION_INFO_V1(mlpipe_bin_of);

#define BIN_COUNTS_MAX 100000

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
 * Transition of mlpipe_internal._bin_counts(bin int, nbins int): adds one to
 * counts[bin] (0-based). The state is a plain bigint[] updated in place
 * inside the aggregate context, so no serial functions are needed for
 * parallel plans. NULL bins are not counted.
 */
Datum
mlpipe_bin_counts_accum(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = agg_context(fcinfo, "mlpipe_internal._bin_counts_accum");
	ArrayType  *state;
	int			nbins,
				bin;

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

/* Combine of mlpipe_internal._bin_counts: adds the second state into the first. */
Datum
mlpipe_bin_counts_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = agg_context(fcinfo, "mlpipe_internal._bin_counts_combine");
	ArrayType  *a,
			   *b;
	int64	   *pa,
			   *pb;
	int			n,
				i;

	if (PG_ARGISNULL(1))
		return agg_state_unchanged(fcinfo);
	b = PG_GETARG_ARRAYTYPE_P(1);
	n = ArrayGetNItems(ARR_NDIM(b), ARR_DIMS(b));
	if (PG_ARGISNULL(0))
		a = zero_counts(aggcxt, n);
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
 * mlpipe_internal._bin_of(x, edges): the drift bin of x given sorted distinct edges
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
