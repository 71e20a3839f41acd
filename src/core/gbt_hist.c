/*
 * gbt_hist.c: gradient histograms and split search of the gbt trainer.
 * A run's histograms are shared out among the threads as pieces: whole
 * nodes (a thread then reads only its own rows) where they balance, a
 * node's feature ranges on consecutive threads where they do not (see
 * plan_run). Either way every sum is taken in the same row order whatever
 * the thread count; and the sums are exact anyway (gbt_loss.c's grids), so
 * the root's pass splits its rows between threads (gbt_hist_root): models
 * are bit-identical for 1 or N threads.
 */
#include "trees_int.h"

#include <math.h>
#include <string.h>

/*
 * Histogram building: the gradient pairs of a node's rows added into h for
 * features [q0, q1). Features go in blocks of at most HIST_BLOCK_SLOTS
 * histogram slots (8192 slots, 128 kB: L2; 2048, the L1 size, measured
 * slower): a pass over the rows per block. Each slot's sum takes the rows
 * in idx order whatever the kernel or block, so the bits do not depend on
 * them.
 */
#define HIST_BLOCK_SLOTS 8192

int			gbt_hist_vex = 1;

/*
 * The row of step k and its gradient pair; prefetches the row and pair
 * PF_DIST steps ahead (rows may straddle lines: both ends of the span).
 */
static inline uint32_t
hist_row(const Gbt *g, const TrainNode *nd, uint32_t k, int j0, int j1, v2d *v)
{
	uint32_t	r = g->idx_in_order ? k : g->idx[k];
	size_t		d = (size_t) g->d;

	if (!g->idx_in_order && k + PF_DIST < nd->end)
	{
		uint32_t	rp = g->idx[k + PF_DIST];

		__builtin_prefetch(g->B + rp * d + j0);
		__builtin_prefetch(g->B + rp * d + j1 - 1);
		__builtin_prefetch(g->gh + 2 * (size_t) rp);
	}
	*v = (v2d)
	{
		g->gh[2 * (size_t) r], g->gh[2 * (size_t) r + 1]
	};
	return r;
}

/*
 * Contiguous features [j0, j1) in the padded layout (feature j's slots at
 * j * HIST_STRIDE; gbt_hist_add_padded: measured -18% against the offset
 * table of hist_block_packed).
 */
static void
hist_block_padded(const Gbt *g, const TrainNode *nd, v2d *h, int j0, int j1)
{
	const uint8_t *B = g->B + j0;
	v2d		   *hb = h + (size_t) j0 * HIST_STRIDE;
	size_t		d = (size_t) g->d;
	int			nfb = j1 - j0;
	uint32_t	k;

	for (k = nd->begin; k < nd->end; k++)
	{
		v2d			v;
		uint32_t	r = hist_row(g, nd, k, j0, j1, &v);

		gbt_hist_add_padded(hb, B + r * d, nfb, v, g->hist_vex);
	}
}

/* Rows per task below which the root's pass runs on one thread. */
#define ROOT_TASK_ROWS 65536

/* The root's pass on several tasks: each one's histogram and sums. */
typedef struct RootRun
{
	const Gbt  *g;
	uint32_t	n;
	v2d		   *h[64];
	double		G[64];
	double		H[64];
} RootRun;

/*
 * One task's rows of the root's pass: their gradient sums and histogram
 * (the task's own, zeroed here), rows in order.
 */
static void
root_task(void *arg, int task, int n_tasks)
{
	RootRun    *rr = arg;
	const Gbt  *g = rr->g;
	const uint8_t *B = g->B;
	const float *gh = g->gh;
	v2d		   *h = rr->h[task];
	size_t		d = (size_t) g->d;
	double		Gs = 0,
				Hs = 0;
	uint32_t	k = (uint32_t) ((uint64_t) rr->n * task / n_tasks),
				k1 = (uint32_t) ((uint64_t) rr->n * (task + 1) / n_tasks);

	memset(h, 0, sizeof(v2d) * g->slots);
	for (; k < k1; k++)
	{
		float		gk = gh[2 * (size_t) k],
					hk = gh[2 * (size_t) k + 1];
		v2d			v = {gk, hk};

		Gs += gk;
		Hs += hk;
		gbt_hist_add_padded(h, B + k * d, g->d, v, g->hist_vex);
	}
	rr->G[task] = Gs;
	rr->H[task] = Hs;
}

/*
 * Adds histogram src into dst, every feature's used slots: the per-thread
 * histograms of a pass split by rows (exact sums, so any order of adding).
 */
