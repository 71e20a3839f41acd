-- Issue #12 (helper R): a user's first hour. Each block failed before its fix.
SET client_min_messages = notice;
SET mlpipe.progress = off;

-- 1. The as_of_column is left out of the features, as a time: split column is.
CREATE TABLE tt_customers AS
SELECT i AS id, 18 + i % 60 AS age, (i * 7) % 48 AS tenure,
       CASE WHEN (i * 7) % 48 < 6 OR i % 11 = 0 THEN 'yes' ELSE 'no' END AS churned,
       timestamptz '2024-03-01 00:00:00+00' + i * interval '1 minute' AS updated_at
  FROM generate_series(1, 600) i;
SELECT version FROM mlpipe.train('tt_churn', 'decision_tree', 'tt_customers', 'churned', NULL,
    '{"as_of": "2024-03-01 05:00:00+00", "as_of_column": "updated_at", "exclude": ["id"], "seed": 1}');
SELECT features, params->'exclude' AS stored_exclude
  FROM mlpipe.model_versions WHERE model = 'tt_churn';

-- 2. A features step (every stat) then k-means without on_null: kurtosis is
-- NULL for a group with fewer than 4 readings; the pipeline's k-means step
-- skips such rows and says how many.
CREATE SCHEMA fh_work;
CREATE TABLE fh_sensor AS
SELECT 'h' || (i % 6) AS hive, timestamptz '2024-01-01' + i * interval '7 minutes' AS ts,
       20 + (i % 13) * 0.5 + (i % 6) AS temperature
  FROM generate_series(1, 900) i
 WHERE i % 6 <> 5 OR i < 20;       -- hive h5 has 3 readings: kurtosis NULL
SELECT mlpipe.create_pipeline('fh_nightly', '{"steps": [
  {"kind": "features", "source": "fh_sensor", "group_by": ["hive"], "ts": "ts",
   "values": ["temperature"], "into": "fh_work.daily"},
  {"kind": "train", "model": "fh_devices", "algorithm": "kmeans", "source": "fh_work.daily",
   "params": {"k": 2, "seed": 1, "exclude": ["hive"]}},
  {"kind": "predict", "model": "fh_devices", "source": "fh_work.daily", "into": "fh_work.states",
   "key": "hive", "mode": "replace"}]}') IS NOT NULL AS created;
SELECT mlpipe.run_pipeline('fh_nightly') AS run_id \gset
SELECT kind, algorithm, status FROM mlpipe.runs WHERE :run_id IN (run_id, parent_run_id) ORDER BY run_id;
SELECT training_rows, skipped_rows, params ? 'on_null' AS stored_on_null FROM mlpipe.model_versions WHERE model = 'fh_devices';
SELECT count(*) AS scored FROM fh_work.states;

-- 3. The registry tells one story.
-- promote with a passing gate records it (training's gate had failed).
CREATE TABLE fh_pts AS
SELECT i, (i % 3) * 10 + (i % 7) * 0.1 AS x, (i % 3) * 10 + (i % 5) * 0.1 AS y
  FROM generate_series(1, 300) i;
SELECT version, promoted FROM mlpipe.train('fh_km', 'kmeans', 'fh_pts', NULL, '{x,y}', '{"k": 3, "seed": 1}',
    '{"metric": "silhouette", "min": 2}');
SELECT status, gate->>'passed' AS passed FROM mlpipe.model_versions WHERE model = 'fh_km';
SELECT mlpipe.promote('fh_km', 1, gate => '{"metric": "silhouette", "min": 0.5}');
SELECT status, gate->>'passed' AS passed, gate->>'alias' AS alias, gate->>'reason' AS reason
  FROM mlpipe.model_versions WHERE model = 'fh_km';
SELECT action, to_version, reason ~ '^gate passed: silhouette = 0\.9' AS reason_names_gate
  FROM mlpipe.alias_events WHERE model = 'fh_km' ORDER BY event_id;
-- After promotions and a rollback, status agrees with the production alias.
SELECT version FROM mlpipe.train('fh_km', 'kmeans', 'fh_pts', NULL, '{x,y}', '{"k": 3, "seed": 2}');
SELECT version FROM mlpipe.train('fh_km', 'kmeans', 'fh_pts', NULL, '{x,y}', '{"k": 3, "seed": 3}');
SELECT mlpipe.rollback('fh_km');
SELECT v.version, v.status, a.alias
  FROM mlpipe.model_versions v LEFT JOIN mlpipe.aliases a ON a.model = v.model AND a.version = v.version
 WHERE v.model = 'fh_km' ORDER BY v.version;
-- The evaluate step logs its metrics once, with no run_id/version rows;
-- drift logs psi:<feature> and null_rate:<feature> with the version.
SELECT mlpipe.create_pipeline('fh_eval', '{"steps": [
  {"kind": "evaluate", "model": "fh_km", "source": "fh_pts"},
  {"kind": "drift", "model": "fh_km", "source": "fh_pts"}]}') IS NOT NULL AS created;
