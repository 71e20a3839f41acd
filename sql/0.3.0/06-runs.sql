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
