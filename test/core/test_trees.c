/* test_trees.c: unit tests of the tree engine (binning, CART, forest, gbt, codec). */
#include <math.h>

#include "mltest.h"
#include "trees.h"
#include "trees_int.h"
#include "artifact.h"

/* A data set: column-major doubles, labels, and its binned form. */
typedef struct Set
{
	int64_t		n;
	int			d;
	double	   *X;				/* column-major */
	int32_t    *yc;
	double	   *yr;
	int			K;
	TreeBins	bins;
	uint8_t    *B;
} Set;

static MlEnv env1;

static void
set_alloc(Set *s, int64_t n, int d, int K)
{
	memset(s, 0, sizeof(*s));
	s->n = n;
	s->d = d;
	s->K = K;
	s->X = calloc((size_t) n * d, sizeof(double));
	s->yc = calloc(n, sizeof(int32_t));
	s->yr = calloc(n, sizeof(double));
}

static void
set_bin(Set *s, int max_bins)
{
	MlError		err = {0};

	if (trees_bins_fit(&env1, s->X, s->n, s->d, max_bins, 0, 1, &s->bins, &err) != ML_OK)
		printf("# bins: %s\n", err.msg);
	s->B = malloc((size_t) s->n * s->d);
	trees_bins_apply(&env1, &s->bins, s->X, s->n, s->B, 0);
}

static void
set_free(Set *s)
{
	trees_bins_free(&env1, &s->bins);
	free(s->X);
	free(s->yc);
	free(s->yr);
	free(s->B);
}

static void
row_of(const Set *s, int64_t i, double *x)
{
	int			j;

	for (j = 0; j < s->d; j++)
		x[j] = s->X[(size_t) j * s->n + i];
}

static MlStatus
fit(const MlEnv *env, const Set *s, const TreeParams *p, TreeModel *m, const uint8_t *valid,
	MlError *err)
{
	TreeData	data;

	memset(&data, 0, sizeof(data));
	data.B = s->B;
	data.n = s->n;
	data.d = s->d;
	data.bins = &s->bins;
	data.y_class = s->yc;
	data.n_classes = s->K;
	data.y = s->yr;
	data.valid_mask = valid;
	memset(err, 0, sizeof(*err));
	return trees_fit(env, &data, p, m, NULL, err);
}

/* Accuracy of a classifier on the set itself. */
static double
accuracy(const TreeModel *m, const Set *s)
{
	double		x[64],
				pr[64];
	int64_t		i,
				ok = 0;

	for (i = 0; i < s->n; i++)
	{
		row_of(s, i, x);
		ok += trees_predict_class(m, x, pr) == s->yc[i];
	}
	return (double) ok / s->n;
}

static int
count_leaves(const TreeModel *m)
{
	uint32_t	k;
	int			c = 0;

	for (k = 0; k < m->tree_start[m->n_trees]; k++)
		c += m->nodes[k].feature == TREE_NODE_LEAF;
	return c;
}

/* A whole artifact (meta + model section) for a model. */
static MlBuf
artifact_of(const TreeModel *m)
{
	MlBuf		b;
	MlMeta		meta;
	char	   *fn[64];
	char	   *cl[64];
	char		names[64][8];
	uint32_t	j;
	size_t		at;
	MlError		err = {0};

	for (j = 0; j < m->n_features && j < 64; j++)
	{
		snprintf(names[j], sizeof(names[j]), "f%u", j);
		fn[j] = names[j];
	}
	for (j = 0; j < m->n_classes && j < 64; j++)
		cl[j] = (char *) (j % 2 ? "yes" : "no");
	meta.task = m->task;
	meta.n_features = m->n_features;
	meta.feature_names = fn;
	meta.n_classes = m->n_classes;
	meta.class_labels = cl;
	artifact_begin(&b, &env1, trees_kind(m));
	artifact_write_meta(&b, &meta);
	at = artifact_section_begin(&b, ML_SEC_MODEL);
	trees_write(&b, m);
	artifact_section_end(&b, at);
	artifact_finish(&b, &err);
	return b;
}

static void
free_meta(MlMeta *meta)
{
	uint32_t	j;

	if (meta->feature_names)
		for (j = 0; j < meta->n_features; j++)
			ml_free(&env1, meta->feature_names[j]);
	if (meta->class_labels)
		for (j = 0; j < meta->n_classes; j++)
			ml_free(&env1, meta->class_labels[j]);
	ml_free(&env1, meta->feature_names);
	ml_free(&env1, meta->class_labels);
}

/* Opens an artifact and reads its tree model; the status of the attempt. */
static MlStatus
load(const uint8_t *p, size_t len, TreeModel *m, MlError *err)
{
	MlArtifact	a;
	MlSection	tag;
	MlReader	sec;
	MlMeta		meta;

	memset(err, 0, sizeof(*err));
	memset(m, 0, sizeof(*m));
	if (artifact_open(p, len, &env1, &a, err) != ML_OK)
		return err->code;
	if (!artifact_next_section(&a, &tag, &sec, err) || tag != ML_SEC_META)
		return err->code ? err->code : ML_ERR_CORRUPT;
	if (!artifact_read_meta(&sec, &meta))
	{
		free_meta(&meta);
		return err->code;
	}
	free_meta(&meta);
	if (!artifact_next_section(&a, &tag, &sec, err) || tag != ML_SEC_MODEL)
		return err->code ? err->code : ML_ERR_CORRUPT;
	if (!trees_read(&sec, &env1, m))
		return err->code;
	return ML_OK;
}

