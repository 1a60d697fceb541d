#!/usr/bin/env bash
# tests/deps.sh — install what building, running and testing kvgate needs on
# Debian bookworm (called by `make deps`, hence by `make run` and `make test`).
#
# Idempotent and quick when everything is there: one dpkg-query for the
# Debian packages, one checksum for node_modules.  Only when something is
# missing does it run `apt-get update` + `apt-get install` (as root, or via
# sudo) or `npm ci`, and it says what it installs.  Any failure is fatal.
#
# Environment:
#   KVGATE_SKIP_NPM=1   do not touch node_modules (no npm tools needed)
set -euo pipefail

cd "$(dirname "$0")/.."

say() { printf 'deps: %s\n' "$*"; }
die() { printf 'deps: ERROR: %s\n' "$*" >&2; exit 1; }

# Build, run, test and benchmark.  nodejs and npm are handled apart (see
# below).  Who needs what:
#   build-essential pkg-config lib*-dev   the build; gcc's ASan/UBSan/TSan
#                       runtimes (libasan8, libubsan1, libtsan2) come with
#                       gcc-12 through libgcc-12-dev
#   clang libclang-rt-14-dev   tests/fuzz (libFuzzer, clang's ASan/UBSan)
#   curl                tests/e2e (streaming clients), README examples
#   etcd-server etcd-client   tests/diff, tests/openapi, benchmarks (etcd 3.4)
#   wrk                 tests/bench/kv.sh (its Lua scripting is built in:
#                       LuaJIT comes as wrk's own dependency, no lua package)
#   bc                  tests/bench/kv.sh (ratios)
#   python3 python3-pytest python3-etcd3gw python3-jsonschema python3-yaml
#                       the Python suites and benchmarks (everything else
#                       they import is in the standard library)
#   chromium chromium-driver   tests/browser, tests/js (headless, through
#                       playwright-core from npm)
#   mount               tests/faults/test_disk_full (mount/umount a tmpfs)
#   util-linux          setpriv: tests/faults/test_corrupt_dir runs kvgate as
#                       nobody (Essential in Debian; listed to be sure)
#   rocksdb-tools       ldb: tests/faults/test_corrupt_dir makes RocksDB
#                       databases of "another program"
PKGS=(
    build-essential pkg-config libmicrohttpd-dev libjansson-dev librocksdb-dev
    curl etcd-server etcd-client wrk bc
    python3 python3-pytest python3-etcd3gw python3-jsonschema python3-yaml
    clang libclang-rt-14-dev
    chromium chromium-driver
    mount util-linux rocksdb-tools
)

# ---- Debian packages ----------------------------------------------------
# Prints the Debian packages (and node/npm) that are not fully installed.
# One dpkg-query for all: unknown packages print nothing on stdout (an error
# on stderr), and "iU", "iF"... (unpacked, half-configured) count as missing.
missing_pkgs() {
    local status p
    status=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${PKGS[@]}" 2>/dev/null || true)
    for p in "${PKGS[@]}"; do
        grep -qxF -e "$p ii " -e "$p ii" <<<"$status" || echo "$p"
    done
    # Node.js may come from Debian (nodejs + npm) or from elsewhere
    # (NodeSource's nodejs bundles npm and conflicts with Debian's npm): only
    # the commands count.
    command -v node >/dev/null 2>&1 || echo nodejs
    command -v npm >/dev/null 2>&1 || echo npm
}
mapfile -t missing < <(missing_pkgs)

if ((${#missing[@]})); then
    say "installing Debian packages: ${missing[*]}"
    SUDO=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "not root and no sudo: install ${missing[*]} by hand"
        SUDO=(sudo -n)
    fi
    export DEBIAN_FRONTEND=noninteractive
    # Wait for a concurrent apt/dpkg instead of failing on its lock.
    APT=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600)
    "${APT[@]}" update || die "apt-get update failed"
    # --no-install-recommends: chromium alone would pull in ~100 desktop
    # packages it does not need headless.
    if ! "${APT[@]}" install -y --no-install-recommends "${missing[@]}"; then
        # An interrupted earlier install leaves packages unpacked but not
        # configured, and apt-get refuses to go on until they are.
        say "apt-get install failed; running dpkg --configure -a and retrying once"
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive dpkg --configure -a || true
        "${APT[@]}" install -y --no-install-recommends "${missing[@]}" \
            || die "apt-get install failed for: ${missing[*]}"
    fi
    mapfile -t still < <(missing_pkgs)
    ((${#still[@]} == 0)) || die "still missing after apt-get install: ${still[*]}"
    say "installed: ${missing[*]}"
else
    say "Debian packages: all ${#PKGS[@]} present (+ node $(node --version), npm $(npm --version 2>/dev/null))"
fi

# ---- npm packages (pinned in package.json / package-lock.json) -----------
if [ "${KVGATE_SKIP_NPM:-0}" = 1 ]; then
    say "npm: skipped (KVGATE_SKIP_NPM=1)"
    exit 0
fi
[ -f package.json ] && [ -f package-lock.json ] || die "package.json / package-lock.json missing"
stamp=node_modules/.kvgate-deps.sha256
want=$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)
have=$(cat "$stamp" 2>/dev/null || true)
if [ -d node_modules ] && [ "$want" = "$have" ]; then
    say "npm packages: up to date"
else
    say "installing npm packages (npm ci): $(node -e 'const p=require("./package.json");console.log(Object.entries(p.dependencies||{}).map(([k,v])=>k+"@"+v).join(" "))')"
    # No audit/fund chatter, no lifecycle surprises from a stale global config.
    npm ci --no-audit --no-fund --loglevel=error || die "npm ci failed"
    printf '%s\n' "$want" >"$stamp"
fi
