"""smith.py: SQLsmith (Debian package sqlsmith) against a database with mlpipe
and the small model set, as a non-superuser member of mlpipe_admin (so that
random calls of pg_terminate_backend & co cannot hit other sessions), with a
statement timeout. Bounded: SMITH_QUERIES (CI 3000, long mode 60000) from a
fixed seed. Assertion: 0 crashes (postmaster pid unchanged, no 'terminated by
signal' in the server log)."""
import os
import shutil
import subprocess
import time

import tlib

DB = "torture_smith"
QUERIES = int(os.environ.get("SMITH_QUERIES", "3000" if tlib.CI else "60000"))
SEED = os.environ.get("TORTURE_SEED", "10")


def main():
    t0 = time.time()
    if not shutil.which("sqlsmith"):
        tlib.result(False, "sqlsmith: installed", "sqlsmith not found (scripts/setup.sh installs it)")
        tlib.finish()
    tlib.setup_models(DB)
    c = tlib.connect(DB)
    cur = c.cursor()
    cur.execute("DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'torture_smith') "
                "THEN CREATE ROLE torture_smith LOGIN; END IF; END$$")
    cur.execute("GRANT mlpipe_admin TO torture_smith")
    cur.execute("GRANT SELECT ON public.tdata TO torture_smith")
    cur.execute("ALTER ROLE torture_smith SET statement_timeout = '1s'")
    cur.execute("ALTER ROLE torture_smith SET mlpipe.max_memory = '256MB'")
    cur.execute("ALTER ROLE torture_smith SET mlpipe.progress = off")
    c.close()
    watch = tlib.CrashWatch()
    conn = "host=%s port=%s dbname=%s user=torture_smith" % (
        os.environ.get("PGHOST"), os.environ.get("PGPORT"), DB)
    log = os.path.join(tlib.OUT, "sqlsmith.log")
    with open(log, "w") as f:
        rc = subprocess.call(["sqlsmith", "--target=" + conn, "--seed=" + SEED,
                              "--max-queries=%d" % QUERIES, "--exclude-catalog", "--verbose"],
                             stdout=f, stderr=subprocess.STDOUT, timeout=1800)
    time.sleep(0.5)
    crashes = watch.crashes()
    tail = open(log, errors="replace").read()[-600:].replace("\n", " | ")
    tlib.result(not crashes, "sqlsmith: %d queries, server never crashed" % QUERIES,
                "; ".join(crashes[:5]) + " log: " + tail)
    tlib.result(rc == 0, "sqlsmith: ran to the end (exit 0)", "exit %s; %s" % (rc, tail))
    print("# sqlsmith: %d queries, %d crashes, rc %s, %.0f s (log %s)"
          % (QUERIES, len(crashes), rc, time.time() - t0, log), flush=True)
    tlib.finish()


if __name__ == "__main__":
    main()
