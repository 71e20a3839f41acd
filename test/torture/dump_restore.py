"""dump_restore.py: pg_dump / pg_restore of a database with models (several
versions of each algorithm), aliases (promotions, a rollback, a second alias),
tags, a pipeline and its runs, and a predict_table target, into a fresh
database. Afterwards every model version scores identically (predict,
predict_label, predict_proba, by name and by version, array and row forms),
the registry history (models, versions, aliases, alias_events, runs, metrics,
pipelines) is intact row for row, and training and promotion still work in
the restored database (identity sequences restored). About 5 s."""
import os
import subprocess
import time

import psycopg2

import tlib

SRC = "torture_dump"
DST = "torture_restored"
TABLES = ["mlpipe.models", "mlpipe.model_versions", "mlpipe.aliases", "mlpipe.alias_events",
          "mlpipe.runs", "mlpipe.metrics", "mlpipe.pipelines", "mlpipe.pipeline_versions"]


def fingerprints(db):
    """{what: md5} for every registry table and every version's scores."""
    c = tlib.connect(db)
    cur = c.cursor()
    fp = {}
    for t in TABLES:
        cur.execute("SELECT count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM %s x" % t)
        fp[t] = cur.fetchone()
    cur.execute("SELECT model, version, (SELECT task FROM mlpipe_internal._scoring_info(model || '@' || version)) "
                "FROM mlpipe.model_versions ORDER BY 1, 2")
    for model, version, task in cur.fetchall():
        ref = "%s@%s" % (model, version)
        exprs = ["mlpipe.predict(%(r)s, t)", "mlpipe.predict(%(r)s, ARRAY[a, b, 1, 0, 0])"]
        if task == "classification":
            exprs += ["mlpipe.predict_label(%(r)s, t)", "mlpipe.predict_proba(%(r)s, t)::text"]
        for e in exprs:
            q = "SELECT md5(string_agg((%s)::text, ',' ORDER BY id)) FROM public.tdata t" % e
            try:
                cur.execute(q, {"r": ref})
                fp[(ref, e)] = cur.fetchone()[0]
            except psycopg2.Error as err:
                fp[(ref, e)] = "error %s" % err.pgcode
    for alias_ref in ("dt", "km", "rf", "gb", "dt@staging"):
        cur.execute("SELECT md5(string_agg(mlpipe.predict(%s, t)::text, ',' ORDER BY id)) FROM public.tdata t",
                    (alias_ref,))
        fp[alias_ref] = cur.fetchone()[0]
    cur.execute("SELECT md5(string_agg(x::text, '|' ORDER BY x::text)) FROM "
                "(SELECT id, prediction, label, model, version FROM public.dump_out) x")
    fp["dump_out"] = cur.fetchone()[0]
    c.close()
    return fp


def main():
    t0 = time.time()
    tlib.setup_models(SRC)
    c = tlib.connect(SRC)
    cur = c.cursor()
    cur.execute("SET mlpipe.progress = off")
    for name, algo, target, params in tlib.MODELS:
        cur.execute("SELECT * FROM mlpipe.train(%s, %s, 'SELECT * FROM public.tdata WHERE id %% 5 <> 0', %s, "
                    "ARRAY['a','b','c'], %s::jsonb)", (name, algo, target, params.replace('"seed": 1', '"seed": 2')))
    cur.execute("SELECT mlpipe.promote('dt', 2, 'production', 'torture')")
    cur.execute("SELECT mlpipe.promote('dt', 1, 'staging')")
    cur.execute("SELECT mlpipe.promote('km', 2)")
    cur.execute("SELECT mlpipe.rollback('km')")
    cur.execute("SELECT mlpipe.tag('dt', 2, 'owner', 'torture')")
    cur.execute("SELECT mlpipe.predict_table('dt', 'public.tdata', 'public.dump_out', 'id', 'replace')")
    cur.execute("SELECT mlpipe.create_pipeline('dp', %s::jsonb)",
                ('{"steps": [{"kind": "predict", "name": "p", "model": "rf", "source": "public.tdata", '
                 '"into": "public.dump_pipe", "key": "id", "mode": "replace"}]}',))
    cur.execute("SELECT mlpipe.run_pipeline('dp')")
    cur.execute("SELECT * FROM mlpipe.evaluate('gb', 'public.tdata')")
    c.close()
    before = fingerprints(SRC)
    dump = os.path.join(tlib.OUT, "torture_dump.dump")
    r = subprocess.run(["pg_dump", "-Fc", "-d", SRC, "-f", dump], capture_output=True, text=True)
    tlib.result(r.returncode == 0, "dump_restore: pg_dump succeeded", r.stderr)
    tlib.fresh_db(DST, extension=False)
    r = subprocess.run(["pg_restore", "-d", DST, "--exit-on-error", dump], capture_output=True, text=True)
    tlib.result(r.returncode == 0 and not r.stderr.strip(), "dump_restore: pg_restore without errors", r.stderr)
    after = fingerprints(DST)
    for t in TABLES:
        tlib.result(before[t] == after.get(t), "dump_restore: %s intact (%s rows)" % (t, before[t][0]),
                    "before %s after %s" % (before[t], after.get(t)))
    scoring = [k for k in before if k not in TABLES]
    diff = [k for k in scoring if before[k] != after.get(k)]
    tlib.result(not diff, "dump_restore: all %d scoring fingerprints identical" % len(scoring),
                "; ".join("%s: %s vs %s" % (k, before[k], after.get(k)) for k in diff[:5]))
    c = tlib.connect(DST)
    cur = c.cursor()
    try:
        cur.execute("SET mlpipe.progress = off")
        cur.execute("SELECT version, run_id FROM mlpipe.train('dt', 'decision_tree', 'public.tdata', 'y', "
                    "ARRAY['a','b','c'], '{\"seed\": 3}')")
        v, run = cur.fetchone()
        cur.execute("SELECT mlpipe.promote('dt', %s)", (v,))
        cur.execute("SELECT mlpipe.rollback('dt')")
        tlib.result(v == 3, "dump_restore: training and promotion work after restore (version %s)" % v,
                    "expected version 3")
    except psycopg2.Error as e:
        tlib.result(False, "dump_restore: training and promotion work after restore", "%s %s" % (e.pgcode, e.pgerror))
    c.close()
    print("# dump_restore: %d versions, %d fingerprints, %.0f s"
          % (before["mlpipe.model_versions"][0], len(before), time.time() - t0), flush=True)
    tlib.finish()


if __name__ == "__main__":
    main()
