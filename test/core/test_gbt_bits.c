/*
 * test_gbt_bits.c: the gbt trainer's output, bit for bit. Models trained
 * on generated rows (every objective, row and column samples, validation
 * rows, loss-guided growth, trees deep enough for two-byte row positions
 * and deeper than they serve) must hash to the bytes the trainer gave after
 * wt17-exact's change of the algorithm (gradients on power-of-two grids,
 * exact sums: the commit "gbt: gradients and hessians on power-of-two
 * grids"); the classification cases kept the bytes of b018f4b (113cf4a
 * for the deep ones), before issue #13's speed work, the regression cases
 * changed. With 1 and with 2 threads (and 3 on a persistent pool: the work
 * is shared out in other pieces);
 * and the batch walk the training metrics use must give
 * trees_predict_row's bits. The trace's training loss, summed in the next
 * round's gradient pass, must equal the loss pass's, and float targets
 * must train as the same doubles. The histograms built in the move pass
 * (gbt_pos_fuse) must give the bytes of the list-and-gather path at any
 * level limit (so also where fused and gathered levels alternate), on 1
 * and 3 threads (each thread then routes its own rows into histograms of
 * its own), and routing rows 16 at a time (AVX-512) must give the bytes
 * of routing them one at a time, and so must adding histogram slots in
 * plain C instead of the AVX instructions. A tree on every row takes the
 * root's sums and histogram from one pass (gbt_hist_root, rows split
 * between threads); the sampled cases and those with validation rows take
 * the separate loop and run.
 */
#include <math.h>

#include "mltest.h"
#include "mltest_trees.h"
#include "mlbuf.h"
#include "trees.h"

extern int	gbt_pos_fuse_nodes;	/* trees_int.h: levels the move pass builds histograms for */
extern int	gbt_pos_simd;		/* trees_int.h: 0 routes rows one at a time */
extern int	gbt_hist_vex;		/* trees_int.h: 0 adds histogram slots in plain C */

#define N_ROWS 140000			/* > 4 partition chunks: the parallel partition runs */
#define N_FEAT 6

/* One configuration and the FNV-1a hash of its model's bytes (see above;
 * any change to the trainer's arithmetic changes them). */
typedef struct BitsCase
{
	const char *name;
	MlTask		task;
	int			n_classes;		/* 2 or 3 (classification) */
	double		subsample;
	double		colsample;
	int			max_leaves;
	bool		valid;			/* every 5th row validates, early stopping 3 */
	int			max_depth;		/* 0: 6 */
	uint64_t	expect;
} BitsCase;

static const BitsCase cases[] = {
	{"binary", ML_TASK_CLASSIFY, 2, 1.0, 1.0, 0, false, 0, 0xcd21bcbf8e986a6fULL},
	{"multiclass", ML_TASK_CLASSIFY, 3, 1.0, 1.0, 0, false, 0, 0x726d3d1215f9fd45ULL},
	{"regression", ML_TASK_REGRESS, 0, 1.0, 1.0, 0, false, 0, 0x336aeb5b3cc5f38bULL},
	{"binary sampled", ML_TASK_CLASSIFY, 2, 0.7, 0.5, 0, false, 0, 0xb01a27c86b833dd6ULL},
	{"multiclass sampled", ML_TASK_CLASSIFY, 3, 0.8, 1.0, 0, false, 0, 0xaa9bad98f58375a2ULL},
	{"binary validation", ML_TASK_CLASSIFY, 2, 1.0, 1.0, 0, true, 0, 0xd42f36abdb5a567eULL},
	{"regression loss-guided", ML_TASK_REGRESS, 0, 0.9, 1.0, 16, false, 0, 0x9681e6385da9ef3fULL},
	/* two-byte row positions (over 255 nodes), then deeper than they serve; classification hashes at 113cf4a */
	{"binary depth 9 sampled", ML_TASK_CLASSIFY, 2, 0.8, 1.0, 0, false, 9, 0xb1274ea2b7b940a8ULL},
	{"regression depth 7 validation", ML_TASK_REGRESS, 0, 1.0, 1.0, 0, true, 7, 0x375fe948bc123fc8ULL},
	{"binary depth 12", ML_TASK_CLASSIFY, 2, 1.0, 1.0, 0, false, 12, 0x9057e9c28e91a56eULL},
};

static MlEnv env1,
			env2,
			env3;				/* 3 threads on a persistent pool */
static double X[(size_t) N_ROWS * N_FEAT];	/* column-major */
static int32_t yc2[N_ROWS],
			yc3[N_ROWS];
static double yr[N_ROWS];
static uint8_t vmask[N_ROWS];

