/*
 * tree_predict_batch.c: scoring many rows with a flattened model: rows given
 * as doubles (trees_predict_batch: blocks of rows walk each tree in lock
 * step, on mlpipe.threads) or as the bin codes training already holds
 * (trees_predict_codes, through a map from codes to the model's bins).
 * Each row's leaves are added in tree order as the one-row walk
 * (tree_predict.c) adds them, so the same bits.
 */
#include "trees_int.h"
#include "tree_walk.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define PRED_HAVE_AVX512 1
#endif

#define ROWS_PER_BLOCK 8

typedef struct PredTask
{
	const TreeModel *m;
	const double *X;
	int64_t		n;
	double	   *out;
	int64_t		n_blocks;
} PredTask;

/* Scalar-leaf models: ROWS_PER_BLOCK rows walk each tree in lock step. */
static void
predict_block_scalar(const TreeModel *m, const double *X, int64_t r0, int rows, double *out)
{
	double		acc[ROWS_PER_BLOCK][PRED_STACK];
	uint32_t	tpr = m->trees_per_round;
	size_t		d = m->n_features;
	uint32_t	t;
	int			r;

	for (r = 0; r < rows; r++)
		memset(acc[r], 0, sizeof(double) * tpr);
	for (t = 0; t < m->n_trees; t++)
	{
		const TreeNode *nodes = m->nodes + m->tree_start[t];
		uint32_t	k[ROWS_PER_BLOCK] = {0};
		uint32_t	s,
					dep = m->tree_depth[t],
					c = t % tpr;

		if (rows == ROWS_PER_BLOCK)
		{
			const double *x0 = X + (size_t) r0 * d;

			for (s = 0; s < dep; s++)
			{
				k[0] = tstep(nodes, k[0], x0);
				k[1] = tstep(nodes, k[1], x0 + d);
				k[2] = tstep(nodes, k[2], x0 + 2 * d);
				k[3] = tstep(nodes, k[3], x0 + 3 * d);
				k[4] = tstep(nodes, k[4], x0 + 4 * d);
				k[5] = tstep(nodes, k[5], x0 + 5 * d);
				k[6] = tstep(nodes, k[6], x0 + 6 * d);
				k[7] = tstep(nodes, k[7], x0 + 7 * d);
			}
		}
		else
		{
			for (s = 0; s < dep; s++)
				for (r = 0; r < rows; r++)
					k[r] = tstep(nodes, k[r], X + (size_t) (r0 + r) * d);
		}
		for (r = 0; r < rows; r++)
			acc[r][c] += nodes[k[r]].value;
	}
	for (r = 0; r < rows; r++)
		tree_finish_row(m, acc[r], out + (size_t) (r0 + r) * m->n_outputs);
}

/*
 * Quantised layout: ROWS_PER_BLOCK rows are binned, then walk each tree in
 * lock step (NaN needs no second walk).
 */
static void
predict_block_quant(const TreeModel *m, const double *X, int64_t r0, int rows, double *out)
{
	const struct TreeFast *f = m->fast;
	const struct TreeQuant *q = f->quant;
	double		acc[ROWS_PER_BLOCK][PRED_STACK];
	uint32_t	xb[ROWS_PER_BLOCK][2 * QUANT_MAX_FEATURES];
	uint32_t	tpr = m->trees_per_round,
				D = f->depth,
				n_int = f->n_int;
	size_t		d = m->n_features;
	uint32_t	t,
				s;
	int			r;

	for (r = 0; r < rows; r++)
	{
		memset(acc[r], 0, sizeof(double) * tpr);
		tree_quant_bin_row(q, X + (size_t) (r0 + r) * d, xb[r]);
	}
	for (t = 0; t < m->n_trees; t++)
	{
		const uint32_t *nd = q->node + QUANT_NODE(t, 0, n_int);
		const double *lf = f->leaf + (size_t) t * f->n_leaf - n_int;
		uint32_t	c = t % tpr;

		if (rows == ROWS_PER_BLOCK)
		{
			uint32_t	k[ROWS_PER_BLOCK] = {0};

			for (s = 0; s < D; s++)
				for (r = 0; r < ROWS_PER_BLOCK; r++)
					QUANT_STEP(nd, k[r], 1, xb[r]);
			for (r = 0; r < ROWS_PER_BLOCK; r++)
				acc[r][c] += lf[k[r]];
		}
		else
		{
			for (r = 0; r < rows; r++)
			{
				uint32_t	k = 0;

				for (s = 0; s < D; s++)
					QUANT_STEP(nd, k, 1, xb[r]);
				acc[r][c] += lf[k];
			}
		}
	}
	for (r = 0; r < rows; r++)
		tree_finish_row(m, acc[r], out + (size_t) (r0 + r) * m->n_outputs);
}

