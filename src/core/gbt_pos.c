/*
 * gbt_pos.c: the depth-wise gbt grower's row positions. Every row of the
 * data has the training node it is in (g->pos, one byte a row when the
 * tree has at most 255 nodes, else two; gbt_fit picks this path for
 * depth-wise trees of one tree a round). A level's split moves rows to
 * their children in one pass over the rows in row order, reading the
 * binned matrix front to back (the hardware prefetches it), not a cache
 * line per row in a node's order; a second pass writes the rows of each
 * smaller child, ascending, into its idx range for its histogram (the
 * larger child's histogram is derived, so it needs no list). The last
 * level's margin update routes each row the same way. Rows keep ascending
 * order within a node, as with the in-place partition (the sums, on
 * gbt_loss.c's grids, are exact in any order anyway). Where the
 * histograms fit in L2, the move pass itself builds the smaller children's
 * histograms (gbt_pos_fuse), with no list and no gather; on several
 * threads each routes its own rows into histograms of its own, summed
 * after the pass.
 */
#include "trees_int.h"

#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define POS_HAVE_AVX512 1
#endif

/* Rows ahead a pass over the binned matrix prefetches. */
#define POS_PF_ROWS 64

/* Rows per task below which a pass runs on one thread. */
#define POS_TASK_ROWS 65536

/* Sets the position of row r. */
static inline void
pos_put(Gbt *g, size_t r, uint32_t t, bool wide)
{
	if (wide)
		((uint16_t *) g->pos)[r] = (uint16_t) t;
	else
		((uint8_t *) g->pos)[r] = (uint8_t) t;
}

/* The node a row with binned values row moves to from node t under the rules. */
static inline uint32_t
pos_route(const PosRule *rules, const uint8_t *row, uint32_t t)
{
	const PosRule *ru = &rules[t];
	uint32_t	cd = row[ru->feature];
	uint32_t	left = (uint32_t) (cd <= ru->bin) | ((uint32_t) (cd == ru->nbf) & ru->dl);

	return ru->left + (left ^ 1);
}

/*
 * Moves row r (binned matrix B, d bytes a row) to its child, in pos8 or
 * pos16 as wide says, and returns the child; prefetches rows ahead.
 */
static inline uint32_t
pos_step(const PosRule *rules, const uint8_t *B, size_t d, uint8_t *pos8,
		 uint16_t *pos16, size_t r, bool wide)
{
	uint32_t	c;

	if ((r & 3) == 0)
		__builtin_prefetch(B + (r + POS_PF_ROWS) * d);
	c = pos_route(rules, B + r * d, wide ? pos16[r] : pos8[r]);
	if (wide)
		pos16[r] = (uint16_t) c;
	else
		pos8[r] = (uint8_t) c;
	return c;
}

/* Tests: 0 routes one row at a time where AVX-512 could route 16. */
int			gbt_pos_simd = 1;

/*
 * The rules of nodes 0..POS_TAB_NODES-1 packed for routing 16 rows at
 * once, built from g->rule for a pass; a row in a node past them keeps
 * its node.
 */
#define POS_TAB_NODES 64
typedef struct PosTable
{
	uint32_t	feature[POS_TAB_NODES];
	uint32_t	rule[POS_TAB_NODES];	/* bin | nbf << 8 | dl << 16 | left << 24 */
} PosTable;

/* Packs the first nodes' rules; nodes past the tree keep their (no) rows. */
static void
pos_table_build(const Gbt *g, PosTable *tb)
{
	uint32_t	t;

	for (t = 0; t < POS_TAB_NODES && t < g->n_pos_nodes; t++)
	{
		const PosRule *ru = &g->rule[t];

		tb->feature[t] = ru->feature;
		tb->rule[t] = ru->bin | (uint32_t) ru->nbf << 8 | (uint32_t) ru->dl << 16 |
			ru->left << 24;
	}
	for (; t < POS_TAB_NODES; t++)
	{
		tb->feature[t] = 0;
		tb->rule[t] = UINT8_MAX | t << 24;
	}
}

/*
 * Whether the passes route 16 rows at a time (pos_route16): one-byte
 * positions, every rule set this tree in the tables, rows of 3 bytes or
 * more (the gather reads four), and a CPU with AVX-512.
 */
