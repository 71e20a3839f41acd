/*
 * xgb_import.h: XGBoost JSON models (Booster.save_model("m.json"), XGBoost
 * 1.x format) as mlpipe gbt models.
 *
 * Supported: gradient_booster "gbtree" with numerical splits, objectives
 * binary:logistic, multi:softprob, multi:softmax and reg:squarederror. The
 * model scores like XGBoost: XGBoost routes (float) x < split_condition to
 * the left; mlpipe routes x <= threshold, so each threshold becomes the
 * largest double whose float rounding is below the split condition (exact
 * for every double input, not only for floats). Leaves, thresholds and
 * hessians are XGBoost's float32 values. base_score becomes the margin
 * (logit for binary:logistic, as XGBoost does in float). Trees are put
 * round-robin by class (tree t scores class t % num_class), as mlpipe's
 * scorer expects. sum_hessian is kept as each node's cover for TreeSHAP.
 */
#ifndef XGB_IMPORT_H
#define XGB_IMPORT_H

#include <cjson/cJSON.h>

#include "trees.h"

typedef struct XgbImport
{
	TreeModel	model;			/* ready to score and to trees_write */
	double	   *cover;			/* per node of model.nodes: XGBoost's sum_hessian */
	char	  **feature_names;	/* model.n_features names, or NULL if the document has none */
	char		objective[32];	/* XGBoost's name of the objective */
	int			version[3];		/* XGBoost version that wrote the document */
} XgbImport;

/*
 * Parses a document (len bytes, need not be NUL-terminated) into *out.
 * Unsupported objectives or boosters are ML_ERR_PARAM; anything malformed
 * (not JSON, a missing or mistyped member, arrays of the wrong length,
 * child indices out of range, cycles, shared nodes, feature ids beyond
 * num_feature, non-finite numbers, categorical splits) is ML_ERR_DATA with
 * the JSON path in the message, e.g.
 * "learner.gradient_booster.model.trees[3].left_children[7]". Everything in
 * *out is an env allocation; on failure *out holds nothing.
 */
MlStatus	xgb_import_json(const MlEnv *env, const char *text, size_t len, XgbImport *out,
							MlError *err);
/* The same from a parsed document. */
MlStatus	xgb_import_cjson(const MlEnv *env, const cJSON *root, XgbImport *out, MlError *err);
void		xgb_import_free(const MlEnv *env, XgbImport *imp);

#endif
