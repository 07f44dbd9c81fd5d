#!/usr/bin/env bash
# The example service's glibc build for a fraction of a second: it must
# serve requests and exit cleanly (under TSan/ASan: without a report).
set -euo pipefail
out=$("$1" --seconds 0.3 --clients 1 --handlers 2)
echo "$out"
echo "$out" | grep -Eq '^RESULT workload=service allocator=other hakmem=0 requests=[1-9][0-9]* ' ||
  { echo "FAIL: unexpected result line" >&2; exit 1; }
