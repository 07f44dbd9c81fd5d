/* The fast paths of malloc and free, inlined into both the hk_ API and the
 * libc entry points (override.c) so neither pays a call.
 *
 * malloc: size -> class (one table read) -> this thread's current span for the
 *         class (one TLS load, one load from the heap) -> pop its free list.
 * free:   segmap byte says "segment" -> span descriptor by masking -> the
 *         pointer is a block start of that span -> owner is this thread ?
 *         push on the span's free list : atomic push on its remote list.
 * No syscall, lock or indirect call; anything unusual is one call away. */
#ifndef HAKMEM_CORE_ALLOC_INLINE_H
#define HAKMEM_CORE_ALLOC_INLINE_H

#include "alloc/core/annotate.h"
#include "alloc/core/internal.h"

#if defined(HAKMEM_CHECKED) && HAKMEM_CHECKED
#define HK_CHECKED 1
#else
#define HK_CHECKED 0
#endif

/* Free-list links (issue 22). A free block b whose successor is `next`
 * stores
 *     link = (next ^ b ^ hk_secret) * HK_LINK_INV     (mod 2^64)
 * and a pop reads it back as
 *     rel  = (link * HK_LINK_MUL) ^ hk_secret  = next ^ b.
 * The multiply is folded into the load on the pop side and costs one
 * instruction on the push side; the secret makes a written value decode to
 * an address the writer cannot choose, the multiply makes a partial write
 * (one byte, a short field) change the high bits of rel, not just the low
 * ones. A pop follows rel only when it is below HK_LINK_NEAR (next in b's
 * own slot, which belongs to b's span); anything else (the end of the list,
 * a link across the slots of a multi-slot span, a corrupted link) goes to
 * hk_span_pop_far, which checks next exactly. README "What hakmem detects"
 * argues why that is enough. */
#define HK_LINK_MUL 0x6b3a9c5dull  /* odd, in [2^30, 2^31): an imul immediate */
#define HK_LINK_NEAR ((uintptr_t)HK_SLOT_SIZE)
/* HK_LINK_MUL^-1 mod 2^64 (freelist.c): a hidden variable, so the multiply
 * takes it from memory in one instruction. */
extern const uint64_t hk_link_inv __attribute__((visibility("hidden")));

/* next ^ b, decoded from free block b's link. */
HK_INLINE uintptr_t hk_block_link_rel(const hk_block* b) { return (b->link * HK_LINK_MUL) ^ hk_secret; }

/* Free block b's successor, decoded but not checked (hk_link_ok checks). */
HK_INLINE hk_block* hk_block_next(const hk_block* b) {
  return (hk_block*)(hk_block_link_rel(b) ^ (uintptr_t)b);
}

/* Marks b free with its tag (hk_free_tag(b), passed in when the caller has
 * it already) and links it before next. b may be no-access to memcheck, so
 * the two words are opened around the write. */
HK_INLINE void hk_block_make_free_tagged(hk_block* b, hk_block* next, uintptr_t tag) {
  HK_VG_LINK_OPEN(b);
  b->link = ((uintptr_t)next ^ tag) * hk_link_inv;
  b->tag = tag;
  HK_VG_LINK_CLOSE(b);
}

HK_INLINE void hk_block_make_free(hk_block* b, hk_block* next) {
  hk_block_make_free_tagged(b, next, hk_free_tag(b));
}

void hk_checked_pop(hk_span* s, hk_block* b, hk_block* next);  /* checked.c */
void hk_checked_free(hk_span* s, hk_block* b);

/* freelist.c: the pop of b whose link does not stay in b's slot (rel =
 * next ^ b): checks next exactly, then pops b; or reports a corrupted list
 * (abort; HAKMEM_ON_ERROR=warn: s quarantined, and the block comes from
 * the class's slow path instead: NULL with errno = ENOMEM if none). */
void* hk_span_pop_far(hk_span* s, hk_block* b, uintptr_t rel);
/* True when next, decoded from a free block of span s, may be followed:
 * NULL, or a block start s has carved whose tag says it is free. */
bool hk_link_ok(const hk_span* s, const hk_block* next);
/* Reports the corrupted link of free block `at` in span s ("hakmem:
 * corrupted free list at 0x... in malloc()") and aborts; under
 * HAKMEM_ON_ERROR=warn cuts s's lists and marks it corrupt instead (the
 * caller then takes it off its heap's lists: hk_span_quarantine). */
void hk_freelist_corrupt(hk_span* s, const void* at);
void hk_span_quarantine(hk_heap* heap, hk_span* s);  /* page.c */

/* Pops a free block of span s, whose list is not empty. Owner thread only.
 * The far case is a tail call, so malloc's fast path needs no frame. */
