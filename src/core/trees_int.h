/*
 * trees_int.h: what the tree modules (tree.c, forest.c, gbt.c, tree_model.c,
 * tree_codec.c, tree_predict.c, tree_predict_batch.c) share internally. Not for the glue.
 */
#ifndef TREES_INT_H
#define TREES_INT_H

#include "trees.h"

#include <math.h>

typedef double v2d __attribute__((vector_size(16)));

/* A node while training: splits are on bin codes. */
typedef struct TrainNode
{
	int32_t		left;			/* left child (right = left + 1); -1 for a leaf */
	int32_t		feature;
	int32_t		bin;			/* left when code <= bin (missing code per default_left) */
	int32_t		depth;
	uint32_t	begin;			/* rows idx[begin, end) */
	uint32_t	end;
	uint8_t		default_left;
	uint8_t		lazy;			/* gbt: children are leaves whose rows were not partitioned */
	uint8_t		evaluated;		/* gbt: best split known (its histogram may be gone) */
	double		value;			/* scalar leaf value */
	double		gain;			/* split gain / weighted impurity decrease */
	union
	{
		struct					/* gbt */
		{
			double		grad_sum;	/* sum of the rows' gradients */
			double		hess_sum;	/* sum of the rows' hessians */
		};
		struct					/* CART */
		{
			double		impurity;	/* impurity of the node's rows */
			double		weight;		/* their total weight */
		};
	};
	int32_t		hist;			/* gbt: histogram buffer, or -1 */
} TrainNode;

/* Appends trees to a model, growing its arrays. */
typedef struct ModelBuilder
{
	TreeModel  *m;
	uint32_t	cap_trees;
	uint32_t	cap_nodes;
	uint32_t	cap_leaves;
	uint32_t	cap_lstart;
	uint32_t	cap_cover;
	uint32_t	n_nodes;
	uint32_t	n_leaves;
} ModelBuilder;

/* Flattens a training tree (breadth first) into the model. leafvec (leaf_width per
 * training node) gives vector leaves when the model has leaf_width > 1. */
MlStatus	tm_append_tree(const MlEnv *env, ModelBuilder *mb, const TrainNode *tn,
						   const TreeBins *bins, const double *leafvec, MlError *err);
/* Leaves of every tree of a model. */
int			tm_count_leaves(const TreeModel *m);
/* Sets tree_depth and checks the structure; false when it is not a valid forest. */
bool		tm_finish(const MlEnv *env, TreeModel *m, MlError *err);

/*
 * Runs fn(arg, t, nt) for t in [0, nt) on up to nt threads (ml_parallel_for),
 * or inline when nt <= 1.
 */
static inline void
trees_run_tasks(const MlEnv *env, int nt, MlTaskFn fn, void *arg)
{
	MlEnv		e = *env;

	e.n_threads = nt;
	ml_parallel_for(&e, nt, fn, arg);
}

/* Code of a row for a training split: true when it goes left. */
static inline bool
tn_goes_left(const TrainNode *nd, uint8_t code, int nb)
{
	return code == nb ? nd->default_left != 0 : code <= nd->bin;
}

/* Leaf reached by a binned row in a training tree. */
static inline int
tn_leaf(const TrainNode *tn, const uint8_t *row, const uint16_t *nb)
{
	int			k = 0;

	while (tn[k].left >= 0)
		k = tn[k].left + (tn_goes_left(&tn[k], row[tn[k].feature], nb[tn[k].feature]) ? 0 : 1);
	return k;
}

/* CART: what every tree of a fit shares. */
typedef struct CartShared
{
	const TreeData *data;
	const TreeParams *p;
	int			d;
	const uint16_t *nb;
	const uint32_t *off;
	uint32_t	slots;
	int			K;				/* classes; 0 for regression */
	int			S;				/* stats per histogram slot: K + 1, or 3 */
	int			crit;
	int			max_depth;
	int			msl;
	int			mss;
	int			mtry;
} CartShared;

