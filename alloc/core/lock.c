#include "alloc/core/lock.h"

#include <linux/futex.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "alloc/core/print.h"

_Alignas(64) hk_lock_counts_t hk_lock_counts[HK_LOCK_KINDS];

HK_TLS int hk_lock_self_word;

/* The kernel's thread id: unique among live threads, never 0, and at most
 * 2^22 (the kernel's pid_max limit), so shifted left by one it fits the
 * futex word with bit 0 to spare. A raw system call: no pthread, no
 * allocation, works before start-up and in a fork child. */
int hk_lock_self_read(void) {
  int w = (int)syscall(SYS_gettid) << 1;
  hk_lock_self_word = w;
  return w;
}
void hk_lock_self_forget(void) { hk_lock_self_word = 0; }

const char* hk_lock_kind_name(unsigned kind) {
  static const char* const names[HK_LOCK_KINDS] = {
      [HK_LOCK_OTHER] = "other",       [HK_LOCK_HEAPS] = "heaps",           [HK_LOCK_ABANDONED] = "abandoned",
      [HK_LOCK_REGISTRY] = "registry", [HK_LOCK_SEGMENTS] = "segments",     [HK_LOCK_FREE_SLOTS] = "free_slots",
      [HK_LOCK_ARENA] = "arena",       [HK_LOCK_MAPPINGS] = "mappings",     [HK_LOCK_PROF] = "prof",
      [HK_LOCK_HEAP] = "heap",
  };
  return kind < HK_LOCK_KINDS ? names[kind] : names[HK_LOCK_OTHER];
}

/* The thread asks for a lock it holds: it can only have been interrupted
 * inside a section by a signal whose handler called malloc or free, and
 * waiting would wait for itself forever. Written without allocating. */
static void __attribute__((noreturn)) relocked(const hk_lock_t* l) {
  hk_write_str(2, "hakmem: malloc or free called from a signal handler while this thread holds the ");
  hk_write_str(2, hk_lock_kind_name(l->kind));
  hk_write_str(2, " lock\n");
  abort();
}

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

void hk_lock_slow(hk_lock_t* l, int self) {
  unsigned kind = l->kind < HK_LOCK_KINDS ? l->kind : HK_LOCK_OTHER;
  uint64_t sleeps = 0;
  int c = atomic_load_explicit(&l->state, memory_order_relaxed);
  /* Only this thread writes its own id, so once is enough: the lock cannot
   * become this thread's while it waits. */
  if ((c & ~1) == self) relocked(l);
  /* Spin while the holder may be running. Sleepers (bit 0) do not stop the
   * spin: a thread that takes the lock now, while the one woken waits for a
   * core, keeps it busy instead of queueing behind the wake-up (the woken
   * one finds it held and sleeps again, bit 0 still set). */
  for (unsigned i = 0; i < HK_LOCK_SPINS; i++) {
    c = atomic_load_explicit(&l->state, memory_order_relaxed);
    if (c == 0 &&
        atomic_compare_exchange_weak_explicit(&l->state, &c, self, memory_order_acquire, memory_order_relaxed))
      goto taken;
    cpu_relax();
  }
  /* Announce a sleeper (bit 0 on the holder's word) and sleep until the
   * word is seen free. Taking it this way sets bit 0 even when nobody else
   * waits: the unlock then makes one system call too many, never one too
   * few. */
  for (;;) {
    c = atomic_load_explicit(&l->state, memory_order_relaxed);
    if (c == 0) {
      if (atomic_compare_exchange_weak_explicit(&l->state, &c, self | 1, memory_order_acquire, memory_order_relaxed))
        break;
      continue;
    }
    if (!(c & 1) &&
        !atomic_compare_exchange_weak_explicit(&l->state, &c, c | 1, memory_order_relaxed, memory_order_relaxed))
      continue;
    futex_wait(&l->state, c | 1);
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
