/* Thread heaps: the spans one thread allocates from, per size class, and
 * the allocation and free slow paths that keep them in order. A heap is
 * touched by its own thread only (other threads free into its spans through
 * the spans' remote lists); which thread has which heap is the thread
 * floor's business (thread.h).
 *
 * Per class the heap keeps the span malloc pops from (current), the spans
 * that may have free blocks (avail, current at its head) and the spans found
 * without any (full). Empty spans go back to their segment, except the
 * current one while it is small (params.span_keep_kb), so a class that
 * oscillates around one span does not pay span setup on every cycle. */
#ifndef HAKMEM_CORE_HEAP_H
#define HAKMEM_CORE_HEAP_H

#include "alloc/core/base.h"
#include "alloc/core/hot.h"
#include "alloc/core/lock.h"
#include "alloc/core/segment.h"
#include "alloc/core/span.h"

HK_HIDDEN_BEGIN
typedef struct hk_heap {
  hk_span* current[HK_CLASSES];   /* span malloc pops from; &hk_span_empty when none. Fast path */
  hk_span_list avail[HK_CLASSES]; /* spans with (maybe) free blocks; current is the head */
  hk_span_list full[HK_CLASSES];  /* spans found without free blocks */
  hk_segment_set segments;        /* owned segments, and the owner id their spans hold */
  uint64_t remote_frees;          /* blocks this thread pushed to other threads' spans. Owner-written, read relaxed by statistics */
  uint64_t refills;               /* slow-path allocations. Owner-written, read relaxed by statistics */
  uint64_t trim_epoch;            /* the trim request (hk_heaps_request_trim) this heap last answered */
  bool is_live;                   /* false for the static empty heap, and while parked */
  uint64_t parked_ms;             /* when its thread exited (hk_now_ms), while parked (thread.c) */
  uint64_t live_ms;               /* when its thread took it (hk_now_ms); while parked, how long that thread ran it (thread.c) */
  _Atomic uint64_t active_ms;     /* its last allocation slow path (hk_now_ms). Owner-written, read relaxed by other threads */
  hk_lock_t lock;                 /* held by every slow path that changes its lists or segments: its owner's, or another thread giving back what remote frees emptied (hk_heap_give_back_emptied) */
  struct hk_heap* next_heap;      /* the thread floor's lists (live heaps, pool) */
  struct hk_heap* prev_heap;
} hk_heap;

/* Every current[] points at hk_span_empty: the heap of a thread that has
 * not allocated yet, whose every malloc takes the slow path. */
extern hk_heap hk_heap_empty;

/* hk_tls, this thread's words (hot.h), is defined in heap.c. */

/* Makes heap a fresh live heap whose spans will be owned by owner_id. */
void hk_heap_init(hk_heap* heap, uintptr_t owner_id);
/* A block of class cls when the current span has none: collects remote
 * frees, moves to the next span, carves, adopts or maps. NULL when the
 * backend has no memory. */
void* hk_heap_alloc_slow(hk_heap* heap, unsigned cls);
/* HAKMEM_THREAD_STATS changed for this thread (hk_count_changed): starts or
 * stops counting its bytes (prof.h, hk_tls.counts_*; a thread that starts
 * moves its sampling budget aside, so its every allocation is counted). heap
 * may be the empty heap (its spans, when it has some, then carry the tag
 * from birth). */
void hk_heap_count_sync(hk_heap* heap);
/* A local free found the span flagged full, emptying, or with nothing
 * handed out (double free). b is a block start of s, not free. */
void hk_heap_free_local_slow(hk_heap* heap, hk_span* s, hk_block* b, const char* func);
/* Takes the remote frees in and returns empty spans (hk_collect); force:
 * every segment, not only those a remote free flagged. */
void hk_heap_collect(hk_heap* heap, bool force);
/* Takes one abandoned segment into the heap and files its spans; false when
 * none waits. */
bool hk_heap_adopt_one(hk_heap* heap);
/* Faults in what the prewarm policy asks for, at most params.prewarm_kb. */
void hk_heap_prewarm(hk_heap* heap);
/* Thread exit, keeping the heap whole for the next thread that starts
 * (thread.c parks it): remote frees in, empty spans back to their segments,
 * and every span left ownerless, so all frees into it (the exiting
 * thread's successor at the same thread pointer included) are remote. Its
 * spans, free blocks and warm free slots stay filed: a new thread that
 * takes it over with hk_heap_unpark allocates from memory that is already
 * resident, where a fresh heap would fault in fresh memory. */
void hk_heap_park(hk_heap* heap);
/* A parked heap becomes the live heap of the thread owner_id. */
void hk_heap_unpark(hk_heap* heap, uintptr_t owner_id);
/* A parked heap gives its segments up to the abandoned list, where threads
 * that need memory adopt them (and the blocks freed into them); the struct
 * is then empty. Any thread may do it once it holds the heap alone. */
void hk_heap_abandon(hk_heap* heap);
/* Registered by the thread floor: gives one heap parked for a while (its
 * thread exited and no new thread took it) up to the abandoned list, so a
 * heap that would otherwise take fresh memory adopts it instead. False
 * when none is parked long enough. NULL: none registered. */
extern bool (*hk_heap_release_parked)(void);
/* Another thread's heap, whose thread made no allocation slow path for
 * params.heap_idle_ms: each span of its full lists whose every live block
 * came back through remote frees goes back to its segment, its slots
 * decommitted at once (the heap is idle: nothing of its will reuse them
 * soon), or the segment to the segment cache when it empties, where any
 * thread takes it. Only full spans: free()'s fast path sends its owner's
 * frees into them to the locked slow path (the full flag), and malloc
 * never pops from them, so nothing of the owner's runs on them meanwhile;
 * and an emptied span has no block left to free. Does nothing when the
 * heap's lock is held (its thread is in a slow path: not idle). */
void hk_heap_give_back_emptied(hk_heap* heap);
/* Registered by the thread floor: called (at most once per
 * params.heap_idle_ms in the process) by a heap that grows, with its own
 * lock held; gives back what remote frees emptied in every live heap idle
 * that long (hk_heap_give_back_emptied). NULL: none registered. */
extern void (*hk_heap_reclaim_idle)(hk_heap* self, uint64_t now_ms);
/* Gives back everything this heap holds empty: empty spans, span tails past
 * the last live block, free slots of its segments (MADV_DONTNEED). */
void hk_heap_trim(hk_heap* heap);
/* Asks every heap to trim itself on its next allocation slow path (no
 * thread touches another's heap). */
void hk_heaps_request_trim(void);
HK_HIDDEN_END

#endif
