--------------------------------------------------------------------------
-- 60-pipelines: named, versioned pipelines of steps (features, train,
-- search, predict, evaluate, drift) run in order, optionally on a pg_cron
-- schedule. See docs/pipelines.md.
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
COMMENT ON COLUMN mlpipe.pipelines.name IS 'The pipeline name.';
COMMENT ON COLUMN mlpipe.pipelines.version IS 'The current version (the newest in mlpipe.pipeline_versions).';
COMMENT ON COLUMN mlpipe.pipelines.config IS 'The validated config of the current version.';
COMMENT ON COLUMN mlpipe.pipelines.description IS 'The description given in the config.';
COMMENT ON COLUMN mlpipe.pipelines.created_at IS 'When the first version was created.';
COMMENT ON COLUMN mlpipe.pipelines.created_by IS 'The user who created the first version.';
COMMENT ON COLUMN mlpipe.pipelines.updated_at IS 'When the current version was created or the schedule changed.';
COMMENT ON COLUMN mlpipe.pipelines.updated_by IS 'The user who made the last change.';
COMMENT ON COLUMN mlpipe.pipelines.schedule IS 'The cron expression while scheduled, else NULL.';
COMMENT ON COLUMN mlpipe.pipelines.cron_job_id IS 'The pg_cron job id while scheduled, else NULL.';

CREATE TABLE mlpipe.pipeline_versions (
    name       text NOT NULL,
    version    int NOT NULL,
    config     jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    created_by name NOT NULL DEFAULT session_user,
    PRIMARY KEY (name, version)
);
COMMENT ON TABLE mlpipe.pipeline_versions IS 'Append-only history of every pipeline config.';
COMMENT ON COLUMN mlpipe.pipeline_versions.name IS 'The pipeline name.';
COMMENT ON COLUMN mlpipe.pipeline_versions.version IS 'The version number, 1, 2, ... per pipeline.';
COMMENT ON COLUMN mlpipe.pipeline_versions.config IS 'The validated config of this version.';
COMMENT ON COLUMN mlpipe.pipeline_versions.created_at IS 'When the version was created.';
COMMENT ON COLUMN mlpipe.pipeline_versions.created_by IS 'The user who created the version.';

SELECT pg_catalog.pg_extension_config_dump('mlpipe.pipelines', '');
SELECT pg_catalog.pg_extension_config_dump('mlpipe.pipeline_versions', '');

-- Pipeline history is append-only, like alias_events.
CREATE FUNCTION mlpipe_internal._refuse_pipeline_history_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'mlpipe.pipeline_versions is append-only: % is not allowed', TG_OP
        USING ERRCODE = '42501', HINT = 'Pipeline versions are recorded by mlpipe.create_pipeline.';
END $$;
COMMENT ON FUNCTION mlpipe_internal._refuse_pipeline_history_change() IS
    'Trigger function that refuses UPDATE, DELETE and TRUNCATE on mlpipe.pipeline_versions.';
CREATE TRIGGER pipeline_versions_append_only BEFORE UPDATE OR DELETE ON mlpipe.pipeline_versions
    FOR EACH ROW EXECUTE FUNCTION mlpipe_internal._refuse_pipeline_history_change();
CREATE TRIGGER pipeline_versions_no_truncate BEFORE TRUNCATE ON mlpipe.pipeline_versions
    FOR EACH STATEMENT EXECUTE FUNCTION mlpipe_internal._refuse_pipeline_history_change();

REVOKE ALL ON mlpipe.pipelines, mlpipe.pipeline_versions FROM PUBLIC;
GRANT SELECT ON mlpipe.pipelines, mlpipe.pipeline_versions TO mlpipe_reader;

-- Validates a config (C, cJSON): returns it as jsonb or raises 22023/22032
-- naming the path (steps[1].algoritm). check_sources looks relation names
-- up as the caller.
CREATE FUNCTION mlpipe_internal._pipeline_check(config text, check_sources boolean) RETURNS jsonb
AS 'MODULE_PATHNAME', 'mlpipe_pipeline_check'
LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION mlpipe_internal._pipeline_check(text, boolean) IS
    'Validates a pipeline config and returns it as jsonb, or raises naming the path of the error.';
