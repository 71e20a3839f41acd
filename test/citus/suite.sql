-- suite.sql: the Citus suite of issue #11. Runs on the coordinator of
-- scripts/citus-cluster.sh (test/citus/run.sh sets it up) with
-- psql -v rows=N. Loads readings and rows to score into a local table and a
-- distributed copy (create_distributed_table, 32 shards over 2 workers) and
-- compares every query of the issue's table with its local twin. Each check
-- prints one line:
--   PASS <name>  ...                     identical (floats within 1e-12 relative)
--   XFAIL <name>: <reason> (<what>)      a known gap of #11; still a real
--                                        comparison, it prints PASS once fixed
--   FAIL <name>: <what>                  a regression
--   INFO <name>: <figure>                plans and timings
-- test/citus/run.sh fails when any line starts with FAIL.
\set ON_ERROR_STOP 1
\pset tuples_only on
\pset format unaligned
SET client_min_messages = warning;
SET mlpipe.progress = off;

-- A fresh registry and schema on every run (Citus propagates both).
DROP SCHEMA IF EXISTS ct CASCADE;
DROP EXTENSION IF EXISTS mlpipe CASCADE;
CREATE EXTENSION mlpipe;
CREATE SCHEMA ct;

--------------------------------------------------------------------------
-- Helpers.
--------------------------------------------------------------------------

-- The rows of a query, run as written (its ORDER BY holds), as a jsonb array.
CREATE FUNCTION ct.run(q text) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    r record;
    out jsonb := '[]';
BEGIN
    FOR r IN EXECUTE q LOOP
        out := out || jsonb_build_array(to_jsonb(r));
    END LOOP;
    RETURN out;
END $$;

-- NULL when a and b agree (numbers within tol relative), else where and how they differ.
CREATE FUNCTION ct.diff(a jsonb, b jsonb, path text, tol float8 DEFAULT 1e-12) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    k text;
    i int;
    d text;
    x float8;
    y float8;
BEGIN
    IF jsonb_typeof(a) IS DISTINCT FROM jsonb_typeof(b) THEN
        RETURN format('%s: local %s, citus %s', path, left(a::text, 60), left(b::text, 60));
    ELSIF jsonb_typeof(a) = 'number' THEN
        x := a::text::float8;
        y := b::text::float8;
        IF x = y OR abs(x - y) <= tol * greatest(abs(x), abs(y)) THEN
            RETURN NULL;
        END IF;
        RETURN format('%s: local %s, citus %s (rel %s)', path, a, b,
                      to_char(abs(x - y) / greatest(abs(x), abs(y)), '9.9EEEE'));
    ELSIF jsonb_typeof(a) = 'object' THEN
        FOR k IN SELECT jsonb_object_keys(a || b) LOOP
            d := ct.diff(a -> k, b -> k, path || '.' || k, tol);
            IF d IS NOT NULL THEN RETURN d; END IF;
        END LOOP;
        RETURN NULL;
    ELSIF jsonb_typeof(a) = 'array' THEN
        IF jsonb_array_length(a) <> jsonb_array_length(b) THEN
            RETURN format('%s: local %s rows/elements, citus %s', path,
                          jsonb_array_length(a), jsonb_array_length(b));
        END IF;
        FOR i IN 0 .. jsonb_array_length(a) - 1 LOOP
            d := ct.diff(a -> i, b -> i, path || '[' || i || ']', tol);
            IF d IS NOT NULL THEN RETURN d; END IF;
        END LOOP;
        RETURN NULL;
    ELSIF a IS DISTINCT FROM b THEN
        RETURN format('%s: local %s, citus %s', path, left(a::text, 60), left(b::text, 60));
    END IF;
    RETURN NULL;
END $$;

-- A short rendering of a result for the report.
CREATE FUNCTION ct.brief(r jsonb) RETURNS text LANGUAGE sql AS $$
    SELECT CASE WHEN length(r::text) > 90 THEN left(r::text, 87) || '...' ELSE r::text END
$$;

-- Runs a query on the local table and its twin on the distributed one and
-- compares them; xfail is the reason when #11 says it fails today.
CREATE FUNCTION ct.check(name text, local_q text, citus_q text, xfail text DEFAULT NULL)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz;
    t1 timestamptz;
    t2 timestamptz;
    loc jsonb;
    dis jsonb;
    err text;
    d text;
    times text;
BEGIN
    t0 := clock_timestamp();
    BEGIN
        loc := ct.run(local_q);
    EXCEPTION WHEN others THEN
        RETURN format('FAIL %s: the local query failed: %s', name, SQLERRM);
    END;
    t1 := clock_timestamp();
    BEGIN
        dis := ct.run(citus_q);
    EXCEPTION WHEN others THEN
        err := SQLERRM;
    END;
    t2 := clock_timestamp();
    times := format('local %s s, citus %s s', round(extract(epoch FROM t1 - t0)::numeric, 2),
                    round(extract(epoch FROM t2 - t1)::numeric, 2));
    IF err IS NOT NULL THEN
        IF xfail IS NOT NULL THEN
            RETURN format('XFAIL %s: %s (ERROR: %s)', name, xfail, left(err, 120));
        END IF;
        RETURN format('FAIL %s: %s', name, err);
    END IF;
    d := ct.diff(loc, dis, '$');
    IF d IS NULL THEN
        RETURN format('PASS %s  [%s] %s%s', name, times, ct.brief(loc),
                      CASE WHEN xfail IS NOT NULL THEN ' (was XFAIL: ' || xfail || ')' ELSE '' END);
    ELSIF xfail IS NOT NULL THEN
        RETURN format('XFAIL %s: %s (%s)', name, xfail, d);
    END IF;
    RETURN format('FAIL %s: %s [%s]', name, d, times);