SELECT mlpipe.run_pipeline('fh_eval') AS run_id \gset
SELECT r.kind, r.version, m.split, count(*) AS metric_rows,
       count(*) FILTER (WHERE m.metric IN ('run_id', 'version', 'model')) AS id_rows,
       count(*) FILTER (WHERE m.metric = 'silhouette') AS silhouette_rows,
       string_agg(m.metric, ',' ORDER BY m.metric) FILTER (WHERE m.metric LIKE 'psi%') AS psi_names
  FROM mlpipe.runs r LEFT JOIN mlpipe.metrics m USING (run_id)
 WHERE r.run_id = :run_id OR r.parent_run_id = :run_id
    OR r.parent_run_id IN (SELECT run_id FROM mlpipe.runs WHERE parent_run_id = :run_id)
 GROUP BY r.run_id, r.kind, r.version, m.split ORDER BY r.run_id;

-- 4. drop_model removes a model with its versions, aliases, tags and metrics
-- in one transaction; alias_events and runs stay, with a 'drop' event.
SELECT mlpipe.tag('fh_km', 'owner', 'team-a') IS NOT NULL AS tagged;
SELECT mlpipe.drop_model('fh_km') AS versions_removed;
SELECT (SELECT count(*) FROM mlpipe.models WHERE name = 'fh_km') AS models,
       (SELECT count(*) FROM mlpipe.model_versions WHERE model = 'fh_km') AS versions,
       (SELECT count(*) FROM mlpipe.aliases WHERE model = 'fh_km') AS aliases,
       (SELECT count(*) FROM mlpipe.metrics WHERE model = 'fh_km') AS metrics,
       (SELECT count(*) FROM mlpipe.runs WHERE model = 'fh_km' AND kind = 'train') AS train_runs,
       (SELECT params FROM mlpipe.runs WHERE model = 'fh_km' AND kind = 'drop_model') AS drop_run;
SELECT action, from_version, to_version FROM mlpipe.alias_events WHERE model = 'fh_km' ORDER BY event_id;
-- A model created again under the name starts a new rollback stack.
SELECT version FROM mlpipe.train('fh_km', 'kmeans', 'fh_pts', NULL, '{x,y}', '{"k": 3, "seed": 1}');
SELECT mlpipe.rollback('fh_km');
\set VERBOSITY terse
SELECT mlpipe.drop_model('fh_nope');
\set VERBOSITY default
-- Admins only.
SELECT has_function_privilege('mlpipe_trainer', 'mlpipe.drop_model(text)', 'EXECUTE') AS trainer,
       has_function_privilege('mlpipe_admin', 'mlpipe.drop_model(text)', 'EXECUTE') AS admin;

-- 5. Errors that name the cause.
\set VERBOSITY terse
-- A NULL feature is reported as NULL (it said "is NaN" / "contains a NULL element").
SELECT version FROM mlpipe.train('fh_km2', 'kmeans', 'fh_pts', NULL, '{x,y}', '{"k": 2, "seed": 1}');
SELECT mlpipe.predict('fh_km2', t) FROM (SELECT 1.0::float8 AS x, NULL::float8 AS y) t;
SELECT mlpipe.predict('fh_km2', ARRAY[1.0, NULL]::float8[]);
-- create_pipeline checks train params and search spaces as train does, and the into schema.
SELECT mlpipe.create_pipeline('fh_bad', '{"steps": [{"kind": "train", "model": "m", "algorithm": "random_forest",
  "source": "tt_customers", "target": "churned", "params": {"n_estimator": 10}}]}');
SELECT mlpipe.create_pipeline('fh_bad', '{"steps": [{"kind": "search", "model": "m", "algorithm": "decision_tree",
  "source": "tt_customers", "target": "churned", "space": {"max_dept": [2, 3]}}]}');
SELECT mlpipe.create_pipeline('fh_bad', '{"steps": [{"kind": "predict", "model": "m", "source": "tt_customers",
  "into": "no_such_schema.out", "key": "id"}]}');
SELECT mlpipe.create_pipeline('fh_ok', '{"steps": [{"kind": "train", "model": "m", "algorithm": "gbt",
  "source": "tt_customers", "target": "churned", "params": {"n_estimators": 10, "as_of": "2024-03-02", "as_of_column": "updated_at"}}]}') IS NOT NULL AS created;
