-- row_order: training depends only on the rows, not on the order they
-- arrive in (issue #11). Every algorithm is trained on a table, on the same
-- rows through a query ORDER BY md5(id::text), and on the table after
-- UPDATEs that move rows physically; the artifacts, metrics and training
-- profiles must be byte-identical. One source of 120,000 rows takes the
-- tree models' two-pass path (sample of the smallest content hashes for the
-- bin edges, rows ordered after pass 2) and a profile sample smaller than
-- the source.
SET client_min_messages = warning;
SET mlpipe.progress = off;
CREATE SCHEMA ro;
CREATE TABLE ro.d AS
SELECT i AS id,
  (hashint4(i) % 1000) / 100.0 AS x1,
  (hashint4(i*7+1) % 1000) / 50.0 AS x2,
  (hashint4(i*13+5) % 100)::float8 AS x3,
  CASE WHEN i % 17 = 0 THEN NULL ELSE (hashint4(i*3) % 500) / 10.0 END AS x4,
  (ARRAY['red','green','blue','teal'])[1 + abs(hashint4(i*11)) % 4] AS colour,
  CASE WHEN i % 23 = 0 THEN NULL ELSE (ARRAY['a','b','c'])[1 + abs(hashint4(i*19)) % 3] END AS grp,
  ((hashint4(i) % 1000) / 100.0 + (hashint4(i*7+1) % 1000) / 50.0 > 5) AS ybin,
  (ARRAY['p','q','r'])[1 + (abs(hashint4(i*7+1)) % 1000) / 334] AS ymulti,
  (hashint4(i) % 1000) / 100.0 * 3 + (hashint4(i*13+5) % 100) / 10.0 AS yreg,
  date '2024-01-01' + (i % 400) AS day
FROM generate_series(1, 3000) i;
-- duplicated rows (identical content, different ids) must not matter either
INSERT INTO ro.d SELECT id + 100000, x1, x2, x3, x4, colour, grp, ybin, ymulti, yreg, day FROM ro.d WHERE id % 10 = 0;
-- the three arrival orders: table order, a shuffle, and the table after UPDATEs
CREATE VIEW ro.shuffled AS SELECT * FROM ro.d ORDER BY md5(id::text);
CREATE TABLE ro.moved AS SELECT * FROM ro.d;
UPDATE ro.moved SET x1 = x1 WHERE id % 3 = 0;
UPDATE ro.moved SET x2 = x2 WHERE id % 5 = 1;
-- the orders really differ (a table scan of ro.moved meets the updated rows last)
SELECT (SELECT array_agg(id) FROM (SELECT id FROM ro.d LIMIT 6) a) AS table_order,
       (SELECT array_agg(id) FROM (SELECT id FROM ro.shuffled LIMIT 6) a) AS shuffled_order,
       (SELECT array_agg(id) FROM (SELECT id FROM ro.moved LIMIT 6) a) AS moved_order;
CREATE TABLE ro.big AS
SELECT i AS id, (hashint4(i) % 1000) / 100.0 AS x1, (hashint4(i*7+1) % 1000) / 50.0 AS x2,
  (hashint4(i*13+5) % 100)::float8 AS x3,
  (hashint4(i) % 1000) / 100.0 * 3 + (hashint4(i*13+5) % 100) / 10.0 AS yreg,
  CASE WHEN i % 97 = 0 THEN NULL ELSE (ARRAY['p','q','r'])[1 + abs(hashint4(i*11)) % 3] END AS ylab,
  date '2024-01-01' + (i % 400) AS day
