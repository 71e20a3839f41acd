-- mlpipe 0.1.0: registry, k-means training and scoring.
\echo Use "CREATE EXTENSION mlpipe" to load this file. \quit

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
    PRIMARY KEY (model, version)
);
-- Artifacts are already dense binary: skip compression so reads are cheap.
ALTER TABLE mlpipe.model_versions ALTER COLUMN artifact SET STORAGE EXTERNAL;
COMMENT ON TABLE mlpipe.model_versions IS 'Every trained version: artifact, params, metrics, lineage.';

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

CREATE TABLE mlpipe.alias_events (
    event_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model        text NOT NULL,
    alias        text NOT NULL,
    from_version int,
    to_version   int,
    action       text NOT NULL,                 -- promote | rollback
    reason       text,
    at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    by_user      name NOT NULL DEFAULT current_user
);
COMMENT ON TABLE mlpipe.alias_events IS 'Append-only history of every alias change.';

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
CREATE TRIGGER alias_events_append_only BEFORE UPDATE OR DELETE ON mlpipe.alias_events
    FOR EACH ROW EXECUTE FUNCTION mlpipe._refuse_history_change();
CREATE TRIGGER alias_events_no_truncate BEFORE TRUNCATE ON mlpipe.alias_events
    FOR EACH STATEMENT EXECUTE FUNCTION mlpipe._refuse_history_change();

REVOKE ALL ON ALL TABLES IN SCHEMA mlpipe FROM PUBLIC;
GRANT USAGE ON SCHEMA mlpipe TO PUBLIC;

--------------------------------------------------------------------------
-- Model references: 'name', 'name@7', 'name@alias'.
--------------------------------------------------------------------------

CREATE FUNCTION mlpipe.version() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT '0.1.0'::text $$;

-- Resolves a model_ref to (model, version); 42704 with a HINT naming what exists.
CREATE FUNCTION mlpipe.resolve(model_ref text, OUT model text, OUT version int)
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
    IF NOT EXISTS (SELECT 1 FROM mlpipe.models m WHERE m.name = model) THEN
        SELECT string_agg(quote_literal(m.name), ', ' ORDER BY m.name) INTO known
          FROM (SELECT name FROM mlpipe.models ORDER BY name LIMIT 20) m;
        RAISE EXCEPTION 'model "%" does not exist', model
            USING ERRCODE = '42704',
                  HINT = coalesce('Registered models: ' || known || '.', 'No model is registered yet; train one with mlpipe.train().');
    END IF;
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

-- The artifact of a model_ref (for scoring through the bytea forms).
CREATE FUNCTION mlpipe.artifact(model_ref text) RETURNS bytea
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT v.artifact FROM mlpipe.model_versions v, mlpipe.resolve(model_ref) r
     WHERE v.model = r.model AND v.version = r.version
$$;

