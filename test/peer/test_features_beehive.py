#!/usr/bin/python3
"""ts_features and summary against numpy/scipy on the UrBAN beehive temperatures.

The raw sensor file is loaded with scripts/load_beehive.sh into schema
t_features_peer, and read again here straight from the CSV for the reference
figures, per hive and per hive and day. Checks, in the same run:
- n, min, max, first, last, longest_gap exact; mean, std, skewness, kurtosis
  within 1e-9 relative of their exact values (rational arithmetic, with the
  conventions of stddev() and scipy bias=False, checked against scipy);
  slope per hour (numpy polyfit), mean_abs_change (math.fsum) and
  autocorr_lag1 (numpy corrcoef of v[i], v[i+1]) within 1e-9 relative;
- quantiles: numpy.percentile (linear) within 1e-12, and a rank error of at
  most 1% measured against the sorted data;
- the same result, to the bit, from shuffled input and from a forced
  parallel plan whose EXPLAIN ANALYZE shows a Partial Aggregate.
Prints PASS/FAIL lines; drops its schema at the end.
"""
import csv
import math
import os
from fractions import Fraction
import subprocess
import sys
from collections import defaultdict
from datetime import datetime

import numpy as np
import psycopg2
from scipy import stats

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(os.environ.get("MLPIPE_DATA", os.path.join(ROOT, "..", "shared", "data")),
                    "beehive_urban")
SCHEMA = "t_features_peer"
LEVELS = [0.05, 0.25, 0.5, 0.75, 0.95]
COLS = ["n", "n_null", "mean", "std", "min", "max", "q05", "q25", "median", "q75", "q95",
        "skewness", "kurtosis", "slope", "first", "last", "mean_abs_change", "autocorr_lag1",
        "longest_gap"]
failures = 0


def check(ok, what):
    global failures
    print(("PASS " if ok else "FAIL ") + what, flush=True)
    failures += 0 if ok else 1


def close(a, b, rtol, atol=1e-12):
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= max(rtol * abs(b), atol)


def exact_moments(v):
    """mean, std, skewness, kurtosis in exact rational arithmetic (one rounding
    at the end): the exact values the 1e-9 bound is about."""
    n = len(v)
    fv = [Fraction(float(x)) for x in v]
    mean = sum(fv) / n
    d = [x - mean for x in fv]
    m2 = sum(x * x for x in d) / n
    m3 = sum(x * x * x for x in d) / n
    m4 = sum((x * x) * (x * x) for x in d) / n
    std = skew = kurt = None
    if n > 1:
        std = math.sqrt(m2 * n / (n - 1))
    if n >= 3 and m2 > 0:
        g1_sq = m3 * m3 / (m2 * m2 * m2)
        g1 = math.copysign(math.sqrt(g1_sq), m3)
        skew = g1 * math.sqrt(n * (n - 1)) / (n - 2)
    if n >= 4 and m2 > 0:
        g2 = m4 / (m2 * m2) - 3
        kurt = float(((n + 1) * g2 + 6) * (n - 1) / ((n - 2) * (n - 3)))
    return float(mean), std, skew, kurt


def reference(ts, v):
    """Every figure of ts_features for one group, from the raw readings."""
    order = np.lexsort((v, ts))
    ts, v = ts[order], v[order]
    n = len(v)
    mean = math.fsum(v) / n
    d = v - mean
    m2 = math.fsum(d * d)
    hours = (ts - ts[0]) / 3600.0
    ref = {"n": n, "n_null": 0, "mean": mean,
           "std": math.sqrt(m2 / (n - 1)) if n > 1 else None,
           "min": float(v.min()), "max": float(v.max()),
           "skewness": float(stats.skew(v, bias=False)) if n >= 3 and m2 > 0 else None,
           "kurtosis": float(stats.kurtosis(v, bias=False)) if n >= 4 and m2 > 0 else None,
           "slope": float(np.polyfit(hours, v, 1)[0]) if n >= 2 and np.ptp(hours) > 0 else None,
           "first": float(v[0]), "last": float(v[-1]),
           "mean_abs_change": math.fsum(np.abs(np.diff(v))) / (n - 1) if n >= 2 else None,
           "autocorr_lag1": None,
           "longest_gap": float(np.max(np.diff(ts))) if n >= 2 else None}
    # scipy is the peer for the conventions; exact arithmetic for the values.
    ref["scipy_skewness"], ref["scipy_kurtosis"] = ref["skewness"], ref["kurtosis"]
    ref["mean"], ref["std"], ref["skewness"], ref["kurtosis"] = exact_moments(v)
    if n >= 3 and np.std(v[:-1]) > 0 and np.std(v[1:]) > 0:
        ref["autocorr_lag1"] = float(np.corrcoef(v[:-1], v[1:])[0, 1])
    for name, q in zip(["q05", "q25", "median", "q75", "q95"], np.percentile(v, [5, 25, 50, 75, 95])):
        ref[name] = float(q)
    return ref, np.sort(v)


