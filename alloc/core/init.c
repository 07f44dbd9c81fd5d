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
#include <sys/random.h>

#include "alloc/core/internal.h"
#include "alloc/core/options.h"

_Atomic int hk_init_state;
uintptr_t hk_secret;

/* The free-block tag secret. getrandom() when the kernel has it; otherwise
 * the cycle counter mixed with ASLR'd addresses, still unknown to a program
 * that did not read hakmem's memory. Never 0, so a zeroed word is never a tag. */
static void secret_init(void) {
  uintptr_t s = 0;
  if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s)) {
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    s = (((uintptr_t)hi << 32) | lo) ^ (uintptr_t)&s ^ ((uintptr_t)&hk_init_state << 17);
    s *= 0x9E3779B97F4A7C15ull;
  }
  hk_secret = s | 1;
}
static HK_TLS bool hk_init_running_here;  /* this thread is inside hk_init_slow */

static void fork_prepare(void) {
  hk_heap_lock_all();
  hk_segments_lock(true, false);
  hk_stats_lock(true, false);  /* after the segment locks: an unmap holds the cache lock, then takes this */
  hk_large_lock(true, false);
  hk_arena_lock(true, false);
}

static void fork_parent(void) {
  hk_arena_lock(false, false);
  hk_large_lock(false, false);
  hk_stats_lock(false, false);
  hk_segments_lock(false, false);
  hk_heap_unlock_all(false);
}

static void fork_child(void) {
  hk_arena_lock(false, true);
  hk_large_lock(false, true);
  hk_stats_lock(false, true);
  hk_segments_lock(false, true);
  hk_heap_unlock_all(true);
}

/* Programs may close stderr before exit (coreutils' close_stdout does), so
 * the report goes to a copy of fd 2 taken at start-up. */
static int hk_stats_fd = 2;
static void print_stats_at_exit(void) { hk_stats_report_at_exit(hk_stats_fd); }

void hk_init_slow(void) {
  int expected = 0;
  if (atomic_compare_exchange_strong_explicit(&hk_init_state, &expected, 1, memory_order_acquire,
                                              memory_order_acquire)) {
    hk_init_running_here = true;
    secret_init();
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