-- (model, version, sha256) of a model_ref: what the scoring cache is keyed by.
CREATE FUNCTION mlpipe._resolve_key(model_ref text, OUT model text, OUT version int, OUT sha256 text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT v.model, v.version, v.sha256 FROM mlpipe.model_versions v, mlpipe.resolve(model_ref) r
     WHERE v.model = r.model AND v.version = r.version
$$;

CREATE FUNCTION mlpipe._artifact_at(model text, version int) RETURNS bytea
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT v.artifact FROM mlpipe.model_versions v WHERE v.model = $1 AND v.version = $2
$$;

--------------------------------------------------------------------------
-- Training: C fits (as the caller, so grants and RLS on the source hold),
-- plpgsql registers the result in the caller's transaction.
--------------------------------------------------------------------------

CREATE TYPE mlpipe.fit_result AS (
    artifact bytea, task text, feature_names text[], classes text[], metrics jsonb, info jsonb);

CREATE TYPE mlpipe.train_result AS (
    model text, version int, promoted boolean, metrics jsonb, run_id bigint);

CREATE FUNCTION mlpipe._fit(
    algorithm text, source text, target text, features text[], params jsonb, warm_start bytea)
RETURNS mlpipe.fit_result
AS 'MODULE_PATHNAME', 'mlpipe_fit'
LANGUAGE C VOLATILE;

-- The main metric of a task and whether larger is better (default gate).
CREATE FUNCTION mlpipe._main_metric(task text, OUT metric text, OUT higher_is_better boolean)
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE task WHEN 'classification' THEN 'accuracy'
                     WHEN 'regression' THEN 'rmse'
                     ELSE 'silhouette' END,
           task <> 'regression'
$$;

-- Applies a promotion gate to a new version's metrics. Returns the verdict
-- as jsonb: {"passed": bool, "reason": text, "metric": ..., "value": ...}.
CREATE FUNCTION mlpipe._gate_verdict(p_model text, p_task text, p_metrics jsonb, p_gate jsonb)
RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k          text;
    main       record;
    metric     text;
    higher     boolean;
    val        float8;
    ref_alias  text;
    ref_ver    int;
    ref_val    float8;
    tol        float8 := 0;
    is_first   boolean;
BEGIN
    SELECT * INTO main FROM mlpipe._main_metric(p_task);
    is_first := NOT EXISTS (SELECT 1 FROM mlpipe.aliases a WHERE a.model = p_model AND a.alias = 'production');
    IF p_gate IS NULL THEN
        IF is_first THEN
            RETURN jsonb_build_object('passed', true, 'reason', 'first version of the model');
        END IF;
        p_gate := jsonb_build_object('metric', main.metric, 'must_beat', 'production', 'tolerance', 0);
    END IF;
    IF jsonb_typeof(p_gate) <> 'object' THEN
        RAISE EXCEPTION 'gate must be a JSON object' USING ERRCODE = '22023';
    END IF;
    FOR k IN SELECT jsonb_object_keys(p_gate) LOOP
        IF k NOT IN ('metric', 'min', 'max', 'must_beat', 'tolerance', 'higher_is_better') THEN
            RAISE EXCEPTION 'unknown gate key "%"', k
                USING ERRCODE = '22023', HINT = 'Allowed keys: metric, min, max, must_beat, tolerance, higher_is_better.';
        END IF;
    END LOOP;
    metric := coalesce(p_gate->>'metric', main.metric);
    higher := coalesce((p_gate->>'higher_is_better')::boolean,
                       CASE WHEN metric IN ('rmse', 'mae', 'mape', 'log_loss', 'inertia', 'davies_bouldin')
                            THEN false ELSE true END);
    IF NOT (p_metrics ? metric) OR jsonb_typeof(p_metrics->metric) <> 'number' THEN
        RAISE EXCEPTION 'gate metric "%" is not among this model''s metrics', metric
            USING ERRCODE = '22023',
                  HINT = 'Metrics: ' || (SELECT string_agg(key, ', ' ORDER BY key) FROM jsonb_each(p_metrics) WHERE jsonb_typeof(value) = 'number');
    END IF;
    val := (p_metrics->>metric)::float8;
    tol := coalesce((p_gate->>'tolerance')::float8, 0);
    IF p_gate ? 'min' AND val < (p_gate->>'min')::float8 THEN
        RETURN jsonb_build_object('passed', false, 'metric', metric, 'value', val,
            'reason', format('%s = %s is below the minimum %s', metric, val, p_gate->>'min'));
    END IF;
    IF p_gate ? 'max' AND val > (p_gate->>'max')::float8 THEN
        RETURN jsonb_build_object('passed', false, 'metric', metric, 'value', val,
            'reason', format('%s = %s is above the maximum %s', metric, val, p_gate->>'max'));
    END IF;
    ref_alias := p_gate->>'must_beat';
    IF ref_alias IS NOT NULL THEN
        SELECT a.version, (v.metrics->>metric)::float8 INTO ref_ver, ref_val
          FROM mlpipe.aliases a JOIN mlpipe.model_versions v USING (model, version)
         WHERE a.model = p_model AND a.alias = ref_alias;
        IF ref_ver IS NOT NULL AND ref_val IS NOT NULL AND
           ((higher AND val < ref_val - tol) OR (NOT higher AND val > ref_val + tol)) THEN
            RETURN jsonb_build_object('passed', false, 'metric', metric, 'value', val,
                'reference', ref_val, 'reference_version', ref_ver,
                'reason', format('%s = %s is worse than %s (version %s) = %s with tolerance %s',
                                 metric, val, ref_alias, ref_ver, ref_val, tol));
        END IF;
    END IF;
    RETURN jsonb_build_object('passed', true, 'metric', metric, 'value', val,
                              'reference', ref_val, 'reason', 'gate passed');
END $$;

-- Moves an alias and records the event (the one place aliases change).
CREATE FUNCTION mlpipe._set_alias(p_model text, p_alias text, p_version int, p_action text, p_reason text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    old int;
BEGIN
    SELECT a.version INTO old FROM mlpipe.aliases a WHERE a.model = p_model AND a.alias = p_alias FOR UPDATE;
    INSERT INTO mlpipe.aliases AS a (model, alias, version) VALUES (p_model, p_alias, p_version)
        ON CONFLICT (model, alias) DO UPDATE
        SET version = EXCLUDED.version, updated_at = clock_timestamp(), updated_by = current_user;
    INSERT INTO mlpipe.alias_events (model, alias, from_version, to_version, action, reason, by_user)
        VALUES (p_model, p_alias, old, p_version, p_action, p_reason, session_user);
END $$;

-- Sends an event on the mlpipe_events channel (delivered at commit).
CREATE FUNCTION mlpipe._notify(event text, payload jsonb) RETURNS void
LANGUAGE sql AS $$
    SELECT pg_catalog.pg_notify('mlpipe_events',
        left((jsonb_build_object('event', event) || payload)::text, 7900))
$$;

-- Records a fitted model: model row, run, version, metrics, gate, alias.
CREATE FUNCTION mlpipe._register(
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
BEGIN
    INSERT INTO mlpipe.models AS m (name, task, algorithm) VALUES (p_model, v_task, p_algorithm)
        ON CONFLICT (name) DO NOTHING;
    PERFORM 1 FROM mlpipe.models m WHERE m.name = p_model FOR UPDATE;   -- serialises version numbers
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

    INSERT INTO mlpipe.model_versions (model, version, algorithm, task, params, features, target,
        classes, metrics, training_rows, skipped_rows, artifact, sha256, status, gate, run_id,
        source, mlpipe_version, lineage, created_by)
    VALUES (p_model, v_version, p_algorithm, v_task, p_params, p_fit.feature_names, p_target,
        p_fit.classes, p_fit.metrics, (p_fit.info->>'training_rows')::bigint,
        coalesce((p_fit.info->>'skipped_rows')::bigint, 0), p_fit.artifact,
        encode(sha256(p_fit.artifact), 'hex'), CASE WHEN ok THEN 'promoted' ELSE 'candidate' END,
        jsonb_build_object('policy', p_gate) || verdict, v_run, p_source, mlpipe.version(),
        p_fit.info - 'training_rows' - 'skipped_rows' - 'metrics_split', session_user);

    INSERT INTO mlpipe.metrics (run_id, model, version, split, metric, value)
    SELECT v_run, p_model, v_version, coalesce(p_fit.info->>'metrics_split', 'test'), e.key, (e.value)::text::float8
      FROM jsonb_each(p_fit.metrics) e WHERE jsonb_typeof(e.value) = 'number';

    PERFORM mlpipe._notify('version_registered',
        jsonb_build_object('model', p_model, 'version', v_version, 'run_id', v_run));
    IF ok THEN
        PERFORM mlpipe._set_alias(p_model, 'production', v_version, 'promote', verdict->>'reason');
        PERFORM mlpipe._notify('promoted', jsonb_build_object('model', p_model, 'version', v_version,
            'alias', 'production', 'run_id', v_run, 'reason', verdict->>'reason'));
    ELSE
        PERFORM mlpipe._notify('gate_failed', jsonb_build_object('model', p_model, 'version', v_version,
            'alias', 'production', 'run_id', v_run, 'reason', verdict->>'reason'));
    END IF;
    RETURN ROW(p_model, v_version, ok, p_fit.metrics, v_run)::mlpipe.train_result;
END $$;

CREATE FUNCTION mlpipe._train(
    p_model text, p_algorithm text, p_source text, p_target text, p_features text[],
    p_params jsonb, p_gate jsonb)
RETURNS mlpipe.train_result
-- SECURITY INVOKER and no pinned search_path: the source is resolved and read
-- as the caller, with the caller's search_path, grants and row-level security.
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    started timestamptz := clock_timestamp();
    warm    bytea;
    fit     mlpipe.fit_result;
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
    IF p_params ? 'warm_start' THEN
        IF jsonb_typeof(p_params->'warm_start') <> 'string' THEN
            RAISE EXCEPTION 'params.warm_start must be a model reference such as ''sensors@3'''
                USING ERRCODE = '22023';
        END IF;
        warm := mlpipe.artifact(p_params->>'warm_start');
    END IF;
    fit := mlpipe._fit(p_algorithm, p_source, p_target, p_features, p_params, warm);
    RETURN mlpipe._register(p_model, p_algorithm, p_source, p_target, p_params, p_gate, started, fit);
END $$;

-- Trains a model and registers it as a new version (see docs/kmeans.md).
CREATE FUNCTION mlpipe.train(
    model     text,
    algorithm text,
    source    text,
    target    text    DEFAULT NULL,
    features  text[]  DEFAULT NULL,
    params    jsonb   DEFAULT '{}',
    gate      jsonb   DEFAULT NULL)
RETURNS TABLE (model text, version int, promoted boolean, metrics jsonb, run_id bigint)
LANGUAGE sql VOLATILE AS $$
    SELECT * FROM mlpipe._train($1, $2, $3, $4, $5, $6, $7)
$$;

--------------------------------------------------------------------------
-- Scoring.
--------------------------------------------------------------------------

CREATE FUNCTION mlpipe.predict(model_ref text, features float8[]) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_predict_ref'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE FUNCTION mlpipe.predict(model bytea, features float8[]) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_predict_bytea'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

--------------------------------------------------------------------------
-- Inspection.
--------------------------------------------------------------------------

-- The artifact decoded into readable JSON (centroids, scaling, ...).
CREATE FUNCTION mlpipe.export(model bytea) RETURNS jsonb
AS 'MODULE_PATHNAME', 'mlpipe_export_bytea'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION mlpipe.export(model_ref text) RETURNS jsonb
LANGUAGE sql STABLE STRICT AS $$
    SELECT jsonb_build_object('model', r.model, 'version', r.version)
           || mlpipe.export(mlpipe.artifact(model_ref))
      FROM mlpipe.resolve(model_ref) r
$$;

CREATE FUNCTION mlpipe.features(model_ref text) RETURNS text[]
LANGUAGE sql STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT v.features FROM mlpipe.model_versions v, mlpipe.resolve(model_ref) r
     WHERE v.model = r.model AND v.version = r.version
$$;

CREATE FUNCTION mlpipe.classes(model_ref text) RETURNS text[]
LANGUAGE sql STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT v.classes FROM mlpipe.model_versions v, mlpipe.resolve(model_ref) r
     WHERE v.model = r.model AND v.version = r.version
$$;

CREATE FUNCTION mlpipe.model_info(model_ref text) RETURNS jsonb
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
        'lineage', jsonb_build_object('source', v.source, 'rows', v.training_rows,
                                      'mlpipe_version', v.mlpipe_version) || v.lineage)
      FROM mlpipe.model_versions v, mlpipe.resolve(model_ref) r
     WHERE v.model = r.model AND v.version = r.version
$$;

-- Internal functions are not for direct use.
REVOKE ALL ON FUNCTION mlpipe._register(text, text, text, text, jsonb, jsonb, timestamptz, mlpipe.fit_result) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe._set_alias(text, text, int, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe._artifact_at(text, int) FROM PUBLIC;
