/*
 * fit_trees.c: training glue for decision_tree, random_forest and gbt.
 *
 * fit_trees runs the phases in order (memory stays near 2x the binned matrix):
 *   check_params    reads and validates what can be checked before any data;
 *   load            pass 1 over the source (fit_trees_load.c): a seeded
 *                   reservoir sample for the bin edges and, while the source
 *                   is no larger than the sample, every row with its target;
 *   preprocess      (params.preprocess or categorical features) fits the
 *                   preprocessing on the training rows of the sample;
 *   bin             bin edges from the sample, then the rows binned (from the
 *                   sample, or by pass 2 for larger sources), one byte per value;
 *   split           task, classes and parameters, then the test rows (src/core/split.c);
 *   partition       the binned rows into a training and a test matrix;
 *   train           the model on the training rows;
 *   evaluate        metrics on the test rows (or the training rows when
 *                   test_size = 0), scored from their bins through each bin's
 *                   upper edge, which routes them exactly as their raw values
 *                   would, since every split threshold is a bin edge;
 *   output          the artifact, metrics and info.
 */
#include "fit_trees_int.h"

#include "miscadmin.h"
#include "utils/memutils.h"

#include "metrics.h"
#include "split.h"

#include <math.h>

/* Test rows scored between two interrupt checks. */
#define SCORE_CHECK_ROWS 256
/* Evaluation rows scored per batch (on mlpipe.threads): 8192, fewer when
 * wide, so a batch's doubles stay within 1 MB; progress and cancel checks
 * still every SCORE_CHECK_ROWS. */
#define SCORE_BLOCK_ROWS(width) Max(8, Min(8192, (128 * 1024) / Max((width), 1)))

/* The state of one training call, phase by phase. */
typedef struct TreeFit
{
	/* the call */
	const char *algorithm;
	TreeAlgorithm algo;
	cJSON	   *params;
	const char *target;
	const char *task_param;		/* params.task, or NULL */
	const char *split;			/* params.split, or NULL */
	double		test_size;
	uint64		seed;
	int			max_bins;
	int64		t0;				/* start, in microseconds */
	MemoryContext mcxt;
	PgEnv		pe;
	/* load */
	TreeLoad	L;
	SourceSpec	spec;
	SourceInfo	info;
	bool		use_prep;
	MlPrep		prep;
	TreeBins	bins;
	/* split */
	MlTask		task;
	char	  **classes;
	int			n_classes;
	TreeParams	tp;
	MlTrace		trace;			/* gbt: per-round losses (training_info) */
	double	   *class_weights;
	bool		stratified;
	uint8	   *is_test;
	int64		n_test;
	int64		n_train;
	/* partition: training rows stay in L.B / L.yl / L.yv */
	uint8	   *Btest;
	int32	   *yc_test;
	double	   *yv_test;
	/* train */
	TreeModel	model;
	TreeFitInfo finfo;
	/* evaluate */
	cJSON	   *metrics_json;
	DecisionParams dp;			/* params.threshold, params.calibrate */
	MlDecision	dec;			/* what the artifact's DECISION section holds */
	uint8	   *Bcal;			/* held-out calibration rows (binned), or NULL */
	int32	   *yc_cal;
	int64		n_cal;
	/* gbt params.warm_start: the parent artifact, or NULL */
	bytea	   *warm;
	MlModel		parent;
	/* evaluate: the quantised walk's bins of every code, or NULL */
	TreeCodeMap *codes;
} TreeFit;

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


/*
 * Decides the task and the classes, reads the tree parameters that depend
 * on them, and chooses the test rows.
 */
