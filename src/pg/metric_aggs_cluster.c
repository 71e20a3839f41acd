/*
 * metric_aggs_cluster.c: the clustering metric aggregates mlpipe.silhouette,
 * calinski_harabasz and davies_bouldin over (x float8[], label int). The
 * state keeps every point and its label; the arithmetic is
 * src/core/cluster_metrics.c's. A metric that is undefined on the rows
 * (silhouette with one cluster) is NULL.
 *
 * The state is an mlpipe.agg_state of kind AGG_KIND_POINTS (agg_state_type.c)
 * holding the LabeledRows, with a combine function: every aggregate is
 * PARALLEL SAFE, and Citus splits it into shard partials and a coordinator
 * combine (the partial states carry every point).
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

/* Serial form: the LabeledRows (labeled_rows_send). */
static void
points_write(StringInfo buf, const void *p, const char *agg)
{
	labeled_rows_send(buf, p, agg);
}

/* The points in ctx from points_write's form. */
static void *
points_read(StringInfo buf, MemoryContext ctx)
{
	return labeled_rows_recv(buf, ctx, "clustering metric");
}

const AggFamily points_family = {AGG_KIND_POINTS, "clustering metric", points_write, points_read};

/* An empty points state of width d under ctx. */
static AggStateObj *
points_new(FunctionCallInfo fcinfo, MemoryContext ctx, int d)
{
	AggStateObj *obj = agg_state_create(fcinfo, ctx, &points_family);

	obj->st = labeled_rows_new(AGG_STATE_CTX(obj), d);
	return obj;
}

/* (x float8[], label int): one point; every x has the same length. */
PG_FUNCTION_INFO_V1(mlpipe_points_trans);
Datum
mlpipe_points_trans(PG_FUNCTION_ARGS)
{
	MemoryContext ctx = agg_context(fcinfo, "mlpipe_internal._points_trans");
	AggStateObj *obj;
	PointState *st;
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
	if ((obj = agg_state_arg(fcinfo, 0, &points_family, ctx)) == NULL)
		obj = points_new(fcinfo, ctx, d);
	st = obj->st;
	if (d != st->width)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("mlpipe.%s: x has %d elements here but %d in earlier rows",
							   name, d, st->width),
						errhint("Every point needs the same number of features.")));
	labeled_rows_add(st, PG_GETARG_INT32(2), x, name);
	AGG_STATE_RETURN(obj);
}

/* Combine of the clustering metrics: b's points appended to a (same width). */
PG_FUNCTION_INFO_V1(mlpipe_points_combine);
Datum
mlpipe_points_combine(PG_FUNCTION_ARGS)
{
	MemoryContext ctx = agg_context(fcinfo, "clustering metric combine");
	AggStateObj *bobj = agg_state_arg(fcinfo, 1, &points_family, CurrentMemoryContext);
	AggStateObj *obj;
	PointState *a,
			   *b;

	if (bobj == NULL)
		return agg_state_unchanged(fcinfo);
	b = bobj->st;
	if ((obj = agg_state_arg(fcinfo, 0, &points_family, ctx)) == NULL)
		obj = points_new(fcinfo, ctx, b->width);
	a = obj->st;
	if (a->width != b->width)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("mlpipe: x has %d elements in some rows and %d in others", b->width, a->width)));
	labeled_rows_append(a, b, agg_name(fcinfo, "clustering metric"));
	AGG_STATE_RETURN(obj);
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
	AggStateObj *obj = agg_state_arg(fcinfo, 0, &points_family, CurrentMemoryContext);
	PointState *st;
	PgEnv		pe;
	MlError		err = {0};
	double		v = NAN;
	int		   *lab;
	int			k;
	MlStatus	rc;

	if (obj == NULL)
		PG_RETURN_NULL();
	st = obj->st;
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
