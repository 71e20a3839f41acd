#!/usr/bin/python3
"""test_xgb_import_shap.py: XGBoost models imported into the core
(src/core/xgb_import.c) score like XGBoost, and TreeSHAP
(src/core/treeshap.c) on them equals XGBoost's pred_contribs=True.

Run with Debian's python (XGBoost 1.7.4):
    MLPIPE_DATA=/work/shared/data /usr/bin/python3 test/peer/test_xgb_import_shap.py [--bench | --bench-only]

Real data: UCI MAGIC gamma telescope (binary: gamma vs hadron; regression:
fConc from the other nine columns) and UCI bank marketing (multi-class:
marital status from the ten numeric columns, multi:softprob and
multi:softmax). One value in 20 of one column is blanked (NaN) in the
MAGIC rows so that XGBoost's default directions are exercised. Each model
is saved with Booster.save_model('m.json'), imported by test/core/explain_cli
(which also round-trips it through the artifact codec) and compared on
every row: predictions within 1e-6, contributions within 1e-6. XGBoost
computes in float32 and mlpipe in double, so differences of ~1e-7 per value
are XGBoost's rounding; the contribution check is 1e-6 absolute for values
up to 1 and 1e-6 relative above (both maxima are printed). --bench times
explaining 100,000 rows with a 100-tree depth-6 binary model against
pred_contribs with nthread=1 (CPU seconds, both single-threaded).
Prints one PASS/FAIL line per check; exits 1 on a FAIL.
"""
import gzip
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import xgboost as xgb

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.environ.get("MLPIPE_DATA", "/work/shared/data")
FLAGS = ("-std=gnu99 -O3 -Wall -Wextra -Werror -Wno-unused-parameter -Wno-sign-compare "
         "-Wno-missing-field-initializers").split()
failures = 0


def report(ok, what, figures):
    global failures
    if not ok:
        failures += 1
    print(("PASS" if ok else "FAIL") + " " + what + ": " + figures, flush=True)


def build(tmp):
    exe = os.path.join(tmp, "explain_cli")
    core = sorted(os.path.join(ROOT, "src/core", f) for f in os.listdir(os.path.join(ROOT, "src/core"))
                  if f.endswith(".c"))
    subprocess.run(["gcc"] + FLAGS + ["-I" + os.path.join(ROOT, "src/core")] + core +
                   [os.path.join(ROOT, "test/core/explain_cli.c"), "-o", exe,
                    "-lm", "-lpthread", "-lcjson"], check=True)
    return exe


def magic():
    path = os.path.join(DATA, "uci_magic_gamma", "magic04.data.gz")
    rows = [line.strip().split(",") for line in gzip.open(path, "rt") if line.strip()]
    X = np.array([[float(v) for v in r[:10]] for r in rows])
    y = np.array([1 if r[10] == "g" else 0 for r in rows])
    return X, y


def bank():
    path = os.path.join(DATA, "uci_bank_marketing", "bank-additional-full.csv.gz")
    lines = gzip.open(path, "rt").read().splitlines()
    head = [h.strip('"') for h in lines[0].split(";")]
    cols = ["age", "duration", "campaign", "pdays", "previous", "emp.var.rate",
            "cons.price.idx", "cons.conf.idx", "euribor3m", "nr.employed"]
    idx = [head.index(c) for c in cols]
    mi = head.index("marital")
    rows = [line.split(";") for line in lines[1:]]
    X = np.array([[float(r[i].strip('"')) for i in idx] for r in rows])
    labels = sorted({r[mi].strip('"') for r in rows})
    y = np.array([labels.index(r[mi].strip('"')) for r in rows])
    return X, y, labels


