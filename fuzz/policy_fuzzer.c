/* Target 2: the operation sequences of ops_fuzzer interleaved with policy
 * events and backend failures.
 *
 * Policy events: hk_trim, hk_collect (thread-cache flush: remote collection,
 * empty spans retired), and run-time switches of the parameters the release
 * and decommit modules read (decommit off / MADV_FREE / MADV_DONTNEED, the
 * resident target, the release delay, the cache size), so empty memory is
 * kept, decommitted lazily or eagerly, or returned at once; and the heap
 * profiler's rate through hk_option_set (off, every byte, every 4 KiB), so
 * blocks come from the profiler's spans and through malloc's counted
 * branch, are freed, reallocated and trimmed in between. After each event every live
 * block must still hold its contents.
 *
 * Backend failures: this target links a variant on the fault-injecting
 * backend (variant_fault.c, alloc/backends/fault.h) whose defaults send empty
 * memory back to the backend at once, so every call site is reached. An
 * event installs a plan from the input (which kinds of call fail: reserve,
 * commit, decommit, release; the nth call, every kth, past a byte budget, or
 * at random with a seed), another clears it. While a plan is armed any allocation may fail,
 * but only with NULL + ENOMEM (posix_memalign: ENOMEM returned), and a failure
 * must leave every live block intact; once cleared, allocations succeed again
 * (the shadow model demands it).
 *
 * After each input: faults cleared, options restored, everything freed and
 * trimmed; then no segment and no large mapping may remain, and unless a
 * release was made to fail or the profiler sampled (it keeps its spans and
 * tables for the process's life), the backend holds no more than it did
 * before the first input. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc/backends/fault.h"
#include "alloc/core/options.h"
#include "alloc/include/hakmem.h"
#include "fuzz/ops_model.h"

enum { E_TRIM, E_COLLECT, E_OPTION, E_FAULT, E_CLEAR, E_COUNT };

static bool armed;
static bool release_may_fail;   /* this input armed failing releases */
static bool profiled;           /* this input turned the heap profiler on */
static hk_options_t saved_options;
/* What may stay after an input that freed everything and trimmed: nothing,
 * except what earlier inputs were allowed to leave (see end()). */
static uint64_t baseline_reserved;
static uint64_t baseline_segments;
static bool initialized;

static void set_option(fi* in) {
  static const struct {
    const char* name;
    const char* values[3];
  } opts[] = {
      {"HAKMEM_DECOMMIT", {"off", "free", "dontneed"}},
      {"HAKMEM_RESIDENT_TARGET_MB", {"0", "1", "256"}},
      {"HAKMEM_RELEASE_DELAY_MS", {"0", "1", "1000"}},
      {"HAKMEM_CACHE_MB", {"0", "4", "64"}},
  };
  static const char* const prof_rates[3] = {"0", "1", "4096"};
  uint8_t b = fi_u8(in);
  unsigned k = b % 4, v = (b >> 2) % 3;
  if (b >> 6 == 3) {
    /* The profiler's rate takes effect through hk_option_set only. */
    int rc = hk_option_set("HAKMEM_PROF_SAMPLE", prof_rates[v]);
    FUZZ_CHECK(rc == 0, "hk_option_set(HAKMEM_PROF_SAMPLE, %s) = %d", prof_rates[v], rc);
    if (v != 0) profiled = true;
    return;
  }
  int rc = hk_option_parse(opts[k].name, opts[k].values[v]);
  FUZZ_CHECK(rc == 0, "hk_option_parse(%s, %s) = %d", opts[k].name, opts[k].values[v], rc);
}

static void arm_faults(fi* in) {
  hk_fault_plan plan = {0};
  uint8_t b = fi_u8(in);
  plan.ops = b & HK_FAULT_ALL_OPS;  /* 0 means every kind */
  switch (b >> 4 & 3) {
    case 0: plan.fail_nth = 1 + fi_u8(in) % 16; break;
    case 1: plan.fail_every = 1 + fi_u8(in) % 8; break;
    case 2: {
      hk_stats_t st;
      hk_stats_get(&st);
      plan.byte_budget = st.bytes_reserved + ((uint64_t)fi_u8(in) << 20);
      break;
    }
    default:
      plan.random_seed = fi_u32(in);
      plan.per_million = (uint32_t)(fi_u8(in) + 1) * 3900u;
      break;
  }
  hk_fault_set(&plan);
  armed = true;
  if (plan.ops == 0 || (plan.ops & HK_FAULT_RELEASE)) release_may_fail = true;
}

static void clear_faults(void) {
  hk_fault_clear();
  armed = false;
}

static void extra(unsigned op, fi* in) {
  switch (op) {
    case E_TRIM: {
      int r = hk_trim(fi_u8(in));
      FUZZ_CHECK(r == 0 || r == 1, "hk_trim returned %d", r);
      ops_verify_all("after hk_trim");
      break;
    }
    case E_COLLECT:
      hk_collect();
      ops_verify_all("after hk_collect");
      break;
    case E_OPTION:
      set_option(in);
      break;
    case E_FAULT:
      arm_faults(in);
      break;
    default:
      clear_faults();
      break;
  }
}

static int may_fail(void) { return armed; }

static void end(void) {
  clear_faults();
  hk_options = saved_options;
  /* The profiler reads its rate when the option is set: set it back too. */
  char rate[32];
  FUZZ_CHECK(hk_option_get("HAKMEM_PROF_SAMPLE", rate, sizeof(rate)) == 0 && hk_option_set("HAKMEM_PROF_SAMPLE", rate) == 0,
             "could not restore HAKMEM_PROF_SAMPLE");
  FUZZ_CHECK(ops_live_count() == 0, "blocks left after the input");
  hk_trim(0);
  hk_stats_t st;
  hk_stats_get(&st);
  /* One thread, nothing live, everything trimmed: nothing may remain. */
  FUZZ_CHECK(st.segments_cached == 0, "%llu segments cached after hk_trim", (unsigned long long)st.segments_cached);
  FUZZ_CHECK(st.large_live == 0, "%llu large blocks live after freeing everything", (unsigned long long)st.large_live);
  /* A failed release leaves its range mapped (fault.h), so the backend's
   * count may stay higher. After such an input, compare with the new state.
   * (corpus/policy/regress-commit-failure-keeps-empty-segment: a failed
   * commit once left an empty segment owned by the heap, past hk_trim.) */
  if (release_may_fail || profiled) {
    baseline_reserved = st.bytes_reserved;
    baseline_segments = st.segments_live;
  } else {
    FUZZ_CHECK(st.segments_live <= baseline_segments, "%llu segments live after freeing everything and hk_trim",
               (unsigned long long)st.segments_live);
    FUZZ_CHECK(st.bytes_reserved <= baseline_reserved,
               "backend holds %llu bytes after freeing everything and hk_trim, %llu before",
               (unsigned long long)st.bytes_reserved, (unsigned long long)baseline_reserved);
  }
  release_may_fail = false;
  profiled = false;
}

static const ops_hooks hooks = {E_COUNT, extra, may_fail, end};

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (!initialized) {
    initialized = true;
    saved_options = hk_options;
    /* The baseline: this thread's heap exists, nothing else. */
    hk_free(hk_malloc(1));
    hk_trim(0);
    hk_stats_t st;
    hk_stats_get(&st);
    baseline_reserved = st.bytes_reserved;
  }
  ops_run(data, size, &hooks);
  return 0;
}
