/*
 * test_cluster_metrics.c: unit tests of the cluster metrics
 * (src/core/cluster_metrics*.c): silhouette, Calinski-Harabasz and
 * Davies-Bouldin by hand and on blobs, their input errors, the blocked
 * silhouette kernel against the direct one, and the default silhouette
 * sample. Prints TAP; exits non-zero on any failure.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kmeans.h"
#include "cluster_metrics.h"
#include "kmeans_fixtures.h"
#include "mltest.h"

static void
test_metrics(void)
{
	/* 1-D: A = {0, 2}, B = {10, 12} */
	double		X[] = {0, 2, 10, 12};
	int			lab[] = {0, 0, 1, 1};
	int			one[] = {0, 0, 0, 0};
	int			all[] = {0, 1, 2, 3};
	int			gap[] = {3, 3, 1, 1};
	MlEnv		env = mlt_env(2);
	MlError		err = {0};
	double		v;

	/* x=0: a=2, b=11 -> 9/11; x=2: a=2, b=9 -> 7/9; symmetric for B */
	CHECK(cluster_silhouette(&env, X, 4, 1, lab, 2, 0, 0, &v, &err) == ML_OK &&
		  close_to(v, (9.0 / 11.0 + 7.0 / 9.0) / 2.0, 1e-15), "silhouette by hand (%.17g)", v);
	/* means 1 and 11, overall 6: extra 100, intra 4; 100 * 2 / (4 * 1) */
	CHECK(cluster_calinski_harabasz(&env, X, 4, 1, lab, 2, &v, &err) == ML_OK && v == 50.0,
		  "Calinski-Harabasz by hand = 50 (%.17g)", v);
	/* intra 1 and 1, centroid distance 10 */
	CHECK(cluster_davies_bouldin(&env, X, 4, 1, lab, 2, &v, &err) == ML_OK &&
		  close_to(v, 0.2, 1e-15), "Davies-Bouldin by hand = 0.2 (%.17g)", v);
	CHECK(cluster_silhouette(&env, X, 4, 1, gap, 4, 0, 0, &v, &err) == ML_OK &&
		  close_to(v, (9.0 / 11.0 + 7.0 / 9.0) / 2.0, 1e-15), "labels are compacted (3, 1 as 0, 1)");
	CHECK(cluster_silhouette(&env, X, 4, 1, one, 1, 0, 0, &v, &err) == ML_OK && isnan(v),
		  "one label: silhouette NaN");
	CHECK(cluster_calinski_harabasz(&env, X, 4, 1, all, 4, &v, &err) == ML_OK && isnan(v),
		  "as many labels as rows: CH NaN");
	CHECK(cluster_davies_bouldin(&env, X, 4, 1, one, 1, &v, &err) == ML_OK && isnan(v),
		  "one label: DB NaN");
	{
		/* a singleton cluster scores 0; duplicates give intra 0 -> 1 */
		double		Y[] = {0, 0, 5};
		int			l3[] = {0, 0, 1};

		CHECK(cluster_silhouette(&env, Y, 3, 1, l3, 2, 0, 0, &v, &err) == ML_OK &&
			  close_to(v, 2.0 / 3.0, 1e-15), "silhouette: duplicates 1, singleton 0 (%.17g)", v);
	}
	{
		/* sampled silhouette: reproducible, close to the exact one */
		int64_t		n = 5000,
					i;
		int		   *l = malloc(sizeof(int) * n);
		double	   *Z = blobs(n, 3, 4, 2.0, 3, l);
		double		exact,
					s1,
					s2;
		MlEnv		e1 = mlt_env(1),
					e3 = mlt_env(3);

		CHECK(cluster_silhouette(&e1, Z, n, 3, l, 4, 0, 0, &exact, &err) == ML_OK &&
			  cluster_silhouette(&e3, Z, n, 3, l, 4, n, 0, &s1, &err) == ML_OK &&
			  memcmp(&exact, &s1, sizeof(double)) == 0,
			  "exact silhouette: same bits for 1 and 3 threads, sample_size >= n is exact");
		CHECK(cluster_silhouette(&e1, Z, n, 3, l, 4, 1000, 42, &s1, &err) == ML_OK &&
			  cluster_silhouette(&e3, Z, n, 3, l, 4, 1000, 42, &s2, &err) == ML_OK &&
			  s1 == s2 && fabs(s1 - exact) < 0.05,
			  "sampled silhouette: reproducible (%.6f) and near the exact %.6f", s1, exact);
		for (i = 0; i < n; i++)
			l[i] = (int) ((((uint64_t) i * UINT64_C(0x9E3779B97F4A7C15)) >> 40) & 1);
		CHECK(cluster_silhouette(&e3, Z, n, 3, l, 2, 0, 0, &s1, &err) == ML_OK && fabs(s1) < 0.05,
			  "silhouette of a random split is near 0 (%.4f)", s1);
		free(l);
		free(Z);
	}
}

