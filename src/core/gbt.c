/*
 * gbt.c: gradient boosting on histograms, second order as XGBoost "hist".
 *
 * Rows are binned once (row-major bytes). Each tree grows depth-wise (or
 * loss-guided when max_leaves is set). Depth-wise trees of one-tree rounds
 * move rows to their children by a per-row node position, a pass in row
 * order per level (gbt_pos.c); the others partition an index array in
 * place, one node range per node. Per split, only the smaller child's
 * histogram is built; the larger one is the parent's minus it, computed in
 * the parent's buffer. Histogram building and split search run in parallel
 * over disjoint feature ranges or over whole nodes, so every sum is taken in
 * the same row order whatever the thread count: models are bit-identical
 * for 1 or N threads.
 *
 * This file runs the rounds: base margins, the row and column samples,
 * leaf values and margin updates, early stopping. gbt_loss.c computes the
 * gradients and the losses; gbt_grow.c grows one tree; gbt_hist.c builds
 * the histograms and finds the splits.
 */
#include "trees_int.h"

#include <float.h>
#include <math.h>
#include <string.h>

#define ROW(k) (rows ? rows[k] : (uint32_t) (k))
#define GBT_POOL_BYTES ((size_t) 256 << 20)

/* Margin updates of one tree's rows, split by row ranges over tasks. */
typedef struct MarginTask
{
	Gbt		   *g;
	float	   *mc;
	uint32_t	ns;
} MarginTask;

/* Adds leaf values to the margins of the nodes whose first row is in this task's range. */
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

/* The objective: as given, or by task and class count. */
static TreeObjective
gbt_objective(const TreeParams *p, int n_classes)
{
	if (p->objective != TREE_OBJ_DEFAULT)
		return p->objective;
	if (p->task == ML_TASK_REGRESS)
		return TREE_OBJ_REG_SQUAREDERROR;
	return n_classes > 2 ? TREE_OBJ_MULTI_SOFTMAX : TREE_OBJ_BINARY_LOGISTIC;
}

/* Maximum depth (0: the limit TREES_MAX_DEPTH). */
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

/*
 * Whether the grower splits rows by position (gbt_pos.c): depth-wise trees
 * of at most GBT_POS_NODES nodes, one tree a round. Loss-guided and deeper
 * trees partition the index in place, and so do multi:softmax rounds: there
 * each class's tree starts from the row order the previous class's tree
 * left in idx, and its sums follow that order (not ascending rows).
 */
static bool
gbt_by_pos(const TreeParams *p, int K, int max_tn)
{
	return p->max_leaves <= 0 && K == 1 && max_tn < GBT_POS_NODES;
}

/* Bytes a gbt fit of n rows x d features needs (for the memory budget). */
size_t
gbt_memory_needed(int64_t n, int d, int n_classes, const TreeParams *p)
{
	int			n_pool,
				max_tn,
				K = (p->task == ML_TASK_CLASSIFY && n_classes > 2) ? n_classes : 1;
	double		total;
	int			nt = p->n_threads > 0 ? p->n_threads : 2;

	gbt_sizes(n, p, &n_pool, &max_tn);
	total = (double) n * (4.0 * K + 8.0 * K + 4);	/* margins, gh, idx */
	if (gbt_by_pos(p, K, max_tn))
		total += (double) n * (max_tn + 1 > 256 ? 2 : 1) +	/* positions, rules, counts, cursors */
			(double) (max_tn + 1) * (sizeof(PosRule) + 1 + sizeof(v2d *) + sizeof(int) +
									 nt * (sizeof(uint32_t) + sizeof(uint32_t *))) +
			(double) nt * 64;
	else
	{
		total += (double) n * 2;	/* tmp (n / 2 rows) */
		total += (double) nt * PART_CHUNK * 4;	/* tmp when n / 2 is less than the partition scratch */
	}
	if (p->early_stopping_rounds > 0)
		total += (double) n * 4;	/* training / validation row lists */
	if ((double) n_pool * d * HIST_STRIDE * sizeof(v2d) > (double) GBT_POOL_BYTES)
		total += (double) GBT_POOL_BYTES;
	else
		total += (double) n_pool * d * HIST_STRIDE * sizeof(v2d);
	total += (double) max_tn * (sizeof(TrainNode) + sizeof(Split));
	total += (double) (2 * n_pool + 2) * nt * sizeof(Split) + (double) d * 64;
	/* the model: nodes and covers, arrays grown by doubling */
	total += (double) p->n_estimators * K * max_tn * (sizeof(TreeNode) + sizeof(double)) * 2;
	total += (double) (2 * n_pool + 2) * 2 * sizeof(int) + (double) nt * 8;	/* by-node plan */
	if (total > (double) SIZE_MAX / 2)
		return SIZE_MAX;
	return (size_t) total;
}

