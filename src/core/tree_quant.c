/*
 * tree_quant.c: building the quantised scoring layout of a tree model (see
 * struct TreeQuant in trees_int.h) and binning rows for it; tree_predict.c
 * walks it.
 */
#include "trees_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define QUANT_HAVE_AVX2 1
#endif

bool		tree_quant_always = false;
int			tree_quant_simd_max = QUANT_SIMD_AVX512;

/* Cuts per bucket of the two-level SIMD search. */
#define QUANT_BUCKET 16
/* Most coarse cuts a feature may have for the SIMD search (one 64-bit mask). */
#define QUANT_MAX_COARSE 64

/* How many of the sorted c[0..n) lie below x. */
static uint32_t
count_below(const double *c, uint32_t n, double x)
{
	uint32_t	i = 0;

	while (i < n && c[i] < x)
		i++;
	return i;
}

/*
 * Sorts and deduplicates each feature's thresholds in all (grouped by
 * feature, cnt[j] .. cnt[j + 1]), moving them to the front; cnt becomes the
 * offsets of the distinct lists. False when a threshold is NaN.
 */
static bool
quant_sort_cuts(double *all, uint32_t *cnt, uint32_t d)
{
	uint32_t	j,
				i,
				n_cuts = 0,
				b = cnt[0];

	for (j = 0; j < d; j++)
	{
		uint32_t	e = cnt[j + 1],
					m;

		for (i = b; i < e; i++)
			if (all[i] != all[i])
				return false;
		m = (uint32_t) trees_sort_unique(all + b, (int) (e - b));
		memmove(all + n_cuts, all + b, sizeof(double) * m);
		cnt[j] = n_cuts;
		n_cuts += m;
		b = e;
	}
	cnt[d] = n_cuts;
	return true;
}

/*
 * The SIMD binning rows of this width take on this CPU (QUANT_SIMD_*, at
 * most tree_quant_simd_max): none for a width under one bucket (three
 * halving steps at most) or over QUANT_MAX_COARSE buckets.
 */
static uint8_t
quant_simd_level(uint32_t width)
{
#ifdef QUANT_HAVE_AVX2
	if (width < QUANT_BUCKET || width > QUANT_BUCKET * QUANT_MAX_COARSE ||
		!__builtin_cpu_supports("popcnt"))
		return QUANT_SIMD_NONE;
	if (tree_quant_simd_max >= QUANT_SIMD_AVX512 && __builtin_cpu_supports("avx512f"))
		return QUANT_SIMD_AVX512;
	if (tree_quant_simd_max >= QUANT_SIMD_AVX2 && __builtin_cpu_supports("avx2"))
		return QUANT_SIMD_AVX2;
#endif
	return QUANT_SIMD_NONE;
}

/*
 * Builds the quantised layout from the model's splits and the fast layout
 * (cnt: d + 1 counters, all: one double per node, both scratch); leaves
 * f->quant NULL when a threshold is NaN, a feature has too many of them, or
 * binning a row would cost more steps than the walk takes. False on OOM.
 */
