/*
 * trees.h: CART decision trees, random forests and histogram gradient
 * boosting (XGBoost-style second-order "hist"), their binary codec, JSON
 * export and fast scoring.
 *
 * Data path. Training works on a BINNED matrix, never on doubles:
 *   1. trees_bins_fit() computes per-feature bin edges from a column-major
 *      double sample (X[j*n + i], NaN = missing; +-Inf are ordinary extreme
 *      values). Up to min(max_bins, 255) value bins per feature, chosen as
 *      equal-count quantile bins, or one bin per distinct value (cut at the
 *      midpoints, as scikit-learn) when there are few distinct values.
 *   2. trees_bins_apply() turns column-major double batches into the
 *      ROW-MAJOR byte matrix B (B[i*d + j], 1 byte per value). Code
 *      bins->n_bins[j] is "missing". The glue can fit the edges on a sample
 *      (the first rows read, or a reservoir) and bin each cursor batch as it
 *      arrives, dropping the doubles.
 *   3. trees_fit() trains from B. It never needs the double matrix.
 * Memory: B (n*d bytes) plus trees_memory_needed() bytes of working memory.
 * gbt: 12K + 6 bytes a row (float margins and float gradient pairs, K =
 * classes for multi:softmax, else 1; a row-index array and half of one for
 * the partition), +4 with validation rows, plus histograms (16 bytes a bin
 * a feature, for 2^(max_depth-2) + 4 nodes depth-wise, max_leaves + 1
 * loss-guided, capped at 256 MB): for 800k x 28 binary, depth 6, about 17 MB
 * beside the 22.4 MB matrix. CART/forest:
 * per worker thread 12 bytes a row plus node scratch (~90 bytes a possible
 * node, at most 2n/min_samples_leaf) plus one histogram; the out-of-bag
 * score adds 8K+4 bytes a row.
 *
 * The model is a set of flattened trees (TreeNode arrays, 16 bytes a node,
 * children adjacent and always after their parent). Scoring works on raw
 * doubles with NaN routed by the learned default direction. Everything is
 * deterministic: the same data, params and seed give bit-identical models
 * and artifacts whatever the thread count.
 */
#ifndef TREES_H
#define TREES_H

#include "mlbuf.h"
#include "artifact.h"

#define TREES_MAX_DEPTH			64	/* max_depth must be in [1, 64]; 0 = no limit (64) */
#define TREES_MAX_BINS			256 /* max_bins in [2, 256] */
#define TREES_MAX_VALUE_BINS	255 /* value bins per feature (one code is "missing") */
#define TREES_MAX_ESTIMATORS	100000
#define TREES_MAX_LEAVES		65536

typedef enum TreeAlgorithm
{
	TREE_ALGO_DECISION_TREE = 0,
	TREE_ALGO_RANDOM_FOREST = 1,
	TREE_ALGO_GBT = 2
} TreeAlgorithm;

typedef enum TreeCriterion
{
	TREE_CRIT_DEFAULT = 0,		/* gini (classify) / squared_error (regress) */
	TREE_CRIT_GINI = 1,
	TREE_CRIT_ENTROPY = 2,
	TREE_CRIT_SQUARED_ERROR = 3
} TreeCriterion;

typedef enum TreeObjective
{
	TREE_OBJ_DEFAULT = 0,		/* from task and n_classes */
	TREE_OBJ_BINARY_LOGISTIC = 1,
	TREE_OBJ_MULTI_SOFTMAX = 2,
	TREE_OBJ_REG_SQUAREDERROR = 3
} TreeObjective;

typedef enum TreeClassWeight
{
	TREE_CW_NONE = 0,
	TREE_CW_BALANCED = 1,		/* n / (n_classes * count(class)), as scikit-learn */
	TREE_CW_GIVEN = 2			/* params.class_weights[n_classes], each > 0 */
} TreeClassWeight;

typedef enum TreeMaxFeatures
{
	TREE_MF_DEFAULT = 0,		/* RF: sqrt (classify) / all (regress); DT: all */
	TREE_MF_ALL = 1,
	TREE_MF_SQRT = 2,
	TREE_MF_LOG2 = 3,
	TREE_MF_FRACTION = 4,		/* max_features_value in (0, 1] */
	TREE_MF_COUNT = 5			/* max_features_value an integer in [1, d] */
} TreeMaxFeatures;

/*
 * Hyper-parameters. trees_params_default() fills the defaults for an
 * algorithm (scikit-learn's for decision_tree / random_forest, XGBoost's for
 * gbt); trees_params_validate() checks them. Fields an algorithm does not
 * use are ignored.
 */