HK_INLINE void* hk_span_pop_nonempty(hk_span* s) {
  hk_block* b = s->free;
  HK_VG_LINK_OPEN(b);
  uintptr_t rel = hk_block_link_rel(b);
  if (HK_CHECKED) hk_checked_pop(s, b, (hk_block*)(rel ^ (uintptr_t)b));
  if (hk_unlikely(rel >= HK_LINK_NEAR)) return hk_span_pop_far(s, b, rel);
  s->free = (hk_block*)(rel ^ (uintptr_t)b);
  b->tag = 0;  /* live: a later free() of it is legitimate */
  s->used++;
  HK_VG_ALLOC(b, s->block_size);
  return b;
}

/* Pops a free block of span s, or NULL. Owner thread only. */
HK_INLINE void* hk_span_pop(hk_span* s) {
  return hk_likely(s->free != NULL) ? hk_span_pop_nonempty(s) : NULL;
}

HK_INLINE void* hk_alloc_small_inline(hk_heap* heap, unsigned cls) {
  return hk_span_pop(heap->current[cls]);
}

HK_INLINE void* hk_malloc_inline(size_t size) {
  hk_heap* heap = hk_tls_heap;
  if (hk_likely(size <= HK_SMALL_MAX)) {
    hk_span* s = heap->current[hk_class_of_index[HK_SIZE_INDEX(size)]];
    if (hk_likely(s->free != NULL)) return hk_span_pop_nonempty(s);
  }
  return hk_malloc_slow(size, heap);
}

/* True when p is exactly a block start span s has handed out at some point. */
HK_INLINE bool hk_span_holds_block(const hk_span* s, const void* p) {
  uintptr_t off = (uintptr_t)p - s->start;
  if (hk_unlikely(off >= __atomic_load_n(&s->carved_bytes, __ATOMIC_RELAXED))) return false;
  /* Block-start test without a divide. With magic = ceil(2^40 / size), the
   * low 40 bits of off * magic are below off < 2^21 when size divides off
   * and at least 2^40 / size >= 2^22 otherwise (spans are at most
   * HK_SPAN_MAX_SLOTS * HK_SLOT_SIZE = 2 MiB, so off < 2^21; size <= 2^18),
   * so one multiply and a test against 2^21 tell a block start from an
   * interior pointer. div_magic holds magic << 24, which puts those 40 bits
   * at the top of the product: the test is a shift by 45 (no 64-bit mask to
   * load). */
  return hk_likely(((off * s->div_magic) >> 45) == 0);
}

/* Resolves p (inside a segment) to its span, checking that p is exactly a
 * block start the span has handed out at some point. NULL when p is not a
 * small block start. */
HK_INLINE hk_span* hk_span_of_block(const void* p) {
  hk_span* s = hk_span_at(p);
  return hk_span_holds_block(s, p) ? s : NULL;
}

_Static_assert((uint64_t)HK_SPAN_MAX_SLOTS * HK_SLOT_SIZE <= ((uint64_t)1 << 21) && HK_SMALL_MAX <= (1u << 18),
               "the block-start test needs offsets below 2^21 and sizes up to 2^18");

void hk_free_slow(void* p, const char* func);

/* Gives back b, a block start of span s that is not free (its tag, `tag`
 * = hk_free_tag(b), checked by the caller). */
HK_INLINE void hk_free_block(hk_span* s, hk_block* b, uintptr_t tag, const char* func) {
  if (HK_CHECKED) hk_checked_free(s, b);
  HK_VG_FREE(b);
  if (hk_likely(atomic_load_explicit(&s->owner, memory_order_relaxed) == hk_thread_id())) {
    uint32_t used = s->used;
    /* Slow when the span empties (maybe retire it), was full (relink it)
     * or has nothing handed out (a double free, checked before the push
     * so the free list is never corrupted). */
    if (hk_unlikely(used - 2u >= HK_USED_FULL - 2u)) {  /* used < 2, or full */
      hk_span_free_local_slow(hk_tls_heap, s, b, func);
      return;
    }
    hk_block_make_free_tagged(b, s->free, tag);
    s->free = b;
    /* A compiler barrier, so `used` is decremented in memory (one
     * instruction) instead of in a register and stored back (two). */
    __asm__ volatile("" ::: "memory");
    s->used--;
    return;
  }
  hk_free_remote(hk_segment_of(b), s, b);
}

/* free() of p, a pointer into a segment whose span descriptor is s. */
HK_INLINE void hk_free_in_span(hk_span* s, void* p, const char* func) {
  if (hk_likely(hk_span_holds_block(s, p))) {
    hk_block* b = (hk_block*)p;
    uintptr_t tag = hk_free_tag(b);
    if (hk_unlikely(b->tag == tag)) {
      hk_misuse("double free", p, func);
      return;
    }
    hk_free_block(s, b, tag, func);
    return;
  }
  hk_free_slow(p, func);
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
     * load (larson: +6%), and the loads need no merged pointer (random_mixed
     * and fixed 16 B-1 KiB: +2% over one shared copy behind a branch). */
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

#endif
