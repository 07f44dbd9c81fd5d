#include "alloc/core/lock.h"

#include <sched.h>

void hk_lock(hk_lock_t* l) {
  for (;;) {
    int expected = 0;
    if (atomic_compare_exchange_weak_explicit(&l->state, &expected, 1, memory_order_acquire,
                                              memory_order_relaxed))
      return;
    /* Held locks guard short, rare sections; yielding keeps a machine with
     * fewer cores than threads from burning the holder's time slice. */
    while (atomic_load_explicit(&l->state, memory_order_relaxed)) sched_yield();
  }
}
