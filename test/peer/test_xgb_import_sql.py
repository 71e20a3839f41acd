#!/usr/bin/python3
"""test_xgb_import_sql.py: mlpipe.import and mlpipe.explain through SQL.

Run with Debian's python (XGBoost 1.7.4) against a database with
CREATE EXTENSION mlpipe (libpq environment, e.g. PGDATABASE):
    MLPIPE_DATA=/work/shared/data /usr/bin/python3 test/peer/test_xgb_import_sql.py [--bench]

Real data: UCI MAGIC gamma telescope (one value in 20 of fLength blanked
to NULL so XGBoost's default directions are exercised) and UCI bank
marketing (marital status, 3+ classes, from ten numeric columns).

1. XGBoost models (binary:logistic, reg:squarederror, multi:softprob) are
   saved with Booster.save_model and imported with mlpipe.import; then
   mlpipe.predict / predict_proba by row on the table equal XGBoost's
   predictions within 1e-6, and mlpipe.explain_values equals XGBoost's
   pred_contribs within 1e-6 (relative to max(1, |v|)).
2. mlpipe-trained decision_tree, random_forest and gbt models: explain's
   contributions plus the expected value equal the raw output (the
   probability of the positive class, the value, or the gbt margin through
   the sigmoid) within 1e-9 on every row.
3. The registry: the imported version's lineage says imported, from what;
   a bad document is 22P02/22023 naming the JSON path.
4. mlpipe.explain_global over every row of the table equals XGBoost's mean
   |pred_contribs| per feature within 1e-6 (binary, and each class of the
   multi-class model), and its gain importance is XGBoost's total gain,
   normalised, within 1e-6.
5. The round trip: mlpipe.export output imported back with mlpipe.import
   (an imported XGBoost model and the trained decision_tree,
   random_forest and gbt models) exports the same document and predicts
   identically on every row (the trained ones: the same artifact bytes;
   the XGBoost one differs in the sign of a zero base margin, which JSON
   cannot carry).
--bench times mlpipe.explain_values over 100,000 rows (a 100-tree depth-6
model; CPU seconds of the backend, no parallel workers) against XGBoost's
pred_contribs with nthread=1 (CPU seconds).
Prints one PASS/FAIL/SKIP line per check; exits 1 on a FAIL.
"""
import gzip
import io
import json
import os
import sys
import time

import numpy as np
import psycopg2
import xgboost as xgb

DATA = os.environ.get("MLPIPE_DATA", "/work/shared/data")
MAGIC_COLS = ["flength", "fwidth", "fsize", "fconc", "fconc1", "fasym", "fm3long", "fm3trans",
              "falpha", "fdist"]
failures = 0


def report(ok, what, figures):
    global failures
    if ok is None:
        print("SKIP " + what + ": " + figures, flush=True)
        return
    if not ok:
        failures += 1
    print(("PASS" if ok else "FAIL") + " " + what + ": " + figures, flush=True)


def magic():
    path = os.path.join(DATA, "uci_magic_gamma", "magic04.data.gz")
    rows = [line.strip().split(",") for line in gzip.open(path, "rt") if line.strip()]
    X = np.array([[float(v) for v in r[:10]] for r in rows])
    y = np.array([1 if r[10] == "g" else 0 for r in rows])
    X[::20, 0] = np.nan
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
    return [c.replace(".", "_") for c in cols], X, y, labels


def load_table(cur, name, names, X, y):
    cur.execute("DROP TABLE IF EXISTS %s" % name)
    cur.execute("CREATE TABLE %s (id int, %s, target int)"
                % (name, ", ".join("%s float8" % n for n in names)))
    buf = io.StringIO()
    for i in range(len(y)):
        vals = "\t".join("\\N" if np.isnan(v) else repr(float(v)) for v in X[i])
        buf.write("%d\t%s\t%d\n" % (i, vals, y[i]))
    buf.seek(0)
    cur.copy_expert("COPY %s FROM STDIN" % name, buf)


def column(cur, sql, args=()):
    cur.execute(sql, args)
    return np.array([r[0] for r in cur.fetchall()], dtype=float)


def import_model(cur, name, booster, names, classes=None):
    path = "/tmp/mlpipe_peer_%d_%s.json" % (os.getpid(), name)
    booster.save_model(path)
    doc = open(path).read()
    os.unlink(path)
    cur.execute("SELECT mlpipe.import(%s, %s::jsonb, features => %s, classes => %s, origin => %s)",
                (name, doc, names, classes, "test_xgb_import_sql.py " + name))
    return cur.fetchone()[0], doc


