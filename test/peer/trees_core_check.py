#!/usr/bin/python3
"""trees_core_check.py: the tree engine (test/core/trees_cli) against
scikit-learn 1.2 and XGBoost 1.7 on the same rows, split and params.

Run with Debian's python (it has sklearn and xgboost):
    /usr/bin/python3 test/peer/trees_core_check.py [--bench] [--keep] [name ...]
names: adult bank kdd magic solar milk (default: all); --bench adds the
1M x 28 make_classification speed check (takes a few minutes).
Prints one PASS/FAIL line per check with the figures; exits 1 on a FAIL.
"""
import csv
import gzip
import io
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import xgboost as xgb
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score
from sklearn.tree import DecisionTreeClassifier

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.abspath(os.path.join(ROOT, "..", "shared", "data"))
if not os.path.isdir(DATA):
    DATA = "/work/shared/data"
FLAGS = ("-std=gnu99 -Wall -Wmissing-prototypes -Wpointer-arith -Wdeclaration-after-statement "
         "-Werror=vla -Wendif-labels -Wmissing-format-attribute -Wimplicit-fallthrough=3 "
         "-Wformat-security -fno-strict-aliasing -fwrapv -fexcess-precision=standard -O3 "
         "-Wextra -Werror -Wno-unused-parameter -Wno-sign-compare "
         "-Wno-missing-field-initializers -fPIC").split()
CORE = ["mlcore", "mlbuf", "artifact", "binning", "gbt", "tree", "forest", "tree_model",
        "tree_predict", "tree_codec"]
failures = 0


def report(ok, what, figures):
    global failures
    if not ok:
        failures += 1
    print(("PASS" if ok else "FAIL") + " " + what + ": " + figures, flush=True)


def build(tmp):
    exe = os.path.join(tmp, "trees_cli")
    srcs = [os.path.join(ROOT, "src/core", c + ".c") for c in CORE]
    subprocess.run(["gcc"] + FLAGS + ["-I" + os.path.join(ROOT, "src/core")] + srcs +
                   [os.path.join(ROOT, "test/core/trees_cli.c"), "-o", exe, "-lm", "-lpthread"],
                   check=True)
    return exe


def num(s):
    s = s.strip().strip('"')
    if s in ("", "?", "nan", "NA"):
        return np.nan
    return float(s)


def write_csv(path, X, y, names):
    with open(path, "w") as f:
        f.write(",".join(names + ["target"]) + "\n")
        for row, t in zip(X, y):
            f.write(",".join("" if np.isnan(v) else repr(float(v)) for v in row))
            f.write("," + repr(float(t)) + "\n")


def split(n, seed=42, test=0.2):
    perm = np.random.RandomState(seed).permutation(n)
    k = int(round(n * (1 - test)))
    return perm[:k], perm[k:]


# ---- data sets (numeric columns only) ----

def load_adult():
    num_cols = [0, 2, 4, 10, 11, 12]
    names = ["age", "fnlwgt", "education_num", "capital_gain", "capital_loss", "hours_per_week"]

    def read(fn, skip):
        X, y = [], []
        with gzip.open(os.path.join(DATA, "uci_adult", fn), "rt") as f:
            for i, line in enumerate(f):
                if i < skip or not line.strip():
                    continue
                p = [s.strip() for s in line.split(",")]
                if len(p) < 15:
                    continue
                X.append([num(p[c]) for c in num_cols])
                y.append(1 if p[14].rstrip(".") == ">50K" else 0)
        return np.array(X), np.array(y)
    Xtr, ytr = read("adult.data.gz", 0)
    Xte, yte = read("adult.test.gz", 1)
    return Xtr, ytr, Xte, yte, names, 2


