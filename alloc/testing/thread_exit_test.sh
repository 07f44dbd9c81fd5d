#!/usr/bin/env bash
# Thread lifecycle: thread_exit_target runs tens of
# thousands of threads, 4 at a time, whose pthread key and thread_local
# destructors allocate, plainly (glibc) and with each variant preloaded.
#   - balanced (libhakmem.so) and lean: peak RSS under 2x glibc's;
#   - speed keeps freed memory resident by design (never decommits, caches
#     up to 1 GiB), so its bound is flatness instead: four times the cycles
#     may not raise its peak by half (a heap kept per exited thread grew it
#     linearly: 8,000 threads reached 640 MB);
#   - every variant: one live thread heap (main's) after all threads exited.
#
#   thread_exit_test.sh <thread_exit_target> <balanced.so> <speed.so> <lean.so>
set -euo pipefail
target=$(realpath "$1")
balanced=$(realpath "$2")
speed=$(realpath "$3")
lean=$(realpath "$4")
cycles=20000
failures=0

field() { sed -n "s/^$1 //p" <<<"$2"; }

run() {  # run <label> <cycles> [preload]: the target's output, checked
  local label=$1 n=$2 lib=${3:-} out
  if ! out=$(LD_PRELOAD=$lib "$target" "$n" 2>&1); then
    echo "FAIL: $label: the program failed:" >&2
    echo "$out" >&2
    exit 1
  fi
  echo "$out"
}

check_heaps() {  # check_heaps <label> <output>
  local live
  live=$(field threads_live "$2")
  if [ "$live" != 1 ]; then
    echo "FAIL: $1: $live thread heaps live after every thread exited (want 1, main's)" >&2
    failures=$((failures + 1))
  fi
}

glibc_out=$(run glibc "$cycles")
glibc_kb=$(field peak_rss_kb "$glibc_out")
if [ -n "$(field threads_live "$glibc_out")" ]; then
  echo "FAIL: the plain run found hakmem's statistics: it was not glibc" >&2
  exit 1
fi
echo "glibc: $cycles threads, peak RSS $glibc_kb KB"

for variant in balanced lean; do
  lib=${!variant}
  out=$(run "$variant" "$cycles" "$lib")
  kb=$(field peak_rss_kb "$out")
  echo "hakmem $variant: $cycles threads, peak RSS $kb KB ($(awk -v a="$kb" -v b="$glibc_kb" 'BEGIN { printf "%.2f", a / b }')x glibc), $(field threads_live "$out") live heaps"
  check_heaps "$variant" "$out"
  if [ "$kb" -ge $((2 * glibc_kb)) ]; then
    echo "FAIL: $variant: peak RSS $kb KB is not under 2x glibc's ($glibc_kb KB)" >&2
    failures=$((failures + 1))
  fi
done

short=$((cycles / 4))
short_out=$(run "speed, $short threads" "$short" "$speed")
long_out=$(run "speed, $cycles threads" "$cycles" "$speed")
short_kb=$(field peak_rss_kb "$short_out")
long_kb=$(field peak_rss_kb "$long_out")
echo "hakmem speed: peak RSS $short_kb KB after $short threads, $long_kb KB after $cycles"
check_heaps speed "$long_out"
if [ $((2 * long_kb)) -ge $((3 * short_kb)) ]; then
  echo "FAIL: speed: peak RSS grew from $short_kb KB to $long_kb KB with 4x the threads: not flat" >&2
  failures=$((failures + 1))
fi
[ "$failures" -eq 0 ] && echo "thread exit: all checks passed"
exit $((failures != 0))
