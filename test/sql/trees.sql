-- Tree models: training, scoring, determinism, corrupted artifacts, bad input.
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS t_trees CASCADE;
CREATE SCHEMA t_trees;
SET search_path = t_trees, public;
RESET client_min_messages;
SET mlpipe.progress = off;

-- size is 'big' when a >= 5 except where b is missing (NULL), which says 'big'.
CREATE TABLE shapes AS
SELECT i AS id, (i % 10)::float8 AS a, CASE WHEN i % 7 = 0 THEN NULL ELSE (i % 3)::float8 END AS b,
       CASE WHEN i % 10 >= 5 OR i % 7 = 0 THEN 'big' ELSE 'small' END AS size,
       (i % 10) * 2.0 + coalesce((i % 3)::float8, 0) AS value
  FROM generate_series(1, 700) i;

SELECT model, version, promoted, (metrics->>'accuracy')::float8 AS accuracy
  FROM mlpipe.train('shape_dt', 'decision_tree', 'shapes', 'size', '{a,b}', '{"max_depth": 3}');
SELECT (metrics->>'accuracy')::float8 AS accuracy, metrics ? 'oob_score' AS has_oob
  FROM mlpipe.train('shape_rf', 'random_forest', 'shapes', 'size', '{a,b}', '{"n_estimators": 10}');
SELECT (metrics->>'accuracy')::float8 AS accuracy, (metrics->>'roc_auc')::float8 AS roc_auc
  FROM mlpipe.train('shape_gbt', 'gbt', 'shapes', 'size', '{a,b}', '{"n_estimators": 20, "max_depth": 3}');
SELECT round((metrics->>'rmse')::numeric, 2) AS rmse_2dp, (metrics->>'r2')::float8 > 0.99 AS r2_high
  FROM mlpipe.train('shape_reg', 'gbt', 'shapes', 'value', '{a,b}', '{"n_estimators": 200, "max_depth": 3}');

-- Labels, probabilities, missing values routed by the learned direction.
SELECT mlpipe.classes('shape_gbt');
SELECT a, b, mlpipe.predict_label('shape_gbt', ARRAY[a, b]) AS label,
       mlpipe.predict('shape_gbt', ARRAY[a, b]) AS class_index
  FROM (VALUES (1.0, 1.0), (8.0, 1.0), (1.0, NULL)) v(a, b);
SELECT round((p[1] + p[2])::numeric, 12) AS proba_sum
  FROM (SELECT mlpipe.predict_proba('shape_gbt', ARRAY[2.0, 1.0]) AS p) s;
SELECT mlpipe.predict_label(mlpipe.artifact('shape_dt'), ARRAY[9.0, 2.0]) AS by_artifact;
SELECT feature, round(importance::numeric, 6) > 0 AS used FROM mlpipe.feature_importance('shape_gbt');
SELECT mlpipe.export('shape_dt')->'model' ? 'trees' AS exports_trees;

-- Registry: task, classes, metrics split, skipped rows.
SELECT model, task, classes, training_rows, lineage->>'metrics_split' IS NULL AS split_not_in_lineage
  FROM mlpipe.model_versions WHERE model = 'shape_gbt';
SELECT DISTINCT split FROM mlpipe.metrics WHERE model = 'shape_gbt';

-- The stored metric equals the one computed by scoring every row in SQL
-- (test_size 0: training metrics), missing values included.
SELECT (metrics->>'accuracy')::float8 AS stored
  FROM mlpipe.train('all_rows', 'gbt', 'shapes', 'size', '{a,b}', '{"n_estimators": 1, "max_depth": 1, "test_size": 0}');
SELECT avg((mlpipe.predict_label('all_rows', ARRAY[a, b]) = size)::int)::float8 AS scored FROM shapes;
SELECT avg((mlpipe.predict_label('all_rows', ARRAY[a, b]) = size)::int)::float8 < 1 AS not_trivial FROM shapes;

