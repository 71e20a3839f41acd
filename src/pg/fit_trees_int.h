/*
 * fit_trees_int.h: what fit_trees.c (the training phases) and
 * fit_trees_load.c (reading the source: the two passes and the targets)
 * share. Private to those two files.
 */
#ifndef FIT_TREES_INT_H
#define FIT_TREES_INT_H

#include "mlpipe.h"

#include "utils/hsearch.h"

#include "decision.h"
#include "model.h"
#include "trees.h"

/* Rows of the seeded reservoir sample that gives the bin edges. */
#define TREES_SAMPLE 100000

/* Words a row's hash mixes in after its features: target (3), split value (2). */
#define LOAD_TAIL 5

/*
 * A block of read rows waiting to be hashed (and in pass 2 binned), column
 * by column, so that ml_hash_columns hashes many rows side by side; with
 * mlpipe.threads > 1 a pool worker takes a full block (plain C, no
 * PostgreSQL calls) while the main thread reads rows into the other.
 */
typedef struct LoadBlock
{
	double	   *x;				/* cap x d, column-major (column stride ld) */
	uint64	   *tail;			/* LOAD_TAIL words a row: target, split value */
	uint8	   *tail_n;			/* words in each row's tail */
	uint64	   *h;				/* the rows' hashes */
	int			n;				/* rows in it */
	int			cap;
	int			ld;				/* cap + LOAD_LD_PAD: columns 64 bytes apart mod 4 KB */
	int			d;
	uint64		h0;
	int64	   *row;			/* pass 1: each row's index among rows with a
								 * target, or -1; pass 2: its slot in B */
	uint64	   *keys;			/* pass 1: where the rows' sort keys go */
	const TreeBins *bins;		/* pass 2, set when handed over */
	uint8	   *binned;			/* pass 2: cap x d bin codes before they go to B */
	double	   *yv;				/* pass 2: the rows' targets and split values */
	int32	   *yl;
	double	   *sv;
	uint8	   *B;				/* pass 2: where they go, by slot */
	uint64	   *rh;
	double	   *to_yv;
	int32	   *to_yl;
	double	   *to_sv;
	MlSampleBuf *sbuf;			/* pass 1: the sample the rows are offered to */
	ProfileSampler *profile;	/* pass 1: the training profile's sampler, or NULL */
	uint64	   *profile_h;		/* its hashes of the block's rows */
	double	   *sample;
} LoadBlock;

typedef struct TreeLoad
{
	MemoryContext mcxt;
	PgEnv	   *pe;
	int			d;
	bool		classify_by_type;	/* text, bool, enum targets */
	bool		int_target;
	bool		on_null_error;
	/* pass 1: the sample for the bin edges (smallest content hashes) */
	double	   *sample;			/* up to TREES_SAMPLE x d, row-major, grown on demand */
	int64		sample_cap;		/* rows of sample in use (checked in max_memory) */
	int64		sample_room;	/* rows allocated in sample (>= sample_cap) */
	bool		sample_huge;	/* 2 MB pages advised in sample (sample_alloc) */
	int64		seen;			/* rows seen in pass 1 */
	bool		sample_is_all;	/* every row so far is in the sample, in order */
	bool		prep_param;		/* params.preprocess given */
	bool		keep_all;		/* preprocessing: keep every row (no sampling) */
	/* rows with a target: in source order, then the canonical order */
	int64		n;
	int64		cap;
	uint8	   *B;				/* n x d bin codes (pass 2), or NULL */
	double	   *yv;				/* numeric target value per row */
	double	   *sv;				/* split column value per row (time/column splits) */
	SplitColKind split_kind;
	const char *split_column;
	int32	   *yl;				/* provisional label id per row (label targets) */
	int64		skipped_target;
	/* labels: provisional ids in order of appearance */
	HTAB	   *label_ids;
	char	  **labels;
	int			n_labels;
	int			labels_cap;
	FmgrInfo	out_fn;
	Oid			target_type;
	const TreeBins *bins;		/* pass 2 */
	int64		sample_rows_kept;	/* rows of `sample` that carry a target (pass 1) */
	int64	   *sample_src;		/* pass 1: index into yv/yl of each sample slot, or -1 */
	/* order independence (row_order.c): content hashes seeded by params.seed */
	const SourceInfo *info;		/* the scan's layout: categorical columns, dictionaries */
	uint64		h0;				/* hash state for the seed */
	uint64	   *sample_prio;	/* pass 1: content hash of each sample slot */
	MlSampleBuf sbuf;			/* pass 1 over TREES_SAMPLE rows: the bottom-k sample */
	ProfileSampler *profile;	/* pass 1: the training profile's sampler, or NULL */
	uint64	   *rh;				/* pass 2: sort key (content hash, slot) of each slot of B */
	/* pass 1 -> 2: where each row goes, from pass 1's hashes (see trees_load_pass2) */
	uint64	   *keys1;			/* pass 1: sort key of each row with a target */
	int64		keys1_cap;
	int64		keys1_ready;	/* keys1's entries faulted in (pass1_flush) */
	int64		n1;				/* rows with a target in pass 1 (keys1's rows) */
	uint32	   *slot_of;		/* pass 2: the slot of B of pass-1 row k (k < n1) */
	LoadBlock	blk[2];			/* rows read, not yet hashed: one filling, one handed over */
	int			cur;			/* the block being filled */
	bool		posted;			/* the other block is on a pool worker */
} TreeLoad;

