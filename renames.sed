# Renames of issue #9 (helper C): glue-side names get the glue's prefixes.
# Apply with: sed -i -f renames.sed src/pg/fit_trees*.c
s/\bml_ereport\b/pg_report_ml_error/g
s/\bclosest_key\b/params_closest_key/g
s/\bjoin_names\b/params_join_names/g
s/\bjson_number\b/params_json_number/g
s/\bregistry_fit_issue\b/fit_token_issue/g
