/*
 * test_kmeans.c: unit tests of the k-means modules (src/core/kmeans*.c)
 * and cluster_metrics.c. Prints TAP; exits non-zero on any failure.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artifact.h"
#include "kmeans.h"
#include "cluster_metrics.h"
#include "mltest.h"

/* ---------------------------------------------------------------------- */
/* helpers                                                                */
/* ---------------------------------------------------------------------- */

static KmParams
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

static bool
close_to(double a, double b, double rel)
{
	return fabs(a - b) <= rel * fmax(1.0, fmax(fabs(a), fabs(b)));
}

static double
gauss(MlRng *r)
{
	double		u = ml_rng_uniform(r),
				v = ml_rng_uniform(r);

	return sqrt(-2.0 * log(1.0 - u)) * cos(6.283185307179586 * v);
}

/* n rows of d features around k blobs (centres 10 * blob index on each axis). */
static double *
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

static bool
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
	/* metric inputs */
	{
		int			lab[4] = {0, 1, 0, 5};
		double		v;

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
}

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

/* Bare payload: exact round trip, every truncation and a trailing byte rejected. */
static void
codec_payload_checks(MlEnv *env, const KmModel *m, int variant)
{
	MlError		err = {0};
	MlBuf		b;
	MlReader	rd;
	KmModel		back;
	size_t		i,
				rejected = 0;
	bool		ok;

	ml_buf_init(&b, env);
	kmeans_write(&b, m);
	ml_rd_init(&rd, b.data, b.len, env, &err);
	ok = kmeans_read(&rd, &back);
	CHECK(ok && same_model(m, &back), "variant %d: write -> read round trip is exact", variant);
	if (ok)
		kmeans_model_free(env, &back);
	/* every truncation of the bare payload fails cleanly */
	for (i = 0; i < b.len; i++)
	{
		memset(&err, 0, sizeof(err));
		ml_rd_init(&rd, b.data, i, env, &err);
		if (!kmeans_read(&rd, &back) && err.code == ML_ERR_CORRUPT && back.centroids == NULL)
			rejected++;
		else if (back.centroids)
			kmeans_model_free(env, &back);
	}
	CHECK(rejected == b.len, "variant %d: all %zu payload truncations rejected", variant, b.len);
	/* a trailing byte too */
	ml_buf_put_u8(&b, 0);
	memset(&err, 0, sizeof(err));
	ml_rd_init(&rd, b.data, b.len, env, &err);
	CHECK(!kmeans_read(&rd, &back) && strstr(err.msg, "trailing"), "trailing byte rejected: %s",
		  err.msg);
	ml_free(env, b.data);
}

/* m wrapped in a k-means artifact into b; *model_at is where its MODEL section starts. */
static void
codec_artifact(MlEnv *env, const KmModel *m, MlBuf *b, size_t *model_at)
{
	MlMeta		meta;
	char	   *names[4] = {"a", "b", "c", "d"};
	MlError		err = {0};
	size_t		at;

	memset(&meta, 0, sizeof(meta));
	meta.task = ML_TASK_CLUSTER;
	meta.n_features = 4;
	meta.feature_names = names;
	artifact_begin(b, env, ML_KIND_KMEANS);
	artifact_write_meta(b, &meta);
	*model_at = b->len;
	at = artifact_section_begin(b, ML_SEC_MODEL);
	kmeans_write(b, m);
	artifact_section_end(b, at);
	CHECK(artifact_finish(b, &err) == ML_OK, "artifact written");
}

