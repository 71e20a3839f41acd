#!/usr/bin/python3
"""Issue #14 (metrics an imbalanced problem needs) against scikit-learn, in one run.

On UCI bank marketing (11% positive) and UCI MAGIC gamma telescope (35%
hadrons), gbt and random_forest models trained by mlpipe with a known test
split (params.split = column:is_test) score every row; scikit-learn then
computes, on the same (truth, label, probability) rows:
  - mlpipe.precision / recall / f1 (positive class) and average_precision;
  - mlpipe.roc_curve (with and without drop_intermediate) and pr_curve,
    point by point;
  - the stored test-split metrics precision, recall, f1, average_precision;
  - params.threshold = 'f1' and tune_threshold(..., 'recall_macro'): the
    stored threshold maximises the metric over every candidate threshold of
    the test split, and predict_label is predict_proba >= threshold;
  - mlpipe.calibration: isotonic equals IsotonicRegression(out_of_bounds=
    'clip') knot by knot and CalibratedClassifierCV(cv='prefit',
    method='isotonic') probability by probability; Platt equals a tight
    optimisation of scikit-learn's own sigmoid objective (and scikit-learn's
    BFGS result within its gtol);
  - params.calibrate: predict_proba is the stored calibration of the raw
    model's probability (the artifact without its DECISION section).
Everything within 1e-9 unless said. Prints PASS/FAIL lines.
"""
import csv
import gzip
import io
import os
import struct
import sys

import numpy as np
import psycopg2
from scipy.optimize import minimize
from scipy.special import expit, xlogy
from sklearn import metrics as skm
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV, _sigmoid_calibration
from sklearn.isotonic import IsotonicRegression

DATA = os.environ.get("MLPIPE_DATA", "../shared/data")
TOL = 1e-9
failures = 0


def check(ok, what):
    global failures
    print(("PASS " if ok else "FAIL ") + what, flush=True)
    failures += 0 if ok else 1


def close(a, b, what, tol=TOL):
    ok = a is not None and b is not None and abs(a - b) <= tol * max(1.0, abs(b))
    check(ok, "%s: mlpipe %r, scikit-learn %r" % (what, a, b))


def arrays_close(a, b, what, tol=TOL):
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    same = a.shape == b.shape
    diff = float(np.max(np.abs(a - b))) if same and a.size else (0.0 if same else float("inf"))
    check(same and diff <= tol, "%s: %d vs %d points, max difference %.3g" % (what, a.size, b.size, diff))


def copy_rows(cur, table, cols, rows):
    buf = io.StringIO()
    for r in rows:
        buf.write("\t".join("\\N" if v is None else str(v) for v in r) + "\n")
    buf.seek(0)
    cur.copy_from(buf, table, columns=cols)


def crc32c(data, crc=0):
    """CRC-32C (Castagnoli), chained like src/core/mlbuf.c's ml_crc32c."""
    table = crc32c.table
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


crc32c.table = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    crc32c.table.append(_c)


def without_decision(art):
    """The artifact with its DECISION section (tag 5) dropped: the raw model."""
    magic, fmt, kind, flags, plen, _ = struct.unpack("<4sHHIII", art[:20])
    pos, out, tags = 20, b"", []
    while pos < len(art):
        tag, n = struct.unpack("<HI", art[pos:pos + 6])
        if tag != 5:
            out += art[pos:pos + 6 + n]
            tags.append(tag)
        pos += 6 + n
    head = struct.pack("<4sHHII", magic, 2 if 3 in tags else 1, kind, flags, len(out))
    return head + struct.pack("<I", crc32c(out, crc32c(head))) + out


class Scores(BaseEstimator, ClassifierMixin):
    """A prefit 'classifier' whose predict_proba is given scores (X = row numbers)."""

    def __init__(self, scores=None):
        self.scores = scores
        self.classes_ = np.array([0, 1])

    def fit(self, X, y):
        return self

    def predict_proba(self, X):
        s = self.scores[np.asarray(X, dtype=int).ravel()]
        return np.column_stack([1 - s, s])


