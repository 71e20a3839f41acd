/*
 * fit_trees.c: training glue for decision_tree, random_forest and gbt.
 *
 * Data path (memory stays near 2x the binned matrix):
 *   pass 1 reads the source once, keeping a seeded reservoir sample of
 *          TREES_SAMPLE rows (as doubles) for the bin edges, and, while the
 *          source is no larger than the sample, every row with its target;
 *   pass 2 (only for larger sources) reads it again and bins each row as it
 *          arrives, one byte per value;
 * then the rows are split (stratified or random, seeded) into a training
 * and a test matrix, the model is fitted on the first and evaluated on the
 * second. Test rows are scored from their bins through each bin's upper
 * edge, which routes them exactly as their raw values would, since every
 * split threshold is a bin edge.
 */
#include "mlpipe.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "metrics.h"
#include "trees.h"

#include <limits.h>
#include <math.h>

#define TREES_SAMPLE 100000
/* An integer target with at most this many distinct values is a class label. */
#define INT_CLASS_LIMIT 20

static const char *const common_keys[] = {
	"seed", "on_null", "exclude", "test_size", "split", "task", "max_depth", "max_bins",
	"class_weight", NULL
};
static const char *const dt_keys[] = {
	"criterion", "min_samples_leaf", "min_samples_split", "ccp_alpha", "max_features", NULL
};
static const char *const rf_keys[] = {
	"criterion", "min_samples_leaf", "min_samples_split", "ccp_alpha", "max_features",
	"n_estimators", "bootstrap", NULL
};
static const char *const gbt_keys[] = {
	"n_estimators", "learning_rate", "max_leaves", "min_child_weight", "l2", "gamma",
	"subsample", "colsample", "objective", "early_stopping_rounds", "validation_size", NULL
};

/* Everything the two passes build. */
typedef struct TreeLoad
{
	MemoryContext mcxt;
	PgEnv	   *pe;
	int			d;
	bool		classify_by_type;	/* text, bool, enum targets */
	bool		int_target;
	bool		on_null_error;
	/* pass 1: reservoir sample for the bin edges */
	double	   *sample;			/* up to TREES_SAMPLE x d, row-major, grown on demand */
	int64		sample_cap;		/* rows allocated in sample */
	int64		seen;			/* rows seen in pass 1 */
	MlRng		rng;
	bool		sample_is_all;	/* every row so far is in the sample, in order */
	/* rows with a target, in source order */
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
} TreeLoad;

typedef struct LabelEntry
{
	char		key[NAMEDATALEN * 4];
	int32		id;
} LabelEntry;

static void
load_grow_targets(TreeLoad *L)
{
	int64		newcap = L->cap ? L->cap * 2 : 65536;

	/* Labels need ids, numbers need values; integers may be either until the end. */
	bool		want_v = !L->classify_by_type;
	bool		want_l = L->classify_by_type;	/* integers get ids in finish_targets */

	if (want_v)
		L->yv = L->yv ? repalloc_huge(L->yv, sizeof(double) * newcap)
			: MemoryContextAllocHuge(L->mcxt, sizeof(double) * newcap);
	if (want_l)
		L->yl = L->yl ? repalloc_huge(L->yl, sizeof(int32) * newcap)
			: MemoryContextAllocHuge(L->mcxt, sizeof(int32) * newcap);
	if (L->B)
		L->B = repalloc_huge(L->B, (Size) newcap * L->d);
	if (L->split_kind != SPLIT_COL_NONE)
		L->sv = L->sv ? repalloc_huge(L->sv, sizeof(double) * newcap)
			: MemoryContextAllocHuge(L->mcxt, sizeof(double) * newcap);
	L->cap = newcap;
}

/* The text of a target value, as target::text shows it. */
static char *
target_label(TreeLoad *L, Datum v)
{
	if (L->target_type == BOOLOID)
		return DatumGetBool(v) ? "true" : "false";
	return OutputFunctionCall(&L->out_fn, v);
}

static int32
label_id(TreeLoad *L, const char *label)
{
	LabelEntry *e;
	bool		found;

	if (strlen(label) >= sizeof(e->key))
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("a class label is longer than %d bytes", (int) sizeof(e->key) - 1)));
	e = hash_search(L->label_ids, label, HASH_ENTER, &found);
	if (!found)
	{
		if (L->n_labels >= ML_MAX_CLASSES)
			ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
							errmsg("the target has more than %d distinct classes", ML_MAX_CLASSES)));
		if (L->n_labels == L->labels_cap)
		{
			L->labels_cap = L->labels_cap ? L->labels_cap * 2 : 64;
			L->labels = L->labels ? repalloc(L->labels, sizeof(char *) * L->labels_cap)
				: MemoryContextAlloc(L->mcxt, sizeof(char *) * L->labels_cap);
		}
		L->labels[L->n_labels] = MemoryContextStrdup(L->mcxt, label);
		e->id = L->n_labels++;
	}
	return e->id;
}

