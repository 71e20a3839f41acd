/*
 * test_split.c: unit tests of src/core/split.c: stratified, random, time and
 * column splits; no row in both parts; seeded reproducibility; edge cases
 * (no test rows, a single class, ties in time). Prints TAP.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mltest.h"
#include "split.h"

#define N 1000

/* Rows marked in is_test, and whether every flag is 0 or 1. */
static int64_t
count_marked(const uint8_t *is_test, int64_t n, bool *only_01)
{
	int64_t		i,
				c = 0;

	*only_01 = true;
	for (i = 0; i < n; i++)
	{
		if (is_test[i] > 1)
			*only_01 = false;
		c += is_test[i];
	}
	return c;
}

/* Random split: ceil(test_size * n) rows, reproducible per seed, seed-dependent. */
static void
test_random(MlEnv *env)
{
	uint8_t    *a = malloc(N),
			   *b = malloc(N),
			   *c = malloc(N);
	int64_t		na,
				nb,
				nc;
	bool		ok01;
	MlError		err = {0};

	memset(a, 7, N);
	CHECK(split_test_rows(env, N, NULL, 0, 0.25, 42, a, &na, &err) == ML_OK, "random split runs");
	CHECK(na == 250 && count_marked(a, N, &ok01) == 250 && ok01,
		  "random split marks ceil(0.25 * 1000) = 250 rows, each row in exactly one part");
	split_test_rows(env, N, NULL, 0, 0.25, 42, b, &nb, &err);
	CHECK(nb == na && memcmp(a, b, N) == 0, "same seed, same test rows");
	split_test_rows(env, N, NULL, 0, 0.25, 43, c, &nc, &err);
	CHECK(nc == na && memcmp(a, c, N) != 0, "another seed, other test rows");
	split_test_rows(env, N, NULL, 0, 0.2001, 1, a, &na, &err);
	CHECK(na == 201, "random split rounds up (0.2001 * 1000 -> 201)");
	split_test_rows(env, 2, NULL, 0, 0.9, 1, a, &na, &err);
	CHECK(na == 1 && a[0] + a[1] == 1, "two rows: one test row, one training row");
	free(a);
	free(b);
	free(c);
}

/* Stratified split: per class round(test_size * count), at most count - 1. */
static void
test_stratified(MlEnv *env)
{
	int32_t    *y = malloc(sizeof(int32_t) * N);
	uint8_t    *t = malloc(N),
			   *t2 = malloc(N);
	int64_t		nt,
				nt2,
				per[3] = {0, 0, 0},
				i;
	bool		ok01;
	MlError		err = {0};

	/* class 0: 700 rows, class 1: 297, class 2: 3 */
	for (i = 0; i < N; i++)
		y[i] = i < 700 ? 0 : i < 997 ? 1 : 2;
	CHECK(split_test_rows(env, N, y, 3, 0.2, 7, t, &nt, &err) == ML_OK, "stratified split runs");
	for (i = 0; i < N; i++)
		per[y[i]] += t[i];
	CHECK(per[0] == 140 && per[1] == 59 && per[2] == 1,
		  "per class round(0.2 * count): 140, 59, 1 (got %lld, %lld, %lld)",
		  (long long) per[0], (long long) per[1], (long long) per[2]);
	CHECK(nt == 200 && count_marked(t, N, &ok01) == nt && ok01, "the count matches the marks");
	split_test_rows(env, N, y, 3, 0.2, 7, t2, &nt2, &err);
	CHECK(nt2 == nt && memcmp(t, t2, N) == 0, "stratified: same seed, same test rows");

	/* a class of one row keeps it; a large share leaves one training row per class */
	for (i = 0; i < N; i++)
		y[i] = i == 0 ? 1 : 0;
	split_test_rows(env, N, y, 2, 0.9, 7, t, &nt, &err);
	CHECK(t[0] == 1, "a single-row class gives its row when round(test_size) = 1");
	CHECK(nt == 899 + (int64_t) rint(0.9) && count_marked(t, N, &ok01) == nt,
		  "0.9 of 999 rows rounds to 899, the single row rounds to 1");

	/* all one class */
	for (i = 0; i < N; i++)
		y[i] = 0;
	split_test_rows(env, N, y, 1, 0.3, 7, t, &nt, &err);
	CHECK(nt == 300 && count_marked(t, N, &ok01) == 300, "all one class: 300 test rows");
	split_test_rows(env, N, y, 1, 0.9999, 7, t, &nt, &err);
	CHECK(nt == N - 1, "all one class, test_size near 1: one row stays for training");
	free(y);
	free(t);
	free(t2);
}

