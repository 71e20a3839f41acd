#!/usr/bin/python3
"""ts_features benchmark: mlpipe.ts_features against the same figures written
with PostgreSQL's built-in aggregates and window functions, in one run.

Data: BENCH_ROWS readings (default 10,000,000) over BENCH_SENSORS sensors
(default 1,000), one reading per sensor every minute with jitter, stored in
time order (each sensor's readings arrive in time order), in table
bench_features.readings (kept between runs; BENCH_DROP=1 drops it at the end).

Timed, best of BENCH_REPEAT (default 2) runs each:
  1. built-ins, serial: count, avg, stddev, min, max, percentile_cont (5
     levels), power sums for skewness/kurtosis, regr_slope, first/last
     through array_agg ORDER BY, and lag() over (sensor, ts, v) (rows with
     a value only) for
     mean_abs_change, corr(v[i], v[i+1]) and the longest gap;
  2. mlpipe.ts_features, serial (max_parallel_workers_per_gather = 0);
  3. mlpipe.ts_features with 2 parallel workers (partial states combined,
     then sorted at the end).
Prints the times, the ratios and the largest relative difference between
the two answers. Run: eval "$(scripts/pg.sh env)"; /usr/bin/python3 bench/features_bench.py
"""
import os
import sys
import time

import psycopg2

from extcheck import done_stamp, run_stamp

ROWS = int(os.environ.get("BENCH_ROWS", 10_000_000))
SENSORS = int(os.environ.get("BENCH_SENSORS", 1000))
REPEAT = int(os.environ.get("BENCH_REPEAT", 2))

OURS = """
SELECT sensor, (f).*
  FROM (SELECT sensor, mlpipe.ts_features(ts, v) AS f
          FROM bench_features.readings GROUP BY sensor OFFSET 0) s
 ORDER BY sensor"""

BUILTIN = """
WITH o AS (
    -- pairs of consecutive readings with a value (NULL values are skipped,
    -- as ts_features does): the NULL rows form their own partition
    SELECT sensor, ts, v, lag(v) OVER w AS prev_v, ts - lag(ts) OVER w AS gap
      FROM bench_features.readings
    WINDOW w AS (PARTITION BY sensor, v IS NULL ORDER BY ts, v)),
a AS (
    SELECT sensor, count(v) AS n, count(*) - count(v) AS n_null, avg(v) AS mean,
           stddev(v) AS std, min(v) AS min, max(v) AS max,
           percentile_cont(ARRAY[0.05, 0.25, 0.5, 0.75, 0.95]) WITHIN GROUP (ORDER BY v) AS q,
           sum(v) AS s1, sum(v * v) AS s2, sum(v * v * v) AS s3, sum(v * v * v * v) AS s4,
           regr_slope(v, extract(epoch FROM ts) / 3600) AS slope,
           (array_agg(v ORDER BY ts, v))[1] AS first,
           (array_agg(v ORDER BY ts DESC, v DESC))[1] AS last,
           avg(abs(v - prev_v)) AS mean_abs_change, corr(prev_v, v) AS autocorr_lag1,
           max(extract(epoch FROM gap)) FILTER (WHERE v IS NOT NULL) AS longest_gap
      FROM o GROUP BY sensor)
SELECT sensor, n, n_null, mean, std, min, max, q[1], q[2], q[3], q[4], q[5],
       -- adjusted skewness and excess kurtosis from power sums
       sqrt(n * (n - 1.0)) / (n - 2) * ((s3 - 3 * mean * s2 + 3 * mean * mean * s1 - n * mean ^ 3) / n)
           / ((s2 - n * mean * mean) / n) ^ 1.5,
       ((n + 1) * ((s4 - 4 * mean * s3 + 6 * mean * mean * s2 - 4 * mean ^ 3 * s1 + n * mean ^ 4) / n
           / ((s2 - n * mean * mean) / n) ^ 2 - 3) + 6) * (n - 1) / ((n - 2) * (n - 3.0)),
       slope, first, last, mean_abs_change, autocorr_lag1, longest_gap
  FROM a ORDER BY sensor"""

NAMES = ["n", "n_null", "mean", "std", "min", "max", "q05", "q25", "median", "q75", "q95",
         "skewness", "kurtosis", "slope", "first", "last", "mean_abs_change", "autocorr_lag1",
         "longest_gap"]


