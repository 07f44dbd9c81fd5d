/* The allocation slow path and span bookkeeping inside a heap: collecting
 * blocks other threads freed, carving fresh blocks lazily, moving spans
 * between a class's available and full lists, retiring empty spans.
 *
 * Everything here runs on the owning thread; the only shared state it touches
 * is each span's remote list (atomic exchange) and each segment's
 * remote_pending hint. */
#include "alloc/core/alloc_inline.h"
#include "alloc/core/internal.h"
#include "alloc/core/options.h"

/* ---- span lists --------------------------------------------------------- */
static void list_remove(hk_span_list* l, hk_span* s) {
  if (s->prev) s->prev->next = s->next; else l->head = s->next;
  if (s->next) s->next->prev = s->prev; else l->tail = s->prev;
  s->next = s->prev = NULL;
}

static void list_push_front(hk_span_list* l, hk_span* s) {
  s->prev = NULL;
  s->next = l->head;
  if (l->head) l->head->prev = s; else l->tail = s;
  l->head = s;
}

static void list_push_back(hk_span_list* l, hk_span* s) {
  s->next = NULL;
  s->prev = l->tail;
  if (l->tail) l->tail->next = s; else l->head = s;
  l->tail = s;
}

/* A current span with at most this much carved is kept when it empties
 * whatever the decommit policy says (span_keep_empty): 64 KiB per class, a
 * quarter of a slot, bounds what every class of every thread keeps. */
#define HK_SPAN_KEEP_CARVED ((uint32_t)64 << 10)
static inline bool span_carved_little(const hk_span* s) { return s->carved_bytes <= HK_SPAN_KEEP_CARVED; }

/* The span malloc pops from holds one count of its own in `used` while at
 * most HK_SPAN_KEEP_CARVED of it is carved: free()'s fast path leaves for
 * the slow one when a span is about to empty (`used` below 2), and the
 * current span of a class with few live blocks empties all the time (a
 * program that mallocs and frees one block in turn empties it on every
 * free). Such a span is kept when it empties anyway (span_keep_empty), so
 * the slow path had nothing to do; with the extra count it is not taken. A
 * span carved further goes back to the slow path on emptying, where the
 * decommit policy may retire it. hk_span_live() subtracts the count. */
static void span_pin(hk_span* s) {
  if (s->pinned || s == &hk_span_empty || !span_carved_little(s)) return;
  s->pinned = 1;
  s->used++;
}

static void span_unpin(hk_span* s) {
  if (!s->pinned) return;
  s->pinned = 0;
  s->used--;
}

/* Makes s (a span of avail[cls], or the empty span) the one malloc pops
 * from. Slow paths only. */
static void set_current(hk_heap* heap, unsigned cls, hk_span* s) {
  hk_span* old = heap->current[cls];
  if (old == s) return;
  span_unpin(old);
  heap->current[cls] = s;
  span_pin(s);
}

/* current[cls] always mirrors the head of avail[cls] (or the empty span), so
 * the fast path needs no NULL check. */
static inline void sync_current(hk_heap* heap, unsigned cls) {
  hk_span* head = heap->avail[cls].head;
  set_current(heap, cls, head ? head : &hk_span_empty);
}

/* ---- block supply ------------------------------------------------------- */
/* The link of free block b, for slow paths that walk a list (b is no-access
 * to memcheck between uses). */
static inline hk_block* block_link(hk_block* b) {
  HK_VG_LINK_OPEN(b);
  hk_block* next = hk_block_next(b);
  HK_VG_LINK_CLOSE(b);
  return next;
}

/* Takes the blocks other threads freed into this span. Each link is
 * checked before it is followed (freelist.c); a corrupted one is reported,
 * and under HAKMEM_ON_ERROR=warn leaves s corrupt with nothing collected
 * (the caller quarantines it if it is on its heap's lists). */
static uint32_t span_collect_remote(hk_span* s) {
  if (atomic_load_explicit(&s->remote, memory_order_relaxed) == NULL) return 0;
  /* acquire: pairs with the release CAS in hk_free_remote, so each block's
   * next link written by the freeing thread is visible here. */
  hk_block* list = atomic_exchange_explicit(&s->remote, NULL, memory_order_acquire);
  if (list == NULL) return 0;
  uint32_t n = 1;
  hk_block* tail = list;
  for (;;) {
    hk_block* next = block_link(tail);
    if (next == NULL) break;
    /* More links than the span has blocks: a cycle. */
    if (hk_unlikely(!hk_link_ok(s, next) || n >= s->capacity)) {
      hk_freelist_corrupt(s, tail);
      return 0;
    }
    tail = next;
    n++;
  }
  hk_block_make_free(tail, s->free);
  s->free = list;
  s->used -= n;
  return n;
}

