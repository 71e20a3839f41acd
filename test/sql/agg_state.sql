-- mlpipe.agg_state, the STYPE of every metric and feature aggregate
-- (src/pg/agg_state_type.c, test/citus/DESIGN.md): the text form of every
-- state family round-trips bit-exactly and finalises to the aggregate's
-- value; garbage text is 22P02; a state of another family is 22023; parallel
-- plans, window frames, hash aggregation that spills, and states combined
-- by hand agree with the plain plan.
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS t_aggst CASCADE;
CREATE SCHEMA t_aggst;
SET search_path = t_aggst, public;
RESET client_min_messages;

CREATE TABLE r AS
SELECT i, (i % 3)::text AS t, ((i * 7) % 3)::text AS p, (i % 5)::bigint AS bi, ((i * 3) % 5)::bigint AS bp,
       (i % 2 = 0) AS yb, (i % 3 = 0) AS pb, ((i * 37) % 101) / 100.0::float8 AS s,
       ARRAY[(i % 5)::float8, (i % 7)::float8] AS x, (i % 4) AS c,
       (i % 13)::float8 + i / 1000.0 AS y, (i % 11)::float8 + i / 997.0 AS yh,
       timestamptz '2024-01-01 00:00+00' + ((i * 7919) % 5000) * interval '1 minute' AS ts,
       ARRAY[0.2, 0.3, 0.5]::float8[] AS proba, ARRAY['0', '1', '2'] AS classes
  FROM generate_series(1, 5000) i;
ANALYZE r;

-- Aggregates without a final function return the state itself: one per
-- family (and per input form), to see the states.
CREATE AGGREGATE st_feat(timestamptz, float8) (SFUNC = mlpipe_internal._ts_features_trans, STYPE = mlpipe.agg_state);
CREATE AGGREGATE st_summary(float8) (SFUNC = mlpipe_internal._summary_trans, STYPE = mlpipe.agg_state);
CREATE AGGREGATE st_label(text, text) (SFUNC = mlpipe_internal._label_trans, STYPE = mlpipe.agg_state);
CREATE AGGREGATE st_label(bigint, bigint) (SFUNC = mlpipe_internal._label_trans, STYPE = mlpipe.agg_state);
CREATE AGGREGATE st_label(boolean, boolean) (SFUNC = mlpipe_internal._label_trans, STYPE = mlpipe.agg_state);
CREATE AGGREGATE st_label_pos(text, text, text) (SFUNC = mlpipe_internal._label_pos_trans, STYPE = mlpipe.agg_state);
CREATE AGGREGATE st_label_pos(bigint, bigint, bigint) (SFUNC = mlpipe_internal._label_pos_trans, STYPE = mlpipe.agg_state);
CREATE AGGREGATE st_loss(boolean, float8) (SFUNC = mlpipe_internal._log_loss_trans, STYPE = mlpipe.agg_state);
CREATE AGGREGATE st_loss(text, float8[], text[]) (SFUNC = mlpipe_internal._log_loss_trans, STYPE = mlpipe.agg_state);
CREATE AGGREGATE st_score(boolean, float8) (SFUNC = mlpipe_internal._roc_auc_trans, STYPE = mlpipe.agg_state);
CREATE AGGREGATE st_score(text, float8[], text[]) (SFUNC = mlpipe_internal._roc_auc_trans, STYPE = mlpipe.agg_state);
CREATE AGGREGATE st_reg(float8, float8) (SFUNC = mlpipe_internal._reg_trans, STYPE = mlpipe.agg_state);
CREATE AGGREGATE st_points(float8[], int) (SFUNC = mlpipe_internal._points_trans, STYPE = mlpipe.agg_state);