/* CART: one worker's scratch, allocated by the main thread. */
typedef struct CartWork
{
	uint32_t   *idx;			/* rows of the tree, partitioned by node */
	uint32_t   *tmp;
	uint32_t	n_idx;
	float	   *w;				/* per row (all n): bootstrap count x class weight */
	TrainNode  *tn;
	int			n_tn;
	int			max_tn;
	double	   *hist;			/* slots * S */
	double	   *scan;			/* 5 * S */
	int		   *feat;			/* d */
	int		   *stack;
	MlRng		rng;
	/* set when the tree grows on the main thread: ml_check every few nodes */
	const MlEnv *check_env;
	bool		cancelled;
	/* pruning scratch (ccp_alpha > 0) */
	double	   *rsub;
	int		   *nleaf;
	uint8_t    *reach;
} CartWork;

void		cart_grow(const CartShared *s, CartWork *w);

/*
 * Complete-binary-tree layout: node k's children are 2k+1 and 2k+2, stored
 * as separate arrays (threshold, feature, NaN side) so a step is a few
 * loads with free address scaling.
 */
#define FAST_MAX_DEPTH 10

struct TreeFast
{
	uint32_t	depth;			/* every tree padded to this depth */
	uint32_t	n_int;			/* 2^depth - 1 nodes per tree */
	uint32_t	n_leaf;			/* 2^depth leaves per tree */
	double	   *thr;			/* n_trees * n_int thresholds */
	uint32_t   *feat;			/* n_trees * n_int features */
	uint8_t    *nanr;			/* n_trees * n_int: 1 when NaN goes right */
	double	   *leaf;			/* n_trees * n_leaf */
	struct TreeQuant *quant;	/* quantised walk, or NULL (own allocation) */
};

/*
 * Quantised layout (gbt and any other fast-layout model whose features have
 * at most QUANT_MAX_CUTS distinct thresholds): each feature's distinct split
 * thresholds, sorted, and per node one word: the index i of its threshold
 * in the high 16 bits, its feature (half, see NaN) in the low 16. A row is
 * binned once per feature, bin(x) = how many of the feature's thresholds x
 * exceeds, and then x > cut[i] <=> bin(x) > i exactly, for every double x
 * (the cuts are sorted and distinct). The binned row holds bin(x) << 16, so
 * a step compares it with the whole node word: bin << 16 > (i << 16 | f)
 * <=> bin > i, as f < 2^16; no second load and no shift. The nodes of a
 * 100-tree depth-6 model take 25 KB instead of 82 KB. Rows are
 * binned by a two-level SIMD count where the CPU has AVX-512F or AVX2
 * (coarse: every 16th cut), else by a scalar binary search; the same bins.
 * One row at a time the walk beats the double walk; rows with NaN gain most
 * (the double walk takes them one tree at a time). Blocks of eight rows
 * without NaN keep the double walk (as fast, measured).
 *
 * NaN: the binned row has two halves, [0, d) where NaN is 0 (goes left of
 * every node) and [d, 2d) where NaN is QUANT_NAN (goes right of every
 * node); a node reads the half its default side asks for, so rows with and
 * without NaN take the same branch-free walk.
 */
#define QUANT_MAX_FEATURES 1024
#define QUANT_MAX_CUTS 65535
#define QUANT_NAN 0xFFFF
#define QUANT_SIMD_NONE 0		/* scalar binary search */
#define QUANT_SIMD_AVX2 1		/* two-level count, AVX2 */
#define QUANT_SIMD_AVX512 2		/* two-level count, AVX-512F */

struct TreeQuant
{
	uint32_t	n_features;
	uint32_t	n_used;			/* features some split uses */
	uint32_t	width;			/* 2^k >= 1 + most cuts of a feature */
	uint32_t   *used;			/* n_used feature numbers */
	double	   *cuts;			/* n_used * width: sorted distinct thresholds, +Inf after */
	double	   *coarse;			/* n_used * n_coarse: every 16th cut (cuts[16i + 15]),
								 * +Inf after; NULL when rows bin by the scalar search */
	uint32_t	n_coarse;		/* a multiple of 8 */
	uint8_t		simd;			/* QUANT_SIMD_*: how rows are binned */
	uint32_t   *node;			/* QUANT_NODE order: cut index << 16 | half
								 * feature (feature, or d + feature for NaN
								 * right) */
};

