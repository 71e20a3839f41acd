/*
 * test_kmeans.c: unit tests of k-means fitting and prediction
 * (src/core/kmeans*.c): blobs, k = 1 and duplicates, relocation and given
 * centroids, cosine, standardization, mini-batch, determinism, accuracy,
 * parameter errors, allocation failures and cancellation, the memory
 * estimate. The codec is in test_kmeans_codec.c, the metrics in
 * test_cluster_metrics.c. Prints TAP; exits non-zero on any failure.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kmeans.h"
#include "model.h"
#include "kmeans_fixtures.h"
#include "mltest.h"

/* ---------------------------------------------------------------------- */
/* helpers                                                                */
/* ---------------------------------------------------------------------- */

/* An env that fails the alloc after `budget` successful ones. */
typedef struct FailCtx
{
	int			budget;
	int			calls;
} FailCtx;

static void *
fail_alloc(void *ctx, size_t n)
{
	FailCtx    *f = ctx;

	if (f->calls++ >= f->budget)
		return NULL;
	return malloc(n);
}

static void
fail_free(void *ctx, void *p)
{
	free(p);
}

/* An env whose check asks to stop at the n-th call. */
static int	cancel_after = 0;
static int	cancel_calls = 0;

static int
cancel_check(void *ctx, const char *s, int i, int m, double v)
{
	return ++cancel_calls >= cancel_after;
}

/* ---------------------------------------------------------------------- */
/* tests                                                                  */
/* ---------------------------------------------------------------------- */

static void
test_two_blobs(void)
{
	double		X[] = {0, 0, 0, 1, 1, 0, 1, 1, 10, 10, 10, 11, 11, 10, 11, 11};
	MlEnv		env = mlt_env(1);
	KmParams	p = params(2);
	KmModel		m;
	KmResult	r;
	MlError		err = {0};
	int			lab[8];
	int			c0;
	MlStatus	st;

	p.n_init = 3;
	st = kmeans_fit_ex(&env, X, 8, 2, &p, 0, lab, &m, &r, &err);
	CHECK(st == ML_OK, "two blobs fit: %s", err.msg);
	if (st != ML_OK)
		return;
	CHECK(close_to(r.inertia, 4.0, 1e-12), "two blobs inertia = 4 (%.17g)", r.inertia);
	c0 = m.centroids[0] < 5 ? 0 : 1;
	CHECK(m.centroids[c0 * 2] == 0.5 && m.centroids[c0 * 2 + 1] == 0.5 &&
		  m.centroids[(1 - c0) * 2] == 10.5 && m.centroids[(1 - c0) * 2 + 1] == 10.5,
		  "two blobs centroids (0.5, 0.5) and (10.5, 10.5)");
	CHECK(lab[0] == lab[1] && lab[1] == lab[2] && lab[2] == lab[3] && lab[4] == lab[7] &&
		  lab[0] != lab[4], "two blobs labels");
	CHECK(m.counts[0] == 4 && m.counts[1] == 4, "two blobs counts");
	CHECK(r.iterations >= 1 && r.iterations <= 3, "two blobs converge fast (%d)", r.iterations);
	/* 1-D distances: silhouette = 1 - mean(a)/b per row, checked below too */
	CHECK(isfinite(r.silhouette) && r.silhouette > 0.9, "two blobs silhouette %.6f", r.silhouette);
	CHECK(kmeans_predict(&m, X + 14, NULL) == lab[7], "predict a training row");
	kmeans_model_free(&env, &m);
}

static void
test_k1_and_duplicates(void)
{
	double		X[] = {1, 2, 3, 4, 5, 9};
	double		D[] = {3, 3, 3, 3, 3, 3, 3, 3, 7, 7, 7, 7};
	MlEnv		env = mlt_env(2);
	KmParams	p = params(1);
	KmModel		m;
	KmResult	r;
	MlError		err = {0};
	int			lab[6];
	MlStatus	st;

	st = kmeans_fit(&env, X, 6, 1, &p, &m, &r, &err);
	CHECK(st == ML_OK && m.centroids[0] == 4.0, "k = 1: the mean (%g)", st == ML_OK ? m.centroids[0] : NAN);
	/* sum (x - 4)^2 = 9 + 4 + 1 + 0 + 1 + 25 */
	CHECK(st == ML_OK && r.inertia == 40.0, "k = 1: inertia 40 (%.17g)", r.inertia);
	CHECK(isnan(r.silhouette) && isnan(r.calinski_harabasz) && isnan(r.davies_bouldin),
		  "k = 1: metrics undefined (NaN)");
	if (st == ML_OK)
		kmeans_model_free(&env, &m);

	/* all rows equal, k = 2: empty cluster relocation must cope */
	p = params(2);
	st = kmeans_fit_ex(&env, D, 4, 2, &p, 0, lab, &m, &r, &err);
	CHECK(st == ML_OK && r.inertia == 0.0, "identical rows, k = 2: inertia 0 (%s)", err.msg);
	if (st == ML_OK)
		kmeans_model_free(&env, &m);

	/* two distinct values, duplicated, k = 2 and k = 3 */
	p = params(2);
	st = kmeans_fit_ex(&env, D, 6, 2, &p, 0, lab, &m, &r, &err);
	CHECK(st == ML_OK && r.inertia == 0.0 && lab[0] == lab[3] && lab[0] != lab[5],
		  "duplicates, k = 2: exact split (%s)", err.msg);
	if (st == ML_OK)
		kmeans_model_free(&env, &m);
	p = params(3);
	p.init = KM_INIT_RANDOM;
	p.n_init = 4;
	st = kmeans_fit_ex(&env, D, 6, 2, &p, 0, lab, &m, &r, &err);
	CHECK(st == ML_OK && r.inertia == 0.0 && isfinite(m.centroids[0]),
		  "duplicates, k = 3 > distinct rows: no failure, inertia 0 (%s)", err.msg);
	if (st == ML_OK)
		kmeans_model_free(&env, &m);
}

