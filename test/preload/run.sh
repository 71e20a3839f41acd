#!/usr/bin/env bash
# preload/run.sh: pipelines on pg_cron in a temporary PostgreSQL instance of
# its own (the installed mlpipe of the pg_config in use; nothing installed).
# It starts the instance without pg_cron first (schedule must fail with
# 55000), then with shared_preload_libraries = 'pg_cron' and
# cron.database_name = preload: it schedules two pipelines every minute (one
# with a hostile name), waits up to MLPIPE_PRELOAD_WAIT seconds (default 150)
# for pg_cron to run them, checks cron.job_run_details and mlpipe.runs,
# unschedules, and removes the instance. Prints PASS/FAIL lines.
set -uo pipefail
cd "$(dirname "$0")/../.."

bin=$("${PG_CONFIG:-pg_config}" --bindir)
port=${MLPIPE_PRELOAD_PORT:-$(( ${MLPIPE_PGPORT:-55432} + 100 ))}
wait_s=${MLPIPE_PRELOAD_WAIT:-150}
dir=$(mktemp -d /var/tmp/mlpipe-preload.XXXXXX)
failures=0

as_pg() {
	if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}
cleanup() {
	as_pg "$bin/pg_ctl" stop -D "$dir/data" -m immediate -w >/dev/null 2>&1 || true
	rm -rf "$dir"
}
trap cleanup EXIT

check() {
	if [ "$1" = "$2" ]; then echo "PASS $3"; else echo "FAIL $3 (got '$1', expected '$2')"; failures=$((failures + 1)); fi
}
q() { psql -X -At -h "$dir/run" -p "$port" -U postgres -v ON_ERROR_STOP=1 "$@"; }
# The SQLSTATE of a statement that must fail (empty when it succeeds).
sqlstate() {
	q -d "$1" -c '\set VERBOSITY sqlstate' -c "$2" 2>&1 >/dev/null | sed -n 's/^ERROR: *//p' | head -n 1
}

mkdir -p "$dir/data" "$dir/run" "$dir/log"
[ "$(id -u)" -ne 0 ] || chown -R postgres: "$dir"
chmod 700 "$dir/data"
if ! as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$dir/log/initdb.log" 2>&1; then
	cat "$dir/log/initdb.log"; echo "FAIL preload: initdb"; exit 1
fi
conf() {
	as_pg tee "$dir/data/postgresql.auto.conf" >/dev/null <<CONF
port = $port
listen_addresses = ''
unix_socket_directories = '$dir/run'
fsync = off
$1
CONF
}
start() {
	as_pg "$bin/pg_ctl" start -D "$dir/data" -l "$dir/log/postgres.log" -w -t 60 >/dev/null ||
		{ tail -n 20 "$dir/log/postgres.log"; echo "FAIL preload: server start"; exit 1; }
}

# 1. Without pg_cron preloaded: 55000.
conf ""
start
q -d postgres -c "CREATE DATABASE preload" -c "CREATE DATABASE other" >/dev/null
q -d other -c "SET client_min_messages = warning; CREATE EXTENSION mlpipe;
  CREATE TABLE pts AS SELECT i AS id, (i % 3) * 10.0 + (i % 7) * 0.1 AS x FROM generate_series(1, 90) i;
  SELECT mlpipe.create_pipeline('p', '{\"steps\": [{\"kind\": \"train\", \"model\": \"m\", \"algorithm\": \"kmeans\", \"source\": \"pts\", \"params\": {\"k\": 3, \"exclude\": [\"id\"]}}]}')" >/dev/null
check "$(sqlstate other "SELECT mlpipe.schedule('p', '* * * * *')")" 55000 "schedule without pg_cron preloaded is 55000"
hint=$(q -d other -c '\set VERBOSITY verbose' -c "SELECT mlpipe.schedule('p', '* * * * *')" 2>&1 | grep -c 'shared_preload_libraries')
check "$hint" 1 "its HINT says to add pg_cron to shared_preload_libraries"
as_pg "$bin/pg_ctl" stop -D "$dir/data" -m fast -w >/dev/null

# 2. With pg_cron preloaded for database preload.
conf "shared_preload_libraries = 'pg_cron'
cron.database_name = 'preload'
cron.host = '$dir/run'"
start
check "$(sqlstate other "SELECT mlpipe.schedule('p', '* * * * *')")" 55000 \
	"schedule in a database other than cron.database_name is 55000"