CREATE TABLE states AS
SELECT 'features' AS family, st_feat(ts, y) AS st FROM r
UNION ALL SELECT 'summary', st_summary(y) FROM r
UNION ALL SELECT 'label text', st_label(t, p) FROM r
UNION ALL SELECT 'label bigint', st_label(bi, bp) FROM r
UNION ALL SELECT 'label boolean', st_label(yb, pb) FROM r
UNION ALL SELECT 'label text positive', st_label_pos(t, p, '1') FROM r
UNION ALL SELECT 'label bigint positive', st_label_pos(bi, bp, 3::bigint) FROM r
UNION ALL SELECT 'log_loss binary', st_loss(yb, s) FROM r
UNION ALL SELECT 'log_loss multiclass', st_loss(t, proba, classes) FROM r
UNION ALL SELECT 'roc_auc binary', st_score(yb, s) FROM r
UNION ALL SELECT 'roc_auc multiclass', st_score(t, ARRAY[s, 1 - s, 0.5], classes) FROM r
UNION ALL SELECT 'regression', st_reg(y, yh) FROM r
UNION ALL SELECT 'clustering', st_points(x, c) FROM r;

-- The header (magic "MLAS", version 1, kind) and size of each state; the
-- text round trip is exact (text and the binary send form).
SELECT family, substr(st::text, 1, 18) AS header, length(st::text) AS text_length,
       st::text::mlpipe.agg_state::text = st::text AS text_round_trip,
       mlpipe_internal._agg_state_send(st) = decode(substr(st::text, 3), 'hex') AS send_is_the_bytes
  FROM states ORDER BY family;

-- A state read back from its text finalises to the aggregate's value, bit for bit.
SELECT mlpipe_internal._ts_features_final((SELECT st::text::mlpipe.agg_state FROM states WHERE family = 'features'))::text
       = (SELECT mlpipe.ts_features(ts, y)::text FROM r) AS ts_features,
       mlpipe_internal._summary_final((SELECT st::text::mlpipe.agg_state FROM states WHERE family = 'summary'))::text
       = (SELECT mlpipe.summary(y)::text FROM r) AS summary,
       mlpipe_internal._f1_macro_final((SELECT st::text::mlpipe.agg_state FROM states WHERE family = 'label text'))
       = (SELECT mlpipe.f1_macro(t, p) FROM r) AS f1_text,
       mlpipe_internal._confusion_matrix_final((SELECT st::text::mlpipe.agg_state FROM states WHERE family = 'label bigint'))
       = (SELECT mlpipe.confusion_matrix(bi, bp) FROM r) AS cm_bigint,
       mlpipe_internal._accuracy_final((SELECT st::text::mlpipe.agg_state FROM states WHERE family = 'label boolean'))
       = (SELECT mlpipe.accuracy(yb, pb) FROM r) AS acc_bool,
       mlpipe_internal._log_loss_final((SELECT st::text::mlpipe.agg_state FROM states WHERE family = 'log_loss binary'))
       = (SELECT mlpipe.log_loss(yb, s) FROM r) AS log_loss,
       mlpipe_internal._log_loss_final((SELECT st::text::mlpipe.agg_state FROM states WHERE family = 'log_loss multiclass'))
       = (SELECT mlpipe.log_loss(t, proba, classes) FROM r) AS log_loss_multi,
       mlpipe_internal._roc_auc_final((SELECT st::text::mlpipe.agg_state FROM states WHERE family = 'roc_auc binary'))
       = (SELECT mlpipe.roc_auc(yb, s) FROM r) AS roc_auc,
       mlpipe_internal._roc_auc_final((SELECT st::text::mlpipe.agg_state FROM states WHERE family = 'roc_auc multiclass'))
       = (SELECT mlpipe.roc_auc(t, ARRAY[s, 1 - s, 0.5], classes) FROM r) AS roc_auc_multi,
       mlpipe_internal._rmse_final((SELECT st::text::mlpipe.agg_state FROM states WHERE family = 'regression'))
       = (SELECT mlpipe.rmse(y, yh) FROM r) AS rmse,
       mlpipe_internal._r2_final((SELECT st::text::mlpipe.agg_state FROM states WHERE family = 'regression'))
       = (SELECT mlpipe.r2(y, yh) FROM r) AS r2,
       mlpipe_internal._davies_bouldin_final((SELECT st::text::mlpipe.agg_state FROM states WHERE family = 'clustering'))
       = (SELECT mlpipe.davies_bouldin(x, c) FROM r) AS davies_bouldin;