static void
test_relocation_and_given(void)
{
	/* three tight groups; one initial centroid far away from everything */
	double		X[] = {0, 0, 0.1, 0, 0, 0.1, 5, 5, 5.1, 5, 5, 5.1, 9, 0, 9.1, 0, 9, 0.1};
	double		given[] = {2.5, 2.5, 100, 100, 7, 0};
	MlEnv		env = mlt_env(1);
	KmParams	p = params(3);
	KmModel		m,
				m2;
	KmResult	r,
				r2;
	MlError		err = {0};
	int			lab[9],
				lab2[9];
	MlStatus	st,
				st2;

	p.init = KM_INIT_GIVEN;
	p.given = given;
	p.tol = 0;
	st = kmeans_fit_ex(&env, X, 9, 2, &p, 0, lab, &m, &r, &err);
	CHECK(st == ML_OK, "relocation fit: %s", err.msg);
	if (st != ML_OK)
		return;
	/* each group: 3 points, inertia = 2 * (0.1^2 * 2/3 ...) = 3 * 0.02/3 * ... */
	CHECK(lab[0] == lab[1] && lab[1] == lab[2] && lab[3] == lab[4] && lab[4] == lab[5] &&
		  lab[6] == lab[7] && lab[7] == lab[8] && lab[0] != lab[3] && lab[3] != lab[6] &&
		  lab[0] != lab[6], "the empty cluster was relocated and won a group");
	CHECK(close_to(r.inertia, 3 * (2 * (0.1 * 0.1) * 2.0 / 3.0), 1e-9),
		  "relocation inertia %.17g", r.inertia);
	st2 = kmeans_fit_ex(&env, X, 9, 2, &p, KM_FLAG_PLAIN_LLOYD, lab2, &m2, &r2, &err);
	CHECK(st2 == ML_OK && r2.inertia == r.inertia && memcmp(lab, lab2, sizeof(lab)) == 0 &&
		  same_model(&m, &m2), "relocation: plain Lloyd gives the same bits");
	if (st2 == ML_OK)
		kmeans_model_free(&env, &m2);
	st2 = kmeans_fit_ex(&env, X, 9, 2, &p, KM_FLAG_DOUBLE_SUMS, lab2, &m2, &r2, &err);
	CHECK(st2 == ML_OK && close_to(r2.inertia, r.inertia, 1e-12) && memcmp(lab, lab2, sizeof(lab)) == 0,
		  "relocation: the double-sum path agrees");
	if (st2 == ML_OK)
		kmeans_model_free(&env, &m2);
	kmeans_model_free(&env, &m);

	/* given init with max_iter 1: one Lloyd step from the given centres */
	{
		double		Y[] = {0, 1, 2, 10, 11, 12};
		double		g[] = {0, 12};

		p = params(2);
		p.init = KM_INIT_GIVEN;
		p.given = g;
		p.max_iter = 1;
		st = kmeans_fit(&env, Y, 6, 1, &p, &m, &r, &err);
		CHECK(st == ML_OK && m.centroids[0] == 1.0 && m.centroids[1] == 11.0 &&
			  r.iterations == 1 && r.inertia == 4.0,
			  "given init, one step: centres 1 and 11, inertia 4");
		if (st == ML_OK)
			kmeans_model_free(&env, &m);
	}
}

static void
test_cosine(void)
{
	double		X[] = {1, 0, 2, 0.2, 3, -0.1, 0, 1, 0.1, 2, -0.2, 5};
	double		Z[] = {1, 0, 0, 0, 0, 1};
	MlEnv		env = mlt_env(1);
	KmParams	p = params(2);
	KmModel		m;
	KmResult	r;
	MlError		err = {0};
	int			lab[6],
				c,
				i;
	double		expect = 0.0;
	MlStatus	st;

	p.distance = KM_DIST_COSINE;
	p.n_init = 3;
	st = kmeans_fit_ex(&env, X, 6, 2, &p, 0, lab, &m, &r, &err);
	CHECK(st == ML_OK, "cosine fit: %s", err.msg);
	if (st != ML_OK)
		return;
	CHECK(lab[0] == lab[1] && lab[1] == lab[2] && lab[3] == lab[4] && lab[4] == lab[5] &&
		  lab[0] != lab[3], "cosine groups rows by direction, not length");
	for (c = 0; c < 2; c++)
	{
		double		nn = m.centroids[2 * c] * m.centroids[2 * c] +
			m.centroids[2 * c + 1] * m.centroids[2 * c + 1];

		CHECK(fabs(nn - 1.0) < 1e-12, "cosine centroid %d has unit length", c);
	}
	/* inertia = sum(1 - cos(x, c)) */
	for (i = 0; i < 6; i++)
	{
		const double *x = X + 2 * i,
				   *cc = m.centroids + 2 * lab[i];

		expect += 1.0 - (x[0] * cc[0] + x[1] * cc[1]) / sqrt(x[0] * x[0] + x[1] * x[1]);
	}
	CHECK(close_to(r.inertia, expect, 1e-12), "cosine inertia = sum(1 - cos) (%.17g vs %.17g)",
		  r.inertia, expect);
	{
		double		far[] = {100, 1};
		double		zero[] = {0, 0};
		double		scratch[2];

		CHECK(kmeans_predict(&m, far, scratch) == lab[0], "cosine predict ignores length");
		CHECK(kmeans_predict(&m, zero, scratch) == -1, "cosine predict of a zero row is -1");
	}
	kmeans_model_free(&env, &m);
	st = kmeans_fit(&env, Z, 3, 2, &p, &m, &r, &err);
	CHECK(st == ML_ERR_DATA && strstr(err.msg, "row 2") != NULL,
		  "cosine with a zero row: ML_ERR_DATA naming it (%s)", err.msg);
}

