-- Issue #12 (helper ptable): predict_table in a user's first hour. Each
-- block failed before its fix. Errors are shown as a user sees them
-- (VERBOSITY default: message, detail, hint and the context).
SET client_min_messages = notice;
SET mlpipe.progress = off;
\set VERBOSITY default
CREATE TABLE pt_trips AS
SELECT i AS id, (i % 17)::float8 AS fdist, (i % 5)::float8 AS fdur,
       ARRAY[(i % 3)::float8, (i % 7)::float8] AS v,
       CASE WHEN i % 3 = 0 OR i % 17 > 12 THEN 'late' ELSE 'ok' END AS y
  FROM generate_series(1, 600) i;
SELECT version FROM mlpipe.train('pt_km', 'kmeans', 'pt_trips', NULL, '{fdist,fdur}', '{"k": 2, "seed": 1}');
SELECT version FROM mlpipe.train('pt_kv', 'kmeans', 'pt_trips', NULL, '{v}', '{"k": 2, "seed": 1}');
SELECT version FROM mlpipe.train('pt_dt', 'decision_tree', 'pt_trips', 'y', '{fdist,fdur}', '{"seed": 1}');

-- 1. Named calls: into is a reserved word, so the target is target_table
-- (and "into" quoted, and the third argument, keep working).
SELECT mlpipe.predict_table('pt_km', 'pt_trips', target_table => 'pt_s1', key => 'id');
SELECT mlpipe.predict_table('pt_km', 'pt_trips', "into" => 'pt_s1', key => 'id');
SELECT mlpipe.predict_table('pt_km', 'pt_trips', 'pt_s1', 'id', 'append');
SELECT count(*) AS rows, count(DISTINCT id) AS keys FROM pt_s1;
SELECT params->>'into' AS logged_into FROM mlpipe.runs WHERE kind = 'predict_table' AND model = 'pt_km' ORDER BY run_id LIMIT 1;
-- Exactly one of "into" and target_table; key is required.
SELECT mlpipe.predict_table('pt_km', 'pt_trips', key => 'id');
SELECT mlpipe.predict_table('pt_km', 'pt_trips', 'pt_s1', 'id', target_table => 'pt_s2');
SELECT mlpipe.predict_table('pt_km', 'pt_trips', target_table => 'pt_s2');
SELECT to_regclass('pt_s2') AS not_created;

-- 2. on_null: a NULL the model cannot take (k-means) fails naming the key
-- and the feature; skip leaves the row out and says how many; null
-- writes a NULL prediction. A tree routes a NULL: nothing to skip.
INSERT INTO pt_trips VALUES (4711, NULL, 1, '{1,2}', 'ok'), (4712, 3, NULL, '{1,NULL}', 'ok');
SELECT mlpipe.predict_table('pt_km', 'pt_trips', target_table => 'pt_n1', key => 'id');
SELECT to_regclass('pt_n1') AS not_created;
SELECT mlpipe.predict_table('pt_km', 'pt_trips', target_table => 'pt_n1', key => 'id', on_null => 'skip');
SELECT count(*) AS rows, count(*) FILTER (WHERE id > 4000) AS null_rows FROM pt_n1;
SELECT (SELECT value FROM mlpipe.metrics m WHERE m.run_id = r.run_id AND metric = 'skipped_rows') AS skipped_rows,
       params->>'on_null' AS on_null
  FROM mlpipe.runs r WHERE kind = 'predict_table' AND model = 'pt_km' ORDER BY run_id DESC LIMIT 1;
