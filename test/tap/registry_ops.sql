-- Registry operations: promote, rollback through history, version_at,
-- prune with its retention window, tags, model_info lineage, gates on
-- promote, event payloads under the NOTIFY limit, the fit token.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS mlpipe;
SET mlpipe.progress = off;
SET client_min_messages = warning;
SELECT plan(71);

CREATE SCHEMA tap_ops;
CREATE TABLE tap_ops.pts AS
SELECT i AS id, (CASE WHEN i % 2 = 0 THEN 0 ELSE 8 END + (i % 5) * 0.1)::float8 AS x,
       ((i % 3) * 0.1)::float8 AS y
  FROM generate_series(1, 40) i;

-- Four versions, each promoted by a gate it passes: production 1 -> 2 -> 3 -> 4.
SELECT is((SELECT count(*) FILTER (WHERE t.promoted)
             FROM generate_series(1, 4) g,
                  LATERAL mlpipe.train('ops', 'kmeans', 'tap_ops.pts', features => '{x,y}',
                                       params => jsonb_build_object('k', 2, 'seed', g),
                                       gate => '{"metric": "silhouette", "min": 0}') t),
          4::bigint, 'four versions trained and promoted');
SELECT is((SELECT version FROM mlpipe.aliases WHERE model = 'ops' AND alias = 'production'), 4,
          'production is version 4');

-- promote: records who, when, from, to and why.
SELECT is(mlpipe.promote('ops', 2, 'staging', 'smoke test'), 2, 'promote returns the version');
SELECT results_eq($$SELECT from_version, to_version, action, reason, by_user::text FROM mlpipe.alias_events
                     WHERE model = 'ops' AND alias = 'staging'$$,
                  $$VALUES (NULL::int, 2, 'promote'::text, 'smoke test'::text, session_user::text)$$,
                  'alias_events records from, to, action, reason and user');
SELECT is((SELECT count(*) FROM mlpipe.alias_events WHERE model = 'ops' AND at IS NULL), 0::bigint,
          'every event has a time');
SELECT is(mlpipe.promote('ops', 2, 'staging'), 2, 'promoting the current version is a no-op');
SELECT is((SELECT count(*) FROM mlpipe.alias_events WHERE model = 'ops' AND alias = 'staging'), 1::bigint,
          '... that records no event');
SELECT throws_ok($$SELECT mlpipe.promote('ops', 9)$$, '42704', 'model "ops" has no version 9', 'unknown version is 42704');
SELECT throws_ok($$SELECT mlpipe.promote('nope', 1)$$, '42704', 'model "nope" does not exist', 'unknown model is 42704');
SELECT throws_ok($$SELECT mlpipe.promote('ops', 0)$$, '22023', NULL, 'version 0 is 22023');
SELECT throws_ok($$SELECT mlpipe.promote('ops', 1, 'no such alias!')$$, '22023', NULL, 'bad alias name is 22023');
SELECT throws_ok($$SELECT mlpipe.promote(NULL, 1)$$, '22004', NULL, 'NULL model is 22004');

-- rollback walks back through history, one change at a time.
SELECT is(mlpipe.rollback('ops'), 3, 'rollback 1: 4 -> 3');
SELECT is(mlpipe.rollback('ops'), 2, 'rollback 2: 3 -> 2');
SELECT is(mlpipe.rollback('ops'), 1, 'rollback 3: 2 -> 1');
SELECT throws_ok($$SELECT mlpipe.rollback('ops')$$, '55000', NULL, 'nothing before the first version: 55000');
SELECT is((SELECT array_agg(to_version ORDER BY event_id) FROM mlpipe.alias_events
            WHERE model = 'ops' AND alias = 'production' AND action = 'rollback'),
          ARRAY[3, 2, 1], 'each rollback is an event');
-- Not a toggle: promote 4, then 3, then walk back 4, 1.
SELECT is(mlpipe.promote('ops', 4, reason => 'fixed'), 4, 'promote 4 again');
SELECT is(mlpipe.promote('ops', 3), 3, 'promote 3');
SELECT is(mlpipe.rollback('ops', reason => 'bad'), 4, 'rollback undoes the last promotion: 3 -> 4');
SELECT is(mlpipe.rollback('ops'), 1, '... and then the one before: 4 -> 1');
SELECT is((SELECT reason FROM mlpipe.alias_events WHERE model = 'ops' AND action = 'rollback'
            ORDER BY event_id DESC OFFSET 1 LIMIT 1), 'bad', 'the rollback reason is stored');
SELECT throws_ok($$SELECT mlpipe.rollback('ops', 'staging')$$, '55000', NULL, 'staging held only version 2');
SELECT throws_ok($$SELECT mlpipe.rollback('ops', 'canary')$$, '42704', 'model "ops" has no alias "canary"',
                 'unknown alias is 42704');
SELECT is(mlpipe.promote('ops', 4), 4, 'production back to 4');

