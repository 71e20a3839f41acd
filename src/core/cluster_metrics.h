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
 * is ML_ERR_DATA). silhouette is exact (O(n^2), threaded) when
 * sample_size <= 0 or n <= sample_size, otherwise on sample_size rows drawn
 * without replacement with seed (as scikit-learn's silhouette_score
 * sample_size, with a different generator). Each equals scikit-learn's
 * definition with Euclidean distance; *out is NaN where scikit-learn raises:
 * fewer than 2 distinct labels, or as many distinct labels as rows.
 */
MlStatus	cluster_silhouette(const MlEnv *env, const double *X, int64_t n, int d,
							   const int *labels, int k, int64_t sample_size,
							   uint64_t seed, double *out, MlError *err);
MlStatus	cluster_calinski_harabasz(const MlEnv *env, const double *X, int64_t n,
									  int d, const int *labels, int k,
									  double *out, MlError *err);
MlStatus	cluster_davies_bouldin(const MlEnv *env, const double *X, int64_t n,
								   int d, const int *labels, int k,
								   double *out, MlError *err);

#endif							/* CLUSTER_METRICS_H */