/*
 * Node k of tree t: each tree's n_int node words padded to n_int + 1 =
 * 2^depth, so the walks of several trees from one base pointer find node k
 * of the i-th tree at a constant offset i 2^depth + k once the depth is a
 * compile-time constant (tree_predict.c specialises the row walk by
 * depth). The trees are padded with all-zero ones to a multiple of
 * QUANT_GROUP, the trees a row walks in lock step, so every group is whole
 * (a padding tree's leaf is never read).
 */
#define QUANT_NODE(t, k, n_int) ((size_t) (t) * ((n_int) + 1) + (k))
#define QUANT_GROUP 16

/* Builds m's quantised layout into f->quant where it applies (tree_quant.c); false on OOM. */
bool		tree_quant_build(const MlEnv *env, const TreeModel *m, struct TreeFast *f);

/* Derived complete-tree scoring layout (tree_predict.c); false on OOM. */
bool		tree_fast_build(const MlEnv *env, TreeModel *m);
void		tree_fast_free(const MlEnv *env, TreeModel *m);
/*
 * Bins row x for the quantised walk into xb (2 * n_features, bins << 16):
 * SIMD where the layout has coarse cuts, else the scalar search; the same
 * bins.
 */
void		tree_quant_bin_row(const struct TreeQuant *q, const double *x, uint32_t *xb);
/* The scalar binary search (the fallback, and the tests' reference). */
void		tree_quant_bin_row_scalar(const struct TreeQuant *q, const double *x, uint32_t *xb);
/* Tests: the best QUANT_SIMD_* binning tree_quant_build may choose. */
extern int	tree_quant_simd_max;
/* Tests: drop the quantised walk (scoring falls back to the double walk). */
void		tree_quant_free(const MlEnv *env, TreeModel *m);
/* True when m scores through the quantised walk. */
bool		tree_quant_active(const TreeModel *m);
/* Tests: true builds the quantised walk even where binning costs more than it saves. */
extern bool tree_quant_always;

/* qsort/bsearch order of doubles without NaN (binning.c). */
int			trees_cmp_double(const void *a, const void *b);
/* Sorts v[0..n) (no NaN) and drops duplicates; returns the new count. */
int			trees_sort_unique(double *v, int n);

/*
 * Histogram layout: off[j] = first slot of feature j (its bins, then its
 * missing-value slot), off[d] = the total, which is returned.
 */
uint32_t	trees_hist_offsets(const TreeBins *bins, int d, uint32_t *off);

/* Per-class weights (n_classes) from params and labels of training rows. */
MlStatus	trees_class_weights(const MlEnv *env, const TreeData *data, const TreeParams *p,
								double **out, MlError *err);


/*
 * gbt: parts of the gradient-boosting trainer. gbt.c runs the rounds
 * (gradients, margins, validation), gbt_grow.c grows one tree (partitions
 * rows, creates children), gbt_hist.c builds histograms and finds splits.
 */
/* The gradient pass's state, kept across rounds (gbt_loss.c's gbt_grad_run). */
typedef struct GbtGrad
{
	const TreeData *data;
	TreeObjective obj;
	int			K;				/* margins per row */
	const uint32_t *rows;		/* training rows */
	uint32_t	n_rows;
	const float *margin;		/* float, as XGBoost: the model keeps doubles */
	float	   *gh;				/* 2 * n per margin column */
	const double *cw;			/* class weights or NULL */
	double	   *loss_part;		/* NULL, or the training loss's chunk sums to fill */
	double		qg;				/* quantum of g (0: g not rounded) */
	double		qh;				/* quantum of h (0: h not rounded, squared error's 1) */
	float		gmax[64];		/* per task: largest |g| before rounding (squared error) */
} GbtGrad;

