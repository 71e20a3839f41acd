#!/usr/bin/python3
"""gbt params.warm_start (issue #14) against XGBoost's xgb.train(..., xgb_model=booster).

On real data (MAGIC gamma, binary; solar power, regression), with the
tolerances of test_trees_peers.py's gbt checks (accuracy >= XGBoost's - 0.01,
ROC AUC within 0.01, RMSE <= 1.05 x XGBoost's):
  - 30 rounds, then 20 more on the same rows, against XGBoost's
    xgb.train(params, dtrain, 20, xgb_model=booster30);
  - on the same rows the warm-started artifact is byte-identical to 50 rounds
    at once (sha256), so its predictions are too;
  - 30 rounds on one half of the rows, 20 more on the other half, against
    XGBoost doing the same;
  - n_estimators = 0 keeps the parent's predictions exactly; a warm start
    on 0 rows is refused and registers nothing.
Prints PASS/FAIL lines.
"""
import json
import os
import sys

import numpy as np
import psycopg2
import xgboost as xgb
from sklearn.metrics import roc_auc_score

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_trees_peers as tp  # noqa: E402  (loaders, table loading, scoring)

failures = 0
PARAMS = {"max_depth": 6, "learning_rate": 0.1, "max_bins": 256, "test_size": 0}
XPARAMS = {"tree_method": "hist", "max_depth": 6, "eta": 0.1, "max_bin": 256, "nthread": 2}


def check(ok, what):
    global failures
    print(("PASS " if ok else "FAIL ") + what, flush=True)
    failures += 0 if ok else 1


def train(cur, model, table, names, params):
    cur.execute("SELECT version FROM mlpipe.train(%s, 'gbt', %s, 'target', %s, %s)",
                (model, table, names, json.dumps(dict(PARAMS, **params))))
    return cur.fetchone()[0]


def sha(cur, model, version):
    cur.execute("SELECT sha256 FROM mlpipe.model_versions WHERE model = %s AND version = %s", (model, version))
    return cur.fetchone()[0]


def binary(cur):
    names, Xtr, ytr, Xte, yte = tp.load_magic()
    classes = sorted(set(ytr))
    ytr01 = np.array([classes.index(c) for c in ytr])
    yte01 = np.array([classes.index(c) for c in yte])
    half = np.arange(len(ytr)) % 2 == 0
    tp.load_table(cur, "warm_train", names, Xtr, ytr, False)
    tp.load_table(cur, "warm_a", names, Xtr[half], ytr[half], False)
    tp.load_table(cur, "warm_b", names, Xtr[~half], ytr[~half], False)
    tp.load_table(cur, "warm_test", names, Xte, yte, False)
    print("# magic: %d train rows, %d test rows" % (len(ytr), len(yte)), flush=True)

    def ml_eval(ref):
        lab = np.array(tp.score(cur, ref, "warm_test", names, "predict_label"))
        p = np.array(tp.score(cur, ref, "warm_test", names, "predict_proba"))[:, 1]
        return float(np.mean(lab == yte)), roc_auc_score(yte01, p), p

    def x_eval(bst):
        p = bst.predict(xgb.DMatrix(Xte))
        return float(np.mean((p > 0.5) == yte01)), roc_auc_score(yte01, p)

    xp = dict(XPARAMS, objective="binary:logistic")
    # same rows: 30 + 20
    train(cur, "warm_m", "warm_train", names, {"n_estimators": 30})
    v2 = train(cur, "warm_m", "warm_train", names, {"n_estimators": 20, "warm_start": "warm_m@1"})
    dtr = xgb.DMatrix(Xtr, label=ytr01)
    b30 = xgb.train(xp, dtr, 30)
    b50w = xgb.train(xp, dtr, 20, xgb_model=b30)
    acc_m, auc_m, p_warm = ml_eval("warm_m@%d" % v2)
    acc_x, auc_x = x_eval(b50w)
    check(acc_m >= acc_x - 0.01, "magic 30+20 same rows: accuracy mlpipe %.4f, XGBoost xgb_model %.4f (>= peer - 0.01)"
          % (acc_m, acc_x))
    check(abs(auc_m - auc_x) <= 0.01, "magic 30+20 same rows: ROC AUC mlpipe %.4f, XGBoost %.4f (within 0.01)"
          % (auc_m, auc_x))
    cur.execute("SELECT count(*) FROM mlpipe.model_versions WHERE model = 'warm_m' AND version = %s "
                "AND (lineage->'parent'->>'version')::int = 1 AND (lineage->>'rounds_added')::int = 20", (v2,))
    check(cur.fetchone()[0] == 1, "magic: the lineage records parent version 1 and 20 rounds added")

    # same rows: the same artifact as 50 rounds at once
    train(cur, "warm_m50", "warm_train", names, {"n_estimators": 50})
    _, _, p50 = ml_eval("warm_m50")
    check(sha(cur, "warm_m", v2) == sha(cur, "warm_m50", 1) and np.array_equal(p_warm, p50),
          "magic: 30 + 20 warm-started rounds on the same rows = 50 rounds at once (same sha256, same probabilities)")
    xacc50, xauc50 = x_eval(xgb.train(xp, dtr, 50))
    print("# XGBoost 50 at once: accuracy %.4f AUC %.4f; 30+20: %.4f %.4f" % (xacc50, xauc50, acc_x, auc_x))

    # new rows: 30 on half A, 20 more on half B
    train(cur, "warm_h", "warm_a", names, {"n_estimators": 30})
    vh = train(cur, "warm_h", "warm_b", names, {"n_estimators": 20, "warm_start": "warm_h@1"})
    ba = xgb.train(xp, xgb.DMatrix(Xtr[half], label=ytr01[half]), 30)
    bb = xgb.train(xp, xgb.DMatrix(Xtr[~half], label=ytr01[~half]), 20, xgb_model=ba)
    acc_m, auc_m, _ = ml_eval("warm_h@%d" % vh)
    acc_x, auc_x = x_eval(bb)
    check(acc_m >= acc_x - 0.01, "magic 30 on half A + 20 on half B: accuracy mlpipe %.4f, XGBoost %.4f (>= peer - 0.01)"
          % (acc_m, acc_x))
    check(abs(auc_m - auc_x) <= 0.01, "magic 30 on A + 20 on B: ROC AUC mlpipe %.4f, XGBoost %.4f (within 0.01)"
          % (auc_m, auc_x))

    # 0 rounds: the parent's predictions; 0 rows: refused, nothing registered
    v0 = train(cur, "warm_h", "warm_b", names, {"n_estimators": 0, "warm_start": "warm_h@1"})
    _, _, p_parent = ml_eval("warm_h@1")
    _, _, p_zero = ml_eval("warm_h@%d" % v0)
    check(np.array_equal(p_parent, p_zero), "magic: warm start with 0 rounds predicts exactly as the parent")
    cur.execute("SELECT count(*) FROM mlpipe.model_versions WHERE model = 'warm_h'")
    before = cur.fetchone()[0]
    try:
        train(cur, "warm_h", "SELECT * FROM warm_b WHERE false", names,
              {"n_estimators": 5, "warm_start": "warm_h@1"})
        refused = False
    except psycopg2.Error as e:
        refused = True
        print("# 0 rows: %s" % e.pgerror.strip().splitlines()[0])
    cur.execute("SELECT count(*) FROM mlpipe.model_versions WHERE model = 'warm_h'")
    check(refused and cur.fetchone()[0] == before, "magic: a warm start on 0 rows is refused and registers nothing")
    for m in ("warm_m", "warm_m50", "warm_h"):
        cur.execute("SELECT mlpipe.drop_model(%s)", (m,))
    cur.execute("DROP TABLE warm_train, warm_a, warm_b, warm_test")