/* Records the target of the next row; false when the row is skipped. */
static bool
load_target(TreeLoad *L, const SourceTarget *t, int64 rowno)
{
	if (t->isnull)
	{
		if (L->on_null_error)
			ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
							errmsg("the target is NULL in row " INT64_FORMAT, rowno),
							errhint("The default, params.on_null = 'skip', skips and counts such rows.")));
		L->skipped_target++;
		return false;
	}
	if (L->n == L->cap)
		load_grow_targets(L);
	if (L->classify_by_type)
		L->yl[L->n] = label_id(L, target_label(L, t->datum));
	else
	{
		double		v;

		switch (L->target_type)
		{
			case INT2OID: v = DatumGetInt16(t->datum); break;
			case INT4OID: v = DatumGetInt32(t->datum); break;
			case INT8OID: v = (double) DatumGetInt64(t->datum); break;
			case FLOAT4OID: v = DatumGetFloat4(t->datum); break;
			case FLOAT8OID: v = DatumGetFloat8(t->datum); break;
			default:
				v = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow, t->datum));
		}
		if (!isfinite(v))
		{
			if (L->on_null_error)
				ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
								errmsg("the target is %s in row " INT64_FORMAT, isnan(v) ? "NaN" : "infinite", rowno)));
			L->skipped_target++;
			return false;
		}
		L->yv[L->n] = v == 0 ? 0.0 : v;	/* -0 and 0 are one class */
	}
	if (L->split_kind == SPLIT_COL_TIME && t->split_isnull)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("time split column \"%s\" is NULL in row " INT64_FORMAT, L->split_column, rowno),
						errhint("Every row needs a time to be placed before or after the split; filter such rows in the source.")));
	if (L->split_kind != SPLIT_COL_NONE)
		L->sv[L->n] = t->split_isnull ? 0.0 : t->split_value;	/* column split: NULL is a training row */
	return true;
}

static void
pass1_plan(void *arg, const SourceInfo *info)
{
	TreeLoad   *L = arg;

	L->d = info->d;
	/* Values are read by the base type (domains); labels by the declared type. */
	L->target_type = getBaseType(info->target_type);
	switch (L->target_type)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
			L->int_target = true;
			break;
		case FLOAT4OID:
		case FLOAT8OID:
		case NUMERICOID:
			break;
		default:
			{
				/* text, varchar, char, boolean, enums, ...: class labels */
				Oid			outfn;
				bool		varlena;

				L->classify_by_type = true;
				getTypeOutputInfo(info->target_type, &outfn, &varlena);
				fmgr_info_cxt(outfn, &L->out_fn, L->mcxt);
			}
	}
	L->sample_cap = 0;
}

/* Makes room for one more sample row (the sample grows to TREES_SAMPLE rows). */
static void
sample_reserve(TreeLoad *L, int64 rows)
{
	int64		cap;
	Size		bytes;

	if (rows <= L->sample_cap)
		return;
	cap = Min(Max(L->sample_cap * 2, 8192), TREES_SAMPLE);
	bytes = (Size) cap * L->d * (sizeof(double) + 1) + sizeof(int64) * cap;
	if (bytes > (Size) mlpipe_max_memory_kb * 1024)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("training data needs more than %.1f MB for the next %d-feature rows, over mlpipe.max_memory = %d MB",
							   bytes / 1048576.0, L->d, mlpipe_max_memory_kb / 1024),
						errhint("Raise mlpipe.max_memory, or train on a sample of the source.")));
	L->sample = L->sample ? repalloc_huge(L->sample, sizeof(double) * cap * L->d)
		: MemoryContextAllocHuge(L->mcxt, sizeof(double) * cap * L->d);
	L->sample_src = L->sample_src ? repalloc_huge(L->sample_src, sizeof(int64) * cap)
		: MemoryContextAllocHuge(L->mcxt, sizeof(int64) * cap);
	L->sample_cap = cap;
}

/* Pass 1: reservoir sample (Algorithm R); while it holds every row, keep targets. */
static void
pass1_row(void *arg, const double *x, const SourceTarget *t, int64 rowno)
{
	TreeLoad   *L = arg;
	int64		slot;

	if (L->seen < TREES_SAMPLE)
	{
		sample_reserve(L, L->seen + 1);
		slot = L->seen;
		L->sample_src[slot] = load_target(L, t, rowno) ? L->n++ : -1;
	}
	else
	{
		L->sample_is_all = false;
		slot = (int64) ml_rng_below(&L->rng, (uint64) L->seen + 1);
		if (slot >= TREES_SAMPLE)
			slot = -1;
	}
	if (slot >= 0)
		memcpy(L->sample + (Size) slot * L->d, x, sizeof(double) * L->d);
	L->seen++;
}

/* Pass 2 reads the source again: it must have the shape pass 1 saw. */
static void
pass2_plan(void *arg, const SourceInfo *info)
{
	TreeLoad   *L = arg;

	if (info->d != L->d || getBaseType(info->target_type) != L->target_type)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("the source changed between the two passes over it (%d features, then %d)",
							   L->d, info->d),
						errhint("Train from a table, or a query whose result does not change between reads.")));
}

/* Pass 2: bin each row with a target straight into B. */
static void
pass2_row(void *arg, const double *x, const SourceTarget *t, int64 rowno)
{
	TreeLoad   *L = arg;

	if (!load_target(L, t, rowno))
		return;
	if (L->B == NULL)
		L->B = MemoryContextAllocHuge(L->mcxt, (Size) L->cap * L->d);
	trees_bins_apply_row(L->bins, x, L->B + (Size) L->n * L->d);
	L->n++;
}

static int	cmp_label_ptrs(const void *a, const void *b);
static const char *const *sort_labels_base;

static int
cmp_label_ptrs(const void *a, const void *b)
{
	return strcmp(sort_labels_base[*(const int32 *) a], sort_labels_base[*(const int32 *) b]);
}

static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return (x > y) - (x < y);
}

/*
 * Decides the task and turns the targets into final class indices (labels
 * sorted as text, or numerically for integer targets) or values.
 */
