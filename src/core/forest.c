/*
 * forest.c: decision tree and random forest fitting around cart_grow().
 *
 * Trees are grown in waves of one tree per worker thread; each tree draws
 * its bootstrap and feature choices from its own RNG stream (seed, tree
 * index), and the main thread appends the trees in index order, so the model
 * does not depend on the thread count. The out-of-bag score (accuracy, or
 * R^2 for regression) is accumulated per row in tree order.
 */
#include "trees_int.h"

#include <math.h>
#include <string.h>

#define STACK_CAP (2 * (TREES_MAX_DEPTH + 2))

typedef struct CartRun
{
	const CartShared *s;
	CartWork   *works;
	int			t0;
	int			nb;				/* trees in this wave */
	bool		bootstrap;
	const uint32_t *rows;
	uint32_t	n_train;
	const double *cw;
	uint64_t	seed;
	/* OOB */
	double	   *oob_acc;		/* n_train * width */
	uint32_t   *oob_cnt;
	double	  **leafvec;		/* per wave tree: K per training node (classify) */
	int			width;
} CartRun;

static int
cart_mtry(const TreeParams *p, int d)
{
	int			m = d;

	switch (p->max_features)
	{
		case TREE_MF_DEFAULT:
			m = (p->algorithm == TREE_ALGO_RANDOM_FOREST && p->task == ML_TASK_CLASSIFY) ?
				(int) floor(sqrt((double) d)) : d;
			break;
		case TREE_MF_ALL:
			m = d;
			break;
		case TREE_MF_SQRT:
			m = (int) floor(sqrt((double) d));
			break;
		case TREE_MF_LOG2:
			m = (int) floor(log2((double) d));
			break;
		case TREE_MF_FRACTION:
			m = (int) floor(p->max_features_value * d);
			break;
		case TREE_MF_COUNT:
			m = (int) p->max_features_value;
			break;
	}
	if (m < 1)
		m = 1;
	if (m > d)
		m = d;
	return m;
}

static int64_t
cart_max_nodes(int64_t n_train, const TreeParams *p)
{
	int			D = p->max_depth > 0 ? p->max_depth : TREES_MAX_DEPTH;
	int64_t		msl = p->min_samples_leaf > 0 ? p->min_samples_leaf : 1;
	int64_t		m = 2 * ((n_train + msl - 1) / msl) + 1;

	if (D < 30 && m > ((int64_t) 1 << (D + 1)))
		m = ((int64_t) 1 << (D + 1));
	return m;
}

size_t
cart_memory_needed(int64_t n, int d, int n_classes, const TreeParams *p)
{
	int			K = p->task == ML_TASK_CLASSIFY ? n_classes : 0;
	int			S = K > 0 ? K + 1 : 3;
	int			nw = p->algorithm == TREE_ALGO_RANDOM_FOREST ?
		(p->n_threads > 0 ? p->n_threads : 2) : 1;
	double		per,
				total;
	int64_t		max_tn = cart_max_nodes(n, p);

	per = (double) n * (4 + 4 + 4) + (double) max_tn * sizeof(TrainNode) +
		(double) d * 256 * S * 8 + (double) d * 4;
	if (p->ccp_alpha > 0)
		per += (double) max_tn * 13;
	total = per * nw + (double) n * 4;
	if (p->algorithm == TREE_ALGO_RANDOM_FOREST && p->oob_score)
		total += (double) n * ((K > 0 ? K : 1) * 8.0 + 4);
	if (K > 0)
		total += (double) nw * max_tn * K * 8.0;
	if (total > (double) SIZE_MAX / 2)
		return SIZE_MAX;
	return (size_t) total;
}