/* The state of one gbt fit, phase by phase. */
typedef struct GbtFit
{
	const MlEnv *env;
	const TreeData *data;
	const TreeParams *p;
	TreeModel  *out;
	MlError    *err;
	int64_t		n;
	int			d;
	TreeObjective obj;
	int			K;				/* trees per round: classes for multi:softmax, else 1 */
	uint32_t   *rows;			/* training rows, or NULL for 0..n-1 */
	uint32_t   *vrows;			/* validation rows */
	uint32_t	n_train;
	uint32_t	n_valid;
	uint32_t   *off;			/* histogram slot of each feature's first bin (d + 1) */
	uint32_t	slots;
	double	   *cw;				/* class weights or NULL */
	double	   *base;			/* base margins (K), until the model owns them */
	float	   *margin;			/* K x n margins, class-major */
	float	   *gh;				/* K x 2n gradient pairs */
	double	   *imp_best;		/* importances at the best validation round */
	double	   *loss_part;		/* training-loss chunk sums (with a trace) */
	int			loss_slot;		/* trace entry whose training loss is still to come, or -1 */
	Gbt			g;
	GbtGrad		ga;
	ModelBuilder mb;
	MlRng		rng;
	/* rounds */
	int			best_round;
	int			rounds_done;
	double		best_loss;
	double		last_loss;
} GbtFit;

/* Checks that the objective fits the task and the row count fits the row index. */
static MlStatus
gbt_check(const GbtFit *f)
{
	const TreeParams *p = f->p;

	if (f->obj == TREE_OBJ_REG_SQUAREDERROR && p->task != ML_TASK_REGRESS)
		return ml_fail(f->err, ML_ERR_PARAM, "objective reg:squarederror needs a regression target");
	if (f->obj != TREE_OBJ_REG_SQUAREDERROR && p->task != ML_TASK_CLASSIFY)
		return ml_fail(f->err, ML_ERR_PARAM, "objective %s needs a classification target",
					   f->obj == TREE_OBJ_BINARY_LOGISTIC ? "binary:logistic" : "multi:softmax");
	if (f->obj == TREE_OBJ_BINARY_LOGISTIC && f->data->n_classes != 2)
		return ml_fail(f->err, ML_ERR_PARAM,
					   "objective binary:logistic needs 2 classes, the target has %d",
					   f->data->n_classes);
	if (p->warm_start && gbt_warm_check(p->warm_start, f->data, f->obj, f->err) != ML_OK)
		return f->err->code;
	if (f->n > (int64_t) UINT32_MAX / 2)
		return ml_fail(f->err, ML_ERR_DATA, "%lld rows exceed the limit of %u for gbt",
					   (long long) f->n, UINT32_MAX / 2);
	return ML_OK;
}

/*
 * Row roles (without validation rows, training rows are 0..n-1 and rows is
 * NULL), histogram offsets and class weights.
 */
static MlStatus
gbt_prepare_rows(GbtFit *f)
{
	const TreeData *data = f->data;
	const MlEnv *env = f->env;
	int64_t		i,
				n = f->n;

	f->off = ml_alloc(env, sizeof(uint32_t) * ((size_t) f->d + 1));
	if (!f->off)
		return ML_ERR_MEMORY;
	if (data->valid_mask)
		for (i = 0; i < n; i++)
			f->n_valid += data->valid_mask[i] != 0;
	if (f->n_valid > 0)
	{
		f->rows = ml_alloc(env, sizeof(uint32_t) * (size_t) (n - f->n_valid));
		f->vrows = ml_alloc(env, sizeof(uint32_t) * (size_t) f->n_valid);
		if (!f->rows || !f->vrows)
			return ML_ERR_MEMORY;
		f->n_valid = 0;
		for (i = 0; i < n; i++)
		{
			if (data->valid_mask[i])
				f->vrows[f->n_valid++] = (uint32_t) i;
			else
				f->rows[f->n_train++] = (uint32_t) i;
		}
	}
	else
		f->n_train = (uint32_t) n;
	if (f->n_train == 0)
		return ml_fail(f->err, ML_ERR_DATA, "no training rows (every row is in the validation set)");
	if (f->p->early_stopping_rounds > 0 && f->n_valid == 0)
		return ml_fail(f->err, ML_ERR_PARAM,
					   "early_stopping_rounds needs validation rows (a validation split)");
	f->slots = trees_hist_offsets(data->bins, f->d, f->off);
	if (f->p->task == ML_TASK_CLASSIFY && f->p->class_weight != TREE_CW_NONE)
		return trees_class_weights(env, data, f->p, &f->cw, f->err);
	return ML_OK;
}

