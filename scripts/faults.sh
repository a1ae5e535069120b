#!/usr/bin/env bash
# The fault drill and the soak of docs/benchmarks.md, on this machine's engines, against the
# release build:
#
#   scripts/faults.sh drill [options of `ioto-bench faults`]
#       a mixed load (session events, API clients, subscriptions, a bulk job, exports) while
#       Postgres, ClickHouse, the broker and the simulated HLR are stopped and started one at a
#       time; then every call, byte, job and export is checked.
#   scripts/faults.sh soak [options]
#       the same load for 30 minutes without outages: latency per five minutes and the server's
#       memory per minute.
#   scripts/faults.sh stop|start postgres|clickhouse|broker|hlr
#       the outage hook the drill calls.
#
# The run has its own Postgres and ClickHouse databases (ioto_faults), its own broker (tansu on
# 127.0.0.1:9193 storing its topics in a SQLite file, so that a restarted broker still has them
# and their consumer offsets; the tests' broker keeps them in memory) and its own state directory
# ($IOTO_FAULTS_DIR, /tmp/ioto-faults); the server runs as a separate process whose memory is
# measured. Everything is removed at the end. Not part of scripts/test.sh: it stops the engines
# the tests use.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

STATE="${IOTO_FAULTS_DIR:-/tmp/ioto-faults}"
# tansu with its SQLite storage engine, installed beside the tests' one (about 15 minutes once).
TANSU_ROOT="$HOME/.local/share/ioto/tansu-sqlite"
TANSU="$TANSU_ROOT/bin/tansu"
BROKER_PORT=9193
LISTEN=127.0.0.1:8091
PG_VERSION="$(ls /etc/postgresql 2>/dev/null | sort -V | tail -1)"
CH_PID=/var/run/clickhouse-server/clickhouse-server.pid

log() { printf '[faults] %s\n' "$*" >&2; }
die() { printf '[faults] ERROR: %s\n' "$*" >&2; exit 1; }
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi

wait_for() { # name, seconds, command...
  local name=$1 secs=$2; shift 2
  for _ in $(seq 1 "$((secs * 5))"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  die "$name did not become ready within ${secs}s"
}
pg_ready() { pg_isready -h 127.0.0.1 -p 5432 -q; }
ch_ready() { curl -fsS --max-time 2 http://127.0.0.1:8123/ping >/dev/null; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_broker() {
  (cd "$STATE" && nohup "$TANSU" broker \
      --listener-url "tcp://127.0.0.1:$BROKER_PORT" \
      --advertised-listener-url "tcp://127.0.0.1:$BROKER_PORT" \
      --storage-engine sqlite://tansu.db \
      >>"$STATE/tansu.log" 2>&1 & echo $! >"$STATE/tansu.pid")
  wait_for broker 30 port_open "$BROKER_PORT"
}

stop_pid_file() { # file: stops the process and waits until it is gone
  local pid
  pid="$(cat "$1" 2>/dev/null || true)"
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 150); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.2
  done
  kill -9 "$pid" 2>/dev/null || true
}

outage() { # stop|start engine
  case "$1 $2" in
    "stop postgres") $SUDO pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" main stop -m fast ;;
    "start postgres") $SUDO pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" main start; wait_for PostgreSQL 60 pg_ready ;;
    "stop clickhouse") $SUDO sh -c "kill \$(cat $CH_PID)"; for _ in $(seq 1 150); do ch_ready || break; sleep 0.2; done ;;
    "start clickhouse")
      $SUDO runuser -u clickhouse -- clickhouse-server --daemon \
        --config-file=/etc/clickhouse-server/config.xml --pid-file="$CH_PID"
      wait_for ClickHouse 120 ch_ready ;;
    "stop broker") stop_pid_file "$STATE/tansu.pid" ;;
    "start broker") start_broker ;;
    "stop hlr") touch "$STATE/hlr-down" ;;
    "start hlr") rm -f "$STATE/hlr-down" ;;
    *) die "usage: $0 stop|start postgres|clickhouse|broker|hlr" ;;
  esac
}

