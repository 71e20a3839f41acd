"""issue10_names.py: issue #10 item 4, user column names captured by generated SQL.

Collects every qualifier mlpipe's SQL uses (identifiers written as `x.` in
sql/ and in the SQL strings of src/: the aliases s, src, mlpipe_s, v, e, ...)
and builds a source whose extra columns carry each of those names, as
float8[] of the model's width (the shape that turned a capture into a silent
wrong result). Every entry point then runs over the clean source and over
the decoyed one: train, evaluate, cross_validate, search, predict_table,
drift and the row forms of predict. Assertion: no user column name changes
what mlpipe computes (same metrics, same predictions, no error)."""
import glob
import json
import os
import re

import psycopg2

import tlib

DB = "torture_i4"
XFAIL = "issue #10 item 4: generated SQL shares a namespace with the user's columns"
REAL = {"id", "x_alpha", "x_beta", "x_gamma", "label_y", "label_r", "zz_row_q"}  # zz_row_q: this test's own alias
SKIP = {"mlpipe", "mlpipe_internal", "pg_catalog", "pg_temp", "cron", "pg_toast", "information_schema"}
VOLATILE = re.compile(r"run|second|time|_at$|source|started|finished|version|model|created")


def aliases():
    names = set()
    for f in glob.glob(os.path.join(tlib.ROOT, "sql", "**", "*.sql"), recursive=True) + \
            glob.glob(os.path.join(tlib.ROOT, "src", "**", "*.c"), recursive=True):
        names |= set(re.findall(r"\b([a-z_][a-z0-9_]*)\.[a-z_\"%]", open(f, errors="replace").read()))
    return sorted(names - SKIP - REAL | {"s", "src", "mlpipe_s"})


def strip(doc):
    """A jsonb result without the keys that differ per run (ids, times, sources)."""
    if isinstance(doc, dict):
        return {k: strip(v) for k, v in doc.items() if not VOLATILE.search(k)}
    if isinstance(doc, list):
        return [strip(v) for v in doc]
    if isinstance(doc, float):
        return round(doc, 9)
    return doc


def main():
    tlib.fresh_db(DB)
    c = tlib.connect(DB)
    cur = c.cursor()
    cur.execute("SET mlpipe.progress = off")
    cur.execute(tlib.DATA_SQL % {"n": 600})
    cur.execute("CREATE TABLE public.clean AS SELECT id, a AS x_alpha, b AS x_beta, c AS x_gamma, "
                "y AS label_y, yr AS label_r FROM public.tdata")
    names = aliases()
    cols = ", ".join('ARRAY[9e9, -9e9, 9e9, -9e9, 9e9]::float8[] AS "%s"' % n for n in names)
    cur.execute("CREATE TABLE public.decoy AS SELECT *, %s FROM public.clean" % cols)
    feats = "ARRAY['x_alpha','x_beta','x_gamma']"
    models = [("m_dt", "decision_tree", "'label_y'"), ("m_gb", "gbt", "'label_r'"), ("m_km", "kmeans", "NULL")]
    params = {"decision_tree": '"seed": 1', "gbt": '"seed": 1, "n_estimators": 5', "kmeans": '"seed": 1, "k": 3'}
    for m, algo, tgt in models:
        cur.execute("SELECT 1 FROM mlpipe.train('%s', '%s', 'public.clean', %s, %s, '{%s, "
                    "\"preprocess\": {\"x_gamma\": {\"encode\": \"onehot\"}}}')" % (m, algo, tgt, feats, params[algo]))
    print("# names: %d decoy columns: %s" % (len(names), " ".join(names)))
    checks = []
    for m, algo, tgt in models:
        checks += [
            ("train %s" % algo, "SELECT metrics FROM mlpipe.train('t_%s_{src}', '%s', 'public.{src}', %s, %s, "
             "'{{%s}}')" % (m, algo, tgt, feats, params[algo])),
            ("evaluate %s" % m, "SELECT mlpipe.evaluate('%s', 'public.{src}')" % m),
            ("evaluate %s (query source)" % m, "SELECT mlpipe.evaluate('%s', 'SELECT * FROM public.{src}')" % m),
            ("cross_validate %s" % algo, "SELECT mlpipe.cross_validate('%s', 'public.{src}', %s, %s, "
             "'{{%s}}', 3)" % (algo, tgt, feats, params[algo])),
            ("drift %s" % m, "SELECT jsonb_agg(to_jsonb(d) ORDER BY d::text) FROM mlpipe.drift('%s', 'public.{src}') d" % m),
            ("predict row form %s" % m, "SELECT jsonb_agg(jsonb_build_array(mlpipe.predict('%s', zz_row_q), "
             "mlpipe.predict_label('%s', zz_row_q)) ORDER BY id) FROM public.{src} zz_row_q" % (m, m)),
            ("predict_table %s" % m, "SELECT mlpipe.predict_table('%s', 'public.{src}', 'public.out_%s_{src}', 'id', 'replace') ;; "
             "(SELECT jsonb_agg(jsonb_build_array(id, prediction, label) ORDER BY id) FROM public.out_%s_{src})" % (m, m, m)),
            ("predict_table upsert %s" % m, "SELECT mlpipe.predict_table('%s', 'SELECT * FROM public.{src}', "
             "'public.up_%s_{src}', 'id', 'upsert') ;; SELECT mlpipe.predict_table('%s', "
             "'public.{src}', 'public.up_%s_{src}', 'id', 'upsert') ;; (SELECT jsonb_agg(jsonb_build_array(id, prediction) "
             "ORDER BY id) FROM public.up_%s_{src})" % (m, m, m, m, m)),
        ]
        if tgt != "NULL":
            checks.append(("search %s" % algo, "SELECT metrics FROM mlpipe.search('s_%s_{src}', '%s', 'public.{src}', %s, %s, "
                           "'{{\"max_depth\": [2, 3]}}', 'grid', 2)" % (m, algo, tgt, feats)))
    # the predict_table target of a 'replace' must exist first for the second read: run clean, then decoy
    c.close()
    bad = 0
    for name, sql in checks:
        res = {}
        for src in ("clean", "decoy"):
            c = tlib.connect(DB)
            cur = c.cursor()
            cur.execute("SET mlpipe.progress = off")
            try:
                rows = []
                for part in sql.format(src=src).split(" ;; "):
                    cur.execute(part)
                    rows += cur.fetchall()
                res[src] = strip(json.loads(json.dumps(rows, default=str)))
            except psycopg2.Error as e:
                res[src] = "error %s %s" % (e.pgcode, (e.pgerror or "").splitlines()[0])
            c.close()
        same = res["clean"] == res["decoy"]
        if not same and isinstance(res["clean"], list) and isinstance(res["decoy"], list):
            a, b = json.dumps(res["clean"]), json.dumps(res["decoy"])
            k = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), 0)
            res = {"clean": "..." + a[max(0, k - 60):k + 80], "decoy": "..." + b[max(0, k - 60):k + 80]}
        bad += not same
        tlib.result(same, "issue10 names: %s is the same whatever the other columns are called" % name,
                    "clean %s | decoyed %s" % (str(res["clean"])[:200], str(res["decoy"])[:200]))
    print("# names: %d entry-point checks, %d changed by column names" % (len(checks), bad))
    tlib.finish()


if __name__ == "__main__":
    main()
