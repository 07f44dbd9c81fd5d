#!/usr/bin/env bash
# tools/install.sh and the pkg-config files, the way a non-Bazel user meets
# them: install into a prefix, then build a small C program with the system
# compiler and `pkg-config --cflags --libs hakmem` (shared) or hakmem-static
# (static archive), run it, and require that hakmem is its allocator.
#
# A test cannot run Bazel, so install.sh gets the Bazel-built library, archive
# and header as data (its --from-files mode); everything after that is the
# same code path `tools/install.sh --prefix DIR` runs after its own build.
#
#   install_test.sh <install.sh> <libhakmem.so> <libhakmem.a> <hakmem.h> <app.c>
set -euo pipefail
install_sh=$(realpath "$1")
so=$(realpath "$2")
archive=$(realpath "$3")
header=$(realpath "$4")
app=$(realpath "$5")
work=${TEST_TMPDIR:-$(mktemp -d)}
cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }

bash "$install_sh" --prefix "$work/prefix" --from-files "$so" "$archive" "$header"
for f in lib/libhakmem.so lib/libhakmem.a include/hakmem.h lib/pkgconfig/hakmem.pc lib/pkgconfig/hakmem-static.pc; do
  [ -f "prefix/$f" ] || fail "install.sh did not install $f"
done
export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig"
version=$(pkg-config --modversion hakmem) || fail "pkg-config does not know hakmem"
grep -aq "hakmem $version" "$so" || fail "hakmem.pc says version $version, the library does not"

# Shared: the program links libhakmem.so like any library.
cc -O2 -o app_shared "$app" $(pkg-config --cflags --libs hakmem)
readelf -d app_shared | grep -q 'NEEDED.*libhakmem.so' || fail "app_shared does not link libhakmem.so"
LD_LIBRARY_PATH="$work/prefix/lib" ./app_shared > shared.out || fail "shared link: $(cat shared.out)"
grep -q "malloc is hakmem's" shared.out || fail "shared link: $(cat shared.out)"

# Static: the archive inside the program, no libhakmem.so at run time.
cc -O2 -o app_static "$app" $(pkg-config --cflags --libs hakmem-static)
if readelf -d app_static | grep -q 'NEEDED.*libhakmem'; then fail "app_static still needs libhakmem.so"; fi
./app_static > static.out || fail "static link: $(cat static.out)"
grep -q "malloc is hakmem's" static.out || fail "static link: $(cat static.out)"

echo "PASS: installed hakmem $version; pkg-config builds run with hakmem as their allocator"
cat shared.out static.out