static bool
pos_simd(const Gbt *g)
{
#ifdef POS_HAVE_AVX512
	return gbt_pos_simd && !g->pos_wide && g->d >= 3 && g->pos_rule_max < POS_TAB_NODES &&
		__builtin_cpu_supports("avx512f");
#else
	return false;
#endif
}

/*
 * The end of the rows a 16-row step may route before row `end`: its gather
 * reads up to 3 bytes past row r + 15, inside row r + 16, which must exist.
 */
static inline size_t
pos_simd_end(const Gbt *g, size_t end)
{
	size_t		last = g->n_rows > 0 ? (size_t) g->n_rows - 1 : 0;

	return end < last ? end : last;
}

/*
 * Counts of the one-byte positions pos8[r0, r1), four rows of counters in
 * turn (no chain through one counter when rows repeat a node).
 */
static inline void
pos_count4(uint32_t (*c4)[256], const uint8_t *pos8, size_t r0, size_t r1)
{
	size_t		r = r0;

	for (; r + 4 <= r1; r += 4)
	{
		c4[0][pos8[r]]++;
		c4[1][pos8[r + 1]]++;
		c4[2][pos8[r + 2]]++;
		c4[3][pos8[r + 3]]++;
	}
	for (; r < r1; r++)
		c4[0][pos8[r]]++;
}

/* Adds pos_count4's counters into cnt (n nodes). */
static void
pos_count4_sum(uint32_t (*c4)[256], uint32_t *cnt, uint32_t n)
{
	uint32_t	k;

	for (k = 0; k < n; k++)
		cnt[k] += c4[0][k] + c4[1][k] + c4[2][k] + c4[3][k];
}

#ifdef POS_HAVE_AVX512
/* The rule tables in registers, and lane i's row offset i * d. */
typedef struct PosRegs
{
	__m512i		f[4];			/* split features of nodes 0-15, 16-31, 32-47, 48-63 */
	__m512i		m[4];			/* packed rules of the same nodes */
	__m512i		rowoff;
} PosRegs;

__attribute__((target("avx512f")))
static inline void
pos_regs_load(PosRegs *v, const PosTable *tb, size_t d)
{
	int			k;

	for (k = 0; k < 4; k++)
	{
		v->f[k] = _mm512_loadu_si512(tb->feature + 16 * k);
		v->m[k] = _mm512_loadu_si512(tb->rule + 16 * k);
	}
	v->rowoff = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
													 12, 13, 14, 15),
								   _mm512_set1_epi32((int) d));
}

/* Table entry of each lane's node t (t & 63): two 32-entry lookups. */
__attribute__((target("avx512f")))
static inline __m512i
pos_lookup16(const __m512i *tab, __m512i t)
{
	__mmask16	hi = _mm512_test_epi32_mask(t, _mm512_set1_epi32(32));

	return _mm512_mask_blend_epi32(hi, _mm512_permutex2var_epi32(tab[0], t, tab[1]),
								   _mm512_permutex2var_epi32(tab[2], t, tab[3]));
}

/*
 * pos_route for rows r..r+15, in nodes t: the node each moves to. The split
 * feature's byte is gathered as four bytes (pos_simd_end keeps them in the
 * data); a node past the tables keeps its rows (pos_simd: no rule is set
 * past them).
 */
__attribute__((target("avx512f")))
static inline __m512i
pos_route16(const PosRegs *v, const uint8_t *B, size_t d, size_t r, __m512i t)
{
	const __m512i ff = _mm512_set1_epi32(0xff);
	__m512i		f = pos_lookup16(v->f, t),
				m = pos_lookup16(v->m, t),
				cd = _mm512_and_si512(_mm512_i32gather_epi32(_mm512_add_epi32(f, v->rowoff),
															 B + r * d, 1), ff),
				c = _mm512_srli_epi32(m, 24);
	__mmask16	left = _mm512_cmple_epu32_mask(cd, _mm512_and_si512(m, ff)) |
		(_mm512_cmpeq_epi32_mask(cd, _mm512_and_si512(_mm512_srli_epi32(m, 8), ff)) &
		 _mm512_test_epi32_mask(m, _mm512_set1_epi32(1 << 16)));

	c = _mm512_mask_add_epi32(c, (__mmask16) ~left, c, _mm512_set1_epi32(1));
	return _mm512_mask_mov_epi32(c, _mm512_cmpge_epu32_mask(t, _mm512_set1_epi32(POS_TAB_NODES)),
								 t);
}

