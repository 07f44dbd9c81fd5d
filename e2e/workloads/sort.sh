#!/usr/bin/env bash
# sort on a generated file of 600,000 lines: by the whole line with two
# threads and a small buffer (so it spills to temporary files and merges),
# numerically by the second field, and unique by the third; prints each
# result's checksum and line count.
#
#   sort.sh <input dir> <e2e dir>
set -euo pipefail
in=$1/lines.txt
/usr/bin/sort --parallel=2 -S 8M -T "$TMPDIR" "$in" | /usr/bin/md5sum
/usr/bin/sort -s -n -k2,2 "$in" | /usr/bin/md5sum
/usr/bin/sort -u -k3,3 "$in" | /usr/bin/md5sum
/usr/bin/sort -u -k3,3 "$in" | wc -l
