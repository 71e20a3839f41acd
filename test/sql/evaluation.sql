-- Evaluation: metric aggregates (values, NULLs, empty input, bad input,
-- parallel plans), evaluate, cross_validate and search.
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS t_eval CASCADE;
CREATE SCHEMA t_eval;
SET search_path = t_eval, public;
RESET client_min_messages;
SET mlpipe.progress = off;
SET extra_float_digits = 0;

-- Label metrics on text, with NULL rows ignored (values checked against
-- scikit-learn by test/peer/test_metric_aggs.py; here they pin exact output).
CREATE TABLE lab (t text, p text);
INSERT INTO lab VALUES ('a','a'),('a','b'),('b','b'),('c','a'),(NULL,'a'),('b',NULL);
SELECT mlpipe.accuracy(t, p), mlpipe.precision_macro(t, p), mlpipe.recall_macro(t, p),
       mlpipe.f1_macro(t, p), mlpipe.f1_weighted(t, p) FROM lab;
SELECT mlpipe.confusion_matrix(t, p) FROM lab;
-- integers sort by value (as scikit-learn), booleans false first
SELECT mlpipe.confusion_matrix(t, p) FROM (VALUES (10, 10), (2, 10), (10, 2), (2, 2), (1, 1)) v(t, p);
SELECT mlpipe.confusion_matrix(t, p), mlpipe.accuracy(t, p) FROM (VALUES (true, false), (false, false)) v(t, p);
-- empty input and all-NULL input give NULL
SELECT mlpipe.accuracy(t, p) IS NULL AS empty_null, mlpipe.confusion_matrix(t, p) IS NULL AS cm_null
  FROM lab WHERE false;
SELECT mlpipe.f1_macro(t, p) IS NULL AS all_null FROM lab WHERE t IS NULL OR p IS NULL;
-- grouped
SELECT g, mlpipe.accuracy(t, p) FROM (VALUES (1,'x','x'),(1,'x','y'),(2,'y','y')) v(g,t,p) GROUP BY g ORDER BY g;

-- Binary scores
CREATE TABLE sc (y boolean, s float8);
INSERT INTO sc VALUES (true, 0.9), (false, 0.2), (true, 0.3), (false, 0.5), (NULL, 0.1), (true, NULL);
SELECT mlpipe.roc_auc(y, s), round(mlpipe.log_loss(y, s)::numeric, 12) AS log_loss FROM sc;
SELECT mlpipe.roc_auc(y, s) IS NULL AS one_class_null FROM sc WHERE y;
SELECT mlpipe.roc_auc(y, s) IS NULL AS empty_null, mlpipe.log_loss(y, s) IS NULL AS ll_null FROM sc WHERE false;
-- ties share credit
SELECT mlpipe.roc_auc(y, s) FROM (VALUES (true, 0.5), (false, 0.5)) v(y, s);
-- clipping: p = 0 for a true row is log(1/eps), not infinity
SELECT round(mlpipe.log_loss(y, s)::numeric, 6) FROM (VALUES (true, 0.0)) v(y, s);

-- Multiclass probabilities, classes in proba order
CREATE TABLE mc (y text, pr float8[]);
INSERT INTO mc VALUES ('a', '{0.7,0.2,0.1}'), ('b', '{0.3,0.4,0.3}'), ('c', '{0.1,0.1,0.8}'),
                      ('a', '{0.2,0.5,0.3}'), (NULL, '{1,0,0}');
SELECT round(mlpipe.log_loss(y, pr, '{a,b,c}')::numeric, 12) AS log_loss,
       round(mlpipe.roc_auc(y, pr, '{a,b,c}')::numeric, 12) AS roc_auc_ovr FROM mc;

-- Regression
CREATE TABLE rg (y float8, p float8);
INSERT INTO rg VALUES (1, 1.5), (2, 2), (3, 2.5), (4, 4.4), (NULL, 1), (1, NULL);
SELECT round(mlpipe.rmse(y, p)::numeric, 12) AS rmse, round(mlpipe.mae(y, p)::numeric, 12) AS mae,
       round(mlpipe.r2(y, p)::numeric, 12) AS r2, round(mlpipe.mape(y, p)::numeric, 12) AS mape FROM rg;
