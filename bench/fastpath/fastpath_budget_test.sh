#!/usr/bin/env bash
# Fast-path guard, deterministic (instruction counts, not time):
#  1. malloc and free of libhakmem.so, disassembled up to their first `ret`,
#     contain no call, syscall, lock-prefixed instruction or indirect jump:
#     the fast path takes no lock, makes no syscall and no indirect call.
#  2. callgrind counts instructions per malloc+free pair of two warm loops
#     (fastpath_ir.c: a mixed working set, and one block malloc'd and freed in
#     turn); the test fails when either grows past the recorded budget.
#   fastpath_budget_test.sh <libhakmem.so> <fastpath_ir binary> <budget>
set -uo pipefail
lib=$1 bin=$2 budget=$3
fail=0

for fn in malloc free; do
  body=$(objdump -d --no-show-raw-insn "$lib" | awk -v f="<$fn>:" '$2 == f { on = 1; next } on && /^$/ { exit } on { print } on && /\tret/ { exit }')
  if [ -z "$body" ]; then echo "FAIL: no $fn in $lib" >&2; fail=1; continue; fi
  n=$(grep -c . <<<"$body")
  bad=$(grep -E "call|syscall|lock |jmp +\*|xchg.*\(" <<<"$body")
  if [ -n "$bad" ]; then
    echo "FAIL: $fn's fast path (up to its first ret) has forbidden instructions:" >&2
    echo "$bad" >&2
    fail=1
  else
    echo "ok: $fn fast path is $n instructions, no call/syscall/lock/indirect jump"
  fi
done

count() {  # instructions of the whole run with N iterations (and a mode)
  local out
  out=$(LD_PRELOAD=$lib valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$@" 2>&1)
  sed -n 's/.*Collected : \([0-9]*\).*/\1/p' <<<"$out"
}
small=200000 big=1200000
# The mixed loop, and the ping-pong loop whose every free empties its span:
# the budget holds for both, so emptying the span malloc pops from stays on
# the fast path too.
for mode in mixed pingpong; do
  args=()
  [ "$mode" = mixed ] || args=("$mode")
  a=$(count $small "${args[@]}")
  b=$(count $big "${args[@]}")
  if [ -z "$a" ] || [ -z "$b" ]; then echo "FAIL: callgrind gave no count ($mode)" >&2; exit 1; fi
  per_pair=$(( (b - a) / (big - small) ))
  echo "instructions per malloc+free pair, $mode loop (loop included): $per_pair (budget $budget)"
  if [ "$per_pair" -gt "$budget" ]; then
    echo "FAIL: the $mode loop grew past the fast path's budget; if that is intended, raise the budget in bench/fastpath/BUILD.bazel and say why" >&2
    fail=1
  fi
done
exit $fail
