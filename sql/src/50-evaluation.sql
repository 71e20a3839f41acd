--------------------------------------------------------------------------
-- 50-evaluation: metric aggregates usable on any table, evaluate,
-- cross_validate and search. See docs/evaluation.md.
--------------------------------------------------------------------------

-- Metric aggregates are pure computations on the caller's own values: they
-- stay executable by PUBLIC. States are mlpipe.agg_state values (00-schema)
-- with combine functions, so every aggregate is PARALLEL SAFE and Citus
-- splits it into partial aggregates on the shards. SSPACE = 8176 keeps the
-- planner's estimate of a state what it was for `internal` (8176 + 16 =
-- 8 kB a group): the same hash-or-sort choices and hash-table limits. A row with a NULL
-- in any argument is ignored; no rows give NULL; an undefined metric (one
-- class for roc_auc, one cluster for silhouette, ...) is NULL.

-- Label metrics: one confusion-matrix state for text, bigint and boolean labels.
CREATE FUNCTION mlpipe_internal._label_trans(mlpipe.agg_state, text, text) RETURNS mlpipe.agg_state
AS 'MODULE_PATHNAME', 'mlpipe_label_trans_text' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._label_trans(mlpipe.agg_state, text, text) IS
    'Transition function of the label metric aggregates.';

CREATE FUNCTION mlpipe_internal._label_trans(mlpipe.agg_state, bigint, bigint) RETURNS mlpipe.agg_state
AS 'MODULE_PATHNAME', 'mlpipe_label_trans_int8' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._label_trans(mlpipe.agg_state, bigint, bigint) IS
    'Transition function of the label metric aggregates.';

CREATE FUNCTION mlpipe_internal._label_trans(mlpipe.agg_state, boolean, boolean) RETURNS mlpipe.agg_state
AS 'MODULE_PATHNAME', 'mlpipe_label_trans_bool' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._label_trans(mlpipe.agg_state, boolean, boolean) IS
    'Transition function of the label metric aggregates.';

CREATE FUNCTION mlpipe_internal._label_combine(mlpipe.agg_state, mlpipe.agg_state) RETURNS mlpipe.agg_state
AS 'MODULE_PATHNAME', 'mlpipe_label_combine' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._label_combine(mlpipe.agg_state, mlpipe.agg_state) IS
    'Combine function of the label metric aggregates (parallel aggregation).';