/* Rows from a fixed seed: uniform features (some missing), a noisy score as target. */
static void
make_rows(void)
{
	MlRng		r;
	int64_t		i;
	int			j;

	ml_rng_seed(&r, 13);
	for (i = 0; i < N_ROWS; i++)
	{
		double		score = 0;

		for (j = 0; j < N_FEAT; j++)
		{
			double		v = ml_rng_uniform(&r) * 10;

			X[(size_t) j * N_ROWS + i] = (i * 7 + j) % 23 == 0 ? NAN : v;
			score += (j % 3 + 1) * (isnan(X[(size_t) j * N_ROWS + i]) ? 4 : v);
		}
		score += ml_rng_uniform(&r) * 12;
		yr[i] = score;
		yc3[i] = score < 48 ? 0 : score < 66 ? 1 : 2;
		yc2[i] = score >= 57;
		vmask[i] = i % 5 == 0;
	}
}

/* Row-major copy of the first n rows (for scoring). */
static double *
row_major(int64_t n)
{
	double	   *R = malloc(sizeof(double) * (size_t) n * N_FEAT);
	int64_t		i;
	int			j;

	for (i = 0; i < n; i++)
		for (j = 0; j < N_FEAT; j++)
			R[(size_t) i * N_FEAT + j] = X[(size_t) j * N_ROWS + i];
	return R;
}

/* Whether trees_predict_batch gives trees_predict_row's bits on n rows of R. */
static bool
batch_equals_rows(const TreeModel *m, const double *R, int64_t n)
{
	double	   *ob = malloc(sizeof(double) * (size_t) n * m->n_outputs);
	double	   *o1 = malloc(sizeof(double) * m->n_outputs);
	bool		same = true;
	int64_t		i;

	trees_predict_batch(&env2, m, R, n, ob);
	for (i = 0; i < n && same; i++)
	{
		trees_predict_row(m, R + (size_t) i * N_FEAT, o1);
		same = memcmp(o1, ob + (size_t) i * m->n_outputs, sizeof(double) * m->n_outputs) == 0;
	}
	free(ob);
	free(o1);
	return same;
}

/* Trains one case on `env`; returns its hash (0 on failure), the model in *m. */
static uint64_t
train_case(const BitsCase *c, const TreeData *data, const MlEnv *env, TreeModel *m)
{
	TreeParams	p;
	TreeFitInfo info;
	MlError		err = {0};

	trees_params_default(&p, TREE_ALGO_GBT, c->task);
	p.n_estimators = 8;
	p.max_depth = c->max_depth > 0 ? c->max_depth : 6;
	p.learning_rate = 0.3;
	p.subsample = c->subsample;
	p.colsample = c->colsample;
	p.max_leaves = c->max_leaves;
	p.seed = 7;
	if (c->valid)
		p.early_stopping_rounds = 3;
	if (trees_fit(env, data, &p, m, &info, &err) != ML_OK)
	{
		printf("# %s: %s\n", c->name, err.msg);
		return 0;
	}
	return mlt_model_hash(&env1, m);
}

/* Trains case c for `rounds` rounds with a trace; false on failure. */
static bool
train_traced(const BitsCase *c, const TreeData *data, const MlEnv *env, int rounds,
			 MlTrace *trace, uint64_t *hash)
{
	TreeParams	p;
	TreeModel	m;
	TreeFitInfo info;
	MlError		err = {0};

	trees_params_default(&p, TREE_ALGO_GBT, c->task);
	p.n_estimators = rounds;
	p.max_depth = 6;
	p.learning_rate = 0.3;
	p.subsample = c->subsample;
	p.colsample = c->colsample;
	p.max_leaves = c->max_leaves;
	p.seed = 7;
	if (c->valid)
		p.early_stopping_rounds = 3;
	memset(trace, 0, sizeof(*trace));
	p.trace = trace;
	if (trees_fit(env, data, &p, &m, &info, &err) != ML_OK)
	{
		printf("# %s: %s\n", c->name, err.msg);
		return false;
	}
	*hash = mlt_model_hash(&env1, &m);
	trees_model_free(env, &m);
	return true;
}

/*
 * The trace's training loss of round t comes from round t + 1's gradient
 * pass, the last round's from a loss pass of its own: a fit stopped after
 * t rounds computes round t's loss by that loss pass, so both fits must
 * agree bit for bit on every round they share.
 */