static void
test_standardize(void)
{
	/* feature 0 in units, feature 1 in thousands, feature 2 constant */
	double		X[] = {0, 0, 5, 1, 1000, 5, 0, 1000, 5, 1, 0, 5, 10, 500, 5, 11, 500, 5};
	MlEnv		env = mlt_env(1);
	KmParams	p = params(2);
	KmModel		m;
	KmResult	r;
	MlError		err = {0};
	int			lab[6],
				i;
	double		mean1 = 500.0,
				var1 = (4 * 500.0 * 500.0) / 6.0;
	double		scratch[3];
	MlStatus	st;

	p.standardize = true;
	p.n_init = 4;
	st = kmeans_fit_ex(&env, X, 6, 3, &p, 0, lab, &m, &r, &err);
	CHECK(st == ML_OK && m.standardize && m.mean && m.scale, "standardize fit: %s", err.msg);
	if (st != ML_OK)
		return;
	CHECK(close_to(m.mean[0], 23.0 / 6.0, 1e-15) && close_to(m.mean[1], mean1, 1e-15) &&
		  m.mean[2] == 5.0, "standardize: column means");
	CHECK(close_to(m.scale[1], sqrt(var1), 1e-14) && m.scale[2] == 1.0,
		  "standardize: population std, 1 for a constant column");
	for (i = 0; i < 6; i++)
		if (kmeans_predict(&m, X + 3 * i, scratch) != lab[i])
			break;
	CHECK(i == 6, "standardize: predict on raw rows gives the training labels");
	CHECK(lab[4] == lab[5] && lab[0] != lab[4], "standardize: the far pair (10, 11) is one cluster");
	kmeans_model_free(&env, &m);
}

static void
test_minibatch(void)
{
	int64_t		n = 3000;
	double	   *X = blobs(n, 3, 3, 0.5, 11, NULL),
			   *Y = blobs(n, 3, 3, 0.5, 12, NULL);
	MlEnv		env = mlt_env(2);
	KmParams	p = params(3);
	KmModel		m,
				w,
				w2;
	KmResult	r,
				rl,
				rw;
	MlError		err = {0};
	MlStatus	st;
	int			j;

	/* shift Y by +1 on every feature: the warm start must follow */
	for (j = 0; j < n * 3; j++)
		Y[j] += 1.0;
	p.minibatch = true;
	p.batch_size = 100;
	p.max_iter = 20;
	p.n_init = 3;
	p.standardize = true;
	st = kmeans_fit(&env, X, n, 3, &p, &m, &r, &err);
	CHECK(st == ML_OK, "minibatch fit: %s", err.msg);
	if (st != ML_OK)
		goto out;
	{
		KmParams	q = params(3);
		KmModel		lm;

		q.standardize = true;
		q.n_init = 3;
		if (kmeans_fit(&env, X, n, 3, &q, &lm, &rl, &err) == ML_OK)
		{
			CHECK(r.inertia < 1.05 * rl.inertia, "minibatch inertia %.6g within 5%% of Lloyd's %.6g",
				  r.inertia, rl.inertia);
			kmeans_model_free(&env, &lm);
		}
	}
	CHECK(r.iterations >= 1 && r.iterations <= 20, "minibatch epochs %d in [1, max_iter]", r.iterations);
	CHECK(m.counts[0] + m.counts[1] + m.counts[2] == n, "minibatch counts sum to n");

	p.warm_start = &m;
	p.max_iter = 1;
	st = kmeans_fit(&env, Y, n, 3, &p, &w, &rw, &err);
	CHECK(st == ML_OK, "minibatch warm start: %s", err.msg);
	if (st == ML_OK)
	{
		CHECK(memcmp(w.mean, m.mean, sizeof(double) * 3) == 0 &&
			  memcmp(w.scale, m.scale, sizeof(double) * 3) == 0,
			  "warm start reuses the model's mean and scale");
		CHECK(w.counts[0] + w.counts[1] + w.counts[2] == 2 * n,
			  "warm start counts = old counts + new rows");
		/* every centroid moved in the +1 direction (in standardised units) */
		for (j = 0; j < 3 * 3; j++)
			if (!(w.centroids[j] > m.centroids[j]))
				break;
		CHECK(j == 9, "warm-started centroids moved toward the new rows");
		st = kmeans_fit(&env, Y, n, 3, &p, &w2, &rw, &err);
		CHECK(st == ML_OK && same_model(&w, &w2), "warm start is deterministic");
		if (st == ML_OK)
			kmeans_model_free(&env, &w2);
		kmeans_model_free(&env, &w);
	}
	/* warm start with fewer rows than k is fine for mini-batch */
	st = kmeans_fit(&env, Y, 2, 3, &p, &w, &rw, &err);
	CHECK(st == ML_OK, "minibatch warm start on 2 rows with k = 3: %s", err.msg);
	if (st == ML_OK)
		kmeans_model_free(&env, &w);
	/* mismatches */
	p.k = 4;
	memset(&err, 0, sizeof(err));
	st = kmeans_fit(&env, Y, n, 3, &p, &w, &rw, &err);
	CHECK(st == ML_ERR_PARAM && strstr(err.msg, "k = 3") && strstr(err.msg, "k = 4"),
		  "warm start k mismatch: %s", err.msg);
	p.k = 3;
	memset(&err, 0, sizeof(err));
	st = kmeans_fit(&env, Y, n / 2, 2, &p, &w, &rw, &err);
	CHECK(st == ML_ERR_PARAM && strstr(err.msg, "3 features") && strstr(err.msg, "has 2"),
		  "warm start d mismatch: %s", err.msg);
	p.standardize = false;
	memset(&err, 0, sizeof(err));
	st = kmeans_fit(&env, Y, n, 3, &p, &w, &rw, &err);
	CHECK(st == ML_ERR_PARAM && strstr(err.msg, "standardize"),
		  "warm start standardize mismatch: %s", err.msg);
	/* Lloyd from a warm start */
	p.standardize = true;
	p.minibatch = false;
	p.max_iter = 100;
	memset(&err, 0, sizeof(err));
	st = kmeans_fit(&env, Y, n, 3, &p, &w, &rw, &err);
	CHECK(st == ML_OK && memcmp(w.mean, m.mean, sizeof(double) * 3) == 0,
		  "Lloyd warm start reuses mean/scale: %s", err.msg);
	if (st == ML_OK)
		kmeans_model_free(&env, &w);
	kmeans_model_free(&env, &m);
out:
	free(X);
	free(Y);
}

