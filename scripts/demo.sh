#!/usr/bin/env bash
# demo.sh (`make demo`): installs packages, builds and installs mlpipe,
# starts the cluster in .pg/ (pg_cron preloaded for database mlpipe), loads
# the UrBAN beehive data from ../shared/data (or $MLPIPE_DATA) and runs the
# hive-sensor pipeline end to end (demo/hive.sql with docs/examples/hive.json):
# features, clustering, gated promotion, predictions, metrics, drift and a
# pg_cron schedule.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
make -j"$(nproc)"
make install
bash scripts/pg.sh start
eval "$(bash scripts/pg.sh env)"
data=${MLPIPE_DATA:-$(cd .. && pwd)/shared/data}
if [ ! -r "$data/beehive_urban/sensor_2021.csv" ]; then
	echo "demo: $data/beehive_urban/sensor_2021.csv not found; set MLPIPE_DATA to the data folder" >&2
	exit 1
fi
psql -X -q -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning" \
	-c "CREATE EXTENSION IF NOT EXISTS pg_cron" -c "CREATE EXTENSION IF NOT EXISTS mlpipe" \
	-c "ALTER EXTENSION mlpipe UPDATE"
bash scripts/load_beehive.sh "$data/beehive_urban" beehive
psql -X -v ON_ERROR_STOP=1 -v config="$(cat docs/examples/hive.json)" -f demo/hive.sql

cat <<MSG

Demo done. Connect to the cluster with:
  psql -h $PGHOST -p $PGPORT -U $PGUSER $PGDATABASE
or: eval "\$(scripts/pg.sh env)"; psql
Stop it with: scripts/pg.sh stop
MSG