-- r2 needs 2 rows; a constant truth predicted exactly is 1
SELECT mlpipe.r2(y, p) IS NULL AS one_row_null, mlpipe.rmse(y, p) FROM rg WHERE y = 2;
SELECT mlpipe.r2(y, p) FROM (VALUES (3, 3), (3, 3)) v(y, p);
SELECT mlpipe.rmse(y, p) IS NULL AS empty_null FROM rg WHERE false;
-- integer and numeric columns are accepted through the implicit casts
SELECT mlpipe.mae(y, p) FROM (VALUES (1, 2::numeric), (3, 3)) v(y, p);

-- Clustering
CREATE TABLE pts (x float8[], c int);
INSERT INTO pts VALUES ('{0,0}', 1), ('{0,1}', 1), ('{5,5}', 7), ('{5,6}', 7), ('{6,5}', 7), (NULL, 1), ('{9,9}', NULL);
SELECT round(mlpipe.silhouette(x, c)::numeric, 12) AS silhouette,
       round(mlpipe.calinski_harabasz(x, c)::numeric, 9) AS calinski_harabasz,
       round(mlpipe.davies_bouldin(x, c)::numeric, 12) AS davies_bouldin FROM pts;
SELECT mlpipe.silhouette(x, c) IS NULL AS one_cluster_null, mlpipe.davies_bouldin(x, c) IS NULL AS db_null
  FROM pts WHERE c = 7;

-- Bad input
\set VERBOSITY terse
SELECT mlpipe.roc_auc(y, s) FROM (VALUES (true, 'NaN'::float8)) v(y, s);
SELECT mlpipe.log_loss(y, s) FROM (VALUES (true, 1.5)) v(y, s);
SELECT mlpipe.rmse(y, p) FROM (VALUES (1, 'Infinity'::float8)) v(y, p);
SELECT mlpipe.log_loss(y, pr, '{a,b}') FROM mc;
SELECT mlpipe.log_loss(y, pr, '{a,b,z}') FROM mc;
SELECT mlpipe.log_loss(y, pr, '{a}') FROM mc;
SELECT mlpipe.log_loss(y, pr, '{a,a,b}') FROM mc;
SELECT mlpipe.roc_auc(y, pr, CASE WHEN y = 'a' THEN '{a,b,c}' ELSE '{c,b,a}' END::text[]) FROM mc;
SELECT mlpipe.silhouette(x, c) FROM (VALUES ('{1,2}'::float8[], 1), ('{1,2,3}', 2)) v(x, c);
SELECT mlpipe.silhouette(x, c) FROM (VALUES ('{1,NULL}'::float8[], 1)) v(x, c);
SELECT mlpipe.silhouette(x, c) FROM (VALUES ('{}'::float8[], 1)) v(x, c);
\set VERBOSITY default

-- Parallel plans: partial aggregates combine to the serial result.
CREATE TABLE big AS
SELECT i, (i % 3)::text AS t, ((i * 7) % 3)::text AS p, (i % 2 = 0) AS yb, ((i * 37) % 101) / 100.0 AS s,
       ARRAY[(i % 5)::float8, (i % 7)::float8] AS x, (i % 4) AS c, (i % 13)::float8 AS y, (i % 11)::float8 AS yh
  FROM generate_series(1, 20000) i;
ANALYZE big;
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT mlpipe.f1_macro(t, p), mlpipe.roc_auc(yb, s), mlpipe.r2(y, yh),
    mlpipe.log_loss(yb, s), mlpipe.calinski_harabasz(x, c) FROM big;
CREATE TABLE par AS SELECT mlpipe.f1_macro(t, p) f1, mlpipe.confusion_matrix(t, p) cm, mlpipe.roc_auc(yb, s) auc,
    mlpipe.r2(y, yh) r2, mlpipe.log_loss(yb, s) ll, mlpipe.calinski_harabasz(x, c) ch FROM big;
SET max_parallel_workers_per_gather = 0;
CREATE TABLE ser AS SELECT mlpipe.f1_macro(t, p) f1, mlpipe.confusion_matrix(t, p) cm, mlpipe.roc_auc(yb, s) auc,
    mlpipe.r2(y, yh) r2, mlpipe.log_loss(yb, s) ll, mlpipe.calinski_harabasz(x, c) ch FROM big;
