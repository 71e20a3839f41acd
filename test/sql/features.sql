-- Feature aggregates: ts_features and summary against built-in aggregates,
-- order and plan independence, parallel plans, edge cases and bad input.
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS t_features CASCADE;
CREATE SCHEMA t_features;
SET search_path = t_features, public;
RESET client_min_messages;
SET mlpipe.progress = off;

-- A hand-checkable series: hours 0, 1, 2, 4 with values 1, 2, 4, 8.
SELECT (mlpipe.ts_features(ts, v)).*
  FROM (VALUES ('2024-01-01 00:00+00'::timestamptz, 1.0::float8), ('2024-01-01 01:00+00', 2.0),
               ('2024-01-01 02:00+00', 4.0), ('2024-01-01 04:00+00', 8.0)) t(ts, v);
SELECT (mlpipe.summary(v)).* FROM (VALUES (3.0::float8), (1.0), (2.0), (NULL), ('NaN')) t(v);

-- Three sensors, 20,000 readings each, every 15 minutes with jitter, a few
-- NULL values and NULL timestamps.
CREATE TABLE readings AS
SELECT s AS sensor,
       CASE WHEN i % 997 = 0 THEN NULL
            ELSE '2021-06-01 00:00+00'::timestamptz + (i * 900 + (i * 7919) % 300) * interval '1 second' END AS ts,
       CASE WHEN i % 1009 = 0 THEN NULL
            ELSE 20 + s + 5 * sin(i / 96.0 * 2 * pi()) + ((i * 2654435761::bigint) % 1000) / 500.0 + i * 1e-4 END AS v
  FROM generate_series(1, 3) s, generate_series(1, 20000) i;
ANALYZE readings;

-- Each figure against the same figure written with built-in aggregates.
CREATE TABLE ours AS
SELECT sensor, (mlpipe.ts_features(ts, v)).* FROM readings GROUP BY sensor;
CREATE TABLE builtin AS
SELECT sensor, count(v) FILTER (WHERE ts IS NOT NULL) AS n,
       count(*) FILTER (WHERE v IS NULL OR ts IS NULL) AS n_null,
       avg(v) FILTER (WHERE ts IS NOT NULL) AS mean,
       stddev(v) FILTER (WHERE ts IS NOT NULL) AS std,
       min(v) FILTER (WHERE ts IS NOT NULL) AS min, max(v) FILTER (WHERE ts IS NOT NULL) AS max,
       percentile_cont(ARRAY[0.05, 0.25, 0.5, 0.75, 0.95]) WITHIN GROUP (ORDER BY v)
           FILTER (WHERE ts IS NOT NULL) AS q,
       regr_slope(v, extract(epoch FROM ts) / 3600) AS slope
  FROM readings GROUP BY sensor;
CREATE TABLE ordered AS
SELECT sensor, v, ts, lag(v) OVER w AS prev_v, lag(ts) OVER w AS prev_ts,
       row_number() OVER w AS rn, count(*) OVER (PARTITION BY sensor) AS cnt
  FROM readings WHERE v IS NOT NULL AND ts IS NOT NULL
WINDOW w AS (PARTITION BY sensor ORDER BY ts, v);
CREATE TABLE pairs AS
SELECT sensor, avg(abs(v - prev_v)) AS mean_abs_change, corr(prev_v, v) AS autocorr_lag1,
       max(extract(epoch FROM ts - prev_ts)) AS longest_gap,
       max(v) FILTER (WHERE rn = 1) AS first, max(v) FILTER (WHERE rn = cnt) AS last
  FROM ordered GROUP BY sensor;