static bool
same_predictions(const TreeModel *a, const TreeModel *b, const Set *s)
{
	double		x[64],
				pa[64],
				pb[64];
	int64_t		i;

	for (i = 0; i < s->n; i++)
	{
		row_of(s, i, x);
		trees_predict_row(a, x, pa);
		trees_predict_row(b, x, pb);
		if (memcmp(pa, pb, sizeof(double) * a->n_outputs) != 0)
			return false;
	}
	return true;
}

static void
test_separable(void)
{
	Set			s;
	TreeParams	p;
	TreeModel	m;
	MlError		err;
	MlRng		rng;
	int64_t		i;
	double		lo1 = 1e9,
				hi0 = -1e9;
	int			algo;

	set_alloc(&s, 400, 2, 2);
	ml_rng_seed(&rng, 3);
	for (i = 0; i < s.n; i++)
	{
		double		v = ml_rng_uniform(&rng);

		s.X[i] = v;
		s.X[s.n + i] = ml_rng_uniform(&rng);	/* noise */
		s.yc[i] = v > 0.5;
		if (v > 0.5 && v < lo1)
			lo1 = v;
		if (v <= 0.5 && v > hi0)
			hi0 = v;
	}
	set_bin(&s, 256);
	trees_params_default(&p, TREE_ALGO_DECISION_TREE, ML_TASK_CLASSIFY);
	p.max_depth = 1;
	CHECK(fit(&env1, &s, &p, &m, NULL, &err) == ML_OK, "separable: decision tree fits (%s)", err.msg);
	CHECK(m.n_trees == 1 && m.tree_start[1] == 3, "separable: one split, %u nodes", m.tree_start[1]);
	CHECK((m.nodes[0].feature & TREE_NODE_FEATURE_MASK) == 0 &&
		  m.nodes[0].value > hi0 && m.nodes[0].value < lo1,
		  "separable: split on x0 at %.4f, between %.4f and %.4f", m.nodes[0].value, hi0, lo1);
	CHECK(accuracy(&m, &s) == 1.0, "separable: decision tree accuracy 1");
	trees_model_free(&env1, &m);
	for (algo = TREE_ALGO_RANDOM_FOREST; algo <= TREE_ALGO_GBT; algo++)
	{
		trees_params_default(&p, (TreeAlgorithm) algo, ML_TASK_CLASSIFY);
		p.n_estimators = 20;
		CHECK(fit(&env1, &s, &p, &m, NULL, &err) == ML_OK, "separable: algo %d fits (%s)", algo,
			  err.msg);
		CHECK(accuracy(&m, &s) == 1.0, "separable: algo %d accuracy 1 (%.3f)", algo,
			  accuracy(&m, &s));
		trees_model_free(&env1, &m);
	}
	set_free(&s);
}

static void
test_step_regression(void)
{
	Set			s;
	TreeParams	p;
	TreeModel	m;
	MlError		err;
	int64_t		i;
	double		x[1],
				o[1],
				maxerr = 0,
				se = 0;

	set_alloc(&s, 300, 1, 0);
	for (i = 0; i < s.n; i++)
	{
		double		v = (double) i / s.n;

		s.X[i] = v;
		s.yr[i] = v < 0.3 ? 1.0 : v < 0.7 ? 5.0 : 2.0;
	}
	set_bin(&s, 64);
	trees_params_default(&p, TREE_ALGO_DECISION_TREE, ML_TASK_REGRESS);
	p.max_depth = 2;
	CHECK(fit(&env1, &s, &p, &m, NULL, &err) == ML_OK, "step: regression tree fits (%s)", err.msg);
	for (i = 0; i < s.n; i++)
	{
		x[0] = s.X[i];
		trees_predict_row(&m, x, o);
		if (fabs(o[0] - s.yr[i]) > maxerr)
			maxerr = fabs(o[0] - s.yr[i]);
	}
	CHECK(maxerr < 1e-12, "step: depth-2 tree reproduces the step exactly (max err %g)", maxerr);
	CHECK(count_leaves(&m) == 3 || count_leaves(&m) == 4, "step: %d leaves", count_leaves(&m));
	trees_model_free(&env1, &m);

	trees_params_default(&p, TREE_ALGO_GBT, ML_TASK_REGRESS);
	p.n_estimators = 50;
	p.max_depth = 2;
	CHECK(fit(&env1, &s, &p, &m, NULL, &err) == ML_OK, "step: gbt regression fits (%s)", err.msg);
	for (i = 0; i < s.n; i++)
	{
		x[0] = s.X[i];
		trees_predict_row(&m, x, o);
		se += (o[0] - s.yr[i]) * (o[0] - s.yr[i]);
	}
	CHECK(sqrt(se / s.n) < 0.01, "step: gbt rmse %.5f", sqrt(se / s.n));
	trees_model_free(&env1, &m);

	trees_params_default(&p, TREE_ALGO_RANDOM_FOREST, ML_TASK_REGRESS);
	p.n_estimators = 10;
	CHECK(fit(&env1, &s, &p, &m, NULL, &err) == ML_OK, "step: forest regression fits (%s)", err.msg);
	CHECK(m.oob_score > 0.9, "step: forest oob R^2 %.4f", m.oob_score);
	trees_model_free(&env1, &m);
	set_free(&s);
}

