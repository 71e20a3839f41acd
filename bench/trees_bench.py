#!/usr/bin/python3
"""Gradient boosting benchmark: mlpipe against XGBoost, in one run.

1,000,000 rows x 28 features from scikit-learn make_classification (fixed
seed) go into a table with a float8[] column. Then, in one run:
  - mlpipe trains gbt on the first 800,000 rows (100 rounds, depth 6,
    learning rate 0.1, 256 bins; reading the table included), with
    mlpipe.threads = 1 and = 2, against XGBoost hist nthread=1 on the same
    rows from memory;
  - scoring all 1,000,000 rows: SELECT sum(mlpipe.predict('m', x)) against
    XGBoost's predict from memory;
  - test AUC on the last 200,000 rows, both from the models' probabilities;
  - the training backend's peak memory against the binned matrix (800,000
    x 28 bytes) plus the model: the kernel's high-water mark of the backend's
    resident memory (VmHWM, reset through /proc/<pid>/clear_refs after a tiny
    warm-up training) minus its resident memory at the reset, so a peak
    shorter than any sampling interval still counts; it includes shared
    buffers and file pages the training touches, so it over-counts if
    anything. Also RssAnon sampled every 20 ms, above the warmed-up backend
    and above a fresh one;
  - single-row latency: pgbench, one client, prepared, SELECT
    mlpipe.predict('m', ARRAY[...]) against SELECT ARRAY[...] alone, in
    --repeat pairs of 5 s each (the median pair).
--pairs N trains mlpipe (1 and 2 threads) and XGBoost N times in turn and
reports the median pair (the machine's speed drifts); scoring alternates
mlpipe and XGBoost --repeat times. Memory: the largest of the pairs.
Run with the cluster from scripts/pg.sh: eval "$(scripts/pg.sh env)"; bench/trees_bench.py
"""
import argparse
import io
import json
import os
import sys
import threading
import time

import numpy as np
import psycopg2

from extcheck import (done_stamp, median_pair, pgbench_pairs, require_current_extension, run_stamp,
                      vacuum_settled)
import xgboost as xgb
from sklearn.datasets import make_classification
from sklearn.metrics import roc_auc_score

N, D, N_TRAIN = 1_000_000, 28, 800_000
PARAMS = {"n_estimators": 100, "max_depth": 6, "learning_rate": 0.1, "max_bins": 256, "test_size": 0}


def status_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def rss_anon_kb(pid):
    return status_kb(pid, "RssAnon")


def reset_hwm(pid):
    """Resets the backend's VmHWM to its current RSS; the RSS, or None when not permitted."""
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")
    except OSError:
        return None
    return status_kb(pid, "VmRSS")


class PeakSampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, False

    def run(self):
        while not self.stop:
            self.peak = max(self.peak, rss_anon_kb(self.pid))
            time.sleep(0.02)


def train_mlpipe(threads, source):
    """Trains bench_gbt in a fresh backend on `threads` threads: seconds, peak RssAnon above the
    warmed-up and above a fresh backend, and the VmHWM peak above the warmed-up one (MiB)."""
    tconn = psycopg2.connect("")
    tconn.autocommit = True
    tcur = tconn.cursor()
    tcur.execute("SET mlpipe.progress = off; SET mlpipe.threads = %d; SELECT pg_backend_pid()" % threads)
    pid = tcur.fetchone()[0]
    cold = rss_anon_kb(pid)
    # Load the library, plpgsql and catalog caches with a tiny training:
    # fixed per-backend costs, not the training's memory.
    tcur.execute("SELECT 1 FROM mlpipe.train('bench_warmup', 'gbt', "
                 "'SELECT x, y FROM bench_gbt WHERE id < 1000', 'y', params => '{\"n_estimators\": 2}')")
    base = rss_anon_kb(pid)
    sampler = PeakSampler(pid)
    sampler.start()
    rss0 = reset_hwm(pid)
    t = time.perf_counter()
    tcur.execute("SELECT metrics FROM mlpipe.train('bench_gbt', 'gbt', %s, 'y', params => %s)",
                 (source, json.dumps(PARAMS)))
    tcur.fetchone()
    elapsed = time.perf_counter() - t
    hwm = (status_kb(pid, "VmHWM") - rss0) / 1024.0 if rss0 is not None else float("nan")
    sampler.stop = True
    sampler.join()
    tconn.close()
    return elapsed, (sampler.peak - base) / 1024.0, (sampler.peak - cold) / 1024.0, hwm


