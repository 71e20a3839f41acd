-- pipelines.sql: the distributed versions of the hive and card-transaction
-- pipelines of docs/citus.md, on the Citus cluster (test/citus/run.sh runs
-- it after suite.sql when the data is present; psql -v data=DIR, with
-- beehive.sensor already loaded by scripts/load_beehive.sh). Each check
-- compares the distributed run with the same statements on a local copy and
-- prints PASS or FAIL like suite.sql.
\set ON_ERROR_STOP 1
\pset tuples_only on
\pset format unaligned
SET client_min_messages = warning;
SET mlpipe.progress = off;

--------------------------------------------------------------------------
-- Card transactions: train from an ordered query, score a view over the
-- distributed table into a co-located target.
--------------------------------------------------------------------------
DROP SCHEMA IF EXISTS bank CASCADE;
SELECT :'data' || '/brazilian_bank_transactions/MiBolsillo.utf8.csv' AS csv \gset
\ir ../../docs/examples/load_transactions.sql
SET client_min_messages = warning;
CREATE TABLE bank.tx_local AS SELECT * FROM bank.transactions;
SET client_min_messages = error;	-- Citus warns that a view over a local table stays local
CREATE VIEW bank.tx_features_local AS
SELECT tx_id, age, (sex = 'F')::int AS female, (state = 'SP')::int AS state_sp, limit_total,
       limit_available, amount, extract(dow FROM day)::int AS weekday,
       extract(day FROM day)::int AS day_of_month, extract(month FROM day)::int AS month,
       (country = 'BR')::int AS domestic
  FROM bank.tx_local;
SET client_min_messages = warning;
\set q 'SELECT tx_id, age, (sex = ''F'')::int AS female, (state = ''SP'')::int AS state_sp, limit_total, limit_available, amount, extract(dow FROM day)::int AS weekday, extract(day FROM day)::int AS day_of_month, extract(month FROM day)::int AS month, (country = ''BR'')::int AS domestic, category FROM bank.'
\set p '{"n_estimators": 60, "max_depth": 4, "learning_rate": 0.1, "seed": 7, "split": "random", "exclude": ["tx_id"]}'
SELECT FROM mlpipe.train('tx_local', 'gbt', :'q' || 'tx_local ORDER BY tx_id', 'category', params => :'p');
SELECT FROM mlpipe.predict_table('tx_local', 'bank.tx_features_local', 'bank.tx_pred_local', 'tx_id', 'replace');

-- The statements of docs/citus.md.
SELECT FROM create_distributed_table('bank.transactions', 'tx_id');
SELECT FROM mlpipe.train('tx_category', 'gbt', :'q' || 'transactions ORDER BY tx_id', 'category', params => :'p');
CREATE VIEW bank.tx_features AS
SELECT tx_id, age, (sex = 'F')::int AS female, (state = 'SP')::int AS state_sp, limit_total,
       limit_available, amount, extract(dow FROM day)::int AS weekday,
       extract(day FROM day)::int AS day_of_month, extract(month FROM day)::int AS month,
       (country = 'BR')::int AS domestic
  FROM bank.transactions;
CREATE TABLE bank.tx_predictions (tx_id int, prediction float8, label text, proba float8[],
                                  model text, version int, scored_at timestamptz);
SELECT FROM create_distributed_table('bank.tx_predictions', 'tx_id', colocate_with => 'bank.transactions');
CREATE UNIQUE INDEX ON bank.tx_predictions (tx_id);
SELECT FROM mlpipe.predict_table('tx_category', 'bank.tx_features', 'bank.tx_predictions', 'tx_id', 'replace');

SELECT CASE WHEN l = c THEN 'PASS' ELSE 'FAIL' END || ' transactions_train_artifact  [' || left(l, 16) || ' / ' || left(c, 16) || ']'
  FROM (SELECT (SELECT sha256 FROM mlpipe.model_versions WHERE model = 'tx_local') l,
               (SELECT sha256 FROM mlpipe.model_versions WHERE model = 'tx_category') c) s;
SELECT CASE WHEN l = c THEN 'PASS' ELSE 'FAIL' END || ' transactions_predictions  [' || n || ' rows]'
  FROM (SELECT (SELECT md5(string_agg(concat_ws('|', tx_id, prediction, label, proba), ',' ORDER BY tx_id)) FROM bank.tx_pred_local) l,
               (SELECT md5(string_agg(concat_ws('|', tx_id, prediction, label, proba), ',' ORDER BY tx_id)) FROM bank.tx_predictions) c,
               (SELECT count(*) FROM bank.tx_predictions) n) s;

--------------------------------------------------------------------------
-- Hive sensors: the readings distributed by hive, the pipeline of
-- docs/examples/hive.json unchanged; the features step pushes down whole.
--------------------------------------------------------------------------
DROP TABLE IF EXISTS beehive.sensor_local;
CREATE TABLE beehive.sensor_local AS SELECT * FROM beehive.sensor;
SELECT FROM create_distributed_table('beehive.sensor', 'hive');
SELECT CASE WHEN l = c THEN 'PASS' ELSE 'FAIL' END || ' hive_features_by_hive_and_day'
  FROM (SELECT (SELECT md5(string_agg(to_jsonb(s)::text, ',' ORDER BY hive, day)) FROM
                  (SELECT hive, day, (f).* FROM (SELECT hive, date_trunc('day', ts) AS day, mlpipe.ts_features(ts, temperature) f
                     FROM beehive.sensor_local GROUP BY hive, date_trunc('day', ts)) s0) s) l,
               (SELECT md5(string_agg(to_jsonb(s)::text, ',' ORDER BY hive, day)) FROM
                  (SELECT hive, day, (f).* FROM (SELECT hive, date_trunc('day', ts) AS day, mlpipe.ts_features(ts, temperature) f
                     FROM beehive.sensor GROUP BY hive, date_trunc('day', ts)) s0) s) c) x;
\set cfg `cat docs/examples/hive.json`
SELECT FROM mlpipe.create_pipeline('hive_citus', :'cfg');
SELECT FROM mlpipe.run_pipeline('hive_citus');
-- The same pipeline on the local copy of the readings.
SELECT FROM mlpipe.create_pipeline('hive_local', replace(replace(replace(replace(:'cfg',
    '"beehive.sensor"', '"beehive.sensor_local"'), '"hive_states"', '"hive_states_local"'),
    'beehive.hive_daily', 'beehive.hive_daily_local'), '"beehive.hive_states"', '"beehive.hive_states_local"'));
SELECT FROM mlpipe.run_pipeline('hive_local');
SELECT CASE WHEN l = c THEN 'PASS' ELSE 'FAIL' END || ' hive_pipeline_artifact  [' || left(l, 16) || ' / ' || left(c, 16) || ']'
  FROM (SELECT (SELECT sha256 FROM mlpipe.model_versions WHERE model = 'hive_states_local') l,
               (SELECT sha256 FROM mlpipe.model_versions WHERE model = 'hive_states') c) s;
