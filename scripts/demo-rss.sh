#!/usr/bin/env bash
# Leaves `ioto demo` (embedded engines, live traffic) running for MINUTES (default 60) and prints
# its resident memory every INTERVAL seconds (default 60), then the first, largest and last
# figures. The demo runs in a fresh data dir on a free port; nothing else is started.
#   scripts/demo-rss.sh [MINUTES] [INTERVAL]
# Uses the release binary under $CARGO_TARGET_DIR (or ./target); builds it when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes="${1:-60}"
interval="${2:-60}"
target="${CARGO_TARGET_DIR:-target}"
bin="$target/release/ioto"
if [ ! -x "$bin" ]; then
  cargo build --release --locked
fi
data="$(mktemp -d /tmp/ioto-demo-rss.XXXXXX)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
IOTO_LISTEN="127.0.0.1:$port" "$bin" demo --data-dir "$data" >"$data/demo.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 60); do
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 1
done
curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null || { cat "$data/demo.log"; exit 1; }
rss() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/status"; }
cpu() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
ticks="$(getconf CLK_TCK)"
echo "machine: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(nproc) cores"
echo "| minute | RSS MiB | CPU seconds |"
echo "|---:|---:|---:|"
first=""; peak=0; last=""
steps=$(( minutes * 60 / interval ))
for i in $(seq 0 "$steps"); do
  kill -0 "$pid" 2>/dev/null || { echo "the demo exited:"; tail -20 "$data/demo.log"; exit 1; }
  r="$(rss)"; c="$(cpu)"
  [ -z "$first" ] && first="$r"
  last="$r"
  peak="$(python3 -c "print(max($peak, $r))")"
  printf '| %s | %s | %.1f |\n' "$(( i * interval / 60 ))" "$r" "$(python3 -c "print($c / $ticks)")"
  [ "$i" -lt "$steps" ] && sleep "$interval"
done
echo "RSS: first $first MiB, largest $peak MiB, last $last MiB after $minutes minutes"
