/* malloc(): the fast path, inlined into the hk_ API and the libc entry
 * points (override.c, new_delete.c) so neither pays a call.
 *
 *   size -> class (one table read) -> this thread's current span for the
 *   class (one TLS load, one load from the heap) -> pop its free list.
 *
 * No syscall, lock or indirect call; a miss (no heap yet, the span is empty,
 * a request above the small classes) is one call away: hk_malloc_slow
 * (alloc.c).
 *
 * The size test compares with hk_hot.small_limit, on the line the pop's
 * check reads anyway, where a constant would do: the same instructions.
 * While allocations are counted (prof.h) the limit is 0 and each request
 * comes to the counted branch below it: below the thread's sampling budget
 * it is taken off the budget (a compare and a subtract) and popped as on
 * the fast path; otherwise the slow path counts it. */
#ifndef HAKMEM_CORE_ALLOC_INLINE_H
#define HAKMEM_CORE_ALLOC_INLINE_H

#include "alloc/core/base.h"
#include "alloc/core/heap.h"
#include "alloc/core/hot.h"
#include "alloc/core/size_class.h"
#include "alloc/core/span.h"
#include "alloc/core/thread.h"

HK_HIDDEN_BEGIN
/* size first: malloc's fast path keeps it where it arrived (one move less). */
void* hk_malloc_slow(size_t size, hk_heap* heap);
/* The pop from span s that the fast check sent away (an empty list, or a
 * head whose words are not a free block's); falls back to the class's
 * slow path. */
void* hk_malloc_far(size_t size, hk_heap* heap, hk_span* s);

/* The counted branch: true when a request of `size` bytes fits below the
 * thread's sampling budget, taken off it. A budget never exceeds the
 * largest small size (prof.c), so a request that fits is a small one. */
HK_INLINE bool hk_sample_budget_take(size_t size) {
#if defined(__x86_64__)
  /* One subtract from memory and a branch on its flags ("above": no borrow
   * and not zero, so size < budget for any 64-bit size). A request that
   * does not fit adds its size back at once: until then the budget holds a
   * wrapped value, which a signal handler's malloc interrupting these two
   * instructions would see, like any handler that interrupts malloc's
   * fast path (README "Errors": undefined, as under glibc). */
  bool fits;
  __asm__("subq %2, %0" : "+m"(hk_tls.sample_budget), "=@cca"(fits) : "r"(size));
  if (hk_likely(fits)) return true;
  __asm__("addq %1, %0" : "+m"(hk_tls.sample_budget) : "r"(size));
  return false;
#else
  if (hk_likely(size < hk_tls.sample_budget)) {
    hk_tls.sample_budget -= size;
    return true;
  }
  return false;
#endif
}

/* The pop of malloc's fast path, from the current span of size's class;
 * hint: prefetch the next head (hk_span_pop_take). */
HK_INLINE void* hk_malloc_pop(size_t size, hk_heap* heap, bool hint) {
  hk_span* s = heap->current[hk_class_of_index[HK_SIZE_INDEX(size)]];
  hk_block* b;
  hk_block* next;
  /* An empty list's head is HK_LIST_END, which fails the check too. */
  if (hk_span_pop_head(s, &b, &next)) return hk_span_pop_take(s, b, next, hint);
  return hk_malloc_far(size, heap, s);
}

HK_INLINE void* hk_malloc_inline(size_t size) {
  hk_heap* heap = hk_tls.heap;
  if (hk_likely(size < hk_hot.small_limit)) return hk_malloc_pop(size, heap, true);
  /* The counted branch, with a pop of its own (-fno-crossjumping keeps the
   * two apart: joined, it would cost a jump). Its pop leaves the next head
   * unasked for: behind the budget's read-modify-write the prefetch cost
   * more than it saved (random_mixed with sampling on, 2 x 80 interleaved
   * runs: +0.5% at ws=400, +1.1% at ws=8192 without it). */
  if (hk_sample_budget_take(size)) return hk_malloc_pop(size, heap, false);
  return hk_malloc_slow(size, heap);
}
HK_HIDDEN_END

#endif
