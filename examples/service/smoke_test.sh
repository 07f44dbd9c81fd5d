#!/usr/bin/env bash
# Runs compare.py briefly over every build of the example service (and
# mimalloc when installed): each run must serve requests and prove its
# allocator; the table must list every build.
#
#   smoke_test.sh <compare.py> NAME=BINARY...
set -euo pipefail
compare=$1
shift
out=${TEST_TMPDIR:-$(mktemp -d)}/compare.txt
python3 "$compare" --seconds 0.3 --reps 1 --clients 1 --handlers 2 --json "${out%.txt}.json" "$@" > "$out"
cat "$out"
for spec in "$@"; do
  name=${spec%%=*}
  grep -q "^| $name | " "$out" || { echo "FAIL: no row for $name" >&2; exit 1; }
done
python3 - "${out%.txt}.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for row in d["medians"]:
    assert row["requests"] > 100, row
    assert row["p99_us"] >= row["p50_us"] > 0, row
    assert row["peak_rss_kb"] > 0, row
print("PASS: every build served requests and reported its numbers")
PY
