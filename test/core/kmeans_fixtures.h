/*
 * kmeans_fixtures.h: data and helpers shared by the k-means and cluster
 * metric unit tests (test_kmeans.c, test_kmeans_codec.c,
 * test_cluster_metrics.c): default parameters, Gaussian blobs, tolerant
 * and exact comparisons.
 */
#ifndef KMEANS_FIXTURES_H
#define KMEANS_FIXTURES_H

#include <math.h>
#include <string.h>

#include "kmeans.h"
#include "mltest.h"

/* The test defaults: k-means++, one init, 300 iterations, tol 1e-4, seed 7. */
static inline KmParams
params(int k)
{
	KmParams	p;

	memset(&p, 0, sizeof(p));
	p.k = k;
	p.init = KM_INIT_KMEANSPP;
	p.n_init = 1;
	p.max_iter = 300;
	p.tol = 1e-4;
	p.seed = 7;
	p.batch_size = 64;
	p.sample_size = 0;
	return p;
}

/* Whether a and b agree within rel, relative to the larger of them and 1. */
static inline bool
close_to(double a, double b, double rel)
{
	return fabs(a - b) <= rel * fmax(1.0, fmax(fabs(a), fabs(b)));
}

/* A standard normal draw (Box-Muller). */
static inline double
gauss(MlRng *r)
{
	double		u = ml_rng_uniform(r),
				v = ml_rng_uniform(r);

	return sqrt(-2.0 * log(1.0 - u)) * cos(6.283185307179586 * v);
}

/* n rows of d features around k blobs (centres 10 * blob index on each axis). */
static inline double *
blobs(int64_t n, int d, int k, double sd, uint64_t seed, int *truth)
{
	double	   *X = malloc(sizeof(double) * n * d);
	MlRng		r;
	int64_t		i;
	int			j;

	ml_rng_seed(&r, seed);
	for (i = 0; i < n; i++)
	{
		int			b = (int) (i % k);

		if (truth)
			truth[i] = b;
		for (j = 0; j < d; j++)
			X[i * d + j] = 10.0 * b * ((j % 2) ? 1.0 : -0.5) + j + sd * gauss(&r);
	}
	return X;
}

/* Whether two models hold the same bits (centroids, counts, scaling). */
static inline bool
same_model(const KmModel *a, const KmModel *b)
{
	size_t		kd = (size_t) a->k * a->d;

	if (a->k != b->k || a->d != b->d || a->distance != b->distance ||
		a->standardize != b->standardize)
		return false;
	if (memcmp(a->centroids, b->centroids, sizeof(double) * kd) != 0 ||
		memcmp(a->counts, b->counts, sizeof(double) * a->k) != 0)
		return false;
	if (a->standardize &&
		(memcmp(a->mean, b->mean, sizeof(double) * a->d) != 0 ||
		 memcmp(a->scale, b->scale, sizeof(double) * a->d) != 0))
		return false;
	return true;
}

#endif
