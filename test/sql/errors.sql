-- Bad input: each case names its SQLSTATE, and none leaves a row behind.
-- A schema for this file, and an empty registry: its assertions read the
-- whole registry (model lists, run ids), which earlier files have filled.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS mlpipe CASCADE;
CREATE EXTENSION mlpipe;
DROP SCHEMA IF EXISTS t_errors CASCADE;
CREATE SCHEMA t_errors;
SET search_path = t_errors, public;
RESET client_min_messages;
SET mlpipe.progress = off;
CREATE TABLE pts AS SELECT i AS id, (i % 7)::float8 AS x, (i % 3)::float8 AS y, 'p' || i AS label
  FROM generate_series(1, 10) i;
CREATE TABLE empty_pts (x float8, y float8);
CREATE TABLE null_pts (x float8, y float8);
INSERT INTO null_pts VALUES (1, 2), (NULL, 3);
CREATE TABLE nan_pts (x float8, y float8);
INSERT INTO nan_pts VALUES (1, 2), ('NaN', 3);
CREATE TABLE inf_pts (x float8, y numeric);
INSERT INTO inf_pts VALUES (1, 2), ('-Infinity', 3);
CREATE TABLE ragged (v float8[]);
INSERT INTO ragged VALUES ('{1,2,3}'), ('{1,2}');

-- Runs a statement and reports its SQLSTATE and message.
CREATE FUNCTION try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

