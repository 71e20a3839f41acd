/*
 * mltest.h: the smallest test harness for src/core unit tests.
 * Each binary prints "ok"/"not ok" lines (TAP) and exits non-zero on failure.
 */
#ifndef MLTEST_H
#define MLTEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "mlcore.h"

static int	mlt_run = 0;
static int	mlt_failed = 0;

#define CHECK(cond, ...) do { \
	mlt_run++; \
	if (cond) printf("ok %d - ", mlt_run); \
	else { mlt_failed++; printf("not ok %d - %s:%d: ", mlt_run, __FILE__, __LINE__); } \
	printf(__VA_ARGS__); printf("\n"); \
} while (0)

static inline int
mlt_done(void)
{
	printf("1..%d\n", mlt_run);
	return mlt_failed ? 1 : 0;
}

/* An MlEnv over malloc/free, with an optional thread count. */
static void *mlt_alloc(void *ctx, size_t n) { (void) ctx; return malloc(n); }
static void mlt_free(void *ctx, void *p) { (void) ctx; free(p); }
static int mlt_check(void *ctx, const char *s, int i, int m, double v)
{ (void) ctx; (void) s; (void) i; (void) m; (void) v; return 0; }

static inline MlEnv
mlt_env(int threads)
{
	MlEnv		env = {mlt_alloc, mlt_free, mlt_check, NULL, threads};

	return env;
}

/* This thread's CPU seconds (the timing modes of the tests and CLIs). */
static inline double
mlt_cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

#endif