/*
 * The margins and gradient pairs of every row (K columns), faulted in at
 * once (ml_populate) where they will be written in full: the margins
 * always, the pairs when every row trains.
 */
static bool
gbt_alloc_margins(GbtFit *f, int K)
{
	size_t		n = (size_t) f->n * K;

	f->margin = ml_alloc(f->env, sizeof(float) * n);
	f->gh = ml_alloc(f->env, sizeof(float) * 2 * n);
	if (!f->margin || !f->gh)
		return false;
	ml_populate(f->margin, sizeof(float) * n);
	if (f->n_valid == 0)
		ml_populate(f->gh, sizeof(float) * 2 * n);
	return true;
}

/*
 * Base margins: the mean target, the log-odds of class 1, or centred log
 * class shares (weighted by class weights); then every row's margins.
 */
static MlStatus
gbt_base_margins(GbtFit *f)
{
	const TreeData *data = f->data;
	const uint32_t *rows = f->rows;
	int64_t		i;
	int			c,
				K = f->K;

	f->base = ml_calloc(f->env, K, sizeof(double));
	if (!f->base)
		return ML_ERR_MEMORY;
	if (f->p->warm_start)
	{
		/* continue from the parent: its base margins plus its trees' outputs */
		memcpy(f->base, f->p->warm_start->base_score, sizeof(double) * K);
		if (!gbt_alloc_margins(f, K))
			return ML_ERR_MEMORY;
		return gbt_warm_margins(f->env, f->p->warm_start, data, f->margin, f->err);
	}
	if (f->obj == TREE_OBJ_REG_SQUAREDERROR)
	{
		double		s = 0;

		for (i = 0; i < f->n_train; i++)
			s += gbt_target(data, ROW(i));
		f->base[0] = s / f->n_train;
	}
	else
	{
		double	   *cnt = ml_calloc(f->env, data->n_classes, sizeof(double));
		double		tot = 0;

		if (!cnt)
			return ML_ERR_MEMORY;
		for (i = 0; i < f->n_train; i++)
		{
			int			y = data->y_class[ROW(i)];

			cnt[y] += f->cw ? f->cw[y] : 1.0;
			tot += f->cw ? f->cw[y] : 1.0;
		}
		if (f->obj == TREE_OBJ_BINARY_LOGISTIC)
		{
			double		q = cnt[1] / tot;

			q = q < 1e-6 ? 1e-6 : q > 1 - 1e-6 ? 1 - 1e-6 : q;
			f->base[0] = log(q / (1 - q));
		}
		else
		{
			double		mean = 0;

			for (c = 0; c < K; c++)
			{
				double		q = cnt[c] / tot;

				f->base[c] = log(q < 1e-6 ? 1e-6 : q);
				mean += f->base[c] / K;
			}
			for (c = 0; c < K; c++)
				f->base[c] -= mean;
		}
		ml_free(f->env, cnt);
	}

	if (!gbt_alloc_margins(f, K))
		return ML_ERR_MEMORY;
	for (i = 0; i < f->n; i++)
		for (c = 0; c < K; c++)
			f->margin[(size_t) c * f->n + i] = (float) f->base[c];
	return ML_OK;
}

