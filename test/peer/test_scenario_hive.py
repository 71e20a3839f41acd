#!/usr/bin/python3
"""Scenario 1: hive sensors (beehive_urban), daily ts_features per hive,
k-means over them, silhouette and Davies-Bouldin stored.

Loads the raw files with scripts/load_beehive.sh into schema t_scenario_hive,
builds one row of daily temperature and humidity features per hive and day in
SQL, trains mlpipe k-means on them (standardize on, as the features have
different units), and checks in the same run that the version's silhouette
and Davies-Bouldin are in mlpipe.metrics and equal scikit-learn's on the same
feature rows (z-scored the same way) and the labels mlpipe.predict gives.
Also checks the loaded tables against the counts in SOURCE.md, the daily
features against PostgreSQL's own aggregates, and the k-means inertia
against scikit-learn's KMeans (k-means++, 10 starts) on the same z-scores.
Prints PASS/FAIL lines; drops its schema at the end (the registry rows of
model scenario_hive_daily stay, like every training's).
"""
import json
import os
import subprocess
import sys

import numpy as np
import psycopg2
from sklearn.cluster import KMeans
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
    # SOURCE.md: sensor 80,236 rows, 7 hives with 9,254 to 17,432 rows, no NaN; weather 13,896 hourly rows
    # with 120-124 missing per column (empty cells: NULL); inspections 109 and 288 rows.
    cur.execute("""SELECT (SELECT count(*) FROM {s}.sensor),
                          (SELECT count(*) FILTER (WHERE temperature IS NULL OR humidity IS NULL
                                                   OR temperature = 'NaN' OR humidity = 'NaN') FROM {s}.sensor),
                          (SELECT array[min(c), max(c), count(*)] FROM (SELECT count(*) c FROM {s}.sensor GROUP BY hive) h),
                          (SELECT array[count(*), count(*) - count(temp_c), count(*) - count(rel_hum),
                                        count(*) - count(precip_mm)] FROM {s}.weather),
                          (SELECT count(*) FROM {s}.inspections_2021), (SELECT count(*) FROM {s}.inspections_2022)
                """.format(s=SCHEMA))
    loaded = cur.fetchone()
    check(loaded == (80236, 0, [9254, 17432, 7], [13896, 120, 120, 124], 109, 288),
          "loader: sensor %d rows (%d NULL/NaN; per hive min, max, hives %s), weather [rows, NULLs] %s, "
          "inspections %d + %d, as SOURCE.md" % loaded)

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
    cur.execute("""
        SELECT max(greatest(abs(d.temp_mean - b.mean) / abs(b.mean), abs(d.temp_std - b.std) / b.std,
                            abs(d.hum_std - b.hstd) / b.hstd, abs(d.temp_slope - b.slope) / abs(b.slope))),
               count(*) FILTER (WHERE d.temp_min <> b.min OR d.temp_max <> b.max)
          FROM {s}.daily d
          JOIN (SELECT hive, (ts AT TIME ZONE 'UTC')::date AS day, avg(temperature) AS mean,
                       stddev(temperature) AS std, stddev(humidity) AS hstd, min(temperature) AS min,
                       max(temperature) AS max,
                       regr_slope(temperature, extract(epoch FROM ts)::float8 / 3600) AS slope
                  FROM {s}.sensor GROUP BY 1, 2) b USING (hive, day)""".format(s=SCHEMA))
    worst, n_minmax = cur.fetchone()
    check(worst < 1e-7 and n_minmax == 0,
          "daily ts_features agree with avg/stddev/min/max/regr_slope per hive-day (worst relative %.2g)" % worst)

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

    inertia = KMeans(n_clusters=3, init="k-means++", n_init=10, random_state=0).fit(Z).inertia_
    check("inertia" in stored and stored["inertia"] <= 1.01 * inertia,
          "k-means inertia %.6g on z-scores vs scikit-learn KMeans %.6g (need <= 1.01x)"
          % (stored.get("inertia", float("nan")), inertia))

    cur.execute("DROP SCHEMA %s CASCADE" % SCHEMA)
    conn.close()
    return failures


if __name__ == "__main__":
    sys.exit(1 if main() else 0)
