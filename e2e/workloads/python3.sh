#!/usr/bin/env bash
# Python 3.11 (Debian's /usr/bin/python3.11) runs a slice of its own test
# suite (Debian's libpython3.11-testsuite) in one process: threads and
# thread exit (test_threading starts subprocesses too, which inherit the
# preload), containers, json, re, struct. PYTHONMALLOC=malloc sends
# every object to malloc instead of Python's own small-object arenas.
# Prints each test case's outcome (from the junit XML regrtest writes, so
# nothing that depends on timing) and regrtest's exit status; regrtest's
# own log goes to stderr.
#
#   python3.sh <input dir (unused)> <e2e dir>
set -uo pipefail
e2e=$2
export PYTHONMALLOC=malloc PYTHONHASHSEED=0
tests=(test_threading test_thread test_list test_dict test_json test_re test_sort test_heapq
       test_collections test_struct test_ordered_dict test_functools)
# Tests that sleep for their timeouts (most of test_threading's wall time,
# and timing-sensitive on a loaded machine) are left out.
/usr/bin/python3.11 -m test --junit-xml "$PWD/results.xml" \
  --ignore '*timeout*' --ignore '*on_shutdown*' "${tests[@]}" >&2
echo "regrtest exit status $?"
/usr/bin/python3.11 "$e2e/workloads/junit_outcomes.py" results.xml
