#!/usr/bin/python3
"""Progress NOTICEs, cancel and statement_timeout during a long training.

- progress lines come at most about once a second, and not at all with
  mlpipe.progress = off;
- statement_timeout stops training within a second of the deadline;
- pg_cancel_backend stops it within a second;
- neither leaves anything in the registry.
Prints PASS/FAIL lines.
"""
import sys
import threading
import time

import psycopg2

LONG = ("SELECT mlpipe.train('cancel_me', 'kmeans', "
        "'SELECT random() AS a, random() AS b, random() AS c, random() AS d, "
        "random() AS e, random() AS f, random() AS g, random() AS h FROM generate_series(1, 300000)', "
        "params => '{\"k\": 64, \"init\": \"random\", \"n_init\": 50, \"max_iter\": 1000, \"tol\": 0, \"sample_size\": 100}')")
LONG_GBT = ("SELECT mlpipe.train('cancel_gbt', 'gbt', "
            "'SELECT ARRAY(SELECT random() + g * 0 FROM generate_series(1, 20)) AS x, (random() < 0.5) AS y "
            "FROM generate_series(1, 100000) g', 'y', params => '{\"n_estimators\": 5000, \"max_depth\": 8}')")
failures = 0


def check(ok, what):
    global failures
    print(("PASS " if ok else "FAIL ") + what, flush=True)
    failures += 0 if ok else 1


def registry_count(cur):
    cur.execute("SELECT (SELECT count(*) FROM mlpipe.model_versions) + (SELECT count(*) FROM mlpipe.runs)"
                " + (SELECT count(*) FROM mlpipe.alias_events)")
    return cur.fetchone()[0]


def main():
    conn = psycopg2.connect("")
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("CREATE EXTENSION IF NOT EXISTS mlpipe")
    before = registry_count(cur)

    # statement_timeout, with progress on.
    cur.execute("SET statement_timeout = '3500ms'; SET mlpipe.progress = on")
    del conn.notices[:]
    t = time.perf_counter()
    try:
        cur.execute(LONG)
        check(False, "statement_timeout: training finished before the timeout (make it longer)")
    except psycopg2.errors.QueryCanceled:
        elapsed = time.perf_counter() - t
        check(elapsed < 3.5 + 1.0, "statement_timeout 3.5 s: training stopped after %.2f s" % elapsed)
    notices = [n for n in conn.notices if "kmeans:" in n]
    check(1 <= len(notices) <= 5, "progress: %d NOTICE lines in 3.5 s (at most about one a second)" % len(notices))
    if notices:
        print("  e.g. " + notices[-1].strip())
    check(all("elapsed" in n for n in notices), "progress lines say the elapsed time")

    # progress off: no notices.
    cur.execute("SET statement_timeout = '2s'; SET mlpipe.progress = off")
    del conn.notices[:]
    try:
        cur.execute(LONG)
    except psycopg2.errors.QueryCanceled:
        pass
    check(not [n for n in conn.notices if "kmeans:" in n], "mlpipe.progress = off silences progress")

    # Cancel from another session.
    cur.execute("SET statement_timeout = 0; SELECT pg_backend_pid()")
    pid = cur.fetchone()[0]
    result = {}

    def run():
        t0 = time.perf_counter()
        try:
            cur.execute(LONG)
            result["outcome"] = "finished"
        except psycopg2.errors.QueryCanceled:
            result["outcome"] = "cancelled"
        result["end"] = time.perf_counter()
        result["start"] = t0

    th = threading.Thread(target=run)
    th.start()
    time.sleep(2.0)
    other = psycopg2.connect("")
    other.autocommit = True
    ocur = other.cursor()
    t_cancel = time.perf_counter()
    ocur.execute("SELECT pg_cancel_backend(%s)", (pid,))
    th.join(30)
    check(result.get("outcome") == "cancelled", "cancel: training was cancelled")
    if "end" in result:
        lag = result["end"] - t_cancel
        check(lag < 1.0, "cancel: stopped %.3f s after pg_cancel_backend" % lag)
    # statement_timeout during gradient boosting.
    cur.execute("SET statement_timeout = '3s'")
    t = time.perf_counter()
    try:
        cur.execute(LONG_GBT)
        check(False, "gbt statement_timeout: training finished before the timeout (make it longer)")
    except psycopg2.errors.QueryCanceled:
        elapsed = time.perf_counter() - t
        check(elapsed < 3.0 + 1.0, "gbt statement_timeout 3 s: training stopped after %.2f s" % elapsed)
    cur.execute("SET statement_timeout = 0")
    check(registry_count(ocur) == before, "registry unchanged after timeouts and cancel")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