/* y = 1 exactly when x0 is missing; x1 is noise. */
static void
test_missing(void)
{
	Set			s;
	TreeParams	p;
	TreeModel	m;
	MlError		err;
	MlRng		rng;
	int64_t		i;
	int			algo;
	double		x[2],
				pr[2];

	set_alloc(&s, 600, 2, 2);
	ml_rng_seed(&rng, 5);
	for (i = 0; i < s.n; i++)
	{
		bool		miss = ml_rng_uniform(&rng) < 0.3;

		s.X[i] = miss ? NAN : ml_rng_uniform(&rng) * 10;
		s.X[s.n + i] = ml_rng_uniform(&rng);
		s.yc[i] = miss;
	}
	set_bin(&s, 256);
	CHECK(s.B[0] <= s.bins.n_bins[0], "missing: codes within range");
	for (algo = TREE_ALGO_DECISION_TREE; algo <= TREE_ALGO_GBT; algo++)
	{
		trees_params_default(&p, (TreeAlgorithm) algo, ML_TASK_CLASSIFY);
		p.n_estimators = 20;
		p.max_depth = 3;
		p.max_features = TREE_MF_ALL;
		CHECK(fit(&env1, &s, &p, &m, NULL, &err) == ML_OK, "missing: algo %d fits (%s)", algo, err.msg);
		CHECK(accuracy(&m, &s) == 1.0, "missing: algo %d learns NaN => class 1 (acc %.3f)", algo,
			  accuracy(&m, &s));
		x[0] = NAN;
		x[1] = 0.5;
		CHECK(trees_predict_class(&m, x, pr) == 1 && pr[1] > 0.9,
			  "missing: algo %d routes an unseen NaN row to class 1 (p=%.3f)", algo, pr[1]);
		x[0] = 123.0;			/* beyond the training range */
		CHECK(trees_predict_class(&m, x, pr) == 0, "missing: algo %d large value is class 0", algo);
		trees_model_free(&env1, &m);
	}
	set_free(&s);
}

static void
test_class_weight(void)
{
	Set			s;
	TreeParams	p;
	TreeModel	m;
	MlError		err;
	MlRng		rng;
	int64_t		i;
	int			pos_none = 0,
				pos_given = 0;
	double		x[1],
				pr[2],
				p1_none = 0,
				p1_bal = 0,
				w[2] = {1.0, 20.0};

	set_alloc(&s, 1000, 1, 2);
	ml_rng_seed(&rng, 9);
	for (i = 0; i < s.n; i++)
	{
		s.yc[i] = ml_rng_uniform(&rng) < 0.1;
		s.X[i] = ml_rng_uniform(&rng) + (s.yc[i] ? 0.3 : 0.0);	/* overlapping */
	}
	set_bin(&s, 256);
	trees_params_default(&p, TREE_ALGO_DECISION_TREE, ML_TASK_CLASSIFY);
	p.max_depth = 2;
	CHECK(fit(&env1, &s, &p, &m, NULL, &err) == ML_OK, "class_weight: none fits");
	for (i = 0; i < s.n; i++)
	{
		x[0] = s.X[i];
		pos_none += trees_predict_class(&m, x, pr);
		p1_none += pr[1] / s.n;
	}
	trees_model_free(&env1, &m);
	p.class_weight = TREE_CW_BALANCED;
	CHECK(fit(&env1, &s, &p, &m, NULL, &err) == ML_OK, "class_weight: balanced fits");
	for (i = 0; i < s.n; i++)
	{
		x[0] = s.X[i];
		trees_predict_class(&m, x, pr);
		p1_bal += pr[1] / s.n;
	}
	trees_model_free(&env1, &m);
	CHECK(p1_bal > 2 * p1_none,
		  "class_weight: balanced raises the rare class's mean probability (%.3f vs %.3f)", p1_bal, p1_none);
	p.class_weight = TREE_CW_GIVEN;
	p.class_weights = w;
	CHECK(fit(&env1, &s, &p, &m, NULL, &err) == ML_OK, "class_weight: given weights fit");
	for (i = 0; i < s.n; i++)
	{
		x[0] = s.X[i];
		pos_given += trees_predict_class(&m, x, pr);
	}
	CHECK(pos_given > 2 * pos_none, "class_weight: weight 20 on the rare class predicts it more (%d vs %d)",
		  pos_given, pos_none);
	trees_model_free(&env1, &m);
	w[1] = -1;
	CHECK(fit(&env1, &s, &p, &m, NULL, &err) == ML_ERR_PARAM, "class_weight: negative weight rejected: %s",
		  err.msg);
	set_free(&s);
}

