#!/usr/bin/python3
"""gbt training on low-cardinality features (issue #13, "speed at every width").

Generates N rows x 28 features whose values take CARD distinct integers
(a fixed seed), trains mlpipe gbt (mlpipe.threads = 1, 100 rounds, depth 6,
256 bins, test_size 0) and XGBClassifier hist nthread=1 on the same rows in
the same run, and prints seconds, the ratio and the load average. Features
with few bins are where a histogram laid out at a 4 KB stride a feature hit
4K aliasing (trees_int.h, HIST_STRIDE). Not a CI test.

    PGDATABASE=mlpipe /usr/bin/python3 bench/lowcard_bench.py [--rows 500000] [--card 4]
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import psycopg2
import xgboost as xgb

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from extcheck import done_stamp, require_current_extension, run_stamp, vacuum_settled  # noqa: E402

D = 28
PARAMS = {"n_estimators": 100, "max_depth": 6, "learning_rate": 0.1, "max_bins": 256, "test_size": 0}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=500000)
    ap.add_argument("--card", type=int, default=4)
    a = ap.parse_args()
    conn = psycopg2.connect("")
    conn.autocommit = True
    cur = conn.cursor()
    require_current_extension(cur)
    table = "bench_lowcard_%d_%d" % (a.rows, a.card)
    rng = np.random.RandomState(7)
    X = rng.randint(0, a.card, size=(a.rows, D)).astype(np.float64)
    y = ((X[:, 0] + X[:, 1] * X[:, 2] + 2 * rng.rand(a.rows)) > 1.5 * a.card - 1).astype(np.float64)
    cur.execute("SELECT to_regclass(%s) IS NULL", (table,))
    if cur.fetchone()[0]:
        cur.execute("CREATE TABLE %s (id int, x float8[], y float8)" % table)
        step = 50000
        for s in range(0, a.rows, step):
            args = [(i, X[i].tolist(), float(y[i])) for i in range(s, min(a.rows, s + step))]
            cur.executemany("INSERT INTO %s VALUES (%%s, %%s, %%s)" % table, args)
    vacuum_settled(cur, table)
    load = " ".join(open("/proc/loadavg").read().split()[:3])
    print("## gbt, %d rows x %d features of %d values each, 100 rounds, depth 6, threads 1, load average %s"
          % (a.rows, D, a.card, load))
    cur.execute("SET mlpipe.progress = off; SET mlpipe.threads = 1")
    cur.execute("SELECT mlpipe.drop_model(name) FROM mlpipe.models WHERE name = %s", (table,))
    t = time.perf_counter()
    cur.execute("SELECT 1 FROM mlpipe.train(%s, 'gbt', %s, 'y', params => %s)",
                (table, "SELECT x, y FROM %s ORDER BY id" % table, json.dumps(PARAMS)))
    t_ml = time.perf_counter() - t
    t = time.perf_counter()
    xgb.XGBClassifier(tree_method="hist", max_depth=6, n_estimators=100, learning_rate=0.1,
                      max_bin=256, n_jobs=1).fit(X, y)
    t_xgb = time.perf_counter() - t
    print("| training, table read included | %.3f s | XGBoost %s %.3f s | **%.2fx** |" % (t_ml, xgb.__version__, t_xgb, t_ml / t_xgb))


if __name__ == "__main__":
    run_stamp("low-cardinality bench")
    main()
    done_stamp()
