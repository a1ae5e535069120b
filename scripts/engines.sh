#!/usr/bin/env bash
# Installs (when missing) and starts, idempotently, the engines the test suite runs against:
#   PostgreSQL  127.0.0.1:5432  (trust auth on this machine kind)
#   ClickHouse  127.0.0.1:8123  (HTTP; Debian's clickhouse-server)
#   tansu       127.0.0.1:9092  (Kafka-protocol broker, in-memory storage)
# Safe to run any number of times. Exits non-zero, naming the engine, when one cannot be started.
set -euo pipefail

log() { printf '[engines] %s\n' "$*"; }
die() { printf '[engines] ERROR: %s\n' "$*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi

wait_for() { # name, seconds, command...
  local name=$1 secs=$2; shift 2
  for _ in $(seq 1 "$secs"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  die "$name did not become ready within ${secs}s"
}

apt_install() {
  log "installing Debian packages: $*"
  $SUDO apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

# --- PostgreSQL -------------------------------------------------------------------------------
pg_ready() { pg_isready -h 127.0.0.1 -p 5432 -q; }
if ! command -v pg_isready >/dev/null 2>&1; then
  apt_install postgresql
  # Tests connect as `postgres` over loopback without a password, as on this machine kind.
  hba="$(ls -d /etc/postgresql/*/main | sort -V | tail -1)/pg_hba.conf"
  printf 'host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n' | $SUDO tee "$hba.ioto" >/dev/null
  $SUDO sh -c "cat '$hba' >> '$hba.ioto' && mv '$hba.ioto' '$hba'"
fi
if ! pg_ready; then
  log "starting PostgreSQL"
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
  fi
fi
wait_for PostgreSQL 30 pg_ready
log "PostgreSQL ready on 127.0.0.1:5432"

# --- ClickHouse -------------------------------------------------------------------------------
ch_ready() { curl -fsS --max-time 2 http://127.0.0.1:8123/ping >/dev/null; }
if ! ch_ready; then
  if ! command -v clickhouse-server >/dev/null 2>&1; then
    apt_install clickhouse-server clickhouse-client
  fi
  log "starting ClickHouse"
  $SUDO mkdir -p /var/run/clickhouse-server /var/lib/clickhouse /var/log/clickhouse-server
  $SUDO chown clickhouse:clickhouse /var/run/clickhouse-server /var/lib/clickhouse /var/log/clickhouse-server
  $SUDO runuser -u clickhouse -- clickhouse-server --daemon \
    --config-file=/etc/clickhouse-server/config.xml \
    --pid-file=/var/run/clickhouse-server/clickhouse-server.pid
fi
wait_for ClickHouse 60 ch_ready
log "ClickHouse ready on 127.0.0.1:8123 ($(curl -fsS 'http://127.0.0.1:8123/?query=SELECT%20version()'))"

# --- Chromium (browser tests drive it through chromedriver) -------------------------------------
# The MQTT TLS test starts a Mosquitto of its own with certificates made by openssl.
if ! command -v openssl >/dev/null 2>&1 || [ ! -x /usr/sbin/mosquitto ]; then
  apt_install openssl mosquitto
fi

# `ioto-bench cpu --instructions` counts instructions under valgrind's callgrind.
if ! command -v valgrind >/dev/null 2>&1; then
  apt_install valgrind
fi

# The notification tests deliver e-mail to a real SMTP listener (aiosmtpd) they start.
if ! /usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
  apt_install python3-aiosmtpd
fi

# The export tests read the files back with outside readers, pyarrow (Parquet) and openpyxl
# (XLSX), and store them in an S3-compatible server (moto's), all pinned, in a virtual
# environment of their own (IOTO_PY_ENV).
PY_ENV="${IOTO_PY_ENV:-$HOME/.local/share/ioto/py}"
if ! "$PY_ENV/bin/python" -c 'import pyarrow, openpyxl, moto' >/dev/null 2>&1; then
  if ! python3 -m venv --help >/dev/null 2>&1; then
    apt_install python3-venv
  fi
  log "installing pyarrow, openpyxl and moto into $PY_ENV"
  python3 -m venv "$PY_ENV"
  "$PY_ENV/bin/pip" install --quiet --disable-pip-version-check 'pyarrow==26.0.1' 'openpyxl==3.1.5' 'moto[server]==5.2.5'
fi
log "Python readers ready ($("$PY_ENV/bin/python" -c 'import pyarrow, openpyxl, moto; print("pyarrow", pyarrow.__version__, "openpyxl", openpyxl.__version__, "moto", moto.__version__)'))"

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  apt_install chromium chromium-driver
fi
log "Chromium ready ($(chromium --version 2>/dev/null | head -1))"

# --- tansu (Kafka protocol) -------------------------------------------------------------------
export PATH="$HOME/.cargo/bin:$PATH"
kafka_ready() { (exec 3<>/dev/tcp/127.0.0.1/9092) 2>/dev/null; }
if ! kafka_ready; then
  if ! command -v tansu >/dev/null 2>&1; then
    log "installing tansu (cargo install; about 15 minutes on 2 cores)"
    cargo install tansu --locked --features dynostore
  fi
  log "starting tansu"
  mkdir -p "${IOTO_ENGINE_LOGS:-/tmp/ioto-engines}"
  nohup tansu broker \
    --listener-url tcp://127.0.0.1:9092 \
    --advertised-listener-url tcp://127.0.0.1:9092 \
    --storage-engine memory://tansu/ \
    >"${IOTO_ENGINE_LOGS:-/tmp/ioto-engines}/tansu.log" 2>&1 &
fi
wait_for tansu 60 kafka_ready
log "Kafka-protocol broker (tansu) ready on 127.0.0.1:9092"
