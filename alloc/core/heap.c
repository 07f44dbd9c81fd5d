#include "alloc/core/heap.h"

#include <string.h>

#include "alloc/core/clock.h"
#include "alloc/core/error.h"
#include "alloc/core/options.h"
#include "alloc/core/os.h"
#include "alloc/core/prof.h"
#include "alloc/core/reclaim.h"

#define HK_EMPTY_CURRENT_8 &hk_span_empty, &hk_span_empty, &hk_span_empty, &hk_span_empty, \
                           &hk_span_empty, &hk_span_empty, &hk_span_empty, &hk_span_empty
hk_heap hk_heap_empty = {
    .current = {HK_EMPTY_CURRENT_8, HK_EMPTY_CURRENT_8, HK_EMPTY_CURRENT_8, HK_EMPTY_CURRENT_8,
                HK_EMPTY_CURRENT_8, HK_EMPTY_CURRENT_8, HK_EMPTY_CURRENT_8, HK_EMPTY_CURRENT_8,
                HK_EMPTY_CURRENT_8, HK_EMPTY_CURRENT_8, HK_EMPTY_CURRENT_8, HK_EMPTY_CURRENT_8},
    .is_live = false,
};
_Static_assert(HK_CLASSES == 12 * 8, "hk_heap_empty initializer covers every class");

HK_TLS hk_thread_words hk_tls = {.heap = &hk_heap_empty};

/* Bumped by hk_heaps_request_trim; a heap whose trim_epoch differs trims
 * itself on its next allocation slow path. */
static _Atomic uint64_t hk_trim_epoch;

void hk_heap_init(hk_heap* heap, uintptr_t owner_id) {
  memset(heap, 0, sizeof(*heap));
  for (unsigned c = 0; c < HK_CLASSES; c++) heap->current[c] = &hk_span_empty;
  heap->segments.owner_id = owner_id;
  heap->trim_epoch = atomic_load_explicit(&hk_trim_epoch, memory_order_relaxed);
  heap->is_live = true;
  heap->lock = (hk_lock_t)HK_LOCK_INIT(HK_LOCK_HEAP);
  atomic_store_explicit(&heap->active_ms, hk_now_ms(), memory_order_relaxed);
}

/* ---- the current span ---------------------------------------------------- */
/* A current span with at most params.span_keep_kb carved is kept when it
 * empties whatever the decommit policy says (span_keep_empty): that bounds
 * what every class of every thread keeps. */
static inline bool span_carved_little(const hk_span* s) {
  return s->carved_bytes <= hk_options.params.span_keep_kb << 10;
}

/* The span malloc pops from holds one count of its own in `used` while at
 * most span_keep_kb of it is carved: free()'s fast path leaves for
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

/* ---- span bookkeeping ------------------------------------------------------- */
/* Carves fresh blocks into s; a span carved past the keep bound loses its
 * pin, so emptying it is the policy's call again. */
static bool span_carve(hk_span* s) {
  if (!hk_span_carve(s)) return false;
  if (!span_carved_little(s)) span_unpin(s);
  return true;
}

/* ---- per-thread counters ------------------------------------------------------
 * Switching on: every span of the heap gets the owner tag (prof.h), so
 * free()'s fast path leaves each free into them to the counted path, and
 * the thread's sampling budget moves aside (prof.h), so each of its
 * allocations comes to the counted slow path; the counters start at 0.
 * Switching off: the spans get the plain owner back, and the budget
 * returns to malloc. */
void hk_heap_count_sync(hk_heap* heap) {
  bool on = !hk_tls.counts_on;
  hk_tls.counts_on = on;
  /* The sampling budget moves where the counted slow path spends it. */
  uint64_t* from = on ? &hk_tls.sample_budget : &hk_tls.counts_budget;
  uint64_t* to = on ? &hk_tls.counts_budget : &hk_tls.sample_budget;
  *to = *from;
  *from = 0;
  if (heap->is_live) {
    hk_lock(&heap->lock);
    hk_segment_set_owner(&heap->segments, hk_count_owner_id());
    hk_unlock(&heap->lock);
  }
  hk_tls.counts_freed = 0;
  hk_tls.counts_allocated = 0;
}

/* A span with no free block goes to the full list; it comes back when its
 * owner frees into it (flag seen by free) or when a scan of remote frees finds
 * blocks in it. */
