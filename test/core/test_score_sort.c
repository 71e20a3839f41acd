/*
 * test_score_sort.c: the radix sort of the ranking metrics' rows
 * (src/core/score_sort.c) gives, bit for bit, the order of a stable sort
 * with the qsort comparators it replaces (glibc's qsort is a stable merge
 * sort): ties in input order, -0 and +0 as equal, negatives, infinities,
 * subnormals, many ties and few; NaN and short inputs take qsort itself.
 * With MLPIPE_SORT_BENCH=1 it also times 1M rows against qsort (thread
 * CPU clock).
 * Prints TAP; exits non-zero on failure.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <time.h>

#include "mltest.h"
#include "score_sort.h"

/* A row and its input position: the reference's tie-break (stability). */
typedef struct RefRow
{
	ScoreRow	row;
	int64_t		at;
} RefRow;

static bool ref_descending;

/* The comparator under test, then the input position. */
static int
ref_cmp(const void *a, const void *b)
{
	const RefRow *x = a,
			   *y = b;
	int			c = ref_descending ? score_row_cmp_desc(&x->row, &y->row) :
		score_row_cmp_asc(&x->row, &y->row);

	return c ? c : (x->at > y->at) - (x->at < y->at);
}

/* A score of the given kind: probabilities with ties, signed values, specials. */
static double
make_score(MlRng *rng, int kind)
{
	uint64_t	u = ml_rng_next(rng);
	double		v;

	switch (kind)
	{
		case 0:					/* sigmoid of a margin: distinct probabilities */
			return 1.0 / (1.0 + exp(-((double) (u >> 11) / 9007199254740992.0 * 16 - 8)));
		case 1:					/* 50 distinct values: long ties */
			return (double) (u % 50) / 49.0;
		case 2:					/* signed, every magnitude, specials */
			switch (u % 16)
			{
				case 0:
					return 0.0;
				case 1:
					return -0.0;
				case 2:
					return INFINITY;
				case 3:
					return -INFINITY;
				case 4:
					return DBL_MIN / 8 * (double) (u >> 40);	/* subnormal */
				case 5:
					return -DBL_MAX;
				default:
					memcpy(&v, &u, sizeof(v));
					return isnan(v) ? 1.5 : v;
			}
		default:				/* everything equal */
			return 0.25;
	}
}

/* Sorts n rows of the kind both ways and compares with the stable reference. */
static void
check_kind(int64_t n, int kind, bool with_nan)
{
	MlEnv		env = mlt_env(1);
	ScoreRow   *rows = malloc(sizeof(ScoreRow) * (size_t) n);
	ScoreRow   *plain = malloc(sizeof(ScoreRow) * (size_t) n);
	RefRow	   *ref = malloc(sizeof(RefRow) * (size_t) n);
	MlRng		rng;
	int			dir;

	ml_rng_seed(&rng, (uint64_t) (n * 31 + kind));
	for (dir = 0; dir < 2; dir++)
	{
		int64_t		i,
					bad = -1;

		for (i = 0; i < n; i++)
		{
			rows[i].score = make_score(&rng, kind);
			rows[i].pos = (uint8_t) (ml_rng_next(&rng) & 1);
			if (with_nan && i % 97 == 5)
				rows[i].score = NAN;
			ref[i].row = plain[i] = rows[i];
			ref[i].at = i;
		}
		score_rows_sort(&env, rows, n, dir == 1);
		if (with_nan)
		{
			/* the fallback: qsort itself */
			qsort(plain, (size_t) n, sizeof(ScoreRow), dir ? score_row_cmp_desc : score_row_cmp_asc);
			for (i = 0; i < n && bad < 0; i++)
				if (memcmp(&rows[i].score, &plain[i].score, sizeof(double)) != 0 ||
					rows[i].pos != plain[i].pos)
					bad = i;
			CHECK(bad < 0, "%lld rows of kind %d with NaN, %s: qsort's order (first difference %lld)",
				  (long long) n, kind, dir ? "descending" : "ascending", (long long) bad);
			continue;
		}
		ref_descending = dir == 1;
		qsort(ref, (size_t) n, sizeof(RefRow), ref_cmp);
		for (i = 0; i < n && bad < 0; i++)
			if (memcmp(&rows[i].score, &ref[i].row.score, sizeof(double)) != 0 ||
				rows[i].pos != ref[i].row.pos)
				bad = i;
		CHECK(bad < 0, "%lld rows of kind %d, %s: the stable comparator order bit for bit (first difference %lld)",
			  (long long) n, kind, dir ? "descending" : "ascending", (long long) bad);
	}
	free(rows);
	free(plain);
	free(ref);
}

/* Times 1M sigmoid scores: the radix sort against qsort (MLPIPE_SORT_BENCH). */
static void
bench_sort(void)
{
	MlEnv		env = mlt_env(1);
	int64_t		n = 1000000,
				i;
	ScoreRow   *src = malloc(sizeof(ScoreRow) * n),
			   *rows = malloc(sizeof(ScoreRow) * n);
	MlRng		rng;
	double		best_r = 1e9,
				best_q = 1e9;
	int			rep;

	ml_rng_seed(&rng, 7);
	for (i = 0; i < n; i++)
	{
		src[i].score = make_score(&rng, 0);
		src[i].pos = (uint8_t) (i & 1);
	}
	for (rep = 0; rep < 5; rep++)
	{
		double		t0;

		memcpy(rows, src, sizeof(ScoreRow) * n);
		t0 = mlt_cpu_now();
		score_rows_sort(&env, rows, n, rep & 1);
		best_r = fmin(best_r, mlt_cpu_now() - t0);
		memcpy(rows, src, sizeof(ScoreRow) * n);
		t0 = mlt_cpu_now();
		qsort(rows, n, sizeof(ScoreRow), (rep & 1) ? score_row_cmp_desc : score_row_cmp_asc);
		best_q = fmin(best_q, mlt_cpu_now() - t0);
	}
	printf("# 1M rows: radix %.4f s, qsort %.4f s (best of 5, thread CPU)\n", best_r, best_q);
	free(src);
	free(rows);
}

int
main(void)
{
	int			kind;

	if (getenv("MLPIPE_SORT_BENCH"))
		bench_sort();
	for (kind = 0; kind < 4; kind++)
	{
		check_kind(200000, kind, false);
		check_kind(1000, kind, false);
		check_kind(100, kind, false);	/* under SORT_MIN_ROWS: qsort */
		check_kind(5000, kind, true);
	}
	return mlt_done();
}