static void
trees_task_and_split(TreeFit *F)
{
	TreeLoad   *L = &F->L;
	MlError		err = {0};

	F->task = trees_finish_targets(L, F->task_param, F->target, &F->classes, &F->n_classes);
	CHECK_FOR_INTERRUPTS();		/* each of these phases takes up to ~0.5 s on millions of rows */
	if (F->task == ML_TASK_CLASSIFY && L->yv)
	{
		pfree(L->yv);			/* the class ids are all that is needed now */
		L->yv = NULL;
		trees_release_free_memory();
	}
	if (F->task == ML_TASK_CLASSIFY && F->n_classes < 2)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("the target \"%s\" has a single class (\"%s\")", F->target, F->classes[0]),
						errhint("Classification needs at least two classes.")));
	decision_params_check_task(&F->dp, F->task, F->n_classes, F->target);
	trees_read_params(F->params, F->algo, F->task, F->n_classes, &F->tp, &F->class_weights);
	if (F->class_weights)
	{
		trees_read_class_weights(F->params, F->classes, F->n_classes, F->class_weights);
		F->tp.class_weights = F->class_weights;
	}

	F->stratified = F->split ? strcmp(F->split, "stratified") == 0 : F->task == ML_TASK_CLASSIFY;
	if (L->split_kind != SPLIT_COL_NONE)
		F->stratified = false;
	if (F->stratified && F->task != ML_TASK_CLASSIFY)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("split = 'stratified' needs a classification target")));
	if (L->n < 2 && F->test_size > 0)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("only " INT64_FORMAT " row to train on; a test split needs at least 2", L->n),
						errhint("Set params.test_size = 0 to train on every row.")));
	F->is_test = palloc_extended(Max(L->n, 1), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	if (L->split_kind == SPLIT_COL_BOOL)
	{
		F->n_test = split_test_rows_by_flag(L->n, L->sv, F->is_test);
		if (F->n_test == 0 || F->n_test == L->n)
			ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
							errmsg("split column \"%s\" is %s in every row with a target",
								   L->split_column, F->n_test == 0 ? "false or NULL" : "true"),
							errhint("The column must be true for the test rows and false for the training rows.")));
	}
	else if (L->split_kind == SPLIT_COL_TIME)
		ML_CHECK_STATUS(split_test_rows_by_time(&F->pe.env, L->n, L->sv, F->test_size, F->is_test,
												&F->n_test, &err), &err);
	else
		ML_CHECK_STATUS(split_test_rows(&F->pe.env, L->n, F->stratified ? L->yl : NULL, F->n_classes,
										F->test_size, F->seed, F->is_test, &F->n_test, &err), &err);
}

/* gbt's params.validation_size: only with early stopping, in [0.01, 0.5], 0.1 by default. */
static double
validation_size(cJSON *params, int early_stopping_rounds)
{
	if (early_stopping_rounds > 0)
		return params_number(params, "validation_size", 0.1, 0.01, 0.5);
	if (cJSON_GetObjectItemCaseSensitive(params, "validation_size"))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("parameter \"validation_size\" is only used with early_stopping_rounds")));
	return 0;
}

/*
 * The checks of check_params that need no data: the keys of params, the
 * target, task, test_size, seed, split, on_null, exclude, and every tree
 * parameter whose check does not need the data (a probe whose
 * data-dependent parts are neutral). Also what create_pipeline runs
 * (trees_check_params), so both say the same.
 */
static void
read_params(TreeFit *F)
{
	static const char *const tasks[] = {"classification", "regression", NULL};
	static const char *const on_null_names[] = {"skip", "error", NULL};
	const char *allowed[64];
	double	   *cwtmp;
	TreeParams	probe;
	MlError		err = {0};

	trees_param_keys(F->algorithm, allowed);
	params_check_keys(F->params, F->algorithm, allowed);
	if (F->target == NULL)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("%s needs a target column", F->algorithm),
						errhint("Pass target => 'column'.")));
	F->task_param = params_choice(F->params, "task", NULL, tasks);
	F->test_size = params_number(F->params, "test_size", 0.2, 0, 0.9);
	F->seed = params_seed(F->params);
	F->split = parse_split(F->params, &F->L.split_kind, &F->L.split_column);
	decision_params_read(F->params, &F->dp);
	if (F->L.split_kind == SPLIT_COL_BOOL && cJSON_GetObjectItemCaseSensitive(F->params, "test_size"))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("parameter \"test_size\" is not used with split = '%s'", F->split),
						errhint("The split column decides which rows are test rows.")));
	(void) params_choice(F->params, "on_null", "skip", on_null_names);	/* read again by the load */
	(void) params_exclude(F->params);

	trees_read_params(F->params, F->algo, ML_TASK_CLASSIFY, 2, &probe, &cwtmp);
	probe.task = F->task_param && strcmp(F->task_param, "regression") == 0 ? ML_TASK_REGRESS : ML_TASK_CLASSIFY;
	probe.objective = TREE_OBJ_DEFAULT;
	probe.class_weight = TREE_CW_NONE;
	probe.max_features = TREE_MF_DEFAULT;
	/* a warm start may add 0 rounds (the parent unchanged) */
	if (cJSON_GetObjectItemCaseSensitive(F->params, "warm_start") && probe.n_estimators == 0)
		probe.n_estimators = 1;
	if (trees_params_validate(&probe, ML_MAX_FEATURES, probe.task == ML_TASK_CLASSIFY ? 2 : 0, &err) != ML_OK)
		pg_report_ml_error(&err);
	(void) validation_size(F->params, probe.early_stopping_rounds);
	F->max_bins = probe.max_bins;
}

