-- Evaluation (issue #4): metric aggregates usable on any table, evaluate,
-- cross_validate and search. See docs/evaluation.md.
--
-- Metric aggregates are pure computations on the caller's own values: they
-- stay executable by PUBLIC. States are `internal` with combine / serial /
-- deserial functions, so every aggregate is PARALLEL SAFE. A row with a NULL
-- in any argument is ignored; no rows give NULL; an undefined metric (one
-- class for roc_auc, one cluster for silhouette, ...) is NULL.

-- Label metrics: one confusion-matrix state for text, bigint and boolean labels.
CREATE FUNCTION mlpipe._label_trans(internal, text, text) RETURNS internal
AS 'MODULE_PATHNAME', 'mlpipe_label_trans_text' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION mlpipe._label_trans(internal, bigint, bigint) RETURNS internal
AS 'MODULE_PATHNAME', 'mlpipe_label_trans_int8' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION mlpipe._label_trans(internal, boolean, boolean) RETURNS internal
AS 'MODULE_PATHNAME', 'mlpipe_label_trans_bool' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION mlpipe._label_combine(internal, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'mlpipe_label_combine' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION mlpipe._label_serial(internal) RETURNS bytea
AS 'MODULE_PATHNAME', 'mlpipe_label_serial' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION mlpipe._label_deserial(bytea, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'mlpipe_label_deserial' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION mlpipe._accuracy_final(internal) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_accuracy_final' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION mlpipe._precision_macro_final(internal) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_precision_macro_final' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION mlpipe._recall_macro_final(internal) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_recall_macro_final' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION mlpipe._f1_macro_final(internal) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_f1_macro_final' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION mlpipe._f1_weighted_final(internal) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_f1_weighted_final' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION mlpipe._confusion_matrix_final(internal) RETURNS jsonb
AS 'MODULE_PATHNAME', 'mlpipe_confusion_matrix_final' LANGUAGE C PARALLEL SAFE;

-- accuracy, precision_macro, recall_macro, f1_macro, f1_weighted and
-- confusion_matrix, each for (text, text), (bigint, bigint), (boolean, boolean).
DO $$
DECLARE
    m text;
    t text;
BEGIN
    FOREACH m IN ARRAY ARRAY['accuracy', 'precision_macro', 'recall_macro', 'f1_macro',
                             'f1_weighted', 'confusion_matrix'] LOOP
        FOREACH t IN ARRAY ARRAY['text', 'bigint', 'boolean'] LOOP
            EXECUTE pg_catalog.format(
                'CREATE AGGREGATE mlpipe.%1$I(y_true %2$s, y_pred %2$s) (
                    SFUNC = mlpipe._label_trans, STYPE = internal,
                    FINALFUNC = mlpipe.%3$I, COMBINEFUNC = mlpipe._label_combine,
                    SERIALFUNC = mlpipe._label_serial, DESERIALFUNC = mlpipe._label_deserial,
                    PARALLEL = SAFE)', m, t, '_' || m || '_final');
        END LOOP;
    END LOOP;
END $$;

-- log_loss: (boolean, float8) binary with p = P(true); (text, float8[], text[])
-- with one probability per class in the order of the classes array.
CREATE FUNCTION mlpipe._log_loss_trans(internal, boolean, float8) RETURNS internal
AS 'MODULE_PATHNAME', 'mlpipe_log_loss_trans_bool' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION mlpipe._log_loss_trans(internal, text, float8[], text[]) RETURNS internal
AS 'MODULE_PATHNAME', 'mlpipe_log_loss_trans_multi' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION mlpipe._log_loss_combine(internal, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'mlpipe_log_loss_combine' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION mlpipe._log_loss_serial(internal) RETURNS bytea
AS 'MODULE_PATHNAME', 'mlpipe_log_loss_serial' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION mlpipe._log_loss_deserial(bytea, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'mlpipe_log_loss_deserial' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION mlpipe._log_loss_final(internal) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_log_loss_final' LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE mlpipe.log_loss(y_true boolean, p float8) (
    SFUNC = mlpipe._log_loss_trans, STYPE = internal, FINALFUNC = mlpipe._log_loss_final,
    COMBINEFUNC = mlpipe._log_loss_combine, SERIALFUNC = mlpipe._log_loss_serial,
    DESERIALFUNC = mlpipe._log_loss_deserial, PARALLEL = SAFE);
CREATE AGGREGATE mlpipe.log_loss(y_true text, proba float8[], classes text[]) (
    SFUNC = mlpipe._log_loss_trans, STYPE = internal, FINALFUNC = mlpipe._log_loss_final,
    COMBINEFUNC = mlpipe._log_loss_combine, SERIALFUNC = mlpipe._log_loss_serial,
    DESERIALFUNC = mlpipe._log_loss_deserial, PARALLEL = SAFE);

-- roc_auc: (boolean, float8) binary; (text, float8[], text[]) macro one-vs-rest.
-- The state keeps every (label, score): the AUC needs all of them sorted.
CREATE FUNCTION mlpipe._roc_auc_trans(internal, boolean, float8) RETURNS internal
AS 'MODULE_PATHNAME', 'mlpipe_roc_auc_trans_bool' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION mlpipe._roc_auc_trans(internal, text, float8[], text[]) RETURNS internal
AS 'MODULE_PATHNAME', 'mlpipe_roc_auc_trans_multi' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION mlpipe._roc_auc_combine(internal, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'mlpipe_roc_auc_combine' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION mlpipe._roc_auc_serial(internal) RETURNS bytea
AS 'MODULE_PATHNAME', 'mlpipe_roc_auc_serial' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION mlpipe._roc_auc_deserial(bytea, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'mlpipe_roc_auc_deserial' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION mlpipe._roc_auc_final(internal) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_roc_auc_final' LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE mlpipe.roc_auc(y_true boolean, score float8) (
    SFUNC = mlpipe._roc_auc_trans, STYPE = internal, FINALFUNC = mlpipe._roc_auc_final,
    COMBINEFUNC = mlpipe._roc_auc_combine, SERIALFUNC = mlpipe._roc_auc_serial,
    DESERIALFUNC = mlpipe._roc_auc_deserial, PARALLEL = SAFE);
CREATE AGGREGATE mlpipe.roc_auc(y_true text, proba float8[], classes text[]) (
    SFUNC = mlpipe._roc_auc_trans, STYPE = internal, FINALFUNC = mlpipe._roc_auc_final,
    COMBINEFUNC = mlpipe._roc_auc_combine, SERIALFUNC = mlpipe._roc_auc_serial,
    DESERIALFUNC = mlpipe._roc_auc_deserial, PARALLEL = SAFE);

-- Regression: rmse, mae, r2, mape (y_true float8, y_pred float8), running sums.
CREATE FUNCTION mlpipe._reg_trans(internal, float8, float8) RETURNS internal
AS 'MODULE_PATHNAME', 'mlpipe_reg_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION mlpipe._reg_combine(internal, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'mlpipe_reg_combine' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION mlpipe._reg_serial(internal) RETURNS bytea
AS 'MODULE_PATHNAME', 'mlpipe_reg_serial' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION mlpipe._reg_deserial(bytea, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'mlpipe_reg_deserial' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION mlpipe._rmse_final(internal) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_rmse_final' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION mlpipe._mae_final(internal) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_mae_final' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION mlpipe._r2_final(internal) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_r2_final' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION mlpipe._mape_final(internal) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_mape_final' LANGUAGE C PARALLEL SAFE;

-- Clustering: silhouette, calinski_harabasz, davies_bouldin (x float8[], label int).
-- The state keeps every point; silhouette is exact, O(n^2).
CREATE FUNCTION mlpipe._points_trans(internal, float8[], int) RETURNS internal
AS 'MODULE_PATHNAME', 'mlpipe_points_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION mlpipe._points_combine(internal, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'mlpipe_points_combine' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION mlpipe._points_serial(internal) RETURNS bytea
AS 'MODULE_PATHNAME', 'mlpipe_points_serial' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION mlpipe._points_deserial(bytea, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'mlpipe_points_deserial' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION mlpipe._silhouette_final(internal) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_silhouette_final' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION mlpipe._calinski_harabasz_final(internal) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_calinski_harabasz_final' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION mlpipe._davies_bouldin_final(internal) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_davies_bouldin_final' LANGUAGE C PARALLEL SAFE;

DO $$
DECLARE
    m text;
BEGIN
    FOREACH m IN ARRAY ARRAY['rmse', 'mae', 'r2', 'mape'] LOOP
        EXECUTE pg_catalog.format(
            'CREATE AGGREGATE mlpipe.%1$I(y_true float8, y_pred float8) (
                SFUNC = mlpipe._reg_trans, STYPE = internal, FINALFUNC = mlpipe.%2$I,
                COMBINEFUNC = mlpipe._reg_combine, SERIALFUNC = mlpipe._reg_serial,
                DESERIALFUNC = mlpipe._reg_deserial, PARALLEL = SAFE)', m, '_' || m || '_final');
    END LOOP;
    FOREACH m IN ARRAY ARRAY['silhouette', 'calinski_harabasz', 'davies_bouldin'] LOOP
        EXECUTE pg_catalog.format(
            'CREATE AGGREGATE mlpipe.%1$I(x float8[], label int) (
                SFUNC = mlpipe._points_trans, STYPE = internal, FINALFUNC = mlpipe.%2$I,
                COMBINEFUNC = mlpipe._points_combine, SERIALFUNC = mlpipe._points_serial,
                DESERIALFUNC = mlpipe._points_deserial, PARALLEL = SAFE)', m, '_' || m || '_final');
    END LOOP;
END $$;