static MlTask
finish_targets(TreeLoad *L, const char *task_param, const char *target, char ***classes_out,
			   int *n_classes_out)
{
	int64		i;

	*classes_out = NULL;
	*n_classes_out = 0;
	if (L->classify_by_type)
	{
		int32	   *order = palloc(sizeof(int32) * Max(L->n_labels, 1));
		int32	   *remap = palloc(sizeof(int32) * Max(L->n_labels, 1));
		char	  **sorted = palloc(sizeof(char *) * Max(L->n_labels, 1));
		int			c;

		if (task_param && strcmp(task_param, "regression") == 0)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("target \"%s\" has type %s, which cannot be a regression target",
								   target, format_type_be(L->target_type))));
		for (c = 0; c < L->n_labels; c++)
			order[c] = c;
		sort_labels_base = (const char *const *) L->labels;
		qsort(order, L->n_labels, sizeof(int32), cmp_label_ptrs);
		for (c = 0; c < L->n_labels; c++)
		{
			remap[order[c]] = c;
			sorted[c] = L->labels[order[c]];
		}
		for (i = 0; i < L->n; i++)
			L->yl[i] = remap[L->yl[i]];
		*classes_out = sorted;
		*n_classes_out = L->n_labels;
		return ML_TASK_CLASSIFY;
	}
	/* Numeric target: classification when asked, or an integer with few values. */
	{
		double	   *distinct = palloc(sizeof(double) * (INT_CLASS_LIMIT + 1));
		int			nd = 0,
					c;
		bool		classify;
		bool		forced = task_param && strcmp(task_param, "classification") == 0;

		for (i = 0; i < L->n && nd <= INT_CLASS_LIMIT; i++)
		{
			for (c = 0; c < nd; c++)
				if (distinct[c] == L->yv[i])
					break;
			if (c == nd && nd <= INT_CLASS_LIMIT)
			{
				if (nd == INT_CLASS_LIMIT)
				{
					nd++;
					break;
				}
				distinct[nd++] = L->yv[i];
			}
		}
		classify = task_param ? forced : (L->int_target && nd <= INT_CLASS_LIMIT);
		if (!classify)
			return ML_TASK_REGRESS;
		if (nd > INT_CLASS_LIMIT)
		{
			/* Forced classification with many values: collect them all. */
			HTAB	   *seen;
			HASHCTL		ctl;

			memset(&ctl, 0, sizeof(ctl));
			ctl.keysize = sizeof(double);
			ctl.entrysize = sizeof(double);
			ctl.hcxt = CurrentMemoryContext;
			seen = hash_create("mlpipe target values", 1024, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
			nd = 0;
			distinct = NULL;
			for (i = 0; i < L->n; i++)
			{
				bool		found;

				hash_search(seen, &L->yv[i], HASH_ENTER, &found);
				if (!found)
				{
					if (nd >= ML_MAX_CLASSES)
						ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
										errmsg("the target has more than %d distinct classes", ML_MAX_CLASSES)));
					distinct = distinct ? repalloc(distinct, sizeof(double) * (nd + 1)) : palloc(sizeof(double));
					distinct[nd++] = L->yv[i];
				}
			}
		}
		qsort(distinct, nd, sizeof(double), cmp_double);
		if (L->yl == NULL)
			L->yl = MemoryContextAllocHuge(L->mcxt, sizeof(int32) * Max(L->n, 1));
		*classes_out = palloc(sizeof(char *) * nd);
		for (c = 0; c < nd; c++)
			(*classes_out)[c] = L->int_target ? psprintf(INT64_FORMAT, (int64) distinct[c])
				: float8out_internal(distinct[c]);	/* shortest exact text: 0.1, not 0.1000...01 */
		for (i = 0; i < L->n; i++)
		{
			double	   *hit = bsearch(&L->yv[i], distinct, nd, sizeof(double), cmp_double);

			L->yl[i] = (int32) (hit - distinct);
		}
		*n_classes_out = nd;
		return ML_TASK_CLASSIFY;
	}
}

/*
 * Marks test rows: stratified (per class, seeded shuffle, round(test_size *
 * count) each) or random (ceil(test_size * n), as train_test_split).
 */
/* Row order of a time split: by time, then by position in the source. */
static const double *time_order_base;

static int
cmp_time_rows(const void *a, const void *b)
{
	int64		i = *(const int64 *) a,
				j = *(const int64 *) b;
	double		x = time_order_base[i],
				y = time_order_base[j];

	if (x != y)
		return (x > y) - (x < y);
	return (i > j) - (i < j);
}

/*
 * Marks the test rows of a time split (the last ceil(test_size * n) rows
 * by time, ties in source order) or a column split (rows where the column
 * is true).
 */
static uint8 *
choose_test_rows_by_column(int64 n, const double *sv, SplitColKind kind, const char *column,
						   double test_size, int64 *n_test_out)
{
	uint8	   *is_test = palloc_extended(Max(n, 1), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	int64		i,
				n_test = 0;

	if (kind == SPLIT_COL_BOOL)
	{
		for (i = 0; i < n; i++)
			if (sv[i] != 0)
			{
				is_test[i] = 1;
				n_test++;
			}
		if (n_test == 0 || n_test == n)
			ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
							errmsg("split column \"%s\" is %s in every row with a target",
								   column, n_test == 0 ? "false or NULL" : "true"),
							errhint("The column must be true for the test rows and false for the training rows.")));
	}
	else
	{
		int64	   *idx = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(int64) * Max(n, 1));
		int64		take = (int64) ceil(test_size * n - 1e-9);

		if (take >= n)
			take = n - 1;
		for (i = 0; i < n; i++)
			idx[i] = i;
		time_order_base = sv;
		qsort(idx, n, sizeof(int64), cmp_time_rows);
		for (i = n - take; i < n; i++)
			is_test[idx[i]] = 1;
		n_test = take;
		pfree(idx);
	}
	*n_test_out = n_test;
	return is_test;
}

