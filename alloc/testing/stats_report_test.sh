#!/usr/bin/env bash
# The report HAKMEM_STATS prints at exit, in both forms and to both places,
# and tools/hkstats_diff.py on two such reports.
#
#   stats_report_test.sh <stats_report_target> <hkstats_diff.py>
set -euo pipefail
target=$(realpath "$1")
diff_tool=$(realpath "$2")
work=${TEST_TMPDIR:-$(mktemp -d)}
cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }

# Readable report on stderr.
HAKMEM_STATS=1 "$target" 1000 2 2> text.err
grep -q "^hakmem: statistics (hakmem " text.err || fail "no readable report on stderr: $(cat text.err)"
grep -Eq "^hakmem:   bytes_in_use [0-9]+ \([0-9.]+ MiB\)$" text.err || fail "no bytes_in_use line: $(cat text.err)"
in_use64=$(awk '$2 == "class" && $4 == 64 { print $5 }' text.err)
[ "${in_use64:-0}" -ge 1000 ] || fail "class 64 B shows ${in_use64:-no} blocks in use, expected >= 1000"
grep -Eq "^hakmem:   large_live 2$" text.err || fail "expected large_live 2: $(grep large_live text.err)"

# JSON report into a file; %p becomes the pid; nothing on stderr.
HAKMEM_STATS=json HAKMEM_STATS_FILE="$work/one.%p.json" "$target" 1000 1 2> json.err
[ ! -s json.err ] || fail "HAKMEM_STATS_FILE set, yet stderr got: $(cat json.err)"
files=(one.*.json)
[ ${#files[@]} -eq 1 ] && [ -f "${files[0]}" ] || fail "expected one one.<pid>.json, found: $(ls)"
python3 - "${files[0]}" <<'PY' || fail "JSON report does not hold the expected figures"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 1, lines
r = json.loads(lines[0])
assert r["hakmem"].startswith("hakmem "), r
assert str(r["pid"]) in sys.argv[1], (r["pid"], sys.argv[1])
c64 = [c for c in r["classes"] if c["block_size"] == 64]
assert c64 and c64[0]["blocks_in_use"] >= 1000, c64
assert r["large_live"] == 1 and r["bytes_in_use"] >= (1 << 20) + 64000, r
assert r["bytes_committed"] >= r["bytes_in_use"] - (1 << 20), r
PY

# Appending: two runs, one file, two reports; the diff tool takes the last by default.
HAKMEM_STATS=json HAKMEM_STATS_FILE="$work/both.json" "$target" 1000 0
HAKMEM_STATS=json HAKMEM_STATS_FILE="$work/both.json" "$target" 3000 0
[ "$(wc -l < both.json)" -eq 2 ] || fail "HAKMEM_STATS_FILE must append: $(wc -l < both.json) lines"
head -1 both.json > first.json
tail -1 both.json > second.json

python3 "$diff_tool" first.json second.json > diff.txt || fail "hkstats_diff failed"
grep -Eq "^ +64 +[0-9]+->[0-9]+ \(\+2000\)" diff.txt || fail "diff must show +2000 blocks of 64 B: $(cat diff.txt)"
python3 "$diff_tool" --json first.json both.json > diff.json
python3 - diff.json <<'PY' || fail "JSON diff wrong: $(cat diff.json)"
import json, sys
d = json.load(open(sys.argv[1]))
c = [c for c in d["classes"] if c["block_size"] == 64][0]
assert c["blocks_in_use"]["delta"] == 2000, c
f = {x["name"]: x for x in d["fields"]}
assert f["bytes_in_use"]["delta"] == 2000 * 64, f["bytes_in_use"]
PY
# Text against JSON: the same field names in both forms.
python3 "$diff_tool" text.err second.json > cross.txt || fail "cannot diff a readable against a JSON report"
grep -q "^large_live " cross.txt || fail "cross-format diff lacks large_live: $(cat cross.txt)"

# An unusable HAKMEM_STATS_FILE: say so, and report on stderr instead.
HAKMEM_STATS=1 HAKMEM_STATS_FILE=/nonexistent/dir/report "$target" 10 0 2> bad.err
grep -q "cannot open HAKMEM_STATS_FILE" bad.err || fail "no message for an unusable file: $(cat bad.err)"
grep -q "^hakmem: statistics" bad.err || fail "the report must fall back to stderr: $(cat bad.err)"

echo "PASS: reports at exit (readable, JSON, file, append) and their diff"
sed -n '1,8p' diff.txt