static void span_mark_full(hk_heap* heap, hk_span* s) {
  hk_span_list_remove(&heap->avail[s->class_idx], s);
  s->used |= HK_USED_FULL;
  hk_span_list_push_back(&heap->full[s->class_idx], s);
}

static void span_unmark_full(hk_heap* heap, hk_span* s) {
  hk_span_list_remove(&heap->full[s->class_idx], s);
  s->used &= ~HK_USED_FULL;
  hk_span_list_push_back(&heap->avail[s->class_idx], s);
}

/* Takes s, whose free list hk_freelist_corrupt cut (HAKMEM_ON_ERROR=warn),
 * off the heap's lists for good: it never allocates again. Its blocks'
 * later frees leak (hk_heap_free_local_slow; the full flag sends them
 * there), and no remote free into it is collected again: nothing it held
 * can be handed out twice. */
static void span_quarantine(hk_heap* heap, hk_span* s) {
  if (s->corrupt != HK_CORRUPT_CUT) return;
  unsigned cls = s->class_idx;
  hk_span_list_remove(hk_span_is_full(s) ? &heap->full[cls] : &heap->avail[cls], s);
  s->used |= HK_USED_FULL;
  s->corrupt = HK_CORRUPT_OFF_LISTS;
  sync_current(heap, cls);
}

/* Returns true when the span's segment was released with it. */
static bool span_retire(hk_heap* heap, hk_span* s) {
  unsigned cls = s->class_idx;
  hk_span_list_remove(hk_span_is_full(s) ? &heap->full[cls] : &heap->avail[cls], s);
  s->used &= ~HK_USED_FULL;
  sync_current(heap, cls);
  return hk_span_free(&heap->segments, s);
}

/* An empty span goes back to its segment, except the one malloc pops from:
 * a class that oscillates around one span must not pay span setup (and,
 * under a resident target, madvise plus page faults) on every cycle. Kept
 * whatever the decommit policy says while at most span_keep_kb of it was
 * ever carved; a larger one goes back when the policy wants memory now, so
 * a freed burst does not leave every class's big last span resident. */
static bool span_keep_empty(hk_heap* heap, hk_span* s) {
  return heap->current[s->class_idx] == s &&
         (span_carved_little(s) ||
          hk_os_decommit_wanted((size_t)s->slot_count << HK_SLOT_SHIFT) == 0);
}

/* Brings a span back to where its state says it belongs after remote blocks
 * were collected into it. Returns true when its segment was released. The
 * current span of its class stays, however far it was carved: other
 * threads emptied it while this one still allocates that class (a thread
 * whose blocks others free empties its current span again and again), and
 * retiring it would cost a new span and often a segment through the shared
 * cache for the very next malloc. A local free that empties it is still
 * the decommit policy's call (span_keep_empty). */
static bool span_refile(hk_heap* heap, hk_span* s) {
  unsigned cls = s->class_idx;
  if (hk_span_live(s) == 0 && heap->current[cls] != s) return span_retire(heap, s);
  if (hk_span_is_full(s) && hk_span_has_free(s)) {
    span_unmark_full(heap, s);
    sync_current(heap, cls);
  }
  return false;
}

/* Scans this heap's segments for remote frees. Without force, only segments
 * whose remote_pending hint is set. Returns true if any block was collected. */
static bool heap_collect_remote(hk_heap* heap, bool force) {
  bool any = false;
  hk_segment* seg = heap->segments.head;
  while (seg) {
    hk_segment* next = seg->next;  /* seg may be released below */
    if (force || atomic_load_explicit(&seg->remote_pending, memory_order_relaxed)) {
      atomic_store_explicit(&seg->remote_pending, 0, memory_order_relaxed);
      for (unsigned i = 1; i < HK_SLOTS;) {
        hk_span* s = &seg->spans[i];
        if (!s->in_use) { i++; continue; }
        unsigned slots = s->slot_count;
        if (!s->corrupt && hk_span_collect_remote(s)) {
          any = true;
          if (span_refile(heap, s)) break;  /* the segment is gone: stop reading it */
        }
        if (hk_unlikely(s->corrupt == HK_CORRUPT_CUT)) span_quarantine(heap, s);
        i += slots;
      }
    }
    seg = next;
  }
  return any;
}

