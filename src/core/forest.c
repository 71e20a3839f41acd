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

/* A wave of trees grown together, and the out-of-bag sums. */
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

/* Grows one task's trees of the wave: bootstrap weights, rows, cart_grow. */
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

/* Adds the wave's trees' predictions to the OOB sums of one task's rows. */
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

/* The state of one decision tree or random forest fit. */
typedef struct CartFit
{
	const MlEnv *env;
	const TreeData *data;
	const TreeParams *p;
	TreeModel  *out;
	MlError    *err;
	bool		classify;
	bool		rf;
	int			n_trees;
	int			K;				/* classes; 0 for regression */
	uint32_t   *rows;			/* training rows (not validation rows) */
	uint32_t	n_train;
	uint32_t   *off;			/* histogram slot of each feature's first bin (d + 1) */
	double	   *cw;				/* class weights or NULL */
	int			nw;				/* workers: trees grown at once */
	CartShared	s;
	CartRun		run;
	CartWork   *works;
	ModelBuilder mb;
} CartFit;

/* Training rows, histogram offsets, class weights and what every tree shares. */
static MlStatus
cart_prepare(CartFit *f)
{
	const TreeData *data = f->data;
	const TreeParams *p = f->p;
	CartShared *s = &f->s;
	int64_t		r;
	uint32_t	slots;
	int			d = data->d;

	f->rows = ml_alloc(f->env, sizeof(uint32_t) * (size_t) data->n);
	f->off = ml_alloc(f->env, sizeof(uint32_t) * ((size_t) d + 1));
	if (!f->rows || !f->off)
		return ML_ERR_MEMORY;
	for (r = 0; r < data->n; r++)
		if (!(data->valid_mask && data->valid_mask[r]))
			f->rows[f->n_train++] = (uint32_t) r;
	slots = trees_hist_offsets(data->bins, d, f->off);
	if (f->classify && p->class_weight != TREE_CW_NONE)
	{
		MlStatus	st = trees_class_weights(f->env, data, p, &f->cw, f->err);

		if (st != ML_OK)
			return st;
	}
	s->data = data;
	s->p = p;
	s->d = d;
	s->nb = data->bins->n_bins;
	s->off = f->off;
	s->slots = slots;
	s->K = f->K;
	s->S = f->classify ? f->K + 1 : 3;
	s->crit = p->criterion != TREE_CRIT_DEFAULT ? p->criterion :
		f->classify ? TREE_CRIT_GINI : TREE_CRIT_SQUARED_ERROR;
	s->max_depth = p->max_depth > 0 ? p->max_depth : TREES_MAX_DEPTH;
	s->msl = p->min_samples_leaf;
	s->mss = p->min_samples_split;
	s->mtry = cart_mtry(p, d);
	return ML_OK;
}

/* One scratch per worker, and the wave's run state (OOB sums when asked). */
static MlStatus
cart_workers_init(CartFit *f)
{
	const MlEnv *env = f->env;
	const TreeParams *p = f->p;
	CartRun    *run = &f->run;
	int64_t		max_tn;
	int			i;

	f->nw = env->n_threads > 1 ? env->n_threads : 1;
	if (f->nw > f->n_trees)
		f->nw = f->n_trees;
	if (f->nw > 64)
		f->nw = 64;
	max_tn = cart_max_nodes(f->n_train, p);
	f->works = ml_calloc(env, f->nw, sizeof(CartWork));
	run->leafvec = ml_calloc(env, f->nw, sizeof(double *));
	if (!f->works || !run->leafvec)
		return ML_ERR_MEMORY;
	for (i = 0; i < f->nw; i++)
	{
		CartWork   *w = &f->works[i];

		w->idx = ml_alloc(env, sizeof(uint32_t) * f->n_train);
		w->tmp = ml_alloc(env, sizeof(uint32_t) * f->n_train);
		w->w = ml_calloc(env, (size_t) f->data->n, sizeof(float));
		w->tn = ml_alloc(env, sizeof(TrainNode) * (size_t) max_tn);
		w->max_tn = (int) max_tn;
		w->hist = ml_alloc(env, sizeof(double) * (size_t) f->s.slots * f->s.S);
		w->scan = ml_alloc(env, sizeof(double) * 5 * (size_t) f->s.S);
		w->feat = ml_alloc(env, sizeof(int) * (size_t) f->data->d);
		w->stack = ml_alloc(env, sizeof(int) * STACK_CAP);
		if (!w->idx || !w->tmp || !w->w || !w->tn || !w->hist || !w->scan || !w->feat ||
			!w->stack)
			return ML_ERR_MEMORY;
		if (p->ccp_alpha > 0)
		{
			w->rsub = ml_alloc(env, sizeof(double) * (size_t) max_tn);
			w->nleaf = ml_alloc(env, sizeof(int) * (size_t) max_tn);
			w->reach = ml_alloc(env, (size_t) max_tn);
			if (!w->rsub || !w->nleaf || !w->reach)
				return ML_ERR_MEMORY;
		}
	}
	run->s = &f->s;
	run->works = f->works;
	run->bootstrap = f->rf && p->bootstrap;
	run->rows = f->rows;
	run->n_train = f->n_train;
	run->cw = f->cw;
	run->seed = p->seed;
	run->width = f->classify ? f->K : 1;
	if (run->bootstrap && p->oob_score)
	{
		run->oob_acc = ml_calloc(env, f->n_train, sizeof(double) * run->width);
		run->oob_cnt = ml_calloc(env, f->n_train, sizeof(uint32_t));
		if (!run->oob_acc || !run->oob_cnt)
			return ML_ERR_MEMORY;
	}
	return ML_OK;
}