static bool
quant_layout(const MlEnv *env, const TreeModel *m, struct TreeFast *f, uint32_t *cnt, double *all)
{
	uint32_t	d = m->n_features,
				n_nodes = m->tree_start[m->n_trees],
				j,
				i,
				nu = 0,
				width = 1,
				log_w = 0,
				n_coarse;
	uint8_t		simd;
	size_t		nq = (size_t) ((m->n_trees + QUANT_GROUP - 1) / QUANT_GROUP) * QUANT_GROUP * (f->n_int + 1);
	struct TreeQuant *q;
	char	   *blk;

	memset(cnt, 0, sizeof(uint32_t) * (d + 1));
	/* count splits per feature, then gather them grouped by feature */
	for (i = 0; i < n_nodes; i++)
		if (!(m->nodes[i].feature & TREE_NODE_LEAF))
			cnt[(m->nodes[i].feature & TREE_NODE_FEATURE_MASK) + 1]++;
	for (j = 0; j < d; j++)
		cnt[j + 1] += cnt[j];
	for (i = 0; i < n_nodes; i++)
	{
		const TreeNode *nd = &m->nodes[i];

		if (!(nd->feature & TREE_NODE_LEAF))
			all[cnt[nd->feature & TREE_NODE_FEATURE_MASK]++] = nd->value;
	}
	for (j = d; j > 0; j--)
		cnt[j] = cnt[j - 1];
	cnt[0] = 0;
	if (!quant_sort_cuts(all, cnt, d))
		return true;
	for (j = 0; j < d; j++)
	{
		uint32_t	n = cnt[j + 1] - cnt[j];

		if (n > QUANT_MAX_CUTS)
			return true;
		nu += n > 0;
		while (width < n + 1)
		{
			width *= 2;
			log_w++;
		}
	}
	/* binning costs nu * log_w steps, the walk n_trees * depth; padding stays small */
	if (((size_t) nu * log_w > (size_t) m->n_trees * f->depth && !tree_quant_always) ||
		(size_t) nu * width > 4 * (size_t) cnt[d] + 32768)
		return true;
	simd = quant_simd_level(width);
	/* coarse cuts for the SIMD binning: a multiple of 8, so whole vectors */
	n_coarse = simd ? ((width / QUANT_BUCKET + 7) / 8) * 8 : 0;
	blk = ml_alloc(env, sizeof(struct TreeQuant) + 64 +
				   sizeof(double) * nu * (width + n_coarse) + sizeof(uint32_t) * (nq + nu));
	if (!blk)
		return false;
	q = (struct TreeQuant *) blk;
	q->n_features = d;
	q->n_used = nu;
	q->width = width;
	/* cache-line aligned, so no 16-cut bucket straddles two lines (width >= 8) */
	q->cuts = (double *) (((uintptr_t) (blk + sizeof(struct TreeQuant)) + 63) & ~(uintptr_t) 63);
	q->coarse = n_coarse ? q->cuts + (size_t) nu * width : NULL;
	q->n_coarse = n_coarse;
	q->simd = simd;
	q->node = (uint32_t *) (q->cuts + (size_t) nu * (width + n_coarse));
	q->used = q->node + nq;
	for (j = 0, nu = 0; j < d; j++)
	{
		uint32_t	n = cnt[j + 1] - cnt[j];

		if (n == 0)
			continue;
		q->used[nu] = j;
		for (i = 0; i < width; i++)
			q->cuts[(size_t) nu * width + i] = i < n ? all[cnt[j] + i] : INFINITY;
		for (i = 0; i < n_coarse; i++)
			q->coarse[(size_t) nu * n_coarse + i] = (i + 1) * QUANT_BUCKET <= width ?
				q->cuts[(size_t) nu * width + (i + 1) * QUANT_BUCKET - 1] : INFINITY;
		nu++;
	}
	memset(q->node, 0, sizeof(uint32_t) * nq);
	for (i = 0; i < (size_t) m->n_trees * f->n_int; i++)
	{
		uint32_t	fj = f->feat[i],
					n = cnt[fj + 1] - cnt[fj],
					idx = 0,
					t = i / f->n_int,
					k = i % f->n_int;

		/* a shallow leaf's dummy split has both sides equal: any index will do */
		if (n)
			idx = count_below(all + cnt[fj], n, f->thr[i]);
		if (idx >= n)
			idx = 0;
		q->node[QUANT_NODE(t, k, f->n_int)] = idx << 16 | (fj + (f->nanr[i] ? d : 0));
	}
	f->quant = q;
	return true;
}

