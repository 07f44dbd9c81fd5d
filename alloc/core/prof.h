/* The sampling heap profiler (HAKMEM_PROF_SAMPLE, hk_prof_dump): which call
 * stacks hold the memory that is live now, estimated from a sample of the
 * allocations, written in the gperftools heap profile format pprof reads.
 *
 * Sampling. Every thread counts down the bytes it asks for, from a number
 * drawn from an exponential distribution of mean HAKMEM_PROF_SAMPLE: the
 * allocation whose bytes take the count to zero is sampled, so every byte
 * has the same chance whatever the block sizes. The count costs nothing
 * while sampling is off: malloc's fast path compares a request with
 * hk_hot.small_limit where it would compare with the largest small size,
 * and the profiler sets that limit to 0 while allocations are counted.
 * Every request then takes malloc's counted branch (alloc_inline.h): a
 * request below the thread's sampling budget (hk_tls.sample_budget, at most
 * the bytes left to the next sample) is taken off it and served by the same
 * pop as the fast path, from the same span, so the block freed last is
 * still the one reused; the first request that does not fit comes here
 * (hk_prof_take), which settles the count, says whether this one is the
 * sample and grants the next budget. Budgets are capped, so a rate change
 * reaches every allocating thread within PROF_GRANT_MAX bytes.
 *
 * Sampled blocks. A sampled small block comes from a span the profiler owns
 * (owner HK_PROF_OWNER, no thread's id), so free() of it takes the remote
 * path, where one compare sends it here; big blocks (arena, mappings) are
 * looked up in the profiler's table on their slow free path, only while any
 * sampled big block is live. Each sampled block records its call stack (a
 * frame-pointer walk bounded by the thread's stack, no allocation) and its
 * size under one lock, taken only for a sample, a sampled block's free
 * and a dump.
 *
 * Per-thread counters (HAKMEM_THREAD_STATS, hk_thread_stats) ride on the
 * same branch: a counting thread keeps its budget aside (hk_tls.counts_budget)
 * and the one malloc reads at 0, so each of its allocations comes to the
 * counted slow path (alloc.c), which spends the budget there and adds the
 * block's usable size; its frees are sent off the fast path by an owner tag
 * on its spans (HK_COUNT_OWNER_BIT below).
 *
 * Floor: between spans and heaps. It calls spans, segments, the OS floor and
 * the ground; free.c calls it on the remote path, alloc.c on the
 * allocation slow paths and init.c around fork. */
#ifndef HAKMEM_CORE_PROF_H
#define HAKMEM_CORE_PROF_H

#include "alloc/core/base.h"
#include "alloc/core/hot.h"
#include "alloc/core/lock.h"
#include "alloc/core/options.h"
#include "alloc/core/span.h"

HK_HIDDEN_BEGIN
/* hk_span.owner of the profiler's spans: never a thread pointer. */
#define HK_PROF_OWNER ((uintptr_t)1)
/* Deepest stack recorded. */
#define HK_PROF_DEPTH 48

/* hk_span.owner of the spans of a thread that counts its bytes
 * (HAKMEM_THREAD_STATS): its thread id with this bit set, never equal to
 * any hk_thread_id() (thread pointers are 16-byte aligned), so free()'s
 * fast path sends every free into them to hk_free_remote, which knows
 * them for the thread's own, counts the block and frees it locally. */
#define HK_COUNT_OWNER_BIT ((uintptr_t)2)

/* HAKMEM_THREAD_STATS differs from what this thread does: the next slow
 * path switches it (hk_heap_count_sync). */
HK_INLINE bool hk_count_changed(void) {
  return (__atomic_load_n(&hk_hot.thread_stats, __ATOMIC_RELAXED) != 0) != hk_tls.counts_on;
}
/* What the spans of the calling thread's new heap hold as owner. */
HK_INLINE uintptr_t hk_count_owner_id(void) {
  return hk_thread_id() | (hk_tls.counts_on ? HK_COUNT_OWNER_BIT : 0);
}
/* Allocations are counted: malloc's fast path sends every request to the
 * counted branch (the profiler samples, or threads count their bytes). */
HK_INLINE bool hk_prof_counting(void) { return __atomic_load_n(&hk_hot.small_limit, __ATOMIC_RELAXED) == 0; }

/* The counted branch's slow path: a request of `size` bytes did not fit the
 * thread's sampling budget (`left` of it remained), or was served off the
 * fast path (big blocks, aligned ones). The bytes taken off the budget since
 * it was granted are counted down, then this request's; returns the next
 * budget and sets *sample when this request is the sample. w: the calling
 * thread's words (&hk_tls), where the count lives. Owner thread; a signal
 * handler's allocation that interrupts it is served unsampled and leaves
 * the count alone. */
uint64_t hk_prof_take(hk_thread_words* w, uint64_t left, size_t size, bool* sample);
/* Gives back to the count of w (&hk_tls) the bytes of a request that was
 * counted, not sampled, and failed. */
void hk_prof_refund(hk_thread_words* w, size_t size);
/* A block of class cls from the profiler's spans, its stack recorded
 * (walked from frame, the caller's frame address) with `size` requested
 * bytes. NULL when it cannot (no memory, or re-entered from a signal
 * handler while this thread holds the profiler's lock): the caller
 * allocates as usual. */
void* hk_prof_alloc_small(unsigned cls, size_t size, void* frame);
/* Records p (an arena or mapped block of `size` requested bytes) as sampled. */
void hk_prof_record_big(void* p, size_t size, void* frame);
/* Forgets p if it is a sampled big block (it is being freed, moved or
 * resized). */
void hk_prof_forget_big(const void* p);
/* free() of block b of s, one of the profiler's spans (remote path). */
void hk_prof_free_small(hk_span* s, hk_block* b);

/* Reads HAKMEM_PROF_SAMPLE and HAKMEM_THREAD_STATS: turns sampling on, off
 * or to a new rate, and allocations' counting on or off (hk_hot.small_limit).
 * Called at init and when either option changes. */
void hk_prof_configure(void);
/* Fork handlers: the profiler's lock. */
void hk_prof_fork(hk_fork_step step);
HK_HIDDEN_END

#endif
