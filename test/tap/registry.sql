-- Registry behaviour: transactional training, append-only history,
-- model references, gates and the internals' privileges.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS mlpipe;
SET mlpipe.progress = off;
SELECT plan(24);

CREATE TEMP TABLE tap_pts AS
SELECT i AS id, (CASE WHEN i % 2 = 0 THEN 0 ELSE 8 END + (i % 5) * 0.1)::float8 AS x,
       ((i % 3) * 0.1)::float8 AS y
  FROM generate_series(1, 40) i;

SELECT has_table('mlpipe', 'models', 'models table');
SELECT has_table('mlpipe', 'model_versions', 'model_versions table');
SELECT has_table('mlpipe', 'alias_events', 'alias_events table');
SELECT col_type_is('mlpipe', 'model_versions', 'artifact', 'bytea', 'artifact is bytea');
SELECT ok((SELECT count(*) = 6 FROM pg_extension e, unnest(e.extconfig) c, pg_class r
            WHERE e.extname = 'mlpipe' AND r.oid = c AND r.relkind = 'r'
              AND r.relname IN ('models', 'model_versions', 'aliases', 'alias_events', 'runs', 'metrics')),
          'pg_dump keeps the six registry tables');

SELECT lives_ok($$SELECT mlpipe.train('tap_m', 'kmeans', 'tap_pts', features => '{x,y}',
                  params => '{"k": 2, "init": "given", "centroids": [[0,0],[8,0]]}')$$, 'first training');
SELECT is((SELECT version FROM mlpipe.aliases WHERE model = 'tap_m' AND alias = 'production'), 1,
          'first version becomes production');

-- A failing training inside a savepoint leaves no trace.
SELECT throws_ok($$SELECT mlpipe.train('tap_m', 'kmeans', 'tap_pts', features => '{x,y}', params => '{"k": 41}')$$,
                 '22000', NULL, 'k above the row count is 22000');
SELECT is((SELECT count(*) FROM mlpipe.model_versions WHERE model = 'tap_m'), 1::bigint,
          'failed training added no version');
SELECT is((SELECT count(*) FROM mlpipe.runs WHERE model = 'tap_m'), 1::bigint, 'failed training added no run');

-- A rolled-back training is gone too.
SAVEPOINT before_second;
SELECT lives_ok($$SELECT mlpipe.train('tap_m', 'kmeans', 'tap_pts', features => '{x,y}', params => '{"k": 2}')$$,
                'second training');
ROLLBACK TO SAVEPOINT before_second;
SELECT is((SELECT count(*) FROM mlpipe.model_versions WHERE model = 'tap_m'), 1::bigint,
          'a rolled-back training leaves the registry as it was');

-- A gate that fails keeps the version as a candidate with the reason.
SELECT is((SELECT promoted FROM mlpipe.train('tap_m', 'kmeans', 'tap_pts', features => '{x,y}',
              params => '{"k": 2}', gate => '{"metric": "silhouette", "min": 2}')), false,
          'gate with an impossible minimum does not promote');
SELECT matches((SELECT gate->>'reason' FROM mlpipe.model_versions WHERE model = 'tap_m' AND version = 2),
               'below the minimum', 'the reason is stored');
SELECT is((SELECT version FROM mlpipe.aliases WHERE model = 'tap_m' AND alias = 'production'), 1,
          'production still points at version 1');
SELECT throws_ok($$SELECT mlpipe.train('tap_m', 'kmeans', 'tap_pts', features => '{x,y}',
                   params => '{"k": 2}', gate => '{"metrik": "silhouette"}')$$, '22023', NULL,
                 'unknown gate key is 22023');

-- References.
SELECT is((SELECT version FROM mlpipe.resolve('tap_m@2')), 2, 'name@version');
SELECT is((SELECT version FROM mlpipe.resolve('tap_m')), 1, 'name is production');
SELECT throws_ok($$SELECT mlpipe.resolve('tap_m@nope')$$, '42704', NULL, 'unknown alias is 42704');

-- The history is append-only, even for its owner.
SELECT throws_ok($$UPDATE mlpipe.alias_events SET reason = 'x'$$, '42501', NULL, 'alias_events refuses UPDATE');
SELECT throws_ok($$DELETE FROM mlpipe.alias_events$$, '42501', NULL, 'alias_events refuses DELETE');
SELECT throws_ok($$TRUNCATE mlpipe.alias_events$$, '42501', NULL, 'alias_events refuses TRUNCATE');

-- Internals are not callable by PUBLIC; SECURITY DEFINER functions pin search_path.
SELECT ok(NOT has_function_privilege('public', 'mlpipe_internal._register(text,text,text,text,jsonb,jsonb,timestamptz,mlpipe.fit_result)', 'EXECUTE'),
          'PUBLIC cannot call _register');
SELECT is((SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname IN ('mlpipe', 'mlpipe_internal') AND p.prosecdef
              AND NOT coalesce(p.proconfig::text LIKE '%search_path=pg_catalog, pg_temp%', false)),
          0::bigint, 'every SECURITY DEFINER function pins search_path');

SELECT * FROM finish();
ROLLBACK;
