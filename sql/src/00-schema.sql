-- mlpipe full install script, built by `make` from sql/src/*.sql in name
-- order (00-schema, 10-registry, 20-training, 30-scoring, 40-features,
-- 50-evaluation, 60-pipelines). Each object is defined once, in the file of
-- its subsystem, with its comment and privileges beside it.
\echo Use "CREATE EXTENSION mlpipe" to load this file. \quit

--------------------------------------------------------------------------
-- 00-schema: roles, the registry tables, their history triggers, the
-- composite types, and the schema and table privileges.
--------------------------------------------------------------------------

-- Roles, least privilege first. Each role includes the one before it:
--   mlpipe_reader  : read the registry tables and prediction tables, model_info, export, ...
--   mlpipe_scorer  : + predict / predict_label / predict_proba by name
--   mlpipe_trainer : + train, evaluate, cross_validate, search, predict_table, drift
--   mlpipe_admin   : + promote, rollback, prune, tags, pipelines, schedules
-- Roles are cluster-wide, so they are created only when missing and are not
-- dropped with the extension. Every function is revoked from PUBLIC and
-- granted to the lowest role that may call it, next to its definition; pure
-- computations (aggregates, metrics on caller data) stay PUBLIC.
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'mlpipe_reader') THEN
		CREATE ROLE mlpipe_reader NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'mlpipe_scorer') THEN
		CREATE ROLE mlpipe_scorer NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'mlpipe_trainer') THEN
		CREATE ROLE mlpipe_trainer NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'mlpipe_admin') THEN
		CREATE ROLE mlpipe_admin NOLOGIN;
	END IF;
END $$;
GRANT mlpipe_reader TO mlpipe_scorer;
GRANT mlpipe_scorer TO mlpipe_trainer;
GRANT mlpipe_trainer TO mlpipe_admin;
GRANT USAGE ON SCHEMA mlpipe TO PUBLIC;
GRANT USAGE ON SCHEMA mlpipe TO mlpipe_reader;

--------------------------------------------------------------------------
-- Registry tables. BI tools read them; only mlpipe's functions write them
-- (the writers are SECURITY DEFINER with a pinned search_path).
--------------------------------------------------------------------------

CREATE TABLE mlpipe.models (
    name        text PRIMARY KEY
                CHECK (name <> '' AND length(name) <= 200 AND position('@' IN name) = 0
                       AND name !~ '[[:cntrl:]]'),
    task        text NOT NULL CHECK (task IN ('clustering', 'classification', 'regression')),
    algorithm   text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    created_by  name NOT NULL DEFAULT current_user,
    tags        jsonb NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE mlpipe.models IS 'One row per registered model name.';
COMMENT ON COLUMN mlpipe.models.name IS 'The model name used in model references (no @, at most 200 characters).';
COMMENT ON COLUMN mlpipe.models.task IS 'clustering, classification or regression; every version of a model has this task.';
COMMENT ON COLUMN mlpipe.models.algorithm IS 'The algorithm of the first version.';
COMMENT ON COLUMN mlpipe.models.created_at IS 'When the first version was registered.';
COMMENT ON COLUMN mlpipe.models.created_by IS 'The user who registered the first version.';
COMMENT ON COLUMN mlpipe.models.tags IS 'Model tags (key to text value), set with mlpipe.tag.';
REVOKE ALL ON mlpipe.models FROM PUBLIC;
GRANT SELECT ON mlpipe.models TO mlpipe_reader;

CREATE TABLE mlpipe.runs (
    run_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind          text NOT NULL,                 -- train | predict_table | evaluate | ...
    model         text,
    version       int,
    algorithm     text,
    source        text,
    params        jsonb NOT NULL DEFAULT '{}',
    status        text NOT NULL DEFAULT 'succeeded'
                  CHECK (status IN ('running', 'succeeded', 'failed')),
    error         text,
    rows          bigint,
    started_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at   timestamptz,
    seconds       float8,
    created_by    name NOT NULL DEFAULT current_user,
    parent_run_id bigint REFERENCES mlpipe.runs (run_id)
);
COMMENT ON TABLE mlpipe.runs IS 'One row per training, scoring or evaluation run.';
COMMENT ON COLUMN mlpipe.runs.run_id IS 'The run number, also in model_versions.run_id and metrics.run_id.';
COMMENT ON COLUMN mlpipe.runs.kind IS 'What ran: train, predict_table, evaluate, cross_validate, cv_fold, search, search_trial, pipeline, pipeline_step, ...';
COMMENT ON COLUMN mlpipe.runs.model IS 'The model the run trained, scored or evaluated, if any.';
COMMENT ON COLUMN mlpipe.runs.version IS 'The model version the run produced or used, if any.';
COMMENT ON COLUMN mlpipe.runs.algorithm IS 'The algorithm trained or cross-validated, if any.';
COMMENT ON COLUMN mlpipe.runs.source IS 'The table, view or query the run read.';
COMMENT ON COLUMN mlpipe.runs.params IS 'The parameters of the run as given (and what was derived from them).';
COMMENT ON COLUMN mlpipe.runs.status IS 'running, succeeded or failed.';
COMMENT ON COLUMN mlpipe.runs.error IS 'The error message of a failed run.';
COMMENT ON COLUMN mlpipe.runs.rows IS 'Rows read, scored or written.';
COMMENT ON COLUMN mlpipe.runs.started_at IS 'When the run started.';
COMMENT ON COLUMN mlpipe.runs.finished_at IS 'When the run finished (NULL while running).';
COMMENT ON COLUMN mlpipe.runs.seconds IS 'Duration of the run in seconds.';
COMMENT ON COLUMN mlpipe.runs.created_by IS 'The user who started the run.';
COMMENT ON COLUMN mlpipe.runs.parent_run_id IS 'The run this one is part of (a fold of a cross-validation, a step of a pipeline, ...).';
REVOKE ALL ON mlpipe.runs FROM PUBLIC;
GRANT SELECT ON mlpipe.runs TO mlpipe_reader;

CREATE TABLE mlpipe.model_versions (
    model          text NOT NULL REFERENCES mlpipe.models (name),
    version        int NOT NULL CHECK (version > 0),
    algorithm      text NOT NULL,
    task           text NOT NULL,
    params         jsonb NOT NULL,
    features       text[] NOT NULL,
    target         text,
    classes        text[],
    metrics        jsonb NOT NULL DEFAULT '{}',
    training_rows  bigint NOT NULL,
    skipped_rows   bigint NOT NULL DEFAULT 0,
    artifact       bytea NOT NULL,
    size           int GENERATED ALWAYS AS (octet_length(artifact)) STORED,
    sha256         text NOT NULL,
    status         text NOT NULL DEFAULT 'candidate'
                   CHECK (status IN ('candidate', 'promoted', 'rejected')),
    gate           jsonb,                        -- the gate applied and its verdict
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    created_by     name NOT NULL DEFAULT current_user,
    run_id         bigint REFERENCES mlpipe.runs (run_id),
    source         text NOT NULL,                -- lineage: what it was trained on
    mlpipe_version text NOT NULL,
    lineage        jsonb NOT NULL DEFAULT '{}',  -- warm start parent, split, seed, ...
    tags           jsonb NOT NULL DEFAULT '{}',
    profile        jsonb,
    PRIMARY KEY (model, version)
);
-- Artifacts are already dense binary: skip compression so reads are cheap.
ALTER TABLE mlpipe.model_versions ALTER COLUMN artifact SET STORAGE EXTERNAL;
COMMENT ON TABLE mlpipe.model_versions IS 'Every trained version: artifact, params, metrics, lineage.';
COMMENT ON COLUMN mlpipe.model_versions.model IS 'The model (mlpipe.models.name) this is a version of.';
COMMENT ON COLUMN mlpipe.model_versions.version IS 'The version number, 1, 2, ... per model.';
COMMENT ON COLUMN mlpipe.model_versions.algorithm IS 'kmeans, minibatch_kmeans, decision_tree, random_forest or gbt.';
COMMENT ON COLUMN mlpipe.model_versions.task IS 'clustering, classification or regression.';
COMMENT ON COLUMN mlpipe.model_versions.params IS 'The training parameters, defaults filled in.';
COMMENT ON COLUMN mlpipe.model_versions.features IS 'The feature names, in the order the float8[] forms of predict take them.';
COMMENT ON COLUMN mlpipe.model_versions.target IS 'The target column of a supervised model (NULL for clustering).';
COMMENT ON COLUMN mlpipe.model_versions.classes IS 'The class labels of a classifier, in the order of predict_proba.';
COMMENT ON COLUMN mlpipe.model_versions.metrics IS 'The metrics measured at training (test split, out-of-bag, ...).';
COMMENT ON COLUMN mlpipe.model_versions.training_rows IS 'Rows the model was trained on.';
COMMENT ON COLUMN mlpipe.model_versions.skipped_rows IS 'Source rows skipped (NULL or non-finite values that could not be used).';
COMMENT ON COLUMN mlpipe.model_versions.artifact IS 'The model in the binary artifact format (docs/artifact-format.md).';
COMMENT ON COLUMN mlpipe.model_versions.size IS 'The artifact size in bytes.';
COMMENT ON COLUMN mlpipe.model_versions.sha256 IS 'The hex SHA-256 of the artifact.';
COMMENT ON COLUMN mlpipe.model_versions.status IS 'candidate, promoted or rejected (by the gate).';
COMMENT ON COLUMN mlpipe.model_versions.gate IS 'The gate applied at registration and its verdict.';
COMMENT ON COLUMN mlpipe.model_versions.created_at IS 'When the version was registered.';
COMMENT ON COLUMN mlpipe.model_versions.created_by IS 'The user who trained the version.';
COMMENT ON COLUMN mlpipe.model_versions.run_id IS 'The training run (mlpipe.runs).';
COMMENT ON COLUMN mlpipe.model_versions.source IS 'The table, view or query the version was trained on.';
COMMENT ON COLUMN mlpipe.model_versions.mlpipe_version IS 'The mlpipe version that trained it.';
COMMENT ON COLUMN mlpipe.model_versions.lineage IS 'How it was trained: warm start parent, split, seed, as_of, ...';
COMMENT ON COLUMN mlpipe.model_versions.tags IS 'Version tags (key to text value), set with mlpipe.tag.';
COMMENT ON COLUMN mlpipe.model_versions.profile IS
    'Per-feature training profile (bins, counts, null rates) that mlpipe.drift compares against.';
REVOKE ALL ON mlpipe.model_versions FROM PUBLIC;
GRANT SELECT ON mlpipe.model_versions TO mlpipe_reader;

CREATE TABLE mlpipe.aliases (
    model       text NOT NULL REFERENCES mlpipe.models (name),
    alias       text NOT NULL CHECK (alias ~ '^[A-Za-z_][A-Za-z0-9_-]*$' AND length(alias) <= 63),
    version     int NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_by  name NOT NULL DEFAULT current_user,
    PRIMARY KEY (model, alias),
    FOREIGN KEY (model, version) REFERENCES mlpipe.model_versions (model, version)
);
COMMENT ON TABLE mlpipe.aliases IS 'Named pointers (production, staging, ...) to versions.';
COMMENT ON COLUMN mlpipe.aliases.model IS 'The model the alias belongs to.';
COMMENT ON COLUMN mlpipe.aliases.alias IS 'The alias name, as in name@alias (production when a reference has none).';
COMMENT ON COLUMN mlpipe.aliases.version IS 'The version the alias points to.';
COMMENT ON COLUMN mlpipe.aliases.updated_at IS 'When the alias last moved.';
COMMENT ON COLUMN mlpipe.aliases.updated_by IS 'The user who last moved the alias.';
REVOKE ALL ON mlpipe.aliases FROM PUBLIC;
GRANT SELECT ON mlpipe.aliases TO mlpipe_reader;

CREATE TABLE mlpipe.alias_events (
    event_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model        text NOT NULL,
    alias        text NOT NULL,
    from_version int,
    to_version   int,
    action       text NOT NULL,                 -- promote | rollback | drop
    reason       text,
    at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    by_user      name NOT NULL DEFAULT current_user
);
COMMENT ON TABLE mlpipe.alias_events IS 'Append-only history of every alias change.';
COMMENT ON COLUMN mlpipe.alias_events.event_id IS 'The event number, in the order the changes happened.';
COMMENT ON COLUMN mlpipe.alias_events.model IS 'The model whose alias changed.';
COMMENT ON COLUMN mlpipe.alias_events.alias IS 'The alias that changed.';
COMMENT ON COLUMN mlpipe.alias_events.from_version IS 'The version the alias pointed to before (NULL when it was new).';
COMMENT ON COLUMN mlpipe.alias_events.to_version IS 'The version the alias points to after.';
COMMENT ON COLUMN mlpipe.alias_events.action IS 'promote, rollback, or drop (the model was dropped: to_version is NULL).';
COMMENT ON COLUMN mlpipe.alias_events.reason IS 'The reason given to promote or rollback.';
COMMENT ON COLUMN mlpipe.alias_events.at IS 'When the alias changed.';
COMMENT ON COLUMN mlpipe.alias_events.by_user IS 'The user who changed the alias.';
REVOKE ALL ON mlpipe.alias_events FROM PUBLIC;
GRANT SELECT ON mlpipe.alias_events TO mlpipe_reader;

CREATE TABLE mlpipe.metrics (
    run_id      bigint NOT NULL REFERENCES mlpipe.runs (run_id),
    model       text,
    version     int,
    split       text NOT NULL,                  -- train | test | validation | oob | scoring
    metric      text NOT NULL,
    value       float8,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (run_id, split, metric)
);
CREATE INDEX ON mlpipe.metrics (model, version);
COMMENT ON TABLE mlpipe.metrics IS 'Long-format metrics: one row per run, split and metric.';
COMMENT ON COLUMN mlpipe.metrics.run_id IS 'The run that measured the metric.';
COMMENT ON COLUMN mlpipe.metrics.model IS 'The model measured, if any.';
COMMENT ON COLUMN mlpipe.metrics.version IS 'The model version measured, if any.';
COMMENT ON COLUMN mlpipe.metrics.split IS 'The rows it was measured on: train, test, validation, oob or scoring.';
COMMENT ON COLUMN mlpipe.metrics.metric IS 'The metric name (accuracy, rmse, inertia, ...).';
COMMENT ON COLUMN mlpipe.metrics.value IS 'The metric value.';
COMMENT ON COLUMN mlpipe.metrics.recorded_at IS 'When the metric was recorded.';
REVOKE ALL ON mlpipe.metrics FROM PUBLIC;
GRANT SELECT ON mlpipe.metrics TO mlpipe_reader;

CREATE TABLE mlpipe.training_iterations (
    model           text NOT NULL,
    version         int NOT NULL,
    iteration       int NOT NULL CHECK (iteration >= 0),
    training_loss   float8,
    validation_loss float8,
    elapsed_ms      float8,
    PRIMARY KEY (model, version, iteration),
    FOREIGN KEY (model, version) REFERENCES mlpipe.model_versions (model, version) ON DELETE CASCADE
);
COMMENT ON TABLE mlpipe.training_iterations IS 'One row per training iteration of a version (k-means: Lloyd iteration, mini-batch: epoch, gbt: boosting round), read by mlpipe.training_info.';
COMMENT ON COLUMN mlpipe.training_iterations.model IS 'The model of the version.';
COMMENT ON COLUMN mlpipe.training_iterations.version IS 'The version trained.';
COMMENT ON COLUMN mlpipe.training_iterations.iteration IS 'The iteration, from 0 (as BigQuery''s ML.TRAINING_INFO and XGBoost''s evals_result).';
COMMENT ON COLUMN mlpipe.training_iterations.training_loss IS 'k-means: the inertia of the iteration''s assignment (mini-batch: the smoothed batch inertia scaled to all rows); gbt: logloss, mlogloss or RMSE on the training rows.';
COMMENT ON COLUMN mlpipe.training_iterations.validation_loss IS 'gbt with validation rows (early_stopping_rounds): the loss on them; NULL otherwise.';
COMMENT ON COLUMN mlpipe.training_iterations.elapsed_ms IS 'Milliseconds since the algorithm started, at the end of the iteration (wall clock, not reproducible).';
REVOKE ALL ON mlpipe.training_iterations FROM PUBLIC;
GRANT SELECT ON mlpipe.training_iterations TO mlpipe_reader;

-- pg_dump keeps the registry's rows (the tables belong to the extension).
SELECT pg_catalog.pg_extension_config_dump('mlpipe.models', '');
SELECT pg_catalog.pg_extension_config_dump('mlpipe.model_versions', '');
SELECT pg_catalog.pg_extension_config_dump('mlpipe.aliases', '');
SELECT pg_catalog.pg_extension_config_dump('mlpipe.alias_events', '');
SELECT pg_catalog.pg_extension_config_dump('mlpipe.runs', '');
SELECT pg_catalog.pg_extension_config_dump('mlpipe.metrics', '');
SELECT pg_catalog.pg_extension_config_dump('mlpipe.runs_run_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('mlpipe.alias_events_event_id_seq', '');

-- The history is append-only: UPDATE, DELETE and TRUNCATE are refused for
-- everyone, the owner included. Dropping the extension drops the table.
CREATE FUNCTION mlpipe._refuse_history_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'mlpipe.alias_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = '42501', HINT = 'Alias changes are recorded by mlpipe.promote and mlpipe.rollback.';
END $$;
COMMENT ON FUNCTION mlpipe._refuse_history_change() IS 'Trigger function that refuses UPDATE, DELETE and TRUNCATE on mlpipe.alias_events (append-only history).';
CREATE TRIGGER alias_events_append_only BEFORE UPDATE OR DELETE ON mlpipe.alias_events
    FOR EACH ROW EXECUTE FUNCTION mlpipe._refuse_history_change();
CREATE TRIGGER alias_events_no_truncate BEFORE TRUNCATE ON mlpipe.alias_events
    FOR EACH STATEMENT EXECUTE FUNCTION mlpipe._refuse_history_change();
-- The history stays append-only even with session_replication_role =
-- replica: the triggers fire in every mode.
ALTER TABLE mlpipe.alias_events ENABLE ALWAYS TRIGGER alias_events_append_only;
ALTER TABLE mlpipe.alias_events ENABLE ALWAYS TRIGGER alias_events_no_truncate;

--------------------------------------------------------------------------
-- Composite types.
--------------------------------------------------------------------------

-- What mlpipe._fit returns (and mlpipe._register takes, once per fit).
CREATE TYPE mlpipe.fit_result AS (
    artifact bytea, task text, feature_names text[], classes text[], metrics jsonb, info jsonb);
COMMENT ON TYPE mlpipe.fit_result IS 'What mlpipe._fit returns: artifact, task, features, classes, metrics and training information.';

CREATE TYPE mlpipe.train_result AS (
    model text, version int, promoted boolean, metrics jsonb, run_id bigint);
COMMENT ON TYPE mlpipe.train_result IS 'The row mlpipe.train and mlpipe.search return: model, version, promoted, metrics and run_id.';

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
COMMENT ON TYPE mlpipe.ts_summary IS 'The result of mlpipe.ts_features: moments, quantiles, slope, changes, autocorrelation and gaps of a time series.';

CREATE TYPE mlpipe.value_summary AS (
    n bigint, n_null bigint, mean float8, std float8, min float8, max float8,
    q05 float8, q25 float8, median float8, q75 float8, q95 float8,
    skewness float8, kurtosis float8
);
COMMENT ON TYPE mlpipe.value_summary IS 'The result of mlpipe.summary: count, nulls, moments and quantiles of a column.';
