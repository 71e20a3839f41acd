/*
 * metric_aggs_cluster.c: the clustering metric aggregates mlpipe.silhouette,
 * calinski_harabasz and davies_bouldin over (x float8[], label int). The
 * state keeps every point and its label; the arithmetic is
 * src/core/cluster_metrics.c's. A metric that is undefined on the rows
 * (silhouette with one cluster) is NULL.
 *
 * States are `internal`, allocated in the aggregate context, with combine,
 * serial and deserial functions so every aggregate is PARALLEL SAFE.
 * NULLs: a row with a NULL in any argument is ignored; no rows give NULL.
 * NaN or infinite numbers, arrays with NULL elements or of the wrong length
 * are errors (22000), as scikit-learn rejects them.
 *
 * Memory: the kept points and the final's work (the labels, and what the
 * core computation allocates, the silhouette's feature-major copy above
 * all) count against mlpipe.max_memory; over it is 54000 with the figure.
 */
#include "agg_state.h"

#include "libpq/pqformat.h"

#include "cluster_metrics.h"
#include "kmeans.h"

#include <math.h>

/* The points (val, width = d) and their labels (id). */
typedef LabeledRows PointState;

/* (x float8[], label int): one point; every x has the same length. */
PG_FUNCTION_INFO_V1(mlpipe_points_trans);
Datum
mlpipe_points_trans(PG_FUNCTION_ARGS)
{
	MemoryContext ctx = agg_context(fcinfo, "mlpipe._points_trans");
	PointState *st = PG_ARGISNULL(0) ? NULL : (PointState *) PG_GETARG_POINTER(0);
	const char *name;
	double	   *x;
	int			d;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		return agg_state_unchanged(fcinfo);
	name = agg_name(fcinfo, "clustering metric");
	x = agg_float8_array(PG_GETARG_ARRAYTYPE_P(1), &d, name, "x");
	if (d == 0)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("mlpipe.%s: x is empty; a point needs at least one feature", name)));
	if (st == NULL)
		st = labeled_rows_new(ctx, d);
	if (d != st->width)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("mlpipe.%s: x has %d elements here but %d in earlier rows",
							   name, d, st->width),
						errhint("Every point needs the same number of features.")));
	labeled_rows_add(st, PG_GETARG_INT32(2), x, name);
	PG_RETURN_POINTER(st);
}

/* Serial of the clustering metrics: the points and labels. */
PG_FUNCTION_INFO_V1(mlpipe_points_serial);
Datum
mlpipe_points_serial(PG_FUNCTION_ARGS)
{
	PointState *st = (PointState *) PG_GETARG_POINTER(0);
	StringInfoData buf;

	agg_context(fcinfo, "clustering metric serial");
	pq_begintypsend(&buf);
	labeled_rows_send(&buf, st, "clustering metric");
	PG_RETURN_BYTEA_P(agg_finish_serial(&buf, "clustering metric"));
}

/* Deserial of the clustering metrics. */
PG_FUNCTION_INFO_V1(mlpipe_points_deserial);
Datum
mlpipe_points_deserial(PG_FUNCTION_ARGS)
{
	StringInfoData buf;
	PointState *st;

	agg_context(fcinfo, "clustering metric deserial");
	agg_serial_reader(&buf, PG_GETARG_BYTEA_PP(0));
	st = labeled_rows_recv(&buf, CurrentMemoryContext, "clustering metric");
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(st);
}

/* Combine of the clustering metrics: b's points appended to a (same width). */
PG_FUNCTION_INFO_V1(mlpipe_points_combine);
Datum
mlpipe_points_combine(PG_FUNCTION_ARGS)
{
	MemoryContext ctx = agg_context(fcinfo, "clustering metric combine");
	PointState *a = PG_ARGISNULL(0) ? NULL : (PointState *) PG_GETARG_POINTER(0);
	PointState *b = PG_ARGISNULL(1) ? NULL : (PointState *) PG_GETARG_POINTER(1);

	if (b == NULL)
		return agg_state_unchanged(fcinfo);
	if (a == NULL)
		a = labeled_rows_new(ctx, b->width);
	if (a->width != b->width)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("mlpipe: x has %d elements in some rows and %d in others", b->width, a->width)));
	labeled_rows_append(a, b, agg_name(fcinfo, "clustering metric"));
	PG_RETURN_POINTER(a);
}

