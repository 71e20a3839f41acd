/*
 * kmeans_anomaly.c: anomaly detection with a k-means model, as BigQuery's
 * ML.DETECT_ANOMALIES does for k-means. A row's score is its distance to
 * the nearest centroid divided by that cluster's scale, the root mean
 * squared distance of the cluster's training rows to it (distances in the
 * space the clustering ran in). The threshold is the (1 - contamination)
 * quantile of the training rows' scores (linear interpolation, as numpy's
 * default); a row is an anomaly when its score is above it. The ANOMALY
 * section (artifact-format.md) stores contamination, threshold and the k
 * scales; only models trained with params.contamination have one.
 */
#include "kmeans_int.h"

/* Distance of row x to its nearest centroid (working space), and the cluster; -1 if none. */
static int
km_nearest_distance(const KmModel *m, const double *x, double *scratch, double *dist)
{
	int			c = kmeans_predict(m, x, scratch);
	const double *row = (m->standardize || m->distance == KM_DIST_COSINE) ? scratch : x;

	if (c >= 0)
		*dist = sqrt(km_dist2(row, m->centroids + (size_t) c * m->d, m->d));
	return c;
}

/* qsort order of doubles, ascending. */
static int
km_cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return x < y ? -1 : x > y;
}

/* The linear-interpolation quantile q of the n sorted values v (numpy's default). */
static double
km_quantile(const double *v, int64_t n, double q)
{
	double		pos = q * (double) (n - 1);
	int64_t		lo = (int64_t) floor(pos);
	double		frac = pos - (double) lo;

	if (lo + 1 >= n)
		return v[n - 1];
	if (v[lo + 1] == INFINITY)
		return frac > 0 ? INFINITY : v[lo];
	return v[lo] + frac * (v[lo + 1] - v[lo]);
}

/*
 * Fits the anomaly figures of model m on its n training rows X (raw, as
 * kmeans_predict takes them): the per-cluster scales, then the threshold.
 */
MlStatus
kmeans_anomaly_fit(const MlEnv *env, const KmModel *m, const double *X, int64_t n,
				   double contamination, KmAnomaly *out, MlError *err)
{
	double	   *dist = NULL,
			   *sum2 = NULL,
			   *scratch = NULL;
	int64_t    *cnt = NULL,
				i;
	int		   *lab = NULL;
	int			c;
	MlStatus	st = ML_OK;

	memset(out, 0, sizeof(*out));
	if (!(contamination > 0.0 && contamination <= 0.5))
		return ml_fail(err, ML_ERR_PARAM, "contamination must be in (0, 0.5], not %g", contamination);
	dist = ml_alloc(env, sizeof(double) * (size_t) (n > 0 ? n : 1));
	lab = ml_alloc(env, sizeof(int) * (size_t) (n > 0 ? n : 1));
	sum2 = ml_calloc(env, (size_t) m->k, sizeof(double));
	cnt = ml_calloc(env, (size_t) m->k, sizeof(int64_t));
	scratch = ml_alloc(env, sizeof(double) * (size_t) m->d);
	out->scale = ml_alloc(env, sizeof(double) * (size_t) m->k);
	if (!dist || !lab || !sum2 || !cnt || !scratch || !out->scale)
	{
		st = ml_fail(err, ML_ERR_MEMORY, "out of memory for the anomaly threshold of %lld rows",
					 (long long) n);
		goto done;
	}
	for (i = 0; i < n; i++)
	{
		lab[i] = km_nearest_distance(m, X + (size_t) i * m->d, scratch, &dist[i]);
		if (lab[i] < 0)
		{
			st = ml_fail(err, ML_ERR_DATA, "training row %lld cannot be placed (a zero row under cosine)",
						 (long long) i + 1);
			goto done;
		}
		sum2[lab[i]] += dist[i] * dist[i];
		cnt[lab[i]]++;
		if ((i & 0xFFFF) == 0xFFFF && ml_check(env, "anomaly threshold", 0, 0, 0.0))
		{
			st = ml_fail_cancelled(err);
			goto done;
		}
	}
	for (c = 0; c < m->k; c++)
		out->scale[c] = cnt[c] > 0 ? sqrt(sum2[c] / (double) cnt[c]) : 0.0;
	for (i = 0; i < n; i++)
		dist[i] = kmeans_anomaly_normalise(out, lab[i], dist[i]);
	qsort(dist, (size_t) n, sizeof(double), km_cmp_double);
	out->present = true;
	out->contamination = contamination;
	out->threshold = n > 0 ? km_quantile(dist, n, 1.0 - contamination) : INFINITY;
	if (!isfinite(out->threshold))
		out->threshold = DBL_MAX;	/* more than contamination * n rows sit on a zero-scale centre's edge */
done:
	ml_free(env, dist);
	ml_free(env, lab);
	ml_free(env, sum2);
	ml_free(env, cnt);
	ml_free(env, scratch);
	if (st != ML_OK)
		kmeans_anomaly_free(env, out);
	return st;
}