def regression(cur):
    names, Xtr, ytr, Xte, yte = tp.load_solar()
    tp.load_table(cur, "warm_train", names, Xtr, ytr, True)
    tp.load_table(cur, "warm_test", names, Xte, yte, True)
    print("# solar: %d train rows, %d test rows" % (len(ytr), len(yte)), flush=True)
    train(cur, "warm_r", "warm_train", names, {"n_estimators": 30})
    v2 = train(cur, "warm_r", "warm_train", names, {"n_estimators": 20, "warm_start": "warm_r@1"})
    pred = np.array(tp.score(cur, "warm_r@%d" % v2, "warm_test", names, "predict"), dtype=float)
    rmse_m = float(np.sqrt(np.mean((pred - yte) ** 2)))
    xp = dict(XPARAMS, objective="reg:squarederror")
    dtr = xgb.DMatrix(Xtr, label=ytr)
    bst = xgb.train(xp, dtr, 20, xgb_model=xgb.train(xp, dtr, 30))
    rmse_x = float(np.sqrt(np.mean((bst.predict(xgb.DMatrix(Xte)) - yte) ** 2)))
    check(rmse_m <= 1.05 * rmse_x, "solar 30+20: RMSE mlpipe %.2f, XGBoost xgb_model %.2f (<= 1.05 x peer)"
          % (rmse_m, rmse_x))
    train(cur, "warm_r50", "warm_train", names, {"n_estimators": 50})
    check(sha(cur, "warm_r", v2) == sha(cur, "warm_r50", 1),
          "solar: 30 + 20 warm-started rounds = 50 rounds at once (same sha256)")
    cur.execute("SELECT min(iteration), max(iteration) FROM mlpipe.training_iterations "
                "WHERE model = 'warm_r' AND version = %s", (v2,))
    check(cur.fetchone() == (30, 49), "solar: training_info of the warm start numbers its rounds 30..49")
    for m in ("warm_r", "warm_r50"):
        cur.execute("SELECT mlpipe.drop_model(%s)", (m,))
    cur.execute("DROP TABLE warm_train, warm_test")


def main():
    conn = psycopg2.connect("")
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SET mlpipe.progress = off")
    binary(cur)
    regression(cur)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
