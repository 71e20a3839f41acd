-- mlpipe 0.2.0 -> 0.3.0: features, preprocessing, evaluation, MLOps.
-- Built from the fragments in sql/0.3.0/, applied in name order.
\echo Use "ALTER EXTENSION mlpipe UPDATE TO '0.3.0'" to load this file. \quit

CREATE OR REPLACE FUNCTION mlpipe.version() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT '0.3.0'::text $$;
-- Roles, least privilege first. Each role includes the one before it:
--   mlpipe_reader  : read the registry tables and prediction tables, model_info, export, ...
--   mlpipe_scorer  : + predict / predict_label / predict_proba by name
--   mlpipe_trainer : + train, evaluate, cross_validate, search, predict_table, drift
--   mlpipe_admin   : + promote, rollback, prune, tags, pipelines, schedules
-- Roles are cluster-wide, so they are created only when missing and are not
-- dropped with the extension. Every fragment that adds a function revokes it
-- from PUBLIC and grants it to the lowest role that may call it; pure
-- computations (aggregates, metrics on caller data) stay PUBLIC.
DO $$
DECLARE r text;
BEGIN
	FOREACH r IN ARRAY ARRAY['mlpipe_reader', 'mlpipe_scorer', 'mlpipe_trainer', 'mlpipe_admin'] LOOP
		IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
			EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
		END IF;
	END LOOP;
END $$;
GRANT mlpipe_reader TO mlpipe_scorer;
GRANT mlpipe_scorer TO mlpipe_trainer;
GRANT mlpipe_trainer TO mlpipe_admin;
GRANT USAGE ON SCHEMA mlpipe TO mlpipe_reader;
-- One writer for run rows, shared by evaluation, search, batch scoring and
-- pipelines: records a finished run and its numeric metrics (one row per
-- metric in mlpipe.metrics, for dashboards). Returns the run id.
CREATE FUNCTION mlpipe._log_run(
    p_kind text, p_model text, p_version int, p_algorithm text, p_source text,
    p_params jsonb, p_status text, p_error text, p_rows bigint, p_started timestamptz,
    p_parent bigint DEFAULT NULL, p_metrics jsonb DEFAULT NULL, p_split text DEFAULT 'test')
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_run bigint;
BEGIN
    INSERT INTO mlpipe.runs (kind, model, version, algorithm, source, params, status, error, rows,
                             started_at, finished_at, seconds, created_by, parent_run_id)
    VALUES (p_kind, p_model, p_version, p_algorithm, p_source, coalesce(p_params, '{}'),
            p_status, p_error, p_rows, coalesce(p_started, clock_timestamp()), clock_timestamp(),
            extract(epoch FROM clock_timestamp() - coalesce(p_started, clock_timestamp())),
            session_user, p_parent)
    RETURNING run_id INTO v_run;
    IF p_metrics IS NOT NULL AND jsonb_typeof(p_metrics) = 'object' THEN
        INSERT INTO mlpipe.metrics (run_id, model, version, split, metric, value)
        SELECT v_run, p_model, p_version, coalesce(p_split, 'test'), e.key, (e.value)::text::float8
          FROM jsonb_each(p_metrics) e WHERE jsonb_typeof(e.value) = 'number';
    END IF;
    RETURN v_run;