/* Whether the artifact in buf[0..len) opens and its META and MODEL sections read. */
static bool
codec_artifact_reads(MlEnv *env, const uint8_t *buf, size_t len)
{
	MlError		err = {0};
	MlArtifact	a;
	MlSection	tag;
	MlReader	sec;
	KmModel		back;
	MlMeta		mm;
	bool		accepted = false;

	memset(&mm, 0, sizeof(mm));
	if (artifact_open(buf, len, env, &a, &err) != ML_OK)
		return false;
	if (artifact_next_section(&a, &tag, &sec, &err) && tag == ML_SEC_META &&
		artifact_read_meta(&sec, &mm) &&
		artifact_next_section(&a, &tag, &sec, &err) && tag == ML_SEC_MODEL &&
		kmeans_read(&sec, &back))
	{
		accepted = true;
		kmeans_model_free(env, &back);
	}
	if (mm.feature_names)
	{
		uint32_t	f;

		for (f = 0; f < mm.n_features; f++)
			ml_free(env, mm.feature_names[f]);
		ml_free(env, mm.feature_names);
		ml_free(env, mm.class_labels);
	}
	return accepted;
}

/* In an artifact: the intact one reads back, every byte flip and truncation is rejected. */
static void
codec_artifact_flips(MlEnv *env, const MlBuf *b, uint8_t *copy, int variant)
{
	size_t		i,
				rejected = 0,
				total = 0;

	for (i = 0; i <= b->len; i++)
	{
		int			flip;

		for (flip = 0; flip < (i < b->len ? 2 : 1); flip++)
		{
			size_t		len = b->len;
			bool		accepted;

			memcpy(copy, b->data, b->len);
			if (i == b->len)
				len = b->len;	/* the intact artifact, as a control */
			else if (flip == 0)
				copy[i] ^= (uint8_t) (1u << (i % 8));
			else
				len = i;		/* truncated to i bytes */
			accepted = codec_artifact_reads(env, copy, len);
			if (i == b->len)
				CHECK(accepted, "variant %d: the intact artifact reads back", variant);
			else
			{
				total++;
				rejected += !accepted;
			}
		}
	}
	CHECK(rejected == total, "variant %d: %zu/%zu byte flips and truncations rejected",
		  variant, rejected, total);
}

/*
 * Flips inside the MODEL section with the CRC recomputed: kmeans_read
 * itself must never crash, and whatever it accepts must be sane.
 */
static void
codec_model_flips(MlEnv *env, const KmModel *m, const MlBuf *b, size_t model_at,
				  uint8_t *copy, int variant)
{
	MlError		err = {0};
	MlReader	rd;
	KmModel		back;
	size_t		payload0 = model_at + 6,
				i,
				rejected = 0,
				total = 0;
	bool		sane = true;

	for (i = payload0; i < b->len; i++)
	{
		int			bit;

		for (bit = 0; bit < 8; bit += 3)
		{
			memcpy(copy, b->data, b->len);
			copy[i] ^= (uint8_t) (1u << bit);
			memset(&err, 0, sizeof(err));
			ml_rd_init(&rd, copy + payload0, b->len - payload0, env, &err);
			total++;
			if (kmeans_read(&rd, &back))
			{
				int			c,
							j;

				for (c = 0; c < back.k; c++)
					for (j = 0; j < back.d; j++)
						sane &= isfinite(back.centroids[c * back.d + j]);
				sane &= back.k == m->k && back.d == m->d;
				kmeans_model_free(env, &back);
			}
			else
				rejected++;
		}
	}
	CHECK(sane, "variant %d: %zu of %zu raw MODEL flips rejected, the rest sane",
		  variant, rejected, total);
}

