#!/usr/bin/env bash
# citus-cluster.sh: a private 3-node Citus cluster for the mlpipe Citus suite
# (a coordinator and 2 workers of the PostgreSQL that pg_config or
# $PG_CONFIG names), in .citus/ (ignored by git; a symlink to /var/tmp when
# the postgres user cannot reach the project folder, as in scripts/pg.sh).
# Unix sockets only (one socket directory, .citus/run), trust auth.
#   scripts/citus-cluster.sh start|stop|restart|status|env|psql [node] [args]
# Ports: the coordinator on $CITUS_PORT, worker i on $CITUS_PORT + 100 * i.
# CITUS_PORT defaults to $MLPIPE_PGPORT + 2000 (55432 + 2000 without it), so
# the sandboxes 56000 + n of the helpers never collide.
# The coordinator preloads mlpipe per session (session_preload_libraries).
# `start` creates database mlpipe on every node with the citus extension,
# registers the workers on the coordinator (citus_add_node) and creates
# mlpipe on the coordinator, which Citus propagates to the workers. Citus
# itself must be installed (scripts/citus.sh), and mlpipe (make install).
# `eval "$(scripts/citus-cluster.sh env)"` points PGHOST/PGPORT/PGDATABASE at
# the coordinator and sets CITUS_WORKER_PORTS.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=$("${PG_CONFIG:-pg_config}" --bindir)
port=${CITUS_PORT:-$((${MLPIPE_PGPORT:-55432} + 2000))}
nodes=(coord w1 w2)
db=mlpipe
dir=$PWD/.citus

# The port of node number i (0 = coordinator).
node_port() {
	echo $((port + 100 * $1))
}

# Runs a server binary as postgres when we are root (initdb refuses root).
as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		(cd / && runuser -u postgres -- "$@")
	else
		"$@"
	fi
}

