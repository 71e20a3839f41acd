-- mlpipe demo: the hive-sensor pipeline end to end on the UrBAN data
-- (7 hives in Montreal, temperature and humidity every 15 minutes, 2021),
-- loaded into schema beehive by scripts/load_beehive.sh. Run by `make demo`;
-- the pipeline config arrives as :'config' (docs/examples/hive.json).
\set ON_ERROR_STOP 1
\pset footer off
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS mlpipe;
RESET client_min_messages;
SET mlpipe.progress = off;

\echo
\echo '== 1. The pipeline: features per hive and day, k-means with a gate, predictions, evaluation, drift'
SELECT mlpipe.create_pipeline('hive', :'config') AS pipeline_version;
SELECT i - 1 AS step, s->>'kind' AS kind, s->>'name' AS name
  FROM mlpipe.pipelines p, jsonb_array_elements(p.config->'steps') WITH ORDINALITY AS e(s, i)
 WHERE p.name = 'hive' ORDER BY i;

\echo '== 2. Run it (each step in a subtransaction, each logged as a run)'
SELECT mlpipe.run_pipeline('hive') AS run_id \gset
SELECT r.run_id, r.kind, coalesce(r.algorithm, '') AS step_or_algorithm, r.model, r.version, r.status,
       r.rows, round(r.seconds::numeric, 3) AS seconds
  FROM mlpipe.runs r
 WHERE r.run_id = :run_id OR r.parent_run_id = :run_id
    OR r.parent_run_id IN (SELECT run_id FROM mlpipe.runs WHERE parent_run_id = :run_id)
 ORDER BY r.run_id;

\echo '== 3. Gated promotion: the gate, its verdict, where production points'
SELECT version, status, gate->'policy' AS gate, gate->>'reason' AS verdict
  FROM mlpipe.model_versions WHERE model = 'hive_states' ORDER BY version DESC LIMIT 3;
SELECT alias, version FROM mlpipe.aliases WHERE model = 'hive_states';

\echo '== 4. Metrics of the version just trained (also in mlpipe.metrics for dashboards)'
SELECT metric, round(value::numeric, 4) AS value
  FROM mlpipe.metrics
 WHERE run_id = (SELECT run_id FROM mlpipe.model_versions WHERE model = 'hive_states' ORDER BY version DESC LIMIT 1)
 ORDER BY metric;

\echo '== 5. Predictions: hive states per day in beehive.hive_states'
SELECT split_part(hive_day, '/', 1) AS hive,
       count(*) FILTER (WHERE prediction = 0) AS state_0, count(*) FILTER (WHERE prediction = 1) AS state_1,
       count(*) FILTER (WHERE prediction = 2) AS state_2, count(*) FILTER (WHERE prediction = 3) AS state_3
  FROM beehive.hive_states GROUP BY 1 ORDER BY 1;

\echo '== 6. Evaluate: cluster quality of the October days (mlpipe.evaluate, raw feature values)'
SELECT m.metric, round(m.value::numeric, 4) AS value
  FROM mlpipe.runs s JOIN mlpipe.runs r ON r.parent_run_id = s.run_id AND r.kind = 'evaluate'
  JOIN mlpipe.metrics m ON m.run_id = r.run_id
 WHERE s.parent_run_id = :run_id AND s.algorithm = 'evaluate'
 ORDER BY m.metric;

\echo '== 7. Drift: October against the training data (PSI per feature)'
SELECT e->>'feature' AS feature, round((e->>'psi')::numeric, 3) AS psi, e->>'status' AS status
  FROM mlpipe.runs r, jsonb_array_elements(r.params->'result') e
 WHERE r.parent_run_id = :run_id AND r.algorithm = 'drift'
 ORDER BY (e->>'psi')::float8 DESC;

\echo '== 8. A pg_cron schedule: every day at 21:00'
SELECT mlpipe.schedule('hive', '0 21 * * *') AS cron_job_id;
SELECT jobid, jobname, schedule, command FROM cron.job WHERE jobname = 'mlpipe:hive';

\echo
\echo 'Where to look:'
\echo '  SELECT * FROM beehive.hive_daily;            -- features per hive and day'
\echo '  SELECT * FROM beehive.hive_states;           -- predictions, one row per hive-day'
\echo '  SELECT * FROM mlpipe.runs ORDER BY run_id;   -- the pipeline run, its steps and their runs'
\echo '  SELECT * FROM mlpipe.metrics;                -- metrics, one row per run and metric'
\echo '  SELECT * FROM mlpipe.pipelines;  SELECT * FROM mlpipe.pipeline_versions;'
\echo '  SELECT mlpipe.model_info(''hive_states'');  SELECT * FROM cron.job_run_details;'
\echo '  SELECT mlpipe.unschedule(''hive'');          -- stop the daily run'
