/*
 * gbt.c: gradient boosting on histograms, second order as XGBoost "hist".
 *
 * Rows are binned once (row-major bytes). Each tree grows depth-wise (or
 * loss-guided when max_leaves is set) over an index array partitioned in
 * place, one node range per node. Per split, only the smaller child's
 * histogram is built; the larger one is the parent's minus it, computed in
 * the parent's buffer. Histogram building and split search run in parallel
 * over disjoint feature ranges, so every sum is taken in the same row order
 * whatever the thread count: models are bit-identical for 1 or N threads.
 */
#include "trees_int.h"

#include <float.h>
#include <math.h>
#include <string.h>

#define KRT_EPS 1e-6
#define ROW(k) (rows ? rows[k] : (uint32_t) (k))
#define GBT_POOL_BYTES ((size_t) 256 << 20)
#define GBT_GROUP 4				/* parents whose last-level children share a histogram run */


typedef struct Split
{
	double		gain;
	int32_t		feature;
	int32_t		bin;
	int32_t		dl;
	double		GL;
	double		HL;
} Split;

typedef struct GbtJob
{
	int			small;			/* node whose histogram is built */
	int			large;			/* sibling = parent - small in its buffer; -1: none */
} GbtJob;

typedef struct Gbt
{
	const MlEnv *env;
	int			nt;
	const uint8_t *B;
	int			d;
	const uint16_t *nb;
	const uint32_t *off;
	uint32_t	slots;
	const float *gh;			/* current tree's gradient pairs, 2 per row */
	uint32_t   *idx;
	uint32_t   *tmp;			/* half the rows: partition and row-sample scratch */
	TrainNode  *tn;
	int			n_tn;
	int			max_tn;
	Split	   *split;			/* best split per training node */
	v2d		   *pool;
	int		   *free_list;
	int			n_free;
	int			n_pool;
	int		   *feat;
	int			nf;
	bool		all_feat;
	double		lambda;
	double		mcw;
	double		gamma;
	int			max_depth;
	GbtJob	   *jobs;
	int			n_jobs;
	int		   *eval;
	int			n_eval;
	int			eval_cap;
	Split	   *task_split;		/* eval_cap * nt */
	struct PartChunk *chunks;
	int			n_chunks;
	uint32_t	part_scratch;	/* rows of tmp each partition task may use */
	int		   *pend;			/* nodes being split (max_tn) */
	uint32_t   *mids;
} Gbt;

/*
 * Accumulates the gradient pairs of a node's rows into h for features
 * [q0, q1). Features go in blocks whose histograms fit in L1 (2048 slots,
 * 32 kB): a pass over the rows per block beats scattered L2 updates.
 */
#define HIST_BLOCK_SLOTS 8192
#define PF_DIST 24				/* rows ahead to prefetch: scattered rows miss cache */

