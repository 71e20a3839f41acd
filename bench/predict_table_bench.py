#!/usr/bin/python3
"""Batch scoring into a table: mlpipe.predict_table against plain SQL.

Scores N rows (default 1,000,000; MLPIPE_BENCH_ROWS) of src(id int, x float8[8])
with three models: a gbt regression (100 trees, depth 6: scoring dominates),
a gbt classifier (100 trees, depth 6, two classes: prediction, label and
proba per row) and a single regression tree of depth 4 (scoring is nearly
free: what is left is predict_table's own cost), and times, in the same run:
  ctas      CREATE TABLE t AS SELECT id, x[1] FROM src          (the floor: no scoring)
  index     CREATE INDEX ON t (id) after that                   (part of a new target's cost)
  insert    CREATE TABLE t (id int, prediction float8);
            INSERT INTO t SELECT id, mlpipe.predict(m, x) FROM src   (scoring by hand)
  insert_full (classifier only) the same with prediction, predict_label and
            predict_proba: the columns predict_table writes, by hand
  pt        mlpipe.predict_table(m, 'src', 't', 'id')          (new table, index, drift, run log)
  pt_nodrift  the same with params {"drift_sample": 0}
  pt_append   predict_table into an existing indexed table (append)
Each is run REPEAT times (default 3; MLPIPE_BENCH_REPEAT) and the best time kept.
Prints the times and the ratios pt / ctas and pt / insert.
Run: eval "$(scripts/pg.sh env)"; /usr/bin/python3 bench/predict_table_bench.py
"""
import os
import time

import psycopg2

from extcheck import done_stamp, require_current_extension, run_stamp

N = int(os.environ.get("MLPIPE_BENCH_ROWS", "1000000"))
REPEAT = int(os.environ.get("MLPIPE_BENCH_REPEAT", "3"))
D = 8


def main():
    load_before = open("/proc/loadavg").read().split()[:3]
    conn = psycopg2.connect("")
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SET mlpipe.progress = off")
    require_current_extension(cur)
    cur.execute("DROP SCHEMA IF EXISTS bench_pt CASCADE; CREATE SCHEMA bench_pt")
    cur.execute("""CREATE TABLE bench_pt.src AS
        SELECT i AS id, ARRAY(SELECT ((i::bigint * 7919 + j * 104729) %% 10007) / 1000.0 + j
                              FROM generate_series(1, %s) j)::float8[] AS x,
               0.0::float8 AS y, ''::text AS c
          FROM generate_series(1, %s) i""", (D, N))
    cur.execute("UPDATE bench_pt.src SET y = x[1] * 2 + x[2] - x[3] * x[4] / 10, "
                "c = CASE WHEN x[1] * 2 + x[2] - x[3] * x[4] / 10 > 3 THEN 'high' ELSE 'low' END")
    cur.execute("VACUUM ANALYZE bench_pt.src")
    models = {}
    for name, algo, target, params in (
            ("gbt", "gbt", "y", '{"n_estimators": 100, "max_depth": 6, "test_size": 0.1}'),
            ("gbtc", "gbt", "c", '{"n_estimators": 100, "max_depth": 6, "test_size": 0.1}'),
            ("tree", "decision_tree", "y", '{"max_depth": 4, "test_size": 0.1}')):
        cur.execute("SELECT version FROM mlpipe.train(%s, %s, 'SELECT x, ' || %s || ' FROM bench_pt.src "
                    "WHERE id <= 50000', %s, NULL, %s)", ("bench_pt_" + name, algo, target, target, params))
        models[name] = "bench_pt_%s@%d" % (name, cur.fetchone()[0])

    def timed(setup, stmt, teardown):
        best = None
        for _ in range(REPEAT):
            for s in setup:
                cur.execute(s)
            t0 = time.perf_counter()
            cur.execute(stmt)
            dt = time.perf_counter() - t0
            for s in teardown:
                cur.execute(s)
            best = dt if best is None else min(best, dt)
        return best

    drop = ["DROP TABLE IF EXISTS bench_pt.t"]
    results = {}
    results["ctas"] = timed(drop, "CREATE TABLE bench_pt.t AS SELECT id, x[1] FROM bench_pt.src", drop)
    # What the key index alone costs (predict_table builds one on a new table).
    results["index"] = timed(drop + ["CREATE TABLE bench_pt.t AS SELECT id, x[1] FROM bench_pt.src"],
                             "CREATE INDEX ON bench_pt.t (id)", drop)
    for name, ref in models.items():
        results[name + " insert"] = timed(
            drop + ["CREATE TABLE bench_pt.t (id int, prediction float8)"],
            "INSERT INTO bench_pt.t SELECT id, mlpipe.predict('%s', x) FROM bench_pt.src" % ref, drop)
        if name == "gbtc":
            results[name + " insert_full"] = timed(
                drop + ["CREATE TABLE bench_pt.t (id int, prediction float8, label text, proba float8[])"],
                "INSERT INTO bench_pt.t SELECT id, mlpipe.predict('{0}', x), mlpipe.predict_label('{0}', x), "
                "mlpipe.predict_proba('{0}', x) FROM bench_pt.src".format(ref), drop)
        results[name + " pt"] = timed(
            drop, "SELECT mlpipe.predict_table('%s', 'bench_pt.src', 'bench_pt.t', 'id')" % ref, drop)
        results[name + " pt_nodrift"] = timed(
            drop, "SELECT mlpipe.predict_table('%s', 'bench_pt.src', 'bench_pt.t', 'id', 'append', "
                  "'{\"drift_sample\": 0}')" % ref, drop)
        # Into an existing, indexed table (made by one predict_table on 1 row, then emptied).
        make = drop + ["SELECT mlpipe.predict_table('%s', 'SELECT * FROM bench_pt.src WHERE id = 1', "
                       "'bench_pt.t', 'id')" % ref, "TRUNCATE bench_pt.t"]
        results[name + " pt_append"] = timed(
            make, "SELECT mlpipe.predict_table('%s', 'bench_pt.src', 'bench_pt.t', 'id')" % ref, drop)

    print("rows: %d, features: %d, models: gbt regression and gbtc classifier (100 trees, depth 6), "
          "tree (one tree, depth 4); best of %d; load average before: %s"
          % (N, D, REPEAT, load_before))
    print("load average after: %s" % open("/proc/loadavg").read().split()[:3])
    for k, v in results.items():
        print("%-18s %8.3f s  %9.0f rows/s" % (k, v, N / v))
    for name in models:
        print("%-4s predict_table (new table) / CREATE TABLE AS      : %.2f" % (name, results[name + " pt"] / results["ctas"]))
        print("%-4s predict_table (new, no drift) / CREATE TABLE AS  : %.2f" % (name, results[name + " pt_nodrift"] / results["ctas"]))
        print("%-4s predict_table (new table) / INSERT ... predict() : %.2f" % (name, results[name + " pt"] / results[name + " insert"]))
        print("%-4s predict_table (append) / INSERT ... predict()    : %.2f" % (name, results[name + " pt_append"] / results[name + " insert"]))
        if name + " insert_full" in results:
            print("%-4s predict_table (new table) / INSERT predict, predict_label, predict_proba : %.2f"
                  % (name, results[name + " pt"] / results[name + " insert_full"]))
    cur.execute("DROP SCHEMA bench_pt CASCADE")
    conn.close()


if __name__ == "__main__":
    run_stamp("predict_table bench")
    main()
    done_stamp()
