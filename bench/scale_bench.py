#!/usr/bin/python3
"""How cost grows with rows and width: mlpipe against its peers, in one run.

Workloads (pick with --only NAME[,NAME...]; default: all):
  gbt           at each size (--sizes, default 1M; 1M,4M,10M for the growth
                table): N rows x 28 features (fixed seed), gbt training on all
                N rows (100 rounds, depth 6, lr 0.1, 256 bins, test_size 0,
                mlpipe.threads = --threads) against XGBoost hist nthread=1 on
                the same data in memory; scoring sum(mlpipe.predict('m', x))
                over the N rows against XGBoost predict in memory (1 thread,
                best of --repeat) and the bare scan sum(x[1]), both as
                PostgreSQL plans them (in parallel) and in one process
                (max_parallel_workers_per_gather = 0), each in pairs with
                XGBoost; the parallel plan also against XGBoost on as many
                threads as the plan has processes (equal cores). --gbt-task: classification (default; the 0/1
                target, against XGBClassifier and predict_proba) or regression
                (the same target as squared error, against XGBRegressor and
                predict). --pairs N: the training N times, mlpipe then
                XGBoost in turn, every pair's ratio and the median pair
                reported (the machine's speed drifts between runs).
  kmeans        at each size: N rows x 16 features in 16 blobs (fixed seed),
                k = 16, 50 Lloyd iterations from given centroids (the other
                params default), against scikit-learn KMeans lloyd on the same
                data and centroids; scoring sum(mlpipe.predict('m', x)) against
                the bare scan sum(x[1]) (the issue's "k-means scoring 1M x 16").
  kmeans_wide   25,000 x 784 (make_blobs, 10 centres, fixed seed), k = 10,
                30 iterations, default params otherwise (k-means++, the
                silhouette on a 10,000-row sample, the training profile),
                against scikit-learn KMeans (k-means++, n_init = 1, 30
                iterations); plus the same training without the profile
                (profile_sample 0) and with a 100-row silhouette sample too, so
                the split between clustering, silhouette and profile shows.
                Then like for like: both from the same 10 starting rows (a
                seeded pick), max_iter 30 and 5 (per-iteration cost from the
                difference), mlpipe with its default metrics and profile; and
                the 30-iteration run on copies of the table with x stored lz4
                and uncompressed (SET STORAGE EXTERNAL).
  kmeans_score  only the k-means scoring at 1M x 16 against the bare scan
                (the kmeans workload without its training peer).
  predict_table predict_table of the 1M-row gbt table with the 100-tree gbt
                model into a new table against CREATE TABLE AS SELECT id, x[1]
                (wall and CPU seconds, parallel workers included).
  one_row       one-row predict with the gbt model under pgbench (1 client,
                prepared, --seconds) against SELECT ARRAY[...] alone.
For every training: seconds, rows per second and the training backend's peak
memory (VmHWM reset through /proc/<pid>/clear_refs after a tiny warm-up
training, minus the RSS at the reset: the method and helpers of
bench/trees_bench.py). The run prints the date, the commit and the load
average before and after; rerun when it is above 1.5.

Data go in with binary COPY (built with numpy, so 10M rows load in seconds of
client time); tables are kept between runs (bench_scale_gbt_<N>,
bench_scale_km_<N>, bench_scale_wide) unless BENCH_RELOAD is set.
Run: eval "$(/work/tools/pgsandbox.sh N)"; eval "$(bash scripts/pg.sh env)";
     /usr/bin/python3 bench/scale_bench.py --sizes 1M --only gbt,kmeans
"""
import argparse
import io
import json
import os
import sys
import time

import numpy as np
import psycopg2
import sklearn
import xgboost as xgb
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from extcheck import (done_stamp, loadavg, median_pair, pgbench_pairs, require_current_extension,  # noqa: E402
                      run_stamp, vacuum_settled)
from trees_bench import reset_hwm, status_kb  # noqa: E402  (same peak-memory method)

