#!/usr/bin/env bash
# Runs the stress set (//stress/...) over and over for a given wall time,
# rotating through build configs and using a fresh seed every round, to hunt
# rare allocator bugs by hand. Prints one progress line per round and keeps
# the log of every failing test.
#
#   tools/stress_soak.sh --hours 1                      # default, asan, tsan
#   tools/stress_soak.sh --minutes 20 --configs tsan --scale 5
#   tools/stress_soak.sh --hours 8 --targets //stress:larson_predecessor_crash_20_seeds
#
# Options:
#   --hours H | --minutes M   wall time to run (default: 1 hour); a round that
#                             has started is finished
#   --configs LIST            comma-separated: default,asan,tsan,ubsan,...
#                             ("default" = no --config); default: default,asan,tsan
#   --scale K                 multiplies every test's duration (HK_STRESS_SCALE),
#                             so each round spends more time per process start
#                             (default: 3)
#   --targets "PATTERNS"      what to test, space-separated (default: //stress/...)
#   --seed S                  first seed (default: from the clock); round i uses S+i
#   --out DIR                 where failing logs go (default: /tmp/hakmem-soak-<time>)
#   --stop-on-fail            stop at the first failing round
#   --bazel-flag FLAG         extra flag for every bazel test (repeatable)
# Environment: BAZEL (default "bazel"), e.g.
#   BAZEL="bazel --output_base=/tmp/soak_ob" so a soak does not hold the
#   workspace's usual Bazel server (then add --bazel-flag=--symlink_prefix=/).
#
# Exit status: 0 when every round passed, 1 when any failed, 2 on bad usage.
set -uo pipefail

seconds_total=3600
configs="default,asan,tsan"
scale=3
targets="//stress/..."
seed=$(( $(date +%s) % 1000000 ))
out=""
stop_on_fail=0
extra_flags=()

usage() { sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --hours) seconds_total=$(awk -v h="$2" 'BEGIN { printf "%d", h * 3600 }'); shift 2 ;;
    --minutes) seconds_total=$(awk -v m="$2" 'BEGIN { printf "%d", m * 60 }'); shift 2 ;;
    --configs) configs="$2"; shift 2 ;;
    --scale) scale="$2"; shift 2 ;;
    --targets) targets="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --stop-on-fail) stop_on_fail=1; shift ;;
    --bazel-flag) extra_flags+=("$2"); shift 2 ;;
    --bazel-flag=*) extra_flags+=("${1#--bazel-flag=}"); shift ;;
    -h|--help) usage 0 ;;
    *) echo "stress_soak: unknown argument '$1'" >&2; usage 2 ;;
  esac
done

read -r -a bazel <<< "${BAZEL:-bazel}"
[ -n "$out" ] || out="/tmp/hakmem-soak-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$out"
cd "$(dirname "$0")/.." || exit 2
IFS=',' read -r -a config_list <<< "$configs"
read -r -a target_list <<< "$targets"

config_flags() {  # prints the bazel flags of a config name
  [ "$1" = "default" ] || echo "--config=$1"
}

# A test's run time at scale 1 is bounded by its own --seconds; stretched by
# --scale and slowed by sanitizers, give it plenty before Bazel kills it (the
# programs' own watchdogs report hangs long before that).
test_timeout=$(awk -v s="$scale" 'BEGIN { printf "%d", 600 + s * 120 }')

# Per config: rounds, failed rounds, larson crash-case runs, thread-seconds.
declare -A rounds fails crash_runs thread_secs
for c in "${config_list[@]}"; do rounds[$c]=0; fails[$c]=0; crash_runs[$c]=0; thread_secs[$c]=0; done

