"""standby.py: a hot standby of the suite's cluster: pg_basebackup -R with
streaming replication into .pg/standby (unix socket in .pg/standby/run, port
MLPIPE_PGPORT + 500, no TCP). Checks: scoring by name works read-only on the
standby (drift, a read path, too); a promotion on the primary is seen on the standby after it replays
(in a new session and in a session that scored before); write paths (train,
promote, rollback, predict_table, evaluate, create_pipeline,
run_pipeline, tag, prune) fail with SQLSTATE 25006 (read-only transaction),
never XX000; the SQLSTATE and message of each go to build/torture/standby.txt.
The standby is stopped and removed at the end. About 10 s."""
import os
import shutil
import subprocess
import time

import psycopg2

import tlib

DB = "torture_standby"
SB = os.path.join(tlib.PG, "standby")
PORT = str(int(os.environ.get("PGPORT", "55432")) + 500)
BIN = subprocess.run([os.environ.get("PG_CONFIG", "pg_config"), "--bindir"], capture_output=True,
                     text=True).stdout.strip()


def as_pg(args, **kw):
    if os.getuid() == 0:
        args = ["runuser", "-u", "postgres", "--"] + args
    return subprocess.run(args, capture_output=True, text=True, cwd="/", **kw)


def sconnect():
    return psycopg2.connect(dbname=DB, host=os.path.join(SB, "run"), port=PORT, user="postgres")


def stop_standby():
    if os.path.exists(os.path.join(SB, "data", "postmaster.pid")):
        as_pg([os.path.join(BIN, "pg_ctl"), "stop", "-D", os.path.join(SB, "data"), "-m", "immediate", "-w"])
    shutil.rmtree(SB, ignore_errors=True)


def scores(conn, ref):
    cur = conn.cursor()
    cur.execute("SELECT md5(string_agg(mlpipe.predict_label(%s, t), ',' ORDER BY id)) FROM public.tdata t", (ref,))
    return cur.fetchone()[0]


def wait_replay(primary, timeout=30):
    cur = primary.cursor()
    # insert position: with synchronous_commit = off the commit may not be written yet
    cur.execute("SELECT pg_current_wal_insert_lsn()")
    lsn = cur.fetchone()[0]
    end = time.time() + timeout
    while time.time() < end:
        s = sconnect()
        c = s.cursor()
        c.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,))
        ok = c.fetchone()[0]
        s.close()
        if ok:
            return True
        time.sleep(0.2)
    return False


