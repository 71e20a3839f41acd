/*
 * mlthreads.c: worker threads for src/core. ml_parallel_for runs one
 * parallel step, either on threads started and joined for that step or on
 * the persistent workers of an MlPool (a gbt fit runs thousands of short
 * steps: per-step thread starts cost more than the steps' work on small
 * nodes). Pool workers spin briefly after a step, then sleep on a condition
 * variable until the next one is posted; every worker blocks all signals,
 * so the server's handlers stay on the main thread.
 */
#include "mlcore.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define ML_MAX_THREADS 64

/*
 * Rounds a thread polls (pausing, yielding every 64th) before it sleeps:
 * tens of microseconds, longer than the serial gap between most steps of a
 * fit. test_threads prints the cost of a step: on the loaded 2-core
 * machine 17-41 us with the pool against 130-200 us starting threads.
 */
#define ML_SPIN_ROUNDS 2000

/* One pool worker: its thread and the task posted to it. */
typedef struct MlWorker
{
	pthread_t	thread;
	struct MlPool *pool;
	MlTaskFn	fn;				/* the posted task (set before posted moves) */
	void	   *arg;
	int			task;
	int			n_tasks;
	uint32_t	posted;			/* steps posted to it; moves under pool->mutex */
	uint32_t	done;			/* steps it finished; moves under pool->mutex */
} MlWorker;

struct MlPool
{
	int			n_workers;		/* workers it may have: n_threads - 1 */
	int			n_started;		/* threads running (started at first use) */
	bool		start_failed;	/* a start failed: the others run inline */
	bool		stop;			/* workers exit at their next wake-up */
	int			busy;			/* a step is running (nested calls go without it) */
	bool		main_sleeping;	/* the caller waits on done_cv */
	bool		posted_async;	/* worker 0 runs a task of ml_pool_post */
	pthread_mutex_t mutex;
	pthread_cond_t post_cv;		/* a step was posted (or stop) */
	pthread_cond_t done_cv;		/* a worker finished its task */
	MlWorker	workers[];		/* n_workers of them */
};

#ifdef ML_THREAD_STATS
/*
 * Measurement build only (-DML_THREAD_STATS, e.g. test/core/trees_cli):
 * per task function, the steps, their tasks' thread CPU seconds in all, the
 * CPU of each step's slowest task summed (what the steps cost on idle
 * cores) and the steps' wall time. ml_thread_stats_print writes them.
 */
#include <stdio.h>
#include <time.h>

typedef struct MlStepStats
{
	MlTaskFn	fn;
	long		steps;
	double		cpu;
	double		cpu_max;
	double		wall;
} MlStepStats;

static MlStepStats ml_stats[32];
static double ml_task_cpu[ML_MAX_THREADS];

/* The calling thread's CPU seconds. */
static double
ml_thread_cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The wall clock in seconds. */
static double
ml_wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Runs task `task` of a step, its thread CPU into ml_task_cpu. */
static void
ml_timed_task(MlTaskFn fn, void *arg, int task, int nt)
{
	double		c0 = ml_thread_cpu();

	fn(arg, task, nt);
	ml_task_cpu[task] = ml_thread_cpu() - c0;
}

/* Adds a finished step of nt tasks that took `wall` seconds. */
static void
ml_stats_add(MlTaskFn fn, int nt, double wall)
{
	int			i,
				t;
	double		mx = 0;

	for (i = 0; i < 31 && ml_stats[i].fn && ml_stats[i].fn != fn; i++)
		;
	ml_stats[i].fn = fn;
	ml_stats[i].steps++;
	ml_stats[i].wall += wall;
	for (t = 0; t < nt; t++)
	{
		ml_stats[i].cpu += ml_task_cpu[t];
		if (ml_task_cpu[t] > mx)
			mx = ml_task_cpu[t];
	}
	ml_stats[i].cpu_max += mx;
}

void		ml_thread_stats_print(FILE *out);

/* Writes the step figures (task functions by address: resolve with nm). */
void
ml_thread_stats_print(FILE *out)
{
	int			i;

	for (i = 0; i < 32 && ml_stats[i].fn; i++)
		fprintf(out, "steps fn=%p n=%ld cpu=%.3f cpu_slowest=%.3f wall=%.3f\n",
				(void *) ml_stats[i].fn, ml_stats[i].steps, ml_stats[i].cpu,
				ml_stats[i].cpu_max, ml_stats[i].wall);
}
#define ML_RUN_TASK(fn, arg, t, nt) ml_timed_task(fn, arg, t, nt)
#else
#define ML_RUN_TASK(fn, arg, t, nt) (fn) (arg, t, nt)
#endif

/*
 * Round i of a spin loop: a pause (lets a sibling hyperthread run), and
 * every 64th round a yield, so that on a machine with more runnable
 * threads than cores the thread being waited for gets the core.
 */
static inline void
ml_cpu_relax(int i)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
	if ((i & 63) == 63)
		sched_yield();
}

