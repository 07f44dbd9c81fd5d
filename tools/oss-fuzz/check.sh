#!/usr/bin/env bash
# Runs tools/oss-fuzz/build.sh here the way OSS-Fuzz's `compile` step does
# (address sanitizer, libFuzzer engine), then runs every binary it produced
# over its seed corpus, unpacked from the <target>_seed_corpus.zip it wrote,
# with its dictionary. Checks that every hk_fuzz_target of fuzz/BUILD.bazel
# was built. Prints one line per target and exits non-zero on any failure.
#
#   bash tools/oss-fuzz/check.sh            # from a checkout
#   SANITIZER=undefined bash tools/oss-fuzz/check.sh   # OSS-Fuzz's UBSan flags
#   SANITIZER=memory bash tools/oss-fuzz/check.sh      # and its MSan flags
#
# Also the body of //tools/oss-fuzz:build_check_test, which runs it over the
# sources Bazel staged in the test's runfiles.
set -uo pipefail

root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
tmp=$(mktemp -d "${TEST_TMPDIR:-${TMPDIR:-/tmp}}/hakmem-oss-fuzz.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# The layout OSS-Fuzz gives build.sh: the project's checkout at $SRC/hakmem,
# build.sh at $SRC/build.sh, scratch in $WORK, results in $OUT.
export SRC=$tmp/src WORK=$tmp/work OUT=$tmp/out
mkdir -p "$SRC" "$WORK" "$OUT"
ln -s "$root" "$SRC/hakmem"
cp "$root/tools/oss-fuzz/build.sh" "$SRC/build.sh"

# The variables OSS-Fuzz's base-builder sets for a libFuzzer build (flags as in
# its infra/base-images/base-builder; libc++ left out, as it is not installed
# here and hakmem is C).
export SANITIZER=${SANITIZER:-address}
export FUZZING_ENGINE=libfuzzer ARCHITECTURE=x86_64 FUZZING_LANGUAGE=c
export CC=${CC:-clang} CXX=${CXX:-clang++}
common="-O1 -fno-omit-frame-pointer -gline-tables-only -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION"
case $SANITIZER in
  address) san="-fsanitize=address -fsanitize-address-use-after-scope" ;;
  undefined)
    checks=array-bounds,bool,builtin,enum,float-divide-by-zero,function,integer-divide-by-zero,null,object-size,return,returns-nonnull-attribute,shift,signed-integer-overflow,unsigned-integer-overflow,unreachable,vla-bound,vptr
    san="-fsanitize=$checks -fno-sanitize-recover=${checks/unsigned-integer-overflow,/}"
    # OSS-Fuzz only uses unsigned overflow as a coverage signal.
    export UBSAN_OPTIONS=silence_unsigned_overflow=1:halt_on_error=1:print_stacktrace=1
    ;;
  memory) san="-fsanitize=memory -fsanitize-memory-track-origins" ;;
  *) echo "oss-fuzz check: unsupported SANITIZER=$SANITIZER" >&2; exit 2 ;;
esac
export CFLAGS="$common $san -fsanitize=fuzzer-no-link"
export CXXFLAGS="$CFLAGS"
export LIB_FUZZING_ENGINE="-fsanitize=fuzzer"

# Under Bazel the runfiles hold exactly the sources the fuzz targets link
# (tools/oss-fuzz/sources.bzl): build.sh's list must be the same set.
if [ -n "${TEST_SRCDIR:-}" ]; then
  listed=$(cd "$SRC/hakmem" && HK_PRINT_SOURCES=1 bash "$SRC/build.sh" | grep '^alloc/' | sort)
  staged=$(cd "$root" && find -L alloc -name '*.c' | sort)
  if [ "$listed" != "$staged" ]; then
    echo "oss-fuzz check: FAIL build.sh's hakmem sources differ from what Bazel links into the fuzz targets"
    diff <(echo "$listed") <(echo "$staged") | sed 's/^</    only in build.sh:/; s/^>/    only in Bazel:/' | grep only
    exit 1
  fi
fi

echo "oss-fuzz check: build.sh with CC=$CC SANITIZER=$SANITIZER" >&2
if ! (cd "$SRC/hakmem" && bash -eu "$SRC/build.sh") >"$tmp/build.log" 2>&1; then
  cat "$tmp/build.log" >&2
  echo "oss-fuzz check: FAIL build.sh"
  exit 1
fi

# Every target the Bazel build defines must have come out of build.sh.
mapfile -t expected < <(sed -n '/^hk_fuzz_target(/,/)/s/^ *name = "\([^"]*\)".*/\1/p' "$root/fuzz/BUILD.bazel")
if [ ${#expected[@]} -eq 0 ]; then
  echo "oss-fuzz check: FAIL no hk_fuzz_target found in fuzz/BUILD.bazel"
  exit 1
fi

unzip_to() {  # unzip_to ZIP DIR, with python3 when unzip is missing
  if command -v unzip >/dev/null 2>&1; then
    unzip -q -o "$1" -d "$2"
  else
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$1" "$2"
  fi
}

fail=0
for t in "${expected[@]}"; do
  bin=$OUT/${t}_fuzzer
  zip=$OUT/${t}_fuzzer_seed_corpus.zip
  if [ ! -x "$bin" ]; then
    echo "oss-fuzz check: FAIL $t: build.sh did not produce ${t}_fuzzer"
    fail=1
    continue
  fi
  if [ ! -s "$zip" ]; then
    echo "oss-fuzz check: FAIL $t: no ${t}_fuzzer_seed_corpus.zip"
    fail=1
    continue
  fi
  corpus=$tmp/corpus/$t
  mkdir -p "$corpus"
  unzip_to "$zip" "$corpus"
  seeds=$(ls "$corpus" | wc -l)
  args=(-runs=0 -timeout=30)
  [ -f "$OUT/${t}_fuzzer.dict" ] && args+=(-dict="$OUT/${t}_fuzzer.dict")
  # -runs=0: execute the corpus once, no mutation. A dictionary that does
  # not parse makes libFuzzer exit non-zero too.
  if "$bin" "${args[@]}" "$corpus" >"$tmp/$t.log" 2>&1 && grep -q 'INITED' "$tmp/$t.log"; then
    echo "oss-fuzz check: PASS $t ($seeds seeds$( [ -f "$OUT/${t}_fuzzer.dict" ] && echo ", dict"))"
  else
    echo "oss-fuzz check: FAIL $t"
    tail -20 "$tmp/$t.log" | sed 's/^/    /'
    fail=1
  fi
done
extra=$(cd "$OUT" && ls *_fuzzer 2>/dev/null | wc -l)
echo "oss-fuzz check: $extra fuzz targets in \$OUT, ${#expected[@]} expected"
[ "$extra" -eq "${#expected[@]}" ] || { echo "oss-fuzz check: FAIL build.sh and fuzz/BUILD.bazel list different targets"; fail=1; }
exit $fail
