/*
 * test_tree_walk.c: the scoring walks of tree models give the same bits.
 *
 * The quantised walk (rows binned against each feature's sorted distinct
 * thresholds, compact node words), the double walk over complete trees and
 * the node-by-node walk, one row at a time and in blocks, must agree bit for
 * bit on every kind of model (gbt regression, binary, multi-class; forest
 * and decision tree regression), on rows with NaN, with values equal to a
 * threshold and one ulp either side of it, and with +-Inf.
 *
 * With MLPIPE_WALK_BENCH=1 in the environment it also times the one-row
 * walks on a 100-tree depth-6 gbt over 28 features (thread CPU clock).
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <time.h>

#include "mltest.h"
#include "trees.h"
#include "trees_int.h"

#define D 28

static MlEnv env1;

/* A deterministic data set: column-major X, labels for every task. */
typedef struct WalkSet
{
	int64_t		n;
	double	   *X;				/* column-major n x D */
	double	   *R;				/* the same rows, row-major */
	int32_t    *yc;
	double	   *yr;
	TreeBins	bins;
	uint8_t    *B;
} WalkSet;

/* xorshift64*: uniform in [0, 1). */
static double
rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return (double) ((*s * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

/*
 * n rows of D features: continuous, integer-valued (many ties) and a few
 * NaN (nan_rate of the values of every fifth feature); a label that
 * depends on several of them.
 */
static void
walk_set(WalkSet *s, int64_t n, int K, double nan_rate)
{
	uint64_t	st = 88172645463325252ULL;
	int64_t		i;
	int			j;
	MlError		err = {0};

	memset(s, 0, sizeof(*s));
	s->n = n;
	s->X = calloc((size_t) n * D, sizeof(double));
	s->R = calloc((size_t) n * D, sizeof(double));
	s->yc = calloc(n, sizeof(int32_t));
	s->yr = calloc(n, sizeof(double));
	for (i = 0; i < n; i++)
	{
		double		z = 0;

		for (j = 0; j < D; j++)
		{
			double		v = j % 3 == 1 ? floor(rnd(&st) * 12) : rnd(&st) * 4 - 2;

			if (j % 5 == 2 && rnd(&st) < nan_rate)
				v = NAN;
			s->X[(size_t) j * n + i] = v;
			s->R[(size_t) i * D + j] = v;
		}
		z = s->R[i * D] + 0.3 * s->R[i * D + 1] - s->R[i * D + 3] * s->R[i * D + 4] +
			(isnan(s->R[i * D + 2]) ? 1 : s->R[i * D + 2]) + 0.5 * rnd(&st);
		s->yr[i] = z;
		s->yc[i] = K == 2 ? z > 0 : (z < -1 ? 0 : z < 1 ? 1 : 2);
	}
	if (trees_bins_fit(&env1, s->X, n, D, 256, 0, 1, &s->bins, &err) != ML_OK)
		printf("# bins: %s\n", err.msg);
	s->B = malloc((size_t) n * D);
	trees_bins_apply(&env1, &s->bins, s->X, n, s->B, 0);
}

static void
walk_set_free(WalkSet *s)
{
	trees_bins_free(&env1, &s->bins);
	free(s->X);
	free(s->R);
	free(s->yc);
	free(s->yr);
	free(s->B);
}

/* Fits one model of the given kind (0..4) on s. */
static MlStatus
walk_fit(const WalkSet *s, int kind, int K, int n_trees, int depth, TreeModel *m)
{
	TreeParams	p;
	TreeData	data;
	MlError		err = {0};
	MlStatus	st;
	TreeAlgorithm algo = kind <= 2 ? TREE_ALGO_GBT : kind == 3 ? TREE_ALGO_RANDOM_FOREST :
		TREE_ALGO_DECISION_TREE;
	MlTask		task = kind == 1 || kind == 2 ? ML_TASK_CLASSIFY : ML_TASK_REGRESS;

	trees_params_default(&p, algo, task);
	p.n_estimators = n_trees;
	p.max_depth = depth;
	if (algo == TREE_ALGO_GBT)
		p.learning_rate = 0.1;
	memset(&data, 0, sizeof(data));
	data.B = s->B;
	data.n = s->n;
	data.d = D;
	data.bins = &s->bins;
	data.y_class = s->yc;
	data.n_classes = task == ML_TASK_CLASSIFY ? K : 0;
	data.y = s->yr;
	st = trees_fit(&env1, &data, &p, m, NULL, &err);
	if (st != ML_OK)
		printf("# fit kind %d: %s\n", kind, err.msg);
	return st;
}

/*
 * Test rows: the set's rows, then rows where features are set to a split
 * threshold of the model, one ulp below or above it, +-Inf or NaN.
 */
static double *
walk_rows(const WalkSet *s, const TreeModel *m, int64_t *n_out)
{
	int64_t		n = s->n * 2,
				i;
	double	   *X = malloc(sizeof(double) * (size_t) n * D);
	uint32_t	n_nodes = m->tree_start[m->n_trees],
				k = 0;
	uint64_t	st = 7;

	memcpy(X, s->R, sizeof(double) * (size_t) s->n * D);
	for (i = s->n; i < n; i++)
	{
		double	   *x = X + (size_t) i * D;
		int			c;

		memcpy(x, s->R + (size_t) (i - s->n) * D, sizeof(double) * D);
		for (c = 0; c < 6; c++)
		{
			const TreeNode *nd;
			double		t,
						r = rnd(&st);
			int			j;

			do
				nd = &m->nodes[k++ % n_nodes];
			while (nd->feature & TREE_NODE_LEAF);
			j = nd->feature & TREE_NODE_FEATURE_MASK;
			t = nd->value;
			x[j] = r < 0.4 ? t : r < 0.6 ? nextafter(t, -INFINITY) : r < 0.8 ?
				nextafter(t, INFINITY) : r < 0.87 ? INFINITY : r < 0.94 ? -INFINITY : NAN;
		}
	}
	*n_out = n;
	return X;
}

/* Row-at-a-time predictions of X (n rows) into out. */
static void
predict_rows(const TreeModel *m, const double *X, int64_t n, double *out)
{
	int64_t		i;

	for (i = 0; i < n; i++)
		trees_predict_row(m, X + (size_t) i * D, out + (size_t) i * m->n_outputs);
}

/* Rows whose outputs differ between a and b. */
static int64_t
n_differ(const double *a, const double *b, int64_t n, uint32_t w)
{
	int64_t		i,
				c = 0;

	for (i = 0; i < n; i++)
		c += memcmp(a + (size_t) i * w, b + (size_t) i * w, sizeof(double) * w) != 0;
	return c;
}

/*
 * The values feature u of q is binned against in test_binning: every cut,
 * one ulp either side of it, +-0, +-Inf, NaN, the extremes and random
 * values around the cuts. Returns how many were written (at most max).
 */
static int
bin_values(const struct TreeQuant *q, uint32_t u, double *v, int max, uint64_t *st)
{
	const double *c = q->cuts + (size_t) u * q->width;
	const double special[] = {0.0, -0.0, INFINITY, -INFINITY, NAN, DBL_MAX, -DBL_MAX,
	DBL_MIN, -DBL_MIN, 4.9e-324, -4.9e-324};
	uint32_t	i;
	int			n = 0,
				k;

	for (i = 0; i < q->width && n + 3 <= max; i++)
	{
		v[n++] = c[i];
		v[n++] = nextafter(c[i], -INFINITY);
		v[n++] = nextafter(c[i], INFINITY);
	}
	for (k = 0; k < (int) (sizeof(special) / sizeof(special[0])) && n < max; k++)
		v[n++] = special[k];
	for (k = 0; k < 200 && n < max; k++)
		v[n++] = c[0] == c[0] && isfinite(c[0]) ? c[0] + (rnd(st) * 2 - 0.5) * (fabs(c[0]) + 4) :
			rnd(st) * 8 - 4;
	return n;
}

/*
 * The model's binning (SIMD when q->simd says so) gives the scalar search's
 * bins on every value bin_values lists, each feature in turn taking each of
 * its values while the others take theirs.
 */
static void
test_binning(const struct TreeQuant *q, int kind)
{
	enum
	{
	MAXV = 3 * 1024 + 300};
	double	   *vals = malloc(sizeof(double) * MAXV * q->n_used);
	int		   *nv = malloc(sizeof(int) * q->n_used);
	double		x[D];
	uint32_t	xb[2 * D],
				ref[2 * D],
				u;
	uint64_t	st = 99;
	int			r,
				rows = 0,
				bad = 0;

	for (u = 0; u < q->n_used; u++)
	{
		nv[u] = bin_values(q, u, vals + (size_t) u * MAXV, MAXV, &st);
		if (nv[u] > rows)
			rows = nv[u];
	}
	for (r = 0; r < rows; r++)
	{
		int			j;

		for (j = 0; j < D; j++)
			x[j] = (double) j;
		for (u = 0; u < q->n_used; u++)
			x[q->used[u]] = vals[(size_t) u * MAXV + (r + 7 * u) % nv[u]];
		tree_quant_bin_row(q, x, xb);
		tree_quant_bin_row_scalar(q, x, ref);
		bad += memcmp(xb, ref, sizeof(xb)) != 0;
	}
	CHECK(bad == 0, "binning: kind %d, width %u, %u features, simd %d: %d of %d rows binned "
		  "unlike the scalar search", kind, q->width, q->n_used, q->simd, bad, rows);
	free(vals);
	free(nv);
}

/*
 * Hand-built layouts at the SIMD binning's edges: width 16 (one coarse cut,
 * the +Inf pad) and 1,024 (64 coarse cuts, the whole mask), a full
 * feature, a short one and one whose first cut is -Inf; each binning this
 * CPU has against the scalar search.
 */
static void
test_binning_edges(void)
{
	static const uint32_t widths[] = {16, 1024};
	uint32_t	used[3] = {0, 5, D - 1};
	int			wi;

	for (wi = 0; wi < 2; wi++)
	{
		struct TreeQuant q;
		uint32_t	w = widths[wi],
					nc = ((w / 16 + 7) / 8) * 8,
					u,
					i;
		uint64_t	st = 5 + wi;
		int			level;

		memset(&q, 0, sizeof(q));
		q.n_features = D;
		q.n_used = 3;
		q.width = w;
		q.used = used;
		q.n_coarse = nc;
		if (posix_memalign((void **) &q.cuts, 64, sizeof(double) * 3 * w) != 0 ||
			posix_memalign((void **) &q.coarse, 64, sizeof(double) * 3 * nc) != 0)
			return;
		for (u = 0; u < 3; u++)
		{
			uint32_t	n = u == 1 ? 5 : w - 1;
			double		v = u == 2 ? -INFINITY : -3;

			for (i = 0; i < w; i++)
			{
				q.cuts[u * w + i] = i < n ? v : INFINITY;
				v = (v == -INFINITY ? -3 : v) + 0.001 + rnd(&st) * 6.0 / w;
			}
			for (i = 0; i < nc; i++)
				q.coarse[u * nc + i] = (i + 1) * 16 <= w ? q.cuts[u * w + (i + 1) * 16 - 1] : INFINITY;
		}
		for (level = QUANT_SIMD_NONE; level <= QUANT_SIMD_AVX512; level++)
		{
#if defined(__x86_64__)
			if ((level == QUANT_SIMD_AVX2 && !__builtin_cpu_supports("avx2")) ||
				(level == QUANT_SIMD_AVX512 && !__builtin_cpu_supports("avx512f")))
				continue;
#else
			if (level != QUANT_SIMD_NONE)
				continue;
#endif
			q.simd = (uint8_t) level;
			test_binning(&q, -1);
		}
		free(q.cuts);
		free(q.coarse);
	}
}

/*
 * Every walk of one model kind gives the same bits: quantised row and
 * block, double row and block, node by node; the quantised walk with each
 * binning this CPU has (AVX-512, AVX2, scalar), whose bins must also match
 * the scalar search's on hard values.
 */
static void
test_walks_agree(const WalkSet *s, int kind, int K, int n_trees, int depth)
{
	TreeModel	m;
	int64_t		n;
	double	   *X,
			   *q_row,
			   *q_blk,
			   *d_row,
			   *d_blk,
			   *node;
	size_t		sz;
	void	   *fast;
	int			level;

	if (walk_fit(s, kind, K, n_trees, depth, &m) != ML_OK)
	{
		CHECK(false, "walks: kind %d fits", kind);
		return;
	}
	X = walk_rows(s, &m, &n);
	sz = sizeof(double) * (size_t) n * m.n_outputs;
	q_row = malloc(sz);
	q_blk = malloc(sz);
	d_row = malloc(sz);
	d_blk = malloc(sz);
	node = malloc(sz);
	fast = m.fast;
	m.fast = NULL;
	predict_rows(&m, X, n, node);
	m.fast = fast;
	for (level = QUANT_SIMD_AVX512; level >= QUANT_SIMD_NONE; level--)
	{
		tree_quant_always = true;
		tree_quant_simd_max = level;
		CHECK(tree_fast_build(&env1, &m), "walks: kind %d builds its layouts", kind);
		tree_quant_always = false;
		tree_quant_simd_max = QUANT_SIMD_AVX512;
		CHECK(tree_quant_active(&m), "walks: kind %d (%u trees, %u outputs) has the quantised walk",
			  kind, m.n_trees, m.n_outputs);
		if (!tree_quant_active(&m))
			break;
		if (m.fast->quant->simd < level && level > QUANT_SIMD_NONE)
			printf("# kind %d, width %u: binning %d, not %d (CPU or width)\n", kind,
				   m.fast->quant->width, m.fast->quant->simd, level);
		test_binning(m.fast->quant, kind);
		predict_rows(&m, X, n, q_row);
		trees_predict_batch(&env1, &m, X, n - 3, q_blk);	/* a partial last block */
		trees_predict_batch(&env1, &m, X + (size_t) (n - 3) * D, 3, q_blk + (size_t) (n - 3) * m.n_outputs);
		CHECK(n_differ(q_row, node, n, m.n_outputs) == 0 && n_differ(q_blk, node, n, m.n_outputs) == 0,
			  "walks: kind %d, %u trees depth %d, %lld rows, binning %d: quantised row %lld, "
			  "block %lld rows differ from the node walk", kind, m.n_trees, depth, (long long) n,
			  m.fast->quant->simd, (long long) n_differ(q_row, node, n, m.n_outputs),
			  (long long) n_differ(q_blk, node, n, m.n_outputs));
	}
	tree_quant_free(&env1, &m);
	CHECK(!tree_quant_active(&m) && m.fast != NULL, "walks: kind %d falls back to the double walk", kind);
	predict_rows(&m, X, n, d_row);
	trees_predict_batch(&env1, &m, X, n, d_blk);
	CHECK(n_differ(d_row, node, n, m.n_outputs) == 0 && n_differ(d_blk, node, n, m.n_outputs) == 0,
		  "walks: kind %d: double row %lld, block %lld rows differ from the node walk", kind,
		  (long long) n_differ(d_row, node, n, m.n_outputs),
		  (long long) n_differ(d_blk, node, n, m.n_outputs));
	free(X);
	free(q_row);
	free(q_blk);
	free(d_row);
	free(d_blk);
	free(node);
	trees_model_free(&env1, &m);
}

/*
 * The quantised row walk is specialised for every depth (1 to
 * FAST_MAX_DEPTH): each depth walks whole groups of sixteen trees and a
 * tail, gbt regression and binary alternately; trees of uneven depth
 * (a deep gbt on 3,000 rows, a forest) pad to the deepest.
 */
static void
test_walk_depths(const WalkSet *s)
{
	int			depth;

	for (depth = 1; depth <= FAST_MAX_DEPTH; depth++)
		test_walks_agree(s, depth % 2 ? 0 : 1, depth % 2 ? 0 : 2, 16 + depth, depth);
	test_walks_agree(s, 3, 0, 33, FAST_MAX_DEPTH);	/* forest: 2 groups and a tail */
}

/* Thread CPU us per row of binning the n rows of R (SIMD where it applies, or the scalar search). */
static double
bench_binning(const struct TreeQuant *q, const double *R, int64_t n, bool scalar, uint32_t *sum)
{
	uint32_t	xb[2 * D];
	double		t0 = mlt_cpu_now();
	int64_t		i;

	for (i = 0; i < n; i++)
	{
		if (scalar)
			tree_quant_bin_row_scalar(q, R + (size_t) i * D, xb);
		else
			tree_quant_bin_row(q, R + (size_t) i * D, xb);
		*sum += xb[i % (2 * D)];
	}
	return (mlt_cpu_now() - t0) / n * 1e6;
}

/* Times the one-row walks of a 100-tree depth-6 binary gbt (MLPIPE_WALK_BENCH). */
static void
bench_walks(void)
{
	WalkSet		s;
	TreeModel	m;
	double	   *out;
	double		t0,
				t_q,
				t_d;
	int			rep;
	int64_t		n = 200000;

	walk_set(&s, n, 2, getenv("MLPIPE_WALK_NAN") ? atof(getenv("MLPIPE_WALK_NAN")) : 0);
	if (walk_fit(&s, 1, 2, 100, 6, &m) != ML_OK)
		return;
	out = malloc(sizeof(double) * n * 2);
	if (tree_quant_active(&m))
	{
		uint32_t	sum = 0;

		for (rep = 0; rep < 3; rep++)
			printf("# bench: binning width %u, %s %.3f us/row, scalar %.3f us/row\n",
				   m.fast->quant->width, m.fast->quant->coarse ? "simd" : "scalar",
				   bench_binning(m.fast->quant, s.R, n, false, &sum),
				   bench_binning(m.fast->quant, s.R, n, true, &sum));
		printf("# bench: (checksum %u)\n", sum);
	}
	for (rep = 0; rep < 2; rep++)
	{
		t0 = mlt_cpu_now();
		predict_rows(&m, s.R, n, out);
		t_q = mlt_cpu_now() - t0;
		printf("# bench: quantised %s, row walk %.3f us/row\n", tree_quant_active(&m) ? "on" : "off",
			   t_q / n * 1e6);
	}
	t0 = mlt_cpu_now();
	trees_predict_batch(NULL, &m, s.R, n, out);
	printf("# bench: block walk %.3f us/row\n", (mlt_cpu_now() - t0) / n * 1e6);
	tree_quant_free(&env1, &m);
	t0 = mlt_cpu_now();
	predict_rows(&m, s.R, n, out);
	t_d = mlt_cpu_now() - t0;
	printf("# bench: double row walk %.3f us/row\n", t_d / n * 1e6);
	t0 = mlt_cpu_now();
	trees_predict_batch(NULL, &m, s.R, n, out);
	printf("# bench: double block walk %.3f us/row\n", (mlt_cpu_now() - t0) / n * 1e6);
	free(out);
	trees_model_free(&env1, &m);
	walk_set_free(&s);
}

int
main(void)
{
	WalkSet		s2,
				s3;

	env1 = mlt_env(1);
	if (getenv("MLPIPE_WALK_BENCH"))
		bench_walks();
	test_binning_edges();
	walk_set(&s2, 3000, 2, 0.05);
	walk_set(&s3, 3000, 3, 0.05);
	/* tree counts: groups of eight and a tail */
	test_walks_agree(&s2, 0, 0, 45, 6);	/* gbt regression */
	test_walks_agree(&s2, 1, 2, 19, 5);	/* gbt binary */
	test_walks_agree(&s3, 2, 3, 9, 4);	/* gbt multi-class: 27 trees */
	test_walks_agree(&s2, 3, 0, 9, 8);	/* forest regression */
	test_walks_agree(&s2, 4, 0, 1, 10);	/* decision tree regression */
	test_walk_depths(&s2);
	walk_set_free(&s2);
	walk_set_free(&s3);
	return mlt_done();
}