static void
check_trace_fused(const BitsCase *c, const TreeData *data, const MlEnv *env)
{
	static const int stops[] = {1, 2, 5, 7};
	MlTrace		full,
				part;
	uint64_t	h;
	bool		same = true;
	int			s;

	if (!train_traced(c, data, env, 8, &full, &h))
	{
		CHECK(false, "%s: traced fit", c->name);
		return;
	}
	for (s = 0; s < 4 && stops[s] <= full.n; s++)
	{
		int			t = stops[s];

		same &= train_traced(c, data, env, t, &part, &h) && part.n == t &&
			memcmp(&part.train_loss[t - 1], &full.train_loss[t - 1], sizeof(double)) == 0 &&
			memcmp(part.valid_loss, full.valid_loss, sizeof(double) * t) == 0;
		ml_trace_free(env, &part);
	}
	CHECK(same && full.n > 0 && isfinite(full.train_loss[full.n - 1]),
		  "%s: the trace's training loss from the gradient pass = the loss pass, bit for bit",
		  c->name);
	ml_trace_free(env, &full);
}

/*
 * Regression on targets that are floats: the float copy (TreeData.y_float,
 * no double array) gives the bytes and the trace of the doubles.
 */
static void
check_float_targets(const TreeBins *bins, const uint8_t *B)
{
	const BitsCase *c = &cases[2];
	double	   *yd = malloc(sizeof(double) * N_ROWS);
	float	   *yf = malloc(sizeof(float) * N_ROWS);
	TreeData	data;
	MlTrace		t1,
				t2;
	uint64_t	h1 = 0,
				h2 = 1;
	bool		ok;
	int64_t		i;

	for (i = 0; i < N_ROWS; i++)
	{
		yf[i] = (float) yr[i];
		yd[i] = yf[i];
	}
	memset(&data, 0, sizeof(data));
	data.B = B;
	data.n = N_ROWS;
	data.d = N_FEAT;
	data.bins = bins;
	data.y = yd;
	ok = train_traced(c, &data, &env2, 8, &t1, &h1);
	data.y = NULL;
	data.y_float = yf;
	ok &= train_traced(c, &data, &env2, 8, &t2, &h2);
	CHECK(ok && h1 == h2 && t1.n == t2.n &&
		  memcmp(t1.train_loss, t2.train_loss, sizeof(double) * t1.n) == 0,
		  "regression: float targets give the model and trace of the same doubles");
	ml_trace_free(&env2, &t1);
	ml_trace_free(&env2, &t2);
	free(yd);
	free(yf);
}

/* The batch walk of a forest and of a decision tree (regression and classes). */
static void
check_other_batches(const TreeBins *bins, const uint8_t *B, const double *R)
{
	static const TreeAlgorithm algos[] = {TREE_ALGO_RANDOM_FOREST, TREE_ALGO_DECISION_TREE};
	int			a,
				t;

	for (a = 0; a < 2; a++)
		for (t = 0; t < 2; t++)
		{
			TreeParams	p;
			TreeData	data;
			TreeModel	m;
			TreeFitInfo info;
			MlError		err = {0};
			MlTask		task = t == 0 ? ML_TASK_REGRESS : ML_TASK_CLASSIFY;

			trees_params_default(&p, algos[a], task);
			p.n_estimators = 6;
			p.max_depth = 8;
			memset(&data, 0, sizeof(data));
			data.B = B;
			data.n = N_ROWS;
			data.d = N_FEAT;
			data.bins = bins;
			data.n_classes = task == ML_TASK_CLASSIFY ? 3 : 0;
			data.y_class = task == ML_TASK_CLASSIFY ? yc3 : NULL;
			data.y = task == ML_TASK_REGRESS ? yr : NULL;
			CHECK(trees_fit(&env2, &data, &p, &m, &info, &err) == ML_OK &&
				  batch_equals_rows(&m, R, 4000),
				  "%s %s: batch walk = row walk, bit for bit",
				  a == 0 ? "forest" : "decision tree", t == 0 ? "regression" : "classes");
			if (err.code == ML_OK)
				trees_model_free(&env1, &m);
		}
}

/*
 * Case c trained with the fused move pass limited to levels of at most 0,
 * 1, 2 and 4 nodes (0: every level listed and gathered) must keep its
 * bytes, with 1 and 3 threads.
 */
static void
check_fuse_limits(const BitsCase *c, const TreeData *data)
{
	static const int limits[] = {0, 1, 2, 4};
	int			saved = gbt_pos_fuse_nodes,
				k;

	for (k = 0; k < 4; k++)
	{
		TreeModel	m1,
					m3;
		uint64_t	h1,
					h3;

		gbt_pos_fuse_nodes = limits[k];
		h1 = train_case(c, data, &env1, &m1);
		h3 = train_case(c, data, &env3, &m3);
		CHECK(h1 == c->expect && h3 == c->expect,
			  "%s: fused move pass on levels of at most %d nodes: the same bytes", c->name,
			  limits[k]);
		trees_model_free(&env1, &m1);
		trees_model_free(&env1, &m3);
	}
	gbt_pos_fuse_nodes = saved;
}