static void
test_ccp(void)
{
	Set			s;
	TreeParams	p;
	TreeModel	m;
	MlError		err;
	MlRng		rng;
	int64_t		i;
	int			full,
				pruned,
				more;

	set_alloc(&s, 500, 3, 2);
	ml_rng_seed(&rng, 11);
	for (i = 0; i < s.n; i++)
	{
		s.X[i] = ml_rng_uniform(&rng);
		s.X[s.n + i] = ml_rng_uniform(&rng);
		s.X[2 * s.n + i] = ml_rng_uniform(&rng);
		s.yc[i] = (s.X[i] > 0.5) ^ (ml_rng_uniform(&rng) < 0.15);	/* 15% label noise */
	}
	set_bin(&s, 256);
	trees_params_default(&p, TREE_ALGO_DECISION_TREE, ML_TASK_CLASSIFY);
	fit(&env1, &s, &p, &m, NULL, &err);
	full = count_leaves(&m);
	trees_model_free(&env1, &m);
	p.ccp_alpha = 0.002;
	fit(&env1, &s, &p, &m, NULL, &err);
	pruned = count_leaves(&m);
	trees_model_free(&env1, &m);
	p.ccp_alpha = 0.05;
	CHECK(fit(&env1, &s, &p, &m, NULL, &err) == ML_OK, "ccp: fits");
	more = count_leaves(&m);
	CHECK(full > pruned && pruned > more && more >= 2,
		  "ccp_alpha pruning reduces leaves: %d -> %d -> %d", full, pruned, more);
	CHECK(more == 2 && (m.nodes[0].feature & TREE_NODE_FEATURE_MASK) == 0,
		  "ccp: strong pruning keeps the one real split");
	trees_model_free(&env1, &m);
	set_free(&s);
}

/* Three-class data with noise, for determinism and codec tests. */
static void
make_multi(Set *s, int64_t n, uint64_t seed)
{
	MlRng		rng;
	int64_t		i;
	int			j;

	set_alloc(s, n, 5, 3);
	ml_rng_seed(&rng, seed);
	for (i = 0; i < n; i++)
	{
		double		a = ml_rng_uniform(&rng),
					b = ml_rng_uniform(&rng);

		for (j = 0; j < 5; j++)
			s->X[(size_t) j * n + i] = ml_rng_uniform(&rng);
		s->X[i] = a;
		s->X[n + i] = b;
		if (ml_rng_uniform(&rng) < 0.05)
			s->X[2 * n + i] = NAN;
		s->yc[i] = a + b < 0.7 ? 0 : a > b ? 1 : 2;
		if (ml_rng_uniform(&rng) < 0.1)
			s->yc[i] = (int32_t) ml_rng_below(&rng, 3);
		s->yr[i] = 3 * a - b * b + (ml_rng_uniform(&rng) - 0.5) * 0.1;
	}
	set_bin(s, 256);
}

static bool
same_bytes(const TreeModel *a, const TreeModel *b)
{
	MlBuf		x = artifact_of(a),
				y = artifact_of(b);
	bool		same = x.len == y.len && memcmp(x.data, y.data, x.len) == 0;

	ml_free(&env1, x.data);
	ml_free(&env1, y.data);
	return same;
}

static void
test_determinism(void)
{
	Set			s;
	TreeParams	p;
	TreeModel	a,
				b,
				c;
	MlError		err;
	MlEnv		env2 = mlt_env(2);
	int			algo,
				task;

	make_multi(&s, 3000, 21);
	for (algo = TREE_ALGO_DECISION_TREE; algo <= TREE_ALGO_GBT; algo++)
		for (task = ML_TASK_CLASSIFY; task <= ML_TASK_REGRESS; task++)
		{
			trees_params_default(&p, (TreeAlgorithm) algo, (MlTask) task);
			p.n_estimators = 12;
			p.subsample = 0.8;
			p.colsample = 0.8;
			p.seed = 77;
			fit(&env1, &s, &p, &a, NULL, &err);
			fit(&env1, &s, &p, &b, NULL, &err);
			CHECK(fit(&env2, &s, &p, &c, NULL, &err) == ML_OK, "determinism: 2 threads fit (%s)", err.msg);
			CHECK(same_bytes(&a, &b), "determinism: algo %d task %d same bytes twice", algo, task);
			CHECK(same_bytes(&a, &c), "determinism: algo %d task %d same bytes with 1 and 2 threads",
				  algo, task);
			trees_model_free(&env1, &a);
			trees_model_free(&env1, &b);
			trees_model_free(&env1, &c);
			p.seed = 78;
			if (algo != TREE_ALGO_DECISION_TREE)
			{
				fit(&env1, &s, &p, &b, NULL, &err);
				p.seed = 77;
				fit(&env1, &s, &p, &a, NULL, &err);
				CHECK(!same_bytes(&a, &b), "determinism: algo %d another seed, another model", algo);
				trees_model_free(&env1, &a);
				trees_model_free(&env1, &b);
			}
		}
	set_free(&s);
}

/* An MlEnv that counts live bytes and keeps their high-water mark. */
typedef struct CountCtx
{
	size_t		live;
	size_t		peak;
} CountCtx;

static void *
count_alloc(void *ctx, size_t n)
{
	CountCtx   *c = ctx;
	size_t	   *p = malloc(n + 16);

	if (!p)
		return NULL;
	p[0] = n;
	c->live += n;
	if (c->live > c->peak)
		c->peak = c->live;
	return (char *) p + 16;
}

static void
count_free(void *ctx, void *ptr)
{
	CountCtx   *c = ctx;
	size_t	   *p;

	if (!ptr)
		return;
	p = (size_t *) ((char *) ptr - 16);
	c->live -= p[0];
	free(p);
}

/*
 * gbt's working memory: at most 18 bytes a row (float margin and gradient
 * pair, a row index, half a row index of partition scratch) plus
 * 2^(depth-2) + 5 histograms and a little per node, and within
 * trees_memory_needed(); also with a row sample below one half (whose
 * unsampled rows used to go through a full-size scratch). 150,000 rows take
 * the partition through several chunks on two threads: the models must
 * still be the same bytes as with one.
 */
