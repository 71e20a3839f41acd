-- ALTER EXTENSION mlpipe UPDATE works from every released version, and a
-- model trained before the update still scores after it. (That every path
-- ends in the same catalog as a fresh install is upgrade_catalog.sql.)
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS mlpipe CASCADE;
DROP SCHEMA IF EXISTS t_upgrade CASCADE;
CREATE SCHEMA t_upgrade;
SET search_path = t_upgrade, public;
CREATE EXTENSION mlpipe VERSION '0.1.0';
RESET client_min_messages;
SET mlpipe.progress = off;
SELECT extversion FROM pg_extension WHERE extname = 'mlpipe';

CREATE TABLE pts AS SELECT i AS id, (i % 2) * 10 + (i % 3) * 0.1 AS x, (i % 5) * 0.1 AS y
  FROM generate_series(1, 20) i;
SELECT version FROM mlpipe.train('before', 'kmeans', 'pts', features => '{x,y}',
                                 params => '{"k": 2, "init": "given", "centroids": [[0, 0], [10, 0]]}');
SELECT mlpipe.predict('before', ARRAY[9.9, 0.2]) AS before_update;

ALTER EXTENSION mlpipe UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'mlpipe';
SELECT mlpipe.version();
SELECT mlpipe.predict('before', ARRAY[9.9, 0.2]) AS after_update,
       (SELECT count(*) FROM mlpipe.model_versions) AS versions_kept;

-- What 0.2.0 adds is there and works on a model trained after the update.
SELECT p.oid::regprocedure FROM pg_proc p
 WHERE p.pronamespace = 'mlpipe'::regnamespace
   AND p.proname IN ('predict_label', 'predict_proba', 'feature_importance')
 ORDER BY 1::text;
CREATE TABLE cls AS SELECT i AS id, (i % 10)::float8 AS a, CASE WHEN i % 10 >= 5 THEN 'big' ELSE 'small' END AS size
  FROM generate_series(1, 200) i;
SELECT version FROM mlpipe.train('after', 'decision_tree', 'cls', 'size', '{a}', '{"max_depth": 2, "test_size": 0}');
SELECT mlpipe.predict_label('after', ARRAY[7.0]), mlpipe.predict_proba('after', ARRAY[1.0]);

-- From 0.2.0, the other released version: a tree model trained under 0.2.0
-- scores the same after the update.
SET client_min_messages = warning;
DROP EXTENSION mlpipe CASCADE;
CREATE EXTENSION mlpipe VERSION '0.2.0';
RESET client_min_messages;
SELECT extversion FROM pg_extension WHERE extname = 'mlpipe';
SELECT version FROM mlpipe.train('tree', 'gbt', 'cls', 'size', '{a}', '{"n_estimators": 5, "test_size": 0}');
CREATE TABLE before_update AS
  SELECT a, mlpipe.predict_proba('tree', ARRAY[a]) AS p FROM generate_series(0, 9) a;
ALTER EXTENSION mlpipe UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'mlpipe';
SELECT count(*) AS same_scores FROM before_update b
 WHERE b.p = mlpipe.predict_proba('tree', ARRAY[b.a]);

-- What 0.3.0 adds is there after the update, and the roles exist.
SELECT p.proname, count(*) AS forms FROM pg_proc p
 WHERE p.pronamespace = 'mlpipe'::regnamespace
   AND p.proname IN ('ts_features', 'summary', 'f1_macro', 'evaluate', 'cross_validate', 'search',
                     'promote', 'rollback', 'version_at', 'prune', 'predict_table', 'drift',
                     'create_pipeline', 'run_pipeline', 'schedule', 'unschedule')
 GROUP BY 1 ORDER BY 1;
SELECT rolname FROM pg_roles WHERE rolname LIKE 'mlpipe\_%' ORDER BY 1;
SELECT mlpipe.predict('tree', t) AS row_form FROM (SELECT 7.0::float8 AS a) t;

-- From 0.3.0 (aggregate states `internal`): with this library the 0.3.0
-- aggregates still run, parallel plans included (agg_state_legacy.c); the
-- update moves them to mlpipe.agg_state in place, so a view over them
-- survives, and the values do not change.
SET client_min_messages = warning;
DROP EXTENSION mlpipe CASCADE;
CREATE EXTENSION mlpipe VERSION '0.3.0';
RESET client_min_messages;
CREATE TABLE agg_rows AS
SELECT i, (i % 13)::float8 + i / 1000.0 AS y, (i % 11)::float8 AS yh, (i % 3)::text AS t, ((i * 7) % 3)::text AS p
  FROM generate_series(1, 20000) i;
CREATE VIEW agg_view AS
SELECT mlpipe.rmse(y, yh) AS rmse, mlpipe.f1_macro(t, p) AS f1, (mlpipe.summary(y)).median AS median FROM agg_rows;
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2; SET parallel_leader_participation = off;
EXPLAIN (COSTS OFF) SELECT * FROM agg_view;
CREATE TABLE agg_before AS SELECT * FROM agg_view;
ALTER EXTENSION mlpipe UPDATE;
SELECT count(*) AS stypes_now_agg_state FROM pg_aggregate a JOIN pg_proc p ON p.oid = a.aggfnoid
 WHERE p.pronamespace = 'mlpipe'::regnamespace AND a.aggtranstype = 'mlpipe.agg_state'::regtype;
SELECT abs(v.rmse - b.rmse) <= 1e-12 * b.rmse AS rmse, v.f1 = b.f1 AS f1, v.median = b.median AS median
  FROM agg_view v, agg_before b;
RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather; RESET parallel_leader_participation;
