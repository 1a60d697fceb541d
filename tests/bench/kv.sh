#!/usr/bin/env bash
# KV benchmark, kvgate and etcd 3.4 side by side in one run:
#   durable put (distinct keys, 256-byte values) and serializable range,
#   64 connections each, with wrk.  Reported as ratios kvgate/etcd.
# Usage: tests/bench/kv.sh [seconds per phase, default 15]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
DUR=${1:-15}
CONNS=${CONNS:-64}
start_etcd
start_kvgate

run_wrk() { # mode url
  MODE=$1 wrk -t2 -c"$CONNS" -d"${DUR}s" --timeout 10s -s "$ROOT/tests/bench/kv.lua" "$2" \
    | awk '/^RESULT/ {print}'
}
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }

declare -A R
for mode in put range; do
  for srv in etcd kvgate; do
    url=$ETCD_URL; [ $srv = kvgate ] && url=$KVGATE_URL
    R[$srv.$mode]=$(run_wrk $mode "$url")
    echo "$srv $mode: ${R[$srv.$mode]}"
  done
done

echo
printf '%-6s %12s %12s %8s %12s %12s\n' phase etcd_rps kvgate_rps ratio etcd_p99_ms kvgate_p99_ms
for mode in put range; do
  e=${R[etcd.$mode]}; k=${R[kvgate.$mode]}
  er=$(field rps "$e"); kr=$(field rps "$k")
  ep=$(field p99_us "$e"); kp=$(field p99_us "$k")
  printf '%-6s %12.0f %12.0f %7.2fx %12.2f %12.2f\n' $mode "$er" "$kr" \
    "$(echo "$kr / $er" | bc -l)" "$(echo "$ep / 1000" | bc -l)" "$(echo "$kp / 1000" | bc -l)"
  [ "$(field errors "$k")" = 0 ] || echo "WARNING: kvgate $mode had $(field errors "$k") errors"
done