SELECT o.sensor, o.n = b.n AS n, o.n_null = b.n_null AS n_null,
       abs(o.mean - b.mean) <= 1e-12 * abs(b.mean) AS mean,
       abs(o.std - b.std) <= 1e-10 * b.std AS std,
       o.min = b.min AS min, o.max = b.max AS max,
       ARRAY[o.q05, o.q25, o.median, o.q75, o.q95] = b.q AS quantiles,
       abs(o.slope - b.slope) <= 1e-9 * abs(b.slope) AS slope,
       o.first = p.first AND o.last = p.last AS first_last,
       abs(o.mean_abs_change - p.mean_abs_change) <= 1e-12 * p.mean_abs_change AS mac,
       abs(o.autocorr_lag1 - p.autocorr_lag1) <= 1e-12 AS acf,
       o.longest_gap = p.longest_gap AS gap
  FROM ours o JOIN builtin b USING (sensor) JOIN pairs p USING (sensor) ORDER BY 1;
SELECT sensor, n, n_null, round(longest_gap) AS longest_gap FROM ours ORDER BY 1;

-- Shuffled input gives the same result, bit for bit.
SET max_parallel_workers_per_gather = 0;
SELECT count(*) AS same_when_shuffled
  FROM (SELECT sensor, mlpipe.ts_features(ts, v) AS f
          FROM (SELECT * FROM readings ORDER BY md5(sensor::text || coalesce(ts::text, '') || coalesce(v::text, ''))) s
         GROUP BY sensor) a
  JOIN (SELECT sensor, mlpipe.ts_features(ts, v) AS f
          FROM (SELECT * FROM readings ORDER BY ts DESC, v) s GROUP BY sensor) b USING (sensor)
 WHERE a.f::text = b.f::text;
SELECT count(*) AS summary_same_when_shuffled
  FROM (SELECT sensor, mlpipe.summary(v) AS f FROM (SELECT * FROM readings ORDER BY md5(v::text)) s GROUP BY sensor) a
  JOIN (SELECT sensor, mlpipe.summary(v) AS f FROM readings GROUP BY sensor) b USING (sensor)
 WHERE a.f::text = b.f::text;

-- A forced parallel plan: Partial Aggregate in the workers, combined in the
-- leader, the same result as the serial plan.
CREATE TABLE serial_result AS
SELECT sensor, mlpipe.ts_features(ts, v)::text AS f, mlpipe.summary(v)::text AS s FROM readings GROUP BY sensor;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
SET enable_hashagg = off;
EXPLAIN (COSTS OFF)
SELECT sensor, mlpipe.ts_features(ts, v), mlpipe.summary(v) FROM readings GROUP BY sensor;
SELECT count(*) AS parallel_same_as_serial
  FROM (SELECT sensor, mlpipe.ts_features(ts, v)::text AS f, mlpipe.summary(v)::text AS s
          FROM readings GROUP BY sensor) p
  JOIN serial_result r USING (sensor) WHERE p.f = r.f AND p.s = r.s;
EXPLAIN (COSTS OFF) SELECT mlpipe.ts_features(ts, v) FROM readings;
SELECT mlpipe.ts_features(ts, v)::text = (SELECT mlpipe.ts_features(ts, v)::text
                                            FROM (SELECT * FROM readings ORDER BY v) s) AS whole_table_same
  FROM readings;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
RESET parallel_leader_participation;
RESET enable_hashagg;

-- Ties in ts are ordered by value: first is the smallest value at the
-- earliest time, last the largest at the latest.
SELECT (f).first, (f).last, (f).mean_abs_change, (f).longest_gap
  FROM (SELECT mlpipe.ts_features(ts, v) AS f
          FROM (VALUES ('2024-01-01 00:00+00'::timestamptz, 5.0::float8), ('2024-01-01 00:00+00', 3.0),
                       ('2024-01-01 00:10+00', 9.0), ('2024-01-01 00:10+00', 7.0)) t(ts, v)) s;

-- Few readings: undefined figures are NULL.
SELECT (mlpipe.ts_features(ts, v)).* FROM (VALUES ('2024-01-01'::timestamptz, 1.5::float8)) t(ts, v);
SELECT n, std, skewness, kurtosis, slope, autocorr_lag1, longest_gap
  FROM (SELECT (mlpipe.ts_features(ts, v)).* FROM (VALUES ('2024-01-01'::timestamptz, 2.0::float8),
               ('2024-01-01', 2.0), ('2024-01-02', 2.0)) t(ts, v)) s;

