#!/usr/bin/env bash
# Proves valgrind's memcheck sees hakmem blocks: each deliberate error in
# memcheck_target is reported, and a clean multithreaded run reports nothing.
#   memcheck_test.sh <memcheck_target binary>
set -uo pipefail
bin=$1
fail=0
vg() { valgrind --error-exitcode=0 --leak-check=full --show-leak-kinds=definite "$bin" "$1" 2>&1; }

expect() {  # expect MODE REGEX...: every regex must appear in memcheck's report
  local mode=$1; shift
  local out bad=0
  out=$(vg "$mode")
  for re in "$@"; do
    if ! grep -Eq "$re" <<<"$out"; then
      echo "FAIL: memcheck did not report /$re/ for $mode" >&2
      echo "$out" | tail -30 >&2
      bad=1
    fi
  done
  if [ $bad -eq 0 ]; then echo "ok: $mode reported"; else fail=1; fi
}

expect use-after-free "Invalid read of size 1" "10 bytes inside a block of size 64 free'd"
expect leak "definitely lost: 208 bytes in 1 blocks"
expect invalid-read "Invalid read of size 1" "0 bytes after a block of size 32 alloc'd"

out=$(vg clean)
if ! grep -q "ERROR SUMMARY: 0 errors" <<<"$out" || grep -q "definitely lost: [1-9]" <<<"$out"; then
  echo "FAIL: memcheck reported errors on a clean run" >&2
  echo "$out" | tail -40 >&2
  fail=1
else
  echo "ok: clean run has 0 errors"
fi
exit $fail