/* Prefetches the 16 rows POS_PF_ROWS after row r. */
static inline void
pos_prefetch16(const uint8_t *B, size_t d, size_t r)
{
	const uint8_t *p = B + (r + POS_PF_ROWS) * d;
	size_t		k;

	for (k = 0; k < 16 * d; k += 64)
		__builtin_prefetch(p + k);
}

/* Loads the one-byte positions of rows r..r+15. */
__attribute__((target("avx512f")))
static inline __m512i
pos_load16(const uint8_t *pos8, size_t r)
{
	return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *) (pos8 + r)));
}

/* Stores nodes c as the one-byte positions of rows r..r+15. */
__attribute__((target("avx512f")))
static inline void
pos_store16(uint8_t *pos8, size_t r, __m512i c)
{
	_mm_storeu_si128((__m128i *) (pos8 + r), _mm512_cvtepi32_epi8(c));
}

/* Moves rows [*rp, end) 16 at a time while whole steps fit; *rp: the first left. */
__attribute__((target("avx512f")))
static void
pos_move_avx512(const Gbt *g, const PosTable *tb, size_t *rp, size_t end)
{
	const uint8_t *B = g->B;
	uint8_t    *pos8 = g->pos;
	size_t		d = (size_t) g->d,
				r = *rp;
	PosRegs		v;

	pos_regs_load(&v, tb, d);
	for (; r + 16 <= end; r += 16)
	{
		pos_prefetch16(B, d, r);
		pos_store16(pos8, r, pos_route16(&v, B, d, r, pos_load16(pos8, r)));
	}
	*rp = r;
}

/*
 * pos_move_avx512 for the fused pass: also lists the rows whose new node c
 * has bit c set in `fused` (rows in lr, nodes in lc, 16 slots of slack
 * each); returns how many.
 */
__attribute__((target("avx512f,popcnt")))
static int
pos_fuse_avx512(const Gbt *g, const PosTable *tb, uint32_t fused, size_t *rp, size_t end,
				uint32_t *lr, uint32_t *lc)
{
	const uint8_t *B = g->B;
	const float *gh = g->gh;
	uint8_t    *pos8 = g->pos;
	size_t		d = (size_t) g->d,
				r = *rp;
	const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
				bits = _mm512_set1_epi32((int) fused),
				one = _mm512_set1_epi32(1);
	int			nl = 0;
	PosRegs		v;

	pos_regs_load(&v, tb, d);
	for (; r + 16 <= end; r += 16)
	{
		__m512i		c;
		__mmask16	has;

		pos_prefetch16(B, d, r);
		__builtin_prefetch(gh + 2 * r);	/* the pairs the add loop reads */
		__builtin_prefetch(gh + 2 * r + 16);
		c = pos_route16(&v, B, d, r, pos_load16(pos8, r));
		pos_store16(pos8, r, c);
		/* a variable shift by 32 or more gives 0: such nodes have no bit */
		has = _mm512_test_epi32_mask(_mm512_srlv_epi32(bits, c), one);
		_mm512_storeu_si512(lr + nl, _mm512_maskz_compress_epi32(has, _mm512_add_epi32(lane, _mm512_set1_epi32((int) r))));
		_mm512_storeu_si512(lc + nl, _mm512_maskz_compress_epi32(has, c));
		nl += __builtin_popcount(has);
	}
	*rp = r;
	return nl;
}
#endif

/* Rows [r0, r1) of task `task` of n_tasks over all rows. */
static inline void
pos_range(const Gbt *g, int task, int n_tasks, size_t *r0, size_t *r1)
{
	*r0 = (size_t) ((uint64_t) g->n_rows * task / n_tasks);
	*r1 = (size_t) ((uint64_t) g->n_rows * (task + 1) / n_tasks);
}

/* Tasks for a pass over all rows. */
static int
pos_tasks(const Gbt *g)
{
	int			nt = (int) (g->n_rows / POS_TASK_ROWS) + 1;

	return nt < g->nt ? nt : g->nt;
}