static void
build_hist(const Gbt *g, const TrainNode *nd, v2d *h, int q0, int q1)
{
	const uint32_t *idx = g->idx;
	const float *gh = g->gh;
	const uint8_t *B = g->B;
	const uint32_t *off = g->off;
	const int  *feat = g->feat;
	size_t		d = (size_t) g->d;
	int			qa = q0;

	while (qa < q1)
	{
		int			qb = qa + 1;
		uint32_t	k;

		while (qb < q1 && off[feat[qb]] + g->nb[feat[qb]] + 1 - off[feat[qa]] <= HIST_BLOCK_SLOTS)
			qb++;
		if (g->all_feat)
		{
			int			j0 = qa,
						j1 = qb;
			v2d		   *hb = h + off[j0];
			int			nfb = j1 - j0,
						j;
			uint32_t	rel[HIST_BLOCK_SLOTS];

			for (j = 0; j < nfb; j++)
				rel[j] = off[j0 + j] - off[j0];
			/* contiguous features: offsets relative to the block */
			for (k = nd->begin; k < nd->end; k++)
			{
				uint32_t	r = idx[k];
				const uint8_t *row = B + r * d + j0;
				v2d			v = {gh[2 * (size_t) r], gh[2 * (size_t) r + 1]};

				if (k + PF_DIST < nd->end)
				{
					uint32_t	rp = idx[k + PF_DIST];

					__builtin_prefetch(B + rp * d + j0);
					__builtin_prefetch(B + rp * d + j1 - 1);	/* rows may straddle lines */
					__builtin_prefetch(gh + 2 * (size_t) rp);
				}
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
		else
		{
			for (k = nd->begin; k < nd->end; k++)
			{
				uint32_t	r = idx[k];
				const uint8_t *row = B + r * d;
				v2d			v = {gh[2 * (size_t) r], gh[2 * (size_t) r + 1]};
				int			q;

				if (k + PF_DIST < nd->end)
				{
					uint32_t	rp = idx[k + PF_DIST];

					__builtin_prefetch(B + rp * d + feat[qa]);
					__builtin_prefetch(gh + 2 * (size_t) rp);
				}
				for (q = qa; q < qb; q++)
				{
					int			j = feat[q];

					h[off[j] + row[j]] += v;
				}
			}
		}
		qa = qb;
	}
}

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
	double		G = nd->a,
				H = nd->b,
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

static void
gbt_task(void *arg, int task, int n_tasks)
{
	Gbt		   *g = arg;
	int			q0 = (int) ((int64_t) g->nf * task / n_tasks);
	int			q1 = (int) ((int64_t) g->nf * (task + 1) / n_tasks);
	int			k,
				q;

	for (k = 0; k < g->n_jobs; k++)
	{
		const GbtJob *jb = &g->jobs[k];
		const TrainNode *s = &g->tn[jb->small];
		v2d		   *hs = g->pool + (size_t) s->hist * g->slots;

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
	for (k = 0; k < g->n_eval; k++)
	{
		const TrainNode *nd = &g->tn[g->eval[k]];

		eval_node(g, nd, g->pool + (size_t) nd->hist * g->slots, q0, q1,
				  &g->task_split[(size_t) k * n_tasks + task]);
	}
}

/* Runs the queued histogram jobs and split evaluations, then reduces the splits. */
static void
gbt_run(Gbt *g)
{
	int			nt = g->nt < g->nf ? g->nt : g->nf;
	int			k,
				t;

	if (nt < 1)
		nt = 1;
	if (g->n_jobs == 0 && g->n_eval == 0)
		return;
	if (nt > 1)
	{
		MlEnv		e = *g->env;

		e.n_threads = nt;
		ml_parallel_for(&e, nt, gbt_task, g);
	}
	else
		gbt_task(g, 0, 1);
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

static bool
can_split(const Gbt *g, const TrainNode *nd)
{
	return nd->depth < g->max_depth && nd->end - nd->begin >= 2 && nd->b >= 2 * g->mcw;
}

static bool
split_ok(const Gbt *g, int node)
{
	const Split *s = &g->split[node];

	return s->feature != INT32_MAX &&
		s->gain > KRT_EPS && s->gain >= g->gamma;
}

static void
release_hist(Gbt *g, TrainNode *nd)
{
	if (nd->hist >= 0)
	{
		g->free_list[g->n_free++] = nd->hist;
		nd->hist = -1;
	}
}

/*
 * Stable partition of the rows of the nodes being split. Phase 0 runs in
 * parallel over chunks of rows and reorders each chunk in place into [left
 * rows | right rows] (the right rows wait in a per-task scratch of one
 * chunk). Phase 1 joins the runs of a node: the smaller side is saved in
 * tmp, the larger side slides into place, the saved side is copied back. So
 * tmp needs half the rows, not all of them, and the result is the same as a
 * sequential stable partition.
 */
#define PART_CHUNK 32768

struct PartChunk
{
	int			node;
	uint32_t	begin;
	uint32_t	end;
	uint32_t	nleft;
};
typedef struct PartChunk PartChunk;

static void
part_task(void *arg, int task, int n_tasks)
{
	Gbt		   *g = arg;
	int			c0 = (int) ((int64_t) g->n_chunks * task / n_tasks),
				c1 = (int) ((int64_t) g->n_chunks * (task + 1) / n_tasks),
				c;
	size_t		d = (size_t) g->d;
	uint32_t   *scr = g->tmp + (size_t) task * g->part_scratch;

	for (c = c0; c < c1; c++)
	{
		PartChunk  *ch = &g->chunks[c];
		const TrainNode *nd = &g->tn[ch->node];
		uint32_t   *ix = g->idx;
		const uint8_t *col = g->B + nd->feature;
		int			nbf = g->nb[nd->feature];
		int			bin = nd->bin;
		uint32_t	dl = nd->default_left;
		uint32_t	w = ch->begin,
					s = 0,
					k;

		for (k = ch->begin; k < ch->end; k++)
		{
			uint32_t	r = ix[k];
			int			cd;
			uint32_t	left;

			if (k + PF_DIST < ch->end)
				__builtin_prefetch(col + ix[k + PF_DIST] * d);
			cd = col[r * d];
			left = (uint32_t) (cd <= bin) | ((uint32_t) (cd == nbf) & dl);
			/* branch-free (the side is a coin flip to the predictor); w <= k */
			ix[w] = r;
			scr[s] = r;
			w += left;
			s += !left;
		}
		memcpy(ix + w, scr, sizeof(uint32_t) * s);
		ch->nleft = w - ch->begin;
	}
}

/* Partitions the rows of nodes pend[0..np); mids[q] receives the first right row. */
static void
partition_nodes(Gbt *g, const int *pend, int np, uint32_t *mids)
{
	int			q,
				c,
				nt;
	uint32_t	total = 0;
	uint32_t   *idx = g->idx,
			   *tmp = g->tmp;

	g->n_chunks = 0;
	for (q = 0; q < np; q++)
	{
		const TrainNode *nd = &g->tn[pend[q]];
		uint32_t	b;

		for (b = nd->begin; b < nd->end; b += PART_CHUNK)
		{
			PartChunk  *ch = &g->chunks[g->n_chunks++];

			ch->node = pend[q];
			ch->begin = b;
			ch->end = nd->end - b > PART_CHUNK ? b + PART_CHUNK : nd->end;
		}
		total += nd->end - nd->begin;
	}
	nt = g->nt;
	if (nt > g->n_chunks)
		nt = g->n_chunks;
	if (total < 4 * PART_CHUNK)
		nt = 1;
	if (nt > 1)
	{
		MlEnv		e = *g->env;

		e.n_threads = nt;
		ml_parallel_for(&e, nt, part_task, g);
	}
	else
		part_task(g, 0, 1);

	/* Phase 1: join each node's runs, the smaller side through tmp. */
	c = 0;
	for (q = 0; q < np; q++)
	{
		const TrainNode *nd = &g->tn[pend[q]];
		int			c0 = c,
					c1;
		uint32_t	nl = 0,
					nr,
					s = 0,
					w;

		while (c < g->n_chunks && g->chunks[c].node == pend[q])
			nl += g->chunks[c++].nleft;
		c1 = c;
		nr = nd->end - nd->begin - nl;
		mids[q] = nd->begin + nl;
		if (c1 - c0 <= 1)
			continue;			/* one chunk: already in place */
		if (nl >= nr)
		{
			for (c = c0; c < c1; c++)
			{
				const PartChunk *ch = &g->chunks[c];

				memcpy(tmp + s, idx + ch->begin + ch->nleft,
					   sizeof(uint32_t) * (ch->end - ch->begin - ch->nleft));
				s += ch->end - ch->begin - ch->nleft;
			}
			for (c = c0, w = nd->begin; c < c1; c++)
			{
				const PartChunk *ch = &g->chunks[c];

				memmove(idx + w, idx + ch->begin, sizeof(uint32_t) * ch->nleft);
				w += ch->nleft;
			}
			memcpy(idx + mids[q], tmp, sizeof(uint32_t) * nr);
		}
		else
		{
			for (c = c0; c < c1; c++)
			{
				const PartChunk *ch = &g->chunks[c];

				memcpy(tmp + s, idx + ch->begin, sizeof(uint32_t) * ch->nleft);
				s += ch->nleft;
			}
			for (c = c1 - 1, w = nd->end; c >= c0; c--)
			{
				const PartChunk *ch = &g->chunks[c];
				uint32_t	nrc = ch->end - ch->begin - ch->nleft;

				w -= nrc;
				memmove(idx + w, idx + ch->begin + ch->nleft, sizeof(uint32_t) * nrc);
			}
			memcpy(idx + nd->begin, tmp, sizeof(uint32_t) * nl);
		}
		c = c1;
	}
}

/* Takes node's best split and reserves its children; false when the node
 * array is full (the node stays a leaf). */
static bool
split_prepare(Gbt *g, int node)
{
	TrainNode  *nd = &g->tn[node];
	const Split *s = &g->split[node];

	if (g->n_tn + 2 > g->max_tn)
		return false;
	nd->left = g->n_tn;
	g->n_tn += 2;
	nd->feature = s->feature;
	nd->bin = s->bin;
	nd->default_left = (uint8_t) s->dl;
	nd->gain = s->gain;
	return true;
}

/*
 * Creates the children of a partitioned node (first right row mid) and
 * queues the histogram work for children that may split again.
 */
static void
split_finish(Gbt *g, int node, uint32_t mid)
{
	TrainNode  *nd = &g->tn[node];
	const Split *s = &g->split[node];
	TrainNode  *L,
			   *R;
	int			l = nd->left,
				small,
				large;
	bool		evl,
				evr;

	L = &g->tn[l];
	R = &g->tn[l + 1];
	memset(L, 0, sizeof(*L) * 2);
	L->left = R->left = -1;
	L->hist = R->hist = -1;
	L->depth = R->depth = nd->depth + 1;
	if (mid == UINT32_MAX)
	{
		nd->lazy = 1;
		L->begin = L->end = R->begin = R->end = nd->begin;
	}
	else
	{
		L->begin = nd->begin;
		L->end = mid;
		R->begin = mid;
		R->end = nd->end;
	}
	L->a = s->GL;
	L->b = s->HL;
	R->a = nd->a - s->GL;
	R->b = nd->b - s->HL;
	evl = can_split(g, L);
	evr = can_split(g, R);
	if (!evl && !evr)
	{
		release_hist(g, nd);
		return;
	}
	small = (L->end - L->begin <= R->end - R->begin) ? l : l + 1;
	large = small == l ? l + 1 : l;
	if (g->n_free == 0)
	{
		release_hist(g, nd);
		return;					/* pool exhausted (GBT_POOL_BYTES): the children stay leaves */
	}
	g->tn[small].hist = g->free_list[--g->n_free];
	if ((small == l ? evr : evl))
	{
		g->tn[large].hist = nd->hist;
		nd->hist = -1;
		g->jobs[g->n_jobs].large = large;
	}
	else
	{
		release_hist(g, nd);
		g->jobs[g->n_jobs].large = -1;
	}
	g->jobs[g->n_jobs].small = small;
	g->n_jobs++;
	if (evl)
		g->eval[g->n_eval++] = l;
	if (evr)
		g->eval[g->n_eval++] = l + 1;
}

/* After a run: children that will not split give their buffers back. */
static void
release_unneeded(Gbt *g, int first, int last)
{
	int			k;

	for (k = first; k < last; k++)
		if (!can_split(g, &g->tn[k]))
			release_hist(g, &g->tn[k]);
}

/* Grows one tree on rows idx[0, ns) with gradient pairs g->gh. */
static void
grow_tree(Gbt *g, uint32_t ns, int max_leaves)
{
	TrainNode  *root = &g->tn[0];
	uint32_t	k;
	double		G = 0,
				H = 0;
	int			i;

	g->n_tn = 1;
	g->n_free = 0;
	for (i = g->n_pool - 1; i >= 0; i--)
		g->free_list[g->n_free++] = i;
	memset(root, 0, sizeof(*root));
	root->left = -1;
	root->hist = -1;
	root->begin = 0;
	root->end = ns;
	for (k = 0; k < ns; k++)
	{
		uint32_t	r = g->idx[k];

		G += g->gh[2 * (size_t) r];
		H += g->gh[2 * (size_t) r + 1];
	}
	root->a = G;
	root->b = H;
	g->n_jobs = g->n_eval = 0;
	if (!can_split(g, root))
		return;
	root->hist = g->free_list[--g->n_free];
	g->jobs[0].small = 0;
	g->jobs[0].large = -1;
	g->n_jobs = 1;
	g->eval[0] = 0;
	g->n_eval = 1;
	gbt_run(g);

	if (max_leaves <= 0)
	{
		/* Depth-wise: split every splittable node of a level together. */
		int			lo = 0,
					hi = 1;

		while (lo < hi)
		{
			int			first = g->n_tn,
						np = 0,
						q;

			for (i = lo; i < hi; i++)
			{
				TrainNode  *nd = &g->tn[i];

				if (nd->evaluated && split_ok(g, i) && split_prepare(g, i))
					g->pend[np++] = i;
				else
					release_hist(g, nd);
			}
			if (np > 0 && g->tn[g->pend[0]].depth + 1 >= g->max_depth)
			{
				/*
				 * The children are leaves: leave their rows in the parent's
				 * range, the margin update routes them (saves a partition).
				 */
				for (q = 0; q < np; q++)
					split_finish(g, g->pend[q], UINT32_MAX);
			}
			else if (np > 0 && g->tn[g->pend[0]].depth + 2 >= g->max_depth)
			{
				/*
				 * The children split only into leaves: their histograms are
				 * dropped once their splits are known, so build them for a
				 * few parents at a time (GBT_GROUP more buffers, not np).
				 */
				partition_nodes(g, g->pend, np, g->mids);
				for (q = 0; q < np; q += GBT_GROUP)
				{
					int			q1 = q + GBT_GROUP < np ? q + GBT_GROUP : np,
								r;

					for (r = q; r < q1; r++)
						split_finish(g, g->pend[r], g->mids[r]);
					gbt_run(g);
					for (r = q; r < q1; r++)
					{
						release_hist(g, &g->tn[g->tn[g->pend[r]].left]);
						release_hist(g, &g->tn[g->tn[g->pend[r]].left + 1]);
					}
				}
			}
			else
			{
				partition_nodes(g, g->pend, np, g->mids);
				for (q = 0; q < np; q++)
					split_finish(g, g->pend[q], g->mids[q]);
			}
			gbt_run(g);
			release_unneeded(g, first, g->n_tn);
			lo = first;
			hi = g->n_tn;
		}
	}
	else
	{
		/* Loss-guided: always split the open leaf with the largest gain. */
		int			leaves = 1;

		while (leaves < max_leaves)
		{
			int			best = -1,
						first;

			for (i = 0; i < g->n_tn; i++)
				if (g->tn[i].left < 0 && g->tn[i].hist >= 0 && split_ok(g, i) &&
					(best < 0 || g->split[i].gain > g->split[best].gain))
					best = i;
			if (best < 0)
				break;
			first = g->n_tn;
			if (!split_prepare(g, best))
				break;
			partition_nodes(g, &best, 1, g->mids);
			split_finish(g, best, g->mids[0]);
			leaves++;
			gbt_run(g);
			release_unneeded(g, first, g->n_tn);
		}
		for (i = 0; i < g->n_tn; i++)
			release_hist(g, &g->tn[i]);
	}
}

/* Margin updates of one tree's rows, split by row ranges over tasks. */
typedef struct MarginTask
{
	Gbt		   *g;
	float	   *mc;
	uint32_t	ns;
} MarginTask;

static void
margin_task(void *arg, int task, int n_tasks)
{
	MarginTask *mt = arg;
	Gbt		   *g = mt->g;
	uint32_t	lo = (uint32_t) ((uint64_t) mt->ns * task / n_tasks),
				hi = (uint32_t) ((uint64_t) mt->ns * (task + 1) / n_tasks);
	size_t		d = (size_t) g->d;
	float	   *mc = mt->mc;
	int			t;

	for (t = 0; t < g->n_tn; t++)
	{
		const TrainNode *nd = &g->tn[t];
		uint32_t	k;

		/* a node's rows go to the task its first row falls in */
		if (nd->begin < lo || nd->begin >= hi || nd->begin >= nd->end)
			continue;
		if (nd->left < 0)
		{
			for (k = nd->begin; k < nd->end; k++)
				mc[g->idx[k]] += (float) nd->value;
		}
		else if (nd->lazy)
		{
			const uint8_t *col = g->B + nd->feature;
			int			nbf = g->nb[nd->feature];
			double		vl = g->tn[nd->left].value,
						vr = g->tn[nd->left + 1].value;

			for (k = nd->begin; k < nd->end; k++)
			{
				uint32_t	r = g->idx[k];
				int			cd;

				if (k + PF_DIST < nd->end)
					__builtin_prefetch(col + (size_t) g->idx[k + PF_DIST] * d);
				cd = col[(size_t) r * d];
				mc[r] += (float) ((cd <= nd->bin || (cd == nbf && nd->default_left)) ? vl : vr);
			}
		}
	}
}

/* Training state kept across rounds. */
typedef struct GbtGrad
{
	const TreeData *data;
	TreeObjective obj;
	int			K;				/* margins per row */
	const uint32_t *rows;		/* training rows */
	uint32_t	n_rows;
	const float *margin;		/* float, as XGBoost: the model keeps doubles */
	float	   *gh;				/* 2 * n per margin column */
	const double *cw;			/* class weights or NULL */
	double		loss[64];		/* per task partial training loss */
} GbtGrad;

static void
grad_task(void *arg, int task, int n_tasks)
{
	GbtGrad    *a = arg;
	uint32_t	k0 = (uint32_t) ((uint64_t) a->n_rows * task / n_tasks),
				k1 = (uint32_t) ((uint64_t) a->n_rows * (task + 1) / n_tasks),
				k;
	size_t		n = (size_t) a->data->n;
	int			K = a->K;

	for (k = k0; k < k1; k++)
	{
		uint32_t	r = a->rows ? a->rows[k] : k;
		const float *m = a->margin + r;	/* class c at m[c * n] */

		if (a->obj == TREE_OBJ_REG_SQUAREDERROR)
		{
			a->gh[2 * (size_t) r] = (float) (m[0] - a->data->y[r]);
			a->gh[2 * (size_t) r + 1] = 1.0f;
		}
		else if (a->obj == TREE_OBJ_BINARY_LOGISTIC)
		{
			int			y = a->data->y_class[r];
			double		w = a->cw ? a->cw[y] : 1.0;
			double		p = 1.0 / (1.0 + exp(-m[0]));
			double		h = p * (1.0 - p);

			if (h < 1e-16)
				h = 1e-16;
			a->gh[2 * (size_t) r] = (float) ((p - (double) y) * w);
			a->gh[2 * (size_t) r + 1] = (float) (h * w);
		}
		else
		{
			int			y = a->data->y_class[r];
			double		w = a->cw ? a->cw[y] : 1.0;
			double		mx = m[0],
						sum = 0;
			int			c;

			double		ebuf[64];

			for (c = 1; c < K; c++)
				if (m[c * n] > mx)
					mx = m[c * n];
			for (c = 0; c < K; c++)
			{
				double		e = exp(m[c * n] - mx);

				if (c < 64)
					ebuf[c] = e;
				sum += e;
			}
			for (c = 0; c < K; c++)
			{
				double		p = (c < 64 ? ebuf[c] : exp(m[c * n] - mx)) / sum;
				double		h = 2.0 * p * (1.0 - p);

				if (h < 1e-16)
					h = 1e-16;
				a->gh[(size_t) c * 2 * n + 2 * (size_t) r] = (float) ((p - (c == y ? 1.0 : 0.0)) * w);
				a->gh[(size_t) c * 2 * n + 2 * (size_t) r + 1] = (float) (h * w);
			}
		}
	}
}

/* Validation loss: logloss, mlogloss or RMSE of the current margins. */
static double
valid_loss(const TreeData *data, TreeObjective obj, int K, const float *margin,
		   const uint32_t *vrows, uint32_t nv)
{
	double		s = 0;
	uint32_t	k;
	size_t		n = (size_t) data->n;

	for (k = 0; k < nv; k++)
	{
		uint32_t	r = vrows[k];
		const float *m = margin + r;	/* class c at m[c * n] */

		if (obj == TREE_OBJ_REG_SQUAREDERROR)
		{
			double		e = m[0] - data->y[r];

			s += e * e;
		}
		else if (obj == TREE_OBJ_BINARY_LOGISTIC)
		{
			double		p = 1.0 / (1.0 + exp(-m[0]));

			if (data->y_class[r] == 0)
				p = 1.0 - p;
			if (p < 1e-15)
				p = 1e-15;
			s -= log(p);
		}
		else
		{
			double		mx = m[0],
						sum = 0;
			int			c;

			for (c = 1; c < K; c++)
				if (m[c * n] > mx)
					mx = m[c * n];
			for (c = 0; c < K; c++)
				sum += exp(m[c * n] - mx);
			s -= (m[(size_t) data->y_class[r] * n] - mx) - log(sum);
		}
	}
	s /= nv;
	return obj == TREE_OBJ_REG_SQUAREDERROR ? sqrt(s) : s;
}

static TreeObjective
gbt_objective(const TreeParams *p, int n_classes)
{
	if (p->objective != TREE_OBJ_DEFAULT)
		return p->objective;
	if (p->task == ML_TASK_REGRESS)
		return TREE_OBJ_REG_SQUAREDERROR;
	return n_classes > 2 ? TREE_OBJ_MULTI_SOFTMAX : TREE_OBJ_BINARY_LOGISTIC;
}

static int
gbt_depth(const TreeParams *p)
{
	return p->max_depth <= 0 ? TREES_MAX_DEPTH : p->max_depth;
}

/* Histogram buffers and node capacity for n rows. */
static void
gbt_sizes(int64_t n, const TreeParams *p, int *n_pool, int *max_tn)
{
	int			D = gbt_depth(p);
	int64_t		pool,
				nodes;

	if (p->max_leaves > 0)
	{
		pool = p->max_leaves + 1;
		nodes = 2 * (int64_t) p->max_leaves + 1;
	}
	else
	{
		/*
		 * Depth-wise: the widest level that keeps its histograms has
		 * 2^(D-2) nodes; the level below borrows GBT_GROUP more at a time.
		 */
		pool = D < 2 ? 2 : D - 2 >= 30 ? INT32_MAX : ((int64_t) 1 << (D - 2)) + GBT_GROUP + 1;
		nodes = D >= 30 ? INT32_MAX : ((int64_t) 1 << (D + 1)) + 1;
	}
	if (pool > n + 2)
		pool = n + 2;
	if (nodes > 2 * n + 1)
		nodes = 2 * n + 1;
	*n_pool = (int) pool;
	*max_tn = (int) nodes;
}

size_t
gbt_memory_needed(int64_t n, int d, int n_classes, const TreeParams *p)
{
	int			n_pool,
				max_tn,
				K = (p->task == ML_TASK_CLASSIFY && n_classes > 2) ? n_classes : 1;
	double		total;
	int			nt = p->n_threads > 0 ? p->n_threads : 2;

	gbt_sizes(n, p, &n_pool, &max_tn);
	total = (double) n * (4.0 * K + 8.0 * K + 4 + 2);	/* margins, gh, idx, tmp (n / 2) */
	total += (double) nt * PART_CHUNK * 4;	/* tmp when n / 2 is less than the partition scratch */
	if (p->early_stopping_rounds > 0)
		total += (double) n * 4;	/* training / validation row lists */
	if ((double) n_pool * d * 256 * sizeof(v2d) > (double) GBT_POOL_BYTES)
		total += (double) GBT_POOL_BYTES;
	else
		total += (double) n_pool * d * 256 * sizeof(v2d);
	total += (double) max_tn * (sizeof(TrainNode) + sizeof(Split));
	total += (double) (n_pool + 2) * nt * sizeof(Split) + (double) d * 64;
	if (total > (double) SIZE_MAX / 2)
		return SIZE_MAX;
	return (size_t) total;
}

MlStatus
gbt_fit(const MlEnv *env, const TreeData *data, const TreeParams *p, TreeModel *out,
		TreeFitInfo *info, MlError *err)
{
	int64_t		n = data->n;
	int			d = data->d;
	TreeObjective obj = gbt_objective(p, data->n_classes);
	int			K = obj == TREE_OBJ_MULTI_SOFTMAX ? data->n_classes : 1;
	Gbt			g;
	GbtGrad		ga;
	ModelBuilder mb;
	MlRng		rng;
	uint32_t   *rows = NULL,
			   *vrows = NULL,
			   *off = NULL;
	uint32_t	n_train = 0,
				n_valid = 0;
	float	   *margin = NULL;
	double	   *imp_best = NULL,
			   *cw = NULL,
			   *base = NULL;
	float	   *gh = NULL;
	int			D = gbt_depth(p);
	int			round,
				c,
				j,
				best_round = -1,
				rounds_done = 0;
	double		best_loss = INFINITY,
				last_loss = NAN;
	int64_t		i;
	uint32_t	slots = 0;
	MlStatus	st = ML_OK;

	memset(&g, 0, sizeof(g));
	memset(&mb, 0, sizeof(mb));
	memset(out, 0, sizeof(*out));
	if (obj == TREE_OBJ_REG_SQUAREDERROR && p->task != ML_TASK_REGRESS)
		return ml_fail(err, ML_ERR_PARAM, "objective reg:squarederror needs a regression target");
	if (obj != TREE_OBJ_REG_SQUAREDERROR && p->task != ML_TASK_CLASSIFY)
		return ml_fail(err, ML_ERR_PARAM, "objective %s needs a classification target",
					   obj == TREE_OBJ_BINARY_LOGISTIC ? "binary:logistic" : "multi:softmax");
	if (obj == TREE_OBJ_BINARY_LOGISTIC && data->n_classes != 2)
		return ml_fail(err, ML_ERR_PARAM,
					   "objective binary:logistic needs 2 classes, the target has %d",
					   data->n_classes);
	if (n > (int64_t) UINT32_MAX / 2)
		return ml_fail(err, ML_ERR_DATA, "%lld rows exceed the limit of %u for gbt",
					   (long long) n, UINT32_MAX / 2);

	/* Row roles: without validation rows, training rows are 0..n-1 (rows NULL). */
	off = ml_alloc(env, sizeof(uint32_t) * ((size_t) d + 1));
	if (!off)
		goto oom;
	if (data->valid_mask)
		for (i = 0; i < n; i++)
			n_valid += data->valid_mask[i] != 0;
	if (n_valid > 0)
	{
		rows = ml_alloc(env, sizeof(uint32_t) * (size_t) (n - n_valid));
		vrows = ml_alloc(env, sizeof(uint32_t) * (size_t) n_valid);
		if (!rows || !vrows)
			goto oom;
		n_valid = 0;
		for (i = 0; i < n; i++)
		{
			if (data->valid_mask[i])
				vrows[n_valid++] = (uint32_t) i;
			else
				rows[n_train++] = (uint32_t) i;
		}
	}
	else
		n_train = (uint32_t) n;
	if (n_train == 0)
	{
		st = ml_fail(err, ML_ERR_DATA, "no training rows (every row is in the validation set)");
		goto done;
	}
	if (p->early_stopping_rounds > 0 && n_valid == 0)
	{
		st = ml_fail(err, ML_ERR_PARAM,
					 "early_stopping_rounds needs validation rows (a validation split)");
		goto done;
	}
	for (j = 0; j < d; j++)
	{
		off[j] = slots;
		slots += (uint32_t) data->bins->n_bins[j] + 1;
	}
	off[d] = slots;
	if (p->task == ML_TASK_CLASSIFY && p->class_weight != TREE_CW_NONE)
	{
		st = trees_class_weights(env, data, p, &cw, err);
		if (st != ML_OK)
			goto done;
	}

	/* Base margins. */
	base = ml_calloc(env, K, sizeof(double));
	if (!base)
		goto oom;
	if (obj == TREE_OBJ_REG_SQUAREDERROR)
	{
		double		s = 0;

		for (i = 0; i < n_train; i++)
			s += data->y[ROW(i)];
		base[0] = s / n_train;
	}
	else
	{
		double	   *cnt = ml_calloc(env, data->n_classes, sizeof(double));
		double		tot = 0;

		if (!cnt)
			goto oom;
		for (i = 0; i < n_train; i++)
		{
			int			y = data->y_class[ROW(i)];

			cnt[y] += cw ? cw[y] : 1.0;
			tot += cw ? cw[y] : 1.0;
		}
		if (obj == TREE_OBJ_BINARY_LOGISTIC)
		{
			double		q = cnt[1] / tot;

			q = q < 1e-6 ? 1e-6 : q > 1 - 1e-6 ? 1 - 1e-6 : q;
			base[0] = log(q / (1 - q));
		}
		else
		{
			double		mean = 0;

			for (c = 0; c < K; c++)
			{
				double		q = cnt[c] / tot;

				base[c] = log(q < 1e-6 ? 1e-6 : q);
				mean += base[c] / K;
			}
			for (c = 0; c < K; c++)
				base[c] -= mean;
		}
		ml_free(env, cnt);
	}

	margin = ml_alloc(env, sizeof(float) * (size_t) n * K);
	gh = ml_alloc(env, sizeof(float) * 2 * (size_t) n * K);
	if (!margin || !gh)
		goto oom;
	for (i = 0; i < n; i++)
		for (c = 0; c < K; c++)
			margin[(size_t) c * n + i] = (float) base[c];

	/* Grower. */
	g.env = env;
	g.nt = env->n_threads > 1 ? env->n_threads : 1;
	if (g.nt > 64)
		g.nt = 64;
	g.B = data->B;
	g.d = d;
	g.nb = data->bins->n_bins;
	g.off = off;
	g.slots = slots;
	g.lambda = p->l2;
	g.mcw = p->min_child_weight;
	g.gamma = p->gamma;
	g.max_depth = D;
	gbt_sizes(n_train, p, &g.n_pool, &g.max_tn);
	/*
	 * Histogram buffers are capped at 256 MB: a level with more splittable
	 * nodes than buffers turns the excess into leaves (only very deep
	 * depth-wise trees on wide data get there).
	 */
	if ((double) g.n_pool * slots * sizeof(v2d) > (double) GBT_POOL_BYTES)
	{
		g.n_pool = (int) (GBT_POOL_BYTES / ((size_t) slots * sizeof(v2d)));
		if (g.n_pool < 4)
			g.n_pool = 4;
	}
	g.eval_cap = 2 * g.n_pool + 2;
	g.idx = ml_alloc(env, sizeof(uint32_t) * n_train);
	g.part_scratch = n_train < PART_CHUNK ? n_train : PART_CHUNK;
	{
		size_t		tmp_rows = (size_t) n_train / 2 + 1;

		if (tmp_rows < (size_t) g.nt * g.part_scratch)
			tmp_rows = (size_t) g.nt * g.part_scratch;
		g.tmp = ml_alloc(env, sizeof(uint32_t) * tmp_rows);
	}
	g.tn = ml_alloc(env, sizeof(TrainNode) * (size_t) g.max_tn);
	g.split = ml_alloc(env, sizeof(Split) * (size_t) g.max_tn);
	g.pool = ml_alloc(env, sizeof(v2d) * (size_t) slots * (size_t) g.n_pool);
	g.free_list = ml_alloc(env, sizeof(int) * (size_t) g.n_pool);
	g.feat = ml_alloc(env, sizeof(int) * (size_t) d);
	g.jobs = ml_alloc(env, sizeof(GbtJob) * (size_t) g.eval_cap);
	g.eval = ml_alloc(env, sizeof(int) * (size_t) g.eval_cap);
	g.task_split = ml_alloc(env, sizeof(Split) * (size_t) g.eval_cap * g.nt);
	g.chunks = ml_alloc(env, sizeof(PartChunk) * ((size_t) n_train / PART_CHUNK + (size_t) g.max_tn + 2));
	g.pend = ml_alloc(env, sizeof(int) * (size_t) g.max_tn);
	g.mids = ml_alloc(env, sizeof(uint32_t) * (size_t) g.max_tn);
	if (!g.idx || !g.tmp || !g.tn || !g.split || !g.pool || !g.free_list || !g.feat ||
		!g.jobs || !g.eval || !g.task_split || !g.chunks || !g.pend || !g.mids)
		goto oom;

	/* Model. */
	out->algorithm = TREE_ALGO_GBT;
	out->task = p->task;
	out->objective = obj;
	out->n_features = (uint32_t) d;
	out->n_classes = p->task == ML_TASK_CLASSIFY ? (uint32_t) data->n_classes : 0;
	out->n_outputs = p->task == ML_TASK_CLASSIFY ? (uint32_t) data->n_classes : 1;
	out->leaf_width = 1;
	out->trees_per_round = (uint32_t) K;
	out->best_iteration = -1;
	out->oob_score = NAN;
	out->valid_loss = NAN;
	out->learning_rate = p->learning_rate;
	out->base_score = base;
	base = NULL;
	out->importance = ml_calloc(env, d, sizeof(double));
	imp_best = ml_calloc(env, d, sizeof(double));
	if (!out->importance || !imp_best)
		goto oom;
	mb.m = out;

	ga.data = data;
	ga.obj = obj;
	ga.K = K;
	ga.rows = rows;
	ga.n_rows = n_train;
	ga.margin = margin;
	ga.gh = gh;
	ga.cw = cw;
	ml_rng_seed(&rng, p->seed);

	for (round = 0; round < p->n_estimators; round++)
	{
		uint32_t	ns = 0;

		if (ml_check(env, "gbt", round, p->n_estimators, last_loss))
		{
			st = ml_fail_cancelled(err);
			goto done;
		}
		{
			int			nt = g.nt;
			int64_t		maxt = n_train / 4096 + 1;

			if (nt > maxt)
				nt = (int) maxt;
			if (nt > 1)
			{
				MlEnv		e = *env;

				e.n_threads = nt;
				ml_parallel_for(&e, nt, grad_task, &ga);
			}
			else
				grad_task(&ga, 0, 1);
		}
		/* Row sample: sampled rows first, then the others (each ascending). */
		if (p->subsample < 1.0)
		{
			uint32_t	t = n_train;
			uint32_t	k;

			/* sampled rows forward, the others backward, then the tail reversed */
			for (k = 0; k < n_train; k++)
			{
				if (ml_rng_uniform(&rng) < p->subsample)
					g.idx[ns++] = ROW(k);
				else
					g.idx[--t] = ROW(k);
			}
			for (k = 0; k < (n_train - ns) / 2; k++)
			{
				uint32_t	x = g.idx[ns + k];

				g.idx[ns + k] = g.idx[n_train - 1 - k];
				g.idx[n_train - 1 - k] = x;
			}
		}
		else
		{
			uint32_t	k;

			if (rows)
				memcpy(g.idx, rows, sizeof(uint32_t) * n_train);
			else
				for (k = 0; k < n_train; k++)
					g.idx[k] = k;
			ns = n_train;
		}
		for (c = 0; c < K; c++)
		{
			uint32_t	k;
			int			t;
			float	   *mc = margin + (size_t) c * n;	/* this class's margins */

			/* Column sample for this tree. */
			for (j = 0; j < d; j++)
				g.feat[j] = j;
			g.nf = d;
			if (p->colsample < 1.0)
			{
				int			m = (int) floor(p->colsample * d + 0.5);

				if (m < 1)
					m = 1;
				for (j = 0; j < m; j++)
				{
					int			r = j + (int) ml_rng_below(&rng, (uint64_t) (d - j));
					int			tmpf = g.feat[j];

					g.feat[j] = g.feat[r];
					g.feat[r] = tmpf;
				}
				/* ascending order for cache-friendly histogram building */
				for (j = 1; j < m; j++)
				{
					int			v = g.feat[j],
								q = j - 1;

					while (q >= 0 && g.feat[q] > v)
					{
						g.feat[q + 1] = g.feat[q];
						q--;
					}
					g.feat[q + 1] = v;
				}
				g.nf = m;
			}
			g.all_feat = g.nf == d;
			g.gh = gh + (size_t) c * 2 * n;
			grow_tree(&g, ns, p->max_leaves);

			/* Leaf values, then margin updates. */
			for (t = 0; t < g.n_tn; t++)
			{
				TrainNode  *nd = &g.tn[t];

				if (nd->left >= 0)
					continue;
				nd->value = nd->b < g.mcw && t != 0 ? 0.0 :
					-nd->a / (nd->b + g.lambda) * p->learning_rate;
				if (!isfinite(nd->value))
					nd->value = 0.0;
			}
			{
				MarginTask	mt;
				int			ntk = g.nt;

				mt.g = &g;
				mt.mc = mc;
				mt.ns = ns;
				if (ns < 65536)
					ntk = 1;
				if (ntk > 1)
				{
					MlEnv		e = *env;

					e.n_threads = ntk;
					ml_parallel_for(&e, ntk, margin_task, &mt);
				}
				else
					margin_task(&mt, 0, 1);
			}
			for (k = ns; k < n_train; k++)
			{
				uint32_t	r = g.idx[k];

				mc[r] += (float) g.tn[tn_leaf(g.tn, data->B + (size_t) r * d, g.nb)].value;
			}
			for (k = 0; k < n_valid; k++)
			{
				uint32_t	r = vrows[k];

				mc[r] += (float) g.tn[tn_leaf(g.tn, data->B + (size_t) r * d, g.nb)].value;
			}
			if (tm_append_tree(env, &mb, g.tn, data->bins, NULL, err) != ML_OK)
			{
				st = err->code;
				goto done;
			}
		}
		rounds_done = round + 1;
		if (n_valid > 0)
		{
			last_loss = valid_loss(data, obj, K, margin, vrows, n_valid);
			if (last_loss < best_loss)
			{
				best_loss = last_loss;
				best_round = round;
				memcpy(imp_best, out->importance, sizeof(double) * d);
			}
			else if (p->early_stopping_rounds > 0 &&
					 round - best_round >= p->early_stopping_rounds)
				break;
		}
	}
	if (n_valid > 0 && p->early_stopping_rounds > 0 && best_round >= 0)
	{
		/* Keep the best iteration only; importances are recomputed below. */
		out->n_trees = (uint32_t) (best_round + 1) * (uint32_t) K;
		out->best_iteration = best_round;
		out->valid_loss = best_loss;
		memcpy(out->importance, imp_best, sizeof(double) * d);
	}
	else
	{
		out->best_iteration = rounds_done - 1;
		out->valid_loss = n_valid > 0 ? last_loss : NAN;
	}
	if (!tm_finish(env, out, err))
	{
		st = err->code;
		goto done;
	}
	if (info)
	{
		info->rounds = rounds_done;
		info->n_leaves = 0;
		for (i = 0; i < out->tree_start[out->n_trees]; i++)
			if (out->nodes[i].feature == TREE_NODE_LEAF)
				info->n_leaves++;
		info->train_loss = NAN;
	}
	goto done;

oom:
	st = ml_fail(err, ML_ERR_MEMORY, "out of memory training gbt on %lld rows x %d features",
				 (long long) n, d);
done:
	ml_free(env, rows);
	ml_free(env, vrows);
	ml_free(env, off);
	ml_free(env, margin);
	ml_free(env, imp_best);
	ml_free(env, gh);
	ml_free(env, cw);
	ml_free(env, base);
	ml_free(env, g.idx);
	ml_free(env, g.tmp);
	ml_free(env, g.tn);
	ml_free(env, g.split);
	ml_free(env, g.pool);
	ml_free(env, g.free_list);
	ml_free(env, g.feat);
	ml_free(env, g.jobs);
	ml_free(env, g.eval);
	ml_free(env, g.task_split);
	ml_free(env, g.chunks);
	ml_free(env, g.pend);
	ml_free(env, g.mids);
	if (st != ML_OK)
		trees_model_free(env, out);
	return st;
}
