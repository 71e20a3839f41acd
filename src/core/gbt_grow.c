/*
 * gbt_grow.c: growing one gbt tree. Each tree grows depth-wise (or
 * loss-guided when max_leaves is set) over an index array partitioned in
 * place, one node range per node. Per split, only the smaller child's
 * histogram is built; the larger one is the parent's minus it, computed in
 * the parent's buffer.
 */
#include "trees_int.h"

#include <string.h>

#define KRT_EPS 1e-6

/* Whether a node may split: depth, rows and hessian weight allow it. */
static bool
can_split(const Gbt *g, const TrainNode *nd)
{
	return nd->depth < g->max_depth && nd->end - nd->begin >= 2 && nd->hess_sum >= 2 * g->mcw;
}

/* Whether a node's best split is worth taking (gain over gamma). */
static bool
split_ok(const Gbt *g, int node)
{
	const Split *s = &g->split[node];

	return s->feature != INT32_MAX &&
		s->gain > KRT_EPS && s->gain >= g->gamma;
}

/* Gives a node's histogram buffer back to the pool. */
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

/* Phase 0 of the partition for one task's chunks. */
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

			if (k + PART_PF_DIST < ch->end)
				__builtin_prefetch(col + ix[k + PART_PF_DIST] * d);
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
	g->idx_in_order = false;
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
	trees_run_tasks(g->env, nt, part_task, g);

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

/* Moves the rows of nodes pend[0..np) to their children (mids: first right rows). */
static void
split_rows(Gbt *g, const int *pend, int np, uint32_t *mids)
{
	if (g->by_pos)
		gbt_pos_partition(g, pend, np, mids);
	else
		partition_nodes(g, pend, np, mids);
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
				large,
				built = -1;
	bool		evl,
				evr;

	if (g->by_pos && g->pos_fbuf[node] >= 0)
	{
		/* the fused move pass built the smaller child's histogram here */
		built = g->pos_fbuf[node];
		g->pos_fbuf[node] = -1;
	}

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
	L->grad_sum = s->GL;
	L->hess_sum = s->HL;
	R->grad_sum = nd->grad_sum - s->GL;
	R->hess_sum = nd->hess_sum - s->HL;
	evl = can_split(g, L);
	evr = can_split(g, R);
	if (!evl && !evr)
	{
		release_hist(g, nd);
		if (built >= 0)
			g->free_list[g->n_free++] = built;
		return;
	}
	small = (L->end - L->begin <= R->end - R->begin) ? l : l + 1;
	large = small == l ? l + 1 : l;
	if (built < 0 && g->n_free == 0)
	{
		release_hist(g, nd);
		return;					/* pool exhausted (GBT_POOL_BYTES): the children stay leaves */
	}
	g->tn[small].hist = built >= 0 ? built : g->free_list[--g->n_free];
	g->jobs[g->n_jobs].built = built >= 0;
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

/*
 * Depth-wise growth: splits every splittable node of a level together,
 * starting from the evaluated root.
 */
static void
grow_depthwise(Gbt *g)
{
	int			lo = 0,
				hi = 1,
				i;

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
			if (g->by_pos)
				gbt_pos_rules(g, g->pend, np);
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
			split_rows(g, g->pend, np, g->mids);
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
			/* the smaller children's histograms in the move pass where it fits */
			if (!gbt_pos_fuse(g, g->pend, np, g->mids))
				split_rows(g, g->pend, np, g->mids);
			for (q = 0; q < np; q++)
				split_finish(g, g->pend[q], g->mids[q]);
		}
		gbt_run(g);
		release_unneeded(g, first, g->n_tn);
		lo = first;
		hi = g->n_tn;
	}
}

/* Loss-guided growth: always splits the open leaf with the largest gain. */
static void
grow_lossguided(Gbt *g, int max_leaves)
{
	int			leaves = 1,
				i;

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

/*
 * Grows one tree on rows idx[0, ns) (rows 0..ns-1 when g->idx_in_order)
 * with gradient pairs g->gh: the root's sums and histogram (in one pass
 * where gbt_hist_root can), then depth-wise or loss-guided growth.
 */
void
gbt_grow_tree(Gbt *g, uint32_t ns, int max_leaves)
{
	TrainNode  *root = &g->tn[0];
	uint32_t	k;
	double		G = 0,
				H = 0;
	int			i;
	bool		built;

	g->n_tn = 1;
	g->n_free = 0;
	for (i = g->n_pool - 1; i >= 0; i--)
		g->free_list[g->n_free++] = i;
	memset(root, 0, sizeof(*root));
	root->left = -1;
	root->begin = 0;
	root->end = ns;
	root->hist = g->free_list[--g->n_free];
	/* rows in order: the sums and the histogram in one pass (rows split between threads) */
	built = gbt_hist_root(g, ns, g->pool + (size_t) root->hist * g->slots, &G, &H);
	for (k = 0; !built && k < ns; k++)
	{
		uint32_t	r = g->idx_in_order ? k : g->idx[k];

		G += g->gh[2 * (size_t) r];
		H += g->gh[2 * (size_t) r + 1];
	}
	root->grad_sum = G;
	root->hess_sum = H;
	if (g->by_pos)
		gbt_pos_start(g, ns);
	g->n_jobs = g->n_eval = 0;
	if (!can_split(g, root))
	{
		release_hist(g, root);
		return;
	}
	g->jobs[0].small = 0;
	g->jobs[0].large = -1;
	g->jobs[0].built = built;
	g->n_jobs = 1;
	g->eval[0] = 0;
	g->n_eval = 1;
	gbt_run(g);
	if (max_leaves <= 0)
		grow_depthwise(g);
	else
		grow_lossguided(g, max_leaves);
}
