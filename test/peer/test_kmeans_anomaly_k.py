#!/usr/bin/python3
"""Issue #14 against scikit-learn, XGBoost and numpy, computed in this run.

Data: the UrBAN beehive sensors (scripts/load_beehive.sh), averaged per hive
and hour (temperature, humidity; about 16,900 rows), and UCI MAGIC gamma
(19,020 x 10, binary) for gbt. Checks:

- choosing k ("k": [2, 8], silhouette on every row: sample_size 0): every
  candidate's silhouette@k equals scikit-learn's silhouette_score on the
  labels mlpipe.predict gives (1e-9), Davies-Bouldin likewise, and the k
  chosen is scikit-learn's argmax of silhouette over KMeans (k-means++,
  n_init 10) fits; the elbow and Davies-Bouldin choices equal the rule
  applied in numpy to the stored figures.
- anomaly_score / is_anomaly (contamination 0.01): per-cluster scales,
  scores and the threshold recomputed in numpy from the exported centroids
  (1e-9); the flagged rows are exactly those above np.quantile(scores, 0.99);
  name and artifact forms, float8[] and row forms agree.
- training_info for k-means: with given initial centroids, each iteration's
  training loss equals the inertia of Lloyd's assignment replayed in numpy
  (1e-9 relative), and the iteration count equals scikit-learn's n_iter_.
- training_info for gbt: the last round's training loss equals the logloss
  of mlpipe.predict_proba on the training rows (1e-6), and every round's is
  within 2% of XGBoost's evals_result train-logloss (same rows, hist, 256
  bins, base_score the class prior as mlpipe's). Prints PASS/FAIL lines; exits 1 on any FAIL.
"""
import gzip
import json
import os
import subprocess
import sys

import numpy as np
import psycopg2
import xgboost as xgb
from sklearn.cluster import KMeans
from sklearn.metrics import davies_bouldin_score, silhouette_score

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.environ.get("MLPIPE_DATA", os.path.join(ROOT, "..", "shared", "data"))
failures = 0


def check(ok, what):
    global failures
    print(("PASS " if ok else "FAIL ") + what, flush=True)
    failures += 0 if ok else 1


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-300)


def train(cur, model, algo, source, params, target=None):
    cur.execute("SELECT version, metrics FROM mlpipe.train(%s, %s, %s, %s, params => %s)",
                (model, algo, source, target, json.dumps(params)))
    return cur.fetchone()


def choose_k(cur, X):
    ver, m = train(cur, "peer_hive_k", "kmeans", "SELECT temperature, humidity FROM peer_hourly ORDER BY id",
                   {"k": [2, 8], "sample_size": 0})
    ks = list(range(2, 9))
    bad = []
    for k in ks:
        # the candidate's labels: refit that k alone (same seed, same rows) and predict
        train(cur, "peer_hive_k%d" % k, "kmeans", "SELECT temperature, humidity FROM peer_hourly ORDER BY id",
              {"k": k, "sample_size": 0})
        cur.execute("SELECT mlpipe.predict(%s, ARRAY[temperature, humidity])::int FROM peer_hourly ORDER BY id",
                    ("peer_hive_k%d" % k,))
        lab = np.array([r[0] for r in cur.fetchall()])
        s, db = silhouette_score(X, lab), davies_bouldin_score(X, lab)
        if rel(m["silhouette@k=%d" % k], s) > 1e-9 or rel(m["davies_bouldin@k=%d" % k], db) > 1e-9:
            bad.append((k, m["silhouette@k=%d" % k], s))
    check(not bad, "choose k: silhouette@k and davies_bouldin@k for k = 2..8 equal scikit-learn's on the same labels %s"
          % (bad[:2] if bad else ""))
    sk = {k: silhouette_score(X, KMeans(n_clusters=k, n_init=10, random_state=0).fit(X).labels_) for k in ks}
    best = max(ks, key=lambda k: sk[k])
    check(m["k"] == best, "choose k (silhouette): mlpipe chose k = %d, scikit-learn's argmax is %d (%s)"
          % (m["k"], best, ", ".join("%d: %.4f/%.4f" % (k, m["silhouette@k=%d" % k], sk[k]) for k in ks)))
    # the elbow and Davies-Bouldin rules on the stored figures
    _, me = train(cur, "peer_hive_ke", "kmeans", "SELECT temperature, humidity FROM peer_hourly ORDER BY id",
                  {"k": [2, 8], "sample_size": 0, "k_criterion": "elbow"})
    inert = np.array([me["inertia@k=%d" % k] for k in ks])
    x = (np.array(ks) - ks[0]) / (ks[-1] - ks[0])
    y = (inert - inert[-1]) / (inert[0] - inert[-1])
    check(me["k"] == ks[int(np.argmax((1 - x) - y))], "choose k (elbow): k = %d, the kneedle rule in numpy gives %d"
          % (me["k"], ks[int(np.argmax((1 - x) - y))]))
    _, md = train(cur, "peer_hive_kd", "kmeans", "SELECT temperature, humidity FROM peer_hourly ORDER BY id",
                  {"k": [2, 8], "sample_size": 0, "k_criterion": "davies_bouldin"})
    dbs = [md["davies_bouldin@k=%d" % k] for k in ks]
    check(md["k"] == ks[int(np.argmin(dbs))], "choose k (davies_bouldin): k = %d, argmin %d"
          % (md["k"], ks[int(np.argmin(dbs))]))


