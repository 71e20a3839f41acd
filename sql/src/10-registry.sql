--------------------------------------------------------------------------
-- 10-registry: mlpipe.version, model references (name, name@version,
-- name@alias), the registry writers (_register, _set_alias, _log_run),
-- events, aliases (promote, rollback, version_at), pruning, tags and
-- model_info. See docs/registry.md and docs/security.md.
--------------------------------------------------------------------------

-- The installed version.
CREATE FUNCTION mlpipe.version() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$ SELECT '0.4.0'::text $$;
COMMENT ON FUNCTION mlpipe.version() IS 'The installed mlpipe version.';

-- Resolves a model_ref: 'name' (the production alias), 'name@7' or
-- 'name@alias'; 42704 with what exists in the HINT otherwise.
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
    PERFORM mlpipe_internal._require_model(model);
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
COMMENT ON FUNCTION mlpipe.resolve(text) IS
    'Resolves name, name@alias or name@version to a model and version.';
REVOKE ALL ON FUNCTION mlpipe.resolve(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.resolve(text) TO mlpipe_reader;

-- The artifact of a model_ref (for scoring through the bytea forms).
CREATE FUNCTION mlpipe.artifact(model_ref text) RETURNS bytea
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT v.artifact FROM mlpipe.model_versions v, mlpipe.resolve(model_ref) r
     WHERE v.model = r.model AND v.version = r.version
$$;
COMMENT ON FUNCTION mlpipe.artifact(text) IS
    'The artifact bytes of a version, for the bytea forms of predict or export.';
REVOKE ALL ON FUNCTION mlpipe.artifact(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.artifact(text) TO mlpipe_reader;

-- The per-statement lookup of the name forms of predict, in plpgsql so that
-- its plans are cached for the session (a SQL function is planned again on
-- every call): one-row predict went from 0.35x to 0.5x the transactions per
-- second of a bare SELECT.
CREATE FUNCTION mlpipe_internal._resolve_key(model_ref text, OUT model text, OUT version int, OUT sha256 text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    SELECT r.model, r.version INTO model, version FROM mlpipe.resolve(model_ref) r;
    SELECT v.sha256 INTO sha256 FROM mlpipe.model_versions v
     WHERE v.model = _resolve_key.model AND v.version = _resolve_key.version;
    IF sha256 IS NULL THEN
        RAISE EXCEPTION 'model version %@% has no artifact', model, version USING ERRCODE = '42704';
    END IF;
END $$;
COMMENT ON FUNCTION mlpipe_internal._resolve_key(text) IS
    'Resolves a model_ref to model, version and artifact sha256 (the per-statement key of the predict cache).';
REVOKE ALL ON FUNCTION mlpipe_internal._resolve_key(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._resolve_key(text) TO mlpipe_reader;

CREATE FUNCTION mlpipe_internal._artifact_at(model text, version int) RETURNS bytea
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT v.artifact FROM mlpipe.model_versions v WHERE v.model = $1 AND v.version = $2
$$;
COMMENT ON FUNCTION mlpipe_internal._artifact_at(text, int) IS
    'The artifact of one model version (SECURITY DEFINER reader for the scoring functions).';
REVOKE ALL ON FUNCTION mlpipe_internal._artifact_at(text, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._artifact_at(text, int) TO mlpipe_reader;

-- The main metric of a task and whether larger is better (default gate).
CREATE FUNCTION mlpipe_internal._main_metric(task text, OUT metric text, OUT higher_is_better boolean)
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE task WHEN 'classification' THEN 'accuracy'
                     WHEN 'regression' THEN 'rmse'
                     ELSE 'silhouette' END,
           task <> 'regression'
$$;
COMMENT ON FUNCTION mlpipe_internal._main_metric(text) IS
    'The main metric of a task and whether larger is better (the default gate).';

-- The gate verdict of a version's metrics: an undefined gate metric fails
-- the gate (not the training); gate values are type-checked; must_beat must
-- name an alias.
CREATE FUNCTION mlpipe_internal._gate_verdict(p_model text, p_task text, p_metrics jsonb, p_gate jsonb)
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
    SELECT * INTO main FROM mlpipe_internal._main_metric(p_task);
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
    FOR k IN SELECT key FROM jsonb_each(p_gate) WHERE key IN ('min', 'max', 'tolerance') LOOP
        IF jsonb_typeof(p_gate->k) <> 'number' THEN
            RAISE EXCEPTION 'gate.% must be a number', k USING ERRCODE = '22023';
        END IF;
    END LOOP;
    IF p_gate ? 'higher_is_better' AND jsonb_typeof(p_gate->'higher_is_better') <> 'boolean' THEN
        RAISE EXCEPTION 'gate.higher_is_better must be true or false' USING ERRCODE = '22023';
    END IF;
    metric := coalesce(p_gate->>'metric', main.metric);
    higher := coalesce((p_gate->>'higher_is_better')::boolean,
                       CASE WHEN metric IN ('rmse', 'mae', 'mape', 'log_loss', 'inertia', 'davies_bouldin')
                            THEN false ELSE true END);
    -- A metric that is undefined for this version (NaN, stored as null) fails the gate.
    IF p_metrics ? metric AND jsonb_typeof(p_metrics->metric) = 'null' THEN
        RETURN jsonb_build_object('passed', false, 'metric', metric,
            'reason', format('%s is undefined for this version', metric));
    END IF;
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
    IF ref_alias IS NOT NULL AND ref_alias <> 'production'
       AND NOT EXISTS (SELECT 1 FROM mlpipe.aliases a WHERE a.model = p_model AND a.alias = ref_alias) THEN
        RAISE EXCEPTION 'gate.must_beat names alias "%", which model "%" does not have', ref_alias, p_model
            USING ERRCODE = '22023';
    END IF;
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
COMMENT ON FUNCTION mlpipe_internal._gate_verdict(text, text, jsonb, jsonb) IS
    'Checks a version''s metrics against a gate (min, max, must_beat, tolerance) and returns the verdict.';
REVOKE ALL ON FUNCTION mlpipe_internal._gate_verdict(text, text, jsonb, jsonb) FROM PUBLIC;

-- Moves an alias and records the event (the one place aliases change).
CREATE FUNCTION mlpipe_internal._set_alias(p_model text, p_alias text, p_version int, p_action text, p_reason text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    old int;
BEGIN
    SELECT a.version INTO old FROM mlpipe.aliases a WHERE a.model = p_model AND a.alias = p_alias FOR UPDATE;
    INSERT INTO mlpipe.aliases AS a (model, alias, version, updated_by) VALUES (p_model, p_alias, p_version, session_user)
        ON CONFLICT (model, alias) DO UPDATE
        SET version = EXCLUDED.version, updated_at = clock_timestamp(), updated_by = session_user;
    INSERT INTO mlpipe.alias_events (model, alias, from_version, to_version, action, reason, by_user)
        VALUES (p_model, p_alias, old, p_version, p_action, p_reason, session_user);
    -- status follows the production alias: 'promoted' is the version it
    -- points to now, and the version it leaves goes back to 'candidate'
    -- (its history stays in alias_events).
    IF p_alias = 'production' THEN
        UPDATE mlpipe.model_versions v SET status = 'candidate'
         WHERE v.model = p_model AND v.version = old AND old IS DISTINCT FROM p_version
           AND v.status = 'promoted';
        UPDATE mlpipe.model_versions v SET status = 'promoted'
         WHERE v.model = p_model AND v.version = p_version AND v.status <> 'promoted';
    END IF;
END $$;
COMMENT ON FUNCTION mlpipe_internal._set_alias(text, text, int, text, text) IS
    'Moves an alias, records the event in mlpipe.alias_events and keeps model_versions.status in line with production (the one place aliases change).';
REVOKE ALL ON FUNCTION mlpipe_internal._set_alias(text, text, int, text, text) FROM PUBLIC;

-- Sends an event on the mlpipe_events channel (delivered at commit).
CREATE FUNCTION mlpipe_internal._notify(event text, payload jsonb) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT pg_catalog.pg_notify('mlpipe_events', mlpipe_internal._event_payload(event, payload))
$$;
COMMENT ON FUNCTION mlpipe_internal._notify(text, jsonb) IS
    'Sends an event on the mlpipe_events channel (delivered at commit).';
REVOKE ALL ON FUNCTION mlpipe_internal._notify(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._notify(text, jsonb) TO mlpipe_trainer;

-- A training with the same algorithm, source, target and params as the
-- model's latest version, whose artifact is byte-identical to it:
-- its run and metrics are recorded against that version; no new version,
-- gate verdict, alias move or event. Called by _register (model row locked).
CREATE FUNCTION mlpipe_internal._register_rerun(
    p_model text, p_version int, p_algorithm text, p_source text, p_params jsonb,
    p_started timestamptz, p_fit mlpipe.fit_result)
RETURNS mlpipe.train_result
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_run bigint;
BEGIN
    INSERT INTO mlpipe.runs (kind, model, version, algorithm, source, params, status, rows,
                             started_at, finished_at, seconds, created_by)
    VALUES ('train', p_model, p_version, p_algorithm, p_source, p_params, 'succeeded',
            (p_fit.info->>'training_rows')::bigint, p_started, clock_timestamp(),
            extract(epoch FROM clock_timestamp() - p_started), session_user)
    RETURNING runs.run_id INTO v_run;
    INSERT INTO mlpipe.metrics (run_id, model, version, split, metric, value)
    SELECT v_run, p_model, p_version, coalesce(p_fit.info->>'metrics_split', 'test'), e.key, (e.value)::text::float8
      FROM jsonb_each(p_fit.metrics) e WHERE jsonb_typeof(e.value) = 'number';
    RAISE NOTICE 'model "%": this training reproduced version % byte for byte; its run is recorded against that version and no new version is made',
        p_model, p_version
        USING HINT = 'Change the data, params or seed to get a different model.';
    RETURN ROW(p_model, p_version,
               EXISTS (SELECT 1 FROM mlpipe.aliases a
                        WHERE a.model = p_model AND a.alias = 'production' AND a.version = p_version),
               p_fit.metrics, v_run)::mlpipe.train_result;
END $$;
COMMENT ON FUNCTION mlpipe_internal._register_rerun(text, int, text, text, jsonb, timestamptz, mlpipe.fit_result) IS
    'Records a training that reproduced the latest version byte for byte as a run of that version.';
REVOKE ALL ON FUNCTION mlpipe_internal._register_rerun(text, int, text, text, jsonb, timestamptz, mlpipe.fit_result) FROM PUBLIC;

-- Records a fitted model: model row, run, version, metrics, gate, alias.
CREATE FUNCTION mlpipe_internal._register(
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
    IF NOT mlpipe_internal._fit_claim(p_fit, p_algorithm) THEN
        RAISE EXCEPTION 'mlpipe_internal._register accepts only a result of mlpipe_internal._fit from the same transaction'
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
    -- The gate is checked (22023 for a bad one) whatever happens next.
    verdict := mlpipe_internal._gate_verdict(p_model, v_task, p_fit.metrics, p_gate);
    ok := (verdict->>'passed')::boolean;
    -- A retrain with the latest version's algorithm, source, target and
    -- params that reproduces its artifact byte for byte is a run of that
    -- version, not a new one (docs/registry.md).
    SELECT v.version INTO v_version FROM mlpipe.model_versions v
     WHERE v.model = p_model ORDER BY v.version DESC LIMIT 1;
    IF v_version IS NOT NULL AND EXISTS (
           SELECT 1 FROM mlpipe.model_versions v
            WHERE v.model = p_model AND v.version = v_version
              AND v.algorithm = p_algorithm AND v.source = p_source
              AND v.target IS NOT DISTINCT FROM p_target AND v.params = p_params
              AND v.sha256 = encode(sha256(p_fit.artifact), 'hex') AND v.artifact = p_fit.artifact) THEN
        RETURN mlpipe_internal._register_rerun(p_model, v_version, p_algorithm, p_source, p_params, p_started, p_fit);
    END IF;
    v_version := coalesce(v_version, 0) + 1;

    INSERT INTO mlpipe.runs (kind, model, version, algorithm, source, params, status, rows,
                             started_at, finished_at, seconds, created_by)
    VALUES ('train', p_model, v_version, p_algorithm, p_source, p_params, 'succeeded',
            (p_fit.info->>'training_rows')::bigint, p_started, clock_timestamp(),
            extract(epoch FROM clock_timestamp() - p_started), session_user)
    RETURNING runs.run_id INTO v_run;

    -- Lineage: the warm-start reference resolved now, so it stays exact when
    -- the alias it named moves later.
    lin := coalesce(p_fit.info, '{}') - 'training_rows' - 'skipped_rows' - 'metrics_split' - 'trace';
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

    -- The per-iteration figures (training_info), kept out of the artifact;
    -- a warm start's rounds continue the parent's numbering (trace.first_iteration).
    INSERT INTO mlpipe.training_iterations (model, version, iteration, training_loss, validation_loss, elapsed_ms)
    SELECT p_model, v_version, o.i + coalesce((p_fit.info #>> '{trace,first_iteration}')::int, 0),
           (p_fit.info #>> ARRAY['trace', 'training_loss', o.i::text])::float8,
           (p_fit.info #>> ARRAY['trace', 'validation_loss', o.i::text])::float8,
           (p_fit.info #>> ARRAY['trace', 'elapsed_ms', o.i::text])::float8
      FROM generate_series(0, coalesce(jsonb_array_length(p_fit.info #> '{trace,training_loss}'), 0) - 1) o(i);

    PERFORM mlpipe_internal._notify('version_registered',
        jsonb_build_object('model', p_model, 'version', v_version, 'alias', 'production',
                           'run_id', v_run, 'algorithm', p_algorithm, 'task', v_task,
                           'status', CASE WHEN ok THEN 'promoted' ELSE 'candidate' END));
    IF ok THEN
        PERFORM mlpipe_internal._set_alias(p_model, 'production', v_version, 'promote', verdict->>'reason');
        PERFORM mlpipe_internal._notify('promoted', jsonb_build_object('model', p_model, 'version', v_version,
            'alias', 'production', 'run_id', v_run, 'reason', verdict->>'reason'));
    ELSE
        PERFORM mlpipe_internal._notify('gate_failed', jsonb_build_object('model', p_model, 'version', v_version,
            'alias', 'production', 'run_id', v_run, 'reason', verdict->>'reason',
            'metric', verdict->'metric', 'value', verdict->'value'));
    END IF;
    -- Guardrails, said once the version is stored (see docs/registry.md).
    IF NOT ok THEN
        RAISE NOTICE 'version % of model "%" did not pass its gate and stays a candidate: %',
            v_version, p_model, verdict->>'reason'
            USING HINT = pg_catalog.format('Production keeps its version; to use this one anyway: SELECT mlpipe.promote(%L, %s);',
                                           p_model, v_version);
    END IF;
    IF coalesce((p_fit.info->>'skipped_rows')::bigint, 0) * 5
       > coalesce((p_fit.info->>'skipped_rows')::bigint, 0) + coalesce((p_fit.info->>'training_rows')::bigint, 0)
         + coalesce((p_fit.info->>'test_rows')::bigint, 0) THEN
        RAISE WARNING 'training of "%" skipped % of its % rows (a NULL or non-finite value)', p_model,
            (p_fit.info->>'skipped_rows')::bigint,
            coalesce((p_fit.info->>'skipped_rows')::bigint, 0) + coalesce((p_fit.info->>'training_rows')::bigint, 0)
            + coalesce((p_fit.info->>'test_rows')::bigint, 0)
            USING HINT = 'More than a fifth of the data is left out: impute with params.preprocess, or fix the source.';
    END IF;
    RETURN ROW(p_model, v_version, ok, p_fit.metrics, v_run)::mlpipe.train_result;
END $$;
COMMENT ON FUNCTION mlpipe_internal._register(text, text, text, text, jsonb, jsonb, timestamptz, mlpipe.fit_result) IS
    'Records a fitted model: model row, run, version, metrics, gate verdict and alias.';
REVOKE ALL ON FUNCTION mlpipe_internal._register(text, text, text, text, jsonb, jsonb, timestamptz, mlpipe.fit_result) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._register(text, text, text, text, jsonb, jsonb, timestamptz, mlpipe.fit_result) TO mlpipe_trainer;

CREATE FUNCTION mlpipe.features(model_ref text) RETURNS text[]
LANGUAGE sql STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT v.features FROM mlpipe.model_versions v, mlpipe.resolve(model_ref) r
     WHERE v.model = r.model AND v.version = r.version
$$;
COMMENT ON FUNCTION mlpipe.features(text) IS
    'The feature names of a version, in the order the float8[] forms of predict take them.';
REVOKE ALL ON FUNCTION mlpipe.features(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.features(text) TO mlpipe_reader;

CREATE FUNCTION mlpipe.classes(model_ref text) RETURNS text[]
LANGUAGE sql STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT v.classes FROM mlpipe.model_versions v, mlpipe.resolve(model_ref) r
     WHERE v.model = r.model AND v.version = r.version
$$;
COMMENT ON FUNCTION mlpipe.classes(text) IS
    'The class labels of a classifier, in the order of predict_proba; NULL for other models.';
REVOKE ALL ON FUNCTION mlpipe.classes(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.classes(text) TO mlpipe_reader;

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
COMMENT ON FUNCTION mlpipe.model_info(text) IS
    'Everything about a version in one jsonb document: parameters, metrics, gate, lineage, tags, aliases and training information.';
REVOKE ALL ON FUNCTION mlpipe.model_info(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.model_info(text) TO mlpipe_reader;

-- One row per training iteration of a version, like BigQuery's
-- ML.TRAINING_INFO (k-means, mini-batch k-means and gbt record them).
CREATE FUNCTION mlpipe.training_info(model_ref text)
RETURNS TABLE (iteration int, training_loss float8, validation_loss float8, elapsed_ms float8)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r    record;
    algo text;
BEGIN
    SELECT * INTO r FROM mlpipe.resolve(model_ref);
    SELECT v.algorithm INTO algo FROM mlpipe.model_versions v
     WHERE v.model = r.model AND v.version = r.version;
    IF algo NOT IN ('kmeans', 'minibatch_kmeans', 'gbt') THEN
        RAISE EXCEPTION 'model "%" version % is a % model, which has no training iterations', r.model, r.version, algo
            USING ERRCODE = '0A000', HINT = 'training_info covers kmeans, minibatch_kmeans and gbt models.';
    END IF;
    RETURN QUERY
        SELECT t.iteration, t.training_loss, t.validation_loss, t.elapsed_ms
          FROM mlpipe.training_iterations t
         WHERE t.model = r.model AND t.version = r.version
         ORDER BY t.iteration;
END $$;
COMMENT ON FUNCTION mlpipe.training_info(text) IS
    'One row per training iteration of a version (iteration from 0, training loss, validation loss, elapsed ms), like BigQuery''s ML.TRAINING_INFO.';
REVOKE ALL ON FUNCTION mlpipe.training_info(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.training_info(text) TO mlpipe_reader;

-- One writer for run rows, shared by evaluation, search, batch scoring and
-- pipelines: records a finished run and its numeric metrics (one row per
-- metric in mlpipe.metrics, for dashboards). Returns the run id.
-- It writes only the kinds those callers log (issue #10): training runs
-- (kind 'train', bound to a version by _register and the fit token) and any
-- other kind are 42501; 'pipeline_step' and 'prune' need a session user in
-- mlpipe_admin. The figures of an evaluation-type run are what the calling
-- role reports (created_by records it); see docs/security.md.
CREATE FUNCTION mlpipe_internal._log_run(
    p_kind text, p_model text, p_version int, p_algorithm text, p_source text,
    p_params jsonb, p_status text, p_error text, p_rows bigint, p_started timestamptz,
    p_parent bigint DEFAULT NULL, p_metrics jsonb DEFAULT NULL, p_split text DEFAULT 'test')
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_run bigint;
BEGIN
    IF p_kind IS NULL OR p_kind NOT IN ('evaluate', 'predict_table', 'drift', 'cross_validate', 'cv_fold', 'search',
                                        'search_trial', 'pipeline_step', 'prune', 'drop_model')
       OR (p_kind IN ('pipeline_step', 'prune', 'drop_model')
           AND NOT pg_has_role(session_user, 'mlpipe_admin', 'MEMBER')) THEN
        RAISE EXCEPTION 'mlpipe_internal._log_run does not write runs of kind % for role %',
                        coalesce(quote_literal(p_kind), 'NULL'), session_user
            USING ERRCODE = '42501',
                  HINT = 'Training runs are written by mlpipe.train only; evaluation runs by evaluate, predict_table, drift, cross_validate and search.';
    END IF;
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
COMMENT ON FUNCTION mlpipe_internal._log_run(text, text, int, text, text, jsonb, text, text, bigint, timestamptz, bigint, jsonb, text) IS
    'Records a finished run and its numeric metrics (the one writer of runs rows outside training).';
REVOKE ALL ON FUNCTION mlpipe_internal._log_run(text, text, int, text, text, jsonb, text, text, bigint, timestamptz, bigint, jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._log_run(text, text, int, text, text, jsonb, text, text, bigint, timestamptz, bigint, jsonb, text) TO mlpipe_trainer;

-- True, once, when mlpipe_internal._fit returned exactly this result for this
-- algorithm in the current transaction (src/pg/fit_token.c).
CREATE FUNCTION mlpipe_internal._fit_claim(fit mlpipe.fit_result, algorithm text) RETURNS boolean
AS 'MODULE_PATHNAME', 'mlpipe_fit_claim'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION mlpipe_internal._fit_claim(mlpipe.fit_result, text) IS
    'True, once, when mlpipe_internal._fit returned exactly this result for this algorithm in the current transaction.';
REVOKE ALL ON FUNCTION mlpipe_internal._fit_claim(mlpipe.fit_result, text) FROM PUBLIC;

-- 42704 naming the model, with the registered names in the HINT, unless it exists.
CREATE FUNCTION mlpipe_internal._require_model(p_model text) RETURNS void
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
COMMENT ON FUNCTION mlpipe_internal._require_model(text) IS
    'Raises 42704 naming the model, with the registered names in the HINT, unless it exists.';
REVOKE ALL ON FUNCTION mlpipe_internal._require_model(text) FROM PUBLIC;

-- 22023 unless p_alias is a valid alias name (the rule of mlpipe.aliases).
CREATE FUNCTION mlpipe_internal._require_alias_name(p_alias text) RETURNS void
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
COMMENT ON FUNCTION mlpipe_internal._require_alias_name(text) IS
    'Raises 22023 unless the alias name follows the rule of mlpipe.aliases.';
REVOKE ALL ON FUNCTION mlpipe_internal._require_alias_name(text) FROM PUBLIC;

CREATE FUNCTION mlpipe_internal._event_payload(event text, payload jsonb) RETURNS text
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
COMMENT ON FUNCTION mlpipe_internal._event_payload(text, jsonb) IS
    'The JSON payload of an mlpipe_events notification, cut to fit the NOTIFY limit.';
REVOKE ALL ON FUNCTION mlpipe_internal._event_payload(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._event_payload(text, jsonb) TO mlpipe_trainer;

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
    PERFORM mlpipe_internal._require_model(p_model);
    PERFORM mlpipe_internal._require_alias_name(p_alias);
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
        verdict := mlpipe_internal._gate_verdict(p_model, v_task, v_metrics, p_gate);
        IF NOT (verdict->>'passed')::boolean THEN
            UPDATE mlpipe.model_versions v
               SET gate = jsonb_build_object('policy', p_gate, 'alias', p_alias, 'at', clock_timestamp())
                          || verdict
             WHERE v.model = p_model AND v.version = p_version;
            PERFORM mlpipe_internal._notify('gate_failed', jsonb_build_object('model', p_model, 'version', p_version,
                'alias', p_alias, 'run_id', v_run, 'reason', verdict->>'reason',
                'metric', verdict->'metric', 'value', verdict->'value'));
            RAISE NOTICE 'version % of model "%" was not promoted to "%": %',
                p_version, p_model, p_alias, verdict->>'reason';
            RETURN NULL;
        END IF;
    END IF;
    IF p_gate IS NOT NULL THEN
        -- The passing verdict replaces the one training stored (which may
        -- have failed), and the event says the gate passed.
        UPDATE mlpipe.model_versions v
           SET gate = jsonb_build_object('policy', p_gate, 'alias', p_alias, 'at', clock_timestamp())
                      || verdict
         WHERE v.model = p_model AND v.version = p_version;
        p_reason := concat_ws('; ', p_reason,
            pg_catalog.format('gate passed: %s = %s', verdict->>'metric', verdict->>'value'));
    END IF;
    PERFORM mlpipe_internal._set_alias(p_model, p_alias, p_version, 'promote', p_reason);
    PERFORM mlpipe_internal._notify('promoted', jsonb_build_object('model', p_model, 'version', p_version,
        'alias', p_alias, 'run_id', v_run, 'from_version', cur, 'reason', p_reason));
    RETURN p_version;
END $$;
COMMENT ON FUNCTION mlpipe.promote(text, int, text, text, jsonb) IS
    'Points an alias at a version, optionally checking a gate first, and records the change.';
REVOKE ALL ON FUNCTION mlpipe.promote(text, int, text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.promote(text, int, text, text, jsonb) TO mlpipe_admin;

-- The rollback stack of an alias, replayed from alias_events: every change
-- pushes the version it set, a rollback to version t pops the current
-- version and then every entry above the last t. The last element is the
-- version the alias holds.
CREATE FUNCTION mlpipe_internal._alias_stack(p_model text, p_alias text) RETURNS int[]
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    st int[] := '{}';
    ev record;
BEGIN
    FOR ev IN SELECT e.action, e.to_version FROM mlpipe.alias_events e
               WHERE e.model = p_model AND e.alias = p_alias ORDER BY e.event_id LOOP
        IF ev.action = 'drop' THEN
            st := '{}';     -- the model was dropped: nothing before this counts
        ELSIF ev.action = 'rollback' THEN
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
COMMENT ON FUNCTION mlpipe_internal._alias_stack(text, text) IS
    'The rollback stack of an alias, replayed from mlpipe.alias_events.';
REVOKE ALL ON FUNCTION mlpipe_internal._alias_stack(text, text) FROM PUBLIC;

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
    PERFORM mlpipe_internal._require_model(p_model);
    PERFORM mlpipe_internal._require_alias_name(p_alias);
    PERFORM 1 FROM mlpipe.models m WHERE m.name = p_model FOR UPDATE;
    SELECT a.version INTO cur FROM mlpipe.aliases a WHERE a.model = p_model AND a.alias = p_alias;
    IF NOT FOUND THEN
        SELECT string_agg(a.alias || ' -> ' || a.version, ', ' ORDER BY a.alias) INTO known
          FROM mlpipe.aliases a WHERE a.model = p_model;
        RAISE EXCEPTION 'model "%" has no alias "%"', p_model, p_alias
            USING ERRCODE = '42704', HINT = coalesce('Aliases: ' || known || '.', 'It has no aliases.');
    END IF;
    st := mlpipe_internal._alias_stack(p_model, p_alias);
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
    PERFORM mlpipe_internal._set_alias(p_model, p_alias, v_target, 'rollback', p_reason);
    SELECT v.run_id INTO v_run FROM mlpipe.model_versions v WHERE v.model = p_model AND v.version = v_target;
    PERFORM mlpipe_internal._notify('rolled_back', jsonb_build_object('model', p_model, 'version', v_target,
        'alias', p_alias, 'run_id', v_run, 'from_version', cur, 'reason', p_reason));
    RETURN v_target;
END $$;
COMMENT ON FUNCTION mlpipe.rollback(text, text, text) IS
    'Moves an alias back to the version it pointed to before its current one.';
REVOKE ALL ON FUNCTION mlpipe.rollback(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.rollback(text, text, text) TO mlpipe_admin;

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
    PERFORM mlpipe_internal._require_model(p_model);
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
COMMENT ON FUNCTION mlpipe.version_at(text, timestamptz, text) IS
    'The version an alias pointed to at a past time (time travel).';
REVOKE ALL ON FUNCTION mlpipe.version_at(text, timestamptz, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.version_at(text, timestamptz, text) TO mlpipe_reader;

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
    PERFORM mlpipe_internal._require_model(p_model);
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
    PERFORM mlpipe_internal._log_run('prune', p_model, NULL, NULL, NULL,
        jsonb_build_object('keep', p_keep, 'retain', p_retain::text, 'removed', to_jsonb(removed)),
        'succeeded', NULL, cardinality(removed), started);
    RETURN removed;
END $$;
COMMENT ON FUNCTION mlpipe.prune(text, int, interval) IS
    'Deletes old versions beyond the newest keep that are older than retain, never one an alias points to.';
REVOKE ALL ON FUNCTION mlpipe.prune(text, int, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.prune(text, int, interval) TO mlpipe_admin;

-- Removes a model for good, in one transaction: its aliases, versions
-- (artifacts, profiles, version tags), model tags and metrics rows. Kept as
-- history: alias_events (with one 'drop' event per alias, so version_at
-- gives NULL after the drop and a model created later under the same name
-- starts a new rollback stack) and runs (who trained and scored what),
-- plus a run of kind 'drop_model'. Sends model_dropped. Returns the
-- number of versions removed.
CREATE FUNCTION mlpipe.drop_model(name text) RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p_model  text := $1;
    started  timestamptz := clock_timestamp();
    n_vers   int;
    n_met    bigint;
    dropped  jsonb;
    users    text;
    run      bigint;
BEGIN
    PERFORM mlpipe_internal._require_model(p_model);
    PERFORM 1 FROM mlpipe.models m WHERE m.name = p_model FOR UPDATE;
    SELECT string_agg(DISTINCT p.name, ', ') INTO users
      FROM mlpipe.pipelines p, jsonb_array_elements(p.config->'steps') s
     WHERE split_part(s->>'model', '@', 1) = p_model;
    WITH gone AS (
        DELETE FROM mlpipe.aliases a WHERE a.model = p_model RETURNING a.alias, a.version
    ), ev AS (
        INSERT INTO mlpipe.alias_events (model, alias, from_version, to_version, action, reason, by_user)
        SELECT p_model, g.alias, g.version, NULL, 'drop', 'model dropped', session_user FROM gone g
        RETURNING alias, from_version
    )
    SELECT coalesce(jsonb_object_agg(ev.alias, ev.from_version), '{}') INTO dropped FROM ev;
    DELETE FROM mlpipe.metrics m WHERE m.model = p_model;
    GET DIAGNOSTICS n_met = ROW_COUNT;
    DELETE FROM mlpipe.model_versions v WHERE v.model = p_model;
    GET DIAGNOSTICS n_vers = ROW_COUNT;
    DELETE FROM mlpipe.models m WHERE m.name = p_model;
    run := mlpipe_internal._log_run('drop_model', p_model, NULL, NULL, NULL,
        jsonb_build_object('versions', n_vers, 'aliases', dropped, 'metrics', n_met),
        'succeeded', NULL, n_vers, started);
    PERFORM mlpipe_internal._notify('model_dropped', jsonb_build_object('model', p_model, 'run_id', run,
        'versions', n_vers, 'aliases', dropped));
    IF users IS NOT NULL THEN
        RAISE WARNING 'model "%" is still named by pipeline(s) %', p_model, users
            USING HINT = 'Their next run trains it anew or fails at a step that reads it; change or drop them.';
    END IF;
    RETURN n_vers;
END $$;
COMMENT ON FUNCTION mlpipe.drop_model(text) IS
    'Removes a model with its versions, aliases, tags and metrics (alias_events and runs stay as history) and sends model_dropped.';
REVOKE ALL ON FUNCTION mlpipe.drop_model(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.drop_model(text) TO mlpipe_admin;

-- 22023 unless key is a usable tag key; 54000 for a value over 4096 characters.
CREATE FUNCTION mlpipe_internal._require_tag(p_key text, p_value text, p_unset boolean) RETURNS void
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
COMMENT ON FUNCTION mlpipe_internal._require_tag(text, text, boolean) IS
    'Raises 22023 unless the tag key is usable, 54000 for a value over 4096 characters.';
REVOKE ALL ON FUNCTION mlpipe_internal._require_tag(text, text, boolean) FROM PUBLIC;

-- Sets (or with NULL p_value and p_unset, removes) a tag on a model, or on
-- one of its versions when p_version is given; returns the tags after.
CREATE FUNCTION mlpipe_internal._set_tag(p_model text, p_version int, p_key text, p_value text, p_unset boolean)
RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    result jsonb;
BEGIN
    PERFORM mlpipe_internal._require_model(p_model);
    PERFORM mlpipe_internal._require_tag(p_key, p_value, p_unset);
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
COMMENT ON FUNCTION mlpipe_internal._set_tag(text, int, text, text, boolean) IS
    'Sets or removes a tag on a model or one of its versions and returns the tags after.';
REVOKE ALL ON FUNCTION mlpipe_internal._set_tag(text, int, text, text, boolean) FROM PUBLIC;

CREATE FUNCTION mlpipe.tag(model text, key text, value text) RETURNS jsonb
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT mlpipe_internal._set_tag($1, NULL, $2, $3, false)
$$;
COMMENT ON FUNCTION mlpipe.tag(text, text, text) IS
    'Sets a tag on a model or on one version (the model).';
REVOKE ALL ON FUNCTION mlpipe.tag(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.tag(text, text, text) TO mlpipe_admin;

CREATE FUNCTION mlpipe.tag(model text, version int, key text, value text) RETURNS jsonb
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT mlpipe_internal._set_tag($1, $2, $3, $4, false)
$$;
COMMENT ON FUNCTION mlpipe.tag(text, int, text, text) IS
    'Sets a tag on a model or on one version (this version).';
REVOKE ALL ON FUNCTION mlpipe.tag(text, int, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.tag(text, int, text, text) TO mlpipe_admin;

CREATE FUNCTION mlpipe.untag(model text, key text) RETURNS jsonb
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT mlpipe_internal._set_tag($1, NULL, $2, NULL, true)
$$;
COMMENT ON FUNCTION mlpipe.untag(text, text) IS
    'Removes a tag from a model or a version (the model).';
REVOKE ALL ON FUNCTION mlpipe.untag(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.untag(text, text) TO mlpipe_admin;

CREATE FUNCTION mlpipe.untag(model text, version int, key text) RETURNS jsonb
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT mlpipe_internal._set_tag($1, $2, $3, NULL, true)
$$;
COMMENT ON FUNCTION mlpipe.untag(text, int, text) IS
    'Removes a tag from a model or a version (this version).';
REVOKE ALL ON FUNCTION mlpipe.untag(text, int, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.untag(text, int, text) TO mlpipe_admin;

-- The name forms of predict keep resolved references in the backend across
-- statements (src/pg/predict.c). Every statement that writes a registry
-- table sends a relcache invalidation for it, so that every session looks
-- its references up again at its next statement.
CREATE FUNCTION mlpipe_internal._registry_changed() RETURNS trigger
AS 'MODULE_PATHNAME', 'mlpipe_registry_changed'
LANGUAGE C;
COMMENT ON FUNCTION mlpipe_internal._registry_changed() IS
    'Trigger function on the registry tables: invalidates the model references the predict functions keep per session and the plans that embedded an artifact.';
REVOKE ALL ON FUNCTION mlpipe_internal._registry_changed() FROM PUBLIC;
CREATE TRIGGER models_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON mlpipe.models
    FOR EACH STATEMENT EXECUTE FUNCTION mlpipe_internal._registry_changed();
CREATE TRIGGER model_versions_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON mlpipe.model_versions
    FOR EACH STATEMENT EXECUTE FUNCTION mlpipe_internal._registry_changed();
CREATE TRIGGER aliases_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON mlpipe.aliases
    FOR EACH STATEMENT EXECUTE FUNCTION mlpipe_internal._registry_changed();
-- Fired in every session_replication_role too (restores, logical replicas).
ALTER TABLE mlpipe.models ENABLE ALWAYS TRIGGER models_changed;
ALTER TABLE mlpipe.model_versions ENABLE ALWAYS TRIGGER model_versions_changed;
ALTER TABLE mlpipe.aliases ENABLE ALWAYS TRIGGER aliases_changed;