-- A label state with a positive class (precision, recall, f1): the class
-- trails the serial form (its length, then its bytes: '1' is 00000001 31)
-- and survives the text round trip; the finals read it back.
SELECT family, right(st::text, 10) AS trailing_class,
       st::text::mlpipe.agg_state::text = st::text AS text_round_trip,
       CASE WHEN family LIKE 'label text%'
            THEN mlpipe_internal._f1_final(st::text::mlpipe.agg_state) = (SELECT mlpipe.f1(t, p, '1') FROM r)
                 AND mlpipe_internal._precision_final(st::text::mlpipe.agg_state) = (SELECT mlpipe.precision(t, p, '1') FROM r)
            ELSE mlpipe_internal._recall_final(st::text::mlpipe.agg_state) = (SELECT mlpipe.recall(bi, bp, 3) FROM r)
                 AND mlpipe_internal._f1_final(st::text::mlpipe.agg_state) = (SELECT mlpipe.f1(bi, bp, 3) FROM r) END
           AS finals_from_text,
       mlpipe_internal._f1_final((SELECT s2.st FROM states s2 WHERE s2.family = replace(states.family, ' positive', '')))
           IS NULL AS no_class_no_f1
  FROM states WHERE family LIKE 'label%positive' ORDER BY family;

-- States combined by hand (what Citus' coordinator does: input, combine,
-- final) from two halves give the whole table's value.
CREATE AGGREGATE comb_reg(mlpipe.agg_state) (SFUNC = mlpipe_internal._reg_combine, STYPE = mlpipe.agg_state,
                                             FINALFUNC = mlpipe_internal._mae_final);
CREATE AGGREGATE comb_feat(mlpipe.agg_state) (SFUNC = mlpipe_internal._features_combine, STYPE = mlpipe.agg_state,
                                              FINALFUNC = mlpipe_internal._summary_final);
CREATE AGGREGATE comb_label(mlpipe.agg_state) (SFUNC = mlpipe_internal._label_combine, STYPE = mlpipe.agg_state,
                                               FINALFUNC = mlpipe_internal._confusion_matrix_final);
CREATE AGGREGATE comb_f1(mlpipe.agg_state) (SFUNC = mlpipe_internal._label_combine, STYPE = mlpipe.agg_state,
                                            FINALFUNC = mlpipe_internal._f1_final);
CREATE AGGREGATE comb_ap(mlpipe.agg_state) (SFUNC = mlpipe_internal._roc_auc_combine, STYPE = mlpipe.agg_state,
                                            FINALFUNC = mlpipe_internal._average_precision_final);
SELECT abs(comb_reg(h::text::mlpipe.agg_state) - (SELECT mlpipe.mae(y, yh) FROM r))
           <= 1e-12 * (SELECT mlpipe.mae(y, yh) FROM r) AS mae_two_halves,
       comb_feat(f::text::mlpipe.agg_state)::text = (SELECT mlpipe.summary(y)::text FROM r) AS summary_two_halves,
       comb_label(l::text::mlpipe.agg_state) = (SELECT mlpipe.confusion_matrix(t, p) FROM r) AS cm_two_halves
  FROM (SELECT st_reg(y, yh) h, st_summary(y) f, st_label(t, p) l FROM r GROUP BY i % 2) halves;
SELECT comb_f1(l::text::mlpipe.agg_state) = (SELECT mlpipe.f1(t, p, '1') FROM r) AS f1_two_halves,
       comb_ap(a::text::mlpipe.agg_state) = (SELECT mlpipe.average_precision(yb, s) FROM r) AS ap_two_halves
  FROM (SELECT st_label_pos(t, p, '1') l, st_score(yb, s) a FROM r GROUP BY i % 2) halves;
-- Halves naming two positive classes: 22023.
SELECT comb_f1(l::text::mlpipe.agg_state)
  FROM (SELECT st_label_pos(t, p, (i % 2)::text) l FROM r GROUP BY i % 2) halves;

