#!/usr/bin/env bash
# run.sh (`make test`): installs packages, builds and installs mlpipe, starts
# the cluster in .pg/ and runs every suite: core unit tests (TAP), fuzz,
# pg_regress, pgTAP, peer/real-data checks, the preload suite, the doc
# tests, the torture suite and the Citus suite. Prints a
# summary per suite and, last, "N passed, N failed"; exits 1 if any failed.
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s nullglob

logs=$PWD/build/test-logs
mkdir -p "$logs"
total_pass=0 total_fail=0
summary=()

# record <suite> <passed> <failed>
record() {
	summary+=("$(printf '%-10s %4d passed, %4d failed' "$1" "$2" "$3")")
	total_pass=$((total_pass + $2))
	total_fail=$((total_fail + $3))
}

# count <regex> <file>: lines matching.
count() { grep -cE "$1" "$2" || true; }

# step <name> <command...>: a set-up step; its failure counts as one failed test.
step() {
	echo "== $1"
	if "${@:2}"; then return 0; fi
	echo "FAIL $1"
	record "$1" 0 1
	return 1
}

# tap_suite <name> <command...>: counts TAP "ok" / "not ok" lines (a "not ok"
# marked TODO is neither); a non-zero exit with no "not ok" is one failure.
tap_suite() {
	local name=$1 log=$logs/$1.log rc=0 pass fail
	shift
	echo "== $name"
	"$@" 2>&1 | tee "$log" || rc=$?
	pass=$(count '^\s*ok\b' "$log")
	fail=$(grep -E '^\s*not ok\b' "$log" | grep -cv '# *TODO' || true)
	[ "$rc" -eq 0 ] || [ "$fail" -gt 0 ] || fail=1
	record "$name" "$pass" "$fail"
}

# pass_fail_suite <name> <command...>: counts "PASS" / "FAIL" lines, and a
# non-zero exit with no FAIL line as one failure.
pass_fail_suite() {
	local name=$1 log=$logs/$1.log rc=0 pass fail
	shift
	echo "== $name"
	"$@" 2>&1 | tee "$log" || rc=$?
	pass=$(count '^\s*PASS\b' "$log")
	fail=$(count '^\s*FAIL\b' "$log")
	[ "$rc" -eq 0 ] || [ "$fail" -gt 0 ] || { echo "FAIL $name exited with status $rc"; fail=1; }
	record "$name" "$pass" "$fail"
}

# pg_regress through `make installcheck`; counts its "... ok" / "... FAILED" lines.
regress_suite() {
	local log=$logs/regress.log rc=0 pass fail
	echo "== regress"
	make installcheck 2>&1 | tee "$log" || rc=$?
	pass=$(count '\.\.\. ok\b' "$log")
	fail=$(count '\.\.\. (FAILED|failed)\b' "$log")
	[ "$rc" -eq 0 ] || [ "$fail" -gt 0 ] || fail=1
	[ "$rc" -eq 0 ] || [ ! -f build/regress/regression.diffs ] || cat build/regress/regression.diffs
	record regress "$pass" "$fail"
}

# run_each <fail-regex> <fail-mark> <command> <files...>: runs command on each
# file; one that exits non-zero without printing a failure line gets one.
run_each() {
	local pattern=$1 mark=$2 cmd=$3 f rc out=$logs/last.log
	shift 3
	for f in "$@"; do
		echo "# $f"
		rc=0
		"$cmd" "$f" 2>&1 | tee "$out" || rc=$?
		if [ $rc -ne 0 ] && ! grep -qE "$pattern" "$out"; then
			echo "$mark $f exited with status $rc"
		fi
	done
}

tap_file() { pg_prove --verbose --ext .sql "$1"; }

# Python peer scripts run with Debian's interpreter, which has sklearn and xgboost.
peer_file() {
	if [[ $1 == *.py ]]; then
		timeout 1800 /usr/bin/python3 "$1"
	else
		timeout 1800 bash "$1"
	fi
}

server=true
step setup bash scripts/setup.sh || true
step build make -j"$(nproc)" || server=false
$server && { step install make install || server=false; }
$server && { step cluster bash scripts/pg.sh start || server=false; }
eval "$(bash scripts/pg.sh env)"
MLPIPE_DATA=${MLPIPE_DATA:-$(cd .. && pwd)/shared/data}
export MLPIPE_DATA

tap_suite core bash test/core/run.sh
pass_fail_suite fuzz bash test/fuzz/run.sh

tests() { compgen -G "$1" >/dev/null; }
if ! $server; then
	echo "# skipping the SQL suites: no server"
else
	tests 'test/sql/*.sql' && regress_suite
	if tests 'test/tap/*.sql' || tests 'test/peer/*.sh' || tests 'test/peer/test_*.py'; then
		# A fresh database per run, with mlpipe created, for pgTAP and peer checks.
		export PGDATABASE=${MLPIPE_TEST_DB:-mlpipe_test}
		step testdb psql -X -q -d postgres -v ON_ERROR_STOP=1 \
			-c "DROP DATABASE IF EXISTS $PGDATABASE WITH (FORCE)" \
			-c "CREATE DATABASE $PGDATABASE" || true
		step extension psql -X -q -v ON_ERROR_STOP=1 -c "CREATE EXTENSION mlpipe" || true
	fi
	tests 'test/tap/*.sql' && tap_suite tap run_each '^\s*not ok\b' 'not ok -' tap_file test/tap/*.sql
	if tests 'test/peer/*.sh' || tests 'test/peer/test_*.py'; then
		pass_fail_suite peer run_each '^\s*FAIL\b' FAIL peer_file test/peer/*.sh test/peer/test_*.py
	fi
	if [ -f test/preload/run.sh ]; then
		pass_fail_suite preload bash test/preload/run.sh
	fi
	# Every SQL block of README.md and docs/ (test/docs/README.md).
	[ -f test/docs/run.sh ] && pass_fail_suite docs bash test/docs/run.sh
	# Fuzzer, SQLsmith, concurrency, kill -9, dump/restore, standby, #10 checks
	# (bounded; TORTURE_LONG=1 for the long mode, see test/torture/README.md).
	[ -f test/torture/run.sh ] && pass_fail_suite torture bash test/torture/run.sh
	# Citus 13.2.2 from ../shared/vendor (built once, cached) with 2 workers.
	[ -f test/citus/run.sh ] && pass_fail_suite citus bash test/citus/run.sh
fi

echo
echo "== summary"
printf '%s\n' "${summary[@]}"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
