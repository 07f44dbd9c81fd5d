/* Release policies: when cached empty memory goes back to the backend. */
#include "alloc/policies/policy.h"

static bool release_always(const hk_params* p, uint64_t cached_bytes, uint64_t idle_ms) {
  (void)p; (void)cached_bytes; (void)idle_ms;
  return true;
}

/* Keep empty memory for a while: a program that frees a burst often allocates
 * again soon, and reusing mapped memory costs no syscall. */
static bool release_after_delay(const hk_params* p, uint64_t cached_bytes, uint64_t idle_ms) {
  return idle_ms >= p->release_delay_ms || cached_bytes > (p->cache_mb << 20);
}

const hk_release_policy hk_release_immediate = {"immediate", release_always};
const hk_release_policy hk_release_delayed = {"delayed", release_after_delay};