/* Phase check_params: read_params, then the training's memory context and env. */
static void
check_params(TreeFit *F)
{
	read_params(F);
	F->mcxt = AllocSetContextCreate(CurrentMemoryContext, "mlpipe training", ALLOCSET_DEFAULT_SIZES);
	pg_env_init(&F->pe, F->mcxt, F->algorithm, true);
	pg_env_pool(&F->pe);
}

/* The tree algorithm of a name that fit.c has checked. */
static TreeAlgorithm
tree_algorithm(const char *algorithm)
{
	return strcmp(algorithm, "decision_tree") == 0 ? TREE_ALGO_DECISION_TREE :
		strcmp(algorithm, "random_forest") == 0 ? TREE_ALGO_RANDOM_FOREST : TREE_ALGO_GBT;
}

/* What fit_trees checks before reading data, without data (fit.c's fit_check_params). */
void
trees_check_params(const char *algorithm, cJSON *params, const char *target)
{
	TreeFit		F;

	memset(&F, 0, sizeof(F));
	F.algorithm = algorithm;
	F.algo = tree_algorithm(algorithm);
	F.params = params;
	F.target = target;
	read_params(&F);
}

/* Phase load: pass 1 over the source (fit_trees_load.c). */
static void
load_source(TreeFit *F, const char *source, ArrayType *features, FitOutput *fo)
{
	trees_load_init(&F->L, F->mcxt, &F->pe, F->params, F->seed);
	memset(&F->prep, 0, sizeof(F->prep));
	memset(&F->spec, 0, sizeof(F->spec));
	F->spec.source = source;
	F->spec.target = F->target;
	F->spec.features = features;
	F->spec.exclude = params_exclude(F->params);
	F->spec.skip_invalid = false;
	F->spec.missing_ok = true;
	F->spec.algorithm = F->algorithm;
	F->spec.split_column = F->L.split_column;
	F->spec.split_kind = F->L.split_kind;
	/* The training profile is sampled in pass 1 (pass 2 reads the same rows). */
	if (fo->profile_sample > 0)
		F->spec.profile = profile_create(F->mcxt, fo->profile_sample, F->seed);
	trees_load_pass1(&F->L, &F->spec, &F->info, F->target);
	if (F->spec.profile)
		fo->profile = profile_finish(F->spec.profile);
	F->spec.profile = NULL;
	/* The same rows in any arrival order train the same model. */
	trees_load_order_sample(&F->L);
}

/*
 * Phase preprocess (every row was kept): decides the task and the split
 * now, fits the preprocessing on the training rows and continues with the
 * transformed rows as the sample.
 */
static void
preprocess_sample(TreeFit *F)
{
	TreeLoad   *L = &F->L;
	int64		row;
	double	   *Xt;
	int			d_out;
	char	  **names;

	/* rows with a target, in target order (sample_src only grows) */
	for (row = 0; row < L->seen; row++)
		if (L->sample_src[row] >= 0 && L->sample_src[row] != row)
			memcpy(L->sample + (Size) L->sample_src[row] * L->d, L->sample + (Size) row * L->d,
				   sizeof(double) * L->d);
	CHECK_FOR_INTERRUPTS();
	trees_task_and_split(F);
	CHECK_FOR_INTERRUPTS();
	Xt = prep_fit_transform(&F->pe, F->params, &F->info, L->sample, L->n,
							F->n_test > 0 ? F->is_test : NULL,
							F->task == ML_TASK_CLASSIFY ? L->yl : NULL, F->n_classes,
							F->task == ML_TASK_CLASSIFY ? NULL : L->yv, &F->prep, &d_out, &names);
	pfree(L->sample);
	L->sample = Xt;
	L->d = d_out;
	L->seen = L->n;
	for (row = 0; row < L->n; row++)
		L->sample_src[row] = row;
	F->info.d = d_out;
	F->info.feature_names = names;
}

/*
 * Phase bin: edges feature by feature from the sample (with preprocessing,
 * from its training rows only), one column at a time: a column-major copy
 * of the whole sample would double pass 1's memory. When every row is in
 * the sample, bins them, in the canonical order, with their targets; otherwise
 * pass 2 reads the source again and bins rows as they arrive.
 */
