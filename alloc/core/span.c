#include "alloc/core/span.h"

#include <errno.h>
#include <stdlib.h>

#include "alloc/core/options.h"
#include "alloc/core/print.h"

/* Zero words in read-only memory: never a free block's words. */
const hk_block hk_list_end;
hk_span hk_span_empty = {.free = HK_LIST_END};

/* ---- free-list integrity ------------------------------------------------ */
/* The cold half of the link checks whose hot half is hk_span_pop (span.h).
 * A walk checks each block's words before it trusts its link, and the link
 * itself exactly: a slow path can afford it, and a walk then never leaves
 * the span even if the words were forged. */
bool hk_block_words_ok(const hk_block* b) {
  HK_VG_LINK_OPEN(b);
  bool is_free = hk_block_is_free(b, hk_free_tag(b));
  HK_VG_LINK_CLOSE(b);
  return is_free;
}

bool hk_link_ok(const hk_span* s, const hk_block* b) {
  if (!hk_block_words_ok(b)) return false;
  HK_VG_LINK_OPEN(b);
  hk_block* next = (hk_block*)b->link;
  HK_VG_LINK_CLOSE(b);
  return next == HK_LIST_END || hk_span_holds_block(s, next);
}

uint32_t hk_list_walk(hk_span* s, hk_block* first, hk_block** tail) {
  hk_block* b = first;
  for (uint32_t n = 1;; n++) {
    /* Checked before it is followed; more links than the span has blocks
     * is a cycle. */
    bool ok = hk_link_ok(s, b);
    hk_block* next = hk_block_link(s, b);
    if (ok && next == HK_LIST_END) {
      *tail = b;
      return n;
    }
    if (hk_unlikely(!ok || n >= s->capacity)) {
      hk_freelist_corrupt(s, b);
      return 0;
    }
    b = next;
  }
}

void* (*hk_span_refill)(unsigned cls);

void* hk_span_pop_far(hk_span* s) {
  hk_block* b = s->free;
  if (b == HK_LIST_END) return NULL;
  /* malloc's check failed: b's words are not a free block's. */
  HK_VG_LINK_CLOSE(b);
  hk_freelist_corrupt(s, b);  /* returns only in warn mode, s cut */
  return hk_span_refill != NULL ? hk_span_refill(s->class_idx) : NULL;
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
  s->free = HK_LIST_END;
  if (s->corrupt == 0) s->corrupt = HK_CORRUPT_CUT;
}

hk_block* hk_block_link(const hk_span* s, hk_block* b) {
  (void)s;
  HK_VG_LINK_OPEN(b);
  hk_block* next = (hk_block*)b->link;
  HK_VG_LINK_CLOSE(b);
  return next;
}

static void span_init(hk_span* s, unsigned cls, uintptr_t owner_id) {
  hk_segment* seg = hk_segment_of(s);
  unsigned idx = (unsigned)(s - seg->spans);
  unsigned slots = hk_class_slots[cls];
  uint32_t size = hk_class_size[cls];
  s->free = HK_LIST_END;
  s->used = 0;
  s->pinned = 0;
  s->class_idx = (uint8_t)cls;
  s->slot_offset = 0;
  s->in_use = 1;
  s->block_size = size;
  __atomic_store_n(&s->carved_bytes, 0, __ATOMIC_RELAXED);
  s->div_magic = ((((uint64_t)1 << 40) + size - 1) / size) << 24;  /* hk_span_holds_block */
  s->start = (uintptr_t)seg + ((uintptr_t)idx << HK_SLOT_SHIFT);
  atomic_store_explicit(&s->remote, NULL, memory_order_relaxed);
  atomic_store_explicit(&s->owner, owner_id, memory_order_relaxed);
  s->next = s->prev = NULL;
  s->capacity = (uint32_t)(((size_t)slots << HK_SLOT_SHIFT) / size);
  s->slot_count = (uint8_t)slots;
  s->slot_index = (uint8_t)idx;
  s->trimmed_from = 0;
  s->corrupt = 0;
  s->multi_head = slots > 1 ? s : NULL;
  for (unsigned k = 1; k < slots; k++) {
    seg->spans[idx + k].slot_offset = (uint8_t)k;
    seg->spans[idx + k].in_use = 1;
    seg->spans[idx + k].multi_head = s;
  }
}

hk_span* hk_span_new(hk_segment_set* set, unsigned cls, bool warm_only, bool* failed) {
  hk_span* s = hk_segment_take_slots(set, hk_class_slots[cls], warm_only, failed);
  if (s != NULL) span_init(s, cls, set->owner_id);
  return s;
}

bool hk_span_free(hk_segment_set* set, hk_span* s) { return hk_segment_free_slots(set, s); }

/* Takes s's remote list whole: its blocks' count, its last block in *tail;
 * 0 when it is empty or a link is corrupted (reported: hk_freelist_corrupt). */
