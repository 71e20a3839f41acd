/*
 * gbt_hist.c: gradient histograms and split search of the gbt trainer.
 * Histogram building and split search run in parallel over disjoint
 * feature ranges, or, when a run has several nodes to build that share
 * out evenly, over whole nodes (each thread then reads only its own
 * rows). Either way every sum is taken in the same row order whatever the
 * thread count: models are bit-identical for 1 or N threads.
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
 * j * HIST_STRIDE): the slot offsets are constants of the unrolled loop, so
 * an update is a byte load, a load and a store (measured -18% against the
 * offset table of hist_block_packed).
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
		const uint8_t *row = B + r * d;
		v2d		   *hj = hb;
		int			j;

		for (j = 0; j + 4 <= nfb; j += 4, hj += 4 * HIST_STRIDE)
		{
			hj[row[j]] += v;
			hj[HIST_STRIDE + row[j + 1]] += v;
			hj[2 * HIST_STRIDE + row[j + 2]] += v;
			hj[3 * HIST_STRIDE + row[j + 3]] += v;
		}
		for (; j < nfb; j++, hj += HIST_STRIDE)
			hj[row[j]] += v;
	}
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
 * built from its rows, the larger one (if any) derived in the parent's
 * buffer.
 */
static void
run_job(const Gbt *g, const GbtJob *jb, int q0, int q1)
{
	const TrainNode *s = &g->tn[jb->small];
	v2d		   *hs = g->pool + (size_t) s->hist * g->slots;
	int			q;

	for (q = q0; q < q1; q++)
	{
		int			j = g->feat[q];

		memset(hs + g->off[j], 0, sizeof(v2d) * (g->nb[j] + 1));
	}
	build_hist(g, s, hs, q0, q1);
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
 * One task's share of the queued histogram jobs and split evaluations:
 * its range of features of every job (then of every evaluation), or, when
 * the run goes by node, every feature of its own jobs and of the
 * evaluations that read their histograms (its result in slot 0).
 */
static void
gbt_task(void *arg, int task, int n_tasks)
{
	Gbt		   *g = arg;
	int			q0 = (int) ((int64_t) g->nf * task / n_tasks);
	int			q1 = (int) ((int64_t) g->nf * (task + 1) / n_tasks);
	int			k;

	if (g->by_node)
	{
		for (k = 0; k < g->n_jobs; k++)
			if (g->job_task[k] == task)
				run_job(g, &g->jobs[k], 0, g->nf);
		for (k = 0; k < g->n_eval; k++)
		{
			const TrainNode *nd = &g->tn[g->eval[k]];

			if (g->eval_task[k] == task)
				eval_node(g, nd, g->pool + (size_t) nd->hist * g->slots, 0, g->nf,
						  &g->task_split[(size_t) k * n_tasks]);
		}
		return;
	}
	for (k = 0; k < g->n_jobs; k++)
		run_job(g, &g->jobs[k], q0, q1);
	for (k = 0; k < g->n_eval; k++)
	{
		const TrainNode *nd = &g->tn[g->eval[k]];

		eval_node(g, nd, g->pool + (size_t) nd->hist * g->slots, q0, q1,
				  &g->task_split[(size_t) k * n_tasks + task]);
	}
}

/*
 * Whether the queued run may go by node on nt tasks, and the plan: jobs,
 * largest first, to the task with the fewest rows so far; an evaluation to
 * the task of the job that makes its histogram. Only when the busiest task
 * gets at most an eighth more rows than an even share (otherwise feature
 * ranges balance better). Either way every histogram sum and every split
 * is the same as on one thread: a node's histogram is built in row order
 * by one task, or per feature in row order by several.
 */
static bool
plan_by_node(Gbt *g, int nt)
{
	uint64_t	total = 0,
				most = 0;
	int			k,
				t,
				e;

	if (nt < 2 || g->n_jobs < nt)
		return false;
	for (t = 0; t < nt; t++)
		g->task_load[t] = 0;
	for (k = 0; k < g->n_jobs; k++)
		g->job_task[k] = -1;
	for (k = 0; k < g->n_jobs; k++)
	{
		int			big = -1,
					least = 0;
		uint64_t	rows_big = 0;

		for (e = 0; e < g->n_jobs; e++)
		{
			const TrainNode *s = &g->tn[g->jobs[e].small];
			uint64_t	rows = s->end - s->begin;

			if (g->job_task[e] < 0 && (big < 0 || rows > rows_big))
			{
				big = e;
				rows_big = rows;
			}
		}
		for (t = 1; t < nt; t++)
			if (g->task_load[t] < g->task_load[least])
				least = t;
		g->job_task[big] = least;
		g->task_load[least] += rows_big;
		total += rows_big;
	}
	for (t = 0; t < nt; t++)
		if (g->task_load[t] > most)
			most = g->task_load[t];
	if (most * nt * 8 > total * 9)
		return false;
	for (k = 0; k < g->n_eval; k++)
	{
		g->eval_task[k] = -1;
		for (e = 0; e < g->n_jobs; e++)
			if (g->jobs[e].small == g->eval[k] || g->jobs[e].large == g->eval[k])
				g->eval_task[k] = g->job_task[e];
		if (g->eval_task[k] < 0)
			return false;		/* a histogram from an earlier run: split by feature */
	}
	return true;
}

/* Runs the queued histogram jobs and split evaluations, then reduces the splits. */
void
gbt_run(Gbt *g)
{
	int			nt = g->nt < g->nf ? g->nt : g->nf;
	int			k,
				t;

	if (nt < 1)
		nt = 1;
	if (g->n_jobs == 0 && g->n_eval == 0)
		return;
	g->by_node = plan_by_node(g, nt);
	trees_run_tasks(g->env, nt, gbt_task, g);
	for (k = 0; k < g->n_eval; k++)
	{
		Split	   *best = &g->task_split[(size_t) k * nt];

		for (t = 1; t < nt && !g->by_node; t++)
			if (split_better(&g->task_split[(size_t) k * nt + t], best))
				best = &g->task_split[(size_t) k * nt + t];
		g->split[g->eval[k]] = *best;
		g->tn[g->eval[k]].evaluated = 1;
	}
	g->n_jobs = 0;
	g->n_eval = 0;
}