static void
bin_rows(TreeFit *F)
{
	TreeLoad   *L = &F->L;
	TreeBins   *bins = &F->bins;
	int64		ns = L->keep_all ? L->seen : Min(L->seen, TREES_SAMPLE);
	int64		nc;
	double	   *col = MemoryContextAllocHuge(F->mcxt, sizeof(double) * Max(ns, 1));
	int64		row;
	int			j;
	MlError		err = {0};

	bins->d = L->d;
	bins->n_bins = ml_alloc(&F->pe.env, sizeof(uint16_t) * L->d);
	bins->cuts = ml_alloc(&F->pe.env, sizeof(double) * 256 * L->d);
	if (bins->n_bins == NULL || bins->cuts == NULL)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED), errmsg("out of memory for bin edges")));
	for (j = 0; j < L->d; j++)
	{
		TreeBins	one;

		/* a column of every row takes about half a second on 3M rows */
		CHECK_FOR_INTERRUPTS();
		for (row = 0, nc = 0; row < ns; row++)
			if (!F->use_prep || F->n_test == 0 || !F->is_test[row])
				col[nc++] = L->sample[(Size) row * L->d + j];
		CHECK_FOR_INTERRUPTS();
		ML_CHECK_STATUS(trees_bins_fit(&F->pe.env, col, nc, 1, F->max_bins, 0, F->seed, &one, &err), &err);
		bins->n_bins[j] = one.n_bins[0];
		memcpy(bins->cuts + (Size) j * 256, one.cuts, sizeof(double) * 256);
		trees_bins_free(&F->pe.env, &one);
	}
	pfree(col);
	/* warm start: the parent's thresholds become cuts, so its trees route binned rows exactly */
	if (F->warm)
		ML_CHECK_STATUS(trees_bins_add_model_cuts(&F->pe.env, bins, &F->parent.tm, F->max_bins, &err), &err);
	if (L->sample_is_all)
	{
		L->B = MemoryContextAllocHuge(F->mcxt, (Size) Max(L->n, 1) * L->d);
		for (row = 0; row < ns; row++)
			if (L->sample_src[row] >= 0)
				trees_bins_apply_row(bins, L->sample + (Size) row * L->d,
									 L->B + (Size) L->sample_src[row] * L->d);
	}
	trees_load_free_sample(L);
	trees_release_free_memory();
	if (!L->sample_is_all)
	{
		trees_load_pass2(L, &F->spec, &F->info, bins);
		trees_load_order_rows(L);
	}
	if (L->n == 0)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("the target \"%s\" is NULL in all " INT64_FORMAT " rows", F->target, F->info.n)));
}

/* Checks the final parameters and that training fits in mlpipe.max_memory. */
static void
check_training_memory(TreeFit *F)
{
	TreeLoad   *L = &F->L;
	MlError		err = {0};
	size_t		work;
	Size		data_bytes,
				need;

	ML_CHECK_STATUS(trees_params_validate(&F->tp, L->d, F->task == ML_TASK_CLASSIFY ? F->n_classes : 0, &err), &err);
	F->n_train = L->n - F->n_test;
	work = trees_memory_needed(F->n_train, L->d, F->task == ML_TASK_CLASSIFY ? F->n_classes : 0, &F->tp);
	data_bytes = (Size) (L->n + F->n_test) * L->d +
		(Size) L->n * (F->task == ML_TASK_CLASSIFY ? sizeof(int32) : sizeof(double)) +	/* targets */
		(Size) F->n_test * Max(F->n_classes, 1) * sizeof(double);	/* test probabilities */
	need = work > SIZE_MAX - data_bytes ? SIZE_MAX : work + data_bytes;
	pg_memory_check((double) need, "Raise mlpipe.max_memory, or train on a sample of the source.",
					"training on " INT64_FORMAT " rows x %d features", L->n, L->d);
}

/*
 * Phase partition, in place: test rows are copied out, training rows slide
 * forward (the write position never passes the read position), so the
 * peak is the binned matrix plus the test share, not twice the matrix.
 */
static void
partition_rows(TreeFit *F)
{
	TreeLoad   *L = &F->L;
	bool		classify = F->task == ML_TASK_CLASSIFY;
	int64		r,
				a,
				b;

	F->Btest = MemoryContextAllocHuge(F->mcxt, (Size) Max(F->n_test, 1) * L->d);
	if (classify)
		F->yc_test = MemoryContextAllocHuge(F->mcxt, sizeof(int32) * Max(F->n_test, 1));
	else
		F->yv_test = MemoryContextAllocHuge(F->mcxt, sizeof(double) * Max(F->n_test, 1));
	for (r = 0, a = 0, b = 0; r < L->n; r++)
	{
		if (F->is_test[r])
		{
			memcpy(F->Btest + (Size) b * L->d, L->B + (Size) r * L->d, L->d);
			if (classify)
				F->yc_test[b] = L->yl[r];
			else
				F->yv_test[b] = L->yv[r];
			b++;
		}
		else
		{
			if (a != r)
			{
				memcpy(L->B + (Size) a * L->d, L->B + (Size) r * L->d, L->d);
				if (classify)
					L->yl[a] = L->yl[r];
				else
					L->yv[a] = L->yv[r];
			}
			a++;
		}
	}
	pfree(F->is_test);
	F->is_test = NULL;
	/* params.calibrate: a calibration set out of the training rows */
	if (classify)
	{
		F->n_cal = decision_carve(&F->dp, &F->pe, L->B, L->yl, F->n_train, L->d, F->seed,
								  &F->Bcal, &F->yc_cal);
		F->n_train -= F->n_cal;
	}
}

