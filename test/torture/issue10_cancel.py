"""issue10_cancel.py: issue #10 item 10, cancel latency.

Cancels (pg_cancel_backend) long statements of every algorithm and phase at
a few delays and measures the time from the cancel to the error reaching the
client: training k-means, mini-batch k-means, a deep decision tree, a
600-tree random forest, a 600-round gbt; scoring (predict_table, evaluate on
the test rows, cross_validate, search), and phases those pass through only
briefly: the silhouette aggregate over 100,000 points, k-means' own
silhouette, preprocessing (median imputation and scaling of 3M rows), a
gbt's test scoring and profile. Promise: within 1 s, and the
statement ends in 57014. A statement that finished before its cancel is
noted, not counted. CI: 2 delays per case, and 2 late ones in the random
forest (after fitting: test rows, profile); about 70 s. TORTURE_LONG: 6 + 9.
CANCEL_ONLY=<substring> runs the matching cases only."""
import os
import threading
import time

import psycopg2

import tlib

DB = "torture_cancel"
DELAYS = [0.7, 2.2] if tlib.CI else [0.3, 0.7, 1.2, 2.2, 3.5, 5.0]
LIMIT = float(os.environ.get("CANCEL_LIMIT", "1.0"))
F = "ARRAY['a','b','c']"
CASES = [
    ("train kmeans", "SELECT 1 FROM mlpipe.train('c_km', 'kmeans', 'public.big', NULL, %s, "
                     "'{\"k\": 40, \"n_init\": 20, \"max_iter\": 500, \"tol\": 0}')" % F),
    ("train minibatch_kmeans", "SELECT 1 FROM mlpipe.train('c_mb', 'minibatch_kmeans', 'public.big', NULL, %s, "
                               "'{\"k\": 40, \"n_init\": 20, \"max_iter\": 2000, \"batch_size\": 4096, \"tol\": 0}')" % F),
    ("train decision_tree", "SELECT 1 FROM mlpipe.train('c_dt', 'decision_tree', 'public.big', 'y', %s, "
                            "'{\"max_depth\": 40, \"max_bins\": 255}')" % F),
    ("train random_forest 600 trees", "SELECT 1 FROM mlpipe.train('c_rf', 'random_forest', 'public.big', 'y', %s, "
                                      "'{\"n_estimators\": 600, \"max_depth\": 20}')" % F,
     # fitting ends after about 11 s here; the rest scores the test rows, profiles, registers
     [12.0, 13.5] if tlib.CI else [9.0, 10.5, 11.5, 12.0, 12.5, 13.0, 13.5, 14.0, 15.0]),
    ("train gbt 600 rounds", "SELECT 1 FROM mlpipe.train('c_gb', 'gbt', 'public.big', 'yr', %s, "
                             "'{\"n_estimators\": 600, \"max_depth\": 6}')" % F),
    ("predict_table", "SELECT mlpipe.predict_table('rf', 'SELECT t.* FROM public.big t, generate_series(1, 20) g', "
                      "'public.c_out', 'id', 'append')"),
    ("evaluate", "SELECT mlpipe.evaluate('rf', 'SELECT t.* FROM public.big t, generate_series(1, 20) g')"),
    ("cross_validate", "SELECT mlpipe.cross_validate('random_forest', 'public.big', 'y', %s, "
                       "'{\"n_estimators\": 300}', 5)" % F),
    ("search", "SELECT 1 FROM mlpipe.search('c_s', 'gbt', 'public.big', 'yr', %s, "
               "'{\"n_estimators\": [300, 400], \"max_depth\": [5, 6]}', 'grid', 3)" % F),
    # phases the cases above pass through only briefly
    ("silhouette aggregate", "SELECT mlpipe.silhouette(ARRAY[a, b, yr], (id % 7)::int) FROM public.big"),
    ("train kmeans silhouette", "SELECT 1 FROM mlpipe.train('c_ks', 'kmeans', 'public.big', NULL, %s, "
                                "'{\"k\": 3, \"n_init\": 1, \"max_iter\": 3, \"sample_size\": 100000}')" % F),
    ("train preprocessing (median of 3M rows)", "SELECT 1 FROM mlpipe.train('c_pp', 'decision_tree', "
     "'SELECT a, b, c, y FROM public.big, generate_series(1, 30) g', 'y', %s, "
     "'{\"max_depth\": 1, \"preprocess\": {\"*\": {\"impute\": \"median\", \"scale\": \"standard\"}}}')" % F,
     [4.5, 5.5, 6.5] if tlib.CI else [3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5]),
    ("train gbt evaluation and profile", "SELECT 1 FROM mlpipe.train('c_ge', 'gbt', "
     "'SELECT t.* FROM public.big t, generate_series(1, 10) g', 'yr', %s, "
     "'{\"n_estimators\": 400, \"max_depth\": 8, \"test_size\": 0.9}')" % F,
     [6.0, 8.0] if tlib.CI else [5.0, 6.0, 7.0, 8.0, 9.0, 10.0]),
]


def cancel_once(sql, delay):
    """(latency seconds or None if it finished first, sqlstate)."""
    conn = tlib.connect(DB)
    cur = conn.cursor()
    cur.execute("SET mlpipe.progress = off")
    pid = conn.get_backend_pid()
    out = {}

    def run():
        try:
            cur.execute(sql)
            out["code"] = "ok"
        except psycopg2.Error as e:
            out["code"] = e.pgcode
        out["end"] = time.monotonic()
    t = threading.Thread(target=run)
    t.start()
    time.sleep(delay)
    ctl = tlib.connect(DB)
    sent = time.monotonic()
    if t.is_alive():
        ctl.cursor().execute("SELECT pg_cancel_backend(%s)", (pid,))
    t.join(120)
    ctl.close()
    conn.close()
    if out.get("end", 0) < sent:
        return None, out.get("code")
    return out["end"] - sent, out.get("code")


def main():
    t0 = time.time()
    tlib.setup_models(DB, n=400)
    c = tlib.connect(DB)
    cur = c.cursor()
    cur.execute("CREATE TABLE public.big AS SELECT t.id + 1000 * g AS id, a + g % 3 AS a, b, c, y, yr "
                "FROM public.tdata t, generate_series(0, 249) g")
    cur.execute("ANALYZE public.big")
    c.close()
    only = os.environ.get("CANCEL_ONLY")
    for case in CASES:
        name, sql = case[0], case[1]
        if only and only not in name:
            continue
        worst, counted, codes = 0.0, 0, set()
        for d in DELAYS + (case[2] if len(case) > 2 else []):
            lat, code = cancel_once(sql, d)
            if lat is None:
                print("# cancel %s after %.1f s: finished before the cancel (%s), not counted" % (name, d, code))
                continue
            counted += 1
            codes.add(code)
            if lat > LIMIT / 2:
                print("# cancel %s after %.1f s: %.2f s (%s)" % (name, d, lat, code))
            worst = max(worst, lat)
        if counted == 0:
            print("# cancel %s: never running at cancel time, no check" % name)
            continue
        tlib.result(worst <= LIMIT and codes == {"57014"},
                    "issue10 cancel: %s stops within %.1f s of a cancel" % (name, LIMIT),
                    "worst %.2f s over %d cancels, sqlstates %s" % (worst, counted, sorted(codes)))
        print("# cancel %s: worst latency %.2f s over %d cancels" % (name, worst, counted))
    print("# cancel: %.0f s" % (time.time() - t0))
    tlib.finish()


if __name__ == "__main__":
    main()
