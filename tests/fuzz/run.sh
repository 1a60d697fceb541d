#!/usr/bin/env bash
# tests/fuzz/run.sh SECONDS FUZZER... — runs each libFuzzer target for a
# bounded time over its seed corpus (tests/fuzz/corpus/<target>/, read
# only: new inputs go to a scratch directory), two at a time.  A target
# passes when it ends cleanly: no crash, sanitizer report, leak
# (detect_leaks=1), input slower than -timeout (a hang), or RSS beyond
# -rss_limit_mb.  Logs and crashing inputs land in tests/artifacts/fuzz/;
# a crash input can be replayed with `<fuzzer> <file>` and then belongs in
# the corpus as a regression seed.  Last line: "fuzz: N passed, N failed".
#
# FUZZ_SEED (default 1) and FUZZ_RUNS (default 1000000) make a run
# reproducible: the same binary, corpus and seed try the same inputs on any
# machine, so what passed here passes in CI (SECONDS stays a cap for slow
# machines).  FUZZ_SEED=0 picks a random seed and FUZZ_RUNS=-1 runs until
# the time is up: that is `make fuzz-explore`, for finding new bugs; what it
# finds goes into the corpus.
set -uo pipefail
cd "$(dirname "$0")/../.."
t=$1; shift
seed=${FUZZ_SEED:-1}
runs=${FUZZ_RUNS:-1000000}
art=tests/artifacts/fuzz
mkdir -p "$art"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
jobs=$(nproc 2>/dev/null || echo 2)

one() {  # one FUZZER: runs it, prints "PASS name" or "FAIL name"
    local bin=$1 name
    name=$(basename "$bin")
    mkdir -p "$scratch/$name" "tests/fuzz/corpus/$name"
    ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        timeout -k 5 $((t + 60)) "$bin" -seed="$seed" -runs="$runs" -max_total_time="$t" -timeout=10 -rss_limit_mb=2048 \
            -max_len=65536 -print_final_stats=1 -artifact_prefix="$art/$name-" \
            "$scratch/$name" "tests/fuzz/corpus/$name" >"$art/$name.log" 2>&1
    local rc=$?
    if [ "$rc" = 0 ]; then
        echo "PASS $name (seed $seed, $(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$art/$name.log" | grep -o '[0-9]*$') runs)"
    else
        echo "FAIL $name (exit $rc, log $art/$name.log)"
        grep -m3 -E 'ERROR: |runtime error|SUMMARY' "$art/$name.log" | sed 's/^/    /'
    fi
}
export -f one
export t art scratch seed runs

results=$(printf '%s\n' "$@" | xargs -P "$jobs" -I{} bash -c 'one "$@"' _ {})
echo "$results"
p=$(grep -c '^PASS' <<<"$results")
f=$(grep -c '^FAIL' <<<"$results")
echo "fuzz: $p passed, $f failed"
[ "$f" = 0 ]