END $$;
REVOKE ALL ON FUNCTION mlpipe._log_run(text, text, int, text, text, jsonb, text, text, bigint,
    timestamptz, bigint, jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._log_run(text, text, int, text, text, jsonb, text, text, bigint,
    timestamptz, bigint, jsonb, text) TO mlpipe_trainer;
-- The same seed must give the same artifact. A table bigger than a quarter
-- of shared_buffers is read from wherever another scan of it last was
-- (synchronized scans), so the row order, the binning sample and the model
-- changed between runs; training reads its source from the start.
ALTER FUNCTION mlpipe._fit(text, text, text, text[], jsonb, bytea) SET synchronize_seqscans = off;
-- Feature aggregates: mlpipe.ts_features(ts, value) and mlpipe.summary(value).
-- Each group keeps its readings and computes every figure exactly at the end
-- from the readings sorted by (ts, value), so results do not depend on row
-- order or on the parallel plan. See docs/features.md.
CREATE TYPE mlpipe.ts_summary AS (
    n               bigint,   -- readings used (value and ts not NULL, value not NaN)
    n_null          bigint,   -- rows with a NULL/NaN value or a NULL ts
    mean            float8,
    std             float8,   -- sample standard deviation, like stddev()
    min             float8,
    max             float8,
    q05             float8,   -- quantiles: exact, interpolated like percentile_cont
    q25             float8,
    median          float8,
    q75             float8,
    q95             float8,
    skewness        float8,   -- adjusted Fisher-Pearson (scipy bias=False, pandas)
    kurtosis        float8,   -- adjusted excess kurtosis (scipy bias=False, pandas)
    slope           float8,   -- least-squares slope of value per hour, like regr_slope
    first           float8,   -- value of the earliest reading
    last            float8,   -- value of the latest reading
    mean_abs_change float8,   -- mean |v[i+1] - v[i]| in time order
    autocorr_lag1   float8,   -- Pearson correlation of v[i] and v[i+1] (pandas autocorr)
    longest_gap     float8    -- longest time between consecutive readings, in seconds
);

CREATE TYPE mlpipe.value_summary AS (
    n bigint, n_null bigint, mean float8, std float8, min float8, max float8,
    q05 float8, q25 float8, median float8, q75 float8, q95 float8,
    skewness float8, kurtosis float8
);

CREATE FUNCTION mlpipe._ts_features_trans(internal, timestamptz, float8) RETURNS internal
AS 'MODULE_PATHNAME', 'mlpipe_ts_features_trans' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION mlpipe._summary_trans(internal, float8) RETURNS internal
AS 'MODULE_PATHNAME', 'mlpipe_summary_trans' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION mlpipe._features_combine(internal, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'mlpipe_features_combine' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION mlpipe._features_serial(internal) RETURNS bytea
AS 'MODULE_PATHNAME', 'mlpipe_features_serial' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION mlpipe._features_deserial(bytea, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'mlpipe_features_deserial' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION mlpipe._ts_features_final(internal) RETURNS mlpipe.ts_summary
AS 'MODULE_PATHNAME', 'mlpipe_ts_features_final' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION mlpipe._summary_final(internal) RETURNS mlpipe.value_summary
AS 'MODULE_PATHNAME', 'mlpipe_summary_final' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;

-- The final functions sort the state's readings in place: the same readings,
-- so the state stays valid (READ_ONLY in effect) and window frames can grow.
CREATE AGGREGATE mlpipe.ts_features(ts timestamptz, value float8) (
    SFUNC = mlpipe._ts_features_trans,
    STYPE = internal,
    FINALFUNC = mlpipe._ts_features_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = mlpipe._features_combine,
    SERIALFUNC = mlpipe._features_serial,
    DESERIALFUNC = mlpipe._features_deserial,
    PARALLEL = SAFE
);
CREATE AGGREGATE mlpipe.summary(value float8) (
    SFUNC = mlpipe._summary_trans,
    STYPE = internal,
    FINALFUNC = mlpipe._summary_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = mlpipe._features_combine,
    SERIALFUNC = mlpipe._features_serial,
    DESERIALFUNC = mlpipe._features_deserial,
    PARALLEL = SAFE
);

-- Support functions take internal and are only called through the aggregates
-- (whose owner's EXECUTE right PostgreSQL checks), so nobody needs them
-- directly. The aggregates are pure computations on the caller's values: PUBLIC.
REVOKE ALL ON FUNCTION mlpipe._ts_features_trans(internal, timestamptz, float8) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe._summary_trans(internal, float8) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe._features_combine(internal, internal) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe._features_serial(internal) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe._features_deserial(bytea, internal) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe._ts_features_final(internal) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe._summary_final(internal) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.ts_features(timestamptz, float8) TO PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.summary(float8) TO PUBLIC;
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

--------------------------------------------------------------------------
-- evaluate, cross_validate, search
--------------------------------------------------------------------------

-- A source (table or view name, or a query) as a FROM item. Names resolve
-- with the caller's search_path; queries run as the caller.
CREATE FUNCTION mlpipe._eval_from(p_source text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_source IS NULL OR btrim(p_source) = '' THEN
        RAISE EXCEPTION 'source must not be empty' USING ERRCODE = '22023';
    END IF;
    IF p_source ~* '^[[:space:](]*(select|with|values|table)([[:space:](]|$)' THEN
        RETURN '(' || p_source || E'\n)';
    END IF;
    RETURN p_source::regclass::text;
END $$;

-- What evaluate needs of a version: names, task, target, features, classes, artifact.
CREATE FUNCTION mlpipe._eval_model(model_ref text,
    OUT model text, OUT version int, OUT algorithm text, OUT task text, OUT target text,
    OUT features text[], OUT classes text[], OUT artifact bytea)
LANGUAGE sql STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT v.model, v.version, v.algorithm, v.task, v.target, v.features, v.classes, v.artifact
      FROM mlpipe.model_versions v, mlpipe.resolve(model_ref) r
     WHERE v.model = r.model AND v.version = r.version
$$;

-- The scoring argument for a source row `s`: the row itself when the row
-- form of predict exists (columns matched by name, stored preprocessing
-- applied), else the float8[] of the features in training order (x[i]
-- names an element of array column x).
CREATE FUNCTION mlpipe._eval_input(p_features text[], p_array boolean DEFAULT false) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    f text;
    parts text[] := '{}';
    m text[];
BEGIN
    IF NOT p_array AND pg_catalog.to_regprocedure('mlpipe.predict_label(bytea,record)') IS NOT NULL THEN
        RETURN 's';
    END IF;
    FOREACH f IN ARRAY p_features LOOP
        m := pg_catalog.regexp_match(f, '^(.*)\[([0-9]+)\]$');
        parts := parts || CASE WHEN m IS NULL THEN pg_catalog.format('s.%I', f)
                               ELSE pg_catalog.format('(s.%I)[%s]', m[1], m[2]) END;
    END LOOP;
    RETURN 'ARRAY[' || pg_catalog.array_to_string(parts, ', ') || ']::float8[]';
END $$;

-- Scores p_from (a FROM item holding the target column) with an artifact and
-- returns the task's metrics (and "rows") as jsonb, through the metric aggregates.
CREATE FUNCTION mlpipe._eval_metrics(p_artifact bytea, p_task text, p_features text[],
    p_classes text[], p_target text, p_from text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    x   text := mlpipe._eval_input(p_features);
    res jsonb;
BEGIN
    IF p_task = 'classification' THEN
        EXECUTE pg_catalog.format($q$
            SELECT jsonb_build_object(
                'accuracy', mlpipe.accuracy(y, p), 'precision_macro', mlpipe.precision_macro(y, p),
                'recall_macro', mlpipe.recall_macro(y, p), 'f1_macro', mlpipe.f1_macro(y, p),
                'f1_weighted', mlpipe.f1_weighted(y, p), 'log_loss', mlpipe.log_loss(y, pr, $2),
                'roc_auc', mlpipe.roc_auc(y, pr, $2), 'confusion_matrix', mlpipe.confusion_matrix(y, p),
                'rows', count(*))
              FROM (SELECT (s.%1$I)::text AS y, mlpipe.predict_label($1, %2$s) AS p,
                           mlpipe.predict_proba($1, %2$s) AS pr
                      FROM %3$s s WHERE s.%1$I IS NOT NULL) q$q$, p_target, x, p_from)
            INTO res USING p_artifact, p_classes;
    ELSIF p_task = 'regression' THEN
        EXECUTE pg_catalog.format($q$
            SELECT jsonb_build_object('rmse', mlpipe.rmse(y, p), 'mae', mlpipe.mae(y, p),
                                      'r2', mlpipe.r2(y, p), 'mape', mlpipe.mape(y, p), 'rows', count(*))
              FROM (SELECT (s.%1$I)::float8 AS y, mlpipe.predict($1, %2$s) AS p
                      FROM %3$s s WHERE s.%1$I IS NOT NULL) q$q$, p_target, x, p_from)
            INTO res USING p_artifact;
    ELSE
        -- Clustering: the clusters the model assigns, scored on the raw
        -- features; silhouette (O(n^2)) on at most 10,000 rows picked by a
        -- hash of the row, so the figure is reproducible.
        EXECUTE pg_catalog.format($q$
            WITH pts AS MATERIALIZED (
                SELECT %1$s AS x, mlpipe.predict($1, %2$s)::int AS c, md5(s::text) AS h FROM %3$s s)
            SELECT jsonb_build_object(
                'silhouette', (SELECT mlpipe.silhouette(x, c) FROM
                                 (SELECT x, c FROM pts ORDER BY h LIMIT 10000) t),
                'calinski_harabasz', mlpipe.calinski_harabasz(x, c),
                'davies_bouldin', mlpipe.davies_bouldin(x, c), 'rows', count(*))
              FROM pts$q$, mlpipe._eval_input(p_features, true), x, p_from)
            INTO res USING p_artifact;
    END IF;
    IF (res->>'rows')::bigint = 0 THEN
        RAISE EXCEPTION 'no rows to evaluate%', coalesce(': the source has no row with a non-NULL "' || p_target || '"', '')
            USING ERRCODE = '22000';
    END IF;
    RETURN res;
END $$;

-- Finishes a cross-validation or search run that this session user started
-- (status 'running'): status, rows, duration, extra params, and its metrics
-- (one mlpipe.metrics row per numeric value) under the given splits.
CREATE FUNCTION mlpipe._eval_finish_run(p_run bigint, p_rows bigint, p_params jsonb,
    p_metrics jsonb, p_split text, p_metrics2 jsonb DEFAULT NULL, p_split2 text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
BEGIN
    UPDATE mlpipe.runs u
       SET status = 'succeeded', rows = p_rows, params = u.params || coalesce(p_params, '{}'),
           finished_at = clock_timestamp(), seconds = extract(epoch FROM clock_timestamp() - u.started_at)
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
           jsonb_each(m.doc) e
     WHERE m.doc IS NOT NULL AND jsonb_typeof(m.doc) = 'object' AND jsonb_typeof(e.value) = 'number';
END $$;

-- Scores a source with a registered version and logs the run (kind
-- 'evaluate', split 'evaluate'). Returns the task's metrics.
CREATE FUNCTION mlpipe.evaluate(model_ref text, source text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    started timestamptz := clock_timestamp();
    m       record;
    res     jsonb;
    run     bigint;
BEGIN
    IF model_ref IS NULL OR source IS NULL THEN
        RAISE EXCEPTION '% must not be NULL', CASE WHEN model_ref IS NULL THEN 'model_ref' ELSE 'source' END
            USING ERRCODE = '22004';
    END IF;
    SELECT * INTO m FROM mlpipe._eval_model(model_ref);
    res := mlpipe._eval_metrics(m.artifact, m.task, m.features, m.classes, m.target,
                                mlpipe._eval_from(source));
    run := mlpipe._log_run('evaluate', m.model, m.version, m.algorithm, source,
                           jsonb_build_object('model_ref', model_ref), 'succeeded', NULL,
                           (res->>'rows')::bigint, started, NULL, res, 'evaluate');
    RETURN res || jsonb_build_object('model', m.model, 'version', m.version, 'run_id', run);
END $$;

-- k-fold cross-validation. p_kind names the parent run ('cross_validate',
-- or 'search_trial' under a search run p_parent).
CREATE FUNCTION mlpipe._cross_validate(p_algorithm text, p_source text, p_target text,
    p_features text[], p_params jsonb, p_folds int, p_parent bigint, p_kind text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    started   timestamptz := clock_timestamp();
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
    IF jsonb_typeof(p_params) <> 'object' THEN
        RAISE EXCEPTION 'params must be a JSON object, not %', jsonb_typeof(p_params) USING ERRCODE = '22023';
    END IF;
    src := mlpipe._eval_from(p_source);
    EXECUTE pg_catalog.format('SELECT count(*), pg_catalog.format_type(pg_catalog.min(pg_catalog.pg_typeof(s.%1$I)::oid), NULL)
                                 FROM %2$s s WHERE s.%1$I IS NOT NULL', p_target, src)
        INTO n, ttype;
    IF p_folds > n THEN
        RAISE EXCEPTION 'folds = % is more than the % rows with a non-NULL "%"', p_folds, n, p_target
            USING ERRCODE = '22023', HINT = 'Use fewer folds.';
    END IF;
    -- Stratify as training decides the task: text-like and boolean targets,
    -- integers with at most 20 distinct values, or params.task.
    IF p_params ? 'task' THEN
        stratify := p_params->>'task' = 'classification';
    ELSIF ttype IN ('smallint', 'integer', 'bigint') THEN
        EXECUTE pg_catalog.format('SELECT count(DISTINCT s.%1$I) <= 20 FROM %2$s s', p_target, src) INTO stratify;
    ELSE
        stratify := ttype NOT IN ('real', 'double precision', 'numeric');
    END IF;
    -- Folds: rows ordered by a hash of (seed, row), by class first when
    -- stratified, dealt round-robin. Identical rows are interchangeable, so
    -- the assignment is reproducible.
    seed := coalesce(p_params->>'seed', '0');
    IF pg_catalog.to_regclass('pg_temp._mlpipe_cv_folds') IS NOT NULL THEN
        DROP TABLE pg_temp._mlpipe_cv_folds;
    END IF;
    EXECUTE pg_catalog.format(
        'CREATE TEMP TABLE _mlpipe_cv_folds ON COMMIT DROP AS
         SELECT s.*, ((pg_catalog.row_number() OVER (ORDER BY %1$s pg_catalog.md5($1 || s::text)) - 1) %% %2$s)::int
                AS _mlpipe_fold
           FROM %3$s s WHERE s.%4$I IS NOT NULL',
        CASE WHEN stratify THEN pg_catalog.format('s.%I,', p_target) ELSE '' END, p_folds, src, p_target)
        USING seed;
    fparams := (p_params - 'test_size' - 'split') || '{"test_size": 0}';
    IF p_features IS NULL THEN
        fparams := fparams || jsonb_build_object('exclude',
            CASE WHEN jsonb_typeof(p_params->'exclude') = 'array' THEN p_params->'exclude' ELSE '[]' END
            || '["_mlpipe_fold"]');
    END IF;
    parent := mlpipe._log_run(p_kind, NULL, NULL, p_algorithm, p_source,
        jsonb_build_object('params', p_params, 'folds', p_folds, 'target', p_target,
                           'features', to_jsonb(p_features), 'stratified', stratify),
        'running', NULL, n, started, p_parent, NULL, NULL);
    FOR i IN 0 .. p_folds - 1 LOOP
        fstart := clock_timestamp();
        fit := mlpipe._fit(p_algorithm,
            pg_catalog.format('SELECT * FROM pg_temp._mlpipe_cv_folds WHERE _mlpipe_fold <> %s', i),
            p_target, p_features, fparams, NULL);
        task := fit.task;
        fm := mlpipe._eval_metrics(fit.artifact, fit.task, fit.feature_names, fit.classes, p_target,
            pg_catalog.format('(SELECT * FROM pg_temp._mlpipe_cv_folds WHERE _mlpipe_fold = %s)', i));
        fm := jsonb_build_object('fold', i + 1, 'training_rows', (fit.info->>'training_rows')::bigint) || fm;
        PERFORM mlpipe._log_run('cv_fold', NULL, NULL, p_algorithm, p_source,
            jsonb_build_object('params', p_params, 'fold', i + 1, 'folds', p_folds),
            'succeeded', NULL, (fm->>'rows')::bigint, fstart, parent, fm - 'fold' - 'training_rows', 'cv_fold');
        folds_out := folds_out || jsonb_build_array(fm);
    END LOOP;
    DROP TABLE pg_temp._mlpipe_cv_folds;
    -- Mean and population standard deviation (numpy's default) of each metric.
    SELECT jsonb_object_agg(key, a), jsonb_object_agg(key, sd) INTO mean, std
      FROM (SELECT e.key, avg((e.value)::text::float8) AS a, stddev_pop((e.value)::text::float8) AS sd
              FROM jsonb_array_elements(folds_out) f, jsonb_each(f) e
             WHERE jsonb_typeof(e.value) = 'number' AND e.key NOT IN ('fold', 'rows', 'training_rows')
             GROUP BY e.key) t;
    PERFORM mlpipe._eval_finish_run(parent, n, jsonb_build_object('task', task), mean, 'cv_mean', std, 'cv_std');
    RETURN jsonb_build_object('task', task, 'folds', folds_out, 'mean', mean, 'std', std,
                              'rows', n, 'run_id', parent);
END $$;

CREATE FUNCTION mlpipe.cross_validate(algorithm text, source text, target text, features text[],
    params jsonb DEFAULT '{}', folds int DEFAULT 5)
RETURNS jsonb
LANGUAGE sql VOLATILE AS $$
    SELECT mlpipe._cross_validate($1, $2, $3, $4, $5, $6, NULL, 'cross_validate')
$$;

-- The parameter sets of a search: every combination of the space's lists
-- (grid), or `trials` draws (random) from lists and {"min", "max", "log",
-- "int"} ranges, drawn from a hash of (seed, trial, name) so a search is
-- reproducible without touching the session's random().
CREATE FUNCTION mlpipe._search_candidates(p_space jsonb, p_strategy text, p_trials int)
RETURNS SETOF jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
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

-- Grid or random search with k-fold CV; every trial is a run (kind
-- 'search_trial', its folds under it) below one 'search' run. The best
-- parameters by the task's main metric are trained on every row with
-- mlpipe.train and the gate, and registered as a new version.
CREATE FUNCTION mlpipe._search(p_model text, p_algorithm text, p_source text, p_target text,
    p_features text[], p_space jsonb, p_strategy text, p_folds int, p_trials int, p_gate jsonb)
RETURNS mlpipe.train_result
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    started timestamptz := clock_timestamp();
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
    res     mlpipe.train_result;
BEGIN
    IF p_model IS NULL OR p_model = '' OR position('@' IN p_model) > 0 THEN
        RAISE EXCEPTION 'invalid model name %', coalesce(quote_literal(p_model), 'NULL') USING ERRCODE = '22023';
    END IF;
    PERFORM mlpipe._search_candidates(p_space, p_strategy, p_trials) LIMIT 1;   -- validates the space first
    run := mlpipe._log_run('search', p_model, NULL, p_algorithm, p_source,
        jsonb_build_object('space', p_space, 'strategy', p_strategy, 'folds', p_folds,
                           'trials', p_trials, 'target', p_target, 'features', to_jsonb(p_features)),
        'running', NULL, NULL, started, NULL, NULL, NULL);
    FOR cand IN SELECT * FROM mlpipe._search_candidates(p_space, p_strategy, p_trials) LOOP
        cv := mlpipe._cross_validate(p_algorithm, p_source, p_target, p_features, cand, p_folds, run, 'search_trial');
        IF main IS NULL THEN
            SELECT * INTO main FROM mlpipe._main_metric(cv->>'task');
        END IF;
        val := (cv->'mean'->>main.metric)::float8;
        n := n + 1;
        trials := trials || jsonb_build_array(jsonb_build_object('params', cand, 'run_id', cv->'run_id',
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
    res := mlpipe._train(p_model, p_algorithm, p_source, p_target, p_features, best, p_gate);
    PERFORM mlpipe._eval_finish_run(run, (best_cv->>'rows')::bigint,
        jsonb_build_object('best_params', best, 'main_metric', main.metric, 'trials_run', n,
                           'trial_results', trials, 'version', res.version, 'train_run_id', res.run_id),
        best_cv->'mean', 'cv_mean', best_cv->'std', 'cv_std');
    RETURN res;
END $$;

CREATE FUNCTION mlpipe.search(model text, algorithm text, source text, target text, features text[],
    space jsonb, strategy text DEFAULT 'grid', folds int DEFAULT 5, trials int DEFAULT 20,
    gate jsonb DEFAULT NULL)
RETURNS TABLE (model text, version int, promoted boolean, metrics jsonb, run_id bigint)
LANGUAGE sql VOLATILE AS $$
    SELECT * FROM mlpipe._search($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
$$;

-- Privileges: aggregates stay PUBLIC; evaluation reads sources as the
-- caller (SECURITY INVOKER) and is for mlpipe_trainer.
DO $$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY[
        'mlpipe._eval_from(text)', 'mlpipe._eval_model(text)', 'mlpipe._eval_input(text[], boolean)',
        'mlpipe._eval_metrics(bytea, text, text[], text[], text, text)',
        'mlpipe._eval_finish_run(bigint, bigint, jsonb, jsonb, text, jsonb, text)',
        'mlpipe.evaluate(text, text)',
        'mlpipe._cross_validate(text, text, text, text[], jsonb, int, bigint, text)',
        'mlpipe.cross_validate(text, text, text, text[], jsonb, int)',
        'mlpipe._search_candidates(jsonb, text, int)',
        'mlpipe._search(text, text, text, text, text[], jsonb, text, int, int, jsonb)',
        'mlpipe.search(text, text, text, text, text[], jsonb, text, int, int, jsonb)'] LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO mlpipe_trainer', f);
    END LOOP;
END $$;
-- Preprocessing and row-form scoring (docs/preprocessing.md).
-- Row forms of predict, predict_label and predict_proba: the row's columns
-- are matched to the model's raw inputs by name (extra columns ignored),
-- once per statement and row type, and the stored preprocessing applied.
CREATE FUNCTION mlpipe.predict(model_ref text, "row" record) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_predict_row_ref'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE FUNCTION mlpipe.predict(model bytea, "row" record) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_predict_row_bytea'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION mlpipe.predict_label(model_ref text, "row" record) RETURNS text
AS 'MODULE_PATHNAME', 'mlpipe_predict_label_row_ref'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE FUNCTION mlpipe.predict_label(model bytea, "row" record) RETURNS text
AS 'MODULE_PATHNAME', 'mlpipe_predict_label_row_bytea'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION mlpipe.predict_proba(model_ref text, "row" record) RETURNS float8[]
AS 'MODULE_PATHNAME', 'mlpipe_predict_proba_row_ref'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE FUNCTION mlpipe.predict_proba(model bytea, "row" record) RETURNS float8[]
AS 'MODULE_PATHNAME', 'mlpipe_predict_proba_row_bytea'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- By name: scorers and up. By artifact: the caller already holds the bytes
-- (the float8[] bytea forms are PUBLIC too), so they stay PUBLIC.
REVOKE ALL ON FUNCTION mlpipe.predict(text, record) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe.predict_label(text, record) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe.predict_proba(text, record) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.predict(text, record) TO mlpipe_scorer;
GRANT EXECUTE ON FUNCTION mlpipe.predict_label(text, record) TO mlpipe_scorer;
GRANT EXECUTE ON FUNCTION mlpipe.predict_proba(text, record) TO mlpipe_scorer;
--------------------------------------------------------------------------
-- 40-registry: registry operations (promote, rollback, version_at, prune,
-- tags, model_info with lineage), events, the fit token that keeps
-- _register honest, and the privileges of every 0.1.0/0.2.0 object.
-- See docs/registry.md and docs/security.md.
--------------------------------------------------------------------------

-- The history stays append-only even with session_replication_role =
-- replica: the triggers fire in every mode.
ALTER TABLE mlpipe.alias_events ENABLE ALWAYS TRIGGER alias_events_append_only;
ALTER TABLE mlpipe.alias_events ENABLE ALWAYS TRIGGER alias_events_no_truncate;

-- True, once, when mlpipe._fit returned exactly this result for this
-- algorithm in the current transaction (src/pg/registry.c).
CREATE FUNCTION mlpipe._fit_claim(fit mlpipe.fit_result, algorithm text) RETURNS boolean
AS 'MODULE_PATHNAME', 'mlpipe_fit_claim'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION mlpipe._fit_claim(mlpipe.fit_result, text) FROM PUBLIC;

-- 42704 naming the model, with the registered names in the HINT, unless it exists.
CREATE FUNCTION mlpipe._require_model(p_model text) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    known text;
BEGIN
    IF p_model IS NULL THEN
        RAISE EXCEPTION 'model name is NULL' USING ERRCODE = '22004';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM mlpipe.models m WHERE m.name = p_model) THEN
        SELECT string_agg(quote_literal(m.name), ', ' ORDER BY m.name) INTO known
          FROM (SELECT name FROM mlpipe.models ORDER BY name LIMIT 20) m;
        RAISE EXCEPTION 'model "%" does not exist', p_model
            USING ERRCODE = '42704',
                  HINT = coalesce('Registered models: ' || known || '.',
                                  'No model is registered yet; train one with mlpipe.train().');
    END IF;
END $$;
REVOKE ALL ON FUNCTION mlpipe._require_model(text) FROM PUBLIC;

-- 22023 unless p_alias is a valid alias name (the rule of mlpipe.aliases).
CREATE FUNCTION mlpipe._require_alias_name(p_alias text) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF p_alias IS NULL THEN
        RAISE EXCEPTION 'alias is NULL' USING ERRCODE = '22004';
    END IF;
    IF p_alias !~ '^[A-Za-z_][A-Za-z0-9_-]*$' OR length(p_alias) > 63 THEN
        RAISE EXCEPTION 'invalid alias name %', quote_literal(left(p_alias, 100))
            USING ERRCODE = '22023',
                  HINT = 'An alias is a letter or underscore followed by up to 62 letters, digits, "_" or "-".';
    END IF;
END $$;
REVOKE ALL ON FUNCTION mlpipe._require_alias_name(text) FROM PUBLIC;

-- model_ref resolution (unchanged behaviour; the model check is shared).
CREATE OR REPLACE FUNCTION mlpipe.resolve(model_ref text, OUT model text, OUT version int)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    at_pos int := position('@' IN model_ref);
    suffix text;
    known  text;
BEGIN
    IF model_ref IS NULL THEN
        RAISE EXCEPTION 'model reference is NULL' USING ERRCODE = '22004';
    END IF;
    model := CASE WHEN at_pos > 0 THEN left(model_ref, at_pos - 1) ELSE model_ref END;
    suffix := CASE WHEN at_pos > 0 THEN substr(model_ref, at_pos + 1) ELSE 'production' END;
    PERFORM mlpipe._require_model(model);
    IF suffix ~ '^[0-9]{1,9}$' THEN
        version := suffix::int;
        IF NOT EXISTS (SELECT 1 FROM mlpipe.model_versions v
                        WHERE v.model = resolve.model AND v.version = resolve.version) THEN
            SELECT string_agg(v.version::text, ', ' ORDER BY v.version) INTO known
              FROM mlpipe.model_versions v WHERE v.model = resolve.model;
            RAISE EXCEPTION 'model "%" has no version %', model, version
                USING ERRCODE = '42704', HINT = coalesce('Versions: ' || known || '.', 'It has no versions.');
        END IF;
    ELSE
        SELECT a.version INTO version FROM mlpipe.aliases a
         WHERE a.model = resolve.model AND a.alias = suffix;
        IF NOT FOUND THEN
            SELECT string_agg(a.alias || ' -> ' || a.version, ', ' ORDER BY a.alias) INTO known
              FROM mlpipe.aliases a WHERE a.model = resolve.model;
            RAISE EXCEPTION 'model "%" has no alias "%"', model, suffix
                USING ERRCODE = '42704',
                      HINT = coalesce('Aliases: ' || known || '. Use name@version for a specific version.',
                                      'It has no aliases; use name@version.');
        END IF;
    END IF;
END $$;

--------------------------------------------------------------------------
-- Events: NOTIFY mlpipe_events, delivered at commit. Every payload is JSON
-- with event, at, by and what the caller gives (model, version, alias,
-- run_id, details). NOTIFY refuses payloads of 8000 bytes or more: a larger
-- one keeps event, model, version, alias, run_id, at and by, then as many
-- other keys as fit (shortest first), cuts a long string value with "…",
-- and says "truncated": true. It stays valid JSON under 7900 bytes.
--------------------------------------------------------------------------
CREATE FUNCTION mlpipe._event_payload(event text, payload jsonb) RETURNS text
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    lim   constant int := 7900;
    core  constant text[] := ARRAY['event', 'model', 'version', 'alias', 'run_id', 'at', 'by'];
    msg   jsonb := jsonb_build_object('at', clock_timestamp(), 'by', session_user)
                   || coalesce(payload, '{}') || jsonb_build_object('event', event);
    small jsonb;
    k     text;
    v     jsonb;
    s     text;
    n     int;
    over  int;
BEGIN
    IF octet_length(msg::text) > lim THEN
        -- model names are at most 200 characters and aliases 63: this fits.
        SELECT coalesce(jsonb_object_agg(e.key, e.value), '{}') || '{"truncated": true}'
          INTO small FROM jsonb_each(msg) e WHERE e.key = ANY (core);
        FOR k, v IN SELECT e.key, e.value FROM jsonb_each(msg) e WHERE e.key <> ALL (core)
                     ORDER BY octet_length(e.value::text), e.key LOOP
            IF octet_length((small || jsonb_build_object(k, v))::text) <= lim THEN
                small := small || jsonb_build_object(k, v);
            ELSIF jsonb_typeof(v) = 'string' THEN
                s := v #>> '{}';
                n := least(length(s), lim);
                LOOP
                    over := octet_length((small || jsonb_build_object(k, left(s, n) || '…'))::text) - lim;
                    EXIT WHEN over <= 0 OR n <= 0;
                    n := n - greatest(over, 1);
                END LOOP;
                IF n > 0 THEN
                    small := small || jsonb_build_object(k, left(s, n) || '…');
                END IF;
            END IF;
        END LOOP;
        msg := small;
    END IF;
    RETURN msg::text;
END $$;
REVOKE ALL ON FUNCTION mlpipe._event_payload(text, jsonb) FROM PUBLIC;

-- Sends an event on the mlpipe_events channel (delivered at commit).
CREATE OR REPLACE FUNCTION mlpipe._notify(event text, payload jsonb) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT pg_catalog.pg_notify('mlpipe_events', mlpipe._event_payload(event, payload))
$$;

--------------------------------------------------------------------------
-- Registration. Same signature as before (mlpipe._train calls it); it now
-- refuses a fit_result that mlpipe._fit did not produce in this transaction,
-- records the warm-start parent as (model, version), and every event carries
-- model, version, alias and run_id.
--------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION mlpipe._register(
    p_model text, p_algorithm text, p_source text, p_target text, p_params jsonb,
    p_gate jsonb, p_started timestamptz, p_fit mlpipe.fit_result)
RETURNS mlpipe.train_result
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_version int;
    v_run     bigint;
    verdict   jsonb;
    v_task    text := p_fit.task;
    ok        boolean;
    lin       jsonb;
    parent    record;
BEGIN
    IF NOT mlpipe._fit_claim(p_fit, p_algorithm) THEN
        RAISE EXCEPTION 'mlpipe._register accepts only a result of mlpipe._fit from the same transaction'
            USING ERRCODE = '42501',
                  HINT = 'Train with mlpipe.train(); a fit result cannot be edited or registered twice.';
    END IF;
    INSERT INTO mlpipe.models AS m (name, task, algorithm, created_by)
        VALUES (p_model, v_task, p_algorithm, session_user)
        ON CONFLICT (name) DO NOTHING;
    -- Locks the model row (serialises version numbers) and checks the task:
    -- a name keeps one meaning, so predict never changes what it returns.
    IF (SELECT m.task FROM mlpipe.models m WHERE m.name = p_model FOR UPDATE) <> v_task THEN
        RAISE EXCEPTION 'model "%" is a % model; this training is %', p_model,
            (SELECT m.task FROM mlpipe.models m WHERE m.name = p_model), v_task
            USING ERRCODE = '22023', HINT = 'Register it under another model name.';
    END IF;
    SELECT coalesce(max(v.version), 0) + 1 INTO v_version
      FROM mlpipe.model_versions v WHERE v.model = p_model;

    INSERT INTO mlpipe.runs (kind, model, version, algorithm, source, params, status, rows,
                             started_at, finished_at, seconds, created_by)
    VALUES ('train', p_model, v_version, p_algorithm, p_source, p_params, 'succeeded',
            (p_fit.info->>'training_rows')::bigint, p_started, clock_timestamp(),
            extract(epoch FROM clock_timestamp() - p_started), session_user)
    RETURNING runs.run_id INTO v_run;

    verdict := mlpipe._gate_verdict(p_model, v_task, p_fit.metrics, p_gate);
    ok := (verdict->>'passed')::boolean;

    -- Lineage: the warm-start reference resolved now, so it stays exact when
    -- the alias it named moves later.
    lin := coalesce(p_fit.info, '{}') - 'training_rows' - 'skipped_rows' - 'metrics_split';
    IF jsonb_typeof(lin->'warm_start') = 'string' THEN
        BEGIN
            SELECT r.model, r.version INTO parent FROM mlpipe.resolve(lin->>'warm_start') r;
            lin := lin || jsonb_build_object('parent',
                             jsonb_build_object('model', parent.model, 'version', parent.version));
        EXCEPTION WHEN undefined_object THEN
            NULL;   -- '(artifact)' or a reference gone meanwhile: keep the text only
        END;
    END IF;

    INSERT INTO mlpipe.model_versions (model, version, algorithm, task, params, features, target,
        classes, metrics, training_rows, skipped_rows, artifact, sha256, status, gate, run_id,
        source, mlpipe_version, lineage, created_by)
    VALUES (p_model, v_version, p_algorithm, v_task, p_params, p_fit.feature_names, p_target,
        p_fit.classes, p_fit.metrics, (p_fit.info->>'training_rows')::bigint,
        coalesce((p_fit.info->>'skipped_rows')::bigint, 0), p_fit.artifact,
        encode(sha256(p_fit.artifact), 'hex'), CASE WHEN ok THEN 'promoted' ELSE 'candidate' END,
        jsonb_build_object('policy', p_gate) || verdict, v_run, p_source, mlpipe.version(),
        lin, session_user);

    INSERT INTO mlpipe.metrics (run_id, model, version, split, metric, value)
    SELECT v_run, p_model, v_version, coalesce(p_fit.info->>'metrics_split', 'test'), e.key, (e.value)::text::float8
      FROM jsonb_each(p_fit.metrics) e WHERE jsonb_typeof(e.value) = 'number';

    PERFORM mlpipe._notify('version_registered',
        jsonb_build_object('model', p_model, 'version', v_version, 'alias', 'production',
                           'run_id', v_run, 'algorithm', p_algorithm, 'task', v_task,
                           'status', CASE WHEN ok THEN 'promoted' ELSE 'candidate' END));
    IF ok THEN
        PERFORM mlpipe._set_alias(p_model, 'production', v_version, 'promote', verdict->>'reason');
        PERFORM mlpipe._notify('promoted', jsonb_build_object('model', p_model, 'version', v_version,
            'alias', 'production', 'run_id', v_run, 'reason', verdict->>'reason'));
    ELSE
        PERFORM mlpipe._notify('gate_failed', jsonb_build_object('model', p_model, 'version', v_version,
            'alias', 'production', 'run_id', v_run, 'reason', verdict->>'reason',
            'metric', verdict->'metric', 'value', verdict->'value'));
    END IF;
    RETURN ROW(p_model, v_version, ok, p_fit.metrics, v_run)::mlpipe.train_result;
END $$;

--------------------------------------------------------------------------
-- Alias operations.
--------------------------------------------------------------------------

-- Points alias at a version and records who, when, from which version, to
-- which and why. With a gate, the version must pass it first: a failing
-- version keeps its alias unchanged, stores the verdict in
-- model_versions.gate, sends gate_failed and returns NULL. Promoting the
-- version the alias already holds changes nothing (no event).
CREATE FUNCTION mlpipe.promote(model text, version int, alias text DEFAULT 'production',
                               reason text DEFAULT NULL, gate jsonb DEFAULT NULL)
RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p_model   text := $1;
    p_version int := $2;
    p_alias   text := $3;
    p_reason  text := $4;
    p_gate    jsonb := $5;
    cur       int;
    v_task    text;
    v_metrics jsonb;
    v_run     bigint;
    verdict   jsonb;
BEGIN
    PERFORM mlpipe._require_model(p_model);
    PERFORM mlpipe._require_alias_name(p_alias);
    IF p_version IS NULL OR p_version < 1 THEN
        RAISE EXCEPTION 'version must be a positive version number, not %', coalesce(p_version::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    PERFORM 1 FROM mlpipe.models m WHERE m.name = p_model FOR UPDATE;   -- one alias change at a time
    PERFORM mlpipe.resolve(p_model || '@' || p_version);                -- 42704 listing the versions
    SELECT v.task, v.metrics, v.run_id INTO v_task, v_metrics, v_run
      FROM mlpipe.model_versions v WHERE v.model = p_model AND v.version = p_version;
    SELECT a.version INTO cur FROM mlpipe.aliases a WHERE a.model = p_model AND a.alias = p_alias;
    IF cur = p_version THEN
        RAISE NOTICE 'alias "%" of model "%" already points to version %', p_alias, p_model, p_version;
        RETURN p_version;
    END IF;
    IF p_gate IS NOT NULL THEN
        verdict := mlpipe._gate_verdict(p_model, v_task, v_metrics, p_gate);
        IF NOT (verdict->>'passed')::boolean THEN
            UPDATE mlpipe.model_versions v
               SET gate = jsonb_build_object('policy', p_gate, 'alias', p_alias, 'at', clock_timestamp())
                          || verdict
             WHERE v.model = p_model AND v.version = p_version;
            PERFORM mlpipe._notify('gate_failed', jsonb_build_object('model', p_model, 'version', p_version,
                'alias', p_alias, 'run_id', v_run, 'reason', verdict->>'reason',
                'metric', verdict->'metric', 'value', verdict->'value'));
            RAISE NOTICE 'version % of model "%" was not promoted to "%": %',
                p_version, p_model, p_alias, verdict->>'reason';
            RETURN NULL;
        END IF;
    END IF;
    PERFORM mlpipe._set_alias(p_model, p_alias, p_version, 'promote', p_reason);
    IF p_alias = 'production' THEN
        UPDATE mlpipe.model_versions v SET status = 'promoted'
         WHERE v.model = p_model AND v.version = p_version;
    END IF;
    PERFORM mlpipe._notify('promoted', jsonb_build_object('model', p_model, 'version', p_version,
        'alias', p_alias, 'run_id', v_run, 'from_version', cur, 'reason', p_reason));
    RETURN p_version;
END $$;

-- The rollback stack of an alias, replayed from alias_events: every change
-- pushes the version it set, a rollback to version t pops the current
-- version and then every entry above the last t. The last element is the
-- version the alias holds.
CREATE FUNCTION mlpipe._alias_stack(p_model text, p_alias text) RETURNS int[]
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    st int[] := '{}';
    ev record;
BEGIN
    FOR ev IN SELECT e.action, e.to_version FROM mlpipe.alias_events e
               WHERE e.model = p_model AND e.alias = p_alias ORDER BY e.event_id LOOP
        IF ev.action = 'rollback' THEN
            st := st[1:cardinality(st) - 1];
            WHILE cardinality(st) > 0 AND st[cardinality(st)] IS DISTINCT FROM ev.to_version LOOP
                st := st[1:cardinality(st) - 1];
            END LOOP;
            IF cardinality(st) = 0 THEN
                st := ARRAY[ev.to_version];
            END IF;
        ELSE
            st := st || ev.to_version;
        END IF;
    END LOOP;
    RETURN st;
END $$;
REVOKE ALL ON FUNCTION mlpipe._alias_stack(text, text) FROM PUBLIC;

-- Moves alias back to the version it held before its current one, undoing
-- alias changes one at a time: promote 1, 2, 3, 4 then rollback three times
-- gives 3, 2, 1; a promotion after a rollback is undone first. Versions
-- pruned since, and the current version itself, are skipped. Returns the
-- version the alias now points to; 55000 when there is nothing to go back to.
CREATE FUNCTION mlpipe.rollback(model text, alias text DEFAULT 'production', reason text DEFAULT NULL)
RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p_model  text := $1;
    p_alias  text := $2;
    p_reason text := $3;
    cur      int;
    st       int[];
    v_target   int;
    v_run    bigint;
    known    text;
BEGIN
    PERFORM mlpipe._require_model(p_model);
    PERFORM mlpipe._require_alias_name(p_alias);
    PERFORM 1 FROM mlpipe.models m WHERE m.name = p_model FOR UPDATE;
    SELECT a.version INTO cur FROM mlpipe.aliases a WHERE a.model = p_model AND a.alias = p_alias;
    IF NOT FOUND THEN
        SELECT string_agg(a.alias || ' -> ' || a.version, ', ' ORDER BY a.alias) INTO known
          FROM mlpipe.aliases a WHERE a.model = p_model;
        RAISE EXCEPTION 'model "%" has no alias "%"', p_model, p_alias
            USING ERRCODE = '42704', HINT = coalesce('Aliases: ' || known || '.', 'It has no aliases.');
    END IF;
    st := mlpipe._alias_stack(p_model, p_alias);
    st := st[1:cardinality(st) - 1];
    WHILE cardinality(st) > 0 LOOP
        IF st[cardinality(st)] <> cur AND EXISTS (
               SELECT 1 FROM mlpipe.model_versions v
                WHERE v.model = p_model AND v.version = st[cardinality(st)]) THEN
            v_target := st[cardinality(st)];
            EXIT;
        END IF;
        st := st[1:cardinality(st) - 1];
    END LOOP;
    IF v_target IS NULL THEN
        RAISE EXCEPTION 'alias "%" of model "%" has no earlier version to roll back to', p_alias, p_model
            USING ERRCODE = '55000',
                  HINT = 'It has held only its current version (or the earlier ones were pruned); use mlpipe.promote() to point it elsewhere.';
    END IF;
    PERFORM mlpipe._set_alias(p_model, p_alias, v_target, 'rollback', p_reason);
    SELECT v.run_id INTO v_run FROM mlpipe.model_versions v WHERE v.model = p_model AND v.version = v_target;
    PERFORM mlpipe._notify('rolled_back', jsonb_build_object('model', p_model, 'version', v_target,
        'alias', p_alias, 'run_id', v_run, 'from_version', cur, 'reason', p_reason));
    RETURN v_target;
END $$;

-- The version alias pointed to at time at, from alias_events; NULL before
-- the alias was first set. 42704 for an unknown model or an alias the
-- model never had.
CREATE FUNCTION mlpipe.version_at(model text, at timestamptz, alias text DEFAULT 'production')
RETURNS int
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p_model text := $1;
    p_at    timestamptz := $2;
    p_alias text := $3;
    known   text;
    result  int;
BEGIN
    PERFORM mlpipe._require_model(p_model);
    IF p_alias IS NULL THEN
        RAISE EXCEPTION 'alias is NULL' USING ERRCODE = '22004';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM mlpipe.alias_events e WHERE e.model = p_model AND e.alias = p_alias) THEN
        SELECT string_agg(DISTINCT quote_literal(e.alias), ', ') INTO known
          FROM mlpipe.alias_events e WHERE e.model = p_model;
        RAISE EXCEPTION 'model "%" never had alias "%"', p_model, p_alias
            USING ERRCODE = '42704', HINT = coalesce('Aliases it has had: ' || known || '.', 'It has had no aliases.');
    END IF;
    IF p_at IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT e.to_version INTO result FROM mlpipe.alias_events e
     WHERE e.model = p_model AND e.alias = p_alias AND e.at <= p_at
     ORDER BY e.event_id DESC LIMIT 1;
    RETURN result;
END $$;

--------------------------------------------------------------------------
-- Pruning.
--------------------------------------------------------------------------

-- Deletes old versions of a model (artifact and all) and returns their
-- numbers. Kept: the keep newest versions (keep >= 1, so version numbers are
-- never reused), every version an alias points to, and every version an
-- alias pointed to at any moment within the last `retain` (default 30 days;
-- that window is what version_at and rollback can still reach). Runs,
-- metrics and alias_events rows stay: they are the history. The call is
-- logged as a run of kind 'prune'.
CREATE FUNCTION mlpipe.prune(model text, keep int, retain interval DEFAULT '30 days')
RETURNS int[]
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p_model  text := $1;
    p_keep   int := $2;
    p_retain interval := $3;
    started  timestamptz := clock_timestamp();
    removed  int[];
BEGIN
    PERFORM mlpipe._require_model(p_model);
    IF p_keep IS NULL OR p_keep < 1 THEN
        RAISE EXCEPTION 'keep must be at least 1, not %', coalesce(p_keep::text, 'NULL')
            USING ERRCODE = '22023', HINT = 'The newest version is always kept so version numbers are never reused.';
    END IF;
    IF p_retain IS NULL OR p_retain < interval '0' THEN
        RAISE EXCEPTION 'retain must be a non-negative interval such as ''30 days'''
            USING ERRCODE = '22023';
    END IF;
    PERFORM 1 FROM mlpipe.models m WHERE m.name = p_model FOR UPDATE;
    WITH held AS (
        SELECT e.to_version AS version,
               lead(e.at) OVER (PARTITION BY e.alias ORDER BY e.event_id) AS until
          FROM mlpipe.alias_events e WHERE e.model = p_model
    ), protected AS (
        SELECT a.version FROM mlpipe.aliases a WHERE a.model = p_model
        UNION
        SELECT h.version FROM held h
         WHERE h.version IS NOT NULL AND coalesce(h.until, 'infinity') >= started - p_retain
        UNION
        (SELECT v.version FROM mlpipe.model_versions v WHERE v.model = p_model
          ORDER BY v.version DESC LIMIT p_keep)
    ), gone AS (
        DELETE FROM mlpipe.model_versions v
         WHERE v.model = p_model AND v.version NOT IN (SELECT p.version FROM protected p)
        RETURNING v.version
    )
    SELECT coalesce(array_agg(g.version ORDER BY g.version), '{}') INTO removed FROM gone g;
    PERFORM mlpipe._log_run('prune', p_model, NULL, NULL, NULL,
        jsonb_build_object('keep', p_keep, 'retain', p_retain::text, 'removed', to_jsonb(removed)),
        'succeeded', NULL, cardinality(removed), started);
    RETURN removed;
END $$;

--------------------------------------------------------------------------
-- Tags: text values under text keys in models.tags / model_versions.tags.
--------------------------------------------------------------------------

-- 22023 unless key is a usable tag key; 54000 for a value over 4096 characters.
CREATE FUNCTION mlpipe._require_tag(p_key text, p_value text, p_unset boolean) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF p_key IS NULL OR p_key = '' OR length(p_key) > 128 OR p_key ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'invalid tag key %', coalesce(quote_literal(left(p_key, 100)), 'NULL')
            USING ERRCODE = '22023', HINT = 'A tag key is 1 to 128 characters without control characters.';
    END IF;
    IF NOT p_unset AND p_value IS NULL THEN
        RAISE EXCEPTION 'tag "%" needs a value', p_key
            USING ERRCODE = '22004', HINT = 'Use mlpipe.untag() to remove a tag.';
    END IF;
    IF length(p_value) > 4096 THEN
        RAISE EXCEPTION 'tag "%" value is % characters; the limit is 4096', p_key, length(p_value)
            USING ERRCODE = '54000';
    END IF;
END $$;
REVOKE ALL ON FUNCTION mlpipe._require_tag(text, text, boolean) FROM PUBLIC;

-- Sets (or with NULL p_value and p_unset, removes) a tag on a model, or on
-- one of its versions when p_version is given; returns the tags after.
CREATE FUNCTION mlpipe._set_tag(p_model text, p_version int, p_key text, p_value text, p_unset boolean)
RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    result jsonb;
BEGIN
    PERFORM mlpipe._require_model(p_model);
    PERFORM mlpipe._require_tag(p_key, p_value, p_unset);
    IF p_version IS NULL THEN
        UPDATE mlpipe.models m
           SET tags = CASE WHEN p_unset THEN m.tags - p_key ELSE m.tags || jsonb_build_object(p_key, p_value) END
         WHERE m.name = p_model RETURNING m.tags INTO result;
    ELSE
        PERFORM mlpipe.resolve(p_model || '@' || p_version);
        UPDATE mlpipe.model_versions v
           SET tags = CASE WHEN p_unset THEN v.tags - p_key ELSE v.tags || jsonb_build_object(p_key, p_value) END
         WHERE v.model = p_model AND v.version = p_version RETURNING v.tags INTO result;
    END IF;
    RETURN result;
END $$;
REVOKE ALL ON FUNCTION mlpipe._set_tag(text, int, text, text, boolean) FROM PUBLIC;

CREATE FUNCTION mlpipe.tag(model text, key text, value text) RETURNS jsonb
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT mlpipe._set_tag($1, NULL, $2, $3, false)
$$;
CREATE FUNCTION mlpipe.tag(model text, version int, key text, value text) RETURNS jsonb
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT mlpipe._set_tag($1, $2, $3, $4, false)
$$;
CREATE FUNCTION mlpipe.untag(model text, key text) RETURNS jsonb
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT mlpipe._set_tag($1, NULL, $2, NULL, true)
$$;
CREATE FUNCTION mlpipe.untag(model text, version int, key text) RETURNS jsonb
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT mlpipe._set_tag($1, $2, $3, NULL, true)
$$;

--------------------------------------------------------------------------
-- model_info with tags and lineage: source, rows, as_of (when the training
-- used time travel), parent (the warm-start version, when there was one),
-- children (versions warm-started from this one) and the training run_id.
--------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION mlpipe.model_info(model_ref text) RETURNS jsonb
LANGUAGE sql STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_build_object(
        'model', v.model, 'version', v.version, 'algorithm', v.algorithm, 'task', v.task,
        'status', v.status, 'features', to_jsonb(v.features), 'target', v.target,
        'classes', to_jsonb(v.classes), 'params', v.params, 'metrics', v.metrics,
        'training_rows', v.training_rows, 'skipped_rows', v.skipped_rows,
        'size', v.size, 'sha256', v.sha256, 'gate', v.gate,
        'created_at', v.created_at, 'created_by', v.created_by, 'run_id', v.run_id,
        'aliases', coalesce((SELECT jsonb_object_agg(a.alias, a.version ORDER BY a.alias)
                               FROM mlpipe.aliases a WHERE a.model = v.model AND a.version = v.version), '{}'),
        'tags', v.tags,
        'model_tags', (SELECT m.tags FROM mlpipe.models m WHERE m.name = v.model),
        'lineage', jsonb_build_object('source', v.source, 'rows', v.training_rows,
                                      'mlpipe_version', v.mlpipe_version) || v.lineage
            || jsonb_strip_nulls(jsonb_build_object('as_of', coalesce(v.lineage->'as_of', v.params->'as_of')))
            || jsonb_build_object(
                'run_id', v.run_id,
                'children', coalesce((SELECT jsonb_agg(jsonb_build_object('model', c.model, 'version', c.version)
                                                       ORDER BY c.model, c.version)
                                        FROM mlpipe.model_versions c
                                       WHERE c.lineage->'parent' = jsonb_build_object('model', v.model, 'version', v.version)),
                                     '[]')))
      FROM mlpipe.model_versions v, mlpipe.resolve(model_ref) r
     WHERE v.model = r.model AND v.version = r.version
$$;

--------------------------------------------------------------------------
-- Privileges: the role matrix of docs/security.md. Functions are granted to
-- the lowest role that may call them (roles include the ones below).
--------------------------------------------------------------------------

-- reader: the registry tables and read-only registry information.
GRANT SELECT ON mlpipe.models, mlpipe.model_versions, mlpipe.aliases, mlpipe.alias_events,
                mlpipe.runs, mlpipe.metrics TO mlpipe_reader;
GRANT EXECUTE ON FUNCTION mlpipe.resolve(text), mlpipe.artifact(text), mlpipe.features(text),
    mlpipe.classes(text), mlpipe.model_info(text), mlpipe.export(text),
    mlpipe.feature_importance(text), mlpipe.version_at(text, timestamptz, text),
    mlpipe._resolve_key(text), mlpipe._artifact_at(text, int) TO mlpipe_reader;
REVOKE ALL ON FUNCTION mlpipe.feature_importance(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe.version_at(text, timestamptz, text) FROM PUBLIC;

-- scorer: every predict form that exists by now (0.2.0's and the row forms
-- of earlier fragments), by name and by artifact: scoring is the scorer's right.
DO $$
DECLARE f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
              WHERE p.pronamespace = 'mlpipe'::regnamespace
                AND p.proname IN ('predict', 'predict_label', 'predict_proba') LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO mlpipe_scorer', f);
    END LOOP;
END $$;

-- trainer: train and what it calls as the caller (_train, _fit, _register,
-- which only takes a genuine _fit result) and events.
REVOKE ALL ON FUNCTION mlpipe.train(text, text, text, text, text[], jsonb, jsonb),
    mlpipe._train(text, text, text, text, text[], jsonb, jsonb),
    mlpipe._notify(text, jsonb), mlpipe._gate_verdict(text, text, jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.train(text, text, text, text, text[], jsonb, jsonb),
    mlpipe._train(text, text, text, text, text[], jsonb, jsonb),
    mlpipe._fit(text, text, text, text[], jsonb, bytea),
    mlpipe._register(text, text, text, text, jsonb, jsonb, timestamptz, mlpipe.fit_result),
    mlpipe._notify(text, jsonb), mlpipe._event_payload(text, jsonb) TO mlpipe_trainer;

-- admin: alias changes, pruning, tags.
REVOKE ALL ON FUNCTION mlpipe.promote(text, int, text, text, jsonb), mlpipe.rollback(text, text, text),
    mlpipe.prune(text, int, interval), mlpipe.tag(text, text, text), mlpipe.tag(text, int, text, text),
    mlpipe.untag(text, text), mlpipe.untag(text, int, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.promote(text, int, text, text, jsonb), mlpipe.rollback(text, text, text),
    mlpipe.prune(text, int, interval), mlpipe.tag(text, text, text), mlpipe.tag(text, int, text, text),
    mlpipe.untag(text, text), mlpipe.untag(text, int, text) TO mlpipe_admin;

-- The per-statement lookup of the name forms of predict, in plpgsql so that
-- its plans are cached for the session (a SQL function is planned again on
-- every call): one-row predict went from 0.35x to 0.5x the transactions per
-- second of a bare SELECT.
CREATE OR REPLACE FUNCTION mlpipe._resolve_key(model_ref text, OUT model text, OUT version int, OUT sha256 text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    SELECT r.model, r.version INTO model, version FROM mlpipe.resolve(model_ref) r;
    SELECT v.sha256 INTO sha256 FROM mlpipe.model_versions v
     WHERE v.model = _resolve_key.model AND v.version = _resolve_key.version;
    IF sha256 IS NULL THEN
        RAISE EXCEPTION 'model version %@% has no artifact', model, version USING ERRCODE = '42704';
    END IF;
END $$;
-- Batch scoring into tables, training profiles and drift, data checks before
-- training, and data time travel (params.as_of). See docs/batch-scoring.md,
-- docs/drift.md and docs/time-travel.md.

-- The training profile of a version: per feature, quantile bin edges and
-- counts (numeric) or top category counts (categorical), and null rates.
ALTER TABLE mlpipe.model_versions ADD COLUMN profile jsonb;
COMMENT ON COLUMN mlpipe.model_versions.profile IS
    'Per-feature training profile (bins, counts, null rates) that mlpipe.drift compares against.';

--------------------------------------------------------------------------
-- C helpers (src/pg/drift.c).
--------------------------------------------------------------------------

-- A classifier's class index, label and probabilities for predict_table:
-- the same as predict, predict_label and predict_proba (float8[] forms), but
-- the three calls for a row share one evaluation (a per-backend memo of the
-- last row scored, src/pg/predict.c).
CREATE FUNCTION mlpipe._score_class(model_ref text, features float8[]) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_score_class_ref'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION mlpipe._score_label(model_ref text, features float8[]) RETURNS text
AS 'MODULE_PATHNAME', 'mlpipe_score_label_ref'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION mlpipe._score_proba(model_ref text, features float8[]) RETURNS float8[]
AS 'MODULE_PATHNAME', 'mlpipe_score_proba_ref'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

-- The SELECT a source (table, view or query) stands for, as training reads it.
CREATE FUNCTION mlpipe._source_sql(source text) RETURNS text
AS 'MODULE_PATHNAME', 'mlpipe_source_sql'
LANGUAGE C STABLE STRICT;

-- Column names and types of a source, read as the caller (LIMIT 0).
CREATE FUNCTION mlpipe._source_columns(source text)
RETURNS TABLE (name text, type regtype, ord int)
AS 'MODULE_PATHNAME', 'mlpipe_source_columns'
LANGUAGE C VOLATILE STRICT;

CREATE FUNCTION mlpipe._bin_counts_accum(bigint[], int, int) RETURNS bigint[]
AS 'MODULE_PATHNAME', 'mlpipe_bin_counts_accum'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION mlpipe._bin_counts_combine(bigint[], bigint[]) RETURNS bigint[]
AS 'MODULE_PATHNAME', 'mlpipe_bin_counts_combine'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

-- Rows per bin: _bin_counts(bin, nbins) is a bigint[nbins] of counts
-- (bins are 0-based; a NULL bin is not counted). Parallel safe.
CREATE AGGREGATE mlpipe._bin_counts(int, int) (
    SFUNC = mlpipe._bin_counts_accum,
    STYPE = bigint[],
    COMBINEFUNC = mlpipe._bin_counts_combine,
    PARALLEL = SAFE
);

-- Sorted distinct non-null values of an array: quantiles to bin edges.
CREATE FUNCTION mlpipe._edges(float8[]) RETURNS float8[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT x ORDER BY x) FILTER (WHERE x IS NOT NULL), '{}')
      FROM unnest($1) x
$$;

-- The bin of a value given sorted distinct edges e[1..n] (the training
-- minimum, deciles and maximum): 0 below e[1], 2k - 1 for x = e[k], 2k for
-- e[k] < x < e[k+1] (2n above the maximum): 2n + 1 bins. Edges are bins of
-- their own so that a heavy atom (a column that is mostly 0) does not hide
-- a change in the values around it, and values beyond the training range
-- always move the PSI.
CREATE FUNCTION mlpipe._bin_of(x float8, e float8[]) RETURNS int
AS 'MODULE_PATHNAME', 'mlpipe_bin_of'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

--------------------------------------------------------------------------
-- Sources: column plans shared by profiles, drift and predict_table.
--------------------------------------------------------------------------

-- Type class of a column type: numeric, array (of real / double precision),
-- categorical (text-like, boolean, enum) or other (not profiled).
CREATE FUNCTION mlpipe._type_class(t regtype) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE
        WHEN t IN ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype, 'real'::regtype,
                   'double precision'::regtype, 'numeric'::regtype) THEN 'numeric'
        WHEN t IN ('real[]'::regtype, 'double precision[]'::regtype) THEN 'array'
        WHEN t IN ('text'::regtype, 'character varying'::regtype, 'character'::regtype,
                   'boolean'::regtype, 'name'::regtype)
             OR (SELECT typtype FROM pg_catalog.pg_type WHERE oid = t) = 'e' THEN 'categorical'
        ELSE 'other' END
$$;

-- The features to profile: one row per model feature that is a source
-- column or an element col[i] of an array column, plus the categorical
-- columns among the training columns (features, or every column but the
-- target and params.exclude). expr is the SQL over the alias "src".
CREATE FUNCTION mlpipe._profile_plan(p_source text, p_model_features text[], p_features text[],
                                     p_target text, p_exclude jsonb)
RETURNS TABLE (feature text, kind text, col text, element int, expr text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    c record;
    f text;
BEGIN
    FOR c IN SELECT s.name, s.type, mlpipe._type_class(s.type) AS cls
               FROM mlpipe._source_columns(p_source) s ORDER BY s.ord LOOP
        IF p_features IS NOT NULL THEN
            CONTINUE WHEN NOT (c.name = ANY (p_features));
        ELSE
            CONTINUE WHEN c.name = p_target;
            CONTINUE WHEN p_exclude IS NOT NULL AND jsonb_typeof(p_exclude) = 'array'
                          AND p_exclude ? c.name;
        END IF;
        IF c.cls = 'numeric' AND c.name = ANY (p_model_features) THEN
            RETURN QUERY SELECT c.name, 'numeric'::text, c.name, NULL::int,
                                format('(src.%I)::float8', c.name);
        ELSIF c.cls = 'array' THEN
            FOR f IN SELECT m FROM unnest(p_model_features) WITH ORDINALITY u(m, o)
                      WHERE left(m, length(c.name) + 1) = c.name || '['
                        AND substr(m, length(c.name) + 2) ~ '^[0-9]{1,6}\]$' ORDER BY o LOOP
                RETURN QUERY SELECT f, 'numeric'::text, c.name,
                    rtrim(substr(f, length(c.name) + 2), ']')::int,
                    format('(src.%I)[%s]::float8', c.name, rtrim(substr(f, length(c.name) + 2), ']'));
            END LOOP;
        ELSIF c.cls = 'categorical' THEN
            RETURN QUERY SELECT c.name, 'categorical'::text, c.name, NULL::int,
                                format('(src.%I)::text', c.name);
        END IF;
    END LOOP;
END $$;

--------------------------------------------------------------------------
-- Data time travel and data checks (used by _train).
--------------------------------------------------------------------------

-- params.as_of / as_of_column: the source restricted to rows whose
-- as_of_column <= as_of, and the lineage to record. The column is quoted as
-- an identifier, the instant is normalised to ISO 8601 and quoted as a literal.
CREATE FUNCTION mlpipe._as_of_source(p_source text, p_params jsonb, OUT sql text, OUT lineage jsonb)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    col   text := p_params->>'as_of_column';
    ts    timestamptz;
    iso   text;
    ctype regtype;
BEGIN
    IF (p_params ? 'as_of') <> (p_params ? 'as_of_column') THEN
        RAISE EXCEPTION 'params.as_of and params.as_of_column go together'
            USING ERRCODE = '22023',
                  HINT = 'Give both, e.g. {"as_of": "2024-03-05 00:00+00", "as_of_column": "updated_at"}.';
    END IF;
    IF jsonb_typeof(p_params->'as_of') <> 'string' THEN
        RAISE EXCEPTION 'params.as_of must be a timestamp string, not %', jsonb_typeof(p_params->'as_of')
            USING ERRCODE = '22023';
    END IF;
    IF jsonb_typeof(p_params->'as_of_column') <> 'string' THEN
        RAISE EXCEPTION 'params.as_of_column must be a column name (string)' USING ERRCODE = '22023';
    END IF;
    BEGIN
        ts := (p_params->>'as_of')::timestamptz;
    EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format OR invalid_parameter_value THEN
        RAISE EXCEPTION 'params.as_of "%" is not a valid timestamp', p_params->>'as_of'
            USING ERRCODE = '22023', HINT = 'Use ISO 8601, e.g. "2024-03-05 00:00:00+00".';
    END;
    IF NOT isfinite(ts) THEN
        RAISE EXCEPTION 'params.as_of must be a finite timestamp, not %', p_params->>'as_of'
            USING ERRCODE = '22023';
    END IF;
    SELECT s.type INTO ctype FROM mlpipe._source_columns(p_source) s WHERE s.name = col;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'params.as_of_column names column "%", which is not in the source', col
            USING ERRCODE = '22023',
                  HINT = 'Columns: ' || (SELECT string_agg(s.name, ', ' ORDER BY s.ord) FROM mlpipe._source_columns(p_source) s) || '.';
    END IF;
    IF ctype NOT IN ('timestamp with time zone'::regtype, 'timestamp without time zone'::regtype, 'date'::regtype) THEN
        RAISE EXCEPTION 'params.as_of_column "%" has type %, not a date or timestamp', col, ctype
            USING ERRCODE = '22023';
    END IF;
    iso := to_jsonb(ts) #>> '{}';
    sql := format('SELECT * FROM (%s) AS mlpipe_as_of WHERE %I <= %L::timestamptz',
                  mlpipe._source_sql(p_source), col, iso);
    lineage := jsonb_build_object('as_of', iso, 'as_of_column', col);
END $$;

-- params.checks: validated strictly, then one query over the source;
-- every failing check is named with its figure (22000).
CREATE FUNCTION mlpipe._check_data(p_source text, p_checks jsonb) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    cols     jsonb;
    k        text;
    e        record;
    exprs    text[] := ARRAY['count(*)::text'];
    what     text[] := ARRAY['rows'];
    res      text[];
    fails    text[] := '{}';
    n        bigint;
    i        int;
    lo       text;
    hi       text;
BEGIN
    IF jsonb_typeof(p_checks) <> 'object' THEN
        RAISE EXCEPTION 'params.checks must be a JSON object, not %', jsonb_typeof(p_checks)
            USING ERRCODE = '22023', HINT = 'For example {"min_rows": 1000, "not_null": ["a"]}.';
    END IF;
    FOR k IN SELECT jsonb_object_keys(p_checks) LOOP
        IF k NOT IN ('min_rows', 'not_null', 'ranges', 'allowed') THEN
            RAISE EXCEPTION 'unknown key "%" in params.checks', k
                USING ERRCODE = '22023', HINT = 'Allowed keys: min_rows, not_null, ranges, allowed.';
        END IF;
    END LOOP;
    SELECT jsonb_object_agg(s.name, mlpipe._type_class(s.type)) INTO cols FROM mlpipe._source_columns(p_source) s;
    IF p_checks ? 'min_rows' AND (jsonb_typeof(p_checks->'min_rows') <> 'number'
        OR (p_checks->>'min_rows')::numeric < 0 OR (p_checks->>'min_rows')::numeric <> trunc((p_checks->>'min_rows')::numeric)) THEN
        RAISE EXCEPTION 'params.checks.min_rows must be a non-negative integer' USING ERRCODE = '22023';
    END IF;
    IF p_checks ? 'not_null' THEN
        IF jsonb_typeof(p_checks->'not_null') <> 'array' THEN
            RAISE EXCEPTION 'params.checks.not_null must be an array of column names' USING ERRCODE = '22023';
        END IF;
        FOR e IN SELECT v FROM jsonb_array_elements(p_checks->'not_null') v LOOP
            IF jsonb_typeof(e.v) <> 'string' THEN
                RAISE EXCEPTION 'params.checks.not_null must be an array of column names' USING ERRCODE = '22023';
            END IF;
            IF NOT cols ? (e.v #>> '{}') THEN
                RAISE EXCEPTION 'params.checks.not_null names column "%", which is not in the source', e.v #>> '{}'
                    USING ERRCODE = '22023';
            END IF;
            exprs := exprs || format('count(*) FILTER (WHERE src.%I IS NULL)::text', e.v #>> '{}');
            what := what || format('not_null: column "%s" has %%s NULL values', e.v #>> '{}');
        END LOOP;
    END IF;
    IF p_checks ? 'ranges' THEN
        IF jsonb_typeof(p_checks->'ranges') <> 'object' THEN
            RAISE EXCEPTION 'params.checks.ranges must be an object of column: [min, max]' USING ERRCODE = '22023';
        END IF;
        FOR e IN SELECT key, value FROM jsonb_each(p_checks->'ranges') LOOP
            IF NOT cols ? e.key THEN
                RAISE EXCEPTION 'params.checks.ranges names column "%", which is not in the source', e.key
                    USING ERRCODE = '22023';
            END IF;
            IF cols->>e.key <> 'numeric' THEN
                RAISE EXCEPTION 'params.checks.ranges: column "%" is not numeric', e.key USING ERRCODE = '22023';
            END IF;
            IF jsonb_typeof(e.value) <> 'array' OR jsonb_array_length(e.value) <> 2
               OR jsonb_typeof(e.value->0) NOT IN ('number', 'null') OR jsonb_typeof(e.value->1) NOT IN ('number', 'null')
               OR (jsonb_typeof(e.value->0) = 'number' AND jsonb_typeof(e.value->1) = 'number'
                   AND (e.value->>0)::float8 > (e.value->>1)::float8) THEN
                RAISE EXCEPTION 'params.checks.ranges."%" must be [min, max] with min <= max (null for no bound)', e.key
                    USING ERRCODE = '22023';
            END IF;
            lo := e.value->>0;
            hi := e.value->>1;
            exprs := exprs || format('count(*) FILTER (WHERE (src.%I)::float8 < %s OR (src.%I)::float8 > %s)::text',
                                     e.key, coalesce(quote_literal(lo) || '::float8', '''-Infinity''::float8'),
                                     e.key, coalesce(quote_literal(hi) || '::float8', '''Infinity''::float8'));
            what := what || format('ranges: column "%s" has %%s values outside [%s, %s]', e.key,
                                   coalesce(lo, '-inf'), coalesce(hi, 'inf'));
        END LOOP;
    END IF;
    IF p_checks ? 'allowed' THEN
        IF jsonb_typeof(p_checks->'allowed') <> 'object' THEN
            RAISE EXCEPTION 'params.checks.allowed must be an object of column: [values]' USING ERRCODE = '22023';
        END IF;
        FOR e IN SELECT key, value FROM jsonb_each(p_checks->'allowed') LOOP
            IF NOT cols ? e.key THEN
                RAISE EXCEPTION 'params.checks.allowed names column "%", which is not in the source', e.key
                    USING ERRCODE = '22023';
            END IF;
            IF jsonb_typeof(e.value) <> 'array' OR jsonb_array_length(e.value) = 0
               OR EXISTS (SELECT 1 FROM jsonb_array_elements(e.value) v WHERE jsonb_typeof(v) NOT IN ('string', 'number', 'boolean')) THEN
                RAISE EXCEPTION 'params.checks.allowed."%" must be a non-empty array of values', e.key
                    USING ERRCODE = '22023';
            END IF;
            exprs := exprs || format('(count(*) FILTER (WHERE (src.%1$I)::text <> ALL (%2$L::text[])) || '' values outside the allowed ones (e.g. '' || '
                                     || 'coalesce(quote_literal(min((src.%1$I)::text) FILTER (WHERE (src.%1$I)::text <> ALL (%2$L::text[]))), ''-'') || '')'')',
                                     e.key, ARRAY(SELECT v #>> '{}' FROM jsonb_array_elements(e.value) v)::text);
            what := what || format('allowed: column "%s" has %%s', e.key);
        END LOOP;
    END IF;
    EXECUTE format('SELECT ARRAY[%s] FROM (%s) AS src', array_to_string(exprs, ', '), mlpipe._source_sql(p_source))
        INTO res;
    n := res[1]::bigint;
    IF p_checks ? 'min_rows' AND n < (p_checks->>'min_rows')::numeric THEN
        fails := fails || format('min_rows: the source has %s rows, fewer than %s', n, p_checks->>'min_rows');
    END IF;
    FOR i IN 2 .. cardinality(res) LOOP
        IF split_part(res[i], ' ', 1) <> '0' THEN
            fails := fails || (format(what[i], res[i]) || CASE WHEN what[i] LIKE 'allowed:%' THEN '' ELSE format(' (of %s rows)', n) END);
        END IF;
    END LOOP;
    IF cardinality(fails) > 0 THEN
        RAISE EXCEPTION 'data checks failed: %', array_to_string(fails, '; ')
            USING ERRCODE = '22000', HINT = 'Fix the source or relax params.checks.';
    END IF;
    RETURN n;
END $$;

--------------------------------------------------------------------------
-- Training profile.
--------------------------------------------------------------------------

-- Profiles the training source: one statement over a Bernoulli sample of
-- about p_sample rows (all rows when the source is smaller). Numeric
-- features: edges at the minimum, the deciles and the maximum
-- (percentile_disc, duplicates removed) and the count per bin of _bin_of
-- (each edge and each gap between edges is a bin);
-- categorical: the 20 most frequent values and their counts, bin 0 being
-- every other value. Null rates from the same sample.
CREATE FUNCTION mlpipe._profile_compute(p_source text, p_model_features text[], p_features text[],
    p_target text, p_exclude jsonb, p_sample int, p_rows_estimate bigint)
RETURNS jsonb
-- The profile must not cost more memory than the fit it follows: with 28
-- features the statement's cost passed jit_above_cost, and loading LLVM plus
-- 28 sorts of work_mem each took the training backend from 40 to 150 MiB.
-- No JIT, and 1MB per sort (the rest spills to disk).
LANGUAGE plpgsql VOLATILE SET jit = off SET work_mem = '1MB' AS $$
DECLARE
    f       record;
    i       int := 0;
    sel     text[] := '{}';
    agg1    text[] := '{}';
    cats    text[] := '{}';
    agg2    text[] := '{}';
    outs    text[] := '{}';
    frac    float8;
    q       text;
    result  jsonb;
BEGIN
    IF p_sample IS NULL OR p_sample <= 0 THEN
        RETURN NULL;
    END IF;
    frac := CASE WHEN coalesce(p_rows_estimate, 0) <= p_sample THEN 1
                 ELSE p_sample::float8 / p_rows_estimate END;
    FOR f IN SELECT * FROM mlpipe._profile_plan(p_source, p_model_features, p_features, p_target, p_exclude) LOOP
        i := i + 1;
        EXIT WHEN i > 256;
        sel := sel || format('%s AS f%s', f.expr, i);
        agg1 := agg1 || format('count(f%s) AS n%s', i, i);
        IF f.kind = 'numeric' THEN
            agg1 := agg1 || format('mlpipe._edges(percentile_disc(ARRAY[0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1]) WITHIN GROUP (ORDER BY f%s)) AS e%s', i, i);
            agg2 := agg2 || format('mlpipe._bin_counts(mlpipe._bin_of(f%s, q.e%s), 2 * cardinality(q.e%s) + 1) FILTER (WHERE f%s IS NOT NULL) AS h%s', i, i, i, i, i);
            outs := outs || format('jsonb_build_object(''feature'', %L, ''kind'', ''numeric'', ''column'', %L, ''element'', %s, '
                                   '''nonnull'', q.n%s, ''null_rate'', CASE WHEN q.n > 0 THEN 1 - q.n%s::float8 / q.n END, '
                                   '''edges'', to_jsonb(q.e%s), ''counts'', to_jsonb(coalesce(h.h%s, array_fill(0::bigint, ARRAY[2 * cardinality(q.e%s) + 1]))))',
                                   f.feature, f.col, coalesce(f.element::text, 'NULL'), i, i, i, i, i);
        ELSE
            cats := cats || format('(SELECT coalesce(array_agg(v ORDER BY c DESC, v), ''{}'') FROM (SELECT f%s AS v, count(*) AS c FROM s WHERE f%s IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 20) t) AS c%s', i, i, i);
            agg2 := agg2 || format('mlpipe._bin_counts(coalesce(array_position(k.c%s, f%s), 0), cardinality(k.c%s) + 1) FILTER (WHERE f%s IS NOT NULL) AS h%s', i, i, i, i, i);
            outs := outs || format('jsonb_build_object(''feature'', %L, ''kind'', ''categorical'', ''column'', %L, ''element'', NULL, '
                                   '''nonnull'', q.n%s, ''null_rate'', CASE WHEN q.n > 0 THEN 1 - q.n%s::float8 / q.n END, '
                                   '''categories'', to_jsonb(k.c%s), ''counts'', to_jsonb(coalesce(h.h%s, ''{0}'')))',
                                   f.feature, f.col, i, i, i, i);
        END IF;
    END LOOP;
    IF i = 0 THEN
        RETURN jsonb_build_object('rows', 0, 'sample', p_sample, 'features', '[]'::jsonb);
    END IF;
    q := format('WITH s AS MATERIALIZED (SELECT %s FROM (%s) AS src%s), '
                'q AS (SELECT count(*) AS n, %s FROM s), '
                'k AS (SELECT %s), '
                'h AS (SELECT %s FROM s, q, k) '
                'SELECT jsonb_build_object(''rows'', q.n, ''sample'', %s, ''fraction'', %s, ''features'', to_jsonb(ARRAY[%s]::jsonb[])) FROM q, k, h',
                array_to_string(sel, ', '), mlpipe._source_sql(p_source),
                CASE WHEN frac < 1 THEN format(' WHERE random() < %s', frac) ELSE '' END,
                array_to_string(agg1, ', '),
                CASE WHEN cardinality(cats) > 0 THEN array_to_string(cats, ', ') ELSE '1 AS none' END,
                array_to_string(agg2, ', '), p_sample, frac, array_to_string(outs, ', '));
    EXECUTE q INTO result;
    RETURN result;
END $$;

-- Stores a version's profile: only for a version the session user created
-- in the current transaction (the _register that _train just called), and
-- only while it has none.
CREATE FUNCTION mlpipe._set_profile(p_model text, p_version int, p_profile jsonb)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE mlpipe.model_versions v SET profile = p_profile
     WHERE v.model = p_model AND v.version = p_version
       AND v.profile IS NULL AND v.created_by = session_user
       AND v.created_at >= pg_catalog.now();     -- created in this transaction
    IF NOT FOUND THEN
        RAISE EXCEPTION 'version %@% was not created by % in this transaction, or has a profile already',
            p_model, p_version, session_user
            USING ERRCODE = '42501';
    END IF;
END $$;

-- The training profile of a model_ref (NULL for versions trained before 0.3.0).
CREATE FUNCTION mlpipe.profile(model_ref text) RETURNS jsonb
LANGUAGE sql STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT v.profile FROM mlpipe.model_versions v, mlpipe.resolve(model_ref) r
     WHERE v.model = r.model AND v.version = r.version
$$;

-- What scoring a model_ref needs, in one SECURITY DEFINER lookup.
CREATE FUNCTION mlpipe._scoring_info(model_ref text,
    OUT model text, OUT version int, OUT algorithm text, OUT task text,
    OUT features text[], OUT classes text[], OUT profile jsonb)
LANGUAGE sql STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT v.model, v.version, v.algorithm, v.task, v.features, v.classes, v.profile
      FROM mlpipe.model_versions v, mlpipe.resolve(model_ref) r
     WHERE v.model = r.model AND v.version = r.version
$$;

--------------------------------------------------------------------------
-- Training: as_of, checks and the profile around _fit and _register.
--------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION mlpipe._train(
    p_model text, p_algorithm text, p_source text, p_target text, p_features text[],
    p_params jsonb, p_gate jsonb)
RETURNS mlpipe.train_result
-- SECURITY INVOKER and no pinned search_path: the source is resolved and read
-- as the caller, with the caller's search_path, grants and row-level security.
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    started  timestamptz := clock_timestamp();
    warm     bytea;
    fit      mlpipe.fit_result;
    res      mlpipe.train_result;
    src      text := p_source;
    lin      jsonb := '{}';
    sample   int := 20000;    -- the drift sample of predict_table is 20,000 too
    tt       record;
    prof     jsonb;
BEGIN
    IF p_model IS NULL OR p_model = '' OR position('@' IN p_model) > 0
       OR length(p_model) > 200 OR p_model ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'invalid model name %', coalesce(quote_literal(p_model), 'NULL')
            USING ERRCODE = '22023', HINT = 'A model name is 1 to 200 characters, without "@" or control characters.';
    END IF;
    p_params := coalesce(p_params, '{}');
    IF jsonb_typeof(p_params) <> 'object' THEN
        RAISE EXCEPTION 'params must be a JSON object, not %', jsonb_typeof(p_params) USING ERRCODE = '22023';
    END IF;
    IF p_source IS NULL THEN
        RAISE EXCEPTION 'source must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF p_params ? 'warm_start' THEN
        IF jsonb_typeof(p_params->'warm_start') <> 'string' THEN
            RAISE EXCEPTION 'params.warm_start must be a model reference such as ''sensors@3'''
                USING ERRCODE = '22023';
        END IF;
        warm := mlpipe.artifact(p_params->>'warm_start');
    END IF;
    IF p_params ? 'profile_sample' THEN
        IF jsonb_typeof(p_params->'profile_sample') <> 'number'
           OR (p_params->>'profile_sample')::numeric NOT BETWEEN 0 AND 10000000
           OR (p_params->>'profile_sample')::numeric <> trunc((p_params->>'profile_sample')::numeric) THEN
            RAISE EXCEPTION 'params.profile_sample must be an integer in 0..10000000 (0: no profile)'
                USING ERRCODE = '22023';
        END IF;
        sample := (p_params->>'profile_sample')::int;
    END IF;
    -- Time travel: train on the rows that existed at params.as_of.
    IF p_params ? 'as_of' OR p_params ? 'as_of_column' THEN
        SELECT a.sql, a.lineage INTO tt FROM mlpipe._as_of_source(p_source, p_params) a;
        src := tt.sql;
        lin := lin || tt.lineage;
    END IF;
    -- Data checks, before any training work.
    IF p_params ? 'checks' THEN
        lin := lin || jsonb_build_object('checked_rows', mlpipe._check_data(src, p_params->'checks'));
    END IF;
    fit := mlpipe._fit(p_algorithm, src, p_target, p_features,
                       p_params - 'as_of' - 'as_of_column' - 'checks' - 'profile_sample', warm);
    prof := mlpipe._profile_compute(src, fit.feature_names, p_features, p_target, p_params->'exclude', sample,
        coalesce((fit.info->>'training_rows')::bigint, 0) + coalesce((fit.info->>'test_rows')::bigint, 0)
        + coalesce((fit.info->>'skipped_rows')::bigint, 0));
    -- Lineage notes ride in fit.info, which _register copies into the version.
    fit.info := coalesce(fit.info, '{}') || lin;
    res := mlpipe._register(p_model, p_algorithm, p_source, p_target, p_params, p_gate, started, fit);
    IF prof IS NOT NULL THEN
        PERFORM mlpipe._set_profile(res.model, res.version, prof);
    END IF;
    RETURN res;
END $$;

--------------------------------------------------------------------------
-- Drift.
--------------------------------------------------------------------------

-- PSI and null rates of a source against a profile. PSI over the non-null
-- values: sum over bins of (a - e) * ln(a / e), with e and a the training
-- and current shares of each bin, each at least 1e-4 (empty bins).
-- p_fraction < 1 reads a sample: TABLESAMPLE SYSTEM (whole pages, so only
-- that share of the table is read) when the source is a table or
-- materialized view, else a Bernoulli sample of the query's rows.
CREATE FUNCTION mlpipe._drift_figures(p_profile jsonb, p_source text, p_fraction float8 DEFAULT 1)
RETURNS TABLE (feature text, psi float8, null_rate_train float8, null_rate_now float8, rows_now bigint)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    f      jsonb;
    cols   jsonb;
    exprs  text[] := '{}';
    ex     text;
    bin    text;
    cur    jsonb;
    i      int := 0;
    n      bigint;
    rel    regclass;
    from_  text;
BEGIN
    SELECT jsonb_object_agg(s.name, mlpipe._type_class(s.type)) INTO cols FROM mlpipe._source_columns(p_source) s;
    FOR f IN SELECT x FROM jsonb_array_elements(p_profile->'features') x LOOP
        IF NOT cols ? (f->>'column') THEN
            RAISE EXCEPTION 'the source has no column "%" (feature "%" of the model)', f->>'column', f->>'feature'
                USING ERRCODE = '42703',
                      HINT = 'Columns: ' || (SELECT string_agg(k, ', ' ORDER BY k) FROM jsonb_object_keys(cols) k) || '.';
        END IF;
        IF f->>'kind' = 'numeric' THEN
            IF cols->>(f->>'column') NOT IN ('numeric', 'array') THEN
                RAISE EXCEPTION 'column "%" is % in the source but was numeric at training', f->>'column', cols->>(f->>'column')
                    USING ERRCODE = '22000';
            END IF;
            ex := CASE WHEN f->>'element' IS NULL THEN format('(src.%I)::float8', f->>'column')
                       ELSE format('(src.%I)[%s]::float8', f->>'column', (f->>'element')::int) END;
            bin := format('mlpipe._bin_of(%s, %L::float8[])', ex,
                          ARRAY(SELECT e::float8 FROM jsonb_array_elements_text(f->'edges') e)::text);
        ELSE
            ex := format('(src.%I)::text', f->>'column');
            bin := format('coalesce(array_position(%L::text[], %s), 0)', 
                          ARRAY(SELECT e FROM jsonb_array_elements_text(f->'categories') e)::text, ex);
        END IF;
        exprs := exprs || format('jsonb_build_object(''n'', count(%s), ''c'', to_jsonb(mlpipe._bin_counts(%s, %s) FILTER (WHERE %s IS NOT NULL)))',
                                 ex, bin, jsonb_array_length(f->'counts'), ex);
    END LOOP;
    IF cardinality(exprs) = 0 THEN
        RETURN;
    END IF;
    from_ := format('(%s) AS src', mlpipe._source_sql(p_source));
    IF p_fraction < 1 THEN
        IF p_source !~* '^[[:space:](]*(select|with|values|table)([[:space:](]|$)' THEN
            BEGIN
                rel := to_regclass(p_source);
            EXCEPTION WHEN OTHERS THEN
                rel := NULL;
            END;
        END IF;
        IF rel IS NOT NULL AND (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = rel) IN ('r', 'm', 'p') THEN
            from_ := format('%s AS src TABLESAMPLE SYSTEM (%s)', rel, p_fraction * 100);
        ELSE
            from_ := from_ || format(' WHERE random() < %s', p_fraction);
        END IF;
    END IF;
    EXECUTE format('SELECT jsonb_build_object(''n'', count(*), ''f'', to_jsonb(ARRAY[%s]::jsonb[])) FROM %s',
                   array_to_string(exprs, ', '), from_)
        INTO cur;
    n := (cur->>'n')::bigint;
    IF n = 0 AND p_fraction < 1 THEN
        RETURN;                 -- an empty sample: no figures
    END IF;
    IF n = 0 THEN
        RAISE EXCEPTION 'the source returned no rows' USING ERRCODE = '22000';
    END IF;
    FOR f IN SELECT x FROM jsonb_array_elements(p_profile->'features') x LOOP
        i := i + 1;
        feature := f->>'feature';
        null_rate_train := (f->>'null_rate')::float8;
        null_rate_now := CASE WHEN n > 0 THEN 1 - (cur->'f'->(i - 1)->>'n')::float8 / n END;
        rows_now := n;
        psi := NULL;
        IF jsonb_typeof(cur->'f'->(i - 1)->'c') = 'array' THEN
            SELECT sum((greatest(c / sum_c, 1e-4) - greatest(t / sum_t, 1e-4))
                       * ln(greatest(c / sum_c, 1e-4) / greatest(t / sum_t, 1e-4)))
              INTO psi
              FROM (SELECT t, c, sum(t) OVER () AS sum_t, sum(c) OVER () AS sum_c
                      FROM unnest(ARRAY(SELECT x::float8 FROM jsonb_array_elements_text(f->'counts') x),
                                  ARRAY(SELECT x::float8 FROM jsonb_array_elements_text(cur->'f'->(i - 1)->'c') x)) u(t, c)) b
             WHERE sum_t > 0 AND sum_c > 0;
        END IF;
        RETURN NEXT;
    END LOOP;
END $$;

-- The status of one feature's drift figures (see mlpipe.drift).
CREATE FUNCTION mlpipe._drift_status(psi float8, null_train float8, null_now float8,
                                     threshold float8, null_threshold float8) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN abs(coalesce(null_now, 0) - coalesce(null_train, 0)) >= null_threshold THEN 'drift'
        WHEN psi IS NULL THEN 'no data'
        WHEN psi >= threshold THEN 'drift'
        WHEN psi >= threshold / 2 THEN 'warning'
        ELSE 'ok' END
$$;

-- Drift of a source against the training profile of a model version: one
-- row per profiled feature. status: 'drift' when psi >= threshold or the
-- null rate moved by null_threshold or more, 'warning' when psi >= threshold / 2,
-- 'no data' when the source has no value for the feature, else 'ok'.
CREATE FUNCTION mlpipe.drift(model_ref text, source text, threshold float8 DEFAULT 0.2,
                             null_threshold float8 DEFAULT 0.1)
RETURNS TABLE (feature text, psi float8, null_rate_train float8, null_rate_now float8, status text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    info record;
BEGIN
    IF model_ref IS NULL OR source IS NULL THEN
        RAISE EXCEPTION 'model_ref and source must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF threshold IS NULL OR threshold <= 0 OR null_threshold IS NULL OR null_threshold <= 0 THEN
        RAISE EXCEPTION 'threshold and null_threshold must be positive numbers' USING ERRCODE = '22023';
    END IF;
    SELECT * INTO info FROM mlpipe._scoring_info(model_ref);
    IF info.profile IS NULL THEN
        RAISE EXCEPTION 'version %@% has no training profile', info.model, info.version
            USING ERRCODE = '22000', HINT = 'Versions trained before mlpipe 0.3.0, or with params.profile_sample = 0, have none; retrain to get one.';
    END IF;
    RETURN QUERY
    SELECT d.feature, d.psi, d.null_rate_train, d.null_rate_now,
           mlpipe._drift_status(d.psi, d.null_rate_train, d.null_rate_now, threshold, null_threshold)
      FROM mlpipe._drift_figures(info.profile, source) d;
END $$;


--------------------------------------------------------------------------
-- Batch scoring into tables.
--------------------------------------------------------------------------

-- True when a model stores preprocessing (src/pg/drift.c).
CREATE FUNCTION mlpipe._has_preprocessing(model bytea) RETURNS boolean
AS 'MODULE_PATHNAME', 'mlpipe_has_preprocessing'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- The float8[] a model without preprocessing scores, as SQL over the alias
-- "src": the array column itself when the features are exactly its
-- elements in order, else ARRAY[...] of numeric columns and elements. NULL
-- when a feature is not a numeric column or element of the source (the
-- row form then scores, or says what is missing).
CREATE FUNCTION mlpipe._feature_array_expr(p_features text[], p_source text) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    cols  jsonb;
    types jsonb;
    f     text;
    c     text;
    parts text[] := '{}';
BEGIN
    SELECT jsonb_object_agg(s.name, mlpipe._type_class(s.type)), jsonb_object_agg(s.name, s.type::text)
      INTO cols, types FROM mlpipe._source_columns(p_source) s;
    FOREACH f IN ARRAY p_features LOOP
        IF cols->>f = 'numeric' THEN
            parts := parts || format('(src.%I)::float8', f);
            CONTINUE;
        END IF;
        c := substring(f FROM '^(.*)\[[0-9]{1,6}\]$');
        IF c IS NULL OR cols->>c IS DISTINCT FROM 'array' THEN
            RETURN NULL;
        END IF;
        parts := parts || format('(src.%I)[%s]::float8', c, substring(f FROM '\[([0-9]{1,6})\]$'));
    END LOOP;
    -- Features x[1], ..., x[d] of one array column: pass the column as it is.
    c := substring(p_features[1] FROM '^(.*)\[1\]$');
    IF c IS NOT NULL AND cols->>c = 'array' AND p_features = ARRAY(
            SELECT format('%s[%s]', c, g) FROM generate_series(1, cardinality(p_features)) g) THEN
        RETURN CASE WHEN types->>c = 'double precision[]' THEN format('src.%I', c)
                    ELSE format('(src.%I)::float8[]', c) END;
    END IF;
    RETURN 'ARRAY[' || array_to_string(parts, ', ') || ']';
END $$;

-- The (schema, table) of an "into" argument: 'table' or 'schema.table',
-- parsed as identifiers (quoted parts keep their case).
CREATE FUNCTION mlpipe._parse_into(p_into text, OUT qualified text, OUT display text)
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    parts text[];
BEGIN
    BEGIN
        parts := parse_ident(p_into);
    EXCEPTION WHEN invalid_text_representation OR invalid_parameter_value THEN
        parts := NULL;
    END;
    IF parts IS NULL OR cardinality(parts) NOT IN (1, 2) OR '' = ANY (parts) THEN
        RAISE EXCEPTION 'into "%" is not a table name', p_into
            USING ERRCODE = '22023', HINT = 'Use table or schema.table; quote names with capitals or spaces.';
    END IF;
    qualified := (SELECT string_agg(quote_ident(p), '.' ORDER BY o) FROM unnest(parts) WITH ORDINALITY u(p, o));
    display := array_to_string(parts, '.');
END $$;

-- Checks an existing target table: the columns predict_table writes must
-- be there with the right types (22000 naming the mismatch); upsert needs a
-- unique index on the key column alone.
CREATE FUNCTION mlpipe._check_target(p_rel regclass, p_key text, p_key_type regtype, p_mode text)
RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    want   record;
    have   regtype;
    keynum int2;
BEGIN
    IF (SELECT relkind FROM pg_class WHERE oid = p_rel) NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '% is not a table', p_rel USING ERRCODE = '22000';
    END IF;
    FOR want IN SELECT * FROM (VALUES (p_key, p_key_type), ('prediction', 'double precision'::regtype),
                                      ('label', 'text'::regtype), ('proba', 'double precision[]'::regtype),
                                      ('model', 'text'::regtype), ('version', 'integer'::regtype),
                                      ('scored_at', 'timestamp with time zone'::regtype)) w(col, typ) LOOP
        SELECT a.atttypid::regtype INTO have FROM pg_attribute a
         WHERE a.attrelid = p_rel AND a.attname = want.col AND a.attnum > 0 AND NOT a.attisdropped;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'table % has no column "%"', p_rel, want.col
                USING ERRCODE = '22000',
                      HINT = 'predict_table writes key, prediction, label, proba, model, version, scored_at; or let it create a new table.';
        END IF;
        IF have <> want.typ THEN
            RAISE EXCEPTION 'column "%" of table % is %, expected %', want.col, p_rel, have, want.typ
                USING ERRCODE = '22000';
        END IF;
    END LOOP;
    IF p_mode = 'upsert' THEN
        SELECT a.attnum INTO keynum FROM pg_attribute a WHERE a.attrelid = p_rel AND a.attname = p_key;
        IF NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = p_rel AND i.indisunique AND i.indisvalid
                          AND i.indnatts = 1 AND i.indkey[0] = keynum AND i.indpred IS NULL AND i.indexprs IS NULL) THEN
            RAISE EXCEPTION 'mode upsert needs a unique index on %(%)', p_rel, p_key
                USING ERRCODE = '22000', HINT = format('CREATE UNIQUE INDEX ON %s (%I);', p_rel, p_key);
        END IF;
    END IF;
END $$;

-- Scores every row of a source into a table: (key, prediction, label,
-- proba, model, version, scored_at). One INSERT ... SELECT streams the
-- source through the executor (nothing is materialised); a new target is
-- written with CREATE TABLE AS and indexed afterwards. Logs a run with
-- rows, seconds and drift figures, and sends predictions_written (and
-- drift_detected). Runs as the caller: the source and the target are read
-- and written with the caller's privileges.
CREATE FUNCTION mlpipe.predict_table(model_ref text, source text, "into" text, key text,
                                     mode text DEFAULT 'append', params jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    started    timestamptz := clock_timestamp();
    info       record;
    ref        text;
    tgt        record;
    rel        regclass;
    key_type   regtype;
    src_sql    text;
    head       text;
    consts     text;
    from_sql   text;
    old_ptc    text;
    old_psc    text;
    xexpr      text;
    filt       text := '';
    n          bigint;
    k          text;
    threshold  float8 := 0.2;
    null_thr   float8 := 0.1;
    sample     int := 20000;
    metrics    jsonb := '{}';
    drifted    jsonb := '[]';
    d          record;
    run        bigint;
BEGIN
    IF model_ref IS NULL OR source IS NULL OR "into" IS NULL OR key IS NULL THEN
        RAISE EXCEPTION 'model_ref, source, into and key must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF mode IS NULL OR mode NOT IN ('append', 'replace', 'upsert', 'incremental') THEN
        RAISE EXCEPTION 'unknown mode %', coalesce(quote_literal(mode), 'NULL')
            USING ERRCODE = '22023', HINT = 'Modes: append, replace, upsert, incremental.';
    END IF;
    params := coalesce(params, '{}');
    IF jsonb_typeof(params) <> 'object' THEN
        RAISE EXCEPTION 'params must be a JSON object' USING ERRCODE = '22023';
    END IF;
    FOR k IN SELECT jsonb_object_keys(params) LOOP
        IF k NOT IN ('drift_threshold', 'null_threshold', 'drift_sample') THEN
            RAISE EXCEPTION 'unknown key "%" in predict_table params', k
                USING ERRCODE = '22023', HINT = 'Allowed keys: drift_threshold, null_threshold, drift_sample.';
        END IF;
        IF jsonb_typeof(params->k) <> 'number' OR (params->>k)::float8 < 0
           OR (k <> 'drift_sample' AND (params->>k)::float8 = 0)
           OR (k = 'drift_sample' AND (params->>k)::numeric NOT BETWEEN 0 AND 10000000) THEN
            RAISE EXCEPTION 'predict_table params.% must be a positive number (drift_sample: an integer, 0 for no drift)', k
                USING ERRCODE = '22023';
        END IF;
    END LOOP;
    threshold := coalesce((params->>'drift_threshold')::float8, threshold);
    null_thr := coalesce((params->>'null_threshold')::float8, null_thr);
    sample := coalesce((params->>'drift_sample')::numeric::int, sample);

    SELECT * INTO info FROM mlpipe._scoring_info(model_ref);
    ref := info.model || '@' || info.version;          -- one version for the whole run
    SELECT s.type INTO key_type FROM mlpipe._source_columns(source) s WHERE s.name = key;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'key column "%" is not in the source', key
            USING ERRCODE = '42703',
                  HINT = 'Columns: ' || (SELECT string_agg(s.name, ', ' ORDER BY s.ord) FROM mlpipe._source_columns(source) s) || '.';
    END IF;
    IF key IN ('prediction', 'label', 'proba', 'model', 'version', 'scored_at') THEN
        RAISE EXCEPTION 'key column "%" has the name of an output column', key
            USING ERRCODE = '22023', HINT = 'Rename it in a query source, e.g. SELECT model AS model_key, ...';
    END IF;
    src_sql := mlpipe._source_sql(source);
    SELECT * INTO tgt FROM mlpipe._parse_into("into");
    rel := to_regclass(tgt.qualified);

    IF rel IS NOT NULL THEN
        PERFORM mlpipe._check_target(rel, key, key_type, mode);
        IF mode = 'incremental' THEN
            filt := format(' WHERE NOT EXISTS (SELECT 1 FROM %s AS t WHERE t.%I = src.%I AND t.model = %L AND t.version = %s)',
                           tgt.qualified, key, key, info.model, info.version);
        END IF;
    END IF;
    -- Rows are scored with the row form of predict (columns matched by name,
    -- stored preprocessing applied), or, for a model without preprocessing
    -- whose features are numeric columns of the source, with the float8[]
    -- form, which gives the same predictions without building a row value.
    -- prediction: the value, cluster or class index; label and proba for
    -- classification only.
    IF NOT mlpipe._has_preprocessing(mlpipe.artifact(ref)) THEN
        xexpr := mlpipe._feature_array_expr(info.features, source);
    END IF;
    xexpr := coalesce(xexpr, 'src');
    -- A classifier is scored once per row: the float8[] form through the
    -- _score_* functions, whose calls for one row share an evaluation (the
    -- whole projection stays in the parallel workers); the row form with
    -- predict and predict_proba in a subquery (OFFSET 0 keeps the planner
    -- from pulling it up, which would copy predict into the label column).
    -- The SELECT is built as head (key, prediction and, for a classifier,
    -- label and proba), the constant columns, and the FROM clause: a new
    -- table gets only the head's columns from CREATE TABLE AS and the others
    -- as added columns (below).
    IF info.task = 'classification' THEN
        IF xexpr <> 'src' THEN
            head := format('SELECT src.%1$I, mlpipe._score_class(%2$L, %3$s) AS prediction, '
                           'mlpipe._score_label(%2$L, %3$s) AS label, mlpipe._score_proba(%2$L, %3$s) AS proba',
                           key, ref, xexpr);
            from_sql := format(' FROM (%s) AS src%s', src_sql, filt);
        ELSE
            head := format('SELECT mlpipe_s.%1$I, mlpipe_s.mlpipe_p AS prediction, '
                           '(%2$L::text[])[mlpipe_s.mlpipe_p::int + 1] AS label, mlpipe_s.mlpipe_pb AS proba',
                           key, info.classes);
            from_sql := format(' FROM (SELECT src.%1$I, mlpipe.predict(%2$L, src) AS mlpipe_p, '
                               'mlpipe.predict_proba(%2$L, src) AS mlpipe_pb '
                               'FROM (%3$s) AS src%4$s OFFSET 0) AS mlpipe_s',
                               key, ref, src_sql, filt);
        END IF;
        consts := '';
    ELSE
        head := format('SELECT src.%1$I, mlpipe.predict(%2$L, %3$s) AS prediction', key, ref, xexpr);
        from_sql := format(' FROM (%s) AS src%s', src_sql, filt);
        consts := ', NULL::text AS label, NULL::float8[] AS proba';
    END IF;
    consts := consts || format(', %L::text AS model, %s::int AS version, now() AS scored_at',
                               info.model, info.version);
    -- Ensembles cost microseconds a row to score: for the scoring statement,
    -- make a parallel scan of the source attractive so that CREATE TABLE AS
    -- scores in parallel workers. A single tree or k-means scores faster
    -- than a worker hands rows back, so the caller's settings stay.
    old_ptc := current_setting('parallel_tuple_cost');
    old_psc := current_setting('parallel_setup_cost');
    IF info.algorithm IN ('gbt', 'random_forest') THEN
        PERFORM set_config('parallel_tuple_cost', '0.001', true), set_config('parallel_setup_cost', '10', true);
    END IF;

    IF rel IS NULL THEN
        -- A new table: bulk-written by CREATE TABLE AS with the per-row
        -- columns only; model, version and scored_at are the same on every
        -- row, so they are added afterwards with that value as default,
        -- which PostgreSQL stores once in the catalog instead of in each row
        -- (no rewrite; readers see the value on every row). Then indexed.
        EXECUTE format('CREATE TABLE %s AS %s%s', tgt.qualified, head, from_sql);
        GET DIAGNOSTICS n = ROW_COUNT;
        PERFORM set_config('parallel_tuple_cost', old_ptc, true), set_config('parallel_setup_cost', old_psc, true);
        EXECUTE format('ALTER TABLE %s %s ADD COLUMN model text DEFAULT %L, ADD COLUMN version integer DEFAULT %s, '
                       'ADD COLUMN scored_at timestamptz DEFAULT now()', tgt.qualified,
                       CASE WHEN info.task = 'classification' THEN ''
                            ELSE 'ADD COLUMN label text, ADD COLUMN proba double precision[],' END,
                       info.model, info.version);
        EXECUTE format('ALTER TABLE %s ALTER COLUMN model DROP DEFAULT, ALTER COLUMN version DROP DEFAULT',
                       tgt.qualified);
        EXECUTE format('CREATE %s INDEX ON %s (%I)',
                       CASE WHEN mode IN ('upsert', 'replace') THEN 'UNIQUE' ELSE '' END, tgt.qualified, key);
        -- Readers read prediction tables (docs/security.md).
        EXECUTE format('GRANT SELECT ON %s TO mlpipe_reader', tgt.qualified);
    ELSE
        IF mode = 'replace' THEN
            EXECUTE format('DELETE FROM %s', tgt.qualified);
        END IF;
        EXECUTE format('INSERT INTO %s (%I, prediction, label, proba, model, version, scored_at) %s%s%s%s',
                       tgt.qualified, key, head, consts, from_sql,
                       CASE WHEN mode = 'upsert' THEN format(
                           ' ON CONFLICT (%I) DO UPDATE SET prediction = EXCLUDED.prediction, label = EXCLUDED.label, '
                           'proba = EXCLUDED.proba, model = EXCLUDED.model, version = EXCLUDED.version, '
                           'scored_at = EXCLUDED.scored_at', key) ELSE '' END);
        GET DIAGNOSTICS n = ROW_COUNT;
        PERFORM set_config('parallel_tuple_cost', old_ptc, true), set_config('parallel_setup_cost', old_psc, true);
    END IF;

    -- Drift of the source against the training profile, on a sample.
    IF info.profile IS NOT NULL AND sample > 0 AND n > 0 THEN
        FOR d IN SELECT * FROM mlpipe._drift_figures(info.profile, source,
                     CASE WHEN n <= sample THEN 1 ELSE sample::float8 / n END) LOOP
            metrics := metrics || jsonb_build_object('psi:' || d.feature, d.psi,
                                                     'null_rate:' || d.feature, d.null_rate_now);
            IF mlpipe._drift_status(d.psi, d.null_rate_train, d.null_rate_now, threshold, null_thr) = 'drift' THEN
                drifted := drifted || jsonb_build_object('feature', d.feature, 'psi', d.psi,
                                                         'null_rate_train', d.null_rate_train,
                                                         'null_rate_now', d.null_rate_now);
            END IF;
        END LOOP;
        metrics := metrics || jsonb_build_object('drifted_features', jsonb_array_length(drifted));
    END IF;
    metrics := metrics || jsonb_build_object('rows_per_second',
        n / greatest(extract(epoch FROM clock_timestamp() - started)::float8, 1e-6));
    run := mlpipe._log_run('predict_table', info.model, info.version, info.algorithm, source,
        jsonb_build_object('model_ref', model_ref, 'into', tgt.display, 'key', key, 'mode', mode, 'params', params),
        'succeeded', NULL, n, started, NULL, metrics, 'scoring');
    PERFORM mlpipe._notify('predictions_written', jsonb_build_object('model', info.model, 'version', info.version,
        'run_id', run, 'rows', n, 'into', tgt.display));
    IF jsonb_array_length(drifted) > 0 THEN
        PERFORM mlpipe._notify('drift_detected', jsonb_build_object('model', info.model, 'version', info.version,
            'run_id', run, 'rows', n, 'into', tgt.display, 'threshold', threshold, 'features', drifted));
    END IF;
    RETURN n;
END $$;

--------------------------------------------------------------------------
-- Privileges.
--------------------------------------------------------------------------

REVOKE ALL ON FUNCTION mlpipe._score_class(text, float8[]), mlpipe._score_label(text, float8[]),
    mlpipe._score_proba(text, float8[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe._source_sql(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe._source_columns(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe._type_class(regtype) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe._profile_plan(text, text[], text[], text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe._as_of_source(text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe._check_data(text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe._profile_compute(text, text[], text[], text, jsonb, int, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe._set_profile(text, int, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe.profile(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe._scoring_info(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe._train(text, text, text, text, text[], jsonb, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe._drift_figures(jsonb, text, float8) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe.drift(text, text, float8, float8) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe._parse_into(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe._feature_array_expr(text[], text) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe._has_preprocessing(bytea) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe._check_target(regclass, text, regtype, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe.predict_table(text, text, text, text, text, jsonb) FROM PUBLIC;
-- Scorers score; readers may see a version's profile; trainers train, score into tables and measure drift.
GRANT EXECUTE ON FUNCTION mlpipe._score_class(text, float8[]), mlpipe._score_label(text, float8[]),
    mlpipe._score_proba(text, float8[]) TO mlpipe_scorer;
GRANT EXECUTE ON FUNCTION mlpipe.profile(text) TO mlpipe_reader;
GRANT EXECUTE ON FUNCTION mlpipe._scoring_info(text) TO mlpipe_reader;
GRANT EXECUTE ON FUNCTION mlpipe._source_sql(text), mlpipe._source_columns(text), mlpipe._type_class(regtype),
    mlpipe._profile_plan(text, text[], text[], text, jsonb), mlpipe._as_of_source(text, jsonb),
    mlpipe._check_data(text, jsonb), mlpipe._profile_compute(text, text[], text[], text, jsonb, int, bigint),
    mlpipe._set_profile(text, int, jsonb), mlpipe._train(text, text, text, text, text[], jsonb, jsonb),
    mlpipe._drift_figures(jsonb, text, float8), mlpipe.drift(text, text, float8, float8),
    mlpipe._parse_into(text), mlpipe._feature_array_expr(text[], text), mlpipe._has_preprocessing(bytea),
    mlpipe._check_target(regclass, text, regtype, text),
    mlpipe.predict_table(text, text, text, text, text, jsonb) TO mlpipe_trainer;
-- _bin_counts, _bin_of, _edges and _drift_status are pure computations on the caller's values: PUBLIC.
--------------------------------------------------------------------------
-- Pipelines: JSON configs of steps (features, train, search, predict,
-- evaluate, drift), validated in C when created, kept with their history,
-- run step by step in subtransactions, scheduled through pg_cron when it is
-- there (a soft dependency: no `requires`). See docs/pipelines.md.
--------------------------------------------------------------------------

CREATE TABLE mlpipe.pipelines (
    name        text PRIMARY KEY
                CHECK (name <> '' AND length(name) <= 200 AND name !~ '[[:cntrl:]]'),
    version     int NOT NULL CHECK (version > 0),
    config      jsonb NOT NULL,
    description text,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    created_by  name NOT NULL DEFAULT session_user,
    updated_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_by  name NOT NULL DEFAULT session_user,
    schedule    text,                 -- cron expression while scheduled
    cron_job_id bigint                -- pg_cron's job id while scheduled
);
COMMENT ON TABLE mlpipe.pipelines IS 'Current version of every pipeline, and its pg_cron schedule.';

CREATE TABLE mlpipe.pipeline_versions (
    name       text NOT NULL,
    version    int NOT NULL,
    config     jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    created_by name NOT NULL DEFAULT session_user,
    PRIMARY KEY (name, version)
);
COMMENT ON TABLE mlpipe.pipeline_versions IS 'Append-only history of every pipeline config.';

SELECT pg_catalog.pg_extension_config_dump('mlpipe.pipelines', '');
SELECT pg_catalog.pg_extension_config_dump('mlpipe.pipeline_versions', '');

-- Pipeline history is append-only, like alias_events.
CREATE FUNCTION mlpipe._refuse_pipeline_history_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'mlpipe.pipeline_versions is append-only: % is not allowed', TG_OP
        USING ERRCODE = '42501', HINT = 'Pipeline versions are recorded by mlpipe.create_pipeline.';
END $$;
CREATE TRIGGER pipeline_versions_append_only BEFORE UPDATE OR DELETE ON mlpipe.pipeline_versions
    FOR EACH ROW EXECUTE FUNCTION mlpipe._refuse_pipeline_history_change();
CREATE TRIGGER pipeline_versions_no_truncate BEFORE TRUNCATE ON mlpipe.pipeline_versions
    FOR EACH STATEMENT EXECUTE FUNCTION mlpipe._refuse_pipeline_history_change();

REVOKE ALL ON mlpipe.pipelines, mlpipe.pipeline_versions FROM PUBLIC;
GRANT SELECT ON mlpipe.pipelines, mlpipe.pipeline_versions TO mlpipe_reader;

-- Validates a config (C, cJSON): returns it as jsonb or raises 22023/22032
-- naming the path (steps[1].algoritm). check_sources looks relation names
-- up as the caller.
CREATE FUNCTION mlpipe._pipeline_check(config text, check_sources boolean) RETURNS jsonb
AS 'MODULE_PATHNAME', 'mlpipe_pipeline_check'
LANGUAGE C STABLE STRICT;

-- An unknown pipeline: 42704 with what exists in the HINT.
CREATE FUNCTION mlpipe._pipeline_unknown(p_name text) RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    known text;
BEGIN
    SELECT string_agg(quote_literal(p.name), ', ' ORDER BY p.name) INTO known
      FROM (SELECT name FROM mlpipe.pipelines ORDER BY name LIMIT 20) p;
    RAISE EXCEPTION 'pipeline "%" does not exist', p_name
        USING ERRCODE = '42704',
              HINT = coalesce('Pipelines: ' || known || '.', 'No pipeline exists yet; create one with mlpipe.create_pipeline().');
END $$;

-- Stores a validated config as the pipeline's next version (the one place
-- pipelines are written). The same config as the current one is no new version.
CREATE FUNCTION mlpipe._pipeline_store(p_name text, p_config jsonb) RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cur  record;
    v    int;
BEGIN
    -- Shape only: names resolve with the caller's search_path, which create_pipeline checked.
    p_config := mlpipe._pipeline_check(p_config::text, false);
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('mlpipe.pipeline:' || p_name));
    SELECT p.version, p.config INTO cur FROM mlpipe.pipelines p WHERE p.name = p_name FOR UPDATE;
    IF FOUND AND cur.config = p_config THEN
        RETURN cur.version;
    END IF;
    SELECT coalesce(max(h.version), 0) + 1 INTO v FROM mlpipe.pipeline_versions h WHERE h.name = p_name;
    INSERT INTO mlpipe.pipeline_versions (name, version, config) VALUES (p_name, v, p_config);
    INSERT INTO mlpipe.pipelines AS p (name, version, config, description)
    VALUES (p_name, v, p_config, p_config->>'description')
    ON CONFLICT (name) DO UPDATE
        SET version = EXCLUDED.version, config = EXCLUDED.config, description = EXCLUDED.description,
            updated_at = clock_timestamp(), updated_by = session_user;
    RETURN v;
END $$;

-- Creates a pipeline, or a new version of it. The config is validated at
-- once, as the caller (source relations are looked up with the caller's
-- search_path). Returns the pipeline's version.
CREATE FUNCTION mlpipe.create_pipeline(name text, config text) RETURNS int
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    checked jsonb;
BEGIN
    IF name IS NULL OR name = '' OR length(name) > 200 OR name ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'invalid pipeline name %', coalesce(quote_literal(name), 'NULL')
            USING ERRCODE = '22023', HINT = 'A pipeline name is 1 to 200 characters, without control characters.';
    END IF;
    IF config IS NULL THEN
        RAISE EXCEPTION 'pipeline config is NULL' USING ERRCODE = '22004';
    END IF;
    checked := mlpipe._pipeline_check(config, true);
    RETURN mlpipe._pipeline_store(name, checked);
END $$;

CREATE FUNCTION mlpipe.create_pipeline(name text, config jsonb) RETURNS int
LANGUAGE sql VOLATILE AS $$
    SELECT mlpipe.create_pipeline($1, $2::text)
$$;

-- Removes a pipeline (unscheduling it first). Its history and runs stay.
CREATE FUNCTION mlpipe.drop_pipeline(name text) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM mlpipe.pipelines p WHERE p.name = drop_pipeline.name) THEN
        PERFORM mlpipe._pipeline_unknown(name);
    END IF;
    IF (SELECT p.schedule FROM mlpipe.pipelines p WHERE p.name = drop_pipeline.name) IS NOT NULL THEN
        PERFORM mlpipe.unschedule(name);
    END IF;
    PERFORM mlpipe._pipeline_delete(name);
END $$;

CREATE FUNCTION mlpipe._pipeline_delete(p_name text) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    DELETE FROM mlpipe.pipelines WHERE name = p_name
$$;

--------------------------------------------------------------------------
-- Runs. The pipeline run is a row of kind 'pipeline' (running -> succeeded
-- or failed); every step is a row of kind 'pipeline_step' whose parent is
-- the pipeline run, and the runs a step makes (a training, a scoring) get
-- the step as their parent.
--------------------------------------------------------------------------

CREATE FUNCTION mlpipe._pipeline_run_begin(p_name text, p_version int, p_params jsonb) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO mlpipe.runs (kind, source, params, status, started_at, created_by)
    VALUES ('pipeline', p_name, jsonb_build_object('pipeline', p_name, 'pipeline_version', p_version) || p_params,
            'running', clock_timestamp(), session_user)
    RETURNING run_id
$$;

-- Finishes a pipeline run that is still running (and only such a row).
CREATE FUNCTION mlpipe._pipeline_run_end(p_run bigint, p_status text, p_error text, p_steps bigint)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF p_status NOT IN ('succeeded', 'failed') THEN
        RAISE EXCEPTION 'invalid run status "%"', p_status USING ERRCODE = '22023';
    END IF;
    UPDATE mlpipe.runs
       SET status = p_status, error = p_error, rows = p_steps, finished_at = clock_timestamp(),
           seconds = extract(epoch FROM clock_timestamp() - started_at)
     WHERE run_id = p_run AND kind = 'pipeline' AND status = 'running';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'run % is not a running pipeline run', p_run USING ERRCODE = '22023';
    END IF;
END $$;

-- Links the runs a step made (run ids after the previous step's row, before
-- this step's row, by this session user, without a parent) to the step.
CREATE FUNCTION mlpipe._pipeline_adopt(p_step_run bigint, p_after bigint) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    UPDATE mlpipe.runs SET parent_run_id = p_step_run
     WHERE run_id > p_after AND run_id < p_step_run AND parent_run_id IS NULL
       AND created_by = session_user AND kind NOT IN ('pipeline', 'pipeline_step')
$$;

-- A [schema.]table name from a config, quoted for SQL.
CREATE FUNCTION mlpipe._pipeline_ident(p_name text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT string_agg(quote_ident(x), '.' ORDER BY o) FROM unnest(parse_ident(p_name)) WITH ORDINALITY AS u(x, o)
$$;

-- A source for a FROM clause: a relation (as the caller resolves it) or a
-- query in parentheses (validated as one SELECT when the pipeline was created).
CREATE FUNCTION mlpipe._pipeline_from(p_source text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    rel regclass;
BEGIN
    IF p_source ~* '^[\s(]*(select|with|values|table)\M' THEN
        RETURN '(' || chr(10) || p_source || chr(10) || ') AS src';
    END IF;
    rel := to_regclass(mlpipe._pipeline_ident(p_source));
    IF rel IS NULL THEN
        RAISE EXCEPTION 'relation "%" does not exist', p_source USING ERRCODE = '42P01';
    END IF;
    RETURN rel::text || ' AS src';
END $$;

-- A JSON array of strings as text[] (NULL stays NULL).
CREATE FUNCTION mlpipe._pipeline_texts(p jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p IS NULL OR jsonb_typeof(p) = 'null' THEN NULL
                ELSE ARRAY(SELECT jsonb_array_elements_text(p)) END
$$;

-- The features step: one row per group (and period_start, with a period)
-- with ts_features of every value column flattened into <value>_<stat>
-- columns, written into a table (replace: dropped and created again;
-- append: inserted, created when missing). Returns the rows written.
CREATE FUNCTION mlpipe._pipeline_features(step jsonb) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    groups  text[] := coalesce(mlpipe._pipeline_texts(step->'group_by'), '{}');
    vals    text[] := mlpipe._pipeline_texts(step->'values');
    wanted  text[] := mlpipe._pipeline_texts(step->'stats');
    period  text := step->>'period';
    ts      text := step->>'ts';
    into_t  text := mlpipe._pipeline_ident(step->>'into');
    stats   text[];
    inner_c text[] := '{}';
    outer_c text[] := '{}';
    nkeys   int;
    g       text;
    v       text;
    s       text;
    i       int := 0;
    q       text;
    n       bigint;
BEGIN
    IF to_regtype('mlpipe.ts_summary') IS NULL THEN
        RAISE EXCEPTION 'a features step needs mlpipe.ts_features, which this installation does not have'
            USING ERRCODE = '0A000', HINT = 'Update the extension: ALTER EXTENSION mlpipe UPDATE.';
    END IF;
    SELECT array_agg(a.attname::text ORDER BY a.attnum) INTO stats
      FROM pg_attribute a
     WHERE a.attrelid = (SELECT t.typrelid FROM pg_type t WHERE t.oid = 'mlpipe.ts_summary'::regtype)
       AND a.attnum > 0 AND NOT a.attisdropped
       AND a.atttypid IN ('float8'::regtype, 'float4'::regtype, 'int4'::regtype, 'int8'::regtype,
                          'int2'::regtype, 'numeric'::regtype);
    IF wanted IS NOT NULL THEN
        FOREACH s IN ARRAY wanted LOOP
            IF NOT s = ANY (stats) THEN
                RAISE EXCEPTION 'features step: unknown stat "%"', s
                    USING ERRCODE = '22023', HINT = 'Stats: ' || array_to_string(stats, ', ') || '.';
            END IF;
        END LOOP;
        stats := wanted;
    END IF;
    FOREACH g IN ARRAY groups LOOP
        inner_c := inner_c || format('%I', g);
        outer_c := outer_c || format('%I', g);
    END LOOP;
    IF period IS NOT NULL THEN
        inner_c := inner_c || format('date_trunc(%L, %I::timestamptz) AS period_start', period, ts);
        outer_c := outer_c || 'period_start'::text;
    END IF;
    nkeys := cardinality(inner_c);
    FOREACH v IN ARRAY vals LOOP
        inner_c := inner_c || format('mlpipe.ts_features(%I::timestamptz, %I::float8) AS _f%s', ts, v, i);
        FOREACH s IN ARRAY stats LOOP
            outer_c := outer_c || format('(_f%s).%I::float8 AS %I', i, s, v || '_' || s);
        END LOOP;
        i := i + 1;
    END LOOP;
    q := format('SELECT %s FROM (SELECT %s FROM %s%s) AS f%s',
                array_to_string(outer_c, ', '), array_to_string(inner_c, ', '),
                mlpipe._pipeline_from(step->>'source'),
                CASE WHEN nkeys > 0 THEN ' GROUP BY ' || array_to_string(ARRAY(SELECT generate_series(1, nkeys)), ', ') ELSE '' END,
                CASE WHEN nkeys > 0 THEN ' ORDER BY ' || array_to_string(ARRAY(SELECT generate_series(1, nkeys)), ', ') ELSE '' END);
    IF coalesce(step->>'mode', 'replace') = 'replace' AND to_regclass(into_t) IS NOT NULL THEN
        EXECUTE format('DROP TABLE %s', into_t);
    END IF;
    IF to_regclass(into_t) IS NULL THEN
        EXECUTE format('CREATE TABLE %s AS %s', into_t, q);
    ELSE
        EXECUTE format('INSERT INTO %s %s', into_t, q);
    END IF;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

-- Runs one step as the caller; returns what it produced as jsonb
-- ({"model", "version", "rows", "metrics", "result"}). Identifiers are
-- quoted and every value is bound (EXECUTE ... USING).
CREATE FUNCTION mlpipe._pipeline_step(step jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    kind text := step->>'kind';
    r    jsonb;
    n    bigint;
BEGIN
    CASE kind
    WHEN 'features' THEN
        n := mlpipe._pipeline_features(step);
        RETURN jsonb_build_object('rows', n, 'result', jsonb_build_object('into', step->>'into', 'rows', n));
    WHEN 'train' THEN
        EXECUTE 'SELECT to_jsonb(t) FROM mlpipe.train($1, $2, $3, $4, $5, $6, $7) AS t'
           INTO r
          USING step->>'model', step->>'algorithm', step->>'source', step->>'target',
                mlpipe._pipeline_texts(step->'features'), coalesce(step->'params', '{}'), step->'gate';
        RETURN jsonb_build_object('model', r->>'model', 'version', (r->>'version')::int, 'result', r);
    WHEN 'search' THEN
        EXECUTE 'SELECT to_jsonb(t) FROM mlpipe.search($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) AS t'
           INTO r
          USING step->>'model', step->>'algorithm', step->>'source', step->>'target',
                mlpipe._pipeline_texts(step->'features'), step->'space',
                coalesce(step->>'strategy', 'grid'), coalesce((step->>'folds')::int, 5),
                coalesce((step->>'trials')::int, 20), step->'gate';
        RETURN jsonb_build_object('model', r->>'model', 'version', (r->>'version')::int, 'result', r);
    WHEN 'predict' THEN
        EXECUTE 'SELECT mlpipe.predict_table($1, $2, $3, $4, $5)'
           INTO n
          USING step->>'model', step->>'source', step->>'into', step->>'key', coalesce(step->>'mode', 'append');
        RETURN jsonb_build_object('model', step->>'model', 'rows', n,
                                  'result', jsonb_build_object('into', step->>'into', 'rows', n));
    WHEN 'evaluate' THEN
        EXECUTE 'SELECT to_jsonb(mlpipe.evaluate($1, $2))' INTO r USING step->>'model', step->>'source';
        RETURN jsonb_build_object('model', step->>'model', 'metrics', r, 'result', r);
    WHEN 'drift' THEN
        EXECUTE 'SELECT jsonb_agg(to_jsonb(d)) FROM mlpipe.drift($1, $2) AS d' INTO r
          USING step->>'model', step->>'source';
        -- One metric per feature (psi_<feature>) for dashboards, when drift reports PSI.
        RETURN jsonb_build_object('model', step->>'model', 'result', r, 'metrics',
            (SELECT jsonb_object_agg('psi_' || (e->>'feature'), e->'psi')
               FROM jsonb_array_elements(r) e WHERE jsonb_typeof(e->'psi') = 'number'));
    ELSE
        RAISE EXCEPTION 'unknown step kind "%"', kind USING ERRCODE = '22023';
    END CASE;
END $$;

-- Runs a pipeline's current version, step by step, each in a
-- subtransaction. A failing step is logged with its error, marks the run
-- failed, sends run_failed and stops the pipeline; the steps before it keep
-- their output. Returns the pipeline run id (the call itself succeeds, with a
-- WARNING, so that what ran and the failure are committed).
CREATE FUNCTION mlpipe.run_pipeline(name text) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    p        record;
    run      bigint;
    prev     bigint;
    step     jsonb;
    res      jsonb;
    i        int := 0;
    started  timestamptz;
    err      text;
    state    text;
    step_run bigint;
    failed   boolean := false;
    p_name   text := name;
BEGIN
    SELECT pl.version, pl.config INTO p FROM mlpipe.pipelines pl WHERE pl.name = p_name;
    IF NOT FOUND THEN
        PERFORM mlpipe._pipeline_unknown(p_name);
    END IF;
    IF NOT pg_try_advisory_xact_lock(hashtext('mlpipe.pipeline_run:' || p_name)) THEN
        RAISE EXCEPTION 'pipeline "%" is already running', p_name
            USING ERRCODE = '55P03', HINT = 'Wait for the running call to finish.';
    END IF;
    run := mlpipe._pipeline_run_begin(p_name, p.version,
               jsonb_build_object('application_name', current_setting('application_name')));
    prev := run;
    FOR step IN SELECT s FROM jsonb_array_elements(p.config->'steps') AS s LOOP
        started := clock_timestamp();
        res := NULL;
        BEGIN
            res := mlpipe._pipeline_step(step);
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS err = MESSAGE_TEXT, state = RETURNED_SQLSTATE;
            failed := true;
        END;
        step_run := mlpipe._log_run(
            'pipeline_step', coalesce(res->>'model', step->>'model'), (res->>'version')::int, step->>'kind',
            coalesce(step->>'source', step->>'model'),
            jsonb_build_object('pipeline', p_name, 'step', i, 'config', step, 'result', res->'result')
                || CASE WHEN failed THEN jsonb_build_object('sqlstate', state) ELSE '{}' END,
            CASE WHEN failed THEN 'failed' ELSE 'succeeded' END,
            CASE WHEN failed THEN format('steps[%s] (%s): %s', i, step->>'kind', err) END,
            (res->>'rows')::bigint, started, run,
            CASE WHEN jsonb_typeof(res->'metrics') = 'object' THEN res->'metrics' END,
            step->>'kind');
        PERFORM mlpipe._pipeline_adopt(step_run, prev);
        prev := step_run;
        IF failed THEN
            PERFORM mlpipe._pipeline_run_end(run, 'failed',
                format('steps[%s] (%s) failed: %s', i, step->>'kind', err), i);
            PERFORM mlpipe._notify('run_failed', jsonb_build_object(
                'pipeline', p_name, 'run_id', run, 'step', i, 'kind', step->>'kind',
                'sqlstate', state, 'error', err));
            RAISE WARNING 'pipeline "%" failed at steps[%] (%): %', p_name, i, step->>'kind', err
                USING HINT = format('See SELECT * FROM mlpipe.runs WHERE run_id = %s OR parent_run_id = %s.', run, run);
            RETURN run;
        END IF;
        i := i + 1;
    END LOOP;
    PERFORM mlpipe._pipeline_run_end(run, 'succeeded', NULL, i);
    RETURN run;
END $$;

--------------------------------------------------------------------------
-- Schedules through pg_cron (soft dependency).
--------------------------------------------------------------------------

-- Where pg_cron can be called from here: raises 55000 with a HINT when it is
-- not preloaded, lives in another database, or is not created here.
CREATE FUNCTION mlpipe._cron_check(p_name text, p_cron text) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    cron_db text := coalesce(current_setting('cron.database_name', true), 'postgres');
BEGIN
    IF NOT EXISTS (SELECT 1 FROM unnest(string_to_array(current_setting('shared_preload_libraries'), ',')) l
                    WHERE btrim(l, ' "') = 'pg_cron') THEN
        RAISE EXCEPTION 'pg_cron is not preloaded, so pipelines cannot be scheduled'
            USING ERRCODE = '55000',
                  HINT = 'Install pg_cron (Debian: postgresql-15-cron), add it to shared_preload_libraries, '
                         'set cron.database_name, restart, and CREATE EXTENSION pg_cron in that database.';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        RETURN;
    END IF;
    IF cron_db <> current_database() THEN
        RAISE EXCEPTION 'pg_cron lives in database "%", not in "%"', cron_db, current_database()
            USING ERRCODE = '55000',
                  HINT = CASE WHEN p_cron IS NULL THEN
                      format('In database %I run: SELECT cron.unschedule(%L);', cron_db, 'mlpipe:' || p_name)
                  ELSE
                      format('In database %I run: SELECT cron.schedule_in_database(%L, %L, %L, %L);',
                             cron_db, 'mlpipe:' || p_name, p_cron,
                             format('SELECT mlpipe.run_pipeline(%L)', p_name), current_database())
                  END;
    END IF;
    RAISE EXCEPTION 'pg_cron is preloaded but the extension is not created in database "%"', current_database()
        USING ERRCODE = '55000', HINT = 'Run CREATE EXTENSION pg_cron;';
END $$;

CREATE FUNCTION mlpipe._pipeline_set_schedule(p_name text, p_cron text, p_job bigint) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    UPDATE mlpipe.pipelines SET schedule = p_cron, cron_job_id = p_job WHERE name = p_name
$$;

-- Schedules a pipeline with pg_cron as job 'mlpipe:<name>' running
-- SELECT mlpipe.run_pipeline('<name>') as the calling user. Scheduling
-- again replaces the schedule. Returns pg_cron's job id.
CREATE FUNCTION mlpipe.schedule(name text, cron text) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    p_name text := name;
    p_cron text := cron;
    job    bigint;
    err    text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM mlpipe.pipelines pl WHERE pl.name = p_name) THEN
        PERFORM mlpipe._pipeline_unknown(p_name);
    END IF;
    IF p_cron IS NULL OR btrim(p_cron) = '' THEN
        RAISE EXCEPTION 'cron schedule is empty'
            USING ERRCODE = '22023', HINT = 'For example ''0 21 * * *'' (daily at 21:00) or ''* * * * *''.';
    END IF;
    PERFORM mlpipe._cron_check(p_name, p_cron);
    BEGIN
        EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO job
          USING 'mlpipe:' || p_name, p_cron, format('SELECT mlpipe.run_pipeline(%L)', p_name);
    EXCEPTION WHEN internal_error OR invalid_parameter_value THEN
        GET STACKED DIAGNOSTICS err = MESSAGE_TEXT;
        RAISE EXCEPTION 'invalid cron schedule "%" for pipeline "%": %', p_cron, p_name, err
            USING ERRCODE = '22023', HINT = 'Five fields (minute hour day month weekday), e.g. ''0 21 * * *''.';
    END;
    PERFORM mlpipe._pipeline_set_schedule(p_name, p_cron, job);
    RETURN job;
END $$;

-- Removes the pipeline's pg_cron job. Returns whether there was one.
CREATE FUNCTION mlpipe.unschedule(name text) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    p_name text := name;
    found_job boolean;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM mlpipe.pipelines pl WHERE pl.name = p_name) THEN
        PERFORM mlpipe._pipeline_unknown(p_name);
    END IF;
    PERFORM mlpipe._cron_check(p_name, NULL);
    EXECUTE 'SELECT EXISTS (SELECT 1 FROM cron.job WHERE jobname = $1)' INTO found_job USING 'mlpipe:' || p_name;
    IF found_job THEN
        EXECUTE 'SELECT cron.unschedule($1)' USING 'mlpipe:' || p_name;
    END IF;
    PERFORM mlpipe._pipeline_set_schedule(p_name, NULL, NULL);
    RETURN found_job;
END $$;

-- Privileges: pipelines and schedules are for mlpipe_admin.
REVOKE ALL ON FUNCTION mlpipe._pipeline_check(text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe._pipeline_unknown(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe._pipeline_store(text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe.create_pipeline(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe.create_pipeline(text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe.drop_pipeline(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe._pipeline_delete(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe._pipeline_run_begin(text, int, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe._pipeline_run_end(bigint, text, text, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe._pipeline_adopt(bigint, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe._pipeline_ident(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe._pipeline_from(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe._pipeline_texts(jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe._pipeline_features(jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe._pipeline_step(jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe.run_pipeline(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe._cron_check(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe._pipeline_set_schedule(text, text, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe.schedule(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe.unschedule(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._pipeline_check(text, boolean), mlpipe._pipeline_unknown(text),
    mlpipe._pipeline_store(text, jsonb), mlpipe.create_pipeline(text, text),
    mlpipe.create_pipeline(text, jsonb), mlpipe.drop_pipeline(text), mlpipe._pipeline_delete(text),
    mlpipe._pipeline_run_begin(text, int, jsonb), mlpipe._pipeline_run_end(bigint, text, text, bigint),
    mlpipe._pipeline_adopt(bigint, bigint), mlpipe._pipeline_ident(text), mlpipe._pipeline_from(text),
    mlpipe._pipeline_texts(jsonb), mlpipe._pipeline_features(jsonb), mlpipe._pipeline_step(jsonb),
    mlpipe.run_pipeline(text), mlpipe._cron_check(text, text),
    mlpipe._pipeline_set_schedule(text, text, bigint), mlpipe.schedule(text, text),
    mlpipe.unschedule(text)
    TO mlpipe_admin;
