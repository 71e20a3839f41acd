-- Preprocessing, categorical columns, row-form scoring, time and column splits.
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS t_prep CASCADE;
CREATE SCHEMA t_prep;
SET search_path = t_prep, public;
RESET client_min_messages;
SET mlpipe.progress = off;

-- size is 'big' for colour red or a >= 7; a has gaps, tag has NULLs.
CREATE TABLE shop AS
SELECT i AS id,
       CASE WHEN i % 13 = 0 THEN NULL ELSE (i % 10)::float8 END AS a,
       (ARRAY['red', 'green', 'blue'])[1 + i % 3] AS colour,
       CASE WHEN i % 17 = 0 THEN NULL ELSE (ARRAY['x', 'y'])[1 + i % 2] END AS tag,
       ARRAY[(i % 5)::float8, (i % 2)::float8] AS v,
       CASE WHEN i % 3 = 0 OR i % 10 >= 7 THEN 'big' ELSE 'small' END AS size,
       (i % 10) * 2.0 + (i % 3) AS amount,
       i > 560 AS is_test,
       date '2020-01-01' + i AS day
  FROM generate_series(1, 700) i;

-- column split: the test rows are exactly the rows where is_test is true.
SELECT model, version, (metrics->>'accuracy')::float8 AS accuracy
  FROM mlpipe.train('col', 'gbt', 'shop', 'size', '{a,colour,tag,v}',
                    '{"split": "column:is_test", "n_estimators": 20}');
SELECT training_rows, lineage->>'test_rows' AS test_rows, lineage->>'split' AS split,
       lineage ? 'test_size' AS has_test_size,
       training_rows + (lineage->>'test_rows')::int = (SELECT count(*) FROM shop) AS none_in_both
  FROM mlpipe.model_versions WHERE model = 'col';
SELECT features FROM mlpipe.model_versions WHERE model = 'col';

-- Row form: by name and by artifact, equal to the registry's test accuracy.
SELECT round(avg((mlpipe.predict_label('col', s) = size)::int), 6) =
       round((SELECT (metrics->>'accuracy')::numeric FROM mlpipe.model_versions WHERE model = 'col'), 6) AS same_accuracy
  FROM shop s WHERE is_test;
SELECT count(*) FILTER (WHERE mlpipe.predict('col', s) <> mlpipe.predict(mlpipe.artifact('col'), s)) AS by_name_vs_artifact,
       count(*) FILTER (WHERE abs(p[1] + p[2] - 1) > 1e-12) AS proba_not_summing
  FROM (SELECT s.*, mlpipe.predict_proba('col', s) AS p FROM shop s) s;
CREATE TYPE probe AS (a float8, tag text, colour text, v float8[]);
SELECT mlpipe.predict_label('col', ROW(9.0, 'x', 'purple', ARRAY[1.0, 0.0]::float8[])::probe) AS unseen_colour,
       mlpipe.predict_label('col', ROW(1.0, NULL, 'red', ARRAY[1.0, 0.0]::float8[])::probe) AS red_null_tag,
       mlpipe.predict_label('col', ROW(1.0, 'y', 'blue', ARRAY[1.0, 0.0]::float8[])::probe) AS blue;
-- export shows what was fitted: categories in text order, NULL as its own level, native codes.
SELECT c->>'column' AS col, c->>'kind' AS kind, c->>'encode' AS encode, c->'categories' AS categories,
       c->'null_category' AS null_category, jsonb_array_length(c->'codes') AS codes
  FROM jsonb_array_elements(mlpipe.export('col')->'preprocess') c;

-- float8[] form takes the post-preprocessing features (codes): same result as the row.
SELECT mlpipe.predict('col', ARRAY[1.0, c.code, 0, 1.0, 0.0]) = mlpipe.predict('col', ROW(1.0, 'x', 'blue', ARRAY[1.0, 0.0]::float8[])::probe) AS same
  FROM (SELECT (mlpipe.export('col')->'preprocess'->1->'codes'->>0)::float8 AS code) c;