/* test_size 0 (and no rows): nothing marked, and every flag cleared. */
static void
test_no_test_rows(MlEnv *env)
{
	uint8_t    *t = malloc(N);
	int32_t    *y = calloc(N, sizeof(int32_t));
	double	   *tm = malloc(sizeof(double) * N);
	int64_t		nt = -1,
				i;
	bool		ok01;
	MlError		err = {0};

	for (i = 0; i < N; i++)
		tm[i] = (double) i;
	memset(t, 1, N);
	split_test_rows(env, N, NULL, 0, 0, 1, t, &nt, &err);
	CHECK(nt == 0 && count_marked(t, N, &ok01) == 0, "random, test_size 0: no test rows");
	memset(t, 1, N);
	split_test_rows(env, N, y, 1, 0, 1, t, &nt, &err);
	CHECK(nt == 0 && count_marked(t, N, &ok01) == 0, "stratified, test_size 0: no test rows");
	memset(t, 1, N);
	split_test_rows_by_time(env, N, tm, 0, t, &nt, &err);
	CHECK(nt == 0 && count_marked(t, N, &ok01) == 0, "time, test_size 0: no test rows");
	CHECK(split_test_rows(env, 0, NULL, 0, 0.5, 1, t, &nt, &err) == ML_OK && nt == 0,
		  "no rows: no test rows");
	free(t);
	free(y);
	free(tm);
}

/* Time split: the latest rows are test rows; ties go by row order. */
static void
test_time(MlEnv *env)
{
	double	   *tm = malloc(sizeof(double) * N);
	uint8_t    *t = malloc(N);
	int64_t		nt,
				i;
	bool		later = true,
				ok01;
	double		max_train = -INFINITY,
				min_test = INFINITY;
	MlError		err = {0};
	MlRng		rng;

	ml_rng_seed(&rng, 5);
	for (i = 0; i < N; i++)
		tm[i] = (double) ml_rng_below(&rng, 100);	/* many ties */
	CHECK(split_test_rows_by_time(env, N, tm, 0.25, t, &nt, &err) == ML_OK, "time split runs");
	CHECK(nt == 250 && count_marked(t, N, &ok01) == 250 && ok01, "time split: 250 test rows");
	for (i = 0; i < N; i++)
	{
		if (t[i] && tm[i] < min_test)
			min_test = tm[i];
		if (!t[i] && tm[i] > max_train)
			max_train = tm[i];
	}
	CHECK(max_train <= min_test, "no training row is later than a test row");
	/* at the boundary time, test rows come after training rows in row order */
	{
		int64_t		last_train = -1,
					first_test = N;

		for (i = 0; i < N; i++)
			if (tm[i] == min_test)
			{
				if (t[i] && i < first_test)
					first_test = i;
				if (!t[i])
					last_train = i;
			}
		later = last_train < first_test;
	}
	CHECK(later, "equal times split in row order");
	for (i = 0; i < N; i++)
		tm[i] = 1.0;
	split_test_rows_by_time(env, N, tm, 0.1, t, &nt, &err);
	CHECK(nt == 100 && t[N - 1] && !t[N - 101] && t[N - 100], "all times equal: the last 100 rows");
	split_test_rows_by_time(env, N, tm, 1.0, t, &nt, &err);
	CHECK(nt == N - 1 && !t[0], "test_size 1: one training row stays");
	free(tm);
	free(t);
}

/* Column split: exactly the flagged rows. */
static void
test_flag(void)
{
	double		flag[6] = {0, 1, 0, 2, -1, 0};
	uint8_t		t[6];

	CHECK(split_test_rows_by_flag(6, flag, t) == 3 && t[1] && t[3] && t[4] && !t[0] && !t[2] && !t[5],
		  "column split marks the nonzero rows");
}

/* An env whose allocations fail: the split reports ML_ERR_MEMORY. */
static void *
fail_alloc(void *ctx, size_t n)
{
	(void) ctx;
	(void) n;
	return NULL;
}

static void
test_oom(void)
{
	MlEnv		env = mlt_env(1);
	uint8_t		t[10];
	double		tm[10] = {0};
	int64_t		nt;
	MlError		err = {0};

	env.alloc = fail_alloc;
	CHECK(split_test_rows(&env, 10, NULL, 0, 0.5, 1, t, &nt, &err) == ML_ERR_MEMORY,
		  "random split without memory fails with ML_ERR_MEMORY");
	CHECK(split_test_rows_by_time(&env, 10, tm, 0.5, t, &nt, &err) == ML_ERR_MEMORY,
		  "time split without memory fails with ML_ERR_MEMORY");
}

int
main(void)
{
	MlEnv		env = mlt_env(1);

	test_random(&env);
	test_stratified(&env);
	test_no_test_rows(&env);
	test_time(&env);
	test_flag();
	test_oom();
	return mlt_done();
}
