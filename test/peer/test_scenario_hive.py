#!/usr/bin/python3
"""Scenario 1: hive sensors (beehive_urban), daily ts_features per hive,
k-means over them, silhouette and Davies-Bouldin stored.

Loads the raw files with scripts/load_beehive.sh into schema t_scenario_hive,
builds one row of daily temperature and humidity features per hive and day in
SQL, trains mlpipe k-means on them (standardize on, as the features have
different units), and checks in the same run that the version's silhouette
and Davies-Bouldin are in mlpipe.metrics and equal scikit-learn's on the same
feature rows (z-scored the same way) and the labels mlpipe.predict gives.
Prints PASS/FAIL lines; drops its schema at the end (the registry rows of
model scenario_hive_daily stay, like every training's).
"""
import json
import os
import subprocess
import sys

import numpy as np
import psycopg2
from sklearn.metrics import davies_bouldin_score, silhouette_score

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(os.environ.get("MLPIPE_DATA", os.path.join(ROOT, "..", "shared", "data")),
                    "beehive_urban")
SCHEMA = "t_scenario_hive"
MODEL = "scenario_hive_daily"
FEATURES = ["temp_mean", "temp_std", "temp_min", "temp_max", "temp_slope",
            "temp_mean_abs_change", "hum_mean", "hum_std"]
failures = 0


def check(ok, what):
    global failures
    print(("PASS " if ok else "FAIL ") + what, flush=True)
    failures += 0 if ok else 1


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-300)


def main():
    subprocess.run(["bash", os.path.join(ROOT, "scripts", "load_beehive.sh"), DATA, SCHEMA],
                   check=True, stdout=subprocess.DEVNULL)
    conn = psycopg2.connect("")
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SET mlpipe.progress = off")

    # One row per hive and (UTC) day with at least 48 readings (half a day).
    cur.execute("""
        CREATE TABLE {s}.daily AS
        SELECT hive, day, (t).mean AS temp_mean, (t).std AS temp_std, (t).min AS temp_min,
               (t).max AS temp_max, (t).slope AS temp_slope,
               (t).mean_abs_change AS temp_mean_abs_change,
               (h).mean AS hum_mean, (h).std AS hum_std
          FROM (SELECT hive, (ts AT TIME ZONE 'UTC')::date AS day,
                       mlpipe.ts_features(ts, temperature) AS t,
                       mlpipe.ts_features(ts, humidity) AS h
                  FROM {s}.sensor GROUP BY 1, 2) f
         WHERE (t).n >= 48 AND (h).n >= 48""".format(s=SCHEMA))
    cur.execute("SELECT count(*), count(DISTINCT hive) FROM %s.daily" % SCHEMA)
    rows, hives = cur.fetchone()
    check(rows > 500 and hives == 7, "daily features: %d hive-days from %d hives" % (rows, hives))

    cur.execute("SELECT version, metrics, run_id FROM mlpipe.train(%s, 'kmeans', %s, NULL, %s, %s)",
                (MODEL, SCHEMA + ".daily", FEATURES,
                 json.dumps({"k": 3, "standardize": True, "seed": 7})))
    version, metrics, run_id = cur.fetchone()
    check(version is not None and metrics.get("rows") == rows,
          "k-means trained on the daily features: version %s, %s rows" % (version, metrics.get("rows")))

    cur.execute("SELECT metric, value FROM mlpipe.metrics WHERE model = %s AND version = %s",
                (MODEL, version))
    stored = dict(cur.fetchall())
    check("silhouette" in stored and "davies_bouldin" in stored,
          "silhouette and davies_bouldin stored in mlpipe.metrics (%s)" % sorted(stored))

    arr = "ARRAY[%s]" % ", ".join(FEATURES)
    cur.execute("SELECT %s, mlpipe.predict(%%s, %s) FROM %s.daily ORDER BY hive, day"
                % (", ".join(FEATURES), arr, SCHEMA), ("%s@%d" % (MODEL, version),))
    data = np.array(cur.fetchall(), dtype=np.float64)
    X, labels = data[:, :-1], data[:, -1].astype(int)
    std = X.std(axis=0)
    Z = (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)
    check(len(set(labels)) == 3, "predict gives 3 clusters: sizes %s" % np.bincount(labels).tolist())
    sil, dbi = silhouette_score(Z, labels), davies_bouldin_score(Z, labels)
    check("silhouette" in stored and rel(stored["silhouette"], sil) <= 1e-9,
          "silhouette %.12g equals scikit-learn's %.12g" % (stored.get("silhouette", float("nan")), sil))
    check("davies_bouldin" in stored and rel(stored["davies_bouldin"], dbi) <= 1e-9,
          "davies_bouldin %.12g equals scikit-learn's %.12g"
          % (stored.get("davies_bouldin", float("nan")), dbi))

    cur.execute("DROP SCHEMA %s CASCADE" % SCHEMA)
    conn.close()
    return failures


if __name__ == "__main__":
    sys.exit(1 if main() else 0)