def main():
    t0 = time.time()
    stop_standby()
    tlib.setup_models(DB)
    p = tlib.connect(DB)
    cur = p.cursor()
    cur.execute("SET mlpipe.progress = off")
    # version 2 learns the opposite labels, so it scores every row differently
    cur.execute("SELECT version FROM mlpipe.train('dt', 'decision_tree', "
                "'SELECT a, b, c, CASE y WHEN ''yes'' THEN ''no'' ELSE ''yes'' END AS y FROM public.tdata', 'y', "
                "ARRAY['a','b','c'], '{\"seed\": 1, \"max_depth\": 4}', '{\"metric\": \"accuracy\", \"min\": 2}')")
    v2 = cur.fetchone()[0]
    cur.execute("SELECT mlpipe.create_pipeline('sbp', %s::jsonb)",
                ('{"steps": [{"kind": "predict", "name": "p", "model": "dt", "source": "public.tdata", '
                 '"into": "public.sb_pipe", "key": "id", "mode": "replace"}]}',))
    os.makedirs(os.path.join(SB, "run"), exist_ok=True)
    if os.getuid() == 0:
        shutil.chown(SB, "postgres", "postgres")
        shutil.chown(os.path.join(SB, "run"), "postgres", "postgres")
    r = as_pg([os.path.join(BIN, "pg_basebackup"), "-D", os.path.join(SB, "data"), "-R", "-X", "stream",
               "-h", os.environ["PGHOST"], "-p", os.environ["PGPORT"], "-U", "postgres", "-c", "fast"])
    if not tlib.result(r.returncode == 0, "standby: pg_basebackup", r.stderr):
        tlib.finish()
    with open(os.path.join(SB, "data", "postgresql.auto.conf"), "a") as f:
        f.write("port = %s\nunix_socket_directories = '%s'\nhot_standby = on\n"
                "shared_preload_libraries = ''\n" % (PORT, os.path.join(SB, "run")))
    r = as_pg([os.path.join(BIN, "pg_ctl"), "start", "-D", os.path.join(SB, "data"), "-l",
               os.path.join(SB, "standby.log"), "-w", "-t", "60"])
    if not tlib.result(r.returncode == 0, "standby: started", r.stderr + r.stdout):
        tlib.finish()
    try:
        tlib.result(wait_replay(p), "standby: replays the primary", "no replay within 30 s")
        s = sconnect()
        s.autocommit = True
        c = s.cursor()
        c.execute("SELECT pg_is_in_recovery()")
        tlib.result(c.fetchone()[0], "standby: in recovery")
        prod = scores(p, "dt")
        try:
            tlib.result(scores(s, "dt") == prod, "standby: scoring by name works read-only",
                        "scores differ from the primary's")
            c.execute("SELECT count(*) FROM mlpipe.drift('dt', 'public.tdata')")
            tlib.result(c.fetchone()[0] > 0, "standby: drift (read-only) works")
            for form in ("mlpipe.predict('dt', t)", "mlpipe.predict_proba('dt', t)::text",
                         "mlpipe.predict('km@production', ARRAY[a, b, 1, 0, 0])"):
                c.execute("SELECT count(%s) FROM public.tdata t" % form)
                tlib.result(c.fetchone()[0] == 400, "standby: %s works" % form.split("(")[0])
        except psycopg2.Error as e:
            tlib.result(False, "standby: scoring by name works read-only", "%s %s" % (e.pgcode, e.pgerror))
        cur.execute("SELECT mlpipe.promote('dt', %s)", (v2,))
        new = scores(p, "dt")
        replayed = wait_replay(p)
        s2 = sconnect()
        s2.autocommit = True
        seen = scores(s2, "dt")
        tlib.result(new != prod and seen == new, "standby: a new session sees the promotion after replay",
                    "replayed %s; versions differ %s; standby serves the %s version"
                    % (replayed, new != prod, "old" if seen == prod else "unknown"))
        tlib.result(scores(s, "dt") == new, "standby: a session that scored before sees the promotion after replay",
                    "old version still served")
        writes = [
            ("train", "SELECT * FROM mlpipe.train('sb', 'kmeans', 'public.tdata', NULL, ARRAY['a','b'], '{\"k\": 2}')"),
            ("promote", "SELECT mlpipe.promote('dt', 1)"),
            ("rollback", "SELECT mlpipe.rollback('dt')"),
            ("predict_table", "SELECT mlpipe.predict_table('dt', 'public.tdata', 'public.sb_out', 'id')"),
            ("evaluate", "SELECT mlpipe.evaluate('dt', 'public.tdata')"),
            ("create_pipeline", "SELECT mlpipe.create_pipeline('sbp', '{\"steps\": [{\"kind\": \"predict\", \"name\": \"q\", \"model\": \"km\", \"source\": \"public.tdata\", \"into\": \"public.sb_out2\", \"key\": \"id\"}]}'::jsonb)"),
            ("run_pipeline", "SELECT mlpipe.run_pipeline('sbp')"),
            ("tag", "SELECT mlpipe.tag('dt', 1, 'k', 'v')"),
            ("prune", "SELECT mlpipe.prune('dt', 1)"),
            ("cross_validate", "SELECT mlpipe.cross_validate('decision_tree', 'public.tdata', 'y', "
                               "ARRAY['a','b'], '{}', 2)"),
        ]
        with open(os.path.join(tlib.OUT, "standby.txt"), "w") as f:
            for name, sql in writes:
                try:
                    c.execute(sql)
                    code, msg = "ok", "succeeded"
                except psycopg2.Error as e:
                    code, msg = e.pgcode, (e.pgerror or "").strip().replace("\n", " | ")
                f.write("%s\t%s\t%s\n" % (name, code, msg))
                print("# standby write %s: %s %s" % (name, code, msg[:160]))
                tlib.result(code != "XX000" and code != "ok", "standby: %s fails with a clear error (%s)" % (name, code),
                            msg)
                tlib.result(code == "25006", "standby: %s fails as read-only (25006)" % name, "%s %s" % (code, msg))
        s.close()
        s2.close()
    finally:
        p.close()
        stop_standby()
    print("# standby: %.0f s" % (time.time() - t0), flush=True)
    tlib.finish()


if __name__ == "__main__":
    main()
