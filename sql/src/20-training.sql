--------------------------------------------------------------------------
-- 20-training: _fit (the C trainer) and train / _train (checks, profile,
-- registration), tune_threshold (a version's training again with a tuned
-- decision threshold). See docs/kmeans.md, docs/trees.md, docs/evaluation.md.
--------------------------------------------------------------------------

CREATE FUNCTION mlpipe._fit(
    algorithm text, source text, target text, features text[], params jsonb, warm_start bytea)
RETURNS mlpipe.fit_result
AS 'MODULE_PATHNAME', 'mlpipe_fit'
LANGUAGE C VOLATILE;
-- The same seed must give the same artifact. A table bigger than a quarter
-- of shared_buffers is read from wherever another scan of it last was
-- (synchronized scans), so the row order, the binning sample and the model
-- changed between runs; training reads its source from the start.
ALTER FUNCTION mlpipe._fit(text, text, text, text[], jsonb, bytea) SET synchronize_seqscans = off;
COMMENT ON FUNCTION mlpipe._fit(text, text, text, text[], jsonb, bytea) IS
    'Trains an algorithm on a source in C and returns the artifact, metrics and fit token for _register.';
REVOKE ALL ON FUNCTION mlpipe._fit(text, text, text, text[], jsonb, bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._fit(text, text, text, text[], jsonb, bytea) TO mlpipe_trainer;

-- The params _fit gets: train's own keys (as_of, as_of_column, checks,
-- profile_sample) removed, and the as_of_column added to exclude. That
-- column says when a row was written, not what it is: like the column of
-- split 'time:<c>', it is no feature (unless the features argument names it).
CREATE FUNCTION mlpipe._fit_params(p_params jsonb, p_features text[], p_target text) RETURNS jsonb
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE
        WHEN p_params ? 'as_of_column' AND p_features IS NULL
             AND (p_params->>'as_of_column') IS DISTINCT FROM p_target
             AND jsonb_typeof(coalesce(p_params->'exclude', '[]')) = 'array'
             AND NOT coalesce(p_params->'exclude', '[]') ? (p_params->>'as_of_column')
        THEN p - 'exclude' || jsonb_build_object('exclude',
                 coalesce(p_params->'exclude', '[]') || jsonb_build_array(p_params->>'as_of_column'))
        ELSE p END
      FROM (SELECT p_params - 'as_of' - 'as_of_column' - 'checks' - 'profile_sample' AS p) q
$$;
COMMENT ON FUNCTION mlpipe._fit_params(jsonb, text[], text) IS
    'The params mlpipe._fit gets from train''s: its own keys removed, the as_of_column excluded from the features.';
