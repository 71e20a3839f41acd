#!/usr/bin/python3
"""The example pipelines of docs/examples run on the real data.

hive.json on the UrBAN beehive sensors (loaded with scripts/load_beehive.sh)
and transactions.json on the Brazilian card transactions (loaded with
docs/examples/load_transactions.sql) are created and run in this database;
every step must succeed and be logged under the pipeline run, the prediction
tables must hold one row per source row, the models must pass their gates,
and the transaction classifier must beat the majority-class baseline that
this script computes. A failing pipeline must send run_failed on
mlpipe_events. Prints PASS/FAIL lines; drops what it created.
"""
import json
import os
import select
import subprocess
import sys

import psycopg2

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
DATA = os.environ.get("MLPIPE_DATA", os.path.join(ROOT, "..", "shared", "data"))
failures = 0


def check(ok, what):
    global failures
    print(("PASS " if ok else "FAIL ") + what, flush=True)
    failures += 0 if ok else 1


def run_example(cur, name, path, n_steps):
    config = open(path).read()
    cur.execute("SELECT mlpipe.create_pipeline(%s, %s)", (name, config))
    cur.execute("SELECT mlpipe.run_pipeline(%s)", (name,))
    run = cur.fetchone()[0]
    cur.execute("SELECT status, error, rows FROM mlpipe.runs WHERE run_id = %s", (run,))
    status, error, steps = cur.fetchone()
    check(status == "succeeded" and steps == n_steps,
          "%s: pipeline run %s %s after %s of %d steps%s"
          % (name, run, status, steps, n_steps, "" if error is None else ": " + error))
    cur.execute("SELECT algorithm, status FROM mlpipe.runs WHERE parent_run_id = %s "
                "AND kind = 'pipeline_step' ORDER BY run_id", (run,))
    rows = cur.fetchall()
    kinds = [s["kind"] for s in json.loads(config)["steps"]]
    check([r[0] for r in rows] == kinds and all(r[1] == "succeeded" for r in rows),
          "%s: one succeeded step run per step, in order: %s" % (name, [r[0] for r in rows]))
    return run