def check_contribs(cur, name, table, names, booster, X):
    arr = "ARRAY[%s]::float8[]" % ", ".join(names)
    cur.execute("SELECT mlpipe.explain_values(%%s, %s) FROM %s ORDER BY id" % (arr, table), (name,))
    mine = np.array([r[0] for r in cur.fetchall()], dtype=float)
    cx = booster.predict(xgb.DMatrix(X, nthread=1), pred_contribs=True).reshape(len(X), -1)
    diff = np.abs(mine - cx)
    drel = (diff / np.maximum(1.0, np.abs(cx))).max()
    report(drel <= 1e-6, name + " explain_values vs XGBoost pred_contribs",
           "%d rows x %d, max |diff| %.3g, max |diff|/max(1,|v|) %.3g (limit 1e-6)"
           % (len(X), cx.shape[1], diff.max(), drel))


def imported(cur):
    X, y = magic()
    load_table(cur, "xi_magic", MAGIC_COLS, X, y)
    dm = xgb.DMatrix(X, label=y, nthread=1)
    b = xgb.train({"objective": "binary:logistic", "max_depth": 6, "eta": 0.3, "nthread": 1}, dm, 50)
    ver, doc = import_model(cur, "xi_binary", b, MAGIC_COLS, ["h", "g"])
    px = b.predict(xgb.DMatrix(X, nthread=1))
    mine = column(cur, "SELECT (mlpipe.predict_proba('xi_binary', t))[2] FROM xi_magic t ORDER BY id")
    report(np.abs(mine - px).max() <= 1e-6, "xi_binary predict_proba (row form) vs XGBoost",
           "%d rows, max |diff| %.3g (limit 1e-6)" % (len(X), np.abs(mine - px).max()))
    check_contribs(cur, "xi_binary", "xi_magic", MAGIC_COLS, b, X)

    cols = [c for c in MAGIC_COLS if c != "fconc"]
    Xr = X[:, [MAGIC_COLS.index(c) for c in cols]]
    r = xgb.train({"objective": "reg:squarederror", "max_depth": 5, "eta": 0.2, "nthread": 1},
                  xgb.DMatrix(Xr, label=X[:, 3], nthread=1), 50)
    import_model(cur, "xi_reg", r, cols)
    px = r.predict(xgb.DMatrix(Xr, nthread=1))
    mine = column(cur, "SELECT mlpipe.predict('xi_reg', t) FROM xi_magic t ORDER BY id")
    report(np.abs(mine - px).max() <= 1e-6, "xi_reg predict (row form) vs XGBoost",
           "%d rows, max |diff| %.3g (limit 1e-6)" % (len(X), np.abs(mine - px).max()))
    check_contribs(cur, "xi_reg", "xi_magic", cols, r, Xr)

    names, Xb, yb, labels = bank()
    load_table(cur, "xi_bank", names, Xb, yb)
    m = xgb.train({"objective": "multi:softprob", "num_class": len(labels), "max_depth": 4,
                   "eta": 0.3, "nthread": 1}, xgb.DMatrix(Xb, label=yb, nthread=1), 30)
    import_model(cur, "xi_multi", m, names, labels)
    px = m.predict(xgb.DMatrix(Xb, nthread=1))
    cur.execute("SELECT mlpipe.predict_proba('xi_multi', t) FROM xi_bank t ORDER BY id")
    mine = np.array([r[0] for r in cur.fetchall()], dtype=float)
    report(np.abs(mine - px).max() <= 1e-6, "xi_multi predict_proba (row form) vs XGBoost",
           "%d rows x %d, max |diff| %.3g (limit 1e-6)" % (len(Xb), len(labels), np.abs(mine - px).max()))
    check_contribs(cur, "xi_multi", "xi_bank", names, m, Xb)

    # Registry: lineage and status.
    cur.execute("SELECT v.source, v.lineage->'imported'->>'objective', v.status, v.algorithm "
                "FROM mlpipe.model_versions v WHERE v.model = 'xi_binary' AND v.version = %s", (ver,))
    src, obj, status, algo = cur.fetchone()
    report(obj == "binary:logistic" and status == "promoted" and algo == "gbt" and "xi_binary" in src,
           "xi_binary registry row", "source %r, objective %s, status %s, algorithm %s" % (src, obj, status, algo))
    # The same model imported again reproduces the latest version byte for
    # byte: it is recorded against that version, not stored twice.
    v_same, _ = import_model(cur, "xi_binary", b, MAGIC_COLS, ["h", "g"])
    report(v_same == ver, "xi_binary identical re-import", "version %d (first import %d)" % (v_same, ver))
    # Another model under that name: no test metrics, so the default gate keeps it a candidate.
    b40 = xgb.train({"objective": "binary:logistic", "max_depth": 6, "eta": 0.3, "nthread": 1}, dm, 40)
    v2, _ = import_model(cur, "xi_binary", b40, MAGIC_COLS, ["h", "g"])
    cur.execute("SELECT status FROM mlpipe.model_versions WHERE model = 'xi_binary' AND version = %s", (v2,))
    st = cur.fetchone()[0]
    report(v2 == ver + 1 and st == "candidate", "xi_binary second import", "version %d, status %s" % (v2, st))

    # Bad documents: SQLSTATE and the JSON path.
    d = json.loads(doc)
    d["learner"]["gradient_booster"]["model"]["trees"][3]["left_children"][0] = 10 ** 6
    for what, bad, code in (("child out of range", json.dumps(d), "22P02"),
                            ("not a model", '{"a": 1}', "22P02")):
        try:
            cur.execute("SELECT mlpipe.import('xi_bad', %s::jsonb, features => %s)", (bad, MAGIC_COLS))
            report(False, "bad document: " + what, "accepted")
        except psycopg2.Error as e:
            report(e.pgcode == code, "bad document: " + what, "%s %s" % (e.pgcode, e.pgerror.splitlines()[0]))
    explain_global(cur, "xi_binary", "xi_magic", MAGIC_COLS, b, X, None)
    for k, label in enumerate(labels):
        explain_global(cur, "xi_multi", "xi_bank", names, m, Xb, (k, label))
    round_trip(cur, "xi_binary", "xi_magic")
    return X, y