static void
cart_task(void *arg, int task, int n_tasks)
{
	CartRun    *run = arg;
	const CartShared *s = run->s;
	int			i;

	for (i = task; i < run->nb; i += n_tasks)
	{
		CartWork   *w = &run->works[i];
		int64_t		tree = run->t0 + i;
		uint32_t	k;

		ml_rng_seed(&w->rng, run->seed ^ (UINT64_C(0xD1B54A32D192ED03) * (uint64_t) (tree + 1)));
		if (run->bootstrap)
		{
			for (k = 0; k < run->n_train; k++)
				w->w[run->rows[k]] = 0;
			for (k = 0; k < run->n_train; k++)
				w->w[run->rows[ml_rng_below(&w->rng, run->n_train)]] += 1.0f;
		}
		else
			for (k = 0; k < run->n_train; k++)
				w->w[run->rows[k]] = 1.0f;
		w->n_idx = 0;
		for (k = 0; k < run->n_train; k++)
		{
			uint32_t	r = run->rows[k];

			if (w->w[r] > 0)
			{
				if (run->cw)
					w->w[r] *= (float) run->cw[s->data->y_class[r]];
				w->idx[w->n_idx++] = r;
			}
		}
		cart_grow(s, w);
	}
}

static void
oob_task(void *arg, int task, int n_tasks)
{
	CartRun    *run = arg;
	const CartShared *s = run->s;
	uint32_t	k0 = (uint32_t) ((uint64_t) run->n_train * task / n_tasks),
				k1 = (uint32_t) ((uint64_t) run->n_train * (task + 1) / n_tasks),
				k;
	int			i,
				c;

	for (k = k0; k < k1; k++)
	{
		uint32_t	r = run->rows[k];
		const uint8_t *row = s->data->B + (size_t) r * s->d;

		for (i = 0; i < run->nb; i++)
		{
			CartWork   *w = &run->works[i];
			int			leaf;

			if (w->w[r] != 0)
				continue;
			leaf = tn_leaf(w->tn, row, s->nb);
			if (s->K > 0)
				for (c = 0; c < s->K; c++)
					run->oob_acc[(size_t) k * s->K + c] += run->leafvec[i][(size_t) leaf * s->K + c];
			else
				run->oob_acc[k] += w->tn[leaf].value;
			run->oob_cnt[k]++;
		}
	}
}