/*
 * Case c trained with the switch *off set to 0 (the path the default
 * takes instead, e.g. routing rows one at a time) must keep its bytes, on
 * 1 and 3 threads; what names that path in the check's message.
 */
static void
check_switched_off(const BitsCase *c, const TreeData *data, int *off, const char *what)
{
	TreeModel	m1,
				m3;
	uint64_t	h1,
				h3;

	*off = 0;
	h1 = train_case(c, data, &env1, &m1);
	h3 = train_case(c, data, &env3, &m3);
	*off = 1;
	CHECK(h1 == c->expect && h3 == c->expect, "%s: %s: the same bytes", c->name, what);
	trees_model_free(&env1, &m1);
	trees_model_free(&env1, &m3);
}

/*
 * Case c with rows routed one at a time (where AVX-512 routes 16 by
 * default) must keep its bytes, on 1 and 3 threads; so must the case on
 * shallower trees (every node in the route's tables, the unused node
 * among them), both ways alike.
 */
static void
check_simd_route(const BitsCase *c, const TreeData *data)
{
	BitsCase	shallow = *c;
	TreeModel	m1;
	uint64_t	h1,
				h_simd;
	int			depth;

	check_switched_off(c, data, &gbt_pos_simd, "rows routed one at a time");
	for (depth = 4; depth <= 5; depth++)
	{
		shallow.max_depth = depth;
		h_simd = train_case(&shallow, data, &env1, &m1);
		trees_model_free(&env1, &m1);
		gbt_pos_simd = 0;
		h1 = train_case(&shallow, data, &env1, &m1);
		gbt_pos_simd = 1;
		trees_model_free(&env1, &m1);
		CHECK(h1 != 0 && h1 == h_simd,
			  "%s, depth %d: rows routed 16 and one at a time give the same bytes", c->name,
			  depth);
	}
}

int
main(void)
{
	TreeBins	bins;
	MlError		err = {0};
	uint8_t    *B = malloc((size_t) N_ROWS * N_FEAT);
	double	   *R;
	size_t		k;
	bool		print = getenv("MLTEST_PRINT_HASHES") != NULL;

	env1 = mlt_env(1);
	env2 = mlt_env(2);
	env3 = mlt_env(3);
	env3.pool = ml_pool_create(3);
	make_rows();
	CHECK(trees_bins_fit(&env1, X, N_ROWS, N_FEAT, 256, 50000, 3, &bins, &err) == ML_OK,
		  "bins fitted");
	trees_bins_apply(&env1, &bins, X, N_ROWS, B, 0);
	R = row_major(4000);
	for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
	{
		const BitsCase *c = &cases[k];
		TreeData	data;
		TreeModel	m1,
					m2,
					m3;
		uint64_t	h1,
					h2,
					h3;

		memset(&data, 0, sizeof(data));
		data.B = B;
		data.n = N_ROWS;
		data.d = N_FEAT;
		data.bins = &bins;
		data.n_classes = c->n_classes;
		data.y_class = c->task == ML_TASK_CLASSIFY ? (c->n_classes == 2 ? yc2 : yc3) : NULL;
		data.y = c->task == ML_TASK_REGRESS ? yr : NULL;
		data.valid_mask = c->valid ? vmask : NULL;
		h1 = train_case(c, &data, &env1, &m1);
		h2 = train_case(c, &data, &env2, &m2);
		h3 = train_case(c, &data, &env3, &m3);
		if (print)
			printf("# %s 0x%016llxULL\n", c->name, (unsigned long long) h1);
		CHECK(h1 != 0 && h1 == h2, "%s: 1 and 2 threads give the same bytes", c->name);
		CHECK(h1 == h3, "%s: 3 threads on a pool give the same bytes", c->name);
		CHECK(h1 == c->expect, "%s: the bytes of the exact-sums trainer (%016llx)",
			  c->name, (unsigned long long) h1);
		CHECK(batch_equals_rows(&m1, R, 4000), "%s: batch walk = row walk, bit for bit", c->name);
		check_trace_fused(c, &data, k % 2 ? &env2 : &env1);
		if (k == 0 || c->max_depth == 9)
			check_fuse_limits(c, &data);
		check_simd_route(c, &data);
		/* where the CPU has AVX the default adds are gbt_hist_add_padded's instructions */
		check_switched_off(c, &data, &gbt_hist_vex, "histogram slots added in plain C");
		trees_model_free(&env1, &m1);
		trees_model_free(&env1, &m2);
		trees_model_free(&env1, &m3);
	}
	check_other_batches(&bins, B, R);
	check_float_targets(&bins, B);
	trees_bins_free(&env1, &bins);
	ml_pool_destroy(env3.pool);
	free(B);
	free(R);
	return mlt_done();
}