/* Metric inputs: a label out of range is a data error, except for Davies-Bouldin. */
static void
test_metric_input_errors(void)
{
	double		X[20];
	int			lab[4] = {0, 1, 0, 5};
	double		v;
	MlEnv		env = mlt_env(1);
	MlError		err;
	int			i;

	for (i = 0; i < 20; i++)
		X[i] = i;
	memset(&err, 0, sizeof(err));
	CHECK(cluster_silhouette(&env, X, 4, 1, lab, 2, 0, 1, &v, &err) == ML_ERR_DATA,
		  "silhouette: label out of range: %s", err.msg);
	memset(&err, 0, sizeof(err));
	CHECK(cluster_calinski_harabasz(&env, X, 4, 1, lab, 2, &v, &err) == ML_ERR_DATA,
		  "CH: label out of range: %s", err.msg);
	memset(&err, 0, sizeof(err));
	CHECK(cluster_davies_bouldin(&env, X, 4, 1, lab, 6, &v, &err) == ML_OK && isfinite(v),
		  "DB: absent labels are skipped (%g)", v);
}

/*
 * The silhouette from kernel kern on (X, lab), checking the call succeeded;
 * NaN on failure.
 */
static double
sil_kernel(int threads, const double *X, int64_t n, int d, const int *lab, int k,
		   ClusterSilKernel kern)
{
	MlEnv		env = mlt_env(threads);
	MlError		err = {0};
	double		v = NAN;
	int64_t		used = -1;

	if (cluster_silhouette_ex(&env, X, n, d, lab, k, 0, 0, kern, &v, &used, &err) != ML_OK ||
		used != n)
		return NAN;
	return v;
}

/*
 * The blocked silhouette kernel against the direct one: within the stated
 * 1e-9 (absolute; cluster_metrics_blocked.c derives it) on random, offset
 * and duplicated data; the AVX2 and portable kernels and every thread count
 * give the same bits.
 */