-- Garbage text: 22P02 with what is wrong, never a crash.
\set VERBOSITY default
SELECT 'hello'::mlpipe.agg_state;
SELECT '\x4d4c41530'::mlpipe.agg_state;
SELECT '\xzz'::mlpipe.agg_state;
SELECT '\x'::mlpipe.agg_state;
SELECT '\x00000000010005000000'::mlpipe.agg_state;
-- right magic, unknown version, unknown kind
SELECT '\x4d4c4153020005000000'::mlpipe.agg_state;
SELECT '\x4d4c4153010063000000'::mlpipe.agg_state;
-- a regression state cut short, and one with a byte too many
SELECT substr(st::text, 1, 40)::mlpipe.agg_state FROM states WHERE family = 'regression';
SELECT (st::text || '00')::mlpipe.agg_state FROM states WHERE family = 'regression';
-- a label state whose label count is 2^31 - 1
SELECT ('\x4d4c415301000200' || '00000001' || '7fffffff')::mlpipe.agg_state;
-- a label state whose positive class passes its end, holds a zero byte, or
-- is followed by a stray byte
SELECT (left(st::text, -10) || '00000009' || '31')::mlpipe.agg_state FROM states WHERE family = 'label text positive';
SELECT (left(st::text, -10) || '00000002' || '3100')::mlpipe.agg_state FROM states WHERE family = 'label text positive';
SELECT (st::text || '31')::mlpipe.agg_state FROM states WHERE family = 'label text positive';
-- a roc_auc state whose row count exceeds its bytes
SELECT ('\x4d4c415301000400' || '00000001' || '00000000000fffff')::mlpipe.agg_state;
-- a feature state whose count does not match its readings
SELECT ('\x4d4c415301000100' || substr(encode(mlpipe_internal._agg_state_send(st), 'hex'), 17, 16)
        || '0500000000000000' || '0000000000000000')::mlpipe.agg_state
  FROM states WHERE family = 'summary';
\set VERBOSITY terse
\set VERBOSITY default
-- a log_loss state whose classes array has a garbage pad byte before a
-- 4 MB element length (read the way deconstruct_array walks it: refused)
SELECT mlpipe_internal._log_loss_final('\x4d4c4153010003000000000000000003400c0d6e3a1428a6bca000000000000000000030c00000000100000000000000190000000300000001000000140000003000000014000000310700001400f00032000000'::mlpipe.agg_state);
-- a summary state with a NaN reading, and one whose readings claim an order they do not have
SELECT ('\x4d4c4153010001004d46545301000100010000000000000000000000000000000000000000000000000000000000f87f')::mlpipe.agg_state;
SELECT ('\x4d4c4153010001004d4654530100010002000000000000000000000000000000' ||
        '00000000000000000000000000000840' || '00000000000000000000000000000040')::mlpipe.agg_state;
\set VERBOSITY terse
-- Byte flips and truncations of every family's state, fed to its final
-- function: only 22P02 (corrupt) or 22023 (another family; for f1, a
-- positive class no longer among the labels), never a crash.
CREATE FUNCTION flip_states(p_seed float8, p_n int) RETURNS TABLE (family text, sqlstates text)
LANGUAGE plpgsql AS $$
DECLARE r record; m text; n int; pos int; v text; codes text[];
BEGIN
  PERFORM setseed(p_seed);
  FOR r IN SELECT s.family AS f, s.st::text AS st FROM states s ORDER BY 1 LOOP
    codes := '{}';
    FOR n IN 1..p_n LOOP
      m := r.st;
      pos := 3 + (random() * (length(m) - 3))::int;
      IF n % 3 = 0 THEN
        m := left(m, pos - pos % 2);
      ELSE
        m := overlay(m placing substr('0123456789abcdef', 1 + (random() * 15)::int, 1) from pos for 1);
        IF n % 3 = 1 THEN m := overlay(m placing 'f' from 3 + (random() * (length(m) - 3))::int for 1); END IF;
      END IF;
      BEGIN
        v := CASE WHEN r.f = 'features' THEN mlpipe_internal._ts_features_final(m::mlpipe.agg_state)::text
                  WHEN r.f = 'summary' THEN mlpipe_internal._summary_final(m::mlpipe.agg_state)::text
                  WHEN r.f LIKE 'label%positive' THEN mlpipe_internal._f1_final(m::mlpipe.agg_state)::text
                  WHEN r.f LIKE 'label%' THEN mlpipe_internal._confusion_matrix_final(m::mlpipe.agg_state)::text
                  WHEN r.f LIKE 'log_loss%' THEN mlpipe_internal._log_loss_final(m::mlpipe.agg_state)::text
                  WHEN r.f LIKE 'roc_auc%' THEN mlpipe_internal._roc_auc_final(m::mlpipe.agg_state)::text
                  WHEN r.f = 'regression' THEN mlpipe_internal._r2_final(m::mlpipe.agg_state)::text
                  ELSE mlpipe_internal._calinski_harabasz_final(m::mlpipe.agg_state)::text END;
      EXCEPTION WHEN invalid_text_representation OR invalid_parameter_value THEN
        IF NOT SQLSTATE = ANY (codes) THEN codes := codes || SQLSTATE; END IF;
      END;
    END LOOP;
    family := r.f;
    sqlstates := array_to_string(ARRAY(SELECT unnest(codes) ORDER BY 1), ' ');
    RETURN NEXT;
  END LOOP;
