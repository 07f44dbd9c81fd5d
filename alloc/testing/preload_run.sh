#!/usr/bin/env bash
# Runs a program with a library preloaded; its exit status is the test's.
#
#   preload_run.sh <library.so> <program> [args...]
set -euo pipefail
lib=$(realpath "$1")
program=$(realpath "$2")
shift 2
LD_PRELOAD="$lib" exec "$program" "$@"
