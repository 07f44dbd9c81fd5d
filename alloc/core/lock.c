#include "alloc/core/lock.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

_Alignas(64) hk_lock_counts_t hk_lock_counts[HK_LOCK_KINDS];

/* Loads of the word while spinning before sleeping. The guarded sections
 * are a few list operations (or a system call, rarely): a holder that is
 * running lets go within this; one that was preempted does not, and then
 * sleeping hands the core back to it. */
#define HK_LOCK_SPINS 100

HK_INLINE void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

/* The raw system call: no pthread, no allocation; errno may change
 * (EAGAIN when the word moved on, EINTR), which callers here ignore. */
static void futex_wait(_Atomic int* word, int expected) {
  syscall(SYS_futex, (int*)word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

void hk_lock_slow(hk_lock_t* l) {
  unsigned kind = l->kind < HK_LOCK_KINDS ? l->kind : HK_LOCK_OTHER;
  uint64_t sleeps = 0;
  int c = 0;
  /* Spin while the holder may be running. Sleepers (2) do not stop the
   * spin: a thread that takes the lock now, while the one woken waits for a
   * core, keeps it busy instead of queueing behind the wake-up (the woken
   * one finds it held and sleeps again, the word still 2). */
  for (unsigned i = 0; i < HK_LOCK_SPINS; i++) {
    c = atomic_load_explicit(&l->state, memory_order_relaxed);
    if (c == 0 &&
        atomic_compare_exchange_weak_explicit(&l->state, &c, 1, memory_order_acquire, memory_order_relaxed))
      goto taken;
    cpu_relax();
  }
  /* Announce a sleeper (2) and sleep until the word is seen free. Taking
   * it this way leaves 2 behind even when nobody else waits: the unlock
   * then makes one system call too many, never one too few. */
  while (atomic_exchange_explicit(&l->state, 2, memory_order_acquire) != 0) {
    futex_wait(&l->state, 2);
    sleeps++;
  }
taken:
  /* Counted under the lock, so the counter's line is written by one thread
   * at a time per lock kind. */
  atomic_fetch_add_explicit(&hk_lock_counts[kind].contended, 1, memory_order_relaxed);
  if (sleeps) atomic_fetch_add_explicit(&hk_lock_counts[kind].sleeps, sleeps, memory_order_relaxed);
}

void hk_lock_wake(hk_lock_t* l) {
  syscall(SYS_futex, (int*)&l->state, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}
