-- mlpipe.export output imports back (issue #14): for every tree algorithm
-- and task, the imported version has the same artifact bytes but for its
-- registry lineage, so it predicts and explains identically; and
-- explain_global over a source.
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS t_rt CASCADE;
CREATE SCHEMA t_rt;
SET search_path = t_rt, public;
RESET client_min_messages;
SET mlpipe.progress = off;

CREATE TABLE pts AS
SELECT i AS id, (i % 10)::float8 AS a,
       CASE WHEN i % 7 = 0 THEN NULL ELSE ((i * 3) % 11)::float8 END AS b,
       ((i * 13) % 17)::float8 / 3 AS c,
       CASE WHEN i % 10 >= 6 OR (i * 3) % 11 > 8 THEN 'big' WHEN i % 10 >= 3 THEN 'mid' ELSE 'small' END AS size,
       CASE WHEN i % 10 >= 5 THEN 'yes' ELSE 'no' END AS yes,
       (i % 10) * 2.5 + ((i * 3) % 11) * 0.5 + ((i * 13) % 17) / 10.0 AS y
  FROM generate_series(1, 800) i;

-- One model of each kind, exported, imported back under a new name.
CREATE TABLE trained (name text, algorithm text, target text, params jsonb);
INSERT INTO trained VALUES
  ('rt_gbt2', 'gbt', 'yes', '{"n_estimators": 15, "seed": 1}'),
  ('rt_gbt3', 'gbt', 'size', '{"n_estimators": 10, "max_depth": 4, "seed": 2}'),
  ('rt_gbtr', 'gbt', 'y', '{"n_estimators": 20, "seed": 3}'),
  ('rt_dt', 'decision_tree', 'size', '{"max_depth": 6, "seed": 4}'),
  ('rt_dtr', 'decision_tree', 'y', '{"max_depth": 6, "seed": 5}'),
  ('rt_rf', 'random_forest', 'size', '{"n_estimators": 8, "max_depth": 5, "seed": 6}'),
  ('rt_rfr', 'random_forest', 'y', '{"n_estimators": 8, "max_depth": 5, "seed": 7}');
SELECT t.name, mlpipe.train(t.name, t.algorithm, 'SELECT a, b, c, ' || t.target || ' FROM t_rt.pts', t.target,
                            params => t.params) IS NOT NULL AS trained
  FROM trained t ORDER BY t.name;
SELECT t.name, mlpipe.import(t.name || '_back', mlpipe.export(mlpipe.artifact(t.name)), origin => 'round trip') AS version
  FROM trained t ORDER BY t.name;
SELECT v.model, v.algorithm, v.task, v.source, v.features, v.classes, v.lineage->'imported'->>'format' AS format
  FROM mlpipe.model_versions v WHERE v.model LIKE 'rt\_%\_back' ORDER BY 1;
-- The trees are the very same: the artifacts differ in no byte, so the
-- predictions and explanations cannot either (checked anyway).
SELECT t.name, a.artifact = b.artifact AS same_artifact
  FROM trained t
  JOIN mlpipe.model_versions a ON a.model = t.name
  JOIN mlpipe.model_versions b ON b.model = t.name || '_back' ORDER BY 1;
SELECT t.name, count(*) AS rows,
       count(*) FILTER (WHERE mlpipe.predict(t.name, ARRAY[p.a, p.b, p.c]) = mlpipe.predict(t.name || '_back', ARRAY[p.a, p.b, p.c])
                          AND mlpipe.explain_values(t.name, ARRAY[p.a, p.b, p.c])
                              = mlpipe.explain_values(t.name || '_back', ARRAY[p.a, p.b, p.c])) AS identical
  FROM trained t, pts p GROUP BY 1 ORDER BY 1;
SELECT count(*) AS rows, count(*) FILTER (WHERE mlpipe.predict_proba('rt_gbt3', p) = mlpipe.predict_proba('rt_gbt3_back', p)) AS same_proba
  FROM pts p;
-- Renaming on the way in: features and classes as for XGBoost documents.
SELECT mlpipe.import('rt_renamed', mlpipe.export(mlpipe.artifact('rt_gbt2')), features => ARRAY['x', 'y', 'z'],
                     classes => ARRAY['N', 'Y']);
SELECT features, classes FROM mlpipe.model_versions WHERE model = 'rt_renamed';
SELECT mlpipe.predict_label('rt_renamed', ARRAY[8, 1, 2]::float8[]) AS label,
       mlpipe.predict_label('rt_gbt2', ARRAY[8, 1, 2]::float8[]) AS original;

-- What is refused.
\set VERBOSITY terse
SELECT mlpipe.import('bad', mlpipe.export(mlpipe.artifact('rt_dt')) #- '{model,trees,0,nodes,0,left}');
SELECT mlpipe.import('bad', jsonb_set(mlpipe.export(mlpipe.artifact('rt_dt')), '{model,trees,0,nodes,0,feature}', '"q"'));
SELECT mlpipe.import('bad', jsonb_set(mlpipe.export(mlpipe.artifact('rt_dt')), '{features}', '["a", "b"]'));
SELECT mlpipe.import('bad', mlpipe.export(mlpipe.artifact('rt_gbtr')), classes => ARRAY['x']);
SELECT mlpipe.import('bad', mlpipe.export(mlpipe.artifact('rt_dt')), features => ARRAY['x']);
\set VERBOSITY default
SELECT count(*) AS bad_versions FROM mlpipe.model_versions WHERE model = 'bad';

-- explain_global: mean |contribution| per feature over a sample, beside
-- the gain importance; the mean over every row equals the mean of the
-- row-level explanations.
SELECT feature, round(mean_abs_contribution::numeric, 6) AS mean_abs, round(gain_importance::numeric, 6) AS gain
  FROM mlpipe.explain_global('rt_gbt3', 't_rt.pts');
SELECT max(abs(g.mean_abs_contribution - r.mean_abs)) < 1e-12 AS same_as_rows
  FROM mlpipe.explain_global('rt_gbt2', 'SELECT a, b, c FROM t_rt.pts') g
  JOIN (SELECT e.feature, avg(abs(e.contribution)) AS mean_abs
          FROM pts p, mlpipe.explain('rt_gbt2', p) e WHERE e.feature IS NOT NULL GROUP BY 1) r USING (feature);
SELECT abs(sum(gain_importance) - 1) < 1e-12 AS gain_sums_to_1 FROM mlpipe.explain_global('rt_rf', 'pts', 50);
-- The sample is deterministic: the same rows whatever the physical order.
CREATE TABLE pts_shuffled AS SELECT * FROM pts ORDER BY (id * 7919) % 800;
SELECT (SELECT array_agg(mean_abs_contribution ORDER BY feature) FROM mlpipe.explain_global('rt_gbt3', 'pts', 100))
     = (SELECT array_agg(mean_abs_contribution ORDER BY feature) FROM mlpipe.explain_global('rt_gbt3', 'pts_shuffled', 100))
       AS same_sample;
SELECT * FROM mlpipe.explain_global('rt_gbt3', 'pts', 0);
SELECT * FROM mlpipe.explain_global('rt_gbt3', NULL);

DROP SCHEMA t_rt CASCADE;