static void
test_determinism(void)
{
	int64_t		n = 20011;
	int			d = 5,
				k = 7,
				t,
				v;
	double	   *X = blobs(n, d, k, 9.0, 99, NULL);
	int		   *lab0 = malloc(sizeof(int) * n),
			   *lab1 = malloc(sizeof(int) * n);
	KmParams	p = params(k);
	KmModel		m0,
				m1;
	KmResult	r0,
				r1;
	MlError		err = {0};
	MlEnv		env1 = mlt_env(1);
	unsigned	variants[] = {0, KM_FLAG_PLAIN_LLOYD, KM_FLAG_DOUBLE_SUMS,
	KM_FLAG_DOUBLE_SUMS | KM_FLAG_PLAIN_LLOYD};

	p.n_init = 3;
	p.tol = 0;
	p.sample_size = 2000;
	for (v = 0; v < 4; v++)
	{
		unsigned	f = variants[v];

		if (kmeans_fit_ex(&env1, X, n, d, &p, f, lab0, &m0, &r0, &err) != ML_OK)
		{
			CHECK(0, "determinism fit: %s", err.msg);
			continue;
		}
		for (t = 1; t <= 3; t++)
		{
			MlEnv		env = mlt_env(t);
			bool		ok;

			if (kmeans_fit_ex(&env, X, n, d, &p, f, lab1, &m1, &r1, &err) != ML_OK)
			{
				CHECK(0, "determinism fit: %s", err.msg);
				continue;
			}
			ok = same_model(&m0, &m1) && memcmp(lab0, lab1, sizeof(int) * n) == 0 &&
				memcmp(&r0.inertia, &r1.inertia, sizeof(double)) == 0 &&
				r0.iterations == r1.iterations &&
				memcmp(&r0.silhouette, &r1.silhouette, sizeof(double)) == 0 &&
				memcmp(&r0.calinski_harabasz, &r1.calinski_harabasz, sizeof(double)) == 0 &&
				memcmp(&r0.davies_bouldin, &r1.davies_bouldin, sizeof(double)) == 0;
			CHECK(ok, "flags %u: %d thread(s) give the same bits as 1 (inertia %.17g)", f, t,
				  r1.inertia);
			kmeans_model_free(&env, &m1);
		}
		if (f == KM_FLAG_PLAIN_LLOYD || f == (KM_FLAG_DOUBLE_SUMS | KM_FLAG_PLAIN_LLOYD))
		{
			/* the pruned run with the same sums must match the plain one */
			KmModel		ma;
			KmResult	ra;
			unsigned	fa = f & ~KM_FLAG_PLAIN_LLOYD;
			MlEnv		env2 = mlt_env(2);

			if (kmeans_fit_ex(&env2, X, n, d, &p, fa, lab1, &ma, &ra, &err) == ML_OK)
			{
				CHECK(same_model(&m0, &ma) && memcmp(lab0, lab1, sizeof(int) * n) == 0 &&
					  memcmp(&r0.inertia, &ra.inertia, sizeof(double)) == 0 &&
					  r0.iterations == ra.iterations,
					  "%s sums: pruned Lloyd is bit-identical to plain Lloyd (%d iterations)",
					  fa ? "double" : "exact", ra.iterations);
				kmeans_model_free(&env2, &ma);
			}
		}
		kmeans_model_free(&env1, &m0);
	}
	/* k-means++ and random: same seed same bits, other seed runs too */
	p.init = KM_INIT_RANDOM;
	p.tol = 1e-4;
	if (kmeans_fit(&env1, X, n, d, &p, &m0, &r0, &err) == ML_OK)
	{
		MlEnv		env2 = mlt_env(2);

		CHECK(kmeans_fit(&env2, X, n, d, &p, &m1, &r1, &err) == ML_OK && same_model(&m0, &m1),
			  "random init: same seed, same model");
		kmeans_model_free(&env2, &m1);
		kmeans_model_free(&env1, &m0);
	}
	p.minibatch = true;
	p.batch_size = 256;
	p.max_iter = 5;
	if (kmeans_fit(&env1, X, n, d, &p, &m0, &r0, &err) == ML_OK)
	{
		CHECK(kmeans_fit(&env1, X, n, d, &p, &m1, &r1, &err) == ML_OK && same_model(&m0, &m1) &&
			  r0.inertia == r1.inertia, "minibatch: same seed, same model");
		kmeans_model_free(&env1, &m1);
		kmeans_model_free(&env1, &m0);
	}
	free(X);
	free(lab0);
	free(lab1);
}