/* The row positions: one byte a row when the node count allows, else two. */
static MlStatus
gbt_pos_init(GbtFit *f)
{
	Gbt		   *g = &f->g;
	const MlEnv *env = f->env;
	uint32_t	k;

	g->by_pos = true;
	g->n_rows = (uint32_t) f->n;
	g->n_pos_nodes = (uint32_t) g->max_tn + 1;
	g->pos_wide = g->n_pos_nodes > 256;
	g->pos = ml_alloc(env, (g->pos_wide ? 2 : 1) * (size_t) f->n);
	g->rule = ml_alloc(env, sizeof(PosRule) * g->n_pos_nodes);
	g->pos_cnt = ml_alloc(env, sizeof(uint32_t) * g->n_pos_nodes * g->nt);
	g->pos_dst = ml_alloc(env, sizeof(uint32_t *) * g->n_pos_nodes * g->nt);
	g->pos_step = ml_alloc(env, g->n_pos_nodes);
	g->pos_trash = ml_alloc(env, sizeof(uint32_t) * 16 * g->nt);
	g->pos_fh = ml_alloc(env, sizeof(v2d *) * g->n_pos_nodes * g->nt);
	g->pos_fbuf = ml_alloc(env, sizeof(int) * g->n_pos_nodes * g->nt);
	if (!g->pos || !g->rule || !g->pos_cnt || !g->pos_dst || !g->pos_step || !g->pos_trash ||
		!g->pos_fh || !g->pos_fbuf)
		return ML_ERR_MEMORY;
	ml_populate(g->pos, (g->pos_wide ? 2 : 1) * (size_t) f->n);	/* set for every row each tree */
	for (k = 0; k < g->n_pos_nodes * g->nt; k++)
	{
		g->pos_fh[k] = NULL;
		g->pos_fbuf[k] = -1;
	}
	return ML_OK;
}

/* The tree grower: parameters, pool size and every buffer. */
static MlStatus
gbt_grower_init(GbtFit *f)
{
	Gbt		   *g = &f->g;
	const MlEnv *env = f->env;
	const TreeParams *p = f->p;
	uint32_t	n_train = f->n_train,
				slots = f->slots;
	size_t		tmp_rows;

	g->env = env;
	g->nt = env->n_threads > 1 ? env->n_threads : 1;
	if (g->nt > 64)
		g->nt = 64;
	g->B = f->data->B;
	g->d = f->d;
	g->nb = f->data->bins->n_bins;
	g->off = f->off;
	g->slots = slots;
	g->lambda = p->l2;
	g->mcw = p->min_child_weight;
	g->gamma = p->gamma;
	g->max_depth = gbt_depth(p);
	gbt_sizes(n_train, p, &g->n_pool, &g->max_tn);
	/*
	 * Histogram buffers are capped at 256 MB: a level with more splittable
	 * nodes than buffers turns the excess into leaves (only very deep
	 * depth-wise trees on wide data get there).
	 */
	if ((double) g->n_pool * slots * sizeof(v2d) > (double) GBT_POOL_BYTES)
	{
		g->n_pool = (int) (GBT_POOL_BYTES / ((size_t) slots * sizeof(v2d)));
		if (g->n_pool < 4)
			g->n_pool = 4;
	}
	/*
	 * The padded histogram layout (HIST_STRIDE slots a feature, the fast
	 * kernel) when as many buffers fit in GBT_POOL_BYTES: the pool size,
	 * so the model, is then the same in either layout.
	 */
	if ((double) g->n_pool * f->d * HIST_STRIDE * sizeof(v2d) <= (double) GBT_POOL_BYTES)
	{
		int			j;

		for (j = 0; j <= f->d; j++)
			f->off[j] = (uint32_t) j * HIST_STRIDE;
		f->slots = g->slots = slots = (uint32_t) f->d * HIST_STRIDE;
		g->padded = true;
#ifdef HIST_HAVE_VEX
		g->hist_vex = gbt_hist_vex && __builtin_cpu_supports("avx");
#endif
	}
	g->eval_cap = 2 * g->n_pool + 2;
	g->idx = ml_alloc(env, sizeof(uint32_t) * n_train);
	if (gbt_by_pos(p, f->K, g->max_tn))
	{
		if (gbt_pos_init(f) != ML_OK)
			return ML_ERR_MEMORY;
	}
	else
	{
		g->part_scratch = n_train < PART_CHUNK ? n_train : PART_CHUNK;
		tmp_rows = (size_t) n_train / 2 + 1;
		if (tmp_rows < (size_t) g->nt * g->part_scratch)
			tmp_rows = (size_t) g->nt * g->part_scratch;
		g->tmp = ml_alloc(env, sizeof(uint32_t) * tmp_rows);
		g->chunks = ml_alloc(env, sizeof(PartChunk) * ((size_t) n_train / PART_CHUNK + (size_t) g->max_tn + 2));
		if (!g->tmp || !g->chunks)
			return ML_ERR_MEMORY;
	}
	g->tn = ml_alloc(env, sizeof(TrainNode) * (size_t) g->max_tn);
	g->split = ml_alloc(env, sizeof(Split) * (size_t) g->max_tn);
	g->pool = ml_alloc(env, sizeof(v2d) * (size_t) slots * (size_t) g->n_pool);
	g->free_list = ml_alloc(env, sizeof(int) * (size_t) g->n_pool);
	g->feat = ml_alloc(env, sizeof(int) * (size_t) f->d);
	g->jobs = ml_alloc(env, sizeof(GbtJob) * (size_t) g->eval_cap);
	g->eval = ml_alloc(env, sizeof(int) * (size_t) g->eval_cap);
	g->task_split = ml_alloc(env, sizeof(Split) * (size_t) g->eval_cap * g->nt);
	g->job_order = ml_alloc(env, sizeof(int) * (size_t) g->eval_cap);
	g->eval_job = ml_alloc(env, sizeof(int) * (size_t) g->eval_cap);
	g->task_end = ml_alloc(env, sizeof(uint64_t) * (size_t) g->nt);
	g->pend = ml_alloc(env, sizeof(int) * (size_t) g->max_tn);
	g->mids = ml_alloc(env, sizeof(uint32_t) * (size_t) g->max_tn);
	if (!g->idx || !g->tn || !g->split || !g->pool || !g->free_list || !g->feat ||
		!g->jobs || !g->eval || !g->task_split || !g->job_order || !g->eval_job || !g->task_end ||
		!g->pend || !g->mids)
		return ML_ERR_MEMORY;
	return ML_OK;
}

