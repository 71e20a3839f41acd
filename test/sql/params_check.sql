-- create_pipeline checks train and search params as deeply as train does
-- (issue #12): for a bad value of every parameter of every algorithm, the
-- error of mlpipe.train (before it reads any data) and of create_pipeline
-- have the same SQLSTATE, message and HINT. One path: mlpipe_internal._check_params
-- (src/pg/fit.c), which _fit's own checks are.
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS t_params CASCADE;
CREATE SCHEMA t_params;
SET search_path = t_params, public;
RESET client_min_messages;
SET mlpipe.progress = off;
CREATE TABLE pts AS SELECT i AS id, (i % 7)::float8 AS x, (i % 3)::float8 AS y, (i % 2)::text AS label
  FROM generate_series(1, 40) i;

-- SQLSTATE, message and HINT of a statement's error ('no error' when none).
CREATE FUNCTION err_of(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    h text;
BEGIN
    EXECUTE stmt;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS h = PG_EXCEPTION_HINT;
    RETURN SQLSTATE || ': ' || SQLERRM || CASE WHEN h <> '' THEN ' HINT: ' || h ELSE '' END;
END $$;

CREATE TABLE cases (n serial, algorithm text, target text, params jsonb);
INSERT INTO cases (algorithm, target, params) VALUES
    ('kmeans', NULL, '{"k": 0}'), ('kmeans', NULL, '{"k": "ten"}'), ('kmeans', NULL, '{"k": 2.5}'),
    ('kmeans', NULL, '{"init": "best"}'), ('kmeans', NULL, '{"centroids": [[0, 0]]}'),
    ('kmeans', NULL, '{"n_init": 0}'), ('kmeans', NULL, '{"max_iter": 0}'), ('kmeans', NULL, '{"tol": -1}'),
    ('kmeans', NULL, '{"distance": "manhattan"}'), ('kmeans', NULL, '{"seed": "x"}'),
    ('kmeans', NULL, '{"standardize": "yes"}'), ('kmeans', NULL, '{"on_null": "maybe"}'),
    ('kmeans', NULL, '{"exclude": "id"}'), ('kmeans', NULL, '{"sample_size": -1}'),
    ('kmeans', NULL, '{"warm_start": 5}'), ('kmeans', NULL, '{"profile_sample": -1}'),
    ('kmeans', NULL, '{"max_iters": 10}'), ('kmeans', 'label', '{}'),
    ('minibatch_kmeans', NULL, '{"batch_size": 0}'), ('minibatch_kmeans', NULL, '{"k": -1}'),
    ('decision_tree', 'label', '{"max_depth": -1}'), ('decision_tree', 'label', '{"max_bins": 1}'),
    ('decision_tree', 'label', '{"criterion": "purity"}'), ('decision_tree', 'label', '{"min_samples_leaf": 0}'),
    ('decision_tree', 'label', '{"min_samples_split": 1}'), ('decision_tree', 'label', '{"ccp_alpha": -1}'),
    ('decision_tree', 'label', '{"max_features": 0}'), ('decision_tree', 'label', '{"max_features": "half"}'),
    ('decision_tree', 'label', '{"class_weight": 5}'), ('decision_tree', 'label', '{"test_size": 2}'),
    ('decision_tree', 'label', '{"split": "sideways"}'), ('decision_tree', 'label', '{"task": "ranking"}'),
    ('decision_tree', 'label', '{"seed": -1}'), ('decision_tree', 'label', '{"on_null": "maybe"}'),
    ('decision_tree', 'label', '{"exclude": [1]}'), ('decision_tree', 'label', '{"n_estimators": 10}'),
    ('decision_tree', NULL, '{}'),
    ('random_forest', 'label', '{"n_estimators": "ten"}'), ('random_forest', 'label', '{"n_estimators": 0}'),
    ('random_forest', 'label', '{"bootstrap": "yes"}'), ('random_forest', 'label', '{"max_depth": "deep"}'),
    ('random_forest', 'label', '{"warm_start": "m@1"}'),
    ('gbt', 'label', '{"learning_rate": 0}'), ('gbt', 'label', '{"max_leaves": -1}'),
    ('gbt', 'label', '{"min_child_weight": -1}'), ('gbt', 'label', '{"l2": -1}'), ('gbt', 'label', '{"gamma": -1}'),
    ('gbt', 'label', '{"subsample": 0}'), ('gbt', 'label', '{"colsample": 2}'),
    ('gbt', 'label', '{"objective": "rank:pairwise"}'), ('gbt', 'label', '{"early_stopping_rounds": -1}'),
    ('gbt', 'label', '{"validation_size": 2}'), ('gbt', 'label', '{"n_estimators": -5}'),
    ('gbt', 'label', '{"criterion": "gini"}'),
    ('svm', 'label', '{}');

-- Each bad value: train's error, and whether create_pipeline says exactly the same.
SELECT c.n, c.algorithm, c.params, t.e AS train_error, t.e = p.e AS pipeline_same
  FROM cases c,
       LATERAL err_of(format('SELECT mlpipe.train(%L, %L, %L, %L, NULL, %L)', 'pc', c.algorithm, 'pts', c.target, c.params)) t(e),
       LATERAL err_of(format('SELECT mlpipe.create_pipeline(%L, %L)', 'pc',
           jsonb_build_object('steps', jsonb_build_array(jsonb_strip_nulls(jsonb_build_object(
               'kind', 'train', 'model', 'pc', 'algorithm', c.algorithm, 'source', 'pts',
               'target', c.target, 'params', c.params)))))) p(e)
 ORDER BY c.n;
-- ... except an unknown algorithm, which the pipeline check names by its path.
SELECT err_of($$SELECT mlpipe.create_pipeline('pc', '{"steps": [{"kind": "train", "model": "pc", "algorithm": "svm", "source": "pts", "target": "label"}]}')$$);

-- A search step: each value of a list, and each end of a range, as train would check it.
SELECT err_of($$SELECT mlpipe.create_pipeline('pc', '{"steps": [{"kind": "search", "model": "pc", "algorithm": "gbt", "source": "pts", "target": "label", "space": {"max_depth": [3, -1]}}]}')$$);
SELECT err_of($$SELECT mlpipe.create_pipeline('pc', '{"steps": [{"kind": "search", "model": "pc", "algorithm": "random_forest", "source": "pts", "target": "label", "strategy": "random", "space": {"n_estimators": {"min": 0, "max": 10, "int": true}}}]}')$$);
\set VERBOSITY default
-- The error says where in the config the value is.
SELECT mlpipe.create_pipeline('pc', '{"steps": [{"kind": "train", "model": "pc", "algorithm": "gbt", "source": "pts", "target": "label", "params": {"max_depth": -1}}]}');
\set VERBOSITY terse
-- Good params pass, and nothing was registered by any of the above (rolled
-- back: the pipelines test reads every pipeline version).
BEGIN;
SELECT mlpipe.create_pipeline('pc', '{"steps": [{"kind": "train", "model": "pc", "algorithm": "gbt", "source": "pts", "target": "label", "params": {"max_depth": 3, "as_of": "2024-01-01", "as_of_column": "id", "profile_sample": 0}}]}') IS NOT NULL AS created;
SELECT (SELECT count(*) FROM mlpipe.model_versions WHERE model = 'pc') AS versions,
       (SELECT count(*) FROM mlpipe.pipelines WHERE name = 'pc') AS pipelines;
ROLLBACK;

SET client_min_messages = warning;
DROP SCHEMA t_params CASCADE;
