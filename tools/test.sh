#!/usr/bin/env bash
# Runs every test under the default, asan and tsan configs and prints one
# final line "N passed, N failed". Exits non-zero if anything failed or if
# no test ran at all. Extra arguments are passed to every `bazel test`.
# Deliberately no `set -e`: a failing config must not stop the later ones.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

bash tools/setup.sh || { echo "tools/setup.sh failed" >&2; exit 1; }

total_pass=0
total_fail=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# run_config NAME BAZEL_FLAGS... : one `bazel test //...`, then add its counts.
run_config() {
  local name=$1; shift
  echo "=== tools/test.sh: bazel test $* //... ===" >&2
  # --color/--curses off: plain lines that are safe to parse.
  bazel test --keep_going --color=no --curses=no "$@" "${extra[@]}" //... 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}

  # Parse only Bazel's final summary: the lines between the last "Build
  # completed"/"Build did NOT complete" line and the last "Executed N out of M
  # tests" line. Test logs (--test_output=errors) come earlier, so whatever a
  # test prints cannot be miscounted. Summary lines look like
  # "//pkg:t   (cached) PASSED in 0.3s", "//pkg:t   FAILED TO BUILD",
  # "//pkg:t   NO STATUS". PASSED and FLAKY (passed on a retry) count as
  # passed, any other status as failed; and M - passed counts as failed, so a
  # target without a recognised line is never silently dropped.
  local counts
  counts=$(awk '
    { line[NR] = $0 }
    /^Executed [0-9]+ out of [0-9]+ tests?/ { exec_at = NR; total = $5 }
    END {
      pass = 0; fail = 0
      if (!exec_at) { print 0, 0; exit }
      for (i = exec_at - 1; i > 0; i--)
        if (line[i] ~ /^(INFO: Build completed|FAILED: Build did NOT complete)/) break
      for (i++; i < exec_at; i++) {
        if (line[i] !~ /^(@[^ \/]*)?\/\/[^ ]+ +/) continue
        status = line[i]
        sub(/^[^ ]+ +(\(cached\) )?/, "", status)
        if (status ~ /^(PASSED|FLAKY)( |$)/) pass++; else fail++
      }
      if (total > pass + fail) fail = total - pass
      print pass, fail
    }' "$log")
  local pass=${counts% *} fail=${counts#* }

  # Bazel exit codes: 0 all passed, 3 some tests failed, 4 no tests matched
  # (fine: e.g. everything is tagged no_tsan). Anything else (1 = build or
  # analysis error, 2 = bad flags, ...) with no failed test to show for it
  # means something outside the tests broke: count it as one failure.
  case $rc in
    0|3|4) ;;
    *) if [ "$fail" -eq 0 ]; then
         echo "tools/test.sh: [$name] bazel exited $rc with no failed test; counting 1 failure" >&2
         fail=1
       fi ;;
  esac
  echo "=== tools/test.sh: [$name] $pass passed, $fail failed (bazel exit $rc) ===" >&2
  total_pass=$((total_pass + pass))
  total_fail=$((total_fail + fail))
}

extra=("$@")
run_config default
run_config asan --config=asan --test_tag_filters=-no_asan
run_config tsan --config=tsan --test_tag_filters=-no_tsan

# libFuzzer: each fuzz target runs for a bounded time under --config=fuzz
# (clang, ASan+UBSan). Each target counts as one test in the totals.
# HAKMEM_FUZZ_SECONDS=0 skips it (e.g. for a quick local run).
fuzz_seconds=${HAKMEM_FUZZ_SECONDS:-60}
if [ "$fuzz_seconds" -gt 0 ]; then
  echo "=== tools/test.sh: bash tools/fuzz_run.sh -t $fuzz_seconds -j 2 ===" >&2
  fuzz_log=$(mktemp)
  bash tools/fuzz_run.sh -t "$fuzz_seconds" -j 2 2>&1 | tee "$fuzz_log"
  fuzz_counts=$(sed -n 's/^fuzz_run: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$fuzz_log" | tail -1)
  rm -f "$fuzz_log"
  if [ -z "$fuzz_counts" ]; then
    echo "tools/test.sh: [fuzz] no summary from tools/fuzz_run.sh; counting 1 failure" >&2
    fuzz_counts="0 1"
  fi
  echo "=== tools/test.sh: [fuzz] ${fuzz_counts% *} passed, ${fuzz_counts#* } failed ===" >&2
  total_pass=$((total_pass + ${fuzz_counts% *}))
  total_fail=$((total_fail + ${fuzz_counts#* }))
fi

echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ] && [ "$total_pass" -gt 0 ]