/*
 * Pass 1 for one task's rows: each row of a split node moves to its child;
 * counts rows per node (in the task's row of pos_cnt).
 */
static inline void
pos_move_rows(Gbt *g, int task, int n_tasks, bool wide)
{
	uint32_t   *cnt = g->pos_cnt + (size_t) task * g->n_pos_nodes;
	const PosRule *rules = g->rule;
	const uint8_t *B = g->B;
	size_t		d = (size_t) g->d,
				r0,
				r1,
				r;
	uint8_t    *pos8 = g->pos;
	uint16_t   *pos16 = g->pos;

	pos_range(g, task, n_tasks, &r0, &r1);
	memset(cnt, 0, sizeof(uint32_t) * g->n_pos_nodes);
#ifdef POS_HAVE_AVX512
	if (!wide && pos_simd(g))
	{
		uint32_t	c4[4][256];
		size_t		b0;
		PosTable	tb;

		/* a block routed, then counted while its positions are in L1 */
		pos_table_build(g, &tb);
		memset(c4, 0, sizeof(c4));
		for (b0 = r0; b0 < r1; b0 = r)
		{
			size_t		b1 = r1 - b0 > 4096 ? b0 + 4096 : r1;

			r = b0;
			pos_move_avx512(g, &tb, &r, pos_simd_end(g, b1));
			for (; r < b1; r++)
				pos_step(rules, B, d, pos8, pos16, r, false);
			pos_count4(c4, pos8, b0, b1);
		}
		pos_count4_sum(c4, cnt, g->n_pos_nodes);
		return;
	}
#endif
	for (r = r0; r < r1; r++)
	{
		uint32_t	c;

		c = pos_step(rules, B, d, pos8, pos16, r, wide);
		cnt[c]++;
	}
}

/* pos_move_rows for one byte or two a row. */
static void
pos_move_task(void *arg, int task, int n_tasks)
{
	Gbt		   *g = arg;

	if (g->pos_wide)
		pos_move_rows(g, task, n_tasks, true);
	else
		pos_move_rows(g, task, n_tasks, false);
}

/*
 * Pass 2 for one task's rows: the rows of the nodes listed in pos_dst
 * (their cursor advances) go to idx; the others are written to a dummy
 * slot (cursor step 0), so there is no branch on the node.
 */
static inline void
pos_list_rows(Gbt *g, int task, int n_tasks, bool wide)
{
	uint32_t  **dst = g->pos_dst + (size_t) task * g->n_pos_nodes;
	const uint8_t *step = g->pos_step;
	const uint8_t *pos8 = g->pos;
	const uint16_t *pos16 = g->pos;
	size_t		r0,
				r1,
				r;

	pos_range(g, task, n_tasks, &r0, &r1);
	if (g->pos_one >= 0)
	{
		/*
		 * One node listed (the root's split): its cursor in a register.
		 * Every row is written, the node's rows advance; the loop ends at
		 * the task's last row of the node, so nothing lands past its share.
		 */
		uint32_t	s = (uint32_t) g->pos_one,
				   *w = dst[s],
				   *w_end = w + g->pos_cnt[(size_t) task * g->n_pos_nodes + s];

		for (r = r0; w < w_end; r++)
		{
			*w = (uint32_t) r;
			w += (wide ? pos16[r] : pos8[r]) == s;
		}
		return;
	}
	for (r = r0; r < r1; r++)
	{
		uint32_t	c = wide ? pos16[r] : pos8[r];

		*dst[c] = (uint32_t) r;
		dst[c] += step[c];
	}
}

/* pos_list_rows for one byte or two a row. */
static void
pos_list_task(void *arg, int task, int n_tasks)
{
	Gbt		   *g = arg;

	if (g->pos_wide)
		pos_list_rows(g, task, n_tasks, true);
	else
		pos_list_rows(g, task, n_tasks, false);
}

/* Every node keeps its rows (the rule of a node that is not split). */
static void
pos_rule_keep(Gbt *g, uint32_t t)
{
	PosRule    *ru = &g->rule[t];

	ru->feature = 0;
	ru->bin = UINT8_MAX;		/* every code goes "left", to the node itself */
	ru->nbf = 0;
	ru->dl = 0;
	ru->left = t;
}

