/*
 * roworder_cli: times the canonical row order (src/core/roworder.c) on
 * generated rows, the way the glue uses it, to state what order
 * independence costs.
 *
 *   roworder_cli N D [distinct]
 *
 * Generates N rows of D doubles (uniform, fixed seed; with `distinct`, each
 * value is one of that many levels, so rows repeat and hashes tie), then
 * times: hashing every row, the order (radix sort and tie runs), and
 * permuting the rows as doubles (k-means: N x D x 8 bytes) and as bin codes
 * (trees: N x D bytes, plus an 8-byte target). Prints key=value lines:
 * seconds of each step (CPU), and the bytes the order adds (8 a row).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "roworder.h"

/* malloc/free for the env; no cancel. */
static void *
cli_alloc(void *ctx, size_t n)
{
	return malloc(n);
}

static void
cli_free(void *ctx, void *p)
{
	free(p);
}

static int
cli_check(void *ctx, const char *s, int i, int m, double v)
{
	return 0;
}

/* CPU seconds since the process started. */
static double
cpu_now(void)
{
	return (double) clock() / CLOCKS_PER_SEC;
}

/* Tie comparison over row-major doubles (arg: the rows, d in the first slot). */
typedef struct Rows
{
	const double *x;
	int			d;
} Rows;

static int
tie_rows(void *arg, int64_t a, int64_t b)
{
	const Rows *r = arg;

	return ml_cmp_double_rows(r->x + a * r->d, r->x + b * r->d, r->d);
}

int
main(int argc, char **argv)
{
	MlEnv		env = {cli_alloc, cli_free, cli_check, NULL, 1};
	MlError		err = {0};
	int64_t		n,
				i,
			   *order;
	int			d,
				distinct;
	double	   *x,
				t0,
				t_hash,
				t_order,
				t_perm_x,
				t_perm_b;
	uint8_t    *b;
	double	   *y;
	uint64_t   *keys;
	MlRng		rng;
	Rows		rows;

	if (argc < 3)
	{
		fprintf(stderr, "usage: roworder_cli N D [distinct]\n");
		return 2;
	}
	n = atoll(argv[1]);
	d = atoi(argv[2]);
	distinct = argc > 3 ? atoi(argv[3]) : 0;
	x = malloc(sizeof(double) * n * d);
	b = malloc((size_t) n * d);
	y = malloc(sizeof(double) * n);
	keys = malloc(sizeof(uint64_t) * n);
	if (!x || !b || !y || !keys)
		return 1;
	ml_rng_seed(&rng, 1);
	for (i = 0; i < n * d; i++)
	{
		double		u = ml_rng_uniform(&rng);

		x[i] = distinct > 0 ? (double) (int) (u * distinct) : u;
		b[i] = (uint8_t) (u * 256);
	}
	for (i = 0; i < n; i++)
		y[i] = (double) i;

	t0 = cpu_now();
	for (i = 0; i < n; i++)
		keys[i] = ml_order_key(ml_hash_finish(ml_hash_doubles(ml_hash_start(0), x + i * d, d)), i);
	t_hash = cpu_now() - t0;

	rows.x = x;
	rows.d = d;
	t0 = cpu_now();
	if (ml_canonical_order(&env, keys, n, tie_rows, &rows, &err) != ML_OK)
	{
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	order = ml_order_from_keys(keys, n);
	t_order = cpu_now() - t0;

	t0 = cpu_now();
	ml_permute_rows(&env, x, sizeof(double) * d, order, n, &err);
	t_perm_x = cpu_now() - t0;
	t0 = cpu_now();
	ml_permute_rows(&env, b, (size_t) d, order, n, &err);
	ml_permute_rows(&env, y, sizeof(double), order, n, &err);
	t_perm_b = cpu_now() - t0;

	printf("rows=%lld features=%d distinct=%d\n", (long long) n, d, distinct);
	printf("hash_seconds=%.3f\norder_seconds=%.3f\n", t_hash, t_order);
	printf("permute_doubles_seconds=%.3f\npermute_bins_and_target_seconds=%.3f\n", t_perm_x, t_perm_b);
	printf("kmeans_path_seconds=%.3f\ntrees_path_seconds=%.3f\n",
		   t_hash + t_order + t_perm_x, t_hash + t_order + t_perm_b);
	printf("order_bytes=%lld (the keys; a bitmap of n/8 and one row while permuting)\n",
		   (long long) (n * (int64_t) sizeof(uint64_t)));
	printf("data_bytes_doubles=%lld data_bytes_bins=%lld\n", (long long) (n * d * 8), (long long) n * d);
	free(keys);
	free(x);
	free(b);
	free(y);
	return 0;
}
