#!/usr/bin/python3
"""Registry events as a listener sees them (NOTIFY mlpipe_events).

A second connection LISTENs while the first trains, promotes and rolls back:
- version_registered, promoted, gate_failed, rolled_back arrive at commit,
  as JSON with event, model, version, alias, run_id, at and by;
- nothing arrives from a transaction that rolls back;
- a 1 MB promotion reason still gives a valid JSON payload under 8000 bytes
  (NOTIFY's limit) that keeps event, model, version, alias and run_id.
Works in its own schema and model names, and removes them. Prints PASS/FAIL.
"""
import json
import os
import select
import sys
import time

import psycopg2

failures = 0
# Registry rows cannot be removed (alias_events is append-only): a fresh name per run.
PREFIX = "peer_events_%d_%d" % (os.getpid(), int(time.time()))


def check(ok, what):
    global failures
    print(("PASS " if ok else "FAIL ") + what, flush=True)
    failures += 0 if ok else 1


def drain(listener, wait=2.0):
    """Notifications on mlpipe_events received within wait seconds, as dicts."""
    out = []
    deadline = time.time() + wait
    while time.time() < deadline:
        if select.select([listener], [], [], max(0.0, deadline - time.time())) == ([], [], []):
            break
        listener.poll()
        while listener.notifies:
            n = listener.notifies.pop(0)
            if n.channel == "mlpipe_events":
                out.append(n.payload)
        if out:
            deadline = min(deadline, time.time() + 0.3)   # the rest of the same commit
    return out


def parse(payloads):
    events = []
    for p in payloads:
        try:
            events.append(json.loads(p))
        except ValueError:
            events.append({"event": "INVALID JSON", "raw": p[:200]})
    return [e for e in events if e.get("model") == PREFIX or e.get("event") == "INVALID JSON"]


def main():
    conn = psycopg2.connect("")
    conn.autocommit = True
    cur = conn.cursor()
    listener = psycopg2.connect("")
    listener.autocommit = True
    lcur = listener.cursor()
    lcur.execute("LISTEN mlpipe_events")

    cur.execute("CREATE EXTENSION IF NOT EXISTS mlpipe")
    cur.execute("SET mlpipe.progress = off")
    cur.execute("DROP SCHEMA IF EXISTS peer_events CASCADE; CREATE SCHEMA peer_events")
    cur.execute("""CREATE TABLE peer_events.pts AS
        SELECT i AS id, (CASE WHEN i % 2 = 0 THEN 0 ELSE 8 END + (i % 5) * 0.1)::float8 AS x,
               ((i % 3) * 0.1)::float8 AS y FROM generate_series(1, 60) i""")
    m = PREFIX
    try:
        # First version: registered and promoted, in one commit.
        cur.execute("SELECT run_id FROM mlpipe.train(%s, 'kmeans', 'peer_events.pts', features => '{x,y}',"
                    " params => '{\"k\": 2}')", (m,))
        run1 = cur.fetchone()[0]
        ev = parse(drain(listener))
        kinds = [e.get("event") for e in ev]
        check(kinds == ["version_registered", "promoted"], "first training sends version_registered, promoted: %s" % kinds)
        check(all(e.get("model") == m and e.get("version") == 1 and e.get("alias") == "production"
                  and e.get("run_id") == run1 and "at" in e and "by" in e for e in ev),
              "both carry model, version, alias, run_id, at, by")

        # A gate that fails (other params: the same ones would reproduce version 1,
        # which is a run of it, not a new version; docs/registry.md).
        cur.execute("SELECT run_id FROM mlpipe.train(%s, 'kmeans', 'peer_events.pts', features => '{x,y}',"
                    " params => '{\"k\": 2, \"seed\": 1}', gate => '{\"metric\": \"silhouette\", \"min\": 2}')", (m,))
        run2 = cur.fetchone()[0]
        ev = parse(drain(listener))
        kinds = [e.get("event") for e in ev]
        check(kinds == ["version_registered", "gate_failed"], "failing gate sends gate_failed: %s" % kinds)
        gf = ev[-1] if ev else {}
        check(gf.get("version") == 2 and gf.get("run_id") == run2 and "below the minimum" in gf.get("reason", ""),
              "gate_failed carries version 2, its run and the reason")

        # Promote and roll back.
        cur.execute("SELECT mlpipe.promote(%s, 2, reason => 'manual')", (m,))
        ev = parse(drain(listener))
        check([(e.get("event"), e.get("version"), e.get("from_version"), e.get("reason")) for e in ev]
              == [("promoted", 2, 1, "manual")], "promote sends promoted with from_version and reason")
        cur.execute("SELECT mlpipe.rollback(%s)", (m,))
        ev = parse(drain(listener))
        check([(e.get("event"), e.get("version"), e.get("from_version"), e.get("alias"), e.get("run_id")) for e in ev]
              == [("rolled_back", 1, 2, "production", run1)], "rollback sends rolled_back to version 1 with its run")

        # Nothing from a transaction that rolls back.
        cur.execute("BEGIN")
        cur.execute("SELECT mlpipe.promote(%s, 2)", (m,))
        cur.execute("ROLLBACK")
        ev = parse(drain(listener, 1.0))
        check(ev == [], "a rolled-back promotion sends nothing")

        # A huge reason: payload under the NOTIFY limit, still valid JSON.
        cur.execute("SELECT mlpipe.promote(%s, 2, reason => repeat('très long; \"quoted\" ', 50000))", (m,))
        raw = [p for p in drain(listener) if PREFIX in p]
        ev = parse(raw)
        check(len(raw) == 1 and len(raw[0].encode()) < 8000,
              "1 MB reason: one payload of %s bytes" % [len(r.encode()) for r in raw])
        e = ev[0] if ev else {}
        check(e.get("event") == "promoted" and e.get("model") == m and e.get("version") == 2
              and e.get("alias") == "production" and e.get("truncated") is True
              and e.get("reason", "").startswith("très long; \"quoted\"") and e.get("reason", "").endswith("…"),
              "it is valid JSON with event, model, version, alias, truncated and the start of the reason")
    finally:
        listener.close()
        # Registry rows of the test models stay (alias_events is append-only by design);
        # the source schema goes.
        cur.execute("DROP SCHEMA IF EXISTS peer_events CASCADE")
        conn.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