def median_of(pairs):
    return ", the median pair of %d" % len(pairs) if len(pairs) > 1 else ""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=1,
                    help="training: mlpipe on 1 and 2 threads, then XGBoost, this many times in turn; median pair")
    ap.add_argument("--repeat", type=int, default=3, help="scoring: mlpipe then XGBoost this many times; median pair")
    args = ap.parse_args()
    X, y = make_classification(n_samples=N, n_features=D, n_informative=14, n_redundant=4,
                               random_state=42)
    conn = psycopg2.connect("")
    conn.autocommit = True
    cur = conn.cursor()
    require_current_extension(cur)
    cur.execute("SELECT count(*) FROM pg_class WHERE relname = 'bench_gbt'")
    if cur.fetchone()[0] == 0 or os.environ.get("BENCH_RELOAD"):
        cur.execute("DROP TABLE IF EXISTS bench_gbt; CREATE TABLE bench_gbt (id int, x float8[], y int)")
        t = time.perf_counter()
        for start in range(0, N, 100_000):
            buf = io.StringIO()
            for i in range(start, min(N, start + 100_000)):
                buf.write("%d\t{%s}\t%d\n" % (i, ",".join(repr(v) for v in X[i]), y[i]))
            buf.seek(0)
            cur.copy_expert("COPY bench_gbt FROM STDIN", buf)
        print("loaded %d rows in %.1f s" % (N, time.perf_counter() - t), flush=True)

    vacuum_settled(cur, "bench_gbt")
    source = "SELECT x, y FROM bench_gbt WHERE id < %d" % N_TRAIN
    Xtr, ytr, yte = X[:N_TRAIN], y[:N_TRAIN], y[N_TRAIN:]
    # --pairs N: mlpipe on 1 and on 2 threads, then XGBoost, N times in turn
    # (the machine's speed drifts by a third within minutes): every pair's
    # ratios are printed and the median pair's reported.
    pairs = []
    for _ in range(args.pairs):
        results = {threads: train_mlpipe(threads, source) for threads in (1, 2)}
        t = time.perf_counter()
        booster = xgb.XGBClassifier(tree_method="hist", max_depth=6, n_estimators=100, learning_rate=0.1,
                                    max_bin=256, n_jobs=1).fit(Xtr, ytr)
        pairs.append((results, time.perf_counter() - t))
    cur.execute("SELECT size FROM mlpipe.model_versions WHERE model = 'bench_gbt' ORDER BY version DESC LIMIT 1")
    model_mb = cur.fetchone()[0] / 2**20
    p_all = booster.predict_proba(X)[:, 1]
    auc_xgb = roc_auc_score(yte, p_all[N_TRAIN:])

    # Scoring: mlpipe's statement as PostgreSQL plans it, then XGBoost's
    # predict_proba on one thread, --repeat times in turn; the median pair.
    # The production version is the last one trained (same model bits on
    # 1 and 2 threads).
    cur.execute("SET mlpipe.progress = off")
    cur.execute("SELECT sum(mlpipe.predict('bench_gbt', x)) FROM bench_gbt")   # warm the cache
    scoring = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        cur.execute("SELECT sum(mlpipe.predict('bench_gbt', x)) FROM bench_gbt")
        cur.fetchone()
        t_pred = time.perf_counter() - t
        t = time.perf_counter()
        booster.predict_proba(X)
        scoring.append((t_pred, time.perf_counter() - t))
    cur.execute("SELECT (mlpipe.predict_proba('bench_gbt', x))[2] FROM bench_gbt WHERE id >= %s ORDER BY id", (N_TRAIN,))
    p_ml = np.array([r[0] for r in cur.fetchall()])
    auc_ml = roc_auc_score(yte, p_ml)

    # Single-row latency through pgbench, one client, prepared: predict and the
    # array alone in turn, --repeat pairs of 5 s each, the median pair.
    row = "ARRAY[%s]::float8[]" % ",".join("%.6f" % v for v in X[0])
    one_row = pgbench_pairs("SELECT mlpipe.predict('bench_gbt', %s);" % row, "SELECT %s;" % row, args.repeat, 5)

    binned_mb = N_TRAIN * D / 2**20
    print()
    print("## gbt, %d training rows x %d features, 100 rounds, depth 6, lr 0.1, 256 bins" % (N_TRAIN, D))
    print("XGBoost %s" % xgb.__version__)
    print()
    print("| what | mlpipe | XGBoost | ratio (mlpipe / XGBoost) |")
    print("|---|---|---|---|")
    for threads in (1, 2):
        if len(pairs) > 1:
            print("| each pair, mlpipe.threads = %d: mlpipe / XGBoost seconds (ratio) | %s | | |"
                  % (threads, "; ".join("%.2f / %.2f (%.2fx)" % (r[threads][0], tx, r[threads][0] / tx) for r, tx in pairs)))
        r, tx = median_pair(pairs, lambda p: p[0][threads][0] / p[1])
        print("| training, table read included, mlpipe.threads = %d vs nthread = 1%s | %.2f s | %.2f s | **%.2fx** |"
              % (threads, median_of(pairs), r[threads][0], tx, r[threads][0] / tx))
    print("| scoring pairs: mlpipe / XGBoost seconds (ratio) | %s | | |"
          % "; ".join("%.3f / %.3f (%.2fx)" % (a, b, a / b) for a, b in scoring))
    t_pred, t_xgb_pred = median_pair(scoring, lambda p: p[0] / p[1])
    print("| scoring 1,000,000 rows: `sum(mlpipe.predict('m', x))` (PostgreSQL's parallel plan) vs `predict_proba` in memory, 1 thread%s | %.3f s | %.3f s | **%.2fx** |"
          % (median_of(scoring), t_pred, t_xgb_pred, t_pred / t_xgb_pred))
    results = {threads: max((r for r, _ in pairs), key=lambda r: r[threads][3])[threads] for threads in (1, 2)}
    print("| test AUC (200,000 rows) | %.5f | %.5f | %+.5f |" % (auc_ml, auc_xgb, auc_ml - auc_xgb))
    print("| training backend peak memory (VmHWM above a warmed-up backend), 1 / 2 threads | %.1f / %.1f MiB | binned matrix %.1f MiB, model %.2f MiB | %.2fx / %.2fx of the binned matrix (target: 2x + model = %.2fx) |"
          % (results[1][3], results[2][3], binned_mb, model_mb, results[1][3] / binned_mb, results[2][3] / binned_mb,
             (2 * binned_mb + model_mb) / binned_mb))
    print("| the same from RssAnon sampled every 20 ms, 1 / 2 threads | %.1f / %.1f MiB | | %.2fx / %.2fx |"
          % (results[1][1], results[2][1], results[1][1] / binned_mb, results[2][1] / binned_mb))
    print("| RssAnon above a fresh backend (library and caches included), 1 / 2 threads | %.1f / %.1f MiB | | %.2fx / %.2fx |"
          % (results[1][2], results[2][2], results[1][2] / binned_mb, results[2][2] / binned_mb))
    if len(one_row) > 1:
        print("| one-row pairs: predict / array tps (ratio) | %s | | |"
              % "; ".join("%.0f / %.0f (%.2fx)" % (a, b, a / b) for a, b in one_row))
    tp, ta = median_pair(one_row, lambda p: p[0] / p[1])  # of an even count, the lower
    print("| single-row latency, pgbench 1 client, prepared: predict vs `SELECT ARRAY[...]`%s |"
          " %.0f tps | %.0f tps (array alone) | %.2fx the transactions/s |" % (median_of(one_row), tp, ta, tp / ta))
    return 0


if __name__ == "__main__":
    run_stamp("trees bench")
    rc = main()
    done_stamp()
    sys.exit(rc)