void
gbt_hist_add(const Gbt *g, v2d *dst, const v2d *src)
{
	int			j;
	uint32_t	k;

	for (j = 0; j < g->d; j++)
		for (k = g->off[j]; k <= g->off[j] + g->nb[j]; k++)
			dst[k] += src[k];
}

/*
 * The root's gradient sums and histogram h in one pass over rows 0..n-1
 * (idx in order, the padded layout, every feature, one block), the gradient
 * pairs read once. On several threads each task takes a range of rows into
 * a histogram of its own (task 0 into h, the others into free pool buffers,
 * which stay free), added up after: the sums are exact (gbt_loss.c's
 * grids), so the bits of one pass. False (nothing done) where those
 * conditions do not hold.
 */
bool
gbt_hist_root(const Gbt *g, uint32_t n, v2d *h, double *G, double *H)
{
	RootRun		rr;
	int			nt = (int) (n / ROOT_TASK_ROWS) + 1,
				t;

	if (!g->idx_in_order || !g->padded || !g->all_feat || g->slots > HIST_BLOCK_SLOTS)
		return false;
	nt = nt < g->nt ? nt : g->nt;
	nt = nt <= g->n_free + 1 ? nt : g->n_free + 1;
	rr.g = g;
	rr.n = n;
	rr.h[0] = h;
	for (t = 1; t < nt; t++)
		rr.h[t] = g->pool + (size_t) g->free_list[g->n_free - t] * g->slots;
	trees_run_tasks(g->env, nt, root_task, &rr);
	*G = rr.G[0];
	*H = rr.H[0];
	for (t = 1; t < nt; t++)
	{
		*G += rr.G[t];
		*H += rr.H[t];
		gbt_hist_add(g, h, rr.h[t]);
	}
	return true;
}

/* Contiguous features [j0, j1) in the packed layout (offsets g->off). */
static void
hist_block_packed(const Gbt *g, const TrainNode *nd, v2d *h, int j0, int j1)
{
	const uint8_t *B = g->B + j0;
	v2d		   *hb = h + g->off[j0];
	size_t		d = (size_t) g->d;
	int			nfb = j1 - j0,
				j;
	uint32_t	rel[HIST_BLOCK_SLOTS],
				k;

	for (j = 0; j < nfb; j++)
		rel[j] = g->off[j0 + j] - g->off[j0];
	for (k = nd->begin; k < nd->end; k++)
	{
		v2d			v;
		uint32_t	r = hist_row(g, nd, k, j0, j1, &v);
		const uint8_t *row = B + r * d;

		for (j = 0; j + 4 <= nfb; j += 4)
		{
			v2d		   *p0 = hb + rel[j] + row[j];
			v2d		   *p1 = hb + rel[j + 1] + row[j + 1];
			v2d		   *p2 = hb + rel[j + 2] + row[j + 2];
			v2d		   *p3 = hb + rel[j + 3] + row[j + 3];

			*p0 += v;
			*p1 += v;
			*p2 += v;
			*p3 += v;
		}
		for (; j < nfb; j++)
			hb[rel[j] + row[j]] += v;
	}
}

/* The tree's features g->feat[qa, qb) (a column sample), any layout. */
static void
hist_block_sampled(const Gbt *g, const TrainNode *nd, v2d *h, int qa, int qb)
{
	const uint32_t *off = g->off;
	const int  *feat = g->feat;
	size_t		d = (size_t) g->d;
	uint32_t	k;

	for (k = nd->begin; k < nd->end; k++)
	{
		v2d			v;
		uint32_t	r = hist_row(g, nd, k, feat[qa], feat[qa] + 1, &v);
		const uint8_t *row = g->B + r * d;
		int			q;

		for (q = qa; q < qb; q++)
		{
			int			j = feat[q];

			h[off[j] + row[j]] += v;
		}
	}
}

/*
 * Builds node nd's histogram in h for the tree's features [q0, q1), block
 * by block (a block: features whose used slots, bins + 1 each, fit in
 * HIST_BLOCK_SLOTS).
 */
static void
build_hist(const Gbt *g, const TrainNode *nd, v2d *h, int q0, int q1)
{
	int			qa = q0;

	while (qa < q1)
	{
		int			qb = qa + 1;
		uint32_t	used = g->nb[g->feat[qa]] + 1;

		while (qb < q1 && used + g->nb[g->feat[qb]] + 1 <= HIST_BLOCK_SLOTS)
			used += g->nb[g->feat[qb++]] + 1;
		if (!g->all_feat)
			hist_block_sampled(g, nd, h, qa, qb);
		else if (g->padded)
			hist_block_padded(g, nd, h, qa, qb);
		else
			hist_block_packed(g, nd, h, qa, qb);
		qa = qb;
	}
}