/* The model's header (it takes the base margins) and the gradient task's state. */
static MlStatus
gbt_model_init(GbtFit *f)
{
	TreeModel  *out = f->out;
	const TreeParams *p = f->p;

	out->algorithm = TREE_ALGO_GBT;
	out->task = p->task;
	out->objective = f->obj;
	out->n_features = (uint32_t) f->d;
	out->n_classes = p->task == ML_TASK_CLASSIFY ? (uint32_t) f->data->n_classes : 0;
	out->n_outputs = p->task == ML_TASK_CLASSIFY ? (uint32_t) f->data->n_classes : 1;
	out->leaf_width = 1;
	out->trees_per_round = (uint32_t) f->K;
	out->best_iteration = -1;
	out->oob_score = NAN;
	out->valid_loss = NAN;
	out->learning_rate = p->learning_rate;
	out->base_score = f->base;
	f->base = NULL;
	out->importance = ml_calloc(f->env, f->d, sizeof(double));
	f->imp_best = ml_calloc(f->env, f->d, sizeof(double));
	if (!out->importance || !f->imp_best)
		return ML_ERR_MEMORY;
	f->mb.m = out;
	if (p->warm_start)
	{
		/* the parent's trees first; its gains count in the importances */
		if (tm_copy_trees(f->env, &f->mb, p->warm_start, f->err) != ML_OK)
			return f->err->code;
		if (p->warm_start->importance)
			memcpy(out->importance, p->warm_start->importance, sizeof(double) * f->d);
	}

	f->ga.data = f->data;
	f->ga.obj = f->obj;
	f->ga.K = f->K;
	f->ga.rows = f->rows;
	f->ga.n_rows = f->n_train;
	f->ga.margin = f->margin;
	f->ga.gh = f->gh;
	f->ga.cw = f->cw;
	ml_rng_seed(&f->rng, f->p->seed);
	return ML_OK;
}

/*
 * Gradient pairs of every training row for the current margins; when the
 * trace waits for the training loss of these margins (the last round's),
 * it is summed in the same pass and filled in.
 */
