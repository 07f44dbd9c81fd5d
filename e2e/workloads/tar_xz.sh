#!/usr/bin/env bash
# tar with xz: a generated tree of about 8 MB (490 files, text and random
# bytes) archived with pinned order, owners and times through xz with two
# threads (several blocks), listed, extracted and compared with the
# original; prints the archive's checksum, the listing and the extracted
# tree as ls sees it (ls, like tar, links libselinux, whose constructor
# allocates before hakmem's own runs).
#
#   tar_xz.sh <input dir> <e2e dir>
set -euo pipefail
tree=$1/tree
xz='/usr/bin/xz -T2 --block-size=1MiB -3'
/usr/bin/tar -C "$tree" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@1000000000 \
  -I "$xz" -cf tree.tar.xz .
/usr/bin/md5sum tree.tar.xz
/usr/bin/xz -T2 -d -c tree.tar.xz | /usr/bin/md5sum
/usr/bin/tar -I "$xz" -tvf tree.tar.xz | /usr/bin/md5sum
mkdir out
/usr/bin/tar -I "$xz" -C out -xf tree.tar.xz
/usr/bin/diff -r "$tree" out && echo "extracted tree equals the original"
/usr/bin/ls -lR --time-style=+%s out | /usr/bin/md5sum