-- Options per column and "*": one-hot, imputation, scaling fitted on training rows only.
SELECT version FROM mlpipe.train('opts', 'gbt', 'shop', 'size', '{a,colour,tag}',
   '{"split": "column:is_test", "n_estimators": 5,
     "preprocess": {"*": {"encode": "onehot", "scale": "minmax"}, "a": {"impute": "mean", "scale": "standard"}, "tag": {"impute": "mode"}}}');
SELECT features FROM mlpipe.model_versions WHERE model = 'opts';
SELECT c->>'column' AS col, c->>'impute' AS impute, c->>'scale' AS scale, c->>'encode' AS encode,
       round((c->>'fill')::numeric, 6) AS fill, round((c->>'center')::numeric, 6) AS center,
       c->>'null_to' AS null_to
  FROM jsonb_array_elements(mlpipe.export('opts')->'preprocess') c;
SELECT round(avg(a)::numeric, 6) AS train_mean_a FROM shop WHERE NOT is_test;

-- time split: the last test_size share by day is the test part.
SELECT version FROM mlpipe.train('tm', 'gbt', 'SELECT a, amount, day FROM shop', 'amount', NULL,
                                 '{"split": "time:day", "test_size": 0.1, "n_estimators": 20}');
SELECT features, lineage->>'test_rows' AS test_rows, training_rows FROM mlpipe.model_versions WHERE model = 'tm';
SELECT round(sqrt(avg((mlpipe.predict('tm', s) - amount) ^ 2))::numeric, 9) =
       round((SELECT (metrics->>'rmse')::numeric FROM mlpipe.model_versions WHERE model = 'tm'), 9) AS same_rmse
  FROM shop s WHERE day > (SELECT max(day) - 70 FROM shop);

-- Reproducible: the same seed gives the same artifact.
SELECT version FROM mlpipe.train('rep', 'gbt', 'shop', 'size', '{a,colour,tag}', '{"seed": 3, "n_estimators": 5, "subsample": 0.8}');
SELECT version FROM mlpipe.train('rep', 'gbt', 'shop', 'size', '{a,colour,tag}', '{"seed": 3, "n_estimators": 5, "subsample": 0.8}');
SELECT (SELECT count(*) FROM mlpipe.model_versions WHERE model = 'rep') AS versions,
       (SELECT count(*) FROM mlpipe.runs WHERE model = 'rep' AND kind = 'train') AS runs;

-- k-means: text columns one-hot, numbers scaled as asked.
SELECT version FROM mlpipe.train('km', 'kmeans', 'SELECT a, colour FROM shop WHERE a IS NOT NULL', NULL, NULL,
                                 '{"k": 3, "preprocess": {"a": {"scale": "standard"}}}');
SELECT features FROM mlpipe.model_versions WHERE model = 'km';
SELECT mlpipe.predict('km', t) BETWEEN 0 AND 2 AS cluster FROM (SELECT 3.0 AS a, 'green' AS colour) t;

-- An artifact with a PREPROCESS section is format 2; every byte flip and
-- truncation of it is rejected with XX001 (the fuzzer covers the same with
-- the checksum patched).
CREATE FUNCTION rejected(blob bytea) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM mlpipe.export(blob);
    RETURN 'accepted';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END $$;
SELECT rejected(mlpipe.artifact('km')) AS intact, get_byte(mlpipe.artifact('km'), 4) AS format,
       get_byte(mlpipe.artifact('rep'), 4) AS format_trees,
       get_byte(mlpipe.artifact('tm'), 4) AS format_without_preprocessing;