static void
test_accuracy_vs_truth(void)
{
	int64_t		n = 9000;
	int			truth[9000],
				lab[9000];
	double	   *X = blobs(n, 4, 3, 0.3, 5, truth);
	MlEnv		env = mlt_env(2);
	KmParams	p = params(3);
	KmModel		m;
	KmResult	r;
	MlError		err = {0};
	int64_t		i,
				bad = 0;
	int			map[3] = {-1, -1, -1};

	p.n_init = 5;
	if (kmeans_fit_ex(&env, X, n, 4, &p, 0, lab, &m, &r, &err) != ML_OK)
	{
		CHECK(0, "blob fit: %s", err.msg);
		free(X);
		return;
	}
	for (i = 0; i < n; i++)
	{
		if (map[truth[i]] < 0)
			map[truth[i]] = lab[i];
		bad += map[truth[i]] != lab[i];
	}
	CHECK(bad == 0, "separated blobs are recovered exactly (%lld misplaced)", (long long) bad);
	CHECK(r.silhouette > 0.8 && r.davies_bouldin < 0.3 && r.calinski_harabasz > 1000,
		  "blob metrics: silhouette %.4f, DB %.4f, CH %.1f", r.silhouette, r.davies_bouldin,
		  r.calinski_harabasz);
	kmeans_model_free(&env, &m);
	free(X);
}

static void
test_param_errors(void)
{
	double		X[20];
	double		g[4] = {0, 1, NAN, 2};
	MlEnv		env = mlt_env(1);
	KmParams	p;
	KmModel		m;
	KmResult	r;
	MlError		err;
	int			i;

	for (i = 0; i < 20; i++)
		X[i] = i;
#define EXPECT(setup, n, status, text) do { \
	MlStatus st_; \
	p = params(2); setup; memset(&err, 0, sizeof(err)); \
	st_ = kmeans_fit(&env, X, n, 2, &p, &m, &r, &err); \
	CHECK(st_ == status && strstr(err.msg, text) != NULL, \
		  "%s -> status %d, \"%s\"", #setup, st_, err.msg); \
	if (st_ == ML_OK) kmeans_model_free(&env, &m); \
} while (0)
	EXPECT(p.k = 0, 10, ML_ERR_PARAM, "k must be at least 1");
	EXPECT(p.k = -3, 10, ML_ERR_PARAM, "k must be at least 1");
	EXPECT(p.k = 20, 10, ML_ERR_DATA, "k = 20 exceeds the 10 training rows");
	EXPECT(p.k = 2000000, 10, ML_ERR_PARAM, "k = 2000000 exceeds");
	EXPECT(p.n_init = 0, 10, ML_ERR_PARAM, "n_init");
	EXPECT(p.max_iter = 0, 10, ML_ERR_PARAM, "max_iter");
	EXPECT(p.tol = -1, 10, ML_ERR_PARAM, "tol");
	EXPECT(p.tol = NAN, 10, ML_ERR_PARAM, "tol");
	EXPECT(p.minibatch = true; p.batch_size = 0, 10, ML_ERR_PARAM, "batch_size");
	EXPECT(p.init = KM_INIT_GIVEN, 10, ML_ERR_PARAM, "init = given");
	EXPECT(p.init = KM_INIT_GIVEN; p.given = g, 10, ML_ERR_PARAM, "non-finite");
	EXPECT((void) 0, 0, ML_ERR_DATA, "at least one training row");
	EXPECT(p.distance = (KmDistance) 7, 10, ML_ERR_PARAM, "distance");
#undef EXPECT
}

