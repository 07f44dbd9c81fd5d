#!/usr/bin/env bash
# The heap profile as google-pprof reads it (Debian google-perftools):
# prof_target's three call sites keep 64 MiB and 1 MiB live and churn
# 256 MiB. In `google-pprof --text --inuse_space` the first must be within
# 15% of 64 MB, the second present, the third absent or near zero; the
# same for the profile hk_prof_dump wrote while the program ran and the one
# HAKMEM_PROF_FILE wrote at exit.
#   prof_pprof_test.sh <prof_target>
set -uo pipefail
bin=$1
pprof=$(command -v google-pprof || command -v pprof) || { echo "FAIL: google-pprof not installed (tools/setup.sh installs google-perftools)" >&2; exit 1; }
dir=${TEST_TMPDIR:-$(mktemp -d)}
fail=0

check() {  # <profile> <label> <want the 1 MiB site: 1|0>
  local out
  out=$("$pprof" --text --inuse_space "$bin" "$1" 2>/dev/null)
  echo "--- $2"
  echo "$out" | head -8
  awk -v label="$2" -v want_small="$3" '
    $NF == "site_keeps_64mib" { big = $1 }
    $NF == "site_keeps_1mib"  { small = $1 }
    $NF == "site_churns_256mib" { churn = $1 }
    END {
      bad = 0
      if (big == "" || big < 64 * 0.85 || big > 64 * 1.15) { print "FAIL: " label ": site_keeps_64mib shows " big " MB, want 64 +- 15%"; bad = 1 }
      if (want_small && (small == "" || small <= 0)) { print "FAIL: " label ": site_keeps_1mib missing"; bad = 1 }
      if (churn != "" && churn > 2) { print "FAIL: " label ": site_churns_256mib shows " churn " MB live, want ~0"; bad = 1 }
      exit bad
    }' <<<"$out" >&2 || fail=1
}

# 64 KiB between samples: about a thousand samples of the 64 MiB site, so
# the estimate's error is a few percent.
for rate in 65536 524288; do
  rm -f "$dir"/run.*.heap "$dir/exit.heap"
  HAKMEM_PROF_SAMPLE=$rate HAKMEM_PROF_FILE="$dir/exit.%p.heap" "$bin" "$dir/run.heap" >/dev/null || { echo "FAIL: prof_target exited $?" >&2; exit 1; }
  head -1 "$dir/run.heap"
  grep -q "^heap profile: .* @ heap_v2/$rate\$" "$dir/run.heap" || { echo "FAIL: header: $(head -1 "$dir/run.heap")" >&2; fail=1; }
  grep -q "^MAPPED_LIBRARIES:" "$dir/run.heap" || { echo "FAIL: no MAPPED_LIBRARIES section" >&2; fail=1; }
  # At 512 KiB the 1 MiB site has 2 samples on average (none in 1 of 7 runs).
  want_small=$([ $rate -le 65536 ] && echo 1 || echo 0)
  check "$dir/run.heap" "hk_prof_dump, rate $rate" $want_small
  exitfile=$(ls "$dir"/exit.*.heap 2>/dev/null | head -1)
  if [ -z "$exitfile" ]; then echo "FAIL: HAKMEM_PROF_FILE wrote nothing" >&2; fail=1; else check "$exitfile" "at exit, rate $rate" $want_small; fi
done

# Off by default: no file, nothing sampled.
rm -f "$dir"/off.*.heap
HAKMEM_PROF_FILE="$dir/off.%p.heap" "$bin" >/dev/null
if ls "$dir"/off.*.heap >/dev/null 2>&1; then echo "FAIL: a profile was written with sampling off" >&2; fail=1; fi
[ $fail -eq 0 ] && echo "PASS"
exit $fail