/*
 * gbt regression: when every training target is exactly a float, a float
 * copy for the trainer (TreeData.y_float: the same sums, so the same
 * model), and the doubles freed for the fit; NULL otherwise.
 */
static float *
targets_as_floats(TreeFit *F)
{
	TreeLoad   *L = &F->L;
	float	   *yf;
	int64		r;

	if (F->algo != TREE_ALGO_GBT || F->task != ML_TASK_REGRESS)
		return NULL;
	for (r = 0; r < F->n_train; r++)
		if ((double) (float) L->yv[r] != L->yv[r])
			return NULL;		/* also NaN: the trainer reports it */
	yf = MemoryContextAllocHuge(F->mcxt, sizeof(float) * Max(F->n_train, 1));
	for (r = 0; r < F->n_train; r++)
		yf[r] = (float) L->yv[r];
	pfree(L->yv);
	L->yv = NULL;
	trees_release_free_memory();
	return yf;
}

/*
 * After the fit: the double targets again where the training metrics need
 * them (test_size 0), from their exact float copy, which is freed.
 */
static void
targets_from_floats(TreeFit *F, float *yf)
{
	int64		r;

	if (F->n_test == 0)
	{
		F->L.yv = MemoryContextAllocHuge(F->mcxt, sizeof(double) * Max(F->n_train, 1));
		for (r = 0; r < F->n_train; r++)
			F->L.yv[r] = yf[r];
	}
	pfree(yf);
}

/*
 * Phase train: fits the model on the training rows (early stopping watches
 * a seeded validation part of them), then frees the working set and, when
 * a test split is scored, the training matrix.
 */
