#!/usr/bin/env bash
# docs/run.sh: the documentation examples as a suite (test/docs/run_docs.py):
# every ```sql block of README.md, docs/*.md and docs/guides/*.md runs in a
# fresh database per page after the page's own loading steps, or carries a
# not-run / xfail marker with its reason. One PASS/FAIL/XFAIL/SKIP line per
# block. Needs the cluster of scripts/pg.sh running with mlpipe installed, the
# data in $MLPIPE_DATA (default ../shared/data). Pages that need pg_cron run
# in the database pg_cron serves (`mlpipe`), which is dropped and recreated.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${PGHOST:-}" ]; then eval "$(bash scripts/pg.sh env)"; fi
export MLPIPE_DATA=${MLPIPE_DATA:-$(cd .. && pwd)/shared/data}
exec timeout "${MLPIPE_DOCTEST_TOTAL_TIMEOUT:-5400}" /usr/bin/python3 test/docs/run_docs.py "$@"