def rank_error(sorted_v, q, level):
    """How far q is from rank level * (n - 1) in the sorted data, as a fraction
    of n: q's rank is the interval of positions holding q, or, between two
    order statistics, the position interpolated linearly between them (the
    inverse of percentile_cont's interpolation)."""
    n = len(sorted_v)
    want = level * (n - 1)
    lo = np.searchsorted(sorted_v, q, side="left")
    hi = np.searchsorted(sorted_v, q, side="right") - 1
    if lo <= hi:                      # q occurs at positions lo..hi
        pos_lo, pos_hi = float(lo), float(hi)
    elif lo == 0 or lo == n:          # outside the data
        return 1.0
    else:                             # between sorted_v[lo - 1] and sorted_v[lo]
        a, b = sorted_v[lo - 1], sorted_v[lo]
        pos_lo = pos_hi = (lo - 1) + (q - a) / (b - a)
    if pos_lo <= want <= pos_hi:
        return 0.0
    return min(abs(want - pos_lo), abs(want - pos_hi)) / n


def compare(label, got, ref, sorted_v, worst):
    """Compares one group's row with its reference; returns the failed figures."""
    bad = []
    for c in ["n", "n_null", "min", "max", "first", "last", "longest_gap"]:
        if got[c] != ref[c]:
            bad.append(c)
    for c in ["skewness", "kurtosis"]:     # same convention as scipy bias=False
        if not close(ref["scipy_" + c], ref[c], 1e-6, 1e-9):
            bad.append(c + " convention")
    for c in ["mean", "std", "skewness", "kurtosis", "slope", "mean_abs_change", "autocorr_lag1"]:
        # skewness and kurtosis have no unit: an exact 0 is met within 1e-9.
        if not close(got[c], ref[c], 1e-9, 1e-9 if c in ("skewness", "kurtosis") else 1e-12):
            bad.append(c)
        elif got[c] is not None and ref[c] not in (None, 0):
            worst[c] = max(worst.get(c, 0.0), abs(got[c] - ref[c]) / abs(ref[c]))
    for c, level in zip(["q05", "q25", "median", "q75", "q95"], LEVELS):
        if not close(got[c], ref[c], 1e-12):
            bad.append(c)
        worst["rank"] = max(worst.get("rank", 0.0), rank_error(sorted_v, got[c], level))
    if worst.get("rank", 0.0) > 0.01:
        bad.append("rank error")
    return bad