typedef struct TreeParams
{
	TreeAlgorithm algorithm;
	MlTask		task;			/* ML_TASK_CLASSIFY or ML_TASK_REGRESS */
	/* all trees */
	int			max_depth;		/* [0, 64]; 0 = unlimited (64). gbt: default 6,
								 * [1, 20] depth-wise, 0 allowed with max_leaves */
	int			max_bins;		/* [2, 256], default 256 (255 value bins + missing);
								 * the caller passes it to trees_bins_fit() */
	TreeClassWeight class_weight;	/* classify only */
	const double *class_weights;	/* TREE_CW_GIVEN: n_classes finite values > 0 */
	uint64_t	seed;
	int			n_threads;		/* 0: env->n_threads; else at most this many */
	/* decision_tree / random_forest (CART) */
	TreeCriterion criterion;
	int			min_samples_leaf;	/* >= 1, default 1 */
	int			min_samples_split;	/* >= 2, default 2 */
	double		ccp_alpha;		/* >= 0, minimal cost-complexity pruning */
	TreeMaxFeatures max_features;
	double		max_features_value;
	bool		bootstrap;		/* random_forest, default true */
	bool		oob_score;		/* random_forest: compute the out-of-bag score */
	/* random_forest and gbt */
	int			n_estimators;	/* [1, 100000]; RF default 100, gbt 100 */
	/* gbt */
	TreeObjective objective;
	double		learning_rate;	/* (0, 1], default 0.3 as XGBoost */
	int			max_leaves;		/* 0 = none (depth-wise); else loss-guided, [2, 65536] */
	double		min_child_weight;	/* >= 0, default 1 */
	double		l2;				/* lambda >= 0, default 1 */
	double		gamma;			/* min split loss >= 0, default 0 */
	double		subsample;		/* (0, 1], rows per tree, default 1 */
	double		colsample;		/* (0, 1], features per tree, default 1 */
	int			early_stopping_rounds;	/* 0 = off; needs validation rows */
	/*
	 * gbt: NULL, or a gbt model to continue (params.warm_start): its trees
	 * are kept and n_estimators rounds are added, boosting from its margins.
	 * Its thresholds must be cuts of the bins (trees_bins_add_model_cuts).
	 */
	const struct TreeModel *warm_start;
	MlTrace    *trace;			/* gbt: NULL, or receives one entry per round
								 * built: the training loss (logloss, mlogloss
								 * or RMSE, unweighted, as XGBoost's eval) and
								 * the validation loss (NaN without validation
								 * rows). Env allocations, ml_trace_free */
} TreeParams;

void		trees_params_default(TreeParams *p, TreeAlgorithm algorithm, MlTask task);

/*
 * ML_ERR_PARAM with a message naming the parameter and its allowed range.
 * d and n_classes (0 for regression) are those of the data to be fitted.
 */
MlStatus	trees_params_validate(const TreeParams *p, int d, int n_classes,
								  MlError *err);

/* ---- Binning ---- */

typedef struct TreeBins
{
	int			d;
	uint16_t   *n_bins;			/* value bins of feature j, [1, 255]; code n_bins[j] = NaN */
	/*
	 * cuts[j*256 + b] for b < n_bins[j]-1: value x falls in the first bin b
	 * with x <= cuts[b] (else the last bin). Entries from n_bins[j]-1 on are
	 * +Inf padding. Cuts are finite and strictly increasing.
	 */
	double	   *cuts;
} TreeBins;

/*
 * Fits bin edges on column-major X (n rows, d features). When n exceeds
 * sample_rows (> 0), a seeded random sample of sample_rows rows is used
 * (200000 is a good value). A feature that is entirely NaN gets one bin.
 */
MlStatus	trees_bins_fit(const MlEnv *env, const double *X, int64_t n, int d,
						   int max_bins, int64_t sample_rows, uint64_t seed,
						   TreeBins *out, MlError *err);

/*
 * Bins m rows of column-major X (X[j*m + i]) into rows row0 .. row0+m-1 of
 * the row-major byte matrix B (B[(row0+i)*d + j]). Threads through
 * ml_parallel_for when env is not NULL.
 */
void		trees_bins_apply(const MlEnv *env, const TreeBins *bins, const double *X,
							 int64_t m, uint8_t *B, int64_t row0);
/* The same on the calling thread for X with column stride ld (X[j*ld + i]). */
void		trees_bins_apply_block(const TreeBins *bins, const double *X, size_t ld,
								   int64_t m, uint8_t *B, int64_t row0);
