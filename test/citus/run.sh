#!/usr/bin/env bash
# test/citus/run.sh: the Citus suite (issue #11). Builds and installs Citus
# when it is missing (scripts/citus.sh, cached), starts the 3-node cluster
# (scripts/citus-cluster.sh: a coordinator and 2 workers), and runs
# test/citus/suite.sql on the coordinator. mlpipe must be installed in the
# same PostgreSQL (make install). Fails when a check prints FAIL; XFAIL
# lines are the open gaps of #11 and do not fail the run.
# Environment:
#   CITUS_ROWS=200000     rows of readings and of rows to score (#11 used 2,000,000)
#   CITUS_KEEP=1          leave the cluster running afterwards
#   MLPIPE_DATA=DIR       the data sets (default ../shared/data): with them,
#                         test/citus/pipelines.sql runs the distributed hive
#                         and card-transaction pipelines of docs/citus.md
# Figures on this 2-core machine (shared with other builds, load 10-17):
# Citus build once 3.6 min wall at load ~4 (2m45 s of CPU without LLVM
# bitcode), cached afterwards (0 s); first cluster start (3 initdb) ~55 s;
# suite with 200k rows 41-52 s; 1m44 s in all from a cold cluster; with
# CITUS_ROWS=2000000 (the issue's size) 272 s.
set -euo pipefail
cd "$(dirname "$0")/../.."

rows=${CITUS_ROWS:-200000}
start=$(date +%s)
bash scripts/citus.sh
built=$(date +%s)
bash scripts/citus-cluster.sh start
eval "$(bash scripts/citus-cluster.sh env)"
[ -n "${CITUS_KEEP:-}" ] || trap 'bash scripts/citus-cluster.sh stop >/dev/null' EXIT

args=(-v rows="$rows")
out=$(mktemp)
suite_start=$(date +%s)
psql -X -q -v ON_ERROR_STOP=1 "${args[@]}" -f test/citus/suite.sql 2>&1 | tee "$out"
# The distributed pipelines of docs/citus.md, when the data is there.
data=${MLPIPE_DATA:-../shared/data}
if [ -r "$data/brazilian_bank_transactions/MiBolsillo.utf8.csv" ] && [ -d "$data/beehive_urban" ]; then
	data=$(cd "$data" && pwd)
	psql -X -q -c "SET client_min_messages = warning" -c "DROP SCHEMA IF EXISTS beehive CASCADE"
	bash scripts/load_beehive.sh "$data/beehive_urban" beehive >/dev/null
	psql -X -q -v ON_ERROR_STOP=1 -v data="$data" -f test/citus/pipelines.sql 2>&1 | tee -a "$out"
else
	echo "INFO pipelines: skipped, no data in $data (MLPIPE_DATA)" | tee -a "$out"
fi
end=$(date +%s)

pass=$(grep -c '^PASS ' "$out" || true)
xfail=$(grep -c '^XFAIL ' "$out" || true)
fail=$(grep -c -E '^FAIL |^ERROR|^psql:.*ERROR' "$out" || true)
rm -f "$out"
echo "citus: $pass passed, $xfail expected failures (open in #11), $fail failed;" \
	"build/install $((built - start)) s, suite $((end - suite_start)) s with $rows rows"
[ "$fail" -eq 0 ]