def platt_tight(s, y):
    """scikit-learn's sigmoid objective, optimised to a gradient of 1e-11."""
    prior0 = float(np.sum(y <= 0))
    prior1 = len(y) - prior0
    t = np.where(y > 0, (prior1 + 1) / (prior1 + 2), 1 / (prior0 + 2))

    def obj(ab):
        p = expit(-(ab[0] * s + ab[1]))
        return -(xlogy(t, p) + xlogy(1 - t, 1 - p)).sum()

    def grad(ab):
        g = t - expit(-(ab[0] * s + ab[1]))
        return np.array([np.dot(g, s), g.sum()])

    ab0 = np.array([0.0, np.log((prior0 + 1) / (prior1 + 1))])
    return minimize(obj, ab0, jac=grad, method="BFGS", options={"gtol": 1e-11, "maxiter": 10000}).x


def best_threshold(y, s, score_fn):
    """The highest candidate threshold (a distinct score) maximising score_fn(y, s >= t)."""
    best_t, best_v = None, -1.0
    for t in np.unique(s)[::-1]:
        v = score_fn(y, s >= t)
        if v > best_v:
            best_t, best_v = t, v
    return best_t, best_v


def load(cur, name, spec):
    """Creates table `name` (features float8, y text, is_test boolean) from a data set."""
    path, delim, header, feats, ycol, rng_seed = spec
    f = gzip.open(os.path.join(DATA, path), "rt")
    r = csv.reader(f, delimiter=delim)
    if header:
        head = next(r)
        ix = [head.index(c) for c in feats]
        yi = head.index(ycol)
    else:
        ix, yi = feats, ycol
    rows = [[row[i] for i in ix] + [row[yi]] for row in r if row]
    rng = np.random.RandomState(rng_seed)
    test = rng.rand(len(rows)) < 0.25
    cols = ["f%d" % j for j in range(len(ix))]
    cur.execute("CREATE TABLE %s (id serial, %s, y text, is_test boolean)"
                % (name, ", ".join(c + " float8" for c in cols)))
    copy_rows(cur, name, cols + ["y", "is_test"], [r + [bool(t)] for r, t in zip(rows, test)])
    return cols


def scored(cur, model, table, cols, where="true"):
    feat = "ARRAY[%s]" % ", ".join(cols)
    cur.execute("SELECT y, mlpipe.predict_label(%%s, %s), (mlpipe.predict_proba(%%s, %s))[2] "
                "FROM %s WHERE %s ORDER BY id" % (feat, feat, table, where), (model, model))
    got = cur.fetchall()
    return (np.array([g[0] for g in got]), np.array([g[1] for g in got]),
            np.array([g[2] for g in got], dtype=float))


conn = psycopg2.connect("")
conn.autocommit = True
cur = conn.cursor()
cur.execute("SET client_min_messages = warning")
cur.execute("DROP SCHEMA IF EXISTS peer_imb CASCADE")
cur.execute("CREATE SCHEMA peer_imb")
cur.execute("SET search_path = peer_imb, public")
cur.execute("SET mlpipe.progress = off")
cur.execute("SELECT mlpipe.drop_model(name) FROM mlpipe.models WHERE name LIKE 'peer\\_imb\\_%'")

SETS = {
    "bank": (("uci_bank_marketing/bank-additional-full.csv.gz", ";", True,
              ["age", "campaign", "pdays", "previous", "emp.var.rate", "cons.price.idx",
               "cons.conf.idx", "euribor3m", "nr.employed"], "y", 14), "yes", "gbt",
             '{"n_estimators": 30, "max_depth": 4, "split": "column:is_test"}'),
    "magic": (("uci_magic_gamma/magic04.data.gz", ",", False, list(range(10)), 10, 15), "h",
              "random_forest", '{"n_estimators": 15, "max_depth": 8, "split": "column:is_test"}'),
}

