-- k-means end to end on a tiny hand-checkable data set: train, registry rows,
-- model references, scoring by name and by artifact, inspection.
-- A schema for this file, and an empty registry: its assertions read the
-- whole registry (model lists, run ids), which earlier files have filled.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS mlpipe CASCADE;
CREATE EXTENSION mlpipe;
DROP SCHEMA IF EXISTS t_kmeans CASCADE;
CREATE SCHEMA t_kmeans;
SET search_path = t_kmeans, public;
RESET client_min_messages;
SET mlpipe.progress = off;
CREATE TABLE pts (id int, x float8, y real, grp text);
INSERT INTO pts
SELECT i, CASE WHEN i <= 10 THEN 0 ELSE 10 END + (i % 3) * 0.1, (i % 5) * 0.1,
       CASE WHEN i <= 10 THEN 'a' ELSE 'b' END
  FROM generate_series(1, 20) i;

-- Given centroids: the result is fixed, so the figures are exact.
SELECT model, version, promoted, run_id > 0 AS has_run,
       round((metrics->>'inertia')::numeric, 6) AS inertia,
       metrics->>'iterations' AS iterations,
       round((metrics->>'silhouette')::numeric, 6) AS silhouette
  FROM mlpipe.train('blobs', 'kmeans', 'pts', features => ARRAY['x', 'y'],
                    params => '{"k": 2, "init": "given", "centroids": [[0, 0], [10, 0]]}');

-- The first version is production; registry rows are in place.
SELECT name, task, algorithm FROM mlpipe.models;
SELECT model, version, algorithm, task, features, training_rows, skipped_rows, status,
       size = octet_length(artifact) AS size_ok, sha256 = encode(sha256(artifact), 'hex') AS sha_ok,
       source, mlpipe_version = mlpipe.version() AS version_recorded
  FROM mlpipe.model_versions;
SELECT model, alias, version FROM mlpipe.aliases;
SELECT model, alias, from_version, to_version, action FROM mlpipe.alias_events;
SELECT kind, model, version, algorithm, status, rows FROM mlpipe.runs;
SELECT split, metric FROM mlpipe.metrics ORDER BY metric;

-- Scoring: each blob gets its own cluster, by every form of reference.
SELECT grp, array_agg(DISTINCT mlpipe.predict('blobs', ARRAY[x, y]::float8[])) AS clusters
  FROM pts GROUP BY grp ORDER BY grp;
SELECT mlpipe.predict('blobs@1', ARRAY[0.2, 0.1]), mlpipe.predict('blobs@production', ARRAY[9.5, 0]);
SELECT mlpipe.predict(artifact, ARRAY[9.5, 0.0]) FROM mlpipe.model_versions WHERE model = 'blobs';
SELECT mlpipe.features('blobs'), mlpipe.classes('blobs');

-- A second version is registered; the default gate compares silhouette.
SELECT version, promoted FROM mlpipe.train('blobs', 'kmeans', 'SELECT x, y FROM pts',
                                           params => '{"k": 2, "seed": 7}');
SELECT version, status, gate->>'reason' AS reason FROM mlpipe.model_versions ORDER BY version;

-- model_info and export.
SELECT mlpipe.model_info('blobs@1') - 'created_at' - 'sha256' - 'run_id' - 'size' - 'metrics' - 'gate'
       || jsonb_build_object('lineage', (mlpipe.model_info('blobs@1')->'lineage') - 'threads' - 'mlpipe_version');
SELECT jsonb_pretty(mlpipe.export('blobs@1') - 'centroids');
SELECT jsonb_array_length(mlpipe.export('blobs@1')->'centroids') AS k;

-- Standardised, cosine and mini-batch variants train and score.
SELECT version FROM mlpipe.train('blobs_std', 'kmeans', 'pts', features => ARRAY['x', 'y'],
                                 params => '{"k": 2, "standardize": true, "n_init": 3, "seed": 1}');
SELECT jsonb_typeof(mlpipe.export('blobs_std')->'centroids_raw') AS raw_centroids;
SELECT count(DISTINCT mlpipe.predict('blobs_std', ARRAY[x, y]::float8[])) FROM pts;
SELECT version FROM mlpipe.train('blobs_cos', 'kmeans', 'SELECT x + 1 AS x, y + 1 AS y FROM pts',
                                 params => '{"k": 2, "distance": "cosine"}');
SELECT version FROM mlpipe.train('blobs_mb', 'minibatch_kmeans', 'pts', features => ARRAY['x', 'y'],
                                 params => '{"k": 2, "batch_size": 8, "max_iter": 20}');
SELECT count(DISTINCT mlpipe.predict('blobs_mb', ARRAY[x, y]::float8[])) FROM pts;

