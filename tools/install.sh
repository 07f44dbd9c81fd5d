#!/usr/bin/env bash
# Installs hakmem for builds outside Bazel:
#
#   PREFIX/lib/libhakmem.so             link it (-lhakmem) or LD_PRELOAD it
#   PREFIX/lib/libhakmem.a              static archive of the same variant
#   PREFIX/include/hakmem.h             the hk_ API (stats, trim, ...)
#   PREFIX/lib/pkgconfig/hakmem.pc      pkg-config --cflags --libs hakmem         (shared)
#   PREFIX/lib/pkgconfig/hakmem-static.pc  pkg-config --cflags --libs hakmem-static (static)
#
# Usage:
#   tools/install.sh [--prefix DIR] [--variant balanced|speed|lean]
#       builds the variant with `bazel build --config=opt` and installs it
#       (default prefix /usr/local, default variant balanced);
#   tools/install.sh --prefix DIR --from-files LIB.so LIB.a HEADER
#       installs files built elsewhere, without Bazel: what the test
#       //tools:install_test does with Bazel's outputs, and what a packager
#       with a pre-built tree can use.
#
# Linking the static archive: hakmem replaces malloc only if the linker takes
# its malloc, and a linker pulls archive members only for symbols still
# undefined when it reaches the archive, so a program whose own code never
# calls malloc (only libc does) would keep glibc's. hakmem-static.pc therefore
# wraps the archive in --whole-archive.
set -euo pipefail

prefix=/usr/local
variant=balanced
from_files=()
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=$2; shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; shift ;;
    --variant) variant=$2; shift 2 ;;
    --variant=*) variant=${1#--variant=}; shift ;;
    --from-files) from_files=("$2" "$3" "$4"); shift 4 ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

if [ ${#from_files[@]} -eq 0 ]; then
  cd "$(dirname "$0")/.."
  bash tools/setup.sh
  case "$variant" in
    balanced) so_target=//alloc:libhakmem.so; a_target=//alloc:libhakmem.a ;;
    *) so_target=//alloc:libhakmem_$variant.so; a_target=//alloc:libhakmem_$variant.a ;;
  esac
  bazel build --config=opt "$so_target" "$a_target"
  bin=$(bazel info --config=opt bazel-bin)
  from_files=("$bin/alloc/${so_target#//alloc:}" "$bin/alloc/${a_target#//alloc:}" "alloc/include/hakmem.h")
fi
so=${from_files[0]}
archive=${from_files[1]}
header=${from_files[2]}
for f in "$so" "$archive" "$header"; do
  [ -f "$f" ] || { echo "install.sh: $f does not exist" >&2; exit 1; }
done

# The version is the one the library reports (hk_version), so the .pc file
# can never disagree with the code.
version=$(grep -aoE 'hakmem [0-9]+\.[0-9]+\.[0-9]+' "$so" | head -1 | cut -d' ' -f2)
[ -n "$version" ] || { echo "install.sh: no version string in $so" >&2; exit 1; }

mkdir -p "$prefix/lib/pkgconfig" "$prefix/include"
prefix=$(cd "$prefix" && pwd)
install -m 0755 "$so" "$prefix/lib/libhakmem.so"
install -m 0644 "$archive" "$prefix/lib/libhakmem.a"
install -m 0644 "$header" "$prefix/include/hakmem.h"

pc_head() {
  cat <<EOF
prefix=$prefix
libdir=\${prefix}/lib
includedir=\${prefix}/include

Version: $version
Cflags: -I\${includedir}
EOF
}
{
  pc_head
  cat <<'EOF'
Name: hakmem
Description: hakmem memory allocator: replaces malloc and operator new (shared library)
Libs: -L${libdir} -lhakmem
EOF
} > "$prefix/lib/pkgconfig/hakmem.pc"
{
  pc_head
  cat <<'EOF'
Name: hakmem-static
Description: hakmem memory allocator: replaces malloc (static archive, whole)
Libs: -Wl,--whole-archive ${libdir}/libhakmem.a -Wl,--no-whole-archive -pthread
EOF
} > "$prefix/lib/pkgconfig/hakmem-static.pc"

echo "installed hakmem $version into $prefix"
echo "  cc app.c \$(PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --cflags --libs hakmem)"
