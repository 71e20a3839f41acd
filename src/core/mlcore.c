/* mlcore.c: errors, allocation helpers, RNG and worker threads for src/core. */
#include "mlcore.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

MlStatus
ml_fail(MlError *err, MlStatus code, const char *fmt,...)
{
	va_list		ap;

	if (err == NULL || err->code != ML_OK)
		return err ? err->code : code;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}

bool
ml_mul_size(size_t a, size_t b, size_t *out)
{
	if (a != 0 && b > SIZE_MAX / a)
		return false;
	*out = a * b;
	return true;
}

bool
ml_add_size(size_t a, size_t b, size_t *out)
{
	if (b > SIZE_MAX - a)
		return false;
	*out = a + b;
	return true;
}

void *
ml_alloc(const MlEnv *env, size_t size)
{
	return env->alloc(env->ctx, size == 0 ? 1 : size);
}

void *
ml_calloc(const MlEnv *env, size_t n, size_t size)
{
	size_t		total;
	void	   *p;

	if (!ml_mul_size(n, size, &total))
		return NULL;
	p = ml_alloc(env, total);
	if (p)
		memset(p, 0, total);
	return p;
}

void
ml_free(const MlEnv *env, void *ptr)
{
	if (ptr)
		env->free(env->ctx, ptr);
}

char *
ml_strdup(const MlEnv *env, const char *s)
{
	size_t		n = strlen(s) + 1;
	char	   *p = ml_alloc(env, n);

	if (p)
		memcpy(p, s, n);
	return p;
}

int
ml_check(const MlEnv *env, const char *stage, int iter, int max_iter, double value)
{
	return env->check ? env->check(env->ctx, stage, iter, max_iter, value) : 0;
}

static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t	z = (*x += UINT64_C(0x9E3779B97F4A7C15));

	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

void
ml_rng_seed(MlRng *rng, uint64_t seed)
{
	int			i;

	for (i = 0; i < 4; i++)
		rng->s[i] = splitmix64(&seed);
}

static inline uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t
ml_rng_next(MlRng *rng)
{
	uint64_t   *s = rng->s;
	uint64_t	result = rotl(s[1] * 5, 7) * 9;
	uint64_t	t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

double
ml_rng_uniform(MlRng *rng)
{
	return (ml_rng_next(rng) >> 11) * 0x1.0p-53;
}

uint64_t
ml_rng_below(MlRng *rng, uint64_t n)
{
	/* Lemire's rejection keeps the result unbiased. */
	uint64_t	threshold = (0 - n) % n;

	for (;;)
	{
		uint64_t	r = ml_rng_next(rng);

		if (r >= threshold)
			return r % n;
	}
}

typedef struct MlBlockRunner
{
	MlBlockFn	block;
	void	   *arg;
	int64_t		next;
	int64_t		b0;
	int64_t		b1;
} MlBlockRunner;

static void
ml_block_task(void *p, int task, int n_tasks)
{
	MlBlockRunner *R = p;

	(void) n_tasks;
	for (;;)
	{
		int64_t		b = __atomic_fetch_add(&R->next, 1, __ATOMIC_RELAXED);

		if (b >= R->b1)
			break;
		R->block(R->arg, b, b - R->b0, task);
	}
}

MlStatus
ml_run_blocks(const MlEnv *env, int64_t nblocks, int64_t slab, int max_tasks,
			  MlBlockFn block, MlCombineFn combine, void *arg,
			  const char *stage, int iter, int max_iter, double value, MlError *err)
{
	MlBlockRunner R;
	int64_t		b0;

	if (slab < 1)
		slab = 1;
	R.block = block;
	R.arg = arg;
	for (b0 = 0; b0 < nblocks; b0 += slab)
	{
		int64_t		b1 = b0 + slab < nblocks ? b0 + slab : nblocks;

		R.b0 = b0;
		R.b1 = b1;
		R.next = b0;
		ml_parallel_for(env, (int) (b1 - b0 < max_tasks ? b1 - b0 : max_tasks),
						ml_block_task, &R);
		if (combine)
			combine(arg, b0, b1);
		if (b1 < nblocks && ml_check(env, stage, iter, max_iter, value))
			return ml_fail_cancelled(err);
	}
	return ML_OK;
}

MlStatus
ml_fail_cancelled(MlError *err)
{
	return ml_fail(err, ML_ERR_INTERNAL, "cancelled");
}

/* A monotonic clock in milliseconds (for training traces only). */
double
ml_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec * 1000.0 + (double) ts.tv_nsec / 1e6;
}