-- Warm start: continue the mini-batch model on new rows (incremental learning).
SELECT version FROM mlpipe.train('blobs_mb', 'minibatch_kmeans', 'SELECT x + 0.05 AS x, y FROM pts',
                                 params => '{"batch_size": 8, "max_iter": 5, "warm_start": "blobs_mb@1"}');
SELECT mlpipe.model_info('blobs_mb@2')->'lineage'->>'warm_start' AS warm,
       mlpipe.model_info('blobs_mb@2')->'lineage'->>'k' AS k;

-- Array features are expanded to v[1], v[2]; real[] too.
CREATE TABLE vecs AS SELECT id, ARRAY[x, y]::float8[] AS v, ARRAY[x, y]::real[] AS r FROM pts;
SELECT version FROM mlpipe.train('vec', 'kmeans', 'vecs', features => ARRAY['v'],
                                 params => '{"k": 2, "init": "given", "centroids": [[0, 0], [10, 0]]}');
SELECT mlpipe.features('vec');
SELECT version FROM mlpipe.train('vec2', 'kmeans', 'vecs', features => ARRAY['r', 'id'], params => '{"k": 2}');
SELECT mlpipe.features('vec2');
SELECT count(*) FILTER (WHERE mlpipe.predict('vec', v) = mlpipe.predict('blobs@1', v)) AS same_as_blobs
  FROM vecs;

-- on_null = 'skip' skips and counts rows with NULL, NaN or infinite features.
INSERT INTO pts VALUES (21, NULL, 1, 'a'), (22, 'NaN', 1, 'a'), (23, 1, 'Infinity', 'a');
SELECT version FROM mlpipe.train('skipper', 'kmeans', 'pts', features => ARRAY['x', 'y'],
                                 params => '{"k": 2, "on_null": "skip"}');
SELECT training_rows, skipped_rows FROM mlpipe.model_versions WHERE model = 'skipper';

-- Gates: an undefined metric fails the gate (the version stays a
-- candidate); must_beat must name an alias; gate values are typed.
SELECT version, promoted FROM mlpipe.train('one', 'kmeans', 'SELECT x, y FROM pts WHERE id <= 20', params => '{"k": 2}');
SELECT version, promoted FROM mlpipe.train('one', 'kmeans', 'SELECT x, y FROM pts WHERE id <= 20', params => '{"k": 1}');
SELECT version, status, gate->>'reason' AS reason FROM mlpipe.model_versions WHERE model = 'one' ORDER BY version;
\set VERBOSITY terse
SELECT version, promoted FROM mlpipe.train('one', 'kmeans', 'SELECT x, y FROM pts WHERE id <= 20', params => '{"k": 2}',
                                           gate => '{"must_beat": "staging"}');
\set VERBOSITY default

-- The matrix is sized from the planner's row estimate: a source the planner
-- underestimates (the matrix then grows while rows come) and one it
-- overestimates train the same model as one it estimates right.
CREATE TABLE many AS
SELECT i AS id, ARRAY[(i % 97)::float8, ((i * 7) % 89)::float8] AS v
  FROM generate_series(1, 60000) i;
ANALYZE many;
CREATE FUNCTION plan_rows(q text) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE p json;
BEGIN
    EXECUTE 'EXPLAIN (FORMAT JSON) ' || q INTO p;
    RETURN (p->0->'Plan'->>'Plan Rows')::float8;
END $$;
-- (presized where the estimate is above 16,384 rows)
SELECT plan_rows('SELECT v FROM many WHERE v[1] > -1') BETWEEN 16384 AND 40000 AS low_estimate,
       plan_rows('SELECT v FROM many WHERE id <= 20000 OR v[1] < -1') > 30000 AS high_estimate;
SELECT 1 FROM mlpipe.train('est_right', 'kmeans', 'SELECT v FROM many', params => '{"k": 3, "seed": 5}');
SELECT 1 FROM mlpipe.train('est_low', 'kmeans', 'SELECT v FROM many WHERE v[1] > -1',
                           params => '{"k": 3, "seed": 5}');
SELECT 1 FROM mlpipe.train('est_right_20k', 'kmeans', 'SELECT v FROM many WHERE id <= 20000',
                           params => '{"k": 3, "seed": 5}');
SELECT 1 FROM mlpipe.train('est_high', 'kmeans', 'SELECT v FROM many WHERE id <= 20000 OR v[1] < -1',
                           params => '{"k": 3, "seed": 5}');
SELECT a.model, a.training_rows, a.sha256 = b.sha256 AS same_artifact
  FROM mlpipe.model_versions a
  JOIN mlpipe.model_versions b ON b.model = CASE a.model WHEN 'est_low' THEN 'est_right' ELSE 'est_right_20k' END
 WHERE a.model IN ('est_low', 'est_high') ORDER BY 1;
