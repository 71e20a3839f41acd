"""tlib.py: shared helpers for the torture suite (test/torture/): connecting to
the cluster in .pg/ (PGHOST/PGPORT from scripts/pg.sh env), crash detection
(postmaster pid and the server log), PASS/FAIL/XFAIL lines, and a small set of
trained models in a database of the suite's own."""
import os
import re
import sys
import time

import psycopg2
import psycopg2.extensions

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PG = os.path.realpath(os.path.join(ROOT, ".pg"))
LOG = os.path.join(PG, "log", "postgres.log")
CI = os.environ.get("TORTURE_LONG", "") != "1"
OUT = os.environ.get("TORTURE_OUT", os.path.join(ROOT, "build", "torture"))
os.makedirs(OUT, exist_ok=True)


def connect(db, autocommit=True, **kw):
    """A connection to database db on the suite's cluster."""
    conn = psycopg2.connect(dbname=db, host=os.environ.get("PGHOST", os.path.join(PG, "run")),
                            port=os.environ.get("PGPORT", "55432"),
                            user=os.environ.get("PGUSER", "postgres"), **kw)
    conn.autocommit = autocommit
    return conn


def postmaster_pid():
    """The postmaster's pid from postmaster.pid (None when absent)."""
    try:
        with open(os.path.join(PG, "data", "postmaster.pid")) as f:
            return int(f.readline())
    except OSError:
        return None


def log_size():
    try:
        return os.path.getsize(LOG)
    except OSError:
        return 0


def log_since(offset):
    """Server log text written since byte offset."""
    try:
        with open(LOG, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


CRASH_RE = re.compile(r"terminated by signal|was terminated by exception|"
                      r"all server processes terminated|PANIC:")


class CrashWatch:
    """Remembers the postmaster pid and log offset; crashes() lists what
    changed since (pid replaced, 'terminated by signal' lines). Lines about a
    pid in `expected_kills` (our own kill -9) are not crashes."""

    def __init__(self):
        self.pid = postmaster_pid()
        self.offset = log_size()
        self.expected_kills = set()

    def crashes(self):
        found = []
        if postmaster_pid() != self.pid:
            found.append("postmaster pid changed %s -> %s" % (self.pid, postmaster_pid()))
        for line in log_since(self.offset).splitlines():
            if CRASH_RE.search(line):
                m = re.search(r"PID (\d+)", line)
                if m and int(m.group(1)) in self.expected_kills:
                    continue
                if "all server processes terminated" in line and self.expected_kills:
                    continue
                found.append(line.strip())
        return found


failures = 0


def result(ok, name, detail="", xfail=None):
    """Prints PASS name, or FAIL name: detail; when xfail (a reason) is given
    and we are in CI mode, a failure prints XFAIL name: reason instead. An
    expected failure that passes prints PASS (the lead then removes the mark)."""
    global failures
    if ok:
        print("PASS %s" % name, flush=True)
    elif xfail and CI:
        print("XFAIL %s: %s [%s]" % (name, xfail, detail[:300]), flush=True)
    else:
        failures += 1
        print("FAIL %s: %s" % (name, detail[:1000]), flush=True)
    return ok


def fresh_db(name, extension=True):
    """Drops and recreates database name, with mlpipe created."""
    c = connect("postgres")
    cur = c.cursor()
    cur.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)
    cur.execute("CREATE DATABASE %s" % name)
    c.close()
    if extension:
        c = connect(name)
        c.cursor().execute("CREATE EXTENSION mlpipe CASCADE")
        c.close()


DATA_SQL = """
CREATE TABLE public.tdata AS
SELECT i AS id,
       (i %% 7)::float8 + (i %% 13) / 13.0 AS a,
       ((i * 37) %% 101)::float8 / 10 AS b,
       (ARRAY['red','green','blue'])[1 + i %% 3] AS c,
       CASE WHEN (i %% 7) + ((i * 37) %% 101) / 20 > 6 THEN 'yes' ELSE 'no' END AS y,
       (i %% 7) * 2.5 + ((i * 37) %% 101) / 10.0 AS yr
FROM generate_series(1, %(n)s) i;
"""

MODELS = [
    ("km", "kmeans", None, '{"k": 3, "seed": 1}'),
    ("dt", "decision_tree", "y", '{"seed": 1, "max_depth": 4}'),
    ("rf", "random_forest", "y", '{"seed": 1, "n_estimators": 5, "max_depth": 4}'),
    ("gb", "gbt", "yr", '{"seed": 1, "n_estimators": 5}'),
]


def setup_models(db, n=400):
    """Fresh database db with table public.tdata (id, a, b, c text, y text,
    yr float8) and models km (kmeans on a,b,c), dt, rf (classify y), gb
    (regress yr)."""
    fresh_db(db)
    c = connect(db)
    cur = c.cursor()
    cur.execute(DATA_SQL % {"n": n})
    for name, algo, target, params in MODELS:
        feats = "ARRAY['a','b','c']"
        cur.execute("SET mlpipe.progress = off")
        cur.execute("SELECT * FROM mlpipe.train(%s, %s, 'public.tdata', %s, " + feats + ", %s::jsonb)",
                    (name, algo, target, params))
    c.close()


def finish():
    sys.exit(1 if failures else 0)