-- version_at replays alias_events.
SELECT is(mlpipe.version_at('ops', '-infinity'), NULL, 'NULL before the first version');
SELECT is((SELECT count(*) FROM mlpipe.alias_events e
            WHERE e.model = 'ops' AND mlpipe.version_at('ops', e.at, e.alias) IS DISTINCT FROM e.to_version),
          0::bigint, 'at the time of every event, version_at gives its version');
SELECT is(mlpipe.version_at('ops', 'infinity'), 4, 'now: the current version');
SELECT is(mlpipe.version_at('ops', 'infinity', 'staging'), 2, 'another alias');
SELECT throws_ok($$SELECT mlpipe.version_at('ops', now(), 'canary')$$, '42704', NULL, 'an alias never held is 42704');
SELECT throws_ok($$SELECT mlpipe.version_at('nope', now())$$, '42704', NULL, 'unknown model is 42704');

-- A gate on promote: a failing version keeps the alias where it was.
SELECT is(mlpipe.promote('ops', 1, 'staging', gate => '{"metric": "silhouette", "min": 2}'), NULL,
          'a failing gate does not promote');
SELECT is((SELECT version FROM mlpipe.aliases WHERE model = 'ops' AND alias = 'staging'), 2, 'staging unchanged');
SELECT matches((SELECT gate->>'reason' FROM mlpipe.model_versions WHERE model = 'ops' AND version = 1),
               'below the minimum 2', 'the reason is stored with the version');
SELECT is(mlpipe.promote('ops', 1, 'staging', gate => '{"metric": "silhouette", "min": 0.5}'), 1,
          'a passing gate promotes');
SELECT throws_ok($$SELECT mlpipe.promote('ops', 3, gate => '{"metrik": "x"}')$$, '22023', NULL,
                 'unknown gate key is 22023');

-- Tags.
SELECT is(mlpipe.tag('ops', 'owner', 'team-a'), '{"owner": "team-a"}'::jsonb, 'model tag');
SELECT is(mlpipe.tag('ops', 3, 'note', 'it''s; fine'), '{"note": "it''s; fine"}'::jsonb, 'version tag, quotes kept');
SELECT is(mlpipe.model_info('ops@3')->'tags', '{"note": "it''s; fine"}'::jsonb, 'model_info shows version tags');
SELECT is(mlpipe.model_info('ops@3')->'model_tags', '{"owner": "team-a"}'::jsonb, '... and model tags');
SELECT is(mlpipe.untag('ops', 'owner'), '{}'::jsonb, 'untag');
SELECT throws_ok($$SELECT mlpipe.tag('ops', '', 'x')$$, '22023', NULL, 'empty tag key is 22023');
SELECT throws_ok($$SELECT mlpipe.tag('ops', 'k', NULL)$$, '22004', NULL, 'NULL tag value is 22004');
SELECT throws_ok($$SELECT mlpipe.tag('ops', 'k', repeat('x', 5000))$$, '54000', NULL, 'tag value over 4096 is 54000');
SELECT throws_ok($$SELECT mlpipe.tag('ops', 7, 'k', 'v')$$, '42704', NULL, 'tag on an unknown version is 42704');

-- Lineage: a warm start records its parent as (model, version), exactly.
SELECT lives_ok($$SELECT mlpipe.train('ops_child', 'kmeans', 'tap_ops.pts', features => '{x,y}',
                    params => '{"warm_start": "ops", "max_iter": 3}')$$, 'warm start from ops (production = 4)');
SELECT is(mlpipe.model_info('ops_child')->'lineage'->'parent', '{"model": "ops", "version": 4}'::jsonb,
          'lineage.parent is the version production held then');
SELECT is(mlpipe.model_info('ops@4')->'lineage'->'children', '[{"model": "ops_child", "version": 1}]'::jsonb,
          'lineage.children lists it');
SELECT is(mlpipe.model_info('ops@4')->'lineage'->>'source', 'tap_ops.pts', 'lineage.source');
SELECT is((mlpipe.model_info('ops@4')->'lineage'->>'run_id')::bigint,
          (SELECT run_id FROM mlpipe.model_versions WHERE model = 'ops' AND version = 4), 'lineage.run_id');

-- Prune: two never-promoted candidates 5 and 6, then prune.
SELECT is((SELECT count(*) FILTER (WHERE NOT t.promoted) FROM generate_series(1, 2) g,
             LATERAL mlpipe.train('ops', 'kmeans', 'tap_ops.pts', features => '{x,y}',
                                  params => jsonb_build_object('k', 2, 'seed', g),
                                  gate => '{"metric": "silhouette", "min": 2}') t),
          2::bigint, 'two candidates');
SELECT is(mlpipe.prune('ops', 1), '{5}'::int[], 'default window keeps every version aliased in 30 days');
SELECT is(mlpipe.promote('ops', 2) + mlpipe.promote('ops', 4), 6, 'production history ... 4, 2, 4');
SELECT is(mlpipe.prune('ops', 1, '0 seconds'), '{2,3}'::int[],
          'a zero window keeps only the aliased versions (1, 4) and the newest (6)');
