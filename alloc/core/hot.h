/* What malloc reads on every call, on as few cache lines as can hold it:
 * the globals on one line (the free-list check loads it anyway, so the
 * gate beside it costs malloc no extra line) and the calling thread's
 * words on one line behind one TLS offset. The words the counted slow path
 * (prof.h) needs besides, the profiler's rate and count and the per-thread
 * counters, share those two lines, so a trip off the fast path reads no
 * line the fast path left cold. Data only, the lowest floor; written where
 * each word's comment says. */
#ifndef HAKMEM_CORE_HOT_H
#define HAKMEM_CORE_HOT_H

#include "alloc/core/base.h"

HK_HIDDEN_BEGIN
typedef struct hk_hot_words {
  /* The per-process secret free-block tags are made with (secret.h): set
   * once at process init. */
  uintptr_t secret;
  /* malloc's fast path serves the requests below this (alloc_inline.h):
   * HK_SMALL_MAX + 1, every small class; 0 while allocations are counted
   * (the heap profiler samples or threads count their bytes), so every
   * request takes the counted branch. Set by the profiler (prof.c), after
   * the size classes exist: release, so a slow path that reads it with
   * acquire may use the class table. */
  size_t small_limit;
  /* HAKMEM_PROF_SAMPLE in effect: mean bytes between samples, 0 off. Set
   * by the profiler (prof.c), read relaxed by its count. */
  uint64_t prof_rate;
  /* HAKMEM_THREAD_STATS in effect (0 or 1): a thread whose counts_on
   * differs switches on its next slow path (prof.h). Set by the profiler. */
  uint32_t thread_stats;
} hk_hot_words;
extern hk_hot_words hk_hot;

struct hk_heap;

/* One thread's words; written by that thread only. */
typedef struct hk_thread_words {
  /* This thread's heap; &hk_heap_empty until its first slow-path
   * allocation. Set by the thread floor (thread.c). */
  struct hk_heap* heap;
  /* While allocations are counted (prof.h): the bytes malloc's counted
   * branch may still serve on the fast path, each request below it taken
   * off it; the first that does not fit goes to the slow path, where the
   * profiler grants the next (hk_prof_take). */
  uint64_t sample_budget;
  /* The profiler's count (prof.c): bytes to the next sample from the last
   * grant on (>= 1; 0: none drawn yet), and the rate it was drawn for. */
  uint64_t prof_to_sample;
  uint64_t prof_rate_seen;
  /* Per-thread counters (HAKMEM_THREAD_STATS, hk_thread_stats): usable
   * bytes (malloc_usable_size), not requested ones, counted where each
   * allocation and free is served off the fast path. They wrap while the
   * thread is not counting (only differences are read). */
  uint64_t counts_allocated;
  uint64_t counts_freed;
  /* While the thread counts: its sampling budget, moved here from
   * sample_budget, which stays 0 so that each of its allocations comes to
   * the slow path, where the block's usable size is known. */
  uint64_t counts_budget;
  /* The budget the profiler granted last (at most 256 KiB, prof.c). */
  uint32_t prof_granted;
  /* Inside hk_prof_take: a signal handler's allocation leaves the count alone. */
  uint8_t prof_in_take;
  /* This thread counts its bytes: its spans carry the owner tag (prof.h).
   * Set by the heap floor (hk_heap_count_sync). */
  bool counts_on;
} __attribute__((aligned(64))) hk_thread_words;
_Static_assert(sizeof(hk_thread_words) == 64, "a thread's words fill one cache line");
/* Defined by the heap floor (heap.c), which knows the empty heap. */
extern HK_TLS hk_thread_words hk_tls;
HK_HIDDEN_END

#endif