static void heap_release_span_tails(hk_heap* heap) {
  for (unsigned cls = 0; cls < HK_CLASSES; cls++) {
    hk_span_list* lists[2] = {&heap->avail[cls], &heap->full[cls]};
    for (int k = 0; k < 2; k++) {
      for (hk_span* s = lists[k]->head; s;) {
        hk_span* next = s->next;  /* s may be quarantined (corrupted list) */
        hk_span_release_tail(s);
        if (hk_unlikely(s->corrupt == HK_CORRUPT_CUT)) span_quarantine(heap, s);
        s = next;
      }
    }
  }
}

static void heap_collect(hk_heap* heap, bool force) {
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

void hk_heap_collect(hk_heap* heap, bool force) {
  if (!heap->is_live) return;
  hk_lock(&heap->lock);
  heap_collect(heap, force);
  hk_unlock(&heap->lock);
}

/* A fresh span of class cls, from memory that costs the fewest page faults
 * and mappings: committed slots of the heap's own segments, then segments
 * whose thread exited (adopted, with the blocks freed into them), then an
 * empty segment still committed from the segment cache, then untouched
 * slots of its own segments, and only then a new mapping. NULL when the
 * backend has no memory. */
bool (*hk_heap_release_parked)(void);

static bool heap_adopt_one(hk_heap* heap);

static hk_span* heap_new_span(hk_heap* heap, unsigned cls) {
  hk_segment_set* set = &heap->segments;
  bool failed = false;
  hk_span* s = hk_span_new(set, cls, true, &failed);
  if (s || failed) return s;
  do {
    while (heap_adopt_one(heap)) {
      if ((s = hk_span_new(set, cls, true, &failed)) != NULL || failed) return s;
    }
    /* Heaps of exited threads that no new thread took over are abandoned
     * memory too, before an empty segment or a fresh mapping. */
  } while (hk_heap_release_parked != NULL && hk_heap_release_parked());
  if (hk_segment_acquire_cached(set) != NULL) return hk_span_new(set, cls, false, &failed);
  if ((s = hk_span_new(set, cls, false, &failed)) != NULL || failed) return s;
  if (hk_segment_acquire(set) == NULL) return NULL;
  return hk_span_new(set, cls, false, &failed);
}

/* Idle heaps' memory that remote frees emptied is given back before a heap
 * grows (hk_heap_reclaim_idle), at most once per params.heap_idle_ms in the
 * process: a scan walks every live heap. */
void (*hk_heap_reclaim_idle)(hk_heap* self, uint64_t now_ms);
static _Atomic uint64_t hk_idle_scan_ms;

static void heap_growing(hk_heap* heap, uint64_t now) {
  uint64_t idle = hk_options.params.heap_idle_ms;
  if (idle == 0 || hk_heap_reclaim_idle == NULL) return;
  uint64_t last = atomic_load_explicit(&hk_idle_scan_ms, memory_order_relaxed);
  if (now >= last && now - last < idle) return;
  if (!atomic_compare_exchange_strong_explicit(&hk_idle_scan_ms, &last, now, memory_order_relaxed,
                                               memory_order_relaxed))
    return;  /* another heap scans now */
  hk_heap_reclaim_idle(heap, now);
}

static void heap_trim(hk_heap* heap);

/* The span the block of class cls comes from, made current, with a free
 * block; NULL when the backend has no memory. Heap lock held. */
static hk_span* alloc_slow_span(hk_heap* heap, unsigned cls) {
  heap->refills++;
  uint64_t now = hk_now_ms();
  atomic_store_explicit(&heap->active_ms, now, memory_order_relaxed);
  /* Another thread called hk_trim/malloc_trim: give back what this heap
   * holds empty before taking more (one relaxed load per refill). */
  if (hk_unlikely(heap->trim_epoch != atomic_load_explicit(&hk_trim_epoch, memory_order_relaxed))) heap_trim(heap);
  for (int round = 0; round < 4; round++) {
    hk_span* s;
    while ((s = heap->avail[cls].head) != NULL) {
      if (!hk_span_has_free(s)) hk_span_collect_remote(s);
      if (hk_unlikely(s->corrupt)) {
        span_quarantine(heap, s);
        continue;
      }
      if (!hk_span_has_free(s) && hk_span_uncarved_bytes(s) != 0 && s->next != NULL && hk_span_has_free(s->next)) {
        /* Blocks freed into another span first, fresh memory once the next
         * span has none: the carved (resident) part of a class then follows
         * its highest live count, not the span malloc happened to be on, so
         * RSS does not creep over a long run. */
        hk_span_list_remove(&heap->avail[cls], s);
        hk_span_list_push_back(&heap->avail[cls], s);
        continue;
      }
      if (!hk_span_has_free(s) && hk_span_uncarved_bytes(s) != 0) {
        heap_growing(heap, now);
        span_carve(s);
      }
      if (hk_span_has_free(s)) {
        set_current(heap, cls, s);
        return s;
      }
      span_mark_full(heap, s);
    }
    sync_current(heap, cls);
    /* Out of spans for this class: blocks freed by other threads are cheaper
     * than fresh memory. */
    if (heap_collect_remote(heap, false) && heap->avail[cls].head) continue;
    heap_growing(heap, now);
    s = heap_new_span(heap, cls);
    if (s == NULL) return NULL;
    /* Adoption inside heap_new_span may already have filed spans of this
     * class; put the fresh one first either way. */
    hk_span_list_push_front(&heap->avail[cls], s);
    sync_current(heap, cls);
  }
  return NULL;
}

void* hk_heap_alloc_slow(hk_heap* heap, unsigned cls) {
  hk_lock(&heap->lock);
  hk_span* s = alloc_slow_span(heap, cls);
  hk_unlock(&heap->lock);
  /* Outside the lock: a corrupted list (warn mode) is cut and the block
   * comes from this function again (hk_span_refill), which quarantines the
   * span. s is current: no other thread touches it. */
  return s != NULL ? hk_span_pop(s) : NULL;
}

void hk_heap_free_local_slow(hk_heap* heap, hk_span* s, hk_block* b, const char* func) {
  hk_lock(&heap->lock);
  if (hk_unlikely(s->corrupt)) {  /* quarantined (span_quarantine): leak it */
    hk_unlock(&heap->lock);
    return;
  }
  if (hk_span_live(s) == 0) {
    hk_unlock(&heap->lock);
    hk_misuse("double free", b, func);
    return;  /* HAKMEM_ON_ERROR=warn: leave the free list as it is */
  }
  hk_block_make_free(s, b, s->free);
  s->free = b;
  s->used--;
  if (hk_span_is_full(s)) span_unmark_full(heap, s);
  if (hk_span_live(s) == 0 && !span_keep_empty(heap, s)) span_retire(heap, s);
  else sync_current(heap, s->class_idx);
  hk_unlock(&heap->lock);
  hk_reclaim_poke();  /* the heap is consistent again and no lock is held */
}

/* Files one span of a freshly adopted segment into this heap. Returns true
 * when the span was empty and its segment was released with it. */
static bool heap_adopt_span(hk_heap* heap, hk_span* s) {
  atomic_store_explicit(&s->owner, heap->segments.owner_id, memory_order_relaxed);
  if (!s->corrupt) hk_span_collect_remote(s);
  if (hk_unlikely(s->corrupt)) {
    s->corrupt = HK_CORRUPT_OFF_LISTS;  /* never filed: it stays off the lists */
    return false;
  }
  s->used &= ~HK_USED_FULL;
  s->next = s->prev = NULL;
  if (s->used == 0) return hk_span_free(&heap->segments, s);
  bool has_blocks = hk_span_has_free(s) || s->carved_bytes < s->capacity * s->block_size;
  if (has_blocks) {
    hk_span_list_push_back(&heap->avail[s->class_idx], s);
  } else {
    s->used |= HK_USED_FULL;
    hk_span_list_push_back(&heap->full[s->class_idx], s);
  }
  sync_current(heap, s->class_idx);
  return false;
}

static bool heap_adopt_one(hk_heap* heap) {
  hk_segment* seg = hk_segment_adopt_one(&heap->segments);
  if (seg == NULL) return false;
  for (unsigned i = 1; i < HK_SLOTS; i++) {
    hk_span* s = &seg->spans[i];
    if (!s->in_use || s->slot_offset != 0) continue;
    unsigned slots = s->slot_count;
    if (heap_adopt_span(heap, s)) break;  /* the span was its last: segment released */
    i += slots - 1u;
  }
  return true;
}

bool hk_heap_adopt_one(hk_heap* heap) {
  hk_lock(&heap->lock);
  bool adopted = heap_adopt_one(heap);
  hk_unlock(&heap->lock);
  return adopted;
}

void hk_heap_park(hk_heap* heap) {
  /* The current spans stay current, pinned, empty or not: the next thread
   * starts on them, and the segments they hold stay out of the shared
   * caches. */
  hk_lock(&heap->lock);
  heap_collect_remote(heap, true);
  hk_segment_set_owner(&heap->segments, 0);
  heap->is_live = false;
  hk_unlock(&heap->lock);
}

void hk_heap_unpark(hk_heap* heap, uintptr_t owner_id) {
  hk_segment_set_owner(&heap->segments, owner_id);
  heap->is_live = true;
  heap->trim_epoch = atomic_load_explicit(&hk_trim_epoch, memory_order_relaxed);
}

void hk_heap_abandon(hk_heap* heap) {
  /* The adopter files every span afresh (heap_adopt_span): none is
   * current or pinned any more, and an empty one goes back. */
  for (unsigned cls = 0; cls < HK_CLASSES; cls++) {
    span_unpin(heap->current[cls]);
    heap->current[cls] = &hk_span_empty;
    heap->avail[cls].head = heap->avail[cls].tail = NULL;
    heap->full[cls].head = heap->full[cls].tail = NULL;
  }
  hk_segment_abandon_all(&heap->segments);
}

/* Faults in what the prewarm policy asks for, never more than prewarm_kb. */
static void heap_prewarm(hk_heap* heap) {
  uint64_t budget = hk_options.params.prewarm_kb << 10;
  for (unsigned cls = 0; cls < HK_CLASSES && budget > 0; cls++) {
    size_t want = hk_active->prewarm->thread_bytes(&hk_options.params, hk_class_size[cls]);
    if (want == 0) continue;
    if (want > budget) want = (size_t)budget;
    hk_span* s = heap_new_span(heap, cls);
    if (s == NULL) return;
    hk_span_list_push_front(&heap->avail[cls], s);
    sync_current(heap, cls);
    while (s->carved_bytes < want && span_carve(s)) {}
    budget -= s->carved_bytes < budget ? s->carved_bytes : budget;
  }
}

void hk_heap_prewarm(hk_heap* heap) {
  hk_lock(&heap->lock);
  heap_prewarm(heap);
  hk_unlock(&heap->lock);
}

static void heap_trim(hk_heap* heap) {
  heap->trim_epoch = atomic_load_explicit(&hk_trim_epoch, memory_order_relaxed);
  /* Remote frees in, empty spans out: segments left without a span go to
   * the segment cache, which the caller's trim empties. */
  heap_collect(heap, true);
  heap_release_span_tails(heap);
  for (hk_segment* seg = heap->segments.head; seg; seg = seg->next) hk_segment_decommit_free_slots(seg);
  hk_aged_trim_all();
}

void hk_heap_trim(hk_heap* heap) {
  hk_lock(&heap->lock);
  heap_trim(heap);
  hk_unlock(&heap->lock);
}

/* ---- idle heaps ------------------------------------------------------------- */
void hk_heap_give_back_emptied(hk_heap* heap) {
  if (!hk_trylock(&heap->lock)) return;
  if (heap->is_live) {
    /* Segments whose free slots to decommit once every span is done, so a
     * segment that loses several spans is advised once. */
    hk_segment* touched[HK_SLOTS];
    unsigned n = 0;
    for (unsigned cls = 0; cls < HK_CLASSES; cls++) {
      for (hk_span* s = heap->full[cls].head; s;) {
        hk_span* next = s->next;
        if (!s->corrupt && hk_span_take_remote_if_emptied(s)) {
          hk_segment* seg = hk_segment_of(s);
          hk_span_list_remove(&heap->full[cls], s);
          s->used = 0;
          bool released = hk_span_free(&heap->segments, s);
          unsigned i = 0;
          while (i < n && touched[i] != seg) i++;
          if (released) {
            if (i < n) touched[i] = touched[--n];  /* in the segment cache now: not ours to advise */
          } else if (i == n) {
            if (n == HK_SLOTS) hk_segment_decommit_free_slots(touched[--n]);
            touched[n++] = seg;
          }
        }
        s = next;
      }
    }
    while (n > 0) hk_segment_decommit_free_slots(touched[--n]);
  }
  hk_unlock(&heap->lock);
}

void hk_heaps_request_trim(void) { atomic_fetch_add_explicit(&hk_trim_epoch, 1, memory_order_relaxed); }
