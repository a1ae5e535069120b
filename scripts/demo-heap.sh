#!/usr/bin/env bash
# Leaves `ioto demo` (embedded engines, live traffic) running for MINUTES (default 20) under
# jemalloc's heap profiler and prints what holds the live heap at the end, and what grew between
# the first profile after BASE minutes (default 2) and the last one.
#   scripts/demo-heap.sh [MINUTES] [BASE]
# Builds the release binary with the `heap-profile` feature (under $CARGO_TARGET_DIR or
# ./target; the next plain release build relinks without it) and needs `jeprof` (Debian's
# libjemalloc-dev). The profiles stay in the printed directory.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes="${1:-20}"
base="${2:-2}"
command -v jeprof >/dev/null || { echo "jeprof is missing: apt-get install libjemalloc-dev" >&2; exit 1; }
target="${CARGO_TARGET_DIR:-target}"
cargo build --release --locked --features heap-profile
data="$(mktemp -d /tmp/ioto-demo-heap.XXXXXX)"
bin="$data/ioto"
cp "$target/release/ioto" "$bin"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# A sample every 128 KiB allocated; a profile each time 256 MiB more have been allocated.
MALLOC_CONF="prof:true,prof_active:true,lg_prof_sample:17,lg_prof_interval:28,prof_prefix:$data/heap" \
  IOTO_LISTEN="127.0.0.1:$port" "$bin" demo --data-dir "$data/demo" >"$data/demo.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT
rss() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/status"; }
sleep $(( base * 60 ))
first="$(ls -t "$data"/heap.*.heap | head -1)"
echo "after $base min: RSS $(rss) MiB, profile $first"
sleep $(( (minutes - base) * 60 ))
last="$(ls -t "$data"/heap.*.heap | head -1)"
echo "after $minutes min: RSS $(rss) MiB, profile $last"
# `head` closes the pipe early: jeprof then dies of SIGPIPE, which is not a failure here.
set +o pipefail
echo "## live heap after $minutes minutes (sampled), by function and its callees"
jeprof --text --cum --show_bytes "$bin" "$last" 2>/dev/null | head -60
echo "## grown since minute $base"
jeprof --text --cum --show_bytes --base="$first" "$bin" "$last" 2>/dev/null | head -60
echo "profiles in $data"