SELECT is((SELECT array_agg(version ORDER BY version) FROM mlpipe.model_versions WHERE model = 'ops'),
          '{1,4,6}'::int[], 'versions left');
SELECT is((SELECT params->'removed' FROM mlpipe.runs WHERE model = 'ops' AND kind = 'prune' ORDER BY run_id DESC LIMIT 1),
          '[2, 3]'::jsonb, 'prune is logged as a run');
SELECT is(mlpipe.rollback('ops'), 1, 'rollback skips pruned and current versions (4 -> 2 pruned -> 4 current -> 1)');
SELECT throws_ok($$SELECT mlpipe.prune('ops', 0)$$, '22023', NULL, 'keep 0 is 22023');
SELECT throws_ok($$SELECT mlpipe.prune('ops', 1, '-1 day')$$, '22023', NULL, 'negative window is 22023');
SELECT is((SELECT version FROM mlpipe.train('ops', 'kmeans', 'tap_ops.pts', features => '{x,y}', params => '{"k": 2}')),
          7, 'version numbers are not reused after a prune');

-- Event payloads stay valid JSON under NOTIFY's 8000-byte limit.
SELECT is(mlpipe_internal._event_payload('promoted', '{"model": "m", "version": 1, "alias": "production", "run_id": 5}')::jsonb - 'at',
          jsonb_build_object('event', 'promoted', 'model', 'm', 'version', 1, 'alias', 'production',
                             'run_id', 5, 'by', session_user), 'a small payload is kept whole, with who sent it');
SELECT cmp_ok(octet_length(mlpipe_internal._event_payload('promoted',
                  jsonb_build_object('model', 'm', 'version', 1, 'alias', 'production', 'run_id', 5,
                                     'reason', repeat('why? ', 40000)))), '<', 8000, 'a 200 kB reason is cut under 8000 bytes');
SELECT is(mlpipe_internal._event_payload('promoted',
              jsonb_build_object('model', 'm', 'version', 1, 'alias', 'production', 'run_id', 5,
                                 'reason', repeat('why? ', 40000)))::jsonb - 'at' - 'by' - 'reason',
          '{"event": "promoted", "model": "m", "version": 1, "alias": "production", "run_id": 5, "truncated": true}'::jsonb,
          '... valid JSON that keeps event, model, version, alias, run_id');
SELECT cmp_ok(octet_length(mlpipe_internal._event_payload('gate_failed',
                  jsonb_build_object('model', repeat('é', 200), 'version', 1, 'reason', repeat('é"\', 9000),
                                     'detail', repeat('ü', 9000)))), '<', 8000,
              'multibyte and escaped characters are counted in bytes');

-- The fit token: _register takes only an unedited _fit result, once.
CREATE FUNCTION tap_ops.register_edited(edit text) RETURNS int LANGUAGE plpgsql AS $$
DECLARE f mlpipe.fit_result; r mlpipe.train_result;
BEGIN
    f := mlpipe_internal._fit('kmeans', 'tap_ops.pts', NULL, '{x,y}', '{"k": 2}', NULL);
    IF edit = 'metrics' THEN f.metrics := f.metrics || '{"silhouette": 1}'; END IF;
    IF edit = 'artifact' THEN f.artifact := f.artifact || '\x00'::bytea; END IF;
    IF edit = 'info' THEN f.info := f.info || '{"profile": {"ms": 3}}'; END IF;
    IF edit = 'rows' THEN f.info := f.info || '{"training_rows": 1}'; END IF;
    IF edit = 'trace' THEN f.info := jsonb_set(f.info, '{trace,training_loss,0}', '0'); END IF;
    r := mlpipe_internal._register('ops_tok', 'kmeans', 'tap_ops.pts', NULL, '{"k": 2}', NULL, now(), f);
    IF edit = 'twice' THEN r := mlpipe_internal._register('ops_tok', 'kmeans', 'tap_ops.pts', NULL, '{}', NULL, now(), f); END IF;
    RETURN r.version;
END $$;
SELECT throws_ok($$SELECT tap_ops.register_edited('metrics')$$, '42501', NULL, 'edited metrics are refused');
SELECT throws_ok($$SELECT tap_ops.register_edited('artifact')$$, '42501', NULL, 'an edited artifact is refused');
SELECT throws_ok($$SELECT tap_ops.register_edited('rows')$$, '42501', NULL, 'edited row counts are refused');
SELECT throws_ok($$SELECT tap_ops.register_edited('trace')$$, '42501', NULL, 'an edited training trace is refused');
SELECT throws_ok($$SELECT tap_ops.register_edited('twice')$$, '42501', NULL, 'one fit registers once');
SELECT is(tap_ops.register_edited('info'), 1, 'extra lineage notes in info are accepted');

-- The history refuses changes even with triggers in replica mode.
SET LOCAL session_replication_role = replica;
SELECT throws_ok($$DELETE FROM mlpipe.alias_events$$, '42501', NULL, 'DELETE refused in replica mode too');
RESET session_replication_role;

SELECT * FROM finish();
ROLLBACK;