/* Builds the quantised layout (quant_layout with its scratch); false on OOM. */
bool
tree_quant_build(const MlEnv *env, const TreeModel *m, struct TreeFast *f)
{
	uint32_t	d = m->n_features;
	uint32_t   *cnt;
	double	   *all;
	bool		ok;

	if (d == 0 || d > QUANT_MAX_FEATURES)
		return true;
	cnt = ml_alloc(env, sizeof(uint32_t) * (d + 1));
	all = ml_alloc(env, sizeof(double) * (m->tree_start[m->n_trees] + 1));
	ok = cnt && all && quant_layout(env, m, f, cnt, all);
	ml_free(env, cnt);
	ml_free(env, all);
	return ok;
}

/* True when m scores through the quantised walk. */
bool
tree_quant_active(const TreeModel *m)
{
	return m->fast != NULL && m->fast->quant != NULL;
}

/* Drops the quantised walk only (tests compare it with the double walk). */
void
tree_quant_free(const MlEnv *env, TreeModel *m)
{
	if (m->fast)
	{
		ml_free(env, m->fast->quant);
		m->fast->quant = NULL;
	}
}

/*
 * Stores the bin b of x[j] = v, shifted to the high half (see struct
 * TreeQuant): xb[j] and xb[d + j], or 0 and QUANT_NAN for NaN.
 */
static inline void
store_bin(uint32_t *xb, uint32_t d, uint32_t j, double v, uint32_t b)
{
	bool		nan = v != v;

	xb[j] = nan ? 0 : b << 16;
	xb[d + j] = (nan ? QUANT_NAN : b) << 16;
}

/*
 * Bins one row for the quantised walk: xb[j] and xb[d + j] get bin(x[j]) =
 * how many of feature j's cuts lie below x[j], or 0 and QUANT_NAN for NaN,
 * in their high 16 bits; features no split uses get 0. Every used feature takes the same
 * log2(width) branch-free halving steps, all features in lock step, so the
 * searches overlap. (The pads are +Inf, which no x lies above.)
 */
void
tree_quant_bin_row_scalar(const struct TreeQuant *q, const double *x, uint32_t *xb)
{
	uint32_t	b[QUANT_MAX_FEATURES];
	double		xv[QUANT_MAX_FEATURES];
	uint32_t	d = q->n_features,
				nu = q->n_used,
				w = q->width,
				h,
				u;

	memset(xb, 0, sizeof(uint32_t) * 2 * d);
	for (u = 0; u < nu; u++)
	{
		xv[u] = x[q->used[u]];
		b[u] = 0;
	}
	for (h = w / 2; h > 0; h /= 2)
	{
		const double *c = q->cuts + h - 1;

		for (u = 0; u < nu; u++, c += w)
			b[u] += c[b[u]] < xv[u] ? h : 0;
	}
	for (u = 0; u < nu; u++)
		store_bin(xb, d, q->used[u], xv[u], b[u]);
}

#ifdef QUANT_HAVE_AVX2
/*
 * The scalar binning's bins by a two-level count with AVX2: B = how many of
 * the feature's coarse cuts (every 16th cut) lie below x, then bin = 16 B +
 * how many of the 16 cuts of bucket B lie below x. Exact because the cuts
 * are sorted: the 16 B cuts before bucket B are at most its coarse cut
 * below x, those after it at least its own coarse cut, which x does not
 * exceed (the last cut is a +Inf pad, so B < width / 16). The comparison is
 * the same ordered `cut < x` (false for NaN). All features take the coarse
 * level first, then the fine one, so the searches overlap.
 */