typedef struct LabelEntry
{
	char		key[NAMEDATALEN * 4];
	int32		id;
} LabelEntry;


/* Sets up an empty load: labels table, sample RNG, params.on_null. */
void		trees_load_init(TreeLoad *L, MemoryContext mcxt, PgEnv *pe, cJSON *params,
							uint64 seed);
/* Pass 1: the reservoir sample, and the targets while the sample holds every row. */
void		trees_load_pass1(TreeLoad *L, SourceSpec *spec, SourceInfo *info, const char *target);
/* Pass 2 (sources larger than the sample): reads again, binning rows as they arrive. */
void		trees_load_pass2(TreeLoad *L, SourceSpec *spec, SourceInfo *info, const TreeBins *bins);
/* Puts pass 1's sample (and, when it holds every row, the targets) in the canonical order. */
void		trees_load_order_sample(TreeLoad *L);
void		trees_load_free_sample(TreeLoad *L);
/* Puts pass 2's binned rows and targets in the canonical order. */
void		trees_load_order_rows(TreeLoad *L);
/* Decides the task; turns the targets into class indices or values. */
MlTask		trees_finish_targets(TreeLoad *L, const char *task_param, const char *target,
								 char ***classes_out, int *n_classes_out);
/* Hands freed heap pages back to the kernel between phases. */
void		trees_release_free_memory(void);

/* fit_trees_params.c: params into TreeParams, class weights by label */
void		trees_read_params(cJSON *params, TreeAlgorithm algo, MlTask task,
							  int n_classes, TreeParams *tp, double **class_weights);
void		trees_read_class_weights(cJSON *params, char **classes, int n_classes, double *w);

/* gbt params.warm_start (fit_trees_warm.c). */
void		trees_warm_read(PgEnv *pe, bytea *warm, MlModel *parent);
void		trees_warm_check_features(const MlModel *parent, char **names, int d);
void		trees_warm_check_target(const MlModel *parent, MlTask task, char **classes,
									int n_classes, const TreeParams *tp);
void		trees_warm_info(cJSON *info, cJSON *params, const MlModel *parent, int rounds_added);

/* params.threshold and params.calibrate of a binary classifier (fit_decision.c). */
typedef struct DecisionParams
{
	bool		given;			/* params.threshold */
	double		threshold;		/* a fixed threshold, when metric is 0 */
	int			metric;			/* ThresholdMetric to tune for, or 0 */
	const char *metric_name;
	int			calibrate;		/* CalMethod */
	double		calibration_size;	/* share of the training rows held out to calibrate */
} DecisionParams;

void		decision_params_read(cJSON *params, DecisionParams *dp);
void		decision_params_check_task(const DecisionParams *dp, MlTask task, int n_classes,
									   const char *target);
int64		decision_carve(const DecisionParams *dp, PgEnv *pe, uint8 *B, int32 *y, int64 n,
						   int d, uint64 seed, uint8 **Bcal, int32 **ycal);
void		decision_calibrate_fit(const DecisionParams *dp, PgEnv *pe, const int32 *y,
								   const double *score, int64 n, MlDecision *dec);
/* (truth, score) pairs of two array arguments 0 and 1 (metric_curves.c). */
int64		curve_array_pairs(FunctionCallInfo fcinfo, const char *fn, uint8 **truth,
							  double **score);
void		decision_choose(const DecisionParams *dp, PgEnv *pe, const uint8 *truth,
							const double *score, int64 n, MlDecision *dec);
void		decision_binary_metrics(PgEnv *pe, const uint8 *truth, const double *score,
									const uint8 *pred, int64 n, const MlDecision *dec,
									cJSON *metrics);

#endif