def main():
    conn = psycopg2.connect("")
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SET mlpipe.progress = off")
    cur.execute("SET client_min_messages = warning")
    for schema in ("beehive", "bank"):
        cur.execute("DROP SCHEMA IF EXISTS %s CASCADE" % schema)

    # Hive sensors.
    subprocess.run(["bash", os.path.join(ROOT, "scripts", "load_beehive.sh"),
                    os.path.join(DATA, "beehive_urban"), "beehive"], check=True,
                   stdout=subprocess.DEVNULL)
    run = run_example(cur, "peer_hive", os.path.join(ROOT, "docs", "examples", "hive.json"), 5)
    cur.execute("SELECT count(*), count(DISTINCT hive) FROM beehive.hive_daily")
    days, hives = cur.fetchone()
    cur.execute("SELECT count(DISTINCT (hive, (ts AT TIME ZONE current_setting('TimeZone'))::date)) "
                "FROM beehive.sensor")
    check((days, hives) == (cur.fetchone()[0], 7), "hive: %d hive-days of 7 hives in the features table" % days)
    cur.execute("SELECT count(*), count(DISTINCT prediction) FROM beehive.hive_states")
    scored, states = cur.fetchone()
    check(scored == days and states == 4, "hive: %d hive-days scored into 4 states (%d)" % (scored, states))
    cur.execute("SELECT status, gate->>'reason' FROM mlpipe.model_versions WHERE model = 'hive_states' "
                "ORDER BY version DESC LIMIT 1")
    st, reason = cur.fetchone()
    check(st == "promoted", "hive: the gated version is %s (%s)" % (st, reason))
    cur.execute("SELECT count(*) FROM mlpipe.metrics m JOIN mlpipe.runs r USING (run_id) "
                "WHERE r.parent_run_id IN (SELECT run_id FROM mlpipe.runs WHERE parent_run_id = %s) "
                "AND r.kind = 'train' AND m.metric IN ('silhouette', 'calinski_harabasz', 'davies_bouldin')", (run,))
    check(cur.fetchone()[0] == 3, "hive: clustering metrics of the train step recorded under the pipeline run")
    cur.execute("SELECT (m.value)::bigint FROM mlpipe.metrics m JOIN mlpipe.runs r USING (run_id) "
                "WHERE r.kind = 'evaluate' AND m.metric = 'rows' AND r.parent_run_id IN "
                "(SELECT run_id FROM mlpipe.runs WHERE parent_run_id = %s)", (run,))
    ev = cur.fetchall()
    cur.execute("SELECT count(*) FROM beehive.hive_daily WHERE period_start >= '2021-10-01'")
    october = cur.fetchone()[0]
    check(len(ev) == 1 and ev[0][0] == october and october > 0,
          "hive: evaluate step scored the %d October hive-days (%s)" % (october, ev))

    # Card transactions.
    subprocess.run(["psql", "-X", "-q", "-v", "csv=" + os.path.join(DATA, "brazilian_bank_transactions",
                                                                   "MiBolsillo.utf8.csv"),
                    "-f", os.path.join(ROOT, "docs", "examples", "load_transactions.sql")], check=True)
    run_example(cur, "peer_transactions", os.path.join(ROOT, "docs", "examples", "transactions.json"), 2)
    cur.execute("SELECT (SELECT count(*) FROM bank.transactions), (SELECT count(*) FROM bank.tx_predictions)")
    n, scored = cur.fetchone()
    check(n == scored == 4955, "transactions: %d of %d transactions scored" % (scored, n))
    cur.execute("SELECT max(c)::float8 / sum(c) FROM (SELECT count(*) AS c FROM bank.transactions "
                "GROUP BY category) s")
    baseline = cur.fetchone()[0]
    cur.execute("SELECT (metrics->>'accuracy')::float8 FROM mlpipe.model_versions WHERE model = 'tx_category' "
                "ORDER BY version DESC LIMIT 1")
    acc = cur.fetchone()[0]
    check(acc > baseline, "transactions: test accuracy %.4f beats the majority class %.4f" % (acc, baseline))
    cur.execute("SELECT avg((p.label = t.category)::int)::float8 FROM bank.tx_predictions p "
                "JOIN bank.transactions t USING (tx_id)")
    check(cur.fetchone()[0] > baseline, "transactions: scored labels beat the majority class on every row")

    # A failing pipeline sends run_failed.
    cur.execute("LISTEN mlpipe_events")
    cur.execute("SELECT mlpipe.create_pipeline('peer_breaks', %s)", (json.dumps({"steps": [
        {"kind": "train", "model": "peer_breaks", "algorithm": "gbt", "source": "bank.transactions",
         "target": "no_such_column"}]}),))
    cur.execute("SELECT mlpipe.run_pipeline('peer_breaks')")
    run = cur.fetchone()[0]
    select.select([conn], [], [], 5)
    conn.poll()
    events = [json.loads(n.payload) for n in conn.notifies]
    failed = [e for e in events if e.get("event") == "run_failed" and e.get("run_id") == run]
    check(len(failed) == 1 and failed[0].get("pipeline") == "peer_breaks" and failed[0].get("step") == 0,
          "a failing pipeline sends run_failed naming the pipeline and step: %s" % failed)
    cur.execute("UNLISTEN *")

    for p in ("peer_hive", "peer_transactions", "peer_breaks"):
        cur.execute("SELECT mlpipe.drop_pipeline(%s)", (p,))
    for schema in ("beehive", "bank"):
        cur.execute("DROP SCHEMA %s CASCADE" % schema)
    return failures


if __name__ == "__main__":
    sys.exit(1 if main() else 0)
