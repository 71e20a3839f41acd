"""concurrency.py: scorers + a trainer + a promoter/rollback loop on one model.

Model `cc` is a regression tree on a constant target, so version v predicts a
distinguishable constant C(v) for every row. Two scorers loop over
`SELECT min(predict('cc', ...)), max(...), count(*)` (array and row forms):
every statement must see exactly one whole version (min = max = C(v) of a
version that exists). A trainer adds versions, a promoter promotes random
versions and rolls back. Afterwards the registry must be consistent: aliases
point at existing versions, the last alias event of each alias names its
current version, each event's from_version is the previous event's
to_version, and no run is left 'running'. CI: 20 s of load (TORTURE_LONG: 300 s)."""
import os
import random
import threading
import time

import psycopg2

import tlib

DB = "torture_conc"
SECONDS = float(os.environ.get("CONC_SECONDS", "20" if tlib.CI else "300"))
SRC = "SELECT a, b, %s::float8 AS yv FROM public.tdata"


def const_of(k):
    return 1000.0 + k


def main():
    t0 = time.time()
    tlib.setup_models(DB, n=300)
    c = tlib.connect(DB)
    cur = c.cursor()
    cur.execute("SET mlpipe.progress = off")
    consts = {}
    lock = threading.Lock()

    def train(cur, k):
        cur.execute("SELECT version FROM mlpipe.train('cc', 'decision_tree', %s, 'yv', ARRAY['a','b'],"
                    " '{\"seed\": 1, \"max_depth\": 2, \"task\": \"regression\"}')", (SRC % const_of(k),))
        v = cur.fetchone()[0]
        with lock:
            consts[v] = const_of(k)
    for k in range(3):
        train(cur, k)
    c.close()
    watch = tlib.CrashWatch()
    stop = time.time() + SECONDS
    stats = {"statements": 0, "torn": [], "errors": [], "trained": 0, "promotions": 0, "rollbacks": 0}

    def scorer(form):
        conn = tlib.connect(DB)
        cur = conn.cursor()
        expr = ("mlpipe.predict('cc', ARRAY[a, b])" if form == "array"
                else "mlpipe.predict('cc', t)")
        while time.time() < stop:
            try:
                cur.execute("SELECT min(%s), max(%s), count(*) FROM public.tdata t" % (expr, expr))
                lo, hi, n = cur.fetchone()
                with lock:
                    stats["statements"] += 1
                    if lo != hi or n != 300:
                        stats["torn"].append((form, lo, hi, n))
                    else:
                        stats.setdefault("seen", set()).add(lo)
            except psycopg2.Error as e:
                with lock:
                    stats["errors"].append("scorer: %s %s" % (e.pgcode, e.pgerror))
        conn.close()

    def trainer():
        conn = tlib.connect(DB)
        cur = conn.cursor()
        cur.execute("SET mlpipe.progress = off")
        k = 3
        while time.time() < stop:
            try:
                train(cur, k)
                stats["trained"] += 1
            except psycopg2.Error as e:
                stats["errors"].append("trainer: %s %s" % (e.pgcode, e.pgerror))
            k += 1
        conn.close()

    def promoter():
        conn = tlib.connect(DB)
        cur = conn.cursor()
        rng = random.Random(10)
        while time.time() < stop:
            try:
                with lock:
                    versions = sorted(consts)
                if rng.random() < 0.6:
                    cur.execute("SELECT mlpipe.promote('cc', %s, %s)",
                                (rng.choice(versions), rng.choice(["production", "staging"])))
                    stats["promotions"] += 1
                else:
                    cur.execute("SELECT mlpipe.rollback('cc', %s)", (rng.choice(["production", "staging"]),))
                    stats["rollbacks"] += 1
            except psycopg2.Error as e:
                # nothing to roll back to is a legitimate refusal
                if e.pgcode not in ("55000", "42704", "22023", "P0002"):
                    stats["errors"].append("promoter: %s %s" % (e.pgcode, e.pgerror))
            time.sleep(0.01)
        conn.close()

    threads = [threading.Thread(target=scorer, args=("array",)),
               threading.Thread(target=scorer, args=("row",)),
               threading.Thread(target=trainer), threading.Thread(target=promoter)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seen = stats.get("seen", set())
    unknown = sorted(v for v in seen if v not in set(consts.values()))
    tlib.result(not stats["torn"], "concurrency: every scoring statement saw one whole version (%d statements)"
                % stats["statements"], "torn: %s" % stats["torn"][:5])
    tlib.result(not unknown, "concurrency: every score is some version's constant", "unknown %s" % unknown[:5])
    tlib.result(len(seen) > 1, "concurrency: scorers saw promotions (%d distinct versions)" % len(seen),
                "only %s" % sorted(seen))
    tlib.result(not stats["errors"], "concurrency: no unexpected errors", "; ".join(stats["errors"][:5]))
    c = tlib.connect(DB)
    cur = c.cursor()
    cur.execute("""SELECT a.model, a.alias, a.version FROM mlpipe.aliases a
                   LEFT JOIN mlpipe.model_versions v USING (model, version) WHERE v.model IS NULL""")
    bad = cur.fetchall()
    tlib.result(not bad, "concurrency: aliases point at existing versions", str(bad))
    cur.execute("""SELECT a.model, a.alias, a.version, e.to_version FROM mlpipe.aliases a
                   JOIN LATERAL (SELECT to_version FROM mlpipe.alias_events e
                                  WHERE e.model = a.model AND e.alias = a.alias
                                  ORDER BY event_id DESC LIMIT 1) e ON true
                   WHERE e.to_version IS DISTINCT FROM a.version""")
    bad = cur.fetchall()
    tlib.result(not bad, "concurrency: the last alias event names the current version", str(bad))
    cur.execute("""SELECT model, alias, event_id, from_version, prev FROM (
                     SELECT *, lag(to_version) OVER (PARTITION BY model, alias ORDER BY event_id) AS prev,
                            row_number() OVER (PARTITION BY model, alias ORDER BY event_id) AS n
                       FROM mlpipe.alias_events) e
                   WHERE n > 1 AND from_version IS DISTINCT FROM prev""")
    bad = cur.fetchall()
    tlib.result(not bad, "concurrency: alias_events form one chain per alias", str(bad[:5]))
    cur.execute("SELECT count(*) FROM mlpipe.runs WHERE status = 'running'")
    n = cur.fetchone()[0]
    tlib.result(n == 0, "concurrency: no run left running", "%d runs" % n)
    tlib.result(not watch.crashes(), "concurrency: server never crashed", str(watch.crashes()))
    print("# concurrency: %d scoring statements, %d versions trained, %d promotions, %d rollbacks, "
          "%d distinct versions seen, %.0f s" % (stats["statements"], stats["trained"], stats["promotions"],
                                                   stats["rollbacks"], len(seen), time.time() - t0), flush=True)
    tlib.finish()


if __name__ == "__main__":
    main()