cleanup() {
  set +e
  stop_pid_file "$STATE/ioto.pid"
  stop_pid_file "$STATE/tansu.pid"
  pg_ready || outage start postgres
  ch_ready || outage start clickhouse
  psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS ioto_faults" >/dev/null 2>&1
  curl -fsS -X POST http://127.0.0.1:8123/ --data-binary "DROP DATABASE IF EXISTS ioto_faults" >/dev/null 2>&1
  # The logs stay for reading afterwards; the data goes.
  rm -rf "$STATE/data" "$STATE"/tansu.db*
}

run() { # drill|soak, options…
  local mode=$1; shift
  scripts/engines.sh >&2
  if [ ! -x "$TANSU" ]; then
    log "installing tansu with its SQLite storage into $TANSU_ROOT (about 15 minutes on 2 cores)"
    cargo install tansu --locked --version 0.6.0 --features libsql --root "$TANSU_ROOT" >&2
  fi
  log "building the release binaries"
  cargo build --release --locked --bin ioto --bin ioto-bench >&2
  local bin="${CARGO_TARGET_DIR:-target}/release/ioto"
  local bench="${CARGO_TARGET_DIR:-target}/release/ioto-bench"

  cleanup
  rm -rf "$STATE"
  trap cleanup EXIT
  mkdir -p "$STATE/data"
  start_broker
  psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE ioto_faults" >/dev/null
  cat >"$STATE/ioto.toml" <<EOF
listen = "$LISTEN"
data_dir = "$STATE/data"

[database]
url = "postgres://postgres@127.0.0.1:5432/ioto_faults"

[clickhouse]
url = "http://127.0.0.1:8123"
database = "ioto_faults"

[kafka]
brokers = "127.0.0.1:$BROKER_PORT"
topic_prefix = "faults."

# The load comes from one client address and one user: the drill measures the server, not the
# limits.
[rate_limit]
enabled = false

# A slow HLR, so that the bulk job is still running while the engines come and go.
[network.simulated]
tps = 10
down_file = "$STATE/hlr-down"
EOF
  export IOTO_CONFIG="$STATE/ioto.toml"
  "$bin" migrate >&2
  nohup "$bin" serve >"$STATE/ioto.log" 2>&1 &
  echo $! >"$STATE/ioto.pid"
  wait_for "ioto serve" 60 curl -fsS "http://$LISTEN/readyz"
  log "server up (pid $(cat "$STATE/ioto.pid")); log in $STATE/ioto.log"

  local status=0
  if [ "$mode" = drill ]; then
    "$bench" faults --server "http://$LISTEN" --server-pid "$(cat "$STATE/ioto.pid")" \
      --outages postgres,clickhouse,broker,hlr --outage-hook "$PWD/scripts/faults.sh" "$@" || status=$?
  else
    local minutes=(--minutes 30)
    case " $* " in *" --minutes "*) minutes=() ;; esac
    "$bench" faults --server "http://$LISTEN" --server-pid "$(cat "$STATE/ioto.pid")" \
      "${minutes[@]}" "$@" || status=$?
  fi
  kill -0 "$(cat "$STATE/ioto.pid")" 2>/dev/null || { log "the server died:"; tail -50 "$STATE/ioto.log" >&2; status=1; }
  # The server's own account: its warnings and errors by kind (request ids and times cut off).
  sed 's/\x1b\[[0-9;]*m//g' "$STATE/ioto.log" >"$STATE/ioto.plain.log"
  log "server log: $(grep -c ' WARN ' "$STATE/ioto.plain.log" || true) warnings, $(grep -c ' ERROR ' "$STATE/ioto.plain.log" || true) errors; the most frequent:"
  grep -E ' (WARN|ERROR) ' "$STATE/ioto.plain.log" | cut -c28- | sed -E 's/request_id=[0-9a-f-]+//; s/(detail|error)=(.{0,90}).*/\1=\2…/; s/[0-9]+(\.[0-9]+)?/N/g' \
    | sort | uniq -c | sort -rn | head -25 >&2 || true
  return "$status"
}

case "${1:-}" in
  drill|soak) mode=$1; shift; run "$mode" "$@" ;;
  stop|start) outage "$1" "${2:-}" ;;
  *) die "usage: $0 drill|soak [options of 'ioto-bench faults'] | stop|start ENGINE" ;;
esac
