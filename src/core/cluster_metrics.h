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