SEED = 42
GBT_D, KM_D, KM_K, KM_ITERS = 28, 16, 16, 50
WIDE_N, WIDE_D, WIDE_K, WIDE_ITERS = 25_000, 784, 10, 30
# The 0/1 float8 target trains a regression unless task says otherwise: the
# task is set to the peer's objective (XGBClassifier's binary:logistic by
# default), so both sides fit the same loss.
GBT_PARAMS = {"n_estimators": 100, "max_depth": 6, "learning_rate": 0.1, "max_bins": 256, "test_size": 0}


def gbt_model_name(n, args):
    """The gbt model of n rows for --gbt-task (a name holds one task)."""
    return "bench_scale_gbt_%d" % n + ("" if args.gbt_task == "classification" else "_" + args.gbt_task)


def gbt_params(args):
    """The gbt params of the bench, with the task of --gbt-task."""
    return dict(GBT_PARAMS, task=args.gbt_task)


WORKLOADS = ("gbt", "kmeans", "kmeans_wide", "kmeans_score", "predict_table", "one_row")


def parse_size(s):
    s = s.strip().upper()
    mult = {"K": 1_000, "M": 1_000_000}.get(s[-1:], 1)
    return int(float(s[:-1] if mult > 1 else s) * mult)


def copy_binary(cur, table, ids, X, y=None):
    """Loads (id int, x float8[], [y float8]) rows with binary COPY, built vectorised with numpy."""
    n, d = X.shape
    fields = [("nf", ">i2"), ("idlen", ">i4"), ("id", ">i4"), ("xlen", ">i4"), ("ndim", ">i4"),
              ("hasnull", ">i4"), ("oid", ">i4"), ("dim", ">i4"), ("lb", ">i4"),
              ("x", [("len", ">i4"), ("v", ">f8")], (d,))]
    if y is not None:
        fields += [("ylen", ">i4"), ("y", ">f8")]
    rec = np.empty(n, dtype=np.dtype(fields))
    rec["nf"] = 3 if y is not None else 2
    rec["idlen"] = 4
    rec["id"] = ids
    rec["xlen"] = 20 + 12 * d
    rec["ndim"], rec["hasnull"], rec["oid"], rec["dim"], rec["lb"] = 1, 0, 701, d, 1
    rec["x"]["len"] = 8
    rec["x"]["v"] = X
    if y is not None:
        rec["ylen"] = 8
        rec["y"] = y
    buf = io.BytesIO()
    buf.write(b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00")
    buf.write(rec.tobytes())
    buf.write(b"\xff\xff")
    buf.seek(0)
    cur.copy_expert("COPY %s FROM STDIN WITH (FORMAT binary)" % table, buf)


def ensure_table(cur, table, ncols_y, chunks, alter=None):
    """Creates and fills table from chunks() -> (ids, X, y) unless it exists already; alter:
    an ALTER COLUMN action for x (e.g. SET COMPRESSION lz4) applied before the rows go in."""
    cur.execute("SELECT count(*) FROM pg_class WHERE relname = %s", (table,))
    if cur.fetchone()[0] and not os.environ.get("BENCH_RELOAD"):
        vacuum_settled(cur, table)
        return
    cur.execute("DROP TABLE IF EXISTS %s; CREATE TABLE %s (id int, x float8[]%s)"
                % (table, table, ", y float8" if ncols_y else ""))
    if alter:
        cur.execute("ALTER TABLE %s ALTER COLUMN x %s" % (table, alter))
    t = time.perf_counter()
    for ids, X, y in chunks():
        copy_binary(cur, table, ids, X, y)
    vacuum_settled(cur, table)
    print("# loaded %s in %.1f s" % (table, time.perf_counter() - t), flush=True)


def gbt_data(n):
    """n x 28 float32 features (exact in float8) and a 0/1 label from a fixed nonlinear rule; fixed seed."""
    rng = np.random.RandomState(SEED)
    w = rng.normal(size=GBT_D)
    X = np.empty((n, GBT_D), dtype=np.float32)
    y = np.empty(n, dtype=np.float64)
    step = 1_000_000
    for s in range(0, n, step):
        r = np.random.RandomState(SEED + 1 + s // step)
        e = min(n, s + step)
        Xc = r.normal(size=(e - s, GBT_D)).astype(np.float32)
        z = Xc @ w + 0.8 * Xc[:, 0] * Xc[:, 1] - 0.5 * np.abs(Xc[:, 2]) + r.normal(scale=1.0, size=e - s)
        X[s:e], y[s:e] = Xc, (z > 0).astype(np.float64)
    return X, y


def km_data(n):
    """n x 16 float32 points around 16 fixed centres, and the given initial centroids; fixed seed."""
    rng = np.random.RandomState(SEED)
    centres = rng.uniform(-10, 10, size=(KM_K, KM_D))
    X = np.empty((n, KM_D), dtype=np.float32)
    step = 1_000_000
    for s in range(0, n, step):
        r = np.random.RandomState(SEED + 1 + s // step)
        e = min(n, s + step)
        X[s:e] = centres[r.randint(0, KM_K, size=e - s)] + r.normal(scale=1.5, size=(e - s, KM_D))
    init = X[np.random.RandomState(SEED + 999).choice(n, KM_K, replace=False)].astype(np.float64)
    return X, init


def chunked(X, y=None, step=1_000_000):
    def gen():
        for s in range(0, len(X), step):
            e = min(len(X), s + step)
            yield (np.arange(s, e, dtype=np.int32), X[s:e].astype(np.float64),
                   None if y is None else y[s:e])
    return gen


def timed(cur, sql, args=None, repeat=1):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        cur.execute(sql, args)
        cur.fetchall()
        best = min(best, time.perf_counter() - t)
    return best


def cpu_seconds(pid):
    """User + system CPU seconds of a process (all its threads), from /proc/<pid>/stat."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def train_measured(threads, model, algorithm, source, target, params, warmup):
    """Trains in a fresh backend; seconds, peak MiB above a warmed-up backend (VmHWM after
    clear_refs), metrics and the backend's CPU seconds (robust on a loaded machine)."""
    conn = psycopg2.connect("")
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SET mlpipe.progress = off; SET mlpipe.threads = %d; SELECT pg_backend_pid()" % threads)
    pid = cur.fetchone()[0]
    cur.execute(warmup)
    rss0 = reset_hwm(pid)
    cpu0 = cpu_seconds(pid)
    t = time.perf_counter()
    cur.execute("SELECT metrics FROM mlpipe.train(%s, %s, %s, %s, params => %s)",
                (model, algorithm, source, target, json.dumps(params)))
    metrics = cur.fetchone()[0]
    elapsed = time.perf_counter() - t
    cpu = cpu_seconds(pid) - cpu0
    peak = (status_kb(pid, "VmHWM") - rss0) / 1024.0 if rss0 is not None else float("nan")
    conn.close()
    return elapsed, peak, metrics, cpu


def row(what, ml, peer, unit="s"):
    ratio = ml / peer if peer else float("nan")
    print("| %s | %.3f %s | %.3f %s | **%.2fx** |" % (what, ml, unit, peer, unit, ratio), flush=True)


def header(title):
    print()
    print("## " + title)
    print("load average: %s" % loadavg())
    print()
    print("| what | mlpipe | peer | ratio (mlpipe / peer) |")
    print("|---|---|---|---|")


def gbt_train_pair(cur, n, args, table, model, X, y):
    """One mlpipe training and one XGBoost fit, in that order: seconds, CPU, boosting alone, peak."""
    warm = ("SELECT 1 FROM mlpipe.train('bench_warmup_%s', 'gbt', 'SELECT x, y FROM %s WHERE id < 1000', 'y', "
            "params => '{\"n_estimators\": 2, \"test_size\": 0, \"task\": \"%s\"}')" % (args.gbt_task, table, args.gbt_task))
    # A fresh model: a retraining that reproduces the stored bytes is
    # recorded as a run of that version, keeping its training_info.
    cur.execute("SELECT mlpipe.drop_model(name) FROM mlpipe.models WHERE name = %s", (model,))
    secs, peak, _, cpu = train_measured(args.threads, model, "gbt", "SELECT x, y FROM %s" % table, "y",
                                        gbt_params(args), warm)
    t, c = time.perf_counter(), time.process_time()
    peer = xgb.XGBClassifier if args.gbt_task == "classification" else xgb.XGBRegressor
    booster = peer(tree_method="hist", max_depth=6, n_estimators=100, learning_rate=0.1,
                   max_bin=256, n_jobs=1).fit(X, y)
    t_xgb, c_xgb = time.perf_counter() - t, time.process_time() - c
    # Where the statement's time goes: the boosting alone is the last
    # round's elapsed_ms in training_info (from the trainer's start: the
    # table read, training metrics and registry are outside it; XGBoost's
    # fit includes its own binning). Not the target's measure.
    cur.execute("SELECT max(elapsed_ms) / 1000 FROM mlpipe.training_info(%s)", (model,))
    return dict(secs=secs, peak=peak, cpu=cpu, t_xgb=t_xgb, c_xgb=c_xgb, boost=cur.fetchone()[0], booster=booster)


def run_gbt(cur, n, args, scoring_only=False):
    X, y = gbt_data(n)
    table = "bench_scale_gbt_%d" % n
    ensure_table(cur, table, True, chunked(X, y))
    model = gbt_model_name(n, args)
    header("gbt %s, %d rows x %d, 100 rounds, depth 6, 256 bins, mlpipe.threads = %d vs XGBoost %s hist nthread=1"
           % (args.gbt_task, n, GBT_D, args.threads, xgb.__version__))
    if not scoring_only:
        # --pairs: mlpipe then XGBoost, that many times in turn; the machine's
        # speed drifts between runs, so each pair gives a ratio and the
        # median of the pairs decides (every pair is printed).
        pairs = [gbt_train_pair(cur, n, args, table, model, X, y) for _ in range(args.pairs)]
        if args.pairs > 1:
            print("| each pair: mlpipe / XGBoost seconds (ratio) | %s | | |"
                  % "; ".join("%.2f / %.2f (%.2fx)" % (p["secs"], p["t_xgb"], p["secs"] / p["t_xgb"]) for p in pairs))
            print("| each pair: boosting alone / XGBoost (ratio) | %s | | |"
                  % "; ".join("%.2f (%.2fx)" % (p["boost"], p["boost"] / p["t_xgb"]) for p in pairs))
        med = median_pair(pairs, lambda p: p["secs"] / p["t_xgb"])
        what = "training, table read included" + (", the median pair of %d" % len(pairs) if len(pairs) > 1 else "")
        row("%s (rows/s: %.0f vs %.0f)" % (what, n / med["secs"], n / med["t_xgb"]), med["secs"], med["t_xgb"])
        row("training, CPU seconds (backend vs Python process)", med["cpu"], med["c_xgb"])
        row("of which boosting alone (training_info: no table read, metrics or registry) vs the whole XGBoost fit",
            med["boost"], med["t_xgb"])
        binned = n * GBT_D / 2**20
        peak = max(p["peak"] for p in pairs)
        print("| training backend peak memory (VmHWM above warmed-up backend%s) | %.1f MiB | binned matrix %.1f MiB | %.2fx of the binned matrix |"
              % (", the largest of the pairs" if len(pairs) > 1 else "", peak, binned, peak / binned), flush=True)
        booster = pairs[-1]["booster"]
        predict = booster.predict_proba if args.gbt_task == "classification" else booster.predict
    cur.execute("SET mlpipe.progress = off")
    score = "SELECT sum(mlpipe.predict(%s, x)) FROM " + table
    scan = "SELECT sum(x[1]) FROM " + table
    timed(cur, score, (model,))   # warm cache
    # PostgreSQL's default plan scans in parallel (its workers plus the
    # leader); XGBoost predicts on one thread. The same statements in one
    # process are the like-for-like figure. Each is timed against XGBoost
    # in turn, --repeat times (the machine's speed drifts), median pair.
    cur.execute("EXPLAIN (FORMAT JSON) " + score, (model,))
    procs = plan_workers(cur.fetchone()[0][0]["Plan"]) + 1
    plan = "PostgreSQL's plan: %d parallel workers and the leader" % (procs - 1)
    for one_process in (False, True):
        if one_process:
            cur.execute("SET max_parallel_workers_per_gather = 0")
        t_pred = timed(cur, score, (model,), repeat=args.repeat)
        t_scan = timed(cur, scan, repeat=args.repeat)
        how = "one process (max_parallel_workers_per_gather = 0)" if one_process else plan
        if not scoring_only:
            # XGBoost on one thread; against the parallel plan also on as many
            # threads as the plan has processes (equal cores)
            for k in ([1, procs] if not one_process and procs > 1 else [1]):
                booster.set_params(n_jobs=k)
                predict(X)   # its threads started
                sp = [(timed(cur, score, (model,)), best_of(lambda: predict(X), 1)) for _ in range(args.repeat)]
                vs = "XGBoost on %d thread%s" % (k, "s" if k > 1 else "")
                print("| scoring pairs, %s, vs %s: mlpipe / XGBoost seconds (ratio) | %s | | |"
                      % (how, vs, "; ".join("%.3f / %.3f (%.2fx)" % (a, b, a / b) for a, b in sp)))
                med = median_pair(sp, lambda p: p[0] / p[1])
                row("scoring `sum(mlpipe.predict('m', x))`, %s, vs XGBoost predict(_proba) in memory, %s, "
                    "the median pair of %d (rows/s: %.0f)" % (how, vs, len(sp), n / med[0]), med[0], med[1])
            booster.set_params(n_jobs=1)
        row("scoring `sum(mlpipe.predict('m', x))` vs bare scan `sum(x[1])`, %s, best of %d"
            % (how, args.repeat), t_pred, t_scan)
    cur.execute("RESET max_parallel_workers_per_gather")
    return table, model, X


def best_of(fn, repeat):
    """The least wall seconds of repeat calls of fn."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def plan_workers(node):
    """Parallel workers an EXPLAIN (FORMAT JSON) plan tree plans (Gather nodes)."""
    return node.get("Workers Planned", 0) + sum(plan_workers(c) for c in node.get("Plans", []))


def run_kmeans(cur, n, args, scoring_only=False):
    X, init = km_data(n)
    table = "bench_scale_km_%d" % n
    ensure_table(cur, table, False, chunked(X))
    model = "bench_scale_km_%d" % n
    header("k-means, %d rows x %d, k = %d, %d iterations from given centroids, scikit-learn %s"
           % (n, KM_D, KM_K, KM_ITERS, sklearn.__version__))
    if not scoring_only:
        params = {"k": KM_K, "init": "given", "centroids": init.tolist(), "max_iter": KM_ITERS, "tol": 0}
        warm = ("SELECT 1 FROM mlpipe.train('bench_warmup_km', 'kmeans', 'SELECT x FROM %s WHERE id < 1000', "
                "NULL, params => '{\"k\": 2}')" % table)
        secs, peak, metrics, cpu = train_measured(args.threads, model, "kmeans", "SELECT x FROM %s" % table,
                                                  None, params, warm)
        Xd = X.astype(np.float64)
        t, c = time.perf_counter(), time.process_time()
        km = KMeans(n_clusters=KM_K, init=init, n_init=1, max_iter=KM_ITERS, tol=0, algorithm="lloyd").fit(Xd)
        t_sk, c_sk = time.perf_counter() - t, time.process_time() - c
        row("training, table read included, default metrics and profile (rows/s: %.0f vs %.0f)"
            % (n / secs, n / t_sk), secs, t_sk)
        row("training, CPU seconds (backend vs Python process, all threads)", cpu, c_sk)
        print("| inertia | %.6g | %.6g | %.9f |" % (metrics["inertia"], km.inertia_, metrics["inertia"] / km.inertia_))
        print("| training backend peak memory (VmHWM above warmed-up backend) | %.1f MiB | data %.1f MiB of doubles | %.2fx |"
              % (peak, n * KM_D * 8 / 2**20, peak / (n * KM_D * 8 / 2**20)), flush=True)
    cur.execute("SET mlpipe.progress = off")
    timed(cur, "SELECT sum(mlpipe.predict(%s, x)) FROM " + table, (model,))
    t_pred = timed(cur, "SELECT sum(mlpipe.predict(%s, x)) FROM " + table, (model,), repeat=args.repeat)
    t_scan = timed(cur, "SELECT sum(x[1]) FROM " + table, repeat=args.repeat)
    row("scoring `sum(mlpipe.predict('m', x))` vs bare scan `sum(x[1])` (rows/s: %.0f)" % (n / t_pred),
        t_pred, t_scan)


def run_kmeans_wide(cur, args):
    n = parse_size(args.wide_rows)
    X, _ = make_blobs(n_samples=n, n_features=WIDE_D, centers=WIDE_K, cluster_std=8.0, random_state=SEED)
    X = X.astype(np.float32).astype(np.float64)
    table = "bench_scale_wide" if n == WIDE_N else "bench_scale_wide_%d" % n
    ensure_table(cur, table, False, chunked(X))
    header("k-means wide, %d x %d, k = %d, %d iterations, default params, mlpipe.threads = %d, "
           "scikit-learn %s KMeans (k-means++, n_init 1, its default threads)"
           % (n, WIDE_D, WIDE_K, WIDE_ITERS, args.threads, sklearn.__version__))
    warm = ("SELECT 1 FROM mlpipe.train('bench_warmup_wide', 'kmeans', 'SELECT x FROM %s WHERE id < 100', "
            "NULL, params => '{\"k\": 2}')" % table)
    t, c = time.perf_counter(), time.process_time()
    km = KMeans(n_clusters=WIDE_K, n_init=1, max_iter=WIDE_ITERS, random_state=SEED).fit(X)
    t_sk, c_sk = time.perf_counter() - t, time.process_time() - c
    base = {"k": WIDE_K, "max_iter": WIDE_ITERS, "seed": SEED}
    for label, extra in (("default params", {}),
                         ("no training profile (profile_sample 0)", {"profile_sample": 0}),
                         ("no profile, silhouette on 100 rows (clustering alone, about)",
                          {"profile_sample": 0, "sample_size": 100})):
        secs, peak, metrics, cpu = train_measured(args.threads, "bench_scale_wide", "kmeans",
                                                  "SELECT x FROM %s" % table, None, dict(base, **extra), warm)
        row("training, %s; peak %.0f MiB; %s iterations (sklearn %d)"
            % (label, peak, metrics.get("iterations"), km.n_iter_), secs, t_sk)
        row("the same, CPU seconds (backend vs Python process, all threads)", cpu, c_sk)
    kmeans_wide_like(cur, args, X, table, warm)


def kmeans_wide_like(cur, args, X, table, warm):
    """Like for like: both start from the same k rows (a seeded pick), max_iter 30 and 5, default
    tol (both stop on the same rule: the iteration counts are printed); mlpipe with its default
    metrics and profile. Per iteration: the difference of the two runs over the iterations between.
    Then the 30-iteration training on copies of the table whose x is lz4 / stored uncompressed."""
    init = X[np.random.RandomState(SEED).choice(len(X), WIDE_K, replace=False)]
    header("k-means wide, like for like: the same %d starting rows (seeded pick), max_iter %d and 5, "
           "default tol; mlpipe default metrics and profile, threads = %d"
           % (WIDE_K, WIDE_ITERS, args.threads))
    runs = {}
    for iters in (WIDE_ITERS, 5):
        t, c = time.perf_counter(), time.process_time()
        km = KMeans(n_clusters=WIDE_K, n_init=1, max_iter=iters, init=init).fit(X)
        sk = (time.perf_counter() - t, time.process_time() - c, km.n_iter_)
        params = {"k": WIDE_K, "max_iter": iters, "seed": SEED, "init": "given", "centroids": init.tolist()}
        secs, peak, metrics, cpu = train_measured(args.threads, "bench_scale_wide", "kmeans",
                                                  "SELECT x FROM %s" % table, None, params, warm)
        it = metrics.get("iterations")
        runs[iters] = (secs, cpu, it, sk)
        row("training, max_iter %d: %s iterations (sklearn %d%s); peak %.0f MiB"
            % (iters, it, sk[2], "" if it == sk[2] else ": THE COUNTS DIFFER", peak), secs, sk[0])
        row("the same, CPU seconds (backend vs Python process, all threads)", cpu, sk[1])
    (s30, c30, i30, k30), (s5, c5, i5, k5) = runs[WIDE_ITERS], runs[5]
    if i30 > i5 and k30[2] > k5[2]:
        row("per Lloyd iteration, wall (difference of the two runs / %d and %d iterations)"
            % (i30 - i5, k30[2] - k5[2]), (s30 - s5) / (i30 - i5), (k30[0] - k5[0]) / (k30[2] - k5[2]))
        row("per Lloyd iteration, CPU seconds", (c30 - c5) / (i30 - i5), (k30[1] - k5[1]) / (k30[2] - k5[2]))
    params = {"k": WIDE_K, "max_iter": WIDE_ITERS, "seed": SEED, "init": "given", "centroids": init.tolist()}
    for suffix, alter in (("lz4", "SET COMPRESSION lz4"), ("external", "SET STORAGE EXTERNAL")):
        ttab = "bench_scale_wide_" + suffix
        ensure_table(cur, ttab, False, chunked(X), alter)
        secs, _, metrics, cpu = train_measured(args.threads, "bench_scale_wide", "kmeans",
                                               "SELECT x FROM %s" % ttab, None, params, warm)
        row("the max_iter %d training on a copy with x %s (%s iterations): wall vs the default pglz table"
            % (WIDE_ITERS, alter, metrics.get("iterations")), secs, s30)
        row("the same, CPU seconds", cpu, c30)


def reaped_cpu_seconds(pid):
    """User + system CPU seconds of the reaped children of a process (/proc/<pid>/stat
    cutime + cstime): for the postmaster, the parallel workers that have exited."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def statement_cpu(cur, pid, postmaster, sql, params=None):
    """Runs sql; its wall seconds and CPU seconds: the backend's plus those of the parallel
    workers it used (reaped by the postmaster; any other child of the cluster that exits
    meanwhile, e.g. an autovacuum worker, is counted too)."""
    c0, w0, t = cpu_seconds(pid), reaped_cpu_seconds(postmaster), time.perf_counter()
    cur.execute(sql, params)
    wall = time.perf_counter() - t
    return wall, cpu_seconds(pid) - c0 + reaped_cpu_seconds(postmaster) - w0


def run_predict_table(cur, args):
    n = parse_size(args.pt_rows)
    table, model, _ = ensure_gbt_model(cur, n, args)
    header("predict_table, %d rows, 100-tree gbt %s (depth 6), new table, vs CREATE TABLE AS SELECT id, x[1]"
           % (n, args.gbt_task))
    cur.execute("SELECT pg_backend_pid()")
    pid = cur.fetchone()[0]
    with open("/proc/%d/stat" % pid) as f:
        postmaster = int(f.read().rsplit(")", 1)[1].split()[1])
    drop = "DROP TABLE IF EXISTS bench_scale_pt"
    best_ctas = best_pt = cpu_ctas = cpu_pt = float("inf")
    for _ in range(args.repeat):
        cur.execute(drop)
        wall, cpu = statement_cpu(cur, pid, postmaster, "CREATE TABLE bench_scale_pt AS SELECT id, x[1] FROM " + table)
        best_ctas, cpu_ctas = min(best_ctas, wall), min(cpu_ctas, cpu)
        cur.execute(drop)
        wall, cpu = statement_cpu(cur, pid, postmaster, "SELECT mlpipe.predict_table(%s, %s, 'bench_scale_pt', 'id')",
                                  (model, table))
        best_pt, cpu_pt = min(best_pt, wall), min(cpu_pt, cpu)
        cur.execute(drop)
    row("predict_table (rows/s: %.0f) vs CTAS" % (n / best_pt), best_pt, best_ctas)
    row("the same, CPU seconds (backend + its parallel workers; least of the runs)", cpu_pt, cpu_ctas)


def ensure_gbt_model(cur, n, args):
    """The gbt table of n rows and a 100-tree model on it (trained here if missing)."""
    table = "bench_scale_gbt_%d" % n
    model = gbt_model_name(n, args)
    cur.execute("SELECT count(*) FROM pg_class WHERE relname = %s", (table,))
    has_table = cur.fetchone()[0] > 0
    cur.execute("SELECT count(*) FROM mlpipe.model_versions WHERE model = %s", (model,))
    if has_table and cur.fetchone()[0] > 0:
        return table, model, None
    X, y = gbt_data(n)
    ensure_table(cur, table, True, chunked(X, y))
    cur.execute("SET mlpipe.progress = off")
    cur.execute("SELECT 1 FROM mlpipe.train(%s, 'gbt', %s, 'y', params => %s)",
                (model, "SELECT x, y FROM %s" % table, json.dumps(gbt_params(args))))
    return table, model, X


def run_one_row(cur, args):
    table, model, _ = ensure_gbt_model(cur, parse_size(args.pt_rows), args)
    cur.execute("SELECT x FROM %s WHERE id = 0" % table)
    x = cur.fetchone()[0]
    arr = "ARRAY[%s]::float8[]" % ",".join(repr(v) for v in x)
    header("one-row predict, pgbench 1 client, -M prepared, %d s each, alternated 3 times, best of each"
           % args.seconds)
    # alternated, best of three: on a shared machine one run alone says little
    pairs = pgbench_pairs("SELECT mlpipe.predict('%s', %s);" % (model, arr), "SELECT %s;" % arr, 3, args.seconds)
    tps = {"predict": max(a for a, _ in pairs), "array": max(b for _, b in pairs)}
    print("| transactions/s, predict vs `SELECT ARRAY[...]` alone (higher is better) | %.0f tps | %.0f tps | **%.2fx** |"
          % (tps["predict"], tps["array"], tps["predict"] / tps["array"]), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default=",".join(WORKLOADS), help="comma-separated: " + ", ".join(WORKLOADS))
    ap.add_argument("--sizes", default="1M", help="row counts for gbt and kmeans, e.g. 1M,4M,10M")
    ap.add_argument("--threads", type=int, default=1, help="mlpipe.threads for training")
    ap.add_argument("--gbt-task", choices=("classification", "regression"), default="classification",
                    help="gbt objective on both sides (the 0/1 target)")
    ap.add_argument("--pairs", type=int, default=1,
                    help="gbt training: mlpipe and XGBoost this many times in turn; the median pair's ratio is reported")
    ap.add_argument("--repeat", type=int, default=3, help="best of this many for scoring and predict_table")
    ap.add_argument("--pt-rows", default="1M", help="rows of the gbt table for predict_table and one_row")
    ap.add_argument("--seconds", type=int, default=10, help="pgbench duration for one_row")
    ap.add_argument("--wide-rows", default=str(WIDE_N), help="rows for kmeans_wide (25000: the issue's table)")
    args = ap.parse_args()
    only = [w.strip() for w in args.only.split(",") if w.strip()]
    bad = [w for w in only if w not in WORKLOADS]
    if bad:
        ap.error("unknown workload %s; choose from %s" % (", ".join(bad), ", ".join(WORKLOADS)))
    sizes = [parse_size(s) for s in args.sizes.split(",")]

    run_stamp("scale bench")
    conn = psycopg2.connect("")
    conn.autocommit = True
    cur = conn.cursor()
    require_current_extension(cur)
    for w in only:
        if w == "gbt":
            for n in sizes:
                run_gbt(cur, n, args)
        elif w == "kmeans":
            for n in sizes:
                run_kmeans(cur, n, args)
        elif w == "kmeans_score":
            run_kmeans(cur, 1_000_000, args, scoring_only=True) if _has_km_model(cur) else run_kmeans(cur, 1_000_000, args)
        elif w == "kmeans_wide":
            run_kmeans_wide(cur, args)
        elif w == "predict_table":
            run_predict_table(cur, args)
        elif w == "one_row":
            run_one_row(cur, args)
    print()
    done_stamp()
    return 0


def _has_km_model(cur):
    cur.execute("SELECT count(*) FROM mlpipe.model_versions WHERE model = 'bench_scale_km_1000000'")
    return cur.fetchone()[0] > 0


if __name__ == "__main__":
    sys.exit(main())
