#!/usr/bin/python3
"""mlpipe's metric aggregates against scikit-learn on real data, in one run.

Models trained by mlpipe score real rows in SQL; the same (truth,
prediction, probability) rows are fetched and scikit-learn computes each
metric; every mlpipe aggregate must agree within 1e-9 (relative for values
above 1). Data: UCI bank marketing (binary), a 1-in-20 sample of KDD Cup 99
(multiclass), solar weather sensors (regression), and a 1-in-49 sample of
UCI skin segmentation clustered by k-means (clustering metrics). Also
checks mlpipe.evaluate against the same figures. Prints PASS/FAIL lines.
"""
import csv
import gzip
import io
import os
import sys

import numpy as np
import psycopg2
from sklearn import metrics as skm

DATA = os.environ.get("MLPIPE_DATA", "../shared/data")
TOL = 1e-9
failures = 0


def check(ok, what):
    global failures
    print(("PASS " if ok else "FAIL ") + what, flush=True)
    failures += 0 if ok else 1


def close(a, b, what):
    ok = a is not None and b is not None and abs(a - b) <= TOL * max(1.0, abs(b))
    check(ok, "%s: mlpipe %r, scikit-learn %r" % (what, a, b))


def copy_rows(cur, table, cols, rows):
    buf = io.StringIO()
    for r in rows:
        buf.write("\t".join("\\N" if v is None else str(v) for v in r) + "\n")
    buf.seek(0)
    cur.copy_from(buf, table, columns=cols)


conn = psycopg2.connect("")
conn.autocommit = True
cur = conn.cursor()
cur.execute("SET client_min_messages = warning")
cur.execute("DROP SCHEMA IF EXISTS peer_metrics CASCADE")
cur.execute("CREATE SCHEMA peer_metrics")
cur.execute("SET search_path = peer_metrics, public")
cur.execute("SET mlpipe.progress = off")
cur.execute("DELETE FROM mlpipe.aliases WHERE model LIKE 'peer_metrics_%'")