static void
test_failures(void)
{
	int64_t		n = 9000;
	double	   *X = blobs(n, 3, 4, 1.0, 4, NULL);
	KmParams	p = params(4);
	KmModel		m;
	KmResult	r;
	MlError		err;
	int			budget,
				mem_ok = 1,
				last = -1;
	MlStatus	st;

	p.n_init = 2;
	p.sample_size = 500;
	/* every allocation failing in turn: ML_ERR_MEMORY, never a crash */
	for (budget = 0; budget < 200; budget++)
	{
		FailCtx		f = {budget, 0};
		MlEnv		env = {fail_alloc, fail_free, NULL, &f, 2};

		memset(&err, 0, sizeof(err));
		st = kmeans_fit(&env, X, n, 3, &p, &m, &r, &err);
		if (st == ML_OK)
		{
			kmeans_model_free(&env, &m);
			last = budget;
			break;
		}
		if (st != ML_ERR_MEMORY)
			mem_ok = 0;
	}
	CHECK(mem_ok && last > 0, "allocation failures give ML_ERR_MEMORY (fit needs %d allocations)", last);
	/* same for the mini-batch and standardize/cosine paths */
	p.minibatch = true;
	p.standardize = true;
	p.distance = KM_DIST_COSINE;
	mem_ok = 1;
	last = -1;
	for (budget = 0; budget < 200; budget++)
	{
		FailCtx		f = {budget, 0};
		MlEnv		env = {fail_alloc, fail_free, NULL, &f, 1};

		memset(&err, 0, sizeof(err));
		st = kmeans_fit(&env, X, n, 3, &p, &m, &r, &err);
		if (st == ML_OK)
		{
			kmeans_model_free(&env, &m);
			last = budget;
			break;
		}
		if (st != ML_ERR_MEMORY)
			mem_ok = 0;
	}
	CHECK(mem_ok && last > 0, "minibatch allocation failures give ML_ERR_MEMORY (%d allocations)", last);

	/* cancellation at every check call until the fit completes */
	p = params(4);
	p.n_init = 2;
	p.sample_size = 500;
	{
		int			stops = 0,
					wrong = 0;

		for (cancel_after = 1; cancel_after < 400; cancel_after++)
		{
			MlEnv		env = {mlt_alloc, mlt_free, cancel_check, NULL, 2};

			cancel_calls = 0;
			memset(&err, 0, sizeof(err));
			st = kmeans_fit(&env, X, n, 3, &p, &m, &r, &err);
			if (st == ML_OK)
			{
				kmeans_model_free(&env, &m);
				break;
			}
			if (st == ML_ERR_INTERNAL && strcmp(err.msg, "cancelled") == 0)
				stops++;
			else
				wrong++;
		}
		CHECK(stops > 3 && wrong == 0, "cancel at each of %d check calls stops cleanly", stops);
	}
	free(X);
}

/* An env that counts the bytes live at once. */
typedef struct TrackCtx
{
	size_t		live;
	size_t		peak;
} TrackCtx;

static void *
track_alloc(void *ctx, size_t n)
{
	TrackCtx   *t = ctx;
	size_t	   *p = malloc(n + 16);

	if (!p)
		return NULL;
	p[0] = n;
	t->live += n;
	if (t->live > t->peak)
		t->peak = t->live;
	return (char *) p + 16;
}

static void
track_free(void *ctx, void *q)
{
	TrackCtx   *t = ctx;
	size_t	   *p = (size_t *) ((char *) q - 16);

	t->live -= p[0];
	free(p);
}

static void
test_memory_estimate(void)
{
	int64_t		n = 30000;
	int			d = 6,
				v;
	double	   *X = blobs(n, d, 5, 2.0, 21, NULL);

	for (v = 0; v < 6; v++)
	{
		TrackCtx	t = {0, 0};
		MlEnv		env = {track_alloc, track_free, NULL, &t, 1 + v % 3};
		KmParams	p = params(5);
		KmModel		m;
		KmResult	r;
		MlError		err = {0};
		size_t		est;

		p.standardize = v & 1;
		p.distance = v >= 4 ? KM_DIST_COSINE : KM_DIST_L2;
		p.minibatch = v == 2 || v == 3;
		p.init = v == 1 ? KM_INIT_RANDOM : KM_INIT_KMEANSPP;
		p.sample_size = v < 3 ? 0 : 4000;
		p.n_init = 2;
		est = kmeans_memory_estimate(n, d, &p, env.n_threads);
		if (kmeans_fit(&env, X, n, d, &p, &m, &r, &err) != ML_OK)
		{
			CHECK(0, "estimate fit: %s", err.msg);
			continue;
		}
		CHECK(t.peak <= est && est < 4 * t.peak + (1 << 20),
			  "memory estimate %zu bounds the peak %zu (variant %d)", est, t.peak, v);
		kmeans_model_free(&env, &m);
		CHECK(t.live == 0, "no env memory left after the model is freed (%zu)", t.live);
	}
	{
		double		Y[] = {1, 2, 3, NAN, 5, 6};
		MlEnv		env = mlt_env(2);
		KmParams	p = params(2);
		KmModel		m;
		KmResult	r;
		MlError		err = {0};

		CHECK(kmeans_fit(&env, Y, 3, 2, &p, &m, &r, &err) == ML_ERR_DATA &&
			  strstr(err.msg, "row 2, feature 2"), "a NaN in X: ML_ERR_DATA naming it (%s)", err.msg);
	}
	free(X);
}

