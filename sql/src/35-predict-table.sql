--------------------------------------------------------------------------
-- 35-predict-table: predict_table, batch scoring of a source into a table,
-- and its helpers (the target's name, checks and key index, the scoring
-- SELECT, the write of a new target, the row a failed run stops at, the
-- drift warning, Citus targets). Split from 30-scoring (issue #13). See
-- docs/batch-scoring.md.
--------------------------------------------------------------------------

-- The (schema, table) of an "into" argument: 'table' or 'schema.table',
-- parsed as identifiers (quoted parts keep their case).
CREATE FUNCTION mlpipe_internal._parse_into(p_into text, OUT qualified text, OUT display text)
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    parts text[];
BEGIN
    BEGIN
        parts := parse_ident(p_into);
    EXCEPTION WHEN invalid_text_representation OR invalid_parameter_value THEN
        parts := NULL;
    END;
    IF parts IS NULL OR pg_catalog.cardinality(parts) NOT IN (1, 2) OR '' = ANY (parts) THEN
        RAISE EXCEPTION 'into "%" is not a table name', p_into
            USING ERRCODE = '22023', HINT = 'Use table or schema.table; quote names with capitals or spaces.';
    END IF;
    qualified := (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(p), '.' ORDER BY o) FROM pg_catalog.unnest(parts) WITH ORDINALITY u(p, o));
    display := pg_catalog.array_to_string(parts, '.');
END $$;
COMMENT ON FUNCTION mlpipe_internal._parse_into(text) IS
    'The qualified and display names of the into argument of predict_table.';
REVOKE ALL ON FUNCTION mlpipe_internal._parse_into(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._parse_into(text) TO mlpipe_trainer;

-- Checks an existing target table: the columns predict_table writes must
-- be there with the right types (22000 naming the mismatch). The index a
-- mode needs is _key_index's business.
CREATE FUNCTION mlpipe_internal._check_target(p_rel regclass, p_key text, p_key_type regtype)
RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    want   record;
    have   regtype;
BEGIN
    IF (SELECT relkind FROM pg_catalog.pg_class WHERE oid = p_rel) NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '% is not a table', p_rel USING ERRCODE = '22000';
    END IF;
    FOR want IN SELECT * FROM (VALUES (p_key, p_key_type), ('prediction', 'double precision'::regtype),
                                      ('label', 'text'::regtype), ('proba', 'double precision[]'::regtype),
                                      ('model', 'text'::regtype), ('version', 'integer'::regtype),
                                      ('scored_at', 'timestamp with time zone'::regtype)) w(col, typ) LOOP
        SELECT a.atttypid::regtype INTO have FROM pg_catalog.pg_attribute a
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
END $$;
COMMENT ON FUNCTION mlpipe_internal._check_target(regclass, text, regtype) IS
    'Checks that an existing predict_table target has the columns predict_table writes, with their types.';
REVOKE ALL ON FUNCTION mlpipe_internal._check_target(regclass, text, regtype) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._check_target(regclass, text, regtype) TO mlpipe_trainer;

-- The index on the key that predict_table's mode needs (issue #13): upsert
-- a unique index on the key column alone (ON CONFLICT needs it),
-- incremental an index led by the key (its NOT EXISTS probe); append and
-- replace none (building one costs about as much as writing the table).
-- Created when missing and the caller owns the target (a new target or an
-- existing one); an upsert target without one that cannot get it (not the
-- owner, duplicate keys, partitioned on another column) fails with 22000
-- naming the index to create.
-- incremental works without an index, so a non-owner goes on without.
CREATE FUNCTION mlpipe_internal._key_index(p_rel regclass, p_key text, p_mode text)
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    keynum int2;
    why    text := 'Only the table''s owner can create it.';
    msg    text;
BEGIN
    IF p_mode NOT IN ('upsert', 'incremental') THEN
        RETURN;
    END IF;
    SELECT a.attnum INTO keynum FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = p_rel AND a.attname = p_key AND a.attnum > 0 AND NOT a.attisdropped;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_index i
                WHERE i.indrelid = p_rel AND i.indisvalid AND i.indkey[0] = keynum AND i.indpred IS NULL
                  AND (p_mode = 'incremental' OR (i.indisunique AND i.indnatts = 1 AND i.indexprs IS NULL))) THEN
        RETURN;
    END IF;
    IF pg_catalog.pg_has_role((SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = p_rel), 'USAGE') THEN
        BEGIN
            EXECUTE pg_catalog.format('CREATE %sINDEX ON %s (%I)',
                                      CASE WHEN p_mode = 'upsert' THEN 'UNIQUE ' ELSE '' END, p_rel, p_key);
            RETURN;
        EXCEPTION WHEN unique_violation OR feature_not_supported THEN
            -- Duplicate keys (the detail names one), or a partitioned
            -- target whose partition key is not the key (the message).
            GET STACKED DIAGNOSTICS why = PG_EXCEPTION_DETAIL, msg = MESSAGE_TEXT;
            why := 'It cannot be created: ' OPERATOR(pg_catalog.||) CASE WHEN why OPERATOR(pg_catalog.<>) '' THEN why ELSE msg OPERATOR(pg_catalog.||) '.' END;
        END;
    ELSIF p_mode = 'incremental' THEN
        RETURN;
    END IF;
    RAISE EXCEPTION 'mode upsert needs a unique index on %(%)', p_rel, p_key
        USING ERRCODE = '22000', DETAIL = why, HINT = pg_catalog.format('CREATE UNIQUE INDEX ON %s (%I);', p_rel, p_key);