hint=$(q -d other -c '\set VERBOSITY verbose' -c "SELECT mlpipe.schedule('p', '* * * * *')" 2>&1 | grep -c 'cron.schedule_in_database')
check "$hint" 1 "its HINT gives the cron.schedule_in_database call"
q -d preload -c "SET client_min_messages = warning; CREATE EXTENSION mlpipe;
  CREATE TABLE pts AS SELECT i AS id, (i % 3) * 10.0 + (i % 7) * 0.1 AS x FROM generate_series(1, 90) i;
  CREATE TABLE victim (x int);
  SELECT mlpipe.create_pipeline('p', '{\"steps\": [{\"kind\": \"train\", \"model\": \"m\", \"algorithm\": \"kmeans\", \"source\": \"pts\", \"params\": {\"k\": 3, \"exclude\": [\"id\"]}}]}');
  SELECT mlpipe.create_pipeline(\$\$x'); DROP TABLE victim; --\$\$, '{\"steps\": [{\"kind\": \"train\", \"model\": \"m2\", \"algorithm\": \"kmeans\", \"source\": \"pts\", \"params\": {\"k\": 2, \"exclude\": [\"id\"]}}]}')" >/dev/null
check "$(sqlstate preload "SELECT mlpipe.schedule('p', '* * * * *')")" 55000 \
	"schedule with pg_cron preloaded but not created is 55000"
q -d preload -c "CREATE EXTENSION pg_cron" >/dev/null
check "$(sqlstate preload "SELECT mlpipe.schedule('p', 'every now and then')")" 22023 "an invalid cron expression is 22023"
job=$(q -d preload -c "SELECT mlpipe.schedule('p', '* * * * *')")
[[ $job =~ ^[0-9]+$ ]] && check ok ok "schedule returns pg_cron's job id ($job)" || check "$job" "a job id" "schedule returns a job id"
q -d preload -c "SELECT mlpipe.schedule(\$\$x'); DROP TABLE victim; --\$\$, '* * * * *')" >/dev/null
check "$(q -d preload -c "SELECT jobname || ' | ' || command FROM cron.job WHERE jobid = $job")" \
	"mlpipe:p | SELECT mlpipe.run_pipeline('p')" "cron.job holds job mlpipe:p and its command"
check "$(q -d preload -c "SELECT command FROM cron.job WHERE jobname LIKE 'mlpipe:x%'")" \
	"SELECT mlpipe.run_pipeline('x''); DROP TABLE victim; --')" "a hostile name is quoted in the cron command"
check "$(q -d preload -c "SELECT schedule || ' ' || cron_job_id FROM mlpipe.pipelines WHERE name = 'p'")" \
	"* * * * * $job" "mlpipe.pipelines records the schedule and job id"

# 3. pg_cron runs them (one-minute granularity).
ran=0
for _ in $(seq 1 $((wait_s / 5))); do
	ran=$(q -d preload -c "SELECT count(DISTINCT source) FROM mlpipe.runs WHERE kind = 'pipeline' AND status <> 'running'")
	[ "$ran" -ge 2 ] && break
	sleep 5
done
check "$ran" 2 "both scheduled pipelines ran within ${wait_s}s"
check "$(q -d preload -c "SELECT status || ' ' || (params->>'application_name') FROM mlpipe.runs WHERE kind = 'pipeline' AND source = 'p' ORDER BY run_id LIMIT 1")" \
	"succeeded pg_cron" "mlpipe.runs logged the run by pg_cron as succeeded"
check "$(q -d preload -c "SELECT count(*) FROM mlpipe.runs r JOIN mlpipe.runs s ON s.parent_run_id = r.run_id WHERE r.kind = 'pipeline' AND r.source = 'p' AND s.kind = 'pipeline_step' AND s.status = 'succeeded' AND r.run_id = (SELECT min(run_id) FROM mlpipe.runs WHERE kind = 'pipeline' AND source = 'p')")" \
	1 "its train step is logged under it"
check "$(q -d preload -c "SELECT status FROM cron.job_run_details WHERE jobid = $job ORDER BY runid LIMIT 1")" \
	succeeded "cron.job_run_details shows the job succeeded"
check "$(q -d preload -c "SELECT to_regclass('victim') IS NOT NULL")" t "the hostile-named pipeline ran and dropped nothing"
check "$(q -d preload -c "SELECT count(*) FROM mlpipe.model_versions WHERE model = 'm'" | awk '{print ($1 >= 1)}')" 1 \
	"the scheduled run registered a model version"

# 4. Unschedule.
check "$(q -d preload -c "SELECT mlpipe.unschedule('p')")" t "unschedule removes the job"
check "$(q -d preload -c "SELECT count(*) FROM cron.job WHERE jobname = 'mlpipe:p'")" 0 "cron.job no longer has mlpipe:p"
check "$(q -d preload -c "SELECT mlpipe.unschedule('p')")" f "unscheduling again finds no job"
check "$(q -d preload -c "SELECT coalesce(schedule, 'none') FROM mlpipe.pipelines WHERE name = 'p'")" none \
	"mlpipe.pipelines forgets the schedule"
q -d preload -c "SELECT mlpipe.drop_pipeline(\$\$x'); DROP TABLE victim; --\$\$)" >/dev/null
check "$(q -d preload -c "SELECT count(*) FROM cron.job")" 0 "drop_pipeline unschedules the pipeline"

[ "$failures" -eq 0 ]
