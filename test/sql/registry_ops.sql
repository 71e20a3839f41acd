-- Registry operations: exact outputs and error lines of promote, rollback,
-- version_at, prune and tags (behaviour is in test/tap/registry_ops.sql).
-- An empty registry: the lineage shown holds the run id, which counts the
-- runs of earlier files.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS mlpipe CASCADE;
CREATE EXTENSION mlpipe;
DROP SCHEMA IF EXISTS t_regops CASCADE;
CREATE SCHEMA t_regops;
SET search_path = t_regops, public;
RESET client_min_messages;
SET mlpipe.progress = off;

CREATE TABLE pts AS SELECT i AS id, (i % 2) * 10 + (i % 3) * 0.1 AS x, (i % 5) * 0.1 AS y
  FROM generate_series(1, 40) i;
SELECT version, promoted FROM mlpipe.train('reg', 'kmeans', 'pts', features => '{x,y}',
    params => '{"k": 2, "init": "given", "centroids": [[0, 0], [10, 0]]}');
SELECT version, promoted FROM mlpipe.train('reg', 'kmeans', 'pts', features => '{x,y}',
    params => '{"k": 2, "seed": 1}', gate => '{"metric": "silhouette", "min": 0}');
SELECT version, promoted FROM mlpipe.train('reg', 'kmeans', 'pts', features => '{x,y}',
    params => '{"k": 3, "seed": 2}', gate => '{"metric": "silhouette", "min": 0.99}');

SELECT mlpipe.promote('reg', 3, 'staging', 'try k = 3');
SELECT mlpipe.promote('reg', 3, 'staging');
SELECT mlpipe.promote('reg', 3, gate => '{"metric": "silhouette", "min": 0.99}');
SELECT mlpipe.rollback('reg', reason => 'back');
SELECT alias, from_version, to_version, action, reason FROM mlpipe.alias_events WHERE model = 'reg' ORDER BY event_id;
SELECT mlpipe.version_at('reg', '-infinity'), mlpipe.version_at('reg', 'infinity'),
       mlpipe.version_at('reg', 'infinity', 'staging');
SELECT mlpipe.tag('reg', 'owner', 'data-team'), mlpipe.tag('reg', 2, 'note', 'k = 2 reseeded');
SELECT mlpipe.untag('reg', 2, 'note');
SELECT mlpipe.model_info('reg@1')->'tags' AS tags, mlpipe.model_info('reg@1')->'model_tags' AS model_tags,
       (mlpipe.model_info('reg@1')->'lineage') - 'threads'::text - 'mlpipe_version'::text AS lineage;
SELECT mlpipe.prune('reg', 1, '0 seconds');
SELECT version, status FROM mlpipe.model_versions WHERE model = 'reg' ORDER BY version;

-- Bad input.
\set VERBOSITY terse
SELECT mlpipe.promote('nope', 1);
SELECT mlpipe.promote('reg', 9);
SELECT mlpipe.promote('reg', -1);
SELECT mlpipe.promote('reg', 1, 'Bad Alias');
SELECT mlpipe.promote('reg', 1, 'x''; DROP TABLE pts; --');
SELECT mlpipe.promote(NULL, 1);
SELECT mlpipe.promote('reg', 3, gate => '{"metrik": "silhouette"}');
SELECT mlpipe.rollback('reg');
SELECT mlpipe.rollback('reg', 'canary');
SELECT mlpipe.rollback('nope');
SELECT mlpipe.version_at('reg', now(), 'canary');
SELECT mlpipe.version_at('nope', now());
SELECT mlpipe.prune('reg', 0);
SELECT mlpipe.prune('reg', 1, '-1 day');
SELECT mlpipe.prune('nope', 1);
SELECT mlpipe.tag('reg', '', 'x');
SELECT mlpipe.tag('reg', 'k', NULL);
SELECT mlpipe.tag('reg', 'k', repeat('x', 5000));
SELECT mlpipe.tag('reg', 9, 'k', 'v');
SELECT mlpipe.tag('nope', 'k', 'v');
UPDATE mlpipe.alias_events SET reason = 'rewritten';
DELETE FROM mlpipe.alias_events;
SELECT mlpipe_internal._register('forged', 'kmeans', 'pts', NULL, '{}', NULL, now(),
    ROW(mlpipe.artifact('reg'), 'clustering', '{x,y}', NULL, '{"silhouette": 1}', '{"training_rows": 1}')::mlpipe.fit_result);
\set VERBOSITY default
SELECT count(*) AS pts_rows FROM pts;
