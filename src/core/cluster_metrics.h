/*
 * cluster_metrics.h: silhouette, Calinski-Harabasz and Davies-Bouldin
 * scores of a clustering (cluster_metrics.c), used by kmeans_fit and the
 * SQL metric aggregates.
 */
#ifndef CLUSTER_METRICS_H
#define CLUSTER_METRICS_H

#include "mlcore.h"

/*
 * Clustering metrics on row-major X with labels in [0, k) (a label outside
 * is ML_ERR_DATA). silhouette is exact (O(n^2 d), threaded) when
 * sample_size == 0 or n <= sample_size, otherwise on sample_size rows drawn
 * without replacement with seed (as scikit-learn's silhouette_score
 * sample_size, with a different generator); sample_size < 0
 * (CLUSTER_SAMPLE_AUTO) takes cluster_silhouette_default_rows(n, d) rows.
 * Each equals scikit-learn's definition with Euclidean distance; *out is NaN
 * where scikit-learn raises: fewer than 2 distinct labels, or as many
 * distinct labels as rows.
 */
MlStatus	cluster_silhouette(const MlEnv *env, const double *X, int64_t n, int d,
							   const int *labels, int k, int64_t sample_size,
							   uint64_t seed, double *out, MlError *err);

/*
 * The default silhouette sample, chosen by the work it costs: the largest
 * m with m^2 d <= CLUSTER_SIL_WORK, at most CLUSTER_SIL_MAX_ROWS and n
 * (so up to 64 features it is the former fixed 10,000).
 */
#define CLUSTER_SAMPLE_AUTO		(-1)
#define CLUSTER_SIL_MAX_ROWS	10000
#define CLUSTER_SIL_WORK		6.4e9	/* 10,000^2 x 64 pair-features */
int64_t		cluster_silhouette_default_rows(int64_t n, int d);

/*
 * Which distance kernel the silhouette uses. DIRECT sums (x_j - y_j)^2 in
 * feature order for every pair; BLOCKED is the cache-blocked |x|^2 + |y|^2
 * - 2 x.y of cluster_metrics_blocked.c (within 1e-9 of DIRECT, see there);
 * AUTO takes BLOCKED from CLUSTER_SIL_BLOCKED_MIN_D features on when the
 * CPU has a fast fused multiply-add, else DIRECT. BLOCKED_PORTABLE is
 * BLOCKED with the portable kernel (for tests: the same bits).
 */
typedef enum ClusterSilKernel
{
	CLUSTER_SIL_AUTO = 0,
	CLUSTER_SIL_DIRECT,
	CLUSTER_SIL_BLOCKED,
	CLUSTER_SIL_BLOCKED_PORTABLE
} ClusterSilKernel;
#define CLUSTER_SIL_BLOCKED_MIN_D	64

/* cluster_silhouette with the kernel named; *rows_used (may be NULL) gets the rows scored. */
MlStatus	cluster_silhouette_ex(const MlEnv *env, const double *X, int64_t n, int d,
								  const int *labels, int k, int64_t sample_size,
								  uint64_t seed, ClusterSilKernel kernel, double *out,
								  int64_t *rows_used, MlError *err);

/* cluster_metrics_blocked.c, for cluster_metrics.c: s[p] for sorted row p. */
bool		mc_blocked_available(void);
MlStatus	mc_silhouette_blocked(const MlEnv *env, const double *X, int d, int k,
								  int64_t m, const int64_t *order, const int *lab,
								  const int64_t *start, double *s, bool portable,
								  MlError *err);

MlStatus	cluster_calinski_harabasz(const MlEnv *env, const double *X, int64_t n,
									  int d, const int *labels, int k,
									  double *out, MlError *err);
MlStatus	cluster_davies_bouldin(const MlEnv *env, const double *X, int64_t n,
								   int d, const int *labels, int k,
								   double *out, MlError *err);

/*
 * Bytes of working memory the functions above allocate through env beyond
 * X and labels (an upper bound), for callers that enforce a budget before
 * calling: cluster_silhouette with these n, d, k, sample_size, and
 * cluster_calinski_harabasz / cluster_davies_bouldin (the same figure for
 * both). A double, as the product can exceed size_t on 32-bit targets.
 */
double		cluster_silhouette_bytes(const MlEnv *env, int64_t n, int d, int k,
									 int64_t sample_size);
double		cluster_centres_bytes(const MlEnv *env, int64_t n, int d, int k);

#endif							/* CLUSTER_METRICS_H */
