#!/usr/bin/python3
"""Progress NOTICEs, cancel and statement_timeout during a long training.

- progress lines come at most about once a second, and not at all with
  mlpipe.progress = off;
- statement_timeout stops training within a second of the deadline;
- pg_cancel_backend stops it within a second;
- neither leaves anything in the registry;
- a random forest's progress says trees done of the total, no loss, and
  its first estimate of the time left (after one tree) puts the end of the
  trees within 2x of when they really ended (loose on purpose: the machine
  is shared, so this compares ratios, not seconds).
Prints PASS/FAIL lines.
"""
import re
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
FOREST = ("SELECT mlpipe.train('progress_rf', 'random_forest', "
          "'SELECT (g * 7919 % 1000) / 1000.0 AS a, (g * 104729 % 997) / 997.0 AS b, "
          "(g * 15485863 % 991) / 991.0 AS c, (g * 31 + g / 7) % 3 AS y FROM generate_series(1::bigint, 60000) g', "
          "'y', params => '{\"n_estimators\": 12, \"test_size\": 0.05}')")
TREE_LINE = re.compile(r"random_forest: tree (\d+)/(\d+) done, ([0-9.]+) s elapsed(?:, about ([0-9.]+) s left)?$")
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
    forest_estimate(cur)
    return 1 if failures else 0


def forest_estimate(cur):
    """The first estimate of a forest against when its trees really ended."""
    cur.execute("SET mlpipe.progress = on; SET mlpipe.threads = 1; SET mlpipe.progress_interval = '100ms'")
    cur.execute("BEGIN")
    del cur.connection.notices[:]
    cur.execute(FOREST)
    cur.execute("ROLLBACK")
    cur.execute("RESET mlpipe.threads; RESET mlpipe.progress_interval")
    lines = [n.strip().replace("NOTICE:  ", "") for n in cur.connection.notices if "random_forest: tree" in n]
    parsed = [TREE_LINE.match(l) for l in lines]
    check(lines and all(parsed), "forest progress lines read 'tree i/n done, E s elapsed[, about L s left]' (%d lines)"
          % len(lines))
    check(not [l for l in lines if "loss" in l], "forest progress lines report no loss")
    if not lines or not all(parsed):
        return
    first = next((m for m in parsed if m.group(4) is not None and int(m.group(1)) >= 1), None)
    last = parsed[-1]
    check(last.group(1) == last.group(2) == "12", "the last forest line says 12/12 trees done")
    if first is None:
        check(False, "no forest line with an estimate")
        return
    predicted = float(first.group(3)) + float(first.group(4))
    actual = float(last.group(3))
    ratio = predicted / actual if actual > 0 else float("inf")
    check(0.5 <= ratio <= 2.0, "after tree %s/12 the trees were to end at %.1f s; they ended at %.1f s (ratio %.2f)"
          % (first.group(1), predicted, actual, ratio))


if __name__ == "__main__":
    sys.exit(main())
