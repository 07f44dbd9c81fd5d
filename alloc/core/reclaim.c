#include "alloc/core/reclaim.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

#include "alloc/core/clock.h"
#include "alloc/core/options.h"

/* Starting and stopping are claimed by taking hk_reclaim_armed from 1 to 0
 * (no lock: pthread_create and pthread_join allocate and free, and those
 * calls come back here through the slow paths). The claimer alone touches
 * hk_reclaim_thread and hk_reclaim_joinable; the thread gives the claim
 * back (armed = 1) when it ends. */
_Atomic int hk_reclaim_armed;
static _Atomic int hk_reclaim_stop;      /* set at exit: the thread ends, none starts again */
static _Atomic uint64_t hk_reclaim_wakes;
static pthread_t hk_reclaim_thread;      /* valid while hk_reclaim_joinable */
static bool hk_reclaim_joinable;
static _Atomic int hk_reclaim_alive;     /* 1 while the thread runs its loop */
static bool hk_reclaim_exit_registered;

static bool wanted(void) {
  return __atomic_load_n(&hk_options.params.reclaim_thread, __ATOMIC_RELAXED) != 0;
}

static void* reclaim_main(void* arg) {
  (void)arg;
  /* HAKMEM_RECLAIM_THREAD=0 at run time ends the thread; a later 1 lets the
   * next slow path start a new one. */
  while (!atomic_load_explicit(&hk_reclaim_stop, memory_order_acquire) && wanted()) {
    uint64_t due = hk_aged_next_due();
    uint64_t now = hk_now_ms();
    if (due != 0 && due <= now) {
      hk_aged_tick(now);
      continue;
    }
    hk_aged_wait(due);  /* until the due time, or until something earlier waits */
    atomic_fetch_add_explicit(&hk_reclaim_wakes, 1, memory_order_relaxed);
  }
  atomic_store_explicit(&hk_reclaim_alive, 0, memory_order_release);
  if (!atomic_load_explicit(&hk_reclaim_stop, memory_order_acquire))
    atomic_store_explicit(&hk_reclaim_armed, 1, memory_order_release);
  return NULL;
}

static void reclaim_stop_at_exit(void) {
  atomic_store_explicit(&hk_reclaim_stop, 1, memory_order_release);
  int expected = 1;
  /* Claim it (nobody may start one now); if a running thread holds the
   * claim, it is ours to end. */
  if (!atomic_compare_exchange_strong_explicit(&hk_reclaim_armed, &expected, 0, memory_order_acq_rel,
                                               memory_order_acquire) &&
      !atomic_load_explicit(&hk_reclaim_alive, memory_order_acquire))
    return;  /* another thread is starting one at this very moment: it sees stop */
  if (!hk_reclaim_joinable) return;
  hk_aged_wake();
  pthread_join(hk_reclaim_thread, NULL);
  hk_reclaim_joinable = false;
}

void hk_reclaim_start_slow(void) {
  int expected = 1;
  if (!wanted() || atomic_load_explicit(&hk_reclaim_stop, memory_order_acquire) ||
      !atomic_compare_exchange_strong_explicit(&hk_reclaim_armed, &expected, 0, memory_order_acq_rel,
                                               memory_order_acquire))
    return;
  if (hk_reclaim_joinable) {
    /* One that ended when the option was turned off. */
    pthread_join(hk_reclaim_thread, NULL);
    hk_reclaim_joinable = false;
  }
  /* No allocator lock is held here: pthread_create and atexit may allocate.
   * The thread blocks every signal: the program's handlers are for its own
   * threads. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  atomic_store_explicit(&hk_reclaim_alive, 1, memory_order_release);
  if (pthread_create(&hk_reclaim_thread, NULL, reclaim_main, NULL) == 0) {
    hk_reclaim_joinable = true;
  } else {
    /* Stays off (the slow-path ticks remain); armed stays 0 so no slow path
     * tries again and again. */
    atomic_store_explicit(&hk_reclaim_alive, 0, memory_order_release);
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (hk_reclaim_joinable && !hk_reclaim_exit_registered) {
    hk_reclaim_exit_registered = true;
    atexit(reclaim_stop_at_exit);
  }
}

void hk_reclaim_init(void) { atomic_store_explicit(&hk_reclaim_armed, 1, memory_order_relaxed); }

/* ThreadSanitizer cannot start a thread in the child of a multithreaded
 * fork (it aborts the process): under it, children run without a reclaimer
 * and give memory back on their slow paths only. */
#if defined(__SANITIZE_THREAD__)
#define HK_CHILD_MAY_START_THREADS 0
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HK_CHILD_MAY_START_THREADS 0
#endif
#endif
#ifndef HK_CHILD_MAY_START_THREADS
#define HK_CHILD_MAY_START_THREADS 1
#endif

void hk_reclaim_fork_child(void) {
  /* The thread did not survive the fork: a new one starts when needed. The
   * exit handler, registered or not, came along. */
  hk_reclaim_joinable = false;
  atomic_store_explicit(&hk_reclaim_alive, 0, memory_order_relaxed);
  atomic_store_explicit(&hk_reclaim_stop, 0, memory_order_relaxed);
  atomic_store_explicit(&hk_reclaim_armed, HK_CHILD_MAY_START_THREADS, memory_order_relaxed);
}

uint64_t hk_reclaim_wakeups(void) { return atomic_load_explicit(&hk_reclaim_wakes, memory_order_relaxed); }
bool hk_reclaim_running(void) { return atomic_load_explicit(&hk_reclaim_alive, memory_order_relaxed) != 0; }