/* The same for one row-major row x[d]. */
void		trees_bins_apply_row(const TreeBins *bins, const double *x, uint8_t *out);
void		trees_bins_free(const MlEnv *env, TreeBins *bins);

/*
 * Warm start: makes every split threshold of model m a cut of bins (so its
 * trees route binned rows as their raw values), keeping as many of the
 * existing cuts, evenly thinned, as max_bins leaves room for.
 * ML_ERR_PARAM when m alone needs more cuts than max_bins allows.
 */
struct TreeModel;
MlStatus	trees_bins_add_model_cuts(const MlEnv *env, TreeBins *bins,
									  const struct TreeModel *m, int max_bins, MlError *err);

/* ---- Training ---- */

/* What trees_fit() trains on. */
typedef struct TreeData
{
	const uint8_t *B;			/* n x d row-major bin codes (trees_bins_apply) */
	int64_t		n;
	int			d;
	const TreeBins *bins;
	/* classify: labels in [0, n_classes), n_classes >= 2 */
	const int32_t *y_class;
	int			n_classes;
	/* regress: finite targets */
	const double *y;
	/*
	 * gbt regression, optional: the targets as floats, read instead of y
	 * (which may then be NULL) when every target is exactly a float: the
	 * same values in half the memory.
	 */
	const float *y_float;
	/*
	 * Optional, n bytes: nonzero marks a validation row. Validation rows
	 * are not trained on; gbt reports the validation loss each round and
	 * early_stopping_rounds uses it. NULL: every row trains.
	 */
	const uint8_t *valid_mask;
} TreeData;

/*
 * A node. Internal: x[feature] <= value goes to `aux` (left), otherwise to
 * aux + 1 (right); NaN goes left iff TREE_NODE_DEFAULT_LEFT. aux > own index.
 * Leaf: feature == TREE_NODE_LEAF; value is the leaf's output (gbt margin,
 * regression value); for class-distribution leaves (decision tree / random
 * forest classifiers) aux is the leaf's row in the tree's leaf table.
 */
#define TREE_NODE_LEAF			0x80000000u
#define TREE_NODE_DEFAULT_LEFT	0x40000000u
#define TREE_NODE_FEATURE_MASK	0x3FFFFFFFu

typedef struct TreeNode
{
	double		value;
	uint32_t	feature;
	uint32_t	aux;
} TreeNode;

typedef struct TreeModel
{
	TreeAlgorithm algorithm;
	MlTask		task;
	TreeObjective objective;	/* gbt; TREE_OBJ_DEFAULT otherwise */
	uint32_t	n_features;
	uint32_t	n_classes;		/* 0 for regression */
	uint32_t	n_outputs;		/* what predict writes: n_classes, or 1 */
	uint32_t	leaf_width;		/* n_classes for DT/RF classifiers (leaf tables), else 1 */
	uint32_t	trees_per_round;	/* gbt multi:softmax: n_classes; else 1 */
	uint32_t	n_trees;
	uint32_t   *tree_start;		/* n_trees + 1 offsets into nodes */
	uint32_t   *tree_depth;		/* n_trees; derived (longest root-leaf path) */
	uint32_t   *leaf_start;		/* leaf_width > 1: n_trees + 1 offsets (in leaves) */
	TreeNode   *nodes;
	double	   *leaf_values;	/* leaf_width > 1: leaf tables, leaf_width each */
	double	   *base_score;		/* gbt: trees_per_round initial margins; else NULL */
	double	   *importance;		/* n_features: total gain (gbt) or total weighted
								 * impurity decrease (DT/RF), not normalised */
	int32_t		best_iteration; /* gbt: 0-based best round (trees beyond dropped); -1 */
	double		oob_score;		/* RF: accuracy / R^2 out of bag; NaN if not computed */
	double		valid_loss;		/* gbt: validation loss at best_iteration; NaN if none */
	double		learning_rate;	/* gbt: informational (already in the leaves) */
	double	   *cover;			/* per node: training cover for TreeSHAP (gbt: sum of
								 * hessians, CART: weighted rows); NULL if unknown
								 * (tree codec version 1) */
	/*
	 * Derived scoring layout (one env allocation, built by fit and read,
	 * freed by trees_model_free): scalar-leaf models whose trees are at most
	 * 10 deep are also stored as complete binary trees for branch-free
	 * scoring. NULL when not applicable. Not part of the artifact.
	 */
	struct TreeFast *fast;
} TreeModel;

/* Per-round progress, for the caller (optional, may be NULL). */
typedef struct TreeFitInfo
{
	int			rounds;			/* boosting rounds (or trees) actually built */
	int			n_leaves;		/* total leaves */
	double		train_loss;		/* gbt: last round's training loss */
} TreeFitInfo;