CREATE FUNCTION try_hint(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    h text;
BEGIN
    EXECUTE stmt;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS h = PG_EXCEPTION_HINT;
    RETURN SQLSTATE || ': ' || SQLERRM || ' HINT: ' || h;
END $$;

-- k out of range, unknown and misspelt params, unknown algorithm.
SELECT try($$SELECT mlpipe.train('m', 'kmeans', 'pts', features => '{x,y}', params => '{"k": 0}')$$);
SELECT try($$SELECT mlpipe.train('m', 'kmeans', 'pts', features => '{x,y}', params => '{"k": -3}')$$);
SELECT try($$SELECT mlpipe.train('m', 'kmeans', 'pts', features => '{x,y}', params => '{"k": 11}')$$);
SELECT try($$SELECT mlpipe.train('m', 'kmeans', 'pts', features => '{x,y}', params => '{"k": 2.5}')$$);
SELECT try_hint($$SELECT mlpipe.train('m', 'kmeans', 'pts', features => '{x,y}', params => '{"k": 2, "max_iters": 10}')$$);
SELECT try_hint($$SELECT mlpipe.train('m', 'kmeans', 'pts', features => '{x,y}', params => '{"colour": "red"}')$$);
SELECT try_hint($$SELECT mlpipe.train('m', 'kmeans', 'pts', features => '{x,y}', params => '{"batch_size": 10}')$$);
SELECT try_hint($$SELECT mlpipe.train('m', 'kmenas', 'pts')$$);
SELECT try($$SELECT mlpipe.train('m', 'kmeans', 'pts', features => '{x,y}', params => '{"init": "best"}')$$);
SELECT try($$SELECT mlpipe.train('m', 'kmeans', 'pts', features => '{x,y}', params => '{"distance": "manhattan"}')$$);
SELECT try($$SELECT mlpipe.train('m', 'kmeans', 'pts', features => '{x,y}', params => '{"tol": -1}')$$);
SELECT try($$SELECT mlpipe.train('m', 'kmeans', 'pts', features => '{x,y}', params => '{"n_init": 0}')$$);
SELECT try($$SELECT mlpipe.train('m', 'kmeans', 'pts', features => '{x,y}', params => '{"standardize": "yes"}')$$);
SELECT try($$SELECT mlpipe.train('m', 'kmeans', 'pts', features => '{x,y}', params => '{"init": "given"}')$$);
SELECT try($$SELECT mlpipe.train('m', 'kmeans', 'pts', features => '{x,y}', params => '{"init": "given", "centroids": [[1, 2, 3]]}')$$);
SELECT try($$SELECT mlpipe.train('m', 'kmeans', 'pts', features => '{x,y}', params => '{"k": 3, "init": "given", "centroids": [[1, 2]]}')$$);
SELECT try($$SELECT mlpipe.train('m', 'kmeans', 'pts', features => '{x,y}', params => '{"centroids": [[1, 2]]}')$$);
SELECT try($$SELECT mlpipe.train('m', 'kmeans', 'pts', features => '{x,y}', params => '[1, 2]')$$);
SELECT try($$SELECT mlpipe.train('m', 'kmeans', 'pts', target => 'x')$$);
SELECT try($$SELECT mlpipe.train('m', 'kmeans', 'pts', params => '{"exclude": "label"}')$$);
SELECT try($$SELECT mlpipe.train('m', 'kmeans', 'pts', params => '{"exclude": ["nope"]}')$$);
SELECT try($$SELECT mlpipe.train('bad@name', 'kmeans', 'pts')$$);
SELECT try($$SELECT mlpipe.train('', 'kmeans', 'pts')$$);
SELECT try($$SELECT mlpipe.train('m', 'kmeans', 'pts', params => '{"warm_start": "nosuch"}')$$);

-- Malformed JSON is rejected by the jsonb parser before mlpipe runs.
SELECT try($$SELECT mlpipe.train('m', 'kmeans', 'pts', params => '{"k": 2,')$$);

-- Empty sources, NULL / NaN / Inf values, non-numeric columns, ragged arrays.
SELECT try($$SELECT mlpipe.train('m', 'kmeans', 'empty_pts', params => '{"k": 1}')$$);
SELECT try($$SELECT mlpipe.train('m', 'kmeans', 'SELECT * FROM pts WHERE false', features => '{x,y}', params => '{"k": 1}')$$);
SELECT try_hint($$SELECT mlpipe.train('m', 'kmeans', 'null_pts', params => '{"k": 1}')$$);
SELECT try($$SELECT mlpipe.train('m', 'kmeans', 'nan_pts', params => '{"k": 1}')$$);
SELECT try($$SELECT mlpipe.train('m', 'kmeans', 'inf_pts', params => '{"k": 1}')$$);
SELECT try($$SELECT mlpipe.train('m', 'kmeans', 'SELECT x FROM null_pts WHERE x IS NULL', params => '{"k": 1, "on_null": "skip"}')$$);
SELECT try_hint($$SELECT mlpipe.train('m', 'kmeans', 'pts', params => '{"k": 2}')$$);
SELECT try($$SELECT mlpipe.train('m', 'kmeans', 'ragged', params => '{"k": 1}')$$);
SELECT try($$SELECT mlpipe.train('m', 'kmeans', 'SELECT ARRAY[[1,2],[3,4]]::float8[] AS v', params => '{"k": 1}')$$);

-- Unknown sources and columns.
SELECT try_hint($$SELECT mlpipe.train('m', 'kmeans', 'no_such_table')$$);
SELECT try($$SELECT mlpipe.train('m', 'kmeans', 'pts; DROP TABLE pts')$$);
SELECT try($$SELECT mlpipe.train('m', 'kmeans', 'SELECT 1 AS x; DROP TABLE pts')$$);
-- a source that returns no rows to read (SELECT INTO): refused before it runs, as the cursor did
SELECT try($$SELECT mlpipe.train('m', 'kmeans', 'SELECT x INTO pts_copy FROM pts')$$);
SELECT to_regclass('pts_copy') IS NULL AS not_created;
SELECT try_hint($$SELECT mlpipe.train('m', 'kmeans', 'pts', features => '{x,nope}')$$);
SELECT try($$SELECT mlpipe.train('m', 'kmeans', 'pts', features => '{x,x}')$$);
SELECT count(*) AS pts_still_there FROM pts;

-- Nothing above left a trace in the registry.
SELECT (SELECT count(*) FROM mlpipe.models) AS models,
       (SELECT count(*) FROM mlpipe.model_versions) AS versions,
       (SELECT count(*) FROM mlpipe.runs) AS runs,
       (SELECT count(*) FROM mlpipe.metrics) AS metrics,
       (SELECT count(*) FROM mlpipe.aliases) AS aliases,
       (SELECT count(*) FROM mlpipe.alias_events) AS events;

-- Scoring errors: unknown model, version, alias; wrong feature count; NULLs.
-- (the gate only asks for a silhouette, so this version becomes production)
SELECT version FROM mlpipe.train('m', 'kmeans', 'pts', features => '{x,y}',
                                 params => '{"k": 2, "init": "given", "centroids": [[0, 0], [5, 2]]}',
                                 gate => '{"metric": "silhouette", "min": 0}');
SELECT try_hint($$SELECT mlpipe.predict('nosuch', ARRAY[1.0, 2.0])$$);
SELECT try_hint($$SELECT mlpipe.predict('m@9', ARRAY[1.0, 2.0])$$);
SELECT try_hint($$SELECT mlpipe.predict('m@staging', ARRAY[1.0, 2.0])$$);
SELECT try_hint($$SELECT mlpipe.predict('m', ARRAY[1.0, 2.0, 3.0])$$);
SELECT try($$SELECT mlpipe.predict('m', ARRAY[1.0, NULL])$$);
SELECT try($$SELECT mlpipe.predict('m', ARRAY['NaN', 1.0]::float8[])$$);
SELECT try($$SELECT mlpipe.predict('m', '{{1,2},{3,4}}'::float8[])$$);
SELECT mlpipe.predict('m', NULL::float8[]) IS NULL AS strict_null;

-- A failed statement outside a savepoint leaves the registry as it was.
SELECT mlpipe.train('m', 'kmeans', 'pts', features => '{x,y}', params => '{"k": 50}');
SELECT count(*) AS versions FROM mlpipe.model_versions;

-- permission denied for function train (docs/security.md): train says it
-- with a HINT naming the role to grant (issue #12); the documented grants
-- are the fix, in order.
SET client_min_messages = warning;
DROP ROLE IF EXISTS t_err_ana;
CREATE ROLE t_err_ana;
RESET client_min_messages;
GRANT USAGE ON SCHEMA t_errors TO t_err_ana;
SET ROLE t_err_ana;
SELECT try_hint($$SELECT mlpipe.train('perm_m', 'kmeans', 't_errors.pts', features => '{x,y}', params => '{"k": 2}')$$);
SELECT try_hint($$SELECT mlpipe.run_pipeline('nope')$$);
RESET ROLE;
GRANT mlpipe_trainer TO t_err_ana;
SET ROLE t_err_ana;
SELECT try($$SELECT mlpipe.train('perm_m', 'kmeans', 't_errors.pts', features => '{x,y}', params => '{"k": 2}')$$);
RESET ROLE;
GRANT SELECT ON t_errors.pts TO t_err_ana;
SET ROLE t_err_ana;
SELECT version FROM mlpipe.train('perm_m', 'kmeans', 't_errors.pts', features => '{x,y}', params => '{"k": 2}');
RESET ROLE;
SELECT mlpipe.drop_model('perm_m');
REVOKE ALL ON t_errors.pts FROM t_err_ana;
REVOKE ALL ON SCHEMA t_errors FROM t_err_ana;
DROP ROLE t_err_ana;
