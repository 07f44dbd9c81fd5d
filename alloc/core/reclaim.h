/* The idle reclaimer: an optional background thread (params.reclaim_thread,
 * HAKMEM_RECLAIM_THREAD) that gives freed memory back when its delay has
 * passed even if the program makes no allocator call at all. It starts the
 * first time memory waits in an aged cache (on a slow path of the thread
 * that freed or allocates next, never with a lock held), sleeps until the
 * earliest due time (indefinitely while nothing waits: no periodic
 * wake-ups), sweeps, and sleeps again. It takes only the aged caches' locks,
 * which malloc's and free's fast paths never take. A forked child starts its
 * own when it needs one; exit stops it. */
#ifndef HAKMEM_CORE_RECLAIM_H
#define HAKMEM_CORE_RECLAIM_H

#include "alloc/core/aged.h"
#include "alloc/core/base.h"

HK_HIDDEN_BEGIN
/* 1 while no reclaimer runs in this process and one may start (whether one
 * is wanted, params.reclaim_thread, is checked when it starts). */
extern _Atomic int hk_reclaim_armed;
void hk_reclaim_start_slow(void);
/* Starts the reclaimer if it is wanted, not running, and memory waits. For
 * slow paths that hold no lock and leave their heap consistent. */
HK_INLINE void hk_reclaim_poke(void) {
  if (hk_unlikely(atomic_load_explicit(&hk_reclaim_armed, memory_order_relaxed)) && hk_aged_something_waited())
    hk_reclaim_start_slow();
}
/* Process start: arms the reclaimer. */
void hk_reclaim_init(void);
/* In a fork child: it has no reclaimer, and may start its own. */
void hk_reclaim_fork_child(void);
/* Wake-ups of the reclaimer so far (statistics). */
uint64_t hk_reclaim_wakeups(void);
/* True while a reclaimer thread runs in this process. */
bool hk_reclaim_running(void);
HK_HIDDEN_END

#endif
