#!/usr/bin/env bash
# pg.sh: a private PostgreSQL 15 cluster for mlpipe in .pg/ (data in .pg/data,
# unix socket in .pg/run, log in .pg/log), no TCP, trust auth, port 55432 or
# $MLPIPE_PGPORT, pg_cron preloaded for database mlpipe.
#   scripts/pg.sh start|stop|restart|status|env|psql [psql args]
# As root the server runs as the `postgres` OS user (initdb refuses root).
# `eval "$(scripts/pg.sh env)"` sets PGHOST/PGPORT/PGUSER/PGDATABASE.
set -euo pipefail
cd "$(dirname "$0")/.."

# The server binaries of the PostgreSQL that pg_config (or $PG_CONFIG) names.
bin=$("${PG_CONFIG:-pg_config}" --bindir)
port=${MLPIPE_PGPORT:-55432}
db=mlpipe
pg=$PWD/.pg

# Runs a server binary as postgres when we are root (from / so that an
# unreadable working directory does not matter).
as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		(cd / && runuser -u postgres -- "$@")
	else
		"$@"
	fi
}

# Creates .pg. When the postgres user cannot reach the project folder (a
# clone under /root) or the socket path would be too long, .pg is a symlink
# to a directory under /var/tmp instead.
prepare() {
	if [ -L "$pg" ] && [ ! -e "$pg" ]; then rm -f "$pg"; fi
	if [ ! -e "$pg" ]; then
		mkdir -p "$pg"
		[ "$(id -u)" -ne 0 ] || chown postgres: "$pg"
		if ! as_pg test -w "$pg" || [ ${#pg} -gt 80 ]; then
			rmdir "$pg"
			ln -s "$(mktemp -d /var/tmp/mlpipe-pg.XXXXXX)" "$pg"
		fi
	fi
	pg=$(readlink -f "$pg")
	mkdir -p "$pg/data" "$pg/run" "$pg/log"
	chmod 700 "$pg/data"
	[ "$(id -u)" -ne 0 ] || chown -R postgres: "$pg"
}

# The settings the tests rely on; rewritten on every start (port may change).
write_conf() {
	# One CPU is the leader's: more workers than the other CPUs only add
	# start-up and switching (on 2 CPUs, 1 worker scored 1M rows in 0.45 s
	# where 4 took 0.55 s). Between 1 and 4.
	local gather_workers=$(( $(nproc) - 1 ))
	[ "$gather_workers" -ge 1 ] || gather_workers=1
	[ "$gather_workers" -le 4 ] || gather_workers=4
	as_pg tee "$pg/data/mlpipe.conf" >/dev/null <<CONF
port = $port
listen_addresses = ''
unix_socket_directories = '$pg/run'
shared_preload_libraries = 'pg_cron'
cron.database_name = '$db'
cron.host = '$pg/run'
max_worker_processes = 16
max_parallel_workers = 8
max_parallel_workers_per_gather = $gather_workers
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
	grep -q "^include_if_exists 'mlpipe.conf'" "$pg/data/postgresql.conf" ||
		echo "include_if_exists 'mlpipe.conf'" | as_pg tee -a "$pg/data/postgresql.conf" >/dev/null
}

# A postmaster.pid whose process is gone, or is no postgres (the pid was
# reused after a restart), is stale: remove it with the socket lock.
clear_stale() {
	local pid
	[ -f "$pg/data/postmaster.pid" ] || return 0
	pid=$(head -n 1 "$pg/data/postmaster.pid")
	if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != postgres ]; then
		rm -f "$pg/data/postmaster.pid" "$pg"/run/.s.PGSQL.*
	fi
}

running() {
	clear_stale
	as_pg "$bin/pg_ctl" status -D "$pg/data" >/dev/null 2>&1
}

psql_pg() {
	psql -h "$pg/run" -p "$port" -U postgres "$@"
}

start() {
	prepare
	if [ ! -s "$pg/data/PG_VERSION" ]; then
		as_pg "$bin/initdb" -D "$pg/data" -U postgres -A trust -E UTF8 \
			--locale=C.UTF-8 >"$pg/log/initdb.log" 2>&1 ||
			{ cat "$pg/log/initdb.log" >&2; exit 1; }
	fi
	if running; then
		echo "pg: already running (port $port)"
	else
		write_conf
		as_pg "$bin/pg_ctl" start -D "$pg/data" -l "$pg/log/postgres.log" -w -t 60 >/dev/null ||
			{ tail -n 30 "$pg/log/postgres.log" >&2; exit 1; }
		echo "pg: started (port $port, socket $pg/run, log $pg/log/postgres.log)"
	fi
	if [ -z "$(psql_pg -X -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = '$db'")" ]; then
		psql_pg -X -d postgres -c "CREATE DATABASE $db"
	fi
}

stop() {
	[ -d "$pg/data" ] || return 0
	pg=$(readlink -f "$pg")
	if running; then
		as_pg "$bin/pg_ctl" stop -D "$pg/data" -m fast -w >/dev/null
		echo "pg: stopped"
	fi
}

case "${1:-}" in
	start) start ;;
	stop) stop ;;
	restart) stop; start ;;
	status)
		[ -d "$pg/data" ] && pg=$(readlink -f "$pg")
		if [ -d "$pg/data" ] && running; then echo "pg: running (port $port)"; else echo "pg: stopped"; exit 3; fi ;;
	env)
		[ -e "$pg" ] && pg=$(readlink -f "$pg")
		printf 'export PGHOST=%q PGPORT=%q PGUSER=postgres PGDATABASE=%q\n' "$pg/run" "$port" "$db" ;;
	psql) shift; pg=$(readlink -f "$pg"); psql_pg -d "$db" "$@" ;;
	*) echo "usage: $0 start|stop|restart|status|env|psql [args]" >&2; exit 2 ;;
esac
