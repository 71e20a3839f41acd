/*
 * score_sort.h: sorting (score, positive) rows by score for the ranking
 * metrics (roc_auc, average precision, the threshold curves), by an LSD
 * radix sort on the score's bit pattern that gives the order glibc's
 * qsort (a stable merge sort) gives with the metrics' comparators.
 */
#ifndef SCORE_SORT_H
#define SCORE_SORT_H

#include "mlcore.h"

#include <stdbool.h>

/* One scored row: its score and whether it is a positive (0 or 1). */
typedef struct ScoreRow
{
	double		score;
	uint8_t		pos;
} ScoreRow;

/*
 * Sorts rows[0..n) by score, ascending or descending, stably (rows of
 * equal score keep their order; -0 and +0 are equal, as to the
 * comparators). Falls back to qsort with the same comparator when a score
 * is NaN (whose order is the comparator's business) or the scratch cannot
 * be allocated; the order is then qsort's.
 */
void		score_rows_sort(const MlEnv *env, ScoreRow *rows, int64_t n, bool descending);

/* The qsort comparators the sort reproduces (the tests' reference). */
int			score_row_cmp_asc(const void *a, const void *b);
int			score_row_cmp_desc(const void *a, const void *b);

#endif
