-- Batch scoring into tables, training profiles and drift, data checks and
-- data time travel (sql/src/30-scoring.sql).
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS t_scoring CASCADE;
CREATE SCHEMA t_scoring;
SET search_path = t_scoring, public;
RESET client_min_messages;
SET mlpipe.progress = off;

-- size is 'big' when a >= 5 or i is a multiple of 7 (where b is NULL).
CREATE TABLE shapes AS
SELECT i AS id, (i % 10)::float8 AS a, CASE WHEN i % 7 = 0 THEN NULL ELSE (i % 3)::float8 END AS b,
       CASE WHEN i % 10 >= 5 OR i % 7 = 0 THEN 'big' ELSE 'small' END AS size,
       CASE WHEN i % 4 = 0 THEN 'north' ELSE 'south' END AS city,
       (i % 10) * 2.0 + coalesce((i % 3)::float8, 0) AS value,
       timestamptz '2024-01-01 00:00+00' + i * interval '1 hour' AS updated_at
  FROM generate_series(1, 700) i;

-- Data checks pass: the version records how many rows were checked.
SELECT model, version, promoted FROM mlpipe.train('sc_dt', 'decision_tree', 'shapes', 'size', '{a,b}',
    '{"max_depth": 3, "checks": {"min_rows": 100, "not_null": ["a"], "ranges": {"a": [0, 9], "b": [0, null]},
                                 "allowed": {"city": ["north", "south"]}}}');
SELECT lineage->'checked_rows' AS checked_rows, params ? 'checks' AS checks_in_params
  FROM mlpipe.model_versions WHERE model = 'sc_dt';

-- The training profile: decile edges and counts per bin, null rates.
SELECT p->>'rows' AS rows, p->>'fraction' AS fraction FROM mlpipe.profile('sc_dt') p;
SELECT f->>'feature' AS feature, f->>'kind' AS kind, f->'edges' AS edges, f->'counts' AS counts,
       round((f->>'null_rate')::numeric, 6) AS null_rate
  FROM jsonb_array_elements(mlpipe.profile('sc_dt')->'features') f;

-- Drift: none against the training data; a shifted and a nulled column drift.
SELECT feature, round(psi::numeric, 6) AS psi, round(null_rate_train::numeric, 4) AS null_train,
       round(null_rate_now::numeric, 4) AS null_now, status
  FROM mlpipe.drift('sc_dt', 'shapes');
SELECT feature, round(psi::numeric, 6) AS psi, round(null_rate_now::numeric, 4) AS null_now, status
  FROM mlpipe.drift('sc_dt', 'SELECT id, a + 3 AS a, CASE WHEN id % 2 = 0 THEN NULL ELSE b END AS b FROM shapes');
SELECT feature, round(psi::numeric, 6) AS psi, status
  FROM mlpipe.drift('sc_dt', 'SELECT id, a, b FROM shapes WHERE a < 7', threshold => 0.5);

-- Categorical profile and drift (top categories, bin 0 = every other value).
SELECT model, version FROM mlpipe.train('sc_city', 'decision_tree', 'shapes', 'size', '{a,city}', '{"max_depth": 3}');
SELECT f->>'feature' AS feature, f->'categories' AS categories, f->'counts' AS counts
  FROM jsonb_array_elements(mlpipe.profile('sc_city')->'features') f
 WHERE f->>'kind' = 'categorical';
SELECT feature, round(psi::numeric, 6) AS psi
  FROM mlpipe.drift('sc_city', 'SELECT a, CASE WHEN id % 3 = 0 THEN ''east'' ELSE city END AS city FROM shapes');

-- The bin counting aggregate.
SELECT mlpipe_internal._bin_counts(b, 3) FROM (VALUES (0), (2), (2), (NULL)) v(b);
SELECT mlpipe_internal._bin_counts(b, 3) FROM (VALUES (0)) v(b) WHERE false;

