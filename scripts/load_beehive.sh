#!/usr/bin/env bash
# load_beehive.sh: loads the raw UrBAN beehive files (sensor, inspections,
# weather CSVs as published, see the data set's SOURCE.md) into typed tables.
#   scripts/load_beehive.sh DATA_DIR [SCHEMA]
# DATA_DIR is the beehive_urban folder (e.g. $MLPIPE_DATA/beehive_urban);
# SCHEMA (default beehive) is created when missing, and its four tables are
# dropped and loaded again, in one transaction, so a rerun gives the same data:
#   SCHEMA.sensor(ts timestamptz, hive int, temperature float8, humidity float8)
#   SCHEMA.weather(ts timestamptz, temp_c float8, rel_hum float8, precip_mm float8)
#       (the file's local standard time, UTC-5 all year, converted to timestamptz)
#   SCHEMA.inspections_2021(date, hive, colony_size, fob_1st, fob_2nd, fob_3rd,
#       fobrood, queen_status, frames_of_honey, open, close, notes)
#   SCHEMA.inspections_2022(ts, hive, category, action_detail, queen_status,
#       is_alive, report_notes)
# Connects with psql through the usual PG* variables (eval "$(scripts/pg.sh env)").
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "usage: $0 DATA_DIR [SCHEMA]" >&2
	exit 2
fi
dir=$(cd "$1" && pwd)
schema=${2:-beehive}
for f in sensor_2021.csv inspections_2021.csv inspections_2022.csv weather_2021_2022.csv; do
	[ -r "$dir/$f" ] || { echo "load_beehive: $dir/$f is missing or unreadable" >&2; exit 1; }
done

# A file path as a SQL string literal (\copy does not interpolate variables).
lit() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/''/g")"; }

psql -X -q -v ON_ERROR_STOP=1 -v schema="$schema" <<SQL
BEGIN;
SET client_min_messages = warning;
CREATE SCHEMA IF NOT EXISTS :"schema";
SET search_path = :"schema";
DROP TABLE IF EXISTS sensor, weather, inspections_2021, inspections_2022, weather_raw;

CREATE TABLE sensor (ts timestamptz NOT NULL, hive int NOT NULL,
                     temperature float8, humidity float8);
\copy sensor FROM $(lit "$dir/sensor_2021.csv") WITH (FORMAT csv, HEADER true)
CREATE INDEX ON sensor (hive, ts);

CREATE TEMP TABLE weather_raw (ts_lst timestamp, temp_c float8, rel_hum float8, precip_mm float8);
\copy weather_raw FROM $(lit "$dir/weather_2021_2022.csv") WITH (FORMAT csv, HEADER true, ENCODING 'UTF8')
CREATE TABLE weather AS
SELECT ts_lst AT TIME ZONE 'EST' AS ts, temp_c, rel_hum, precip_mm FROM weather_raw ORDER BY ts_lst;

CREATE TABLE inspections_2021 (date date, hive int, colony_size int, fob_1st float8,
    fob_2nd float8, fob_3rd float8, fobrood float8, queen_status text,
    frames_of_honey float8, open time, close time, notes text);
\copy inspections_2021 FROM $(lit "$dir/inspections_2021.csv") WITH (FORMAT csv, HEADER true)

CREATE TABLE inspections_2022 (ts timestamptz, hive int, category text, action_detail text,
    queen_status text, is_alive int, report_notes text);
\copy inspections_2022 FROM $(lit "$dir/inspections_2022.csv") WITH (FORMAT csv, HEADER true)

ANALYZE sensor;
ANALYZE weather;
COMMIT;
SQL
psql -X -At -c "SELECT 'load_beehive: ' || (SELECT count(*) FROM \"$schema\".sensor) || ' sensor rows, '
  || (SELECT count(*) FROM \"$schema\".weather) || ' weather rows, '
  || (SELECT count(*) FROM \"$schema\".inspections_2021) || ' + '
  || (SELECT count(*) FROM \"$schema\".inspections_2022) || ' inspections into schema $schema'"