static void
test_gbt_memory(void)
{
	Set			s;
	TreeParams	p;
	TreeModel	a,
				b;
	MlError		err;
	CountCtx	cc;
	MlEnv		envc = mlt_env(2);
	int64_t		i;
	int			j,
				sub;
	size_t		slots = 0,
				bound;

	set_alloc(&s, 150000, 8, 2);
	{
		MlRng		rng;

		ml_rng_seed(&rng, 5);
		for (i = 0; i < s.n; i++)
		{
			double		z = 0;

			for (j = 0; j < s.d; j++)
			{
				double		v = ml_rng_uniform(&rng);

				s.X[(size_t) j * s.n + i] = v;
				z += (j + 1) * v;
			}
			s.yc[i] = z + ml_rng_uniform(&rng) * 6 > 21;
		}
	}
	set_bin(&s, 256);
	for (j = 0; j < s.d; j++)
		slots += (size_t) s.bins.n_bins[j] + 1;
	envc.alloc = count_alloc;
	envc.free = count_free;
	envc.ctx = &cc;
	for (sub = 0; sub < 2; sub++)
	{
		trees_params_default(&p, TREE_ALGO_GBT, ML_TASK_CLASSIFY);
		p.n_estimators = 8;
		p.max_depth = 6;
		p.subsample = sub ? 0.3 : 1.0;
		memset(&cc, 0, sizeof(cc));
		CHECK(fit(&envc, &s, &p, &a, NULL, &err) == ML_OK, "gbt memory: fit (%s)", err.msg);
		bound = (size_t) s.n * 18 + (size_t) ((1 << 4) + 5) * slots * 16 + ((size_t) 256 << 10);
		CHECK(cc.peak <= bound, "gbt memory, subsample %.1f: peak %.0f kB of work at most %.0f kB",
			  p.subsample, cc.peak / 1024.0, bound / 1024.0);
		CHECK(cc.peak <= trees_memory_needed(s.n, s.d, 2, &p),
			  "gbt memory, subsample %.1f: peak %.0f kB within trees_memory_needed %.0f kB",
			  p.subsample, cc.peak / 1024.0, trees_memory_needed(s.n, s.d, 2, &p) / 1024.0);
		CHECK(fit(&env1, &s, &p, &b, NULL, &err) == ML_OK, "gbt memory: 1-thread fit (%s)", err.msg);
		CHECK(same_bytes(&a, &b), "gbt memory, subsample %.1f: same bytes with 1 and 2 threads",
			  p.subsample);
		trees_model_free(&envc, &a);
		trees_model_free(&env1, &b);
		CHECK(cc.live == 0, "gbt memory: everything freed (%zu bytes left)", cc.live);
	}
	set_free(&s);
}

