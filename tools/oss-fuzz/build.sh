#!/bin/bash -eu
# OSS-Fuzz build script for hakmem (C, libFuzzer-style targets in fuzz/).
#
# OSS-Fuzz runs this from $SRC/hakmem (the Dockerfile's WORKDIR) with $CC,
# $CFLAGS, $CXX, $CXXFLAGS and $LIB_FUZZING_ENGINE set for the sanitizer and
# engine being built, and collects from $OUT:
#   <target>                    each fuzz target
#   <target>_seed_corpus.zip    its seeds (fuzz/corpus/<t>/)
#   <target>.dict               its dictionary, where there is one
# hakmem's sources are compiled here directly (no Bazel in the builder image).
# tools/oss-fuzz/check.sh runs this script locally the way OSS-Fuzz does.
#
# The targets and what each links must match fuzz/BUILD.bazel (check.sh
# verifies that every hk_fuzz_target there is built here).

cd "${SRC}/hakmem"

# hakmem needs C11 atomics and GNU extensions (__thread, statement attributes).
HK_CFLAGS="-std=gnu11 -pthread -I."
obj="${WORK}/hakmem-obj"

# compile SRC... : one object per source under $obj (paths flattened).
compile() {
  local src o
  for src in "$@"; do
    o="${obj}/$(echo "${src%.c}" | tr / _).o"
    $CC $CFLAGS $HK_CFLAGS -c "$src" -o "$o"
  done
}

# hakmem as the fuzz targets link it in the Bazel build: the core
# (//alloc/core:core, CORE_SRCS in alloc/core/BUILD.bazel; not override.c, the
# fuzzers keep the engine's malloc and call the hk_ functions), the policy
# modules and both backends; the variant is picked per target below. Keep in
# step with the BUILD files: //tools/oss-fuzz:build_check_test compares this
# list with the sources Bazel's graph links into the fuzz targets.
core_srcs=(
  alloc/core/aged.c
  alloc/core/alloc.c
  alloc/core/arena.c
  alloc/core/checked.c
  alloc/core/clock.c
  alloc/core/control.c
  alloc/core/counters.c
  alloc/core/error.c
  alloc/core/foreign.c
  alloc/core/free.c
  alloc/core/heap.c
  alloc/core/hot.c
  alloc/core/init.c
  alloc/core/lock.c
  alloc/core/mapping.c
  alloc/core/options.c
  alloc/core/os.c
  alloc/core/print.c
  alloc/core/prof.c
  alloc/core/reclaim.c
  alloc/core/secret.c
  alloc/core/segmap.c
  alloc/core/segment.c
  alloc/core/size_class.c
  alloc/core/span.c
  alloc/core/stats.c
  alloc/core/thread.c
  alloc/core/trim.c
)
common_srcs=("${core_srcs[@]}" alloc/policies/decommit.c alloc/policies/prewarm.c alloc/policies/release.c
             alloc/backends/linux.c alloc/backends/fault.c)
variant_srcs=(alloc/policies/variant_balanced.c fuzz/variant_fault.c)
if [ "${HK_PRINT_SOURCES:-0}" = 1 ]; then  # for the check, nothing is built
  printf '%s\n' "${common_srcs[@]}" "${variant_srcs[@]}"
  exit 0
fi

rm -rf "${obj}"
mkdir -p "${obj}"
compile "${common_srcs[@]}" "${variant_srcs[@]}" fuzz/ops_model.c

objs() {
  local s
  for s in "$@"; do echo "${obj}/$(echo "${s%.c}" | tr / _).o"; done
}
common_objs=$(objs "${common_srcs[@]}")
balanced=$(objs alloc/policies/variant_balanced.c)
fault=$(objs fuzz/variant_fault.c)
ops_model=$(objs fuzz/ops_model.c)

# target  variant-object  extra-objects
targets=(
  "ops        ${balanced} ${ops_model}"
  "policy     ${fault}    ${ops_model}"
  "size_class ${balanced}"
  "options    ${balanced}"
  "threads    ${balanced}"
  "freelist   ${balanced}"
)

for entry in "${targets[@]}"; do
  set -- $entry
  t=$1
  shift
  compile "fuzz/${t}_fuzzer.c"
  # Link with $CXX: the fuzzing engine is C++. Objects, not archives, so
  # hakmem's constructor (start-up initialization) is always linked.
  $CXX $CXXFLAGS $LIB_FUZZING_ENGINE $(objs "fuzz/${t}_fuzzer.c") "$@" ${common_objs} -pthread \
    -o "${OUT}/${t}_fuzzer"

  # Seed corpus and dictionary under the names OSS-Fuzz looks for. zip may be
  # missing outside the builder image; python3's zipfile does the same.
  rm -f "${OUT}/${t}_fuzzer_seed_corpus.zip"
  if command -v zip >/dev/null 2>&1; then
    zip -q -j "${OUT}/${t}_fuzzer_seed_corpus.zip" fuzz/corpus/${t}/*
  else
    python3 - "${OUT}/${t}_fuzzer_seed_corpus.zip" fuzz/corpus/${t}/* <<'PY'
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    for path in sys.argv[2:]:
        z.write(path, os.path.basename(path))
PY
  fi
  if [ -f "fuzz/dict/${t}.dict" ]; then
    cp "fuzz/dict/${t}.dict" "${OUT}/${t}_fuzzer.dict"
  fi
done