def explain_global(cur, name, table, names, booster, X, cls):
    """explain_global over every row == XGBoost's mean |pred_contribs|; gain importance == total gain."""
    cur.execute("SELECT feature, mean_abs_contribution, gain_importance FROM mlpipe.explain_global(%s, %s, %s, %s)",
                (name, table, len(X) + 1, cls[1] if cls else None))
    got = {f: (m, g) for f, m, g in cur.fetchall()}
    cx = booster.predict(xgb.DMatrix(X, nthread=1), pred_contribs=True)
    if cls is not None:
        cx = cx[:, cls[0], :]
    want = np.abs(cx[:, :-1].astype(np.float64)).mean(axis=0)   # XGBoost's float32 values, summed in double
    mine = np.array([got[n][0] for n in names])
    gain = booster.get_score(importance_type="total_gain")
    gw = np.array([gain.get(n, gain.get("f%d" % i, 0.0)) for i, n in enumerate(names)])
    gw = gw / gw.sum()
    gm = np.array([got[n][1] for n in names])
    drel = (np.abs(mine - want) / np.maximum(1.0, want)).max()
    what = name + (" class " + cls[1] if cls else "")
    report(drel <= 1e-6 and len(got) == len(names),
           what + " explain_global vs XGBoost mean |pred_contribs|",
           "%d rows, %d features, max |diff|/max(1,v) %.3g (limit 1e-6); top feature %s %.4f"
           % (len(X), len(names), drel, names[int(np.argmax(want))], want.max()))
    report(np.abs(gm - gw).max() <= 1e-6, what + " explain_global gain importance vs XGBoost total_gain",
           "max |diff| %.3g (limit 1e-6)" % np.abs(gm - gw).max())


def round_trip(cur, name, table):
    """mlpipe.export -> mlpipe.import: same artifact bytes, identical predictions on every row."""
    back = name.replace("@", "_v") + "_back"
    cur.execute("SELECT mlpipe.import(%s, mlpipe.export(mlpipe.artifact(%s)), origin => 'round trip')",
                (back, name))
    cur.execute("SELECT a.artifact = b.artifact, mlpipe.export(a.artifact) = mlpipe.export(b.artifact), "
                "a.algorithm, b.algorithm FROM mlpipe.model_versions a, "
                "mlpipe.model_versions b, mlpipe.resolve(%s) r "
                "WHERE a.model = r.model AND a.version = r.version AND b.model = %s", (name, back))
    same, same_export, algo, algo_back = cur.fetchone()
    cur.execute("SELECT count(*), count(*) FILTER (WHERE mlpipe.predict_proba(%%s, t) = mlpipe.predict_proba(%%s, t)) "
                "FROM %s t" % table, (name, back))
    n, equal = cur.fetchone()
    # JSON has no negative zero: a -0.0 (XGBoost's base margin of 0.5) comes back as 0.0,
    # which changes the bytes but no sum; the exports are then still identical.
    report(same_export and equal == n and algo == algo_back, name + " export -> import round trip",
           "same artifact bytes %s (same export %s), %s -> %s, identical predict_proba on %d of %d rows"
           % (same, same_export, algo, algo_back, equal, n))