WITH a AS (SELECT mlpipe.artifact('km') AS blob),
     flips AS (
        SELECT rejected(set_byte(blob, i, get_byte(blob, i) # m)) AS outcome
          FROM a, generate_series(0, length(blob) - 1) i, (VALUES (1), (255)) f(m)
        UNION ALL
        SELECT rejected(substring(blob FROM 1 FOR n))
          FROM a, generate_series(0, length(blob) - 1) n)
SELECT outcome, count(*) > 0 AS seen FROM flips GROUP BY outcome ORDER BY outcome;

-- Bad input.
\set VERBOSITY terse
SELECT * FROM mlpipe.train('bad', 'gbt', 'shop', 'size', '{a,colour}', '{"preprocess": {"colour": {"encod": "onehot"}}}');
SELECT * FROM mlpipe.train('bad', 'gbt', 'shop', 'size', '{a,colour}', '{"preprocess": {"colour": {"encode": "hash"}}}');
SELECT * FROM mlpipe.train('bad', 'gbt', 'shop', 'size', '{a,colour}', '{"preprocess": {"color": {"encode": "onehot"}}}');
SELECT * FROM mlpipe.train('bad', 'gbt', 'shop', 'size', '{a,colour}', '{"preprocess": {"size": {"impute": "mean"}}}');
SELECT * FROM mlpipe.train('bad', 'gbt', 'shop', 'size', '{a,colour}', '{"preprocess": {"colour": {"scale": "standard"}}}');
SELECT * FROM mlpipe.train('bad', 'gbt', 'shop', 'size', '{a,colour}', '{"preprocess": {"a": {"encode": "onehot"}}}');
SELECT * FROM mlpipe.train('bad', 'gbt', 'shop', 'size', '{a,colour}', '{"preprocess": {"colour": {"impute": "median"}}}');
SELECT * FROM mlpipe.train('bad', 'gbt', 'shop', 'size', '{a,colour}', '{"preprocess": ["a"]}');
SELECT * FROM mlpipe.train('bad', 'gbt', 'shop', 'size', '{a,size}', '{}');
SELECT * FROM mlpipe.train('bad', 'gbt', 'shop', 'size', '{a,colour}', '{"split": "time:colour"}');
SELECT * FROM mlpipe.train('bad', 'gbt', 'shop', 'size', '{a,colour}', '{"split": "time:nosuch"}');
SELECT * FROM mlpipe.train('bad', 'gbt', 'shop', 'size', '{a,colour}', '{"split": "column:a"}');
SELECT * FROM mlpipe.train('bad', 'gbt', 'shop', 'size', '{a,is_test}', '{"split": "column:is_test"}');
SELECT * FROM mlpipe.train('bad', 'gbt', 'shop', 'size', '{a}', '{"split": "column:is_test", "test_size": 0.3}');
SELECT * FROM mlpipe.train('bad', 'gbt', 'SELECT a, size, false AS t FROM shop', 'size', NULL, '{"split": "column:t"}');
SELECT * FROM mlpipe.train('bad', 'gbt', 'shop', 'size', '{a}', '{"split": "sequential"}');
SELECT * FROM mlpipe.train('bad', 'kmeans', 'shop', NULL, '{a,colour}', '{"preprocess": {"colour": {"encode": "target"}}}');
SELECT * FROM mlpipe.train('bad', 'gbt', 'shop', 'size', '{a}', '{"preprocess": {"a": {"impute": "error"}}}');
SELECT mlpipe.predict('col', t) FROM (SELECT 1.0 AS a, 'red' AS colour) t;
SELECT mlpipe.predict('col', t) FROM (SELECT 1.0 AS a, 2 AS colour, 'x' AS tag, ARRAY[1.0, 0.0]::float8[] AS v) t;
SELECT mlpipe.predict('col', t) FROM (SELECT 'one' AS a, 'red' AS colour, 'x' AS tag, ARRAY[1.0, 0.0]::float8[] AS v) t;
SELECT mlpipe.predict('col', t) FROM (SELECT 1.0 AS a, 'red' AS colour, 'x' AS tag, ARRAY[1.0]::float8[] AS v) t;
SELECT mlpipe.predict('col', t) FROM (SELECT 1.0 AS a, 'red' AS colour, 'x' AS tag, 5 AS v) t;
SELECT mlpipe.predict_label('tm', t) FROM (SELECT 1.0 AS a) t;
SELECT mlpipe.predict('km', t) FROM (SELECT NULL::float8 AS a, 'green' AS colour) t;
\set VERBOSITY default