SELECT mlpipe.predict_table('pt_km', 'SELECT * FROM pt_trips', target_table => 'pt_n2', key => 'id', on_null => 'null');
SELECT id, prediction, label, proba FROM pt_n2 WHERE id > 598 ORDER BY id;
-- The element of an array feature: v[2] is NULL in row 4712 only.
SELECT mlpipe.predict_table('pt_kv', 'pt_trips', target_table => 'pt_n3', key => 'id');
SELECT mlpipe.predict_table('pt_kv', 'pt_trips', target_table => 'pt_n3', key => 'id', on_null => 'skip');
SELECT mlpipe.predict_table('pt_dt', 'pt_trips', target_table => 'pt_n4', key => 'id', on_null => 'skip');
SELECT id, label FROM pt_n4 WHERE id > 4000 ORDER BY id;
SELECT mlpipe.predict_table('pt_km', 'pt_trips', target_table => 'pt_n5', key => 'id', on_null => 'drop');
-- Other bad rows name their key too: NaN, a wrong array length.
SELECT mlpipe.predict_table('pt_km', 'SELECT id, CASE WHEN id = 77 THEN ''NaN''::float8 ELSE fdist END AS fdist, fdur FROM pt_trips',
                            target_table => 'pt_n6', key => 'id', on_null => 'skip');
SELECT mlpipe.predict_table('pt_kv', 'SELECT id, CASE WHEN id = 78 THEN v || 1::float8 ELSE v END AS v FROM pt_trips WHERE id < 4000',
                            target_table => 'pt_n6', key => 'id');
-- A text key: the value is shown as the text it is.
SELECT mlpipe.predict_table('pt_km', 'SELECT ''trip-'' || id AS trip, fdist, fdur FROM pt_trips',
                            target_table => 'pt_n6', key => 'trip');
-- Errors not about one row are not given a key; the source's own errors
-- keep their message.
SELECT mlpipe.predict_table('pt_km', 'SELECT id, fdur FROM pt_trips', target_table => 'pt_n6', key => 'id');
SELECT mlpipe.predict_table('pt_km', 'SELECT id, fdist / (id - 5) AS fdist, fdur FROM pt_trips', target_table => 'pt_n6', key => 'id');
SELECT to_regclass('pt_n6') AS not_created;

-- 3. The drift sample of a source over drift_sample rows is the same on
-- every run: a table (TABLESAMPLE SYSTEM ... REPEATABLE) and a query (rows
-- whose text hashes below the fraction).
CREATE TABLE pt_big AS
SELECT i AS id, (i % 17)::float8 + (i % 1000) / 1000.0 AS fdist, (i % 5)::float8 AS fdur
  FROM generate_series(1, 6000) i;
SELECT version FROM mlpipe.train('pt_kb', 'kmeans', 'SELECT * FROM pt_big WHERE id <= 2000', NULL, '{fdist,fdur}', '{"k": 2, "seed": 1}');
SELECT mlpipe.predict_table('pt_kb', 'pt_big', target_table => 'pt_d', key => 'id', params => '{"drift_sample": 1000}')
  FROM generate_series(1, 3);
SELECT mlpipe.predict_table('pt_kb', 'SELECT * FROM pt_big', target_table => 'pt_d', key => 'id', params => '{"drift_sample": 1000}')
  FROM generate_series(1, 3);
SELECT r.source, m.metric, count(*) AS runs, count(DISTINCT m.value) AS distinct_values
  FROM mlpipe.runs r JOIN mlpipe.metrics m USING (run_id)
 WHERE r.kind = 'predict_table' AND r.model = 'pt_kb' AND m.metric LIKE 'psi:%'
 GROUP BY 1, 2 ORDER BY 1, 2;

-- 4. Probabilities that say which class they are: mlpipe.classes gives the
-- order (sorted labels; for a binary model the positive class is the
-- second), mlpipe.proba_json labels an array.
SELECT mlpipe.classes('pt_dt') AS classes,
       mlpipe.classes('pt_dt') = (SELECT array_agg(DISTINCT y ORDER BY y) FROM pt_trips) AS sorted_labels;
SELECT s.id, s.label, mlpipe.proba_json((SELECT mlpipe.classes('pt_dt')), s.proba) AS by_class,
       s.proba[2] = (mlpipe.proba_json((SELECT mlpipe.classes('pt_dt')), s.proba)->>'ok')::float8 AS positive_is_second
  FROM pt_n4 s WHERE s.id IN (1, 3, 15) ORDER BY s.id;