/* Distance over the cluster's scale: 0 on a zero-scale centre, +Inf off it. */
double
kmeans_anomaly_normalise(const KmAnomaly *a, int cluster, double dist)
{
	double		s = a->scale[cluster];

	if (s > 0.0)
		return dist / s;
	return dist > 0.0 ? INFINITY : 0.0;
}

/* A raw row's anomaly score; NaN when it cannot be placed (zero row under cosine). */
double
kmeans_anomaly_score(const KmModel *m, const KmAnomaly *a, const double *x, double *scratch)
{
	double		dist;
	int			c = km_nearest_distance(m, x, scratch, &dist);

	return c < 0 ? NAN : kmeans_anomaly_normalise(a, c, dist);
}

/* Appends the ANOMALY section payload: f64 contamination | f64 threshold | f64 scale[k]. */
void
kmeans_anomaly_write(MlBuf *b, const KmAnomaly *a, int k)
{
	ml_buf_put_f64(b, a->contamination);
	ml_buf_put_f64(b, a->threshold);
	ml_buf_put_f64s(b, a->scale, (size_t) k);
}

/* Reads and checks the section for a model of k clusters; false (r->err set) when malformed. */
bool
kmeans_anomaly_read(MlReader *r, int k, KmAnomaly *a)
{
	int			c;

	memset(a, 0, sizeof(*a));
	if (!ml_rd_finite(r, &a->contamination, "anomaly contamination") ||
		!ml_rd_finite(r, &a->threshold, "anomaly threshold"))
		return false;
	if (!(a->contamination > 0.0 && a->contamination <= 0.5) || a->threshold < 0.0)
	{
		ml_fail(r->err, ML_ERR_CORRUPT, "artifact corrupt: anomaly contamination %g or threshold %g out of range",
				a->contamination, a->threshold);
		return false;
	}
	if ((size_t) k * 8 != ml_rd_left(r))
	{
		ml_fail(r->err, ML_ERR_CORRUPT, "artifact corrupt: anomaly section has %zu bytes for %d clusters",
				ml_rd_left(r), k);
		return false;
	}
	if (!ml_rd_f64s(r, (size_t) k, &a->scale, "anomaly scales"))
		return false;
	for (c = 0; c < k; c++)
		if (a->scale[c] < 0.0)
		{
			ml_fail(r->err, ML_ERR_CORRUPT, "artifact corrupt: anomaly scale of cluster %d is negative", c + 1);
			ml_free(r->env, a->scale);
			a->scale = NULL;
			return false;
		}
	a->present = true;
	return true;
}

/* Frees the scales and clears a. */
void
kmeans_anomaly_free(const MlEnv *env, KmAnomaly *a)
{
	ml_free(env, a->scale);
	memset(a, 0, sizeof(*a));
}
