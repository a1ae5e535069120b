#!/usr/bin/env bash
# Runs every check against real engines: engines up, fmt, clippy, the whole test suite.
# Uses $CARGO_TARGET_DIR when set (keep it outside the checkout to reuse builds).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

scripts/engines.sh

# Per-test Postgres and ClickHouse databases, and the migrated Postgres template they are cloned
# from (`ioto_tpl_<hash of the migrations>`, built once per run): dropped before the run (left
# by an interrupted one) and after it, whatever its outcome, so a run leaves nothing behind.
drop_test_databases() {
  psql -h 127.0.0.1 -U postgres -d postgres -Atc \
    "SELECT datname FROM pg_database WHERE datname LIKE 'ioto\_test\_%' OR datname LIKE 'ioto\_tpl\_%'" 2>/dev/null |
    while read -r db; do psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS \"$db\"" >/dev/null 2>&1 || true; done
  for db in $(curl -fsS 'http://127.0.0.1:8123/?query=SHOW%20DATABASES' | grep '^ioto_test_' || true); do
    curl -fsS -X POST "http://127.0.0.1:8123/" --data-binary "DROP DATABASE IF EXISTS $db" >/dev/null || true
  done
}
drop_test_databases
trap drop_test_databases EXIT

echo "[test] cargo fmt --check"
cargo fmt --all -- --check

echo "[test] unused dependencies (cargo machete)"
if ! command -v cargo-machete >/dev/null 2>&1; then
  cargo install cargo-machete --locked --version 0.9.2
fi
cargo machete

echo "[test] ClickHouse schema on a current release (chdb)"
scripts/clickhouse-compat.sh --quiet

echo "[test] cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "[test] tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
  # nextest does not run doctests.
  cargo test --workspace --locked --doc
else
  cargo test --workspace --locked --no-fail-fast
fi
echo "[test] all green"
