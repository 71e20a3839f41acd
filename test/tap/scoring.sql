-- Batch scoring, drift, data checks and time travel: privileges, SQLSTATEs,
-- row-level security on the source, modes and the run log.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS mlpipe;
SET mlpipe.progress = off;
SELECT plan(51);

CREATE SCHEMA tap_scoring;
CREATE TABLE tap_scoring.pts AS
SELECT i AS id, (i % 10)::float8 AS a, (i % 3)::float8 AS b,
       CASE WHEN i % 10 >= 5 THEN 'big' ELSE 'small' END AS size,
       timestamptz '2024-01-01 00:00+00' + i * interval '1 day' AS seen_at
  FROM generate_series(1, 200) i;
CREATE ROLE tap_sc_trainer NOLOGIN IN ROLE mlpipe_trainer;
CREATE ROLE tap_sc_reader NOLOGIN IN ROLE mlpipe_reader;
GRANT USAGE, CREATE ON SCHEMA tap_scoring TO tap_sc_trainer;
GRANT SELECT ON tap_scoring.pts TO tap_sc_trainer;
-- Row-level security: the trainer sees ids 1..50 only.
ALTER TABLE tap_scoring.pts ENABLE ROW LEVEL SECURITY;
CREATE POLICY first_fifty ON tap_scoring.pts FOR SELECT TO tap_sc_trainer USING (id <= 50);

SELECT has_column('mlpipe', 'model_versions', 'profile', 'model_versions has a profile column');
SELECT col_type_is('mlpipe', 'model_versions', 'profile', 'jsonb', 'profile is jsonb');

-- Grants: predict_table and drift for trainers, profile for readers, internals for nobody else.
SELECT ok(has_function_privilege('mlpipe_trainer', 'mlpipe.predict_table(text,text,text,text,text,jsonb,text,text)', 'EXECUTE'),
          'trainer may call predict_table');
