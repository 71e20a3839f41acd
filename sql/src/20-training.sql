--------------------------------------------------------------------------
-- 20-training: _fit (the C trainer) and train / _train (checks, profile,
-- registration), tune_threshold (a version's training again with a tuned
-- decision threshold). See docs/kmeans.md, docs/trees.md, docs/evaluation.md.
--------------------------------------------------------------------------

CREATE FUNCTION mlpipe_internal._fit(
    algorithm text, source text, target text, features text[], params jsonb, warm_start bytea)
RETURNS mlpipe.fit_result
AS 'MODULE_PATHNAME', 'mlpipe_fit'
LANGUAGE C VOLATILE;
-- The model depends only on the rows, not on the order they arrive in
-- (src/core/roworder.h), so a synchronized scan that starts mid-table, a
-- Citus table or an ORDER BY train the same artifact: no setting pinned.
COMMENT ON FUNCTION mlpipe_internal._fit(text, text, text, text[], jsonb, bytea) IS
    'Trains an algorithm on a source in C and returns the artifact, metrics and fit token for _register.';
REVOKE ALL ON FUNCTION mlpipe_internal._fit(text, text, text, text[], jsonb, bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._fit(text, text, text, text[], jsonb, bytea) TO mlpipe_trainer;

-- Progress lines from plpgsql (src/pg/progress.c): "what: stage done/total
-- done, elapsed, about L s left", or a stage line when done and total are
-- NULL; the same interval (mlpipe.progress_interval) and switch
-- (mlpipe.progress) as training's own lines.
CREATE FUNCTION mlpipe_internal._progress(what text, stage text, done int, total int, started timestamptz)
RETURNS void
AS 'MODULE_PATHNAME', 'mlpipe_progress_line'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION mlpipe_internal._progress(text, text, int, int, timestamptz) IS
    'Prints a progress NOTICE for search, cross-validation and training steps (at most one per mlpipe.progress_interval).';
REVOKE ALL ON FUNCTION mlpipe_internal._progress(text, text, int, int, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._progress(text, text, int, int, timestamptz) TO mlpipe_trainer;

-- The progress lines this session printed in its current or last statement
-- that printed any (at most 1,000): what tests read.
CREATE FUNCTION mlpipe_internal._progress_log() RETURNS text[]
AS 'MODULE_PATHNAME', 'mlpipe_progress_log'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION mlpipe_internal._progress_log() IS
    'The progress lines of this session''s current or last statement that printed any.';
REVOKE ALL ON FUNCTION mlpipe_internal._progress_log() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._progress_log() TO mlpipe_trainer;

-- Everything _fit checks before it reads data (keys, values, target,
-- algorithm), without data: the same C functions, so the same SQLSTATE,
-- message and HINT. _train runs it first; create_pipeline runs the same
-- check in C on each train step (src/pg/pipeline.c).
CREATE FUNCTION mlpipe_internal._check_params(algorithm text, params jsonb, target text)
RETURNS void
AS 'MODULE_PATHNAME', 'mlpipe_check_params'
LANGUAGE C STABLE;
COMMENT ON FUNCTION mlpipe_internal._check_params(text, jsonb, text) IS
    'Checks an algorithm''s params and target as training does before it reads data (22023 with the training''s message).';
REVOKE ALL ON FUNCTION mlpipe_internal._check_params(text, jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._check_params(text, jsonb, text) TO mlpipe_trainer;

-- The params _fit gets: train's own keys (as_of, as_of_column, checks,
-- profile_sample) removed, and the as_of_column added to exclude. That
-- column says when a row was written, not what it is: like the column of
-- split 'time:<c>', it is no feature (unless the features argument names it).
CREATE FUNCTION mlpipe_internal._fit_params(p_params jsonb, p_features text[], p_target text) RETURNS jsonb
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
COMMENT ON FUNCTION mlpipe_internal._fit_params(jsonb, text[], text) IS
    'The params mlpipe_internal._fit gets from train''s: its own keys removed, the as_of_column excluded from the features.';
REVOKE ALL ON FUNCTION mlpipe_internal._fit_params(jsonb, text[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._fit_params(jsonb, text[], text) TO mlpipe_trainer;

CREATE FUNCTION mlpipe_internal._train(
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
    e_state  text;
    e_msg    text;
    e_detail text;
    e_hint   text;
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
    PERFORM mlpipe_internal._check_params(p_algorithm, p_params, p_target);
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
        SELECT a.sql, a.lineage INTO tt FROM mlpipe_internal._as_of_source(p_source, p_params) a;
        src := tt.sql;
        lin := lin OPERATOR(pg_catalog.||) tt.lineage;
    END IF;
    -- Data checks, before any training work.
    IF p_params ? 'checks'::text THEN
        lin := lin OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('checked_rows', mlpipe_internal._check_data(src, p_params->'checks'::text));
    END IF;
    -- _fit samples the training profile while it reads the source (seeded
    -- by params.seed) and hands it back in fit.info.profile.
    fit := mlpipe_internal._fit(p_algorithm, src, p_target, p_features,
                       mlpipe_internal._fit_params(p_params, p_features, p_target)
                       || pg_catalog.jsonb_build_object('profile_sample', sample), warm);
    prof := fit.info->'profile'::text;
    -- Integer features that number the rows, found by _fit as it read them (src/pg/source.c).
    ids := fit.info->'id_like_features'::text;
    -- Lineage notes ride in fit.info, which _register copies into the version.
    fit.info := (coalesce(fit.info, '{}') OPERATOR(pg_catalog.-) 'profile'::text
                 OPERATOR(pg_catalog.-) 'id_like_features'::text) OPERATOR(pg_catalog.||) lin;
    PERFORM mlpipe_internal._progress(p_algorithm, pg_catalog.format('storing the %s artifact',
                pg_catalog.pg_size_pretty(pg_catalog.octet_length(fit.artifact)::bigint)), NULL, NULL, started);
    res := mlpipe_internal._register(p_model, p_algorithm, p_source, p_target, p_params, p_gate, started, fit);
    -- A rerun of an identical version keeps that version's profile.
    IF prof IS NOT NULL AND EXISTS (SELECT 1 FROM mlpipe.model_versions v
                                     WHERE v.model OPERATOR(pg_catalog.=) res.model
                                       AND v.version OPERATOR(pg_catalog.=) res.version
                                       AND v.run_id OPERATOR(pg_catalog.=) res.run_id) THEN
        PERFORM mlpipe_internal._set_profile(res.model, res.version, prof);
    END IF;
    IF ids IS NOT NULL THEN
        RAISE WARNING 'model "%": feature % looks like a row id (one consecutive integer a row)', p_model,
            (SELECT pg_catalog.string_agg(x.e, ', ' ORDER BY x.o) FROM pg_catalog.jsonb_array_elements_text(ids) WITH ORDINALITY x(e, o))
            USING HINT = 'Leave it out with params.exclude (or the features argument) unless its value means something.';
    END IF;
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
COMMENT ON FUNCTION mlpipe_internal._train(text, text, text, text, text[], jsonb, jsonb) IS
    'The body of mlpipe.train: checks and profiles the source, fits, registers and stores the profile.';
REVOKE ALL ON FUNCTION mlpipe_internal._train(text, text, text, text, text[], jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._train(text, text, text, text, text[], jsonb, jsonb) TO mlpipe_trainer;

-- Grouped training (issue #14, docs/grouped-models.md): the C half reads
-- the source once, partitions its rows by the group columns and trains
-- each group in turn (src/pg/fit_groups.c).
CREATE FUNCTION mlpipe_internal._fit_groups(
    algorithm text, source text, target text, features text[], params jsonb,
    group_by text[], max_groups int, min_rows bigint)
RETURNS TABLE (group_key text[], rows bigint, fit mlpipe.fit_result)
AS 'MODULE_PATHNAME', 'mlpipe_fit_groups'
LANGUAGE C VOLATILE;
-- As for _fit: the same seed must give the same artifacts.
ALTER FUNCTION mlpipe_internal._fit_groups(text, text, text, text[], jsonb, text[], int, bigint) SET synchronize_seqscans = off;
COMMENT ON FUNCTION mlpipe_internal._fit_groups(text, text, text, text[], jsonb, text[], int, bigint) IS
    'Reads a source once and trains one model per group of its group_by columns; one fit_result (with its fit token) per group.';
REVOKE ALL ON FUNCTION mlpipe_internal._fit_groups(text, text, text, text[], jsonb, text[], int, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._fit_groups(text, text, text, text[], jsonb, text[], int, bigint) TO mlpipe_trainer;

-- The name of a group's model: the parent, "/", then the group's values
-- joined by "/", each with "%", "/", "@" and control characters
-- percent-encoded (%25, %2F, %40, %0A, ...), so that no value can make
-- two groups share a name or a name hold an "@".
CREATE FUNCTION mlpipe.group_model_name(parent text, group_key text[]) RETURNS text
LANGUAGE sql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp AS $$
    SELECT $1 || '/' || string_agg(
        (SELECT coalesce(string_agg(CASE WHEN ch IN ('%', '/', '@') OR ch ~ '[[:cntrl:]]'
                                         THEN '%' || upper(lpad(to_hex(ascii(ch)), 2, '0'))
                                         ELSE ch END, '' ORDER BY i), '')
           FROM regexp_split_to_table(v, '') WITH ORDINALITY s(ch, i)),
        '/' ORDER BY k)
      FROM unnest($2) WITH ORDINALITY u(v, k)
$$;
COMMENT ON FUNCTION mlpipe.group_model_name(text, text[]) IS
    'The model name of one group of a grouped model: parent/<values joined by "/">, with %, /, @ and control characters percent-encoded.';
REVOKE ALL ON FUNCTION mlpipe.group_model_name(text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.group_model_name(text, text[]) TO mlpipe_reader;

-- Records a trained group of a grouped model (and the parent on its first
-- training). The model name is derived here, so a caller cannot point a
-- group at another model.
CREATE FUNCTION mlpipe_internal._register_group(p_parent text, p_group_by text[], p_algorithm text,
                                       p_fallback text, p_key text[], p_rows bigint)
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO mlpipe.grouped_models AS g (name, group_by, algorithm, fallback, created_by)
        VALUES (p_parent, p_group_by, p_algorithm, p_fallback, session_user)
        ON CONFLICT (name) DO UPDATE SET fallback = excluded.fallback;
    INSERT INTO mlpipe.model_groups AS g (parent, group_key, model, training_rows)
        VALUES (p_parent, p_key, mlpipe.group_model_name(p_parent, p_key), p_rows)
        ON CONFLICT (parent, group_key) DO UPDATE
            SET training_rows = excluded.training_rows, trained_at = clock_timestamp();
$$;
COMMENT ON FUNCTION mlpipe_internal._register_group(text, text[], text, text, text[], bigint) IS
    'Records one trained group of a grouped model (and the grouped model itself) in the registry.';
REVOKE ALL ON FUNCTION mlpipe_internal._register_group(text, text[], text, text, text[], bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._register_group(text, text[], text, text, text[], bigint) TO mlpipe_trainer;

-- params.group_by as a text[]: one name or an array of 1 to 8 names; and
-- the grouping keys checked (22023 for anything else).
CREATE FUNCTION mlpipe_internal._group_params(p_model text, p_params jsonb, p_features text[],
    OUT group_by text[], OUT max_groups int, OUT min_rows bigint, OUT fallback text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    old_by text[];
BEGIN
    IF jsonb_typeof(p_params->'group_by') = 'string' THEN
        group_by := ARRAY[p_params->>'group_by'];
    ELSIF jsonb_typeof(p_params->'group_by') = 'array'
          AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(p_params->'group_by') e WHERE jsonb_typeof(e) <> 'string') THEN
        group_by := ARRAY(SELECT jsonb_array_elements_text(p_params->'group_by'));
    END IF;
    IF group_by IS NULL OR cardinality(group_by) NOT BETWEEN 1 AND 8
       OR cardinality(group_by) <> (SELECT count(DISTINCT b) FROM unnest(group_by) b) THEN
        RAISE EXCEPTION 'params.group_by must be a column name or an array of 1 to 8 distinct column names'
            USING ERRCODE = '22023', HINT = 'For example "group_by": "store" or "group_by": ["store", "dept"].';
    END IF;
    IF p_features && group_by THEN
        RAISE EXCEPTION 'a group_by column is also in features'
            USING ERRCODE = '22023', HINT = 'A group column is the same in every row of a group: leave it out of features.';
    END IF;
    max_groups := 1000;
    IF p_params ? 'max_groups' THEN
        IF jsonb_typeof(p_params->'max_groups') <> 'number' OR (p_params->>'max_groups')::numeric NOT BETWEEN 1 AND 100000
           OR (p_params->>'max_groups')::numeric <> trunc((p_params->>'max_groups')::numeric) THEN
            RAISE EXCEPTION 'params.max_groups must be an integer in 1..100000' USING ERRCODE = '22023';
        END IF;
        max_groups := (p_params->>'max_groups')::int;
    END IF;
    min_rows := 10;
    IF p_params ? 'min_rows_per_group' THEN
        IF jsonb_typeof(p_params->'min_rows_per_group') <> 'number'
           OR (p_params->>'min_rows_per_group')::numeric NOT BETWEEN 1 AND 1000000000
           OR (p_params->>'min_rows_per_group')::numeric <> trunc((p_params->>'min_rows_per_group')::numeric) THEN
            RAISE EXCEPTION 'params.min_rows_per_group must be an integer in 1..1000000000' USING ERRCODE = '22023';
        END IF;
        min_rows := (p_params->>'min_rows_per_group')::bigint;
    END IF;
    IF p_params ? 'fallback' THEN
        IF jsonb_typeof(p_params->'fallback') <> 'string' THEN
            RAISE EXCEPTION 'params.fallback must be a model reference such as ''sales_all'' or ''sales_all@3'''
                USING ERRCODE = '22023';
        END IF;
        fallback := p_params->>'fallback';
        PERFORM mlpipe.resolve(fallback);   -- 42704 when it names nothing
    END IF;
    IF p_params ? 'warm_start' THEN
        RAISE EXCEPTION 'params.warm_start cannot be combined with params.group_by' USING ERRCODE = '22023';
    END IF;
    IF EXISTS (SELECT 1 FROM mlpipe.models m WHERE m.name = p_model) THEN
        RAISE EXCEPTION 'model "%" is an ordinary model, not a grouped one', p_model
            USING ERRCODE = '22023', HINT = 'Give the grouped model a name of its own.';
    END IF;
    SELECT g.group_by INTO old_by FROM mlpipe.grouped_models g WHERE g.name = p_model;
    IF old_by IS DISTINCT FROM NULL AND old_by <> group_by THEN
        RAISE EXCEPTION 'model "%" is grouped by %, not by %', p_model, old_by, group_by
            USING ERRCODE = '22023', HINT = 'Keep its group_by, or give the new grouping a name of its own.';
    END IF;
END $$;
COMMENT ON FUNCTION mlpipe_internal._group_params(text, jsonb, text[]) IS
    'Checks and reads the grouping params of train (group_by, max_groups, min_rows_per_group, fallback).';
REVOKE ALL ON FUNCTION mlpipe_internal._group_params(text, jsonb, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._group_params(text, jsonb, text[]) TO mlpipe_trainer;

-- The body of mlpipe.train with params.group_by: one read of the source,
-- one model per group registered through _register like any training (its
-- own version, gate and run), one result row per group (version NULL for a
-- group skipped for having fewer than min_rows_per_group rows).
CREATE FUNCTION mlpipe_internal._train_groups(
    p_model text, p_algorithm text, p_source text, p_target text, p_features text[],
    p_params jsonb, p_gate jsonb)
RETURNS SETOF mlpipe.train_result
-- SECURITY INVOKER and no pinned search_path: the source is resolved and read
-- as the caller, like _train.
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    started  timestamptz := pg_catalog.clock_timestamp();
    gp       record;
    src      text := p_source;
    lin      jsonb := '{}';
    tt       record;
    fp       jsonb;
    g        record;
    fit      mlpipe.fit_result;
    res      mlpipe.train_result;
    prof     jsonb;
    child    text;
    skipped  text[] := '{}';
    null_rows bigint := 0;
BEGIN
    IF p_model IS NULL OR p_model OPERATOR(pg_catalog.=) '' OR pg_catalog.strpos(p_model, '@') OPERATOR(pg_catalog.>) 0
       OR pg_catalog.length(p_model) OPERATOR(pg_catalog.>) 200 OR p_model OPERATOR(pg_catalog.~) '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'invalid model name %', coalesce(pg_catalog.quote_literal(p_model), 'NULL')
            USING ERRCODE = '22023', HINT = 'A model name is 1 to 200 characters, without "@" or control characters.';
    END IF;
    IF p_source IS NULL THEN
        RAISE EXCEPTION 'source must not be NULL' USING ERRCODE = '22004';
    END IF;
    SELECT * INTO gp FROM mlpipe_internal._group_params(p_model, p_params, p_features);
    IF p_params ? 'as_of'::text OR p_params ? 'as_of_column'::text THEN
        SELECT a.sql, a.lineage INTO tt FROM mlpipe_internal._as_of_source(p_source, p_params) a;
        src := tt.sql;
        lin := lin OPERATOR(pg_catalog.||) tt.lineage;
    END IF;
    IF p_params ? 'checks'::text THEN
        lin := lin OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('checked_rows', mlpipe_internal._check_data(src, p_params->'checks'::text));
    END IF;
    -- What each group's fit gets: train's params without the grouping keys,
    -- the group columns excluded from the features.
    fp := mlpipe_internal._fit_params(p_params OPERATOR(pg_catalog.-) 'group_by'::text OPERATOR(pg_catalog.-) 'max_groups'::text
                             OPERATOR(pg_catalog.-) 'min_rows_per_group'::text OPERATOR(pg_catalog.-) 'fallback'::text,
                             p_features, p_target);
    IF p_features IS NULL THEN
        fp := (fp OPERATOR(pg_catalog.-) 'exclude'::text) OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('exclude',
                  coalesce(fp->'exclude'::text, '[]') OPERATOR(pg_catalog.||) pg_catalog.to_jsonb(gp.group_by));
    END IF;
    IF NOT p_params ? 'profile_sample'::text THEN
        fp := fp OPERATOR(pg_catalog.||) '{"profile_sample": 20000}'::jsonb;
    ELSE
        fp := fp OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('profile_sample', p_params->'profile_sample'::text);
    END IF;
    FOR g IN SELECT * FROM mlpipe_internal._fit_groups(p_algorithm, src, p_target, p_features, fp,
                                               gp.group_by, gp.max_groups, gp.min_rows) LOOP
        IF g.group_key IS NULL THEN
            null_rows := g.rows;
            CONTINUE;
        END IF;
        child := mlpipe.group_model_name(p_model, g.group_key);
        IF g.fit IS NULL THEN
            skipped := skipped OPERATOR(pg_catalog.||) pg_catalog.format('%s (%s rows)', child, g.rows);
            RETURN NEXT ROW(child, NULL::int, NULL::boolean,
                            pg_catalog.jsonb_build_object('skipped', 'fewer rows than min_rows_per_group', 'rows', g.rows),
                            NULL::bigint)::mlpipe.train_result;
            CONTINUE;
        END IF;
        IF pg_catalog.length(child) OPERATOR(pg_catalog.>) 200 THEN
            RAISE EXCEPTION 'the model name of group % of "%" is longer than 200 characters', g.group_key, p_model
                USING ERRCODE = '22023', HINT = 'Use a shorter model name, or group by columns with shorter values.';
        END IF;
        fit := g.fit;
        prof := fit.info->'profile'::text;
        fit.info := (coalesce(fit.info, '{}') OPERATOR(pg_catalog.-) 'profile'::text) OPERATOR(pg_catalog.||) lin
                    OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('group', pg_catalog.jsonb_build_object(
                        'parent', p_model, 'group_by', gp.group_by, 'key', g.group_key));
        res := mlpipe_internal._register(child, p_algorithm, p_source, p_target, p_params, p_gate, started, fit);
        IF prof IS NOT NULL THEN
            PERFORM mlpipe_internal._set_profile(res.model, res.version, prof);
        END IF;
        PERFORM mlpipe_internal._register_group(p_model, gp.group_by, p_algorithm, gp.fallback, g.group_key, g.rows);
        RETURN NEXT res;
    END LOOP;
    IF pg_catalog.cardinality(skipped) OPERATOR(pg_catalog.>) 0 THEN
        RAISE NOTICE 'model "%": % group(s) skipped, with fewer than % rows: %', p_model,
            pg_catalog.cardinality(skipped), gp.min_rows, pg_catalog.array_to_string(skipped[1:20], ', ')
            USING HINT = 'Lower params.min_rows_per_group to train them; their rows score with the fallback (or NULL).';
    END IF;
    IF null_rows OPERATOR(pg_catalog.>) 0 THEN
        RAISE NOTICE 'model "%": % row(s) with a NULL group column were not used', p_model, null_rows;
    END IF;
    RETURN;
END $$;
COMMENT ON FUNCTION mlpipe_internal._train_groups(text, text, text, text, text[], jsonb, jsonb) IS
    'The body of mlpipe.train with params.group_by: one read of the source, one registered model per group.';
REVOKE ALL ON FUNCTION mlpipe_internal._train_groups(text, text, text, text, text[], jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._train_groups(text, text, text, text, text[], jsonb, jsonb) TO mlpipe_trainer;

-- Removes a grouped model for good: every group's model (as
-- mlpipe.drop_model does, each logged and notified) and the grouping rows.
-- Returns the number of group models dropped.
CREATE FUNCTION mlpipe.drop_grouped_model(name text) RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p_parent text := $1;
    g        record;
    n        int := 0;
BEGIN
    PERFORM 1 FROM mlpipe.grouped_models gm WHERE gm.name = p_parent FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'grouped model "%" does not exist', p_parent
            USING ERRCODE = '42704',
                  HINT = 'mlpipe.grouped_models lists the grouped models; drop an ordinary model with mlpipe.drop_model.';
    END IF;
    FOR g IN SELECT mg.model FROM mlpipe.model_groups mg WHERE mg.parent = p_parent ORDER BY mg.model LOOP
        IF EXISTS (SELECT 1 FROM mlpipe.models m WHERE m.name = g.model) THEN
            PERFORM mlpipe.drop_model(g.model);
            n := n + 1;
        END IF;
    END LOOP;
    DELETE FROM mlpipe.model_groups mg WHERE mg.parent = p_parent;
    DELETE FROM mlpipe.grouped_models gm WHERE gm.name = p_parent;
    RETURN n;
END $$;
COMMENT ON FUNCTION mlpipe.drop_grouped_model(text) IS
    'Removes a grouped model: every group''s model (as drop_model) and its rows in grouped_models and model_groups; returns the number of group models dropped.';
REVOKE ALL ON FUNCTION mlpipe.drop_grouped_model(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.drop_grouped_model(text) TO mlpipe_admin;

-- Trains a model and registers it as a new version (see docs/kmeans.md);
-- with params.group_by, one model per group (docs/grouped-models.md).
CREATE FUNCTION mlpipe.train(
    model     text,
    algorithm text,
    source    text,
    target    text    DEFAULT NULL,
    features  text[]  DEFAULT NULL,
    params    jsonb   DEFAULT '{}',
    gate      jsonb   DEFAULT NULL)
RETURNS SETOF mlpipe.train_result
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    -- Everyone may call it; who may is checked here, to name the role to
    -- grant (issue #12). What it calls stays granted to mlpipe_trainer only.
    IF NOT pg_catalog.pg_has_role(current_user, 'mlpipe_trainer', 'MEMBER') THEN
        RAISE EXCEPTION 'permission denied for function train' USING ERRCODE = '42501',
            HINT = pg_catalog.format('GRANT mlpipe_trainer TO %I;', current_user);
    END IF;
    -- Called as expressions, not queries, so that an error's context is
    -- this line, not the statement text.
    IF coalesce($6 OPERATOR(pg_catalog.?) 'group_by', false) THEN
        RETURN QUERY SELECT * FROM mlpipe_internal._train_groups($1, $2, $3, $4, $5, $6, $7);
    ELSE
        RETURN NEXT mlpipe_internal._train($1, $2, $3, $4, $5, $6, $7);
    END IF;
END $$;
COMMENT ON FUNCTION mlpipe.train(text, text, text, text, text[], jsonb, jsonb) IS
    'Trains a model on a table, view or SELECT, records its metrics and registers it as a new version (promoted when the gate passes).';
REVOKE ALL ON FUNCTION mlpipe.train(text, text, text, text, text[], jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.train(text, text, text, text, text[], jsonb, jsonb) TO mlpipe_trainer;
GRANT EXECUTE ON FUNCTION mlpipe.train(text, text, text, text, text[], jsonb, jsonb) TO PUBLIC;

-- Import (issue #14): an XGBoost JSON model registered as a gbt version.
CREATE FUNCTION mlpipe_internal._import_fit(doc jsonb, features text[], classes text[])
RETURNS mlpipe.fit_result
AS 'MODULE_PATHNAME', 'mlpipe_import_fit'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION mlpipe_internal._import_fit(jsonb, text[], text[]) IS
    'Reads an XGBoost JSON model into a gbt artifact and returns it with a fit token for _register.';
REVOKE ALL ON FUNCTION mlpipe_internal._import_fit(jsonb, text[], text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._import_fit(jsonb, text[], text[]) TO mlpipe_trainer;

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
    -- mlpipe.export output (a tree model) has "algorithm" and no "learner".
    own     boolean := pg_catalog.jsonb_typeof(doc) = 'object' AND doc ? 'algorithm' AND NOT doc ? 'learner';
    label   text := coalesce(origin, CASE WHEN own THEN 'imported mlpipe export' ELSE 'imported XGBoost JSON' END);
BEGIN
    -- Everyone may call it; who may is checked here, to name the role to
    -- grant (issue #12). What it calls stays granted to mlpipe_trainer only.
    IF NOT pg_catalog.pg_has_role(current_user, 'mlpipe_trainer', 'MEMBER') THEN
        RAISE EXCEPTION 'permission denied for function import' USING ERRCODE = '42501',
            HINT = pg_catalog.format('GRANT mlpipe_trainer TO %I;', current_user);
    END IF;
    IF model IS NULL OR model = '' OR pg_catalog.strpos(model, '@') > 0
       OR pg_catalog.length(model) > 200 OR model OPERATOR(pg_catalog.~) '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'invalid model name %', coalesce(pg_catalog.quote_literal(model), 'NULL')
            USING ERRCODE = '22023', HINT = 'A model name is 1 to 200 characters, without "@" or control characters.';
    END IF;
    IF doc IS NULL THEN
        RAISE EXCEPTION 'doc must not be NULL' USING ERRCODE = '22004';
    END IF;
    fit := mlpipe_internal._import_fit(doc, features, classes);
    -- Lineage: imported, from what (fit.info is not part of the fit token but its row counts).
    fit.info := fit.info OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('imported',
        (fit.info->'imported') OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('origin', label));
    -- The algorithm the fit token was issued for: the export's, or gbt for XGBoost.
    res := mlpipe_internal._register(model, CASE WHEN own THEN fit.info->'imported'->>'algorithm' ELSE 'gbt' END,
        label, NULL, pg_catalog.jsonb_build_object('imported', CASE WHEN own THEN 'mlpipe_export' ELSE 'xgboost_json' END),
        gate, started, fit);
    RETURN res.version;
END $$;
COMMENT ON FUNCTION mlpipe.import(text, jsonb, text[], text[], jsonb, text) IS
    'Registers an XGBoost JSON model (binary:logistic, multi:softprob/softmax, reg:squarederror), or the mlpipe.export output of a tree model, as a new version of a model; returns the version.';
REVOKE ALL ON FUNCTION mlpipe.import(text, jsonb, text[], text[], jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.import(text, jsonb, text[], text[], jsonb, text) TO mlpipe_trainer;
GRANT EXECUTE ON FUNCTION mlpipe.import(text, jsonb, text[], text[], jsonb, text) TO PUBLIC;

-- Threshold tuning (issue #14): the version's recorded training again (same
-- source, target, features, params and seed) with params.threshold set to
-- the metric, so the fit picks the threshold that maximises it on that
-- training's test split; registered as a new version like any training.
CREATE FUNCTION mlpipe_internal._tune_threshold(p_model_ref text, p_metric text, p_gate jsonb)
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
    RETURN mlpipe_internal._train(v.model, v.algorithm, v.source, v.target, feats,
                         v.params OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('threshold', p_metric), p_gate);
END $$;
COMMENT ON FUNCTION mlpipe_internal._tune_threshold(text, text, jsonb) IS
    'Retrains a binary classifier version with params.threshold = metric and registers it as a new version.';
REVOKE ALL ON FUNCTION mlpipe_internal._tune_threshold(text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._tune_threshold(text, text, jsonb) TO mlpipe_trainer;

CREATE FUNCTION mlpipe.tune_threshold(model_ref text, metric text DEFAULT 'f1', gate jsonb DEFAULT NULL)
RETURNS TABLE (model text, version int, promoted boolean, metrics jsonb, run_id bigint)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    -- Everyone may call it; who may is checked here, to name the role to
    -- grant (issue #12). What it calls stays granted to mlpipe_trainer only.
    IF NOT pg_catalog.pg_has_role(current_user, 'mlpipe_trainer', 'MEMBER') THEN
        RAISE EXCEPTION 'permission denied for function tune_threshold' USING ERRCODE = '42501',
            HINT = pg_catalog.format('GRANT mlpipe_trainer TO %I;', current_user);
    END IF;
    RETURN QUERY SELECT * FROM mlpipe_internal._tune_threshold($1, $2, $3);
END $$;
COMMENT ON FUNCTION mlpipe.tune_threshold(text, text, jsonb) IS
    'New version of a binary classifier whose decision threshold maximises metric (default f1) on its test split.';
REVOKE ALL ON FUNCTION mlpipe.tune_threshold(text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.tune_threshold(text, text, jsonb) TO mlpipe_trainer;
GRANT EXECUTE ON FUNCTION mlpipe.tune_threshold(text, text, jsonb) TO PUBLIC;
