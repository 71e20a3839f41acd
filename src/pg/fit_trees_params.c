/*
 * fit_trees_params.c: the params of the tree models (decision_tree,
 * random_forest, gbt): the keys each accepts, their values read into
 * TreeParams with every key checked and every value ranged, and the class
 * weights once the labels are known. fit_trees.c runs the training.
 */
#include "fit_trees_int.h"

#include <limits.h>
#include <math.h>

static const char *const common_keys[] = {
	"seed", "on_null", "exclude", "test_size", "split", "task", "max_depth", "max_bins",
	"class_weight", "preprocess", "threshold", "calibrate", "calibration_size", NULL
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
	"subsample", "colsample", "objective", "early_stopping_rounds", "validation_size", "warm_start", NULL
};

/*
 * Fills allowed (room for 64) with the params keys a tree algorithm accepts
 * (common keys, then its own), NULL-terminated; for check_params and for
 * pipeline checks.
 */
void
trees_param_keys(const char *algorithm, const char **allowed)
{
	const char *const *extra = strcmp(algorithm, "gbt") == 0 ? gbt_keys :
		strcmp(algorithm, "random_forest") == 0 ? rf_keys : dt_keys;
	int			na = 0,
				i;

	for (i = 0; common_keys[i]; i++)
		allowed[na++] = common_keys[i];
	for (i = 0; extra[i]; i++)
		allowed[na++] = extra[i];
	allowed[na] = NULL;
}

/* Parses params into TreeParams; every key checked, every value ranged. */
void
trees_read_params(cJSON *params, TreeAlgorithm algo, MlTask task,
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
void
trees_read_class_weights(cJSON *params, char **classes, int n_classes, double *w)
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