RESET max_parallel_workers_per_gather;
SELECT p.f1 = s.f1 AS f1, p.cm = s.cm AS cm, p.auc = s.auc AS auc, abs(p.r2 - s.r2) < 1e-12 AS r2,
       abs(p.ll - s.ll) < 1e-12 AS ll, abs(p.ch - s.ch) < 1e-9 * s.ch AS ch FROM par p, ser s;
RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size;

-- evaluate: a registered version scored on any table holding the target
CREATE TABLE shapes AS
SELECT i AS id, (i % 10)::float8 AS a, CASE WHEN i % 7 = 0 THEN NULL ELSE (i % 3)::float8 END AS b,
       CASE WHEN i % 10 >= 5 OR i % 7 = 0 THEN 'big' ELSE 'small' END AS size,
       (i % 10) * 2.0 + coalesce((i % 3)::float8, 0) AS value, ARRAY[(i % 10)::float8, (i % 3)::float8] AS v
  FROM generate_series(1, 700) i;
SELECT version FROM mlpipe.train('ev_dt', 'decision_tree', 'shapes', 'size', '{a,b}', '{"max_depth": 3}');
SELECT e - 'run_id' FROM mlpipe.evaluate('ev_dt', 'SELECT * FROM shapes WHERE id <= 100') e;
-- the metrics equal the aggregates over the same predictions
SELECT (mlpipe.evaluate('ev_dt@1', 'shapes')->>'f1_macro')::float8 =
       mlpipe.f1_macro(size, mlpipe.predict_label('ev_dt', ARRAY[a, b])) AS same_f1 FROM shapes;
SELECT kind, model, version, rows FROM mlpipe.runs WHERE kind = 'evaluate' ORDER BY run_id;
SELECT split, metric, value FROM mlpipe.metrics m JOIN mlpipe.runs r USING (run_id)
 WHERE r.kind = 'evaluate' AND m.metric IN ('accuracy', 'rows') ORDER BY run_id, metric;
SELECT version FROM mlpipe.train('ev_rg', 'gbt', 'shapes', 'value', '{a,b}', '{"n_estimators": 30}');
SELECT jsonb_object_keys(mlpipe.evaluate('ev_rg', 'shapes')) k ORDER BY k;
SELECT version FROM mlpipe.train('ev_km', 'kmeans', 'shapes', NULL, '{v}', '{"k": 3}');
SELECT jsonb_object_keys(mlpipe.evaluate('ev_km', 'shapes')) k ORDER BY k;
\set VERBOSITY terse
SELECT mlpipe.evaluate('nope', 'shapes');
SELECT mlpipe.evaluate('ev_dt', 'no_such_table');
SELECT mlpipe.evaluate('ev_dt', 'SELECT * FROM shapes WHERE false');
SELECT mlpipe.evaluate('ev_dt', 'SELECT a, b FROM shapes');
\set VERBOSITY default

-- cross_validate: stratified folds, per-fold runs under one parent
SELECT jsonb_array_length(cv->'folds') AS folds, cv->>'task' AS task, cv->'mean'->>'accuracy' AS mean_accuracy,
       (SELECT array_agg((f->>'rows')::int ORDER BY f->>'fold') FROM jsonb_array_elements(cv->'folds') f) AS fold_rows,
       (SELECT array_agg(f->'confusion_matrix'->'matrix' ORDER BY f->>'fold') FROM jsonb_array_elements(cv->'folds') f) AS matrices
  FROM mlpipe.cross_validate('decision_tree', 'shapes', 'size', '{a,b}', '{"max_depth": 3}', 3) cv;
SELECT r.kind, count(*), sum(r.rows), bool_and(r.status = 'succeeded') AS ok
  FROM mlpipe.runs r WHERE r.kind IN ('cross_validate', 'cv_fold') GROUP BY r.kind ORDER BY r.kind;
SELECT split, count(*) FROM mlpipe.metrics WHERE split LIKE 'cv%' GROUP BY split ORDER BY split;
-- reproducible, and features = NULL uses every column but the fold number
SELECT mlpipe.cross_validate('gbt', 'shapes', 'value', '{a,b}', '{"n_estimators": 10}', 4)->'mean' =
       mlpipe.cross_validate('gbt', 'shapes', 'value', '{a,b}', '{"n_estimators": 10}', 4)->'mean' AS reproducible;