/* gbt_loss.c: the gradient pass, its values on power-of-two grids (exact sums). */
void		gbt_grad_run(const MlEnv *env, int nt, GbtGrad *a);
double		gbt_quantum(uint32_t n, double bound);
#define GBT_LOSS_CHUNK 16384		/* rows per partial sum of the training loss */
/* gbt_loss.c: validation loss of rows vrows, training loss in chunk sums (part). */
double		gbt_valid_loss(const TreeData *data, TreeObjective obj, int K, const float *margin,
						   const uint32_t *vrows, uint32_t nv);
double		gbt_train_loss_of(const MlEnv *env, int nt, const TreeData *data, TreeObjective obj,
							  int K, const float *margin, const uint32_t *rows, uint32_t n_rows,
							  double *part);
double		gbt_loss_total(TreeObjective obj, const double *part, uint32_t n_rows);

/*
 * The terms of one row that the losses add up (s += term), shared by the
 * loss pass and the gradient pass that sums the same loss (gbt_loss.c), so
 * that both give the same bits: the squared error e * e, minus the log of
 * the true class's probability (s += -x is s -= x; binary logistic rows
 * clamp it at 1e-15 first and take their logs in blocks, gbt_loss.c), and
 * for softmax, below, the same from the true class's margin, the row's
 * largest and the sum of exp(m - max).
 */
static inline double
gbt_term_softmax(double m_true, double mx, double sum)
{
	return -((m_true - mx) - log(sum));
}

/* A regression target: the float copy when there is one (TreeData.y_float), else the double. */
static inline double
gbt_target(const TreeData *data, size_t r)
{
	return data->y_float ? (double) data->y_float[r] : data->y[r];
}
#define GBT_GROUP 4				/* parents whose last-level children share a histogram run */
#define PF_DIST 24				/* rows ahead to prefetch: scattered rows miss cache */
#define PART_PF_DIST 64			/* the same for the partition, which reads one byte a row */
/*
 * gbt: slots per feature in the padded histogram layout. Not 256: at 4 KB
 * a feature, features with few bins put the same low 12 address bits on
 * consecutive updates, and the CPU holds each load behind the earlier
 * stores it seems to alias (4K aliasing): 12x slower fits on 4-valued
 * features. 272 (16 slots more, 4,352 bytes) keeps 256 bins as fast.
 */
#define HIST_STRIDE 272

/*
 * gbt: adds gradient pair v to the slots of a row's nfb codes row[0, nfb)
 * in the padded layout (hb: the first feature's slots, the next feature
 * HIST_STRIDE slots on). With vex (the CPU has AVX: Gbt.hist_vex) an
 * update is four instructions: the code's byte, a shift, a load-add and a
 * store, both addressed by the histogram, the code and a constant. GCC's
 * own code for the plain loop computes every address into a register first
 * and loads apart from the add, eight instructions: the root's pass
 * measured 4-15% slower with it (the most when the machine is busy). The
 * same adds either way, so the same bits. Builds with AddressSanitizer
 * take the C loop, whose stores it checks.
 */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HIST_UNDER_ASAN 1		/* clang's spelling of __SANITIZE_ADDRESS__ */
#endif
#endif
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && \
	!defined(__SANITIZE_ADDRESS__) && !defined(HIST_UNDER_ASAN)
#define HIST_HAVE_VEX 1
#define HIST_ADD_VEX(hc, off, code, v) \
	do { \
		v2d			t_; \
		__asm__("vaddpd %0, %2, %1\n\tvmovapd %1, %0" \
				: "+m"(*(v2d *) ((hc) + (off) + (size_t) (code) * sizeof(v2d))), "=&x"(t_) \
				: "x"(v)); \
	} while (0)
#endif

