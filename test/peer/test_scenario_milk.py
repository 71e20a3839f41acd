#!/usr/bin/python3
"""Scenario: Swiss monthly milk price (CH_Milchpreis), regression with many
missing covariates and a time split.

Loading: milk_price_ch_monthly.csv (UTF-8, column names with umlauts and a
trailing space; empty cells are missing) into a table with every column
quoted as it is: Date as date, the three policy columns ('mit K' / 'ohne
K', ...) as text, everything else double precision.

mlpipe: gbt, split = 'time:Date' with test_size 18/280 (the last 18
months, as the upstream project holds out), preprocess {"*": {"impute":
"median"}} (medians fitted on the training months only; text columns
encoded by default). XGBoost: the same training/test months (the same test
rows), the same 61 covariates (Date left out, Jahr and Monat kept, as
mlpipe.features lists them), the policy texts as 0/1, missing covariates as
NaN (XGBoost routes them natively), the same depth/rounds/eta/lambda and
the same starting prediction: base_score = the training-month mean, which
is what mlpipe starts from (and XGBoost >= 2.0 estimates by itself;
XGBoost 1.7's default of 0.5 left its 100 rounds short of a price near 70
CHF and made it look 2x worse). XGBoost with the same training-month
medians filled in is fitted too; the check is against the better of the
two. Both scored on the last 18 months.
Target (issue #4): mlpipe RMSE <= 1.05 x XGBoost's, and the registry's
test RMSE equals a rescoring by the row form.
"""
import csv
import io
import math
import os
import sys

import numpy as np
import psycopg2
import xgboost as xgb

DATA = os.environ.get("MLPIPE_DATA", "../shared/data")
TEXT = {"Kontingent", "Freihandel", "EU_Politik"}
TARGET = "CH_Milchpreis"
failures = 0


def check(ok, what):
    global failures
    print(("PASS " if ok else "FAIL ") + what, flush=True)
    failures += 0 if ok else 1


def q(name):
    return '"' + name.replace('"', '""') + '"'


