/*
 * mlcore.h: what every src/core module shares.
 *
 * src/core is plain C with no server headers. It allocates only through the
 * MlEnv passed in, reports failures as an MlStatus plus a message in MlError,
 * and calls env->check from long loops so the caller can cancel or report
 * progress. The PostgreSQL glue maps MlStatus to SQLSTATEs (src/pg/env.c).
 */
#ifndef MLCORE_H
#define MLCORE_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum MlStatus
{
	ML_OK = 0,
	ML_ERR_PARAM,				/* bad hyper-parameter or option: 22023 */
	ML_ERR_DATA,				/* bad data: dimensions, NaN, empty: 22000 */
	ML_ERR_CORRUPT,				/* corrupt or unknown artifact: XX001 */
	ML_ERR_MEMORY,				/* allocation failed or over budget: 54000 */
	ML_ERR_INTERNAL				/* cannot happen: XX000 */
} MlStatus;

typedef struct MlError
{
	MlStatus	code;
	char		msg[512];
} MlError;

/* Sets err (first failure wins) and returns code, for `return ml_fail(...)`. */
MlStatus	ml_fail(MlError *err, MlStatus code, const char *fmt,...)
			__attribute__((format(printf, 3, 4)));

/* ML_ERR_INTERNAL "cancelled": what core returns when env->check asks it to stop. */
MlStatus	ml_fail_cancelled(MlError *err);

/*
 * Neumaier's compensated sum: adds v to (*sum, *comp); the total is
 * *sum + *comp. Long sums (means of millions of rows) keep their digits.
 */
static inline void
ml_neumaier_add(double *sum, double *comp, double v)
{
	double		t = *sum + v;

	if (fabs(*sum) >= fabs(v))
		*comp += (*sum - t) + v;
	else
		*comp += (v - t) + *sum;
	*sum = t;
}

/*
 * The caller's services. alloc returns NULL on failure (core then fails with
 * ML_ERR_MEMORY); memory is not zeroed and is aligned to at least 16 bytes
 * (core may use 16-byte vector types; the backend's env gives 64). check is called from the main thread
 * only, with no worker threads running, at least every ~100 ms of work; it
 * may not return (PostgreSQL's cancel longjmps), so core keeps no resources
 * other than env allocations, which the caller frees in bulk. A nonzero
 * return asks core to stop with ML_ERR_INTERNAL "cancelled".
 */
typedef struct MlEnv
{
	void	   *(*alloc) (void *ctx, size_t size);
	void		(*free) (void *ctx, void *ptr);
	int			(*check) (void *ctx, const char *stage, int iter, int max_iter,
						  double value);
	void	   *ctx;
	int			n_threads;		/* compute threads core may start; <=1: none */
	struct MlPool *pool;		/* persistent workers for ml_parallel_for, or NULL */
} MlEnv;

/* Allocation helpers: overflow-checked, NULL on failure. ml_calloc zeroes. */
void	   *ml_alloc(const MlEnv *env, size_t size);
void	   *ml_calloc(const MlEnv *env, size_t n, size_t size);
void		ml_free(const MlEnv *env, void *ptr);
char	   *ml_strdup(const MlEnv *env, const char *s);
int			ml_check(const MlEnv *env, const char *stage, int iter, int max_iter,
					 double value);

/*
 * Memory advice for large buffers (Linux; nothing elsewhere, and nothing
 * changes where the kernel does not honour it): ml_populate faults in a
 * buffer about to be written in full, in one system call; the other two
 * ask for (and take back) transparent 2 MB pages.
 */
void		ml_populate(void *p, size_t bytes);
void		ml_advise_huge_pages(void *p, size_t bytes);
void		ml_unadvise_huge_pages(void *p, size_t bytes);

/* Overflow-safe size arithmetic: false when a*b (or a+b) overflows. */
bool		ml_mul_size(size_t a, size_t b, size_t *out);
bool		ml_add_size(size_t a, size_t b, size_t *out);

/* Deterministic RNG (xoshiro256** seeded through splitmix64). */
typedef struct MlRng
{
	uint64_t	s[4];
} MlRng;

