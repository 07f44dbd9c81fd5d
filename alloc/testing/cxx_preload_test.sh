#!/usr/bin/env bash
# libhakmem.so carries operator new/delete without depending on libstdc++
# (a preloaded C program must not pay for a C++ runtime), and a C++ program
# run with it preloaded gets hakmem's operators with standard failures.
#
#   cxx_preload_test.sh <libhakmem.so> <cxx_preload_target>
set -euo pipefail
lib=$(realpath "$1")
target=$(realpath "$2")
if readelf -d "$lib" | grep -q 'NEEDED.*libstdc++'; then
  echo "FAIL: $lib depends on libstdc++; every preloaded C program would load it" >&2
  readelf -d "$lib" | grep NEEDED >&2
  exit 1
fi
for sym in _Znwm _ZdlPv _ZnamRKSt9nothrow_t _ZnwmSt11align_val_t _ZdlPvmSt11align_val_t; do
  nm -D --defined-only "$lib" | grep -q " T $sym\$" || { echo "FAIL: $lib does not export $sym" >&2; exit 1; }
done
LD_PRELOAD="$lib" "$target"
