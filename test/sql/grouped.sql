-- Issue #14: one model per group (params.group_by) and dates as features.
SET client_min_messages = notice;
CREATE TABLE gsrc AS
SELECT i, (ARRAY['north', 'south/east', 'west@1'])[1 + i % 3] AS region, (i % 2 = 0) AS promo,
       (i % 7)::float8 AS x1, ((i * 13) % 11)::float8 AS x2,
       CASE WHEN (i % 3 = 0 AND i % 7 > 3) OR (i % 3 = 1 AND (i * 13) % 11 > 5)
                 OR (i % 3 = 2 AND i % 7 < 2) THEN 'yes' ELSE 'no' END AS y,
       (i % 7) * 2.5 + (i % 3) * 10 AS amount
  FROM generate_series(1, 900) i;
INSERT INTO gsrc VALUES (901, 'tiny', true, 1, 1, 'yes', 1), (902, NULL, true, 1, 1, 'no', 1);

-- One call: a row per group, in order of first appearance; the tiny group is
-- skipped (fewer than min_rows_per_group = 10 rows), the NULL group is not used.
SELECT model, version, promoted, metrics->'rows' AS test_rows, metrics->>'skipped' AS skipped
  FROM mlpipe.train('sales', 'decision_tree', 'gsrc', 'y',
                    params => '{"group_by": "region", "exclude": ["i", "amount"], "seed": 3}');
SELECT parent, group_key, model, training_rows FROM mlpipe.model_groups ORDER BY model;
SELECT name, group_by, algorithm, fallback FROM mlpipe.grouped_models;
SELECT mlpipe.features('sales/north');   -- the group column is no feature
SELECT lineage->'group' AS grp FROM mlpipe.model_versions WHERE model = 'sales/north';

-- Each group's model is byte for byte the model of that group trained alone.
SELECT count(t.model) AS trained_alone
  FROM mlpipe.model_groups g
  CROSS JOIN LATERAL mlpipe.train('alone_' || pg_catalog.md5(g.model), 'decision_tree',
          pg_catalog.format('SELECT * FROM gsrc WHERE region = %L', g.group_key[1]), 'y',
          params => '{"exclude": ["i", "amount", "region"], "seed": 3}') t;
SELECT g.model, v.sha256 = a.sha256 AS same_artifact, v.artifact = a.artifact AS same_bytes
  FROM mlpipe.model_groups g
  JOIN mlpipe.model_versions v ON v.model = g.model
  JOIN mlpipe.model_versions a ON a.model = 'alone_' || pg_catalog.md5(g.model)
 ORDER BY g.model;

-- Routing: every row scores with its group's model; the skipped and NULL
-- groups score NULL (no fallback).
SELECT region, count(*) AS n_rows, count(p) AS scored,
       count(*) FILTER (WHERE p IS DISTINCT FROM CASE WHEN region IN ('north', 'south/east', 'west@1') THEN
                              mlpipe.predict_label(mlpipe.group_model_name('sales', ARRAY[region]), s) END) AS misrouted
  FROM (SELECT region, mlpipe.predict_label('sales', gsrc) AS p, gsrc AS s FROM gsrc) q
 GROUP BY region ORDER BY region;
SELECT count(*) FILTER (WHERE mlpipe.predict('sales', gsrc) IS DISTINCT FROM
                              mlpipe.predict(mlpipe.group_model_name('sales', ARRAY[region]), gsrc)) AS predict_differs,
       count(*) FILTER (WHERE mlpipe.predict_proba('sales', gsrc) IS DISTINCT FROM
                              mlpipe.predict_proba(mlpipe.group_model_name('sales', ARRAY[region]), gsrc)) AS proba_differs
  FROM gsrc WHERE region IN ('north', 'south/east', 'west@1');
-- An unseen group value scores NULL.
SELECT mlpipe.predict_label('sales', r) FROM (SELECT 1 AS i, 'east'::text AS region, true AS promo, 1.0::float8 AS x1, 2.0::float8 AS x2) r;
-- A row without the group column: 22000 naming it.
SELECT mlpipe.predict('sales', r) FROM (SELECT 1.0::float8 AS x1, 2.0::float8 AS x2, true AS promo) r;

