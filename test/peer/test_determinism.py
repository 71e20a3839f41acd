#!/usr/bin/python3
"""The same seed gives the same artifact, even when another session is in the
middle of scanning the same large table: PostgreSQL's synchronized scans
start the training's read where that scan is, so the rows arrive in another
order; training puts them into its canonical order by content (and draws its
binning sample by content hash: src/core/roworder.h), so the model does not
change. Prints PASS/FAIL lines."""
import threading
import time

import psycopg2

SCHEMA = "peer_det"
failures = 0


def check(ok, what):
    global failures
    print(("PASS " if ok else "FAIL ") + what)
    failures += 0 if ok else 1


def connect():
    c = psycopg2.connect("")
    c.autocommit = True
    return c


def train(name):
    cur = connect().cursor()
    cur.execute("SET mlpipe.progress = off")
    cur.execute("SELECT version FROM mlpipe.train(%s, 'gbt', %s, 'y', params => "
                "'{\"n_estimators\": 3, \"max_depth\": 3, \"test_size\": 0}')", (name, SCHEMA + ".big"))
    version = cur.fetchone()[0]
    cur.execute("SELECT sha256 FROM mlpipe.model_versions WHERE model = %s AND version = %s", (name, version))
    return cur.fetchone()[0]


def main():
    cur = connect().cursor()
    cur.execute("DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s" % (SCHEMA, SCHEMA))
    # Synchronized scans apply to tables over a quarter of shared_buffers:
    # make it bigger than all of shared_buffers.
    cur.execute("SELECT pg_size_bytes(current_setting('shared_buffers'))")
    target = cur.fetchone()[0] * 1.3
    rows = int(target / 260) + 1
    cur.execute("SELECT setseed(0.5)")
    cur.execute("CREATE TABLE %s.big AS SELECT i AS id, ARRAY(SELECT random() + i * 0 FROM generate_series(1, 24)) AS x, "
                "(i %% 3 = 0) AS y FROM generate_series(1, %d) i" % (SCHEMA, rows))
    cur.execute("SELECT pg_total_relation_size('%s.big') > pg_size_bytes(current_setting('shared_buffers'))" % SCHEMA)
    check(cur.fetchone()[0], "the table (%d rows) is bigger than shared_buffers" % rows)
    first = train("peer_det_a")

    def scan():
        c = psycopg2.connect("")
        k = c.cursor()
        k.execute("BEGIN; DECLARE k CURSOR FOR SELECT * FROM %s.big; FETCH %d FROM k" % (SCHEMA, rows // 2))
        time.sleep(4)
        c.close()

    t = threading.Thread(target=scan)
    t.start()
    time.sleep(2)
    second = train("peer_det_b")
    t.join()
    check(first == second, "same seed, same artifact while another session scans the table (%s, %s)"
          % (first[:12], second[:12]))
    cur.execute("DROP SCHEMA %s CASCADE" % SCHEMA)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