static inline void
gbt_hist_add_padded(v2d *hb, const uint8_t *row, int nfb, v2d v, bool vex)
{
	const uint8_t *end4 = row + (nfb & ~3),
			   *end = row + nfb;

#ifdef HIST_HAVE_VEX
	if (vex)
	{
		char	   *hc = (char *) hb;

		for (; row < end4; row += 4, hc += 4 * HIST_STRIDE * sizeof(v2d))
		{
			HIST_ADD_VEX(hc, 0, row[0], v);
			HIST_ADD_VEX(hc, HIST_STRIDE * sizeof(v2d), row[1], v);
			HIST_ADD_VEX(hc, 2 * HIST_STRIDE * sizeof(v2d), row[2], v);
			HIST_ADD_VEX(hc, 3 * HIST_STRIDE * sizeof(v2d), row[3], v);
		}
		for (; row < end; row++, hc += HIST_STRIDE * sizeof(v2d))
			HIST_ADD_VEX(hc, 0, row[0], v);
		return;
	}
#endif
	for (; row < end4; row += 4, hb += 4 * HIST_STRIDE)
	{
		hb[row[0]] += v;
		hb[HIST_STRIDE + row[1]] += v;
		hb[2 * HIST_STRIDE + row[2]] += v;
		hb[3 * HIST_STRIDE + row[3]] += v;
	}
	for (; row < end; row++, hb += HIST_STRIDE)
		hb[row[0]] += v;
}

/*
 * gbt: rows per partition chunk (gbt_grow.c): a node's rows are
 * partitioned in chunks of this many, in parallel.
 */
#define PART_CHUNK 32768

struct PartChunk
{
	int			node;
	uint32_t	begin;
	uint32_t	end;
	uint32_t	nleft;
};
typedef struct PartChunk PartChunk;

/*
 * gbt: where a node's rows go (gbt_pos.c): code <= bin, or the missing code
 * nbf with dl, to node left, else to left + 1.
 */
typedef struct PosRule
{
	uint32_t	feature;
	uint32_t	left;
	uint8_t		bin;
	uint8_t		nbf;
	uint8_t		dl;
} PosRule;

/* gbt: the deepest tree the row positions serve (node count < GBT_POS_NODES). */
#define GBT_POS_NODES 4096

/* gbt: the best split of a node (left child sums GL, HL). */
typedef struct Split
{
	double		gain;
	int32_t		feature;
	int32_t		bin;
	int32_t		dl;
	double		GL;
	double		HL;
} Split;

/* gbt: one histogram to build (and its sibling to derive). */
typedef struct GbtJob
{
	int			small;			/* node whose histogram is built */
	int			large;			/* sibling = parent - small in its buffer; -1: none */
	bool		built;			/* small's histogram already built (the fused move pass) */
} GbtJob;

/* gbt: the state of the tree grower (gbt.c, gbt_grow.c, gbt_hist.c). */
typedef struct Gbt
{
	const MlEnv *env;
	int			nt;
	const uint8_t *B;
	int			d;
	const uint16_t *nb;
	const uint32_t *off;
	uint32_t	slots;
	const float *gh;			/* current tree's gradient pairs, 2 per row */
	uint32_t   *idx;
	uint32_t   *tmp;			/* half the rows: partition and row-sample scratch */
	TrainNode  *tn;
	int			n_tn;
	int			max_tn;
	Split	   *split;			/* best split per training node */
	v2d		   *pool;
	int		   *free_list;
	int			n_free;
	int			n_pool;
	int		   *feat;
	int			nf;
	bool		all_feat;
	bool		idx_in_order;	/* idx[k] == k until the first partition */
	bool		padded;			/* feature j's histogram at slot j * HIST_STRIDE */
	bool		hist_vex;		/* gbt_hist_add_padded's AVX adds (gbt_hist_vex and the CPU) */
	double		lambda;
	double		mcw;
	double		gamma;
	int			max_depth;
	GbtJob	   *jobs;
	int			n_jobs;
	int		   *eval;
	int			n_eval;
	int			eval_cap;
	Split	   *task_split;		/* eval_cap * nt */
	/* the run's plan (gbt_hist.c): task t does pieces [task_end[t-1], task_end[t]) */
	int		   *job_order;		/* jobs, most rows first (eval_cap) */
	int		   *eval_job;		/* the job that makes each evaluation's histogram, or -1 */
	uint64_t   *task_end;		/* per task: end of its pieces, as position * nf + feature */
	struct PartChunk *chunks;
	int			n_chunks;
	uint32_t	part_scratch;	/* rows of tmp each partition task may use */
	int		   *pend;			/* nodes being split (max_tn) */
	uint32_t   *mids;
	/* row positions (gbt_pos.c): depth-wise trees of at most GBT_POS_NODES nodes */
	bool		by_pos;			/* rows split by position, not in place */
	bool		pos_wide;		/* two bytes a position, else one */
	void	   *pos;			/* node of every data row; n_pos_nodes - 1: none */
	uint32_t	n_rows;			/* data rows (training and validation) */
	uint32_t	n_pos_nodes;	/* max_tn + 1 */
	PosRule    *rule;			/* n_pos_nodes */
	uint32_t   *pos_cnt;		/* rows per node per task (nt * n_pos_nodes) */
	uint32_t  **pos_dst;		/* list cursor per node per task (nt * n_pos_nodes) */
	uint8_t    *pos_step;		/* 1: the node's rows are listed (n_pos_nodes) */
	int			pos_one;		/* the only node listed, or -1 */
	uint32_t   *pos_trash;		/* dummy cursor target, 16 per task */
	int			pos_rule_max;	/* highest node given a split rule this tree, or -1 */
	v2d		  **pos_fh;			/* fused pass, per task: histogram a node's rows go to, or NULL */
	int		   *pos_fbuf;		/* per task, per node split: its fused child's buffer, or -1 */
} Gbt;

