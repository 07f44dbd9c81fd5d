/* Free-list integrity (issue 22): the cold half of the link checks whose
 * hot half is hk_span_pop (alloc_inline.h).
 *
 * A free block's link is stored encoded (alloc_inline.h), and whatever a pop
 * or a list walk decodes is checked before it is followed: malloc's fast path
 * accepts only a successor in the popping block's own slot; everything else
 * comes here and is checked exactly (NULL, or a carved block start of the
 * same span whose tag says it is free). A link that fails is reported like
 * any misuse and the process aborts; under HAKMEM_ON_ERROR=warn the span's
 * lists are cut there and the span never allocates again (it leaks). */
#include <errno.h>
#include <stdlib.h>

#include "alloc/core/alloc_inline.h"
#include "alloc/core/internal.h"
#include "alloc/core/options.h"

/* Not `static const`: other files must load it, so that the multiply by it
 * takes it as a memory operand (one instruction) instead of materializing a
 * 64-bit immediate first. */
const uint64_t hk_link_inv = 0x16e79966628c17f5ull;
_Static_assert((uint64_t)(0x16e79966628c17f5ull * HK_LINK_MUL) == 1, "hk_link_inv is HK_LINK_MUL's inverse");

bool hk_link_ok(const hk_span* s, const hk_block* next) {
  if (next == NULL) return true;
  if (!hk_span_holds_block(s, next)) return false;
  /* Inside the span's carved blocks, so safe to read. */
  HK_VG_LINK_OPEN(next);
  bool is_free = next->tag == hk_free_tag(next);
  HK_VG_LINK_CLOSE(next);
  return is_free;
}

void* hk_span_pop_far(hk_span* s, hk_block* b, uintptr_t rel) {
  hk_block* next = (hk_block*)(rel ^ (uintptr_t)b);
  if (hk_unlikely(!hk_link_ok(s, next))) {
    HK_VG_LINK_CLOSE(b);
    hk_freelist_corrupt(s, b);
    hk_heap* heap = hk_tls_heap;
    unsigned cls = s->class_idx;
    hk_span_quarantine(heap, s);
    void* p = hk_alloc_class_slow(heap, cls);
    if (p == NULL) errno = ENOMEM;
    return p;
  }
  s->free = next;
  b->tag = 0;  /* live: a later free() of it is legitimate */
  s->used++;
  HK_VG_ALLOC(b, s->block_size);
  return b;
}

void hk_freelist_corrupt(hk_span* s, const void* at) {
  int saved = errno;
  hk_write_str(2, "hakmem: corrupted free list at ");
  hk_write_hex(2, (uintptr_t)at);
  hk_write_str(2, " in malloc()\n");
  errno = saved;
  if (!hk_options.on_error_warn) abort();
  /* Cut: nothing past this link is followed again, nor anything other
   * threads free into the span (its remote list is never collected again). */
  s->free = NULL;
  if (s->corrupt == 0) s->corrupt = HK_CORRUPT_CUT;
}
