#include "alloc/core/clock.h"

#include <time.h>

/* Non-zero: the fake time tests set (hk_clock_set_fake). Relaxed: a test
 * sets it before the operations it measures, on the same thread or before
 * starting the others. */
static _Atomic uint64_t hk_fake_ms;

uint64_t hk_now_ms(void) {
  uint64_t fake = atomic_load_explicit(&hk_fake_ms, memory_order_relaxed);
  if (fake != 0) return fake;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void hk_clock_set_fake(uint64_t now_ms) { atomic_store_explicit(&hk_fake_ms, now_ms, memory_order_relaxed); }
