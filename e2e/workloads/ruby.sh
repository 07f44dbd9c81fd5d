#!/usr/bin/env bash
# Ruby (Debian's /usr/bin/ruby, 3.1) runs ruby_work.rb: hashes, strings,
# regexes, sort_by, JSON, threads with a queue, and forced GC; it prints
# counts and digests.
#
#   ruby.sh <input dir (unused)> <e2e dir>
set -euo pipefail
/usr/bin/ruby --disable-gems -W0 "$2/workloads/ruby_work.rb"