/* qsort/bsearch order of int32 labels. */
static int
cmp_int32(const void *a, const void *b)
{
	int32		x = *(const int32 *) a,
				y = *(const int32 *) b;

	return (x > y) - (x < y);
}

/* Labels compacted to [0, k) in sorted order (scikit-learn's LabelEncoder). */
static int *
points_labels(const PointState *st, int *k_out)
{
	int32	   *u = palloc(sizeof(int32) * Max(st->n, 1));
	int		   *lab = palloc(sizeof(int) * Max(st->n, 1));
	int64		i,
				k = 0;

	memcpy(u, st->id, sizeof(int32) * st->n);
	qsort(u, st->n, sizeof(int32), cmp_int32);
	for (i = 0; i < st->n; i++)
		if (i == 0 || u[i] != u[k - 1])
			u[k++] = u[i];
	for (i = 0; i < st->n; i++)
		lab[i] = (int32 *) bsearch(&st->id[i], u, k, sizeof(int32), cmp_int32) - u;
	*k_out = (int) k;
	return lab;
}

typedef enum ClusterMetric
{
	CM_SILHOUETTE,
	CM_CALINSKI,
	CM_DAVIES
} ClusterMetric;

/*
 * 54000 unless the final fits in mlpipe.max_memory with the points it
 * keeps: the state, the labels (points_labels: two int32 per point) and the
 * core's working memory for k distinct labels.
 */
static void
points_check_memory(const PointState *st, const MlEnv *env, ClusterMetric which, int k,
					const char *name)
{
	double		need = (double) st->cap * (sizeof(double) * st->width + sizeof(int32)) +
		2.0 * sizeof(int32) * st->n;

	if (which == CM_SILHOUETTE)
		need += cluster_silhouette_bytes(env, st->n, st->width, k, 0);
	else
		need += cluster_centres_bytes(env, st->n, st->width, k);
	pg_memory_check(need, "Raise mlpipe.max_memory, or aggregate a sample of the points.",
					"mlpipe.%s of " INT64_FORMAT " points x %d features", name, st->n, st->width);
}

/* The final of the clustering metric `which` over the state's points. */
static Datum
points_final(FunctionCallInfo fcinfo, ClusterMetric which, const char *name)
{
	PointState *st;
	PgEnv		pe;
	MlError		err = {0};
	double		v = NAN;
	int		   *lab;
	int			k;
	MlStatus	rc;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	st = (PointState *) PG_GETARG_POINTER(0);
	pg_env_init(&pe, CurrentMemoryContext, name, true);
	lab = points_labels(st, &k);
	points_check_memory(st, &pe.env, which, k, name);
	if (which == CM_SILHOUETTE)
		rc = cluster_silhouette(&pe.env, st->val, st->n, st->width, lab, k, 0, 0, &v, &err);
	else if (which == CM_CALINSKI)
		rc = cluster_calinski_harabasz(&pe.env, st->val, st->n, st->width, lab, k, &v, &err);
	else
		rc = cluster_davies_bouldin(&pe.env, st->val, st->n, st->width, lab, k, &v, &err);
	ML_CHECK_STATUS(rc, &err);
	return agg_float8_or_null(fcinfo, v);
}

/* mlpipe.silhouette: mean silhouette coefficient (NULL with one cluster). */
PG_FUNCTION_INFO_V1(mlpipe_silhouette_final);
Datum
mlpipe_silhouette_final(PG_FUNCTION_ARGS)
{
	return points_final(fcinfo, CM_SILHOUETTE, "silhouette");
}

/* mlpipe.calinski_harabasz: between- over within-cluster dispersion. */
PG_FUNCTION_INFO_V1(mlpipe_calinski_harabasz_final);
Datum
mlpipe_calinski_harabasz_final(PG_FUNCTION_ARGS)
{
	return points_final(fcinfo, CM_CALINSKI, "calinski_harabasz");
}

/* mlpipe.davies_bouldin: mean similarity of each cluster to its closest one. */
PG_FUNCTION_INFO_V1(mlpipe_davies_bouldin_final);
Datum
mlpipe_davies_bouldin_final(PG_FUNCTION_ARGS)
{
	return points_final(fcinfo, CM_DAVIES, "davies_bouldin");
}
