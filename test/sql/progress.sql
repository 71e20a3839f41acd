-- Progress lines (issue #12): what each algorithm, search and
-- cross_validate print while they work, read back through
-- mlpipe_internal._progress_log() with the volatile numbers (seconds, loss values,
-- artifact sizes) masked. mlpipe.progress_interval = 0 prints a line at
-- every check, so the lines are deterministic (one thread).
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS t_progress CASCADE;
CREATE SCHEMA t_progress;
SET search_path = t_progress, public;
CREATE TABLE pp AS SELECT i, (i % 3) * 10 + (i % 7) * 0.1 AS x, (i % 3) * 10 + (i % 5) * 0.1 AS y,
                          (i % 3)::text AS c, (i % 3) * 2.5 + (i % 7) * 0.1 AS v
  FROM generate_series(1, 3000) i;
SET mlpipe.threads = 1;
SET mlpipe.progress = on;
SET mlpipe.progress_interval = 0;

-- The lines of the last statement, numbers masked: seconds as N, a loss or
-- centre shift as V, an artifact size as SIZE; with how often each came.
CREATE FUNCTION said() RETURNS TABLE (line text, n bigint) LANGUAGE sql AS $$
    SELECT m, count(*) FROM (
        SELECT o, regexp_replace(regexp_replace(regexp_replace(l,
                   '[0-9]+\.[0-9] s', 'N s', 'g'),
                   '(shift|loss|inertia) [-0-9.e+]+', '\1 V'),
                   'storing the .* artifact', 'storing the SIZE artifact') AS m
          FROM unnest(mlpipe_internal._progress_log()) WITH ORDINALITY u(l, o)) s
    GROUP BY m ORDER BY min(o)
$$;

-- k-means: iterations done of max_iter, the squared centre shift, an upper
-- estimate ("at most": it stops when it converges) from the second on.
SELECT version FROM mlpipe.train('p_km', 'kmeans', 'pp', NULL, '{x,y}', '{"k": 3}');
SELECT * FROM said();
-- A forest: trees done of the total, no loss (a forest has none), an
-- estimate from the time per tree; then scoring the evaluation rows.
SELECT version FROM mlpipe.train('p_rf', 'random_forest', 'pp', 'c', '{x,y}', '{"n_estimators": 3}');
SELECT * FROM said();
-- A single tree: one unit.
SELECT version FROM mlpipe.train('p_dt', 'decision_tree', 'pp', 'c', '{x,y}', '{"max_depth": 3}');
SELECT * FROM said();
-- gbt: rounds done, the validation loss once there is one.
SELECT version FROM mlpipe.train('p_gbt', 'gbt', 'pp', 'c', '{x,y}', '{"n_estimators": 3, "early_stopping_rounds": 2}');
SELECT * FROM said();
SELECT version FROM mlpipe.train('p_gbr', 'gbt', 'pp', 'v', '{x,y}', '{"n_estimators": 2}');
SELECT * FROM said();
-- mini-batch k-means: passes over the data done (on noise, so that the run
-- does not stop early, within the 64 steps between two checks).
SELECT version FROM mlpipe.train('p_mb', 'minibatch_kmeans', $$SELECT (i * 7919 % 1000) / 10.0 AS x, (i::bigint * 104729 % 997) / 10.0 AS y FROM generate_series(1, 30000) i$$, NULL, '{x,y}',
                                 '{"k": 3, "batch_size": 10, "tol": 0, "max_iter": 2}');
SELECT * FROM said() WHERE line LIKE '%pass%';
-- search: candidates done of the total; cross_validate: folds done.
SELECT version FROM mlpipe.search('p_s', 'decision_tree', 'pp', 'c', '{x,y}', '{"max_depth": [2, 3]}', folds => 2);
SELECT * FROM said() WHERE line LIKE 'search%';
SELECT mlpipe.cross_validate('decision_tree', 'pp', 'c', '{x,y}', '{"max_depth": 2}', 3) ? 'mean' AS cv;
SELECT * FROM said() WHERE line LIKE 'cross_validate%';
-- Off: nothing (the log keeps the last statement that printed).
SET mlpipe.progress = off;
SELECT version FROM mlpipe.train('p_off', 'kmeans', 'pp', NULL, '{x,y}', '{"k": 2}');
SELECT count(*) AS lines_of_cross_validate FROM unnest(mlpipe_internal._progress_log()) l WHERE l LIKE 'cross_validate%';
SELECT count(*) AS lines_of_off FROM unnest(mlpipe_internal._progress_log()) l WHERE l LIKE 'kmeans%';
DROP SCHEMA t_progress CASCADE;
