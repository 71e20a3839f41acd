"""kill9.py: kill -9 of the backend during train, predict_table and
run_pipeline (a real SIGKILL of the backend process, not
pg_terminate_backend), then checks that the cluster recovered (same
postmaster, connections work), that the registry has no partial rows (no new
model, version, alias, alias event or metric; no run left 'running') and the
prediction target has no partial rows (either absent or as before).
Each phase is killed KILLS times (CI 2, long mode 12) at points spread over
the statement's duration, timed once uncut first."""
import os
import signal
import threading
import time

import psycopg2

import tlib

DB = "torture_kill"
KILLS = int(os.environ.get("KILL_ROUNDS", "2" if tlib.CI else "12"))
COUNTS = ["mlpipe.models", "mlpipe.model_versions", "mlpipe.aliases", "mlpipe.alias_events",
          "mlpipe.metrics", "mlpipe.pipeline_runs"]


def snapshot(cur):
    snap = {}
    for t in COUNTS:
        try:
            cur.execute("SELECT count(*) FROM %s" % t)
            snap[t] = cur.fetchone()[0]
        except psycopg2.Error:
            snap[t] = None
    cur.execute("SELECT count(*) FROM mlpipe.runs WHERE status = 'running'")
    snap["running runs"] = cur.fetchone()[0]
    cur.execute("SELECT count(*) FROM mlpipe.runs WHERE status = 'succeeded' AND kind <> 'evaluate'")
    snap["succeeded runs"] = cur.fetchone()[0]
    cur.execute("SELECT CASE WHEN to_regclass('public.kill_out') IS NULL THEN -1 END")
    snap["kill_out rows"] = cur.fetchone()[0]
    if snap["kill_out rows"] is None:
        cur.execute("SELECT count(*) FROM public.kill_out")
        snap["kill_out rows"] = cur.fetchone()[0]
    return snap


def wait_up(seconds=60):
    end = time.time() + seconds
    while time.time() < end:
        try:
            c = tlib.connect(DB)
            c.cursor().execute("SELECT 1")
            c.close()
            return True
        except psycopg2.Error:
            time.sleep(0.3)
    return False


def kill_during(sql, delay, watch):
    """Runs sql on a fresh connection, SIGKILLs its backend after delay
    seconds (if still active); returns (killed, error text)."""
    conn = tlib.connect(DB)
    cur = conn.cursor()
    cur.execute("SET mlpipe.progress = off")
    pid = conn.get_backend_pid()
    out = {}

    def run():
        try:
            cur.execute(sql)
            out["done"] = True
        except psycopg2.Error as e:
            out["error"] = str(e).strip()[:200]
    t = threading.Thread(target=run)
    t.start()
    time.sleep(delay)
    killed = False
    if t.is_alive():
        watch.expected_kills.add(pid)
        os.kill(pid, signal.SIGKILL)
        killed = True
    t.join(60)
    try:
        conn.close()
    except psycopg2.Error:
        pass
    return killed, out


def main():
    t0 = time.time()
    tlib.setup_models(DB, n=20000)
    c = tlib.connect(DB)
    cur = c.cursor()
    cur.execute("CREATE TABLE public.kill_out AS SELECT 0 AS id WHERE false")
    cur.execute("DROP TABLE public.kill_out")
    cfg = ('{"steps": [{"kind": "train", "name": "t", "model": "kp", "algorithm": "random_forest", '
           '"source": "public.tdata", "target": "y", "features": ["a","b","c"], '
           '"params": {"n_estimators": 400, "seed": 1}}, '
           '{"kind": "predict", "name": "p", "model": "rf", "source": "public.tdata", '
           '"into": "public.kill_out", "key": "id", "mode": "replace"}]}')
    cur.execute("SELECT mlpipe.create_pipeline('killpipe', %s::jsonb)", (cfg,))
    c.close()
    phases = [
        ("train", "SELECT * FROM mlpipe.train('kt', 'random_forest', 'public.tdata', 'y', "
                  "ARRAY['a','b','c'], '{\"n_estimators\": 400, \"seed\": 1}')"),
        ("predict_table", "SELECT mlpipe.predict_table('rf', "
                          "'SELECT t.* FROM public.tdata t, generate_series(1, 20) g', "
                          "'public.kill_out', 'id', 'append')"),
        ("run_pipeline", "SELECT mlpipe.run_pipeline('killpipe')"),
    ]
    watch = tlib.CrashWatch()
    for phase, sql in phases:
        # Kill points spread over the statement's own duration, timed once
        # uncut: fixed delays stopped landing once the statements got faster.
        c = tlib.connect(DB)
        c.cursor().execute("SET synchronous_commit = on")   # pg.sh's is off: a crash could undo it
        t = time.time()
        c.cursor().execute(sql)
        took = time.time() - t
        c.close()
        for r in range(KILLS):
            delay = max(0.05, took * (r + 1) / (KILLS + 1))
            c = tlib.connect(DB)
            before = snapshot(c.cursor())
            c.close()
            killed, out = kill_during(sql, delay, watch)
            up = wait_up()
            name = "kill9 %s round %d (after %.2f s of %.2f s)" % (phase, r + 1, delay, took)
            tlib.result(up, name + ": cluster recovered", "no connection within 60 s")
            if not up:
                continue
            c = tlib.connect(DB)
            after = snapshot(c.cursor())
            c.close()
            if not killed:
                print("# %s: the statement finished before the kill (%s); not counted" % (name, out))
                continue
            diff = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
            tlib.result(not diff, name + ": no partial rows in registry or target", str(diff))
    pid_ok = tlib.postmaster_pid() == watch.pid
    tlib.result(pid_ok, "kill9: postmaster survived every kill", "pid %s -> %s" % (watch.pid, tlib.postmaster_pid()))
    others = [l for l in watch.crashes() if "postmaster pid" not in l]
    tlib.result(not others, "kill9: no crash other than the killed backends", "; ".join(others[:5]))
    print("# kill9: %d kills per phase, %.0f s" % (KILLS, time.time() - t0), flush=True)
    tlib.finish()


if __name__ == "__main__":
    main()