END $$;

-- The EXPLAIN VERBOSE text of a query.
CREATE FUNCTION ct.plan(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    l text;
    out text := '';
BEGIN
    FOR l IN EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || q LOOP
        out := out || l || E'\n';
    END LOOP;
    RETURN out;
END $$;

-- Where Citus computes the aggregate agg of a query: 'pushed down whole'
-- (the shard query computes it per group), 'partial + combine' (shards
-- compute partial states, the coordinator combines) or 'row-gather' (the
-- shards send rows; the coordinator aggregates). Pushed down and partial
-- PASS; row-gather FAILs: every mlpipe aggregate has a combinable state
-- (mlpipe.agg_state), so Citus must split it.
CREATE FUNCTION ct.plan_check(name text, q text, agg text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    p text;
    shard_query text;
    how text;
BEGIN
    p := ct.plan(q);
    shard_query := substring(p FROM 'Query: ([^\n]*)');
    IF shard_query IS NULL THEN
        RETURN format('FAIL %s: no shard query in the plan', name);
    ELSIF shard_query ~ ('worker_partial_agg|partial_agg|' || agg || '_partial')
          OR (p ~ 'Aggregate' AND shard_query ~* ('mlpipe\.' || agg || '\(') AND p ~ 'coord_combine_agg') THEN
        how := 'partial + combine';
    ELSIF shard_query ~* ('mlpipe\.' || agg || '\(') THEN
        how := 'pushed down whole';
    ELSE
        how := 'row-gather';
    END IF;
    IF how = 'row-gather' THEN
        RETURN format('FAIL %s: Citus gathers the rows of %s instead of splitting it (shard query: %s)',
                      name, agg, left(shard_query, 100));
    END IF;
    RETURN format('PASS %s  [plan: %s] %s', name, how, left(shard_query, 100));
END $$;

--------------------------------------------------------------------------
-- Data: readings (sensor, site, ts, v) and rows to score (id, f1..f3,
-- label, y), :rows of each; the local copy and the distributed one hold
-- the same rows. Values are deterministic (hashes of the row number).
--------------------------------------------------------------------------

CREATE TABLE ct.readings_local (sensor int, site int, ts timestamptz, v float8, v_hat float8);
INSERT INTO ct.readings_local
SELECT n % 200, (n % 200) % 7, timestamptz '2024-01-01 00:00+00' + (n / 200) * interval '1 minute',
       10 * sin(n / 2000.0) + (n % 200) + (hashint4(n) % 1000) / 1000.0,
       10 * sin(n / 2000.0) + (n % 200)
  FROM generate_series(1, :rows) n;

CREATE TABLE ct.score_local (id bigint, f1 float8, f2 float8, f3 float8, label text, y float8);
INSERT INTO ct.score_local
SELECT n, (hashint4(n) % 10000) / 1000.0, (hashint4(n + 7919) % 10000) / 1000.0,
       (hashint4(n + 104729) % 10000) / 1000.0,
       CASE WHEN (hashint4(n) % 10000) / 1000.0 + (hashint4(n + 7919) % 10000) / 2000.0
                 + (hashint4(n * 3) % 100) / 50.0 > 0.5 THEN 'yes' ELSE 'no' END,
       (hashint4(n) % 10000) / 500.0 - (hashint4(n + 104729) % 10000) / 1000.0 + (hashint4(n * 5) % 100) / 100.0
  FROM generate_series(1, :rows) n;

-- Training rows: the first 4,000 rows to score.
CREATE TABLE ct.train_local AS SELECT * FROM ct.score_local WHERE id <= 4000;

CREATE TABLE ct.readings_dist (LIKE ct.readings_local);
SELECT create_distributed_table('ct.readings_dist', 'sensor') \g /dev/null
INSERT INTO ct.readings_dist SELECT * FROM ct.readings_local;
CREATE TABLE ct.score_dist (LIKE ct.score_local);
SELECT create_distributed_table('ct.score_dist', 'id') \g /dev/null
INSERT INTO ct.score_dist SELECT * FROM ct.score_local;
CREATE TABLE ct.train_dist (LIKE ct.train_local);
SELECT create_distributed_table('ct.train_dist', 'id') \g /dev/null
INSERT INTO ct.train_dist SELECT * FROM ct.train_local;
CREATE VIEW ct.train_dist_view AS SELECT * FROM ct.train_dist;
SET client_min_messages = error;	-- Citus warns that a view over a local table stays local
CREATE VIEW ct.train_local_view AS SELECT * FROM ct.train_local;
SET client_min_messages = warning;
ANALYZE ct.readings_local, ct.score_local, ct.train_local;

SELECT format('INFO data: %s readings, %s rows to score, %s training rows; %s shards on %s workers',
              (SELECT count(*) FROM ct.readings_dist), (SELECT count(*) FROM ct.score_dist),
              (SELECT count(*) FROM ct.train_dist),
              (SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'ct.score_dist'::regclass),
              (SELECT count(*) FROM pg_dist_node WHERE noderole = 'primary' AND groupid > 0));

SELECT format('%s extension_propagated  [workers with mlpipe: %s of 2]',
              CASE WHEN n = 2 THEN 'PASS' ELSE 'FAIL' END, n)
  FROM (SELECT count(*) AS n FROM run_command_on_workers(
          $$SELECT extversion FROM pg_extension WHERE extname = 'mlpipe'$$) r
         WHERE r.success AND r.result <> '') s;

--------------------------------------------------------------------------
-- Aggregates grouped by the distribution column: pushed down whole.
--------------------------------------------------------------------------

SELECT ct.check('ts_features_by_dist_col',
    $$SELECT sensor, mlpipe.ts_features(ts, v) f FROM ct.readings_local GROUP BY sensor ORDER BY sensor$$,
    $$SELECT sensor, mlpipe.ts_features(ts, v) f FROM ct.readings_dist GROUP BY sensor ORDER BY sensor$$);
SELECT ct.plan_check('ts_features_by_dist_col_plan',
    $$SELECT sensor, mlpipe.ts_features(ts, v) FROM ct.readings_dist GROUP BY sensor$$, 'ts_features');
SELECT ct.check('summary_by_dist_col',
    $$SELECT sensor, mlpipe.summary(v) s FROM ct.readings_local GROUP BY sensor ORDER BY sensor$$,
    $$SELECT sensor, mlpipe.summary(v) s FROM ct.readings_dist GROUP BY sensor ORDER BY sensor$$);
SELECT ct.check('metrics_by_dist_col',
    $$SELECT sensor, mlpipe.rmse(v, v_hat), mlpipe.mae(v, v_hat), mlpipe.r2(v, v_hat), mlpipe.mape(v, v_hat)
        FROM ct.readings_local GROUP BY sensor ORDER BY sensor$$,
    $$SELECT sensor, mlpipe.rmse(v, v_hat), mlpipe.mae(v, v_hat), mlpipe.r2(v, v_hat), mlpipe.mape(v, v_hat)
        FROM ct.readings_dist GROUP BY sensor ORDER BY sensor$$);
SELECT ct.check('class_metrics_by_dist_col',
    $$SELECT sensor, mlpipe.accuracy(v > v_hat, v > sensor), mlpipe.f1_macro(v > v_hat, v > sensor),
             mlpipe.confusion_matrix(v > v_hat, v > sensor), mlpipe.roc_auc(v > v_hat, v - sensor),
             mlpipe.log_loss(v > v_hat, 1 / (1 + exp(sensor - v)))
        FROM ct.readings_local GROUP BY sensor ORDER BY sensor$$,
    $$SELECT sensor, mlpipe.accuracy(v > v_hat, v > sensor), mlpipe.f1_macro(v > v_hat, v > sensor),
             mlpipe.confusion_matrix(v > v_hat, v > sensor), mlpipe.roc_auc(v > v_hat, v - sensor),
             mlpipe.log_loss(v > v_hat, 1 / (1 + exp(sensor - v)))
        FROM ct.readings_dist GROUP BY sensor ORDER BY sensor$$);

--------------------------------------------------------------------------
-- The same aggregates without GROUP BY and grouped by another column: the
-- shards compute partial states (worker_partial_agg), the coordinator
-- combines them (coord_combine_agg).
--------------------------------------------------------------------------

SELECT ct.check('ts_features_no_group',
    $$SELECT mlpipe.ts_features(ts, v) f FROM ct.readings_local$$,
    $$SELECT mlpipe.ts_features(ts, v) f FROM ct.readings_dist$$);
SELECT ct.plan_check('ts_features_no_group_plan',
    $$SELECT mlpipe.ts_features(ts, v) FROM ct.readings_dist$$, 'ts_features');
SELECT ct.check('summary_by_other_col',
    $$SELECT site, mlpipe.summary(v) s FROM ct.readings_local GROUP BY site ORDER BY site$$,
    $$SELECT site, mlpipe.summary(v) s FROM ct.readings_dist GROUP BY site ORDER BY site$$);
SELECT ct.plan_check('summary_by_other_col_plan',
    $$SELECT site, mlpipe.summary(v) FROM ct.readings_dist GROUP BY site$$, 'summary');
SELECT ct.check('metrics_no_group',
    $$SELECT mlpipe.rmse(v, v_hat), mlpipe.mae(v, v_hat), mlpipe.r2(v, v_hat), mlpipe.mape(v, v_hat)
        FROM ct.readings_local$$,
    $$SELECT mlpipe.rmse(v, v_hat), mlpipe.mae(v, v_hat), mlpipe.r2(v, v_hat), mlpipe.mape(v, v_hat)
        FROM ct.readings_dist$$);
SELECT ct.plan_check('metrics_no_group_plan',
    $$SELECT mlpipe.rmse(v, v_hat) FROM ct.readings_dist$$, 'rmse');
SELECT ct.check('class_metrics_by_other_col',
    $$SELECT id % 5 AS g, mlpipe.accuracy(label, CASE WHEN f1 > 1 THEN 'yes' ELSE 'no' END),
             mlpipe.f1_macro(label, CASE WHEN f1 > 1 THEN 'yes' ELSE 'no' END),
             mlpipe.confusion_matrix(label, CASE WHEN f1 > 1 THEN 'yes' ELSE 'no' END),
             mlpipe.roc_auc(label = 'yes', f1), mlpipe.log_loss(label = 'yes', 1 / (1 + exp(-f1)))
        FROM ct.score_local GROUP BY 1 ORDER BY 1$$,
    $$SELECT id % 5 AS g, mlpipe.accuracy(label, CASE WHEN f1 > 1 THEN 'yes' ELSE 'no' END),
             mlpipe.f1_macro(label, CASE WHEN f1 > 1 THEN 'yes' ELSE 'no' END),
             mlpipe.confusion_matrix(label, CASE WHEN f1 > 1 THEN 'yes' ELSE 'no' END),
             mlpipe.roc_auc(label = 'yes', f1), mlpipe.log_loss(label = 'yes', 1 / (1 + exp(-f1)))
        FROM ct.score_dist GROUP BY 1 ORDER BY 1$$);
SELECT ct.plan_check('class_metrics_by_other_col_plan',
    $$SELECT id % 5, mlpipe.roc_auc(label = 'yes', f1) FROM ct.score_dist GROUP BY 1$$, 'roc_auc');
-- The families not above: clustering metrics (the state keeps every point)
-- and the multiclass forms of log_loss / roc_auc, bigint labels.
SELECT ct.check('cluster_metrics_no_group',
    $$SELECT mlpipe.silhouette(ARRAY[f1, f2], (id % 3)::int), mlpipe.calinski_harabasz(ARRAY[f1, f2], (id % 3)::int),
             mlpipe.davies_bouldin(ARRAY[f1, f2], (id % 3)::int) FROM ct.score_local WHERE id <= 3000$$,
    $$SELECT mlpipe.silhouette(ARRAY[f1, f2], (id % 3)::int), mlpipe.calinski_harabasz(ARRAY[f1, f2], (id % 3)::int),
             mlpipe.davies_bouldin(ARRAY[f1, f2], (id % 3)::int) FROM ct.score_dist WHERE id <= 3000$$);
SELECT ct.plan_check('cluster_metrics_no_group_plan',
    $$SELECT mlpipe.silhouette(ARRAY[f1, f2], (id % 3)::int) FROM ct.score_dist WHERE id <= 3000$$, 'silhouette');
SELECT ct.check('multiclass_by_other_col',
    $$SELECT id % 4 AS g, mlpipe.log_loss((id % 3)::text, ARRAY[abs(f1) + 0.1, abs(f2) + 0.1, abs(f3) + 0.1], ARRAY['0', '1', '2']),
             mlpipe.roc_auc((id % 3)::text, ARRAY[abs(f1), abs(f2), abs(f3)], ARRAY['0', '1', '2']),
             mlpipe.confusion_matrix(id % 3, (f1 > 0)::int + (f2 > 0)::int), mlpipe.f1_weighted(id % 3, (f1 > 0)::int::bigint)
        FROM ct.score_local GROUP BY 1 ORDER BY 1$$,
    $$SELECT id % 4 AS g, mlpipe.log_loss((id % 3)::text, ARRAY[abs(f1) + 0.1, abs(f2) + 0.1, abs(f3) + 0.1], ARRAY['0', '1', '2']),
             mlpipe.roc_auc((id % 3)::text, ARRAY[abs(f1), abs(f2), abs(f3)], ARRAY['0', '1', '2']),
             mlpipe.confusion_matrix(id % 3, (f1 > 0)::int + (f2 > 0)::int), mlpipe.f1_weighted(id % 3, (f1 > 0)::int::bigint)
        FROM ct.score_dist GROUP BY 1 ORDER BY 1$$);
SELECT ct.plan_check('multiclass_by_other_col_plan',
    $$SELECT id % 4, mlpipe.log_loss((id % 3)::text, ARRAY[abs(f1) + 0.1, abs(f2) + 0.1, abs(f3) + 0.1], ARRAY['0', '1', '2'])
        FROM ct.score_dist GROUP BY 1$$, 'log_loss');
-- The positive-class metrics of issue #14 (precision / recall / f1 with a
-- `positive` argument: the label state and its class) and average_precision
-- (roc_auc's state, a final of its own): split like their neighbours.
SELECT ct.check('positive_class_no_group',
    $$SELECT mlpipe.precision(label, CASE WHEN f1 > 1 THEN 'yes' ELSE 'no' END, 'yes'),
             mlpipe.recall(label, CASE WHEN f1 > 1 THEN 'yes' ELSE 'no' END, 'yes'),
             mlpipe.f1(label, CASE WHEN f1 > 1 THEN 'yes' ELSE 'no' END, 'yes'),
             mlpipe.f1(id % 3, (f1 > 0)::int::bigint, 1), mlpipe.average_precision(label = 'yes', f1)
        FROM ct.score_local$$,
    $$SELECT mlpipe.precision(label, CASE WHEN f1 > 1 THEN 'yes' ELSE 'no' END, 'yes'),
             mlpipe.recall(label, CASE WHEN f1 > 1 THEN 'yes' ELSE 'no' END, 'yes'),
             mlpipe.f1(label, CASE WHEN f1 > 1 THEN 'yes' ELSE 'no' END, 'yes'),
             mlpipe.f1(id % 3, (f1 > 0)::int::bigint, 1), mlpipe.average_precision(label = 'yes', f1)
        FROM ct.score_dist$$);
SELECT ct.plan_check('f1_positive_no_group_plan',
    $$SELECT mlpipe.f1(label, CASE WHEN f1 > 1 THEN 'yes' ELSE 'no' END, 'yes') FROM ct.score_dist$$, 'f1');
SELECT ct.check('positive_class_by_other_col',
    $$SELECT id % 5 AS g, mlpipe.f1(label, CASE WHEN f1 > 1 THEN 'yes' ELSE 'no' END, 'yes'),
             mlpipe.precision(f1 > 2, f2 > 2, true), mlpipe.average_precision(label = 'yes', f1)
        FROM ct.score_local GROUP BY 1 ORDER BY 1$$,
    $$SELECT id % 5 AS g, mlpipe.f1(label, CASE WHEN f1 > 1 THEN 'yes' ELSE 'no' END, 'yes'),
             mlpipe.precision(f1 > 2, f2 > 2, true), mlpipe.average_precision(label = 'yes', f1)
        FROM ct.score_dist GROUP BY 1 ORDER BY 1$$);
SELECT ct.plan_check('average_precision_by_other_col_plan',
    $$SELECT id % 5, mlpipe.average_precision(label = 'yes', f1) FROM ct.score_dist GROUP BY 1$$,
    'average_precision');
SELECT ct.plan_check('recall_positive_by_other_col_plan',
    $$SELECT id % 5, mlpipe.recall(f1 > 2, f2 > 2, true) FROM ct.score_dist GROUP BY 1$$, 'recall');
-- What the partial states cost on the wire: the text of every shard's state
-- (what worker_partial_agg returns) against the rows row-gather would ship
-- (Citus' binary protocol: 8 bytes a float8, 8 a timestamptz, 1 a boolean).
SELECT format('INFO partial_state_bytes: summary %s, ts_features %s, rmse %s, accuracy %s, roc_auc %s (text of the %s shard states); row-gather would ship about %s (summary), %s (ts_features), %s (rmse), %s (roc_auc) bytes of rows',
    (SELECT sum(result::bigint) FROM run_command_on_shards('ct.readings_dist', $q$SELECT length(pg_catalog.worker_partial_agg('mlpipe.summary(double precision)'::regprocedure, v)::text) FROM %s$q$)),
    (SELECT sum(result::bigint) FROM run_command_on_shards('ct.readings_dist', $q$SELECT length(pg_catalog.worker_partial_agg('mlpipe.ts_features(timestamptz, double precision)'::regprocedure, ROW(ts, v))::text) FROM %s$q$)),
    (SELECT sum(result::bigint) FROM run_command_on_shards('ct.readings_dist', $q$SELECT length(pg_catalog.worker_partial_agg('mlpipe.rmse(double precision, double precision)'::regprocedure, ROW(v, v_hat))::text) FROM %s$q$)),
    (SELECT sum(result::bigint) FROM run_command_on_shards('ct.score_dist', $q$SELECT length(pg_catalog.worker_partial_agg('mlpipe.accuracy(text, text)'::regprocedure, ROW(label, CASE WHEN f1 > 1 THEN 'yes' ELSE 'no' END))::text) FROM %s$q$)),
    (SELECT sum(result::bigint) FROM run_command_on_shards('ct.score_dist', $q$SELECT length(pg_catalog.worker_partial_agg('mlpipe.roc_auc(boolean, double precision)'::regprocedure, ROW(label = 'yes', f1))::text) FROM %s$q$)),
    (SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'ct.readings_dist'::regclass),
    8 * :rows, 16 * :rows, 16 * :rows, 9 * :rows);
-- With row-gather disabled Citus must split the aggregate or refuse it.
BEGIN;
SET LOCAL citus.coordinator_aggregation_strategy = 'disabled';
SELECT ct.check('summary_no_row_gather',
    $$SELECT mlpipe.summary(v) s FROM ct.readings_local$$,
    $$SELECT mlpipe.summary(v) s FROM ct.readings_dist$$);
COMMIT;

--------------------------------------------------------------------------
-- The (ts_features(...)).* form: the same figures; the plan ships ts and
-- value once per output column.
--------------------------------------------------------------------------

SELECT ct.check('ts_features_star_form',
    $$SELECT sensor, (mlpipe.ts_features(ts, v)).* FROM ct.readings_local GROUP BY sensor ORDER BY sensor$$,
    $$SELECT sensor, (mlpipe.ts_features(ts, v)).* FROM ct.readings_dist GROUP BY sensor ORDER BY sensor$$);
SELECT format('INFO ts_features_star_form_plan: the shard query calls ts_features %s times (the subquery form: %s)',
    (SELECT count(*) FROM regexp_matches(ct.plan(
        $$SELECT sensor, (mlpipe.ts_features(ts, v)).* FROM ct.readings_dist GROUP BY sensor$$),
        'ts_features\(', 'g')),
    (SELECT count(*) FROM regexp_matches(ct.plan(
        $$SELECT sensor, (f).* FROM (SELECT sensor, mlpipe.ts_features(ts, v) f FROM ct.readings_dist GROUP BY sensor) s$$),
        'ts_features\(', 'g')));

--------------------------------------------------------------------------
-- Training from a distributed table, a view over one and an ORDER BY
-- query: the same artifact as from the local copy?
--------------------------------------------------------------------------

-- Trains model_local from local_src and model_citus from citus_src with the
-- same parameters and compares the artifacts (sha256), then the
-- predictions of both on the local rows.
CREATE FUNCTION ct.train_check(name text, local_src text, citus_src text, xfail text,
                               algorithm text DEFAULT 'decision_tree',
                               params jsonb DEFAULT '{"seed": 7, "max_depth": 5, "test_size": 0.2}')
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    feats constant text[] := ARRAY['f1', 'f2', 'f3'];
    target constant text := CASE WHEN algorithm LIKE '%kmeans' THEN NULL ELSE 'label' END;
    t0 timestamptz;
    t1 timestamptz;
    err text;
BEGIN
    t0 := clock_timestamp();
    PERFORM mlpipe.train('ct_l_' || name, algorithm, local_src, target, feats, params);
    t1 := clock_timestamp();
    BEGIN
        PERFORM mlpipe.train('ct_c_' || name, algorithm, citus_src, target, feats, params);
    EXCEPTION WHEN others THEN
        err := SQLERRM;
    END;
    IF err IS NOT NULL THEN
        RETURN NEXT format('%s %s: %s (ERROR: %s)', CASE WHEN xfail IS NULL THEN 'FAIL' ELSE 'XFAIL' END,
                           name, coalesce(xfail, 'training failed'), err);
        RETURN;
    END IF;
    RETURN NEXT format('INFO %s_time: local %s s, citus %s s', name,
                       round(extract(epoch FROM t1 - t0)::numeric, 2),
                       round(extract(epoch FROM clock_timestamp() - t1)::numeric, 2));
    RETURN NEXT ct.check(name,
        format($q$SELECT left(sha256, 16) AS artifact_sha256 FROM mlpipe.model_versions
                   WHERE model = %L ORDER BY version DESC LIMIT 1$q$, 'ct_l_' || name),
        format($q$SELECT left(sha256, 16) AS artifact_sha256 FROM mlpipe.model_versions
                   WHERE model = %L ORDER BY version DESC LIMIT 1$q$, 'ct_c_' || name),
        xfail);
END $$;

-- Training depends only on the rows, not on the order they arrive in
-- (docs/citus.md): a distributed table or a view over one trains the same
-- artifact as the local copy, with or without ORDER BY.
SELECT ct.train_check('train_from_table', 'ct.train_local', 'ct.train_dist', NULL);
SELECT ct.train_check('train_from_view', 'ct.train_local_view', 'ct.train_dist_view', NULL);
SELECT ct.train_check('train_gbt_from_table', 'ct.train_local', 'ct.train_dist', NULL,
    'gbt', '{"seed": 7, "n_estimators": 20, "test_size": 0.2}');
SELECT ct.train_check('train_kmeans_from_table', 'ct.train_local', 'ct.train_dist', NULL,
    'kmeans', '{"k": 4, "seed": 7}');
SELECT ct.train_check('train_minibatch_from_view', 'ct.train_local_view', 'ct.train_dist_view', NULL,
    'minibatch_kmeans', '{"k": 4, "seed": 7, "batch_size": 256}');
SELECT ct.train_check('train_from_order_by_query', 'SELECT * FROM ct.train_local ORDER BY id',
    'SELECT * FROM ct.train_dist ORDER BY id', NULL);
SELECT ct.train_check('train_from_view_order_by', 'SELECT * FROM ct.train_local_view ORDER BY id',
    'SELECT * FROM ct.train_dist_view ORDER BY id', NULL);
SELECT ct.train_check('train_from_order_by_limit', 'SELECT * FROM ct.train_local ORDER BY id LIMIT 1000000000',
    'SELECT * FROM ct.train_dist ORDER BY id LIMIT 1000000000', NULL);

--------------------------------------------------------------------------
-- Scoring over the distributed rows with the model trained locally (ct_l_train_from_table).
--------------------------------------------------------------------------

-- count, sum and an exact digest of the predictions in key order.
SELECT ct.check('predict_by_name',
    $$SELECT count(*), sum(p), md5(string_agg(p::text, ',' ORDER BY id)) FROM
        (SELECT id, mlpipe.predict('ct_l_train_from_table', ARRAY[f1, f2, f3]) p FROM ct.score_local) s$$,
    $$SELECT count(*), sum(p), md5(string_agg(p::text, ',' ORDER BY id)) FROM
        (SELECT id, mlpipe.predict('ct_l_train_from_table', ARRAY[f1, f2, f3]) p FROM ct.score_dist) s$$);
-- The shard query scores with the artifact itself (a bytea literal), not the name.
SELECT CASE WHEN q ~ 'mlpipe\.predict\(''\\x' THEN 'PASS predict_by_name_in_shards  [the shard query scores with the artifact: ' || left(q, 50) || '...]'
            ELSE 'FAIL predict_by_name_in_shards: the shard query resolves the name on the worker (' || left(q, 100) || ')' END
  FROM (SELECT substring(ct.plan($$SELECT mlpipe.predict('ct_l_train_from_table', ARRAY[f1, f2, f3]) FROM ct.score_dist$$)
                         FROM 'Query: ([^\n]*)') AS q) p;
SELECT ct.check('predict_label_by_name_row_form',
    $$SELECT count(*), md5(string_agg(p, ',' ORDER BY id)) FROM
        (SELECT id, mlpipe.predict_label('ct_l_train_from_table', t) p FROM ct.score_local t) s$$,
    $$SELECT count(*), md5(string_agg(p, ',' ORDER BY id)) FROM
        (SELECT id, mlpipe.predict_label('ct_l_train_from_table', t) p FROM ct.score_dist t) s$$);
SELECT ct.check('predict_proba_by_name_one_shard',
    $$SELECT mlpipe.predict_proba('ct_l_train_from_table', ARRAY[f1, f2, f3]) FROM ct.score_local WHERE id = 42$$,
    $$SELECT mlpipe.predict_proba('ct_l_train_from_table', ARRAY[f1, f2, f3]) FROM ct.score_dist WHERE id = 42$$);
-- A model reference that is a column cannot be resolved at plan time: refused
-- on the coordinator with a HINT (0A000) instead of failing on a worker.
CREATE FUNCTION ct.column_ref_check() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    st text;
    msg text;
    hint text;
BEGIN
    PERFORM mlpipe.predict(m.name, ARRAY[s.f1, s.f2, s.f3])
       FROM ct.score_dist s, (VALUES ('ct_l_train_from_table')) AS m(name) WHERE s.id = 42;
    RETURN 'FAIL predict_column_ref_refused: no error';
EXCEPTION WHEN others THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
    IF st = '0A000' AND hint LIKE '%artifact form%' THEN
        RETURN format('PASS predict_column_ref_refused  [%s: %s HINT: %s]', st, msg, left(hint, 60));
    END IF;
    RETURN format('FAIL predict_column_ref_refused: %s: %s (HINT: %s)', st, msg, hint);
END $$;
SELECT ct.column_ref_check();
-- A parameter as the reference (prepared statement, router query): resolved
-- with its value in a custom plan, refused with a HINT in a generic plan.
PREPARE ct_param(text) AS SELECT mlpipe.predict_proba($1, ARRAY[f1, f2, f3]) AS p FROM ct.score_dist WHERE id = 42;
SET plan_cache_mode = force_custom_plan;
EXECUTE ct_param('ct_l_train_from_table') \gset param_
SELECT CASE WHEN :'param_p' = (SELECT mlpipe.predict_proba('ct_l_train_from_table', ARRAY[f1, f2, f3])::text
                                FROM ct.score_local WHERE id = 42)
            THEN 'PASS predict_param_custom_plan  [' || :'param_p' || ']'
            ELSE 'FAIL predict_param_custom_plan: ' || :'param_p' END;
CREATE FUNCTION ct.generic_param_check() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    st text;
    hint text;
BEGIN
    SET LOCAL plan_cache_mode = force_generic_plan;
    EXECUTE 'EXECUTE ct_param(''ct_l_train_from_table'')';
    RETURN 'FAIL predict_param_generic_plan_refused: no error';
EXCEPTION WHEN others THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, hint = PG_EXCEPTION_HINT;
    IF st = '0A000' AND hint LIKE '%force_custom_plan%' THEN
        RETURN format('PASS predict_param_generic_plan_refused  [%s HINT: %s]', st, left(hint, 60));
    END IF;
    RETURN format('FAIL predict_param_generic_plan_refused: %s: %s', st, SQLERRM);
END $$;
SELECT ct.generic_param_check();
RESET plan_cache_mode;
DEALLOCATE ct_param;
SELECT ct.check('predict_bytea_joined_to_model_versions',
    $$SELECT count(*), sum(p), md5(string_agg(p::text, ',' ORDER BY id)) FROM
        (SELECT s.id, mlpipe.predict(v.artifact, ARRAY[s.f1, s.f2, s.f3]) p
           FROM ct.score_local s, mlpipe.model_versions v
          WHERE v.model = 'ct_l_train_from_table' AND v.version = 1) q$$,
    $$SELECT count(*), sum(p), md5(string_agg(p::text, ',' ORDER BY id)) FROM
        (SELECT s.id, mlpipe.predict(v.artifact, ARRAY[s.f1, s.f2, s.f3]) p
           FROM ct.score_dist s, mlpipe.model_versions v
          WHERE v.model = 'ct_l_train_from_table' AND v.version = 1) q$$);
SELECT ct.check('evaluate',
    $$SELECT mlpipe.evaluate('ct_l_train_from_table', 'ct.score_local') - 'run_id' AS metrics$$,
    $$SELECT mlpipe.evaluate('ct_l_train_from_table', 'ct.score_dist') - 'run_id' AS metrics$$);
SELECT ct.check('drift',
    $$SELECT * FROM mlpipe.drift('ct_l_train_from_table', 'ct.score_local') ORDER BY feature$$,
    $$SELECT * FROM mlpipe.drift('ct_l_train_from_table', 'ct.score_dist') ORDER BY feature$$);

--------------------------------------------------------------------------
-- predict_table from a distributed source, into a new target and into an
-- existing distributed one.
--------------------------------------------------------------------------

SELECT ct.check('predict_table_new_target',
    $$SELECT mlpipe.predict_table('ct_l_train_from_table', 'ct.score_local', 'ct.out_local', 'id') AS n$$,
    $$SELECT mlpipe.predict_table('ct_l_train_from_table', 'ct.score_dist', 'ct.out_new', 'id') AS n$$);
SELECT ct.check('predict_table_new_target_rows',
    $$SELECT count(*), md5(string_agg(concat_ws('|', id, prediction, label, proba, model, version), ',' ORDER BY id))
        FROM ct.out_local$$,
    $$SELECT count(*), md5(string_agg(concat_ws('|', id, prediction, label, proba, model, version), ',' ORDER BY id))
        FROM ct.out_new$$);
SELECT CASE WHEN kind = 'distributed by id, co-located with ct.score_dist'
            THEN format('PASS predict_table_new_target_distributed  [%s]', kind)
            ELSE format('FAIL predict_table_new_target_distributed: a new target is created as a plain table (%s)', kind) END
  FROM (SELECT coalesce(
            (SELECT CASE WHEN p.partmethod = 'h' AND p.colocationid = s.colocationid
                         THEN 'distributed by ' || column_to_column_name(p.logicalrelid, p.partkey)
                              || ', co-located with ct.score_dist'
                         ELSE 'Citus table, partmethod ' || p.partmethod::text END
               FROM pg_dist_partition p, pg_dist_partition s
              WHERE p.logicalrelid = to_regclass('ct.out_new') AND s.logicalrelid = 'ct.score_dist'::regclass),
            CASE WHEN to_regclass('ct.out_new') IS NULL THEN 'not created'
                 ELSE 'a local table on the coordinator' END) AS kind) k;
CREATE TABLE ct.out_dist (LIKE ct.out_local);
SELECT create_distributed_table('ct.out_dist', 'id', colocate_with => 'ct.score_dist') \g /dev/null
SELECT ct.check('predict_table_existing_distributed_target',
    $$SELECT count(*) AS n FROM ct.score_local$$,
    $$SELECT mlpipe.predict_table('ct_l_train_from_table', 'ct.score_dist', 'ct.out_dist', 'id') AS n$$);
SELECT ct.check('predict_table_existing_distributed_target_rows',
    $$SELECT count(*), md5(string_agg(concat_ws('|', id, prediction, label, proba, model, version), ',' ORDER BY id))
        FROM ct.out_local$$,
    $$SELECT count(*), md5(string_agg(concat_ws('|', id, prediction, label, proba, model, version), ',' ORDER BY id))
        FROM ct.out_dist$$);
-- The INSERT ... SELECT predict_table runs into a co-located target is
-- pushed down: each shard writes its rows into the target's shard.
SELECT CASE WHEN p ~ 'pull to coordinator|repartition' OR p !~ 'INSERT INTO ct\.out_dist_[0-9]+'
            THEN 'FAIL predict_table_shard_to_shard: ' || left(regexp_replace(p, '\s+', ' ', 'g'), 200)
            ELSE 'PASS predict_table_shard_to_shard  [' || substring(p FROM 'Task Count: [0-9]+') || ', '
                 || left(substring(p FROM 'INSERT INTO ct\.out_dist_[0-9]+[^\n]*'), 70) || '...]' END
  FROM (SELECT ct.plan($$INSERT INTO ct.out_dist (id, prediction, label, proba, model, version, scored_at)
                         SELECT src.id, mlpipe_internal._score_class('ct_l_train_from_table@1', ARRAY[src.f1, src.f2, src.f3]),
                                mlpipe_internal._score_label('ct_l_train_from_table@1', ARRAY[src.f1, src.f2, src.f3]),
                                mlpipe_internal._score_proba('ct_l_train_from_table@1', ARRAY[src.f1, src.f2, src.f3]),
                                'ct_l_train_from_table', 1, now()
                           FROM (SELECT * FROM ct.score_dist) AS src$$) AS p) e;
-- A model with preprocessing is scored with the row form; from a
-- distributed table it must see the table's row type (not an anonymous
-- ROW(...) whose columns are named f1, f2, ...).
SELECT FROM mlpipe.train('ct_pp', 'decision_tree', 'SELECT * FROM ct.train_local ORDER BY id', 'label',
                         ARRAY['f1', 'f2', 'f3'], '{"seed": 7, "max_depth": 4, "preprocess": {"*": {"impute": "median"}}}');
SELECT ct.check('predict_table_row_form',
    $$SELECT mlpipe.predict_table('ct_pp', 'ct.score_local', 'ct.pp_local', 'id') AS n$$,
    $$SELECT mlpipe.predict_table('ct_pp', 'ct.score_dist', 'ct.pp_dist', 'id') AS n$$);
SELECT ct.check('predict_table_row_form_rows',
    $$SELECT count(*), md5(string_agg(concat_ws('|', id, prediction, label, proba), ',' ORDER BY id)) FROM ct.pp_local$$,
    $$SELECT count(*), md5(string_agg(concat_ws('|', id, prediction, label, proba), ',' ORDER BY id)) FROM ct.pp_dist$$);
-- The whole row of a subquery or view is refused on Citus with a HINT.
CREATE FUNCTION ct.anonymous_row_check() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    st text;
    hint text;
BEGIN
    PERFORM mlpipe.predict('ct_pp', v) FROM (SELECT * FROM ct.score_dist) v OFFSET 0;
    RETURN 'FAIL predict_row_form_subquery_refused: no error';
EXCEPTION WHEN others THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, hint = PG_EXCEPTION_HINT;
    IF st = '0A000' AND hint LIKE '%float8[] form%' THEN
        RETURN format('PASS predict_row_form_subquery_refused  [%s HINT: %s]', st, left(hint, 60));
    END IF;
    RETURN format('FAIL predict_row_form_subquery_refused: %s: %s', st, SQLERRM);
END $$;
SELECT ct.anonymous_row_check();
