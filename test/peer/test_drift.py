#!/usr/bin/python3
"""Drift figures (PSI, null rates) against a Python computation, in one run.

Real data: UCI bank marketing (bank-full, 45,211 calls ordered by date). The
first 30,000 calls are the training data, the remaining 15,211 the "current"
data (later months: real drift); some NULLs are added on both sides. mlpipe
trains a gbt on the reference, and this script recomputes the profile
(percentile_disc min, deciles and max as edges; a bin on each edge and between edges) and PSI with numpy from the same
rows, then compares every figure with mlpipe.drift and with the figures that
mlpipe.predict_table records in mlpipe.metrics. It also checks the
predictions_written and drift_detected NOTIFY payloads.
Prints PASS/FAIL lines; connects with the PG* environment variables.
"""
import csv
import gzip
import io
import json
import math
import os
import select
import sys

import numpy as np
import psycopg2

DATA = os.environ.get("MLPIPE_DATA", "../shared/data")
PATH = os.path.join(DATA, "uci_bank_marketing", "bank-full.csv.gz")
NUMERIC = ["age", "balance", "day", "duration", "campaign", "pdays", "previous"]
N_REF = 30000
EPS = 1e-4
failures = 0


def check(ok, what):
    global failures
    print(("PASS " if ok else "FAIL ") + what, flush=True)
    failures += 0 if ok else 1


def load():
    rows = []
    with gzip.open(PATH, "rt", newline="") as f:
        for i, r in enumerate(csv.DictReader(f, delimiter=";"), start=1):
            rec = {"id": i, "y": r["y"]}
            for c in NUMERIC:
                rec[c] = float(r[c])
            # Missing values: every 50th duration in all data, every 10th balance later on.
            if i % 50 == 0:
                rec["duration"] = None
            if i > N_REF and i % 10 == 0:
                rec["balance"] = None
            rows.append(rec)
    return rows


def percentile_disc(sorted_vals, p):
    """PostgreSQL's percentile_disc: the first value whose cumulative share reaches p."""
    n = len(sorted_vals)
    k = math.ceil(p * n)
    return sorted_vals[max(k, 1) - 1]


def profile(vals):
    nonnull = sorted(v for v in vals if v is not None)
    edges = sorted(set(percentile_disc(nonnull, p) for p in
                       (0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1)))
    return np.array(edges), nonnull


def counts(edges, nonnull):
    # k = width_bucket(x, edges), the number of edges <= x; bin 0 below the
    # first edge, 2k - 1 on edge k, 2k between edge k and the next one.
    x = np.array(nonnull)
    k = np.searchsorted(edges, x, side="right")
    on_edge = (k > 0) & (x == edges[np.maximum(k - 1, 0)])
    bins = np.where(k == 0, 0, np.where(on_edge, 2 * k - 1, 2 * k))
    return np.bincount(bins, minlength=2 * len(edges) + 1).astype(float)


def psi(train_counts, now_counts):
    e = np.maximum(train_counts / train_counts.sum(), EPS)
    a = np.maximum(now_counts / now_counts.sum(), EPS)
    return float(np.sum((a - e) * np.log(a / e)))