def run_cli(exe, tmp, model, X, timing=False):
    rows = os.path.join(tmp, "rows.csv")
    np.savetxt(rows, X, delimiter=",", fmt="%.17g")
    out = os.path.join(tmp, "out")
    args = ["-time", "1"] if timing else [out]
    res = subprocess.run([exe, model, rows] + args, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError("explain_cli failed: " + res.stderr)
    return res.stdout, out


def compare(exe, tmp, name, params, X, y, rounds):
    dtrain = xgb.DMatrix(X, label=y, nthread=1)
    booster = xgb.train(dict(params, nthread=1), dtrain, rounds)
    model = os.path.join(tmp, name + ".json")
    booster.save_model(model)
    stdout, out = run_cli(exe, tmp, model, X)
    add = float(stdout.split("max_additivity_error")[1].split()[0])
    pred = np.loadtxt(out + ".pred", ndmin=2)
    phi = np.loadtxt(out + ".phi", ndmin=2)
    dm = xgb.DMatrix(X, nthread=1)
    obj = params["objective"]
    if obj == "multi:softmax":
        # predict gives labels; compare probabilities via softprob's output_margin
        margin = booster.predict(dm, output_margin=True)
        e = np.exp(margin - margin.max(axis=1, keepdims=True))
        px = e / e.sum(axis=1, keepdims=True)
        labels = booster.predict(dm)
        report(np.array_equal(pred.argmax(axis=1), labels.astype(int)), name + " labels",
               "%d rows, argmax of the probabilities == XGBoost's class" % len(X))
    else:
        px = booster.predict(dm)
    mine = pred[:, 1] if obj == "binary:logistic" else (pred[:, 0] if pred.shape[1] == 1 else pred)
    dp = np.abs(mine - px).max()
    report(dp <= 1e-6, name + " predictions", "%d rows, max |diff| %.3g (limit 1e-6)" % (len(X), dp))
    cx = booster.predict(dm, pred_contribs=True)
    cx = cx.reshape(len(X), -1)
    # XGBoost's own rounding: its contributions against its own margin
    k = cx.shape[1] // (X.shape[1] + 1)
    xm = booster.predict(dm, output_margin=True).reshape(len(X), k)
    xadd = np.abs(cx.reshape(len(X), k, -1).sum(axis=2) - xm).max()
    diff = np.abs(phi - cx)
    dabs = diff.max()
    drel = (diff / np.maximum(1.0, np.abs(cx))).max()
    report(drel <= 1e-6 and add <= 1e-9, name + " contributions",
           "%d rows x %d, max |diff| %.3g, max |diff|/max(1,|v|) %.3g (limit 1e-6); "
           "additivity %.3g (limit 1e-9; XGBoost's own %.3g)"
           % (len(X), cx.shape[1], dabs, drel, add, xadd))
    return booster, model


def bench(exe, tmp, X, y):
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 6, "nthread": 1},
                        xgb.DMatrix(X, label=y, nthread=1), 100)
    model = os.path.join(tmp, "bench.json")
    booster.save_model(model)
    Xb = np.tile(X, (int(np.ceil(100000 / len(X))), 1))[:100000]
    stdout, _ = run_cli(exe, tmp, model, Xb, timing=True)
    mine = float(stdout.split("cpu_seconds")[1].split()[0])
    dm = xgb.DMatrix(Xb, nthread=1)
    booster.set_param({"nthread": 1})
    t0 = time.process_time()
    booster.predict(dm, pred_contribs=True)
    theirs = time.process_time() - t0
    report(mine <= theirs, "TreeSHAP speed, 100,000 rows x 100 trees depth 6",
           "mlpipe %.2f s, XGBoost pred_contribs nthread=1 %.2f s (CPU), ratio %.2f"
           % (mine, theirs, mine / theirs))


def main():
    with tempfile.TemporaryDirectory() as tmp:
        exe = build(tmp)
        X, y = magic()
        if "--bench-only" in sys.argv:
            bench(exe, tmp, X, y)
            sys.exit(1 if failures else 0)
        Xn = X.copy()
        Xn[::20, 2] = np.nan
        compare(exe, tmp, "magic binary:logistic", {"objective": "binary:logistic", "max_depth": 6,
                                                    "eta": 0.3}, Xn, y, 50)
        cols = [0, 1, 2, 4, 5, 6, 7, 8, 9]
        compare(exe, tmp, "magic reg:squarederror (fConc)",
                {"objective": "reg:squarederror", "max_depth": 5, "eta": 0.2}, Xn[:, cols], X[:, 3], 50)
        Xb, yb, labels = bank()
        for obj in ("multi:softprob", "multi:softmax"):
            compare(exe, tmp, "bank %s (marital, %d classes)" % (obj, len(labels)),
                    {"objective": obj, "num_class": len(labels), "max_depth": 4, "eta": 0.3},
                    Xb, yb, 30)
        if "--bench" in sys.argv or "--bench-only" in sys.argv:
            bench(exe, tmp, X, y)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
