#!/usr/bin/env bash
# sqlite3 builds a database of 200,000 rows generated in SQL (a recursive
# CTE), indexes it, updates and deletes, queries with joins, group by and a
# window function, vacuums; prints the results and a hash of the whole
# database (.sha3sum).
#
#   sqlite3.sh <input dir (unused)> <e2e dir>
set -euo pipefail
/usr/bin/sqlite3 db.sqlite <<'SQL'
PRAGMA journal_mode = WAL;
CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, grp INTEGER, v REAL);
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 200000)
INSERT INTO t SELECT i, printf('name-%08d-%x', i, (i * 7919) % 100003), (i * 31) % 97, i * 0.5 FROM c;
CREATE INDEX t_name ON t(name);
CREATE INDEX t_grp ON t(grp, v);
CREATE TABLE g(grp INTEGER PRIMARY KEY, label TEXT);
WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < 96)
INSERT INTO g SELECT i, 'group ' || i FROM c;
UPDATE t SET name = upper(name) WHERE id % 7 = 0;
DELETE FROM t WHERE id % 11 = 0;
SELECT count(*), sum(v), min(name), max(name) FROM t;
SELECT g.label, count(*), round(avg(t.v), 3) FROM t JOIN g USING (grp)
  GROUP BY grp ORDER BY count(*) DESC, grp LIMIT 10;
SELECT name, rank FROM (SELECT name, rank() OVER (PARTITION BY grp ORDER BY v DESC) AS rank FROM t)
  WHERE rank <= 2 ORDER BY name LIMIT 20;
SELECT count(*), min(name), max(name) FROM t WHERE name LIKE 'name-0001%';
SELECT group_concat(id, ',') FROM (SELECT id FROM t WHERE id % 5000 = 1 ORDER BY id);
PRAGMA wal_checkpoint(TRUNCATE);
VACUUM;
PRAGMA integrity_check;
.sha3sum
SQL