-- Bad input. An empty group gives NULL; a group of missing readings gives
-- n = 0 and the count; NULL timestamps are skipped and counted in n_null.
SELECT mlpipe.ts_features(ts, v) IS NULL AS empty_is_null FROM readings WHERE false;
SELECT mlpipe.summary(v) IS NULL AS empty_is_null FROM readings WHERE false;
SELECT sensor, mlpipe.ts_features(ts, v) FROM readings WHERE false GROUP BY sensor;
SELECT (mlpipe.ts_features(ts, v)).*
  FROM (VALUES (NULL::timestamptz, 1.0::float8), ('2024-01-01', NULL), ('2024-01-01', 'NaN')) t(ts, v);
SELECT n, n_null, mean FROM (SELECT (mlpipe.ts_features(ts, v)).*
  FROM (VALUES (NULL::timestamptz, 100.0::float8), ('2024-01-01', 1.0), ('2024-01-02', 3.0)) t(ts, v)) s;
\set VERBOSITY terse
SELECT mlpipe.ts_features(ts, v) FROM (VALUES ('infinity'::timestamptz, 1.0::float8)) t(ts, v);
SELECT mlpipe.ts_features(ts, v) FROM (VALUES ('2024-01-01'::timestamptz, 1.0::float8), ('-infinity', 2.0)) t(ts, v);
SET mlpipe.max_memory = '1MB';
SELECT (mlpipe.ts_features(ts, 1.0)).n
  FROM generate_series('2024-01-01'::timestamptz, '2024-01-01'::timestamptz + interval '65535 seconds', '1 second') ts;
SELECT (mlpipe.ts_features(ts, 1.0)).n
  FROM generate_series('2024-01-01'::timestamptz, '2024-01-01'::timestamptz + interval '65536 seconds', '1 second') ts;
SELECT (mlpipe.summary(v)).n FROM generate_series(1, 70000) v;
-- The SQLSTATEs: 22000 for the data, 54000 for the limit.
CREATE FUNCTION sqlstate_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'ok'; EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE; END $$;
SELECT sqlstate_of($$SELECT mlpipe.ts_features('infinity', 1.0)$$) AS infinite_ts,
       sqlstate_of($$SELECT mlpipe.summary(v) FROM generate_series(1, 70000) v$$) AS over_limit;
RESET mlpipe.max_memory;
-- Support functions take internal: SQL cannot call them.
SELECT mlpipe_internal._ts_features_trans(NULL::internal, now(), 1.0::float8);
\set VERBOSITY default

-- Running figures through a growing window frame (the final function keeps
-- the state usable).
SELECT i, (mlpipe.ts_features(ts, v) OVER (ORDER BY ts)).n, (mlpipe.ts_features(ts, v) OVER (ORDER BY ts)).last,
       (mlpipe.summary(v) OVER (ORDER BY ts)).median
  FROM (SELECT i, '2024-01-01'::timestamptz + i * interval '1 hour' AS ts, (i * i % 7)::float8 AS v
          FROM generate_series(1, 5) i) t ORDER BY i;

-- The aggregates are PUBLIC: the lowest role can use them on its own values.
SET ROLE mlpipe_reader;
SELECT (mlpipe.ts_features(ts, v)).n, (mlpipe.summary(v)).median
  FROM (VALUES ('2024-01-01'::timestamptz, 1.0::float8), ('2024-01-02', 2.0)) t(ts, v);
RESET ROLE;
SELECT has_function_privilege('mlpipe_admin', 'mlpipe_internal._features_combine(mlpipe.agg_state, mlpipe.agg_state)', 'EXECUTE')
       AS support_fn_executable;

SET client_min_messages = warning;
DROP SCHEMA t_features CASCADE;