-- Retraining with a fallback: unseen, skipped and NULL groups score with it.
SELECT model FROM mlpipe.train('sales_all', 'decision_tree', 'gsrc', 'y', params => '{"exclude": ["i", "amount", "region"], "seed": 3}');
SELECT model, version FROM mlpipe.train('sales', 'decision_tree', 'gsrc', 'y',
    params => '{"group_by": ["region"], "exclude": ["i", "amount"], "seed": 3, "fallback": "sales_all"}') ORDER BY model;
SELECT region, count(*) FILTER (WHERE mlpipe.predict_label('sales', gsrc) IS DISTINCT FROM mlpipe.predict_label('sales_all', gsrc)) AS differs_from_fallback
  FROM gsrc WHERE region IS NULL OR region = 'tiny' GROUP BY region ORDER BY region;

-- Two group columns, a regression, k-means.
SELECT model, version FROM mlpipe.train('amt', 'gbt', 'gsrc', 'amount',
    params => '{"group_by": ["region", "promo"], "exclude": ["i", "y"], "seed": 1, "n_estimators": 5}') ORDER BY model;
SELECT count(*) FILTER (WHERE mlpipe.predict('amt', gsrc) IS DISTINCT FROM
                              mlpipe.predict(mlpipe.group_model_name('amt', ARRAY[region, CASE WHEN promo THEN 't' ELSE 'f' END]), gsrc)) AS misrouted
  FROM gsrc WHERE region <> 'tiny';
SELECT model FROM mlpipe.train('seg', 'kmeans', 'SELECT region, x1, x2 FROM gsrc', params => '{"group_by": "region", "k": 2, "seed": 1}') ORDER BY model;

-- The naming scheme.
SELECT mlpipe.group_model_name('m', ARRAY['a/b', 'c@d', '50%', E'x\ny', '']);

-- Limits and bad input.
SELECT * FROM mlpipe.train('too_many', 'decision_tree', 'gsrc', 'y', params => '{"group_by": "region", "max_groups": 2}');
SELECT model, version FROM mlpipe.train('few', 'decision_tree', 'gsrc', 'y',
    params => '{"group_by": "region", "exclude": ["i", "amount"], "min_rows_per_group": 400}');
SELECT * FROM mlpipe.train('bad', 'decision_tree', 'gsrc', 'y', params => '{"group_by": "nope"}');
SELECT * FROM mlpipe.train('bad', 'decision_tree', 'gsrc', 'y', params => '{"group_by": []}');
SELECT * FROM mlpipe.train('bad', 'decision_tree', 'gsrc', 'y', params => '{"group_by": "region", "max_groups": 0}');
\set VERBOSITY terse
SELECT * FROM mlpipe.train('bad', 'decision_tree', 'gsrc', 'y', params => '{"group_by": "region", "fallback": "nothing_here"}');
\set VERBOSITY default
SELECT * FROM mlpipe.train('bad', 'decision_tree', 'gsrc', 'y', ARRAY['region', 'x1'], params => '{"group_by": "region"}');
SELECT * FROM mlpipe.train('sales_all', 'decision_tree', 'gsrc', 'y', params => '{"group_by": "region"}');
SELECT * FROM mlpipe.train('sales', 'decision_tree', 'gsrc', 'y', params => '{"group_by": "promo"}');
-- A failing group fails the whole training, naming the group; the registry is as it was.
SELECT count(*) AS versions_before FROM mlpipe.model_versions \gset
SELECT * FROM mlpipe.train('one_class', 'decision_tree',
    $$SELECT region, x1, CASE WHEN region = 'north' THEN 'same' ELSE y END AS y FROM gsrc WHERE region <> 'tiny'$$, 'y',
    params => '{"group_by": "region"}');