-- Integer targets with few values are classes; test_size 0 gives training metrics.
SELECT version FROM mlpipe.train('int_cls', 'decision_tree', 'SELECT a, (a::int % 3) AS k FROM shapes', 'k',
                                 params => '{"test_size": 0}');
SELECT mlpipe.classes('int_cls');
SELECT DISTINCT split FROM mlpipe.metrics WHERE model = 'int_cls';

-- NULL targets are skipped and counted by default, an error with on_null = 'error'.
CREATE TABLE holes AS SELECT * FROM shapes;
UPDATE holes SET size = NULL WHERE id <= 50;
SELECT version FROM mlpipe.train('holes', 'gbt', 'holes', 'size', '{a,b}', '{"n_estimators": 5}');
SELECT training_rows + (lineage->>'test_rows')::int AS rows_used, skipped_rows
  FROM mlpipe.model_versions WHERE model = 'holes';

-- Same seed, same bytes, whatever the thread count.
SET mlpipe.threads = 1;
SELECT version FROM mlpipe.train('det', 'gbt', 'shapes', 'size', '{a,b}', '{"n_estimators": 10, "subsample": 0.7, "colsample": 0.5, "seed": 3}');
SET mlpipe.threads = 2;
SELECT version FROM mlpipe.train('det', 'gbt', 'shapes', 'size', '{a,b}', '{"n_estimators": 10, "subsample": 0.7, "colsample": 0.5, "seed": 3}');
SELECT version FROM mlpipe.train('det', 'random_forest', 'shapes', 'size', '{a,b}', '{"n_estimators": 5, "seed": 3}');
SELECT version FROM mlpipe.train('det', 'random_forest', 'shapes', 'size', '{a,b}', '{"n_estimators": 5, "seed": 3}');
-- A retrain that reproduces the latest version is a run of it (docs/registry.md):
-- two versions (gbt, forest), four training runs.
SELECT v.version, v.algorithm, count(r.run_id) AS runs
  FROM mlpipe.model_versions v JOIN mlpipe.runs r ON r.model = v.model AND r.version = v.version AND r.kind = 'train'
 WHERE v.model = 'det' GROUP BY 1, 2 ORDER BY 1;
-- and moves no alias: one event per version, none per rerun.
SELECT to_version, action FROM mlpipe.alias_events WHERE model = 'det' ORDER BY event_id;

-- Every byte flip and truncation of a tree artifact is rejected with XX001.
CREATE FUNCTION rejected(blob bytea) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM mlpipe.predict(blob, ARRAY[1.0, 2.0]);
    RETURN 'accepted';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END $$;