CREATE FUNCTION mlpipe_internal._accuracy_final(mlpipe.agg_state) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_accuracy_final' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._accuracy_final(mlpipe.agg_state) IS 'Final function of mlpipe.accuracy.';
CREATE AGGREGATE mlpipe.accuracy(y_true text, y_pred text) (
    SFUNC = mlpipe_internal._label_trans, STYPE = mlpipe.agg_state, SSPACE = 8176, FINALFUNC = mlpipe_internal._accuracy_final,
    COMBINEFUNC = mlpipe_internal._label_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE mlpipe.accuracy(text, text) IS 'Share of rows where prediction equals truth.';
CREATE AGGREGATE mlpipe.accuracy(y_true bigint, y_pred bigint) (
    SFUNC = mlpipe_internal._label_trans, STYPE = mlpipe.agg_state, SSPACE = 8176, FINALFUNC = mlpipe_internal._accuracy_final,
    COMBINEFUNC = mlpipe_internal._label_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE mlpipe.accuracy(bigint, bigint) IS
    'Share of rows where prediction equals truth.';
CREATE AGGREGATE mlpipe.accuracy(y_true boolean, y_pred boolean) (
    SFUNC = mlpipe_internal._label_trans, STYPE = mlpipe.agg_state, SSPACE = 8176, FINALFUNC = mlpipe_internal._accuracy_final,
    COMBINEFUNC = mlpipe_internal._label_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE mlpipe.accuracy(boolean, boolean) IS
    'Share of rows where prediction equals truth.';

CREATE FUNCTION mlpipe_internal._precision_macro_final(mlpipe.agg_state) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_precision_macro_final' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._precision_macro_final(mlpipe.agg_state) IS
    'Final function of mlpipe.precision_macro.';
CREATE AGGREGATE mlpipe.precision_macro(y_true text, y_pred text) (
    SFUNC = mlpipe_internal._label_trans, STYPE = mlpipe.agg_state, SSPACE = 8176, FINALFUNC = mlpipe_internal._precision_macro_final,
    COMBINEFUNC = mlpipe_internal._label_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE mlpipe.precision_macro(text, text) IS
    'Precision averaged over the labels present in either column (zero_division 0).';
CREATE AGGREGATE mlpipe.precision_macro(y_true bigint, y_pred bigint) (
    SFUNC = mlpipe_internal._label_trans, STYPE = mlpipe.agg_state, SSPACE = 8176, FINALFUNC = mlpipe_internal._precision_macro_final,
    COMBINEFUNC = mlpipe_internal._label_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE mlpipe.precision_macro(bigint, bigint) IS
    'Precision averaged over the labels present in either column (zero_division 0).';
CREATE AGGREGATE mlpipe.precision_macro(y_true boolean, y_pred boolean) (
    SFUNC = mlpipe_internal._label_trans, STYPE = mlpipe.agg_state, SSPACE = 8176, FINALFUNC = mlpipe_internal._precision_macro_final,
    COMBINEFUNC = mlpipe_internal._label_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE mlpipe.precision_macro(boolean, boolean) IS
    'Precision averaged over the labels present in either column (zero_division 0).';

CREATE FUNCTION mlpipe_internal._recall_macro_final(mlpipe.agg_state) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_recall_macro_final' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._recall_macro_final(mlpipe.agg_state) IS 'Final function of mlpipe.recall_macro.';
CREATE AGGREGATE mlpipe.recall_macro(y_true text, y_pred text) (
    SFUNC = mlpipe_internal._label_trans, STYPE = mlpipe.agg_state, SSPACE = 8176, FINALFUNC = mlpipe_internal._recall_macro_final,
    COMBINEFUNC = mlpipe_internal._label_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE mlpipe.recall_macro(text, text) IS
    'Recall averaged over the labels present in either column (zero_division 0).';
CREATE AGGREGATE mlpipe.recall_macro(y_true bigint, y_pred bigint) (
    SFUNC = mlpipe_internal._label_trans, STYPE = mlpipe.agg_state, SSPACE = 8176, FINALFUNC = mlpipe_internal._recall_macro_final,
    COMBINEFUNC = mlpipe_internal._label_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE mlpipe.recall_macro(bigint, bigint) IS
    'Recall averaged over the labels present in either column (zero_division 0).';
CREATE AGGREGATE mlpipe.recall_macro(y_true boolean, y_pred boolean) (
    SFUNC = mlpipe_internal._label_trans, STYPE = mlpipe.agg_state, SSPACE = 8176, FINALFUNC = mlpipe_internal._recall_macro_final,
    COMBINEFUNC = mlpipe_internal._label_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE mlpipe.recall_macro(boolean, boolean) IS
    'Recall averaged over the labels present in either column (zero_division 0).';

CREATE FUNCTION mlpipe_internal._f1_macro_final(mlpipe.agg_state) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_f1_macro_final' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._f1_macro_final(mlpipe.agg_state) IS 'Final function of mlpipe.f1_macro.';
CREATE AGGREGATE mlpipe.f1_macro(y_true text, y_pred text) (
    SFUNC = mlpipe_internal._label_trans, STYPE = mlpipe.agg_state, SSPACE = 8176, FINALFUNC = mlpipe_internal._f1_macro_final,
    COMBINEFUNC = mlpipe_internal._label_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE mlpipe.f1_macro(text, text) IS
    'F1 averaged over the labels present in either column.';
CREATE AGGREGATE mlpipe.f1_macro(y_true bigint, y_pred bigint) (
    SFUNC = mlpipe_internal._label_trans, STYPE = mlpipe.agg_state, SSPACE = 8176, FINALFUNC = mlpipe_internal._f1_macro_final,
    COMBINEFUNC = mlpipe_internal._label_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE mlpipe.f1_macro(bigint, bigint) IS
    'F1 averaged over the labels present in either column.';
CREATE AGGREGATE mlpipe.f1_macro(y_true boolean, y_pred boolean) (
    SFUNC = mlpipe_internal._label_trans, STYPE = mlpipe.agg_state, SSPACE = 8176, FINALFUNC = mlpipe_internal._f1_macro_final,
    COMBINEFUNC = mlpipe_internal._label_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE mlpipe.f1_macro(boolean, boolean) IS
    'F1 averaged over the labels present in either column.';

CREATE FUNCTION mlpipe_internal._f1_weighted_final(mlpipe.agg_state) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_f1_weighted_final' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._f1_weighted_final(mlpipe.agg_state) IS 'Final function of mlpipe.f1_weighted.';
CREATE AGGREGATE mlpipe.f1_weighted(y_true text, y_pred text) (
    SFUNC = mlpipe_internal._label_trans, STYPE = mlpipe.agg_state, SSPACE = 8176, FINALFUNC = mlpipe_internal._f1_weighted_final,
    COMBINEFUNC = mlpipe_internal._label_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE mlpipe.f1_weighted(text, text) IS
    'F1 per label weighted by the label''s support.';
CREATE AGGREGATE mlpipe.f1_weighted(y_true bigint, y_pred bigint) (
    SFUNC = mlpipe_internal._label_trans, STYPE = mlpipe.agg_state, SSPACE = 8176, FINALFUNC = mlpipe_internal._f1_weighted_final,
    COMBINEFUNC = mlpipe_internal._label_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE mlpipe.f1_weighted(bigint, bigint) IS
    'F1 per label weighted by the label''s support.';
CREATE AGGREGATE mlpipe.f1_weighted(y_true boolean, y_pred boolean) (
    SFUNC = mlpipe_internal._label_trans, STYPE = mlpipe.agg_state, SSPACE = 8176, FINALFUNC = mlpipe_internal._f1_weighted_final,
    COMBINEFUNC = mlpipe_internal._label_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE mlpipe.f1_weighted(boolean, boolean) IS
    'F1 per label weighted by the label''s support.';

CREATE FUNCTION mlpipe_internal._confusion_matrix_final(mlpipe.agg_state) RETURNS jsonb
AS 'MODULE_PATHNAME', 'mlpipe_confusion_matrix_final' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._confusion_matrix_final(mlpipe.agg_state) IS
    'Final function of mlpipe.confusion_matrix.';
CREATE AGGREGATE mlpipe.confusion_matrix(y_true text, y_pred text) (
    SFUNC = mlpipe_internal._label_trans, STYPE = mlpipe.agg_state, SSPACE = 8176, FINALFUNC = mlpipe_internal._confusion_matrix_final,
    COMBINEFUNC = mlpipe_internal._label_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE mlpipe.confusion_matrix(text, text) IS
    'Confusion matrix as jsonb {"labels": [...], "matrix": [[...]]}: rows are true labels, columns predictions.';
CREATE AGGREGATE mlpipe.confusion_matrix(y_true bigint, y_pred bigint) (
    SFUNC = mlpipe_internal._label_trans, STYPE = mlpipe.agg_state, SSPACE = 8176, FINALFUNC = mlpipe_internal._confusion_matrix_final,
    COMBINEFUNC = mlpipe_internal._label_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE mlpipe.confusion_matrix(bigint, bigint) IS
    'Confusion matrix as jsonb {"labels": [...], "matrix": [[...]]}: rows are true labels, columns predictions.';
CREATE AGGREGATE mlpipe.confusion_matrix(y_true boolean, y_pred boolean) (
    SFUNC = mlpipe_internal._label_trans, STYPE = mlpipe.agg_state, SSPACE = 8176, FINALFUNC = mlpipe_internal._confusion_matrix_final,
    COMBINEFUNC = mlpipe_internal._label_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE mlpipe.confusion_matrix(boolean, boolean) IS
    'Confusion matrix as jsonb {"labels": [...], "matrix": [[...]]}: rows are true labels, columns predictions.';

-- precision / recall / f1 of a named positive class (issue #14): the label
-- state again, with the class stored by its own transition functions.
CREATE FUNCTION mlpipe_internal._label_pos_trans(mlpipe.agg_state, text, text, text) RETURNS mlpipe.agg_state
AS 'MODULE_PATHNAME', 'mlpipe_label_pos_trans_text' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._label_pos_trans(mlpipe.agg_state, text, text, text) IS
    'Transition function of precision, recall and f1 for a positive class.';

CREATE FUNCTION mlpipe_internal._label_pos_trans(mlpipe.agg_state, bigint, bigint, bigint) RETURNS mlpipe.agg_state
AS 'MODULE_PATHNAME', 'mlpipe_label_pos_trans_int8' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._label_pos_trans(mlpipe.agg_state, bigint, bigint, bigint) IS
    'Transition function of precision, recall and f1 for a positive class.';

CREATE FUNCTION mlpipe_internal._label_pos_trans(mlpipe.agg_state, boolean, boolean, boolean) RETURNS mlpipe.agg_state
AS 'MODULE_PATHNAME', 'mlpipe_label_pos_trans_bool' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._label_pos_trans(mlpipe.agg_state, boolean, boolean, boolean) IS
    'Transition function of precision, recall and f1 for a positive class.';

CREATE FUNCTION mlpipe_internal._precision_final(mlpipe.agg_state) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_precision_final' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._precision_final(mlpipe.agg_state) IS 'Final function of mlpipe.precision.';
CREATE FUNCTION mlpipe_internal._recall_final(mlpipe.agg_state) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_recall_final' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._recall_final(mlpipe.agg_state) IS 'Final function of mlpipe.recall.';
CREATE FUNCTION mlpipe_internal._f1_final(mlpipe.agg_state) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_f1_final' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._f1_final(mlpipe.agg_state) IS 'Final function of mlpipe.f1.';
CREATE AGGREGATE mlpipe.precision(y_true text, y_pred text, positive text) (
    SFUNC = mlpipe_internal._label_pos_trans, STYPE = mlpipe.agg_state, SSPACE = 8176, FINALFUNC = mlpipe_internal._precision_final,
    COMBINEFUNC = mlpipe_internal._label_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE mlpipe.precision(text, text, text) IS
    'Precision of the positive class: tp / (tp + fp), 0 when nothing is predicted positive.';
CREATE AGGREGATE mlpipe.precision(y_true bigint, y_pred bigint, positive bigint) (
    SFUNC = mlpipe_internal._label_pos_trans, STYPE = mlpipe.agg_state, SSPACE = 8176, FINALFUNC = mlpipe_internal._precision_final,
    COMBINEFUNC = mlpipe_internal._label_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE mlpipe.precision(bigint, bigint, bigint) IS
    'Precision of the positive class: tp / (tp + fp), 0 when nothing is predicted positive.';
CREATE AGGREGATE mlpipe.precision(y_true boolean, y_pred boolean, positive boolean) (
    SFUNC = mlpipe_internal._label_pos_trans, STYPE = mlpipe.agg_state, SSPACE = 8176, FINALFUNC = mlpipe_internal._precision_final,
    COMBINEFUNC = mlpipe_internal._label_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE mlpipe.precision(boolean, boolean, boolean) IS
    'Precision of the positive class: tp / (tp + fp), 0 when nothing is predicted positive.';
CREATE AGGREGATE mlpipe.recall(y_true text, y_pred text, positive text) (
    SFUNC = mlpipe_internal._label_pos_trans, STYPE = mlpipe.agg_state, SSPACE = 8176, FINALFUNC = mlpipe_internal._recall_final,
    COMBINEFUNC = mlpipe_internal._label_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE mlpipe.recall(text, text, text) IS
    'Recall of the positive class: tp / (tp + fn), 0 when the class has no rows.';
CREATE AGGREGATE mlpipe.recall(y_true bigint, y_pred bigint, positive bigint) (
    SFUNC = mlpipe_internal._label_pos_trans, STYPE = mlpipe.agg_state, SSPACE = 8176, FINALFUNC = mlpipe_internal._recall_final,
    COMBINEFUNC = mlpipe_internal._label_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE mlpipe.recall(bigint, bigint, bigint) IS
    'Recall of the positive class: tp / (tp + fn), 0 when the class has no rows.';
CREATE AGGREGATE mlpipe.recall(y_true boolean, y_pred boolean, positive boolean) (
    SFUNC = mlpipe_internal._label_pos_trans, STYPE = mlpipe.agg_state, SSPACE = 8176, FINALFUNC = mlpipe_internal._recall_final,
    COMBINEFUNC = mlpipe_internal._label_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE mlpipe.recall(boolean, boolean, boolean) IS
    'Recall of the positive class: tp / (tp + fn), 0 when the class has no rows.';
CREATE AGGREGATE mlpipe.f1(y_true text, y_pred text, positive text) (
    SFUNC = mlpipe_internal._label_pos_trans, STYPE = mlpipe.agg_state, SSPACE = 8176, FINALFUNC = mlpipe_internal._f1_final,
    COMBINEFUNC = mlpipe_internal._label_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE mlpipe.f1(text, text, text) IS
    'F1 of the positive class: 2 tp / (2 tp + fp + fn), 0 when the class is neither true nor predicted.';
CREATE AGGREGATE mlpipe.f1(y_true bigint, y_pred bigint, positive bigint) (
    SFUNC = mlpipe_internal._label_pos_trans, STYPE = mlpipe.agg_state, SSPACE = 8176, FINALFUNC = mlpipe_internal._f1_final,
    COMBINEFUNC = mlpipe_internal._label_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE mlpipe.f1(bigint, bigint, bigint) IS
    'F1 of the positive class: 2 tp / (2 tp + fp + fn), 0 when the class is neither true nor predicted.';
CREATE AGGREGATE mlpipe.f1(y_true boolean, y_pred boolean, positive boolean) (
    SFUNC = mlpipe_internal._label_pos_trans, STYPE = mlpipe.agg_state, SSPACE = 8176, FINALFUNC = mlpipe_internal._f1_final,
    COMBINEFUNC = mlpipe_internal._label_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE mlpipe.f1(boolean, boolean, boolean) IS
    'F1 of the positive class: 2 tp / (2 tp + fp + fn), 0 when the class is neither true nor predicted.';

-- log_loss: (boolean, float8) binary with p = P(true); (text, float8[], text[])
-- with one probability per class in the order of the classes array.
CREATE FUNCTION mlpipe_internal._log_loss_trans(mlpipe.agg_state, boolean, float8) RETURNS mlpipe.agg_state
AS 'MODULE_PATHNAME', 'mlpipe_log_loss_trans_bool' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._log_loss_trans(mlpipe.agg_state, boolean, float8) IS
    'Transition function of the log_loss aggregates.';

CREATE FUNCTION mlpipe_internal._log_loss_trans(mlpipe.agg_state, text, float8[], text[]) RETURNS mlpipe.agg_state
AS 'MODULE_PATHNAME', 'mlpipe_log_loss_trans_multi' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._log_loss_trans(mlpipe.agg_state, text, float8[], text[]) IS
    'Transition function of the log_loss aggregates.';

CREATE FUNCTION mlpipe_internal._log_loss_combine(mlpipe.agg_state, mlpipe.agg_state) RETURNS mlpipe.agg_state
AS 'MODULE_PATHNAME', 'mlpipe_log_loss_combine' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._log_loss_combine(mlpipe.agg_state, mlpipe.agg_state) IS
    'Combine function of the log_loss aggregates (parallel aggregation).';

CREATE FUNCTION mlpipe_internal._log_loss_final(mlpipe.agg_state) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_log_loss_final' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._log_loss_final(mlpipe.agg_state) IS 'Final function of mlpipe.log_loss.';

CREATE AGGREGATE mlpipe.log_loss(y_true boolean, p float8) (
    SFUNC = mlpipe_internal._log_loss_trans, STYPE = mlpipe.agg_state, SSPACE = 8176, FINALFUNC = mlpipe_internal._log_loss_final,
    COMBINEFUNC = mlpipe_internal._log_loss_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE mlpipe.log_loss(boolean, float8) IS
    'Cross-entropy, as scikit-learn 1.2 (probabilities clipped to [eps, 1-eps], rows renormalised).';

CREATE AGGREGATE mlpipe.log_loss(y_true text, proba float8[], classes text[]) (
    SFUNC = mlpipe_internal._log_loss_trans, STYPE = mlpipe.agg_state, SSPACE = 8176, FINALFUNC = mlpipe_internal._log_loss_final,
    COMBINEFUNC = mlpipe_internal._log_loss_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE mlpipe.log_loss(text, float8[], text[]) IS
    'Cross-entropy, as scikit-learn 1.2 (probabilities clipped to [eps, 1-eps], rows renormalised).';

-- roc_auc: (boolean, float8) binary; (text, float8[], text[]) macro one-vs-rest.
-- The state keeps every (label, score): the AUC needs all of them sorted.
CREATE FUNCTION mlpipe_internal._roc_auc_trans(mlpipe.agg_state, boolean, float8) RETURNS mlpipe.agg_state
AS 'MODULE_PATHNAME', 'mlpipe_roc_auc_trans_bool' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._roc_auc_trans(mlpipe.agg_state, boolean, float8) IS
    'Transition function of the roc_auc aggregates.';

CREATE FUNCTION mlpipe_internal._roc_auc_trans(mlpipe.agg_state, text, float8[], text[]) RETURNS mlpipe.agg_state
AS 'MODULE_PATHNAME', 'mlpipe_roc_auc_trans_multi' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._roc_auc_trans(mlpipe.agg_state, text, float8[], text[]) IS
    'Transition function of the roc_auc aggregates.';

CREATE FUNCTION mlpipe_internal._roc_auc_combine(mlpipe.agg_state, mlpipe.agg_state) RETURNS mlpipe.agg_state
AS 'MODULE_PATHNAME', 'mlpipe_roc_auc_combine' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._roc_auc_combine(mlpipe.agg_state, mlpipe.agg_state) IS
    'Combine function of the roc_auc aggregates (parallel aggregation).';

CREATE FUNCTION mlpipe_internal._roc_auc_final(mlpipe.agg_state) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_roc_auc_final' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._roc_auc_final(mlpipe.agg_state) IS 'Final function of mlpipe.roc_auc.';

CREATE AGGREGATE mlpipe.roc_auc(y_true boolean, score float8) (
    SFUNC = mlpipe_internal._roc_auc_trans, STYPE = mlpipe.agg_state, SSPACE = 8176, FINALFUNC = mlpipe_internal._roc_auc_final,
    COMBINEFUNC = mlpipe_internal._roc_auc_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE mlpipe.roc_auc(boolean, float8) IS
    'Area under the ROC curve: binary (ties at half credit) or macro one-vs-rest over the classes present.';

CREATE AGGREGATE mlpipe.roc_auc(y_true text, proba float8[], classes text[]) (
    SFUNC = mlpipe_internal._roc_auc_trans, STYPE = mlpipe.agg_state, SSPACE = 8176, FINALFUNC = mlpipe_internal._roc_auc_final,
    COMBINEFUNC = mlpipe_internal._roc_auc_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE mlpipe.roc_auc(text, float8[], text[]) IS
    'Area under the ROC curve: binary (ties at half credit) or macro one-vs-rest over the classes present.';

-- average_precision: roc_auc's binary state, a final function of its own.
CREATE FUNCTION mlpipe_internal._average_precision_final(mlpipe.agg_state) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_average_precision_final' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._average_precision_final(mlpipe.agg_state) IS
    'Final function of mlpipe.average_precision.';
CREATE AGGREGATE mlpipe.average_precision(y_true boolean, score float8) (
    SFUNC = mlpipe_internal._roc_auc_trans, STYPE = mlpipe.agg_state, SSPACE = 8176, FINALFUNC = mlpipe_internal._average_precision_final,
    COMBINEFUNC = mlpipe_internal._roc_auc_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE mlpipe.average_precision(boolean, float8) IS
    'Average precision (PR-AUC, step-wise as scikit-learn): sum of (R_i - R_{i-1}) P_i over the thresholds; NULL without a positive.';

-- The ROC and precision-recall curves as rows, from array_agg of truth and score.
CREATE FUNCTION mlpipe.roc_curve(y_true boolean[], score float8[], drop_intermediate boolean DEFAULT true)
    RETURNS TABLE (threshold float8, fpr float8, tpr float8)
AS 'MODULE_PATHNAME', 'mlpipe_roc_curve' LANGUAGE C IMMUTABLE PARALLEL SAFE ROWS 100;
COMMENT ON FUNCTION mlpipe.roc_curve(boolean[], float8[], boolean) IS
    'ROC curve points of a binary scorer (scikit-learn roc_curve): pairs with a NULL are left out.';

CREATE FUNCTION mlpipe.pr_curve(y_true boolean[], score float8[])
    RETURNS TABLE (threshold float8, "precision" float8, recall float8)
AS 'MODULE_PATHNAME', 'mlpipe_pr_curve' LANGUAGE C IMMUTABLE PARALLEL SAFE ROWS 100;
COMMENT ON FUNCTION mlpipe.pr_curve(boolean[], float8[]) IS
    'Precision-recall curve points of a binary scorer (scikit-learn precision_recall_curve), thresholds ascending.';

-- The calibration params.calibrate stores, fitted on any (truth, score) pairs.
CREATE FUNCTION mlpipe.calibration(y_true boolean[], score float8[], method text DEFAULT 'isotonic')
    RETURNS jsonb
AS 'MODULE_PATHNAME', 'mlpipe_calibration' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe.calibration(boolean[], float8[], text) IS
    'Fits a Platt or isotonic calibration of binary scores (as params.calibrate does on its held-out rows); pairs with a NULL are left out.';

-- Regression: rmse, mae, r2, mape (y_true float8, y_pred float8), running sums.
CREATE FUNCTION mlpipe_internal._reg_trans(mlpipe.agg_state, float8, float8) RETURNS mlpipe.agg_state
AS 'MODULE_PATHNAME', 'mlpipe_reg_trans' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._reg_trans(mlpipe.agg_state, float8, float8) IS
    'Transition function of the regression metric aggregates.';

CREATE FUNCTION mlpipe_internal._reg_combine(mlpipe.agg_state, mlpipe.agg_state) RETURNS mlpipe.agg_state
AS 'MODULE_PATHNAME', 'mlpipe_reg_combine' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._reg_combine(mlpipe.agg_state, mlpipe.agg_state) IS
    'Combine function of the regression metric aggregates (parallel aggregation).';

CREATE FUNCTION mlpipe_internal._rmse_final(mlpipe.agg_state) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_rmse_final' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._rmse_final(mlpipe.agg_state) IS 'Final function of mlpipe.rmse.';
CREATE AGGREGATE mlpipe.rmse(y_true float8, y_pred float8) (
    SFUNC = mlpipe_internal._reg_trans, STYPE = mlpipe.agg_state, SSPACE = 8176, FINALFUNC = mlpipe_internal._rmse_final,
    COMBINEFUNC = mlpipe_internal._reg_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE mlpipe.rmse(float8, float8) IS 'Root mean squared error.';

CREATE FUNCTION mlpipe_internal._mae_final(mlpipe.agg_state) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_mae_final' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._mae_final(mlpipe.agg_state) IS 'Final function of mlpipe.mae.';
CREATE AGGREGATE mlpipe.mae(y_true float8, y_pred float8) (
    SFUNC = mlpipe_internal._reg_trans, STYPE = mlpipe.agg_state, SSPACE = 8176, FINALFUNC = mlpipe_internal._mae_final,
    COMBINEFUNC = mlpipe_internal._reg_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE mlpipe.mae(float8, float8) IS 'Mean absolute error.';

CREATE FUNCTION mlpipe_internal._r2_final(mlpipe.agg_state) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_r2_final' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._r2_final(mlpipe.agg_state) IS 'Final function of mlpipe.r2.';
CREATE AGGREGATE mlpipe.r2(y_true float8, y_pred float8) (
    SFUNC = mlpipe_internal._reg_trans, STYPE = mlpipe.agg_state, SSPACE = 8176, FINALFUNC = mlpipe_internal._r2_final,
    COMBINEFUNC = mlpipe_internal._reg_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE mlpipe.r2(float8, float8) IS
    'Coefficient of determination (1 for an exact prediction of a constant truth, else 0 then).';

CREATE FUNCTION mlpipe_internal._mape_final(mlpipe.agg_state) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_mape_final' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._mape_final(mlpipe.agg_state) IS 'Final function of mlpipe.mape.';
CREATE AGGREGATE mlpipe.mape(y_true float8, y_pred float8) (
    SFUNC = mlpipe_internal._reg_trans, STYPE = mlpipe.agg_state, SSPACE = 8176, FINALFUNC = mlpipe_internal._mape_final,
    COMBINEFUNC = mlpipe_internal._reg_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE mlpipe.mape(float8, float8) IS
    'Mean absolute percentage error, dividing by max(abs(y), eps) as scikit-learn (a fraction, not %).';

-- Clustering: silhouette, calinski_harabasz, davies_bouldin (x float8[], label int).
-- The state keeps every point; silhouette is exact, O(n^2).
CREATE FUNCTION mlpipe_internal._points_trans(mlpipe.agg_state, float8[], int) RETURNS mlpipe.agg_state
AS 'MODULE_PATHNAME', 'mlpipe_points_trans' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._points_trans(mlpipe.agg_state, float8[], int) IS
    'Transition function of the clustering metric aggregates.';

CREATE FUNCTION mlpipe_internal._points_combine(mlpipe.agg_state, mlpipe.agg_state) RETURNS mlpipe.agg_state
AS 'MODULE_PATHNAME', 'mlpipe_points_combine' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._points_combine(mlpipe.agg_state, mlpipe.agg_state) IS
    'Combine function of the clustering metric aggregates (parallel aggregation).';

CREATE FUNCTION mlpipe_internal._silhouette_final(mlpipe.agg_state) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_silhouette_final' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._silhouette_final(mlpipe.agg_state) IS 'Final function of mlpipe.silhouette.';
CREATE AGGREGATE mlpipe.silhouette(x float8[], label integer) (
    SFUNC = mlpipe_internal._points_trans, STYPE = mlpipe.agg_state, SSPACE = 8176, FINALFUNC = mlpipe_internal._silhouette_final,
    COMBINEFUNC = mlpipe_internal._points_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE mlpipe.silhouette(float8[], int) IS
    'Mean silhouette coefficient, Euclidean, exact O(n^2).';

CREATE FUNCTION mlpipe_internal._calinski_harabasz_final(mlpipe.agg_state) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_calinski_harabasz_final' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._calinski_harabasz_final(mlpipe.agg_state) IS
    'Final function of mlpipe.calinski_harabasz.';
CREATE AGGREGATE mlpipe.calinski_harabasz(x float8[], label integer) (
    SFUNC = mlpipe_internal._points_trans, STYPE = mlpipe.agg_state, SSPACE = 8176, FINALFUNC = mlpipe_internal._calinski_harabasz_final,
    COMBINEFUNC = mlpipe_internal._points_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE mlpipe.calinski_harabasz(float8[], int) IS
    'Calinski-Harabasz score (between/within dispersion).';

CREATE FUNCTION mlpipe_internal._davies_bouldin_final(mlpipe.agg_state) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_davies_bouldin_final' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._davies_bouldin_final(mlpipe.agg_state) IS
    'Final function of mlpipe.davies_bouldin.';
CREATE AGGREGATE mlpipe.davies_bouldin(x float8[], label integer) (
    SFUNC = mlpipe_internal._points_trans, STYPE = mlpipe.agg_state, SSPACE = 8176, FINALFUNC = mlpipe_internal._davies_bouldin_final,
    COMBINEFUNC = mlpipe_internal._points_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE mlpipe.davies_bouldin(float8[], int) IS
    'Davies-Bouldin score (lower is better).';

-- A source (table or view name, or a query) as a FROM item. Names resolve
-- with the caller's search_path; queries run as the caller.
CREATE FUNCTION mlpipe_internal._eval_from(p_source text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_source IS NULL OR pg_catalog.btrim(p_source) = '' THEN
        RAISE EXCEPTION 'source must not be empty' USING ERRCODE = '22023';
    END IF;
    IF p_source ~* '^[[:space:](]*(select|with|values|table)([[:space:](]|$)' THEN
        RETURN '(' OPERATOR(pg_catalog.||) p_source OPERATOR(pg_catalog.||) E'\n)';
    END IF;
    RETURN p_source::regclass::text;
END $$;
COMMENT ON FUNCTION mlpipe_internal._eval_from(text) IS
    'A source (table or view name, or a query) as a FROM item, resolved as the caller.';
REVOKE ALL ON FUNCTION mlpipe_internal._eval_from(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._eval_from(text) TO mlpipe_trainer;

-- What evaluate needs of a version: names, task, target, features, classes, artifact.
CREATE FUNCTION mlpipe_internal._eval_model(model_ref text,
    OUT model text, OUT version int, OUT algorithm text, OUT task text, OUT target text,
    OUT features text[], OUT classes text[], OUT artifact bytea)
LANGUAGE sql STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT v.model, v.version, v.algorithm, v.task, v.target, v.features, v.classes, v.artifact
      FROM mlpipe.model_versions v, mlpipe.resolve(model_ref) r
     WHERE v.model = r.model AND v.version = r.version
$$;
COMMENT ON FUNCTION mlpipe_internal._eval_model(text) IS
    'What evaluate needs of a version: names, task, target, features, classes and artifact.';
REVOKE ALL ON FUNCTION mlpipe_internal._eval_model(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._eval_model(text) TO mlpipe_trainer;

-- The scoring argument for a source row `s`: the row itself (s.*, which no
-- column of the source can capture, unlike a bare s) when the row
-- form of predict exists (columns matched by name, stored preprocessing
-- applied), else the float8[] of the features in training order (x[i]
-- names an element of array column x).
CREATE FUNCTION mlpipe_internal._eval_input(p_features text[], p_array boolean DEFAULT false) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f text;
    parts text[] := '{}';
    m text[];
BEGIN
    IF NOT p_array AND pg_catalog.to_regprocedure('mlpipe.predict_label(bytea,record)') IS NOT NULL THEN
        RETURN 's.*';
    END IF;
    FOREACH f IN ARRAY p_features LOOP
        m := pg_catalog.regexp_match(f, '^(.*)\[([0-9]+)\]$');
        parts := parts || CASE WHEN m IS NULL THEN pg_catalog.format('s.%I', f)
                               ELSE pg_catalog.format('(s.%I)[%s]', m[1], m[2]) END;
    END LOOP;
    RETURN 'ARRAY[' || pg_catalog.array_to_string(parts, ', ') || ']::float8[]';
END $$;
COMMENT ON FUNCTION mlpipe_internal._eval_input(text[], boolean) IS
    'The SQL of the scoring argument for a source row: the row itself or the float8[] of its features.';
REVOKE ALL ON FUNCTION mlpipe_internal._eval_input(text[], boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._eval_input(text[], boolean) TO mlpipe_trainer;

-- Scores p_from (a FROM item holding the target column) with an artifact and
-- returns the task's metrics (and "rows") as jsonb, through the metric aggregates.
CREATE FUNCTION mlpipe_internal._eval_metrics(p_artifact bytea, p_task text, p_features text[],
    p_classes text[], p_target text, p_from text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    x   text := mlpipe_internal._eval_input(p_features);
    res jsonb;
BEGIN
    IF p_task = 'classification' THEN
        EXECUTE pg_catalog.format($q$
            SELECT pg_catalog.jsonb_build_object(
                'accuracy', mlpipe.accuracy(y, p), 'precision_macro', mlpipe.precision_macro(y, p),
                'recall_macro', mlpipe.recall_macro(y, p), 'f1_macro', mlpipe.f1_macro(y, p),
                'f1_weighted', mlpipe.f1_weighted(y, p), 'log_loss', mlpipe.log_loss(y, pr, $2),
                'roc_auc', mlpipe.roc_auc(y, pr, $2), 'confusion_matrix', mlpipe.confusion_matrix(y, p),
                'rows', pg_catalog.count(*))
                   OPERATOR(pg_catalog.||) CASE WHEN pg_catalog.cardinality($2) OPERATOR(pg_catalog.=) 2 THEN
                   pg_catalog.jsonb_build_object(
                       'precision', mlpipe.precision(y, p, $2[2]), 'recall', mlpipe.recall(y, p, $2[2]),
                       'f1', mlpipe.f1(y, p, $2[2]),
                       'average_precision', mlpipe.average_precision(y OPERATOR(pg_catalog.=) $2[2], pr[2]))
                   ELSE '{}'::jsonb END
              FROM (SELECT (s.%1$I)::text AS y, mlpipe.predict_label($1, %2$s) AS p,
                           mlpipe.predict_proba($1, %2$s) AS pr
                      FROM %3$s s WHERE s.%1$I IS NOT NULL) q$q$, p_target, x, p_from)
            INTO res USING p_artifact, p_classes;
    ELSIF p_task = 'regression' THEN
        EXECUTE pg_catalog.format($q$
            SELECT pg_catalog.jsonb_build_object('rmse', mlpipe.rmse(y, p), 'mae', mlpipe.mae(y, p),
                                      'r2', mlpipe.r2(y, p), 'mape', mlpipe.mape(y, p), 'rows', pg_catalog.count(*))
              FROM (SELECT (s.%1$I)::float8 AS y, mlpipe.predict($1, %2$s) AS p
                      FROM %3$s s WHERE s.%1$I IS NOT NULL) q$q$, p_target, x, p_from)
            INTO res USING p_artifact;
    ELSE
        -- Clustering: the clusters the model assigns, scored on the raw
        -- features; silhouette (O(n^2)) on at most 10,000 rows picked by a
        -- hash of the row, so the figure is reproducible.
        EXECUTE pg_catalog.format($q$
            WITH pts AS MATERIALIZED (
                SELECT %1$s AS x, mlpipe.predict($1, %2$s)::int AS c, pg_catalog.md5(ROW(s.*)::text) AS h FROM %3$s s)
            SELECT pg_catalog.jsonb_build_object(
                'silhouette', (SELECT mlpipe.silhouette(x, c) FROM
                                 (SELECT x, c FROM pts ORDER BY h LIMIT 10000) t),
                'calinski_harabasz', mlpipe.calinski_harabasz(x, c),
                'davies_bouldin', mlpipe.davies_bouldin(x, c), 'rows', pg_catalog.count(*))
              FROM pts$q$, mlpipe_internal._eval_input(p_features, true), x, p_from)
            INTO res USING p_artifact;
    END IF;
    IF (res->>'rows'::text)::bigint = 0 THEN
        RAISE EXCEPTION 'no rows to evaluate%', coalesce(': the source has no row with a non-NULL "' OPERATOR(pg_catalog.||) p_target OPERATOR(pg_catalog.||) '"', '')
            USING ERRCODE = '22000';
    END IF;
    RETURN res;
END $$;
COMMENT ON FUNCTION mlpipe_internal._eval_metrics(bytea, text, text[], text[], text, text) IS
    'Scores a FROM item with an artifact and returns the metrics of the task as jsonb.';
REVOKE ALL ON FUNCTION mlpipe_internal._eval_metrics(bytea, text, text[], text[], text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._eval_metrics(bytea, text, text[], text[], text, text) TO mlpipe_trainer;

-- Finishes a cross-validation or search run that this session user started
-- (status 'running'): status, rows, duration, extra params, and its metrics
-- (one mlpipe.metrics row per numeric value) under the given splits.
CREATE FUNCTION mlpipe_internal._eval_finish_run(p_run bigint, p_rows bigint, p_params jsonb,
    p_metrics jsonb, p_split text, p_metrics2 jsonb DEFAULT NULL, p_split2 text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
BEGIN
    UPDATE mlpipe.runs u
       SET status = 'succeeded', rows = p_rows, params = u.params || coalesce(p_params, '{}'),
           finished_at = pg_catalog.clock_timestamp(), seconds = extract(epoch FROM pg_catalog.clock_timestamp() - u.started_at)
     WHERE u.run_id = p_run AND u.status = 'running' AND u.created_by = session_user
       AND u.kind IN ('cross_validate', 'search', 'search_trial')
    RETURNING u.model, u.version INTO r;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'run % is not a running evaluation run of %', p_run, session_user
            USING ERRCODE = '42501';
    END IF;
    INSERT INTO mlpipe.metrics (run_id, model, version, split, metric, value)
    SELECT p_run, r.model, r.version, m.split, e.key, (e.value)::text::float8
      FROM (VALUES (p_metrics, p_split), (p_metrics2, p_split2)) m(doc, split),
           pg_catalog.jsonb_each(m.doc) e
     WHERE m.doc IS NOT NULL AND pg_catalog.jsonb_typeof(m.doc) = 'object' AND pg_catalog.jsonb_typeof(e.value) = 'number';
END $$;
COMMENT ON FUNCTION mlpipe_internal._eval_finish_run(bigint, bigint, jsonb, jsonb, text, jsonb, text) IS
    'Finishes a cross-validation or search run this session user started: status, rows, duration and metrics.';
REVOKE ALL ON FUNCTION mlpipe_internal._eval_finish_run(bigint, bigint, jsonb, jsonb, text, jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._eval_finish_run(bigint, bigint, jsonb, jsonb, text, jsonb, text) TO mlpipe_trainer;

-- Scores a source with a registered version and logs the run (kind
-- 'evaluate', split 'evaluate'). Returns the task's metrics.
CREATE FUNCTION mlpipe.evaluate(model_ref text, source text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    m       record;
    res     jsonb;
    run     bigint;
    e_state text;
    e_msg   text;
    e_detail text;
    e_hint  text;
BEGIN
    -- Everyone may call it; who may is checked here, to name the role to
    -- grant (issue #12). What it calls stays granted to mlpipe_trainer only.
    IF NOT pg_catalog.pg_has_role(current_user, 'mlpipe_trainer', 'MEMBER') THEN
        RAISE EXCEPTION 'permission denied for function evaluate' USING ERRCODE = '42501',
            HINT = pg_catalog.format('GRANT mlpipe_trainer TO %I;', current_user);
    END IF;
    IF model_ref IS NULL OR source IS NULL THEN
        RAISE EXCEPTION '% must not be NULL', CASE WHEN model_ref IS NULL THEN 'model_ref' ELSE 'source' END
            USING ERRCODE = '22004';
    END IF;
    SELECT * INTO m FROM mlpipe_internal._eval_model(model_ref);
    -- The target missing from the source: say so, not "column s.y does not exist".
    IF m.target IS NOT NULL AND NOT EXISTS (SELECT 1 FROM mlpipe_internal._source_columns(source) s WHERE s.name OPERATOR(pg_catalog.=) m.target) THEN
        RAISE EXCEPTION 'the source has no column "%", the target of %@%', m.target, m.model, m.version
            USING ERRCODE = '42703',
                  HINT = 'Columns: ' OPERATOR(pg_catalog.||) (SELECT pg_catalog.string_agg(s.name, ', ' ORDER BY s.ord) FROM mlpipe_internal._source_columns(source) s) OPERATOR(pg_catalog.||) '.';
    END IF;
    res := mlpipe_internal._eval_metrics(m.artifact, m.task, m.features, m.classes, m.target,
                                mlpipe_internal._eval_from(source));
    -- The confusion matrix (jsonb, not a metric row) rides in the run's
    -- params, for the mlpipe.confusion_matrices view.
    run := mlpipe_internal._log_run('evaluate', m.model, m.version, m.algorithm, source,
                           pg_catalog.jsonb_build_object('model_ref', model_ref)
                           OPERATOR(pg_catalog.||) pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
                               'confusion_matrix', res OPERATOR(pg_catalog.->) 'confusion_matrix'::text)),
                           'succeeded', NULL,
                           (res->>'rows'::text)::bigint, started, NULL, res, 'evaluate');
    RETURN res OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('model', m.model, 'version', m.version, 'run_id', run);
EXCEPTION WHEN OTHERS THEN
    -- The error as the caller should read it (issue #12): its SQLSTATE,
    -- message, detail and hint, with this line as the only context, not
    -- the nested calls and generated statements it came through.
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_msg = MESSAGE_TEXT, e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
    IF e_detail = '' AND e_hint = '' THEN
        RAISE EXCEPTION USING ERRCODE = e_state, MESSAGE = e_msg;
    ELSIF e_detail = '' THEN
        RAISE EXCEPTION USING ERRCODE = e_state, MESSAGE = e_msg, HINT = e_hint;
    ELSIF e_hint = '' THEN
        RAISE EXCEPTION USING ERRCODE = e_state, MESSAGE = e_msg, DETAIL = e_detail;
    END IF;
    RAISE EXCEPTION USING ERRCODE = e_state, MESSAGE = e_msg, DETAIL = e_detail, HINT = e_hint;
END $$;
COMMENT ON FUNCTION mlpipe.evaluate(text, text) IS
    'Scores a source with a registered version and returns the metrics of its task as jsonb.';
REVOKE ALL ON FUNCTION mlpipe.evaluate(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.evaluate(text, text) TO mlpipe_trainer;
GRANT EXECUTE ON FUNCTION mlpipe.evaluate(text, text) TO PUBLIC;

-- k-fold cross-validation. p_kind names the parent run ('cross_validate',
-- or 'search_trial' under a search run p_parent).
CREATE FUNCTION mlpipe_internal._cross_validate(p_algorithm text, p_source text, p_target text,
    p_features text[], p_params jsonb, p_folds int, p_parent bigint, p_kind text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    started   timestamptz := pg_catalog.clock_timestamp();
    fstart    timestamptz;
    src       text;
    ttype     text;
    task      text;
    stratify  boolean;
    n         bigint;
    seed      text;
    fparams   jsonb;
    fit       mlpipe.fit_result;
    fm        jsonb;
    folds_out jsonb := '[]';
    mean      jsonb;
    std       jsonb;
    parent    bigint;
    i         int;
    hashed    text := 's.*';
    e_state   text;
    e_msg     text;
    e_detail  text;
    e_hint    text;
BEGIN
    IF p_algorithm IS NULL OR p_source IS NULL THEN
        RAISE EXCEPTION '% must not be NULL', CASE WHEN p_algorithm IS NULL THEN 'algorithm' ELSE 'source' END
            USING ERRCODE = '22004';
    END IF;
    IF p_target IS NULL OR p_algorithm IN ('kmeans', 'minibatch_kmeans') THEN
        RAISE EXCEPTION 'cross-validation needs a supervised algorithm and a target'
            USING ERRCODE = '22023',
                  HINT = 'Clustering has no held-out truth: compare k-means models by the silhouette that mlpipe.train records.';
    END IF;
    IF p_folds IS NULL OR p_folds < 2 THEN
        RAISE EXCEPTION 'folds = % must be at least 2', coalesce(p_folds::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    p_params := coalesce(p_params, '{}');
    IF pg_catalog.jsonb_typeof(p_params) <> 'object' THEN
        RAISE EXCEPTION 'params must be a JSON object, not %', pg_catalog.jsonb_typeof(p_params) USING ERRCODE = '22023';
    END IF;
    src := mlpipe_internal._eval_from(p_source);
    EXECUTE pg_catalog.format('SELECT pg_catalog.count(*), pg_catalog.format_type(pg_catalog.min(pg_catalog.pg_typeof(s.%1$I)::oid), NULL)
                                 FROM %2$s s WHERE s.%1$I IS NOT NULL', p_target, src)
        INTO n, ttype;
    IF p_folds > n THEN
        RAISE EXCEPTION 'folds = % is more than the % rows with a non-NULL "%"', p_folds, n, p_target
            USING ERRCODE = '22023', HINT = 'Use fewer folds.';
    END IF;
    -- Stratify as training decides the task: text-like and boolean targets,
    -- integers with at most 20 distinct values, or params.task.
    IF p_params ? 'task'::text THEN
        stratify := p_params->>'task'::text = 'classification';
    ELSIF ttype IN ('smallint', 'integer', 'bigint') THEN
        EXECUTE pg_catalog.format('SELECT pg_catalog.count(DISTINCT s.%1$I) <= 20 FROM %2$s s', p_target, src) INTO stratify;
    ELSE
        stratify := ttype NOT IN ('real', 'double precision', 'numeric');
    END IF;
    -- Folds: rows ordered by a hash of (seed, row), by class first when
    -- stratified, dealt round-robin. Identical rows are interchangeable, so
    -- the assignment is reproducible. With features given, the hash covers
    -- only the feature columns and the target, so that other columns of the
    -- source (whatever they are called) do not change the folds.
    seed := coalesce(p_params->>'seed'::text, '0');
    IF p_features IS NOT NULL THEN
        hashed := (SELECT pg_catalog.string_agg(pg_catalog.format('s.%I', u.c), ', ' ORDER BY u.o)
                     FROM (SELECT v.c, pg_catalog.min(v.o) AS o
                             FROM pg_catalog.unnest(pg_catalog.array_append(
                                      ARRAY(SELECT pg_catalog.regexp_replace(f, '\[[0-9]+\]$', '')
                                              FROM pg_catalog.unnest(p_features) f), p_target)) WITH ORDINALITY v(c, o)
                            GROUP BY v.c) u);
    END IF;
    IF pg_catalog.to_regclass('pg_temp._mlpipe_cv_folds') IS NOT NULL THEN
        DROP TABLE pg_temp._mlpipe_cv_folds;
    END IF;
    EXECUTE pg_catalog.format(
        'CREATE TEMP TABLE _mlpipe_cv_folds ON COMMIT DROP AS
         SELECT s.*, ((pg_catalog.row_number() OVER (ORDER BY %1$s pg_catalog.md5($1 OPERATOR(pg_catalog.||) ROW(%5$s)::text)) - 1) %% %2$s::bigint)::int
                AS _mlpipe_fold
           FROM %3$s s WHERE s.%4$I IS NOT NULL',
        CASE WHEN stratify THEN pg_catalog.format('s.%I,', p_target) ELSE '' END, p_folds, src, p_target, hashed)
        USING seed;
    fparams := (p_params - 'test_size'::text - 'split'::text) OPERATOR(pg_catalog.||) '{"test_size": 0}';
    IF p_features IS NULL THEN
        fparams := fparams OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('exclude',
            CASE WHEN pg_catalog.jsonb_typeof(p_params->'exclude'::text) = 'array' THEN p_params->'exclude'::text ELSE '[]' END
            OPERATOR(pg_catalog.||) '["_mlpipe_fold"]');
    END IF;
    parent := mlpipe_internal._log_run(p_kind, NULL, NULL, p_algorithm, p_source,
        pg_catalog.jsonb_build_object('params', p_params, 'folds', p_folds, 'target', p_target,
                           'features', pg_catalog.to_jsonb(p_features), 'stratified', stratify),
        'running', NULL, n, started, p_parent, NULL, NULL);
    FOR i IN 0 .. p_folds - 1 LOOP
        fstart := pg_catalog.clock_timestamp();
        fit := mlpipe_internal._fit(p_algorithm,
            pg_catalog.format('SELECT * FROM pg_temp._mlpipe_cv_folds WHERE _mlpipe_fold <> %s', i),
            p_target, p_features, fparams, NULL);
        task := fit.task;
        fm := mlpipe_internal._eval_metrics(fit.artifact, fit.task, fit.feature_names, fit.classes, p_target,
            pg_catalog.format('(SELECT * FROM pg_temp._mlpipe_cv_folds WHERE _mlpipe_fold = %s)', i));
        fm := pg_catalog.jsonb_build_object('fold', i + 1, 'training_rows', (fit.info->>'training_rows'::text)::bigint) OPERATOR(pg_catalog.||) fm;
        PERFORM mlpipe_internal._log_run('cv_fold', NULL, NULL, p_algorithm, p_source,
            pg_catalog.jsonb_build_object('params', p_params, 'fold', i + 1, 'folds', p_folds),
            'succeeded', NULL, (fm->>'rows'::text)::bigint, fstart, parent, fm - 'fold'::text - 'training_rows'::text, 'cv_fold');
        folds_out := folds_out OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_array(fm);
        IF p_kind OPERATOR(pg_catalog.=) 'cross_validate' THEN   -- a search reports its candidates instead
            PERFORM mlpipe_internal._progress('cross_validate', 'fold', i + 1, p_folds, started);
        END IF;
    END LOOP;
    DROP TABLE pg_temp._mlpipe_cv_folds;
    -- Mean and population standard deviation (numpy's default) of each metric.
    SELECT pg_catalog.jsonb_object_agg(key, a), pg_catalog.jsonb_object_agg(key, sd) INTO mean, std
      FROM (SELECT e.key, pg_catalog.avg((e.value)::text::float8) AS a, pg_catalog.stddev_pop((e.value)::text::float8) AS sd
              FROM pg_catalog.jsonb_array_elements(folds_out) f, pg_catalog.jsonb_each(f) e
             WHERE pg_catalog.jsonb_typeof(e.value) = 'number' AND e.key NOT IN ('fold', 'rows', 'training_rows')
             GROUP BY e.key) t;
    PERFORM mlpipe_internal._eval_finish_run(parent, n, pg_catalog.jsonb_build_object('task', task), mean, 'cv_mean', std, 'cv_std');
    RETURN pg_catalog.jsonb_build_object('task', task, 'folds', folds_out, 'mean', mean, 'std', std,
                              'rows', n, 'run_id', parent);
EXCEPTION WHEN OTHERS THEN
    -- The error as the caller should read it (issue #12): its SQLSTATE,
    -- message, detail and hint, with this line as the only context, not
    -- the nested calls and generated statements it came through.
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_msg = MESSAGE_TEXT, e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
    IF e_detail = '' AND e_hint = '' THEN
        RAISE EXCEPTION USING ERRCODE = e_state, MESSAGE = e_msg;
    ELSIF e_detail = '' THEN
        RAISE EXCEPTION USING ERRCODE = e_state, MESSAGE = e_msg, HINT = e_hint;
    ELSIF e_hint = '' THEN
        RAISE EXCEPTION USING ERRCODE = e_state, MESSAGE = e_msg, DETAIL = e_detail;
    END IF;
    RAISE EXCEPTION USING ERRCODE = e_state, MESSAGE = e_msg, DETAIL = e_detail, HINT = e_hint;
END $$;
COMMENT ON FUNCTION mlpipe_internal._cross_validate(text, text, text, text[], jsonb, int, bigint, text) IS
    'k-fold cross-validation behind cross_validate and each search trial.';
REVOKE ALL ON FUNCTION mlpipe_internal._cross_validate(text, text, text, text[], jsonb, int, bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._cross_validate(text, text, text, text[], jsonb, int, bigint, text) TO mlpipe_trainer;

CREATE FUNCTION mlpipe.cross_validate(algorithm text, source text, target text, features text[],
    params jsonb DEFAULT '{}', folds int DEFAULT 5)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    -- Everyone may call it; who may is checked here, to name the role to
    -- grant (issue #12). What it calls stays granted to mlpipe_trainer only.
    IF NOT pg_catalog.pg_has_role(current_user, 'mlpipe_trainer', 'MEMBER') THEN
        RAISE EXCEPTION 'permission denied for function cross_validate' USING ERRCODE = '42501',
            HINT = pg_catalog.format('GRANT mlpipe_trainer TO %I;', current_user);
    END IF;
    RETURN mlpipe_internal._cross_validate($1, $2, $3, $4, $5, $6, NULL, 'cross_validate');
END $$;
COMMENT ON FUNCTION mlpipe.cross_validate(text, text, text, text[], jsonb, int) IS
    'k-fold cross-validation of an algorithm on a source, logged as runs, without registering a model.';
REVOKE ALL ON FUNCTION mlpipe.cross_validate(text, text, text, text[], jsonb, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.cross_validate(text, text, text, text[], jsonb, int) TO mlpipe_trainer;
GRANT EXECUTE ON FUNCTION mlpipe.cross_validate(text, text, text, text[], jsonb, int) TO PUBLIC;

-- The parameter sets of a search: every combination of the space's lists
-- (grid), or `trials` draws (random) from lists and {"min", "max", "log",
-- "int"} ranges, drawn from a hash of (seed, trial, name) so a search is
-- reproducible without touching the session's random().
CREATE FUNCTION mlpipe_internal._search_candidates(p_space jsonb, p_strategy text, p_trials int)
RETURNS SETOF jsonb
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k      text;
    v      jsonb;
    combos jsonb[] := ARRAY['{}'::jsonb];
    nxt    jsonb[];
    c      jsonb;
    e      jsonb;
    seed   text := '0';
    size   numeric := 1;
    t      int;
    tries  int := 0;
    seen   jsonb[] := '{}';
    u      float8;
    lo     float8;
    hi     float8;
BEGIN
    IF p_space IS NULL OR jsonb_typeof(p_space) <> 'object' OR p_space = '{}' THEN
        RAISE EXCEPTION 'space must be a non-empty JSON object of parameter lists'
            USING ERRCODE = '22023', HINT = 'For example {"max_depth": [3, 6], "learning_rate": [0.05, 0.1]}.';
    END IF;
    IF p_strategy IS NULL OR p_strategy NOT IN ('grid', 'random') THEN
        RAISE EXCEPTION 'unknown search strategy "%"', p_strategy
            USING ERRCODE = '22023', HINT = 'Strategies: grid, random.';
    END IF;
    FOR k, v IN SELECT key, value FROM jsonb_each(p_space) LOOP
        IF jsonb_typeof(v) = 'array' THEN
            IF jsonb_array_length(v) = 0 THEN
                RAISE EXCEPTION 'space.% is an empty list', k USING ERRCODE = '22023';
            END IF;
            size := size * jsonb_array_length(v);
        ELSIF jsonb_typeof(v) = 'object' AND p_strategy = 'random' THEN
            IF EXISTS (SELECT 1 FROM jsonb_object_keys(v) o WHERE o NOT IN ('min', 'max', 'log', 'int')) THEN
                RAISE EXCEPTION 'space.% has an unknown key "%"', k,
                    (SELECT o FROM jsonb_object_keys(v) o WHERE o NOT IN ('min', 'max', 'log', 'int') LIMIT 1)
                    USING ERRCODE = '22023', HINT = 'A range is {"min": a, "max": b, "log": false, "int": false}.';
            END IF;
            IF jsonb_typeof(v->'min') IS DISTINCT FROM 'number' OR jsonb_typeof(v->'max') IS DISTINCT FROM 'number'
               OR (v->>'min')::float8 > (v->>'max')::float8
               OR (coalesce((v->>'log')::boolean, false) AND (v->>'min')::float8 <= 0) THEN
                RAISE EXCEPTION 'space.% must have numbers min <= max (min > 0 with log)', k USING ERRCODE = '22023';
            END IF;
            size := NULL;
        ELSE
            RAISE EXCEPTION 'space.% must be a list of values%', k,
                CASE WHEN p_strategy = 'grid' THEN '' ELSE ' or a {"min", "max"} range' END
                USING ERRCODE = '22023';
        END IF;
    END LOOP;
    IF p_space->'seed' IS NOT NULL AND jsonb_typeof(p_space->'seed') = 'array' AND jsonb_array_length(p_space->'seed') = 1 THEN
        seed := p_space->'seed'->>0;
    END IF;
    IF p_strategy = 'grid' OR (size IS NOT NULL AND size <= p_trials) THEN
        IF size > 1000 THEN
            RAISE EXCEPTION 'the grid has % combinations, more than 1000', size
                USING ERRCODE = '54000', HINT = 'Use strategy => ''random'' with trials.';
        END IF;
        FOR k, v IN SELECT key, value FROM jsonb_each(p_space) ORDER BY key LOOP
            nxt := '{}';
            FOREACH c IN ARRAY combos LOOP
                FOR e IN SELECT value FROM jsonb_array_elements(v) LOOP
                    nxt := nxt || (c || jsonb_build_object(k, e));
                END LOOP;
            END LOOP;
            combos := nxt;
        END LOOP;
        RETURN QUERY SELECT unnest(combos);
        RETURN;
    END IF;
    IF p_trials IS NULL OR p_trials < 1 THEN
        RAISE EXCEPTION 'trials = % must be at least 1', coalesce(p_trials::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    t := 0;
    WHILE t < p_trials AND tries < p_trials * 20 LOOP
        tries := tries + 1;
        c := '{}';
        FOR k, v IN SELECT key, value FROM jsonb_each(p_space) ORDER BY key LOOP
            u := ('x' || substr(md5(seed || ':' || tries || ':' || k), 1, 13))::bit(52)::bigint / 4503599627370496.0;
            IF jsonb_typeof(v) = 'array' THEN
                c := c || jsonb_build_object(k, v->(floor(u * jsonb_array_length(v))::int));
            ELSE
                lo := (v->>'min')::float8;
                hi := (v->>'max')::float8;
                IF coalesce((v->>'log')::boolean, false) THEN
                    u := exp(ln(lo) + u * (ln(hi) - ln(lo)));
                ELSE
                    u := lo + u * (hi - lo);
                END IF;
                IF coalesce((v->>'int')::boolean, false) THEN
                    c := c || jsonb_build_object(k, least(floor(u), hi)::bigint);
                ELSE
                    c := c || jsonb_build_object(k, u);
                END IF;
            END IF;
        END LOOP;
        CONTINUE WHEN c = ANY (seen);
        seen := seen || c;
        t := t + 1;
        RETURN NEXT c;
    END LOOP;
END $$;
COMMENT ON FUNCTION mlpipe_internal._search_candidates(jsonb, text, int) IS
    'The parameter sets of a search: the grid of the space''s lists, or random draws from lists and ranges.';
REVOKE ALL ON FUNCTION mlpipe_internal._search_candidates(jsonb, text, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._search_candidates(jsonb, text, int) TO mlpipe_trainer;

-- Grid or random search with k-fold CV; every trial is a run (kind
-- 'search_trial', its folds under it) below one 'search' run. The best
-- parameters by the task's main metric are trained on every row with
-- mlpipe.train and the gate, and registered as a new version.
CREATE FUNCTION mlpipe_internal._search(p_model text, p_algorithm text, p_source text, p_target text,
    p_features text[], p_space jsonb, p_strategy text, p_folds int, p_trials int, p_gate jsonb)
RETURNS mlpipe.train_result
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    run     bigint;
    cand    jsonb;
    cv      jsonb;
    main    record;
    val     float8;
    best    jsonb;
    best_v  float8;
    best_cv jsonb;
    trials  jsonb := '[]';
    n       int := 0;
    total   int;
    res     mlpipe.train_result;
    e_state text;
    e_msg   text;
    e_detail text;
    e_hint  text;
BEGIN
    IF p_model IS NULL OR p_model = '' OR position('@' IN p_model) > 0 THEN
        RAISE EXCEPTION 'invalid model name %', coalesce(pg_catalog.quote_literal(p_model), 'NULL') USING ERRCODE = '22023';
    END IF;
    -- validates the space first, and counts the candidates for progress lines
    SELECT pg_catalog.count(*)::int INTO total FROM mlpipe_internal._search_candidates(p_space, p_strategy, p_trials);
    run := mlpipe_internal._log_run('search', p_model, NULL, p_algorithm, p_source,
        pg_catalog.jsonb_build_object('space', p_space, 'strategy', p_strategy, 'folds', p_folds,
                           'trials', p_trials, 'target', p_target, 'features', pg_catalog.to_jsonb(p_features)),
        'running', NULL, NULL, started, NULL, NULL, NULL);
    FOR cand IN SELECT * FROM mlpipe_internal._search_candidates(p_space, p_strategy, p_trials) LOOP
        cv := mlpipe_internal._cross_validate(p_algorithm, p_source, p_target, p_features, cand, p_folds, run, 'search_trial');
        IF main IS NULL THEN
            SELECT * INTO main FROM mlpipe_internal._main_metric(cv->>'task'::text);
            -- gate.metric, when given, ranks the trials too (issue #14), in
            -- gate.higher_is_better's direction or the metric's own.
            IF pg_catalog.jsonb_typeof(p_gate) = 'object' AND p_gate ? 'metric'::text THEN
                main.metric := p_gate->>'metric'::text;
                main.higher_is_better := coalesce((p_gate->>'higher_is_better'::text)::boolean,
                    main.metric NOT IN ('rmse', 'mae', 'mape', 'log_loss', 'inertia', 'davies_bouldin'));
                IF NOT (cv->'mean'::text) ? main.metric THEN
                    RAISE EXCEPTION 'gate metric "%" is not among the cross-validated metrics', main.metric
                        USING ERRCODE = '22023',
                              HINT = 'Metrics: ' OPERATOR(pg_catalog.||) (SELECT pg_catalog.string_agg(e.key, ', ' ORDER BY e.key)
                                                  FROM pg_catalog.jsonb_object_keys(cv->'mean'::text) e(key));
                END IF;
            END IF;
        END IF;
        val := (cv->'mean'::text->>main.metric)::float8;
        n := n + 1;
        PERFORM mlpipe_internal._progress('search', 'candidate', n, total, started);
        trials := trials OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object('params', cand, 'run_id', cv->'run_id'::text,
                                                                 main.metric, val));
        IF val IS NOT NULL AND (best_v IS NULL OR (main.higher_is_better AND val > best_v)
                                OR (NOT main.higher_is_better AND val < best_v)) THEN
            best := cand;
            best_v := val;
            best_cv := cv;
        END IF;
    END LOOP;
    IF best IS NULL THEN
        RAISE EXCEPTION 'no trial of the search produced a % score', main.metric USING ERRCODE = '22000';
    END IF;
    res := mlpipe_internal._train(p_model, p_algorithm, p_source, p_target, p_features, best, p_gate);
    PERFORM mlpipe_internal._eval_finish_run(run, (best_cv->>'rows'::text)::bigint,
        pg_catalog.jsonb_build_object('best_params', best, 'main_metric', main.metric, 'trials_run', n,
                           'trial_results', trials, 'version', res.version, 'train_run_id', res.run_id),
        best_cv->'mean'::text, 'cv_mean', best_cv->'std'::text, 'cv_std');
    RETURN res;
EXCEPTION WHEN OTHERS THEN
    -- The error as the caller should read it (issue #12): its SQLSTATE,
    -- message, detail and hint, with this line as the only context, not
    -- the nested calls and generated statements it came through.
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_msg = MESSAGE_TEXT, e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
    IF e_detail = '' AND e_hint = '' THEN
        RAISE EXCEPTION USING ERRCODE = e_state, MESSAGE = e_msg;
    ELSIF e_detail = '' THEN
        RAISE EXCEPTION USING ERRCODE = e_state, MESSAGE = e_msg, HINT = e_hint;
    ELSIF e_hint = '' THEN
        RAISE EXCEPTION USING ERRCODE = e_state, MESSAGE = e_msg, DETAIL = e_detail;
    END IF;
    RAISE EXCEPTION USING ERRCODE = e_state, MESSAGE = e_msg, DETAIL = e_detail, HINT = e_hint;
END $$;
COMMENT ON FUNCTION mlpipe_internal._search(text, text, text, text, text[], jsonb, text, int, int, jsonb) IS
    'The body of mlpipe.search: cross-validates every candidate, then trains the best on all rows.';
REVOKE ALL ON FUNCTION mlpipe_internal._search(text, text, text, text, text[], jsonb, text, int, int, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._search(text, text, text, text, text[], jsonb, text, int, int, jsonb) TO mlpipe_trainer;

CREATE FUNCTION mlpipe.search(model text, algorithm text, source text, target text, features text[],
    space jsonb, strategy text DEFAULT 'grid', folds int DEFAULT 5, trials int DEFAULT 20,
    gate jsonb DEFAULT NULL)
RETURNS SETOF mlpipe.train_result
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    -- Everyone may call it; who may is checked here, to name the role to
    -- grant (issue #12). What it calls stays granted to mlpipe_trainer only.
    IF NOT pg_catalog.pg_has_role(current_user, 'mlpipe_trainer', 'MEMBER') THEN
        RAISE EXCEPTION 'permission denied for function search' USING ERRCODE = '42501',
            HINT = pg_catalog.format('GRANT mlpipe_trainer TO %I;', current_user);
    END IF;
    RETURN NEXT mlpipe_internal._search($1, $2, $3, $4, $5, $6, $7, $8, $9, $10);
END $$;
COMMENT ON FUNCTION mlpipe.search(text, text, text, text, text[], jsonb, text, int, int, jsonb) IS
    'Hyper-parameter search: cross-validates every candidate, trains the best on all rows and registers it.';
REVOKE ALL ON FUNCTION mlpipe.search(text, text, text, text, text[], jsonb, text, int, int, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.search(text, text, text, text, text[], jsonb, text, int, int, jsonb) TO mlpipe_trainer;
GRANT EXECUTE ON FUNCTION mlpipe.search(text, text, text, text, text[], jsonb, text, int, int, jsonb) TO PUBLIC;
