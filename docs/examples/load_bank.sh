#!/usr/bin/env bash
# load_bank.sh CSV_GZ [TABLE] [all]: loads UCI bank marketing's
# bank-full.csv.gz (45,211 calls in date order, ';'-separated, quoted, with a
# header) into TABLE (default bank), one row per call, id = the call's line
# number (1 = the first call, May 2008), so `id <= 30000` is the earlier
# calls. The table has the 9 columns the docs use:
#   bank(id int, age float8, balance float8, day float8, duration float8,
#        campaign float8, pdays float8, previous float8, y text)
# With `all` it has the 17 columns of the file instead, in file order, and no
# id (job, marital, education, default, housing, loan, contact, month,
# poutcome, y as text, the rest float8). Uses the PG* environment (eval "$(scripts/pg.sh env)").
set -euo pipefail
csv=${1:?usage: load_bank.sh path/to/bank-full.csv.gz [table] [all]}
table=${2:-bank}
shape=${3:-short}
[ -r "$csv" ] || { echo "load_bank: $csv is missing or unreadable" >&2; exit 1; }
if [ "$shape" = all ]; then
	cols="age float8, job text, marital text, education text, \"default\" text, balance float8,
	      housing text, loan text, contact text, day float8, month text, duration float8,
	      campaign float8, pdays float8, previous float8, poutcome text, y text"
	pick='$1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17'
	first=''
else
	first='NR - 1, '
	cols="id int PRIMARY KEY, age float8, balance float8, day float8, duration float8, campaign float8,
	      pdays float8, previous float8, y text"
	pick='$1,$6,$10,$12,$13,$14,$15,$17'
fi
{
	echo "SET client_min_messages = warning;"
	echo "DROP TABLE IF EXISTS $table;"
	echo "CREATE TABLE $table ($cols);"
	echo "COPY $table FROM STDIN;"
	gunzip -c "$csv" | tr -d '"\r' | awk -F';' 'BEGIN { OFS = "\t" } NR > 1 && NF > 1 { print '"$first$pick"' }'
	echo '\.'
} | psql -X -q -v ON_ERROR_STOP=1
psql -X -At -c "SELECT 'load_bank: ' || count(*) || ' calls into $table' FROM $table"