static size_t span_uncarved_bytes(const hk_span* s) {
  return (size_t)s->capacity * s->block_size - s->carved_bytes;
}

/* Carves up to one OS page of not-yet-used blocks (at least one block), so a
 * span only becomes resident as far as it is used. */
static bool span_carve(hk_span* s) {
  size_t left = span_uncarved_bytes(s);
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
    hk_block_make_free((hk_block*)p, (hk_block*)(p + s->block_size));
    if (HK_CHECKED) hk_checked_free(s, (hk_block*)p);
  }
  hk_block_make_free((hk_block*)p, s->free);
  if (HK_CHECKED) hk_checked_free(s, (hk_block*)p);
  s->free = (hk_block*)first;
  /* Atomic store: free() on other threads reads it to validate pointers. */
  __atomic_store_n(&s->carved_bytes, s->carved_bytes + n * s->block_size, __ATOMIC_RELAXED);
  if (!span_carved_little(s)) span_unpin(s);  /* emptying it is the policy's call again */
  return true;
}

/* A span with no free block goes to the full list; it comes back when its
 * owner frees into it (flag seen by free) or when a scan of remote frees finds
 * blocks in it. */
static void span_mark_full(hk_heap* heap, hk_span* s) {
  list_remove(&heap->avail[s->class_idx], s);
  s->used |= HK_USED_FULL;
  list_push_back(&heap->full[s->class_idx], s);
}

static void span_unmark_full(hk_heap* heap, hk_span* s) {
  list_remove(&heap->full[s->class_idx], s);
  s->used &= ~HK_USED_FULL;
  list_push_back(&heap->avail[s->class_idx], s);
}

/* Takes s, whose free list hk_freelist_corrupt cut (HAKMEM_ON_ERROR=warn),
 * off its heap's lists for good: it never allocates again. Its blocks' later
 * frees leak (hk_span_free_local_slow; the full flag sends them there), and
 * no remote free into it is collected again: nothing it held can be handed
 * out twice. */
void hk_span_quarantine(hk_heap* heap, hk_span* s) {
  if (s->corrupt != HK_CORRUPT_CUT) return;
  unsigned cls = s->class_idx;
  list_remove(hk_span_is_full(s) ? &heap->full[cls] : &heap->avail[cls], s);
  s->used |= HK_USED_FULL;
  s->corrupt = HK_CORRUPT_OFF_LISTS;
  sync_current(heap, cls);
}

/* Returns true when the span's segment was released with it. */
static bool span_retire(hk_heap* heap, hk_span* s) {
  unsigned cls = s->class_idx;
  list_remove(hk_span_is_full(s) ? &heap->full[cls] : &heap->avail[cls], s);
  s->used &= ~HK_USED_FULL;
  sync_current(heap, cls);
  return hk_segment_free_span(heap, s);
}

/* An empty span goes back to its segment, except the one malloc pops from:
 * a class that oscillates around one span must not pay span setup (and,
 * under a resident target, madvise plus page faults) on every cycle. Kept
 * whatever the decommit policy says while at most HK_SPAN_KEEP_CARVED of it
 * was ever carved; a larger one goes back when the policy wants memory now,
 * so a freed burst does not leave every class's big last span resident.
 * Measured on the example service under lean: keeping every current span
 * ran 425k requests/s at 35 MB peak RSS, retiring every large one 340k at
 * 28 MB, retiring all of them 150k at 21 MB. */
static bool span_keep_empty(hk_heap* heap, hk_span* s) {
  return heap->current[s->class_idx] == s &&
         (span_carved_little(s) ||
          hk_decommit_wanted((size_t)s->slot_count << HK_SLOT_SHIFT) == HK_DECOMMIT_OFF);
}

/* Brings a span back to where its state says it belongs after remote blocks
 * were collected into it. Returns true when its segment was released. */
static bool span_refile(hk_heap* heap, hk_span* s) {
  unsigned cls = s->class_idx;
  if (hk_span_live(s) == 0 && !span_keep_empty(heap, s)) return span_retire(heap, s);
  if (hk_span_is_full(s) && s->free != NULL) {
    span_unmark_full(heap, s);
    sync_current(heap, cls);
  }
  return false;
}

/* Scans this heap's segments for remote frees. Without force, only segments
 * whose remote_pending hint is set. Returns true if any block was collected. */
