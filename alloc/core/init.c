#include "alloc/core/init.h"

#include <pthread.h>
#include <sched.h>

#include "alloc/core/aged.h"
#include "alloc/core/options.h"
#include "alloc/core/os.h"
#include "alloc/core/prof.h"
#include "alloc/core/reclaim.h"
#include "alloc/core/secret.h"
#include "alloc/core/segment.h"
#include "alloc/core/size_class.h"
#include "alloc/core/thread.h"

_Atomic int hk_init_state;
static HK_TLS bool hk_init_running_here;  /* this thread is inside hk_init_slow */

/* Every global lock, in one order: the heap pool, the heap profiler's
 * (which maps segments for its spans), the aged caches, then the abandoned
 * list and the segment registry (an unmap holds a cache's lock, then takes
 * the registry's). */
static void fork_step(hk_fork_step step) {
  if (step == HK_FORK_PREPARE) {
    hk_threads_fork(step);
    hk_prof_fork(step);
    hk_aged_fork(step);
    hk_segments_fork(step);
  } else {
    hk_segments_fork(step);
    hk_aged_fork(step);
    hk_prof_fork(step);
    hk_threads_fork(step);
    if (step == HK_FORK_CHILD) hk_reclaim_fork_child();
  }
}
static void fork_prepare(void) { fork_step(HK_FORK_PREPARE); }
static void fork_parent(void) { fork_step(HK_FORK_PARENT); }
static void fork_child(void) { fork_step(HK_FORK_CHILD); }

void hk_init_slow(void) {
  int expected = 0;
  if (atomic_compare_exchange_strong_explicit(&hk_init_state, &expected, 1, memory_order_acquire,
                                              memory_order_acquire)) {
    hk_init_running_here = true;
    hk_secret_init();
    hk_size_classes_init();
    hk_options_init();
    hk_reclaim_init();
    /* The memory limit (a cgroup's is read here, without allocating), and
     * who gives memory back when it is reached: the OS floor cannot call
     * the aged caches above it, so it is told whom to ask. */
    hk_os_limit_init();
    hk_os_set_pressure_handler(hk_aged_purge);
    hk_prof_configure();
    hk_threads_init();
    /* From here on allocation works; what follows may call malloc. */
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    if (hk_options.show_config) hk_options_print(2);
    hk_init_running_here = false;
    atomic_store_explicit(&hk_init_state, 2, memory_order_release);
    return;
  }
  if (hk_init_running_here) return;  /* re-entered from pthread_atfork */
  while (atomic_load_explicit(&hk_init_state, memory_order_acquire) != 2) sched_yield();
}

/* Initialize before main even if nothing allocates, so HAKMEM_SHOW_CONFIG and
 * option errors appear at start-up. */
__attribute__((constructor)) static void hk_init_at_load(void) { hk_ensure_init(); }