SELECT mlpipe.proba_json('{a,b,c}', mlpipe.predict_proba('pt_dt', ARRAY[1, 2]));

-- 5. Errors from inside predict_table read as the user's: no generated
-- statement, no internal calls in the context.
SELECT mlpipe.predict_table('pt_km@9', 'pt_trips', target_table => 'pt_e', key => 'id');
SELECT mlpipe.predict_table('pt_km', 'pt_no_table', target_table => 'pt_e', key => 'id');
SELECT mlpipe.predict_table('pt_km', 'pt_trips', target_table => 'pt_e', key => 'nope');
CREATE TABLE pt_bad (id int, prediction text);
SELECT mlpipe.predict_table('pt_km', 'pt_trips', target_table => 'pt_bad', key => 'id');
-- train and evaluate the same way: no nested calls, no generated query.
SELECT mlpipe.evaluate('pt_km@9', 'pt_trips');
SELECT mlpipe.evaluate('pt_dt', 'SELECT id, fdist, fdur FROM pt_trips');
SELECT version FROM mlpipe.train('pt_x', 'kmeans', 'pt_trips', NULL, '{fdist}', '{"k": 2, "as_of": "2024-01-01"}');
SELECT version FROM mlpipe.train('pt_x', 'kmeans', 'pt_trips', NULL, '{fdist}', '{"k": 2, "warm_start": "pt_km@9"}');

-- 6. A pipeline's predict step passes on_null (validated at creation).
SELECT mlpipe.create_pipeline('pt_pipe', '{"steps": [
  {"kind": "predict", "model": "pt_km", "source": "pt_trips", "into": "pt_p1", "key": "id", "on_null": "null"}]}') IS NOT NULL AS created;
SELECT mlpipe.run_pipeline('pt_pipe') IS NOT NULL AS ran;
SELECT count(*) AS rows, count(*) FILTER (WHERE prediction IS NULL) AS null_predictions FROM pt_p1;
SELECT mlpipe.create_pipeline('pt_pipe2', '{"steps": [
  {"kind": "predict", "model": "pt_km", "source": "pt_trips", "into": "pt_p2", "key": "id", "on_null": "drop"}]}');
-- on_null = 'null' with a NULL row before a NaN row: the error names the NaN row.
SELECT mlpipe.predict_table('pt_km', 'SELECT id, CASE WHEN id = 2 THEN NULL WHEN id = 9 THEN ''NaN'' ELSE fdist END AS fdist, fdur FROM pt_trips ORDER BY id',
                            target_table => 'pt_n7', key => 'id', on_null => 'null');