def main():
    if not os.path.exists(PATH):
        check(False, "data set found at %s" % PATH)
        return
    rows = load()
    ref, cur = rows[:N_REF], rows[N_REF:]
    conn = psycopg2.connect("")
    conn.autocommit = True
    cur_sql = conn.cursor()
    cur_sql.execute("SET mlpipe.progress = off")
    cur_sql.execute("DROP SCHEMA IF EXISTS peer_drift CASCADE; CREATE SCHEMA peer_drift")
    cols = ", ".join("%s float8" % c for c in NUMERIC)
    for name, part in (("ref", ref), ("cur", cur)):
        cur_sql.execute("CREATE TABLE peer_drift.%s (id int, %s, y text)" % (name, cols))
        buf = io.StringIO()
        for r in part:
            buf.write("\t".join([str(r["id"])] + ["\\N" if r[c] is None else repr(r[c]) for c in NUMERIC]
                                + [r["y"]]) + "\n")
        buf.seek(0)
        cur_sql.copy_expert("COPY peer_drift.%s (id, %s, y) FROM STDIN" % (name, ", ".join(NUMERIC)), buf)
    cur_sql.execute("SELECT version FROM mlpipe.train('peer_drift_m', 'gbt', 'peer_drift.ref', 'y', %s, "
                    "'{\"n_estimators\": 10, \"max_depth\": 3, \"profile_sample\": 100000}')", (NUMERIC,))
    version = cur_sql.fetchone()[0]
    ref_ref = "peer_drift_m@%d" % version

    # The stored profile against the Python one.
    cur_sql.execute("SELECT mlpipe.profile(%s)", (ref_ref,))
    prof = cur_sql.fetchone()[0]
    by_name = {f["feature"]: f for f in prof["features"]}
    check(prof["rows"] == N_REF and prof["fraction"] == 1,
          "profile covers all %d training rows (got %s)" % (N_REF, prof["rows"]))
    py = {}
    for c in NUMERIC:
        edges, nonnull = profile([r[c] for r in ref])
        py[c] = (edges, counts(edges, nonnull), 1 - len(nonnull) / len(ref))
        f = by_name.get(c)
        ok = (f is not None and np.array_equal(np.array(f["edges"], dtype=float), edges)
              and np.array_equal(np.array(f["counts"], dtype=float), py[c][1])
              and abs(f["null_rate"] - py[c][2]) < 1e-12)
        check(ok, "profile of %s: edges, counts and null rate as numpy computes them" % c)

    # drift() against the Python PSI.
    cur_sql.execute("SELECT feature, psi, null_rate_train, null_rate_now, status "
                    "FROM mlpipe.drift(%s, 'peer_drift.cur')", (ref_ref,))
    got = {r[0]: r[1:] for r in cur_sql.fetchall()}
    expected_drift = set()
    for c in NUMERIC:
        edges, train_counts, null_train = py[c]
        vals = [r[c] for r in cur]
        nonnull = [v for v in vals if v is not None]
        p = psi(train_counts, counts(edges, nonnull))
        null_now = 1 - len(nonnull) / len(cur)
        status = ("drift" if abs(null_now - null_train) >= 0.1 else
                  "drift" if p >= 0.2 else "warning" if p >= 0.1 else "ok")
        if status == "drift":
            expected_drift.add(c)
        g = got.get(c)
        check(g is not None and abs(g[0] - p) <= 1e-9 * max(1, abs(p)) and abs(g[2] - null_now) < 1e-12
              and g[3] == status,
              "drift of %s: psi %.6f (numpy %.6f), null rate now %.4f, status %s (%s)"
              % (c, g[0] if g else float("nan"), p, g[2] if g else float("nan"),
                 g[3] if g else None, status))
    check({"day", "pdays", "previous"} <= expected_drift,
          "the later months drift on %s" % ", ".join(sorted(expected_drift)))

    # predict_table records the same figures and sends its events.
    listen = psycopg2.connect("")
    listen.autocommit = True
    listen.cursor().execute("LISTEN mlpipe_events")
    cur_sql.execute("SELECT mlpipe.predict_table(%s, 'peer_drift.cur', 'peer_drift.scored', 'id', 'append', "
                    "'{\"drift_sample\": 100000}')", (ref_ref,))
    n = cur_sql.fetchone()[0]
    check(n == len(cur), "predict_table wrote %d rows" % n)
    cur_sql.execute("SELECT count(*), count(label), count(proba) FROM peer_drift.scored")
    check(cur_sql.fetchone() == (len(cur), len(cur), len(cur)), "every row has a prediction, label and proba")
    cur_sql.execute("SELECT max(run_id) FROM mlpipe.runs WHERE kind = 'predict_table' AND model = 'peer_drift_m'")
    run_id = cur_sql.fetchone()[0]
    cur_sql.execute("SELECT metric, value FROM mlpipe.metrics WHERE run_id = %s AND split = 'scoring'", (run_id,))
    metrics = dict(cur_sql.fetchall())
    check(all(abs(metrics.get("psi:" + c, float("nan")) - got[c][0]) <= 1e-12 for c in NUMERIC),
          "predict_table's psi metrics equal drift() on a source under the sample size")
    select.select([listen], [], [], 5)
    listen.poll()
    events = {}
    for note in listen.notifies:
        doc = json.loads(note.payload)
        events[doc.get("event")] = doc
    pw = events.get("predictions_written")
    check(pw is not None and pw.get("rows") == len(cur) and pw.get("run_id") == run_id
          and pw.get("model") == "peer_drift_m" and pw.get("version") == version
          and pw.get("into") == "peer_drift.scored",
          "predictions_written payload: %s" % json.dumps(pw))
    dd = events.get("drift_detected")
    check(dd is not None and set(f["feature"] for f in dd.get("features", [])) == expected_drift,
          "drift_detected names the drifted features: %s"
          % (sorted(f["feature"] for f in dd["features"]) if dd else None))
    listen.close()

    cur_sql.execute("DROP SCHEMA peer_drift CASCADE")
    conn.close()


if __name__ == "__main__":
    main()
    sys.exit(1 if failures else 0)