\set VERBOSITY default

-- 5b/6. A text regression target gets a HINT with the cast; guardrails say
-- what surprises: very many classes, a large share of rows skipped (the
-- failing gate's NOTICE is above, in part 3).
\set VERBOSITY default
CREATE TABLE fh_txt AS SELECT i AS id, (i % 7)::float8 AS x, (i * 3)::text AS amount,
       CASE WHEN i % 2 = 0 THEN NULL ELSE i % 5 END::float8 AS sparse
  FROM generate_series(1, 100) i;
SELECT 1 FROM mlpipe.train('fh_reg', 'decision_tree', 'fh_txt', 'amount', '{x}', '{"task": "regression"}');
SELECT version FROM mlpipe.train('fh_cls', 'decision_tree', 'fh_txt', 'amount', '{x}', '{"seed": 1}');
SELECT version FROM mlpipe.train('fh_cls2', 'decision_tree', 'fh_txt', 'amount', '{x}', '{"seed": 1, "task": "classification"}');
SELECT version FROM mlpipe.train('fh_skip', 'kmeans', 'fh_txt', NULL, '{x,sparse}', '{"k": 2, "seed": 1, "on_null": "skip"}');

-- 7. Views a BI tool reads without JSON.
SELECT model, version, algorithm, task, training_rows, round(silhouette::numeric, 3) AS silhouette,
       accuracy IS NULL AS no_accuracy
  FROM mlpipe.production_models WHERE model IN ('fh_km', 'fh_km2') ORDER BY model;
SELECT model, version, status, in_production, f1_macro IS NOT NULL AS has_f1, rmse
  FROM mlpipe.version_metrics WHERE model IN ('fh_cls', 'fh_km') ORDER BY model, version;
CREATE TABLE fh_eval AS SELECT i AS id, (i % 4)::float8 AS x, CASE WHEN i % 4 < 2 THEN 'lo' ELSE 'hi' END AS band
  FROM generate_series(1, 80) i;
SELECT version FROM mlpipe.train('fh_band', 'decision_tree', 'fh_eval', 'band', '{x}', '{"seed": 1}');
SELECT (mlpipe.evaluate('fh_band', 'SELECT * FROM fh_eval WHERE id <= 40'))->>'accuracy' AS accuracy;
SELECT actual, predicted, count FROM mlpipe.confusion_matrices WHERE model = 'fh_band' ORDER BY actual, predicted;
SELECT kind, model, version, feature, round(psi::numeric, 3) AS psi, null_rate
  FROM mlpipe.drift_history WHERE model = 'fh_band' ORDER BY run_id, feature;
SELECT feature, status FROM mlpipe.drift('fh_band', 'SELECT * FROM fh_eval WHERE x < 2');
SELECT kind, model, version, feature, round(psi::numeric, 3) AS psi, null_rate
  FROM mlpipe.drift_history WHERE model = 'fh_band' ORDER BY run_id, feature;

-- 6b. An integer feature that numbers the rows gets a WARNING.
SELECT version FROM mlpipe.train('fh_ids', 'kmeans', 'fh_txt', NULL, '{id,x}', '{"k": 2, "seed": 1}');
SELECT version FROM mlpipe.train('fh_noids', 'kmeans', 'fh_txt', NULL, '{x}', '{"k": 2, "seed": 1}');
-- The same signal for trees (from the pass that reads the rows), and none
-- for a bigint id with a gap, or with a NULL, or for fewer than 50 rows.
SELECT version FROM mlpipe.train('fh_ids_dt', 'decision_tree', 'SELECT id::bigint AS id, x, x > 3 AS big FROM fh_txt', 'big', NULL, '{"seed": 1}');
SELECT version FROM mlpipe.train('fh_gap_dt', 'decision_tree', 'SELECT CASE WHEN id = 1 THEN 0 ELSE id END AS id, x, x > 3 AS big FROM fh_txt', 'big', NULL, '{"seed": 1}');
SELECT version FROM mlpipe.train('fh_null_dt', 'decision_tree', 'SELECT NULLIF(id, 1) AS id, x, x > 3 AS big FROM fh_txt', 'big', NULL, '{"seed": 1}');
SELECT version FROM mlpipe.train('fh_few_dt', 'decision_tree', 'SELECT id, x, x > 3 AS big FROM fh_txt WHERE id <= 49', 'big', NULL, '{"seed": 1}');
SELECT lineage ? 'id_like_features' AS signal_in_lineage FROM mlpipe.model_versions WHERE model = 'fh_ids_dt';
