#!/usr/bin/env bash
# gcc compiles a generated 17-file C program at -O2 (the driver, cc1, as and
# ld all run under the preload), links it and runs it (it allocates too).
# Prints the program's output and the checksums of every object and the
# executable: the compiler must produce the same bytes.
#
#   gcc.sh <input dir> <e2e dir>
set -euo pipefail
cp -r "$1/prog" prog
cd prog
/usr/bin/gcc -O2 -pipe -c ./*.c
/usr/bin/gcc -O2 -o prog ./*.o
./prog
/usr/bin/md5sum ./*.o prog