# Sums threads x seconds x runs over the summary lines ("<prog> OK: --threads=N
# --seconds=S ... runs=R") of one round's test logs; with the crash-case runs.
account() {  # config testlogs_dir
  local c="$1" dir="$2" line t s r
  while IFS= read -r line; do
    t=$(sed -n 's/.*--threads=\([0-9]*\).*/\1/p' <<< "$line")
    s=$(sed -n 's/.*--seconds=\([0-9.e+-]*\).*/\1/p' <<< "$line")
    r=$(sed -n 's/.* runs=\([0-9]*\).*/\1/p' <<< "$line")
    if [ -z "$t" ] || [ -z "$s" ]; then continue; fi
    thread_secs[$c]=$(awk -v a="${thread_secs[$c]}" -v t="$t" -v s="$s" -v r="${r:-1}" \
      'BEGIN { printf "%.1f", a + t * s * r }')
  done < <(grep -h " OK: " "$dir"/stress/*/test.log 2>/dev/null)
  r=$(grep -h "^larson OK:" "$dir"/stress/larson_predecessor_crash_20_seeds/test.log 2>/dev/null |
      sed -n 's/.* runs=\([0-9]*\).*/\1/p')
  crash_runs[$c]=$(( ${crash_runs[$c]} + ${r:-0} ))
}

start=$(date +%s)
round=0
any_fail=0
echo "stress_soak: ${seconds_total}s over configs ${configs}, scale ${scale}, first seed ${seed}; logs in ${out}"
while :; do
  now=$(date +%s)
  [ $(( now - start )) -lt "$seconds_total" ] || break
  c="${config_list[$(( round % ${#config_list[@]} ))]}"
  s=$(( seed + round ))
  t0=$(date +%s)
  log="$out/round-$round-$c-seed-$s.bazel.log"
  # shellcheck disable=SC2046  # config_flags prints zero or one word
  "${bazel[@]}" test $(config_flags "$c") "${extra_flags[@]}" \
    --nocache_test_results --test_output=summary \
    --test_env=HK_STRESS_SCALE="$scale" --test_arg=--seed="$s" \
    --test_timeout="$test_timeout" "${target_list[@]}" > "$log" 2>&1
  rc=$?
  took=$(( $(date +%s) - t0 ))
  # shellcheck disable=SC2046
  testlogs=$("${bazel[@]}" info $(config_flags "$c") "${extra_flags[@]}" bazel-testlogs 2>/dev/null)
  if [ "$rc" -eq 1 ]; then
    # Bazel's exit 1 is a build failure (tests fail with 3): the tree is
    # probably being edited. Not a stress result; wait, then try again.
    printf '[%5ds/%ds] round %d %-8s BUILD FAILED, not counted (%s); retrying in 30s\n' \
      "$(( $(date +%s) - start ))" "$seconds_total" "$round" "$c" "$log"
    round=$(( round + 1 ))
    sleep 30
    continue
  fi
  rounds[$c]=$(( ${rounds[$c]} + 1 ))
  passed=$(grep -c " PASSED in " "$log")
  failed=$(grep -cE " (FAILED|TIMEOUT) in | NO STATUS$" "$log")
  if [ "$rc" -eq 0 ]; then
    status="pass ($passed tests)"
    rm -f "$log"
    account "$c" "$testlogs"
  else
    any_fail=1
    fails[$c]=$(( ${fails[$c]} + 1 ))
    status="FAIL (rc $rc, $failed failed, $passed passed; $log)"
    # Keep each failing test's own log beside the Bazel output.
    while IFS= read -r target; do
      name="${target#//stress:}"
      cp "$testlogs/stress/$name/test.log" "$out/round-$round-$c-seed-$s-$name.test.log" 2>/dev/null &&
        grep -h "stress FAIL\|ERROR: \|WARNING: ThreadSanitizer" \
          "$out/round-$round-$c-seed-$s-$name.test.log" | head -3 | sed 's/^/    /'
    done < <(grep -E " (FAILED|TIMEOUT) in " "$log" | awk '{print $1}')
  fi
  elapsed=$(( $(date +%s) - start ))
  printf '[%5ds/%ds] round %d %-8s seed %-8d %4ds  %s\n' "$elapsed" "$seconds_total" "$round" \
    "$c" "$s" "$took" "$status"
  round=$(( round + 1 ))
  [ "$rc" -eq 0 ] || [ "$stop_on_fail" -eq 0 ] || break
done

echo "stress_soak: done after $(( $(date +%s) - start ))s, $round rounds"
for c in "${config_list[@]}"; do
  printf '  %-8s rounds %d, failed %d, larson 4Tx1024 crash-case runs %d, thread-hours %s\n' \
    "$c" "${rounds[$c]}" "${fails[$c]}" "${crash_runs[$c]}" \
    "$(awk -v s="${thread_secs[$c]}" 'BEGIN { printf "%.2f", s / 3600 }')"
done
exit "$any_fail"