/*
 * A new tree on rows idx[0, ns): those rows in the root, every other row
 * (not sampled, validation) in no node; every node keeps its rows.
 */
void
gbt_pos_start(Gbt *g, uint32_t ns)
{
	uint32_t	none = g->n_pos_nodes - 1,
				t,
				k;
	size_t		w = g->pos_wide ? 2 : 1;

	g->pos_rule_max = -1;
	for (t = 0; t < g->n_pos_nodes; t++)
		pos_rule_keep(g, t);
	if (ns == g->n_rows)
	{
		memset(g->pos, 0, w * ns);	/* every row, rows 0..n-1 */
		return;
	}
	if (g->pos_wide)
		for (k = 0; k < g->n_rows; k++)
			((uint16_t *) g->pos)[k] = (uint16_t) none;
	else
		memset(g->pos, (int) none, g->n_rows);
	for (k = 0; k < ns; k++)
		pos_put(g, g->idx[k], 0, g->pos_wide);
}

/* Rules of nodes pend[0..np) (prepared splits): rows go to their children. */
void
gbt_pos_rules(Gbt *g, const int *pend, int np)
{
	int			q;

	for (q = 0; q < np; q++)
	{
		const TrainNode *nd = &g->tn[pend[q]];
		PosRule    *ru = &g->rule[pend[q]];

		ru->feature = (uint32_t) nd->feature;
		ru->bin = (uint8_t) nd->bin;
		ru->nbf = (uint8_t) g->nb[nd->feature];
		ru->dl = nd->default_left;
		ru->left = (uint32_t) nd->left;
		if (pend[q] > g->pos_rule_max)
			g->pos_rule_max = pend[q];
	}
}

/*
 * Gives node pend's child `child` a histogram buffer (zeroed) on each of
 * nt tasks for the fused pass, unless neither child can split (their
 * hessian sums) or the pool lacks the nt buffers (the child is listed and
 * gathered then, as without the fused pass).
 */
static void
pos_fuse_buffer(Gbt *g, int pend, uint32_t child, int nt)
{
	const TrainNode *nd = &g->tn[pend];
	const Split *s = &g->split[pend];
	size_t		nn = g->n_pos_nodes;
	int			b,
				j,
				t;

	for (t = 0; t < nt; t++)
		g->pos_fbuf[t * nn + pend] = -1;
	if ((s->HL < 2 * g->mcw && nd->hess_sum - s->HL < 2 * g->mcw) || g->n_free < nt)
		return;
	for (t = 0; t < nt; t++)
	{
		v2d		   *h;

		b = g->free_list[--g->n_free];
		h = g->pool + (size_t) b * g->slots;
		for (j = 0; j < g->d; j++)
			memset(h + g->off[j], 0, sizeof(v2d) * (g->nb[j] + 1));
		g->pos_fbuf[t * nn + pend] = b;
		g->pos_fh[t * nn + child] = h;
	}
}

/*
 * After the move pass over nt tasks' row ranges (their counts in pos_cnt):
 * mids[q] receives the first right row of pend[q]'s range, and the smaller
 * child's range of idx its rows, ascending (the child split_finish builds
 * a histogram for), unless pos_fh holds that child's histogram (the fused
 * pass built it). The larger child's range is left as it was.
 */
static void
pos_list_smaller(Gbt *g, const int *pend, int np, uint32_t *mids, int nt)
{
	int			q,
				t,
				listed = 0;
	uint32_t	n_nodes = g->n_pos_nodes;

	g->idx_in_order = false;
	g->pos_one = -1;
	memset(g->pos_step, 0, n_nodes);
	for (t = 0; t < nt; t++)
		for (q = 0; q < (int) n_nodes; q++)
			g->pos_dst[(size_t) t * n_nodes + q] = &g->pos_trash[t * 16];
	for (q = 0; q < np; q++)
	{
		const TrainNode *nd = &g->tn[pend[q]];
		uint32_t	l = (uint32_t) nd->left,
					nl = 0,
					nr,
					small,
					at;

		for (t = 0; t < nt; t++)
			nl += g->pos_cnt[(size_t) t * n_nodes + l];
		mids[q] = nd->begin + nl;
		nr = nd->end - mids[q];
		/* the smaller child as split_finish picks it (ties: left) */
		small = nl <= nr ? l : l + 1;
		if (g->pos_fh[small] != NULL)
			continue;			/* its histogram is built */
		at = small == l ? nd->begin : mids[q];
		g->pos_step[small] = 1;
		g->pos_one = listed++ == 0 ? (int) small : -1;
		for (t = 0; t < nt; t++)
		{
			g->pos_dst[(size_t) t * n_nodes + small] = g->idx + at;
			at += g->pos_cnt[(size_t) t * n_nodes + small];
		}
	}
	if (listed > 0)
		trees_run_tasks(g->env, nt, pos_list_task, g);
}