try:
    # ---- binary: bank marketing, gbt -------------------------------------
    f = gzip.open(os.path.join(DATA, "uci_bank_marketing", "bank-additional-full.csv.gz"), "rt")
    r = csv.reader(f, delimiter=";")
    header = next(r)
    num = ["age", "campaign", "pdays", "previous", "emp.var.rate", "cons.price.idx",
           "cons.conf.idx", "euribor3m", "nr.employed"]
    ix = [header.index(c) for c in num]
    yi = header.index("y")
    rows = [[row[i] for i in ix] + [row[yi]] for row in r]
    cols = [c.replace(".", "_") for c in num]
    cur.execute("CREATE TABLE bank (%s, y text)" % ", ".join(c + " float8" for c in cols))
    copy_rows(cur, "bank", cols + ["y"], rows)
    cur.execute("SELECT version FROM mlpipe.train('peer_metrics_bank', 'gbt', 'bank', 'y', NULL, "
                "'{\"n_estimators\": 30, \"max_depth\": 4}')")
    feat = "ARRAY[%s]" % ", ".join(cols)
    cur.execute("CREATE TABLE bank_scored AS SELECT y, mlpipe.predict_label('peer_metrics_bank', %s) AS p, "
                "mlpipe.predict_proba('peer_metrics_bank', %s) AS pr FROM bank" % (feat, feat))
    cur.execute("SELECT y, p, pr[2] FROM bank_scored")
    got = cur.fetchall()
    y = np.array([g[0] for g in got])
    p = np.array([g[1] for g in got])
    s = np.array([g[2] for g in got])
    cur.execute("""SELECT mlpipe.accuracy(y, p), mlpipe.precision_macro(y, p), mlpipe.recall_macro(y, p),
                          mlpipe.f1_macro(y, p), mlpipe.f1_weighted(y, p), mlpipe.log_loss(y = 'yes', pr[2]),
                          mlpipe.log_loss(y, pr, '{no,yes}'), mlpipe.roc_auc(y = 'yes', pr[2]),
                          mlpipe.roc_auc(y, pr, '{no,yes}'), mlpipe.confusion_matrix(y, p)
                     FROM bank_scored""")
    m = cur.fetchone()
    close(m[0], skm.accuracy_score(y, p), "bank accuracy")
    close(m[1], skm.precision_score(y, p, average="macro", zero_division=0), "bank precision_macro")
    close(m[2], skm.recall_score(y, p, average="macro", zero_division=0), "bank recall_macro")
    close(m[3], skm.f1_score(y, p, average="macro", zero_division=0), "bank f1_macro")
    close(m[4], skm.f1_score(y, p, average="weighted", zero_division=0), "bank f1_weighted")
    close(m[5], skm.log_loss(y == "yes", s), "bank log_loss (boolean, p)")
    close(m[6], skm.log_loss(y, s, labels=["no", "yes"]), "bank log_loss (text, proba, classes)")
    close(m[7], skm.roc_auc_score(y == "yes", s), "bank roc_auc (boolean, score)")
    close(m[8], skm.roc_auc_score(y == "yes", s), "bank roc_auc (text, proba, classes)")
    labels = sorted(set(y) | set(p))
    check(m[9]["labels"] == labels and m[9]["matrix"] == skm.confusion_matrix(y, p, labels=labels).tolist(),
          "bank confusion_matrix equals scikit-learn's")
    cur.execute("SELECT mlpipe.evaluate('peer_metrics_bank', 'bank')")
    ev = cur.fetchone()[0]
    close(ev["f1_macro"], skm.f1_score(y, p, average="macro"), "bank evaluate f1_macro")
    close(ev["roc_auc"], skm.roc_auc_score(y == "yes", s), "bank evaluate roc_auc")

    # ---- multiclass: KDD Cup 99, 1 row in 20, decision tree ----------------
    kcols = [0, 4, 5, 22, 23, 24, 25, 28, 31, 32, 33]
    rows = []
    for i, line in enumerate(gzip.open(os.path.join(DATA, "kddcup99_10pct", "kddcup.data_10_percent.gz"), "rt")):
        if i % 20:
            continue
        parts = line.strip().split(",")
        rows.append([parts[c] for c in kcols] + [parts[41].rstrip(".")])
    kn = ["c%d" % c for c in kcols]
    cur.execute("CREATE TABLE kdd (%s, label text)" % ", ".join(c + " float8" for c in kn))
    copy_rows(cur, "kdd", kn + ["label"], rows)
    cur.execute("SELECT version FROM mlpipe.train('peer_metrics_kdd', 'decision_tree', 'kdd', 'label', NULL, "
                "'{\"max_depth\": 5}')")
    feat = "ARRAY[%s]" % ", ".join(kn)
    cur.execute("CREATE TABLE kdd_scored AS SELECT label AS y, mlpipe.predict_label('peer_metrics_kdd', %s) AS p, "
                "mlpipe.predict_proba('peer_metrics_kdd', %s) AS pr FROM kdd" % (feat, feat))
    cur.execute("SELECT mlpipe.classes('peer_metrics_kdd')")
    classes = cur.fetchone()[0]
    cur.execute("SELECT y, p, pr FROM kdd_scored")
    got = cur.fetchall()
    y = np.array([g[0] for g in got])
    p = np.array([g[1] for g in got])
    P = np.array([g[2] for g in got])
    cur.execute("""SELECT mlpipe.accuracy(y, p), mlpipe.precision_macro(y, p), mlpipe.recall_macro(y, p),
                          mlpipe.f1_macro(y, p), mlpipe.f1_weighted(y, p), mlpipe.log_loss(y, pr, %s),
                          mlpipe.roc_auc(y, pr, %s), mlpipe.confusion_matrix(y, p) FROM kdd_scored""",
                (classes, classes))
    m = cur.fetchone()
    close(m[0], skm.accuracy_score(y, p), "kdd accuracy (%d classes)" % len(classes))
    close(m[1], skm.precision_score(y, p, average="macro", zero_division=0), "kdd precision_macro")
    close(m[2], skm.recall_score(y, p, average="macro", zero_division=0), "kdd recall_macro")
    close(m[3], skm.f1_score(y, p, average="macro", zero_division=0), "kdd f1_macro")
    close(m[4], skm.f1_score(y, p, average="weighted", zero_division=0), "kdd f1_weighted")
    close(m[5], skm.log_loss(y, P, labels=classes), "kdd log_loss")
    # one-vs-rest macro AUC over the classes present in y (scikit-learn raises for absent ones)
    present = [i for i, c in enumerate(classes) if (y == c).any() and not (y == c).all()]
    ovr = np.mean([skm.roc_auc_score(y == classes[i], P[:, i]) for i in present])
    close(m[6], ovr, "kdd roc_auc one-vs-rest macro")
    labels = sorted(set(y) | set(p))
    check(m[7]["labels"] == labels and m[7]["matrix"] == skm.confusion_matrix(y, p, labels=labels).tolist(),
          "kdd confusion_matrix equals scikit-learn's")

    # ---- regression: solar weather sensors, gbt -----------------------------
    rows = []
    for fn in ("Plant_1_Weather_Sensor_Data.csv", "Plant_2_Weather_Sensor_Data.csv"):
        with open(os.path.join(DATA, "solar_power_generation", fn)) as fh:
            rd = csv.DictReader(fh)
            for row in rd:
                rows.append([row["AMBIENT_TEMPERATURE"], row["MODULE_TEMPERATURE"], row["IRRADIATION"]])
    cur.execute("CREATE TABLE solar (ambient float8, module float8, irradiation float8)")
    copy_rows(cur, "solar", ["ambient", "module", "irradiation"], rows)
    cur.execute("SELECT version FROM mlpipe.train('peer_metrics_solar', 'gbt', 'solar', 'module', NULL, "
                "'{\"n_estimators\": 40}')")
    cur.execute("SELECT module, mlpipe.predict('peer_metrics_solar', ARRAY[ambient, irradiation]) FROM solar")
    got = np.array(cur.fetchall(), dtype=float)
    cur.execute("""SELECT mlpipe.rmse(module, q), mlpipe.mae(module, q), mlpipe.r2(module, q), mlpipe.mape(module, q)
                     FROM (SELECT module, mlpipe.predict('peer_metrics_solar', ARRAY[ambient, irradiation]) q
                             FROM solar) t""")
    m = cur.fetchone()
    yt, yp = got[:, 0], got[:, 1]
    close(m[0], float(np.sqrt(skm.mean_squared_error(yt, yp))), "solar rmse (%d rows)" % len(yt))
    close(m[1], skm.mean_absolute_error(yt, yp), "solar mae")
    close(m[2], skm.r2_score(yt, yp), "solar r2")
    close(m[3], skm.mean_absolute_percentage_error(yt, yp), "solar mape")

    # ---- clustering: skin segmentation, 1 row in 49, k-means k = 4 ----------
    rows = []
    for i, line in enumerate(gzip.open(os.path.join(DATA, "uci_skin_segmentation", "Skin_NonSkin.txt.gz"), "rt")):
        if i % 49 == 0:
            rows.append(line.split()[:3])
    cur.execute("CREATE TABLE skin (b float8, g float8, r float8)")
    copy_rows(cur, "skin", ["b", "g", "r"], rows)
    cur.execute("SELECT version FROM mlpipe.train('peer_metrics_skin', 'kmeans', 'skin', NULL, NULL, '{\"k\": 4}')")
    cur.execute("CREATE TABLE skin_scored AS SELECT ARRAY[b, g, r] AS x, "
                "mlpipe.predict('peer_metrics_skin', ARRAY[b, g, r])::int AS c FROM skin")
    cur.execute("SELECT x, c FROM skin_scored")
    got = cur.fetchall()
    X = np.array([g[0] for g in got])
    lab = np.array([g[1] for g in got])
    cur.execute("SELECT mlpipe.silhouette(x, c), mlpipe.calinski_harabasz(x, c), mlpipe.davies_bouldin(x, c) "
                "FROM skin_scored")
    m = cur.fetchone()
    close(m[0], skm.silhouette_score(X, lab), "skin silhouette (%d points)" % len(X))
    close(m[1], skm.calinski_harabasz_score(X, lab), "skin calinski_harabasz")
    close(m[2], skm.davies_bouldin_score(X, lab), "skin davies_bouldin")
    # a parallel plan gives the same figures
    cur.execute("SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0")
    cur.execute("SELECT mlpipe.calinski_harabasz(x, c), mlpipe.davies_bouldin(x, c) FROM skin_scored")
    mp = cur.fetchone()
    close(mp[0], skm.calinski_harabasz_score(X, lab), "skin calinski_harabasz, parallel plan")
    close(mp[1], skm.davies_bouldin_score(X, lab), "skin davies_bouldin, parallel plan")
except Exception as e:  # a crash is a failure, not a silent pass
    check(False, "peer metric run raised %s: %s" % (type(e).__name__, e))
finally:
    cur.execute("RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size")
    cur.execute("DROP SCHEMA IF EXISTS peer_metrics CASCADE")
    conn.close()

sys.exit(1 if failures else 0)