REVOKE ALL ON FUNCTION mlpipe._fit_params(jsonb, text[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._fit_params(jsonb, text[], text) TO mlpipe_trainer;

-- WARNING for each integer feature that looks like a row id: no NULL and
-- max - min + 1 = rows (consecutive values, one a row), over 50 rows or
-- more. Such a column numbers the rows; a model that splits or clusters on
-- it learns the order the data came in. One pass over the source, as the
-- caller; nothing when no feature is an integer.
CREATE FUNCTION mlpipe._warn_id_features(p_src text, p_features text[], p_model text) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    ints  text[];
    q     text;
    hits  text[];
BEGIN
    SELECT pg_catalog.array_agg(c.name ORDER BY c.ord) INTO ints
      FROM mlpipe._source_columns(p_src) c
     WHERE c.name = ANY (p_features) AND c.type IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype);
    IF ints IS NULL THEN
        RETURN;
    END IF;
    SELECT pg_catalog.format('SELECT ARRAY[%s] FROM (%s) AS mlpipe_src', pg_catalog.string_agg(
               pg_catalog.format('CASE WHEN pg_catalog.count(*) OPERATOR(pg_catalog.>=) 50 '
                                 'AND pg_catalog.count(%1$I) OPERATOR(pg_catalog.=) pg_catalog.count(*) '
                                 'AND pg_catalog.max(%1$I)::numeric OPERATOR(pg_catalog.-) pg_catalog.min(%1$I)::numeric '
                                 'OPERATOR(pg_catalog.+) 1 OPERATOR(pg_catalog.=) pg_catalog.count(*) THEN %2$L END',
                                 n, n), ', '),
           mlpipe._source_sql(p_src))
      INTO q FROM pg_catalog.unnest(ints) n;
    EXECUTE q INTO hits;
    hits := pg_catalog.array_remove(hits, NULL);
    IF pg_catalog.cardinality(hits) > 0 THEN
        RAISE WARNING 'model "%": feature % looks like a row id (one consecutive integer a row)',
            p_model, pg_catalog.array_to_string(hits, ', ')
            USING HINT = 'Leave it out with params.exclude (or the features argument) unless its value means something.';
    END IF;
END $$;
COMMENT ON FUNCTION mlpipe._warn_id_features(text, text[], text) IS
    'Warns about integer features that look like row ids (consecutive values, one a row).';
REVOKE ALL ON FUNCTION mlpipe._warn_id_features(text, text[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._warn_id_features(text, text[], text) TO mlpipe_trainer;

CREATE FUNCTION mlpipe._train(
    p_model text, p_algorithm text, p_source text, p_target text, p_features text[],
    p_params jsonb, p_gate jsonb)
RETURNS mlpipe.train_result
-- SECURITY INVOKER and no pinned search_path: the source is resolved and read
-- as the caller, with the caller's search_path, grants and row-level security.
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    started  timestamptz := pg_catalog.clock_timestamp();
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
       OR pg_catalog.length(p_model) > 200 OR p_model ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'invalid model name %', coalesce(pg_catalog.quote_literal(p_model), 'NULL')
            USING ERRCODE = '22023', HINT = 'A model name is 1 to 200 characters, without "@" or control characters.';
    END IF;
    p_params := coalesce(p_params, '{}');
    IF pg_catalog.jsonb_typeof(p_params) <> 'object' THEN
        RAISE EXCEPTION 'params must be a JSON object, not %', pg_catalog.jsonb_typeof(p_params) USING ERRCODE = '22023';
    END IF;
    IF p_source IS NULL THEN
        RAISE EXCEPTION 'source must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF p_params ? 'warm_start'::text THEN
        IF pg_catalog.jsonb_typeof(p_params->'warm_start'::text) <> 'string' THEN
            RAISE EXCEPTION 'params.warm_start must be a model reference such as ''sensors@3'''
                USING ERRCODE = '22023';
        END IF;
        warm := mlpipe.artifact(p_params->>'warm_start'::text);
    END IF;
    IF p_params ? 'profile_sample'::text THEN
        IF pg_catalog.jsonb_typeof(p_params->'profile_sample'::text) <> 'number'
           OR (p_params->>'profile_sample'::text)::numeric NOT BETWEEN 0::numeric AND 10000000::numeric
           OR (p_params->>'profile_sample'::text)::numeric <> pg_catalog.trunc((p_params->>'profile_sample'::text)::numeric) THEN
            RAISE EXCEPTION 'params.profile_sample must be an integer in 0..10000000 (0: no profile)'
                USING ERRCODE = '22023';
        END IF;
        sample := (p_params->>'profile_sample'::text)::int;
    END IF;
    -- Time travel: train on the rows that existed at params.as_of.
    IF p_params ? 'as_of'::text OR p_params ? 'as_of_column'::text THEN
        SELECT a.sql, a.lineage INTO tt FROM mlpipe._as_of_source(p_source, p_params) a;
        src := tt.sql;
        lin := lin OPERATOR(pg_catalog.||) tt.lineage;
    END IF;
    -- Data checks, before any training work.
    IF p_params ? 'checks'::text THEN
        lin := lin OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('checked_rows', mlpipe._check_data(src, p_params->'checks'::text));
    END IF;
    -- _fit samples the training profile while it reads the source (seeded
    -- by params.seed) and hands it back in fit.info.profile.
    fit := mlpipe._fit(p_algorithm, src, p_target, p_features,
                       mlpipe._fit_params(p_params, p_features, p_target)
                       || pg_catalog.jsonb_build_object('profile_sample', sample), warm);
    prof := fit.info->'profile'::text;
    -- Lineage notes ride in fit.info, which _register copies into the version.
    fit.info := (coalesce(fit.info, '{}') OPERATOR(pg_catalog.-) 'profile'::text) OPERATOR(pg_catalog.||) lin;
    res := mlpipe._register(p_model, p_algorithm, p_source, p_target, p_params, p_gate, started, fit);
    IF prof IS NOT NULL THEN
        PERFORM mlpipe._set_profile(res.model, res.version, prof);
    END IF;
    PERFORM mlpipe._warn_id_features(src, fit.feature_names, p_model);
    RETURN res;
END $$;
COMMENT ON FUNCTION mlpipe._train(text, text, text, text, text[], jsonb, jsonb) IS
    'The body of mlpipe.train: checks and profiles the source, fits, registers and stores the profile.';
REVOKE ALL ON FUNCTION mlpipe._train(text, text, text, text, text[], jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._train(text, text, text, text, text[], jsonb, jsonb) TO mlpipe_trainer;

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
COMMENT ON FUNCTION mlpipe.train(text, text, text, text, text[], jsonb, jsonb) IS
    'Trains a model on a table, view or SELECT, records its metrics and registers it as a new version (promoted when the gate passes).';
REVOKE ALL ON FUNCTION mlpipe.train(text, text, text, text, text[], jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.train(text, text, text, text, text[], jsonb, jsonb) TO mlpipe_trainer;

-- Import (issue #14): an XGBoost JSON model registered as a gbt version.
CREATE FUNCTION mlpipe._import_fit(doc jsonb, features text[], classes text[])
RETURNS mlpipe.fit_result
AS 'MODULE_PATHNAME', 'mlpipe_import_fit'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION mlpipe._import_fit(jsonb, text[], text[]) IS
    'Reads an XGBoost JSON model into a gbt artifact and returns it with a fit token for _register.';
REVOKE ALL ON FUNCTION mlpipe._import_fit(jsonb, text[], text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._import_fit(jsonb, text[], text[]) TO mlpipe_trainer;

CREATE FUNCTION mlpipe.import(
    model    text,
    doc      jsonb,
    features text[] DEFAULT NULL,
    classes  text[] DEFAULT NULL,
    gate     jsonb  DEFAULT NULL,
    origin   text   DEFAULT NULL)
RETURNS int
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    fit     mlpipe.fit_result;
    res     mlpipe.train_result;
    label   text := coalesce(origin, 'imported XGBoost JSON');
BEGIN
    IF model IS NULL OR model = '' OR pg_catalog.strpos(model, '@') > 0
       OR pg_catalog.length(model) > 200 OR model OPERATOR(pg_catalog.~) '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'invalid model name %', coalesce(pg_catalog.quote_literal(model), 'NULL')
            USING ERRCODE = '22023', HINT = 'A model name is 1 to 200 characters, without "@" or control characters.';
    END IF;
    IF doc IS NULL THEN
        RAISE EXCEPTION 'doc must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF pg_catalog.jsonb_typeof(doc) = 'object' AND doc ? 'algorithm' AND NOT doc ? 'learner' THEN
        RAISE EXCEPTION 'doc looks like mlpipe.export output, which mlpipe.import does not read'
            USING ERRCODE = '22023',
                  HINT = 'mlpipe.import reads XGBoost JSON (Booster.save_model("m.json")); to copy an mlpipe model, use its artifact (mlpipe.artifact).';
    END IF;
    fit := mlpipe._import_fit(doc, features, classes);
    -- Lineage: imported, from what (fit.info is not part of the fit token but its row counts).
    fit.info := fit.info OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('imported',
        (fit.info->'imported') OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('origin', label));
    res := mlpipe._register(model, 'gbt', label, NULL,
        pg_catalog.jsonb_build_object('imported', 'xgboost_json'), gate, started, fit);
    RETURN res.version;
END $$;
COMMENT ON FUNCTION mlpipe.import(text, jsonb, text[], text[], jsonb, text) IS
    'Registers an XGBoost JSON model (binary:logistic, multi:softprob/softmax, reg:squarederror) as a new gbt version of a model; returns the version.';
REVOKE ALL ON FUNCTION mlpipe.import(text, jsonb, text[], text[], jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.import(text, jsonb, text[], text[], jsonb, text) TO mlpipe_trainer;

-- Threshold tuning (issue #14): the version's recorded training again (same
-- source, target, features, params and seed) with params.threshold set to
-- the metric, so the fit picks the threshold that maximises it on that
-- training's test split; registered as a new version like any training.
CREATE FUNCTION mlpipe._tune_threshold(p_model_ref text, p_metric text, p_gate jsonb)
RETURNS mlpipe.train_result
-- No pinned search_path: _train resolves the recorded source as the caller.
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v     record;
    feats text[];
BEGIN
    IF p_model_ref IS NULL OR p_metric IS NULL THEN
        RAISE EXCEPTION '% must not be NULL', CASE WHEN p_model_ref IS NULL THEN 'model_ref' ELSE 'metric' END
            USING ERRCODE = '22004';
    END IF;
    IF p_metric OPERATOR(pg_catalog.<>) ALL (ARRAY['f1', 'accuracy', 'recall_macro', 'precision_macro', 'f1_macro']) THEN
        RAISE EXCEPTION 'cannot tune a threshold for metric "%"', p_metric
            USING ERRCODE = '22023', HINT = 'Metrics: f1, accuracy, recall_macro, precision_macro, f1_macro.';
    END IF;
    SELECT mv.* INTO v FROM mlpipe.resolve(p_model_ref) r
      JOIN mlpipe.model_versions mv ON mv.model OPERATOR(pg_catalog.=) r.model AND mv.version OPERATOR(pg_catalog.=) r.version;
    IF v.task OPERATOR(pg_catalog.<>) 'classification' OR pg_catalog.cardinality(v.classes) OPERATOR(pg_catalog.<>) 2 THEN
        RAISE EXCEPTION '"%" is not a binary classifier', p_model_ref
            USING ERRCODE = '22023', HINT = 'A decision threshold splits the probability of a binary model''s second class.';
    END IF;
    IF v.params ? 'imported'::text OR v.algorithm OPERATOR(pg_catalog.<>) ALL (ARRAY['decision_tree', 'random_forest', 'gbt']) THEN
        RAISE EXCEPTION '"%" has no recorded training to repeat', p_model_ref
            USING ERRCODE = '22023', HINT = 'Train the model with params.threshold instead.';
    END IF;
    -- The training's input columns: the preprocessed ones when there are, else the features.
    feats := coalesce((SELECT pg_catalog.array_agg(c OPERATOR(pg_catalog.->>) 'column'::text ORDER BY o)
                         FROM pg_catalog.jsonb_array_elements(mlpipe.export(v.artifact) OPERATOR(pg_catalog.->) 'preprocess'::text)
                              WITH ORDINALITY e(c, o)), v.features);
    IF v.params ? 'exclude'::text THEN
        feats := NULL;          -- exclude picks the same columns again
    END IF;
    RETURN mlpipe._train(v.model, v.algorithm, v.source, v.target, feats,
                         v.params OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('threshold', p_metric), p_gate);
END $$;
COMMENT ON FUNCTION mlpipe._tune_threshold(text, text, jsonb) IS
    'Retrains a binary classifier version with params.threshold = metric and registers it as a new version.';
REVOKE ALL ON FUNCTION mlpipe._tune_threshold(text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._tune_threshold(text, text, jsonb) TO mlpipe_trainer;

CREATE FUNCTION mlpipe.tune_threshold(model_ref text, metric text DEFAULT 'f1', gate jsonb DEFAULT NULL)
RETURNS TABLE (model text, version int, promoted boolean, metrics jsonb, run_id bigint)
LANGUAGE sql VOLATILE AS $$
    SELECT * FROM mlpipe._tune_threshold($1, $2, $3)
$$;
COMMENT ON FUNCTION mlpipe.tune_threshold(text, text, jsonb) IS
    'New version of a binary classifier whose decision threshold maximises metric (default f1) on its test split.';
REVOKE ALL ON FUNCTION mlpipe.tune_threshold(text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.tune_threshold(text, text, jsonb) TO mlpipe_trainer;
