#!/usr/bin/env bash
# Runs a real program twice, plain and with LD_PRELOAD=libhakmem.so, and
# requires the same output. HAKMEM_STATS=1 makes hakmem print its report at
# exit; the test requires that report with segments mapped, which proves
# hakmem (not glibc) served the program's allocations.
#
#   preload_test.sh <libhakmem.so> python|sqlite|sort
set -euo pipefail
lib=$(realpath "$1")
kind=$2
work=${TEST_TMPDIR:-$(mktemp -d)}
cd "$work"

case "$kind" in
  python)
    cat > workload.py <<'PY'
import threading, hashlib, json
results = {}
def worker(n):
    d = {}
    for i in range(60000):
        key = "k%d-%d" % (n, i)
        d[key] = [key * (i % 7), i, {"x": i}]
        if i % 3 == 0:
            del d[key]
    blob = json.dumps(sorted(d.keys())[:5000]).encode()
    results[n] = hashlib.sha256(blob).hexdigest()
threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
for t in threads: t.start()
for t in threads: t.join()
for n in sorted(results): print(n, results[n])
PY
    run() { PYTHONMALLOC=malloc python3 workload.py; }
    ;;
  sqlite)
    run() {
      rm -f db.sqlite
      sqlite3 db.sqlite <<'SQL'
CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, v REAL);
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 200000)
INSERT INTO t SELECT i, printf('name-%08d-%x', i, (i * 7919) % 100003), i * 0.5 FROM c;
CREATE INDEX t_name ON t(name);
SELECT count(*), sum(v), min(name), max(name) FROM t;
SELECT name FROM t WHERE id % 50000 = 0 ORDER BY name;
SQL
    }
    ;;
  sort)
    awk 'BEGIN { srand(7); for (i = 0; i < 1000000; i++) printf "%08x %d %s\n", int(rand() * 4294967295), i, substr("abcdefghijklmnopqrstuvwxyz", 1 + i % 26) }' > input.txt
    run() { sort --parallel=2 -S 64M input.txt | md5sum; }
    ;;
  *) echo "unknown program kind $kind" >&2; exit 2 ;;
esac

run > plain.out
LD_PRELOAD="$lib" HAKMEM_STATS=1 run > preload.out 2> preload.err
if ! cmp -s plain.out preload.out; then
  echo "FAIL: $kind output differs under hakmem" >&2
  diff plain.out preload.out | head -20 >&2
  exit 1
fi
if ! grep -q "^hakmem: statistics" preload.err; then
  echo "FAIL: no hakmem statistics report: hakmem was not the allocator" >&2
  cat preload.err >&2
  exit 1
fi
# The largest count over every process the run started (a pipeline or a
# subprocess prints its own report).
segments=$(awk '$2 == "syscalls_mmap" && $3 > max { max = $3 } END { print max + 0 }' preload.err)
if [ "${segments:-0}" -lt 1 ]; then
  echo "FAIL: hakmem reported no mapping: it served no allocation" >&2
  cat preload.err >&2
  exit 1
fi
echo "PASS: $kind under hakmem: same output ($(wc -l < plain.out) lines), hakmem mapped memory $segments times"
sed -n '1,14p' preload.err