/* The model's header. */
static MlStatus
cart_model_init(CartFit *f)
{
	TreeModel  *out = f->out;

	out->algorithm = f->p->algorithm;
	out->task = f->p->task;
	out->objective = TREE_OBJ_DEFAULT;
	out->n_features = (uint32_t) f->data->d;
	out->n_classes = f->classify ? (uint32_t) f->K : 0;
	out->n_outputs = f->classify ? (uint32_t) f->K : 1;
	out->leaf_width = f->classify ? (uint32_t) f->K : 1;
	out->trees_per_round = 1;
	out->best_iteration = -1;
	out->oob_score = NAN;
	out->valid_loss = NAN;
	out->learning_rate = 0;
	out->importance = ml_calloc(f->env, f->data->d, sizeof(double));
	if (!out->importance)
		return ML_ERR_MEMORY;
	f->mb.m = out;
	return ML_OK;
}

/*
 * Class probabilities of a grown tree's leaves (K per training node, from
 * the weighted classes of their rows; uniform for a weightless leaf).
 */
static MlStatus
cart_leaf_vectors(const CartFit *f, const CartWork *w, double **out)
{
	int			K = f->K,
				k;
	double	   *lv = ml_calloc(f->env, (size_t) w->n_tn, sizeof(double) * K);

	*out = lv;
	if (!lv)
		return ML_ERR_MEMORY;
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

			v[f->data->y_class[rr]] += w->w[rr];
		}
		for (c = 0; c < K; c++)
			sum += v[c];
		for (c = 0; c < K; c++)
			v[c] = sum > 0 ? v[c] / sum : 1.0 / K;
	}
	return ML_OK;
}

/*
 * One wave: trees t0 .. t0 + nb - 1 grown at once (one per worker), then
 * appended in index order and added to the out-of-bag sums.
 */
static MlStatus
cart_wave(CartFit *f, int t0, int nb)
{
	const MlEnv *env = f->env;
	CartRun    *run = &f->run;
	int			i;

	/* progress: t0 trees done (no loss: a forest has none to report) */
	if (ml_check(env, f->rf ? "random_forest" : "decision_tree", t0, f->n_trees, NAN))
		return ml_fail_cancelled(f->err);
	run->t0 = t0;
	run->nb = nb;
	/* one tree at a time runs on this thread: it may check for cancel */
	f->works[0].check_env = nb == 1 ? env : NULL;
	trees_run_tasks(env, nb, cart_task, run);
	if (f->works[0].cancelled)
		return ml_fail_cancelled(f->err);
	for (i = 0; i < nb; i++)
	{
		CartWork   *w = &f->works[i];
		double	   *lv = NULL;

		if (f->classify && cart_leaf_vectors(f, w, &lv) != ML_OK)
			return ML_ERR_MEMORY;
		run->leafvec[i] = lv;
		if (tm_append_tree(env, &f->mb, w->tn, f->data->bins, lv, f->err) != ML_OK)
			return f->err->code;
	}
	if (run->oob_acc)
	{
		int			tasks = (int) (f->n_train / 8192 + 1);

		if (tasks > 64)
			tasks = 64;
		ml_parallel_for(env, tasks, oob_task, run);
	}
	for (i = 0; i < nb; i++)
	{
		ml_free(env, run->leafvec[i]);
		run->leafvec[i] = NULL;
	}
	return ML_OK;
}

/*
 * The out-of-bag score over rows some tree left out: accuracy of the
 * summed class probabilities, or R^2 of the mean prediction.
 */
