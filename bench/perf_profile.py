#!/usr/bin/python3
"""Profiles one SQL statement with perf: where a backend spends its time.

Opens a connection, runs the --setup statements, attaches `perf record -g`
to the backend, runs the statement, stops perf and prints
`perf report --no-children --stdio` (self time per function) cut to --lines.
With --pgbench FILE it profiles a pgbench run instead (1 client, prepared,
--seconds): perf follows the single pgbench backend, found through
pg_stat_activity once pgbench has connected.
Needs root (or perf_event_paranoid <= 1) and perf (apt-get install linux-perf).
Run: eval "$(/work/tools/pgsandbox.sh N)"; eval "$(bash scripts/pg.sh env)";
     /usr/bin/python3 bench/perf_profile.py --out /tmp/gbt.data \
         --setup "SET mlpipe.threads = 1" \
         "SELECT 1 FROM mlpipe.train('m', 'gbt', 'SELECT x, y FROM t', 'y')"
"""
import argparse
import signal
import subprocess
import sys
import time

import psycopg2

from extcheck import PGBENCH


def start_perf(pid, out, freq):
    p = subprocess.Popen(["perf", "record", "-g", "-F", str(freq), "-o", out, "-p", str(pid)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)      # let perf attach before the statement starts
    return p


def stop_perf(p):
    p.send_signal(signal.SIGINT)
    p.wait()


def report(out, lines, extra):
    rep = subprocess.run(["perf", "report", "--no-children", "--stdio", "-i", out, "-g", "none",
                          "--percent-limit", "0.5"] + extra,
                         capture_output=True, text=True).stdout
    body = [ln for ln in rep.splitlines() if ln.strip() and not ln.startswith("#")]
    print("\n".join(body[:lines]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("statement", nargs="?")
    ap.add_argument("--setup", action="append", default=[])
    ap.add_argument("--out", default="/tmp/mlpipe_perf.data")
    ap.add_argument("--freq", type=int, default=999)
    ap.add_argument("--lines", type=int, default=40)
    ap.add_argument("--pgbench", help="a pgbench script to profile instead of a statement")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--sort", default="", help="perf report --sort keys, e.g. dso,symbol")
    args = ap.parse_args()
    extra = ["--sort", args.sort] if args.sort else []
    load = " ".join(open("/proc/loadavg").read().split()[:3])

    if args.pgbench:
        bench = subprocess.Popen([PGBENCH, "-n", "-M", "prepared", "-c", "1", "-T", str(args.seconds),
                                  "-f", args.pgbench], stdout=subprocess.PIPE, text=True)
        conn = psycopg2.connect("")
        conn.autocommit = True
        cur = conn.cursor()
        pid = None
        for _ in range(50):
            cur.execute("SELECT pid FROM pg_stat_activity WHERE application_name = 'pgbench'")
            r = cur.fetchone()
            if r:
                pid = r[0]
                break
            time.sleep(0.1)
        if pid is None:
            sys.exit("pgbench backend not found")
        p = start_perf(pid, args.out, args.freq)
        out = bench.communicate()[0]
        stop_perf(p)
        print("# pgbench %s: %s; load average %s" % (args.pgbench, " ".join(
            ln for ln in out.splitlines() if ln.startswith("tps")), load))
    else:
        conn = psycopg2.connect("")
        conn.autocommit = True
        cur = conn.cursor()
        for s in args.setup:
            cur.execute(s)
        cur.execute("SELECT pg_backend_pid()")
        pid = cur.fetchone()[0]
        p = start_perf(pid, args.out, args.freq)
        t = time.perf_counter()
        cur.execute(args.statement)
        elapsed = time.perf_counter() - t
        stop_perf(p)
        print("# %.2f s: %s; load average %s" % (elapsed, args.statement[:200], load))
    report(args.out, args.lines, extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