REVOKE ALL ON FUNCTION mlpipe_internal._pipeline_check(text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._pipeline_check(text, boolean) TO mlpipe_admin;

-- An unknown pipeline: 42704 with what exists in the HINT.
CREATE FUNCTION mlpipe_internal._pipeline_unknown(p_name text) RETURNS void
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
COMMENT ON FUNCTION mlpipe_internal._pipeline_unknown(text) IS
    'Raises 42704 for an unknown pipeline, with the existing ones in the HINT.';
REVOKE ALL ON FUNCTION mlpipe_internal._pipeline_unknown(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._pipeline_unknown(text) TO mlpipe_admin;

-- Stores a validated config as the pipeline's next version (the one place
-- pipelines are written). The same config as the current one is no new version.
CREATE FUNCTION mlpipe_internal._pipeline_store(p_name text, p_config jsonb) RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cur  record;
    v    int;
BEGIN
    -- Shape only: names resolve with the caller's search_path, which create_pipeline checked.
    p_config := mlpipe_internal._pipeline_check(p_config::text, false);
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
COMMENT ON FUNCTION mlpipe_internal._pipeline_store(text, jsonb) IS
    'Stores a validated config as the pipeline''s next version (the one place pipelines are written).';
REVOKE ALL ON FUNCTION mlpipe_internal._pipeline_store(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._pipeline_store(text, jsonb) TO mlpipe_admin;

-- Creates a pipeline, or a new version of it. The config is validated at
-- once, as the caller (source relations are looked up with the caller's
-- search_path). Returns the pipeline's version.
CREATE FUNCTION mlpipe.create_pipeline(name text, config text) RETURNS int
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    checked jsonb;
BEGIN
    -- Everyone may call it; who may is checked here, to name the role to
    -- grant (issue #12). What it calls stays granted to mlpipe_admin only.
    IF NOT pg_catalog.pg_has_role(current_user, 'mlpipe_admin', 'MEMBER') THEN
        RAISE EXCEPTION 'permission denied for function create_pipeline' USING ERRCODE = '42501',
            HINT = pg_catalog.format('GRANT mlpipe_admin TO %I;', current_user);
    END IF;
    IF name IS NULL OR name = '' OR pg_catalog.length(name) > 200 OR name ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'invalid pipeline name %', coalesce(pg_catalog.quote_literal(name), 'NULL')
            USING ERRCODE = '22023', HINT = 'A pipeline name is 1 to 200 characters, without control characters.';
    END IF;
    IF config IS NULL THEN
        RAISE EXCEPTION 'pipeline config is NULL' USING ERRCODE = '22004';
    END IF;
    checked := mlpipe_internal._pipeline_check(config, true);
    RETURN mlpipe_internal._pipeline_store(name, checked);
END $$;
COMMENT ON FUNCTION mlpipe.create_pipeline(text, text) IS
    'Validates a pipeline config and stores it as a new version of the named pipeline (config as YAML or JSON text).';
REVOKE ALL ON FUNCTION mlpipe.create_pipeline(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.create_pipeline(text, text) TO mlpipe_admin;
GRANT EXECUTE ON FUNCTION mlpipe.create_pipeline(text, text) TO PUBLIC;

CREATE FUNCTION mlpipe.create_pipeline(name text, config jsonb) RETURNS int
LANGUAGE sql VOLATILE AS $$
    SELECT mlpipe.create_pipeline($1, $2::text)
$$;
COMMENT ON FUNCTION mlpipe.create_pipeline(text, jsonb) IS
    'Validates a pipeline config and stores it as a new version of the named pipeline (config as jsonb).';
REVOKE ALL ON FUNCTION mlpipe.create_pipeline(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.create_pipeline(text, jsonb) TO mlpipe_admin;
GRANT EXECUTE ON FUNCTION mlpipe.create_pipeline(text, jsonb) TO PUBLIC;

-- Removes a pipeline (unscheduling it first). Its history and runs stay.
CREATE FUNCTION mlpipe.drop_pipeline(name text) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- Everyone may call it; who may is checked here, to name the role to
    -- grant (issue #12). What it calls stays granted to mlpipe_admin only.
    IF NOT pg_catalog.pg_has_role(current_user, 'mlpipe_admin', 'MEMBER') THEN
        RAISE EXCEPTION 'permission denied for function drop_pipeline' USING ERRCODE = '42501',
            HINT = pg_catalog.format('GRANT mlpipe_admin TO %I;', current_user);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM mlpipe.pipelines p WHERE p.name = drop_pipeline.name) THEN
        PERFORM mlpipe_internal._pipeline_unknown(name);
    END IF;
    IF (SELECT p.schedule FROM mlpipe.pipelines p WHERE p.name = drop_pipeline.name) IS NOT NULL THEN
        PERFORM mlpipe.unschedule(name);
    END IF;
    PERFORM mlpipe_internal._pipeline_delete(name);
END $$;
COMMENT ON FUNCTION mlpipe.drop_pipeline(text) IS
    'Unschedules and removes a pipeline; its versions'' history and runs stay.';
REVOKE ALL ON FUNCTION mlpipe.drop_pipeline(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.drop_pipeline(text) TO mlpipe_admin;
GRANT EXECUTE ON FUNCTION mlpipe.drop_pipeline(text) TO PUBLIC;

CREATE FUNCTION mlpipe_internal._pipeline_delete(p_name text) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    DELETE FROM mlpipe.pipelines WHERE name = p_name
$$;
COMMENT ON FUNCTION mlpipe_internal._pipeline_delete(text) IS
    'Deletes a pipeline row (its history and runs stay).';
REVOKE ALL ON FUNCTION mlpipe_internal._pipeline_delete(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._pipeline_delete(text) TO mlpipe_admin;

CREATE FUNCTION mlpipe_internal._pipeline_run_begin(p_name text, p_version int, p_params jsonb) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO mlpipe.runs (kind, source, params, status, started_at, created_by)
    VALUES ('pipeline', p_name, jsonb_build_object('pipeline', p_name, 'pipeline_version', p_version) || p_params,
            'running', clock_timestamp(), session_user)
    RETURNING run_id
$$;
COMMENT ON FUNCTION mlpipe_internal._pipeline_run_begin(text, int, jsonb) IS
    'Starts a pipeline run row and returns its run_id.';
REVOKE ALL ON FUNCTION mlpipe_internal._pipeline_run_begin(text, int, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._pipeline_run_begin(text, int, jsonb) TO mlpipe_admin;

-- Finishes a pipeline run that is still running (and only such a row).
CREATE FUNCTION mlpipe_internal._pipeline_run_end(p_run bigint, p_status text, p_error text, p_steps bigint)
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
COMMENT ON FUNCTION mlpipe_internal._pipeline_run_end(bigint, text, text, bigint) IS
    'Finishes a pipeline run that is still running.';
REVOKE ALL ON FUNCTION mlpipe_internal._pipeline_run_end(bigint, text, text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._pipeline_run_end(bigint, text, text, bigint) TO mlpipe_admin;

-- Links the runs a step made (run ids after the previous step's row, before
-- this step's row, by this session user, without a parent) to the step.
CREATE FUNCTION mlpipe_internal._pipeline_adopt(p_step_run bigint, p_after bigint) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    UPDATE mlpipe.runs SET parent_run_id = p_step_run
     WHERE run_id > p_after AND run_id < p_step_run AND parent_run_id IS NULL
       AND created_by = session_user AND kind NOT IN ('pipeline', 'pipeline_step')
$$;
COMMENT ON FUNCTION mlpipe_internal._pipeline_adopt(bigint, bigint) IS
    'Links the runs a pipeline step made to the step''s run.';
REVOKE ALL ON FUNCTION mlpipe_internal._pipeline_adopt(bigint, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._pipeline_adopt(bigint, bigint) TO mlpipe_admin;

-- A [schema.]table name from a config, quoted for SQL.
CREATE FUNCTION mlpipe_internal._pipeline_ident(p_name text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT pg_catalog.string_agg(pg_catalog.quote_ident(x), '.' ORDER BY o) FROM pg_catalog.unnest(pg_catalog.parse_ident(p_name)) WITH ORDINALITY AS u(x, o)
$$;
COMMENT ON FUNCTION mlpipe_internal._pipeline_ident(text) IS
    'A [schema.]table name from a pipeline config, quoted for SQL.';
REVOKE ALL ON FUNCTION mlpipe_internal._pipeline_ident(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._pipeline_ident(text) TO mlpipe_admin;

-- A source for a FROM clause: a relation (as the caller resolves it) or a
-- query in parentheses (validated as one SELECT when the pipeline was created).
CREATE FUNCTION mlpipe_internal._pipeline_from(p_source text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    rel regclass;
BEGIN
    IF p_source ~* '^[\s(]*(select|with|values|table)\M' THEN
        RETURN '(' OPERATOR(pg_catalog.||) pg_catalog.chr(10) OPERATOR(pg_catalog.||) p_source OPERATOR(pg_catalog.||) pg_catalog.chr(10) OPERATOR(pg_catalog.||) ') AS src';
    END IF;
    rel := pg_catalog.to_regclass(mlpipe_internal._pipeline_ident(p_source));
    IF rel IS NULL THEN
        RAISE EXCEPTION 'relation "%" does not exist', p_source USING ERRCODE = '42P01';
    END IF;
    RETURN rel::text OPERATOR(pg_catalog.||) ' AS src';
END $$;
COMMENT ON FUNCTION mlpipe_internal._pipeline_from(text) IS
    'A pipeline source as a FROM item: a relation or a query in parentheses.';
REVOKE ALL ON FUNCTION mlpipe_internal._pipeline_from(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._pipeline_from(text) TO mlpipe_admin;

-- A JSON array of strings as text[] (NULL stays NULL).
CREATE FUNCTION mlpipe_internal._pipeline_texts(p jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN p IS NULL OR pg_catalog.jsonb_typeof(p) = 'null' THEN NULL
                ELSE ARRAY(SELECT pg_catalog.jsonb_array_elements_text(p)) END
$$;
COMMENT ON FUNCTION mlpipe_internal._pipeline_texts(jsonb) IS
    'A JSON array of strings as text[] (NULL stays NULL).';
REVOKE ALL ON FUNCTION mlpipe_internal._pipeline_texts(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._pipeline_texts(jsonb) TO mlpipe_admin;

-- The features step: one row per group (and period_start, with a period)
-- with ts_features of every value column flattened into <value>_<stat>
-- columns, written into a table (replace: dropped and created again;
-- append: inserted, created when missing). Returns the rows written.
CREATE FUNCTION mlpipe_internal._pipeline_features(step jsonb) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    groups  text[] := coalesce(mlpipe_internal._pipeline_texts(step->'group_by'::text), '{}');
    vals    text[] := mlpipe_internal._pipeline_texts(step->'values'::text);
    wanted  text[] := mlpipe_internal._pipeline_texts(step->'stats'::text);
    period  text := step->>'period'::text;
    ts      text := step->>'ts'::text;
    into_t  text := mlpipe_internal._pipeline_ident(step->>'into'::text);
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
    IF pg_catalog.to_regtype('mlpipe.ts_summary') IS NULL THEN
        RAISE EXCEPTION 'a features step needs mlpipe.ts_features, which this installation does not have'
            USING ERRCODE = '0A000', HINT = 'Update the extension: ALTER EXTENSION mlpipe UPDATE.';
    END IF;
    SELECT pg_catalog.array_agg(a.attname::text ORDER BY a.attnum) INTO stats
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = (SELECT t.typrelid FROM pg_catalog.pg_type t WHERE t.oid = 'mlpipe.ts_summary'::regtype)
       AND a.attnum > 0 AND NOT a.attisdropped
       AND a.atttypid IN ('float8'::regtype, 'float4'::regtype, 'int4'::regtype, 'int8'::regtype,
                          'int2'::regtype, 'numeric'::regtype);
    IF wanted IS NOT NULL THEN
        FOREACH s IN ARRAY wanted LOOP
            IF NOT s = ANY (stats) THEN
                RAISE EXCEPTION 'features step: unknown stat "%"', s
                    USING ERRCODE = '22023', HINT = 'Stats: ' OPERATOR(pg_catalog.||) pg_catalog.array_to_string(stats, ', ') OPERATOR(pg_catalog.||) '.';
            END IF;
        END LOOP;
        stats := wanted;
    END IF;
    FOREACH g IN ARRAY groups LOOP
        inner_c := inner_c OPERATOR(pg_catalog.||) pg_catalog.format('%I', g);
        outer_c := outer_c OPERATOR(pg_catalog.||) pg_catalog.format('%I', g);
    END LOOP;
    IF period IS NOT NULL THEN
        inner_c := inner_c OPERATOR(pg_catalog.||) pg_catalog.format('pg_catalog.date_trunc(%L::text, %I::timestamptz) AS period_start', period, ts);
        outer_c := outer_c OPERATOR(pg_catalog.||) 'period_start'::text;
    END IF;
    nkeys := pg_catalog.cardinality(inner_c);
    FOREACH v IN ARRAY vals LOOP
        inner_c := inner_c OPERATOR(pg_catalog.||) pg_catalog.format('mlpipe.ts_features(%I::timestamptz, %I::float8) AS _f%s', ts, v, i);
        FOREACH s IN ARRAY stats LOOP
            outer_c := outer_c OPERATOR(pg_catalog.||) pg_catalog.format('(_f%s).%I::float8 AS %I', i, s, v OPERATOR(pg_catalog.||) '_' OPERATOR(pg_catalog.||) s);
        END LOOP;
        i := i + 1;
    END LOOP;
    q := pg_catalog.format('SELECT %s FROM (SELECT %s FROM %s%s) AS f%s',
                pg_catalog.array_to_string(outer_c, ', '), pg_catalog.array_to_string(inner_c, ', '),
                mlpipe_internal._pipeline_from(step->>'source'::text),
                CASE WHEN nkeys > 0 THEN ' GROUP BY ' OPERATOR(pg_catalog.||) pg_catalog.array_to_string(ARRAY(SELECT pg_catalog.generate_series(1, nkeys)), ', ') ELSE '' END,
                CASE WHEN nkeys > 0 THEN ' ORDER BY ' OPERATOR(pg_catalog.||) pg_catalog.array_to_string(ARRAY(SELECT pg_catalog.generate_series(1, nkeys)), ', ') ELSE '' END);
    IF coalesce(step->>'mode'::text, 'replace') = 'replace' AND pg_catalog.to_regclass(into_t) IS NOT NULL THEN
        EXECUTE pg_catalog.format('DROP TABLE %s', into_t);
    END IF;
    IF pg_catalog.to_regclass(into_t) IS NULL THEN
        EXECUTE pg_catalog.format('CREATE TABLE %s AS %s', into_t, q);
    ELSE
        EXECUTE pg_catalog.format('INSERT INTO %s %s', into_t, q);
    END IF;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
COMMENT ON FUNCTION mlpipe_internal._pipeline_features(jsonb) IS
    'Runs a features step: ts_features per group (and period) written into a table.';
REVOKE ALL ON FUNCTION mlpipe_internal._pipeline_features(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._pipeline_features(jsonb) TO mlpipe_admin;

-- Runs one step as the caller; returns what it produced as jsonb
-- ({"model", "version", "rows", "metrics", "result"}). Identifiers are
-- quoted and every value is bound (EXECUTE ... USING).
CREATE FUNCTION mlpipe_internal._pipeline_step(step jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    kind    text := step->>'kind'::text;
    r       jsonb;
    n       bigint;
    params  jsonb;
    skipped bigint;
    total   bigint;
    ref     record;
    on_null text;
BEGIN
    CASE kind
    WHEN 'features' THEN
        n := mlpipe_internal._pipeline_features(step);
        RETURN pg_catalog.jsonb_build_object('rows', n, 'result', pg_catalog.jsonb_build_object('into', step->>'into'::text, 'rows', n));
    WHEN 'train' THEN
        params := coalesce(step->'params'::text, '{}');
        -- In a pipeline, k-means skips rows with a NULL feature unless told
        -- otherwise (as the trees do everywhere): a features step gives
        -- NULL statistics for short groups (kurtosis needs 4 readings).
        IF step->>'algorithm'::text IN ('kmeans', 'minibatch_kmeans') AND pg_catalog.jsonb_typeof(params) = 'object'
           AND NOT params ? 'on_null'::text THEN
            params := params OPERATOR(pg_catalog.||) '{"on_null": "skip"}'::jsonb;
        END IF;
        EXECUTE 'SELECT pg_catalog.to_jsonb(t) FROM mlpipe.train($1, $2, $3, $4, $5, $6, $7) AS t'
           INTO r
          USING step->>'model'::text, step->>'algorithm'::text, step->>'source'::text, step->>'target'::text,
                mlpipe_internal._pipeline_texts(step->'features'::text), params, step->'gate'::text;
        SELECT v.skipped_rows, v.training_rows + v.skipped_rows INTO skipped, total
          FROM mlpipe.model_versions v WHERE v.model = r->>'model'::text AND v.version = (r->>'version'::text)::int;
        IF skipped > 0 THEN
            RAISE NOTICE 'train step "%": % of % rows of % skipped (a NULL or non-finite feature)',
                r->>'model'::text, skipped, total, step->>'source'::text
                USING HINT = CASE WHEN params->>'on_null'::text = 'skip' AND NOT coalesce(step->'params'::text, '{}') ? 'on_null'::text
                    THEN 'In a pipeline, k-means defaults to params.on_null = ''skip''; give "on_null": "error" to fail instead.' END;
        END IF;
        RETURN pg_catalog.jsonb_build_object('model', r->>'model'::text, 'version', (r->>'version'::text)::int, 'result', r);
    WHEN 'search' THEN
        EXECUTE 'SELECT pg_catalog.to_jsonb(t) FROM mlpipe.search($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) AS t'
           INTO r
          USING step->>'model'::text, step->>'algorithm'::text, step->>'source'::text, step->>'target'::text,
                mlpipe_internal._pipeline_texts(step->'features'::text), step->'space'::text,
                coalesce(step->>'strategy'::text, 'grid'), coalesce((step->>'folds'::text)::int, 5),
                coalesce((step->>'trials'::text)::int, 20), step->'gate'::text;
        RETURN pg_catalog.jsonb_build_object('model', r->>'model'::text, 'version', (r->>'version'::text)::int, 'result', r);
    WHEN 'predict' THEN
        -- on_null: the step's, else skip for a k-means version trained with
        -- on_null = 'skip' (the pipeline default: it scores only the rows it
        -- could have trained on; predict_table counts them in a NOTICE),
        -- else error.
        SELECT CASE WHEN v.algorithm IN ('kmeans', 'minibatch_kmeans') AND v.params->>'on_null'::text = 'skip'
                    THEN 'skip' ELSE 'error' END INTO on_null
          FROM mlpipe.resolve(step->>'model'::text) r
          JOIN mlpipe.model_versions v ON v.model = r.model AND v.version = r.version;
        EXECUTE 'SELECT mlpipe.predict_table($1, $2, $3, $4, $5, on_null => $6)'
           INTO n
          USING step->>'model'::text, step->>'source'::text, step->>'into'::text, step->>'key'::text,
                coalesce(step->>'mode'::text, 'append'), coalesce(step->>'on_null'::text, on_null);
        RETURN pg_catalog.jsonb_build_object('model', step->>'model'::text, 'rows', n,
                                  'result', pg_catalog.jsonb_build_object('into', step->>'into'::text, 'rows', n));
    WHEN 'evaluate' THEN
        -- evaluate logs its own run and metrics (a child of the step's run):
        -- the step records the version only, so each metric is logged once.
        EXECUTE 'SELECT pg_catalog.to_jsonb(mlpipe.evaluate($1, $2))' INTO r USING step->>'model'::text, step->>'source'::text;
        RETURN pg_catalog.jsonb_build_object('model', r->>'model'::text, 'version', (r->>'version'::text)::int, 'result', r);
    WHEN 'drift' THEN
        -- drift logs its run with psi:<feature> and null_rate:<feature>
        -- metrics (the names predict_table uses); the step adds none.
        EXECUTE 'SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(d)) FROM mlpipe.drift($1, $2) AS d' INTO r
          USING step->>'model'::text, step->>'source'::text;
        SELECT v.model, v.version INTO ref FROM mlpipe.resolve(step->>'model'::text) v;
        RETURN pg_catalog.jsonb_build_object('model', ref.model, 'version', ref.version, 'result', r);
    ELSE
        RAISE EXCEPTION 'unknown step kind "%"', kind USING ERRCODE = '22023';
    END CASE;
END $$;
COMMENT ON FUNCTION mlpipe_internal._pipeline_step(jsonb) IS
    'Runs one pipeline step as the caller and returns what it produced as jsonb.';
REVOKE ALL ON FUNCTION mlpipe_internal._pipeline_step(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._pipeline_step(jsonb) TO mlpipe_admin;

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
    -- Everyone may call it; who may is checked here, to name the role to
    -- grant (issue #12). What it calls stays granted to mlpipe_admin only.
    IF NOT pg_catalog.pg_has_role(current_user, 'mlpipe_admin', 'MEMBER') THEN
        RAISE EXCEPTION 'permission denied for function run_pipeline' USING ERRCODE = '42501',
            HINT = pg_catalog.format('GRANT mlpipe_admin TO %I;', current_user);
    END IF;
    SELECT pl.version, pl.config INTO p FROM mlpipe.pipelines pl WHERE pl.name = p_name;
    IF NOT FOUND THEN
        PERFORM mlpipe_internal._pipeline_unknown(p_name);
    END IF;
    IF NOT pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('mlpipe.pipeline_run:' OPERATOR(pg_catalog.||) p_name)) THEN
        RAISE EXCEPTION 'pipeline "%" is already running', p_name
            USING ERRCODE = '55P03', HINT = 'Wait for the running call to finish.';
    END IF;
    run := mlpipe_internal._pipeline_run_begin(p_name, p.version,
               pg_catalog.jsonb_build_object('application_name', pg_catalog.current_setting('application_name')));
    prev := run;
    FOR step IN SELECT s FROM pg_catalog.jsonb_array_elements(p.config->'steps'::text) AS s LOOP
        started := pg_catalog.clock_timestamp();
        res := NULL;
        BEGIN
            res := mlpipe_internal._pipeline_step(step);
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS err = MESSAGE_TEXT, state = RETURNED_SQLSTATE;
            failed := true;
        END;
        step_run := mlpipe_internal._log_run(
            'pipeline_step', coalesce(res->>'model'::text, step->>'model'::text), (res->>'version'::text)::int, step->>'kind'::text,
            coalesce(step->>'source'::text, step->>'model'::text),
            pg_catalog.jsonb_build_object('pipeline', p_name, 'step', i, 'config', step, 'result', res->'result'::text)
                OPERATOR(pg_catalog.||) CASE WHEN failed THEN pg_catalog.jsonb_build_object('sqlstate', state) ELSE '{}' END,
            CASE WHEN failed THEN 'failed' ELSE 'succeeded' END,
            CASE WHEN failed THEN pg_catalog.format('steps[%s] (%s): %s', i, step->>'kind'::text, err) END,
            (res->>'rows'::text)::bigint, started, run,
            CASE WHEN pg_catalog.jsonb_typeof(res->'metrics'::text) = 'object' THEN res->'metrics'::text END,
            step->>'kind'::text);
        PERFORM mlpipe_internal._pipeline_adopt(step_run, prev);
        prev := step_run;
        IF failed THEN
            PERFORM mlpipe_internal._pipeline_run_end(run, 'failed',
                pg_catalog.format('steps[%s] (%s) failed: %s', i, step->>'kind'::text, err), i);
            PERFORM mlpipe_internal._notify('run_failed', pg_catalog.jsonb_build_object(
                'pipeline', p_name, 'run_id', run, 'step', i, 'kind', step->>'kind'::text,
                'sqlstate', state, 'error', err));
            RAISE WARNING 'pipeline "%" failed at steps[%] (%): %', p_name, i, step->>'kind'::text, err
                USING HINT = pg_catalog.format('See SELECT * FROM mlpipe.runs WHERE run_id = %s OR parent_run_id = %s.', run, run);
            RETURN run;
        END IF;
        i := i + 1;
    END LOOP;
    PERFORM mlpipe_internal._pipeline_run_end(run, 'succeeded', NULL, i);
    RETURN run;
END $$;
COMMENT ON FUNCTION mlpipe.run_pipeline(text) IS
    'Runs the current version of a pipeline step by step, each step in a subtransaction logged as a run.';
REVOKE ALL ON FUNCTION mlpipe.run_pipeline(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.run_pipeline(text) TO mlpipe_admin;
GRANT EXECUTE ON FUNCTION mlpipe.run_pipeline(text) TO PUBLIC;

-- Where pg_cron can be called from here: raises 55000 with a HINT when it is
-- not preloaded, lives in another database, or is not created here.
-- SECURITY DEFINER because cron.database_name is a superuser-only setting
-- (it reveals only that database's name, in the HINT).
CREATE FUNCTION mlpipe_internal._cron_check(p_name text, p_cron text) RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cron_db text := coalesce(current_setting('cron.database_name', true), 'postgres');
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(string_to_array(current_setting('shared_preload_libraries'), ',')) l
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
                      format('In database %I run: SELECT cron.unschedule(%L);', cron_db, mlpipe_internal._cron_job_name(p_name))
                  ELSE
                      format('In database %I run: SELECT cron.schedule_in_database(%L, %L, %L, %L);',
                             cron_db, mlpipe_internal._cron_job_name(p_name), p_cron,
                             format('SELECT mlpipe.run_pipeline(%L)', p_name), current_database())
                  END;
    END IF;
    RAISE EXCEPTION 'pg_cron is preloaded but the extension is not created in database "%"', current_database()
        USING ERRCODE = '55000', HINT = 'Run CREATE EXTENSION pg_cron;';
END $$;
COMMENT ON FUNCTION mlpipe_internal._cron_check(text, text) IS
    'Raises 55000 with a HINT unless pg_cron can be called from this database.';
REVOKE ALL ON FUNCTION mlpipe_internal._cron_check(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._cron_check(text, text) TO mlpipe_admin;

-- The pg_cron job name of a pipeline: 'mlpipe:<name>' when that fits in a
-- name (63 bytes), else its first 50 bytes (whole characters), '~' and 12
-- hex digits of md5(name), so that long names sharing a prefix get distinct
-- jobs. The job's command holds the full name, and pipelines.cron_job_id
-- its id, so a job maps back to its pipeline.
CREATE FUNCTION mlpipe_internal._cron_job_name(p_name text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    full_name text := 'mlpipe:' OPERATOR(pg_catalog.||) p_name;
    head      text;
BEGIN
    IF pg_catalog.octet_length(full_name) OPERATOR(pg_catalog.<=) 63 THEN
        RETURN full_name;
    END IF;
    head := pg_catalog."left"(full_name, 50);
    WHILE pg_catalog.octet_length(head) OPERATOR(pg_catalog.>) 50 LOOP
        head := pg_catalog."left"(head, -1);
    END LOOP;
    RETURN head OPERATOR(pg_catalog.||) '~' OPERATOR(pg_catalog.||) pg_catalog."left"(pg_catalog.md5(p_name), 12);
END $$;
COMMENT ON FUNCTION mlpipe_internal._cron_job_name(text) IS
    'The pg_cron job name of a pipeline: mlpipe:<name>, or for a long name its prefix and an md5 suffix.';
REVOKE ALL ON FUNCTION mlpipe_internal._cron_job_name(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._cron_job_name(text) TO mlpipe_admin;

-- Removes every pg_cron job of a pipeline (its job name, or the job id the
-- pipeline row recorded, running exactly that pipeline's command) and
-- clears the recorded schedule. Returns whether there was a job.
-- SECURITY DEFINER (owned by the extension owner) because members of
-- mlpipe_admin have no access to schema cron, and a job another admin
-- scheduled belongs to that admin in pg_cron; it touches nothing but the
-- jobs of this pipeline.
CREATE FUNCTION mlpipe_internal._cron_unschedule(p_name text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    job   bigint;
    found_job boolean := false;
BEGIN
    PERFORM mlpipe_internal._cron_check(p_name, NULL);
    FOR job IN EXECUTE 'SELECT j.jobid FROM cron.job j WHERE (j.jobname OPERATOR(pg_catalog.=) $1 '
                       'OR j.jobid OPERATOR(pg_catalog.=) $2) AND j.command OPERATOR(pg_catalog.=) $3'
        USING mlpipe_internal._cron_job_name(p_name),
              (SELECT p.cron_job_id FROM mlpipe.pipelines p WHERE p.name = p_name),
              format('SELECT mlpipe.run_pipeline(%L)', p_name) LOOP
        EXECUTE 'SELECT cron.unschedule($1::bigint)' USING job;
        found_job := true;
    END LOOP;
    PERFORM mlpipe_internal._pipeline_set_schedule(p_name, NULL, NULL);
    RETURN found_job;
END $$;
COMMENT ON FUNCTION mlpipe_internal._cron_unschedule(text) IS
    'Removes the pg_cron jobs of a pipeline and clears its recorded schedule (for mlpipe_admin members).';
REVOKE ALL ON FUNCTION mlpipe_internal._cron_unschedule(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._cron_unschedule(text) TO mlpipe_admin;

-- Schedules a pipeline as a pg_cron job run by p_user (the role that called
-- schedule), replacing its earlier jobs, and records it. SECURITY DEFINER
-- for the same reason as _cron_unschedule; p_user must be a role the
-- session user may become (so nobody schedules as someone else) and a
-- member of mlpipe_admin.
CREATE FUNCTION mlpipe_internal._cron_schedule(p_name text, p_cron text, p_user name) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    job bigint;
    err text;
BEGIN
    IF p_user IS NULL OR NOT pg_has_role(session_user, p_user, 'MEMBER')
       OR NOT pg_has_role(p_user, 'mlpipe_admin', 'MEMBER') THEN
        RAISE EXCEPTION 'role "%" cannot schedule pipelines as role "%"', session_user, p_user
            USING ERRCODE = '42501', HINT = 'Call mlpipe.schedule as a member of mlpipe_admin.';
    END IF;
    PERFORM mlpipe_internal._cron_check(p_name, p_cron);
    PERFORM mlpipe_internal._cron_unschedule(p_name);
    BEGIN
        EXECUTE 'SELECT cron.schedule_in_database($1, $2, $3, $4, $5)' INTO job
          USING mlpipe_internal._cron_job_name(p_name), p_cron, format('SELECT mlpipe.run_pipeline(%L)', p_name),
                current_database()::text, p_user::text;
    EXCEPTION WHEN internal_error OR invalid_parameter_value THEN
        GET STACKED DIAGNOSTICS err = MESSAGE_TEXT;
        IF err LIKE '%can not log in%' OR err LIKE '%cannot log in%' THEN
            -- pg_cron runs a job by logging in as its role
            RAISE EXCEPTION 'pg_cron cannot run pipeline "%" as role "%": %', p_name, p_user, err
                USING ERRCODE = '42501', HINT = 'Schedule as a role with LOGIN (a member of mlpipe_admin).';
        END IF;
        RAISE EXCEPTION 'invalid cron schedule "%" for pipeline "%": %', p_cron, p_name, err
            USING ERRCODE = '22023', HINT = 'Five fields (minute hour day month weekday), e.g. ''0 21 * * *''.';
    END;
    PERFORM mlpipe_internal._pipeline_set_schedule(p_name, p_cron, job);
    RETURN job;
END $$;
COMMENT ON FUNCTION mlpipe_internal._cron_schedule(text, text, name) IS
    'Schedules run_pipeline(name) as a pg_cron job run by the given admin role (for mlpipe_admin members).';
REVOKE ALL ON FUNCTION mlpipe_internal._cron_schedule(text, text, name) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._cron_schedule(text, text, name) TO mlpipe_admin;

CREATE FUNCTION mlpipe_internal._pipeline_set_schedule(p_name text, p_cron text, p_job bigint) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    UPDATE mlpipe.pipelines SET schedule = p_cron, cron_job_id = p_job WHERE name = p_name
$$;
COMMENT ON FUNCTION mlpipe_internal._pipeline_set_schedule(text, text, bigint) IS
    'Records a pipeline''s cron schedule and pg_cron job id.';
REVOKE ALL ON FUNCTION mlpipe_internal._pipeline_set_schedule(text, text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._pipeline_set_schedule(text, text, bigint) TO mlpipe_admin;

-- Schedules a pipeline with pg_cron (job name: _cron_job_name) running
-- SELECT mlpipe.run_pipeline('<name>') as the calling role. Scheduling
-- again replaces the schedule. Returns pg_cron's job id.
CREATE FUNCTION mlpipe.schedule(name text, cron text) RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    p_name text := name;
    p_cron text := cron;
BEGIN
    -- Everyone may call it; who may is checked here, to name the role to
    -- grant (issue #12). What it calls stays granted to mlpipe_admin only.
    IF NOT pg_catalog.pg_has_role(current_user, 'mlpipe_admin', 'MEMBER') THEN
        RAISE EXCEPTION 'permission denied for function schedule' USING ERRCODE = '42501',
            HINT = pg_catalog.format('GRANT mlpipe_admin TO %I;', current_user);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM mlpipe.pipelines pl WHERE pl.name = p_name) THEN
        PERFORM mlpipe_internal._pipeline_unknown(p_name);
    END IF;
    IF p_cron IS NULL OR btrim(p_cron) = '' THEN
        RAISE EXCEPTION 'cron schedule is empty'
            USING ERRCODE = '22023', HINT = 'For example ''0 21 * * *'' (daily at 21:00) or ''* * * * *''.';
    END IF;
    RETURN mlpipe_internal._cron_schedule(p_name, p_cron, current_user);
END $$;
COMMENT ON FUNCTION mlpipe.schedule(text, text) IS
    'Schedules run_pipeline(name) as a pg_cron job (mlpipe:<name>, hash-suffixed when long), replacing an earlier one.';
REVOKE ALL ON FUNCTION mlpipe.schedule(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.schedule(text, text) TO mlpipe_admin;
GRANT EXECUTE ON FUNCTION mlpipe.schedule(text, text) TO PUBLIC;

-- Removes the pipeline's pg_cron job. Returns whether there was one.
CREATE FUNCTION mlpipe.unschedule(name text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    p_name text := name;
BEGIN
    -- Everyone may call it; who may is checked here, to name the role to
    -- grant (issue #12). What it calls stays granted to mlpipe_admin only.
    IF NOT pg_catalog.pg_has_role(current_user, 'mlpipe_admin', 'MEMBER') THEN
        RAISE EXCEPTION 'permission denied for function unschedule' USING ERRCODE = '42501',
            HINT = pg_catalog.format('GRANT mlpipe_admin TO %I;', current_user);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM mlpipe.pipelines pl WHERE pl.name = p_name) THEN
        PERFORM mlpipe_internal._pipeline_unknown(p_name);
    END IF;
    RETURN mlpipe_internal._cron_unschedule(p_name);
END $$;
COMMENT ON FUNCTION mlpipe.unschedule(text) IS 'Removes the pg_cron job of a pipeline.';
REVOKE ALL ON FUNCTION mlpipe.unschedule(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.unschedule(text) TO mlpipe_admin;
GRANT EXECUTE ON FUNCTION mlpipe.unschedule(text) TO PUBLIC;
