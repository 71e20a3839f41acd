/*
 * kmeans.h: Lloyd and mini-batch k-means (the clustering metrics are in
 * cluster_metrics.h).
 *
 * Data is row-major: X[i * d + j] is feature j of row i, all finite (the
 * glue rejects or skips NaN/Inf/NULL before calling). Centroids are kept in
 * the transformed space (standardised and/or unit-normalised for cosine);
 * kmeans_predict transforms a raw row the same way before assigning it.
 */
#ifndef KMEANS_H
#define KMEANS_H

#include "mlbuf.h"

typedef enum KmDistance
{
	KM_DIST_L2 = 0,
	KM_DIST_COSINE = 1			/* spherical k-means on unit-normalised rows */
} KmDistance;

typedef enum KmInit
{
	KM_INIT_KMEANSPP = 0,		/* greedy k-means++ as scikit-learn, seeded */
	KM_INIT_RANDOM = 1,			/* k distinct rows chosen at random */
	KM_INIT_GIVEN = 2			/* params.centroids, k x d in the raw feature space */
} KmInit;

typedef struct KmModel
{
	int			k;
	int			d;
	KmDistance	distance;
	bool		standardize;
	double	   *mean;			/* d values when standardize, else NULL */
	double	   *scale;			/* d values (std, 1 where std is 0) when standardize */
	double	   *centroids;		/* k * d, transformed space */
	double	   *counts;			/* k values: training rows each centroid stands
								 * for (cluster sizes after fit); they weight the
								 * centroids when a mini-batch fit warm-starts */
} KmModel;

typedef struct KmParams
{
	int			k;
	KmInit		init;
	const double *given;		/* k * d raw-space rows, for KM_INIT_GIVEN */
	int			n_init;			/* restarts; best inertia wins (1 for given) */
	int			max_iter;
	double		tol;			/* scikit-learn's: relative to mean feature variance */
	KmDistance	distance;
	bool		standardize;
	uint64_t	seed;
	bool		minibatch;
	int			batch_size;		/* minibatch only */
	const KmModel *warm_start;	/* minibatch or Lloyd: start from these centroids
								 * (and its mean/scale); NULL otherwise */
	int64_t		sample_size;	/* silhouette exact when sample_size == 0 or
								 * n <= sample_size, else on a seeded sample of
								 * that size; KM_SAMPLE_AUTO (-1): the default
								 * sample by work, m^2 d <= 6.4e9, at most
								 * 10,000 rows (cluster_metrics.h) */
	MlTrace    *trace;			/* NULL, or receives the winning run's figures:
								 * one entry per Lloyd iteration (the inertia
								 * of its assignment, against the centres it
								 * started from; cosine: sum of 1 - cos) or
								 * per mini-batch epoch (the smoothed batch
								 * inertia per row times n). Env allocations,
								 * ml_trace_free; emptied on failure */
} KmParams;

typedef struct KmResult
{
	double		inertia;		/* sum of squared distances to the nearest centroid
								 * (cosine: sum of 1 - cos) over all n rows */
	int			iterations;		/* of the winning run (mini-batch: epochs) */
	int			best_init;		/* which restart won, 0-based */
	double		silhouette;		/* NaN when undefined (fewer than 2 distinct
								 * labels, or one per row) */
	double		calinski_harabasz;
	double		davies_bouldin;
	int64_t		silhouette_rows;	/* rows the silhouette was computed on (0
									 * with KM_FLAG_NO_METRICS) */
} KmResult;

#define KM_SAMPLE_AUTO		(-1)	/* KmParams.sample_size: chosen by work */

/*
 * Fits a model. Validates params (k in [1, n], n_init >= 1, max_iter >= 1,
 * tol >= 0, batch_size >= 1, warm_start k/d/distance/standardize) and
 * returns ML_ERR_PARAM / ML_ERR_DATA with a message naming the parameter;
 * a NaN/Inf in X is ML_ERR_DATA. X is not modified. The model's arrays are
 * env allocations (kmeans_model_free releases them); on failure *out holds
 * none. Metrics in res are computed in the space the clustering ran in: raw
 * X for l2 without standardize (then they equal scikit-learn's on X),
 * z-scores with standardize, unit-normalised rows for cosine; Euclidean
 * throughout. Same input and params give bit-identical results for any
 * env->n_threads.
 *
 * max_iter: Lloyd iterations; for mini-batch, passes (epochs) over the data
 * (as scikit-learn: max_iter * n / batch_size steps). warm_start: the
 * centroids, mean/scale and counts of that model are the starting point
 * (n_init and init are then unused; init = given with warm_start is an
 * error). For mini-batch this continues training on new rows, the model's
 * counts weighting its centroids; rows may then be fewer than k.
 *
 * Progress: env->check("kmeans", iteration, max_iter, total squared centre
 * shift of the iteration) once per Lloyd iteration; ("kmeans++", centre,
 * k, potential) while seeding; ("minibatch kmeans", epoch, max_iter,
 * smoothed batch inertia) every 64 steps; other stages with 0, 0 between
 * slabs of long passes.
 */