/* Runs the queued histogram jobs and split evaluations, then reduces the splits. */
void		gbt_run(Gbt *g);
/* The root's sums and histogram in one pass (one thread, rows in order). */
bool		gbt_hist_root(const Gbt *g, uint32_t n, v2d *h, double *G, double *H);
void		gbt_hist_add(const Gbt *g, v2d *dst, const v2d *src);
/* Grows one tree on rows g->idx[0, ns) with gradient pairs g->gh. */
void		gbt_grow_tree(Gbt *g, uint32_t ns, int max_leaves);
/* gbt_pos.c: row positions of the depth-wise grower. */
void		gbt_pos_start(Gbt *g, uint32_t ns);
void		gbt_pos_rules(Gbt *g, const int *pend, int np);
void		gbt_pos_partition(Gbt *g, const int *pend, int np, uint32_t *mids);
bool		gbt_pos_fuse(Gbt *g, const int *pend, int np, uint32_t *mids);
/* Tests and benches: most nodes a level's fused move pass splits (0: none). */
extern int	gbt_pos_fuse_nodes;
/* Tests: 0 routes rows one at a time even where AVX-512 can route 16. */
extern int	gbt_pos_simd;
void		gbt_pos_margins(Gbt *g, float *mc);
/* Tests: 0 adds histogram slots with plain C even where the CPU has AVX. */
extern int	gbt_hist_vex;

MlStatus	gbt_fit(const MlEnv *env, const TreeData *data, const TreeParams *p,
					TreeModel *out, TreeFitInfo *info, MlError *err);
MlStatus	cart_fit(const MlEnv *env, const TreeData *data, const TreeParams *p,
					 TreeModel *out, TreeFitInfo *info, MlError *err);
/* gbt_warm.c: checks the warm-start model fits the data and objective. */
MlStatus	gbt_warm_check(const TreeModel *m, const TreeData *data, TreeObjective obj,
						   MlError *err);
/* Margins (K x n, class-major) of model m on the binned rows of data. */
MlStatus	gbt_warm_margins(const MlEnv *env, const TreeModel *m, const TreeData *data,
							 float *margin, MlError *err);
/* Copies src's trees (scalar leaves) into the empty model being built. */
MlStatus	tm_copy_trees(const MlEnv *env, ModelBuilder *mb, const TreeModel *src,
						  MlError *err);
size_t		gbt_memory_needed(int64_t n, int d, int n_classes, const TreeParams *p);
size_t		cart_memory_needed(int64_t n, int d, int n_classes, const TreeParams *p);

#endif