void		ml_rng_seed(MlRng *rng, uint64_t seed);
uint64_t	ml_rng_next(MlRng *rng);
double		ml_rng_uniform(MlRng *rng);		/* [0, 1) */
uint64_t	ml_rng_below(MlRng *rng, uint64_t n);	/* [0, n), unbiased; n > 0 */

/*
 * Worker threads for pure computation. ml_parallel_for runs fn(arg, t, nt)
 * for t in [0, nt) with nt = min(env->n_threads, max_tasks), task 0 on the
 * calling thread, the others on threads that block every signal; all are
 * done when it returns. fn must not call env->alloc or env->check. With
 * env->pool the workers are the pool's (started at its first use, then
 * waiting for the next step), else threads are started and joined per call;
 * tasks run inline when threads cannot be started. Which task runs which
 * share never depends on the threads, so results do not either.
 *
 * ml_pool_create makes a pool for up to n_threads (no thread starts until a
 * parallel step needs one; NULL when n_threads <= 1 or memory is short);
 * ml_pool_destroy stops and joins its workers and frees it. The owner of
 * the env destroys the pool when the env goes away, on error too (the
 * PostgreSQL glue does it from a memory context callback). No call may be
 * running on the pool then.
 */
typedef void (*MlTaskFn) (void *arg, int task, int n_tasks);
void		ml_parallel_for(const MlEnv *env, int max_tasks, MlTaskFn fn, void *arg);
typedef struct MlPool MlPool;
MlPool	   *ml_pool_create(int n_threads);
void		ml_pool_destroy(MlPool *pool);

/*
 * One task in the background: ml_pool_post starts fn(arg, 0, 1) on a pool
 * worker and returns at once (true), so the caller can do other work, such
 * as PostgreSQL calls, meanwhile; ml_pool_wait returns when it is done. At
 * most one posted task at a time, and no ml_parallel_for step uses the pool
 * until the wait (it starts threads of its own). Without a pool or a
 * worker the task runs inline and post returns false; wait is then a no-op.
 * ml_pool_destroy waits for a posted task too.
 */
bool		ml_pool_post(MlPool *pool, MlTaskFn fn, void *arg);
void		ml_pool_wait(MlPool *pool);

/*
 * Runs block(arg, b, slot, task) for every block b in [0, nblocks), `slab`
 * blocks at a time on up to max_tasks worker threads (blocks handed out
 * dynamically), then combine(arg, b0, b1) on the main thread in block order
 * (so results do not depend on thread timing), calling ml_check(stage, iter,
 * max_iter, value) between slabs. slot = b - b0 indexes slab-local partial
 * results. ML_ERR_INTERNAL "cancelled" when check asks to stop.
 */
typedef void (*MlBlockFn) (void *arg, int64_t b, int64_t slot, int task);
typedef void (*MlCombineFn) (void *arg, int64_t b0, int64_t b1);
MlStatus	ml_run_blocks(const MlEnv *env, int64_t nblocks, int64_t slab, int max_tasks,
						  MlBlockFn block, MlCombineFn combine, void *arg,
						  const char *stage, int iter, int max_iter, double value,
						  MlError *err);

/*
 * Per-iteration figures of a training (mlpipe.training_info): the training
 * loss, the validation loss (NaN where there is none) and the wall-clock
 * milliseconds since ml_trace_start. The arrays are env allocations grown
 * as needed; an allocation failure stops the recording (the training goes
 * on, `truncated` says so). The elapsed times never reach an artifact.
 */
typedef struct MlTrace
{
	int			n;
	int			cap;
	bool		truncated;
	double		t0_ms;
	double	   *train_loss;
	double	   *valid_loss;
	double	   *elapsed_ms;
} MlTrace;

double		ml_now_ms(void);	/* a monotonic clock, in milliseconds */
void		ml_trace_start(MlTrace *t, double t0_ms);
void		ml_trace_add(const MlEnv *env, MlTrace *t, double train_loss, double valid_loss);
void		ml_trace_free(const MlEnv *env, MlTrace *t);

#endif
