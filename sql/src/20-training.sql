--------------------------------------------------------------------------
-- 20-training: _fit (the C trainer) and train / _train (checks, profile,
-- registration). See docs/kmeans.md and docs/trees.md.
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

-- Progress lines from plpgsql (src/pg/progress.c): "what: stage done/total
-- done, elapsed, about L s left", or a stage line when done and total are
-- NULL; the same interval (mlpipe.progress_interval) and switch
-- (mlpipe.progress) as training's own lines.
CREATE FUNCTION mlpipe._progress(what text, stage text, done int, total int, started timestamptz)
RETURNS void
AS 'MODULE_PATHNAME', 'mlpipe_progress_line'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION mlpipe._progress(text, text, int, int, timestamptz) IS
    'Prints a progress NOTICE for search, cross-validation and training steps (at most one per mlpipe.progress_interval).';
REVOKE ALL ON FUNCTION mlpipe._progress(text, text, int, int, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._progress(text, text, int, int, timestamptz) TO mlpipe_trainer;

-- The progress lines this session printed in its current or last statement
-- that printed any (at most 1,000): what tests read.
CREATE FUNCTION mlpipe._progress_log() RETURNS text[]
AS 'MODULE_PATHNAME', 'mlpipe_progress_log'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION mlpipe._progress_log() IS
    'The progress lines of this session''s current or last statement that printed any.';
REVOKE ALL ON FUNCTION mlpipe._progress_log() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._progress_log() TO mlpipe_trainer;

-- Everything _fit checks before it reads data (keys, values, target,
-- algorithm), without data: the same C functions, so the same SQLSTATE,
-- message and HINT. _train runs it first; create_pipeline runs the same
-- check in C on each train step (src/pg/pipeline.c).
CREATE FUNCTION mlpipe._check_params(algorithm text, params jsonb, target text)
RETURNS void
AS 'MODULE_PATHNAME', 'mlpipe_check_params'
LANGUAGE C STABLE;
COMMENT ON FUNCTION mlpipe._check_params(text, jsonb, text) IS
    'Checks an algorithm''s params and target as training does before it reads data (22023 with the training''s message).';
REVOKE ALL ON FUNCTION mlpipe._check_params(text, jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._check_params(text, jsonb, text) TO mlpipe_trainer;

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
    ids      jsonb;
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
    -- Every params check that needs no data, before as_of and checks read the source.
    PERFORM mlpipe._check_params(p_algorithm, p_params, p_target);
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
    -- Integer features that number the rows, found by _fit as it read them (src/pg/source.c).
    ids := fit.info->'id_like_features'::text;
    -- Lineage notes ride in fit.info, which _register copies into the version.
    fit.info := (coalesce(fit.info, '{}') OPERATOR(pg_catalog.-) 'profile'::text
                 OPERATOR(pg_catalog.-) 'id_like_features'::text) OPERATOR(pg_catalog.||) lin;
    PERFORM mlpipe._progress(p_algorithm, pg_catalog.format('storing the %s artifact',
                pg_catalog.pg_size_pretty(pg_catalog.octet_length(fit.artifact)::bigint)), NULL, NULL, started);
    res := mlpipe._register(p_model, p_algorithm, p_source, p_target, p_params, p_gate, started, fit);
    -- A rerun of an identical version keeps that version's profile.
    IF prof IS NOT NULL AND EXISTS (SELECT 1 FROM mlpipe.model_versions v
                                     WHERE v.model OPERATOR(pg_catalog.=) res.model
                                       AND v.version OPERATOR(pg_catalog.=) res.version
                                       AND v.run_id OPERATOR(pg_catalog.=) res.run_id) THEN
        PERFORM mlpipe._set_profile(res.model, res.version, prof);
    END IF;
    IF ids IS NOT NULL THEN
        RAISE WARNING 'model "%": feature % looks like a row id (one consecutive integer a row)', p_model,
            (SELECT pg_catalog.string_agg(x.e, ', ' ORDER BY x.o) FROM pg_catalog.jsonb_array_elements_text(ids) WITH ORDINALITY x(e, o))
            USING HINT = 'Leave it out with params.exclude (or the features argument) unless its value means something.';
    END IF;
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