/*
 * The per-iteration trace: one entry per Lloyd iteration, non-increasing,
 * the exact path's figures (from the sums, no pass) equal to the double-sum
 * path's (a pass) to rounding, and bounded below by the final inertia; the
 * same bits for 1 and 3 threads; offset data (far from the origin) too;
 * mini-batch: one entry per epoch.
 */
static void
test_trace(void)
{
	int64_t		n = 5000,
				i;
	double	   *X = blobs(n, 4, 5, 6.0, 21, NULL);
	MlEnv		env1 = mlt_env(1),
				env3 = mlt_env(3);
	KmParams	p = params(5);
	KmModel		m;
	KmResult	r,
				r2;
	MlTrace		t1 = {0},
				t2 = {0},
				t3 = {0};
	MlError		err = {0};
	int			it,
				pass;
	bool		mono = true,
				same = true,
				bits = true;

	for (pass = 0; pass < 2; pass++)
	{
		if (pass == 1)			/* the same data 1e6 away from the origin */
			for (i = 0; i < n * 4; i++)
				X[i] += 1e6;
		p.n_init = 3;
		p.trace = &t1;
		CHECK(kmeans_fit(&env1, X, n, 4, &p, &m, &r, &err) == ML_OK, "trace fit: %s", err.msg);
		kmeans_model_free(&env1, &m);
		p.trace = &t3;
		CHECK(kmeans_fit(&env3, X, n, 4, &p, &m, &r2, &err) == ML_OK, "trace fit, 3 threads");
		kmeans_model_free(&env3, &m);
		p.trace = &t2;
		CHECK(kmeans_fit_ex(&env1, X, n, 4, &p, KM_FLAG_DOUBLE_SUMS, NULL, &m, &r2, &err) == ML_OK,
			  "trace fit, double sums");
		kmeans_model_free(&env1, &m);
		CHECK(t1.n == r.iterations && t2.n == t1.n && t3.n == t1.n,
			  "pass %d: one entry per iteration (%d, %d, %d; %d iterations)",
			  pass, t1.n, t2.n, t3.n, r.iterations);
		for (it = 0; it < t1.n && it < t2.n && it < t3.n; it++)
		{
			mono &= it == 0 || t1.train_loss[it] <= t1.train_loss[it - 1] * (1 + 1e-12);
			same &= close_to(t1.train_loss[it], t2.train_loss[it], 1e-9);
			bits &= memcmp(&t1.train_loss[it], &t3.train_loss[it], sizeof(double)) == 0;
			mono &= isnan(t1.valid_loss[it]) && t1.elapsed_ms[it] >= 0;
		}
		CHECK(mono, "pass %d: the inertia does not increase", pass);
		CHECK(same, "pass %d: exact-sum inertia equals the double-sum pass's", pass);
		CHECK(bits, "pass %d: the same bits for 1 and 3 threads", pass);
		CHECK(t1.n > 0 && t1.train_loss[t1.n - 1] >= r.inertia * (1 - 1e-9),
			  "pass %d: last %.10g >= final inertia %.10g", pass,
			  t1.n ? t1.train_loss[t1.n - 1] : NAN, r.inertia);
	}
	p = params(5);
	p.minibatch = true;
	p.batch_size = 500;
	p.max_iter = 4;
	p.tol = 0;
	p.trace = &t1;
	CHECK(kmeans_fit(&env1, X, n, 4, &p, &m, &r, &err) == ML_OK, "minibatch trace fit");
	kmeans_model_free(&env1, &m);
	CHECK(t1.n == r.iterations && close_to(t1.train_loss[t1.n - 1], r.inertia, 0.2),
		  "minibatch: one entry per epoch (%d, %d epochs), last %.6g near the inertia %.6g",
		  t1.n, r.iterations, t1.n ? t1.train_loss[t1.n - 1] : NAN, r.inertia);
	ml_trace_free(&env1, &t1);
	ml_trace_free(&env1, &t2);
	ml_trace_free(&env3, &t3);
	free(X);
}

/*
 * Choosing k: on 4 well-separated blobs the silhouette and Davies-Bouldin
 * choose 4 from [2, 7], every candidate's figures are those of a plain fit
 * with that k; the elbow needs 3 candidates; bad candidate lists fail.
 */
