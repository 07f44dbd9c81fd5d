#!/usr/bin/env bash
# Rewrites README's HAKMEM_* table from alloc/core/options.c and the variants'
# defaults. Run as `bazel run //tools:update_options_table` (Bazel sets
# BUILD_WORKSPACE_DIRECTORY to the source tree; the arguments are each
# variant's hk_options_doc printout, from tools/BUILD.bazel).
set -euo pipefail
: "${BUILD_WORKSPACE_DIRECTORY:?run me with bazel run //tools:update_options_table}"
exec python3 tools/options_table.py --write "$BUILD_WORKSPACE_DIRECTORY/README.md" "$@"
