-- Issue #14, metrics an imbalanced problem needs: precision / recall / f1
-- of a named positive class, average_precision, roc_curve / pr_curve,
-- mlpipe.calibration, params.threshold and params.calibrate (stored in the
-- artifact, used by every scoring form), tune_threshold, search ranked by
-- gate.metric, and the errors of each. Values are checked against
-- scikit-learn by test/peer/test_imbalanced.py; here they pin exact output.
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS t_imb CASCADE;
CREATE SCHEMA t_imb;
SET search_path = t_imb, public;
RESET client_min_messages;
SET mlpipe.progress = off;
SET extra_float_digits = 0;

-- Positive-class metrics over text, bigint and boolean; NULL rows ignored.
CREATE TABLE lab (t text, p text);
INSERT INTO lab VALUES ('a','a'),('a','b'),('b','a'),('b','b'),('a','a'),(NULL,'a'),('b',NULL);
SELECT mlpipe.precision(t, p, 'a'), mlpipe.recall(t, p, 'a'), mlpipe.f1(t, p, 'a'),
       mlpipe.f1(t, p, 'b') FROM lab;
SELECT mlpipe.f1(t, p, 1), mlpipe.precision(t, p, 1) FROM (VALUES (1, 1), (0, 1), (1, 0)) v(t, p);
SELECT mlpipe.recall(t, p, true) FROM (VALUES (true, true), (true, false), (false, false)) v(t, p);
-- multiclass: one-vs-rest for the named class
SELECT mlpipe.f1(t, p, 'c') FROM (VALUES ('a','c'),('c','c'),('b','a'),('c','b')) v(t, p);
-- no rows: NULL; only the other class present: 0 (scikit-learn's zero division)
SELECT mlpipe.f1(t, p, 'a') IS NULL AS empty_null FROM lab WHERE false;
SELECT mlpipe.f1(t, p, 'yes'), mlpipe.precision(t, p, 'yes') FROM (VALUES ('no','no')) v(t, p);
-- grouped and parallel: the class travels with the state
SELECT g, mlpipe.f1(t, p, 'x') FROM (VALUES (1,'x','x'),(1,'x','y'),(2,'y','y'),(2,'x','x')) v(g,t,p)
 GROUP BY g ORDER BY g;
CREATE TABLE big AS SELECT i, (i % 7 = 0)::text AS t, (i % 5 = 0)::text AS p, (i % 7 = 0) AS y,
       ((i * 7919) % 1000) / 1000.0 + (i % 7 = 0)::int * 0.3 AS s
  FROM generate_series(1, 20000) i;
ANALYZE big;
SET max_parallel_workers_per_gather = 2; SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SELECT mlpipe.f1(t, p, 'true'), mlpipe.average_precision(y, s) FROM big;
RESET max_parallel_workers_per_gather; RESET parallel_setup_cost; RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
SELECT mlpipe.f1(t, p, 'true'), mlpipe.average_precision(y, s) FROM big;

-- errors
SELECT mlpipe.f1(t, p, 'z') FROM lab;
SELECT mlpipe.f1(t, p, NULL) FROM lab;
SELECT mlpipe.recall(t, p, CASE WHEN t = 'a' THEN 'a' ELSE 'b' END) FROM lab;

-- average_precision: scikit-learn's example, ties, no positive
SELECT mlpipe.average_precision(y, s) FROM (VALUES (false, 0.1), (false, 0.4), (true, 0.35), (true, 0.8)) v(y, s);
SELECT mlpipe.average_precision(y, s) FROM (VALUES (true, 0.5), (false, 0.5), (true, 0.2)) v(y, s);
SELECT mlpipe.average_precision(y, s) IS NULL AS no_positive FROM (VALUES (false, 0.1)) v(y, s);
SELECT mlpipe.average_precision(y, s) FROM (VALUES (true, 'NaN'::float8)) v(y, s);

-- curves
SELECT * FROM mlpipe.roc_curve('{f,f,t,t}', '{0.1,0.4,0.35,0.8}');
SELECT * FROM mlpipe.roc_curve('{t,t,t,f,f,t}', '{0.9,0.8,0.7,0.6,0.5,0.5}');
SELECT count(*) FROM mlpipe.roc_curve('{t,t,t,f,f,t}', '{0.9,0.8,0.7,0.6,0.5,0.5}', false);
SELECT c.threshold, c.precision, c.recall FROM mlpipe.pr_curve('{f,f,t,t}', '{0.1,0.4,0.35,0.8}') c;
-- from a table, NULL pairs left out; no pairs: no rows
SELECT count(*) FROM (SELECT array_agg(y ORDER BY i) y, array_agg(s ORDER BY i) s FROM big) a,
       mlpipe.roc_curve(a.y, a.s) c;
SELECT count(*) FROM mlpipe.pr_curve('{NULL,t}', '{0.5,NULL}');
SELECT * FROM mlpipe.roc_curve('{t}', '{0.5}');
-- NULL arrays hold no pairs (the fuzzer found the crash this guards)
SELECT count(*) FROM mlpipe.roc_curve(NULL, NULL);
SELECT count(*) FROM mlpipe.pr_curve('{t}', NULL);
SELECT mlpipe.calibration(NULL, '{0.5}') IS NULL AS no_pairs;
SELECT * FROM mlpipe.roc_curve('{t,f}', '{0.5}');
SELECT * FROM mlpipe.pr_curve('{t,f}', '{0.5,Infinity}');

-- calibration of given pairs
SELECT mlpipe.calibration('{t,f,t,f,t}', '{0.9,0.1,0.4,0.5,0.8}');
SELECT mlpipe.calibration('{t,f,t,f,t}', '{0.9,0.1,0.4,0.5,0.8}', 'platt') ? 'a' AS platt;
SELECT mlpipe.calibration('{t}', '{0.5}', 'beta');

-- Training: a skewed binary target (about 1 in 6 positive).
CREATE TABLE cls AS
SELECT i AS id, (hashint4(i) % 1000) / 100.0 AS x1, (hashint4(i * 7 + 1) % 1000) / 50.0 AS x2,
       ((hashint4(i) % 1000) / 100.0 + (hashint4(i * 13) % 600) / 100.0 > 10.5) AS y
  FROM generate_series(1, 3000) i;
SELECT round(avg(y::int), 3) AS positive_share FROM cls;
SELECT version, metrics->>'threshold' IS NULL AS no_threshold,
       (metrics ?& ARRAY['precision', 'recall', 'f1', 'average_precision']) AS binary_metrics
  FROM mlpipe.train('imb', 'gbt', 'cls', 'y', '{x1,x2}', '{"n_estimators": 20}');
SELECT version, round((metrics->>'threshold')::numeric, 6) AS threshold,
       (metrics->>'f1')::float8 >= (SELECT (metrics->>'f1')::float8 FROM mlpipe.model_versions
                                     WHERE model = 'imb' AND version = 1) AS f1_not_worse
  FROM mlpipe.train('imb', 'gbt', 'cls', 'y', '{x1,x2}', '{"n_estimators": 20, "threshold": "f1"}',
                    gate => '{"metric": "f1", "must_beat": "production"}');
-- the threshold is in the artifact: the name and bytea forms agree, and
-- predict_label is predict_proba[2] >= threshold
SELECT mlpipe.export('imb@2')->'decision' AS decision, mlpipe.export('imb@2')->>'format' AS format,
       mlpipe.export('imb@1') ? 'decision' AS v1_has_decision, mlpipe.export('imb@1')->>'format' AS v1_format;
WITH k AS MATERIALIZED (SELECT (mlpipe.export('imb@2')->'decision'->>'threshold')::float8 AS thr,
                                mlpipe.artifact('imb@2') AS art)
SELECT count(*) FILTER (WHERE mlpipe.predict_label('imb@2', ARRAY[x1, x2]) IS DISTINCT FROM
                              ((mlpipe.predict_proba('imb@2', ARRAY[x1, x2]))[2] >= k.thr)::text) AS label_mismatch,
       count(*) FILTER (WHERE mlpipe.predict_label('imb@2', ARRAY[x1, x2]) IS DISTINCT FROM
                              mlpipe.predict_label(k.art, ARRAY[x1, x2])) AS bytea_mismatch,
       count(*) FILTER (WHERE mlpipe.predict_proba('imb@2', ARRAY[x1, x2]) IS DISTINCT FROM
                              mlpipe.predict_proba('imb@1', ARRAY[x1, x2])) AS proba_changed,
       count(*) FILTER (WHERE mlpipe.predict_label('imb@2', c) = 'true') >
       count(*) FILTER (WHERE mlpipe.predict_label('imb@1', c) = 'true') AS more_positives
  FROM cls c, k;
-- a fixed threshold; calibration (held-out rows; predict_proba calibrated)
SELECT (metrics->>'threshold')::float8 AS threshold FROM mlpipe.train('imb_fixed', 'decision_tree', 'cls', 'y',
       '{x1,x2}', '{"max_depth": 4, "threshold": 0.25}');
SELECT version FROM mlpipe.train('imb_cal', 'random_forest', 'cls', 'y', '{x1,x2}',
                    '{"n_estimators": 10, "calibrate": "isotonic", "calibration_size": 0.25}');
SELECT mlpipe.export('imb_cal')->'decision'->'calibration'->>'method' AS method,
       lineage->>'calibration_rows' AS cal_rows, training_rows, lineage->>'test_rows' AS test_rows
  FROM mlpipe.model_versions WHERE model = 'imb_cal';
SELECT version FROM mlpipe.train('imb_platt', 'gbt', 'cls', 'y', '{x1,x2}',
                    '{"n_estimators": 10, "calibrate": "platt", "threshold": "recall_macro"}');
SELECT mlpipe.export('imb_platt')->'decision'->'calibration'->>'method' AS method,
       mlpipe.export('imb_platt')->'decision'->>'threshold' IS NOT NULL AS tuned;
SELECT count(*) FILTER (WHERE abs((mlpipe.predict_proba('imb_platt', ARRAY[x1, x2]))[1] +
                                  (mlpipe.predict_proba('imb_platt', ARRAY[x1, x2]))[2] - 1) > 1e-12) AS not_summing_to_1,
       count(DISTINCT (mlpipe.predict_proba('imb_cal', ARRAY[x1, x2]))[2]) <= 30 AS isotonic_steps
  FROM cls;

-- tune_threshold: a new version from the same training; roc_auc unchanged
SELECT version, promoted, round((metrics->>'threshold')::numeric, 6) AS threshold
  FROM mlpipe.tune_threshold('imb@1', 'accuracy');
SELECT count(DISTINCT metrics->>'roc_auc') AS distinct_roc_auc FROM mlpipe.model_versions WHERE model = 'imb';
SELECT params->>'threshold' AS recorded FROM mlpipe.model_versions WHERE model = 'imb' AND version = 3;

-- search ranks by gate.metric
SELECT version, promoted FROM mlpipe.search('imb_s', 'gbt', 'cls', 'y', '{x1,x2}',
       '{"n_estimators": [10], "class_weight": [null, "balanced"]}', folds => 2,
       gate => '{"metric": "recall_macro"}');
SELECT params->>'main_metric' AS ranked_by, jsonb_array_length(params->'trial_results') AS trials
  FROM mlpipe.runs WHERE kind = 'search' AND model = 'imb_s';

-- errors
\set VERBOSITY terse
SELECT * FROM mlpipe.train('imb_e', 'gbt', 'cls', 'y', '{x1,x2}', '{"threshold": 1.5}');
SELECT * FROM mlpipe.train('imb_e', 'gbt', 'cls', 'y', '{x1,x2}', '{"threshold": "auc"}');
SELECT * FROM mlpipe.train('imb_e', 'gbt', 'cls', 'y', '{x1,x2}', '{"threshold": true}');
SELECT * FROM mlpipe.train('imb_e', 'gbt', 'cls', 'x1', '{x2}', '{"threshold": 0.5, "task": "regression"}');
SELECT * FROM mlpipe.train('imb_e', 'gbt', 'cls', 'x1', '{x2}', '{"calibrate": "platt", "task": "regression"}');
SELECT * FROM mlpipe.train('imb_e', 'gbt', 'cls', 'y', '{x1,x2}', '{"calibrate": "beta"}');
SELECT * FROM mlpipe.train('imb_e', 'gbt', 'cls', 'y', '{x1,x2}', '{"calibration_size": 0.3}');
SELECT * FROM mlpipe.train('imb_e', 'gbt', 'cls', 'y', '{x1,x2}', '{"calibrate": "platt", "calibration_size": 0.95}');
SELECT * FROM mlpipe.train('imb_e', 'gbt', '(SELECT * FROM cls WHERE y LIMIT 2) UNION ALL (SELECT * FROM cls WHERE NOT y LIMIT 2)', 'y', '{x1,x2}', '{"calibrate": "platt", "test_size": 0}');
SELECT * FROM mlpipe.tune_threshold('imb', 'auc');
SELECT * FROM mlpipe.tune_threshold('imb_fixed', NULL);
SELECT * FROM mlpipe.tune_threshold('nosuch');
SELECT * FROM mlpipe.search('imb_s', 'gbt', 'cls', 'y', '{x1,x2}', '{"n_estimators": [5]}', folds => 2,
                            gate => '{"metric": "f2"}');
\set VERBOSITY default
SELECT count(*) AS imb_e_versions FROM mlpipe.model_versions WHERE model = 'imb_e';

SET client_min_messages = warning;
DROP SCHEMA t_imb CASCADE;
DELETE FROM mlpipe.aliases WHERE model LIKE 'imb%';
