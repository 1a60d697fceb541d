#!/usr/bin/env bash
# make bench: every benchmark, each side by side with etcd 3.4 in one run.
set -uo pipefail
cd "$(dirname "$0")"
rc=0
for b in kv.sh $(ls watch*.sh startup*.sh 2>/dev/null); do
  echo "=== $b"
  bash "./$b" || rc=1
done
exit $rc
