#!/usr/bin/env bash
# Watch benchmark, kvgate and etcd 3.4 side by side in one run:
#   20,000 revisions, then one watch from revision 1 (POST start_revision 1).
# Details, metrics and targets: watch_catchup.py (arguments are passed on).
# Results: a summary table on stdout, JSON in tests/artifacts/bench/.
# Bounded: the whole run is stopped after 300 s; servers are children of
# the Python driver (killed with it), on 127.0.0.1, data under /dev/shm.
set -uo pipefail
if [ -n "${KVGATE_BIN:-}" ] && [ "${KVGATE_BIN#/}" = "$KVGATE_BIN" ]; then
  KVGATE_BIN=$PWD/$KVGATE_BIN  # relative to where we were started
fi
cd "$(dirname "$0")"
ROOT=$(cd ../.. && pwd)
export KVGATE_BIN=${KVGATE_BIN:-$ROOT/bin/kvgate}
[ -x "$KVGATE_BIN" ] || { echo "kvgate binary not found: $KVGATE_BIN (make, or set KVGATE_BIN)" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true  # servers and client inherit it
exec timeout -k 10 300 /usr/bin/python3 watch_catchup.py "$@"