-- Batch scoring: a new table, typed; append builds no index on the key (issue #13).
SELECT mlpipe.predict_table('sc_dt', 'shapes', 't_scoring.scores', 'id');
SELECT column_name, data_type FROM information_schema.columns
 WHERE table_schema = 't_scoring' AND table_name = 'scores' ORDER BY ordinal_position;
SELECT indexdef FROM pg_indexes WHERE schemaname = 't_scoring' AND tablename = 'scores';
SELECT id, prediction, label, proba, model, version FROM scores ORDER BY id LIMIT 3;
SELECT count(*) AS disagree FROM scores s JOIN shapes USING (id)
 WHERE s.label IS DISTINCT FROM mlpipe.predict_label('sc_dt', ARRAY[a, b]);
-- append adds, incremental adds only keys without a score from this version.
SELECT mlpipe.predict_table('sc_dt', 'shapes', 'scores', 'id', 'append');
SELECT mlpipe.predict_table('sc_dt', 'shapes', 'scores', 'id', 'incremental');
SELECT mlpipe.predict_table('sc_dt', 'SELECT * FROM shapes UNION ALL SELECT 701, 1, 1, ''small'', ''north'', 3, now()',
                            'scores', 'id', 'incremental');
SELECT count(*), count(DISTINCT id) FROM scores;
-- incremental indexed the key of the table append had created without one.
SELECT indexdef FROM pg_indexes WHERE schemaname = 't_scoring' AND tablename = 'scores';
-- replace keeps only this run's rows.
SELECT mlpipe.predict_table('sc_dt', 'SELECT * FROM shapes WHERE id <= 100', 'scores', 'id', 'replace');
SELECT count(*) FROM scores;

-- upsert: a unique index on the key (created with the table in this mode).
SELECT mlpipe.predict_table('sc_dt', 'SELECT * FROM shapes WHERE id <= 10', 't_scoring."Upserted"', 'id', 'upsert');
SELECT indexdef FROM pg_indexes WHERE schemaname = 't_scoring' AND tablename = 'Upserted';
SELECT model, version FROM mlpipe.train('sc_dt', 'decision_tree', 'shapes', 'size', '{a,b}', '{"max_depth": 2}');
SELECT mlpipe.predict_table('sc_dt@2', 'SELECT * FROM shapes WHERE id <= 20', 't_scoring."Upserted"', 'id', 'upsert');
SELECT version, count(*) FROM "Upserted" GROUP BY version ORDER BY version;

-- Regression and clustering: label and proba stay NULL.
SELECT model FROM mlpipe.train('sc_reg', 'gbt', 'shapes', 'value', '{a,b}', '{"n_estimators": 20}');
SELECT mlpipe.predict_table('sc_reg', 'shapes', 'reg_scores', 'id');
SELECT count(*) FILTER (WHERE label IS NULL AND proba IS NULL) AS no_label, round(avg(prediction)::numeric, 0) AS avg_pred
  FROM reg_scores;
SELECT model FROM mlpipe.train('sc_km', 'kmeans', 'shapes', NULL, '{a}', '{"k": 2}');
SELECT mlpipe.predict_table('sc_km', 'shapes', 'km_scores', 'id');
SELECT prediction, count(*) FROM km_scores GROUP BY 1 ORDER BY 1;

-- A boolean feature is scored through the row form of predict; same labels.
CREATE TABLE flags AS SELECT id, a, (id % 10 >= 5) AS high, size FROM shapes;
SELECT model FROM mlpipe.train('sc_flag', 'decision_tree', 'flags', 'size', '{a,high}', '{"max_depth": 3}');
SELECT mlpipe.predict_table('sc_flag', 'flags', 'flag_scores', 'id');
SELECT count(*) AS disagree FROM flag_scores s JOIN flags f USING (id)
 WHERE s.label IS DISTINCT FROM mlpipe.predict_label('sc_flag', ARRAY[f.a, f.high::int]);
SELECT f->>'feature' AS feature, f->>'kind' AS kind, f->'categories' AS categories
  FROM jsonb_array_elements(mlpipe.profile('sc_flag')->'features') f;

-- Each call is a run with rows and drift figures (split 'scoring').
SELECT kind, model, version, rows, params->>'mode' AS mode, params->>'into' AS "into", status
  FROM mlpipe.runs WHERE kind = 'predict_table' ORDER BY run_id;
SELECT m.metric, round(m.value::numeric, 6) AS value FROM mlpipe.metrics m
 WHERE m.run_id = (SELECT min(run_id) FROM mlpipe.runs WHERE kind = 'predict_table')
   AND m.metric <> 'rows_per_second' ORDER BY m.metric;
SELECT mlpipe.predict_table('sc_dt@1', 'SELECT id, a + 3 AS a, b FROM shapes', 'drifted', 'id', 'append', '{"drift_threshold": 0.5}');
SELECT metric, round(value::numeric, 6) AS value FROM mlpipe.metrics
 WHERE run_id = (SELECT max(run_id) FROM mlpipe.runs WHERE kind = 'predict_table')
   AND metric IN ('psi:a', 'drifted_features') ORDER BY metric;

-- Data time travel: train on the rows that existed at as_of.
SELECT model, version FROM mlpipe.train('sc_asof', 'kmeans', 'shapes', NULL, '{a,b}',
    '{"k": 2, "on_null": "skip", "as_of": "2024-01-10 00:00+00", "as_of_column": "updated_at"}');
SELECT training_rows, skipped_rows, lineage->>'as_of' AS as_of, lineage->>'as_of_column' AS as_of_column,
       params->>'as_of' AS as_of_param, (profile->>'rows')::int AS profiled_rows
  FROM mlpipe.model_versions WHERE model = 'sc_asof';
-- Rows added later do not change a retrain "as of" the same instant.
INSERT INTO shapes SELECT i, 9, 9, 'big', 'north', 27, timestamptz '2024-03-01 00:00+00' + i * interval '1 minute'
  FROM generate_series(701, 800) i;
SELECT model, version FROM mlpipe.train('sc_asof', 'kmeans', 'shapes', NULL, '{a,b}',
    '{"k": 2, "on_null": "skip", "as_of": "2024-01-10 00:00+00", "as_of_column": "updated_at"}');
-- (the same artifact: a run of version 1, docs/registry.md)
SELECT (SELECT count(*) FROM mlpipe.model_versions WHERE model = 'sc_asof') AS versions,
       count(*) AS runs, min(rows) = max(rows) AS same_rows
  FROM mlpipe.runs WHERE model = 'sc_asof' AND kind = 'train';
-- Without as_of the new rows are used.
SELECT model, version FROM mlpipe.train('sc_now', 'kmeans', 'shapes', NULL, '{a,b}', '{"k": 2, "on_null": "skip"}');
SELECT training_rows, skipped_rows FROM mlpipe.model_versions WHERE model = 'sc_now';
SELECT model, version FROM mlpipe.train('sc_noprof', 'kmeans', 'shapes', NULL, '{a}', '{"k": 2, "profile_sample": 0}');

-- Bad input.
\set VERBOSITY terse
SELECT mlpipe.train('e', 'kmeans', 'shapes', NULL, '{a}', '{"as_of": "2024-01-10"}');
SELECT mlpipe.train('e', 'kmeans', 'shapes', NULL, '{a}', '{"as_of": "not a time", "as_of_column": "updated_at"}');
SELECT mlpipe.train('e', 'kmeans', 'shapes', NULL, '{a}', '{"as_of": "2024-01-10", "as_of_column": "nope"}');
SELECT mlpipe.train('e', 'kmeans', 'shapes', NULL, '{a}', '{"as_of": "2024-01-10", "as_of_column": "city"}');
SELECT mlpipe.train('e', 'kmeans', 'shapes', NULL, '{a}', '{"as_of": 5, "as_of_column": "updated_at"}');
SELECT mlpipe.train('e', 'kmeans', 'shapes', NULL, '{a}', '{"as_of": "infinity", "as_of_column": "updated_at"}');
SELECT mlpipe.train('e', 'kmeans', 'shapes', NULL, '{a}',
    '{"checks": {"min_rows": 1000, "not_null": ["b"], "ranges": {"a": [0, 5]}, "allowed": {"city": ["north"]}}}');
SELECT mlpipe.train('e', 'kmeans', 'shapes', NULL, '{a}', '{"checks": {"min_row": 1}}');
SELECT mlpipe.train('e', 'kmeans', 'shapes', NULL, '{a}', '{"checks": {"not_null": ["zz"]}}');
SELECT mlpipe.train('e', 'kmeans', 'shapes', NULL, '{a}', '{"checks": {"not_null": "a"}}');
SELECT mlpipe.train('e', 'kmeans', 'shapes', NULL, '{a}', '{"checks": {"ranges": {"city": [0, 1]}}}');
SELECT mlpipe.train('e', 'kmeans', 'shapes', NULL, '{a}', '{"checks": {"ranges": {"a": [5, 1]}}}');
SELECT mlpipe.train('e', 'kmeans', 'shapes', NULL, '{a}', '{"checks": {"ranges": {"zz": [0, 1]}}}');
SELECT mlpipe.train('e', 'kmeans', 'shapes', NULL, '{a}', '{"checks": {"allowed": {"city": []}}}');
SELECT mlpipe.train('e', 'kmeans', 'shapes', NULL, '{a}', '{"checks": [1]}');
SELECT mlpipe.train('e', 'kmeans', 'shapes', NULL, '{a}', '{"checks": {"min_rows": 1.5}}');
SELECT mlpipe.train('e', 'kmeans', 'shapes', NULL, '{a}', '{"profile_sample": -1}');
SELECT count(*) AS no_model_e FROM mlpipe.models WHERE name = 'e';
SELECT mlpipe.predict_table('sc_dt', 'shapes', 'out', 'nokey');
SELECT mlpipe.predict_table('sc_dt', 'shapes', 'out', 'id', 'merge');
SELECT mlpipe.predict_table('sc_dt', 'shapes', 'a.b.c', 'id');
SELECT mlpipe.predict_table('sc_dt', 'shapes', '"unterminated', 'id');
INSERT INTO scores SELECT * FROM scores WHERE id = 5;
SELECT mlpipe.predict_table('sc_dt', 'shapes', 'scores', 'id', 'upsert');
SELECT mlpipe.predict_table('sc_dt', 'shapes', 'shapes', 'id');
SELECT mlpipe.predict_table('sc_dt', 'SELECT id::bigint AS id, a, b FROM shapes', 'scores', 'id');
SELECT mlpipe.predict_table('sc_dt', 'SELECT id, a, size AS prediction FROM shapes', 'out', 'prediction');
SELECT mlpipe.predict_table('sc_dt', 'SELECT id, a FROM shapes', 'out', 'id');
SELECT mlpipe.predict_table('nope', 'shapes', 'out', 'id');
SELECT mlpipe.predict_table('sc_dt', 'no_such_table', 'out', 'id');
SELECT mlpipe.predict_table('sc_dt', 'shapes', 'out', 'id', 'append', '{"drift_treshold": 1}');
SELECT mlpipe.predict_table('sc_dt', 'shapes', 'out', 'id', 'append', '{"drift_threshold": "x"}');
SELECT mlpipe.predict_table('sc_dt', 'shapes', NULL, 'id');
SELECT to_regclass('t_scoring.out') AS no_out_table;
SELECT * FROM mlpipe.drift('sc_dt', 'SELECT id, b FROM shapes');
SELECT * FROM mlpipe.drift('sc_dt', 'SELECT id, a, b FROM shapes WHERE false');
SELECT * FROM mlpipe.drift('sc_dt', 'SELECT id, city AS a, b FROM shapes');
SELECT * FROM mlpipe.drift('sc_dt', 'shapes', 0);
SELECT * FROM mlpipe.drift('sc_noprof', 'shapes');
SELECT * FROM mlpipe.drift('sc_dt@9', 'shapes');
SELECT mlpipe_internal._bin_counts(b, 3) FROM (VALUES (3)) v(b);
SELECT mlpipe_internal._bin_counts(b, 0) FROM (VALUES (0)) v(b);
SELECT mlpipe_internal._set_profile('sc_dt', 1, '{}');
\set VERBOSITY default

DROP SCHEMA t_scoring CASCADE;
