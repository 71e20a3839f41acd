-- mlpipe 0.1.0 -> 0.2.0: tree models (decision_tree, random_forest, gbt).
-- Training goes through the existing mlpipe.train / mlpipe._fit; this adds
-- class labels, probabilities and feature importance.
\echo Use "ALTER EXTENSION mlpipe UPDATE TO '0.2.0'" to load this file. \quit

CREATE OR REPLACE FUNCTION mlpipe.version() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT '0.2.0'::text $$;

-- The class label as trained (text), for classification models.
CREATE FUNCTION mlpipe.predict_label(model_ref text, features float8[]) RETURNS text
AS 'MODULE_PATHNAME', 'mlpipe_predict_label_ref'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE FUNCTION mlpipe.predict_label(model bytea, features float8[]) RETURNS text
AS 'MODULE_PATHNAME', 'mlpipe_predict_label_bytea'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- One probability per class, in the order of mlpipe.classes(model_ref).
CREATE FUNCTION mlpipe.predict_proba(model_ref text, features float8[]) RETURNS float8[]
AS 'MODULE_PATHNAME', 'mlpipe_predict_proba_ref'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE FUNCTION mlpipe.predict_proba(model bytea, features float8[]) RETURNS float8[]
AS 'MODULE_PATHNAME', 'mlpipe_predict_proba_bytea'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION mlpipe._importance(model bytea) RETURNS float8[]
AS 'MODULE_PATHNAME', 'mlpipe_importance_bytea'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- Normalised total gain per feature, largest first.
CREATE FUNCTION mlpipe.feature_importance(model_ref text)
RETURNS TABLE (feature text, importance float8)
LANGUAGE sql STABLE STRICT AS $$
    SELECT f, i FROM unnest(mlpipe.features(model_ref), mlpipe._importance(mlpipe.artifact(model_ref))) AS t(f, i)
     ORDER BY i DESC, f
$$;

-- Registry fixes: an undefined gate metric fails the gate instead of the
-- training; gate values are type-checked; must_beat must name an alias; a
-- model name keeps one task; who did it is the session user, not the owner.
CREATE OR REPLACE FUNCTION mlpipe._gate_verdict(p_model text, p_task text, p_metrics jsonb, p_gate jsonb)
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

CREATE OR REPLACE FUNCTION mlpipe._set_alias(p_model text, p_alias text, p_version int, p_action text, p_reason text)
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
END $$;

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
BEGIN
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

-- Until the roles land, only the extension owner (and superusers) trains,
-- scores by name and reads artifacts: revoke what PUBLIC could still call.
REVOKE ALL ON FUNCTION mlpipe._fit(text, text, text, text[], jsonb, bytea) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe.resolve(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe.artifact(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe._resolve_key(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe.features(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe.classes(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe.model_info(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe.export(text) FROM PUBLIC;
