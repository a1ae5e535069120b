#!/usr/bin/env bash
# Checks Ioto's ClickHouse SQL on a current ClickHouse release (chdb, ClickHouse in process): the
# servers that install here are 18.16, users run current ones. Applies every migration (TTL
# rendered) and runs every statement the ClickHouse usage adapter sends; see
# scripts/clickhouse-compat.py. Arguments go to it (--quiet: failures and the summary only).
set -euo pipefail
cd "$(dirname "$0")/.."
CHDB_VERSION=4.4.0 # chdb-core 26.9.0: ClickHouse 26.9
venv="${IOTO_TOOLS_DIR:-$HOME/.cache/ioto-tools}/chdb-$CHDB_VERSION"
if ! "$venv/bin/python" -c "import chdb, sys; sys.exit(chdb.__version__ != '$CHDB_VERSION')" >/dev/null 2>&1; then
  echo "[compat] installing chdb $CHDB_VERSION into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "chdb==$CHDB_VERSION"
fi
exec "$venv/bin/python" scripts/clickhouse-compat.py "$@"
