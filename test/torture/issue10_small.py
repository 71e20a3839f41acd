"""issue10_small.py: issue #10 items 5, 6, 8 and 9.

- item 5: two concurrent predict_table runs (replace, incremental) into one
  target, without and with a unique index on the key: no key twice, no raw
  23505 (they serialise or merge).
- item 6: a trainer (non-superuser member of mlpipe_trainer) cannot forge
  runs and metrics through mlpipe_internal._log_run.
- item 8: mlpipe.max_memory / mlpipe.threads set out of range before the
  library loads (connection options) are refused when it matters: training
  errors (or the setting is refused at load), never a silent fallback.
- item 9: direct calls of the public _bin_counts_accum / _bin_counts_combine
  raise a user-error SQLSTATE, not XX000."""
import os
import threading
import time

import psycopg2

import tlib

DB = "torture_small"
TRAINER = "torture_trainer"


def concurrent_predict_table(cur):
    cur.execute("CREATE TABLE public.big AS SELECT * FROM public.tdata, generate_series(0, 9) g "
                "WHERE false")
    cur.execute("INSERT INTO public.big SELECT t.id + 1000 * g, a, b, c, y, yr FROM public.tdata t, "
                "generate_series(0, 49) g")
    for mode in ("replace", "incremental"):
        for index in (False, True):
            target = "public.pt_%s_%s" % (mode, "idx" if index else "noidx")
            cur.execute("CREATE TABLE %s (id int, prediction float8, label text, proba float8[], model text, "
                        "version int, scored_at timestamptz)" % target)
            if index:
                cur.execute("CREATE UNIQUE INDEX ON %s (id)" % target)
            errors = []
            barrier = threading.Barrier(2)

            def run():
                c = tlib.connect(DB)
                k = c.cursor()
                k.execute("SET mlpipe.progress = off")
                barrier.wait()
                try:
                    k.execute("SELECT mlpipe.predict_table('rf', 'SELECT id, a, b, c FROM public.big', %s, 'id', %s)",
                              (target, mode))
                except psycopg2.Error as e:
                    errors.append("%s %s" % (e.pgcode, (e.pgerror or "").splitlines()[0]))
                c.close()
            ts = [threading.Thread(target=run) for _ in range(2)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            cur.execute("SELECT count(*), count(DISTINCT id) FROM %s" % target)
            n, keys = cur.fetchone()
            raw = [e for e in errors if e.startswith("23505")]
            tlib.result(n == keys == 20000 and not raw,
                        "issue10 predict_table: two concurrent %s runs %s a unique index: each key once, no 23505"
                        % (mode, "with" if index else "without"),
                        "%d rows for %d keys; errors %s" % (n, keys, errors))


def forged_runs(cur):
    cur.execute("DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '%s') THEN "
                "CREATE ROLE %s NOSUPERUSER; END IF; END$$" % (TRAINER, TRAINER))
    cur.execute("GRANT mlpipe_trainer TO %s" % TRAINER)
    cur.execute("SELECT count(*) FROM mlpipe.runs")
    before = cur.fetchone()[0]
    cur.execute("SET ROLE %s" % TRAINER)
    try:
        cur.execute("SELECT mlpipe_internal._log_run('train', 'dt', 1, 'decision_tree', 'forged', '{}'::jsonb, 'succeeded', "
                    "NULL, 1, now(), NULL, '{\"accuracy\": 1.0}'::jsonb, 'test')")
        outcome = "accepted"
    except psycopg2.Error as e:
        outcome = "%s %s" % (e.pgcode, (e.pgerror or "").splitlines()[0])
    cur.execute("RESET ROLE")
    cur.execute("SELECT count(*) FROM mlpipe.runs")
    after = cur.fetchone()[0]
    tlib.result(after == before and outcome.startswith("42501"),
                "issue10 runs: a trainer cannot forge a run with metrics through _log_run (42501)",
                "%s; runs %d -> %d" % (outcome, before, after))


def settings_before_load():
    for setting, bad in (("mlpipe.max_memory", "100"), ("mlpipe.max_memory", "-1"),
                         ("mlpipe.threads", "1000"), ("mlpipe.threads", "0")):
        name = "issue10 settings: %s = %s set before load is refused when it matters" % (setting, bad)
        try:
            c = tlib.connect(DB, options="-c %s=%s" % (setting, bad))
        except psycopg2.Error as e:
            tlib.result(True, name + " (refused at connect: %s)" % e.pgcode)
            continue
        cur = c.cursor()
        try:
            cur.execute("SET mlpipe.progress = off")
            cur.execute("SELECT 1 FROM mlpipe.train('gucs', 'kmeans', 'public.tdata', NULL, ARRAY['a','b'], '{\"k\": 2}')")
            cur.execute("SHOW %s" % setting)
            shown = cur.fetchone()[0]
            tlib.result(False, name, "training ran with %s = %s" % (setting, shown))
        except psycopg2.Error as e:
            tlib.result(e.pgcode in ("22023", "54000", "F0000", "55000"), name,
                        "%s %s" % (e.pgcode, e.pgerror))
        c.close()


def bin_counts(cur):
    for sql in ("SELECT mlpipe_internal._bin_counts_accum(ARRAY[0,0,0]::bigint[], 1, 3)",
                "SELECT mlpipe_internal._bin_counts_accum(NULL, 1, 3)",
                "SELECT mlpipe_internal._bin_counts_combine(ARRAY[1,2]::bigint[], ARRAY[3,4]::bigint[])",
                "SELECT mlpipe_internal._bin_counts_combine(NULL, NULL)"):
        try:
            cur.execute(sql)
            code = "ok"
        except psycopg2.Error as e:
            code = e.pgcode
        tlib.result(code != "XX000", "issue10 XX000: %s raises a user-error SQLSTATE" % sql[7:],
                    code)


def main():
    t0 = time.time()
    tlib.setup_models(DB)
    c = tlib.connect(DB)
    cur = c.cursor()
    concurrent_predict_table(cur)
    forged_runs(cur)
    settings_before_load()
    bin_counts(cur)
    c.close()
    print("# issue10_small: %.0f s" % (time.time() - t0))
    tlib.finish()


if __name__ == "__main__":
    main()