def load_bank():
    with gzip.open(os.path.join(DATA, "uci_bank_marketing", "bank-additional-full.csv.gz"), "rt") as f:
        rows = list(csv.reader(f, delimiter=";"))
    hdr = rows[0]
    cols = ["age", "duration", "campaign", "pdays", "previous", "emp.var.rate",
            "cons.price.idx", "cons.conf.idx", "euribor3m", "nr.employed"]
    idx = [hdr.index(c) for c in cols]
    yi = hdr.index("y")
    X = np.array([[num(r[i]) for i in idx] for r in rows[1:]])
    y = np.array([1 if r[yi] == "yes" else 0 for r in rows[1:]])
    tr, te = split(len(y))
    return X[tr], y[tr], X[te], y[te], [c.replace(".", "_") for c in cols], 2


def load_kdd():
    X, labels = [], []
    with gzip.open(os.path.join(DATA, "kddcup99_10pct", "kddcup.data_10_percent.gz"), "rt") as f:
        for line in f:
            p = line.strip().split(",")
            if len(p) < 42:
                continue
            X.append([float(v) for i, v in enumerate(p[:41]) if i not in (1, 2, 3)])
            labels.append(p[41])
    classes = sorted(set(labels))
    cmap = {c: i for i, c in enumerate(classes)}
    X = np.array(X)
    y = np.array([cmap[c] for c in labels])
    tr, te = split(len(y))
    return X[tr], y[tr], X[te], y[te], ["f%d" % i for i in range(X.shape[1])], len(classes)


def load_magic():
    X, y = [], []
    with gzip.open(os.path.join(DATA, "uci_magic_gamma", "magic04.data.gz"), "rt") as f:
        for line in f:
            p = line.strip().split(",")
            if len(p) < 11:
                continue
            X.append([float(v) for v in p[:10]])
            y.append(1 if p[10] == "g" else 0)
    X, y = np.array(X), np.array(y)
    tr, te = split(len(y))
    return X[tr], y[tr], X[te], y[te], ["f%d" % i for i in range(10)], 2


def load_solar():
    """Plant 1 generation joined with its weather sensor on DATE_TIME; target DC_POWER."""
    weather = {}
    with open(os.path.join(DATA, "solar_power_generation", "Plant_1_Weather_Sensor_Data.csv")) as f:
        r = csv.DictReader(f)
        for row in r:
            key = row["DATE_TIME"][:16]          # yyyy-mm-dd HH:MM
            weather[key] = (float(row["AMBIENT_TEMPERATURE"]), float(row["MODULE_TEMPERATURE"]),
                            float(row["IRRADIATION"]))
    X, y, keys = [], [], {}
    with gzip.open(os.path.join(DATA, "solar_power_generation", "Plant_1_Generation_Data.csv.gz"), "rt") as f:
        r = csv.DictReader(f)
        for row in r:
            dt = row["DATE_TIME"]                # dd-mm-yyyy HH:MM
            key = "%s-%s-%s %s" % (dt[6:10], dt[3:5], dt[0:2], dt[11:16])
            w = weather.get(key)
            if w is None:
                continue
            inv = keys.setdefault(row["SOURCE_KEY"], len(keys))
            hour = int(dt[11:13]) + int(dt[14:16]) / 60.0
            day = int(dt[0:2]) + 31 * (int(dt[3:5]) - 5)
            X.append([w[0], w[1], w[2], hour, day, inv])
            y.append(float(row["DC_POWER"]))
    X, y = np.array(X), np.array(y)
    tr, te = split(len(y))
    return X[tr], y[tr], X[te], y[te], ["ambient", "module", "irradiation", "hour", "day", "inverter"], 0


def load_milk():
    with open(os.path.join(DATA, "milk_price_ch", "milk_price_ch_monthly.csv"), encoding="utf-8") as f:
        rows = list(csv.reader(f))
    hdr = rows[0]
    ti = hdr.index("CH_Milchpreis")

    def numeric(i):
        for r in rows[1:]:
            try:
                num(r[i])
            except ValueError:
                return False
        return True
    keep = [i for i, h in enumerate(hdr) if h not in ("Date", "CH_Milchpreis") and numeric(i)]
    X = np.array([[num(r[i]) for i in keep] for r in rows[1:]])
    y = np.array([float(r[ti]) for r in rows[1:]])
    tr, te = split(len(y))
    return X[tr], y[tr], X[te], y[te], ["c%d" % i for i in keep], 0


