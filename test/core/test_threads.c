/*
 * test_threads.c: ml_parallel_for with and without a persistent pool:
 * every task runs exactly once per step with the right task count, over
 * many steps (the pool's post / done hand-off), with fewer tasks than
 * workers, from inside a task (a nested step starts threads of its own),
 * and a pool that never ran a step is destroyed cleanly; ml_pool_post runs
 * its task once in the background (inline without a pool), steps during
 * it still run, and a pool destroyed with a posted task waits for it.
 */
#include "mltest.h"

#include <time.h>

#define STEPS 3000

typedef struct Counts
{
	const MlEnv *env;
	int			runs[8];
	int			bad_n;
	int			nested;
} Counts;

/* Counts its run; flags a task count other than the step's. */
static void
count_task(void *arg, int task, int n_tasks)
{
	Counts	   *c = arg;

	__atomic_fetch_add(&c->runs[task], 1, __ATOMIC_RELAXED);
	if (n_tasks != c->nested)
		__atomic_fetch_add(&c->bad_n, 1, __ATOMIC_RELAXED);
}

/* Task 0 runs a step of its own (2 tasks) on the same env. */
static void
nesting_task(void *arg, int task, int n_tasks)
{
	Counts	   *c = arg;
	Counts		inner = {c->env, {0}, 0, 2};

	if (task == 0)
	{
		ml_parallel_for(c->env, 2, count_task, &inner);
		if (inner.runs[0] == 1 && inner.runs[1] == 1 && inner.bad_n == 0)
			__atomic_fetch_add(&c->runs[7], 1, __ATOMIC_RELAXED);
	}
}

/* Wall seconds. */
static double
wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/*
 * STEPS steps of `tasks` tasks on env: each task ran STEPS times. Prints
 * the wall time per step (a diagnostic: it depends on the machine's load).
 */
static bool
steps_ok(const MlEnv *env, int tasks)
{
	Counts		c = {env, {0}, 0, tasks};
	int			i,
				t;
	double		t0 = wall_now();

	for (i = 0; i < STEPS; i++)
		ml_parallel_for(env, tasks, count_task, &c);
	printf("# %d tasks, %s: %.1f us per step\n", tasks, env->pool ? "pool" : "threads per step",
		   (wall_now() - t0) / STEPS * 1e6);
	for (t = 0; t < 8; t++)
		if (c.runs[t] != (t < tasks ? STEPS : 0))
			return false;
	return c.bad_n == 0;
}

/* Background posts: each runs once, the caller goes on, wait returns after it. */
static bool
posts_ok(MlEnv *env)
{
	Counts		c = {env, {0}, 0, 1},
				step = {env, {0}, 0, 3};
	int			i;
	bool		background = true;

	for (i = 0; i < STEPS; i++)
	{
		background &= ml_pool_post(env->pool, count_task, &c);
		if (i % 100 == 0)
			ml_parallel_for(env, 3, count_task, &step);	/* not on the busy pool */
		ml_pool_wait(env->pool);
		if (c.runs[0] != i + 1)
			return false;
	}
	return background && c.bad_n == 0 && step.runs[2] == STEPS / 100 && step.bad_n == 0;
}

int
main(void)
{
	MlEnv		plain = mlt_env(3),
				pooled = mlt_env(3),
				idle = mlt_env(4);
	Counts		c = {&pooled, {0}, 0, 2};

	pooled.pool = ml_pool_create(3);
	idle.pool = ml_pool_create(4);
	CHECK(pooled.pool != NULL && idle.pool != NULL, "pools created");
	CHECK(ml_pool_create(1) == NULL, "no pool for one thread");
	CHECK(steps_ok(&plain, 3), "per-step threads: every task once per step");
	CHECK(steps_ok(&pooled, 3), "pool: every task once per step, %d steps", STEPS);
	CHECK(steps_ok(&pooled, 2), "pool: fewer tasks than workers");
	CHECK(steps_ok(&pooled, 1), "pool: one task runs inline");
	pooled.n_threads = 5;
	CHECK(steps_ok(&pooled, 5), "more tasks than the pool has workers: threads of their own");
	pooled.n_threads = 3;
	ml_parallel_for(&pooled, 2, nesting_task, &c);
	CHECK(c.runs[7] == 1, "a step inside a pool step runs on threads of its own");
	CHECK(posts_ok(&pooled), "posted tasks run once each in the background, %d posts", STEPS);
	{
		Counts		inl = {&plain, {0}, 0, 1};

		CHECK(!ml_pool_post(NULL, count_task, &inl) && inl.runs[0] == 1,
			  "without a pool a posted task runs inline");
		ml_pool_wait(NULL);
	}
	CHECK(ml_pool_post(pooled.pool, count_task, &c), "a post left running");
	ml_pool_destroy(pooled.pool);
	CHECK(c.runs[0] == 1, "destroying the pool waited for the posted task");
	ml_pool_destroy(idle.pool);
	ml_pool_destroy(NULL);
	return mlt_done();
}