/* A thread that runs one task of a per-call step. */
typedef struct MlThreadArg
{
	MlTaskFn	fn;
	void	   *arg;
	int			task;
	int			n_tasks;
} MlThreadArg;

/* Entry of a per-call thread: its one task. */
static void *
ml_thread_main(void *p)
{
	MlThreadArg *a = p;

	ML_RUN_TASK(a->fn, a->arg, a->task, a->n_tasks);
	return NULL;
}

/*
 * Entry of a pool worker: waits for a posted task (spinning first, then
 * asleep), runs it, reports it done; exits when the pool stops.
 */
static void *
ml_worker_main(void *p)
{
	MlWorker   *w = p;
	MlPool	   *pool = w->pool;
	uint32_t	seen = 0;

	for (;;)
	{
		int			i;

		for (i = 0; i < ML_SPIN_ROUNDS &&
			 __atomic_load_n(&w->posted, __ATOMIC_ACQUIRE) == seen &&
			 !__atomic_load_n(&pool->stop, __ATOMIC_ACQUIRE); i++)
			ml_cpu_relax(i);
		pthread_mutex_lock(&pool->mutex);
		while (w->posted == seen && !pool->stop)
			pthread_cond_wait(&pool->post_cv, &pool->mutex);
		if (w->posted == seen)
		{
			pthread_mutex_unlock(&pool->mutex);	/* stopped */
			return NULL;
		}
		seen = w->posted;
		pthread_mutex_unlock(&pool->mutex);
		ML_RUN_TASK(w->fn, w->arg, w->task, w->n_tasks);
		pthread_mutex_lock(&pool->mutex);
		__atomic_store_n(&w->done, seen, __ATOMIC_RELEASE);
		if (pool->main_sleeping)
			pthread_cond_signal(&pool->done_cv);
		pthread_mutex_unlock(&pool->mutex);
	}
}

MlPool *
ml_pool_create(int n_threads)
{
	MlPool	   *pool;

	if (n_threads <= 1)
		return NULL;
	if (n_threads > ML_MAX_THREADS)
		n_threads = ML_MAX_THREADS;
	pool = calloc(1, sizeof(MlPool) + sizeof(MlWorker) * (size_t) (n_threads - 1));
	if (pool == NULL)
		return NULL;
	pool->n_workers = n_threads - 1;
	if (pthread_mutex_init(&pool->mutex, NULL) != 0)
	{
		free(pool);
		return NULL;
	}
	if (pthread_cond_init(&pool->post_cv, NULL) != 0)
	{
		pthread_mutex_destroy(&pool->mutex);
		free(pool);
		return NULL;
	}
	if (pthread_cond_init(&pool->done_cv, NULL) != 0)
	{
		pthread_cond_destroy(&pool->post_cv);
		pthread_mutex_destroy(&pool->mutex);
		free(pool);
		return NULL;
	}
	return pool;
}

void
ml_pool_destroy(MlPool *pool)
{
	int			t;

	if (pool == NULL)
		return;
	pthread_mutex_lock(&pool->mutex);
	__atomic_store_n(&pool->stop, true, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&pool->post_cv);
	pthread_mutex_unlock(&pool->mutex);
	for (t = 0; t < pool->n_started; t++)
		pthread_join(pool->workers[t].thread, NULL);
	pthread_cond_destroy(&pool->done_cv);
	pthread_cond_destroy(&pool->post_cv);
	pthread_mutex_destroy(&pool->mutex);
	free(pool);
}

/*
 * Starts the pool's workers up to `want` (all signals blocked in them);
 * returns how many run. A failed start is not retried.
 */