static void
gbt_gradients(GbtFit *f)
{
	int			nt = f->g.nt;
	int64_t		maxt = f->n_train / 4096 + 1,
				nc = (f->n_train + GBT_LOSS_CHUNK - 1) / GBT_LOSS_CHUNK;

	if (nt > maxt)
		nt = (int) maxt;
	if (nt > nc)
		nt = (int) nc;
	f->ga.loss_part = f->loss_slot >= 0 ? f->loss_part : NULL;
	gbt_grad_run(f->env, nt, &f->ga);
	if (f->loss_slot >= 0)
	{
		f->p->trace->train_loss[f->loss_slot] = gbt_loss_total(f->obj, f->loss_part, f->n_train);
		f->loss_slot = -1;
	}
}

/*
 * The round's rows in g.idx: with subsample < 1, the sampled rows first,
 * then the others (each ascending); returns how many are sampled. Every
 * row in order (g.idx_in_order) is not written out for row positions: the
 * grower reads idx then only in the ranges its list passes write.
 */
static uint32_t
gbt_sample_rows(GbtFit *f)
{
	const uint32_t *rows = f->rows;
	uint32_t   *idx = f->g.idx;
	uint32_t	n_train = f->n_train,
				ns = 0,
				k;

	if (f->p->subsample < 1.0)
	{
		uint32_t	t = n_train;

		/* sampled rows forward, the others backward, then the tail reversed */
		for (k = 0; k < n_train; k++)
		{
			if (ml_rng_uniform(&f->rng) < f->p->subsample)
				idx[ns++] = ROW(k);
			else
				idx[--t] = ROW(k);
		}
		for (k = 0; k < (n_train - ns) / 2; k++)
		{
			uint32_t	x = idx[ns + k];

			idx[ns + k] = idx[n_train - 1 - k];
			idx[n_train - 1 - k] = x;
		}
	}
	else
	{
		if (rows)
			memcpy(idx, rows, sizeof(uint32_t) * n_train);
		else if (!f->g.by_pos)
			for (k = 0; k < n_train; k++)
				idx[k] = k;
		ns = n_train;
	}
	return ns;
}

/* The tree's features in g.feat (ascending): a seeded colsample share, or all. */
static void
gbt_sample_columns(GbtFit *f)
{
	Gbt		   *g = &f->g;
	int			d = f->d,
				j;

	for (j = 0; j < d; j++)
		g->feat[j] = j;
	g->nf = d;
	if (f->p->colsample < 1.0)
	{
		int			m = (int) floor(f->p->colsample * d + 0.5);

		if (m < 1)
			m = 1;
		for (j = 0; j < m; j++)
		{
			int			r = j + (int) ml_rng_below(&f->rng, (uint64_t) (d - j));
			int			tmpf = g->feat[j];

			g->feat[j] = g->feat[r];
			g->feat[r] = tmpf;
		}
		/* ascending order for cache-friendly histogram building */
		for (j = 1; j < m; j++)
		{
			int			v = g->feat[j],
						q = j - 1;

			while (q >= 0 && g->feat[q] > v)
			{
				g->feat[q + 1] = g->feat[q];
				q--;
			}
			g->feat[q + 1] = v;
		}
		g->nf = m;
	}
	g->all_feat = g->nf == d;
}

/*
 * Leaf values of the grown tree, then the margins of class column mc: the
 * sampled rows through their nodes, the other training rows and the
 * validation rows by descending the tree.
 */
static void
gbt_update_margins(GbtFit *f, float *mc, uint32_t ns)
{
	Gbt		   *g = &f->g;
	MarginTask	mt;
	int			ntk = g->nt,
				t;
	uint32_t	k;

	for (t = 0; t < g->n_tn; t++)
	{
		TrainNode  *nd = &g->tn[t];

		if (nd->left >= 0)
			continue;
		nd->value = nd->hess_sum < g->mcw && t != 0 ? 0.0 :
			-nd->grad_sum / (nd->hess_sum + g->lambda) * f->p->learning_rate;
		if (!isfinite(nd->value))
			nd->value = 0.0;
	}
	mt.g = g;
	mt.mc = mc;
	mt.ns = ns;
	if (ns < 65536)
		ntk = 1;
	if (g->by_pos)
		gbt_pos_margins(g, mc);
	else
		trees_run_tasks(f->env, ntk, margin_task, &mt);
	for (k = ns; k < f->n_train; k++)
	{
		uint32_t	r = g->idx[k];

		mc[r] += (float) g->tn[tn_leaf(g->tn, f->data->B + (size_t) r * f->d, g->nb)].value;
	}
	for (k = 0; k < f->n_valid; k++)
	{
		uint32_t	r = f->vrows[k];

		mc[r] += (float) g->tn[tn_leaf(g->tn, f->data->B + (size_t) r * f->d, g->nb)].value;
	}
}

