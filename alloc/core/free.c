/* The slow, remote and checked paths of free(): everything hk_free_inline
 * (free.h) does not do in line. */
#include "alloc/core/free.h"

#include "alloc/core/arena.h"
#include "alloc/core/error.h"
#include "alloc/core/foreign.h"
#include "alloc/core/mapping.h"
#include "alloc/core/prof.h"
#include "alloc/core/reclaim.h"
#include "alloc/core/thread.h"

/* What p is, for a pointer into a segment that is not a live block start. */
static const char* segment_misuse(const void* p) {
  uintptr_t a = (uintptr_t)p;
  hk_span* s = hk_span_at(p);
  if (hk_span_holds_block(s, p)) return "double free";  /* a block start whose tag says free */
  if (a & (HK_ALIGN - 1)) return "free of a misaligned pointer";
  if (s->in_use && a - s->start < __atomic_load_n(&s->carved_bytes, __ATOMIC_RELAXED)) return "free of an interior pointer";
  return "invalid free (not an allocated block)";
}

size_t hk_big_usable(const void* p) {
  if (hk_segmap_kind((uintptr_t)p) == HK_MAP_MAPPING) return hk_mapping_usable(p);
  bool freed = false;
  return hk_arena_usable(p, &freed);
}

HK_NOINLINE void hk_free_slow(void* p, const char* func) {
  if (p == NULL) return;
  switch (hk_segmap_kind((uintptr_t)p)) {
    case HK_MAP_MAPPING:
      hk_prof_forget_big(p);
      if (hk_unlikely(hk_tls.counts_on)) hk_tls.counts_freed += hk_big_usable(p);
      hk_mapping_free(p, func);
      hk_reclaim_poke();
      return;
    case HK_MAP_ARENA:
      hk_prof_forget_big(p);
      if (hk_unlikely(hk_tls.counts_on)) hk_tls.counts_freed += hk_big_usable(p);
      hk_arena_free(p, func);
      hk_reclaim_poke();
      return;
    case HK_MAP_SEGMENT:
      hk_misuse(segment_misuse(p), p, func);
      return;
    case HK_MAP_MAPPING_TAIL:
      hk_misuse("free of an interior pointer", p, func);
      return;
    default: {
      /* Not hakmem's: glibc's heap block or ld.so's (foreign.h) goes back
       * to its own allocator; anything else is reported. */
      hk_foreign_kind k = hk_foreign_kind_of(p);
      if (k != HK_FOREIGN_NONE) {
        hk_foreign_free(p, k);
        return;
      }
      hk_misuse("invalid free (pointer not from hakmem)", p, func);
      return;
    }
  }
}

/* Lock-free push; the owner collects on its slow path (heap.c). */
HK_NOINLINE void hk_free_remote(hk_segment* seg, hk_span* span, hk_block* b, const char* func) {
  uintptr_t owner = atomic_load_explicit(&span->owner, memory_order_relaxed);
  /* Per-thread counters: the freeing thread counts every block it frees. */
  if (hk_unlikely(hk_tls.counts_on)) {
    hk_tls.counts_freed += span->block_size;
    /* Its own span, tagged so that the fast path sent the free here. */
    if (owner == (hk_thread_id() | HK_COUNT_OWNER_BIT)) {
      hk_free_owned(span, b, hk_free_tag(b), func);
      return;
    }
  }
  /* A block the heap profiler sampled: its spans have no thread as owner. */
  if (hk_unlikely(owner == HK_PROF_OWNER)) {
    hk_prof_free_small(span, b);
    return;
  }
  /* Statistics: the freeing thread's own counter, plain (owner-written, no
   * shared cache line). A thread without a heap is not counted: writing the
   * shared static empty heap would race. */
  hk_heap* self = hk_tls.heap;
  if (self->is_live) self->remote_frees++;
  else if (owner == 0) hk_thread_note_ownerless_free(seg);
  /* Raise the hint before the push: after the push the block may be
   * collected, its span and segment freed, and seg must not be touched. */
  if (!atomic_load_explicit(&seg->remote_pending, memory_order_relaxed))
    atomic_store_explicit(&seg->remote_pending, 1, memory_order_relaxed);
  hk_block* head = atomic_load_explicit(&span->remote, memory_order_relaxed);
  do {
    hk_block_make_free(span, b, hk_remote_link(head));
    /* release: publishes b's link to the owner's acquire exchange
     * (hk_span_collect_remote). */
  } while (!atomic_compare_exchange_weak_explicit(&span->remote, &head, b, memory_order_release,
                                                  memory_order_relaxed));
}

size_t hk_usable_size_checked(const void* p, const char* func) {
  if (p == NULL) return 0;
  switch (hk_segmap_kind((uintptr_t)p)) {
    case HK_MAP_SEGMENT: {
      hk_span* s = hk_small_live_block(p);
      if (s != NULL) return s->block_size;
      if (hk_span_holds_block(hk_span_at(p), p)) {
        hk_misuse("use of a freed block", p, func);
        return 0;
      }
      break;
    }
    case HK_MAP_MAPPING: {
      size_t n = hk_mapping_usable(p);
      if (n) return n;
      break;
    }
    case HK_MAP_ARENA: {
      bool freed = false;
      size_t n = hk_arena_usable(p, &freed);
      if (n) return n;
      if (freed) {
        hk_misuse("use of a freed block", p, func);
        return 0;
      }
      break;
    }
    case HK_MAP_NONE: {
      /* glibc's blocks have a size glibc knows; ld.so's start-up
       * allocator keeps none, so its blocks are reported. */
      size_t n = hk_foreign_usable(p, hk_foreign_kind_of(p));
      if (n) return n;
      break;
    }
  }
  hk_misuse("invalid pointer", p, func);
  return 0;
}