static void
cart_oob_score(CartFit *f)
{
	const TreeData *data = f->data;
	const CartRun *run = &f->run;
	int			K = f->K;
	uint32_t	k,
				cnt = 0;
	double		good = 0,
				sse = 0,
				sy = 0,
				syy = 0;

	for (k = 0; k < f->n_train; k++)
	{
		uint32_t	rr = f->rows[k];

		if (run->oob_cnt[k] == 0)
			continue;
		cnt++;
		if (f->classify)
		{
			const double *a = run->oob_acc + (size_t) k * K;
			int			c,
						best = 0;

			for (c = 1; c < K; c++)
				if (a[c] > a[best])
					best = c;
			good += best == data->y_class[rr];
		}
		else
		{
			double		pr = run->oob_acc[k] / run->oob_cnt[k],
						y = data->y[rr];

			sse += (pr - y) * (pr - y);
			sy += y;
			syy += y * y;
		}
	}
	if (cnt > 0)
	{
		if (f->classify)
			f->out->oob_score = good / cnt;
		else
		{
			double		sst = syy - sy * sy / cnt;

			f->out->oob_score = sst > 0 ? 1.0 - sse / sst : NAN;
		}
	}
}

/* Grows every tree in waves, then the OOB score, the model check and info. */
static MlStatus
cart_grow_all(CartFit *f, TreeFitInfo *info)
{
	int			t0;
	MlStatus	st;

	for (t0 = 0; t0 < f->n_trees; t0 += f->nw)
	{
		st = cart_wave(f, t0, f->n_trees - t0 < f->nw ? f->n_trees - t0 : f->nw);
		if (st != ML_OK)
			return st;
	}
	if (ml_check(f->env, f->rf ? "random_forest" : "decision_tree", f->n_trees, f->n_trees, NAN))
		return ml_fail_cancelled(f->err);
	if (f->run.oob_acc)
		cart_oob_score(f);
	if (!tm_finish(f->env, f->out, f->err))
		return f->err->code;
	if (info)
	{
		info->rounds = f->n_trees;
		info->n_leaves = tm_count_leaves(f->out);
		info->train_loss = NAN;
	}
	return ML_OK;
}

/* Frees the fit's buffers (not the model). */
static void
cart_fit_free(CartFit *f)
{
	const MlEnv *env = f->env;
	int			i;

	if (f->works)
	{
		for (i = 0; i < f->nw; i++)
		{
			CartWork   *w = &f->works[i];

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
			if (f->run.leafvec)
				ml_free(env, f->run.leafvec[i]);
		}
	}
	ml_free(env, f->works);
	ml_free(env, f->run.leafvec);
	ml_free(env, f->run.oob_acc);
	ml_free(env, f->run.oob_cnt);
	ml_free(env, f->rows);
	ml_free(env, f->off);
	ml_free(env, f->cw);
}

/*
 * Fits a decision tree or random forest: rows and shared state, workers,
 * the model header, the trees in waves. A phase that returns ML_ERR_MEMORY
 * without a message gets the out-of-memory message here.
 */
MlStatus
cart_fit(const MlEnv *env, const TreeData *data, const TreeParams *p, TreeModel *out,
		 TreeFitInfo *info, MlError *err)
{
	CartFit		f;
	MlStatus	st;

	memset(&f, 0, sizeof(f));
	memset(out, 0, sizeof(*out));
	f.env = env;
	f.data = data;
	f.p = p;
	f.out = out;
	f.err = err;
	f.classify = p->task == ML_TASK_CLASSIFY;
	f.rf = p->algorithm == TREE_ALGO_RANDOM_FOREST;
	f.n_trees = f.rf ? p->n_estimators : 1;
	f.K = f.classify ? data->n_classes : 0;
	if (data->n > (int64_t) UINT32_MAX / 2)
		return ml_fail(err, ML_ERR_DATA, "%lld rows exceed the limit of %u for trees",
					   (long long) data->n, UINT32_MAX / 2);
	st = cart_prepare(&f);
	if (st == ML_OK)
		st = cart_workers_init(&f);
	if (st == ML_OK)
		st = cart_model_init(&f);
	if (st == ML_OK)
		st = cart_grow_all(&f, info);
	if (st == ML_ERR_MEMORY && err->code == ML_OK)
		st = ml_fail(err, ML_ERR_MEMORY, "out of memory training %s on %lld rows x %d features",
					 f.rf ? "random_forest" : "decision_tree", (long long) data->n, data->d);
	cart_fit_free(&f);
	if (st != ML_OK)
		trees_model_free(env, out);
	return st;
}