/*
 * One boosting round: gradients, the row sample, then per class a column
 * sample, a tree, its margin updates, and the tree appended to the model.
 */
static MlStatus
gbt_round(GbtFit *f)
{
	uint32_t	ns;
	int			c;

	gbt_gradients(f);
	ns = gbt_sample_rows(f);
	for (c = 0; c < f->K; c++)
	{
		gbt_sample_columns(f);
		f->g.gh = f->gh + (size_t) c * 2 * f->n;
		f->g.idx_in_order = c == 0 && f->rows == NULL && ns == f->n_train;
		gbt_grow_tree(&f->g, ns, f->p->max_leaves);
		gbt_update_margins(f, f->margin + (size_t) c * f->n, ns);
		if (tm_append_tree(f->env, &f->mb, f->g.tn, f->data->bins, NULL, f->err) != ML_OK)
			return f->err->code;
	}
	return ML_OK;
}

/* Validation loss after `round`; true when early stopping says stop. */
static bool
gbt_track_validation(GbtFit *f, int round)
{
	f->last_loss = gbt_valid_loss(f->data, f->obj, f->K, f->margin, f->vrows, f->n_valid);
	if (f->last_loss < f->best_loss)
	{
		f->best_loss = f->last_loss;
		f->best_round = round;
		memcpy(f->imp_best, f->out->importance, sizeof(double) * f->d);
		return false;
	}
	return f->p->early_stopping_rounds > 0 &&
		round - f->best_round >= f->p->early_stopping_rounds;
}

/*
 * The round's trace entry: its validation loss now, its training loss
 * (that of the current margins) from the next round's gradient pass, which
 * computes the same probabilities, or from gbt_trace_last_loss.
 */
static void
gbt_trace_round(GbtFit *f)
{
	MlTrace    *t = f->p->trace;
	int			n0 = t->n;

	ml_trace_add(f->env, t, NAN, f->n_valid > 0 ? f->last_loss : NAN);
	f->loss_slot = t->n > n0 ? n0 : -1;
}

/* The training loss of the last round's entry, when no gradient pass followed it (gbt_loss.c). */
static void
gbt_trace_last_loss(GbtFit *f)
{
	if (f->loss_slot < 0)
		return;
	f->p->trace->train_loss[f->loss_slot] =
		gbt_train_loss_of(f->env, f->g.nt, f->data, f->obj, f->K, f->margin,
						  f->rows, f->n_train, f->loss_part);
	f->loss_slot = -1;
}

/* The rounds, with a cancel check before each and the validation loss after. */
static MlStatus
gbt_boost(GbtFit *f)
{
	int			round;
	bool		stop;
	MlStatus	st;

	if (f->p->trace)
	{
		ml_trace_start(f->p->trace, ml_now_ms());
		f->loss_part = ml_alloc(f->env, sizeof(double) *
								((f->n_train + GBT_LOSS_CHUNK - 1) / GBT_LOSS_CHUNK + 1));
		if (!f->loss_part)
			return ML_ERR_MEMORY;
	}
	f->loss_slot = -1;
	f->best_round = -1;
	f->rounds_done = 0;
	f->best_loss = INFINITY;
	f->last_loss = NAN;
	for (round = 0; round < f->p->n_estimators; round++)
	{
		if (ml_check(f->env, "gbt", round, f->p->n_estimators, f->last_loss))
			return ml_fail_cancelled(f->err);
		st = gbt_round(f);
		if (st != ML_OK)
			return st;
		f->rounds_done = round + 1;
		stop = f->n_valid > 0 && gbt_track_validation(f, round);
		if (f->p->trace)
			gbt_trace_round(f);
		if (stop)
			break;
	}
	gbt_trace_last_loss(f);
	if (ml_check(f->env, "gbt", f->rounds_done, f->p->n_estimators, f->last_loss))
		return ml_fail_cancelled(f->err);
	return ML_OK;
}

