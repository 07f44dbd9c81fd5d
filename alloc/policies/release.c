/* Release policies: when cached empty memory goes back to the backend. */
#include "alloc/core/policy.h"

static bool release_always(const hk_params* p, uint64_t cached_bytes, uint64_t idle_ms) {
  (void)p; (void)cached_bytes; (void)idle_ms;
  return true;
}

static uint64_t hold_none(const hk_params* p) {
  (void)p;
  return 0;
}

/* Keep empty memory for a while: a program that frees a burst often allocates
 * again soon, and reusing mapped memory costs no syscall. */
static bool release_after_delay(const hk_params* p, uint64_t cached_bytes, uint64_t idle_ms) {
  return idle_ms >= p->release_delay_ms || cached_bytes > (p->cache_mb << 20);
}

static uint64_t hold_delay(const hk_params* p) { return p->release_delay_ms; }

/* Keep up to cache_mb whatever its age: for programs whose peaks recur at no
 * particular rhythm, where any delay would be wrong. */
static bool release_over_cap(const hk_params* p, uint64_t cached_bytes, uint64_t idle_ms) {
  (void)idle_ms;
  return cached_bytes > (p->cache_mb << 20);
}

static uint64_t hold_forever(const hk_params* p) {
  (void)p;
  return HK_HOLD_FOREVER;
}

const hk_release_policy hk_release_immediate = {"immediate", 0, release_always, hold_none};
const hk_release_policy hk_release_delayed = {"delayed", HK_READS_RELEASE_DELAY | HK_READS_CACHE,
                                              release_after_delay, hold_delay};
const hk_release_policy hk_release_capped = {"capped", HK_READS_CACHE, release_over_cap, hold_forever};