/* Whether split a beats b: higher gain, then lower feature, then lower bin. */
static inline bool
split_better(const Split *a, const Split *b)
{
	if (a->gain != b->gain)
		return a->gain > b->gain;
	if (a->feature != b->feature)
		return a->feature < b->feature;
	return a->bin < b->bin;
}

/* Best split of a node over features [q0, q1) of its histogram. */
static void
eval_node(const Gbt *g, const TrainNode *nd, const v2d *h, int q0, int q1, Split *best)
{
	double		G = nd->grad_sum,
				H = nd->hess_sum,
				lam = g->lambda,
				mcw = g->mcw;
	double		parent = G * G / (H + lam);
	int			q;

	best->gain = -INFINITY;
	best->feature = INT32_MAX;
	best->bin = 0;
	best->dl = 0;
	best->GL = best->HL = 0;
	for (q = q0; q < q1; q++)
	{
		int			j = g->feat[q];
		const v2d  *hj = h + g->off[j];
		int			nbj = g->nb[j];
		double		mg = hj[nbj][0],
					mh = hj[nbj][1];
		bool		has_miss = mh > 0;
		double		GL = 0,
					HL = 0;
		int			b;

		for (b = 0; b < nbj; b++)
		{
			double		GR,
						HR,
						gain;

			GL += hj[b][0];
			HL += hj[b][1];
			if (b == nbj - 1 && !has_miss)
				break;
			/* missing goes right */
			GR = G - GL;
			HR = H - HL;
			if (HL >= mcw && HR >= mcw && HL > 0 && HR > 0)
			{
				gain = GL * GL / (HL + lam) + GR * GR / (HR + lam) - parent;
				if (gain > best->gain || (gain == best->gain && j < best->feature))
				{
					best->gain = gain;
					best->feature = j;
					best->bin = b;
					best->dl = has_miss ? 0 : (HL >= HR);
					best->GL = GL;
					best->HL = HL;
				}
			}
			/* missing goes left */
			if (has_miss && b < nbj - 1)
			{
				double		GL2 = GL + mg,
							HL2 = HL + mh;

				GR = G - GL2;
				HR = H - HL2;
				if (HL2 >= mcw && HR >= mcw && HR > 0)
				{
					gain = GL2 * GL2 / (HL2 + lam) + GR * GR / (HR + lam) - parent;
					if (gain > best->gain || (gain == best->gain && j < best->feature))
					{
						best->gain = gain;
						best->feature = j;
						best->bin = b;
						best->dl = 1;
						best->GL = GL2;
						best->HL = HL2;
					}
				}
			}
		}
	}
}

/*
 * The histogram of job jb over features [q0, q1): the smaller child's
 * built from its rows (unless the fused move pass built it), the larger
 * one (if any) derived in the parent's buffer.
 */
static void
run_job(const Gbt *g, const GbtJob *jb, int q0, int q1)
{
	const TrainNode *s = &g->tn[jb->small];
	v2d		   *hs = g->pool + (size_t) s->hist * g->slots;
	int			q;

	if (!jb->built)
	{
		for (q = q0; q < q1; q++)
		{
			int			j = g->feat[q];

			memset(hs + g->off[j], 0, sizeof(v2d) * (g->nb[j] + 1));
		}
		build_hist(g, s, hs, q0, q1);
	}
	if (jb->large >= 0)
	{
		v2d		   *hl = g->pool + (size_t) g->tn[jb->large].hist * g->slots;

		for (q = q0; q < q1; q++)
		{
			int			j = g->feat[q];
			uint32_t	x,
						x1 = g->off[j] + g->nb[j] + 1;

			for (x = g->off[j]; x < x1; x++)
				hl[x] -= hs[x];
		}
	}
}

/*
 * The plan of a run. Jobs are laid end to end in job_order, each as nf
 * pieces (one per feature), so a piece is position * nf + feature, and task
 * t builds pieces [task_end[t - 1], task_end[t]): whole jobs (reading only
 * their own rows), or a feature range of a job shared with the next task
 * (each task then passes over that job's rows). Cost model, in histogram
 * additions: PLAN_ROW_COST per row for a pass over a job's rows (the row's
 * cache line, its gradient pair, its index), plus per feature one addition
 * per row and PLAN_FEATURE_COST for its slots (clearing, subtracting, the
 * split search). Runs cheaper than PLAN_MIN_PARALLEL go on one task.
 */
#define PLAN_ROW_COST 8
#define PLAN_FEATURE_COST 512
#define PLAN_MIN_PARALLEL 65536
#define PLAN_MAX_TASKS 64		/* Gbt.nt is at most this */
#define PLAN_MAX_JOBS 256		/* beyond, jobs are only cut end to end */