-- 7. Drift is said to the caller too (issue #12): scoring a range shifted
-- away from the training rows raises a WARNING naming the version, how
-- many features drifted and the worst ones; the training range does not.
CREATE TABLE pt_shift AS
SELECT i AS id, (i % 50)::float8 AS fa, (i % 7)::float8 AS fb, (i % 11)::float8 AS fc
  FROM generate_series(1, 2000) i;
SELECT version FROM mlpipe.train('pt_sh', 'kmeans', 'SELECT * FROM pt_shift WHERE id <= 1000', NULL, '{fa,fb,fc}', '{"k": 2, "seed": 1}');
SELECT mlpipe.predict_table('pt_sh', 'SELECT id, fa, fb, fc FROM pt_shift WHERE id > 1000', target_table => 'pt_sh1', key => 'id');
SELECT mlpipe.predict_table('pt_sh', 'SELECT id, fa + 30 AS fa, fb * 2 AS fb, fc FROM pt_shift WHERE id > 1000',
                            target_table => 'pt_sh2', key => 'id');
SELECT (SELECT count(*) FROM mlpipe.drift_history h WHERE h.run_id = r.run_id AND h.psi >= 0.2) AS drifted_in_history
  FROM mlpipe.runs r WHERE kind = 'predict_table' AND model = 'pt_sh' ORDER BY run_id DESC LIMIT 1;

-- 8. search and cross_validate errors read as the user's too (issue #12):
-- the cause, then one line of context, not the folds, fits and generated
-- statements it came through.
SELECT mlpipe.cross_validate('decision_tree', 'pt_trips', 'y', '{fdist,fdur}', '{"max_dpth": 3}', 3);
SELECT mlpipe.cross_validate('decision_tree', 'pt_no_table', 'y', '{fdist,fdur}', '{}', 3);
SELECT mlpipe.cross_validate('decision_tree', 'pt_trips', 'y', '{fdist,nope}', '{}', 3);
SELECT model, version FROM mlpipe.search('pt_se', 'decision_tree', 'pt_trips', 'y', '{fdist,fdur}', '{"max_depht": [2]}', folds => 2);
SELECT model, version FROM mlpipe.search('pt_se', 'decision_tree', 'pt_trips', 'y', '{fdist,nope}', '{"max_depth": [2]}', folds => 2);
SELECT model, version FROM mlpipe.search('pt_se', 'decision_tree', 'pt_trips', 'y', '{fdist,fdur}', '{"max_depth": [2]}', 'bayes');

-- 9. The key index (issue #13): a new target gets one only in the modes
-- that need it, upsert (unique) and incremental; append and replace build
-- none (an index cost about as much as writing the table).
SELECT m, mlpipe.predict_table('pt_dt', 'pt_trips', target_table => 'pt_i_' || m, key => 'id', mode => m) AS rows
  FROM unnest('{append,replace,upsert,incremental}'::text[]) m;
SELECT c.relname, pg_get_indexdef(i.indexrelid) AS index
  FROM pg_class c LEFT JOIN pg_index i ON i.indrelid = c.oid
 WHERE c.relname LIKE 'pt\_i\_%' AND c.relkind = 'r' ORDER BY 1, 2;
-- An existing target without one gets it when a call needs it: incremental
-- into the append's table (no key left to score), upsert into the
-- replace's; an index already there is kept (no second one).
SELECT mlpipe.predict_table('pt_dt', 'pt_trips', target_table => 'pt_i_append', key => 'id', mode => 'incremental');
SELECT mlpipe.predict_table('pt_dt', 'pt_trips', target_table => 'pt_i_replace', key => 'id', mode => 'upsert');
SELECT mlpipe.predict_table('pt_dt', 'pt_trips', target_table => 'pt_i_upsert', key => 'id', mode => 'incremental');
SELECT c.relname, pg_get_indexdef(i.indexrelid) AS index
  FROM pg_class c LEFT JOIN pg_index i ON i.indrelid = c.oid
 WHERE c.relname LIKE 'pt\_i\_%' AND c.relkind = 'r' ORDER BY 1, 2;
-- upsert cannot get its unique index on a target with duplicate keys, nor
-- from a caller who does not own the target: 22000 with the index to
-- create; incremental goes on without an index then.
SELECT mlpipe.predict_table('pt_dt', 'pt_trips', target_table => 'pt_i_dup', key => 'id');
SELECT mlpipe.predict_table('pt_dt', 'pt_trips', target_table => 'pt_i_dup', key => 'id');
SELECT mlpipe.predict_table('pt_dt', 'pt_trips', target_table => 'pt_i_dup', key => 'id', mode => 'upsert');
CREATE TABLE pt_i_other (LIKE pt_i_dup);
DROP ROLE IF EXISTS t_pt_trainer;
CREATE ROLE t_pt_trainer IN ROLE mlpipe_trainer;
GRANT SELECT ON pt_trips TO t_pt_trainer;
GRANT SELECT, INSERT, UPDATE ON pt_i_other TO t_pt_trainer;
SET ROLE t_pt_trainer;
SELECT mlpipe.predict_table('pt_dt', 'pt_trips', target_table => 'pt_i_other', key => 'id', mode => 'incremental');
SELECT mlpipe.predict_table('pt_dt', 'pt_trips', target_table => 'pt_i_other', key => 'id', mode => 'upsert');
RESET ROLE;
SELECT count(*) AS indexes FROM pg_index WHERE indrelid IN ('pt_i_dup'::regclass, 'pt_i_other'::regclass);
DROP TABLE pt_i_other;
REVOKE SELECT ON pt_trips FROM t_pt_trainer;
DROP ROLE t_pt_trainer;

-- 10. An ensemble is scored in parallel workers, at most mlpipe.threads of
-- them (issue #13: more than the CPUs only add their start-up); the
-- caller's planner settings are back afterwards, and the rows are predict's.
SELECT version FROM mlpipe.train('pt_gb', 'gbt', 'pt_trips', 'y', '{fdist,fdur}', '{"n_estimators": 5, "seed": 1}');
SET max_parallel_workers_per_gather = 3;
SET mlpipe.threads = 1;
SELECT mlpipe.predict_table('pt_gb', 'pt_trips', target_table => 'pt_g1', key => 'id');
SELECT current_setting('max_parallel_workers_per_gather') AS workers, current_setting('parallel_setup_cost') AS setup_cost,
       current_setting('parallel_tuple_cost') AS tuple_cost, current_setting('mlpipe.threads') AS threads;
SELECT count(*) AS rows, count(*) FILTER (WHERE s.prediction IS DISTINCT FROM mlpipe.predict('pt_gb', ARRAY[t.fdist, t.fdur])) AS disagree
  FROM pt_g1 s JOIN pt_trips t USING (id);
RESET max_parallel_workers_per_gather;
RESET mlpipe.threads;

-- 11. upsert into a target partitioned on another column: no unique index
-- on the key alone is possible there (22000 saying why).
CREATE TABLE pt_i_part (LIKE pt_i_dup) PARTITION BY LIST (version);
CREATE TABLE pt_i_part1 PARTITION OF pt_i_part FOR VALUES IN (1);
SELECT mlpipe.predict_table('pt_dt', 'pt_trips', target_table => 'pt_i_part', key => 'id', mode => 'upsert');
SELECT mlpipe.predict_table('pt_dt', 'pt_trips', target_table => 'pt_i_part', key => 'id', mode => 'incremental');
SELECT mlpipe.predict_table('pt_dt', 'pt_trips', target_table => 'pt_i_part', key => 'id', mode => 'incremental');
SELECT pg_get_indexdef(indexrelid) AS index FROM pg_index WHERE indrelid = 'pt_i_part'::regclass;

-- 12. A new target is written a page at a time (issue #13,
-- mlpipe_internal._fill_table): the same table as CREATE TABLE AS of the
-- same SELECT gave (columns, types, rows), for a classifier (label, proba)
-- and for k-means; _fill_table refuses a table it
-- cannot fill correctly (indexes, triggers, constraints, not created in
-- this transaction) and a query that is not one row query.
SET mlpipe.threads = 2;
SELECT mlpipe.predict_table('pt_gb', 'pt_trips', target_table => 'pt_f1', key => 'id');
SELECT mlpipe.predict_table('pt_km', 'pt_trips', target_table => 'pt_f2', key => 'id', on_null => 'skip');
RESET mlpipe.threads;
CREATE TABLE pt_f1_ctas AS
SELECT src.id, mlpipe_internal._score_class('pt_gb@1', ARRAY[src.fdist, src.fdur]) AS prediction,
       mlpipe_internal._score_label('pt_gb@1', ARRAY[src.fdist, src.fdur]) AS label,
       mlpipe_internal._score_proba('pt_gb@1', ARRAY[src.fdist, src.fdur]) AS proba,
       'pt_gb'::text AS model, 1 AS version FROM pt_trips src;
SELECT (SELECT count(*) FROM pt_f1) AS rows,
       (SELECT count(*) FROM (SELECT id, prediction, label, proba, model, version FROM pt_f1
                              EXCEPT ALL SELECT * FROM pt_f1_ctas) d) AS not_in_ctas,
       (SELECT count(*) FROM (SELECT * FROM pt_f1_ctas
                              EXCEPT ALL SELECT id, prediction, label, proba, model, version FROM pt_f1) d) AS missing,
       (SELECT count(DISTINCT label) FROM pt_f1) AS labels;
SELECT (SELECT count(*) FROM pt_f2) AS rows,
       (SELECT count(*) FROM pt_f2 s JOIN pt_trips t USING (id)
         WHERE s.prediction IS DISTINCT FROM mlpipe.predict('pt_km', ARRAY[t.fdist, t.fdur])) AS disagree;
SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type
  FROM pg_attribute a WHERE a.attrelid = 'pt_f1'::regclass AND a.attnum > 0 ORDER BY a.attnum;
CREATE TABLE pt_f3 (id int, prediction float8);
SELECT mlpipe_internal._fill_table('pt_f3', 'SELECT 1, 2::float8');
BEGIN;
CREATE TABLE pt_f4 (id int, prediction float8);
SELECT mlpipe_internal._fill_table('pt_f4', 'SELECT i, i / 2.0::float8 FROM generate_series(1, 2500) i');
SELECT count(*), sum(prediction) FROM pt_f4;
SELECT mlpipe_internal._fill_table('pt_f4', 'SELECT 1, 2::float8; SELECT 1, 2::float8');
ROLLBACK;
BEGIN;
CREATE TABLE pt_f4 (id int, prediction float8);
SELECT mlpipe_internal._fill_table('pt_f4', 'SELECT 1, ''x''::text');
ROLLBACK;
BEGIN;
CREATE TABLE pt_f4 (id int, label varchar(3));
SELECT mlpipe_internal._fill_table('pt_f4', 'SELECT 1, ''long''::varchar(10)');
ROLLBACK;
BEGIN;
CREATE TABLE pt_f4 (id numeric(6,2), label varchar(10));
SELECT mlpipe_internal._fill_table('pt_f4', 'SELECT 1.5::numeric(6,2), ''ok''::varchar(10)');
SELECT * FROM pt_f4;
ROLLBACK;
BEGIN;
CREATE TABLE pt_f4 (id int PRIMARY KEY, prediction float8);
SELECT mlpipe_internal._fill_table('pt_f4', 'SELECT 1, 2::float8');
ROLLBACK;
BEGIN;
CREATE TABLE pt_f4 (id int NOT NULL, prediction float8);
SELECT mlpipe_internal._fill_table('pt_f4', 'SELECT 1, 2::float8');
ROLLBACK;
-- _has_preprocessing reads the artifact's section list (issue #13): a
-- model with preprocessing is scored in the row form, one without in the
-- float8[] form; a truncated artifact is refused as before.
SELECT version FROM mlpipe.train('pt_pp', 'gbt', 'pt_trips', 'y', '{fdist,fdur}', '{"n_estimators": 3, "seed": 1, "preprocess": {"*": {"impute": "median"}}}');
SELECT m, mlpipe_internal._has_preprocessing(mlpipe.artifact(m)) AS has_preprocessing
  FROM unnest(ARRAY['pt_gb', 'pt_km', 'pt_pp']) m;
SELECT mlpipe_internal._has_preprocessing('\x00'::bytea);
SELECT mlpipe.predict_table('pt_pp', 'pt_trips', target_table => 'pt_f5', key => 'id');
SELECT count(*) AS rows, count(*) FILTER (WHERE s.prediction IS DISTINCT FROM mlpipe.predict('pt_pp', t)) AS disagree
  FROM pt_f5 s JOIN pt_trips t USING (id);
-- A key with a typmod keeps it (the table is made WITH NO DATA from the same SELECT).
SELECT mlpipe.predict_table('pt_gb', 'SELECT id::numeric(8,2) AS trip, (''t'' || id)::varchar(12) AS name, fdist, fdur FROM pt_trips',
                            target_table => 'pt_f6', key => 'trip');
SELECT format_type(atttypid, atttypmod) AS key_type, (SELECT count(*) FROM pt_f6) AS rows
  FROM pg_attribute WHERE attrelid = 'pt_f6'::regclass AND attname = 'trip';
DROP TABLE pt_f1, pt_f1_ctas, pt_f2, pt_f3, pt_f5, pt_f6;