def main():
    subprocess.run(["bash", os.path.join(ROOT, "scripts", "load_beehive.sh"), DATA, SCHEMA],
                   check=True, stdout=subprocess.DEVNULL)
    conn = psycopg2.connect("")
    conn.autocommit = True
    cur = conn.cursor()

    by_hive, by_day = defaultdict(list), defaultdict(list)
    with open(os.path.join(DATA, "sensor_2021.csv"), newline="") as f:
        for row in csv.DictReader(f):
            t = datetime.fromisoformat(row["Date"])
            hive, temp = int(row["Tag number"]), float(row["temperature"])
            by_hive[hive].append((t.timestamp(), temp))
            by_day[(hive, t.date().isoformat())].append((t.timestamp(), temp))
    cur.execute("SELECT count(*) FROM %s.sensor" % SCHEMA)
    check(cur.fetchone()[0] == sum(len(x) for x in by_hive.values()),
          "loader: every sensor row of the raw file is in %s.sensor" % SCHEMA)

    queries = {
        "per hive": ("SELECT hive, (mlpipe.ts_features(ts, temperature)).* FROM %s.sensor "
                     "GROUP BY hive" % SCHEMA, by_hive, lambda r: r[0], 1),
        "per hive and day": ("SELECT hive, (ts AT TIME ZONE 'UTC')::date::text, "
                             "(mlpipe.ts_features(ts, temperature)).* FROM %s.sensor "
                             "GROUP BY 1, 2" % SCHEMA, by_day, lambda r: (r[0], r[1]), 2),
    }
    for what, (sql, groups, key, skip) in queries.items():
        cur.execute(sql)
        rows = cur.fetchall()
        check(len(rows) == len(groups), "ts_features %s: %d groups" % (what, len(rows)))
        worst, failed = {}, []
        for r in rows:
            got = dict(zip(COLS, r[skip:]))
            pts = np.array(groups[key(r)], dtype=np.float64)
            ref, sorted_v = reference(pts[:, 0], pts[:, 1])
            bad = compare(what, got, ref, sorted_v, worst)
            if bad:
                failed.append((key(r), bad))
        check(not failed, "ts_features %s: every figure matches numpy/scipy (%s)"
              % (what, failed[:3] if failed else "worst relative error "
                 + ", ".join("%s %.1e" % kv for kv in sorted(worst.items()) if kv[0] != "rank")))
        check(worst.get("rank", 1) <= 0.01,
              "ts_features %s: quantile rank error %.2g%% <= 1%%" % (what, 100 * worst.get("rank", 1)))

    # summary(value) per hive: the order-free columns, same references.
    cur.execute("SELECT hive, (mlpipe.summary(temperature)).* FROM %s.sensor GROUP BY hive" % SCHEMA)
    bad = []
    for r in cur.fetchall():
        got = dict(zip(COLS[:13], r[1:]))
        pts = np.array(by_hive[r[0]], dtype=np.float64)
        ref, sorted_v = reference(pts[:, 0], pts[:, 1])
        for c in COLS[:13]:
            if not close(got[c], ref[c], 1e-9):
                bad.append((r[0], c))
    check(not bad, "summary per hive matches numpy/scipy %s" % (bad[:3] if bad else ""))

    # Order and plan independence, bit for bit.
    base = ("SELECT hive, mlpipe.ts_features(ts, temperature)::text, mlpipe.summary(temperature)::text "
            "FROM %s GROUP BY hive ORDER BY hive")
    cur.execute("SET max_parallel_workers_per_gather = 0")
    cur.execute(base % ("%s.sensor" % SCHEMA))
    serial = cur.fetchall()
    cur.execute(base % ("(SELECT * FROM %s.sensor ORDER BY random()) s" % SCHEMA))
    check(cur.fetchall() == serial, "shuffled input: identical results")
    cur.execute(base % ("(SELECT * FROM %s.sensor ORDER BY ts DESC) s" % SCHEMA))
    check(cur.fetchall() == serial, "reversed input: identical results")
    for s in ["parallel_setup_cost = 0", "parallel_tuple_cost = 0", "min_parallel_table_scan_size = 0",
              "max_parallel_workers_per_gather = 2", "parallel_leader_participation = off"]:
        cur.execute("SET " + s)
    cur.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + base % ("%s.sensor" % SCHEMA))
    plan = "\n".join(r[0] for r in cur.fetchall())
    launched = [int(line.split(":")[1]) for line in plan.splitlines() if "Workers Launched" in line]
    check("Partial" in plan and "Aggregate" in plan and launched and launched[0] > 0,
          "forced parallel plan: Partial Aggregate with %s workers launched" % (launched or "no"))
    cur.execute(base % ("%s.sensor" % SCHEMA))
    check(cur.fetchall() == serial, "parallel plan: identical results")
    cur.execute("RESET ALL")

    cur.execute("DROP SCHEMA %s CASCADE" % SCHEMA)
    conn.close()
    return failures


if __name__ == "__main__":
    sys.exit(1 if main() else 0)
