#!/usr/bin/env bash
# hakmem's head-to-head benchmark: builds the allocator and the workloads
# optimized, then runs tools/bench/hakbench.py against glibc, mimalloc,
# jemalloc and tcmalloc, and prints the Markdown table and where the tables
# and charts are.
#
#   tools/bench.sh               quick mode (a few minutes on 2 cores)
#   tools/bench.sh --full        every workload, 5 repetitions (about an hour)
#   tools/bench.sh --full --publish   ... and write bench/RESULTS.json (the raw results),
#                                     bench/RESULTS.md made from it, and bench/charts/
#
# Exits 1 when any run failed (the report then blanks the failed allocators'
# ratios); tools/bench/report.py rebuilds RESULTS.md from RESULTS.json.
#
# Any other argument goes to hakbench.py (see tools/bench/hakbench.py --help),
# e.g. --allocators hakmem,mimalloc or --only larson.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/setup.sh

# The optimized build the workspace defines (-O3, -fno-plt); plain -c opt if
# .bazelrc has no opt config.
if grep -q '^build:opt ' .bazelrc 2>/dev/null; then
  config=(--config=opt)
else
  config=(-c opt)
fi

# The hakmem variants the harness knows (libhakmem.so, libhakmem_speed.so,
# libhakmem_lean.so) that //alloc defines; it measures whichever were built.
defined=$(bazel query --noshow_progress 'attr(name, "^libhakmem.*\.so$", //alloc:*)' 2>/dev/null || true)
libs=$(python3 tools/bench/hakbench.py --variant-targets | grep -Fx -f <(echo "$defined") || true)
[ -n "$libs" ] || libs=//alloc:libhakmem.so

echo "tools/bench.sh: bazel build ${config[*]} $(echo $libs) //bench:all" >&2
# shellcheck disable=SC2086  # $libs is a list of labels
bazel build --noshow_progress "${config[@]}" $libs //bench:all

# bazel-bin follows whichever config built last (other builds may run in
# between), so ask for the opt config's output directory explicitly.
bin=$(bazel info "${config[@]}" bazel-bin 2>/dev/null)

exec python3 tools/bench/hakbench.py --bin-dir "$bin/bench" --lib-dir "$bin/alloc" "$@"
