#!/usr/bin/env bash
# load_milk.sh CSV [SCHEMA]: loads milk_price_ch_monthly.csv into SCHEMA.milk
# (default schema milk) with the column names exactly as in the file: Date as
# date, the policy columns Kontingent, Freihandel, EU_Politik as text, every
# other column double precision; empty cells become NULL. Uses the PG* env
# (eval "$(scripts/pg.sh env)"). The same typing as test/peer/test_scenario_milk.py.
set -euo pipefail
csv=${1:?usage: load_milk.sh path/to/milk_price_ch_monthly.csv [schema]}
schema=${2:-milk}
IFS=, read -r -a cols < <(head -1 "$csv" | tr -d '\r')
ddl=""
for c in "${cols[@]}"; do
	case "$c" in
		Date) t=date ;;
		Kontingent | Freihandel | EU_Politik) t=text ;;
		*) t="double precision" ;;
	esac
	ddl+="${ddl:+, }\"${c//\"/\"\"}\" $t"
done
psql -X -q -v ON_ERROR_STOP=1 \
	-c "SET client_min_messages = warning" \
	-c "DROP SCHEMA IF EXISTS \"$schema\" CASCADE" -c "CREATE SCHEMA \"$schema\"" \
	-c "CREATE TABLE \"$schema\".milk ($ddl)" \
	-c "\\copy \"$schema\".milk FROM '$csv' WITH (FORMAT csv, HEADER true)"
psql -X -At -c "SELECT 'load_milk: ' || count(*) || ' months into $schema.milk' FROM \"$schema\".milk"
