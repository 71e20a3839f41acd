/*
 * test_tsstats.c: unit tests of src/core/tsstats.c: the merge sort, the
 * introselect (against a full sort, adversarial inputs included) and the
 * summary of a hand-checked series. Prints TAP; exits non-zero on failure.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mltest.h"
#include "tsstats.h"

static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return (x > y) - (x < y);
}

/* ts_select against qsort for every rank of several input shapes. */
static void
test_select(void)
{
	const int	n = 1000;
	double	   *v = malloc(sizeof(double) * n),
			   *s = malloc(sizeof(double) * n),
			   *w = malloc(sizeof(double) * n);
	int			shape,
				i,
				k,
				bad;
	MlRng		rng;

	ml_rng_seed(&rng, 3);
	for (shape = 0; shape < 5; shape++)
	{
		for (i = 0; i < n; i++)
		{
			switch (shape)
			{
				case 0: v[i] = ml_rng_uniform(&rng); break;		/* random */
				case 1: v[i] = i; break;					/* sorted */
				case 2: v[i] = n - i; break;				/* reversed */
				case 3: v[i] = (double) (i % 3); break;		/* many ties */
				default: v[i] = (i % 2) ? i : n - i; break;	/* organ pipe */
			}
		}
		memcpy(s, v, sizeof(double) * n);
		qsort(s, n, sizeof(double), cmp_double);
		bad = 0;
		for (k = 0; k < n; k++)
		{
			memcpy(w, v, sizeof(double) * n);
			if (ts_select(w, n, k) != s[k])
				bad++;
		}
		CHECK(bad == 0, "ts_select shape %d: every rank equals the sorted array (%d wrong)", shape, bad);
	}
	free(v);
	free(s);
	free(w);
}

/* ts_sort_points on shuffled points with tied timestamps. */
static void
test_sort(void)
{
	const int64_t n = 100000;
	TsPoint    *p = malloc(sizeof(TsPoint) * n);
	MlEnv		env = mlt_env(1);
	MlError		err = {0};
	MlRng		rng;
	int64_t		i,
				j;
	TsPoint		t;

	ml_rng_seed(&rng, 5);
	for (i = 0; i < n; i++)
	{
		p[i].ts = i / 3;
		p[i].v = (double) (i % 3);
	}
	for (i = n - 1; i > 0; i--)
	{
		j = (int64_t) ml_rng_below(&rng, (uint64_t) i + 1);
		t = p[i];
		p[i] = p[j];
		p[j] = t;
	}
	CHECK(!ts_points_sorted(p, n), "shuffled points are not sorted");
	CHECK(ts_sort_points(&env, p, n, &err) == ML_OK && ts_points_sorted(p, n),
		  "ts_sort_points sorts 100000 shuffled points by (ts, v)");
	CHECK(p[0].ts == 0 && p[0].v == 0 && p[n - 1].ts == (n - 1) / 3 && p[n - 1].v == (double) ((n - 1) % 3),
		  "ties in ts are ordered by value");
	free(p);
}

/* The hand-checked series of the regression test: hours 0, 1, 2, 4; values 1, 2, 4, 8. */
static void
test_summary(void)
{
	TsPoint		p[4] = {{0, 1}, {3600000000LL, 2}, {7200000000LL, 4}, {14400000000LL, 8}};
	MlEnv		env = mlt_env(1);
	MlError		err = {0};
	TsSummary	s;

	CHECK(ts_summarize(&env, p, 4, &s, &err) == ML_OK, "ts_summarize runs");
	CHECK(s.mean == 3.75 && fabs(s.std - sqrt(28.75 / 3)) < 1e-15, "mean and std");
	CHECK(fabs(s.q[0] - 1.15) < 1e-15 && s.q[2] == 3 && fabs(s.q[4] - 7.4) < 1e-14, "quantiles interpolate");
	CHECK(fabs(s.slope - 1.8) < 1e-15, "slope per hour");
	CHECK(s.first == 1 && s.last == 8 && fabs(s.mean_abs_change - 7.0 / 3) < 1e-15, "first, last, mean_abs_change");
	CHECK(fabs(s.autocorr_lag1 - 1) < 1e-15 && s.longest_gap == 7200, "autocorr_lag1 and longest_gap");
	CHECK(ts_summarize(&env, p, 1, &s, &err) == ML_OK && isnan(s.std) && isnan(s.slope) &&
		  isnan(s.longest_gap) && s.q[0] == 1, "one point: undefined figures are NaN");
	CHECK(ts_summarize(&env, p, 0, &s, &err) == ML_ERR_DATA, "no points is ML_ERR_DATA");
}

int
main(void)
{
	test_select();
	test_sort();
	test_summary();
	return mlt_done();
}