/*
 * Fast layout: ROWS_PER_BLOCK rows walk each tree in lock step; a block
 * with NaN takes the quantised walk where the model has one (the NaN-aware
 * double walk goes one row and one tree at a time).
 */
static void
predict_block_fast(const TreeModel *m, const double *X, int64_t r0, int rows, double *out)
{
	const struct TreeFast *f = m->fast;
	double		acc[ROWS_PER_BLOCK][PRED_STACK];
	uint32_t	tpr = m->trees_per_round,
				D = f->depth;
	size_t		d = m->n_features;
	const double *x0 = X + (size_t) r0 * d;
	uint32_t	t,
				s;
	int			r;
	bool		nan = false;
	const double *xr[ROWS_PER_BLOCK];

	for (r = 0; r < rows; r++)
	{
		xr[r] = x0 + (size_t) r * d;
		memset(acc[r], 0, sizeof(double) * tpr);
		nan |= row_has_nan(xr[r], (uint32_t) d);
	}
	if (nan && f->quant)
	{
		predict_block_quant(m, X, r0, rows, out);
		return;
	}
	for (t = 0; t < m->n_trees; t++)
	{
		FastTree	o = fast_tree(f, t);
		const double *th = o.thr;
		const uint32_t *fe = o.feat;
		const double *lf = o.leaf - f->n_int;
		uint32_t	c = t % tpr;

		if (rows == ROWS_PER_BLOCK && !nan)
		{
			/* eight independent chains: node loads overlap */
			uint32_t	k0 = 0,
						k1 = 0,
						k2 = 0,
						k3 = 0,
						k4 = 0,
						k5 = 0,
						k6 = 0,
						k7 = 0;

			for (s = 0; s < D; s++)
			{
				k0 = 2 * k0 + 1 + (xr[0][fe[k0]] > th[k0]);
				k1 = 2 * k1 + 1 + (xr[1][fe[k1]] > th[k1]);
				k2 = 2 * k2 + 1 + (xr[2][fe[k2]] > th[k2]);
				k3 = 2 * k3 + 1 + (xr[3][fe[k3]] > th[k3]);
				k4 = 2 * k4 + 1 + (xr[4][fe[k4]] > th[k4]);
				k5 = 2 * k5 + 1 + (xr[5][fe[k5]] > th[k5]);
				k6 = 2 * k6 + 1 + (xr[6][fe[k6]] > th[k6]);
				k7 = 2 * k7 + 1 + (xr[7][fe[k7]] > th[k7]);
			}
			acc[0][c] += lf[k0];
			acc[1][c] += lf[k1];
			acc[2][c] += lf[k2];
			acc[3][c] += lf[k3];
			acc[4][c] += lf[k4];
			acc[5][c] += lf[k5];
			acc[6][c] += lf[k6];
			acc[7][c] += lf[k7];
		}
		else
		{
			for (r = 0; r < rows; r++)
			{
				uint32_t	k = 0;

				for (s = 0; s < D; s++)
					k = fast_step_nan(&o, k, xr[r]);
				acc[r][c] += lf[k];
			}
		}
	}
	for (r = 0; r < rows; r++)
		tree_finish_row(m, acc[r], out + (size_t) (r0 + r) * m->n_outputs);
}