static bool heap_collect_remote(hk_heap* heap, bool force) {
  bool any = false;
  hk_segment* seg = heap->segments;
  while (seg) {
    hk_segment* next = seg->next;  /* seg may be released below */
    if (force || atomic_load_explicit(&seg->remote_pending, memory_order_relaxed)) {
      atomic_store_explicit(&seg->remote_pending, 0, memory_order_relaxed);
      for (unsigned i = 1; i < HK_SLOTS;) {
        hk_span* s = &seg->spans[i];
        if (!s->in_use) { i++; continue; }
        unsigned slots = s->slot_count;
        if (!s->corrupt && span_collect_remote(s)) {
          any = true;
          if (span_refile(heap, s)) break;  /* the segment is gone: stop reading it */
        }
        if (hk_unlikely(s->corrupt == HK_CORRUPT_CUT)) hk_span_quarantine(heap, s);
        i += slots;
      }
    }
    seg = next;
  }
  return any;
}

/* Gives back the pages of s past its last live block: a span whose first
 * blocks outlive a burst allocated after them would otherwise keep the whole
 * burst's pages resident until its last block is freed. The free blocks
 * there leave the free list and count as not carved; carving them again
 * commits their pages. Owner only; for trim (one walk of the free list). */
static void span_release_tail(hk_heap* heap, hk_span* s) {
  uint32_t size = s->block_size;
  uint32_t carved = s->carved_bytes / size;
  /* A span holds at most a slot's worth of 16-byte blocks (size_class.c). */
  uint64_t is_free[HK_SLOT_SIZE / 16 / 64] = {0};
  if (carved > 64 * (sizeof(is_free) / sizeof(is_free[0]))) return;
  uint32_t n = 0;
  for (hk_block* b = s->free; b != NULL;) {
    uint32_t i = (uint32_t)(((uintptr_t)b - s->start) / size);
    is_free[i / 64] |= (uint64_t)1 << (i % 64);
    hk_block* next = block_link(b);
    /* Checked before it is followed; more links than blocks is a cycle. */
    if (next != NULL && hk_unlikely(!hk_link_ok(s, next) || ++n >= carved)) {
      hk_freelist_corrupt(s, b);
      hk_span_quarantine(heap, s);
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
  for (hk_block* b = s->free; b != NULL;) {
    hk_block* next = block_link(b);
    if ((uintptr_t)b - s->start >= (size_t)keep * size) {
      if (prev) hk_block_make_free(prev, next); else s->free = next;
    } else {
      prev = b;
    }
    b = next;
  }
  __atomic_store_n(&s->carved_bytes, keep * size, __ATOMIC_RELAXED);
  hk_segment_decommit_span_tail(s, from);
}

void hk_heap_release_span_tails(hk_heap* heap) {
  for (unsigned cls = 0; cls < HK_CLASSES; cls++) {
    hk_span_list* lists[2] = {&heap->avail[cls], &heap->full[cls]};
    for (int k = 0; k < 2; k++) {
      for (hk_span* s = lists[k]->head; s;) {
        hk_span* next = s->next;  /* s may be quarantined (corrupted list) */
        span_release_tail(heap, s);
        s = next;
      }
    }
  }
}

void hk_heap_collect(hk_heap* heap, bool force) {
  if (!heap->is_live) return;
  heap_collect_remote(heap, force);
  /* Empty spans kept as current go back too: collect means "tidy up". */
  for (unsigned cls = 0; cls < HK_CLASSES; cls++) {
    hk_span* s = heap->avail[cls].head;
    while (s) {
      hk_span* next = s->next;
      if (hk_span_live(s) == 0) span_retire(heap, s);
      s = next;
    }
  }
}

void* hk_alloc_class_slow(hk_heap* heap, unsigned cls) {
  heap->refills++;
  /* Another thread called hk_trim/malloc_trim: give back what this heap
   * holds empty before taking more (one relaxed load per refill). */
  if (hk_unlikely(heap->trim_epoch != atomic_load_explicit(&hk_trim_epoch, memory_order_relaxed))) hk_heap_trim(heap);
  for (int round = 0; round < 4; round++) {
    hk_span* s;
    while ((s = heap->avail[cls].head) != NULL) {
      if (s->free == NULL) span_collect_remote(s);
      if (hk_unlikely(s->corrupt)) {
        hk_span_quarantine(heap, s);
        continue;
      }
      if (s->free == NULL && span_uncarved_bytes(s) != 0 && s->next != NULL && s->next->free != NULL) {
        /* Blocks freed into another span first, fresh memory once the next
         * span has none: the carved (resident) part of a class then follows
         * its highest live count, not the span malloc happened to be on. A
         * soak at ws=8192 grew RSS 13.5% over its run with carving first,
         * 2.6% with this (mimalloc 3.3%). */
        list_remove(&heap->avail[cls], s);
        list_push_back(&heap->avail[cls], s);
        continue;
      }
      if (s->free == NULL) span_carve(s);
      if (s->free != NULL) {
        set_current(heap, cls, s);
        /* A corrupted list (HAKMEM_ON_ERROR=warn) quarantines s and takes
         * the block from this function again. */
        return hk_span_pop(s);
      }
      span_mark_full(heap, s);
    }
    sync_current(heap, cls);
    /* Out of spans for this class: blocks freed by other threads are cheaper
     * than fresh memory. */
    if (heap_collect_remote(heap, false) && heap->avail[cls].head) continue;
    s = hk_segment_alloc_span(heap, cls);
    if (s == NULL) return NULL;
    /* Adoption inside hk_segment_alloc_span may already have filed spans of
     * this class; put the fresh one first either way. */
    list_push_front(&heap->avail[cls], s);
    sync_current(heap, cls);
  }
  return NULL;
}

void hk_span_free_local_slow(hk_heap* heap, hk_span* s, hk_block* b, const char* func) {
  if (hk_unlikely(s->corrupt)) return;  /* quarantined (hk_span_quarantine): leak it */
  if (hk_span_live(s) == 0) {
    hk_misuse("double free", b, func);
    return;  /* HAKMEM_ON_ERROR=warn: leave the free list as it is */
  }
  hk_block_make_free(b, s->free);
  s->free = b;
  s->used--;
  if (hk_span_is_full(s)) span_unmark_full(heap, s);
  if (hk_span_live(s) == 0 && !span_keep_empty(heap, s)) span_retire(heap, s);
  else sync_current(heap, s->class_idx);
}

/* Files one span of a freshly adopted segment into this heap. Returns true
 * when the span was empty and its segment was released with it. */
bool hk_span_adopt(hk_heap* heap, hk_span* s) {
  if (!s->corrupt) span_collect_remote(s);
  if (hk_unlikely(s->corrupt)) {
    s->corrupt = HK_CORRUPT_OFF_LISTS;  /* never filed: it stays off the lists */
    return false;
  }
  s->used &= ~HK_USED_FULL;
  s->next = s->prev = NULL;
  if (s->used == 0) return hk_segment_free_span(heap, s);
  bool has_blocks = s->free != NULL || s->carved_bytes < s->capacity * s->block_size;
  if (has_blocks) {
    list_push_back(&heap->avail[s->class_idx], s);
  } else {
    s->used |= HK_USED_FULL;
    list_push_back(&heap->full[s->class_idx], s);
  }
  sync_current(heap, s->class_idx);
  return false;
}

/* Thread exit: return what is empty, abandon what still holds live blocks so
 * another thread adopts it (and the blocks freed into it) later. */
void hk_heap_release_all(hk_heap* heap) {
  heap_collect_remote(heap, true);
  for (unsigned cls = 0; cls < HK_CLASSES; cls++) {
    set_current(heap, cls, &hk_span_empty);
    hk_span_list* lists[2] = {&heap->avail[cls], &heap->full[cls]};
    for (int k = 0; k < 2; k++) {
      hk_span* s = lists[k]->head;
      while (s) {
        hk_span* next = s->next;
        s->next = s->prev = NULL;
        s->used &= ~HK_USED_FULL;
        if (s->used == 0) hk_segment_free_span(heap, s);
        s = next;
      }
      lists[k]->head = lists[k]->tail = NULL;
    }
  }
  while (heap->segments) {
    hk_segment* seg = heap->segments;
    heap->segments = seg->next;
    heap->segment_count--;
    seg->next = seg->prev = NULL;
    hk_segment_abandon(seg);
  }
}

/* Faults in what the prewarm policy asks for, never more than prewarm_kb. */
void hk_heap_prewarm(hk_heap* heap) {
  uint64_t budget = hk_options.params.prewarm_kb << 10;
  for (unsigned cls = 0; cls < HK_CLASSES && budget > 0; cls++) {
    size_t want = hk_active->prewarm->thread_bytes(&hk_options.params, cls, hk_class_size[cls]);
    if (want == 0) continue;
    if (want > budget) want = (size_t)budget;
    hk_span* s = hk_segment_alloc_span(heap, cls);
    if (s == NULL) return;
    list_push_front(&heap->avail[cls], s);
    sync_current(heap, cls);
    while (s->carved_bytes < want && span_carve(s)) {}
    budget -= s->carved_bytes < budget ? s->carved_bytes : budget;
  }
}