/*
 * Splits the rows of nodes pend[0..np) (prepared splits) by position:
 * mids[q] receives the first right row of pend[q]'s range, and the smaller
 * child's range of idx its rows, ascending.
 */
void
gbt_pos_partition(Gbt *g, const int *pend, int np, uint32_t *mids)
{
	int			nt = pos_tasks(g);

	if (np == 0)
		return;
	gbt_pos_rules(g, pend, np);
	trees_run_tasks(g->env, nt, pos_move_task, g);
	pos_list_smaller(g, pend, np, mids, nt);
}

/*
 * The fused pass: rows routed a block at a time, then the block's rows
 * whose child has a histogram in pos_fh added to it while they are in L1
 * (1,024 rows, 28 KB at 28 features: the fused levels measured about 4%
 * faster than with 256).
 */
#define POS_FUSE_BLOCK 1024

/* Most bytes of a fused pass's live histograms. */
#define POS_FUSE_BYTES ((size_t) 1 << 20)

/* Most nodes a fused pass splits (tests and benches set 0: never fused). */
int			gbt_pos_fuse_nodes = 8;

/*
 * The fused pass over one task's rows: each row of a split node moves to
 * its child (counted in the task's row of pos_cnt) and its gradient pair
 * is added to the task's histogram of its child (its row of pos_fh), if
 * any, for every feature. A block's rows are routed first, then the
 * block's rows with a histogram are added while their bytes are in L1.
 * The sums are exact (gbt_loss.c's grids), so the tasks' histograms add
 * up to the bits of one pass over every row, in any order.
 */
static inline void
pos_fuse_rows(Gbt *g, int task, int n_tasks, bool wide)
{
	uint32_t   *cnt = g->pos_cnt + (size_t) task * g->n_pos_nodes;
	const PosRule *rules = g->rule;
	v2d *const *fh = g->pos_fh + (size_t) task * g->n_pos_nodes;
	const uint8_t *B = g->B;
	const float *gh = g->gh;
	size_t		d = (size_t) g->d,
				r0,
				n,
				b0;
	uint8_t    *pos8 = g->pos;
	uint16_t   *pos16 = g->pos;
	uint32_t	lr[POS_FUSE_BLOCK + 16],
				lc[POS_FUSE_BLOCK + 16],
				fused = 0,
				c4[4][256],
				k;
	bool		simd = !wide && pos_simd(g);
	PosTable	tb;

	pos_range(g, task, n_tasks, &r0, &n);
	memset(cnt, 0, sizeof(uint32_t) * g->n_pos_nodes);
	/* the 16-row route lists by a bit a node: every histogram's node under 32 */
	for (k = 0; k < g->n_pos_nodes && simd; k++)
		if (fh[k] != NULL)
		{
			simd = k < 32;
			fused |= 1u << (k & 31);
		}
	if (simd)
	{
		pos_table_build(g, &tb);
		memset(c4, 0, sizeof(c4));
	}
	for (b0 = r0; b0 < n; b0 += POS_FUSE_BLOCK)
	{
		size_t		b1 = n - b0 > POS_FUSE_BLOCK ? b0 + POS_FUSE_BLOCK : n,
					r = b0;
		int			nl = 0,
					i;

#ifdef POS_HAVE_AVX512
		if (simd)
			nl = pos_fuse_avx512(g, &tb, fused, &r, pos_simd_end(g, b1), lr, lc);
#endif
		for (; r < b1; r++)
		{
			uint32_t	c;

			c = pos_step(rules, B, d, pos8, pos16, r, wide);
			if ((r & 7) == 0)
				__builtin_prefetch(gh + 2 * r);	/* the pairs the add loop reads */
			if (!simd)
				cnt[c]++;
			lr[nl] = (uint32_t) r;
			lc[nl] = c;
			nl += fh[c] != NULL;
		}
		if (simd)
			pos_count4(c4, pos8, b0, b1);	/* while the block's positions are in L1 */
		for (i = 0; i < nl; i++)
		{
			uint32_t	rr = lr[i];
			v2d			v = {gh[2 * (size_t) rr], gh[2 * (size_t) rr + 1]};

			gbt_hist_add_padded(fh[lc[i]], B + rr * d, g->d, v, g->hist_vex);
		}
	}
	if (simd)
		pos_count4_sum(c4, cnt, g->n_pos_nodes);
}

