#!/usr/bin/env bash
# setup.sh: install the Debian 12 packages mlpipe needs to build, test and run
# its demo. Idempotent: when every package is installed it does nothing (no
# apt-get update). Needs root (or sudo) only when something is missing.
set -euo pipefail

packages=(
	postgresql-15 postgresql-server-dev-15 postgresql-15-cron postgresql-15-pgtap
	libtap-parser-sourcehandler-pgtap-perl libcjson-dev build-essential
	clang libclang-rt-14-dev python3-sklearn python3-xgboost python3-psycopg2
	sqlsmith
)

missing=()
for p in "${packages[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[ "$status" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "setup: installing ${missing[*]}"
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q "${missing[@]}"
