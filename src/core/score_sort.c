/*
 * score_sort.c: the (score, positive) rows of the ranking metrics sorted
 * by score with an LSD radix sort on the score's bits (8 bits a pass,
 * passes where every row has the same digit skipped), instead of qsort:
 * the same order, several times faster on a million rows.
 */
#include "score_sort.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SORT_RADIX_BITS 8
#define SORT_BUCKETS (1 << SORT_RADIX_BITS)
#define SORT_PASSES (64 / SORT_RADIX_BITS)
/* below this, qsort is as fast and needs no histograms */
#define SORT_MIN_ROWS 256

/* qsort order of rows by score, lowest first (ties equal, -0 == +0). */
int
score_row_cmp_asc(const void *a, const void *b)
{
	double		x = ((const ScoreRow *) a)->score,
				y = ((const ScoreRow *) b)->score;

	return (x > y) - (x < y);
}

/* qsort order of rows by score, highest first. */
int
score_row_cmp_desc(const void *a, const void *b)
{
	double		x = ((const ScoreRow *) a)->score,
				y = ((const ScoreRow *) b)->score;

	return (x < y) - (x > y);
}

/*
 * An unsigned key that orders as the double v does for a non-NaN v: the
 * sign bit flipped for positives, every bit for negatives; -0 takes +0's
 * key (the comparators call them equal), and descending inverts the key.
 */
static inline uint64_t
score_key(double v, uint64_t flip)
{
	uint64_t	b;

	memcpy(&b, &v, sizeof(b));
	if (b == UINT64_C(0x8000000000000000))
		b = 0;
	b = (b >> 63) ? ~b : b | UINT64_C(0x8000000000000000);
	return b ^ flip;
}

/*
 * Counts each pass's digits in one read of the rows into hist
 * (SORT_PASSES x SORT_BUCKETS); false when a score is NaN.
 */
static bool
count_digits(const ScoreRow *rows, int64_t n, uint64_t flip, size_t *hist)
{
	int64_t		i;
	int			p;

	memset(hist, 0, sizeof(size_t) * SORT_PASSES * SORT_BUCKETS);
	for (i = 0; i < n; i++)
	{
		uint64_t	k;

		if (isnan(rows[i].score))
			return false;
		k = score_key(rows[i].score, flip);
		for (p = 0; p < SORT_PASSES; p++)
			hist[p * SORT_BUCKETS + ((k >> (p * SORT_RADIX_BITS)) & (SORT_BUCKETS - 1))]++;
	}
	return true;
}

/*
 * Sorts rows by score (see score_sort.h): LSD passes of SORT_RADIX_BITS
 * between rows and a scratch copy, each stable, so ties keep their input
 * order as in glibc's merge sort.
 */
void
score_rows_sort(const MlEnv *env, ScoreRow *rows, int64_t n, bool descending)
{
	uint64_t	flip = descending ? ~UINT64_C(0) : 0;
	size_t	   *hist;
	ScoreRow   *tmp = NULL,
			   *src = rows,
			   *dst;
	int			p;

	if (n < SORT_MIN_ROWS)
		goto fallback;
	hist = ml_alloc(env, sizeof(size_t) * SORT_PASSES * SORT_BUCKETS);
	if (hist == NULL)
		goto fallback;
	if (!count_digits(rows, n, flip, hist) ||
		(tmp = ml_alloc(env, sizeof(ScoreRow) * (size_t) n)) == NULL)
	{
		ml_free(env, hist);
		goto fallback;
	}
	ml_populate(tmp, sizeof(ScoreRow) * (size_t) n);
	dst = tmp;
	for (p = 0; p < SORT_PASSES; p++)
	{
		size_t	   *h = hist + p * SORT_BUCKETS;
		size_t		at = 0;
		int			shift = p * SORT_RADIX_BITS,
					b;
		int64_t		i;

		/* a digit every row shares leaves the order as it is */
		for (b = 0; b < SORT_BUCKETS; b++)
			if (h[b] == (size_t) n)
				break;
		if (b < SORT_BUCKETS)
			continue;
		for (b = 0; b < SORT_BUCKETS; b++)
		{
			size_t		c = h[b];

			h[b] = at;
			at += c;
		}
		for (i = 0; i < n; i++)
		{
			uint64_t	k = score_key(src[i].score, flip);

			dst[h[(k >> shift) & (SORT_BUCKETS - 1)]++] = src[i];
		}
		/* the next pass reads what this one wrote */
		dst = src;
		src = src == rows ? tmp : rows;
	}
	if (src != rows)
		memcpy(rows, src, sizeof(ScoreRow) * (size_t) n);
	ml_free(env, tmp);
	ml_free(env, hist);
	return;

fallback:
	qsort(rows, (size_t) n, sizeof(ScoreRow), descending ? score_row_cmp_desc : score_row_cmp_asc);
}