static void
pred_task(void *arg, int task, int n_tasks)
{
	PredTask   *p = arg;
	const TreeModel *m = p->m;
	int64_t		b0 = p->n_blocks * task / n_tasks,
				b1 = p->n_blocks * (task + 1) / n_tasks,
				b;
	bool		scalar = m->leaf_width == 1 && m->trees_per_round <= PRED_STACK;

	for (b = b0; b < b1; b++)
	{
		int64_t		r0 = b * ROWS_PER_BLOCK;
		int			rows = (int) (p->n - r0 < ROWS_PER_BLOCK ? p->n - r0 : ROWS_PER_BLOCK);

		if (scalar && m->fast)
			predict_block_fast(m, p->X, r0, rows, p->out);
		else if (scalar)
			predict_block_scalar(m, p->X, r0, rows, p->out);
		else
		{
			int			r;

			for (r = 0; r < rows; r++)
				trees_predict_row(m, p->X + (size_t) (r0 + r) * m->n_features,
								  p->out + (size_t) (r0 + r) * m->n_outputs);
		}
	}
}

void
trees_predict_batch(const MlEnv *env, const TreeModel *m, const double *X, int64_t n,
					double *out)
{
	PredTask	t;
	int64_t		tasks;

	if (n <= 0)
		return;
	t.m = m;
	t.X = X;
	t.n = n;
	t.out = out;
	t.n_blocks = (n + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK;
	tasks = t.n_blocks / 512 + 1;
	if (env == NULL || tasks <= 1)
		pred_task(&t, 0, 1);
	else
		ml_parallel_for(env, tasks > 64 ? 64 : (int) tasks, pred_task, &t);
}

/* ---- rows given as bin codes ---- */

/*
 * The quantised walk's binned row for every bin code of every feature the
 * trees use: a row of codes becomes xb by two lookups a used feature.
 */
struct TreeCodeMap
{
	uint32_t	n_features;
	uint32_t	n_used;
	uint32_t   *used;			/* n_used feature numbers (a copy of the layout's) */
	uint32_t   *lo;				/* n_used x 256: xb[j] for code c at lo[u * 256 + c] */
	uint32_t   *hi;				/* the same for xb[n_features + j] */
};

/*
 * The code map of m (see trees.h): each of the 256 rows holding code c in
 * every feature binned once by the model's own binning, its used
 * features' bins kept per code.
 */
bool
trees_code_map_build(const MlEnv *env, const TreeModel *m, const double *code_values,
					 TreeCodeMap **out)
{
	const struct TreeQuant *q = m->fast ? m->fast->quant : NULL;
	uint32_t	d = m->n_features,
				u,
				c;
	uint32_t   *xb;
	TreeCodeMap *map;

	*out = NULL;
	if (q == NULL)
		return true;			/* no quantised walk: score the values */
	map = ml_alloc(env, sizeof(TreeCodeMap));
	xb = ml_alloc(env, sizeof(uint32_t) * 2 * d);
	if (map)
	{
		map->used = ml_alloc(env, sizeof(uint32_t) * (q->n_used + 1));
		map->lo = ml_alloc(env, sizeof(uint32_t) * 256 * (q->n_used + 1));
		map->hi = ml_alloc(env, sizeof(uint32_t) * 256 * (q->n_used + 1));
	}
	if (!map || !xb || !map->used || !map->lo || !map->hi)
	{
		ml_free(env, xb);
		if (map)
			trees_code_map_free(env, map);
		return false;
	}
	map->n_features = d;
	map->n_used = q->n_used;
	memcpy(map->used, q->used, sizeof(uint32_t) * q->n_used);
	/* the bins of the row that holds code c in every feature: exact by construction */
	for (c = 0; c < 256; c++)
	{
		tree_quant_bin_row(q, code_values + (size_t) c * d, xb);
		for (u = 0; u < q->n_used; u++)
		{
			map->lo[u * 256 + c] = xb[q->used[u]];
			map->hi[u * 256 + c] = xb[d + q->used[u]];
		}
	}
	ml_free(env, xb);
	*out = map;
	return true;
}

/* Frees what trees_code_map_build allocated (NULL is fine). */
void
trees_code_map_free(const MlEnv *env, TreeCodeMap *map)
{
	if (map == NULL)
		return;
	ml_free(env, map->used);
	ml_free(env, map->lo);
	ml_free(env, map->hi);
	ml_free(env, map);
}

/* Rows trees_predict_codes walks tree by tree (lanes of quant_trees16). */
#define CODE_ROWS 16
/* Widest model it does so for: CODE_ROWS binned rows of 2d words on the stack. */
#define CODE_ROWS_MAX_FEATURES 64

/*
 * Whether trees_predict_codes walks CODE_ROWS rows tree by tree: one tree
 * a round, every tree's node words in four AVX-512 registers (depth at
 * most 6), and a CPU with AVX-512F (tree_quant_simd_max lets tests turn
 * it off).
 */
static bool
code_rows_simd(const TreeModel *m, uint32_t d)
{
#ifdef PRED_HAVE_AVX512
	return m->trees_per_round == 1 && m->fast->depth <= 6 && d <= CODE_ROWS_MAX_FEATURES &&
		tree_quant_simd_max >= QUANT_SIMD_AVX512 && __builtin_cpu_supports("avx512f");
#else
	return false;
#endif
}

#ifdef PRED_HAVE_AVX512
/* Trees quant_trees16 walks in lock step (their gathers overlap). */
#define CODE_TREES 4

/*
 * quant_accumulate_binned for CODE_ROWS binned rows at once (xb16, stride
 * words apart; acc16: their sums, added to): a row a lane, CODE_TREES
 * trees in lock step. A tree's node words sit in four registers (a lookup
 * is a permute), the rows' words are gathered, and each lane adds its
 * leaves in tree order: the same additions in the same order, so the same
 * bits, with no chain of dependent adds across the trees of one row.
 */
__attribute__((target("avx512f")))
static void
quant_trees16(const TreeModel *m, const uint32_t *xb16, uint32_t stride, double *acc16)
{
	const struct TreeFast *f = m->fast;
	const uint32_t *node = f->quant->node;
	uint32_t	depth = f->depth,
				words = 1u << depth,
				nt = m->n_trees,
				t,
				s;
	const __m512i lane_off = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
																	10, 11, 12, 13, 14, 15),
												_mm512_set1_epi32((int) stride)),
				one = _mm512_set1_epi32(1),
				b5 = _mm512_set1_epi32(32),
				low16 = _mm512_set1_epi32(0xFFFF),
				n_int = _mm512_set1_epi32((int) f->n_int);
	__mmask16	wm[4];
	__m512d		s0 = _mm512_loadu_pd(acc16),
				s1 = _mm512_loadu_pd(acc16 + 8);
	int			q,
				i,
				nw;

	/* the words of a tree of this depth in each register (none past the tree) */
	for (q = 0; q < 4; q++)
		wm[q] = words >= 16 * (uint32_t) (q + 1) ? 0xFFFF :
			words > 16 * (uint32_t) q ? (__mmask16) ((1u << (words - 16 * q)) - 1) : 0;
	for (t = 0; t < nt; t += (uint32_t) nw)
	{
		__m512i		nd[CODE_TREES][4],
					k[CODE_TREES];

		nw = nt - t >= CODE_TREES ? CODE_TREES : 1;
		for (i = 0; i < nw; i++)
		{
			const uint32_t *g = node + ((size_t) (t + i) << depth);

			for (q = 0; q < 4; q++)
				nd[i][q] = _mm512_maskz_loadu_epi32(wm[q], g + 16 * q);
			k[i] = _mm512_setzero_si512();
		}
		for (s = 0; s < depth; s++)
			for (i = 0; i < nw; i++)
			{
				__mmask16	hi = _mm512_test_epi32_mask(k[i], b5);
				__m512i		w = _mm512_mask_blend_epi32(hi,
														_mm512_permutex2var_epi32(nd[i][0], k[i], nd[i][1]),
														_mm512_permutex2var_epi32(nd[i][2], k[i], nd[i][3])),
							x = _mm512_i32gather_epi32(_mm512_add_epi32(lane_off,
																		_mm512_and_si512(w, low16)),
													   (const void *) xb16, 4);

				/* QUANT_STEP: k = 2k + 1 + (x > w), unsigned */
				k[i] = _mm512_add_epi32(_mm512_add_epi32(k[i], k[i]), one);
				k[i] = _mm512_mask_add_epi32(k[i], _mm512_cmpgt_epu32_mask(x, w), k[i], one);
			}
		for (i = 0; i < nw; i++)
		{
			const double *lf = f->leaf + (size_t) (t + i) * f->n_leaf;
			__m512i		leaf = _mm512_sub_epi32(k[i], n_int);

			s0 = _mm512_add_pd(s0, _mm512_i32gather_pd(_mm512_castsi512_si256(leaf), lf, 8));
			s1 = _mm512_add_pd(s1, _mm512_i32gather_pd(_mm512_extracti64x4_epi64(leaf, 1), lf, 8));
		}
	}
	_mm512_storeu_pd(acc16, s0);
	_mm512_storeu_pd(acc16 + 8, s1);
}
#endif