/* Keeps the best iteration under early stopping, checks the model, fills info. */
static MlStatus
gbt_finish(GbtFit *f, TreeFitInfo *info)
{
	TreeModel  *out = f->out;
	int			parent_rounds = f->p->warm_start ?
		(int) (f->p->warm_start->n_trees / f->p->warm_start->trees_per_round) : 0;

	if (f->n_valid > 0 && f->p->early_stopping_rounds > 0 && f->best_round >= 0)
	{
		/* Keep the best iteration only; importances are recomputed below. */
		out->n_trees = (uint32_t) (parent_rounds + f->best_round + 1) * (uint32_t) f->K;
		out->best_iteration = parent_rounds + f->best_round;
		out->valid_loss = f->best_loss;
		memcpy(out->importance, f->imp_best, sizeof(double) * f->d);
	}
	else
	{
		out->best_iteration = parent_rounds + f->rounds_done - 1;
		out->valid_loss = f->n_valid > 0 ? f->last_loss : NAN;
	}
	if (!tm_finish(f->env, out, f->err))
		return f->err->code;
	if (info)
	{
		info->rounds = f->rounds_done;
		info->n_leaves = tm_count_leaves(out);
		info->train_loss = NAN;
	}
	return ML_OK;
}

/* Frees the fit's buffers (not the model). */
static void
gbt_fit_free(GbtFit *f)
{
	const MlEnv *env = f->env;

	ml_free(env, f->rows);
	ml_free(env, f->vrows);
	ml_free(env, f->off);
	ml_free(env, f->margin);
	ml_free(env, f->imp_best);
	ml_free(env, f->loss_part);
	ml_free(env, f->gh);
	ml_free(env, f->cw);
	ml_free(env, f->base);
	ml_free(env, f->g.idx);
	ml_free(env, f->g.tmp);
	ml_free(env, f->g.tn);
	ml_free(env, f->g.split);
	ml_free(env, f->g.pool);
	ml_free(env, f->g.free_list);
	ml_free(env, f->g.feat);
	ml_free(env, f->g.jobs);
	ml_free(env, f->g.eval);
	ml_free(env, f->g.task_split);
	ml_free(env, f->g.job_order);
	ml_free(env, f->g.eval_job);
	ml_free(env, f->g.task_end);
	ml_free(env, f->g.chunks);
	ml_free(env, f->g.pend);
	ml_free(env, f->g.mids);
	ml_free(env, f->g.pos);
	ml_free(env, f->g.rule);
	ml_free(env, f->g.pos_cnt);
	ml_free(env, f->g.pos_dst);
	ml_free(env, f->g.pos_step);
	ml_free(env, f->g.pos_trash);
	ml_free(env, f->g.pos_fh);
	ml_free(env, f->g.pos_fbuf);
}

/*
 * Fits a gbt model: checks, row roles, base margins, the grower, the model
 * header, the boosting rounds, the finish. A phase that returns
 * ML_ERR_MEMORY without a message gets the out-of-memory message here.
 */
MlStatus
gbt_fit(const MlEnv *env, const TreeData *data, const TreeParams *p, TreeModel *out,
		TreeFitInfo *info, MlError *err)
{
	GbtFit		f;
	MlStatus	st;

	memset(&f, 0, sizeof(f));
	memset(out, 0, sizeof(*out));
	f.env = env;
	f.data = data;
	f.p = p;
	f.out = out;
	f.err = err;
	f.n = data->n;
	f.d = data->d;
	f.obj = gbt_objective(p, data->n_classes);
	f.K = f.obj == TREE_OBJ_MULTI_SOFTMAX ? data->n_classes : 1;
	st = gbt_check(&f);
	if (st != ML_OK)
		return st;
	st = gbt_prepare_rows(&f);
	if (st == ML_OK)
		st = gbt_base_margins(&f);
	if (st == ML_OK)
		st = gbt_grower_init(&f);
	if (st == ML_OK)
		st = gbt_model_init(&f);
	if (st == ML_OK)
		st = gbt_boost(&f);
	if (st == ML_OK)
		st = gbt_finish(&f, info);
	if (st == ML_ERR_MEMORY && err->code == ML_OK)
		st = ml_fail(err, ML_ERR_MEMORY, "out of memory training gbt on %lld rows x %d features",
					 (long long) f.n, f.d);
	gbt_fit_free(&f);
	if (st != ML_OK)
		trees_model_free(env, out);
	return st;
}
