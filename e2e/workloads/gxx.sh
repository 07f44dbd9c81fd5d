#!/usr/bin/env bash
# g++ compiles a C++ program (maps, strings, shared pointers, threads) at
# -O2 and runs it: four threads fill containers that the main thread frees,
# so operator new/delete (libhakmem.so's own) and frees from another thread
# are exercised. Prints the program's output and the executable's checksum.
#
#   gxx.sh <input dir> <e2e dir>
set -euo pipefail
cp "$1/threads.cc" .
/usr/bin/g++ -O2 -pipe -pthread -o threads threads.cc
./threads
/usr/bin/md5sum threads
