"""issue10_memory.py: issue #10 item 7, mlpipe.max_memory and the metric aggregates.

With mlpipe.max_memory = 64MB, each clustering-metric aggregate (silhouette,
davies_bouldin, calinski_harabasz) over about 80 MB of points (20,000 rows of
500 float8) must fail with 54000 naming the figure needed, instead of
buffering everything (the backend's peak RSS, VmHWM, is reported); so must
the silhouette over 56 MB of points, whose own work (a feature-major copy)
takes it over.
TORTURE_LONG also runs roc_auc and log_loss over 6M rows."""
import os
import time

import psycopg2

import tlib

DB = "torture_mem"


def peak_rss_mb(pid):
    try:
        for line in open("/proc/%d/status" % pid):
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return -1
    return -1


def main():
    t0 = time.time()
    tlib.fresh_db(DB)
    cases = [(agg, "SELECT mlpipe.%s(array_fill(i::float8 / 7, ARRAY[500]), i %% 4) "
                   "FROM generate_series(1, 20000) i" % agg)
             for agg in ("calinski_harabasz", "davies_bouldin", "silhouette")]
    # 56 MB of points fit; the silhouette's feature-major copy (another 56 MB) does not
    cases += [("silhouette work", "SELECT mlpipe.silhouette(array_fill(i::float8 / 7, ARRAY[350]), i % 4) "
                                  "FROM generate_series(1, 20000) i")]
    if not tlib.CI:
        cases += [("roc_auc", "SELECT mlpipe.roc_auc(i % 3 = 0, (i % 1000) / 1000.0) FROM generate_series(1, 6000000) i"),
                  ("log_loss", "SELECT mlpipe.log_loss(i % 3 = 0, 0.5) FROM generate_series(1, 6000000) i")]
    for agg, sql in cases:
        c = tlib.connect(DB)
        cur = c.cursor()
        cur.execute("SET mlpipe.max_memory = '64MB'; SET statement_timeout = '%s'"
                    % ("8s" if agg.startswith("silhouette") else "60s"))
        pid = c.get_backend_pid()
        t = time.time()
        try:
            cur.execute(sql)
            outcome = "returned %s" % (cur.fetchone()[0],)
            code = "ok"
        except psycopg2.Error as e:
            code = e.pgcode
            outcome = "%s %s" % (e.pgcode, (e.pgerror or "").splitlines()[0])
        rss = peak_rss_mb(pid)
        print("# memory %s: %s after %.1f s, backend peak RSS %.0f MB" % (agg, outcome, time.time() - t, rss))
        c.close()
        tlib.result(code == "54000", "issue10 memory: %s honours mlpipe.max_memory = 64MB (54000)" % agg,
                    "%s after %.1f s, backend peak RSS %.0f MB" % (outcome, time.time() - t, rss))
    print("# memory: %.0f s" % (time.time() - t0))
    tlib.finish()


if __name__ == "__main__":
    main()
