#!/usr/bin/env bash
# load_adult.sh DIR [TABLE]: loads UCI Adult (DIR = the uci_adult folder with
# adult.data.gz and adult.test.gz) into TABLE (default adult):
#   adult(age int, workclass text, fnlwgt int, education text, education_num int,
#         marital_status text, occupation text, relationship text, race text, sex text,
#         capital_gain int, capital_loss int, hours_per_week int, native_country text,
#         income text, is_test boolean)
# The files have no header line except adult.test's first line
# ("|1x3 Cross validator"), which is skipped; fields are separated by ", ";
# '?' (missing) becomes NULL; the trailing '.' of adult.test's labels
# ("<=50K.") is removed so both files use <=50K / >50K; blank lines are
# skipped. adult.data rows get is_test = false (32,561), adult.test rows
# is_test = true (16,281). Uses the PG* environment (eval "$(scripts/pg.sh env)").
set -euo pipefail
dir=${1:?usage: load_adult.sh path/to/uci_adult [table]}
table=${2:-adult}
for f in adult.data.gz adult.test.gz; do
	[ -r "$dir/$f" ] || { echo "load_adult: $dir/$f is missing or unreadable" >&2; exit 1; }
done
# One file as tab-separated text for COPY: the header line and blank lines
# dropped, ", " split, '?' as \N, the label's '.' removed, is_test appended.
rows() {
	gunzip -c "$1" | awk -v is_test="$2" -F', *' 'BEGIN { OFS = "\t" }
		/^\|/ || /^[ \t\r]*$/ { next }
		{ sub(/\r$/, ""); $1 = $1; sub(/\.$/, "", $15)
		  for (i = 1; i <= NF; i++) if ($i == "?") $i = "\\N"
		  print $0, is_test }'
}
{
	echo "SET client_min_messages = warning;"
	echo "DROP TABLE IF EXISTS $table;"
	echo "CREATE TABLE $table (age int, workclass text, fnlwgt int, education text, education_num int,
	    marital_status text, occupation text, relationship text, race text, sex text,
	    capital_gain int, capital_loss int, hours_per_week int, native_country text,
	    income text, is_test boolean);"
	echo "COPY $table FROM STDIN;"
	rows "$dir/adult.data.gz" f
	rows "$dir/adult.test.gz" t
	echo '\.'
} | psql -X -q -v ON_ERROR_STOP=1
psql -X -At -c "SELECT 'load_adult: ' || count(*) FILTER (WHERE NOT is_test) || ' training + '
                       || count(*) FILTER (WHERE is_test) || ' test rows into $table' FROM $table"