LOADERS = {"adult": load_adult, "bank": load_bank, "kdd": load_kdd, "magic": load_magic,
           "solar": load_solar, "milk": load_milk}


def run_cli(exe, tmp, name, args):
    out = os.path.join(tmp, name + ".pred")
    cmd = [exe, os.path.join(tmp, name + "_train.csv"), os.path.join(tmp, name + "_test.csv"),
           "target=target", "out=" + out] + args
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError("trees_cli failed: %s\n%s" % (" ".join(cmd), res.stderr))
    figs = {}
    for tok in res.stdout.split():
        if "=" in tok:
            k, v = tok.split("=", 1)
            figs[k] = v
    pred = np.loadtxt(out, ndmin=2)
    return pred, figs, res.stdout


def check_proba(name, algo, pred, k):
    cls = pred[:, 0].astype(int)
    P = pred[:, 1:1 + k]
    sums_ok = np.all(np.abs(P.sum(axis=1) - 1) < 1e-6)
    arg_ok = np.all(np.argmax(P, axis=1) == cls)
    report(sums_ok and arg_ok, "%s %s predict_proba" % (name, algo),
           "max |sum-1|=%.2e argmax==class %s" % (np.abs(P.sum(axis=1) - 1).max(), arg_ok))


def classification(exe, tmp, name, Xtr, ytr, Xte, yte, k):
    # gbt vs XGBoost hist
    obj = "binary:logistic" if k == 2 else "multi:softprob"
    params = dict(objective=obj, tree_method="hist", max_depth=6, eta=0.1, max_bin=256, nthread=2,
                  seed=0)
    if k > 2:
        params["num_class"] = k
    t = time.time()
    bst = xgb.train(params, xgb.DMatrix(Xtr, label=ytr), 100)
    t_x = time.time() - t
    px = bst.predict(xgb.DMatrix(Xte))
    acc_x = ((px > 0.5).astype(int) == yte).mean() if k == 2 else (px.argmax(1) == yte).mean()
    pred, figs, _ = run_cli(exe, tmp, name, ["algorithm=gbt", "max_depth=6", "n_estimators=100",
                                            "learning_rate=0.1", "max_bins=256", "threads=2"])
    acc = (pred[:, 0].astype(int) == yte).mean()
    extra = ""
    if k == 2:
        extra = " auc %.4f vs %.4f" % (roc_auc_score(yte, pred[:, 2]), roc_auc_score(yte, px))
    report(acc >= acc_x - 0.01, "%s gbt accuracy" % name,
           "mlpipe %.4f xgboost %.4f (target >= xgb-0.01)%s; fit %ss vs xgb %.2fs"
           % (acc, acc_x, extra, figs.get("fit_s"), t_x))
    check_proba(name, "gbt", pred, k)
    report(figs.get("roundtrip") == "identical", "%s gbt artifact round trip" % name,
           "%s bytes, %s" % (figs.get("artifact_bytes"), figs.get("roundtrip")))

    # random forest vs scikit-learn
    n_est = 50 if len(ytr) > 100000 else 100
    t = time.time()
    rf = RandomForestClassifier(n_estimators=n_est, max_features="sqrt", random_state=0, n_jobs=2,
                                oob_score=True).fit(Xtr, ytr)
    t_s = time.time() - t
    acc_s = (rf.predict(Xte) == yte).mean()
    pred, figs, _ = run_cli(exe, tmp, name, ["algorithm=random_forest", "n_estimators=%d" % n_est,
                                            "max_features=sqrt", "threads=2", "seed=1"])
    acc = (pred[:, 0].astype(int) == yte).mean()
    report(acc >= acc_s - 0.015, "%s random_forest accuracy" % name,
           "mlpipe %.4f sklearn %.4f (target >= sk-0.015); oob %s vs %.4f; fit %ss vs sk %.2fs"
           % (acc, acc_s, figs.get("oob_score"), rf.oob_score_, figs.get("fit_s"), t_s))
    check_proba(name, "random_forest", pred, k)

    # decision tree vs scikit-learn
    for depth in (5, 10):
        dt = DecisionTreeClassifier(max_depth=depth, random_state=0).fit(Xtr, ytr)
        acc_s = (dt.predict(Xte) == yte).mean()
        pred, figs, _ = run_cli(exe, tmp, name, ["algorithm=decision_tree", "max_depth=%d" % depth])
        acc = (pred[:, 0].astype(int) == yte).mean()
        report(acc >= acc_s - 0.01, "%s decision_tree depth %d accuracy" % (name, depth),
               "mlpipe %.4f sklearn %.4f (target >= sk-0.01)" % (acc, acc_s))
    check_proba(name, "decision_tree", pred, k)


