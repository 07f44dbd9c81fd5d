/* free(): the fast path, inlined into the hk_ API and the libc entry points
 * (override.c, new_delete.c) so neither pays a call, and the one test of
 * "p is a live small block" every entry point shares.
 *
 *   segmap byte says "segment" -> span descriptor by masking -> p is a live
 *   block start of that span -> owner is this thread ? push on the span's
 *   free list : atomic push on its remote list (hk_free_remote).
 *
 * No syscall, lock or indirect call; anything unusual (the span empties or
 * was full, a double free, a block of the arena or a mapping, a pointer that
 * is not hakmem's) is one call away, in free.c. */
#ifndef HAKMEM_CORE_FREE_H
#define HAKMEM_CORE_FREE_H

#include "alloc/core/annotate.h"
#include "alloc/core/base.h"
#include "alloc/core/heap.h"
#include "alloc/core/segmap.h"
#include "alloc/core/span.h"
#include "alloc/core/thread.h"

HK_HIDDEN_BEGIN
/* Everything free() does not do inline: NULL, arena and mapped blocks, and
 * every misuse report (double free, interior, misaligned, foreign). */
void hk_free_slow(void* p, const char* func);
/* The block belongs to a span another thread owns (or nobody: abandoned,
 * or the heap profiler), or to one of this thread's while it counts its
 * bytes (prof.h: the owner tag): that one is freed locally, counted. */
void hk_free_remote(hk_segment* seg, hk_span* span, hk_block* b, const char* func);
/* Usable bytes of p, a block of the arena or a mapping, without a misuse
 * report (0 when it is not a live one: its free reports that). For the
 * per-thread counters (prof.h). */
size_t hk_big_usable(const void* p);
/* Usable bytes of the live block p (any kind), or 0 after reporting misuse
 * (NULL: 0, no report). */
size_t hk_usable_size_checked(const void* p, const char* func);

/* The live-block test: p is a block start span s has handed out and not
 * taken back (its words are not a free block's; `tag` = hk_free_tag(p)). */
HK_INLINE bool hk_span_live_block(const hk_span* s, const void* p, uintptr_t tag) {
  return hk_span_holds_block(s, p) && !hk_block_is_free((const hk_block*)p, tag);
}

/* The span of p when p is a live small block, else NULL. */
HK_INLINE hk_span* hk_small_live_block(const void* p) {
  if (hk_segmap_kind((uintptr_t)p) != HK_MAP_SEGMENT) return NULL;
  hk_span* s = hk_span_at(p);
  return hk_span_live_block(s, p, hk_free_tag(p)) ? s : NULL;
}

/* Pushes b, a live block start of s (a span this thread owns), on s's
 * free list (tag = hk_free_tag(b)). */
HK_INLINE void hk_free_owned(hk_span* s, hk_block* b, uintptr_t tag, const char* func) {
  uint32_t used = s->used;
  /* Slow when the span empties (maybe retire it), was full (relink it)
   * or has nothing handed out (a double free, checked before the push
   * so the free list is never corrupted). */
  if (hk_unlikely(used - 2u >= HK_USED_FULL - 2u)) {  /* used < 2, or full */
    hk_heap_free_local_slow(hk_tls.heap, s, b, func);
    return;
  }
  hk_block_make_free_tagged(s, b, s->free, tag);
  s->free = b;
  /* A compiler barrier, so `used` is decremented in memory (one
   * instruction) instead of in a register and stored back (two). */
  __asm__ volatile("" ::: "memory");
  s->used--;
}

/* Gives back b, a live block start of span s (tag = hk_free_tag(b)). */
HK_INLINE void hk_free_block(hk_span* s, hk_block* b, uintptr_t tag, const char* func) {
  if (HK_CHECKED) hk_checked_free(s, b);
  HK_VG_FREE(b);
  if (hk_likely(atomic_load_explicit(&s->owner, memory_order_relaxed) == hk_thread_id())) {
    hk_free_owned(s, b, tag, func);
    return;
  }
  hk_free_remote(hk_segment_of(b), s, b, func);
}

/* free() of p, a pointer into a segment whose span descriptor is s. */
HK_INLINE void hk_free_in_span(hk_span* s, void* p, const char* func) {
  uintptr_t tag = hk_free_tag(p);
  if (hk_likely(hk_span_live_block(s, p, tag))) {
    hk_free_block(s, (hk_block*)p, tag, func);
  } else {
    hk_free_slow(p, func);
  }
}

HK_INLINE void hk_free_inline(void* p, const char* func) {
  if (hk_likely(hk_segmap_kind((uintptr_t)p) == HK_MAP_SEGMENT)) {
    hk_span* slot = hk_slot_descriptor(p);
    hk_span* multi = slot->multi_head;
    /* Two copies of the rest, one per kind of span, and no select between
     * them: for a single-slot span (every class up to 2 KiB) the descriptor
     * free() reads and writes is at an address computed from p alone, so
     * the malloc right after a free of the same class does not read the
     * span's list head ahead of a store whose address still waits for a
     * load, and the loads need no merged pointer. */
    if (hk_likely(multi == NULL)) {
      hk_free_in_span(slot, p, func);
    } else {
      /* Read multi_head again here (the empty asm hides that it is the
       * same load), so the single-slot test above is one compare with
       * memory instead of a load, a test and a register kept live. */
      __asm__("" : "+r"(slot));
      hk_free_in_span(slot->multi_head, p, func);
    }
    return;
  }
  hk_free_slow(p, func);
}
HK_HIDDEN_END

#endif
