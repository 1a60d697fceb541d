# Shared helpers for the benchmarks: start/stop etcd and kvgate on free
# loopback ports with temp data dirs.  Sourced by the bench scripts.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
KVGATE_BIN=${KVGATE_BIN:-$ROOT/bin/kvgate}
BENCH_TMP=$(mktemp -d /tmp/kvgate-bench.XXXXXX)
BENCH_PIDS=()

bench_cleanup() {
  for p in "${BENCH_PIDS[@]}"; do kill "$p" 2>/dev/null; done
  sleep 0.5
  for p in "${BENCH_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  rm -rf "$BENCH_TMP"
}
trap bench_cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_http() { # url
  for _ in $(seq 1 100); do
    curl -sf -m 1 "$1" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "not ready: $1" >&2; return 1
}

start_etcd() { # sets ETCD_URL, ETCD_PID
  local cp pp
  cp=$(free_port); pp=$(free_port)
  etcd --name bench --data-dir "$BENCH_TMP/etcd" \
    --listen-client-urls "http://127.0.0.1:$cp" --advertise-client-urls "http://127.0.0.1:$cp" \
    --listen-peer-urls "http://127.0.0.1:$pp" --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
    --initial-cluster "bench=http://127.0.0.1:$pp" >"$BENCH_TMP/etcd.log" 2>&1 &
  ETCD_PID=$!; BENCH_PIDS+=("$ETCD_PID")
  ETCD_URL="http://127.0.0.1:$cp"
  wait_http "$ETCD_URL/health"
}

start_kvgate() { # sets KVGATE_URL, KVGATE_PID
  local p
  p=$(free_port)
  "$KVGATE_BIN" --listen "127.0.0.1:$p" --data-dir "$BENCH_TMP/kvgate" ${KVGATE_ARGS:-} \
    >"$BENCH_TMP/kvgate.out" 2>"$BENCH_TMP/kvgate.log" &
  KVGATE_PID=$!; BENCH_PIDS+=("$KVGATE_PID")
  KVGATE_URL="http://127.0.0.1:$p"
  wait_http "$KVGATE_URL/health"
}

# Resident memory (KiB) and CPU ticks (utime+stime) of a pid.
proc_rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
proc_cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