static void
train_model(TreeFit *F)
{
	TreeLoad   *L = &F->L;
	uint8	   *valid_mask = NULL;
	TreeData	data;
	MlError		err = {0};
	float	   *yf = targets_as_floats(F);
	int64		r;

	if (F->tp.early_stopping_rounds > 0)
	{
		double		vs = validation_size(F->params, F->tp.early_stopping_rounds);
		MlRng		vr;

		valid_mask = palloc_extended(Max(F->n_train, 1), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
		ml_rng_seed(&vr, F->seed ^ UINT64CONST(0x7a11d));
		for (r = 0; r < F->n_train; r++)
			valid_mask[r] = ml_rng_uniform(&vr) < vs;
	}

	memset(&data, 0, sizeof(data));
	data.B = L->B;
	data.n = F->n_train;
	data.d = L->d;
	data.bins = &F->bins;
	data.y_class = F->task == ML_TASK_CLASSIFY ? L->yl : NULL;
	data.n_classes = F->task == ML_TASK_CLASSIFY ? F->n_classes : 0;
	data.y = F->task == ML_TASK_CLASSIFY ? NULL : L->yv;
	data.y_float = yf;
	data.valid_mask = valid_mask;
	F->tp.task = F->task;
	if (F->algo == TREE_ALGO_GBT)
		F->tp.trace = &F->trace;
	ML_CHECK_STATUS(trees_fit(&F->pe.env, &data, &F->tp, &F->model, &F->finfo, &err), &err);
	if (valid_mask)
		pfree(valid_mask);
	if (yf)
		targets_from_floats(F, yf);
	if (F->n_test > 0)
	{
		pfree(L->B);
		L->B = NULL;
	}
	trees_release_free_memory();
}

/* The raw feature values that route like binned row r of B. */
static inline void
unbin_row(const TreeBins *bins, const uint8 *B, int d, int64 r, double *x)
{
	int			j;

	for (j = 0; j < d; j++)
		x[j] = bin_value(bins, j, B[(Size) r * d + j]);
}

/*
 * Before scoring binned rows: where the model has a quantised walk, the
 * bin each code of each feature falls in there (from the value the code
 * stands for), so rows are scored from their codes (F->codes).
 */
static void
code_map_build(TreeFit *F)
{
	int			d = F->L.d,
				c,
				j;
	double	   *values = palloc(sizeof(double) * 256 * Max(d, 1));
	MlError		err = {0};

	for (c = 0; c < 256; c++)
		for (j = 0; j < d; j++)
			values[(Size) c * d + j] = bin_value(&F->bins, j, c);
	if (!trees_code_map_build(&F->pe.env, &F->model, values, &F->codes))
		ML_CHECK_STATUS(ml_fail(&err, ML_ERR_MEMORY, "out of memory scoring the evaluation rows"), &err);
	pfree(values);
}

/*
 * Scores binned rows [r0, r0 + nr) of Be (nr <= a block) into out
 * (nr x n_outputs): from their codes (trees_predict_codes) where there is
 * a code map, else rebuilt from their bins into x and walked in blocks of
 * rows per tree; either gives trees_predict_row's bits for the values.
 */
static void
score_binned_rows(TreeFit *F, const uint8 *Be, int64 r0, int nr, double *x, double *out)
{
	int			i;

	if (F->codes)
	{
		trees_predict_codes(&F->pe.env, &F->model, F->codes, Be + (Size) r0 * F->L.d, nr, out);
		return;
	}
	for (i = 0; i < nr; i++)
		unbin_row(&F->bins, Be + (Size) r0 * F->L.d, F->L.d, i, x + (Size) i * F->L.d);
	trees_predict_batch(&F->pe.env, &F->model, x, nr, out);
}

/*
 * Phase calibrate (params.calibrate): scores the held-out calibration rows
 * and fits the calibration of class 1's probability on them.
 */
static void
calibrate_model(TreeFit *F)
{
	double	   *score,
			   *x,
			   *out;
	int64		r;

	if (F->n_cal == 0)
		return;
	score = MemoryContextAllocHuge(F->mcxt, sizeof(double) * F->n_cal);
	x = palloc(sizeof(double) * F->L.d);
	out = palloc(sizeof(double) * Max(F->model.n_outputs, 2));
	for (r = 0; r < F->n_cal; r++)
	{
		if (r % SCORE_CHECK_ROWS == 0)
			CHECK_FOR_INTERRUPTS();
		unbin_row(&F->bins, F->Bcal, F->L.d, r, x);
		trees_predict_class(&F->model, x, out);
		score[r] = out[1];
	}
	decision_calibrate_fit(&F->dp, &F->pe, F->yc_cal, score, F->n_cal, &F->dec);
	pfree(F->Bcal);
	pfree(score);
	F->Bcal = NULL;
}

/*
 * Classification metrics of ne binned rows Be with classes yce. Counts and
 * log loss are summed as the rows are scored; only the scores roc_auc sorts
 * are kept (class 1's with two classes, every class's otherwise), not
 * predictions and probabilities. Frees Be once scored. A binary model's
 * threshold (fit_decision.c) decides its predictions once every score is in.
 */
static void
evaluate_classifier(TreeFit *F, uint8 *Be, const int32 *yce, int64 ne)
{
	int			k = F->n_classes;
	Size		w = k == 2 ? 1 : k;
	int64	   *cnt = palloc0(sizeof(int64) * 3 * k);	/* tp, support, predicted */
	double	   *score = MemoryContextAllocHuge(F->mcxt, sizeof(double) * ne * w);
	int			br = SCORE_BLOCK_ROWS(Max(F->L.d, (int) F->model.n_outputs));
	double	   *x = palloc(sizeof(double) * F->L.d * br);
	double	   *outs = palloc(sizeof(double) * Max(F->model.n_outputs, 1) * br);
	double	   *out = outs;
	uint8	   *truth = NULL,
			   *pred = NULL;
	double		ll = 0;
	ClassMetrics cm;
	MlError		err = {0};
	int64		r;

	/* written in full: faulted in at once (ml_populate) */
	ml_populate(score, sizeof(double) * ne * w);
	if (k == 2)
	{
		truth = MemoryContextAllocHuge(F->mcxt, ne);
		pred = MemoryContextAllocHuge(F->mcxt, ne);
		ml_populate(truth, ne);
		ml_populate(pred, ne);
	}
	for (r = 0; r < ne; r++)
	{
		int			c;

		if (r % SCORE_CHECK_ROWS == 0)
			(void) ml_check(&F->pe.env, "scoring the evaluation rows", (int) r, (int) ne, NAN);
		if (r % br == 0)
			score_binned_rows(F, Be, r, (int) Min(ne - r, br), x, outs);
		out = outs + (Size) (r % br) * F->model.n_outputs;
		c = trees_class_of(&F->model, out);
		if (F->dec.method != CAL_NONE)
			c = decision_apply(&F->dec, out[1], out);	/* calibrated, no threshold yet */
		cnt[k + yce[r]]++;
		ll += metrics_log_loss_row(out, k, yce[r]);
		if (k == 2)
		{
			score[r] = out[1];
			truth[r] = yce[r] == 1;
			pred[r] = c;
		}
		else
		{
			memcpy(score + (Size) r * w, out, sizeof(double) * w);
			cnt[2 * k + c]++;
			if (c == yce[r])
				cnt[c]++;
		}
	}
	/* the metrics need the scores, not the matrix */
	pfree(Be);
	trees_release_free_memory();
	if (k == 2)
	{
		decision_choose(&F->dp, &F->pe, truth, score, ne, &F->dec);
		for (r = 0; r < ne; r++)
		{
			if (F->dec.has_threshold)
				pred[r] = score[r] >= F->dec.threshold;
			cnt[2 * k + pred[r]]++;
			if (pred[r] == truth[r])
				cnt[pred[r]]++;
		}
	}
	memset(&cm, 0, sizeof(cm));
	metrics_from_counts(cnt, cnt + k, cnt + 2 * k, k, ne, &cm);
	cm.log_loss = ll / ne;
	if (k == 2)
		ML_CHECK_STATUS(metrics_roc_auc(&F->pe.env, truth, score, ne, &cm.roc_auc, &err), &err);
	else
		ML_CHECK_STATUS(metrics_roc_auc_ovr(&F->pe.env, yce, score, ne, k, &cm.roc_auc, &err), &err);
	params_json_number(F->metrics_json, "accuracy", cm.accuracy);
	params_json_number(F->metrics_json, "precision_macro", cm.precision_macro);
	params_json_number(F->metrics_json, "recall_macro", cm.recall_macro);
	params_json_number(F->metrics_json, "f1_macro", cm.f1_macro);
	params_json_number(F->metrics_json, "f1_weighted", cm.f1_weighted);
	params_json_number(F->metrics_json, "log_loss", cm.log_loss);
	params_json_number(F->metrics_json, "roc_auc", cm.roc_auc);
	if (k == 2)
		decision_binary_metrics(&F->pe, truth, score, pred, ne, &F->dec, F->metrics_json);
}

/* Regression metrics of ne binned rows Be with values yve, by streaming sums. Frees Be. */
static void
evaluate_regressor(TreeFit *F, uint8 *Be, const double *yve, int64 ne)
{
	int			br = SCORE_BLOCK_ROWS(Max(F->L.d, (int) F->model.n_outputs));
	double	   *x = palloc(sizeof(double) * F->L.d * br);
	double	   *out = palloc(sizeof(double) * Max(F->model.n_outputs, 1) * br);
	RegAccum	acc;
	RegMetrics	rm;
	MlError		err = {0};
	int64		r;

	memset(&acc, 0, sizeof(acc));
	for (r = 0; r < ne; r++)
	{
		if (r % SCORE_CHECK_ROWS == 0)
			(void) ml_check(&F->pe.env, "scoring the evaluation rows", (int) r, (int) ne, NAN);
		if (r % br == 0)
			score_binned_rows(F, Be, r, (int) Min(ne - r, br), x, out);
		metrics_reg_add(&acc, yve[r], out[(Size) (r % br) * F->model.n_outputs]);
	}
	pfree(Be);
	trees_release_free_memory();
	ML_CHECK_STATUS(metrics_reg_finish(&acc, &rm, &err), &err);
	params_json_number(F->metrics_json, "rmse", rm.rmse);
	params_json_number(F->metrics_json, "mae", rm.mae);
	params_json_number(F->metrics_json, "r2", rm.r2);
	params_json_number(F->metrics_json, "mape", rm.mape);
}

/*
 * Phase evaluate: metrics on the test rows, or on the training rows with
 * test_size 0 (said in info), then the model's own figures.
 */
static void
evaluate_model(TreeFit *F)
{
	bool		on_test = F->n_test > 0;
	uint8	   *Be = on_test ? F->Btest : F->L.B;
	int64		ne = on_test ? F->n_test : F->n_train;

	F->metrics_json = cJSON_CreateObject();
	if (ne > 0)
		code_map_build(F);
	if (F->task == ML_TASK_CLASSIFY && ne > 0)
		evaluate_classifier(F, Be, on_test ? F->yc_test : F->L.yl, ne);
	else if (ne > 0)
		evaluate_regressor(F, Be, on_test ? F->yv_test : F->L.yv, ne);
	if (ne > 0)
		F->Btest = F->L.B = NULL;
	trees_code_map_free(&F->pe.env, F->codes);
	F->codes = NULL;
	if (F->algo == TREE_ALGO_RANDOM_FOREST)
		params_json_number(F->metrics_json, "oob_score", F->model.oob_score);
	if (F->algo == TREE_ALGO_GBT)
	{
		params_json_number(F->metrics_json, "best_iteration", F->model.best_iteration);
		params_json_number(F->metrics_json, "validation_loss", F->model.valid_loss);
	}
	params_json_number(F->metrics_json, "trees", F->model.n_trees);
	params_json_number(F->metrics_json, "leaves", F->finfo.n_leaves);
	params_json_number(F->metrics_json, "training_seconds", (pg_env_now_us() - F->t0) / 1e6);
	params_json_number(F->metrics_json, "rows", (double) F->L.n);
}

/* Phase output: the artifact, and what fit() reports about the training. */
static void
write_output(TreeFit *F, FitOutput *fo)
{
	MlMeta		meta;
	MlBuf		buf;
	MlError		err = {0};
	int			n_classes = F->task == ML_TASK_CLASSIFY ? F->n_classes : 0;

	memset(&meta, 0, sizeof(meta));
	meta.task = F->task;
	meta.n_features = F->L.d;
	meta.feature_names = F->info.feature_names;
	meta.n_classes = n_classes;
	meta.class_labels = F->classes;
	ML_CHECK_STATUS(ml_model_write_trees(&buf, &F->pe.env, &meta, &F->model,
										 F->use_prep ? &F->prep : NULL, &F->dec, &err), &err);

	fo->metrics = F->metrics_json;
	fo->artifact = palloc(VARHDRSZ + buf.len);
	SET_VARSIZE(fo->artifact, VARHDRSZ + buf.len);
	memcpy(VARDATA(fo->artifact), buf.data, buf.len);
	fo->mcxt = F->mcxt;
	fo->task = F->task == ML_TASK_CLASSIFY ? "classification" : "regression";
	fo->features = F->info.feature_names;
	fo->n_features = F->L.d;
	fo->classes = F->classes;
	fo->n_classes = n_classes;

	fo->info = cJSON_CreateObject();
	params_json_number(fo->info, "training_rows", (double) F->n_train);
	if (F->n_cal > 0)
		params_json_number(fo->info, "calibration_rows", (double) F->n_cal);
	params_json_number(fo->info, "test_rows", (double) F->n_test);
	params_json_number(fo->info, "skipped_rows", (double) F->L.skipped_target);
	cJSON_AddStringToObject(fo->info, "metrics_split", F->n_test > 0 ? "test" : "train");
	source_id_like_json(F->info.id_like, F->info.n_id_like, fo->info);
	cJSON_AddStringToObject(fo->info, "split", F->L.split_kind != SPLIT_COL_NONE ? F->split :
							F->stratified ? "stratified" : "random");
	if (F->L.split_kind != SPLIT_COL_BOOL)
		params_json_number(fo->info, "test_size", F->test_size);
	params_json_number(fo->info, "seed", (double) F->seed);
	params_json_number(fo->info, "threads", F->pe.env.n_threads);
	params_json_number(fo->info, "passes", F->L.sample_is_all ? 1 : 2);
	if (F->n_test == 0)
		cJSON_AddStringToObject(fo->info, "note", "test_size = 0: the metrics are training metrics");
	params_json_trace(fo->info, &F->trace);
	if (F->warm)
		trees_warm_info(fo->info, F->params, &F->parent, F->finfo.rounds);
}

/* Trains a decision_tree, random_forest or gbt model: the phases above, in order. */
void
fit_trees(const char *algorithm, const char *source, const char *target, ArrayType *features,
		  cJSON *params, bytea *warm, FitOutput *fo)
{
	TreeFit		F;

	memset(&F, 0, sizeof(F));
	F.t0 = pg_env_now_us();
	F.algorithm = algorithm;
	F.algo = tree_algorithm(algorithm);
	F.params = params;
	F.target = target;
	F.warm = warm;
	check_params(&F);
	if (warm)
		trees_warm_read(&F.pe, warm, &F.parent);
	load_source(&F, source, features, fo);
	F.use_prep = F.L.keep_all;
	if (warm && F.use_prep)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("params.warm_start cannot be combined with preprocessing (text columns or params.preprocess)")));
	if (warm)
		trees_warm_check_features(&F.parent, F.info.feature_names, F.L.d);
	if (F.use_prep)
		preprocess_sample(&F);
	bin_rows(&F);
	if (!F.use_prep)
		trees_task_and_split(&F);
	if (warm)
	{
		trees_warm_check_target(&F.parent, F.task, F.classes, F.n_classes, &F.tp);
		F.tp.warm_start = &F.parent.tm;
	}
	check_training_memory(&F);
	partition_rows(&F);
	train_model(&F);
	calibrate_model(&F);
	evaluate_model(&F);
	write_output(&F, fo);
}
