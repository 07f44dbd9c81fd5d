/* The spin lock of the core's rare global structures (caches, the abandoned
 * list, the heap pool, the arena). Never taken on malloc's or free's fast
 * path. Not a pthread mutex, so it works inside fork handlers and before the
 * process is initialized. Ground floor. */
#ifndef HAKMEM_CORE_LOCK_H
#define HAKMEM_CORE_LOCK_H

#include "alloc/core/base.h"

HK_HIDDEN_BEGIN
typedef struct hk_lock_t {
  _Atomic int state; /* 0 free, 1 held */
} hk_lock_t;

void hk_lock(hk_lock_t* l);
HK_INLINE void hk_unlock(hk_lock_t* l) { atomic_store_explicit(&l->state, 0, memory_order_release); }
/* Takes the lock if it is free; never waits. False when anyone holds it,
 * the calling thread included (the lock is not recursive). */
HK_INLINE bool hk_trylock(hk_lock_t* l) {
  int expected = 0;
  return atomic_load_explicit(&l->state, memory_order_relaxed) == 0 &&
         atomic_compare_exchange_strong_explicit(&l->state, &expected, 1, memory_order_acquire, memory_order_relaxed);
}
/* In a fork child: the lock was held by the forking thread's prepare handler,
 * which no longer exists as the holder; make it free again. */
HK_INLINE void hk_lock_reinit(hk_lock_t* l) { atomic_store_explicit(&l->state, 0, memory_order_relaxed); }
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
