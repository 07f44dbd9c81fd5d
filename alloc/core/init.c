/* Process start-up and fork handling.
 *
 * hakmem initializes on the first slow-path allocation, which may come from
 * the dynamic loader, a constructor or TLS set-up before main. Initialization
 * never allocates; the steps that might re-enter malloc (pthread_atfork,
 * atexit) run last, when the allocator already works. */
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#include "alloc/core/internal.h"
#include "alloc/core/options.h"

_Atomic int hk_init_state;
static HK_TLS bool hk_init_running_here;  /* this thread is inside hk_init_slow */

static void fork_prepare(void) {
  hk_heap_lock_all();
  hk_segments_lock(true, false);
  hk_large_lock(true, false);
}

static void fork_parent(void) {
  hk_large_lock(false, false);
  hk_segments_lock(false, false);
  hk_heap_unlock_all(false);
}

static void fork_child(void) {
  hk_large_lock(false, true);
  hk_segments_lock(false, true);
  hk_heap_unlock_all(true);
}

/* Programs may close stderr before exit (coreutils' close_stdout does), so
 * the report goes to a copy of fd 2 taken at start-up. */
static int hk_stats_fd = 2;
static void print_stats_at_exit(void) { hk_stats_print(hk_stats_fd); }

void hk_init_slow(void) {
  int expected = 0;
  if (atomic_compare_exchange_strong_explicit(&hk_init_state, &expected, 1, memory_order_acquire,
                                              memory_order_acquire)) {
    hk_init_running_here = true;
    hk_size_classes_init();
    hk_options_init();
    hk_heap_key_create();
    /* From here on allocation works; what follows may call malloc. */
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    if (hk_options.stats_at_exit) {
      int fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
      if (fd >= 0) hk_stats_fd = fd;
      atexit(print_stats_at_exit);
    }
    if (hk_options.show_config) hk_options_print(2);
    hk_init_running_here = false;
    atomic_store_explicit(&hk_init_state, 2, memory_order_release);
    return;
  }
  if (hk_init_running_here) return;  /* re-entered from pthread_atfork/atexit */
  while (atomic_load_explicit(&hk_init_state, memory_order_acquire) != 2) sched_yield();
}

/* Initialize before main even if nothing allocates, so HAKMEM_SHOW_CONFIG and
 * option errors appear at start-up. */
__attribute__((constructor)) static void hk_init_at_load(void) { hk_ensure_init(); }