MlStatus
cart_fit(const MlEnv *env, const TreeData *data, const TreeParams *p, TreeModel *out,
		 TreeFitInfo *info, MlError *err)
{
	int64_t		n = data->n;
	int			d = data->d;
	bool		classify = p->task == ML_TASK_CLASSIFY;
	bool		rf = p->algorithm == TREE_ALGO_RANDOM_FOREST;
	int			n_trees = rf ? p->n_estimators : 1;
	int			K = classify ? data->n_classes : 0;
	CartShared	s;
	CartRun		run;
	ModelBuilder mb;
	CartWork   *works = NULL;
	uint32_t   *rows = NULL,
			   *off = NULL,
				n_train = 0,
				slots = 0;
	double	   *cw = NULL;
	int			nw,
				i,
				j,
				t0;
	int64_t		max_tn,
				r;
	MlStatus	st = ML_OK;

	memset(&s, 0, sizeof(s));
	memset(&run, 0, sizeof(run));
	memset(&mb, 0, sizeof(mb));
	memset(out, 0, sizeof(*out));
	if (n > (int64_t) UINT32_MAX / 2)
		return ml_fail(err, ML_ERR_DATA, "%lld rows exceed the limit of %u for trees",
					   (long long) n, UINT32_MAX / 2);
	rows = ml_alloc(env, sizeof(uint32_t) * (size_t) n);
	off = ml_alloc(env, sizeof(uint32_t) * ((size_t) d + 1));
	if (!rows || !off)
		goto oom;
	for (r = 0; r < n; r++)
		if (!(data->valid_mask && data->valid_mask[r]))
			rows[n_train++] = (uint32_t) r;
	for (j = 0; j < d; j++)
	{
		off[j] = slots;
		slots += (uint32_t) data->bins->n_bins[j] + 1;
	}
	off[d] = slots;
	if (classify && p->class_weight != TREE_CW_NONE)
	{
		st = trees_class_weights(env, data, p, &cw, err);
		if (st != ML_OK)
			goto done;
	}
	s.data = data;
	s.p = p;
	s.d = d;
	s.nb = data->bins->n_bins;
	s.off = off;
	s.slots = slots;
	s.K = K;
	s.S = classify ? K + 1 : 3;
	s.crit = p->criterion != TREE_CRIT_DEFAULT ? p->criterion :
		classify ? TREE_CRIT_GINI : TREE_CRIT_SQUARED_ERROR;
	s.max_depth = p->max_depth > 0 ? p->max_depth : TREES_MAX_DEPTH;
	s.msl = p->min_samples_leaf;
	s.mss = p->min_samples_split;
	s.mtry = cart_mtry(p, d);

	nw = env->n_threads > 1 ? env->n_threads : 1;
	if (nw > n_trees)
		nw = n_trees;
	if (nw > 64)
		nw = 64;
	max_tn = cart_max_nodes(n_train, p);
	works = ml_calloc(env, nw, sizeof(CartWork));
	run.leafvec = ml_calloc(env, nw, sizeof(double *));
	if (!works || !run.leafvec)
		goto oom;
	for (i = 0; i < nw; i++)
	{
		CartWork   *w = &works[i];

		w->idx = ml_alloc(env, sizeof(uint32_t) * n_train);
		w->tmp = ml_alloc(env, sizeof(uint32_t) * n_train);
		w->w = ml_calloc(env, (size_t) n, sizeof(float));
		w->tn = ml_alloc(env, sizeof(TrainNode) * (size_t) max_tn);
		w->max_tn = (int) max_tn;
		w->hist = ml_alloc(env, sizeof(double) * (size_t) slots * s.S);
		w->scan = ml_alloc(env, sizeof(double) * 5 * (size_t) s.S);
		w->feat = ml_alloc(env, sizeof(int) * (size_t) d);
		w->stack = ml_alloc(env, sizeof(int) * STACK_CAP);
		if (!w->idx || !w->tmp || !w->w || !w->tn || !w->hist || !w->scan || !w->feat ||
			!w->stack)
			goto oom;
		if (p->ccp_alpha > 0)
		{
			w->rsub = ml_alloc(env, sizeof(double) * (size_t) max_tn);
			w->nleaf = ml_alloc(env, sizeof(int) * (size_t) max_tn);
			w->reach = ml_alloc(env, (size_t) max_tn);
			if (!w->rsub || !w->nleaf || !w->reach)
				goto oom;
		}
	}
	run.s = &s;
	run.works = works;
	run.bootstrap = rf && p->bootstrap;
	run.rows = rows;
	run.n_train = n_train;
	run.cw = cw;
	run.seed = p->seed;
	run.width = classify ? K : 1;
	if (run.bootstrap && p->oob_score)
	{
		run.oob_acc = ml_calloc(env, n_train, sizeof(double) * run.width);
		run.oob_cnt = ml_calloc(env, n_train, sizeof(uint32_t));
		if (!run.oob_acc || !run.oob_cnt)
			goto oom;
	}

	out->algorithm = p->algorithm;
	out->task = p->task;
	out->objective = TREE_OBJ_DEFAULT;
	out->n_features = (uint32_t) d;
	out->n_classes = classify ? (uint32_t) K : 0;
	out->n_outputs = classify ? (uint32_t) K : 1;
	out->leaf_width = classify ? (uint32_t) K : 1;
	out->trees_per_round = 1;
	out->best_iteration = -1;
	out->oob_score = NAN;
	out->valid_loss = NAN;
	out->learning_rate = 0;
	out->importance = ml_calloc(env, d, sizeof(double));
	if (!out->importance)
		goto oom;
	mb.m = out;

	for (t0 = 0; t0 < n_trees; t0 += nw)
	{
		int			nb = n_trees - t0 < nw ? n_trees - t0 : nw;
		MlEnv		e = *env;

		for (i = 0; i < nb; i++)
			if (ml_check(env, rf ? "random_forest" : "decision_tree", t0 + i, n_trees, 0))
			{
				st = ml_fail_cancelled(err);
				goto done;
			}
		run.t0 = t0;
		run.nb = nb;
		e.n_threads = nb;
		/* one tree at a time runs on this thread: it may check for cancel */
		works[0].check_env = nb == 1 ? env : NULL;
		ml_parallel_for(&e, nb, cart_task, &run);
		if (works[0].cancelled)
		{
			st = ml_fail_cancelled(err);
			goto done;
		}
		for (i = 0; i < nb; i++)
		{
			CartWork   *w = &works[i];
			double	   *lv = NULL;

			if (classify)
			{
				int			k;

				lv = ml_calloc(env, (size_t) w->n_tn, sizeof(double) * K);
				if (!lv)
					goto oom;
				for (k = 0; k < w->n_tn; k++)
				{
					const TrainNode *nd = &w->tn[k];
					double	   *v = lv + (size_t) k * K;
					double		sum = 0;
					uint32_t	q;
					int			c;

					if (nd->left >= 0)
						continue;
					for (q = nd->begin; q < nd->end; q++)
					{
						uint32_t	rr = w->idx[q];

						v[data->y_class[rr]] += w->w[rr];
					}
					for (c = 0; c < K; c++)
						sum += v[c];
					for (c = 0; c < K; c++)
						v[c] = sum > 0 ? v[c] / sum : 1.0 / K;
				}
			}
			run.leafvec[i] = lv;
			if (tm_append_tree(env, &mb, w->tn, data->bins, lv, err) != ML_OK)
			{
				st = err->code;
				goto done;
			}
		}
		if (run.oob_acc)
		{
			int			tasks = (int) (n_train / 8192 + 1);

			if (tasks > 64)
				tasks = 64;
			ml_parallel_for(env, tasks, oob_task, &run);
		}
		for (i = 0; i < nb; i++)
		{
			ml_free(env, run.leafvec[i]);
			run.leafvec[i] = NULL;
		}
	}
	if (run.oob_acc)
	{
		uint32_t	k,
					cnt = 0;
		double		good = 0,
					sse = 0,
					sy = 0,
					syy = 0;

		for (k = 0; k < n_train; k++)
		{
			uint32_t	rr = rows[k];

			if (run.oob_cnt[k] == 0)
				continue;
			cnt++;
			if (classify)
			{
				const double *a = run.oob_acc + (size_t) k * K;
				int			c,
							best = 0;

				for (c = 1; c < K; c++)
					if (a[c] > a[best])
						best = c;
				good += best == data->y_class[rr];
			}
			else
			{
				double		pr = run.oob_acc[k] / run.oob_cnt[k],
							y = data->y[rr];

				sse += (pr - y) * (pr - y);
				sy += y;
				syy += y * y;
			}
		}
		if (cnt > 0)
		{
			if (classify)
				out->oob_score = good / cnt;
			else
			{
				double		sst = syy - sy * sy / cnt;

				out->oob_score = sst > 0 ? 1.0 - sse / sst : NAN;
			}
		}
	}
	if (!tm_finish(env, out, err))
	{
		st = err->code;
		goto done;
	}
	if (info)
	{
		info->rounds = n_trees;
		info->n_leaves = tm_count_leaves(out);
		info->train_loss = NAN;
	}
	goto done;

oom:
	st = ml_fail(err, ML_ERR_MEMORY, "out of memory training %s on %lld rows x %d features",
				 rf ? "random_forest" : "decision_tree", (long long) n, d);
done:
	if (works)
	{
		for (i = 0; i < nw; i++)
		{
			CartWork   *w = &works[i];

			ml_free(env, w->idx);
			ml_free(env, w->tmp);
			ml_free(env, w->w);
			ml_free(env, w->tn);
			ml_free(env, w->hist);
			ml_free(env, w->scan);
			ml_free(env, w->feat);
			ml_free(env, w->stack);
			ml_free(env, w->rsub);
			ml_free(env, w->nleaf);
			ml_free(env, w->reach);
			if (run.leafvec)
				ml_free(env, run.leafvec[i]);
		}
	}
	ml_free(env, works);
	ml_free(env, run.leafvec);
	ml_free(env, run.oob_acc);
	ml_free(env, run.oob_cnt);
	ml_free(env, rows);
	ml_free(env, off);
	ml_free(env, cw);
	if (st != ML_OK)
		trees_model_free(env, out);
	return st;
}