-- predict_table and drift are EXECUTE to PUBLIC and check the role
-- themselves (issue #12): a scorer is not a trainer and may not call what
-- they call (the calls themselves fail with 42501: below, for a reader).
SELECT ok(NOT pg_has_role('mlpipe_scorer', 'mlpipe_trainer', 'MEMBER')
          AND NOT has_function_privilege('mlpipe_scorer', 'mlpipe_internal._predict_table_params(jsonb)', 'EXECUTE'),
          'scorer may not call predict_table');
SELECT ok(has_function_privilege('mlpipe_trainer', 'mlpipe.drift(text,text,float8,float8)', 'EXECUTE'),
          'trainer may call drift');
SELECT ok(NOT has_function_privilege('mlpipe_scorer', 'mlpipe_internal._drift_figures(jsonb,text,float8)', 'EXECUTE'),
          'scorer may not call drift');
SELECT ok(has_function_privilege('mlpipe_reader', 'mlpipe.profile(text)', 'EXECUTE'), 'reader may read a profile');
SELECT ok(NOT has_function_privilege('public', 'mlpipe_internal._set_profile(text,int,jsonb)', 'EXECUTE'),
          'PUBLIC cannot write profiles');
SELECT ok(NOT has_function_privilege('mlpipe_reader', 'mlpipe_internal._set_profile(text,int,jsonb)', 'EXECUTE'),
          'reader cannot write profiles');
SELECT ok(has_function_privilege('public', 'mlpipe_internal._bin_counts(int,int)', 'EXECUTE'),
          'the bin counting aggregate is a pure computation (PUBLIC)');
SELECT is((SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname IN ('mlpipe', 'mlpipe_internal') AND p.proname IN ('predict_table', 'drift', '_train', '_check_data',
                                                         '_as_of_source', '_drift_figures')
              AND p.prosecdef), 0::bigint, 'functions that read a source run as the caller');

-- A trainer trains and scores what row-level security lets it see.
SET ROLE tap_sc_trainer;
SELECT lives_ok($$SELECT mlpipe.train('tap_sc', 'decision_tree', 'tap_scoring.pts', 'size', '{a,b}',
                  '{"max_depth": 3, "test_size": 0}')$$, 'trainer trains');
SELECT is((SELECT (mlpipe.profile('tap_sc')->>'rows')::int), 50, 'the profile sees the rows RLS allows');
SELECT throws_ok($$SELECT mlpipe.train('tap_sc', 'decision_tree', 'tap_scoring.pts', 'size', '{a,b}',
                   '{"checks": {"min_rows": 60}}')$$, '22000',
                 'data checks failed: min_rows: the source has 50 rows, fewer than 60', 'checks run as the caller');
SELECT is(mlpipe.predict_table('tap_sc', 'tap_scoring.pts', 'tap_scoring.scores', 'id'), 50::bigint,
          'predict_table writes the rows RLS allows');
SELECT is((SELECT tableowner::text FROM pg_tables WHERE schemaname = 'tap_scoring' AND tablename = 'scores'),
          'tap_sc_trainer', 'the target belongs to the caller');
SELECT throws_ok($$SELECT mlpipe_internal._set_profile('tap_sc', 1, '{}')$$, '42501', NULL,
                 'a profile is written once, by _train');
RESET ROLE;
SET ROLE tap_sc_reader;
SELECT throws_ok($$SELECT mlpipe.predict_table('tap_sc', 'tap_scoring.pts', 'tap_scoring.s2', 'id')$$, '42501', NULL,
                 'reader cannot call predict_table');
SELECT throws_ok($$SELECT mlpipe.drift('tap_sc', 'tap_scoring.pts')$$, '42501', 'permission denied for function drift',
                 'reader cannot call drift');
RESET ROLE;

-- Modes.
SELECT is(mlpipe.predict_table('tap_sc', 'tap_scoring.pts', 'tap_scoring.scores', 'id', 'incremental'), 150::bigint,
          'incremental scores only the keys without a score from this version');
SELECT is(mlpipe.predict_table('tap_sc', 'tap_scoring.pts', 'tap_scoring.scores', 'id', 'incremental'), 0::bigint,
          'incremental again writes nothing');
SELECT is(mlpipe.predict_table('tap_sc', 'SELECT * FROM tap_scoring.pts WHERE id <= 5', 'tap_scoring.scores', 'id', 'replace'),
          5::bigint, 'replace writes the source');
SELECT is((SELECT count(*) FROM tap_scoring.scores), 5::bigint, 'replace leaves only its rows');
CREATE UNIQUE INDEX ON tap_scoring.scores (id);
SELECT is(mlpipe.predict_table('tap_sc', 'SELECT * FROM tap_scoring.pts WHERE id <= 8', 'tap_scoring.scores', 'id', 'upsert'),
          8::bigint, 'upsert with a unique index');
SELECT is((SELECT count(*) FROM tap_scoring.scores), 8::bigint, 'upsert updates existing keys and adds new ones');
SELECT results_eq($$SELECT label FROM tap_scoring.scores ORDER BY id$$,
                  $$SELECT mlpipe.predict_label('tap_sc', ARRAY[a, b]) FROM tap_scoring.pts WHERE id <= 8 ORDER BY id$$,
                  'labels agree with predict_label');

-- Scoring once per row (issue #5): _score_class, _score_label and
-- _score_proba share one evaluation per row and agree with predict,
-- predict_label and predict_proba, also when two models alternate.
SELECT lives_ok($$SELECT mlpipe.train('tap_sc_gbt', 'gbt', 'tap_scoring.pts', 'size', '{a,b}',
                  '{"n_estimators": 10, "max_depth": 3, "test_size": 0}')$$, 'a gbt classifier trains');
SELECT lives_ok($$SELECT mlpipe.train('tap_sc_reg', 'decision_tree', 'tap_scoring.pts', 'b', '{a}',
                  '{"max_depth": 3, "test_size": 0}')$$, 'a regression tree trains');
SELECT results_eq($$SELECT id, mlpipe_internal._score_class('tap_sc_gbt', ARRAY[a, b]), mlpipe_internal._score_label('tap_sc_gbt', ARRAY[a, b]),
                           mlpipe_internal._score_proba('tap_sc_gbt', ARRAY[a, b]), mlpipe_internal._score_proba('tap_sc', ARRAY[a, b]),
                           mlpipe_internal._score_label('tap_sc', ARRAY[a, b]), mlpipe_internal._score_class('tap_sc_gbt', ARRAY[b, a])
                      FROM tap_scoring.pts ORDER BY id$$,
                  $$SELECT id, mlpipe.predict('tap_sc_gbt', ARRAY[a, b]), mlpipe.predict_label('tap_sc_gbt', ARRAY[a, b]),
                           mlpipe.predict_proba('tap_sc_gbt', ARRAY[a, b]), mlpipe.predict_proba('tap_sc', ARRAY[a, b]),
                           mlpipe.predict_label('tap_sc', ARRAY[a, b]), mlpipe.predict('tap_sc_gbt', ARRAY[b, a])
                      FROM tap_scoring.pts ORDER BY id$$,
                  '_score_* agree with predict, predict_label, predict_proba (two models, swapped inputs)');
SELECT throws_ok($$SELECT mlpipe_internal._score_class('tap_sc_reg', ARRAY[1.0]::float8[])$$, '42809', NULL,
                 '_score_class needs a classifier');
SELECT throws_ok($$SELECT mlpipe_internal._score_proba('tap_sc_gbt', ARRAY[1.0]::float8[])$$, '22000',
                 'model expects 2 features, got 1', '_score_proba checks the feature count');
SELECT ok(has_function_privilege('mlpipe_scorer', 'mlpipe_internal._score_label(text,float8[])', 'EXECUTE')
          AND NOT has_function_privilege('tap_sc_reader', 'mlpipe_internal._score_label(text,float8[])', 'EXECUTE'),
          'scorers may call the _score_* functions, readers may not');

-- A new classification table (float8[] path, parallel costs for an
-- ensemble): every row agrees with predict, predict_label, predict_proba;
-- the caller's planner settings are back afterwards.
SET parallel_tuple_cost = 0.3;
SELECT is(mlpipe.predict_table('tap_sc_gbt', 'tap_scoring.pts', 'tap_scoring.gbt_out', 'id'), 200::bigint,
          'predict_table scores a gbt classifier into a new table');
SELECT is(current_setting('parallel_tuple_cost'), '0.3', 'parallel_tuple_cost is the caller''s again');
RESET parallel_tuple_cost;
SELECT is((SELECT count(*) FROM tap_scoring.gbt_out o JOIN tap_scoring.pts p USING (id)
            WHERE o.prediction = mlpipe.predict('tap_sc_gbt', ARRAY[p.a, p.b])
              AND o.label = mlpipe.predict_label('tap_sc_gbt', ARRAY[p.a, p.b])
              AND o.proba = mlpipe.predict_proba('tap_sc_gbt', ARRAY[p.a, p.b])
              AND o.model = 'tap_sc_gbt' AND o.version = 1 AND o.scored_at = now()), 200::bigint,
          'new classification table: every row agrees with predict, predict_label, predict_proba');

-- The row form (a boolean feature): prediction and proba agree too.
CREATE TABLE tap_scoring.fl AS SELECT id, a, (id % 10 >= 5) AS high, size FROM tap_scoring.pts;
SELECT lives_ok($$SELECT mlpipe.train('tap_fl', 'random_forest', 'tap_scoring.fl', 'size', '{a,high}',
                  '{"n_estimators": 5, "max_depth": 3, "test_size": 0}')$$, 'a forest on a boolean feature trains');
SELECT is(mlpipe.predict_table('tap_fl', 'tap_scoring.fl', 'tap_scoring.fl_out', 'id'), 200::bigint,
          'predict_table scores through the row form');
SELECT is((SELECT count(*) FROM tap_scoring.fl_out o JOIN tap_scoring.fl f USING (id)
            WHERE o.prediction = mlpipe.predict('tap_fl', f) AND o.proba = mlpipe.predict_proba('tap_fl', f)
              AND o.label = mlpipe.predict_label('tap_fl', f)), 200::bigint,
          'row form: every row agrees with predict, predict_label, predict_proba');

-- A new regression table: model, version and scored_at are on every row,
-- stored once as the added columns' missing value; scored_at keeps now()
-- as its default; appended rows of another model get their own values.
SELECT is(mlpipe.predict_table('tap_sc_reg', 'tap_scoring.pts', 'tap_scoring.reg_out', 'id'), 200::bigint,
          'predict_table scores a regression model into a new table');
SELECT is((SELECT count(*) FROM tap_scoring.reg_out o JOIN tap_scoring.pts p USING (id)
            WHERE o.prediction = mlpipe.predict('tap_sc_reg', ARRAY[p.a]) AND o.label IS NULL AND o.proba IS NULL
              AND o.model = 'tap_sc_reg' AND o.version = 1 AND o.scored_at = now()), 200::bigint,
          'new regression table: prediction, model, version, scored_at on every row');
SELECT is((SELECT array_agg(attname::text ORDER BY attnum) FROM pg_attribute
            WHERE attrelid = 'tap_scoring.reg_out'::regclass AND atthasmissing),
          '{model,version,scored_at}'::text[], 'the constant columns are stored once, not per row');
SELECT is((SELECT array_agg(a.attname::text) FROM pg_attrdef d
             JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
            WHERE d.adrelid = 'tap_scoring.reg_out'::regclass), '{scored_at}'::text[],
          'only scored_at keeps a default');
SELECT is(mlpipe.predict_table('tap_sc_gbt', 'tap_scoring.pts', 'tap_scoring.reg_out', 'id'), 200::bigint,
          'append another model to it');
SELECT results_eq($$SELECT model, version, count(*) FROM tap_scoring.reg_out GROUP BY 1, 2 ORDER BY 1$$,
                  $$VALUES ('tap_sc_gbt'::text, 1, 200::bigint), ('tap_sc_reg', 1, 200)$$,
                  'appended rows have their own model; the first rows keep theirs');
SELECT ok(has_table_privilege('mlpipe_reader', 'tap_scoring.reg_out', 'SELECT'),
          'readers may read a table predict_table created');

-- SQLSTATEs.
SELECT throws_ok($$SELECT mlpipe.predict_table('tap_sc', 'tap_scoring.pts', 'tap_scoring.x', 'id', 'merge')$$, '22023', NULL, 'unknown mode');
SELECT throws_ok($$SELECT mlpipe.predict_table('tap_sc', 'tap_scoring.pts', 'tap_scoring.x', 'key')$$, '42703', NULL, 'key not in source');
SELECT throws_ok($$SELECT mlpipe.predict_table('tap_sc', 'tap_scoring.pts', 'tap_scoring.pts', 'id')$$, '22000', NULL, 'target lacks columns');
SELECT throws_ok($$SELECT mlpipe.predict_table('nope', 'tap_scoring.pts', 'tap_scoring.x', 'id')$$, '42704', NULL, 'unknown model');
SELECT throws_ok($$SELECT mlpipe.train('tap_e', 'kmeans', 'tap_scoring.pts', NULL, '{a}',
                   '{"as_of": "2024-02-01", "as_of_column": "size"}')$$, '22023', NULL, 'as_of_column must be a timestamp');
SELECT throws_ok($$SELECT mlpipe.train('tap_e', 'kmeans', 'tap_scoring.pts', NULL, '{a}',
                   '{"checks": {"nonnull": ["a"]}}')$$, '22023', NULL, 'unknown check key');

SELECT * FROM finish();
ROLLBACK;
