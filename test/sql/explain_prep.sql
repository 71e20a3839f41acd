-- explain of models trained with params.preprocess (issue #14): the row
-- form reports one contribution per ORIGINAL column (a one-hot or target-
-- encoded category's outputs and an array's elements summed), and the
-- contributions plus the expected value still equal the raw output.
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS t_xprep CASCADE;
CREATE SCHEMA t_xprep;
SET search_path = t_xprep, public;
RESET client_min_messages;
SET mlpipe.progress = off;

-- Adult-like rows: numbers (one with NULLs), three text columns (one with
-- NULLs and a rare level), an array, a binary and a three-class label.
CREATE TABLE people AS
SELECT i AS id,
       17 + (i * 37) % 60 AS age,
       CASE WHEN i % 11 = 0 THEN NULL ELSE 20 + (i * 13) % 45 END::float8 AS hours,
       (ARRAY['Private', 'Self-emp', 'Gov', 'Private', 'Never-worked'])[1 + (i * 7) % 5] AS workclass,
       CASE WHEN i % 17 = 0 THEN NULL
            ELSE (ARRAY['HS-grad', 'Bachelors', 'Masters', 'Doctorate', 'Some-college', 'Assoc'])[1 + (i * 5) % 6] END AS education,
       (ARRAY['M', 'F'])[1 + i % 2] AS sex,
       ARRAY[(i % 9)::float8, ((i * 3) % 7)::float8] AS capital,
       CASE WHEN (17 + (i * 37) % 60) > 40 AND (i * 5) % 6 IN (1, 2, 3) OR (i * 7) % 5 = 1 THEN '>50K' ELSE '<=50K' END AS income,
       (ARRAY['low', 'mid', 'high'])[1 + ((17 + (i * 37) % 60) / 25 + (i * 5) % 6 / 3) % 3] AS band,
       (17 + (i * 37) % 60) * 10.0 + (i * 5) % 6 * 25 + (i % 9) AS score
  FROM generate_series(1, 1500) i;

SELECT version FROM mlpipe.train('xp_gbt', 'gbt', 'people', 'income',
    '{age,hours,workclass,education,sex,capital}',
    '{"n_estimators": 20, "max_depth": 4, "seed": 3,
      "preprocess": {"workclass": {"encode": "onehot"}, "hours": {"impute": "mean", "scale": "standard"},
                     "education": {"encode": "target"}}}');
SELECT features FROM mlpipe.model_versions WHERE model = 'xp_gbt';

-- One row per original column, in training order, then the expected value;
-- numbers report their raw value, categories and arrays NULL.
SELECT e.feature, e.value, e.contribution IS NOT NULL AS has_contribution
  FROM people p, mlpipe.explain('xp_gbt', p) e WHERE p.id = 12;
-- Additivity on every row: contributions + expected value = the margin
-- (the log-odds of the second class), within 1e-9.
SELECT count(*) AS rows, max(abs(s.total - ln(s.p / (1 - s.p)))) < 1e-9 AS adds_up
  FROM (SELECT p.id, sum(e.contribution) AS total, (mlpipe.predict_proba('xp_gbt', p))[2] AS p
          FROM people p, mlpipe.explain('xp_gbt', p) e GROUP BY p.id, p.*) s;
-- The 10 encoded features (4 one-hot indicators, 2 array elements) are
-- reported as 6 columns (test/core/test_explain_groups.c checks the sums).
SELECT pg_catalog.array_length(mlpipe.features('xp_gbt'), 1) AS encoded_features;
-- top_k picks among the original columns.
SELECT count(*) AS top_rows, count(*) FILTER (WHERE feature IS NULL) AS expected_rows
  FROM people p, mlpipe.explain('xp_gbt', p, top_k => 2) e WHERE p.id = 5;

-- A random forest over native-coded categories, three classes: each class's
-- probability is explained; the default class is the predicted one.
SELECT version FROM mlpipe.train('xp_rf', 'random_forest', 'people', 'band',
    '{age,workclass,education,capital}', '{"n_estimators": 15, "max_depth": 6, "seed": 5}');
SELECT count(*) AS rows, max(abs(s.total - s.proba)) < 1e-9 AS adds_up
  FROM (SELECT p.id, sum(e.contribution) AS total,
               (mlpipe.predict_proba('xp_rf', p))[pg_catalog.array_position(mlpipe.classes('xp_rf'), mlpipe.predict_label('xp_rf', p))] AS proba
          FROM people p, mlpipe.explain('xp_rf', p) e GROUP BY p.id, p.*) s;
SELECT count(*) AS rows, max(abs(s.total - (mlpipe.predict_proba('xp_rf', s.p))[1])) < 1e-9 AS adds_up_for_high
  FROM (SELECT p, sum(e.contribution) AS total
          FROM people p, mlpipe.explain('xp_rf', p, class => 'high') e GROUP BY p.id, p) s;

-- Regression: the value.
SELECT version FROM mlpipe.train('xp_reg', 'gbt', 'people', 'score',
    '{age,hours,workclass,education,sex,capital}', '{"n_estimators": 30, "seed": 1, "preprocess": {"*": {"impute": "median"}}}');
SELECT count(*) AS rows, max(abs(s.total - mlpipe.predict('xp_reg', s.p))) < 1e-9 AS adds_up
  FROM (SELECT p, sum(e.contribution) AS total FROM people p, mlpipe.explain('xp_reg', p) e GROUP BY p.id, p) s;
-- A row with unseen and missing categories explains too.
SELECT e.feature, e.contribution IS NOT NULL AS has_contribution
  FROM (SELECT 30 AS age, NULL::float8 AS hours, 'Astronaut' AS workclass, NULL AS education,
               'F' AS sex, ARRAY[1, 2]::float8[] AS capital) p, mlpipe.explain('xp_reg', p) e;

-- The float8[] forms take the encoded features, which the row form builds:
-- refused with a hint.
SELECT * FROM mlpipe.explain('xp_gbt', ARRAY[1, 2]::float8[]);
SELECT mlpipe.explain_values('xp_gbt', ARRAY[1, 2]::float8[]);

DROP SCHEMA t_xprep CASCADE;