static uint32_t take_remote(hk_span* s, hk_block** list, hk_block** tail) {
  if (atomic_load_explicit(&s->remote, memory_order_relaxed) == NULL) return 0;
  /* acquire: pairs with the release CAS of the remote push (free.c), so
   * each block's link written by the freeing thread is visible here. */
  *list = atomic_exchange_explicit(&s->remote, NULL, memory_order_acquire);
  if (*list == NULL) return 0;
  return hk_list_walk(s, *list, tail);
}

uint32_t hk_span_collect_remote(hk_span* s) {
  hk_block *list, *tail;
  uint32_t n = take_remote(s, &list, &tail);
  if (n == 0) return 0;
  hk_block_make_free(s, tail, s->free);
  s->free = list;
  s->used -= n;
  return n;
}

bool hk_span_take_remote_if_emptied(hk_span* s) {
  hk_block *list, *tail;
  uint32_t n = take_remote(s, &list, &tail);
  if (n == 0) return false;
  if (n == hk_span_live(s)) return true;
  /* Live blocks remain: the list goes back, ahead of what was pushed since. */
  hk_block* head = atomic_load_explicit(&s->remote, memory_order_relaxed);
  do {
    hk_block_make_free(s, tail, hk_remote_link(head));
  } while (!atomic_compare_exchange_weak_explicit(&s->remote, &head, list, memory_order_release,
                                                  memory_order_relaxed));
  return false;
}

bool hk_span_carve(hk_span* s) {
  size_t left = hk_span_uncarved_bytes(s);
  if (left == 0) return false;
  size_t want = HK_OS_PAGE;
  if (want < s->block_size) want = s->block_size;
  if (want > left) want = left;
  uint32_t n = (uint32_t)(want / s->block_size);
  /* Pages past the live blocks may have been given back by trim. */
  if (!hk_segment_commit_span_bytes(s, s->carved_bytes, s->carved_bytes + n * s->block_size)) return false;
  uint8_t* first = (uint8_t*)s->start + s->carved_bytes;
  HK_VG_CARVE(first, (size_t)n * s->block_size);
  uint8_t* p = first;
  for (uint32_t i = 1; i < n; i++, p += s->block_size) {
    hk_block_make_free(s, (hk_block*)p, (hk_block*)(p + s->block_size));
    if (HK_CHECKED) hk_checked_free(s, (hk_block*)p);
  }
  hk_block_make_free(s, (hk_block*)p, s->free);
  if (HK_CHECKED) hk_checked_free(s, (hk_block*)p);
  s->free = (hk_block*)first;
  /* Atomic store: free() on other threads reads it to validate pointers. */
  __atomic_store_n(&s->carved_bytes, s->carved_bytes + n * s->block_size, __ATOMIC_RELAXED);
  return true;
}

/* A span whose first blocks outlive a burst allocated after them would
 * otherwise keep the whole burst's pages resident until its last block is
 * freed. The free blocks past the last live one leave the free list and
 * count as not carved; carving them again commits their pages. One walk of
 * the free list. */
void hk_span_release_tail(hk_span* s) {
  uint32_t size = s->block_size;
  uint32_t carved = s->carved_bytes / size;
  /* A span holds at most a slot's worth of 16-byte blocks (size_class.c). */
  uint64_t is_free[HK_SLOT_SIZE / 16 / 64] = {0};
  if (carved > 64 * (sizeof(is_free) / sizeof(is_free[0]))) return;
  uint32_t n = 0;
  for (hk_block* b = s->free; b != HK_LIST_END;) {
    uint32_t i = (uint32_t)(((uintptr_t)b - s->start) / size);
    is_free[i / 64] |= (uint64_t)1 << (i % 64);
    hk_block* next = hk_block_link(s, b);
    /* Checked before it is followed; more links than blocks is a cycle. */
    if (hk_unlikely(!hk_link_ok(s, b) || (next != HK_LIST_END && ++n >= carved))) {
      hk_freelist_corrupt(s, b);
      return;
    }
    b = next;
  }
  uint32_t live_end = carved;  /* blocks from here on are all free */
  while (live_end > 0 && (is_free[(live_end - 1) / 64] >> ((live_end - 1) % 64) & 1)) live_end--;
  if (live_end == 0) return;  /* an empty span: retiring it is trim's other step */
  /* Whole pages only: the first page past the last live block. */
  size_t from = ((size_t)live_end * size + HK_OS_PAGE - 1) & ~(size_t)(HK_OS_PAGE - 1);
  if (s->carved_bytes <= from) return;
  uint32_t keep = (uint32_t)(from / size);  /* blocks wholly below that page */
  hk_block* prev = NULL;
  for (hk_block* b = s->free; b != HK_LIST_END;) {
    hk_block* next = hk_block_link(s, b);
    if ((uintptr_t)b - s->start >= (size_t)keep * size) {
      if (prev) hk_block_make_free(s, prev, next); else s->free = next;
    } else {
      prev = b;
    }
    b = next;
  }
  __atomic_store_n(&s->carved_bytes, keep * size, __ATOMIC_RELAXED);
  hk_segment_decommit_span_tail(s, from);
}
