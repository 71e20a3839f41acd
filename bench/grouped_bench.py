#!/usr/bin/python3
"""Grouped training benchmark (issue #14): params.group_by against a loop of trains.

KDD Cup 99 (10 %: 494,021 connections x 41 features, from ../shared/data)
goes into a table. Then, in one run, with the same params:
  - one call: mlpipe.train('g', 'gbt', 'kdd', 'src_bytes', params =>
    {"group_by": "service", "min_rows_per_group": 100, ...}): one model per
    service with at least 100 rows (51 groups);
  - the loop users write without it: for each of those services,
    mlpipe.train('loop/<service>', 'gbt', 'SELECT * FROM kdd WHERE service = ...'),
    one query (one scan of the table) per group;
  - every group's artifact of the grouped call is compared, byte for byte,
    with the one the loop trained (same seed: they must be equal);
  - scoring the whole table by the parent name (each row routed to its
    service's model) against scoring it with the per-group names.
Prints a markdown table for docs/benchmarks.md.
Run with the cluster from scripts/pg.sh: eval "$(scripts/pg.sh env)"; bench/grouped_bench.py
"""
import gzip
import io
import os
import time

import psycopg2

from extcheck import done_stamp, run_stamp

DATA = os.environ.get("MLPIPE_DATA", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))
PARAMS = '{"seed": 1, "n_estimators": 20, "max_depth": 4, "exclude": ["label"]}'
COLUMNS = """duration float8, protocol_type text, service text, flag text, src_bytes float8,
 dst_bytes float8, land int, wrong_fragment float8, urgent float8, hot float8,
 num_failed_logins float8, logged_in int, num_compromised float8, root_shell float8,
 su_attempted float8, num_root float8, num_file_creations float8, num_shells float8,
 num_access_files float8, num_outbound_cmds float8, is_host_login int, is_guest_login int,
 count float8, srv_count float8, serror_rate float8, srv_serror_rate float8,
 rerror_rate float8, srv_rerror_rate float8, same_srv_rate float8, diff_srv_rate float8,
 srv_diff_host_rate float8, dst_host_count float8, dst_host_srv_count float8,
 dst_host_same_srv_rate float8, dst_host_diff_srv_rate float8,
 dst_host_same_src_port_rate float8, dst_host_srv_diff_host_rate float8,
 dst_host_serror_rate float8, dst_host_srv_serror_rate float8, dst_host_rerror_rate float8,
 dst_host_srv_rerror_rate float8, label text"""


def load(cur):
    cur.execute("DROP TABLE IF EXISTS kdd")
    cur.execute("CREATE TABLE kdd (%s)" % COLUMNS)
    with gzip.open(os.path.join(DATA, "kddcup99_10pct", "kddcup.data_10_percent.gz"), "rt") as f:
        cur.copy_expert("COPY kdd FROM STDIN WITH (FORMAT csv)", io.StringIO(f.read()))
    cur.execute("VACUUM ANALYZE kdd")


def timed(cur, sql, args=None):
    t = time.perf_counter()
    cur.execute(sql, args)
    rows = cur.fetchall()
    return time.perf_counter() - t, rows


def main():
    conn = psycopg2.connect("")
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("DROP EXTENSION IF EXISTS mlpipe CASCADE")
    cur.execute("CREATE EXTENSION mlpipe")
    cur.execute("SET client_min_messages = warning")
    load(cur)
    cur.execute("SELECT count(*) FROM kdd")
    n_rows = cur.fetchone()[0]

    grouped_s, rows = timed(cur, """SELECT model, version FROM mlpipe.train('g', 'gbt', 'kdd', 'src_bytes',
        params => %s::jsonb || '{"group_by": "service", "min_rows_per_group": 100}')""", (PARAMS,))
    trained = [r for r in rows if r[1] is not None]
    cur.execute("SELECT group_key[1], model FROM mlpipe.model_groups WHERE parent = 'g' ORDER BY 1")
    groups = cur.fetchall()

    t = time.perf_counter()
    for service, _ in groups:
        cur.execute("""SELECT model FROM mlpipe.train(%s, 'gbt', %s, 'src_bytes',
                       params => %s::jsonb || '{"exclude": ["label", "service"]}')""",
                    ("loop/" + service, "SELECT * FROM kdd WHERE service = '%s'" % service, PARAMS))
    loop_s = time.perf_counter() - t

    cur.execute("""SELECT count(*) FILTER (WHERE v.artifact = l.artifact), count(*)
                     FROM mlpipe.model_groups g
                     JOIN mlpipe.model_versions v ON v.model = g.model
                     JOIN mlpipe.model_versions l ON l.model = 'loop/' || g.group_key[1]
                    WHERE g.parent = 'g'""")
    same, compared = cur.fetchone()

    routed_s, routed = timed(cur, "SELECT count(mlpipe.predict('g', k)), sum(mlpipe.predict('g', k)) FROM kdd k")
    named_s, named = timed(cur, """SELECT count(p), sum(p) FROM (SELECT CASE WHEN g.model IS NOT NULL
                                   THEN mlpipe.predict(g.model, k) END AS p
                                   FROM kdd k LEFT JOIN mlpipe.model_groups g
                                     ON g.parent = 'g' AND g.group_key = ARRAY[k.service]) s""")

    print("## Grouped training: KDD Cup 99 (%d rows x 41 columns), one gbt regression per service\n" % n_rows)
    print("%d services with at least 100 rows (%d groups in all); gbt regression of src_bytes,"
          " 20 rounds, depth 4, seed 1; mlpipe.threads default.\n" % (len(trained), len(rows)))
    print("| what | time | ratio |")
    print("|---|---|---|")
    print("| `train(..., params => {group_by: service, min_rows_per_group: 100})`: one read, %d models | %.2f s | **%.2fx** of the loop |"
          % (len(trained), grouped_s, grouped_s / loop_s))
    print("| loop of %d `train(..., 'SELECT * FROM kdd WHERE service = ...')` | %.2f s | 1.00x |" % (len(groups), loop_s))
    print("| artifacts byte-identical, grouped vs loop | %d of %d | |" % (same, compared))
    print("| scoring %d rows by the parent name (routed per row) | %.2f s | %.2fx of by group name |"
          % (n_rows, routed_s, routed_s / named_s))
    print("| scoring the same rows by each group's model name (join on model_groups) | %.2f s | 1.00x |" % named_s)
    print("| scored rows / sum of predictions, routed vs by name | %d / %.6g vs %d / %.6g | |"
          % (routed[0][0], routed[0][1], named[0][0], named[0][1]))


if __name__ == "__main__":
    run_stamp("grouped bench")
    main()
    done_stamp()