SELECT count(*) = :versions_before AS registry_unchanged FROM mlpipe.model_versions;
SELECT count(*) FROM mlpipe.grouped_models WHERE name = 'one_class';

-- Dates as features: a date becomes epoch, year, month, day, dow; a
-- timestamp or timestamptz also hour (timestamptz in UTC).
CREATE TABLE visits AS
SELECT i, timestamptz '2024-01-01 00:00+00' + i * interval '7 hours' AS at,
       date '2024-01-01' + i / 3 AS day,
       CASE WHEN extract(hour FROM (timestamptz '2024-01-01 00:00+00' + i * interval '7 hours') AT TIME ZONE 'UTC') >= 12
            THEN 'pm' ELSE 'am' END AS half
  FROM generate_series(1, 500) i;
SET TimeZone = 'UTC';
SELECT model, metrics->>'accuracy' AS accuracy FROM mlpipe.train('visit_utc', 'decision_tree', 'visits', 'half', params => '{"exclude": ["i"], "seed": 1}');
SET TimeZone = 'Asia/Kolkata';
SELECT model FROM mlpipe.train('visit_ist', 'decision_tree', 'visits', 'half', params => '{"exclude": ["i"], "seed": 1}');
SELECT mlpipe.features('visit_ist');
-- The session TimeZone does not change the model.
SELECT (SELECT sha256 FROM mlpipe.model_versions WHERE model = 'visit_utc')
     = (SELECT sha256 FROM mlpipe.model_versions WHERE model = 'visit_ist') AS same_model;
-- The row form applies the same expansion: as the float8[] form given extract() in UTC.
SELECT count(*) AS n_rows,
       count(*) FILTER (WHERE mlpipe.predict('visit_ist', v) = mlpipe.predict('visit_ist', ARRAY[
           extract(epoch FROM at), extract(year FROM at AT TIME ZONE 'UTC'), extract(month FROM at AT TIME ZONE 'UTC'),
           extract(day FROM at AT TIME ZONE 'UTC'), extract(dow FROM at AT TIME ZONE 'UTC'), extract(hour FROM at AT TIME ZONE 'UTC'),
           extract(epoch FROM day), extract(year FROM day), extract(month FROM day), extract(day FROM day), extract(dow FROM day)]::float8[])) AS same,
       count(*) FILTER (WHERE mlpipe.predict_label('visit_ist', v) = half) AS right_label
  FROM visits v;
SET TimeZone = 'America/Los_Angeles';
SELECT count(*) FILTER (WHERE mlpipe.predict_label('visit_ist', v) = half) AS right_label_in_la FROM visits v;
RESET TimeZone;
-- A timestamp (without time zone) column; the time split column stays out of the features.
SELECT model FROM mlpipe.train('visit_split', 'decision_tree',
    'SELECT at::timestamp AS at_local, day, half FROM visits', 'half', params => '{"split": "time:day", "seed": 1}');
SELECT mlpipe.features('visit_split');
-- An infinite date is a missing value: trees route it like NULL; k-means refuses it.
SELECT model FROM mlpipe.train('visit_inf', 'decision_tree',
    $$SELECT day, half FROM visits UNION ALL SELECT 'infinity'::date, 'am'$$, 'half');
SELECT * FROM mlpipe.train('visit_km', 'kmeans', $$SELECT day FROM visits UNION ALL SELECT '-infinity'::date$$, params => '{"k": 2}');
-- A date cannot be a group column (its text depends on DateStyle).
SELECT * FROM mlpipe.train('by_day', 'kmeans', 'SELECT day, extract(hour FROM at) AS h FROM visits', params => '{"group_by": "day", "k": 2}');

-- Dropping a grouped model drops every group's model and the grouping.
SELECT mlpipe.drop_grouped_model('sales');
SELECT count(*) AS left_models FROM mlpipe.models WHERE name LIKE 'sales/%';
SELECT count(*) AS left_groups FROM mlpipe.model_groups WHERE parent = 'sales';
SELECT mlpipe.drop_grouped_model('sales');
SELECT mlpipe.drop_grouped_model('sales_all');
