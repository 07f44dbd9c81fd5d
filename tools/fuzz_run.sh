#!/usr/bin/env bash
# Runs every libFuzzer target of //fuzz (tag "fuzz_target") for a bounded
# time under --config=fuzz (clang, ASan + UBSan), starting from its seed
# corpus and dictionary. Prints one PASS/FAIL line per target and a final
# "fuzz_run: N passed, N failed"; exits non-zero if any target crashed, hung,
# leaked, or failed to build.
#
#   bash tools/fuzz_run.sh                      # every target, 60 s each, one at a time
#   bash tools/fuzz_run.sh -t 600 -j 2 ops      # one target, 10 min, 2 in parallel
#
# Options (or environment):
#   -t SECONDS  (FUZZ_SECONDS, default 60)   fuzzing time per target
#   -j JOBS     (FUZZ_JOBS, default 1)       targets fuzzed at once
#   -o DIR      (FUZZ_OUT, default a new temp dir)  per target: log, the
#               corpus grown during the run, and crash-*/timeout-*/leak-*
#               artifacts. Kept when something failed (its path is printed).
#   targets     short names (ops, policy, ...) or labels; default: all.
#
# A crash prints the reproducer's path and the command that replays it. Add
# the input to fuzz/corpus/<target>/ once the bug is fixed (see
# fuzz/known_bugs.h for open ones). To fold the inputs a long run found into
# the repository corpus, minimized:
#   bazel-out/k8-fastbuild-fuzz/bin/fuzz/<t>_fuzzer -merge=1 fuzz/corpus/<t> <out>/<t>/corpus
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

seconds=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-1}
out=${FUZZ_OUT:-}
while getopts "t:j:o:h" opt; do
  case $opt in
    t) seconds=$OPTARG ;;
    j) jobs=$OPTARG ;;
    o) out=$OPTARG ;;
    *) sed -n '2,25p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))

bash tools/setup.sh || { echo "fuzz_run: tools/setup.sh failed" >&2; exit 1; }

bazel_flags=(--config=fuzz --color=no --curses=no)

if [ $# -gt 0 ]; then
  labels=()
  for t in "$@"; do
    case $t in
      //*) labels+=("$t") ;;
      *) labels+=("//fuzz:${t%_fuzzer}_fuzzer") ;;
    esac
  done
else
  # Manual targets are invisible to //fuzz/...; query finds them by tag.
  mapfile -t labels < <(bazel query --color=no --curses=no 'attr(tags, "\bfuzz_target\b", //fuzz:*)' 2>/dev/null | sort)
fi
if [ ${#labels[@]} -eq 0 ]; then
  echo "fuzz_run: no fuzz targets found" >&2
  exit 1
fi

echo "fuzz_run: building ${labels[*]} (--config=fuzz)" >&2
if ! bazel build "${bazel_flags[@]}" "${labels[@]}" >&2; then
  echo "fuzz_run: FAIL build"
  echo "fuzz_run: 0 passed, ${#labels[@]} failed"
  exit 1
fi
bin_dir=$(bazel info "${bazel_flags[@]}" bazel-bin 2>/dev/null) || { echo "fuzz_run: bazel info failed" >&2; exit 1; }

own_out=0
if [ -z "$out" ]; then
  out=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-fuzz.XXXXXX")
  own_out=1
fi
mkdir -p "$out"

# fuzz_one LABEL: runs one target; writes $out/<t>/status ("PASS ..." or "FAIL ...").
fuzz_one() {
  local label=$1
  local name=${label##*:}         # ops_fuzzer
  local t=${name%_fuzzer}         # ops
  local dir=$out/$t
  mkdir -p "$dir/corpus"
  local args=(
    -max_total_time="$seconds"
    # A single input must not take this long (the threads target joins its
    # workers: a deadlock shows up as a timeout).
    -timeout=30
    -rss_limit_mb=4096
    -print_final_stats=1
    -artifact_prefix="$dir/"
  )
  [ -f "fuzz/dict/$t.dict" ] && args+=(-dict="fuzz/dict/$t.dict")
  local start=$SECONDS
  # New inputs go to the first corpus directory (the run's own), never into
  # the repository's seeds.
  "$bin_dir/fuzz/$name" "${args[@]}" "$dir/corpus" "fuzz/corpus/$t" >"$dir/log" 2>&1
  local rc=$?
  local took=$((SECONDS - start))
  local runs cov
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$dir/log" | tail -1)
  if [ $rc -eq 0 ]; then
    echo "PASS $t: ${took}s clean, ${runs:-?} runs, ${cov:-cov: ?}" >"$dir/status"
  else
    local art
    art=$(ls "$dir"/crash-* "$dir"/timeout-* "$dir"/leak-* "$dir"/oom-* 2>/dev/null | head -1)
    {
      echo "FAIL $t: exit $rc after ${took}s, ${runs:-?} runs"
      grep -m3 -E 'fuzz check failed|^  |hakmem: |ERROR: |SUMMARY' "$dir/log" | sed 's/^/    /'
      [ -n "$art" ] && echo "    input: $art" && echo "    replay: $bin_dir/fuzz/$name $art"
      echo "    log: $dir/log"
    } >"$dir/status"
  fi
}

echo "fuzz_run: ${#labels[@]} targets, ${seconds}s each, $jobs at a time; output in $out" >&2
running=0
for label in "${labels[@]}"; do
  fuzz_one "$label" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
done
wait

pass=0
fail=0
for label in "${labels[@]}"; do
  name=${label##*:}
  t=${name%_fuzzer}
  status_file=$out/$t/status
  if [ -f "$status_file" ] && head -1 "$status_file" | grep -q '^PASS'; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    [ -f "$status_file" ] || echo "FAIL $t: no status (runner died)" >"$status_file"
  fi
  sed 's/^/fuzz_run: /' "$status_file"
done
echo "fuzz_run: $pass passed, $fail failed"
if [ "$fail" -eq 0 ]; then
  [ "$own_out" -eq 1 ] && rm -rf "$out"
  exit 0
fi
echo "fuzz_run: artifacts kept in $out" >&2
exit 1
