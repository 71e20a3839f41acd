-- gbt params.warm_start (issue #14): rounds added to an existing version,
-- the lineage and training_info numbering, and what it refuses.
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS t_gbt_warm CASCADE;
CREATE SCHEMA t_gbt_warm;
SET search_path = t_gbt_warm, public;
RESET client_min_messages;
SET mlpipe.progress = off;

CREATE TABLE pts AS
SELECT i AS id, (i * 0.37) % 10 AS a, sin(i) * 3 AS b, ((i * 7) % 13)::float8 AS c,
       CASE WHEN (i * 0.37) % 10 + sin(i) * 3 > 5 THEN 'yes' ELSE 'no' END AS y,
       CASE i % 3 WHEN 0 THEN 'r' WHEN 1 THEN 'g' ELSE 'b' END AS colour,
       (i * 0.37) % 10 * 2 + sin(i) * 3 + ((i * 7) % 13) * 0.1 AS v
  FROM generate_series(1, 2000) i;

CREATE FUNCTION try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    hint text;
BEGIN
    EXECUTE stmt;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS hint = PG_EXCEPTION_HINT;
    RETURN SQLSTATE || ': ' || SQLERRM || coalesce(' HINT: ' || nullif(hint, ''), '');
END $$;

-- 30 rounds, then 20 more on the same rows: the same artifact as 50 at once.
SELECT version FROM mlpipe.train('w', 'gbt', 'pts', 'y', '{a,b,c}', '{"n_estimators": 30, "test_size": 0}');
SELECT version FROM mlpipe.train('w', 'gbt', 'pts', 'y', '{a,b,c}',
                                 '{"n_estimators": 20, "test_size": 0, "warm_start": "w@1"}');
SELECT version FROM mlpipe.train('w50', 'gbt', 'pts', 'y', '{a,b,c}', '{"n_estimators": 50, "test_size": 0}');
SELECT (SELECT sha256 FROM mlpipe.model_versions WHERE model = 'w' AND version = 2) =
       (SELECT sha256 FROM mlpipe.model_versions WHERE model = 'w50') AS same_as_50_rounds;

-- The lineage names the parent and the rounds; training_info continues at 30.
SELECT lineage->'parent' AS parent, lineage->>'warm_start' AS ref,
       lineage->'parent_rounds' AS parent_rounds, lineage->'rounds_added' AS rounds_added
  FROM mlpipe.model_versions WHERE model = 'w' AND version = 2;
SELECT version, min(iteration), max(iteration), count(*)
  FROM mlpipe.training_iterations WHERE model = 'w' GROUP BY version ORDER BY version;

-- Warm start on other rows (the parent's thresholds stay bin edges), and 0 rounds: the parent's predictions.
SELECT version FROM mlpipe.train('w', 'gbt', 'SELECT * FROM pts WHERE id > 1000', 'y', '{a,b,c}',
                                 '{"n_estimators": 10, "test_size": 0, "warm_start": "w@1"}');
SELECT version FROM mlpipe.train('w', 'gbt', 'SELECT * FROM pts WHERE id <= 100', 'y', '{a,b,c}',
                                 '{"n_estimators": 0, "test_size": 0, "warm_start": "w@1"}');
SELECT count(*) FILTER (WHERE mlpipe.predict_proba('w@1', ARRAY[a, b, c]) = mlpipe.predict_proba('w@4', ARRAY[a, b, c])) AS same,
       count(*) AS rows
  FROM pts;

-- Regression continues regression.
SELECT version FROM mlpipe.train('wr', 'gbt', 'pts', 'v', '{a,b,c}', '{"n_estimators": 10, "test_size": 0}');
SELECT version FROM mlpipe.train('wr', 'gbt', 'pts', 'v', '{a,b,c}', '{"n_estimators": 10, "test_size": 0, "warm_start": "wr@1"}');

-- Refused: another algorithm's parent, another algorithm continuing, other
-- features, another task, other classes, another objective, preprocessing.
SELECT version FROM mlpipe.train('wk', 'kmeans', 'pts', NULL, '{a,b,c}', '{"k": 2}');
SELECT version FROM mlpipe.train('wf', 'random_forest', 'pts', 'y', '{a,b,c}', '{"n_estimators": 3}');
SELECT try($$SELECT mlpipe.train('x', 'gbt', 'pts', 'y', '{a,b,c}', '{"warm_start": "wk"}')$$);
SELECT try($$SELECT mlpipe.train('x', 'gbt', 'pts', 'y', '{a,b,c}', '{"warm_start": "wf"}')$$);
SELECT try($$SELECT mlpipe.train('x', 'random_forest', 'pts', 'y', '{a,b,c}', '{"warm_start": "w@1"}')$$);
SELECT try($$SELECT mlpipe.train('x', 'gbt', 'pts', 'y', '{a,b}', '{"warm_start": "w@1"}')$$);
SELECT try($$SELECT mlpipe.train('x', 'gbt', 'pts', 'y', '{a,c,b}', '{"warm_start": "w@1"}')$$);
SELECT try($$SELECT mlpipe.train('x', 'gbt', 'pts', 'v', '{a,b,c}', '{"warm_start": "w@1"}')$$);
SELECT try($$SELECT mlpipe.train('x', 'gbt', 'pts', 'y', '{a,b,c}', '{"warm_start": "wr@1"}')$$);
SELECT try($$SELECT mlpipe.train('x', 'gbt', 'pts', 'colour', '{a,b,c}', '{"warm_start": "w@1"}')$$);
SELECT try($$SELECT mlpipe.train('x', 'gbt', 'SELECT a, b, c, upper(y) AS y FROM pts', 'y', '{a,b,c}', '{"warm_start": "w@1"}')$$);
SELECT try($$SELECT mlpipe.train('x', 'gbt', 'pts', 'y', '{a,b,c}', '{"warm_start": "w@1", "objective": "multi:softmax"}')$$);
SELECT try($$SELECT mlpipe.train('x', 'gbt', 'pts', 'y', '{a,b,c,colour}', '{"warm_start": "w@1"}')$$);
SELECT split_part(try($$SELECT mlpipe.train('x', 'gbt', 'pts', 'y', '{a,b,c}', '{"warm_start": "nosuch@1"}')$$), ' HINT', 1) AS try;
SELECT try($$SELECT mlpipe.train('x', 'gbt', 'pts', 'y', '{a,b,c}', '{"n_estimators": 0}')$$);

SET client_min_messages = warning;
SELECT mlpipe.drop_model(m) FROM unnest(ARRAY['w', 'w50', 'wr', 'wk', 'wf']) m;
DROP SCHEMA t_gbt_warm CASCADE;