def anomaly(cur, X):
    train(cur, "peer_hive_anom", "kmeans", "SELECT temperature, humidity FROM peer_hourly ORDER BY id",
          {"k": 4, "standardize": True, "contamination": 0.01})
    cur.execute("SELECT mlpipe.export('peer_hive_anom')")
    doc = cur.fetchone()[0]
    C = np.array(doc["centroids"])
    mean, scale = np.array(doc["mean"]), np.array(doc["scale"])
    Z = (X - mean) / scale
    D = np.sqrt(((Z[:, None, :] - C[None, :, :]) ** 2).sum(axis=2))
    lab = D.argmin(axis=1)
    dist = D[np.arange(len(Z)), lab]
    s = np.array([np.sqrt(np.mean(dist[lab == c] ** 2)) for c in range(len(C))])
    score = dist / s[lab]
    thr = float(np.quantile(score, 0.99))
    cur.execute("SELECT lineage->'anomaly_threshold' FROM mlpipe.model_versions WHERE model = 'peer_hive_anom'")
    got_thr = float(cur.fetchone()[0])
    check(rel(got_thr, thr) <= 1e-9, "anomaly: threshold %.12g, numpy's 0.99 quantile %.12g" % (got_thr, thr))
    cur.execute("SELECT mlpipe.anomaly_score('peer_hive_anom', ARRAY[temperature, humidity]), "
                "mlpipe.is_anomaly('peer_hive_anom', ARRAY[temperature, humidity]), "
                "mlpipe.anomaly_score('peer_hive_anom', h), mlpipe.is_anomaly('peer_hive_anom', h), "
                "mlpipe.anomaly_score(mlpipe.artifact('peer_hive_anom'), ARRAY[temperature, humidity]), "
                "mlpipe.is_anomaly(mlpipe.artifact('peer_hive_anom'), h) "
                "FROM peer_hourly h ORDER BY id")
    rows = cur.fetchall()
    got = np.array([r[0] for r in rows])
    flag = np.array([r[1] for r in rows])
    check(np.max(np.abs(got - score) / np.maximum(score, 1e-300)) <= 1e-9,
          "anomaly: %d scores equal numpy's (max rel %.2e)" % (len(got), np.max(np.abs(got - score) / np.maximum(score, 1e-300))))
    check(np.array_equal(flag, score > thr), "anomaly: is_anomaly flags exactly the rows above the threshold "
          "(%d of %d, %.4f)" % (flag.sum(), len(flag), flag.mean()))
    check(all(r[0] == r[2] == r[4] and r[1] == r[3] == r[5] for r in rows),
          "anomaly: name/artifact and float8[]/row forms agree on every row")


def kmeans_trace(cur, X):
    rng = np.random.RandomState(1)
    C0 = X[rng.choice(len(X), 5, replace=False)]
    _, m = train(cur, "peer_hive_trace", "kmeans", "SELECT temperature, humidity FROM peer_hourly ORDER BY id",
                 {"k": 5, "init": "given", "centroids": C0.tolist(), "max_iter": 300, "tol": 1e-4,
                  "sample_size": 1000})
    cur.execute("SELECT iteration, training_loss FROM mlpipe.training_info('peer_hive_trace')")
    tr = cur.fetchall()
    C, want = C0.copy(), []
    for _ in range(len(tr)):
        D = ((X[:, None, :] - C[None, :, :]) ** 2).sum(axis=2)
        lab = D.argmin(axis=1)
        want.append(D[np.arange(len(X)), lab].sum())
        C = np.array([X[lab == c].mean(axis=0) if np.any(lab == c) else C[c] for c in range(len(C))])
    worst = max(rel(t[1], w) for t, w in zip(tr, want))
    sk = KMeans(n_clusters=5, init=C0, n_init=1, algorithm="lloyd", max_iter=300, tol=1e-4).fit(X)
    check([t[0] for t in tr] == list(range(len(tr))) and worst <= 1e-9,
          "training_info kmeans: %d iterations, each inertia equals numpy's Lloyd replay (max rel %.2e)"
          % (len(tr), worst))
    check(len(tr) == m["iterations"] == sk.n_iter_, "training_info kmeans: %d rows = iterations %s = sklearn n_iter_ %d"
          % (len(tr), m["iterations"], sk.n_iter_))