FROM generate_series(1, 120000) i;
CREATE VIEW ro.big_shuffled AS SELECT * FROM ro.big ORDER BY md5(id::text);
-- pass 2 places rows where pass 1's hashes put them in the canonical order;
-- a source shuffled afresh on every read gives pass 2 another order
CREATE VIEW ro.big_reshuffled AS SELECT * FROM ro.big ORDER BY random();
-- the models: name, algorithm, target, features, params
CREATE TABLE ro.spec (name text, algorithm text, target text, features text[], params jsonb, big bool DEFAULT false);
INSERT INTO ro.spec VALUES
 ('km', 'kmeans', NULL, '{x1,x2,x3}', '{"k":5,"seed":3}'),
 ('kmr', 'kmeans', NULL, '{x1,x2,x3}', '{"k":4,"init":"random","standardize":true,"seed":1}'),
 ('kmc', 'kmeans', NULL, '{x1,x2,x3}', '{"k":6,"distance":"cosine","n_init":3,"sample_size":2000}'),
 ('mb', 'minibatch_kmeans', NULL, '{x1,x2,x3}', '{"k":5,"batch_size":256,"seed":2}'),
 ('kmt', 'kmeans', NULL, '{x1,x2,colour,grp}', '{"k":4,"seed":4,"preprocess":{"*":{"impute":"mode"}}}'),
 ('dt', 'decision_tree', 'ybin', '{x1,x2,x3,x4}', '{"max_depth":5}'),
 ('dtr', 'decision_tree', 'yreg', '{x1,x2,x3,x4}', '{}'),
 ('rf', 'random_forest', 'ymulti', '{x1,x2,x3,x4}', '{"n_estimators":20,"seed":5}'),
 ('rfr', 'random_forest', 'yreg', '{x1,x2,x3,x4}', '{"n_estimators":10,"max_depth":6}'),
 ('gb', 'gbt', 'ybin', '{x1,x2,x3,x4}', '{"n_estimators":30,"seed":1}'),
 ('gbm', 'gbt', 'ymulti', '{x1,x2,x3,x4}', '{"n_estimators":20,"class_weight":"balanced"}'),
 ('gbr', 'gbt', 'yreg', '{x1,x2,x3,x4}', '{"n_estimators":25,"max_depth":4,"test_size":0.3}'),
 ('gbe', 'gbt', 'yreg', '{x1,x2,x3,x4}', '{"n_estimators":200,"early_stopping_rounds":5}'),
 ('gbp', 'gbt', 'ybin', '{x1,x2,x4,colour,grp}', '{"n_estimators":10,"preprocess":{"*":{"impute":"mean"},"colour":{"encode":"onehot"}}}'),
 ('gbt', 'gbt', 'ybin', '{x1,x2,x3}', '{"n_estimators":10,"split":"time:day"}');
INSERT INTO ro.spec VALUES
 ('big_dt', 'decision_tree', 'yreg', '{x1,x2,x3}', '{"max_depth":6}', true),
 ('big_gb', 'gbt', 'yreg', '{x1,x2,x3}', '{"n_estimators":5,"profile_sample":5000}', true),
 ('big_gbl', 'gbt', 'ylab', '{x1,x2,x3}', '{"n_estimators":3,"split":"time:day"}', true);
-- every model from each source: <name>_table, <name>_shuffled, <name>_moved
SELECT count(*) AS trained FROM ro.spec s,
  LATERAL (VALUES ('table', CASE WHEN s.big THEN 'ro.big' ELSE 'ro.d' END),
                  ('shuffled', CASE WHEN s.big THEN 'SELECT * FROM ro.big_shuffled' ELSE 'SELECT * FROM ro.shuffled' END),
                  ('moved', CASE WHEN s.big THEN NULL ELSE 'ro.moved' END),
                  ('reshuffled', CASE WHEN s.big THEN 'SELECT * FROM ro.big_reshuffled' END)) src(kind, source),
  LATERAL mlpipe.train(s.name || '_' || src.kind, s.algorithm, src.source, s.target, s.features, s.params) t
 WHERE src.source IS NOT NULL;
-- time travel (params.as_of on a timestamp column): the rows before the cut, in any order
SELECT count(*) AS as_of FROM (VALUES ('table', 'ro.d'), ('shuffled', 'ro.shuffled'), ('moved', 'ro.moved')) src(kind, rel),
  LATERAL mlpipe.train('asof_' || src.kind, 'gbt', 'SELECT x1, x2, x3, ybin, day FROM ' || src.rel, 'ybin', NULL,
                       '{"n_estimators": 10, "as_of": "2024-06-01", "as_of_column": "day"}') t;