static int
ml_pool_start(MlPool *pool, int want)
{
	sigset_t	all,
				old;

	if (want > pool->n_workers)
		want = pool->n_workers;
	if (pool->n_started >= want || pool->start_failed)
		return pool->n_started < want ? pool->n_started : want;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	while (pool->n_started < want)
	{
		MlWorker   *w = &pool->workers[pool->n_started];

		w->pool = pool;
		if (pthread_create(&w->thread, NULL, ml_worker_main, w) != 0)
		{
			pool->start_failed = true;
			break;
		}
		pool->n_started++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return pool->n_started;
}

/* Waits (spinning first, then asleep) until worker w has done every task posted to it. */
static void
ml_worker_wait(MlPool *pool, MlWorker *w)
{
	int			i;

	for (i = 0; i < ML_SPIN_ROUNDS &&
		 __atomic_load_n(&w->done, __ATOMIC_ACQUIRE) != w->posted; i++)
		ml_cpu_relax(i);
	if (__atomic_load_n(&w->done, __ATOMIC_ACQUIRE) == w->posted)
		return;
	pthread_mutex_lock(&pool->mutex);
	while (w->done != w->posted)
	{
		pool->main_sleeping = true;
		pthread_cond_wait(&pool->done_cv, &pool->mutex);
		pool->main_sleeping = false;
	}
	pthread_mutex_unlock(&pool->mutex);
}

/*
 * One step on the pool: tasks 1..nt-1 posted to workers 0..nt-2 (those
 * that could not be started run inline after task 0), task 0 here, then a
 * wait (spinning first) until every posted task is done.
 */
static void
ml_pool_run(MlPool *pool, int nt, MlTaskFn fn, void *arg)
{
	int			nw = ml_pool_start(pool, nt - 1),
				t;

	pthread_mutex_lock(&pool->mutex);
	for (t = 0; t < nw; t++)
	{
		MlWorker   *w = &pool->workers[t];

		w->fn = fn;
		w->arg = arg;
		w->task = t + 1;
		w->n_tasks = nt;
		__atomic_store_n(&w->posted, w->posted + 1, __ATOMIC_RELEASE);
	}
	pthread_cond_broadcast(&pool->post_cv);
	pthread_mutex_unlock(&pool->mutex);
	ML_RUN_TASK(fn, arg, 0, nt);
	for (t = nw + 1; t < nt; t++)
		ML_RUN_TASK(fn, arg, t, nt);
	for (t = 0; t < nw; t++)
		ml_worker_wait(pool, &pool->workers[t]);
}

/* Starts fn on worker 0 and returns (mlcore.h); inline when there is none free. */
bool
ml_pool_post(MlPool *pool, MlTaskFn fn, void *arg)
{
	MlWorker   *w;

	if (pool == NULL || __atomic_exchange_n(&pool->busy, 1, __ATOMIC_ACQUIRE))
	{
		ML_RUN_TASK(fn, arg, 0, 1);
		return false;
	}
	if (ml_pool_start(pool, 1) < 1)
	{
		ML_RUN_TASK(fn, arg, 0, 1);
		__atomic_store_n(&pool->busy, 0, __ATOMIC_RELEASE);
		return false;
	}
	w = &pool->workers[0];
	pthread_mutex_lock(&pool->mutex);
	w->fn = fn;
	w->arg = arg;
	w->task = 0;
	w->n_tasks = 1;
	__atomic_store_n(&w->posted, w->posted + 1, __ATOMIC_RELEASE);
	pool->posted_async = true;
	pthread_cond_broadcast(&pool->post_cv);
	pthread_mutex_unlock(&pool->mutex);
	return true;
}

/* Waits for the task ml_pool_post started, and frees the pool for steps. */
void
ml_pool_wait(MlPool *pool)
{
	if (pool == NULL || !pool->posted_async)
		return;
	ml_worker_wait(pool, &pool->workers[0]);
	pool->posted_async = false;
	__atomic_store_n(&pool->busy, 0, __ATOMIC_RELEASE);
}

/* One step on threads started for it and joined before returning. */
static void
ml_run_unpooled(int nt, MlTaskFn fn, void *arg)
{
	pthread_t	th[ML_MAX_THREADS];
	MlThreadArg args[ML_MAX_THREADS];
	bool		started[ML_MAX_THREADS];
	sigset_t	all,
				old;
	int			t;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (t = 1; t < nt; t++)
	{
		args[t].fn = fn;
		args[t].arg = arg;
		args[t].task = t;
		args[t].n_tasks = nt;
		started[t] = pthread_create(&th[t], NULL, ml_thread_main, &args[t]) == 0;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	ML_RUN_TASK(fn, arg, 0, nt);
	for (t = 1; t < nt; t++)
	{
		if (started[t])
			pthread_join(th[t], NULL);
		else
			ML_RUN_TASK(fn, arg, t, nt);
	}
}

/* One step on nt >= 1 tasks: inline, on the pool or on threads of its own. */
static void
ml_run_step(MlPool *pool, int nt, MlTaskFn fn, void *arg)
{
	if (nt <= 1)
	{
		ML_RUN_TASK(fn, arg, 0, 1);
		return;
	}
	/* a step inside a step (or a pool too small) starts its own threads */
	if (pool && nt - 1 <= pool->n_workers &&
		!__atomic_exchange_n(&pool->busy, 1, __ATOMIC_ACQUIRE))
	{
		ml_pool_run(pool, nt, fn, arg);
		__atomic_store_n(&pool->busy, 0, __ATOMIC_RELEASE);
		return;
	}
	ml_run_unpooled(nt, fn, arg);
}

void
ml_parallel_for(const MlEnv *env, int max_tasks, MlTaskFn fn, void *arg)
{
	int			nt = env->n_threads;
#ifdef ML_THREAD_STATS
	double		w0 = ml_wall();
#endif

	if (nt > max_tasks)
		nt = max_tasks;
	if (nt > ML_MAX_THREADS)
		nt = ML_MAX_THREADS;
	if (nt < 1)
		nt = 1;
	ml_run_step(env->pool, nt, fn, arg);
#ifdef ML_THREAD_STATS
	ml_stats_add(fn, nt, ml_wall() - w0);
#endif
}