/* An empty trace whose elapsed times count from t0_ms (keeps its buffers). */
void
ml_trace_start(MlTrace *t, double t0_ms)
{
	t->n = 0;
	t->truncated = false;
	t->t0_ms = t0_ms;
}

/* Grows t's arrays to hold cap entries; false when memory runs out. */
static bool
ml_trace_grow(const MlEnv *env, MlTrace *t, int cap)
{
	double	   *a = ml_alloc(env, sizeof(double) * (size_t) cap * 3);

	if (a == NULL)
		return false;
	if (t->n > 0)
	{
		memcpy(a, t->train_loss, sizeof(double) * t->n);
		memcpy(a + cap, t->valid_loss, sizeof(double) * t->n);
		memcpy(a + 2 * (size_t) cap, t->elapsed_ms, sizeof(double) * t->n);
	}
	ml_free(env, t->train_loss);	/* the one allocation holding all three */
	t->train_loss = a;
	t->valid_loss = a + cap;
	t->elapsed_ms = a + 2 * (size_t) cap;
	t->cap = cap;
	return true;
}

/* Appends one iteration's figures, stamped with the elapsed time. */
void
ml_trace_add(const MlEnv *env, MlTrace *t, double train_loss, double valid_loss)
{
	if (t == NULL || t->truncated)
		return;
	if (t->n == t->cap &&
		(t->cap > (1 << 26) || !ml_trace_grow(env, t, t->cap < 64 ? 64 : 2 * t->cap)))
	{
		t->truncated = true;
		return;
	}
	t->train_loss[t->n] = train_loss;
	t->valid_loss[t->n] = valid_loss;
	t->elapsed_ms[t->n] = ml_now_ms() - t->t0_ms;
	t->n++;
}

/* Frees a trace's arrays. */
void
ml_trace_free(const MlEnv *env, MlTrace *t)
{
	ml_free(env, t->train_loss);
	memset(t, 0, sizeof(*t));
}

/*
 * Faults in [p, p + bytes) now, in one system call (MADV_POPULATE_WRITE,
 * Linux 5.14), for memory about to be written in full anyway: on a VM each
 * page fault costs about 15 us, so an array filled 4 KB at a time costs
 * far more in faults than in writes. Only a hint: older kernels refuse it,
 * and the pages are then faulted in as they are written.
 */
void
ml_populate(void *p, size_t bytes)
{
#if defined(__linux__)
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
	const uintptr_t page = 4096;
	uintptr_t	start = (uintptr_t) p & ~(page - 1),
				end = ((uintptr_t) p + bytes + page - 1) & ~(page - 1);

	if (p != NULL && bytes > 0)
		(void) madvise((void *) start, end - start, MADV_POPULATE_WRITE);
#endif
}

/*
 * madvise(advice) on the whole 2 MB pages inside [p, p + bytes): the two
 * calls below differ only in the advice.
 */
#if defined(__linux__)
static void
advise_whole_huge_pages(void *p, size_t bytes, int advice)
{
	const uintptr_t huge = 2 * 1024 * 1024;
	uintptr_t	start = ((uintptr_t) p + huge - 1) & ~(huge - 1),
				end = ((uintptr_t) p + bytes) & ~(huge - 1);

	if (end > start)
		(void) madvise((void *) start, end - start, advice);
}
#endif

/*
 * Asks Linux for transparent huge pages on the whole 2 MB pages inside
 * [p, p + bytes) (when THP is in "madvise" mode, as on Debian): a matrix of
 * hundreds of MB is then faulted in 2 MB at a time instead of 4 KB, which
 * on a VM cost about a tenth of a wide k-means fit.
 */
void
ml_advise_huge_pages(void *p, size_t bytes)
{
#if defined(__linux__) && defined(MADV_HUGEPAGE)
	advise_whole_huge_pages(p, bytes, MADV_HUGEPAGE);
#endif
}

/*
 * Takes ml_advise_huge_pages's advice back: memory that goes back to
 * malloc's heap would otherwise keep 2 MB pages for whatever reuses it
 * next, rounding small arrays up to 2 MB of resident memory each.
 */
void
ml_unadvise_huge_pages(void *p, size_t bytes)
{
#if defined(__linux__) && defined(MADV_NOHUGEPAGE)
	advise_whole_huge_pages(p, bytes, MADV_NOHUGEPAGE);
#endif
}