static uint8 *
choose_test_rows(int64 n, const int32 *yl, int n_classes, bool stratified, double test_size,
				 uint64 seed, int64 *n_test_out)
{
	uint8	   *is_test = palloc_extended(Max(n, 1), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	int64	   *idx;
	MlRng		rng;
	int64		i,
				n_test = 0;

	ml_rng_seed(&rng, seed ^ UINT64CONST(0x5eed5b117));
	if (test_size <= 0)
	{
		*n_test_out = 0;
		return is_test;
	}
	idx = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(int64) * Max(n, 1));
	if (stratified)
	{
		int			c;
		int64		m;

		for (c = 0; c < n_classes; c++)
		{
			int64		take;

			m = 0;
			for (i = 0; i < n; i++)
				if (yl[i] == c)
					idx[m++] = i;
			take = (int64) rint(test_size * m);
			if (take >= m && m > 1)
				take = m - 1;
			/* partial Fisher-Yates: the first `take` of a seeded shuffle */
			for (i = 0; i < take; i++)
			{
				int64		j = i + (int64) ml_rng_below(&rng, (uint64) (m - i));
				int64		tmp = idx[i];

				idx[i] = idx[j];
				idx[j] = tmp;
				is_test[idx[i]] = 1;
			}
			n_test += take;
		}
	}
	else
	{
		int64		take = (int64) ceil(test_size * n);

		if (take >= n)
			take = n - 1;
		for (i = 0; i < n; i++)
			idx[i] = i;
		for (i = 0; i < take; i++)
		{
			int64		j = i + (int64) ml_rng_below(&rng, (uint64) (n - i));
			int64		tmp = idx[i];

			idx[i] = idx[j];
			idx[j] = tmp;
			is_test[idx[i]] = 1;
		}
		n_test = take;
	}
	pfree(idx);
	*n_test_out = n_test;
	return is_test;
}

/*
 * The value that routes like bin `code` of feature j: its upper edge. The
 * last bin gets the smallest double above the last edge, not +Inf, because
 * a split that only separates missing from present values uses DBL_MAX as
 * its threshold.
 */
static inline double
bin_value(const TreeBins *bins, int j, int code)
{
	int			nb = bins->n_bins[j];

	if (code >= nb)
		return NAN;				/* the missing code */
	if (code == nb - 1)
		return nb == 1 ? 0.0 : nextafter(bins->cuts[(Size) j * 256 + nb - 2], INFINITY);
	return bins->cuts[(Size) j * 256 + code];
}

/* Parses params into TreeParams; every key checked, every value ranged. */
static void
tree_params(cJSON *params, TreeAlgorithm algo, MlTask task,
			int n_classes, TreeParams *tp, double **class_weights)
{
	static const char *const criteria[] = {"gini", "entropy", "squared_error", NULL};
	static const char *const objectives[] = {"binary:logistic", "multi:softmax", "reg:squarederror", NULL};
	cJSON	   *mf,
			   *cw;

	trees_params_default(tp, algo, task);
	tp->seed = params_seed(params);
	tp->max_depth = params_int(params, "max_depth", tp->max_depth, 0, TREES_MAX_DEPTH);
	tp->max_bins = params_int(params, "max_bins", tp->max_bins, 2, TREES_MAX_BINS);
	if (algo != TREE_ALGO_GBT)
	{
		const char *crit = params_choice(params, "criterion", NULL, criteria);

		if (crit)
			tp->criterion = strcmp(crit, "gini") == 0 ? TREE_CRIT_GINI :
				strcmp(crit, "entropy") == 0 ? TREE_CRIT_ENTROPY : TREE_CRIT_SQUARED_ERROR;
		tp->min_samples_leaf = params_int(params, "min_samples_leaf", tp->min_samples_leaf, 1, INT_MAX);
		tp->min_samples_split = params_int(params, "min_samples_split", tp->min_samples_split, 2, INT_MAX);
		tp->ccp_alpha = params_number(params, "ccp_alpha", tp->ccp_alpha, 0, 1e300);
		mf = cJSON_GetObjectItemCaseSensitive(params, "max_features");
		if (mf && cJSON_IsString(mf))
		{
			static const char *const mfs[] = {"sqrt", "log2", "all", NULL};
			const char *v = params_choice(params, "max_features", NULL, mfs);

			tp->max_features = strcmp(v, "sqrt") == 0 ? TREE_MF_SQRT :
				strcmp(v, "log2") == 0 ? TREE_MF_LOG2 : TREE_MF_ALL;
		}
		else if (mf && cJSON_IsNumber(mf))
		{
			double		v = mf->valuedouble;

			/* JSON cannot tell 1 from 1.0: 1 is all features, as scikit-learn's 1.0 */
			if (v > 0 && v <= 1)
			{
				tp->max_features = TREE_MF_FRACTION;
				tp->max_features_value = v;
			}
			else if (v > 1 && v == floor(v))
			{
				tp->max_features = TREE_MF_COUNT;
				tp->max_features_value = v;
			}
			else
				ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								errmsg("parameter \"max_features\" = %g must be a fraction in (0, 1] or a whole count of at least 2", v)));
		}
		else if (mf && !cJSON_IsNull(mf))
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("parameter \"max_features\" must be 'sqrt', 'log2', 'all', a fraction or a count")));
	}
	if (algo != TREE_ALGO_DECISION_TREE)
		tp->n_estimators = params_int(params, "n_estimators", tp->n_estimators, INT_MIN, INT_MAX);
	if (algo == TREE_ALGO_RANDOM_FOREST)
	{
		tp->bootstrap = params_bool(params, "bootstrap", tp->bootstrap);
		tp->oob_score = tp->bootstrap;
	}
	if (algo == TREE_ALGO_GBT)
	{
		const char *obj = params_choice(params, "objective", NULL, objectives);

		if (obj)
			tp->objective = strcmp(obj, "binary:logistic") == 0 ? TREE_OBJ_BINARY_LOGISTIC :
				strcmp(obj, "multi:softmax") == 0 ? TREE_OBJ_MULTI_SOFTMAX : TREE_OBJ_REG_SQUAREDERROR;
		tp->learning_rate = params_number(params, "learning_rate", tp->learning_rate, -1e300, 1e300);
		tp->max_leaves = params_int(params, "max_leaves", tp->max_leaves, 0, TREES_MAX_LEAVES);
		tp->min_child_weight = params_number(params, "min_child_weight", tp->min_child_weight, 0, 1e300);
		tp->l2 = params_number(params, "l2", tp->l2, 0, 1e300);
		tp->gamma = params_number(params, "gamma", tp->gamma, 0, 1e300);
		tp->subsample = params_number(params, "subsample", tp->subsample, -1e300, 1e300);
		tp->colsample = params_number(params, "colsample", tp->colsample, -1e300, 1e300);
		tp->early_stopping_rounds = params_int(params, "early_stopping_rounds", 0, 0, INT_MAX);
	}
	cw = cJSON_GetObjectItemCaseSensitive(params, "class_weight");
	*class_weights = NULL;
	if (cw && !cJSON_IsNull(cw))
	{
		if (task != ML_TASK_CLASSIFY)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("parameter \"class_weight\" applies to classification only")));
		if (cJSON_IsString(cw) && strcmp(cw->valuestring, "balanced") == 0)
			tp->class_weight = TREE_CW_BALANCED;
		else if (cJSON_IsObject(cw))
		{
			int			c;

			/* A map from class label to weight; classes not named weigh 1. */
			tp->class_weight = TREE_CW_GIVEN;
			*class_weights = palloc(sizeof(double) * n_classes);
			for (c = 0; c < n_classes; c++)
				(*class_weights)[c] = 1.0;
		}
		else
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("parameter \"class_weight\" must be 'balanced' or an object mapping class labels to weights")));
	}
}