WITH a AS (SELECT mlpipe.artifact('shape_dt') AS blob),
     outcomes AS (
        SELECT rejected(set_byte(blob, i, get_byte(blob, i) # m)) AS outcome
          FROM a, generate_series(0, length(blob) - 1) i, (VALUES (1), (128)) f(m)
        UNION ALL
        SELECT rejected(substring(blob FROM 1 FOR n)) FROM a, generate_series(0, length(blob) - 1) n)
SELECT outcome, count(*) > 0 AS seen FROM outcomes GROUP BY outcome;

-- Bad input.
CREATE FUNCTION try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
SELECT try($$SELECT mlpipe.train('x', 'gbt', 'shapes', params => '{}')$$);
SELECT try($$SELECT mlpipe.train('x', 'gbt', 'SELECT a, NULL::text AS y FROM shapes', 'y')$$);
SELECT try($$SELECT mlpipe.train('x', 'gbt', 'SELECT a, ''one''::text AS y FROM shapes', 'y')$$);
SELECT try($$SELECT mlpipe.train('x', 'gbt', 'holes', 'size', '{a,b}', '{"on_null": "error"}')$$);
SELECT try($$SELECT mlpipe.train('x', 'gbt', 'shapes', 'size', '{a,b}', '{"n_estimators": 0}')$$);
SELECT try($$SELECT mlpipe.train('x', 'gbt', 'shapes', 'size', '{a,b}', '{"learning_rate": -0.1}')$$);
SELECT try($$SELECT mlpipe.train('x', 'gbt', 'shapes', 'size', '{a,b}', '{"max_depth": 65}')$$);
SELECT try($$SELECT mlpipe.train('x', 'gbt', 'shapes', 'size', '{a,b}', '{"max_bins": 257}')$$);
SELECT try($$SELECT mlpipe.train('x', 'gbt', 'shapes', 'size', '{a,b}', '{"objective": "reg:tweedie"}')$$);
SELECT try($$SELECT mlpipe.train('x', 'gbt', 'shapes', 'size', '{a,b}', '{"n_estimator": 10}')$$);
SELECT try($$SELECT mlpipe.train('x', 'decision_tree', 'shapes', 'size', '{a,b}', '{"learning_rate": 0.1}')$$);
SELECT try($$SELECT mlpipe.train('x', 'gbt', 'shapes', 'size', '{a,size}')$$);
SELECT try($$SELECT mlpipe.train('x', 'random_forest', 'shapes', 'value', '{a,b}', '{"class_weight": "balanced"}')$$);
SELECT try($$SELECT mlpipe.train('x', 'random_forest', 'shapes', 'size', '{a,b}', '{"warm_start": "shape_gbt"}')$$);
SELECT try($$SELECT mlpipe.predict('shape_gbt', ARRAY[1.0])$$);
SELECT try($$SELECT mlpipe.predict_label('shape_reg', ARRAY[1.0, 2.0])$$);
SET mlpipe.max_memory = '1MB';
SELECT try($$SELECT mlpipe.train('x', 'gbt', 'SELECT ARRAY(SELECT random() FROM generate_series(1, 64)) AS v, g % 2 AS y FROM generate_series(1, 20000) g', 'y')$$);
RESET mlpipe.max_memory;
SELECT count(*) AS no_model_x FROM mlpipe.models WHERE name = 'x';

-- Review fixes, each pinned by a test.
-- A domain over a numeric type is read by its base type.
CREATE DOMAIN small_int AS int CHECK (VALUE >= 0);
CREATE TABLE dom AS SELECT a, (a::int % 3)::small_int AS k FROM shapes;
SELECT version FROM mlpipe.train('dom', 'decision_tree', 'dom', 'k', params => '{"test_size": 0}');
SELECT mlpipe.classes('dom');
-- Forced classification of a float target keeps labels as written.
SELECT version FROM mlpipe.train('flt', 'decision_tree', 'SELECT a, (a::int % 2) * 0.1 AS v FROM shapes', 'v',
                                 params => '{"task": "classification", "test_size": 0}');
SELECT mlpipe.classes('flt');
-- real[] features with NULL elements are missing values, element by element.
CREATE TABLE vr AS SELECT ARRAY[a, b]::real[] AS x, size FROM shapes;
SELECT (metrics->>'accuracy')::float8 AS accuracy
  FROM mlpipe.train('vr', 'gbt', 'vr', 'size', params => '{"n_estimators": 20, "max_depth": 3, "test_size": 0}');
-- One name, one task.
SELECT try($$SELECT mlpipe.train('shape_gbt', 'gbt', 'shapes', 'value', '{a,b}')$$);
-- The scoring cache never hands a call site another version's model: 20
-- versions scored in one statement through a column of references.
DO $$ BEGIN
    FOR i IN 1..19 LOOP
        PERFORM mlpipe.train('many', 'decision_tree',
            format('SELECT a, (a >= %s) AS hit FROM shapes', i % 9 + 1), 'hit', params => '{"test_size": 0}');
    END LOOP;
END $$;
SELECT count(*) AS versions,
       count(*) FILTER (WHERE mlpipe.predict_label('many@' || version, ARRAY[(version % 9 + 1)::float8])
                              = 'true') AS right_first,
       count(*) FILTER (WHERE mlpipe.predict_label('many@' || version, ARRAY[(version % 9 + 1)::float8 - 1])
                              = 'false') AS right_second
  FROM mlpipe.model_versions WHERE model = 'many';
-- A call site with a literal reference keeps its model while another call
-- site in the same statement cycles through more versions than the cache holds.
SELECT count(*) AS rows,
       count(*) FILTER (WHERE mlpipe.predict_label('many@1', ARRAY[2.0]) = 'true'
                          AND mlpipe.predict_label('many@1', ARRAY[1.0]) = 'false') AS literal_right,
       count(*) FILTER (WHERE mlpipe.predict_label('many@' || version, ARRAY[(version % 9 + 1)::float8]) = 'true') AS churn_right
  FROM mlpipe.model_versions, generate_series(1, 3) rep WHERE model = 'many';

-- Parameters the engine implements, seen from SQL.
-- Early stopping keeps the best iteration when the validation loss stops improving.
CREATE TABLE noisy AS
SELECT i, (i * 7919 % 1000) / 1000.0 AS a, (i * 104729 % 997) / 997.0 AS b,
       CASE WHEN (i * 7919 % 1000) / 1000.0 + ((i * 31 % 17) - 8) / 40.0 > 0.5 THEN 'y' ELSE 'n' END AS label
  FROM generate_series(1, 3000) i;
SELECT (metrics->>'best_iteration')::int < 499 AS stopped_early, metrics->>'validation_loss' IS NOT NULL AS has_valid_loss
  FROM mlpipe.train('early', 'gbt', 'noisy', 'label', '{a,b}',
                    '{"n_estimators": 500, "learning_rate": 0.3, "early_stopping_rounds": 10, "validation_size": 0.2}');
SELECT (metrics->>'trees')::int < 500 AS trees_dropped FROM mlpipe.model_versions WHERE model = 'early';
-- ccp_alpha prunes: fewer leaves than the unpruned tree.
SELECT (SELECT (metrics->>'leaves')::int FROM mlpipe.train('cc0', 'decision_tree', 'noisy', 'label', '{a,b}', '{}'))
     > (SELECT (metrics->>'leaves')::int FROM mlpipe.train('cc1', 'decision_tree', 'noisy', 'label', '{a,b}', '{"ccp_alpha": 0.01}'))
       AS pruned_has_fewer_leaves;
-- class_weight moves predictions towards the weighted class.
SELECT version FROM mlpipe.train('cw0', 'decision_tree', 'noisy', 'label', '{a,b}', '{"max_depth": 2}');
SELECT version FROM mlpipe.train('cw1', 'decision_tree', 'noisy', 'label', '{a,b}', '{"max_depth": 2, "class_weight": {"y": 5}}');
SELECT (SELECT count(*) FROM noisy WHERE mlpipe.predict_label('cw1', ARRAY[a, b]) = 'y')
     > (SELECT count(*) FROM noisy WHERE mlpipe.predict_label('cw0', ARRAY[a, b]) = 'y') AS weighted_predicts_more_y;
SELECT try($$SELECT mlpipe.train('x', 'decision_tree', 'noisy', 'label', '{a,b}', '{"class_weight": {"maybe": 2}}')$$);
-- Loss-guided growth and entropy are accepted and train.
SELECT (metrics->>'leaves')::int <= 8 * 20 AS leaves_capped
  FROM mlpipe.train('lg', 'gbt', 'noisy', 'label', '{a,b}', '{"n_estimators": 20, "max_leaves": 8, "max_depth": 0}');
SELECT (metrics->>'accuracy')::float8 > 0.6 AS learns
  FROM mlpipe.train('ent', 'random_forest', 'noisy', 'label', '{a,b}', '{"criterion": "entropy", "n_estimators": 10, "max_features": 1}');