static void
test_validation(void)
{
	Set			s;
	TreeParams	p;
	TreeModel	m;
	MlError		err;
	TreeData	data;
	int64_t		i;

	make_multi(&s, 200, 4);
#define EXPECT_PARAM(algo, field, value, label) do { \
		trees_params_default(&p, algo, ML_TASK_CLASSIFY); \
		p.field = value; \
		CHECK(fit(&env1, &s, &p, &m, NULL, &err) == ML_ERR_PARAM, "params: %s rejected: %s", label, err.msg); \
	} while (0)
	EXPECT_PARAM(TREE_ALGO_GBT, n_estimators, 0, "n_estimators 0");
	EXPECT_PARAM(TREE_ALGO_RANDOM_FOREST, n_estimators, -3, "n_estimators -3");
	EXPECT_PARAM(TREE_ALGO_GBT, learning_rate, 0, "learning_rate 0");
	EXPECT_PARAM(TREE_ALGO_GBT, learning_rate, -0.1, "learning_rate < 0");
	EXPECT_PARAM(TREE_ALGO_GBT, learning_rate, NAN, "learning_rate NaN");
	EXPECT_PARAM(TREE_ALGO_DECISION_TREE, max_depth, 65, "max_depth 65");
	EXPECT_PARAM(TREE_ALGO_GBT, max_depth, 21, "gbt max_depth 21");
	EXPECT_PARAM(TREE_ALGO_GBT, max_depth, -1, "max_depth -1");
	EXPECT_PARAM(TREE_ALGO_GBT, max_bins, 257, "max_bins 257");
	EXPECT_PARAM(TREE_ALGO_GBT, max_bins, 1, "max_bins 1");
	EXPECT_PARAM(TREE_ALGO_GBT, objective, (TreeObjective) 9, "unknown objective");
	EXPECT_PARAM(TREE_ALGO_GBT, objective, TREE_OBJ_BINARY_LOGISTIC, "binary:logistic on 3 classes");
	EXPECT_PARAM(TREE_ALGO_GBT, objective, TREE_OBJ_REG_SQUAREDERROR, "reg objective on classes");
	EXPECT_PARAM(TREE_ALGO_GBT, subsample, 0, "subsample 0");
	EXPECT_PARAM(TREE_ALGO_GBT, colsample, 1.5, "colsample 1.5");
	EXPECT_PARAM(TREE_ALGO_GBT, l2, -1, "l2 < 0");
	EXPECT_PARAM(TREE_ALGO_GBT, min_child_weight, -1, "min_child_weight < 0");
	EXPECT_PARAM(TREE_ALGO_GBT, max_leaves, 1, "max_leaves 1");
	EXPECT_PARAM(TREE_ALGO_GBT, early_stopping_rounds, 5, "early stopping without validation rows");
	EXPECT_PARAM(TREE_ALGO_DECISION_TREE, min_samples_leaf, 0, "min_samples_leaf 0");
	EXPECT_PARAM(TREE_ALGO_DECISION_TREE, min_samples_split, 1, "min_samples_split 1");
	EXPECT_PARAM(TREE_ALGO_DECISION_TREE, ccp_alpha, -0.5, "ccp_alpha < 0");
	EXPECT_PARAM(TREE_ALGO_DECISION_TREE, criterion, TREE_CRIT_SQUARED_ERROR, "squared_error on classes");
	EXPECT_PARAM(TREE_ALGO_RANDOM_FOREST, max_features, (TreeMaxFeatures) 17, "unknown max_features");
	trees_params_default(&p, TREE_ALGO_RANDOM_FOREST, ML_TASK_CLASSIFY);
	p.max_features = TREE_MF_COUNT;
	p.max_features_value = 6;	/* d = 5 */
	CHECK(fit(&env1, &s, &p, &m, NULL, &err) == ML_ERR_PARAM, "params: max_features count > d: %s",
		  err.msg);
	CHECK(strstr(err.msg, "max_features") != NULL, "params: message names the parameter");

	/* data errors */
	memset(&err, 0, sizeof(err));
	trees_params_default(&p, TREE_ALGO_GBT, ML_TASK_CLASSIFY);
	memset(&data, 0, sizeof(data));
	data.B = s.B;
	data.n = 0;
	data.d = s.d;
	data.bins = &s.bins;
	data.y_class = s.yc;
	data.n_classes = 3;
	CHECK(trees_fit(&env1, &data, &p, &m, NULL, &err) == ML_ERR_DATA, "data: n == 0 rejected: %s", err.msg);
	memset(&err, 0, sizeof(err));
	data.n = s.n;
	for (i = 0; i < s.n; i++)
		s.yc[i] = 1;
	CHECK(trees_fit(&env1, &data, &p, &m, NULL, &err) == ML_ERR_DATA, "data: single class rejected: %s",
		  err.msg);
	memset(&err, 0, sizeof(err));
	s.yc[0] = 7;
	CHECK(trees_fit(&env1, &data, &p, &m, NULL, &err) == ML_ERR_DATA, "data: label out of range: %s",
		  err.msg);
	memset(&err, 0, sizeof(err));
	trees_params_default(&p, TREE_ALGO_GBT, ML_TASK_REGRESS);
	s.yr[3] = NAN;
	data.y = s.yr;
	CHECK(trees_fit(&env1, &data, &p, &m, NULL, &err) == ML_ERR_DATA, "data: NaN target: %s", err.msg);
	memset(&err, 0, sizeof(err));
	for (i = 0; i < s.n; i++)
		s.yr[i] = NAN;
	CHECK(trees_fit(&env1, &data, &p, &m, NULL, &err) == ML_ERR_DATA, "data: all-NaN target rejected");
	CHECK(trees_memory_needed(1000000, 28, 2, &p) > 0 &&
		  trees_memory_needed(1000000, 28, 2, &p) < (size_t) 200 << 20,
		  "memory estimate for 1M x 28 gbt: %.1f MB", trees_memory_needed(1000000, 28, 2, &p) / 1048576.0);
	set_free(&s);
}

static void
test_early_stopping(void)
{
	Set			s;
	TreeParams	p;
	TreeModel	m;
	MlError		err;
	uint8_t    *valid;
	int64_t		i;
	MlTrace		trace = {0};

	make_multi(&s, 2000, 8);
	valid = calloc(s.n, 1);
	for (i = 0; i < s.n; i += 4)
		valid[i] = 1;
	trees_params_default(&p, TREE_ALGO_GBT, ML_TASK_CLASSIFY);
	p.n_estimators = 300;
	p.learning_rate = 0.5;
	p.max_depth = 6;
	p.early_stopping_rounds = 5;
	p.trace = &trace;
	CHECK(fit(&env1, &s, &p, &m, valid, &err) == ML_OK, "early stopping: fits (%s)", err.msg);
	CHECK(m.best_iteration >= 0 && m.best_iteration < 250 &&
		  m.n_trees == (uint32_t) (m.best_iteration + 1) * 3,
		  "early stopping: best iteration %d, %u trees kept, valid loss %.4f", m.best_iteration,
		  m.n_trees, m.valid_loss);
	/* the trace: every round built, the training loss falling, the best round's validation loss */
	{
		bool		falling = true;
		int			r;

		for (r = 1; r < trace.n; r++)
			falling &= trace.train_loss[r] < trace.train_loss[r - 1];
		CHECK(trace.n == m.best_iteration + 1 + 5 && falling &&
			  trace.valid_loss[m.best_iteration] == m.valid_loss && trace.elapsed_ms[0] >= 0,
			  "trace: %d rounds (best %d + 5), training loss falling, validation loss %.6g at the best round",
			  trace.n, m.best_iteration, trace.n > m.best_iteration ? trace.valid_loss[m.best_iteration] : NAN);
	}
	p.trace = NULL;
	ml_trace_free(&env1, &trace);
	trees_model_free(&env1, &m);
	/* loss-guided growth */
	p.early_stopping_rounds = 0;
	p.n_estimators = 10;
	p.max_leaves = 5;
	p.max_depth = 0;
	CHECK(fit(&env1, &s, &p, &m, NULL, &err) == ML_OK, "max_leaves: fits (%s)", err.msg);
	CHECK(count_leaves(&m) <= 5 * 30 && count_leaves(&m) > 30, "max_leaves: %d leaves in 30 trees",
		  count_leaves(&m));
	trees_model_free(&env1, &m);
	free(valid);
	set_free(&s);
}