try:
    for name, (spec, pos, algo, params) in SETS.items():
        cols = load(cur, name, spec)
        model = "peer_imb_" + name
        cur.execute("SELECT metrics FROM mlpipe.train(%s, %s, %s, 'y', %s, %s)",
                    (model, algo, name, cols, params))
        met = cur.fetchone()[0]
        y, p, s = scored(cur, model, name, cols)
        yb = y == pos

        # aggregates over every row
        cur.execute("SELECT mlpipe.precision(y, p, %s), mlpipe.recall(y, p, %s), mlpipe.f1(y, p, %s), "
                    "mlpipe.average_precision(y = %s, s) FROM unnest(%s::text[], %s::text[], %s::float8[]) u(y, p, s)",
                    (pos, pos, pos, pos, list(y), list(p), list(s)))
        a = cur.fetchone()
        close(a[0], skm.precision_score(y, p, pos_label=pos), "%s precision(y, p, %r)" % (name, pos))
        close(a[1], skm.recall_score(y, p, pos_label=pos), "%s recall" % name)
        close(a[2], skm.f1_score(y, p, pos_label=pos), "%s f1" % name)
        close(a[3], skm.average_precision_score(yb, s), "%s average_precision" % name)

        # curves, point by point
        for drop in (True, False):
            cur.execute("SELECT threshold, fpr, tpr FROM mlpipe.roc_curve(%s::boolean[], %s::float8[], %s)",
                        (list(map(bool, yb)), list(s), drop))
            pts = np.array(cur.fetchall(), dtype=float)
            fpr, tpr, thr = skm.roc_curve(yb, s, drop_intermediate=drop)
            arrays_close(pts[:, 1], fpr, "%s roc_curve fpr (drop_intermediate %s)" % (name, drop))
            arrays_close(pts[:, 2], tpr, "%s roc_curve tpr (drop_intermediate %s)" % (name, drop))
            arrays_close(pts[:, 0], thr, "%s roc_curve thresholds (drop_intermediate %s)" % (name, drop))
        cur.execute("SELECT threshold, precision, recall FROM mlpipe.pr_curve(%s::boolean[], %s::float8[])",
                    (list(map(bool, yb)), list(s)))
        pts = cur.fetchall()
        prec, rec, thr = skm.precision_recall_curve(yb, s)
        arrays_close([r[1] for r in pts], prec, "%s pr_curve precision" % name)
        arrays_close([r[2] for r in pts], rec, "%s pr_curve recall" % name)
        arrays_close([r[0] for r in pts[:-1]], thr, "%s pr_curve thresholds" % name)
        check(pts[-1][0] is None, "%s pr_curve's last point has no threshold" % name)

        # stored test-split metrics
        yt, pt, st = scored(cur, model, name, cols, "is_test")
        close(met["precision"], skm.precision_score(yt, pt, pos_label=pos), "%s stored precision" % name)
        close(met["recall"], skm.recall_score(yt, pt, pos_label=pos), "%s stored recall" % name)
        close(met["f1"], skm.f1_score(yt, pt, pos_label=pos), "%s stored f1" % name)
        close(met["average_precision"], skm.average_precision_score(yt == pos, st),
              "%s stored average_precision" % name)

        # params.threshold = 'f1': the best F1 threshold of the test split
        cur.execute("SELECT metrics FROM mlpipe.train(%s, %s, %s, 'y', %s, %s)",
                    (model, algo, name, cols, params[:-1] + ', "threshold": "f1"}'))
        met2 = cur.fetchone()[0]
        t, best = best_threshold(yt == pos, st, lambda yy, pp: skm.f1_score(yy, pp))
        close(met2["threshold"], t, "%s threshold 'f1'" % name)
        close(met2["f1"], best, "%s f1 at the tuned threshold (untuned %.4f)" % (name, met["f1"]))
        y2, p2, s2 = scored(cur, model + "@2", name, cols)
        check(np.array_equal(s2, s), "%s: the threshold leaves predict_proba unchanged" % name)
        check(np.array_equal(p2 == pos, s >= met2["threshold"]),
              "%s: predict_label = predict_proba >= threshold on %d rows" % (name, len(s)))

        # tune_threshold: a new version, balanced accuracy maximised
        cur.execute("SELECT version, metrics FROM mlpipe.tune_threshold(%s, 'recall_macro')", (model + "@1",))
        v3, met3 = cur.fetchone()
        t3, best3 = best_threshold(yt == pos, st, skm.balanced_accuracy_score)
        close(met3["threshold"], t3, "%s tune_threshold recall_macro: version %d threshold" % (name, v3))
        close(met3["recall_macro"], best3, "%s recall_macro at it (untuned %.4f)" % (name, met["recall_macro"]))
        close(met3["roc_auc"], met["roc_auc"], "%s tune_threshold retrains the same model (roc_auc)" % name)

        # calibration of the test split's raw scores
        ytb = (yt == pos).astype(int)
        cur.execute("SELECT mlpipe.calibration(%s::boolean[], %s::float8[], 'isotonic'), "
                    "mlpipe.calibration(%s::boolean[], %s::float8[], 'platt')",
                    (list(map(bool, ytb)), list(st), list(map(bool, ytb)), list(st)))
        iso, platt = cur.fetchone()
        ir = IsotonicRegression(out_of_bounds="clip").fit(st, ytb)
        arrays_close(iso["x"], ir.X_thresholds_, "%s isotonic knots x" % name)
        arrays_close(iso["y"], ir.y_thresholds_, "%s isotonic knots y" % name)
        idx = np.arange(len(st))
        cc = CalibratedClassifierCV(Scores(st), cv="prefit", method="isotonic").fit(idx, ytb)
        arrays_close(np.interp(st, iso["x"], iso["y"]), cc.predict_proba(idx)[:, 1],
                     "%s isotonic vs CalibratedClassifierCV(cv='prefit') probabilities" % name)
        ab = platt_tight(st, ytb)
        close(platt["a"], ab[0], "%s Platt a (tight optimum)" % name, 1e-7)
        close(platt["b"], ab[1], "%s Platt b (tight optimum)" % name, 1e-7)
        a_sk, b_sk = _sigmoid_calibration(st, ytb)
        close(platt["a"], a_sk, "%s Platt a vs scikit-learn's BFGS (gtol 1e-5)" % name, 1e-3)
        cs = CalibratedClassifierCV(Scores(st), cv="prefit", method="sigmoid").fit(idx, ytb)
        pm = 1 / (1 + np.exp(platt["a"] * st + platt["b"]))
        arrays_close(pm, cs.predict_proba(idx)[:, 1],
                     "%s Platt vs CalibratedClassifierCV(cv='prefit', sigmoid) probabilities" % name, 1e-5)

        # params.calibrate: predict_proba = stored calibration of the raw model's probability
        for method in ("isotonic", "platt"):
            m = "%s_%s" % (model, method)
            cur.execute("SELECT lineage->>'calibration_rows', training_rows FROM mlpipe.train(%s, %s, %s, 'y', %s, %s) t "
                        "JOIN mlpipe.model_versions v USING (model, version)",
                        (m, algo, name, cols, params[:-1] + ', "calibrate": "%s"}' % method))
            cur.execute("SELECT mlpipe.artifact(%s), mlpipe.export(%s)->'decision'->'calibration', "
                        "lineage->>'calibration_rows', training_rows FROM mlpipe.model_versions WHERE model = %s",
                        (m, m, m))
            art, cal, ncal, ntrain = cur.fetchone()
            raw = without_decision(bytes(art))
            feat = "ARRAY[%s]" % ", ".join(cols)
            cur.execute("SELECT (mlpipe.predict_proba(%%s::bytea, %s))[2], (mlpipe.predict_proba(%%s, %s))[2] "
                        "FROM %s ORDER BY id" % (feat, feat, name), (psycopg2.Binary(raw), m))
            got = np.array(cur.fetchall(), dtype=float)
            want = (np.interp(got[:, 0], cal["x"], cal["y"]) if method == "isotonic"
                    else 1 / (1 + np.exp(cal["a"] * got[:, 0] + cal["b"])))
            arrays_close(got[:, 1], want, "%s calibrate=%s: predict_proba is the calibrated raw probability"
                         % (name, method), 1e-12)
            cur.execute("SELECT count(*) FROM %s WHERE NOT is_test" % name)
            n_train_rows = cur.fetchone()[0]
            check(int(ncal) + ntrain == n_train_rows and abs(int(ncal) - 0.2 * n_train_rows) <= 2,
                  "%s calibrate=%s: %s of %d training rows held out" % (name, method, ncal, n_train_rows))
except Exception as e:  # a crash is a failure, not a silent pass
    import traceback
    traceback.print_exc()
    check(False, "peer script raised %s: %s" % (type(e).__name__, e))
finally:
    cur.execute("SET client_min_messages = warning")
    cur.execute("DROP SCHEMA IF EXISTS peer_imb CASCADE")
    cur.execute("SELECT mlpipe.drop_model(name) FROM mlpipe.models WHERE name LIKE 'peer\\_imb\\_%'")
    conn.close()

print("# %d failed" % failures)
sys.exit(1 if failures else 0)
