/*
 * split.h: choosing the test rows of a train/test split. Pure computation
 * over row labels or a split column; the glue reads params and reports.
 */
#ifndef SPLIT_H
#define SPLIT_H

#include "mlcore.h"

/*
 * Marks the test rows of a seeded split in is_test (n bytes, all set):
 * stratified when y_class is given (per class, round(test_size * count)
 * rows, at most count - 1 of a class with more than one row), random
 * otherwise (ceil(test_size * n) rows, at most n - 1, as scikit-learn's
 * train_test_split). Test rows are the first `take` of a seeded partial
 * Fisher-Yates shuffle. test_size <= 0 marks none. Fails only on memory.
 */
MlStatus	split_test_rows(const MlEnv *env, int64_t n, const int32_t *y_class, int n_classes,
							double test_size, uint64_t seed, uint8_t *is_test, int64_t *n_test,
							MlError *err);

/*
 * Time split: marks the last ceil(test_size * n) rows by time (at most
 * n - 1; equal times in row order) in is_test (n bytes, all set).
 */
MlStatus	split_test_rows_by_time(const MlEnv *env, int64_t n, const double *time,
									double test_size, uint8_t *is_test, int64_t *n_test,
									MlError *err);

/* Column split: marks rows whose flag is nonzero; returns how many. */
int64_t		split_test_rows_by_flag(int64_t n, const double *flag, uint8_t *is_test);

#endif
