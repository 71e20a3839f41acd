"""Refuses to bench a database whose mlpipe SQL is older than the install.

A development build that changes function bodies keeps the version number
(0.4.0), so `CREATE EXTENSION IF NOT EXISTS` and `ALTER EXTENSION UPDATE`
both leave a bench database on the old bodies while the new mlpipe.so is
loaded: the figures then mix old SQL with new C (issue #13's fourth pass
measured predict_table that way at first). This compares the functions of
the bench database with a fresh CREATE EXTENSION in a scratch database.
vacuum_settled leaves a bench table all-visible, as autovacuum would;
median_pair and pgbench_pairs are the benches' shared ways of timing
mlpipe against its peer in turn; run_stamp / done_stamp the lines every
bench opens and closes with (the date, the commit, the load average).
"""
import datetime
import os
import subprocess
import tempfile
import time

import psycopg2


_DEFS = """
SELECT md5(string_agg(p.oid::regprocedure::text || coalesce(p.prosrc, '') ||
                      coalesce(array_to_string(p.proconfig, ','), ''), '|'
                      ORDER BY p.oid::regprocedure::text))
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname IN ('mlpipe', 'mlpipe_internal')
"""


def vacuum_settled(cur, table):
    """VACUUM ANALYZE table until every page is all-visible, as autovacuum
    leaves a table. scripts/pg.sh's cluster commits asynchronously, and a
    VACUUM that runs before the load's commit record is on disk cannot set
    the rows' hint bits, so it marks no page all-visible: every later read
    then checks each row's visibility (a few percent of gbt's read of 1M
    rows). The WAL writer flushes within a second; up to five tries half a
    second apart, then a warning."""
    for attempt in range(5):
        cur.execute("VACUUM ANALYZE %s" % table)
        cur.execute("SELECT relallvisible, relpages FROM pg_class WHERE oid = %s::regclass", (table,))
        vis, pages = cur.fetchone()
        if vis >= pages:
            return
        time.sleep(0.5)
    print("# warning: %s has %d of %d pages all-visible after VACUUM" % (table, vis, pages), flush=True)


def require_current_extension(cur):
    """Exits with a hint when the database's mlpipe functions differ from
    a fresh install's; warns and goes on when no scratch database can be
    made."""
    cur.execute("CREATE EXTENSION IF NOT EXISTS mlpipe")
    cur.execute(_DEFS)
    mine = cur.fetchone()[0]
    scratch = "mlpipe_bench_extcheck"
    try:
        cur.execute("DROP DATABASE IF EXISTS " + scratch)
        cur.execute("CREATE DATABASE " + scratch)
    except psycopg2.Error as e:
        print("# warning: cannot check that mlpipe's SQL is current (%s)" % str(e).strip())
        return
    try:
        params = dict(cur.connection.get_dsn_parameters(), dbname=scratch)
        params.pop("options", None)
        c2 = psycopg2.connect(**{k: v for k, v in params.items() if k in ("host", "port", "user", "dbname")})
        c2.autocommit = True
        cur2 = c2.cursor()
        cur2.execute("CREATE EXTENSION mlpipe")
        cur2.execute(_DEFS)
        fresh = cur2.fetchone()[0]
        c2.close()
    finally:
        cur.execute("DROP DATABASE IF EXISTS " + scratch)
    if mine != fresh:
        raise SystemExit("mlpipe's functions in database %s are not those of the installed scripts "
                         "(a development build changed them without a new version).\n"
                         "HINT: DROP EXTENSION mlpipe CASCADE; CREATE EXTENSION mlpipe; in that database "
                         "(the bench trains its models again)." % cur.connection.get_dsn_parameters().get("dbname"))


def median_pair(pairs, ratio):
    """The pair whose ratio(pair) is the median (the lower one of an even count): the
    benches time mlpipe and its peer in turn and report that pair."""
    return sorted(pairs, key=ratio)[(len(pairs) - 1) // 2]


PGBENCH = "/usr/lib/postgresql/15/bin/pgbench"


def pgbench_pairs(sql_a, sql_b, repeat, seconds):
    """One client, prepared: sql_a then sql_b for `seconds` each under pgbench, `repeat`
    times in turn (the machine's speed drifts); their transactions/s as (a, b) pairs."""
    pairs = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for name, sql in (("a", sql_a), ("b", sql_b)):
            paths.append(os.path.join(tmp, name + ".sql"))
            with open(paths[-1], "w") as f:
                f.write(sql + "\n")
        for _ in range(repeat):
            tps = []
            for path in paths:
                out = subprocess.run([PGBENCH, "-n", "-M", "prepared", "-c", "1", "-T", str(seconds), "-f", path],
                                     capture_output=True, text=True, check=True).stdout
                tps.append(float([ln for ln in out.splitlines() if ln.startswith("tps")][0].split()[2]))
            pairs.append(tuple(tps))
    return pairs


def loadavg():
    """The 1, 5 and 15 minute load averages, as /proc/loadavg gives them."""
    return " ".join(open("/proc/loadavg").read().split()[:3])


def commit():
    """The checkout's short commit hash, or "unknown" outside git."""
    try:
        here = os.path.dirname(os.path.abspath(__file__))
        return subprocess.run(["git", "-C", here, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_stamp(title):
    """The bench's first line: what, when, which commit, the load average and the CPUs
    (rerun when the load average is above 1.5)."""
    print("# mlpipe %s, %s UTC, commit %s, load average %s, %d CPUs"
          % (title, datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M"), commit(), loadavg(),
             os.cpu_count()), flush=True)


def done_stamp():
    """The bench's last line: the load average at the end."""
    print("# done, load average %s" % loadavg(), flush=True)