END $$;
SELECT * FROM flip_states(0.42, 150);
-- A state of another family: 22023 naming both.
\set VERBOSITY default
SELECT mlpipe_internal._rmse_final(st) FROM states WHERE family = 'label text';
SELECT mlpipe_internal._ts_features_final(st) FROM states WHERE family = 'summary';
SELECT comb_reg(st) FROM states WHERE family = 'clustering';
\set VERBOSITY terse
-- Support functions outside their aggregate: 0A000.
SELECT mlpipe_internal._reg_trans(NULL, 1, 2);

-- Parallel plans of every aggregate equal the plain plan (sums within
-- 1e-12 relative: the partial states are combined in another order).
CREATE FUNCTION all_aggs() RETURNS jsonb LANGUAGE sql AS $$
SELECT jsonb_build_object(
  'acc', mlpipe.accuracy(t, p), 'acc_i', mlpipe.accuracy(bi, bp), 'acc_b', mlpipe.accuracy(yb, pb),
  'pm', mlpipe.precision_macro(t, p), 'pm_i', mlpipe.precision_macro(bi, bp), 'pm_b', mlpipe.precision_macro(yb, pb),
  'rm', mlpipe.recall_macro(t, p), 'rm_i', mlpipe.recall_macro(bi, bp), 'rm_b', mlpipe.recall_macro(yb, pb),
  'f1', mlpipe.f1_macro(t, p), 'f1_i', mlpipe.f1_macro(bi, bp), 'f1_b', mlpipe.f1_macro(yb, pb),
  'fw', mlpipe.f1_weighted(t, p), 'fw_i', mlpipe.f1_weighted(bi, bp), 'fw_b', mlpipe.f1_weighted(yb, pb),
  'cm', mlpipe.confusion_matrix(t, p), 'cm_i', mlpipe.confusion_matrix(bi, bp), 'cm_b', mlpipe.confusion_matrix(yb, pb),
  'pp', mlpipe.precision(t, p, '1'), 'rp_i', mlpipe.recall(bi, bp, 3), 'fp_b', mlpipe.f1(yb, pb, true),
  'ap', mlpipe.average_precision(yb, s),
  'll', mlpipe.log_loss(yb, s), 'll_m', mlpipe.log_loss(t, proba, classes),
  'auc', mlpipe.roc_auc(yb, s), 'auc_m', mlpipe.roc_auc(t, ARRAY[s, 1 - s, 0.5], classes),
  'rmse', mlpipe.rmse(y, yh), 'mae', mlpipe.mae(y, yh), 'r2', mlpipe.r2(y, yh), 'mape', mlpipe.mape(y, yh),
  'sil', mlpipe.silhouette(x, c), 'ch', mlpipe.calinski_harabasz(x, c), 'db', mlpipe.davies_bouldin(x, c),
  'ts', to_jsonb(mlpipe.ts_features(ts, y)), 'sum', to_jsonb(mlpipe.summary(y)))
  FROM t_aggst.r