/*
 * The fast one-row walk (eight trees in lock step, a register sum for one
 * tree per round, a wrapping class counter otherwise) gives the same bits as
 * the node-by-node walk, for binary, multi-class and regression gbt, with
 * and without NaN in the row, and tree counts that are not a multiple of 8.
 */
static void
test_fast_row_walk(void)
{
	Set			s;
	TreeParams	p;
	TreeModel	m;
	MlError		err;
	int			kind;

	make_multi(&s, 1500, 33);
	for (kind = 0; kind < 3; kind++)
	{
		int64_t		i,
					diff = 0,
					with_nan = 0;
		double		x[8],
					a[8],
					b[8];
		void	   *fast;

		trees_params_default(&p, TREE_ALGO_GBT, kind == 2 ? ML_TASK_REGRESS : ML_TASK_CLASSIFY);
		p.n_estimators = 19;
		p.max_depth = 5;
		if (kind == 1)
		{
			for (i = 0; i < s.n; i++)
				s.yc[i] = s.yc[i] == 0 ? 0 : 1;
			s.K = 2;
		}
		CHECK(fit(&env1, &s, &p, &m, NULL, &err) == ML_OK, "fast walk: kind %d fits (%s)", kind, err.msg);
		CHECK(m.fast != NULL, "fast walk: kind %d has the fast layout (%u trees)", kind, m.n_trees);
		for (i = 0; i < s.n; i++)
		{
			row_of(&s, i, x);
			with_nan += isnan(x[2]);
			trees_predict_row(&m, x, a);
			fast = m.fast;
			m.fast = NULL;
			trees_predict_row(&m, x, b);
			m.fast = fast;
			diff += memcmp(a, b, sizeof(double) * m.n_outputs) != 0;
		}
		CHECK(diff == 0 && with_nan > 0,
			  "fast walk: kind %d, %u trees: %lld of %lld rows differ from the node walk (%lld with NaN)",
			  kind, m.n_trees, (long long) diff, (long long) s.n, (long long) with_nan);
		trees_model_free(&env1, &m);
	}
	set_free(&s);
}

/* Write -> read -> same predictions, for every kind of model. */
static void
test_roundtrip(void)
{
	Set			s;
	TreeParams	p;
	TreeModel	a,
				b;
	MlError		err;
	int			algo,
				task;

	make_multi(&s, 800, 31);
	for (algo = TREE_ALGO_DECISION_TREE; algo <= TREE_ALGO_GBT; algo++)
		for (task = ML_TASK_CLASSIFY; task <= ML_TASK_REGRESS; task++)
		{
			MlBuf		art;
			MlBuf		js;

			trees_params_default(&p, (TreeAlgorithm) algo, (MlTask) task);
			p.n_estimators = 7;
			fit(&env1, &s, &p, &a, NULL, &err);
			art = artifact_of(&a);
			CHECK(load(art.data, art.len, &b, &err) == ML_OK, "roundtrip: algo %d task %d reads back (%s)",
				  algo, task, err.msg);
			CHECK(b.n_trees == a.n_trees && same_predictions(&a, &b, &s),
				  "roundtrip: algo %d task %d same predictions", algo, task);
			ml_buf_init(&js, &env1);
			trees_export_json(&js, &b, NULL);
			CHECK(!js.failed && js.len > 10 && js.data[0] == '{' && js.data[js.len - 2] == '}' &&
				  js.data[js.len - 1] == 0 && strstr((char *) js.data, "\"trees\":[{\"nodes\":[") != NULL,
				  "export: algo %d task %d renders JSON (%zu bytes)", algo, task, js.len);
			ml_free(&env1, js.data);
			ml_free(&env1, art.data);
			trees_model_free(&env1, &a);
			trees_model_free(&env1, &b);
		}
	set_free(&s);
}

/*
 * Every single-byte flip and every truncation of small artifacts is
 * rejected (the CRC), and the same on the bare model payload, where any
 * flip must be rejected or yield a model that scores safely.
 */
