/*
 * fit_trees_warm.c: gbt params.warm_start in the training glue: reading the
 * parent artifact, the checks that it continues this training (features,
 * task, classes, objective; 22023 with a HINT naming what differs) and
 * what the fit reports about it (lineage, rounds).
 */
#include "fit_trees_int.h"

#include "model.h"

/* Reads the parent artifact of params.warm_start into *parent; it must be gbt. */
void
trees_warm_read(PgEnv *pe, bytea *warm, MlModel *parent)
{
	MlError		err = {0};

	ML_CHECK_STATUS(ml_model_read(&pe->env, (uint8_t *) VARDATA_ANY(warm),
								  VARSIZE_ANY_EXHDR(warm), parent, &err), &err);
	if (parent->kind != ML_KIND_GBT)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("params.warm_start must name a gbt model, not a %s model",
							   ml_kind_name(parent->kind)),
						errhint("Warm-start gbt from a gbt version of the same features and target.")));
	if (parent->prep.n_in > 0)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("params.warm_start cannot continue a model trained with preprocessing")));
}

/* The parent must have the same features, in the same order. */
void
trees_warm_check_features(const MlModel *parent, char **names, int d)
{
	int			j;

	if ((int) parent->meta.n_features != d)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("params.warm_start model has %u features but the source has %d",
							   parent->meta.n_features, d),
						errhint("Train on the parent's features: pass features => the version's feature list.")));
	for (j = 0; j < d; j++)
		if (strcmp(parent->meta.feature_names[j], names[j]) != 0)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("params.warm_start model's feature %d is \"%s\", the source's is \"%s\"",
								   j + 1, parent->meta.feature_names[j], names[j]),
							errhint("Train on the parent's features in the parent's order.")));
}

/* The objective gbt resolves for params.objective, the task and the classes. */
static TreeObjective
resolved_objective(const TreeParams *tp, MlTask task, int n_classes)
{
	if (tp->objective != TREE_OBJ_DEFAULT)
		return tp->objective;
	if (task == ML_TASK_REGRESS)
		return TREE_OBJ_REG_SQUAREDERROR;
	return n_classes == 2 ? TREE_OBJ_BINARY_LOGISTIC : TREE_OBJ_MULTI_SOFTMAX;
}

/* The parent must have this training's task, classes (same labels) and objective. */
void
trees_warm_check_target(const MlModel *parent, MlTask task, char **classes, int n_classes,
						const TreeParams *tp)
{
	static const char *const obj_names[] = {"default", "binary:logistic", "multi:softmax",
	"reg:squarederror"};
	int			c;
	TreeObjective obj = resolved_objective(tp, task, n_classes);

	if (parent->meta.task != task)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("params.warm_start model is a %s model, this training is %s",
							   parent->meta.task == ML_TASK_CLASSIFY ? "classification" : "regression",
							   task == ML_TASK_CLASSIFY ? "classification" : "regression"),
						errhint("Warm-start from a version trained on the same target, or set params.task.")));
	if (task == ML_TASK_CLASSIFY)
	{
		bool		same = (int) parent->meta.n_classes == n_classes;

		for (c = 0; same && c < n_classes; c++)
			same = strcmp(parent->meta.class_labels[c], classes[c]) == 0;
		if (!same)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("params.warm_start model's classes differ from the new rows' (%u classes, the rows have %d)",
								   parent->meta.n_classes, n_classes),
							errhint("The new rows must hold exactly the parent's classes.")));
	}
	if (parent->tm.objective != obj)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("params.warm_start model's objective is %s, this training's is %s",
							   obj_names[parent->tm.objective], obj_names[obj]),
						errhint("Leave params.objective out to continue with the parent's.")));
}

/*
 * What the fit reports: the reference (the registry resolves it into the
 * lineage's parent), the parent's rounds and the rounds added; the trace's
 * iterations continue the parent's numbering.
 */
void
trees_warm_info(cJSON *info, cJSON *params, const MlModel *parent, int rounds_added)
{
	cJSON	   *ws = cJSON_GetObjectItemCaseSensitive(params, "warm_start");
	cJSON	   *trace = cJSON_GetObjectItemCaseSensitive(info, "trace");
	int			parent_rounds = (int) (parent->tm.n_trees / parent->tm.trees_per_round);

	cJSON_AddStringToObject(info, "warm_start", cJSON_IsString(ws) ? ws->valuestring : "(artifact)");
	params_json_number(info, "parent_rounds", parent_rounds);
	params_json_number(info, "rounds_added", rounds_added);
	if (trace)
		params_json_number(trace, "first_iteration", parent_rounds);
}
