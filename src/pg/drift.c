/*
 * drift.c: the C half of training profiles and mlpipe.drift
 * (sql/src/30-scoring.sql): mlpipe_internal._bin_of, the bin of a value given a
 * profile's edges, and mlpipe_internal._bin_counts, a parallel-safe aggregate that
 * counts rows per bin, and mlpipe_internal._elem_bin_counts, the same
 * counts for many elements of a float8[] column in one call a row (issue
 * #13: predict_table's drift sample). The statistics themselves (PSI,
 * null rates) are plain SQL over these counts.
 */
#include "agg_state.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/float.h"

#include <math.h>

PG_FUNCTION_INFO_V1(mlpipe_bin_counts_accum);
PG_FUNCTION_INFO_V1(mlpipe_bin_counts_combine);
PG_FUNCTION_INFO_V1(mlpipe_bin_of);
PG_FUNCTION_INFO_V1(mlpipe_elem_bin_counts_accum);

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
 * The bin of x among n sorted distinct edges v (see _bin_of below). The
 * search steps choose by a compare, not a branch (the drift sample bins
 * every element of every row, in no predictable order). A NaN x is above
 * every edge; for any other x, v[i] <= x is float8_le's answer (a NaN
 * edge is above x, -0 equals +0).
 */
static inline int
bin_index(const float8 *v, int n, float8 x)
{
	int			lo;

	/* lo = the number of edges <= x */
	if (isnan(x))
		lo = n;
	else if (n == 0)
		lo = 0;
	else
	{
		const float8 *base = v;
		int			len = n;

		/* every edge before base is <= x; the count is within base[0..len) */
		while (len > 1)
		{
			int			half = len >> 1;

			base = base[half] <= x ? base + half : base;
			len -= half;
		}
		lo = (int) (base - v) + (*base <= x);
	}
	if (lo == 0)
		return 0;
	return float8_eq(v[lo - 1], x) ? 2 * lo - 1 : 2 * lo;
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

	if (ARR_NDIM(e) > 1 || ARR_HASNULL(e) || ARR_ELEMTYPE(e) != FLOAT8OID)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("bin edges must be a one-dimensional float8[] without NULLs")));
	PG_RETURN_INT32(bin_index((const float8 *) ARR_DATA_PTR(e),
							  ArrayGetNItems(ARR_NDIM(e), ARR_DIMS(e)), x));
}

/* A one-dimensional array of elemtype without NULLs, or 22023 naming what. */
static int
spec_array(ArrayType *a, Oid elemtype, const char *what)
{
	if (ARR_NDIM(a) > 1 || ARR_HASNULL(a) || ARR_ELEMTYPE(a) != elemtype)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("%s must be a one-dimensional array without NULLs", what)));
	return ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));
}

/*
 * Transition of mlpipe_internal._elem_bin_counts(x, elements, nbins,
 * edges, n_edges): for each k, element elements[k] of x as
 * (x)[elements[k]] reads it (NULL when x is not one-dimensional, the
 * index is out of range or the element is NULL) counted in a bigint[]
 * state that holds, per k, the count of non-NULL values and then nbins[k]
 * bin counts, the bin being _bin_of(value, edges[k]) where edges[k] is the
 * next n_edges[k] values of edges. The same counts as count((x)[e]) and
 * _bin_counts(_bin_of((x)[e], ...), nbins) FILTER (WHERE (x)[e] IS NOT
 * NULL) per element, in one call a row. Combined by _bin_counts_combine.
 */
Datum
mlpipe_elem_bin_counts_accum(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = agg_context(fcinfo, "mlpipe_internal._elem_bin_counts_accum");
	ArrayType  *state,
			   *x;
	const int32 *elem,
			   *nbins,
			   *n_edges;
	const float8 *edges,
			   *xv;
	bool	   *xnull = NULL;
	int			n_feat,
				n_edge_all,
				total = 0,
				used = 0,
				lb,
				dim,
				k;
	int64	   *st;

	for (k = 2; k <= 5; k++)
		if (PG_ARGISNULL(k))
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("elements, nbins, edges and n_edges must not be NULL")));
	n_feat = spec_array(PG_GETARG_ARRAYTYPE_P(2), INT4OID, "elements");
	if (spec_array(PG_GETARG_ARRAYTYPE_P(3), INT4OID, "nbins") != n_feat ||
		spec_array(PG_GETARG_ARRAYTYPE_P(5), INT4OID, "n_edges") != n_feat)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("elements, nbins and n_edges must have the same length")));
	n_edge_all = spec_array(PG_GETARG_ARRAYTYPE_P(4), FLOAT8OID, "edges");
	elem = (const int32 *) ARR_DATA_PTR(PG_GETARG_ARRAYTYPE_P(2));
	nbins = (const int32 *) ARR_DATA_PTR(PG_GETARG_ARRAYTYPE_P(3));
	edges = (const float8 *) ARR_DATA_PTR(PG_GETARG_ARRAYTYPE_P(4));
	n_edges = (const int32 *) ARR_DATA_PTR(PG_GETARG_ARRAYTYPE_P(5));
	for (k = 0; k < n_feat; k++)
	{
		if (nbins[k] < 1 || nbins[k] > BIN_COUNTS_MAX || n_edges[k] < 0)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("nbins = %d is outside 1..%d", nbins[k], BIN_COUNTS_MAX)));
		total += 1 + nbins[k];
		used += n_edges[k];
	}
	if (used != n_edge_all)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("n_edges must add up to the length of edges (%d, not %d)", n_edge_all, used)));
	if (total > BIN_COUNTS_MAX)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("%d counts in all, more than %d", total, BIN_COUNTS_MAX)));
	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_ARRAYTYPE_P(PG_GETARG_ARRAYTYPE_P(0));
	}
	state = PG_ARGISNULL(0) ? zero_counts(aggcxt, total) : PG_GETARG_ARRAYTYPE_P(0);
	if (ArrayGetNItems(ARR_NDIM(state), ARR_DIMS(state)) != total)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("the elements changed within one aggregate")));
	x = PG_GETARG_ARRAYTYPE_P(1);
	if (ARR_NDIM(x) != 1)
		PG_RETURN_ARRAYTYPE_P(state);
	lb = ARR_LBOUND(x)[0];
	dim = ARR_DIMS(x)[0];
	xv = (const float8 *) ARR_DATA_PTR(x);
	if (ARR_HASNULL(x))
	{
		Datum	   *d;
		float8	   *v;
		int			i;

		/* packed without the NULLs: unpack once for this row */
		deconstruct_array(x, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &d, &xnull, &dim);
		v = palloc(sizeof(float8) * Max(dim, 1));
		for (i = 0; i < dim; i++)
			v[i] = xnull[i] ? 0.0 : DatumGetFloat8(d[i]);
		xv = v;
	}
	st = (int64 *) ARR_DATA_PTR(state);
	for (k = 0; k < n_feat; k++)
	{
		int64		i = (int64) elem[k] - lb;

		if (i >= 0 && i < dim && (xnull == NULL || !xnull[i]))
		{
			int			bin = bin_index(edges, n_edges[k], xv[i]);

			if (bin >= nbins[k])
				ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
								errmsg("bin %d is outside 0..%d", bin, nbins[k] - 1)));
			st[0]++;
			st[1 + bin]++;
		}
		st += 1 + nbins[k];
		edges += n_edges[k];
	}
	PG_RETURN_ARRAYTYPE_P(state);
}
