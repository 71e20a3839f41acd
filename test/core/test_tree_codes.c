/*
 * test_tree_codes.c: scoring rows from their bin codes (trees_predict_codes,
 * the training metrics' walk) gives, bit for bit, what the walks give for
 * the values the codes stand for (trees_predict_batch and trees_predict_row
 * on the rebuilt rows, as the metrics scored before): gbt regression,
 * binary and three classes, a regression forest, depths 1 to 10, 256 and 8
 * bins, rows with NaN (the missing code), one thread and three; and the
 * same codes scored 16 rows at a time (AVX-512) and one at a time. A model
 * without the quantised walk (a classification forest, deep trees unless
 * tree_quant_always) gets no code map.
 * With MLPIPE_CODES_BENCH=1 it also times 1M rows x 28 features of a
 * 100-tree depth-6 binary gbt both ways, one thread (thread CPU clock).
 * Prints TAP; exits non-zero on failure.
 */
#include <math.h>
#include <stdlib.h>
#include <time.h>

#include "mltest.h"
#include "trees.h"
#include "trees_int.h"

#define D 12

/* xorshift64*: uniform in [0, 1). */
static double
rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return (double) ((*s * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

/* The value code c of feature j stands for (fit_trees.c's bin_value). */
static double
code_value(const TreeBins *bins, int j, int c)
{
	int			nb = bins->n_bins[j];

	if (c >= nb)
		return NAN;
	if (c == nb - 1)
		return nb == 1 ? 0.0 : nextafter(bins->cuts[(size_t) j * 256 + nb - 2], INFINITY);
	return bins->cuts[(size_t) j * 256 + c];
}

/* One data set, binned; fits a model of each kind and compares the walks. */
static void
check_set(int64_t n, int max_bins, int depth, int threads)
{
	MlEnv		env = mlt_env(1),
				envt = mlt_env(threads);
	MlError		err = {0};
	uint64_t	st = 88172645463325252ULL + (uint64_t) depth;
	double	   *X = malloc(sizeof(double) * n * D),
			   *R = malloc(sizeof(double) * n * D),
			   *yr = malloc(sizeof(double) * n),
			   *values = malloc(sizeof(double) * 256 * D);
	int32_t    *yc = malloc(sizeof(int32_t) * n),
			   *y3 = malloc(sizeof(int32_t) * n);
	uint8_t    *B = malloc(n * D);
	TreeBins	bins;
	int64_t		i;
	int			j,
				kind,
				c;

	for (i = 0; i < n; i++)
	{
		double		z;

		for (j = 0; j < D; j++)
		{
			double		v = j % 3 == 1 ? floor(rnd(&st) * 12) : rnd(&st) * 4 - 2;

			if (j % 4 == 2 && rnd(&st) < 0.1)
				v = NAN;
			X[(size_t) j * n + i] = v;
		}
		z = X[i] + 0.3 * X[n + i] - X[3 * n + i] * X[4 * n + i] +
			(isnan(X[2 * n + i]) ? 1 : X[2 * n + i]) + 0.5 * rnd(&st);
		yr[i] = z;
		yc[i] = z > 0;
		y3[i] = z < -1 ? 0 : z < 1 ? 1 : 2;
	}
	if (trees_bins_fit(&env, X, n, D, max_bins, 0, 1, &bins, &err) != ML_OK)
		printf("# bins: %s\n", err.msg);
	trees_bins_apply(&env, &bins, X, n, B, 0);
	/* the rows as the codes' values: what the metrics scored before */
	for (i = 0; i < n; i++)
		for (j = 0; j < D; j++)
			R[(size_t) i * D + j] = code_value(&bins, j, B[(size_t) i * D + j]);
	for (c = 0; c < 256; c++)
		for (j = 0; j < D; j++)
			values[(size_t) c * D + j] = code_value(&bins, j, c);
	for (kind = 0; kind < 5; kind++)
	{
		TreeParams	p;
		TreeData	data;
		TreeModel	m;
		TreeCodeMap *map = NULL;
		double	   *a,
				   *b,
				   *r;
		bool		rf = kind >= 3;
		MlTask		task = kind == 1 || kind == 2 || kind == 4 ? ML_TASK_CLASSIFY : ML_TASK_REGRESS;

		trees_params_default(&p, rf ? TREE_ALGO_RANDOM_FOREST : TREE_ALGO_GBT, task);
		p.n_estimators = rf ? 9 : 20 + depth;
		p.max_depth = depth;
		memset(&data, 0, sizeof(data));
		data.B = B;
		data.n = n;
		data.d = D;
		data.bins = &bins;
		data.y_class = kind == 2 ? y3 : yc;
		data.n_classes = task == ML_TASK_CLASSIFY ? (kind == 2 ? 3 : 2) : 0;
		data.y = yr;
		if (trees_fit(&env, &data, &p, &m, NULL, &err) != ML_OK)
		{
			CHECK(false, "fit kind %d: %s", kind, err.msg);
			continue;
		}
		CHECK(trees_code_map_build(&env, &m, values, &map), "kind %d: map built", kind);
		if (kind == 4)
		{
			CHECK(map == NULL, "a classification forest has no quantised walk: no code map");
			trees_model_free(&env, &m);
			continue;
		}
		CHECK((map != NULL) == tree_quant_active(&m),
			  "kind %d depth %d: a code map exactly when the model has the quantised walk", kind, depth);
		if (map == NULL)
		{
			trees_model_free(&env, &m);
			continue;
		}
		a = malloc(sizeof(double) * n * m.n_outputs);
		b = malloc(sizeof(double) * n * m.n_outputs);
		r = malloc(sizeof(double) * n * m.n_outputs);
		trees_predict_codes(&envt, &m, map, B, n, a);
		trees_predict_batch(&envt, &m, R, n, b);
		for (i = 0; i < n; i++)
			trees_predict_row(&m, R + (size_t) i * D, r + (size_t) i * m.n_outputs);
		CHECK(memcmp(a, b, sizeof(double) * n * m.n_outputs) == 0 &&
			  memcmp(a, r, sizeof(double) * n * m.n_outputs) == 0,
			  "kind %d, depth %d, %d bins, %d threads: codes = batch = row, bit for bit",
			  kind, depth, max_bins, threads);
		/* the codes one row at a time, where AVX-512 walks 16 rows tree by tree */
		tree_quant_simd_max = QUANT_SIMD_NONE;
		trees_predict_codes(&envt, &m, map, B, n, b);
		tree_quant_simd_max = QUANT_SIMD_AVX512;
		CHECK(memcmp(a, b, sizeof(double) * n * m.n_outputs) == 0,
			  "kind %d, depth %d, %d bins, %d threads: codes 16 rows at a time = one at a time",
			  kind, depth, max_bins, threads);
		free(a);
		free(b);
		free(r);
		trees_code_map_free(&env, map);
		trees_model_free(&env, &m);
	}
	trees_bins_free(&env, &bins);
	free(X);
	free(R);
	free(yr);
	free(values);
	free(yc);
	free(y3);
	free(B);
}

/*
 * MLPIPE_CODES_BENCH: a 100-tree depth-6 binary gbt fitted on 100,000 rows
 * x 28, then 1M coded rows scored as the metrics did (rows rebuilt from
 * their codes, trees_predict_batch) and from the codes.
 */
static void
bench_codes(void)
{
	MlEnv		env = mlt_env(1);
	MlError		err = {0};
	int			d = 28,
				j,
				c,
				rep;
	int64_t		n = 1000000,
				nfit = 100000,
				i;
	uint64_t	st = 12345;
	double	   *X = malloc(sizeof(double) * n * d),
			   *R = malloc(sizeof(double) * 4681 * d),
			   *out = malloc(sizeof(double) * 2 * n),
			   *values = malloc(sizeof(double) * 256 * d);
	int32_t    *y = malloc(sizeof(int32_t) * n);
	uint8_t    *B = malloc(n * d);
	TreeBins	bins;
	TreeParams	p;
	TreeData	data;
	TreeModel	m;
	TreeCodeMap *map;
	double		best_old = 1e9,
				best_new = 1e9;

	for (i = 0; i < n; i++)
	{
		double		z = 0;

		for (j = 0; j < d; j++)
		{
			double		v = rnd(&st) * 2 - 1;

			X[(size_t) j * n + i] = v;
			z += v * (j % 4 == 0 ? 1 : 0.2);
		}
		y[i] = z + 0.5 * rnd(&st) > 0;
	}
	trees_bins_fit(&env, X, n, d, 256, 200000, 1, &bins, &err);
	trees_bins_apply(&env, &bins, X, n, B, 0);
	trees_params_default(&p, TREE_ALGO_GBT, ML_TASK_CLASSIFY);
	p.n_estimators = 100;
	p.max_depth = 6;
	memset(&data, 0, sizeof(data));
	data.B = B;
	data.n = nfit;
	data.d = d;
	data.bins = &bins;
	data.y_class = y;
	data.n_classes = 2;
	if (trees_fit(&env, &data, &p, &m, NULL, &err) != ML_OK)
	{
		printf("# bench fit: %s\n", err.msg);
		return;
	}
	for (c = 0; c < 256; c++)
		for (j = 0; j < d; j++)
			values[(size_t) c * d + j] = code_value(&bins, j, c);
	trees_code_map_build(&env, &m, values, &map);
	for (rep = 0; rep < 3; rep++)
	{
		double		t0 = mlt_cpu_now();

		/* the metrics' blocks of 4,681 rows (128 kB of doubles) */
		for (i = 0; i < n; i += 4681)
		{
			int64_t		nr = n - i < 4681 ? n - i : 4681,
						r;

			for (r = 0; r < nr; r++)
				for (j = 0; j < d; j++)
					R[(size_t) r * d + j] = code_value(&bins, j, B[(size_t) (i + r) * d + j]);
			trees_predict_batch(&env, &m, R, nr, out + 2 * i);
		}
		best_old = fmin(best_old, mlt_cpu_now() - t0);
		t0 = mlt_cpu_now();
		if (map)
			trees_predict_codes(&env, &m, map, B, n, out);
		best_new = fmin(best_new, mlt_cpu_now() - t0);
	}
	printf("# 1M rows x 28, 100 trees depth 6: rebuilt + batch %.3f s, codes %.3f s (best of 3)\n",
		   best_old, best_new);
	trees_code_map_free(&env, map);
	trees_model_free(&env, &m);
	trees_bins_free(&env, &bins);
	free(X);
	free(R);
	free(out);
	free(values);
	free(y);
	free(B);
}

int
main(void)
{
	if (getenv("MLPIPE_CODES_BENCH"))
		bench_codes();
	check_set(3000, 256, 1, 1);
	check_set(3000, 256, 3, 3);
	check_set(20000, 256, 6, 1);
	check_set(20000, 256, 6, 3);
	check_set(3001, 256, 5, 1);
	check_set(3000, 8, 6, 1);
	check_set(5000, 256, 10, 3);
	/* the deep trees again with the quantised walk wherever it can be built */
	tree_quant_always = true;
	check_set(5000, 256, 10, 3);
	check_set(5000, 256, 8, 1);
	return mlt_done();
}