static void
test_corruption(void)
{
	Set			s;
	TreeParams	p;
	TreeModel	a,
				b;
	MlError		err;
	int			algo;

	make_multi(&s, 120, 41);
	for (algo = TREE_ALGO_DECISION_TREE; algo <= TREE_ALGO_GBT; algo++)
	{
		MlBuf		art,
					pay;
		size_t		i;
		int			bit;
		long		rejected = 0,
					accepted = 0,
					tries = 0,
					trunc_bad = 0;
		uint8_t    *copy;
		double		x[5],
					o[3];

		trees_params_default(&p, (TreeAlgorithm) algo, ML_TASK_CLASSIFY);
		p.n_estimators = 2;
		p.max_depth = 2;
		fit(&env1, &s, &p, &a, NULL, &err);
		art = artifact_of(&a);
		copy = malloc(art.len);
		for (i = 0; i < art.len; i++)
			for (bit = 0; bit < 8; bit++)
			{
				memcpy(copy, art.data, art.len);
				copy[i] ^= (uint8_t) (1 << bit);
				tries++;
				if (load(copy, art.len, &b, &err) == ML_ERR_CORRUPT)
					rejected++;
				else
					trees_model_free(&env1, &b);
			}
		CHECK(rejected == tries, "corruption: algo %d every bit flip of the %zu-byte artifact rejected (%ld/%ld)",
			  algo, art.len, rejected, tries);
		for (i = 0; i < art.len; i++)
		{
			if (load(art.data, i, &b, &err) != ML_ERR_CORRUPT)
			{
				trunc_bad++;
				trees_model_free(&env1, &b);
			}
		}
		CHECK(trunc_bad == 0, "corruption: algo %d every truncation rejected", algo);
		free(copy);

		/* bare payload: bypass the CRC to exercise the model validation */
		ml_buf_init(&pay, &env1);
		trees_write(&pay, &a);
		copy = malloc(pay.len);
		rejected = accepted = tries = 0;
		for (i = 0; i < pay.len; i++)
			for (bit = 0; bit < 8; bit++)
			{
				MlReader	r;

				memcpy(copy, pay.data, pay.len);
				copy[i] ^= (uint8_t) (1 << bit);
				memset(&err, 0, sizeof(err));
				ml_rd_init(&r, copy, pay.len, &env1, &err);
				tries++;
				if (trees_read(&r, &env1, &b))
				{
					int			k;

					accepted++;
					for (k = 0; k < 5; k++)
						x[k] = k == 2 ? NAN : 0.1 * k;
					trees_predict_row(&b, x, o);
					trees_predict_batch(&env1, &b, x, 1, o);
					trees_model_free(&env1, &b);
				}
				else if (err.code == ML_ERR_CORRUPT)
					rejected++;
			}
		CHECK(rejected + accepted == tries && rejected > 0,
			  "corruption: algo %d payload flips: %ld rejected, %ld accepted as valid models, of %ld",
			  algo, rejected, accepted, tries);
		trunc_bad = 0;
		for (i = 0; i < pay.len; i++)
		{
			MlReader	r;

			memset(&err, 0, sizeof(err));
			ml_rd_init(&r, pay.data, i, &env1, &err);
			if (trees_read(&r, &env1, &b) || err.code != ML_ERR_CORRUPT)
			{
				trunc_bad++;
				trees_model_free(&env1, &b);
			}
		}
		CHECK(trunc_bad == 0, "corruption: algo %d every payload truncation rejected", algo);
		free(copy);
		ml_free(&env1, pay.data);
		ml_free(&env1, art.data);
		trees_model_free(&env1, &a);
	}
	set_free(&s);
}

static int	cancel_after;

static int
cancel_check(void *ctx, const char *stage, int iter, int max_iter, double v)
{
	return --cancel_after <= 0;
}

/* A cancel from the check callback stops training cleanly (ASan: no leaks). */
static void
test_cancel(void)
{
	Set			s;
	TreeParams	p;
	TreeModel	m;
	MlError		err;
	MlEnv		e = mlt_env(1);
	int			algo;

	e.check = cancel_check;
	make_multi(&s, 500, 3);
	for (algo = TREE_ALGO_DECISION_TREE; algo <= TREE_ALGO_GBT; algo++)
	{
		trees_params_default(&p, (TreeAlgorithm) algo, ML_TASK_CLASSIFY);
		p.n_estimators = 10;
		cancel_after = 3;
		CHECK(fit(&e, &s, &p, &m, NULL, &err) == (algo == TREE_ALGO_DECISION_TREE ? ML_OK : ML_ERR_INTERNAL),
			  "cancel: algo %d stops when check asks (%s)", algo, err.msg);
		if (err.code == ML_OK)
			trees_model_free(&env1, &m);
	}
	set_free(&s);
}

static void
test_binning(void)
{
	Set			s;
	int64_t		i;
	uint8_t		row[3];
	double		x[3];
	bool		ok = true;

	set_alloc(&s, 1000, 3, 2);
	for (i = 0; i < s.n; i++)
	{
		s.X[i] = (double) (i % 7);			/* 7 distinct values */
		s.X[s.n + i] = i * 0.001;			/* many */
		s.X[2 * s.n + i] = i % 3 == 0 ? NAN : (i % 2 ? INFINITY : -1.0);
	}
	set_bin(&s, 32);
	CHECK(s.bins.n_bins[0] == 7, "bins: 7 distinct values give 7 bins (%d)", s.bins.n_bins[0]);
	CHECK(s.bins.n_bins[1] == 32, "bins: continuous feature gets max_bins (%d)", s.bins.n_bins[1]);
	CHECK(s.bins.cuts[0] == 0.5 && s.bins.cuts[1] == 1.5, "bins: cuts at midpoints");
	for (i = 0; i < s.n && ok; i++)
	{
		row_of(&s, i, x);
		trees_bins_apply_row(&s.bins, x, row);
		ok = memcmp(row, s.B + i * 3, 3) == 0;
	}
	CHECK(ok, "bins: row and batch binning agree");
	CHECK(s.B[0 * 3 + 2] == s.bins.n_bins[2], "bins: NaN gets the missing code");
	set_free(&s);
}

int
main(void)
{
	env1 = mlt_env(1);
	test_binning();
	test_separable();
	test_step_regression();
	test_missing();
	test_class_weight();
	test_ccp();
	test_determinism();
	test_gbt_memory();
	test_validation();
	test_early_stopping();
	test_roundtrip();
	test_fast_row_walk();
	test_corruption();
	test_cancel();
	return mlt_done();
}
