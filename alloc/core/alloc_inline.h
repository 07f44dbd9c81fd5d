/* malloc(): the fast path, inlined into the hk_ API and the libc entry
 * points (override.c, new_delete.c) so neither pays a call.
 *
 *   size -> class (one table read) -> this thread's current span for the
 *   class (one TLS load, one load from the heap) -> pop its free list.
 *
 * No syscall, lock or indirect call; a miss (no heap yet, the span is empty,
 * a request above the small classes) is one call away: hk_malloc_slow
 * (alloc.c). */
#ifndef HAKMEM_CORE_ALLOC_INLINE_H
#define HAKMEM_CORE_ALLOC_INLINE_H

#include "alloc/core/base.h"
#include "alloc/core/heap.h"
#include "alloc/core/size_class.h"
#include "alloc/core/span.h"
#include "alloc/core/thread.h"

HK_HIDDEN_BEGIN
/* size first: malloc's fast path keeps it where it arrived (one move less). */
void* hk_malloc_slow(size_t size, hk_heap* heap);
/* The pop from span s that the fast check sent away (an empty list, or a
 * head whose words are not a free block's); falls back to hk_malloc_slow. */
void* hk_malloc_far(size_t size, hk_heap* heap, hk_span* s);

HK_INLINE void* hk_alloc_small_inline(hk_heap* heap, unsigned cls) {
  return hk_span_pop(heap->current[cls]);
}

HK_INLINE void* hk_malloc_inline(size_t size) {
  hk_heap* heap = hk_tls_heap;
  if (hk_likely(size <= HK_SMALL_MAX)) {
    hk_span* s = heap->current[hk_class_of_index[HK_SIZE_INDEX(size)]];
    hk_block* b;
    hk_block* next;
    /* An empty list's head is HK_LIST_END, which fails the check too. */
    if (hk_span_pop_head(s, &b, &next)) return hk_span_pop_take(s, b, next);
    return hk_malloc_far(size, heap, s);
  }
  return hk_malloc_slow(size, heap);
}
HK_HIDDEN_END

#endif
