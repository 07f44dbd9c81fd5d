/* Threads and their heaps: one heap per thread that allocates, reached
 * through one initial-exec TLS pointer. A heap is created on its thread's
 * first slow-path allocation, or taken over whole from a thread that
 * exited (parked, thread.c), given up at thread exit (a pthread key
 * destructor) and handled across fork. Heap structs come from a small pool
 * mapped through the OS floor, never from malloc. The pool and the list of
 * live heaps take a lock: once per thread start or exit. */
#ifndef HAKMEM_CORE_THREAD_H
#define HAKMEM_CORE_THREAD_H

#include "alloc/core/base.h"
#include "alloc/core/heap.h"
#include "alloc/core/lock.h"

HK_HIDDEN_BEGIN

/* The calling thread's heap, made now if it has none (the process must be
 * initialized). NULL when no heap struct could be mapped. */
hk_heap* hk_thread_heap(void);
/* After an allocation with a heap from hk_thread_heap: gives the heap up at
 * once if it was made after the thread's last destructor round (thread.c,
 * "Thread exit"); nothing otherwise. */
void hk_thread_exit_release(hk_heap* heap);
/* A thread without a heap freed a block of seg, whose span has no owner
 * (a parked heap's, or an abandoned segment's): the first such segment is
 * remembered, and the thread's heap, made at its first allocation, is the
 * parked heap that holds it if one does. A thread that takes over an
 * exited thread's work (a worker replaced by a new one, a hand-off) frees
 * what its predecessor allocated, often before it allocates anything; in
 * that heap those frees are local and its memory serves the work that
 * uses it, where the newest parked heap belongs to whichever thread exited
 * last. Remote-free path only. */
void hk_thread_note_ownerless_free(hk_segment* seg);
/* Registers the thread-exit destructor and the parked-heap release; once,
 * at process init. */
void hk_threads_init(void);
/* Every parked heap (an exited thread's, kept whole for the next thread)
 * gives its segments up to the abandoned list: trim adopts them after. */
void hk_threads_release_parked(void);
/* Heaps parked now, and the segments they hold. */
uint64_t hk_threads_parked(void);
uint64_t hk_threads_parked_segments(void);
/* Per-heap counters summed over live heaps plus those of exited threads. */
void hk_threads_sum_counters(uint64_t* refills, uint64_t* remote_frees);
/* Fork handlers for the heap pool and live list. In the child only the
 * forking thread lives on; other threads' heaps stay as they were, owned by
 * threads that no longer exist: blocks the child frees into them take the
 * remote path and are never reused, which is safe. */
void hk_threads_fork(hk_fork_step step);
HK_HIDDEN_END

#endif
