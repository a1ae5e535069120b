#!/usr/bin/env bash
# Checks the ClickHouse schema on a current ClickHouse release (chdb, in process): the servers that
# install here are 18.16, users run current ones. See scripts/clickhouse-compat.py.
set -euo pipefail
cd "$(dirname "$0")/.."
CHDB_VERSION=4.4.0
venv="${IOTO_TOOLS_DIR:-$HOME/.cache/ioto-tools}/chdb-$CHDB_VERSION"
if ! "$venv/bin/python" -c "import chdb" >/dev/null 2>&1; then
  echo "[compat] installing chdb $CHDB_VERSION into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "chdb==$CHDB_VERSION"
fi
exec "$venv/bin/python" scripts/clickhouse-compat.py