MlStatus	kmeans_fit(const MlEnv *env, const double *X, int64_t n, int d,
					   const KmParams *p, KmModel *out, KmResult *res, MlError *err);

/* kmeans_fit with extras, for tests and benchmarks. */
#define KM_FLAG_PLAIN_LLOYD	0x1	/* no bound-based pruning (same results, slower) */
#define KM_FLAG_NO_METRICS	0x2	/* leave silhouette/CH/DB as NaN */
#define KM_FLAG_DOUBLE_SUMS	0x4	/* Lloyd M-step from double sums recomputed
									 * every iteration, not exact incremental
									 * ones (slower; results differ by rounding) */
MlStatus	kmeans_fit_ex(const MlEnv *env, const double *X, int64_t n, int d,
						  const KmParams *p, unsigned flags, int *labels,
						  KmModel *out, KmResult *res, MlError *err);
/* labels, when not NULL, receives the final cluster of each of the n rows. */

/*
 * Choosing k (kmeans_select.c): fits p once per candidate k (ks: 2 to
 * KM_MAX_CANDIDATES ascending values, at least 3 for the elbow) on the same
 * rows and keeps the model the criterion prefers: the largest silhouette,
 * the smallest Davies-Bouldin index (candidates where it is undefined are
 * passed over), or the elbow of the inertia curve (with k and inertia
 * scaled to [0, 1], the candidate farthest below the chord from the first
 * to the last). each receives every candidate's result (m of them), *out
 * the chosen model, *chosen its index; p->trace, when set, the chosen
 * fit's figures.
 */
typedef enum KmCriterion
{
	KM_CRIT_SILHOUETTE = 0,
	KM_CRIT_DAVIES_BOULDIN = 1,
	KM_CRIT_ELBOW = 2
} KmCriterion;

#define KM_MAX_CANDIDATES	100

const char *kmeans_criterion_name(KmCriterion c);
MlStatus	kmeans_fit_select(const MlEnv *env, const double *X, int64_t n, int d,
							  const KmParams *p, const int *ks, int m, KmCriterion crit,
							  KmModel *out, KmResult *each, int *chosen, MlError *err);

/*
 * An upper bound on the bytes kmeans_fit allocates through env for these
 * inputs (X itself not counted), for a memory budget check before loading.
 * Roughly 40 bytes per row, plus 8 d per row with standardize or cosine,
 * plus the silhouette sample's copy.
 */
size_t		kmeans_memory_estimate(int64_t n, int d, const KmParams *p, int n_threads);

/* Frees the arrays of a model built by kmeans_fit or kmeans_read. */
void		kmeans_model_free(const MlEnv *env, KmModel *m);

/*
 * Nearest centroid of one raw row; scratch holds d doubles. Returns -1 when
 * the row cannot be placed: a zero row (after standardising) under cosine.
 * Ties go to the lowest index, as in training.
 */
int			kmeans_predict(const KmModel *m, const double *x, double *scratch);

/*
 * Model section payload (inside ML_SEC_MODEL) and its validating reader:
 *   u32 k | u32 d | u8 distance | u8 standardize |
 *   [f64 mean[d] | f64 scale[d]]  (standardize only) |
 *   f64 centroids[k*d] | f64 counts[k]
 * The reader rejects out-of-range counts, unknown enum values, NaN/Inf,
 * scale <= 0, negative counts, cosine centroids not of unit length and
 * trailing bytes with ML_ERR_CORRUPT; on failure it frees what it
 * allocated and leaves *m zeroed.
 */
void		kmeans_write(MlBuf *b, const KmModel *m);
bool		kmeans_read(MlReader *r, KmModel *m);

/*
 * Anomaly detection (kmeans_anomaly.c), BigQuery's ML.DETECT_ANOMALIES for
 * k-means: score = distance to the nearest centroid / that cluster's scale
 * (root mean squared distance of its training rows to it), in the space
 * the clustering ran in; a row is an anomaly when its score is above
 * threshold, the (1 - contamination) quantile of the training scores
 * (linear interpolation). contamination is in (0, 0.5].
 */
typedef struct KmAnomaly
{
	bool		present;		/* false: the model was trained without contamination */
	double		contamination;
	double		threshold;
	double	   *scale;			/* k values >= 0 */
} KmAnomaly;

MlStatus	kmeans_anomaly_fit(const MlEnv *env, const KmModel *m, const double *X, int64_t n,
							   double contamination, KmAnomaly *out, MlError *err);
double		kmeans_anomaly_normalise(const KmAnomaly *a, int cluster, double dist);
/* A raw row's score; scratch holds d doubles; NaN when the row cannot be placed. */
double		kmeans_anomaly_score(const KmModel *m, const KmAnomaly *a, const double *x,
								 double *scratch);
/* ANOMALY section payload: f64 contamination | f64 threshold | f64 scale[k]. */
void		kmeans_anomaly_write(MlBuf *b, const KmAnomaly *a, int k);
bool		kmeans_anomaly_read(MlReader *r, int k, KmAnomaly *a);
void		kmeans_anomaly_free(const MlEnv *env, KmAnomaly *a);

#endif
