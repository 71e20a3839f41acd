#!/usr/bin/python3
"""k-means benchmark: mlpipe against scikit-learn, in one run.

Generates 1,000,000 rows x 16 features in 16 clusters (fixed seed), loads
them into a table with a float8[] column, then times:
  - mlpipe.train (k = 16, 50 Lloyd iterations from given centroids, reading
    the table included) against scikit-learn KMeans lloyd and elkan on the
    same data already in memory (same centroids, same iteration budget);
  - SELECT sum(mlpipe.predict('m', x)) against the bare scan SELECT sum(x[1]).
Reports the ratios and the training backend's peak memory (VmHWM).
Run with the cluster from scripts/pg.sh: eval "$(scripts/pg.sh env)"; bench/kmeans_bench.py
"""
import io
import json
import os
import sys
import time

import numpy as np
import psycopg2

from extcheck import done_stamp, run_stamp
import sklearn
import threadpoolctl
from sklearn.cluster import KMeans

N = int(os.environ.get("BENCH_ROWS", 1_000_000))
D, K, ITERS = 16, 16, 50


def make_data():
    rng = np.random.RandomState(42)
    centers = rng.uniform(-10, 10, size=(K, D))
    labels = rng.randint(0, K, size=N)
    X = centers[labels] + rng.normal(scale=1.5, size=(N, D))
    init = X[rng.choice(N, K, replace=False)]
    return X, init


def vm_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def timed(cur, sql, args=None, repeat=1):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        cur.execute(sql, args)
        cur.fetchall()
        best = min(best, time.perf_counter() - t)
    return best


def main():
    X, init = make_data()
    conn = psycopg2.connect("")
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SELECT count(*) FROM pg_class WHERE relname = 'bench_km'")
    if cur.fetchone()[0] == 0 or os.environ.get("BENCH_RELOAD"):
        cur.execute("DROP TABLE IF EXISTS bench_km; CREATE TABLE bench_km (id int, x float8[])")
        t = time.perf_counter()
        for start in range(0, N, 100_000):
            buf = io.StringIO()
            for i in range(start, min(N, start + 100_000)):
                buf.write("%d\t{%s}\n" % (i, ",".join(repr(v) for v in X[i])))
            buf.seek(0)
            cur.copy_expert("COPY bench_km FROM STDIN", buf)
        cur.execute("VACUUM ANALYZE bench_km")
        print("loaded %d rows in %.1f s" % (N, time.perf_counter() - t), flush=True)

    # Training in a fresh backend so its peak RSS is the training's.
    tconn = psycopg2.connect("")
    tconn.autocommit = True
    tcur = tconn.cursor()
    tcur.execute("SET mlpipe.progress = off; SELECT pg_backend_pid()")
    pid = tcur.fetchone()[0]
    base_kb = vm_kb(pid, "VmHWM")
    params = {"k": K, "init": "given", "centroids": init.tolist(), "max_iter": ITERS, "tol": 0}
    t = time.perf_counter()
    tcur.execute("SELECT metrics FROM mlpipe.train('bench_km', 'kmeans', 'bench_km', "
                 "features => ARRAY['x'], params => %s)", (json.dumps(params),))
    metrics = tcur.fetchone()[0]
    t_mlpipe = time.perf_counter() - t
    peak_kb = vm_kb(pid, "VmHWM")
    tcur.execute("SELECT current_setting('mlpipe.threads')")
    threads = tcur.fetchone()[0]
    tconn.close()

    sk = {}
    for algo in ("lloyd", "elkan"):
        t = time.perf_counter()
        km = KMeans(n_clusters=K, init=init, n_init=1, max_iter=ITERS, tol=0, algorithm=algo).fit(X)
        sk[algo] = (time.perf_counter() - t, km.inertia_, km.n_iter_)
    best_algo = min(sk, key=lambda a: sk[a][0])

    cur.execute("SET mlpipe.progress = off")
    t_scan = timed(cur, "SELECT sum(x[1]) FROM bench_km", repeat=3)
    t_pred = timed(cur, "SELECT sum(mlpipe.predict('bench_km', x)) FROM bench_km", repeat=3)

    blas = threadpoolctl.threadpool_info()
    print()
    print("## k-means, %d x %d, k = %d, %d iterations from given centroids" % (N, D, K, ITERS))
    print("scikit-learn %s (threads: %s), mlpipe.threads = %s" %
          (sklearn.__version__, ",".join(str(b.get("num_threads")) for b in blas), threads))
    print()
    print("| what | mlpipe | peer | ratio (mlpipe / peer) |")
    print("|---|---|---|---|")
    print("| training, table read included vs sklearn %s (best of lloyd %.2f s, elkan %.2f s) | %.2f s | %.2f s | **%.2fx** |"
          % (best_algo, sk["lloyd"][0], sk["elkan"][0], t_mlpipe, sk[best_algo][0], t_mlpipe / sk[best_algo][0]))
    print("| inertia (mlpipe %s iterations, sklearn %d) | %.6g | %.6g | %.9f |"
          % (metrics["iterations"], sk["lloyd"][2], metrics["inertia"], sk["lloyd"][1], metrics["inertia"] / sk["lloyd"][1]))
    print("| scoring `sum(mlpipe.predict('m', x))` vs bare scan `sum(x[1])` | %.3f s | %.3f s | **%.2fx** |"
          % (t_pred, t_scan, t_pred / t_scan))
    print("| training backend peak RSS (VmHWM) | %.0f MB (%.0f MB before) | data: %.0f MB of doubles | |"
          % (peak_kb / 1024, base_kb / 1024, N * D * 8 / 2**20))
    return 0


if __name__ == "__main__":
    run_stamp("k-means bench")
    rc = main()
    done_stamp()
    sys.exit(rc)