$$;
-- NULL when a and b agree (numbers within 1e-12 relative), else the first difference.
CREATE FUNCTION jdiff(a jsonb, b jsonb, path text DEFAULT '$') RETURNS text LANGUAGE plpgsql AS $$
DECLARE k text; d text;
BEGIN
    IF jsonb_typeof(a) = 'number' AND jsonb_typeof(b) = 'number' THEN
        IF abs(a::text::float8 - b::text::float8) <= 1e-12 * greatest(abs(a::text::float8), abs(b::text::float8)) THEN
            RETURN NULL;
        END IF;
        RETURN path || ': ' || a || ' vs ' || b;
    ELSIF jsonb_typeof(a) = 'object' AND jsonb_typeof(b) = 'object' THEN
        FOR k IN SELECT jsonb_object_keys(a || b) LOOP
            d := jdiff(a -> k, b -> k, path || '.' || k);
            IF d IS NOT NULL THEN RETURN d; END IF;
        END LOOP;
        RETURN NULL;
    ELSIF a IS DISTINCT FROM b THEN
        RETURN path || ': ' || coalesce(a::text, 'NULL') || ' vs ' || coalesce(b::text, 'NULL');
    END IF;
    RETURN NULL;
END $$;
SET max_parallel_workers_per_gather = 0;
CREATE TABLE plain AS SELECT all_aggs() AS v;
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2; SET parallel_leader_participation = off;
EXPLAIN (COSTS OFF) SELECT mlpipe.rmse(y, yh), mlpipe.summary(y), mlpipe.roc_auc(yb, s), mlpipe.f1_macro(t, p),
    mlpipe.log_loss(t, proba, classes), mlpipe.silhouette(x, c) FROM r;
SELECT (SELECT count(*) FROM jsonb_object_keys(v)) AS aggregates, jdiff(v, all_aggs()) AS parallel_differs_from_plain
  FROM plain;
RESET max_parallel_workers_per_gather; RESET parallel_leader_participation;
RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size;

-- Window frames: a growing frame keeps one state (the finals only read it);
-- a sliding one restarts it per row.
SELECT count(*) FILTER (WHERE w_rmse = a_rmse AND w_sum = a_sum) AS growing_frame_rows_agree
  FROM (SELECT i, mlpipe.rmse(y, yh) OVER w AS w_rmse, (mlpipe.summary(y) OVER w)::text AS w_sum
          FROM r WINDOW w AS (ORDER BY i ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)) w
  JOIN LATERAL (SELECT mlpipe.rmse(y, yh) AS a_rmse, mlpipe.summary(y)::text AS a_sum
                  FROM r r2 WHERE r2.i <= w.i) a ON true
 WHERE w.i % 500 = 0;
SELECT count(*) FILTER (WHERE w_mae = a_mae) AS sliding_frame_rows_agree
  FROM (SELECT i, mlpipe.mae(y, yh) OVER (ORDER BY i ROWS BETWEEN 9 PRECEDING AND CURRENT ROW) AS w_mae FROM r) w
  JOIN LATERAL (SELECT mlpipe.mae(y, yh) AS a_mae FROM r r2 WHERE r2.i BETWEEN w.i - 9 AND w.i) a ON true
 WHERE w.i % 500 = 0;

-- Hash aggregation over many groups that spills to disk: the same as sorting
-- (rmse within 1e-12 relative: a spilled group sees its rows in another order).
SET work_mem = '64kB';
SET enable_sort = off;
CREATE TABLE hashed AS SELECT i % 1000 AS g, mlpipe.rmse(y, yh) AS e, mlpipe.summary(y)::text AS s,
    mlpipe.confusion_matrix(t, p) AS cm FROM r GROUP BY 1;
RESET enable_sort;
SET enable_hashagg = off;
SELECT count(*) AS groups, count(*) FILTER (WHERE abs(h.e - o.e) <= 1e-12 * o.e AND h.s = o.s AND h.cm = o.cm)
       AS same_as_sorted, count(*) FILTER (WHERE h.s = o.s AND h.cm = o.cm) AS summary_and_matrix_identical
  FROM hashed h JOIN (SELECT i % 1000 AS g, mlpipe.rmse(y, yh) AS e, mlpipe.summary(y)::text AS s,
                             mlpipe.confusion_matrix(t, p) AS cm FROM r GROUP BY 1) o USING (g);
RESET enable_hashagg;
RESET work_mem;

RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA t_aggst CASCADE;