/* Fills class weights from the map now that the labels are known. */
static void
tree_class_weights(cJSON *params, char **classes, int n_classes, double *w)
{
	cJSON	   *cw = cJSON_GetObjectItemCaseSensitive(params, "class_weight");
	cJSON	   *it;

	cJSON_ArrayForEach(it, cw)
	{
		int			c;

		for (c = 0; c < n_classes; c++)
			if (strcmp(classes[c], it->string) == 0)
				break;
		if (c == n_classes)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("params.class_weight names class \"%s\", which is not in the target", it->string)));
		if (!cJSON_IsNumber(it) || !(it->valuedouble > 0) || !isfinite(it->valuedouble))
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("params.class_weight[\"%s\"] must be a positive number", it->string)));
		w[c] = it->valuedouble;
	}
}

/*
 * params.split: 'random', 'stratified', 'time:<column>' or 'column:<column>'.
 * Returns the text (NULL when absent) and sets the split column, if any.
 */
static const char *
parse_split(cJSON *params, SplitColKind *kind, const char **column)
{
	cJSON	   *v = cJSON_GetObjectItemCaseSensitive(params, "split");
	const char *s;

	*kind = SPLIT_COL_NONE;
	*column = NULL;
	if (v == NULL || cJSON_IsNull(v))
		return NULL;
	s = cJSON_IsString(v) ? v->valuestring : NULL;
	if (s && (strcmp(s, "random") == 0 || strcmp(s, "stratified") == 0))
		return s;
	if (s && strncmp(s, "time:", 5) == 0 && s[5] != '\0')
	{
		*kind = SPLIT_COL_TIME;
		*column = s + 5;
		return s;
	}
	if (s && strncmp(s, "column:", 7) == 0 && s[7] != '\0')
	{
		*kind = SPLIT_COL_BOOL;
		*column = s + 7;
		return s;
	}
	ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("parameter \"split\" has an invalid value%s%s%s",
						   s ? " \"" : "", s ? s : "", s ? "\"" : ""),
					errhint("\"split\" must be one of: random, stratified, time:<column>, column:<boolean column>.")));
	return NULL;				/* keep compiler quiet */
}