def gbt_trace(cur):
    X, y = [], []
    for line in gzip.open(os.path.join(DATA, "uci_magic_gamma", "magic04.data.gz"), "rt"):
        p = line.strip().split(",")
        X.append([float(v) for v in p[:10]])
        y.append(1 if p[10] == "h" else 0)
    X, y = np.array(X), np.array(y)
    names = ["f%d" % i for i in range(10)]
    cur.execute("DROP TABLE IF EXISTS peer_magic")
    cur.execute("CREATE TABLE peer_magic (id int, %s, target int)" % ", ".join("%s float8" % n for n in names))
    cur.executemany("INSERT INTO peer_magic VALUES (%s)" % ", ".join(["%s"] * 12),
                    [[i] + X[i].tolist() + [int(y[i])] for i in range(len(y))])
    n_rounds = 30
    cur.execute("SELECT version FROM mlpipe.train('peer_magic_gbt', 'gbt', 'peer_magic', 'target', %s, %s)",
                (names, json.dumps({"n_estimators": n_rounds, "max_depth": 6, "learning_rate": 0.1,
                                    "max_bins": 256, "test_size": 0, "task": "classification"})))
    cur.execute("SELECT training_loss FROM mlpipe.training_info('peer_magic_gbt') ORDER BY iteration")
    ours = np.array([r[0] for r in cur.fetchall()])
    cur.execute("SELECT (mlpipe.predict_proba('peer_magic_gbt', ARRAY[%s]))[2] FROM peer_magic ORDER BY id"
                % ", ".join(names))
    p = np.array([r[0] for r in cur.fetchall()])
    ll = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    check(len(ours) == n_rounds and rel(ours[-1], ll) <= 1e-6,
          "training_info gbt: %d rounds; last training loss %.9g = logloss of predict_proba %.9g"
          % (len(ours), ours[-1], ll))
    ev = {}
    xgb.train({"objective": "binary:logistic", "tree_method": "hist", "max_depth": 6, "eta": 0.1,
               "max_bin": 256, "eval_metric": "logloss", "nthread": 2,
               "base_score": float(y.mean())},   # mlpipe starts from the prior log-odds
              xgb.DMatrix(X, label=y), n_rounds, evals=[(xgb.DMatrix(X, label=y), "train")],
              evals_result=ev, verbose_eval=False)
    peer = np.array(ev["train"]["logloss"])
    worst = float(np.max(np.abs(ours - peer) / peer))
    check(worst <= 0.02, "training_info gbt: training logloss per round within 2%% of XGBoost's evals_result "
          "(max rel %.4f; round 1 %.5f vs %.5f, round %d %.5f vs %.5f)"
          % (worst, ours[0], peer[0], n_rounds, ours[-1], peer[-1]))


def main():
    conn = psycopg2.connect("")
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SET mlpipe.progress = off")
    cur.execute("SET client_min_messages = warning")
    subprocess.run(["bash", os.path.join(ROOT, "scripts", "load_beehive.sh"),
                    os.path.join(DATA, "beehive_urban"), "peer_beehive"], check=True)
    cur.execute("DROP TABLE IF EXISTS peer_hourly")
    cur.execute("CREATE TABLE peer_hourly AS SELECT row_number() OVER (ORDER BY hive, hour) AS id, * FROM ("
                "SELECT hive, date_trunc('hour', ts) AS hour, avg(temperature) AS temperature, "
                "avg(humidity) AS humidity FROM peer_beehive.sensor "
                "WHERE temperature IS NOT NULL AND humidity IS NOT NULL GROUP BY 1, 2) s")
    cur.execute("SELECT temperature, humidity FROM peer_hourly ORDER BY id")
    X = np.array(cur.fetchall(), dtype=np.float64)
    print("# beehive hourly: %d rows" % len(X), flush=True)
    anomaly(cur, X)
    kmeans_trace(cur, X)
    choose_k(cur, X)
    gbt_trace(cur)
    print("# %d failure(s)" % failures)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