__attribute__((target("avx2,popcnt")))
static void
quant_bin_row_avx2(const struct TreeQuant *q, const double *x, uint32_t *xb)
{
	uint32_t	bucket[QUANT_MAX_FEATURES];
	uint32_t	d = q->n_features,
				nu = q->n_used,
				w = q->width,
				nc = q->n_coarse,
				u,
				i;

	memset(xb, 0, sizeof(uint32_t) * 2 * d);
	for (u = 0; u < nu; u++)
	{
		__m256d		xv = _mm256_set1_pd(x[q->used[u]]);
		const double *co = q->coarse + (size_t) u * nc;
		uint64_t	below = 0;

		for (i = 0; i < nc; i += 4)
			below |= (uint64_t) _mm256_movemask_pd(_mm256_cmp_pd(_mm256_load_pd(co + i), xv,
																  _CMP_LT_OQ)) << i;
		bucket[u] = QUANT_BUCKET * (uint32_t) __builtin_popcountll(below);
	}
	for (u = 0; u < nu; u++)
	{
		uint32_t	j = q->used[u];
		double		v = x[j];
		__m256d		xv = _mm256_set1_pd(v);
		const double *c = q->cuts + (size_t) u * w + bucket[u];
		uint32_t	fine,
					b;

		fine = (uint32_t) _mm256_movemask_pd(_mm256_cmp_pd(_mm256_load_pd(c), xv, _CMP_LT_OQ)) |
			(uint32_t) _mm256_movemask_pd(_mm256_cmp_pd(_mm256_load_pd(c + 4), xv, _CMP_LT_OQ)) << 4 |
			(uint32_t) _mm256_movemask_pd(_mm256_cmp_pd(_mm256_load_pd(c + 8), xv, _CMP_LT_OQ)) << 8 |
			(uint32_t) _mm256_movemask_pd(_mm256_cmp_pd(_mm256_load_pd(c + 12), xv, _CMP_LT_OQ)) << 12;
		b = bucket[u] + (uint32_t) __builtin_popcount(fine);
		store_bin(xb, d, j, v, b);
	}
}

/* quant_bin_row_avx2 with AVX-512 compares into mask registers: 8 cuts each. */
__attribute__((target("avx512f,popcnt")))
static void
quant_bin_row_avx512(const struct TreeQuant *q, const double *x, uint32_t *xb)
{
	uint32_t	bucket[QUANT_MAX_FEATURES];
	uint32_t	d = q->n_features,
				nu = q->n_used,
				w = q->width,
				nc = q->n_coarse,
				u,
				i;

	memset(xb, 0, sizeof(uint32_t) * 2 * d);
	for (u = 0; u < nu; u++)
	{
		__m512d		xv = _mm512_set1_pd(x[q->used[u]]);
		const double *co = q->coarse + (size_t) u * nc;
		uint64_t	below = 0;

		for (i = 0; i < nc; i += 8)
			below |= (uint64_t) _mm512_cmp_pd_mask(_mm512_load_pd(co + i), xv, _CMP_LT_OQ) << i;
		bucket[u] = QUANT_BUCKET * (uint32_t) __builtin_popcountll(below);
	}
	for (u = 0; u < nu; u++)
	{
		uint32_t	j = q->used[u];
		double		v = x[j];
		__m512d		xv = _mm512_set1_pd(v);
		const double *c = q->cuts + (size_t) u * w + bucket[u];
		uint32_t	b;

		b = bucket[u] + (uint32_t) __builtin_popcount(
			(uint32_t) _mm512_cmp_pd_mask(_mm512_load_pd(c), xv, _CMP_LT_OQ) |
			(uint32_t) _mm512_cmp_pd_mask(_mm512_load_pd(c + 8), xv, _CMP_LT_OQ) << 8);
		store_bin(xb, d, j, v, b);
	}
}
#endif

/* Bins one row (see tree_quant_bin_row_scalar): SIMD where the layout has it. */
void
tree_quant_bin_row(const struct TreeQuant *q, const double *x, uint32_t *xb)
{
#ifdef QUANT_HAVE_AVX2
	if (q->simd == QUANT_SIMD_AVX512)
	{
		quant_bin_row_avx512(q, x, xb);
		return;
	}
	if (q->simd == QUANT_SIMD_AVX2)
	{
		quant_bin_row_avx2(q, x, xb);
		return;
	}
#endif
	tree_quant_bin_row_scalar(q, x, xb);
}
