/* The lock of the core's rare global structures (caches, the abandoned
 * list, the heap pool, the arena). Never taken on malloc's or free's fast
 * path. Not a pthread mutex, so it works inside fork handlers and before the
 * process is initialized, and it never allocates. Ground floor.
 *
 * A waiter spins briefly (the sections are short), then sleeps in the
 * kernel on the lock word (futex), so a thread whose holder was preempted
 * gives its core to the holder instead of spinning or yielding in a loop.
 * The word: 0 free, else the holder's kernel thread id shifted left by one,
 * with bit 0 set when someone may sleep on it; unlocking makes a system call
 * only when bit 0 is set. Since taking the lock writes the holder's id in
 * the same atomic step, a thread that asks again for a lock it holds (the
 * allocator re-entered from a signal handler that interrupted a slow path)
 * is recognised by the waiter's path and ends with a message naming the
 * lock instead of sleeping forever on itself.
 *
 * Each lock names what it guards (hk_lock_kind); acquisitions that found it
 * held and sleeps are counted per kind (relaxed, only on the contended path)
 * for the statistics, which say which locks are hot. */
#ifndef HAKMEM_CORE_LOCK_H
#define HAKMEM_CORE_LOCK_H

#include "alloc/core/base.h"

HK_HIDDEN_BEGIN
typedef enum {
  HK_LOCK_OTHER = 0, /* unnamed (tests); counted, not reported */
  HK_LOCK_HEAPS,     /* the heap pool and live list (thread.c) */
  HK_LOCK_ABANDONED, /* the abandoned segments (segment.c) */
  HK_LOCK_REGISTRY,  /* the segment registry (segment.c) */
  HK_LOCK_SEGMENTS,  /* the empty-segment cache (segment.c) */
  HK_LOCK_FREE_SLOTS,/* the free-slot cache (segment.c) */
  HK_LOCK_ARENA,     /* the arena and its cache (arena.c) */
  HK_LOCK_MAPPINGS,  /* the big-mapping cache (mapping.c) */
  HK_LOCK_PROF,      /* the heap profiler (prof.c) */
  HK_LOCK_HEAP,      /* one thread heap's lists and segments (heap.c): its own slow paths, or an idle heap's emptied spans given back by another thread */
  HK_LOCK_KINDS
} hk_lock_kind;

typedef struct hk_lock_t {
  _Atomic int state; /* 0 free, else holder's tid << 1 | (possible) sleepers */
  unsigned kind;     /* hk_lock_kind; a zeroed lock is HK_LOCK_OTHER */
} hk_lock_t;

#define HK_LOCK_INIT(kind_) {.kind = (kind_)}

/* Per kind, since the process started; one cache line each. */
typedef struct hk_lock_counts_t {
  _Atomic uint64_t contended; /* acquisitions that found the lock held */
  _Atomic uint64_t sleeps;    /* times a waiter slept in the kernel */
  char pad[64 - 2 * sizeof(uint64_t)];
} hk_lock_counts_t;
extern hk_lock_counts_t hk_lock_counts[HK_LOCK_KINDS];

/* What lock words hold for this thread (its kernel thread id << 1), read
 * from the kernel once per thread; 0 until then. */
extern HK_TLS int hk_lock_self_word;
int hk_lock_self_read(void);
HK_INLINE int hk_lock_self(void) {
  int w = hk_lock_self_word;
  return hk_likely(w != 0) ? w : hk_lock_self_read();
}
/* After fork, in the child: the forking thread has a new kernel id. */
void hk_lock_self_forget(void);

/* The lock's name as the statistics spell it ("arena", "free_slots"). */
const char* hk_lock_kind_name(unsigned kind);

void hk_lock_slow(hk_lock_t* l, int self);
void hk_lock_wake(hk_lock_t* l);

HK_INLINE void hk_lock(hk_lock_t* l) {
  int expected = 0, self = hk_lock_self();
  if (hk_likely(atomic_compare_exchange_strong_explicit(&l->state, &expected, self, memory_order_acquire,
                                                        memory_order_relaxed)))
    return;
  hk_lock_slow(l, self);
}
HK_INLINE void hk_unlock(hk_lock_t* l) {
  if (hk_unlikely(atomic_exchange_explicit(&l->state, 0, memory_order_release) & 1)) hk_lock_wake(l);
}
/* Takes the lock if it is free; never waits. False when anyone holds it,
 * the calling thread included (the lock is not recursive). */
HK_INLINE bool hk_trylock(hk_lock_t* l) {
  int expected = 0;
  return atomic_load_explicit(&l->state, memory_order_relaxed) == 0 &&
         atomic_compare_exchange_strong_explicit(&l->state, &expected, hk_lock_self(), memory_order_acquire,
                                                 memory_order_relaxed);
}
/* In a fork child: the lock was held by the forking thread's prepare handler,
 * under the id the thread had in the parent, and its sleepers were not
 * copied; make it free again, and have this thread read its new id. */
HK_INLINE void hk_lock_reinit(hk_lock_t* l) {
  atomic_store_explicit(&l->state, 0, memory_order_relaxed);
  hk_lock_self_forget();
}
/* One fork-handler step for a lock: take it (prepare), give it back (parent),
 * or reset it (child). */
typedef enum { HK_FORK_PREPARE, HK_FORK_PARENT, HK_FORK_CHILD } hk_fork_step;
HK_INLINE void hk_lock_fork(hk_lock_t* l, hk_fork_step step) {
  if (step == HK_FORK_PREPARE) hk_lock(l);
  else if (step == HK_FORK_PARENT) hk_unlock(l);
  else hk_lock_reinit(l);
}
HK_HIDDEN_END

#endif