def main():
    path = os.path.join(DATA, "milk_price_ch", "milk_price_ch_monthly.csv")
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    header, rows = rows[0], rows[1:]
    conn = psycopg2.connect("")
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SET client_min_messages = warning")
    cur.execute("DROP SCHEMA IF EXISTS t_milk CASCADE")
    cur.execute("CREATE SCHEMA t_milk")
    cur.execute("SET search_path = t_milk, public")
    cur.execute("SET mlpipe.progress = off")
    types = ["date" if c == "Date" else "text" if c in TEXT else "double precision" for c in header]
    cur.execute("CREATE TABLE milk (%s)" % ", ".join("%s %s" % (q(c), t) for c, t in zip(header, types)))
    buf = io.StringIO()
    for r in rows:
        buf.write("\t".join("\\N" if v == "" else v for v in r) + "\n")
    buf.seek(0)
    cur.copy_expert("COPY milk FROM STDIN", buf)
    n_missing = sum(v == "" for r in rows for v in r)
    # The NULL counts SOURCE.md gives (pandas NaN counts), read back from the table.
    cur.execute("""SELECT count(*), count(*) - count(%s), count(*) - count("Temperature_CH"),
                          count(*) - count("A_Milchpreis"), count(*) - count("Milchkühe_Anzahl"),
                          count(*) - count("CH_Molkereimilchpreisindex"), min("Date"), max("Date")
                     FROM milk""" % q(TARGET))
    n, n_tnull, n_temp, n_a, n_cows, n_idx, d0, d1 = cur.fetchone()
    check(len(header) == 63 and n == 280 and (n_tnull, n_temp, n_a, n_cows, n_idx) == (0, 4, 144, 108, 120)
          and str(d0) == "2000-01-01" and str(d1) == "2023-04-01",
          "milk loaded: %d months x %d columns (%s to %s), %d missing cells; NULLs as SOURCE.md: target %d, "
          "Temperature_CH %d, A_Milchpreis %d, Milchkühe_Anzahl %d, CH_Molkereimilchpreisindex %d"
          % (n, len(header), d0, d1, n_missing, n_tnull, n_temp, n_a, n_cows, n_idx))

    test_size = 18 / 280
    cur.execute("""SELECT (metrics->>'rmse')::float8, version FROM mlpipe.train('milk_price', 'gbt', 'milk', %s,
                     params => jsonb_build_object('split', 'time:Date', 'test_size', %s::float8,
                                                  'preprocess', '{"*": {"impute": "median"}}'::jsonb))""",
                (TARGET, test_size))
    rmse_m, version = cur.fetchone()
    cur.execute("""SELECT (lineage->>'test_rows')::int, training_rows FROM mlpipe.model_versions
                    WHERE model = 'milk_price' AND version = %s""", (version,))
    n_test, n_train = cur.fetchone()
    cur.execute("""SELECT sqrt(avg((mlpipe.predict('milk_price', m) - %s)^2)), count(*), min("Date")
                     FROM milk m WHERE "Date" >= (SELECT "Date" FROM milk ORDER BY "Date" DESC OFFSET 17 LIMIT 1)"""
                % q(TARGET))
    rmse_row, n_last, first_test = cur.fetchone()
    check(n_test == 18 and n_train == 262 and n_last == 18,
          "time split: the last 18 months (from %s) are the test rows, 262 train, none in both" % first_test)
    check(abs(rmse_row - rmse_m) < 1e-9, "row-form rescoring of the last 18 months gives the registry RMSE (%.6f vs %.6f)"
          % (rmse_row, rmse_m))
    cur.execute("SELECT mlpipe.export('milk_price')->'preprocess'")
    prep = cur.fetchone()[0]
    temp = [c for c in prep if c["column"] == "Temperature_CH"][0]
    train_temps = sorted(float(r[header.index("Temperature_CH")]) for r in rows[:262]
                         if r[header.index("Temperature_CH")] != "")
    med = float(np.median(train_temps))
    check(temp["impute"] == "median" and abs(temp["fill"] - med) < 1e-9,
          "Temperature_CH median %.4f fitted on the training months only (numpy: %.4f)" % (temp["fill"], med))

    # XGBoost on the same months and covariates, policy texts as 0/1, missing as NaN.
    feats = [c for c in header if c not in ("Date", TARGET)]
    cur.execute("SELECT mlpipe.features('milk_price')")
    check(cur.fetchone()[0] == feats, "mlpipe and XGBoost use the same %d covariates (Date left out)" % len(feats))
    X = np.full((len(rows), len(feats)), np.nan)
    for j, c in enumerate(feats):
        k = header.index(c)
        for i, r in enumerate(rows):
            v = r[k]
            if v == "":
                continue
            X[i, j] = (1.0 if v.startswith("mit") else 0.0) if c in TEXT else float(v)
    y = np.array([float(r[header.index(TARGET)]) for r in rows])
    order = np.argsort([r[header.index("Date")] for r in rows], kind="stable")
    tr, te = order[:262], order[262:]
    check(min(rows[i][header.index("Date")] for i in te) == str(first_test) and len(te) == n_last,
          "XGBoost test rows are the same last %d months (from %s)" % (len(te), first_test))
    med_tr = np.nanmedian(X[tr], axis=0)
    med_tr = np.where(np.isnan(med_tr), 0.0, med_tr)
    Xi = np.where(np.isnan(X), med_tr, X)

    def xgb_rmse(Xm):
        """XGBoost with mlpipe's defaults: 100 rounds, depth 6, eta 0.3, lambda 1, min_child_weight 1,
        256 bins, starting from the training mean as mlpipe does."""
        model = xgb.XGBRegressor(n_estimators=100, max_depth=6, learning_rate=0.3, reg_lambda=1.0,
                                 min_child_weight=1.0, tree_method="hist", max_bin=256, random_state=0,
                                 base_score=float(np.mean(y[tr])))
        model.fit(Xm[tr], y[tr])
        return math.sqrt(float(np.mean((model.predict(Xm[te]) - y[te]) ** 2)))

    rmse_nan, rmse_med = xgb_rmse(X), xgb_rmse(Xi)
    rmse_x = min(rmse_nan, rmse_med)
    # For the record: mlpipe without imputation (its trees route the NULLs, as XGBoost's route NaN).
    cur.execute("""SELECT (metrics->>'rmse')::float8 FROM mlpipe.train('milk_price_nulls', 'gbt', 'milk', %s,
                     params => jsonb_build_object('split', 'time:Date', 'test_size', %s::float8))""",
                (TARGET, test_size))
    rmse_m_nan = cur.fetchone()[0]
    print("# milk: mlpipe RMSE %.4f (median imputation), %.4f (NULLs routed); XGBoost RMSE %.4f (NaN native), "
          "%.4f (same medians) (CHF/100 kg); ratio to the better XGBoost %.3f"
          % (rmse_m, rmse_m_nan, rmse_nan, rmse_med, rmse_m / rmse_x))
    check(rmse_m <= 1.05 * rmse_x, "milk price gbt RMSE %.4f vs XGBoost %.4f (need <= 1.05x = %.4f)"
          % (rmse_m, rmse_x, 1.05 * rmse_x))
    cur.execute("DROP SCHEMA t_milk CASCADE")
    conn.close()
    return failures


if __name__ == "__main__":
    try:
        sys.exit(1 if main() else 0)
    except Exception as e:
        print("FAIL milk scenario: %s: %s" % (type(e).__name__, e))
        sys.exit(1)