/*
 * Working memory trees_fit() will allocate beyond B and the model, for n
 * rows x d features (n_classes 0 for regression). SIZE_MAX on overflow.
 */
size_t		trees_memory_needed(int64_t n, int d, int n_classes, const TreeParams *p);

/*
 * Trains. ML_ERR_PARAM for bad params, ML_ERR_DATA for n == 0, no training
 * rows, a single class, a label out of range or non-finite regression
 * targets, ML_ERR_MEMORY when allocation fails. Calls ml_check once per tree
 * (gbt: per boosting round). The model's arrays are env allocations.
 */
MlStatus	trees_fit(const MlEnv *env, const TreeData *data, const TreeParams *p,
					  TreeModel *out, TreeFitInfo *info, MlError *err);

void		trees_model_free(const MlEnv *env, TreeModel *m);

/* ---- Scoring ---- */

/*
 * One row x[n_features] (NaN = missing). out[n_outputs]: the regression
 * value, or per-class probabilities that sum to 1 (sigmoid / softmax for
 * gbt, averaged leaf class distributions for DT/RF).
 */
void		trees_predict_row(const TreeModel *m, const double *x, double *out);
/*
 * Class index (argmax of the probabilities, lowest index on ties); proba
 * (n_outputs entries) receives the probabilities. 0 for regression.
 */
int			trees_predict_class(const TreeModel *m, const double *x, double *proba);
/* The class of a row's probabilities as trees_predict_class picks it (first highest). */
int			trees_class_of(const TreeModel *m, const double *proba);
/*
 * n row-major rows X[i*n_features + j]; out[i*n_outputs + k]. Threads over
 * row blocks via ml_parallel_for when env is not NULL.
 */
void		trees_predict_batch(const MlEnv *env, const TreeModel *m, const double *X,
								int64_t n, double *out);

/*
 * Rows given as bin codes (the training matrix: B[i*n_features + j] in
 * [0, 256)), scored without rebuilding their values. The map holds, for
 * each code of each feature a split uses, the quantised walk's bin of the
 * value the code stands for: code_values[c*n_features + j] (NaN for the
 * missing code; any value for codes that do not occur). trees_code_map_build
 * sets *map NULL when m has no quantised walk (score the values then);
 * false on OOM. trees_predict_codes gives trees_predict_row's bits for
 * each row's values (out as trees_predict_batch), threading over rows via
 * ml_parallel_for when env is not NULL.
 */
typedef struct TreeCodeMap TreeCodeMap;
bool		trees_code_map_build(const MlEnv *env, const TreeModel *m,
								 const double *code_values, TreeCodeMap **map);
void		trees_code_map_free(const MlEnv *env, TreeCodeMap *map);
void		trees_predict_codes(const MlEnv *env, const TreeModel *m, const TreeCodeMap *map,
								const uint8_t *B, int64_t n, double *out);

/* ---- Codec and export ---- */

/* Model section payload (inside ML_SEC_MODEL). */
void		trees_write(MlBuf *b, const TreeModel *m);
/*
 * Reads and validates a payload (rejecting anything inconsistent with
 * ML_ERR_CORRUPT in r->err). Frees what it allocated on failure.
 */
bool		trees_read(MlReader *r, const MlEnv *env, TreeModel *m);
/* Kind of artifact for a model's algorithm. */
MlKind		trees_kind(const TreeModel *m);

/*
 * Appends a readable JSON document (NUL-terminated; b->len includes the
 * NUL) describing the model: params, importances and every tree as a flat
 * node list {"id","feature","threshold","missing","left","right"} or
 * {"id","leaf"}, each with "cover" when the model has node covers. Numbers
 * have the fewest digits that read back exactly, so trees_import_json reads
 * the same model back. feature_names (n_features) may be NULL.
 */
void		trees_export_json(MlBuf *b, const TreeModel *m, const char *const *feature_names);

/*
 * Reads a document written by trees_export_json back into *out (env
 * allocations): the same model, so the same predictions, and the same
 * explanations when the document has node covers. Node features given by
 * name are looked up in feature_names (n_names of them, which must be the
 * model's n_features; NULL for numbered features). ML_ERR_PARAM for an algorithm that is not a tree
 * model; ML_ERR_DATA, naming the JSON path, for anything malformed or that
 * the artifact codec would refuse.
 */
struct cJSON;
MlStatus	trees_import_json(const MlEnv *env, const struct cJSON *doc,
							  const char *const *feature_names, uint32_t n_names, TreeModel *out,
							  MlError *err);

#endif
