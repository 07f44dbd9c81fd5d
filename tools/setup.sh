#!/usr/bin/env bash
# Installs every Debian package hakmem's build, tests and benchmarks need.
# Idempotent: when everything is present it prints nothing and exits 0.
# Called by both README commands and by .ci/run; safe to run by hand.
set -euo pipefail

packages=(
  bazel-bootstrap      # Bazel 4.2.3 (WORKSPACE mode, offline)
  googletest           # GoogleTest sources, compiled by Bazel (sanitizer-friendly)
  gcc g++ clang        # default toolchain, and clang for the fuzz config
  libclang-rt-14-dev   # libFuzzer / ASan / TSan / UBSan runtimes for clang
  valgrind             # memcheck tests, callgrind instruction budgets
  strace               # syscall counts measured the same way for every allocator
  sqlite3 python3 coreutils   # real programs run under LD_PRELOAD in the tests
  python3.11 libpython3.11-testsuite perl ruby git tar xz-utils time  # the e2e/ matrix (time: peak RSS)
  libmimalloc2.0 libjemalloc2 libtcmalloc-minimal4  # peers for the benchmarks
  pkg-config           # out-of-Bazel link test
  gnuplot-nox          # charts for the benchmark report (no network needed)
  google-perftools     # google-pprof: reads the heap profiles hakmem writes (HAKMEM_PROF_*)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "tools/setup.sh: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