static void
test_silhouette_blocked(void)
{
	int64_t		n = 701,
				i;
	int			d = 40,
				k = 5,
				j,
				pass;
	int		   *l = malloc(sizeof(int) * n);

	for (pass = 0; pass < 3; pass++)
	{
		double	   *Z = blobs(n, d, k, pass == 0 ? 6.0 : 0.05, 7 + pass, l);
		double		direct,
					blocked,
					portable,
					three;
		const char *what = pass == 0 ? "overlapping blobs" :
			pass == 1 ? "tight blobs 1e4 from the origin" : "tight blobs with duplicate rows";

		if (pass >= 1)
			for (i = 0; i < n * d; i++)
				Z[i] += 1e4;
		if (pass == 2)
			for (i = 0; i < n; i += 3)
				for (j = 0; j < d; j++)
					Z[i * d + j] = Z[(i % 50) * d + j];
		if (pass == 2)
			for (i = 0; i < n; i += 3)
				l[i] = l[i % 50];
		direct = sil_kernel(1, Z, n, d, l, k, CLUSTER_SIL_DIRECT);
		blocked = sil_kernel(1, Z, n, d, l, k, CLUSTER_SIL_BLOCKED);
		portable = sil_kernel(1, Z, n, d, l, k, CLUSTER_SIL_BLOCKED_PORTABLE);
		three = sil_kernel(3, Z, n, d, l, k, CLUSTER_SIL_BLOCKED);
		CHECK(isfinite(direct) && fabs(blocked - direct) <= 1e-9,
			  "blocked silhouette within 1e-9 of the direct kernel, %s (%.17g vs %.17g, diff %.3g)",
			  what, blocked, direct, blocked - direct);
		CHECK(memcmp(&blocked, &portable, sizeof(double)) == 0 &&
			  memcmp(&blocked, &three, sizeof(double)) == 0,
			  "blocked silhouette: same bits for the AVX2 and portable kernels and 1 or 3 threads, %s",
			  what);
		free(Z);
	}
	{
		/* all rows of a cluster equal: a = 0 exactly, s = 1 for them */
		double		Y[40 * 20];
		int			ly[40];
		double		v;

		for (i = 0; i < 40; i++)
		{
			ly[i] = (int) (i % 2);
			for (j = 0; j < 20; j++)
				Y[i * 20 + j] = 1e3 + (i % 2) * 1e-3 + j;
		}
		v = sil_kernel(2, Y, 40, 20, ly, 2, CLUSTER_SIL_BLOCKED);
		CHECK(v == 1.0, "blocked silhouette of two point masses is exactly 1 (%.17g)", v);
	}
	free(l);
	{
		/* very wide rows: the recomputation threshold grows with d */
		int64_t		nw = 60;
		int			dw = 20000;
		int		   *lw = malloc(sizeof(int) * nw);
		double	   *W = blobs(nw, dw, 3, 30.0, 11, lw);
		double		direct = sil_kernel(2, W, nw, dw, lw, 3, CLUSTER_SIL_DIRECT),
					blocked = sil_kernel(2, W, nw, dw, lw, 3, CLUSTER_SIL_BLOCKED);

		CHECK(isfinite(direct) && fabs(blocked - direct) <= 1e-9,
			  "blocked silhouette within 1e-9 at 20,000 features (diff %.3g)", blocked - direct);
		free(W);
		free(lw);
	}
	/* the default sample by work: m^2 d <= 6.4e9, at most 10,000 rows */
	CHECK(cluster_silhouette_default_rows(25000, 784) == 2857 &&
		  cluster_silhouette_default_rows(1000000, 3) == 10000 &&
		  cluster_silhouette_default_rows(1000000, 64) == 10000 &&
		  cluster_silhouette_default_rows(1000000, 65) == 9922 &&
		  cluster_silhouette_default_rows(6000, 784) == 2857 &&
		  cluster_silhouette_default_rows(2000, 784) == 2000,
		  "default silhouette rows: 2857 at 784 features, 10,000 up to 64, never above n");
	{
		int64_t		m = 3000;
		int		   *lm = malloc(sizeof(int) * m);
		double	   *W = blobs(m, 784, 3, 1.0, 5, lm);
		KmParams	p;
		KmModel		model;
		KmResult	r;
		MlEnv		env = mlt_env(2);
		MlError		err = {0};

		memset(&p, 0, sizeof(p));
		p.k = 3;
		p.n_init = 1;
		p.max_iter = 20;
		p.tol = 1e-4;
		p.seed = 1;
		p.sample_size = KM_SAMPLE_AUTO;
		CHECK(kmeans_fit(&env, W, m, 784, &p, &model, &r, &err) == ML_OK &&
			  r.silhouette_rows == 2857 && r.silhouette > 0.5,
			  "k-means default sample at 784 features: %lld rows, silhouette %.4f",
			  (long long) r.silhouette_rows, r.silhouette);
		kmeans_model_free(&env, &model);
		free(W);
		free(lm);
	}
}

int
main(void)
{
	test_metrics();
	test_metric_input_errors();
	test_silhouette_blocked();
	return mlt_done();
}