/* pos_fuse_rows for one byte or two a row. */
static void
pos_fuse_task(void *arg, int task, int n_tasks)
{
	Gbt		   *g = arg;

	if (g->pos_wide)
		pos_fuse_rows(g, task, n_tasks, true);
	else
		pos_fuse_rows(g, task, n_tasks, false);
}

/*
 * After the fused pass on nt tasks: node pend's fused child histogram is
 * task 0's plus the others' (exact, so the bits of one pass), when keep;
 * the other tasks' buffers go back to the pool.
 */
static void
pos_fuse_merge(Gbt *g, int pend, int nt, bool keep)
{
	size_t		nn = g->n_pos_nodes;
	v2d		   *h0 = g->pool + (size_t) g->pos_fbuf[pend] * g->slots;
	int			t;

	for (t = 1; t < nt; t++)
	{
		int			b = g->pos_fbuf[t * nn + pend];
		const v2d  *h = g->pool + (size_t) b * g->slots;

		if (keep)
			gbt_hist_add(g, h0, h);
		g->free_list[g->n_free++] = b;
		g->pos_fbuf[t * nn + pend] = -1;
	}
}

/*
 * Splits the rows of nodes pend[0..np) as gbt_pos_partition does, and in
 * the same pass builds, for each node, the histogram of the child its
 * hessian sums predict the smaller: no list and no gather. On several
 * tasks each routes its own range of rows into histograms of its own,
 * summed after the pass (sums on gbt_loss.c's grids are exact: the same
 * bits as one pass). split_finish picks the child with fewer rows, not
 * known before the pass; the sums predicted it for 99% of the nodes of
 * the 1M-row bench. Where they failed the buffer goes back and the smaller
 * child is listed for a gather as before. A node whose histogram is built
 * keeps its buffer in pos_fbuf (split_finish queues the job as built).
 * Only where the live histograms fit in L2 (the padded layout, every
 * feature, at most gbt_pos_fuse_nodes nodes and POS_FUSE_BYTES a task)
 * and where the pool has a buffer for each node (so no child becomes a
 * leaf for want of one, as without the fused pass: the other tasks'
 * buffers are back in the pool before split_finish); a node for whose
 * tasks the pool has no nt buffers is listed instead. Returns false
 * (nothing done) otherwise.
 */
bool
gbt_pos_fuse(Gbt *g, const int *pend, int np, uint32_t *mids)
{
	size_t		nn = g->n_pos_nodes;
	int			nt = pos_tasks(g),
				q,
				t;

	if (!g->by_pos || !g->padded || !g->all_feat || np == 0 || np > gbt_pos_fuse_nodes ||
		(size_t) np * g->slots * sizeof(v2d) > POS_FUSE_BYTES || g->n_free < np)
		return false;
	gbt_pos_rules(g, pend, np);
	for (q = 0; q < np; q++)
	{
		const TrainNode *nd = &g->tn[pend[q]];
		const Split *s = &g->split[pend[q]];

		pos_fuse_buffer(g, pend[q], nd->left + (s->HL <= nd->hess_sum - s->HL ? 0 : 1), nt);
	}
	trees_run_tasks(g->env, nt, pos_fuse_task, g);
	pos_list_smaller(g, pend, np, mids, nt);
	for (q = 0; q < np; q++)
	{
		const TrainNode *nd = &g->tn[pend[q]];
		bool		small_built = g->pos_fh[mids[q] - nd->begin <= nd->end - mids[q] ?
										nd->left : nd->left + 1] != NULL;

		if (g->pos_fbuf[pend[q]] >= 0)
		{
			pos_fuse_merge(g, pend[q], nt, small_built);
			if (!small_built)
			{
				g->free_list[g->n_free++] = g->pos_fbuf[pend[q]];
				g->pos_fbuf[pend[q]] = -1;	/* mispredicted: listed above */
			}
		}
		for (t = 0; t < nt; t++)
			g->pos_fh[t * nn + nd->left] = g->pos_fh[t * nn + nd->left + 1] = NULL;
	}
	return true;
}