static void
test_select(void)
{
	int64_t		n = 2000;
	double	   *X = blobs(n, 3, 4, 0.3, 31, NULL);
	MlEnv		env = mlt_env(2);
	KmParams	p = params(2);
	KmModel		m,
				one;
	KmResult	each[6],
				r;
	MlTrace		t = {0};
	MlError		err = {0};
	int			ks[6] = {2, 3, 4, 5, 6, 7},
				bad[3] = {3, 3, 4},
				chosen;

	p.trace = &t;
	CHECK(kmeans_fit_select(&env, X, n, 3, &p, ks, 6, KM_CRIT_SILHOUETTE, &m, each, &chosen, &err) == ML_OK &&
		  ks[chosen] == 4 && m.k == 4 && t.n == each[chosen].iterations,
		  "select: silhouette chooses k = %d of 2..7 (%s)", chosen >= 0 ? ks[chosen] : -1, err.msg);
	p.trace = NULL;
	p.k = 5;
	CHECK(kmeans_fit(&env, X, n, 3, &p, &one, &r, &err) == ML_OK &&
		  r.inertia == each[3].inertia && r.silhouette == each[3].silhouette,
		  "select: the k = 5 candidate's figures are a plain fit's");
	kmeans_model_free(&env, &one);
	kmeans_model_free(&env, &m);
	CHECK(kmeans_fit_select(&env, X, n, 3, &p, ks, 6, KM_CRIT_DAVIES_BOULDIN, &m, each, &chosen, &err) == ML_OK &&
		  ks[chosen] == 4, "select: Davies-Bouldin chooses k = %d", chosen >= 0 ? ks[chosen] : -1);
	kmeans_model_free(&env, &m);
	CHECK(kmeans_fit_select(&env, X, n, 3, &p, ks, 6, KM_CRIT_ELBOW, &m, each, &chosen, &err) == ML_OK &&
		  ks[chosen] == 4, "select: the elbow is at k = %d", chosen >= 0 ? ks[chosen] : -1);
	kmeans_model_free(&env, &m);
	CHECK(kmeans_fit_select(&env, X, n, 3, &p, ks, 2, KM_CRIT_ELBOW, &m, each, &chosen, &err) == ML_ERR_PARAM,
		  "select: the elbow of 2 candidates is refused (%s)", err.msg);
	memset(&err, 0, sizeof(err));
	CHECK(kmeans_fit_select(&env, X, n, 3, &p, bad, 3, KM_CRIT_SILHOUETTE, &m, each, &chosen, &err) == ML_ERR_PARAM,
		  "select: candidates not ascending are refused (%s)", err.msg);
	ml_trace_free(&env, &t);
	free(X);
}

/*
 * Anomaly figures: scales are the clusters' RMS distances, the threshold
 * flags contamination of the rows, a far row scores high, and the ANOMALY
 * section round-trips through an artifact (format 3); a model without it
 * keeps format 1.
 */
static void
test_anomaly(void)
{
	int64_t		n = 1000,
				i,
				above = 0;
	double	   *X = blobs(n, 2, 3, 0.5, 41, NULL);
	MlEnv		env = mlt_env(1);
	KmParams	p = params(3);
	KmModel		m;
	KmResult	r;
	KmAnomaly	a;
	MlError		err = {0};
	MlMeta		meta;
	MlBuf		b;
	MlModel		back;
	char	   *names[2] = {"x", "y"};
	double		scratch[2],
				far[2] = {1e3, 1e3},
				s;

	CHECK(kmeans_fit(&env, X, n, 2, &p, &m, &r, &err) == ML_OK, "anomaly: fit");
	CHECK(kmeans_anomaly_fit(&env, &m, X, n, 0.05, &a, &err) == ML_OK && a.present,
		  "anomaly: fit the threshold (%s)", err.msg);
	s = 0;
	for (i = 0; i < n; i++)
	{
		double		v = kmeans_anomaly_score(&m, &a, X + 2 * i, scratch);

		above += v > a.threshold;
		s += v * v;
	}
	CHECK(above == 50, "anomaly: contamination 0.05 flags %lld of 1000 rows", (long long) above);
	CHECK(fabs(s / n - 1.0) < 1e-9, "anomaly: mean squared score is 1 (%.12f): the scales are RMS distances", s / n);
	CHECK(kmeans_anomaly_score(&m, &a, far, scratch) > 100 * a.threshold, "anomaly: a far row scores high");
	kmeans_anomaly_free(&env, &a);
	CHECK(kmeans_anomaly_fit(&env, &m, X, n, 0.6, &a, &err) == ML_ERR_PARAM && !a.present,
		  "anomaly: contamination 0.6 is refused");
	memset(&err, 0, sizeof(err));
	CHECK(kmeans_anomaly_fit(&env, &m, X, n, 0.05, &a, &err) == ML_OK, "anomaly: refit");
	memset(&meta, 0, sizeof(meta));
	meta.task = ML_TASK_CLUSTER;
	meta.n_features = 2;
	meta.feature_names = names;
	CHECK(ml_model_write_kmeans(&b, &env, &meta, &m, NULL, &a, &err) == ML_OK &&
		  b.data[4] == 3 &&
		  ml_model_read(&env, b.data, b.len, &back, &err) == ML_OK && back.anomaly.present &&
		  back.anomaly.threshold == a.threshold && back.anomaly.scale[2] == a.scale[2],
		  "anomaly: the section round-trips in a format 3 artifact (%s)", err.msg);
	kmeans_model_free(&env, &back.km);
	kmeans_anomaly_free(&env, &back.anomaly);
	for (i = 0; i < (int64_t) back.meta.n_features; i++)
		ml_free(&env, back.meta.feature_names[i]);
	ml_free(&env, back.meta.feature_names);
	ml_free(&env, back.meta.class_labels);
	ml_free(&env, b.data);
	CHECK(ml_model_write_kmeans(&b, &env, &meta, &m, NULL, NULL, &err) == ML_OK && b.data[4] == 1,
		  "anomaly: without it the artifact stays format 1");
	ml_free(&env, b.data);
	kmeans_anomaly_free(&env, &a);
	kmeans_model_free(&env, &m);
	free(X);
}

int
main(void)
{
	test_two_blobs();
	test_k1_and_duplicates();
	test_relocation_and_given();
	test_cosine();
	test_standardize();
	test_minibatch();
	test_determinism();
	test_accuracy_vs_truth();
	test_param_errors();
	test_failures();
	test_memory_estimate();
	test_trace();
	test_select();
	test_anomaly();
	return mlt_done();
}