-- warm starts from the table's and the shuffled source's k-means, on each source
SELECT count(*) AS warm FROM (VALUES ('table', 'ro.d'), ('shuffled', 'SELECT * FROM ro.shuffled'), ('moved', 'ro.moved')) src(kind, source),
  LATERAL (VALUES ('km', 'kmeans'), ('mb', 'minibatch_kmeans')) w(base, algorithm),
  LATERAL mlpipe.train(w.base || 'w_' || src.kind, w.algorithm, src.source, NULL, '{x1,x2,x3}',
                       jsonb_build_object('k', 5, 'seed', 9, 'warm_start', w.base || '_' || src.kind)) t;
-- the big sources' read on one thread and with workers (a pool task hashes,
-- samples and bins a block of rows while the backend reads the next): the same bytes
SET mlpipe.threads = 1;
SELECT count(*) AS one_thread FROM ro.spec s,
  LATERAL mlpipe.train(s.name || '_one', s.algorithm, 'ro.big', s.target, s.features, s.params) t WHERE s.big;
SET mlpipe.threads = 3;
SELECT count(*) AS three_threads FROM ro.spec s,
  LATERAL mlpipe.train(s.name || '_three', s.algorithm, 'ro.big', s.target, s.features, s.params) t WHERE s.big;
RESET mlpipe.threads;
-- per model: one artifact, one set of metrics, one profile over every arrival order
SELECT split_part(v.model, '_', 1) || CASE WHEN v.model LIKE 'big%' THEN '_' || split_part(v.model, '_', 2) ELSE '' END AS model,
       count(*) AS sources,
       count(DISTINCT md5(v.artifact)) AS artifacts,
       count(DISTINCT v.metrics - 'training_seconds') AS metrics,
       count(DISTINCT v.profile) AS profiles
  FROM mlpipe.model_versions v
 WHERE v.source LIKE '%ro.%'
 GROUP BY 1 ORDER BY 1;
-- the big sources took the two-pass path, and the profile sampled 5,000 of 120,000 rows
SELECT v.model, (v.lineage->>'passes')::int AS passes, (v.profile->>'rows')::int AS profile_rows
  FROM mlpipe.model_versions v
 WHERE v.model LIKE 'big%' ORDER BY 1;
-- a source that changes between the passes: pass 2 reads 10 rows fewer
-- (their predicted slots stay empty and are closed) or 10 more than pass 1;
-- the same in table order and shuffled, and growing trains the full table's
-- model (the bin edges of 119,990 and 120,000 rows agree here)
CREATE SEQUENCE ro.pass_no;
CREATE FUNCTION ro.pass_cut() RETURNS int VOLATILE LANGUAGE sql
  AS $$ SELECT (nextval('ro.pass_no') % 2)::int * 10 $$;
SELECT count(*) AS changing FROM
  (VALUES ('full', 1, 'SELECT * FROM ro.big'),
          ('shrink', 1, 'SELECT * FROM ro.big WHERE id > (SELECT ro.pass_cut())'),
          ('shrink_shuffled', 1, 'SELECT * FROM ro.big WHERE id > (SELECT ro.pass_cut()) ORDER BY random()'),
          ('grow', 2, 'SELECT * FROM ro.big WHERE id > (SELECT ro.pass_cut())'),
          ('grow_shuffled', 2, 'SELECT * FROM ro.big WHERE id > (SELECT ro.pass_cut()) ORDER BY random()')) c(name, start, source),
  LATERAL (SELECT setval('ro.pass_no', c.start)) s,
  LATERAL mlpipe.train('chg_' || c.name, 'gbt', c.source, 'yreg', '{x1,x2,x3}', '{"n_estimators":5}') t;
SELECT v.model, v.training_rows, (v.lineage->>'passes')::int AS passes,
       md5(v.artifact) = (SELECT md5(w.artifact) FROM mlpipe.model_versions w
                           WHERE w.model = 'chg_' || split_part(v.model, '_', 2)) AS same_as_table_order,
       md5(v.artifact) = (SELECT md5(w.artifact) FROM mlpipe.model_versions w WHERE w.model = 'chg_full') AS same_as_full
  FROM mlpipe.model_versions v WHERE v.model LIKE 'chg%' ORDER BY 1;