SELECT cv->>'task' AS task, jsonb_array_length(cv->'folds') AS folds
  FROM mlpipe.cross_validate('decision_tree', 'SELECT a, size FROM shapes', 'size', NULL, '{}', 2) cv;
\set VERBOSITY terse
SELECT mlpipe.cross_validate('decision_tree', 'shapes', 'size', '{a,b}', '{}', 1);
SELECT mlpipe.cross_validate('decision_tree', 'SELECT * FROM shapes LIMIT 3', 'size', '{a,b}', '{}', 4);
SELECT mlpipe.cross_validate('kmeans', 'shapes', NULL, '{a}', '{}', 3);
SELECT mlpipe.cross_validate('decision_tree', 'shapes', 'size', '{a,b}', '{"max_dpth": 3}', 3);
\set VERBOSITY default

-- search: grid, every trial a run, the best registered through the gate
SELECT model, version, promoted FROM mlpipe.search('ev_s', 'decision_tree', 'shapes', 'size', '{a,b}',
    '{"max_depth": [1, 3]}', folds => 3);
SELECT params->'best_params' AS best, params->>'trials_run' AS trials, status
  FROM mlpipe.runs WHERE kind = 'search';
SELECT count(*) AS trial_runs FROM mlpipe.runs WHERE kind = 'search_trial'
   AND parent_run_id = (SELECT run_id FROM mlpipe.runs WHERE kind = 'search');
SELECT version, params FROM mlpipe.model_versions WHERE model = 'ev_s';
-- random: seeded draws from lists and ranges, reproducible
SELECT count(*), count(DISTINCT c) FROM mlpipe_internal._search_candidates(
    '{"max_depth": [2, 3, 4, 5, 6], "learning_rate": {"min": 0.01, "max": 0.3, "log": true}}', 'random', 5) c;
SELECT array_agg(c) = (SELECT array_agg(c) FROM mlpipe_internal._search_candidates(
    '{"max_depth": [2, 3, 4, 5, 6], "min_samples_leaf": {"min": 1, "max": 50, "int": true}}', 'random', 5) c) AS same
  FROM mlpipe_internal._search_candidates(
    '{"max_depth": [2, 3, 4, 5, 6], "min_samples_leaf": {"min": 1, "max": 50, "int": true}}', 'random', 5) c;
SELECT model, version FROM mlpipe.search('ev_s', 'decision_tree', 'shapes', 'size', '{a,b}',
    '{"max_depth": [2, 3, 4], "min_samples_leaf": {"min": 1, "max": 20, "int": true}}', 'random', 2, 3,
    '{"metric": "accuracy", "min": 0.5}');
\set VERBOSITY terse
SELECT * FROM mlpipe.search('ev_s', 'decision_tree', 'shapes', 'size', '{a,b}', '{}');
SELECT * FROM mlpipe.search('ev_s', 'decision_tree', 'shapes', 'size', '{a,b}', '{"max_depth": [2]}', 'bayes');
SELECT * FROM mlpipe.search('ev_s', 'decision_tree', 'shapes', 'size', '{a,b}', '{"max_depth": {"min": 1, "max": 3}}');
SELECT * FROM mlpipe.search('ev_s', 'decision_tree', 'shapes', 'size', '{a,b}', '{"max_depth": []}');
SELECT * FROM mlpipe.search('ev_s', 'decision_tree', 'shapes', 'size', '{a,b}', '{"max_depht": [2]}', folds => 2);
SELECT * FROM mlpipe.search('ev_s', 'decision_tree', 'shapes', 'size', '{a,b}', '{"max_depth": [2]}', folds => 1);
\set VERBOSITY default

-- Privileges: aggregates are PUBLIC, evaluation is for mlpipe_trainer (the
-- entry points are EXECUTE to PUBLIC and check the role: issue #12)
SELECT p.oid::regprocedure AS fn, has_function_privilege('public', p.oid, 'EXECUTE') AS public_exec,
       has_function_privilege('mlpipe_trainer', p.oid, 'EXECUTE') AS trainer_exec
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'mlpipe' AND p.proname IN ('evaluate', 'cross_validate', 'search', 'f1_macro', 'roc_auc', 'silhouette')
 ORDER BY p.oid::regprocedure::text COLLATE "C";

SET client_min_messages = warning;
DROP SCHEMA t_eval CASCADE;