/* Margin update state: the class column. */
typedef struct PosMargin
{
	Gbt		   *g;
	float	   *mc;
	float		value[256];		/* the 16-row route's: node values as floats */
} PosMargin;

#ifdef POS_HAVE_AVX512
/*
 * pos_margin_rows for rows [*rp, end), 16 at a time while whole steps fit
 * (the same float adds); *rp: the first row left.
 */
__attribute__((target("avx512f")))
static void
pos_margin_avx512(const PosMargin *pm, const PosTable *tb, size_t *rp, size_t end)
{
	const Gbt  *g = pm->g;
	const uint8_t *B = g->B;
	const uint8_t *pos8 = g->pos;
	const __m512i none = _mm512_set1_epi32((int) g->n_pos_nodes - 1);
	float	   *mc = pm->mc;
	size_t		d = (size_t) g->d,
				r = *rp;
	PosRegs		v;

	pos_regs_load(&v, tb, d);
	for (; r + 16 <= end; r += 16)
	{
		__m512i		t,
					c;
		__m512		m;
		__mmask16	in;

		pos_prefetch16(B, d, r);
		t = pos_load16(pos8, r);
		c = pos_route16(&v, B, d, r, t);
		in = _mm512_cmpneq_epi32_mask(t, none);
		m = _mm512_loadu_ps(mc + r);
		m = _mm512_mask_add_ps(m, in, m, _mm512_i32gather_ps(c, pm->value, 4));
		_mm512_storeu_ps(mc + r, m);
	}
	*rp = r;
}
#endif

/*
 * Adds the leaf value of each of one task's rows in the tree to its
 * margin: the row's node, or for a node split lazily (its children are
 * leaves whose rows were not moved) the child its code picks.
 */
static inline void
pos_margin_rows(PosMargin *pm, int task, int n_tasks, bool wide)
{
	Gbt		   *g = pm->g;
	uint32_t	none = g->n_pos_nodes - 1;
	const PosRule *rules = g->rule;
	const TrainNode *tn = g->tn;
	const uint8_t *B = g->B;
	const uint8_t *pos8 = g->pos;
	const uint16_t *pos16 = g->pos;
	float	   *mc = pm->mc;
	size_t		d = (size_t) g->d,
				r0,
				r1,
				r;

	pos_range(g, task, n_tasks, &r0, &r1);
	r = r0;
#ifdef POS_HAVE_AVX512
	if (!wide && pos_simd(g))
	{
		PosTable	tb;

		pos_table_build(g, &tb);
		pos_margin_avx512(pm, &tb, &r, pos_simd_end(g, r1));
	}
#endif
	for (; r < r1; r++)
	{
		uint32_t	t = wide ? pos16[r] : pos8[r];

		if ((r & 3) == 0)
			__builtin_prefetch(B + (r + POS_PF_ROWS) * d);
		if (t != none)
			mc[r] += (float) tn[pos_route(rules, B + r * d, t)].value;
	}
}

/* pos_margin_rows for one byte or two a row. */
static void
pos_margin_task(void *arg, int task, int n_tasks)
{
	PosMargin  *pm = arg;

	if (pm->g->pos_wide)
		pos_margin_rows(pm, task, n_tasks, true);
	else
		pos_margin_rows(pm, task, n_tasks, false);
}

/* Adds the grown tree's leaf values to the margins mc of the rows in it. */
void
gbt_pos_margins(Gbt *g, float *mc)
{
	PosMargin	pm;
	uint32_t	t;

	pm.g = g;
	pm.mc = mc;
	if (pos_simd(g))
		for (t = 0; t < 256; t++)
			pm.value[t] = t < (uint32_t) g->n_tn ? (float) g->tn[t].value : 0;
	trees_run_tasks(g->env, pos_tasks(g), pos_margin_task, &pm);
}
