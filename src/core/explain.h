/*
 * explain.h: per-row explanations of tree ensembles (exact path-dependent
 * TreeSHAP, Lundberg et al. 2018, Algorithm 2) and of k-means assignments.
 *
 * TreeSHAP needs the COVER of every node: how much training weight reached
 * it (XGBoost: the sum of hessians; CART: the weighted row count). The
 * artifact of tree codec version 1 does not store covers (TreeNode is value,
 * feature, aux), so the caller passes them as a separate array parallel to
 * m->nodes: from the XGBoost importer (sum_hessian), from
 * tree_covers_from_rows() (rows routed through the trees), or, once the
 * codec carries them, from the artifact (see docs/explain.md).
 *
 * What is explained is the model's RAW output, one value per "explained
 * output":
 *   gbt: the margin of each boosting group before sigmoid / softmax,
 *        base_score[c] + sum of the leaves of trees t with t % trees_per_round
 *        == c (binary:logistic: 1 output, the margin of class 1;
 *        multi:softmax: one per class; reg:squarederror: the value);
 *   decision_tree / random_forest: the mean over trees of the leaf value
 *        (regression) or of the leaf class distribution (one output per
 *        class), which is what trees_predict_row returns.
 * Contributions are laid out as XGBoost's pred_contribs: for output c,
 * phi[c * (d + 1) + j] is feature j's contribution and phi[c * (d + 1) + d]
 * the expected value, so each block of d + 1 sums to the raw output.
 * Missing values (NaN) follow each split's default direction.
 */
#ifndef EXPLAIN_H
#define EXPLAIN_H

#include "kmeans.h"
#include "preprocess.h"
#include "trees.h"

/*
 * Deepest tree explained (and imported): the walk recurses once per level
 * and keeps (depth + 2)(depth + 3) / 2 path elements of scratch.
 */
#define TREESHAP_MAX_DEPTH 128

typedef struct TreeExplainer TreeExplainer;

/* Number of explained outputs of a model (see above). */
uint32_t	tree_explain_n_outputs(const TreeModel *m);

/*
 * The raw output of one row x[n_features] into out[tree_explain_n_outputs]:
 * what the contributions plus the expected value add up to.
 */
void		tree_explain_raw(const TreeModel *m, const double *x, double *out);

/*
 * Prepares a model for explanation: cover (one finite value >= 0 per node
 * of m->nodes) gives each child's share of its parent (a node of cover 0
 * splits its share evenly). The explainer borrows m (which must outlive it)
 * and copies what it needs of cover. ML_ERR_DATA for a bad cover or a tree
 * deeper than TREESHAP_MAX_DEPTH,
 * ML_ERR_MEMORY when allocation fails.
 */
MlStatus	tree_explainer_build(const MlEnv *env, const TreeModel *m, const double *cover,
								 TreeExplainer **out, MlError *err);
void		tree_explainer_free(const MlEnv *env, TreeExplainer *ex);

/* The expected value of each explained output (n_outputs values). */
void		tree_explainer_expected(const TreeExplainer *ex, double *out);

/*
 * Contributions of one row: phi[n_outputs * (n_features + 1)], overwritten.
 * Uses the explainer's own scratch: one call at a time per explainer.
 */
void		tree_explain_row(TreeExplainer *ex, const double *x, double *phi);

/*
 * n row-major rows X[i * n_features + j] into phi[i * n_outputs *
 * (n_features + 1) + ...], on up to env->n_threads threads. ML_ERR_MEMORY
 * when scratch cannot be allocated.
 */
MlStatus	tree_explain_batch(const MlEnv *env, TreeExplainer *ex, const double *X,
							   int64_t n, double *phi, MlError *err);

/*
 * Covers from data: *cover_out (an env allocation, one per node of m) is
 * the total weight w[i] (1 when w is NULL) of the rows of X (n row-major
 * rows) that reach each node, NaN following the default side. Run on a
 * decision tree's training rows it gives exactly its training counts; for
 * bootstrap forests or gbt (hessians) it is a stand-in, see explain.h's
 * header. Negative or non-finite weights are ML_ERR_DATA.
 */
MlStatus	tree_covers_from_rows(const MlEnv *env, const TreeModel *m, const double *X,
								  int64_t n, const double *w, double **cover_out,
								  MlError *err);

/*
 * k-means: for one raw row x[d], the cluster it is assigned to (as
 * kmeans_predict; -1 when it cannot be placed, then nothing else is
 * written), *dist2 the squared Euclidean distance to that centroid in the
 * model's working space (standardised and/or unit-normalised as in
 * training), and term[j] each feature's part of it, (z_j - c_j)^2, which
 * sums to *dist2; share[j] = term[j] / *dist2 (0 when the distance is 0).
 * share may be NULL. scratch holds d doubles.
 */
int			kmeans_explain_row(const KmModel *m, const double *x, double *dist2,
							   double *term, double *share, double *scratch);

/*
 * Models with stored preprocessing are explained per original column
 * (explain_groups.c): each raw input column is a group, the elements of an
 * array column ("x[1]", "x[2]", ...) together one; every model feature (an
 * output of the preprocessing) belongs to its column's group.
 */
typedef struct ExplainGroups
{
	uint32_t	n_groups;
	char	  **names;			/* n_groups column names, in input order */
	int32_t    *input;			/* per group: its raw input when it is one numeric
								 * column, else -1 (categories, arrays) */
	uint32_t   *group_of;		/* per model feature (p->n_out): its group */
} ExplainGroups;

/* Builds the groups of p's columns (env allocations). ML_ERR_MEMORY, ML_ERR_DATA. */
MlStatus	explain_groups_build(const MlEnv *env, const MlPrep *p, ExplainGroups *out,
								 MlError *err);
void		explain_groups_free(const MlEnv *env, ExplainGroups *g);

/* out[g] = the sum of phi[j] over the model features j of group g. */
void		explain_groups_sum(const ExplainGroups *g, const double *phi, uint32_t n_features,
							   double *out);

#endif