def regression(exe, tmp, name, Xtr, ytr, Xte, yte):
    params = dict(objective="reg:squarederror", tree_method="hist", max_depth=6, eta=0.1,
                  max_bin=256, nthread=2, seed=0)
    bst = xgb.train(params, xgb.DMatrix(Xtr, label=ytr), 100)
    px = bst.predict(xgb.DMatrix(Xte))
    rmse_x = float(np.sqrt(np.mean((px - yte) ** 2)))
    pred, figs, _ = run_cli(exe, tmp, name, ["algorithm=gbt", "task=regress", "max_depth=6",
                                            "n_estimators=100", "learning_rate=0.1", "threads=2"])
    rmse = float(np.sqrt(np.mean((pred[:, 0] - yte) ** 2)))
    report(rmse <= 1.05 * rmse_x, "%s gbt regression rmse" % name,
           "mlpipe %.4f xgboost %.4f (target <= 1.05x)" % (rmse, rmse_x))
    report(figs.get("roundtrip") == "identical", "%s gbt regression artifact round trip" % name,
           "%s" % figs.get("roundtrip"))
    pred, figs, _ = run_cli(exe, tmp, name, ["algorithm=random_forest", "task=regress",
                                            "n_estimators=100", "threads=2"])
    rmse_rf = float(np.sqrt(np.mean((pred[:, 0] - yte) ** 2)))
    report(np.isfinite(rmse_rf), "%s random_forest regression" % name,
           "rmse %.4f oob R2 %s" % (rmse_rf, figs.get("oob_score")))


