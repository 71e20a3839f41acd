/*
 * split.c: which rows of a training source are test rows (stratified,
 * random, by time, or by a boolean column). Seeded, so a split repeats.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE				/* qsort_r */
#endif
#include "split.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Shuffle stream of a split: distinct from the other uses of the seed. */
#define SPLIT_SEED_SALT UINT64_C(0x5eed5b117)

/*
 * Moves a seeded choice of `take` of idx[0, m) to its front (a partial
 * Fisher-Yates shuffle) and marks them in is_test.
 */
static void
mark_shuffled_prefix(MlRng *rng, int64_t *idx, int64_t m, int64_t take, uint8_t *is_test)
{
	int64_t		i;

	for (i = 0; i < take; i++)
	{
		int64_t		j = i + (int64_t) ml_rng_below(rng, (uint64_t) (m - i));
		int64_t		tmp = idx[i];

		idx[i] = idx[j];
		idx[j] = tmp;
		is_test[idx[i]] = 1;
	}
}

MlStatus
split_test_rows(const MlEnv *env, int64_t n, const int32_t *y_class, int n_classes,
				double test_size, uint64_t seed, uint8_t *is_test, int64_t *n_test,
				MlError *err)
{
	int64_t    *idx;
	MlRng		rng;
	int64_t		i,
				take;

	memset(is_test, 0, (size_t) n);
	*n_test = 0;
	if (test_size <= 0 || n <= 0)
		return ML_OK;
	idx = ml_alloc(env, sizeof(int64_t) * (size_t) n);
	if (idx == NULL)
		return ml_fail(err, ML_ERR_MEMORY, "out of memory choosing the test rows of %lld rows",
					   (long long) n);
	ml_rng_seed(&rng, seed ^ SPLIT_SEED_SALT);
	if (y_class)
	{
		int			c;

		for (c = 0; c < n_classes; c++)
		{
			int64_t		m = 0;

			for (i = 0; i < n; i++)
				if (y_class[i] == c)
					idx[m++] = i;
			take = (int64_t) rint(test_size * m);
			if (take >= m && m > 1)
				take = m - 1;
			mark_shuffled_prefix(&rng, idx, m, take, is_test);
			*n_test += take;
			if (ml_check(env, "split", c + 1, n_classes, 0.0))
			{
				ml_free(env, idx);
				return ml_fail_cancelled(err);
			}
		}
	}
	else
	{
		take = (int64_t) ceil(test_size * n);
		if (take >= n)
			take = n - 1;
		for (i = 0; i < n; i++)
			idx[i] = i;
		mark_shuffled_prefix(&rng, idx, n, take, is_test);
		*n_test = take;
	}
	ml_free(env, idx);
	return ML_OK;
}

/* Row order of a time split: by time, then by row number. */
static int
cmp_time_rows(const void *a, const void *b, void *arg)
{
	const double *time = arg;
	int64_t		i = *(const int64_t *) a,
				j = *(const int64_t *) b;
	double		x = time[i],
				y = time[j];

	if (x != y)
		return (x > y) - (x < y);
	return (i > j) - (i < j);
}

MlStatus
split_test_rows_by_time(const MlEnv *env, int64_t n, const double *time, double test_size,
						uint8_t *is_test, int64_t *n_test, MlError *err)
{
	int64_t    *idx;
	int64_t		i,
				take = (int64_t) ceil(test_size * n - 1e-9);

	memset(is_test, 0, (size_t) n);
	*n_test = 0;
	if (n <= 0)
		return ML_OK;
	if (take >= n)
		take = n - 1;
	idx = ml_alloc(env, sizeof(int64_t) * (size_t) n);
	if (idx == NULL)
		return ml_fail(err, ML_ERR_MEMORY, "out of memory ordering %lld rows by time",
					   (long long) n);
	for (i = 0; i < n; i++)
		idx[i] = i;
	qsort_r(idx, (size_t) n, sizeof(int64_t), cmp_time_rows, (void *) time);
	for (i = n - take; i < n; i++)
		is_test[idx[i]] = 1;
	*n_test = take;
	ml_free(env, idx);
	return ML_OK;
}

int64_t
split_test_rows_by_flag(int64_t n, const double *flag, uint8_t *is_test)
{
	int64_t		i,
				n_test = 0;

	for (i = 0; i < n; i++)
	{
		is_test[i] = flag[i] != 0;
		n_test += is_test[i];
	}
	return n_test;
}