END $$;
COMMENT ON FUNCTION mlpipe_internal._key_index(regclass, text, text) IS
    'Creates the index on the key that predict_table''s mode needs (upsert: unique, incremental: plain) when missing.';
REVOKE ALL ON FUNCTION mlpipe_internal._key_index(regclass, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._key_index(regclass, text, text) TO mlpipe_trainer;

-- predict_table on Citus (issue #11): when the source is a hash-distributed
-- Citus table, a new target is created here as a distributed table on the
-- key, co-located with the source when the key is the source's
-- distribution column, so that predict_table's INSERT ... SELECT scores in
-- the shards and writes each shard's rows into the co-located target shard.
-- Returns the new target, or NULL (nothing created) when Citus is not
-- installed or the source is not a distributed table (a view or a query
-- source: predict_table then creates a plain table as before). Columns
-- and their order are those of the plain table predict_table creates.
-- Resolves the caller's source name, so no pinned search_path; everything
-- else is schema-qualified.
CREATE FUNCTION mlpipe_internal._citus_target(source text, target text, key text, key_type regtype, mode text)
RETURNS regclass
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    src_rel  regclass;
    dist_col text;
    tgt      regclass;
BEGIN
    IF pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NULL
       OR source OPERATOR(pg_catalog.~*) '^[\s(]*(select|with|values|table)\M' THEN
        RETURN NULL;
    END IF;
    src_rel := pg_catalog.to_regclass(source);
    IF src_rel IS NULL THEN
        RETURN NULL;
    END IF;
    EXECUTE 'SELECT pg_catalog.column_to_column_name(logicalrelid, partkey) FROM pg_catalog.pg_dist_partition '
            'WHERE logicalrelid OPERATOR(pg_catalog.=) $1 AND partmethod OPERATOR(pg_catalog.=) ''h'''
       INTO dist_col USING src_rel;
    IF dist_col IS NULL THEN
        RETURN NULL;
    END IF;
    EXECUTE pg_catalog.format('CREATE TABLE %s (%I %s, prediction double precision, label text, '
                              'proba double precision[], model text, version integer, scored_at timestamptz)',
                              target, key, key_type);
    tgt := pg_catalog.to_regclass(target);
    IF dist_col OPERATOR(pg_catalog.=) key THEN
        PERFORM pg_catalog.create_distributed_table(tgt, key, colocate_with => src_rel::text);
    ELSE
        PERFORM pg_catalog.create_distributed_table(tgt, key);
    END IF;
    IF mode IN ('upsert', 'incremental') THEN
        EXECUTE pg_catalog.format('CREATE %s INDEX ON %s (%I)', CASE WHEN mode = 'upsert' THEN 'UNIQUE' ELSE '' END, target, key);
    END IF;
    EXECUTE pg_catalog.format('GRANT SELECT ON %s TO mlpipe_reader', target);
    RETURN tgt;
END $$;
COMMENT ON FUNCTION mlpipe_internal._citus_target(text, text, text, regtype, text) IS
    'For predict_table on Citus: creates a new target distributed on the key, co-located with a distributed source; NULL otherwise.';
REVOKE ALL ON FUNCTION mlpipe_internal._citus_target(text, text, text, regtype, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._citus_target(text, text, text, regtype, text) TO mlpipe_trainer;

-- The WARNING predict_table raises when the source drifted: how many of
-- the profiled features drifted and the worst three by PSI (a feature that
-- drifted by its null rate alone shows the rates), with where to look next.
CREATE FUNCTION mlpipe_internal._warn_drift(p_model text, p_version int, p_drifted jsonb, p_count int, p_profiled int,
                                            p_threshold float8)
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    worst text;
BEGIN
    SELECT pg_catalog.string_agg(CASE WHEN (f.e->>'psi'::text)::float8 >= p_threshold
                    THEN pg_catalog.format('%s (PSI %s)', f.e->>'feature'::text,
                                           pg_catalog.round((f.e->>'psi'::text)::numeric, 3))
                    ELSE pg_catalog.format('%s (null rate %s -> %s)', f.e->>'feature'::text,
                                           pg_catalog.round((f.e->>'null_rate_train'::text)::numeric, 3),
                                           pg_catalog.round((f.e->>'null_rate_now'::text)::numeric, 3)) END,
                    ', ' ORDER BY (f.e->>'psi'::text)::float8 DESC NULLS LAST, f.e->>'feature'::text)
      INTO worst
      FROM (SELECT e FROM pg_catalog.jsonb_array_elements(p_drifted) e
             ORDER BY (e->>'psi'::text)::float8 DESC NULLS LAST, e->>'feature'::text LIMIT 3) f;
    RAISE WARNING 'predict_table %@%: % of % feature% drifted (PSI threshold %); worst: %',
        p_model, p_version, p_count, p_profiled, CASE WHEN p_profiled = 1 THEN '' ELSE 's' END, p_threshold, worst
        USING HINT = pg_catalog.format('See SELECT * FROM mlpipe.drift_history WHERE model = %L AND version = %s '
                                       'ORDER BY measured_at DESC; retrain on recent rows if the shift is real.',
                                       p_model, p_version);
END $$;
COMMENT ON FUNCTION mlpipe_internal._warn_drift(text, int, jsonb, int, int, float8) IS
    'Raises predict_table''s drift WARNING: the model@version, how many features drifted, the worst by PSI.';
REVOKE ALL ON FUNCTION mlpipe_internal._warn_drift(text, int, jsonb, int, int, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._warn_drift(text, int, jsonb, int, int, float8) TO mlpipe_trainer;

-- predict_table's params, checked: the drift threshold (default 0.2), the
-- null-rate threshold (0.1) and the drift sample size (20,000; 0: none).
CREATE FUNCTION mlpipe_internal._predict_table_params(params jsonb,
    OUT drift_threshold float8, OUT null_threshold float8, OUT drift_sample int)
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k text;
BEGIN
    IF pg_catalog.jsonb_typeof(params) <> 'object' THEN
        RAISE EXCEPTION 'params must be a JSON object' USING ERRCODE = '22023';
    END IF;
    FOR k IN SELECT pg_catalog.jsonb_object_keys(params) LOOP
        IF k NOT IN ('drift_threshold', 'null_threshold', 'drift_sample') THEN
            RAISE EXCEPTION 'unknown key "%" in predict_table params', k
                USING ERRCODE = '22023', HINT = 'Allowed keys: drift_threshold, null_threshold, drift_sample.';
        END IF;
        IF pg_catalog.jsonb_typeof(params->k) <> 'number' OR (params->>k)::float8 < 0::float8
           OR (k <> 'drift_sample' AND (params->>k)::float8 = 0::float8)
           OR (k = 'drift_sample' AND (params->>k)::numeric NOT BETWEEN 0::numeric AND 10000000::numeric) THEN
            RAISE EXCEPTION 'predict_table params.% must be a positive number (drift_sample: an integer, 0 for no drift)', k
                USING ERRCODE = '22023';
        END IF;
    END LOOP;
    drift_threshold := coalesce((params->>'drift_threshold')::float8, 0.2);
    null_threshold := coalesce((params->>'null_threshold')::float8, 0.1);
    drift_sample := coalesce((params->>'drift_sample')::numeric::int, 20000);
END $$;
COMMENT ON FUNCTION mlpipe_internal._predict_table_params(jsonb) IS
    'Checks predict_table''s params and returns the drift threshold, null-rate threshold and drift sample size.';
REVOKE ALL ON FUNCTION mlpipe_internal._predict_table_params(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._predict_table_params(jsonb) TO mlpipe_trainer;

-- The inputs a NULL in which fails scoring (src/pg/export.c): every input
-- of a k-means model unless preprocessing imputes it, and inputs whose
-- preprocessing has impute = error. Trees route missing values.
CREATE FUNCTION mlpipe_internal._null_intolerant_inputs(model bytea) RETURNS text[]
AS 'MODULE_PATHNAME', 'mlpipe_null_intolerant_inputs'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._null_intolerant_inputs(bytea) IS
    'The raw inputs of a model (columns, x[i] elements) in which a NULL makes scoring fail.';
REVOKE ALL ON FUNCTION mlpipe_internal._null_intolerant_inputs(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._null_intolerant_inputs(bytea) TO mlpipe_trainer;

-- The SQL condition, over the alias src, that a row has a NULL in one of
-- p_inputs (column names, or x[i] for an element of array column x);
-- p_columns maps the source's columns to their type class. NULL when no
-- input is a column or element of the source (nothing can be NULL).
CREATE FUNCTION mlpipe_internal._null_condition(p_inputs text[], p_columns jsonb) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT pg_catalog.string_agg(CASE
               WHEN p_columns ? i THEN pg_catalog.format('src.%I IS NULL', i)
               ELSE pg_catalog.format('(src.%1$I)[%2$s] IS NULL', m[1], m[2]) END, ' OR ' ORDER BY o)
      FROM pg_catalog.unnest(p_inputs) WITH ORDINALITY u(i, o)
           LEFT JOIN LATERAL pg_catalog.regexp_match(i, '^(.*)\[([0-9]{1,6})\]$') m ON true
     WHERE p_columns ? i OR p_columns->>m[1] = 'array'
$$;
COMMENT ON FUNCTION mlpipe_internal._null_condition(text[], jsonb) IS
    'The SQL condition, over the alias src, that a row has a NULL in one of the given inputs.';
REVOKE ALL ON FUNCTION mlpipe_internal._null_condition(text[], jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._null_condition(text[], jsonb) TO mlpipe_trainer;

-- The first row predict_table's scoring fails on, and its error: the rows
-- of the source (FROM and WHERE clause p_from, alias src) are scored one at
-- a time, the float8[] form when p_xexpr is an array expression, else the
-- row form. bad_key is the row's key as text, err_* its error; NULL when
-- every row scores (the error was not a row's). Only run after the bulk
-- statement failed.
CREATE FUNCTION mlpipe_internal._failing_key(p_ref text, p_key text, p_xexpr text, p_from text,
                                    OUT bad_key text, OUT err_state text, OUT err_message text,
                                    OUT err_detail text, OUT err_hint text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    r       record;
    k       text;
    x       float8[];
    scoring boolean := false;
BEGIN
    IF p_xexpr OPERATOR(pg_catalog.=) 'src.*' THEN
        FOR r IN EXECUTE pg_catalog.format('SELECT src.*, (src.%I)::text AS mlpipe_key %s', p_key, p_from) LOOP
            k := r.mlpipe_key;
            scoring := true;
            PERFORM mlpipe.predict(p_ref, r);
            scoring := false;
        END LOOP;
    ELSE
        FOR k, x IN EXECUTE pg_catalog.format('SELECT (src.%I)::text, %s %s', p_key, p_xexpr, p_from) LOOP
            scoring := true;
            PERFORM mlpipe.predict(p_ref, x);
            scoring := false;
        END LOOP;
    END IF;
EXCEPTION WHEN OTHERS THEN
    -- Variables keep their values in the handler: k is the row being
    -- scored (not set when the source query itself failed).
    IF scoring THEN
        bad_key := coalesce(k, 'NULL');
        GET STACKED DIAGNOSTICS err_state = RETURNED_SQLSTATE, err_message = MESSAGE_TEXT,
                                err_detail = PG_EXCEPTION_DETAIL, err_hint = PG_EXCEPTION_HINT;
    END IF;
END $$;
COMMENT ON FUNCTION mlpipe_internal._failing_key(text, text, text, text) IS
    'The key (as text) and error of the first source row that predict_table cannot score; NULL key if every row scores.';
REVOKE ALL ON FUNCTION mlpipe_internal._failing_key(text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._failing_key(text, text, text, text) TO mlpipe_trainer;

-- predict_table's write into a new table (issue #13, src/pg/predict_fill.c):
-- runs the scoring query as the caller and writes its rows into target, a
-- plain table just created by CREATE TABLE AS ... WITH NO DATA, a page at
-- a time as COPY does (CREATE TABLE AS writes a row at a time). The rows
-- written.
CREATE FUNCTION mlpipe_internal._fill_table(target regclass, query text) RETURNS bigint
AS 'MODULE_PATHNAME', 'mlpipe_fill_table'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION mlpipe_internal._fill_table(regclass, text) IS
    'Writes the rows of a query into a table created in this transaction (predict_table''s new target), a page at a time.';
REVOKE ALL ON FUNCTION mlpipe_internal._fill_table(regclass, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._fill_table(regclass, text) TO mlpipe_trainer;

-- The parts of predict_table's scoring SELECT: head (key, prediction and,
-- for a classifier, label and proba), consts (label and proba NULL for
-- other models) and the FROM clause over p_src_sql AS src with p_filter.
-- A classifier is scored once per row: the float8[] form through the
-- _score_* functions, whose calls for one row share an evaluation (the
-- whole projection stays in the parallel workers); the row form with
-- predict and predict_proba in a subquery (OFFSET 0 keeps the planner from
-- pulling it up, which would copy predict into the label column).
-- p_null_if: a condition on src under which the row's prediction, label
-- and proba are NULL instead of scored (on_null = 'null').
CREATE FUNCTION mlpipe_internal._predict_select(p_task text, p_ref text, p_classes text[], p_key text, p_xexpr text,
                                       p_src_sql text, p_filter text, p_null_if text,
                                       OUT head text, OUT from_sql text, OUT consts text)
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g text := CASE WHEN p_null_if IS NOT NULL THEN pg_catalog.format('CASE WHEN %s THEN NULL ELSE ', p_null_if) ELSE '' END;
    e text := CASE WHEN p_null_if IS NOT NULL THEN ' END' ELSE '' END;
BEGIN
    consts := '';
    from_sql := pg_catalog.format(' FROM %s AS src%s', p_src_sql, p_filter);
    IF p_task OPERATOR(pg_catalog.<>) 'classification' THEN
        head := pg_catalog.format('SELECT src.%1$I, %4$smlpipe.predict(%2$L, %3$s)%5$s AS prediction', p_key, p_ref, p_xexpr, g, e);
        consts := ', NULL::text AS label, NULL::float8[] AS proba';
    ELSIF p_xexpr OPERATOR(pg_catalog.<>) 'src.*' THEN
        head := pg_catalog.format('SELECT src.%1$I, %4$smlpipe_internal._score_class(%2$L, %3$s)%5$s AS prediction, '
                       '%4$smlpipe_internal._score_label(%2$L, %3$s)%5$s AS label, %4$smlpipe_internal._score_proba(%2$L, %3$s)%5$s AS proba',
                       p_key, p_ref, p_xexpr, g, e);
    ELSE
        head := pg_catalog.format('SELECT mlpipe_s.%1$I, mlpipe_s.mlpipe_p AS prediction, '
                       '(%2$L::text[])[mlpipe_s.mlpipe_p::int + 1] AS label, mlpipe_s.mlpipe_pb AS proba',
                       p_key, p_classes);
        from_sql := pg_catalog.format(' FROM (SELECT src.%1$I, %5$smlpipe.predict(%2$L, src.*)%6$s AS mlpipe_p, '
                           '%5$smlpipe.predict_proba(%2$L, src.*)%6$s AS mlpipe_pb '
                           'FROM %3$s AS src%4$s OFFSET 0) AS mlpipe_s',
                           p_key, p_ref, p_src_sql, p_filter, g, e);
    END IF;
END $$;
COMMENT ON FUNCTION mlpipe_internal._predict_select(text, text, text[], text, text, text, text, text) IS
    'The SELECT list and FROM clause of predict_table''s scoring statement.';
REVOKE ALL ON FUNCTION mlpipe_internal._predict_select(text, text, text[], text, text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._predict_select(text, text, text[], text, text, text, text, text) TO mlpipe_trainer;

-- Scores every row of a source into a table: (key, prediction, label,
-- proba, model, version, scored_at). One INSERT ... SELECT streams the
-- source through the executor (nothing is materialised); a new target is
-- written with CREATE TABLE AS (indexed on the key in modes upsert and
-- incremental only: _key_index). Logs a run with
-- rows, seconds and drift figures, and sends predictions_written (and
-- drift_detected). Runs as the caller: the source and the target are read
-- and written with the caller's privileges. The target is named by
-- target_table, or by "into" (positional calls; a reserved word, so named
-- calls would have to quote it). on_null: what a row with a NULL the model
-- cannot take gets: an error naming its key (error), left out (skip), or
-- a NULL prediction (null). Errors come out with their own SQLSTATE,
-- message, detail and hint, without the generated SQL as context, and name
-- the key of the row they are about.
CREATE FUNCTION mlpipe.predict_table(model_ref text, source text, "into" text DEFAULT NULL, key text DEFAULT NULL,
                                     mode text DEFAULT 'append', params jsonb DEFAULT '{}',
                                     on_null text DEFAULT 'error', target_table text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    started    timestamptz := pg_catalog.clock_timestamp();
    info       record;
    ref        text;
    tgt        record;
    rel        regclass;
    key_type   regtype;
    cols       jsonb;
    src_sql    text;
    head       text;
    consts     text;
    from_sql   text;
    old_par    text[];
    xexpr      text;
    conds      text[] := '{}';
    filt       text := '';
    scored_from text;
    nullc      text;
    n          bigint;
    skipped    bigint := 0;
    k          text;
    threshold  float8;
    null_thr   float8;
    sample     int;
    metrics    jsonb := '{}';
    drifted    jsonb := '[]';
    d          record;
    bad        record;
    run        bigint;
    e_state    text;
    e_msg      text;
    e_detail   text;
    e_hint     text;
    scoring    boolean := false;
BEGIN
    -- Everyone may call it; who may is checked here, to name the role to
    -- grant (issue #12). What it calls stays granted to mlpipe_trainer only.
    IF NOT pg_catalog.pg_has_role(current_user, 'mlpipe_trainer', 'MEMBER') THEN
        RAISE EXCEPTION 'permission denied for function predict_table' USING ERRCODE = '42501',
            HINT = pg_catalog.format('GRANT mlpipe_trainer TO %I;', current_user);
    END IF;
    IF model_ref IS NULL OR source IS NULL THEN
        RAISE EXCEPTION 'model_ref and source must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF "into" IS NULL AND target_table IS NULL THEN
        RAISE EXCEPTION 'predict_table needs a target table'
            USING ERRCODE = '22023', HINT = 'Name it with target_table => ''scores'' (or as the third argument).';
    END IF;
    IF "into" IS NOT NULL AND target_table IS NOT NULL THEN
        RAISE EXCEPTION '"into" and target_table both name a target table'
            USING ERRCODE = '22023', HINT = 'Pass one of them: target_table in named calls, the third argument in positional ones.';
    END IF;
    IF key IS NULL THEN
        RAISE EXCEPTION 'key must not be NULL' USING ERRCODE = '22004',
            HINT = 'Name the source column that identifies a row, e.g. key => ''id''.';
    END IF;
    IF mode IS NULL OR mode NOT IN ('append', 'replace', 'upsert', 'incremental') THEN
        RAISE EXCEPTION 'unknown mode %', coalesce(pg_catalog.quote_literal(mode), 'NULL')
            USING ERRCODE = '22023', HINT = 'Modes: append, replace, upsert, incremental.';
    END IF;
    IF on_null IS NULL OR on_null NOT IN ('error', 'skip', 'null') THEN
        RAISE EXCEPTION 'unknown on_null %', coalesce(pg_catalog.quote_literal(on_null), 'NULL')
            USING ERRCODE = '22023', HINT = 'on_null: error (the default), skip or null.';
    END IF;
    params := coalesce(params, '{}');
    SELECT * INTO threshold, null_thr, sample FROM mlpipe_internal._predict_table_params(params);

    SELECT * INTO info FROM mlpipe_internal._scoring_info(model_ref);
    ref := info.model OPERATOR(pg_catalog.||) '@' OPERATOR(pg_catalog.||) info.version;          -- one version for the whole run
    SELECT s.type INTO key_type FROM mlpipe_internal._source_columns(source) s WHERE s.name = key;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'key column "%" is not in the source', key
            USING ERRCODE = '42703',
                  HINT = 'Columns: ' OPERATOR(pg_catalog.||) (SELECT pg_catalog.string_agg(s.name, ', ' ORDER BY s.ord) FROM mlpipe_internal._source_columns(source) s) OPERATOR(pg_catalog.||) '.';
    END IF;
    IF key IN ('prediction', 'label', 'proba', 'model', 'version', 'scored_at') THEN
        RAISE EXCEPTION 'key column "%" has the name of an output column', key
            USING ERRCODE = '22023', HINT = 'Rename it in a query source, e.g. SELECT model AS model_key, ...';
    END IF;
    src_sql := mlpipe_internal._source_sql(source);
    -- A relation source is read as itself, not as a subquery: on Citus the
    -- whole row of a subquery reaches the shards without its column names
    -- (the row form refuses it), a table's whole row keeps its type.
    IF src_sql LIKE 'SELECT * FROM %' AND source !~* '^[[:space:](]*(select|with|values|table)([[:space:](]|$)' THEN
        src_sql := pg_catalog.substr(src_sql, 15);
    ELSE
        src_sql := '(' || src_sql || ')';
    END IF;
    SELECT * INTO tgt FROM mlpipe_internal._parse_into(coalesce(target_table, "into"));
    -- Runs into one target serialise (issue #10): two concurrent replace or
    -- incremental runs would each insert every key, and with a unique index
    -- the second would fail with a raw 23505. The lock is on the target's
    -- schema-qualified name (the schema it would be created in when it does
    -- not exist yet) and lasts until the transaction ends; every statement
    -- below takes its snapshot after it (READ COMMITTED), so the second run
    -- sees the first one's rows.
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext(
        'mlpipe.predict_table ' OPERATOR(pg_catalog.||) coalesce(
            (SELECT pg_catalog.format('%I.%I', n.nspname, c.relname)
               FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
              WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(tgt.qualified)),
            CASE WHEN pg_catalog.cardinality(pg_catalog.parse_ident(tgt.qualified)) OPERATOR(pg_catalog.=) 1
                 THEN pg_catalog.format('%I.%s', pg_catalog.current_schema(), tgt.qualified)
                 ELSE tgt.qualified END)));
    rel := pg_catalog.to_regclass(tgt.qualified);

    IF rel IS NOT NULL THEN
        PERFORM mlpipe_internal._check_target(rel, key, key_type);
        PERFORM mlpipe_internal._key_index(rel, key, mode);
        IF mode = 'incremental' THEN
            conds := conds OPERATOR(pg_catalog.||) pg_catalog.format('NOT EXISTS (SELECT 1 FROM %s AS t WHERE t.%I = src.%I AND t.model = %L AND t.version = %s)',
                           tgt.qualified, key, key, info.model, info.version);
        END IF;
    END IF;
    -- on_null skip or null: the condition that a row has a NULL the model
    -- cannot take; skip leaves such rows out (and counts them below).
    IF on_null <> 'error' THEN
        SELECT pg_catalog.jsonb_object_agg(s.name, mlpipe_internal._type_class(s.type)) INTO cols FROM mlpipe_internal._source_columns(source) s;
        nullc := mlpipe_internal._null_condition(mlpipe_internal._null_intolerant_inputs(mlpipe.artifact(ref)), cols);
    END IF;
    IF on_null = 'skip' AND nullc IS NOT NULL THEN
        EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FROM %s AS src WHERE %s', src_sql,
                                  pg_catalog.array_to_string(conds OPERATOR(pg_catalog.||) pg_catalog.format('(%s)', nullc), ' AND '))
            INTO skipped;
        conds := conds OPERATOR(pg_catalog.||) pg_catalog.format('NOT (%s)', nullc);
    END IF;
    IF pg_catalog.cardinality(conds) > 0 THEN
        filt := ' WHERE ' OPERATOR(pg_catalog.||) pg_catalog.array_to_string(conds, ' AND ');
    END IF;
    -- The rows a failed scoring statement is searched in for its bad row:
    -- those it scored (on_null = 'null': not the rows it wrote as NULL).
    IF on_null = 'null' AND nullc IS NOT NULL THEN
        conds := conds OPERATOR(pg_catalog.||) pg_catalog.format('NOT (%s)', nullc);
    END IF;
    scored_from := pg_catalog.format('FROM %s AS src', src_sql) OPERATOR(pg_catalog.||) CASE WHEN pg_catalog.cardinality(conds) > 0
        THEN ' WHERE ' OPERATOR(pg_catalog.||) pg_catalog.array_to_string(conds, ' AND ') ELSE '' END;
    -- Rows are scored with the row form of predict (columns matched by name,
    -- stored preprocessing applied), or, for a model without preprocessing
    -- whose features are numeric columns of the source, with the float8[]
    -- form, which gives the same predictions without building a row value.
    -- prediction: the value, cluster or class index; label and proba for
    -- classification only.
    IF NOT mlpipe_internal._has_preprocessing(mlpipe.artifact(ref)) THEN
        xexpr := mlpipe_internal._feature_array_expr(info.features, source);
    END IF;
    -- src.*, not a bare src, which a source column named src would capture.
    xexpr := coalesce(xexpr, 'src.*');
    -- The SELECT: head (per-row columns), consts (the same on every row:
    -- a new table gets them as added columns, below) and FROM.
    SELECT * INTO head, from_sql, consts FROM mlpipe_internal._predict_select(info.task, ref, info.classes, key, xexpr, src_sql, filt,
                                                                     CASE WHEN on_null = 'null' THEN nullc END);
    consts := consts OPERATOR(pg_catalog.||) pg_catalog.format(', %L::text AS model, %s::int AS version, pg_catalog.now() AS scored_at',
                               info.model, info.version);
    -- Ensembles cost microseconds a row to score: for the scoring statement,
    -- make a parallel scan of the source attractive so that CREATE TABLE AS
    -- scores in at most mlpipe.threads parallel workers (more than the CPUs
    -- only add their start-up). A single tree or k-means scores faster
    -- than a worker hands rows back, so the caller's settings stay.
    old_par := ARRAY[pg_catalog.current_setting('parallel_tuple_cost'), pg_catalog.current_setting('parallel_setup_cost'), pg_catalog.current_setting('max_parallel_workers_per_gather')];
    IF info.algorithm IN ('gbt', 'random_forest') THEN
        PERFORM pg_catalog.set_config('parallel_tuple_cost', '0.001', true), pg_catalog.set_config('parallel_setup_cost', '10', true),
                pg_catalog.set_config('max_parallel_workers_per_gather', LEAST(old_par[3]::int, coalesce(pg_catalog.current_setting('mlpipe.threads', true)::int, old_par[3]::int))::text, true);
    END IF;

    -- On Citus, a new target for a distributed source is created
    -- distributed and co-located, then filled by the INSERT below.
    IF rel IS NULL THEN
        rel := mlpipe_internal._citus_target(source, tgt.qualified, key, key_type, mode);
    END IF;
    -- The scoring statement (a data error in it names the failing row's
    -- key: see the handler at the end).
    scoring := true;
    IF rel IS NULL THEN
        -- A new table: the per-row columns only (CREATE TABLE AS, WITH NO DATA), filled a
        -- page at a time by _fill_table; model, version and scored_at are the same on every
        -- row, so they are added afterwards with that value as default,
        -- which PostgreSQL stores once in the catalog instead of in each row
        -- (no rewrite; readers see the value on every row). Key index: below.
        EXECUTE pg_catalog.format('CREATE TABLE %s AS %s%s WITH NO DATA', tgt.qualified, head, from_sql);
        n := mlpipe_internal._fill_table(pg_catalog.to_regclass(tgt.qualified), head OPERATOR(pg_catalog.||) from_sql);
        scoring := false;
        PERFORM pg_catalog.set_config('parallel_tuple_cost', old_par[1], true), pg_catalog.set_config('parallel_setup_cost', old_par[2], true), pg_catalog.set_config('max_parallel_workers_per_gather', old_par[3], true);
        EXECUTE pg_catalog.format('ALTER TABLE %s %s ADD COLUMN model text DEFAULT %L, ADD COLUMN version integer DEFAULT %s, '
                       'ADD COLUMN scored_at timestamptz DEFAULT pg_catalog.now()', tgt.qualified,
                       CASE WHEN info.task = 'classification' THEN ''
                            ELSE 'ADD COLUMN label text, ADD COLUMN proba double precision[],' END,
                       info.model, info.version);
        EXECUTE pg_catalog.format('ALTER TABLE %s ALTER COLUMN model DROP DEFAULT, ALTER COLUMN version DROP DEFAULT',
                       tgt.qualified);
        PERFORM mlpipe_internal._key_index(pg_catalog.to_regclass(tgt.qualified), key, mode);
        -- Readers read prediction tables (docs/security.md).
        EXECUTE pg_catalog.format('GRANT SELECT ON %s TO mlpipe_reader', tgt.qualified);
    ELSE
        IF mode = 'replace' THEN
            EXECUTE pg_catalog.format('DELETE FROM %s', tgt.qualified);
        END IF;
        EXECUTE pg_catalog.format('INSERT INTO %s (%I, prediction, label, proba, model, version, scored_at) %s%s%s%s',
                       tgt.qualified, key, head, consts, from_sql,
                       CASE WHEN mode = 'upsert' THEN pg_catalog.format(
                           ' ON CONFLICT (%I) DO UPDATE SET prediction = EXCLUDED.prediction, label = EXCLUDED.label, '
                           'proba = EXCLUDED.proba, model = EXCLUDED.model, version = EXCLUDED.version, '
                           'scored_at = EXCLUDED.scored_at', key) ELSE '' END);
        GET DIAGNOSTICS n = ROW_COUNT;
        scoring := false;
        PERFORM pg_catalog.set_config('parallel_tuple_cost', old_par[1], true), pg_catalog.set_config('parallel_setup_cost', old_par[2], true), pg_catalog.set_config('max_parallel_workers_per_gather', old_par[3], true);
    END IF;
    IF skipped > 0 THEN
        RAISE NOTICE 'predict_table %: left out % source row% with a NULL the model cannot take (on_null = skip)',
            ref, skipped, CASE WHEN skipped = 1 THEN '' ELSE 's' END;
    END IF;

    -- Drift of the source against the training profile, on a sample.
    IF info.profile IS NOT NULL AND sample > 0 AND n > 0 THEN
        FOR d IN SELECT * FROM mlpipe_internal._drift_figures(info.profile, source,
                     CASE WHEN n <= sample THEN 1 ELSE sample::float8 / n::float8 END) LOOP
            metrics := metrics OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('psi:' OPERATOR(pg_catalog.||) d.feature, d.psi,
                                                     'null_rate:' OPERATOR(pg_catalog.||) d.feature, d.null_rate_now);
            IF mlpipe_internal._drift_status(d.psi, d.null_rate_train, d.null_rate_now, threshold, null_thr) = 'drift' THEN
                drifted := drifted OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('feature', d.feature, 'psi', d.psi,
                                                         'null_rate_train', d.null_rate_train,
                                                         'null_rate_now', d.null_rate_now);
            END IF;
        END LOOP;
        metrics := metrics OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('drifted_features', pg_catalog.jsonb_array_length(drifted));
    END IF;
    metrics := metrics OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('rows_per_second',
        n::float8 / greatest(extract(epoch FROM pg_catalog.clock_timestamp() - started)::float8, 1e-6));
    IF skipped > 0 THEN
        metrics := metrics OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('skipped_rows', skipped);
    END IF;
    run := mlpipe_internal._log_run('predict_table', info.model, info.version, info.algorithm, source,
        pg_catalog.jsonb_build_object('model_ref', model_ref, 'into', tgt.display, 'key', key, 'mode', mode, 'params', params,
                                      'on_null', on_null),
        'succeeded', NULL, n, started, NULL, metrics, 'scoring');
    PERFORM mlpipe_internal._notify('predictions_written', pg_catalog.jsonb_build_object('model', info.model, 'version', info.version,
        'run_id', run, 'rows', n, 'into', tgt.display));
    IF pg_catalog.jsonb_array_length(drifted) > 0 THEN
        PERFORM mlpipe_internal._notify('drift_detected', pg_catalog.jsonb_build_object('model', info.model, 'version', info.version,
            'run_id', run, 'rows', n, 'into', tgt.display, 'threshold', threshold, 'features', drifted));
        -- Also said to the caller, who may not be listening (issue #12).
        PERFORM mlpipe_internal._warn_drift(info.model, info.version, drifted, pg_catalog.jsonb_array_length(drifted),
            (SELECT pg_catalog.count(*)::int FROM pg_catalog.jsonb_object_keys(metrics) m(k) WHERE m.k LIKE 'psi:%'),
            threshold);
    END IF;
    RETURN n;
EXCEPTION WHEN OTHERS THEN
    -- The error as the caller should read it: its SQLSTATE, message, detail
    -- and hint, with this line as the only context (not the nested calls
    -- and generated statements it came through).
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_msg = MESSAGE_TEXT, e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
    -- A data error of the scoring statement: find the row, name its key
    -- (not for the row form's errors about the source's columns, which
    -- every row has).
    IF scoring AND e_state LIKE '22%' AND e_msg NOT LIKE 'the row has no column%'
       AND e_msg NOT LIKE 'column "%" has type %, but the model takes it as %' THEN
        -- The row's own error is reported (a source with several bad rows
        -- may fail the bulk statement on another one first).
        SELECT * INTO bad FROM mlpipe_internal._failing_key(ref, key, xexpr, scored_from);
        IF bad.bad_key IS NOT NULL THEN
            e_state := bad.err_state;
            e_detail := bad.err_detail;
            e_hint := bad.err_hint;
            e_msg := bad.err_message OPERATOR(pg_catalog.||) pg_catalog.format(
                CASE WHEN bad.err_message LIKE '%is NULL' THEN ' in the row with %s = %s' ELSE ' (in the row with %s = %s)' END,
                key, bad.bad_key);
        END IF;
        IF e_msg LIKE '%is NULL%' THEN
            e_hint := 'Pass on_null => ''skip'' (leave such rows out) or ''null'' (write a NULL prediction), '
                      'or impute the value (params.preprocess when training).';
        END IF;
    END IF;
    IF e_detail = '' AND e_hint = '' THEN
        RAISE EXCEPTION USING ERRCODE = e_state, MESSAGE = e_msg;
    ELSIF e_detail = '' THEN
        RAISE EXCEPTION USING ERRCODE = e_state, MESSAGE = e_msg, HINT = e_hint;
    ELSIF e_hint = '' THEN
        RAISE EXCEPTION USING ERRCODE = e_state, MESSAGE = e_msg, DETAIL = e_detail;
    END IF;
    RAISE EXCEPTION USING ERRCODE = e_state, MESSAGE = e_msg, DETAIL = e_detail, HINT = e_hint;
END $$;
COMMENT ON FUNCTION mlpipe.predict_table(text, text, text, text, text, jsonb, text, text) IS
    'Scores every row of a source into a table (append, replace, upsert or incremental mode); target_table names the table.';
REVOKE ALL ON FUNCTION mlpipe.predict_table(text, text, text, text, text, jsonb, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.predict_table(text, text, text, text, text, jsonb, text, text) TO mlpipe_trainer;
GRANT EXECUTE ON FUNCTION mlpipe.predict_table(text, text, text, text, text, jsonb, text, text) TO PUBLIC;