def bench(exe, tmp):
    from sklearn.datasets import make_classification
    X, y = make_classification(n_samples=1000000, n_features=28, n_informative=14, n_redundant=6,
                               random_state=7)
    Xtr, ytr, Xte, yte = X[:800000], y[:800000], X[800000:], y[800000:]
    names = ["f%d" % i for i in range(28)]
    # Scoring is timed on 1,000,000 rows: the test rows five times over.
    Xsc = np.vstack([Xte] * 5)
    ysc = np.concatenate([yte] * 5)
    np.savetxt(os.path.join(tmp, "big_train.csv"), np.column_stack([Xtr, ytr]), delimiter=",",
               header=",".join(names + ["target"]), comments="", fmt="%.9g")
    np.savetxt(os.path.join(tmp, "big_test.csv"), np.column_stack([Xsc, ysc]), delimiter=",",
               header=",".join(names + ["target"]), comments="", fmt="%.9g")
    # XGBoost gets the very numbers trees_cli reads (printed with 9 digits).
    tr = np.loadtxt(os.path.join(tmp, "big_train.csv"), delimiter=",", skiprows=1)
    Xsc = np.loadtxt(os.path.join(tmp, "big_test.csv"), delimiter=",", skiprows=1)[:, :-1]
    Xtr, ytr = tr[:, :-1], tr[:, -1]
    params = dict(objective="binary:logistic", tree_method="hist", max_depth=6, eta=0.1,
                  max_bin=256, nthread=1, seed=0)
    # The machine may be shared: every figure is the best of a few runs.
    t = time.time()
    dtr = xgb.DMatrix(Xtr, label=ytr, nthread=1)
    t_dm = time.time() - t
    t_train = 1e30
    for _ in range(2):
        t = time.time()
        bst = xgb.train(params, dtr, 100)
        t_train = min(t_train, time.time() - t)
    t_pred = 1e30
    for _ in range(3):
        dsc = xgb.DMatrix(Xsc, nthread=1)   # a fresh DMatrix: predict() caches per matrix
        t = time.time()
        px = bst.predict(dsc)
        t_pred = min(t_pred, time.time() - t)
    auc_x = roc_auc_score(ysc, px)
    print("xgboost nthread=1: DMatrix %.2fs train %.2fs predict(1M) %.2fs auc %.5f"
          % (t_dm, t_train, t_pred, auc_x), flush=True)
    for th in (1, 2):
        best = None
        for _ in range(2):
            _, figs, out = run_cli(exe, tmp, "big", ["algorithm=gbt", "max_depth=6", "n_estimators=100",
                                                    "learning_rate=0.1", "max_bins=256", "repeat=3",
                                                    "threads=%d" % th])
            tot = float(figs["bin_s"]) + float(figs["fit_s"])
            if best is None or tot < best[0]:
                best = (tot, figs)
        fit, figs = best
        pr = float(figs["predict_batch_s"])
        auc = float(figs["test_auc"])
        print("mlpipe threads=%d: bin %ss fit %ss (cpu %ss) predict(1M) batch %ss row-at-a-time %ss "
              "(%s us/row) core peak %s MB beside binned %s MB, auc %.5f"
              % (th, figs["bin_s"], figs["fit_s"], figs["fit_cpu_s"], figs["predict_batch_s"],
                 figs["predict_row_s"], figs["us_per_row"], figs["fit_peak_core_mb"],
                 figs["binned_mb"], auc), flush=True)
        report(fit <= 0.6 * t_train, "bench train threads=%d" % th,
               "bin+fit %.2fs = %.2fx xgboost train %.2fs (target <= 0.6x)" % (fit, fit / t_train, t_train))
        report(pr <= 0.5 * t_pred, "bench predict 1M rows threads=%d" % th,
               "%.3fs = %.2fx xgboost %.3fs (target <= 0.5x)" % (pr, pr / t_pred, t_pred))
        if th == 1:
            report(auc >= auc_x - 0.003, "bench auc", "mlpipe %.5f xgboost %.5f" % (auc, auc_x))
            report(float(figs["fit_peak_core_mb"]) <= float(figs["binned_mb"]) + 1.0,
                   "bench memory", "core working set %s MB <= binned matrix %s MB (+ model)"
                   % (figs["fit_peak_core_mb"], figs["binned_mb"]))


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    names = args or ["adult", "bank", "magic", "kdd", "solar", "milk"]
    tmp = tempfile.mkdtemp(prefix="trees_check_")
    exe = build(tmp)
    for name in names:
        Xtr, ytr, Xte, yte, cols, k = LOADERS[name]()
        print("# %s: %d train / %d test rows, %d features, %s" %
              (name, len(ytr), len(yte), Xtr.shape[1], "%d classes" % k if k else "regression"),
              flush=True)
        write_csv(os.path.join(tmp, name + "_train.csv"), Xtr, ytr, cols)
        write_csv(os.path.join(tmp, name + "_test.csv"), Xte, yte, cols)
        if k:
            classification(exe, tmp, name, Xtr, ytr, Xte, yte, k)
        else:
            regression(exe, tmp, name, Xtr, ytr, Xte, yte)
    if "--bench" in sys.argv:
        bench(exe, tmp)
    if "--keep" not in sys.argv:
        subprocess.run(["rm", "-rf", tmp])
    else:
        print("# kept", tmp)
    print("# %d failure(s)" % failures)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