void
fit_trees(const char *algorithm, const char *source, const char *target, ArrayType *features,
		  cJSON *params, FitOutput *fo)
{
	static const char *const on_null_names[] = {"skip", "error", NULL};
	static const char *const tasks[] = {"classification", "regression", NULL};
	TreeAlgorithm algo = strcmp(algorithm, "decision_tree") == 0 ? TREE_ALGO_DECISION_TREE :
		strcmp(algorithm, "random_forest") == 0 ? TREE_ALGO_RANDOM_FOREST : TREE_ALGO_GBT;
	const char *const *extra = algo == TREE_ALGO_GBT ? gbt_keys :
		algo == TREE_ALGO_RANDOM_FOREST ? rf_keys : dt_keys;
	const char *allowed[64];
	int			na = 0,
				i;
	TreeLoad	L;
	SourceSpec	spec;
	SourceInfo	info;
	PgEnv		pe;
	MemoryContext mcxt;
	MlError		err = {0};
	HASHCTL		ctl;
	const char *task_param;
	const char *split;
	double		test_size;
	uint64		seed;
	TreeBins	bins;
	MlTask		task;
	char	  **classes;
	int			n_classes;
	TreeParams	tp;
	double	   *class_weights;
	uint8	   *is_test;
	int64		n_test,
				n_train,
				r,
				a,
				b;
	uint8	   *Btrain,
			   *Btest;
	int32	   *yc_train = NULL,
			   *yc_test = NULL;
	double	   *yv_train = NULL,
			   *yv_test = NULL;
	uint8	   *valid_mask = NULL;
	TreeData	data;
	TreeModel	model;
	TreeFitInfo finfo;
	MlMeta		meta;
	MlBuf		buf;
	int64		t0 = pg_env_now_us();
	Size		need;
	bool		stratified;
	int			max_bins;

	for (i = 0; common_keys[i]; i++)
		allowed[na++] = common_keys[i];
	for (i = 0; extra[i]; i++)
		allowed[na++] = extra[i];
	allowed[na] = NULL;
	params_check_keys(params, algorithm, allowed);
	memset(&L, 0, sizeof(L));
	if (target == NULL)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("%s needs a target column", algorithm),
						errhint("Pass target => 'column'.")));
	task_param = params_choice(params, "task", NULL, tasks);
	test_size = params_number(params, "test_size", 0.2, 0, 0.9);
	seed = params_seed(params);
	split = parse_split(params, &L.split_kind, &L.split_column);
	if (L.split_kind == SPLIT_COL_BOOL && cJSON_GetObjectItemCaseSensitive(params, "test_size"))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("parameter \"test_size\" is not used with split = '%s'", split),
						errhint("The split column decides which rows are test rows.")));

	mcxt = AllocSetContextCreate(CurrentMemoryContext, "mlpipe training", ALLOCSET_DEFAULT_SIZES);
	pg_env_init(&pe, mcxt, algorithm, true);
	pe.value_name = "loss";

	/*
	 * Validate what can be validated before reading any data: types and
	 * ranges, with a probe whose data-dependent parts are neutral.
	 */
	{
		double	   *cwtmp;
		TreeParams	probe;

		tree_params(params, algo, ML_TASK_CLASSIFY, 2, &probe, &cwtmp);
		probe.task = task_param && strcmp(task_param, "regression") == 0 ? ML_TASK_REGRESS : ML_TASK_CLASSIFY;
		probe.objective = TREE_OBJ_DEFAULT;
		probe.class_weight = TREE_CW_NONE;
		probe.max_features = TREE_MF_DEFAULT;
		if (trees_params_validate(&probe, ML_MAX_FEATURES, probe.task == ML_TASK_CLASSIFY ? 2 : 0, &err) != ML_OK)
			ml_ereport(&err);
		max_bins = probe.max_bins;
	}

	L.mcxt = mcxt;
	L.pe = &pe;
	L.on_null_error = strcmp(params_choice(params, "on_null", "skip", on_null_names), "error") == 0;
	L.sample_is_all = true;
	ml_rng_seed(&L.rng, seed);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(((LabelEntry *) 0)->key);
	ctl.entrysize = sizeof(LabelEntry);
	ctl.hcxt = mcxt;
	L.label_ids = hash_create("mlpipe labels", 256, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);

	memset(&spec, 0, sizeof(spec));
	spec.source = source;
	spec.target = target;
	spec.features = features;
	spec.exclude = params_exclude(params);
	spec.skip_invalid = false;
	spec.missing_ok = true;
	spec.algorithm = algorithm;
	spec.split_column = L.split_column;
	spec.split_kind = L.split_kind;
	spec.on_plan = pass1_plan;

	source_scan(&spec, mcxt, pass1_row, &L, &info);
	if (L.n == 0 && L.sample_is_all)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("the target \"%s\" is NULL in all " INT64_FORMAT " rows", target, info.n)));

	/* Bin edges from the sample (every row, when the source fits in it). */
	{
		/*
		 * Edges feature by feature, from one column of the sample at a time:
		 * a column-major copy of the whole sample would double pass 1's memory.
		 */
		int64		ns = Min(L.seen, TREES_SAMPLE);
		double	   *col = MemoryContextAllocHuge(mcxt, sizeof(double) * Max(ns, 1));
		int64		row;
		int			j;

		bins.d = L.d;
		bins.n_bins = ml_alloc(&pe.env, sizeof(uint16_t) * L.d);
		bins.cuts = ml_alloc(&pe.env, sizeof(double) * 256 * L.d);
		if (bins.n_bins == NULL || bins.cuts == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory for bin edges")));
		for (j = 0; j < L.d; j++)
		{
			TreeBins	one;

			for (row = 0; row < ns; row++)
				col[row] = L.sample[(Size) row * L.d + j];
			ML_CHECK_STATUS(trees_bins_fit(&pe.env, col, ns, 1, max_bins, 0, seed, &one, &err), &err);
			bins.n_bins[j] = one.n_bins[0];
			memcpy(bins.cuts + (Size) j * 256, one.cuts, sizeof(double) * 256);
			trees_bins_free(&pe.env, &one);
		}
		pfree(col);
		if (L.sample_is_all)
		{
			/* Every row is in the sample: bin it, in source order, with its target. */
			L.B = MemoryContextAllocHuge(mcxt, (Size) Max(L.n, 1) * L.d);
			for (row = 0; row < ns; row++)
				if (L.sample_src[row] >= 0)
					trees_bins_apply_row(&bins, L.sample + (Size) row * L.d,
										 L.B + (Size) L.sample_src[row] * L.d);
		}
	}
	pfree(L.sample);
	L.sample = NULL;
	if (!L.sample_is_all)
	{
		/* pass 2: read again, binning as rows arrive */
		Size		bytes = (Size) L.seen * L.d;

		if (bytes * 2 > (Size) mlpipe_max_memory_kb * 1024)
			ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
							errmsg("training needs %.1f MB for " INT64_FORMAT " rows x %d binned features, over mlpipe.max_memory = %d MB",
								   bytes * 2 / 1048576.0, L.seen, L.d, mlpipe_max_memory_kb / 1024),
							errhint("Raise mlpipe.max_memory, or train on a sample of the source.")));
		L.n = 0;
		L.skipped_target = 0;
		if (L.yv)
			pfree(L.yv);
		if (L.yl)
			pfree(L.yl);
		if (L.sv)
			pfree(L.sv);
		L.yv = NULL;
		L.yl = NULL;
		L.sv = NULL;
		/* Pass 1 counted the rows: allocate once (it grows only if the source did). */
		L.cap = 0;
		L.B = NULL;
		pfree(L.sample_src);
		L.sample_src = NULL;
		{
			int64		rows = Max(L.seen, 1);

			if (!L.classify_by_type)
				L.yv = MemoryContextAllocHuge(mcxt, sizeof(double) * rows);
			else
				L.yl = MemoryContextAllocHuge(mcxt, sizeof(int32) * rows);
			L.B = MemoryContextAllocHuge(mcxt, (Size) rows * L.d);
			if (L.split_kind != SPLIT_COL_NONE)
				L.sv = MemoryContextAllocHuge(mcxt, sizeof(double) * rows);
			L.cap = rows;
		}
		hash_destroy(L.label_ids);
		L.label_ids = hash_create("mlpipe labels", 256, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
		L.n_labels = 0;
		L.bins = &bins;
		spec.on_plan = pass2_plan;
		source_scan(&spec, mcxt, pass2_row, &L, &info);
	}
	if (L.n == 0)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("the target \"%s\" is NULL in all " INT64_FORMAT " rows", target, info.n)));

	task = finish_targets(&L, task_param, target, &classes, &n_classes);
	if (task == ML_TASK_CLASSIFY && L.yv)
	{
		pfree(L.yv);			/* the class ids are all that is needed now */
		L.yv = NULL;
	}
	if (task == ML_TASK_CLASSIFY && n_classes < 2)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("the target \"%s\" has a single class (\"%s\")", target, classes[0]),
						errhint("Classification needs at least two classes.")));
	tree_params(params, algo, task, n_classes, &tp, &class_weights);
	if (class_weights)
	{
		tree_class_weights(params, classes, n_classes, class_weights);
		tp.class_weights = class_weights;
	}
	ML_CHECK_STATUS(trees_params_validate(&tp, L.d, task == ML_TASK_CLASSIFY ? n_classes : 0, &err), &err);

	/* Split. */
	stratified = split ? strcmp(split, "stratified") == 0 : task == ML_TASK_CLASSIFY;
	if (L.split_kind != SPLIT_COL_NONE)
		stratified = false;
	if (stratified && task != ML_TASK_CLASSIFY)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("split = 'stratified' needs a classification target")));
	if (L.n < 2 && test_size > 0)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("only " INT64_FORMAT " row to train on; a test split needs at least 2", L.n),
						errhint("Set params.test_size = 0 to train on every row.")));
	if (L.split_kind != SPLIT_COL_NONE)
		is_test = choose_test_rows_by_column(L.n, L.sv, L.split_kind, L.split_column, test_size, &n_test);
	else
		is_test = choose_test_rows(L.n, L.yl, n_classes, stratified, test_size, seed, &n_test);
	n_train = L.n - n_test;

	{
		size_t		work = trees_memory_needed(n_train, L.d, task == ML_TASK_CLASSIFY ? n_classes : 0, &tp);
		Size		data_bytes = (Size) (L.n + n_test) * L.d +
			(Size) n_test * Max(n_classes, 1) * sizeof(double);	/* test probabilities */

		need = work > SIZE_MAX - data_bytes ? SIZE_MAX : work + data_bytes;
	}
	if (need > (Size) mlpipe_max_memory_kb * 1024)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("training needs %.1f MB, over mlpipe.max_memory = %d MB",
							   need / 1048576.0, mlpipe_max_memory_kb / 1024),
						errhint("Raise mlpipe.max_memory, or train on a sample of the source.")));

	/*
	 * Partition in place: test rows are copied out, training rows slide
	 * forward (the write position never passes the read position), so the
	 * peak is the binned matrix plus the test share, not twice the matrix.
	 */
	Btest = MemoryContextAllocHuge(mcxt, (Size) Max(n_test, 1) * L.d);
	if (task == ML_TASK_CLASSIFY)
		yc_test = MemoryContextAllocHuge(mcxt, sizeof(int32) * Max(n_test, 1));
	else
		yv_test = MemoryContextAllocHuge(mcxt, sizeof(double) * Max(n_test, 1));
	for (r = 0, a = 0, b = 0; r < L.n; r++)
	{
		if (is_test[r])
		{
			memcpy(Btest + (Size) b * L.d, L.B + (Size) r * L.d, L.d);
			if (yc_test)
				yc_test[b] = L.yl[r];
			else
				yv_test[b] = L.yv[r];
			b++;
		}
		else
		{
			if (a != r)
			{
				memcpy(L.B + (Size) a * L.d, L.B + (Size) r * L.d, L.d);
				if (task == ML_TASK_CLASSIFY)
					L.yl[a] = L.yl[r];
				else
					L.yv[a] = L.yv[r];
			}
			a++;
		}
	}
	Btrain = L.B;
	yc_train = task == ML_TASK_CLASSIFY ? L.yl : NULL;
	yv_train = task == ML_TASK_CLASSIFY ? NULL : L.yv;
	pfree(is_test);

	/* Early stopping watches a validation part of the training rows. */
	if (tp.early_stopping_rounds > 0)
	{
		double		vs = params_number(params, "validation_size", 0.1, 0.01, 0.5);
		MlRng		vr;

		valid_mask = palloc_extended(Max(n_train, 1), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
		ml_rng_seed(&vr, seed ^ UINT64CONST(0x7a11d));
		for (r = 0; r < n_train; r++)
			valid_mask[r] = ml_rng_uniform(&vr) < vs;
	}
	else if (cJSON_GetObjectItemCaseSensitive(params, "validation_size"))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("parameter \"validation_size\" is only used with early_stopping_rounds")));

	memset(&data, 0, sizeof(data));
	data.B = Btrain;
	data.n = n_train;
	data.d = L.d;
	data.bins = &bins;
	data.y_class = yc_train;
	data.n_classes = task == ML_TASK_CLASSIFY ? n_classes : 0;
	data.y = yv_train;
	data.valid_mask = valid_mask;
	tp.task = task;
	ML_CHECK_STATUS(trees_fit(&pe.env, &data, &tp, &model, &finfo, &err), &err);

	/* Evaluate on the test rows, or on the training rows with test_size 0. */
	fo->metrics = cJSON_CreateObject();
	{
		/* test_size 0: training metrics, on the training rows (said in info) */
		const uint8 *Be = n_test > 0 ? Btest : Btrain;
		int64		ne = n_test > 0 ? n_test : n_train;
		const int32 *yce = n_test > 0 ? yc_test : yc_train;
		const double *yve = n_test > 0 ? yv_test : yv_train;
		double	   *x = palloc(sizeof(double) * L.d);
		double	   *out = palloc(sizeof(double) * Max(model.n_outputs, 1));
		int			j;

		if (task == ML_TASK_CLASSIFY && ne > 0)
		{
			int32	   *pred = MemoryContextAllocHuge(mcxt, sizeof(int32) * ne);
			double	   *proba = MemoryContextAllocHuge(mcxt, sizeof(double) * ne * n_classes);
			ClassMetrics cm;

			for (r = 0; r < ne; r++)
			{
				for (j = 0; j < L.d; j++)
					x[j] = bin_value(&bins, j, Be[(Size) r * L.d + j]);
				pred[r] = trees_predict_class(&model, x, proba + (Size) r * n_classes);
			}
			ML_CHECK_STATUS(metrics_classification(&pe.env, yce, pred, proba, ne, n_classes, &cm, &err), &err);
			json_number(fo->metrics, "accuracy", cm.accuracy);
			json_number(fo->metrics, "precision_macro", cm.precision_macro);
			json_number(fo->metrics, "recall_macro", cm.recall_macro);
			json_number(fo->metrics, "f1_macro", cm.f1_macro);
			json_number(fo->metrics, "f1_weighted", cm.f1_weighted);
			json_number(fo->metrics, "log_loss", cm.log_loss);
			json_number(fo->metrics, "roc_auc", cm.roc_auc);
		}
		else if (ne > 0)
		{
			double	   *pred = MemoryContextAllocHuge(mcxt, sizeof(double) * ne);
			RegMetrics	rm;

			for (r = 0; r < ne; r++)
			{
				for (j = 0; j < L.d; j++)
					x[j] = bin_value(&bins, j, Be[(Size) r * L.d + j]);
				trees_predict_row(&model, x, out);
				pred[r] = out[0];
			}
			ML_CHECK_STATUS(metrics_regression(yve, pred, ne, &rm, &err), &err);
			json_number(fo->metrics, "rmse", rm.rmse);
			json_number(fo->metrics, "mae", rm.mae);
			json_number(fo->metrics, "r2", rm.r2);
			json_number(fo->metrics, "mape", rm.mape);
		}
	}
	if (algo == TREE_ALGO_RANDOM_FOREST)
		json_number(fo->metrics, "oob_score", model.oob_score);
	if (algo == TREE_ALGO_GBT)
	{
		json_number(fo->metrics, "best_iteration", model.best_iteration);
		json_number(fo->metrics, "validation_loss", model.valid_loss);
	}
	json_number(fo->metrics, "trees", model.n_trees);
	json_number(fo->metrics, "leaves", finfo.n_leaves);
	json_number(fo->metrics, "training_seconds", (pg_env_now_us() - t0) / 1e6);
	json_number(fo->metrics, "rows", (double) L.n);

	memset(&meta, 0, sizeof(meta));
	meta.task = task;
	meta.n_features = L.d;
	meta.feature_names = info.feature_names;
	meta.n_classes = task == ML_TASK_CLASSIFY ? n_classes : 0;
	meta.class_labels = classes;
	ML_CHECK_STATUS(ml_model_write_trees(&buf, &pe.env, &meta, &model, NULL, &err), &err);

	fo->artifact = palloc(VARHDRSZ + buf.len);
	SET_VARSIZE(fo->artifact, VARHDRSZ + buf.len);
	memcpy(VARDATA(fo->artifact), buf.data, buf.len);
	fo->mcxt = mcxt;
	fo->task = task == ML_TASK_CLASSIFY ? "classification" : "regression";
	fo->features = info.feature_names;
	fo->n_features = L.d;
	fo->classes = classes;
	fo->n_classes = task == ML_TASK_CLASSIFY ? n_classes : 0;

	fo->info = cJSON_CreateObject();
	json_number(fo->info, "training_rows", (double) n_train);
	json_number(fo->info, "test_rows", (double) n_test);
	json_number(fo->info, "skipped_rows", (double) L.skipped_target);
	cJSON_AddStringToObject(fo->info, "metrics_split", n_test > 0 ? "test" : "train");
	cJSON_AddStringToObject(fo->info, "split", L.split_kind != SPLIT_COL_NONE ? split :
							stratified ? "stratified" : "random");
	if (L.split_kind != SPLIT_COL_BOOL)
		json_number(fo->info, "test_size", test_size);
	json_number(fo->info, "seed", (double) seed);
	json_number(fo->info, "threads", pe.env.n_threads);
	json_number(fo->info, "passes", L.sample_is_all ? 1 : 2);
	if (n_test == 0)
		cJSON_AddStringToObject(fo->info, "note", "test_size = 0: the metrics are training metrics");
}