# Creates .citus, or a symlink to a fresh /var/tmp directory when postgres
# cannot write the project folder or the socket path would be too long.
prepare() {
	if [ -L "$dir" ] && [ ! -e "$dir" ]; then rm -f "$dir"; fi
	if [ ! -e "$dir" ]; then
		mkdir -p "$dir"
		[ "$(id -u)" -ne 0 ] || chown postgres: "$dir"
		if ! as_pg test -w "$dir" || [ ${#dir} -gt 80 ]; then
			rmdir "$dir"
			ln -s "$(mktemp -d /var/tmp/mlpipe-citus.XXXXXX)" "$dir"
		fi
	fi
	dir=$(readlink -f "$dir")
	mkdir -p "$dir/run" "$dir/log"
	local n
	for n in "${nodes[@]}"; do
		mkdir -p "$dir/$n"
		chmod 700 "$dir/$n"
	done
	[ "$(id -u)" -ne 0 ] || chown -R postgres: "$dir"
}

# The settings of node i, rewritten on every start (the port may change).
write_conf() {
	local i=$1 data=$dir/${nodes[$1]}
	as_pg tee "$data/mlpipe-citus.conf" >/dev/null <<CONF
port = $(node_port "$i")
listen_addresses = ''
unix_socket_directories = '$dir/run'
shared_preload_libraries = 'citus'
max_prepared_transactions = 64
max_connections = 200
max_worker_processes = 16
shared_buffers = 64MB
fsync = off
synchronous_commit = off
full_page_writes = off
citus.log_remote_commands = off
CONF
	# The coordinator loads mlpipe in every session, so that its planner hook
	# (src/pg/predict_support.c) is in place before the first query is planned.
	[ "$i" -ne 0 ] || echo "session_preload_libraries = 'mlpipe'" |
		as_pg tee -a "$data/mlpipe-citus.conf" >/dev/null
	grep -q "^include_if_exists 'mlpipe-citus.conf'" "$data/postgresql.conf" ||
		echo "include_if_exists 'mlpipe-citus.conf'" | as_pg tee -a "$data/postgresql.conf" >/dev/null
}

# A postmaster.pid whose process is gone (or is no postgres) is stale.
clear_stale() {
	local data=$1 pid
	[ -f "$data/postmaster.pid" ] || return 0
	pid=$(head -n 1 "$data/postmaster.pid")
	if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != postgres ]; then
		rm -f "$data/postmaster.pid"
	fi
}

running() {
	clear_stale "$1"
	as_pg "$bin/pg_ctl" status -D "$1" >/dev/null 2>&1
}

# psql on node i as postgres.
psql_node() {
	local i=$1
	shift
	psql -X -v ON_ERROR_STOP=1 -h "$dir/run" -p "$(node_port "$i")" -U postgres "$@"
}

start_node() {
	local i=$1 data=$dir/${nodes[$1]}
	if [ ! -s "$data/PG_VERSION" ]; then
		as_pg "$bin/initdb" -D "$data" -U postgres -A trust -E UTF8 \
			--locale=C.UTF-8 >"$dir/log/initdb-${nodes[$i]}.log" 2>&1 ||
			{ cat "$dir/log/initdb-${nodes[$i]}.log" >&2; exit 1; }
	fi
	if running "$data"; then
		return 0
	fi
	write_conf "$i"
	as_pg "$bin/pg_ctl" start -D "$data" -l "$dir/log/${nodes[$i]}.log" -w -t 60 >/dev/null ||
		{ tail -n 30 "$dir/log/${nodes[$i]}.log" >&2; exit 1; }
}

# Database mlpipe with the citus extension on every node, the workers
# registered, mlpipe created on the coordinator (propagated by Citus).
setup_cluster() {
	local i
	for i in "${!nodes[@]}"; do
		if [ -z "$(psql_node "$i" -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = '$db'")" ]; then
			psql_node "$i" -d postgres -qc "CREATE DATABASE $db"
		fi
		psql_node "$i" -d "$db" -qc "CREATE EXTENSION IF NOT EXISTS citus" 2>&1 | grep -v '^NOTICE' || true
	done
	psql_node 0 -d "$db" -qAt >/dev/null <<SQL
SELECT citus_set_coordinator_host('$dir/run', $(node_port 0));
SELECT citus_add_node('$dir/run', $(node_port 1)) WHERE NOT EXISTS
  (SELECT 1 FROM pg_dist_node WHERE nodeport = $(node_port 1) AND noderole = 'primary');
SELECT citus_add_node('$dir/run', $(node_port 2)) WHERE NOT EXISTS
  (SELECT 1 FROM pg_dist_node WHERE nodeport = $(node_port 2) AND noderole = 'primary');
SQL
	psql_node 0 -d "$db" -qc "CREATE EXTENSION IF NOT EXISTS mlpipe" 2>&1 | grep -v '^NOTICE' || true
}

start() {
	local i
	prepare
	for i in "${!nodes[@]}"; do start_node "$i"; done
	setup_cluster
	echo "citus: coordinator on port $(node_port 0), workers on $(node_port 1) $(node_port 2) (socket $dir/run, logs $dir/log)"
}

stop() {
	local n
	[ -e "$dir" ] || return 0
	dir=$(readlink -f "$dir")
	for n in "${nodes[@]}"; do
		if [ -d "$dir/$n" ] && running "$dir/$n"; then
			as_pg "$bin/pg_ctl" stop -D "$dir/$n" -m fast -w >/dev/null
		fi
	done
	echo "citus: stopped"
}

case "${1:-}" in
	start) start ;;
	stop) stop ;;
	restart) stop; start ;;
	status)
		[ -e "$dir" ] && dir=$(readlink -f "$dir")
		rc=0
		for i in "${!nodes[@]}"; do
			if [ -d "$dir/${nodes[$i]}" ] && running "$dir/${nodes[$i]}"; then
				echo "${nodes[$i]}: running (port $(node_port "$i"))"
			else
				echo "${nodes[$i]}: stopped"; rc=3
			fi
		done
		exit $rc ;;
	env)
		[ -e "$dir" ] && dir=$(readlink -f "$dir")
		printf 'export PGHOST=%q PGPORT=%q PGUSER=postgres PGDATABASE=%q CITUS_WORKER_PORTS=%q\n' \
			"$dir/run" "$(node_port 0)" "$db" "$(node_port 1) $(node_port 2)" ;;
	psql)
		shift
		dir=$(readlink -f "$dir")
		i=0
		case "${1:-}" in coord) shift ;; w1) i=1; shift ;; w2) i=2; shift ;; esac
		psql_node "$i" -d "$db" "$@" ;;
	*) echo "usage: $0 start|stop|restart|status|env|psql [coord|w1|w2] [args]" >&2; exit 2 ;;
esac