/* Rows of job e's histogram (the smaller child's) still to add: none when built. */
static uint64_t
job_rows(const Gbt *g, int e)
{
	const TrainNode *s = &g->tn[g->jobs[e].small];

	return g->jobs[e].built ? 0 : s->end - s->begin;
}

/* Cost of features [qa, qb) of the job at position k of job_order. */
static uint64_t
piece_cost(const Gbt *g, int k, int qa, int qb)
{
	uint64_t	r = job_rows(g, g->job_order[k]);

	return qb <= qa ? 0 : r * PLAN_ROW_COST + (uint64_t) (qb - qa) * (r + PLAN_FEATURE_COST);
}

/* Cost of pieces [lo, hi) of the plan. */
static uint64_t
plan_range_cost(const Gbt *g, uint64_t lo, uint64_t hi)
{
	uint64_t	cost = 0,
				x = lo;

	while (x < hi)
	{
		int			k = (int) (x / g->nf),
					qa = (int) (x % g->nf),
					qb = hi - (uint64_t) k * g->nf < (uint64_t) g->nf ?
		(int) (hi - (uint64_t) k * g->nf) : g->nf;

		cost += piece_cost(g, k, qa, qb);
		x = (uint64_t) k * g->nf + qb;
	}
	return cost;
}

/*
 * Cuts job_order into nt consecutive shares of about `target` each (a job
 * that crosses a share's end is cut between features); the last task takes
 * the rest. Returns the cost of the busiest task.
 */
static uint64_t
plan_wrap(Gbt *g, int nt, uint64_t target)
{
	uint64_t	load = 0,
				most = 0,
				prev = 0;
	int			k = 0,
				q = 0,
				t = 0;

	while (t < nt - 1 && k < g->n_jobs)
	{
		uint64_t	r = job_rows(g, g->job_order[k]),
					rest = piece_cost(g, k, q, g->nf);
		int64_t		room = (int64_t) target - (int64_t) load - (int64_t) (r * PLAN_ROW_COST);
		int			f = room <= 0 ? 0 : (int) ((room + (r + PLAN_FEATURE_COST) / 2) /
											 (r + PLAN_FEATURE_COST));

		if (load + rest <= target || f >= g->nf - q)
		{
			load += rest;		/* the rest of the job fits (or nearly) */
			k++;
			q = 0;
			if (load < target)
				continue;
		}
		else
			q += f;				/* f features here, the others in the next task */
		g->task_end[t++] = (uint64_t) k * g->nf + q;
		load = 0;
	}
	for (; t < nt; t++)
		g->task_end[t] = (uint64_t) g->n_jobs * g->nf;
	for (t = 0; t < nt; t++)
	{
		uint64_t	c = plan_range_cost(g, prev, g->task_end[t]);

		most = c > most ? c : most;
		prev = g->task_end[t];
	}
	return most;
}

/*
 * Whole jobs only: the job at each position of job_order (most rows first)
 * to the least loaded task, into task[position]. Returns the busiest
 * task's cost.
 */
static uint64_t
plan_whole(Gbt *g, int nt, int *task)
{
	uint64_t	load[PLAN_MAX_TASKS] = {0},
				most = 0;
	int			k,
				t;

	for (k = 0; k < g->n_jobs; k++)
	{
		int			least = 0;

		for (t = 1; t < nt; t++)
			if (load[t] < load[least])
				least = t;
		task[k] = least;
		load[least] += piece_cost(g, k, 0, g->nf);
	}
	for (t = 0; t < nt; t++)
		most = load[t] > most ? load[t] : most;
	return most;
}

/*
 * Plans the run on nt tasks (fills job_order, task_end and eval_job): the
 * better of cutting the jobs laid end to end into even shares and of whole
 * jobs per task. Which task builds which piece never changes a sum: a
 * histogram slot is built by one task in row order either way.
 */