def ensure_data(cur):
    cur.execute("CREATE SCHEMA IF NOT EXISTS bench_features")
    cur.execute("SELECT to_regclass('bench_features.readings') IS NOT NULL")
    if cur.fetchone()[0]:
        cur.execute("SELECT count(*), count(DISTINCT sensor) FROM bench_features.readings")
        if cur.fetchone() == (ROWS, SENSORS):
            return False
        cur.execute("DROP TABLE bench_features.readings")
    per = ROWS // SENSORS
    t = time.time()
    cur.execute("""
        CREATE TABLE bench_features.readings AS
        SELECT s AS sensor,
               '2024-01-01'::timestamptz + (i * 60 + (i * 7919 + s * 31) %% 50) * interval '1 second' AS ts,
               CASE WHEN (i + s) %% 5000 = 0 THEN NULL
                    ELSE 20 + s %% 17 + 5 * sin(i / 1440.0 * 2 * pi() + s)
                         + ((i * 2654435761 + s * 40503) %% 1000) / 250.0 END AS v
          FROM generate_series(1, %s) i, generate_series(1, %s) s""", (per, SENSORS))
    cur.execute("VACUUM ANALYZE bench_features.readings")
    print("generated %d readings over %d sensors in %.1f s" % (per * SENSORS, SENSORS, time.time() - t))
    return True


def timed(cur, sql, settings):
    best, rows = None, None
    for _ in range(REPEAT):
        for s in settings:
            cur.execute("SET " + s)
        t = time.time()
        cur.execute(sql)
        rows = cur.fetchall()
        el = time.time() - t
        best = el if best is None else min(best, el)
        cur.execute("RESET ALL")
    return best, rows


def max_rel_diff(a, b):
    worst = {}
    for ra, rb in zip(a, b):
        for name, x, y in zip(NAMES, ra[1:], rb[1:]):
            if x is None or y is None:
                continue
            d = abs(float(x) - float(y)) / max(abs(float(y)), 1e-300)
            worst[name] = max(worst.get(name, 0.0), d)
    return worst


def main():
    conn = psycopg2.connect("")
    conn.autocommit = True
    cur = conn.cursor()
    ensure_data(cur)
    cur.execute("SHOW max_worker_processes")
    print("readings: %d, sensors: %d, best of %d runs, machine shared and busy (load: %s)"
          % (ROWS, SENSORS, REPEAT, open("/proc/loadavg").read().split()[0]))
    serial = ["max_parallel_workers_per_gather = 0", "work_mem = '256MB'"]
    par = ["max_parallel_workers_per_gather = 2", "work_mem = '256MB'",
           "parallel_setup_cost = 0", "parallel_tuple_cost = 0"]
    t_builtin, r_builtin = timed(cur, BUILTIN, serial)
    t_ours, r_ours = timed(cur, OURS, serial)
    t_par, r_par = timed(cur, OURS, par)
    cur.execute("SET max_parallel_workers_per_gather = 2; SET parallel_setup_cost = 0; "
                "SET parallel_tuple_cost = 0; EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + OURS)
    plan = [r[0] for r in cur.fetchall()]
    launched = [line.strip() for line in plan if "Workers Launched" in line]
    cur.execute("RESET ALL")

    print()
    print("| what | time | ratio to built-ins |")
    print("|---|---|---|")
    print("| built-in aggregates + window functions, serial | %.2f s | 1.00x |" % t_builtin)
    print("| mlpipe.ts_features, serial | %.2f s | **%.2fx** |" % (t_ours, t_ours / t_builtin))
    print("| mlpipe.ts_features, 2 parallel workers (%s) | %.2f s | **%.2fx** (%.2fx of serial) |"
          % (launched[0] if launched else "no workers launched", t_par, t_par / t_builtin, t_par / t_ours))
    print()
    same = r_ours == r_par
    print("parallel result identical to serial: %s" % same)
    worst = max_rel_diff(r_ours, r_builtin)
    print("largest relative difference to the built-ins per figure:")
    print("  " + ", ".join("%s %.1e" % (k, worst[k]) for k in NAMES if k in worst))
    if os.environ.get("BENCH_DROP") == "1":
        cur.execute("DROP SCHEMA bench_features CASCADE")
    conn.close()
    return 0 if same else 1


if __name__ == "__main__":
    run_stamp("features bench")
    rc = main()
    done_stamp()
    sys.exit(rc)