/*
 * The binned row (2d words at x) of coded row `codes`: each used feature's
 * code looked up in the map; the other features' words are left as they are.
 */
static inline void
code_row_bins(const TreeCodeMap *map, const uint8_t *codes, uint32_t *x)
{
	uint32_t	d = map->n_features,
				u;

	for (u = 0; u < map->n_used; u++)
	{
		uint32_t	j = map->used[u],
					c = codes[j];

		x[j] = map->lo[u * 256 + c];
		x[d + j] = map->hi[u * 256 + c];
	}
}

/* A call of trees_predict_codes, shared by its tasks. */
typedef struct CodeTask
{
	const TreeModel *m;
	const TreeCodeMap *map;
	const uint8_t *B;
	int64_t		n;
	double	   *out;
} CodeTask;

/*
 * Rows [n t / nt, n (t + 1) / nt) of a CodeTask: each row's codes looked
 * up into the binned row, then trees_predict_row's walk and finish (the
 * same bits: the binned row is the one the row's values would bin to).
 */
static void
code_task(void *arg, int task, int n_tasks)
{
	const CodeTask *p = arg;
	const TreeModel *m = p->m;
	const TreeCodeMap *map = p->map;
	uint32_t	xb[2 * QUANT_MAX_FEATURES];
	double		local[PRED_STACK];
	uint32_t	d = map->n_features,
				w = m->trees_per_round;
	int64_t		r0 = p->n * task / n_tasks,
				r1 = p->n * (task + 1) / n_tasks,
				r;

	r = r0;
#ifdef PRED_HAVE_AVX512
	if (code_rows_simd(m, d))
	{
		uint32_t	xb16[CODE_ROWS * 2 * CODE_ROWS_MAX_FEATURES];
		double		acc16[CODE_ROWS];
		int			i;

		memset(xb16, 0, sizeof(uint32_t) * CODE_ROWS * 2 * d);
		for (; r + CODE_ROWS <= r1; r += CODE_ROWS)
		{
			for (i = 0; i < CODE_ROWS; i++)
				code_row_bins(map, p->B + (size_t) (r + i) * d, xb16 + (size_t) i * 2 * d);
			memset(acc16, 0, sizeof(acc16));
			quant_trees16(m, xb16, 2 * d, acc16);
			for (i = 0; i < CODE_ROWS; i++)
				tree_finish_row(m, acc16 + i, p->out + (size_t) (r + i) * m->n_outputs);
		}
	}
#endif
	/* features no split uses stay 0, as tree_quant_bin_row leaves them */
	memset(xb, 0, sizeof(uint32_t) * 2 * d);
	for (; r < r1; r++)
	{
		double	   *out = p->out + (size_t) r * m->n_outputs;
		double	   *acc = w <= PRED_STACK ? local : out;

		code_row_bins(map, p->B + (size_t) r * d, xb);
		memset(acc, 0, sizeof(double) * w);
		tree_quant_accumulate_binned(m, xb, acc);
		tree_finish_row(m, acc, out);
	}
}

/* Scores n coded rows (see trees.h): code_task over up to 64 tasks. */
void
trees_predict_codes(const MlEnv *env, const TreeModel *m, const TreeCodeMap *map,
					const uint8_t *B, int64_t n, double *out)
{
	CodeTask	t;
	int64_t		tasks = n / 4096 + 1;

	if (n <= 0)
		return;
	t.m = m;
	t.map = map;
	t.B = B;
	t.n = n;
	t.out = out;
	if (env == NULL || tasks <= 1)
		code_task(&t, 0, 1);
	else
		ml_parallel_for(env, tasks > 64 ? 64 : (int) tasks, code_task, &t);
}
