-- Roles and security: what mlpipe_reader, _scorer, _trainer and _admin may
-- do; registry tables written only through functions; training reads the
-- source as the caller (grants and row-level security hold); hostile model
-- names, aliases and sources run nothing but the intended statement.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS mlpipe;
SET mlpipe.progress = off;
SET client_min_messages = warning;
SELECT plan(76);

-- Runs q as role r; returns 'ok' or the SQLSTATE it failed with.
CREATE FUNCTION pg_temp.state_as(r text, q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE res text := 'ok';
BEGIN
    EXECUTE format('SET LOCAL ROLE %I', r);
    BEGIN
        EXECUTE q;
    EXCEPTION WHEN OTHERS THEN
        res := SQLSTATE;
    END;
    RESET ROLE;
    RETURN res;
END $$;
-- Runs q as role r; returns its first column as text, or 'ERROR <sqlstate>'.
CREATE FUNCTION pg_temp.value_as(r text, q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE res text;
BEGIN
    EXECUTE format('SET LOCAL ROLE %I', r);
    BEGIN
        EXECUTE q INTO res;
    EXCEPTION WHEN OTHERS THEN
        res := 'ERROR ' || SQLSTATE;
    END;
    RESET ROLE;
    RETURN res;
END $$;

-- Runs q as role r; returns 'SQLSTATE: message (HINT: hint)' or 'ok'.
CREATE FUNCTION pg_temp.error_as(r text, q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE res text := 'ok';
    e_msg text;
    e_hint text;
BEGIN
    EXECUTE format('SET LOCAL ROLE %I', r);
    BEGIN
        EXECUTE q;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS e_msg = MESSAGE_TEXT, e_hint = PG_EXCEPTION_HINT;
        res := SQLSTATE || ': ' || e_msg || ' (HINT: ' || e_hint || ')';
    END;
    RESET ROLE;
    RETURN res;
END $$;

CREATE ROLE tap_reader IN ROLE mlpipe_reader;
CREATE ROLE tap_scorer IN ROLE mlpipe_scorer;
CREATE ROLE tap_trainer IN ROLE mlpipe_trainer;
CREATE ROLE tap_admin IN ROLE mlpipe_admin;
CREATE ROLE tap_nobody;

CREATE SCHEMA tap_roles;
GRANT USAGE, CREATE ON SCHEMA tap_roles TO mlpipe_trainer;
GRANT USAGE ON SCHEMA tap_roles TO mlpipe_reader;
CREATE TABLE tap_roles.pts AS
SELECT i AS id, (CASE WHEN i % 2 = 0 THEN 0 ELSE 8 END + (i % 5) * 0.1)::float8 AS x,
       ((i % 3) * 0.1)::float8 AS y,
       CASE WHEN i % 3 = 0 THEN 'visible' ELSE 'hidden' END AS owner_tag
  FROM generate_series(1, 90) i;
GRANT SELECT ON tap_roles.pts TO mlpipe_trainer;
CREATE TABLE tap_roles.secret AS SELECT * FROM tap_roles.pts;   -- no grant
CREATE TABLE tap_roles.victim AS SELECT g AS a FROM generate_series(1, 3) g;
GRANT SELECT ON tap_roles.victim TO mlpipe_trainer;

SELECT lives_ok($$SELECT mlpipe.train('roles_m', 'kmeans', 'tap_roles.pts', features => '{x,y}', params => '{"k": 2}')$$,
                'the owner trains roles_m');

-- The hierarchy.
SELECT ok(pg_has_role('mlpipe_admin', 'mlpipe_trainer', 'MEMBER') AND pg_has_role('mlpipe_trainer', 'mlpipe_scorer', 'MEMBER')
          AND pg_has_role('mlpipe_scorer', 'mlpipe_reader', 'MEMBER'), 'admin > trainer > scorer > reader');
SELECT ok(NOT pg_has_role('mlpipe_reader', 'mlpipe_scorer', 'MEMBER'), 'reader is not a scorer');

-- reader: reads the registry, cannot score, train, promote or write.
SELECT is(pg_temp.value_as('tap_reader', $$SELECT count(*) FROM mlpipe.model_versions WHERE model = 'roles_m'$$), '1',
          'reader reads model_versions');
SELECT is(pg_temp.state_as('tap_reader', $$SELECT (SELECT count(*) FROM mlpipe.models) + (SELECT count(*) FROM mlpipe.aliases)
            + (SELECT count(*) FROM mlpipe.alias_events) + (SELECT count(*) FROM mlpipe.runs) + (SELECT count(*) FROM mlpipe.metrics)$$),
          'ok', 'reader reads models, aliases, alias_events, runs, metrics');
SELECT is(pg_temp.value_as('tap_reader', $$SELECT mlpipe.model_info('roles_m')->>'version'$$), '1', 'reader: model_info');
SELECT is(pg_temp.value_as('tap_reader', $$SELECT mlpipe.features('roles_m')::text$$), '{x,y}', 'reader: features');
SELECT is(pg_temp.value_as('tap_reader', $$SELECT mlpipe.export('roles_m')->>'version'$$), '1', 'reader: export');
SELECT is(pg_temp.value_as('tap_reader', $$SELECT mlpipe.version_at('roles_m', 'infinity')$$), '1', 'reader: version_at');
SELECT is(pg_temp.value_as('tap_reader', $$SELECT version FROM mlpipe.resolve('roles_m')$$), '1', 'reader: resolve');
SELECT is(pg_temp.state_as('tap_reader', $$SELECT mlpipe.train('r1', 'kmeans', 'tap_roles.pts', features => '{x,y}')$$),
          '42501', 'reader cannot train');
SELECT is(pg_temp.state_as('tap_reader', $$SELECT mlpipe.promote('roles_m', 1, 'staging')$$), '42501', 'reader cannot promote');
SELECT is(pg_temp.state_as('tap_reader', $$SELECT mlpipe.predict('roles_m', ARRAY[0.0, 0.0])$$), '42501', 'reader cannot predict');
SELECT is(pg_temp.state_as('tap_reader', $$SELECT mlpipe.predict(mlpipe.artifact('roles_m'), ARRAY[0.0, 0.0])$$), '42501',
          'reader cannot predict from the artifact either');
SELECT is(pg_temp.state_as('tap_reader', $$UPDATE mlpipe.models SET tags = '{"x": 1}'$$), '42501', 'reader cannot write models');

-- scorer: predicts, cannot promote, roll back or train.
SELECT is(pg_temp.value_as('tap_scorer', $$SELECT mlpipe.predict('roles_m', ARRAY[8.0, 0.1]) = mlpipe.predict('roles_m@1', ARRAY[8.0, 0.1])$$),
          'true', 'scorer predicts by name');
SELECT is(pg_temp.state_as('tap_scorer', $$SELECT mlpipe.predict(mlpipe.artifact('roles_m'), ARRAY[8.0, 0.1])$$), 'ok',
          'scorer predicts from the artifact');
SELECT is(pg_temp.state_as('tap_scorer', $$SELECT mlpipe.promote('roles_m', 1, 'staging')$$), '42501', 'scorer cannot promote');
SELECT is(pg_temp.state_as('tap_scorer', $$SELECT mlpipe.rollback('roles_m')$$), '42501', 'scorer cannot roll back');
SELECT is(pg_temp.state_as('tap_scorer', $$SELECT mlpipe.train('s1', 'kmeans', 'tap_roles.pts', features => '{x,y}')$$),
          '42501', 'scorer cannot train');

-- trainer: trains on what it may read, cannot promote, prune or write the registry.
SELECT is(pg_temp.value_as('tap_trainer', $$SELECT version FROM mlpipe.train('roles_m', 'kmeans', 'tap_roles.pts',
                             features => '{x,y}', params => '{"k": 2, "seed": 1}')$$), '2', 'trainer trains');
SELECT is((SELECT created_by::text FROM mlpipe.model_versions WHERE model = 'roles_m' AND version = 2), session_user::text,
          'created_by is the session user');
SELECT is(pg_temp.state_as('tap_trainer', $$SELECT mlpipe.train('t1', 'kmeans', 'tap_roles.secret', features => '{x,y}')$$),
          '42501', 'trainer cannot train on a table it may not read');
SELECT is(pg_temp.state_as('tap_trainer', $$SELECT mlpipe.train('t1', 'kmeans', 'SELECT x, y FROM tap_roles.secret')$$),
          '42501', '... nor through a query');
SELECT is(pg_temp.state_as('tap_trainer', $$SELECT mlpipe.promote('roles_m', 1, 'staging')$$), '42501', 'trainer cannot promote');
SELECT is(pg_temp.state_as('tap_trainer', $$SELECT mlpipe.prune('roles_m', 1)$$), '42501', 'trainer cannot prune');
SELECT is(pg_temp.state_as('tap_trainer', $$SELECT mlpipe.tag('roles_m', 'k', 'v')$$), '42501', 'trainer cannot tag');
SELECT is(pg_temp.state_as('tap_trainer', $$SELECT mlpipe_internal._set_alias('roles_m', 'production', 1, 'promote', 'sneaky')$$),
          '42501', 'trainer cannot call _set_alias');
SELECT is(pg_temp.state_as('tap_trainer', $$INSERT INTO mlpipe.aliases (model, alias, version) VALUES ('roles_m', 'sneaky', 1)$$),
          '42501', 'trainer cannot insert aliases');
SELECT is(pg_temp.state_as('tap_trainer', $$UPDATE mlpipe.model_versions SET metrics = '{}'$$), '42501',
          'trainer cannot update model_versions');
SELECT is(pg_temp.state_as('tap_trainer', $$SELECT mlpipe_internal._register('forged', 'kmeans', 'x', NULL, '{}', NULL, now(),
             ROW(mlpipe.artifact('roles_m'), 'clustering', '{x,y}', NULL, '{"silhouette": 1}', '{"training_rows": 1}')::mlpipe.fit_result)$$),
          '42501', 'trainer cannot register a forged fit result');
SELECT is(pg_temp.state_as('tap_trainer', $$SELECT mlpipe_internal._log_run('evaluate', 'roles_m', 1, 'kmeans', 'x', '{}', 'succeeded', NULL, 1, now())$$),
          'ok', 'trainer may log evaluation runs through _log_run');
SELECT is(pg_temp.state_as('tap_trainer', $$SELECT mlpipe_internal._log_run('train', 'roles_m', 1, 'kmeans', 'x', '{}', 'succeeded', NULL, 1, now(), NULL, '{"accuracy": 1}')$$),
          '42501', 'trainer cannot forge a training run through _log_run (issue #10 item 6)');

-- admin: promotes, rolls back, tags, prunes; still cannot write tables or the history.
SELECT is(pg_temp.value_as('tap_admin', $$SELECT mlpipe.promote('roles_m', 1, 'staging', 'admin test')$$), '1', 'admin promotes');
SELECT is(pg_temp.value_as('tap_admin', $$SELECT mlpipe.rollback('roles_m')$$), '1', 'admin rolls back');
SELECT is((SELECT by_user::text FROM mlpipe.alias_events WHERE model = 'roles_m' ORDER BY event_id DESC LIMIT 1),
          session_user::text, 'by_user is the session user');
SELECT is(pg_temp.value_as('tap_admin', $$SELECT mlpipe.tag('roles_m', 'owner', 'ops')->>'owner'$$), 'ops', 'admin tags');
SELECT is(pg_temp.value_as('tap_admin', $$SELECT mlpipe.prune('roles_m', 1)::text$$), '{}', 'admin prunes');
SELECT is(pg_temp.state_as('tap_admin', $$DELETE FROM mlpipe.model_versions$$), '42501', 'admin cannot delete versions directly');
SELECT is(pg_temp.state_as('tap_admin', $$UPDATE mlpipe.alias_events SET reason = 'x'$$), '42501', 'admin cannot rewrite history');
SELECT is(pg_temp.state_as('tap_nobody', $$SELECT count(*) FROM mlpipe.models$$), '42501', 'a role without mlpipe roles reads nothing');
SELECT is(pg_temp.state_as('tap_nobody', $$SELECT mlpipe.model_info('roles_m')$$), '42501', '... and calls nothing');

-- Issue #12: the entry points that need a role are EXECUTE to PUBLIC and
-- check the role themselves, to name it in a HINT; nothing they call is,
-- so a role in none of mlpipe's roles still trains, reads and writes nothing.
SELECT is(pg_temp.error_as('tap_nobody', $$SELECT mlpipe.train('n1', 'kmeans', 'tap_roles.pts', features => '{x,y}')$$),
          '42501: permission denied for function train (HINT: GRANT mlpipe_trainer TO tap_nobody;)',
          'train without the role: 42501 naming the role to grant');
SELECT is(pg_temp.error_as('tap_scorer', $$SELECT * FROM mlpipe.search('n1', 'kmeans', 'tap_roles.pts', NULL, '{x,y}', '{"k": [2]}')$$),
          '42501: permission denied for function search (HINT: GRANT mlpipe_trainer TO tap_scorer;)',
          'search: the same for a scorer');
SELECT is(pg_temp.error_as('tap_reader', $$SELECT mlpipe.predict_table('roles_m', 'tap_roles.pts', 'tap_roles.n_preds', 'id')$$),
          '42501: permission denied for function predict_table (HINT: GRANT mlpipe_trainer TO tap_reader;)',
          'predict_table: the same for a reader');
SELECT is(pg_temp.error_as('tap_trainer', $$SELECT mlpipe.run_pipeline('nope')$$),
          '42501: permission denied for function run_pipeline (HINT: GRANT mlpipe_admin TO tap_trainer;)',
          'run_pipeline names mlpipe_admin');
SELECT is(pg_temp.error_as('tap_trainer', $$SELECT mlpipe.create_pipeline('nope', '{"steps": []}'::jsonb)$$),
          '42501: permission denied for function create_pipeline (HINT: GRANT mlpipe_admin TO tap_trainer;)',
          'create_pipeline (jsonb) names mlpipe_admin');
SELECT is(pg_temp.state_as('tap_nobody', $$SELECT mlpipe.evaluate('roles_m', 'tap_roles.pts')$$)
          || '/' || pg_temp.state_as('tap_nobody', $$SELECT mlpipe.cross_validate('decision_tree', 'tap_roles.pts', 'owner_tag', '{x,y}')$$)
          || '/' || pg_temp.state_as('tap_nobody', $$SELECT mlpipe.drift('roles_m', 'tap_roles.pts')$$)
          || '/' || pg_temp.state_as('tap_nobody', $$SELECT mlpipe.import('n2', '{}'::jsonb, '{x}')$$)
          || '/' || pg_temp.state_as('tap_nobody', $$SELECT mlpipe.tune_threshold('roles_m')$$)
          || '/' || pg_temp.state_as('tap_nobody', $$SELECT mlpipe.explain_global('roles_m', 'tap_roles.pts')$$)
          || '/' || pg_temp.state_as('tap_nobody', $$SELECT mlpipe.schedule('nope', '* * * * *')$$)
          || '/' || pg_temp.state_as('tap_nobody', $$SELECT mlpipe.unschedule('nope')$$)
          || '/' || pg_temp.state_as('tap_nobody', $$SELECT mlpipe.drop_pipeline('nope')$$),
          '42501/42501/42501/42501/42501/42501/42501/42501/42501', 'every checked entry point refuses a role in none of the roles');
SELECT is(pg_temp.state_as('tap_nobody', $$SELECT mlpipe_internal._train('n1', 'kmeans', 'tap_roles.pts', NULL, '{x,y}', '{}', NULL)$$)
          || '/' || pg_temp.state_as('tap_nobody', $$SELECT mlpipe_internal._cross_validate('decision_tree', 'tap_roles.pts', 'owner_tag', '{x,y}', '{}', 2, NULL, 'cross_validate')$$)
          || '/' || pg_temp.state_as('tap_nobody', $$SELECT mlpipe.promote('roles_m', 1, 'staging')$$)
          || '/' || pg_temp.state_as('tap_nobody', $$INSERT INTO mlpipe.runs (kind) VALUES ('train')$$),
          '42501/42501/42501/42501', '... nor what they call, the SECURITY DEFINER ones, or the tables');
SELECT is((SELECT count(*) FROM mlpipe.models WHERE name LIKE 'n_'), 0::bigint, 'no model was registered by those calls');
SELECT is(pg_temp.value_as('tap_trainer', $$SELECT mlpipe.cross_validate('decision_tree', 'tap_roles.pts', 'owner_tag', '{x,y}', '{}', 2)->>'rows'$$),
          '90', 'a trainer cross-validates');
SELECT is((SELECT string_agg(p.oid::regprocedure::text, ', ' ORDER BY p.oid::regprocedure::text)
             FROM pg_proc p WHERE p.pronamespace = 'mlpipe'::regnamespace AND p.prokind = 'f'
              AND has_function_privilege('public', p.oid, 'EXECUTE')
              AND (p.prosecdef OR p.proname IN ('train', 'search', 'cross_validate', 'tune_threshold', 'import', 'evaluate',
                                                 'predict_table', 'drift', 'explain_global', 'create_pipeline', 'drop_pipeline',
                                                 'run_pipeline', 'schedule', 'unschedule', 'promote', 'rollback', 'prune',
                                                 'drop_model', 'drop_grouped_model', 'tag', 'untag'))),
          'mlpipe.create_pipeline(text,jsonb), mlpipe.create_pipeline(text,text), mlpipe.cross_validate(text,text,text,text[],jsonb,integer), '
          'mlpipe.drift(text,text,double precision,double precision), mlpipe.drop_pipeline(text), mlpipe.evaluate(text,text), '
          'mlpipe.explain_global(text,text,integer,text), mlpipe.import(text,jsonb,text[],text[],jsonb,text), '
          'mlpipe.predict_table(text,text,text,text,text,jsonb,text,text), mlpipe.run_pipeline(text), mlpipe.schedule(text,text), '
          'mlpipe.search(text,text,text,text,text[],jsonb,text,integer,integer,jsonb), '
          'mlpipe.train(text,text,text,text,text[],jsonb,jsonb), mlpipe.tune_threshold(text,text,jsonb), mlpipe.unschedule(text)',
          'the PUBLIC entry points are exactly the checked ones (no SECURITY DEFINER function)');

-- Prediction tables (once mlpipe.predict_table is merged): a reader reads what a trainer wrote.
SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM pg_proc WHERE pronamespace = 'mlpipe'::regnamespace AND proname = 'predict_table')
            THEN skip('mlpipe.predict_table is not built on this branch', 1)
            ELSE is(pg_temp.state_as('tap_trainer', $$SELECT mlpipe.predict_table('roles_m', 'tap_roles.pts', 'tap_roles.preds', 'id')$$)
                    || '/' || pg_temp.state_as('tap_reader', $$SELECT count(*) FROM tap_roles.preds$$),
                    'ok/ok', 'a reader reads the prediction table a trainer wrote') END;

-- Row-level security: the trainer's model saw only the rows the policy shows it.
CREATE TABLE tap_roles.rls AS SELECT * FROM tap_roles.pts;
ALTER TABLE tap_roles.rls ENABLE ROW LEVEL SECURITY;
CREATE POLICY only_visible ON tap_roles.rls FOR SELECT USING (owner_tag = 'visible');
GRANT SELECT ON tap_roles.rls TO mlpipe_trainer;
SELECT is(pg_temp.value_as('tap_trainer', $$SELECT count(*) FROM tap_roles.rls$$), '30', 'the policy shows the trainer 30 of 90 rows');
SELECT is(pg_temp.value_as('tap_trainer', $$SELECT version FROM mlpipe.train('rls_m', 'kmeans', 'tap_roles.rls', features => '{x,y}', params => '{"k": 2}')$$),
          '1', 'trainer trains on the RLS table');
SELECT is((SELECT training_rows FROM mlpipe.model_versions WHERE model = 'rls_m' AND version = 1), 30::bigint,
          'the model saw only the 30 visible rows');
SELECT is((SELECT version FROM mlpipe.train('rls_m', 'kmeans', 'tap_roles.rls', features => '{x,y}', params => '{"k": 2}')),
          2, 'the owner trains on it too');
SELECT is((SELECT training_rows FROM mlpipe.model_versions WHERE model = 'rls_m' AND version = 2), 90::bigint,
          '... and, bypassing RLS, saw 90 rows');

-- Hostile model names: stored and used verbatim, nothing else runs.
SELECT is(pg_temp.value_as('tap_trainer', $$SELECT model FROM mlpipe.train('x''; DROP TABLE tap_roles.victim; --', 'kmeans', 'tap_roles.pts', features => '{x,y}', params => '{"k": 2}')$$),
          'x''; DROP TABLE tap_roles.victim; --', 'a model name with a quote and a semicolon is just a name');
SELECT is(pg_temp.value_as('tap_trainer', $$SELECT model FROM mlpipe.train('"); DELETE FROM tap_roles.victim; SELECT ("', 'kmeans', 'tap_roles.pts', features => '{x,y}', params => '{"k": 2}')$$),
          '"); DELETE FROM tap_roles.victim; SELECT ("', 'double quotes too');
SELECT is(pg_temp.state_as('tap_admin', $$SELECT mlpipe.promote('x''; DROP TABLE tap_roles.victim; --', 1, 'staging', '''); DROP TABLE tap_roles.victim; --')$$),
          'ok', 'promote, with a hostile reason');
SELECT is((SELECT reason FROM mlpipe.alias_events WHERE model = 'x''; DROP TABLE tap_roles.victim; --' AND alias = 'staging'),
          '''); DROP TABLE tap_roles.victim; --', '... stored verbatim');
SELECT is(pg_temp.state_as('tap_admin', $$SELECT mlpipe.tag('x''; DROP TABLE tap_roles.victim; --', 'k''; DROP', 'v''; DROP')$$), 'ok', 'tag');
SELECT is(pg_temp.value_as('tap_scorer', $$SELECT mlpipe.predict('x''; DROP TABLE tap_roles.victim; --', ARRAY[8.0, 0.1]) IS NOT NULL$$),
          'true', 'predict by the hostile name');
SELECT is(pg_temp.value_as('tap_reader', $$SELECT mlpipe.model_info('x''; DROP TABLE tap_roles.victim; --@1')->>'model'$$),
          'x''; DROP TABLE tap_roles.victim; --', 'model_info by the hostile name');
SELECT is(pg_temp.state_as('tap_admin', $$SELECT mlpipe.promote('roles_m', 1, 'x''; DROP TABLE tap_roles.victim; --')$$),
          '22023', 'a hostile alias is 22023');
SELECT is(pg_temp.state_as('tap_reader', $$SELECT mlpipe.resolve('roles_m@x''; DROP TABLE tap_roles.victim; --')$$),
          '42704', 'a hostile alias in a reference is 42704');

-- Hostile sources: each is refused before anything runs.
SELECT is(pg_temp.state_as('tap_trainer', $$SELECT mlpipe.train('h', 'kmeans', 'tap_roles.pts; DROP TABLE tap_roles.victim', features => '{x,y}')$$),
          '42602', 'a relation name with a statement after it is an invalid name');
SELECT is(pg_temp.state_as('tap_trainer', $$SELECT mlpipe.train('h', 'kmeans', 'SELECT x, y FROM tap_roles.pts; DROP TABLE tap_roles.victim; --')$$),
          '42601', 'a query with a second statement is a syntax error');
SELECT is(pg_temp.state_as('tap_trainer', $$SELECT mlpipe.train('h', 'kmeans', 'SELECT x, y FROM tap_roles.pts) s; DELETE FROM tap_roles.victim; /*')$$),
          '42601', 'breaking out of the wrapping subquery fails');
SELECT is(pg_temp.state_as('tap_trainer', $$SELECT mlpipe.train('h', 'kmeans', 'WITH d AS (DELETE FROM tap_roles.victim RETURNING a) SELECT x, y FROM tap_roles.pts, d')$$),
          '0A000', 'a data-modifying WITH is refused');
CREATE FUNCTION tap_roles.sneaky() RETURNS int LANGUAGE plpgsql AS $$
BEGIN DELETE FROM tap_roles.victim; RETURN 1; END $$;
SELECT is(pg_temp.state_as('tap_trainer', $$SELECT mlpipe.train('h', 'kmeans', 'SELECT x, y FROM tap_roles.pts WHERE tap_roles.sneaky() = 1')$$),
          '42501', 'a function called by the source runs with the caller''s rights only');
SELECT is(pg_temp.state_as('tap_trainer', $$SELECT mlpipe.train('h', 'kmeans', 'tap_roles.pts', features => '{"x); DROP TABLE tap_roles.victim; --"}')$$),
          '42703', 'a hostile feature name is an unknown column');
SELECT is((SELECT count(*) FROM tap_roles.victim), 3::bigint, 'the victim table still exists with its 3 rows');

-- SECURITY DEFINER functions pin search_path; registry internals are not PUBLIC.
SELECT is((SELECT count(*) FROM pg_proc p WHERE p.pronamespace IN ('mlpipe'::regnamespace, 'mlpipe_internal'::regnamespace) AND p.prosecdef
              AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)),
          0::bigint, 'every SECURITY DEFINER function pins search_path = pg_catalog, pg_temp');
SELECT is((SELECT string_agg(p.oid::regprocedure::text, ', ' ORDER BY 1)
             FROM pg_proc p WHERE p.pronamespace IN ('mlpipe'::regnamespace, 'mlpipe_internal'::regnamespace)
              AND p.proname IN ('_register', '_set_alias', '_fit', '_fit_claim', '_train', 'promote', 'rollback',
                                'prune', 'tag', 'untag', 'model_info', 'resolve', 'artifact', 'predict', 'version_at',
                                '_notify', '_gate_verdict', '_log_run', '_artifact_at', '_resolve_key')
              AND has_function_privilege('public', p.oid, 'EXECUTE')), NULL,
          'none of the registry functions is executable by PUBLIC (train is, and checks the role: above)');

SELECT * FROM finish();
ROLLBACK;