/* The codec on fitted models: plain, standardized, cosine. */
static void
test_codec(void)
{
	int64_t		n = 500;
	double	   *X = blobs(n, 4, 3, 1.0, 8, NULL);
	MlEnv		env = mlt_env(1);
	KmParams	p;
	KmModel		m;
	KmResult	r;
	MlError		err = {0};
	int			variant;

	for (variant = 0; variant < 3; variant++)
	{
		MlBuf		b;
		size_t		model_at = 0;
		uint8_t    *copy;

		p = params(3);
		p.standardize = variant >= 1;
		p.distance = variant == 2 ? KM_DIST_COSINE : KM_DIST_L2;
		if (kmeans_fit(&env, X, n, 4, &p, &m, &r, &err) != ML_OK)
		{
			CHECK(0, "codec fit: %s", err.msg);
			continue;
		}
		codec_payload_checks(&env, &m, variant);
		codec_artifact(&env, &m, &b, &model_at);
		copy = malloc(b.len);
		codec_artifact_flips(&env, &b, copy, variant);
		codec_model_flips(&env, &m, &b, model_at, copy, variant);
		free(copy);
		ml_free(&env, b.data);
		kmeans_model_free(&env, &m);
	}
	free(X);
}

/* Reads the payload in b (then frees it): false, with err, when rejected. */
static bool
codec_read_payload(MlEnv *env, MlBuf *b, MlError *err)
{
	MlReader	r2;
	KmModel		back;
	bool		ok;

	memset(err, 0, sizeof(*err));
	ml_rd_init(&r2, b->data, b->len, env, err);
	ok = kmeans_read(&r2, &back);
	if (ok)
		kmeans_model_free(env, &back);
	ml_free(env, b->data);
	return ok;
}

/* Hand-made hostile payloads. */
static void
test_codec_hostile(void)
{
	MlEnv		env = mlt_env(1);
	MlError		err = {0};
	MlBuf		b;
	MlReader	r2;
	KmModel		back;
	uint8_t		bad[64];
	bool		ok;

	ml_buf_init(&b, &env);
	ml_buf_put_u32(&b, 0xFFFFFFFF);	/* k */
	ml_buf_put_u32(&b, 3);
	ok = codec_read_payload(&env, &b, &err);
	CHECK(!ok && err.code == ML_ERR_CORRUPT, "huge k rejected: %s", err.msg);

	ml_buf_init(&b, &env);
	ml_buf_put_u32(&b, 1);
	ml_buf_put_u32(&b, 1);
	ml_buf_put_u8(&b, 9);		/* distance */
	ml_buf_put_u8(&b, 0);
	ml_buf_put_f64(&b, 1.0);
	ml_buf_put_f64(&b, 1.0);
	ok = codec_read_payload(&env, &b, &err);
	CHECK(!ok && strstr(err.msg, "distance"), "unknown distance: %s", err.msg);

	ml_buf_init(&b, &env);
	ml_buf_put_u32(&b, 1);
	ml_buf_put_u32(&b, 1);
	ml_buf_put_u8(&b, 0);
	ml_buf_put_u8(&b, 1);		/* standardize */
	ml_buf_put_f64(&b, 0.0);	/* mean */
	ml_buf_put_f64(&b, 0.0);	/* scale 0 */
	ml_buf_put_f64(&b, 1.0);
	ml_buf_put_f64(&b, 1.0);
	ok = codec_read_payload(&env, &b, &err);
	CHECK(!ok && strstr(err.msg, "scale"), "scale 0 rejected: %s", err.msg);

	ml_buf_init(&b, &env);
	ml_buf_put_u32(&b, 1);
	ml_buf_put_u32(&b, 1);
	ml_buf_put_u8(&b, 0);
	ml_buf_put_u8(&b, 0);
	ml_buf_put_f64(&b, NAN);
	ml_buf_put_f64(&b, 1.0);
	ok = codec_read_payload(&env, &b, &err);
	CHECK(!ok && strstr(err.msg, "finite"), "NaN centroid rejected: %s", err.msg);

	memset(bad, 0xFF, sizeof(bad));
	memset(&err, 0, sizeof(err));
	ml_rd_init(&r2, bad, sizeof(bad), &env, &err);
	CHECK(!kmeans_read(&r2, &back), "0xFF bytes rejected: %s", err.msg);
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
	test_metrics();
	test_silhouette_blocked();
	test_codec();
	test_codec_hostile();
	test_failures();
	test_memory_estimate();
	return mlt_done();
}