static void
plan_run(Gbt *g, int nt)
{
	int			k,
				e;
	uint64_t	total = 0,
				target,
				wrap,
				whole;

	for (k = 0; k < g->n_jobs; k++)
	{
		int			v = k;

		/* insertion sort, most rows first */
		for (e = k; e > 0 && job_rows(g, g->job_order[e - 1]) < job_rows(g, v); e--)
			g->job_order[e] = g->job_order[e - 1];
		g->job_order[e] = v;
	}
	for (k = 0; k < g->n_eval; k++)
	{
		g->eval_job[k] = -1;
		for (e = 0; e < g->n_jobs; e++)
			if (g->jobs[e].small == g->eval[k] || g->jobs[e].large == g->eval[k])
				g->eval_job[k] = e;
	}
	if (nt == 1)
	{
		g->task_end[0] = (uint64_t) g->n_jobs * g->nf;
		return;
	}
	for (k = 0; k < g->n_jobs; k++)
		total += piece_cost(g, k, 0, g->nf);
	target = (total + nt - 1) / nt;
	wrap = plan_wrap(g, nt, target);
	/* again, with the target raised by the passes the cuts added */
	wrap = plan_wrap(g, nt, target + (wrap > target ? (wrap - target) / nt : 0));
	if (g->n_jobs >= nt && g->n_jobs <= PLAN_MAX_JOBS)
	{
		int			task[PLAN_MAX_JOBS],
					order[PLAN_MAX_JOBS],
					t,
					w = 0;

		whole = plan_whole(g, nt, task);
		if (whole > wrap)
			return;
		/* whole jobs: regroup job_order task by task */
		for (t = 0; t < nt; t++)
		{
			for (k = 0; k < g->n_jobs; k++)
				if (task[k] == t)
					order[w++] = g->job_order[k];
			g->task_end[t] = (uint64_t) w * g->nf;
		}
		memcpy(g->job_order, order, sizeof(int) * g->n_jobs);
	}
}

/*
 * One task's share of the run: its pieces (a job's features [qa, qb):
 * their histogram, then the split search over them for the evaluations
 * that read that job's histograms), then its even share of the features of
 * evaluations whose histograms were built before the run. Each result goes
 * to the task's own slot of the evaluation.
 */
static void
gbt_task(void *arg, int task, int n_tasks)
{
	Gbt		   *g = arg;
	uint64_t	x = task > 0 ? g->task_end[task - 1] : 0,
				hi = g->task_end[task];
	int			q0 = (int) ((int64_t) g->nf * task / n_tasks),
				q1 = (int) ((int64_t) g->nf * (task + 1) / n_tasks),
				k;

	while (x < hi)
	{
		int			pos = (int) (x / g->nf),
					qa = (int) (x % g->nf),
					qb = hi - (uint64_t) pos * g->nf < (uint64_t) g->nf ?
		(int) (hi - (uint64_t) pos * g->nf) : g->nf,
					e = g->job_order[pos];

		run_job(g, &g->jobs[e], qa, qb);
		for (k = 0; k < g->n_eval; k++)
			if (g->eval_job[k] == e)
				eval_node(g, &g->tn[g->eval[k]],
						  g->pool + (size_t) g->tn[g->eval[k]].hist * g->slots, qa, qb,
						  &g->task_split[(size_t) k * n_tasks + task]);
		x = (uint64_t) pos * g->nf + qb;
	}
	for (k = 0; k < g->n_eval; k++)
		if (g->eval_job[k] < 0)
			eval_node(g, &g->tn[g->eval[k]],
					  g->pool + (size_t) g->tn[g->eval[k]].hist * g->slots, q0, q1,
					  &g->task_split[(size_t) k * n_tasks + task]);
}

/*
 * Runs the queued histogram jobs and split evaluations on up to g->nt
 * tasks, then reduces each evaluation's per-task results (higher gain,
 * then lower feature, then lower bin: what one task scanning every feature
 * in order finds).
 */
void
gbt_run(Gbt *g)
{
	int			nt = g->nt,
				k,
				t;
	uint64_t	total = 0;

	if (g->n_jobs == 0 && g->n_eval == 0)
		return;
	for (k = 0; k < g->n_jobs; k++)
		total += job_rows(g, k) * (uint64_t) (g->nf + PLAN_ROW_COST);
	if (total < PLAN_MIN_PARALLEL || nt < 1)
		nt = 1;
	plan_run(g, nt);
	for (k = 0; k < g->n_eval * nt; k++)
	{
		Split	   *s = &g->task_split[k];

		memset(s, 0, sizeof(*s));	/* no split: what eval_node starts from */
		s->gain = -INFINITY;
		s->feature = INT32_MAX;
	}
	trees_run_tasks(g->env, nt, gbt_task, g);
	for (k = 0; k < g->n_eval; k++)
	{
		Split	   *best = &g->task_split[(size_t) k * nt];

		for (t = 1; t < nt; t++)
			if (split_better(&g->task_split[(size_t) k * nt + t], best))
				best = &g->task_split[(size_t) k * nt + t];
		g->split[g->eval[k]] = *best;
		g->tn[g->eval[k]].evaluated = 1;
	}
	g->n_jobs = 0;
	g->n_eval = 0;
}