def trained(cur):
    """mlpipe-trained models: contributions + expected value == raw output within 1e-9."""
    arr = "ARRAY[%s]::float8[]" % ", ".join(MAGIC_COLS)
    cur.execute("DROP VIEW IF EXISTS xi_magic_cls")
    cur.execute("CREATE VIEW xi_magic_cls AS SELECT %s, CASE target WHEN 1 THEN 'g' ELSE 'h' END AS label "
                "FROM xi_magic" % ", ".join(MAGIC_COLS))
    cur.execute("CREATE TEMP TABLE xi_sample AS SELECT * FROM xi_magic WHERE id % 7 = 0")
    for algo, params in (("decision_tree", {"max_depth": 8}), ("random_forest", {"n_estimators": 20, "max_depth": 8}),
                         ("gbt", {"n_estimators": 40, "max_depth": 5})):
        name = "xt_" + algo
        cur.execute("SELECT version FROM mlpipe.train(%s, %s, 'xi_magic_cls', 'label', params => %s)",
                    (name, algo, json.dumps(params)))
        name = "%s@%d" % (name, cur.fetchone()[0])
        cur.execute(("SELECT (mlpipe.predict_proba(%%s, %s))[2], mlpipe.explain_values(%%s, %s) "
                     "FROM xi_sample ORDER BY id") % (arr, arr), (name, name))
        rows = cur.fetchall()
        p = np.array([r[0] for r in rows])
        phi = np.array([r[1] for r in rows])
        d = len(MAGIC_COLS) + 1
        if algo == "gbt":
            s = phi.sum(axis=1)
            err = np.abs(1 / (1 + np.exp(-s)) - p).max()
        else:
            err = np.abs(phi[:, d:2 * d].sum(axis=1) - p).max()
        report(err <= 1e-9, name + " contributions + expected value == raw output",
               "%d rows, max |diff| %.3g (limit 1e-9)" % (len(rows), err))
        round_trip(cur, name, "xi_magic_cls")
    # The set-returning form: per row of the table, in a LATERAL join, top_k.
    cur.execute("SELECT count(*), count(DISTINCT t.id) FROM xi_sample t "
                "CROSS JOIN LATERAL mlpipe.explain(%s, t, top_k => 3) e", (name,))
    n, ids = cur.fetchone()
    report(n == 4 * ids, "explain LATERAL top_k 3", "%d rows for %d table rows (3 features + expected)" % (n, ids))


def bench(cur):
    X, y = magic()
    b = xgb.train({"objective": "binary:logistic", "max_depth": 6, "nthread": 1},
                  xgb.DMatrix(X, label=y, nthread=1), 100)
    import_model(cur, "xi_bench", b, MAGIC_COLS)
    cur.execute("DROP TABLE IF EXISTS xi_bench_rows")
    cur.execute("CREATE TABLE xi_bench_rows AS SELECT * FROM xi_magic, generate_series(1, 6) g "
                "ORDER BY g, id LIMIT 100000")
    arr = "ARRAY[%s]::float8[]" % ", ".join(MAGIC_COLS)
    cur.execute("SET max_parallel_workers_per_gather = 0")   # one backend, one thread
    cur.execute("SELECT pg_backend_pid()")
    stat = "/proc/%d/stat" % cur.fetchone()[0]

    def backend_cpu():   # the server is local in the suite; wall time otherwise
        if not os.path.exists(stat):
            return time.time()
        f = open(stat).read().split(")")[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    t0 = backend_cpu()
    cur.execute("SELECT sum(array_length(mlpipe.explain_values('xi_bench', %s), 1)) FROM xi_bench_rows" % arr)
    mine = backend_cpu() - t0
    cur.execute("RESET max_parallel_workers_per_gather")
    Xb = np.tile(X, (6, 1))[:100000]
    b.set_param({"nthread": 1})
    dm = xgb.DMatrix(Xb, nthread=1)
    t0 = time.process_time()
    b.predict(dm, pred_contribs=True)
    theirs = time.process_time() - t0
    report(True, "explain_values speed, 100,000 rows x 100 trees depth 6",
           "mlpipe.explain_values (backend CPU) %.2f s, XGBoost pred_contribs nthread=1 %.2f s (CPU), ratio %.2f"
           % (mine, theirs, mine / theirs))


def main():
    conn = psycopg2.connect("")
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SET mlpipe.progress = off")
    cur.execute("SELECT count(*) FROM mlpipe.models WHERE name LIKE 'x_\\_%'")
    if cur.fetchone()[0]:
        print("FAIL the database already has xi_/xt_ models: run in a fresh database")
        sys.exit(1)
    imported(cur)
    trained(cur)
    if "--bench" in sys.argv:
        bench(cur)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
