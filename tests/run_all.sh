#!/usr/bin/env bash
# tests/run_all.sh — every test suite, each bounded by a timeout (called by
# `make test` after `make deps` and the release build).
#
#   1. make unit                                  C unit tests, release build
#   2. make SANITIZE=address,undefined all unit   C unit tests under ASan+UBSan
#   3. pytest on the end-to-end suites (SAN_SUITES: e2e, diff, openapi,
#      faults, crash, browser) against the sanitizer binary, with
#      KVGATE_SANITIZED=1 in the environment (for tests whose measurements
#      mean nothing under ASan, e.g. memory per stream, to skip or scale
#      themselves) and without tests marked "slow" (none at the moment);
#      then (3a) node --test tests/js/ against the same binary.  Leak
#      detection is on; every kvgate started (restarts included) reports
#      into tests/artifacts/san/, and any report there counts as a failure
#      even if no test noticed it (a leak at exit after the test passed).
#      A process killed with kill -9 (the crash suite) cannot report leaks;
#      everything it did before is still checked as it happens.  Measured
#      under ASan+UBSan on 2 shared cores: faults + crash + browser 77 s in
#      one pytest run (crash 47 s, browser 19 s, faults 11 s alone), js 14-26 s.
#   3b. ThreadSanitizer: the concurrency unit tests (store_watch_concurrent,
#      store_commit, store_lease) built with SANITIZE=thread in build/tsan/
#      (make tsan-unit) and run with tests/unit/store_tsan.supp; a TSan
#      report fails the binary (halt_on_error=1)
#   4. pytest on every suite under tests/ against the release binary,
#      tests/browser included: EventSource and the dashboard (web/, served
#      by the binary) in headless Chromium, screenshots kept in
#      tests/artifacts/screenshots/
#   5. node --test tests/js/: the JavaScript client web/kvgate.js against
#      the release binary in fixture mode, also in headless Chromium
#   6. make fuzz-run: each libFuzzer target of tests/fuzz/ (clang,
#      ASan+UBSan, leak detection) over its seed corpus with a fixed seed
#      for FUZZ_RUNS inputs (at most FUZZ_TIME seconds), two at a time, so
#      the run is reproducible; one failure per target that crashes, leaks,
#      hangs or exceeds its memory limit (tests/fuzz/run.sh)
#
# Suites that do not exist yet are skipped, not failed.  Logs and JUnit XML
# go to tests/artifacts/.  The last line printed is "N passed, N failed"
# over all steps (a step that fails without reporting a failed test — a
# build error, a timeout, a sanitizer report — counts as one failure); the
# exit status is non-zero if anything failed.
#
# Environment (all optional):
#   SAN_SUITES="tests/e2e tests/diff tests/openapi tests/faults tests/crash tests/browser"
#                         pytest paths for step 3
#   SKIP_SAN=1            skip steps 2, 3, 3a and 3b
#   T_UNIT, T_SAN_BUILD, T_SAN_PYTEST, T_SAN_JS, T_TSAN, T_PYTEST, T_JS    timeouts in seconds
#   T_FUZZ=420            timeout of step 6; FUZZ_TIME=30 seconds per target at most;
#                         SKIP_FUZZ=1 skips step 6
#   PYTEST_ARGS           extra arguments for both pytest runs
set -uo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
ART=$ROOT/tests/artifacts
mkdir -p "$ART"
JOBS=$(nproc 2>/dev/null || echo 2)
PYTHON=/usr/bin/python3
SAN=address,undefined
SAN_BIN=$ROOT/bin/kvgate-san-${SAN//,/_}
REL_BIN=$ROOT/bin/kvgate
: "${SAN_SUITES:=tests/e2e tests/diff tests/openapi tests/faults tests/crash tests/browser}"
: "${T_UNIT:=300}" "${T_SAN_BUILD:=480}" "${T_SAN_PYTEST:=600}" "${T_SAN_JS:=300}" "${T_TSAN:=300}"
: "${T_PYTEST:=600}" "${T_JS:=300}"
: "${T_FUZZ:=420}" "${FUZZ_TIME:=30}"
read -r -a EXTRA <<<"${PYTEST_ARGS:-}"

passed=0 failed=0 skipped=0
summary=()
SAN_ENV=()
# What counts as a sanitizer report in a server's stderr: ASan/LSan/UBSan
# errors, and LSan or ASan giving up (leak detection would be off unnoticed).
SAN_REPORT_RE='runtime error:|ERROR: (Address|Leak|Undefined)Sanitizer|Sanitizer has encountered a fatal error|AddressSanitizer:DEADLYSIGNAL'

note() { printf '\n===== %s\n' "$*"; }

# run_step NAME TIMEOUT CMD... : runs CMD with a timeout, output to the
# terminal and to $ART/NAME.log.  Sets $rc.
run_step() {
    local name=$1 t=$2; shift 2
    note "$name: $*"
    local start=$SECONDS
    timeout -k 15 "$t" "$@" 2>&1 | tee "$ART/$name.log"
    rc=${PIPESTATUS[0]}
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        echo "run_all: $name TIMED OUT after ${t}s"
    fi
    echo "run_all: $name exit $rc in $((SECONDS - start))s"
}

# C unit binaries end with "[name: ]N passed, N failed"; add them up.
count_unit() {
    local name=$1 p f
    read -r p f < <(awk 'match($0, /[0-9]+ passed, [0-9]+ failed$/) {
            split(substr($0, RSTART), w, /[ ,]+/); p += w[1]; f += w[3]
        } END {print p+0, f+0}' "$ART/$name.log")
    if [ "$rc" != 0 ] && [ "$f" = 0 ]; then f=1; fi   # build error, crash, timeout
    passed=$((passed + p)); failed=$((failed + f))
    summary+=("$name: $p passed, $f failed (exit $rc)")
}

# pytest: counts from its JUnit XML.  Exit 5 (nothing collected) is fine.
count_pytest() {
    local name=$1 p=0 f=0 s=0 xml=$ART/$name.xml
    if [ -s "$xml" ]; then
        read -r p f s < <("$PYTHON" - "$xml" <<'EOF'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
n = sum(int(s.get("tests", 0)) for s in suites)
f = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
k = sum(int(s.get("skipped", 0)) for s in suites)
print(n - f - k, f, k)
EOF
        ) || { p=0 f=0 s=0; }
    fi
    [ "$rc" = 5 ] && rc=0
    if [ "$rc" != 0 ] && [ "$f" = 0 ]; then f=1; fi
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
    summary+=("$name: $p passed, $f failed, $s skipped (exit $rc)")
}

# node --test (TAP): its closing "# pass N", "# fail N", "# skipped N".
count_node() {
    local name=$1 p f s
    read -r p f s < <(awk '/^# pass [0-9]+$/ {p = $3} /^# fail [0-9]+$/ {f = $3}
            /^# skipped [0-9]+$/ {s = $3} END {print p+0, f+0, s+0}' "$ART/$name.log")
    if [ "$rc" != 0 ] && [ "$f" = 0 ]; then f=1; fi
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
    summary+=("$name: $p passed, $f failed, $s skipped (exit $rc)")
}

pytest_step() {  # NAME TIMEOUT BIN PATHS...  (SAN_ENV: more VAR=value for the step)
    local name=$1 t=$2 bin=$3; shift 3
    rm -f "$ART/$name.xml"
    run_step "$name" "$t" env ${SAN_ENV[@]+"${SAN_ENV[@]}"} KVGATE_BIN="$bin" KVTEST_REQUIRE_BINARIES=1 PYTHONDONTWRITEBYTECODE=1 \
        "$PYTHON" -m pytest -q -p no:cacheprovider --junitxml="$ART/$name.xml" \
        "${EXTRA[@]}" "$@"
    count_pytest "$name"
}

# ---- 1. C unit tests (release) ---------------------------------------------
run_step unit "$T_UNIT" make --no-print-directory -k -j"$JOBS" unit
count_unit unit

if [ "${SKIP_SAN:-0}" != 1 ]; then
    # ---- 2. sanitizer build + C unit tests ---------------------------------
    run_step san-unit "$T_SAN_BUILD" make --no-print-directory -k -j"$JOBS" SANITIZE=$SAN all unit
    count_unit san-unit

    # ---- 3. end-to-end suites against the sanitizer binary ----------------
    suites=()
    for s in $SAN_SUITES; do [ -e "$s" ] && suites+=("$s"); done
    if [ ! -x "$SAN_BIN" ]; then
        summary+=("san-pytest: not run, $SAN_BIN was not built")
    else
        rm -rf "$ART/san"; mkdir -p "$ART/san"
        # world-writable (sticky): tests/faults runs kvgate as nobody once
        chmod 1777 "$ART/san"
        # ASan writes its reports to files (log_path): the suites' fixtures
        # keep the server's stderr to themselves, and a report after a test
        # passed (a leak at exit) must still fail us.  UBSan ignores log_path
        # when it runs inside ASan, so KVGATE_BIN is a wrapper that execs the
        # sanitizer binary (same pid, same argv) with its stderr also copied
        # to $ART/san/stderr.<pid>, which is searched for reports afterwards.
        # Each start gets its own files (pid), so a server restarted by a
        # test reports as well as the first one.  The wrapper carries the
        # binary's mtime (tests/js compares it with openapi.yaml's).
        wrapper=$ART/san/kvgate-san
        printf '#!/usr/bin/env bash\nexec %q "$@" 2> >(exec tee -a %q.$$ >&2)\n' \
            "$SAN_BIN" "$ART/san/stderr" >"$wrapper"
        chmod +x "$wrapper"
        touch -r "$SAN_BIN" "$wrapper"
        SAN_ENV=(KVGATE_SANITIZED=1
            ASAN_OPTIONS="log_path=$ART/san/asan:halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=1"
            UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
        if ((${#suites[@]} == 0)); then
            summary+=("san-pytest: no suites yet ($SAN_SUITES)")
        else
            pytest_step san-pytest "$T_SAN_PYTEST" "$wrapper" -m "not slow" "${suites[@]}"
        fi
        # ---- 3a. the JavaScript client against the sanitizer binary ------
        if [ ! -d tests/js ]; then
            :
        elif ! command -v node >/dev/null; then
            summary+=("san-js: not run, node is missing (tests/deps.sh installs it)")
        else
            run_step san-js "$T_SAN_JS" env "${SAN_ENV[@]}" KVGATE_BIN="$wrapper" KVTEST_REQUIRE_BINARIES=1 \
                node --test --test-reporter=tap tests/js/
            count_node san-js
        fi
        SAN_ENV=()
        reports=()
        for r in "$ART"/san/asan.* "$ART"/san/stderr.*; do
            [ -s "$r" ] || continue
            case $r in
            */stderr.*) grep -qE "$SAN_REPORT_RE" "$r" || continue ;;
            esac
            reports+=("$r")
        done
        if ((${#reports[@]})); then
            note "sanitizer reports (${#reports[@]}), first lines of each:"
            for r in "${reports[@]}"; do
                echo "--- $r"
                grep -m1 -nE "$SAN_REPORT_RE" "$r" || true
                head -n 30 "$r"
            done
            failed=$((failed + ${#reports[@]}))
            summary+=("sanitizer: ${#reports[@]} report(s) in $ART/san")
        fi
    fi

    # ---- 3b. ThreadSanitizer on the concurrency unit tests -----------------
    run_step tsan-unit "$T_TSAN" bash -c '
        make --no-print-directory -j"$1" SANITIZE=thread BUILDROOT=build/tsan tsan-unit || exit 1
        rc=0
        for t in store_watch_concurrent store_commit store_lease; do
            echo "== $t (TSan)"
            TSAN_OPTIONS="suppressions=$PWD/tests/unit/store_tsan.supp history_size=7 halt_on_error=1" \
                build/tsan/san-thread/tests/$t || rc=1
        done
        exit $rc' tsan "$JOBS"
    count_unit tsan-unit
fi

# ---- 4. every Python suite against the release binary ----------------------
pytest_step pytest "$T_PYTEST" "$REL_BIN" tests

# ---- 5. the JavaScript client (node's test runner) --------------------------
if [ -d tests/js ]; then
    run_step js "$T_JS" env KVGATE_BIN="$REL_BIN" KVTEST_REQUIRE_BINARIES=1 \
        node --test --test-reporter=tap tests/js/
    count_node js
fi

# ---- 6. libFuzzer targets (bounded runs) ------------------------------------
if [ "${SKIP_FUZZ:-0}" = 1 ]; then
    summary+=("fuzz: skipped (SKIP_FUZZ=1)")
elif ! command -v clang >/dev/null; then
    summary+=("fuzz: not run, clang is missing (tests/deps.sh installs it)")
else
    run_step fuzz "$T_FUZZ" make --no-print-directory -j"$JOBS" FUZZ_TIME="$FUZZ_TIME" fuzz-run
    count_unit fuzz
fi

note "summary"
printf '%s\n' "${summary[@]}"
echo "skipped: $skipped"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
