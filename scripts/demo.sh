#!/usr/bin/env bash
# demo.sh (`make demo`): installs packages, builds and installs mlpipe, starts
# the cluster in .pg/ and runs demo/demo.sql in database mlpipe (with
# :wine_csv, the UCI wine data that Debian's python3-sklearn ships).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
make -j"$(nproc)"
make install
bash scripts/pg.sh start
eval "$(bash scripts/pg.sh env)"
wine_csv=$(/usr/bin/python3 -c 'import os, sklearn.datasets as d;
print(os.path.join(os.path.dirname(d.__file__), "data", "wine_data.csv"))')
psql -X -v ON_ERROR_STOP=1 -v wine_csv="$wine_csv" -f demo/demo.sql

cat <<MSG

Demo done. Connect to the cluster with:
  psql -h $PGHOST -p $PGPORT -U $PGUSER $PGDATABASE
or: eval "\$(scripts/pg.sh env)"; psql
Stop it with: scripts/pg.sh stop
MSG
