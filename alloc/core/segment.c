/* Segments: 4 MiB units of memory a heap owns, the slot allocator inside
 * them, the segmap that says which addresses are hakmem's, the cache of empty
 * segments and the list of abandoned ones (their thread exited).
 *
 * Called on slow paths only: a heap needs a new span, a span became empty, a
 * thread exited. The global lists take a spin lock; a heap touches them once
 * per 4 MiB, not per allocation. */
#include <string.h>
#include <time.h>

#include "alloc/core/internal.h"
#include "alloc/core/options.h"
#include "alloc/core/stats_internal.h"

uint8_t hk_segmap[HK_SEGMAP_ENTRIES];

void hk_segmap_set(void* base, size_t size, unsigned kind) {
  uintptr_t first = (uintptr_t)base >> HK_SEGMENT_SHIFT;
  uintptr_t count = (size + HK_SEGMENT_MASK) >> HK_SEGMENT_SHIFT;
  for (uintptr_t i = 0; i < count; i++) {
    unsigned k = (i > 0 && kind == HK_MAP_LARGE) ? HK_MAP_LARGE_TAIL : kind;
    __atomic_store_n(&hk_segmap[first + i], (uint8_t)k, __ATOMIC_RELAXED);
  }
}

uint64_t hk_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- global lists ------------------------------------------------------ */
static hk_lock_t hk_cache_lock;      /* guards the cache list */
static hk_segment* hk_cache_newest;  /* empty segments, newest first (next links toward older) */
static hk_segment* hk_cache_oldest;  /* its other end (prev links toward newer) */
static hk_lock_t hk_abandoned_lock;  /* guards the abandoned list */
static hk_segment* hk_abandoned_head;
static _Atomic uint64_t hk_abandoned_count; /* read without the lock as a hint */
/* When the oldest cached segment is due for release by time (monotonic ms;
 * 0: nothing waits). Written under hk_cache_lock, read without it by
 * hk_release_tick. */
static _Atomic uint64_t hk_cache_due_ms;

void hk_segments_lock(bool lock, bool reinit) {
  if (lock) {
    hk_lock(&hk_cache_lock);
    hk_lock(&hk_abandoned_lock);
  } else if (reinit) {
    atomic_store_explicit(&hk_cache_lock.state, 0, memory_order_relaxed);
    atomic_store_explicit(&hk_abandoned_lock.state, 0, memory_order_relaxed);
  } else {
    hk_unlock(&hk_abandoned_lock);
    hk_unlock(&hk_cache_lock);
  }
}

/* ---- commit accounting -------------------------------------------------- */
/* committed_bytes counts, per segment, the header's pages and every span
 * slot not marked in decommitted_slots (the rest of slot 0 is never
 * touched), less the pages trim took from a slot that keeps live blocks
 * (hk_span.trimmed_from). A fresh segment marks all span slots (untouched
 * memory is not resident), span setup commits the slots it takes, decommit
 * marks them again. So the decommit policy sees what may really be
 * resident, and stops paying madvise once the program is back under its
 * resident target. */
static inline uint64_t slot_run(unsigned first, unsigned count) {
  return (((uint64_t)1 << count) - 1) << first;  /* count < 64 */
}

#define HK_SEGMENT_HEADER_BYTES ((sizeof(hk_segment) + HK_OS_PAGE - 1) / HK_OS_PAGE * HK_OS_PAGE)

static inline uint64_t segment_committed(const hk_segment* seg) {
  uint64_t span_slots = (uint64_t)__builtin_popcountll(HK_ALL_SPAN_SLOTS & ~seg->decommitted_slots);
  return HK_SEGMENT_HEADER_BYTES + (span_slots << HK_SLOT_SHIFT);
}

/* Decommits slots first..first+count-1 if any of them is still committed. */
static void slots_decommit(hk_segment* seg, unsigned first, unsigned count, hk_decommit_mode mode) {
  uint64_t run = slot_run(first, count);
  uint64_t committed = run & ~seg->decommitted_slots;
  if (committed == 0) return;
  if (hk_active->backend->decommit((uint8_t*)seg + ((size_t)first << HK_SLOT_SHIFT), (size_t)count << HK_SLOT_SHIFT, mode) != 0)
    return;  /* still resident: counted as committed */
  seg->decommitted_slots |= run;
  hk_stat_add(&hk_stat.committed_bytes, -((int64_t)__builtin_popcountll(committed) << HK_SLOT_SHIFT));
}

/* Makes slots first..first+count-1 usable. False if the backend refused. */
static bool slots_commit(hk_segment* seg, unsigned first, unsigned count) {
  uint64_t run = slot_run(first, count);
  uint64_t decommitted = run & seg->decommitted_slots;
  if (decommitted == 0) return true;
  if (hk_active->backend->commit((uint8_t*)seg + ((size_t)first << HK_SLOT_SHIFT), (size_t)count << HK_SLOT_SHIFT) != 0)
    return false;
  seg->decommitted_slots &= ~run;
  hk_stat_add(&hk_stat.committed_bytes, (int64_t)__builtin_popcountll(decommitted) << HK_SLOT_SHIFT);
  return true;
}

/* The part of the slot holding `from` that lies at or past it. */
static inline size_t slot_rest(size_t from) { return (HK_SLOT_SIZE - (from & (HK_SLOT_SIZE - 1))) & (HK_SLOT_SIZE - 1); }

/* Pages trim took from the slot a span shares with live blocks count as
 * committed again, as that slot's bit says: for a span leaving its slots, or
 * before a new trim decides afresh. */
static void span_forget_trimmed(hk_span* s) {
  if (s->trimmed_from == 0) return;
  hk_stat_add(&hk_stat.committed_bytes, (int64_t)slot_rest(s->trimmed_from));
  s->trimmed_from = 0;
}

void hk_segment_decommit_span_tail(hk_span* s, size_t from) {
  hk_segment* seg = hk_segment_of(s);
  size_t part = slot_rest(from);
  span_forget_trimmed(s);
  if (part != 0) {
    /* Pages inside a slot that stays committed (its first pages hold live
     * blocks): the slot bit cannot say it, the span remembers it. */
    if (hk_active->backend->decommit((uint8_t*)s->start + from, part, HK_DECOMMIT_DONTNEED) == 0) {
      s->trimmed_from = (uint32_t)from;
      hk_stat_add(&hk_stat.committed_bytes, -(int64_t)part);
    }
  }
  unsigned first = (unsigned)((from + part) >> HK_SLOT_SHIFT);
  if (first < s->slot_count) slots_decommit(seg, s->slot_index + first, s->slot_count - first, HK_DECOMMIT_DONTNEED);
}

bool hk_segment_commit_span_bytes(hk_span* s, size_t from, size_t to) {
  if (s->trimmed_from != 0 && to > s->trimmed_from) {
    size_t part = slot_rest(s->trimmed_from);
    if (hk_active->backend->commit((uint8_t*)s->start + s->trimmed_from, part) != 0) return false;
    s->trimmed_from = 0;
    hk_stat_add(&hk_stat.committed_bytes, (int64_t)part);
  }
  unsigned first = (unsigned)(from >> HK_SLOT_SHIFT);
  unsigned last = (unsigned)((to - 1) >> HK_SLOT_SHIFT);
  return slots_commit(hk_segment_of(s), s->slot_index + first, last - first + 1);
}

bool hk_segment_decommit_free_slots(hk_segment* seg) {
  /* Every free slot, committed or not: a slot decommitted with MADV_FREE is
   * still resident until the kernel needs the memory, and trim promises RSS
   * falls now. One madvise per run of free slots. */
  uint64_t todo = seg->free_slots & HK_ALL_SPAN_SLOTS;
  bool any = false;
  while (todo) {
    unsigned first = (unsigned)__builtin_ctzll(todo);
    unsigned count = (unsigned)__builtin_ctzll(~(todo >> first));  /* run length; todo has bit 63 at most */
    if (first + count > HK_SLOTS) count = HK_SLOTS - first;
    uint64_t run = slot_run(first, count);
    uint64_t committed = run & ~seg->decommitted_slots;
    if (hk_active->backend->decommit((uint8_t*)seg + ((size_t)first << HK_SLOT_SHIFT), (size_t)count << HK_SLOT_SHIFT,
                                     HK_DECOMMIT_DONTNEED) == 0) {
      seg->decommitted_slots |= run;
      hk_stat_add(&hk_stat.committed_bytes, -((int64_t)__builtin_popcountll(committed) << HK_SLOT_SHIFT));
      any = true;
    }
    todo &= ~run;
  }
  return any;
}

/* ---- segment cache ------------------------------------------------------ */
/* All cache_ helpers run under hk_cache_lock. */
/* Adds seg as the newest entry, or as the oldest (a segment the backend
 * would not unmap goes back where it was). */
static void cache_push(hk_segment* seg, bool oldest) {
  if (oldest) {
    seg->next = NULL;
    seg->prev = hk_cache_oldest;
    if (hk_cache_oldest) hk_cache_oldest->next = seg; else hk_cache_newest = seg;
    hk_cache_oldest = seg;
  } else {
    seg->prev = NULL;
    seg->next = hk_cache_newest;
    if (hk_cache_newest) hk_cache_newest->prev = seg; else hk_cache_oldest = seg;
    hk_cache_newest = seg;
  }
  hk_stat_add(&hk_stat.segments_cached, 1);
  hk_stat_add(&hk_stat.cached_bytes, (int64_t)HK_SEGMENT_SIZE);
}

static void cache_unlink(hk_segment* seg) {
  if (seg->prev) seg->prev->next = seg->next; else hk_cache_newest = seg->next;
  if (seg->next) seg->next->prev = seg->prev; else hk_cache_oldest = seg->prev;
  seg->next = seg->prev = NULL;
  hk_stat_add(&hk_stat.segments_cached, -1);
  hk_stat_add(&hk_stat.cached_bytes, -(int64_t)HK_SEGMENT_SIZE);
}

uint64_t hk_release_due_ms(uint64_t idle_since_ms) {
  uint64_t hold = hk_active->release->hold_ms(&hk_options.params);
  if (hold == HK_HOLD_FOREVER || hold > UINT64_MAX - 1 - idle_since_ms) return 0;
  uint64_t due = idle_since_ms + hold;
  return due != 0 ? due : 1;  /* 0 would read as "nothing waits" */
}

/* Recomputes when the oldest entry is due, for hk_release_tick. */
static void cache_update_due(void) {
  uint64_t due = hk_cache_oldest ? hk_release_due_ms(hk_cache_oldest->idle_since_ms) : 0;
  atomic_store_explicit(&hk_cache_due_ms, due, memory_order_relaxed);
}

/* Gives a segment back to the backend. On failure it stays mapped and
 * visible in the segmap, and the caller keeps it. */
static bool segment_unmap(hk_segment* seg) {
  /* Clear the segmap first: from here on free() rejects pointers into it
   * without reading memory that is about to disappear. */
  hk_segmap_set(seg, HK_SEGMENT_SIZE, HK_MAP_NONE);
  hk_stats_segment_unmapping(seg);  /* waits for a statistics walk reading it */
  uint64_t committed = segment_committed(seg);
  if (hk_active->backend->release(seg, HK_SEGMENT_SIZE) != 0) {
    hk_segmap_set(seg, HK_SEGMENT_SIZE, HK_MAP_SEGMENT);
    hk_stats_segment_mapped(seg);
    return false;
  }
  hk_stat_add(&hk_stat.committed_bytes, -(int64_t)committed);
  return true;
}

/* The release policy's verdict on the oldest entry of either cache (empty
 * segments here, large mappings in large.c), given when it went idle. */
bool hk_release_wanted(uint64_t idle_since_ms, uint64_t now) {
  uint64_t idle = now > idle_since_ms ? now - idle_since_ms : 0;
  uint64_t cached = (uint64_t)atomic_load_explicit(&hk_stat.cached_bytes, memory_order_relaxed);
  return hk_active->release->release_oldest(&hk_options.params, cached, idle);
}

/* Returns the oldest cached segments to the backend: all of them, or while
 * the release policy says so. Stops at the first the backend refuses (it
 * stays cached, oldest, for the next try). */
static void cache_release_old(uint64_t now, bool all) {
  while (hk_cache_oldest != NULL) {
    hk_segment* oldest = hk_cache_oldest;
    if (!all) {
      if (!hk_release_wanted(oldest->idle_since_ms, now)) break;
    }
    cache_unlink(oldest);
    if (!segment_unmap(oldest)) {
      cache_push(oldest, true);
      break;
    }
  }
  cache_update_due();
}

void hk_segment_cache_trim(bool all) {
  uint64_t now = all ? 0 : hk_now_ms();
  hk_lock(&hk_cache_lock);
  cache_release_old(now, all);
  hk_unlock(&hk_cache_lock);
}

void hk_release_tick(uint64_t now) {
  uint64_t seg_due = atomic_load_explicit(&hk_cache_due_ms, memory_order_relaxed);
  uint64_t large_due = atomic_load_explicit(&hk_large_due_ms, memory_order_relaxed);
  uint64_t arena_due = atomic_load_explicit(&hk_arena_due_ms, memory_order_relaxed);
  if (seg_due == 0 && large_due == 0 && arena_due == 0) return;
  if (now == 0) now = hk_now_ms();
  if (seg_due != 0 && now >= seg_due) {
    hk_lock(&hk_cache_lock);
    cache_release_old(now, false);
    hk_unlock(&hk_cache_lock);
  }
  if (large_due != 0 && now >= large_due) hk_large_release_due(now);
  if (arena_due != 0 && now >= arena_due) hk_arena_release_due(now);
}

static void heap_link_segment(hk_heap* heap, hk_segment* seg) {
  seg->heap = heap;
  seg->prev = NULL;
  seg->next = heap->segments;
  if (heap->segments) heap->segments->prev = seg;
  heap->segments = seg;
  heap->segment_count++;
}

static void heap_unlink_segment(hk_heap* heap, hk_segment* seg) {
  if (seg->prev) seg->prev->next = seg->next; else heap->segments = seg->next;
  if (seg->next) seg->next->prev = seg->prev;
  seg->next = seg->prev = NULL;
  heap->segment_count--;
}

hk_segment* hk_segment_acquire(hk_heap* heap) {
  hk_segment* seg = NULL;
  hk_lock(&hk_cache_lock);
  if (hk_cache_newest) {
    /* Newest first: the most likely to be still resident and cache-warm. */
    seg = hk_cache_newest;
    cache_unlink(seg);
    cache_update_due();
  }
  hk_unlock(&hk_cache_lock);
  if (seg == NULL) {
    void* mem = NULL;
    if (hk_active->backend->reserve(HK_SEGMENT_SIZE, HK_SEGMENT_SIZE, &mem) != 0) return NULL;
    seg = mem;  /* fresh mappings are zero: every span descriptor is free */
    seg->decommitted_slots = HK_ALL_SPAN_SLOTS;  /* untouched: only the header will be resident */
    hk_segmap_set(seg, HK_SEGMENT_SIZE, HK_MAP_SEGMENT);
    hk_stat_add(&hk_stat.committed_bytes, (int64_t)HK_SEGMENT_HEADER_BYTES);
    hk_stats_segment_mapped(seg);
  }
  /* Every slot is its own descriptor until a multi-slot span claims it:
   * free() then reads a descriptor with nothing carved and rejects the
   * pointer. */
  for (unsigned i = 0; i < HK_SLOTS; i++) seg->spans[i].multi_head = NULL;
  seg->free_slots = HK_ALL_SPAN_SLOTS;
  seg->used_spans = 0;
  atomic_store_explicit(&seg->remote_pending, 0, memory_order_relaxed);
  heap_link_segment(heap, seg);
  hk_stat_add(&hk_stat.segments_live, 1);
  return seg;
}

/* An empty segment leaves its heap: into the cache, or back to the OS. */
void hk_segment_release(hk_segment* seg) {
  hk_stat_add(&hk_stat.segments_live, -1);
  seg->heap = NULL;
  uint64_t span_bytes = segment_committed(seg) - HK_SEGMENT_HEADER_BYTES;
  if (span_bytes != 0) {
    hk_decommit_mode mode = hk_decommit_wanted(span_bytes);
    /* One call for the whole span area: slots already decommitted in it are
     * harmless to advise again. */
    if (mode != HK_DECOMMIT_OFF) slots_decommit(seg, 1, HK_SLOTS - 1, mode);
  }
  seg->idle_since_ms = hk_now_ms();
  hk_lock(&hk_cache_lock);
  cache_push(seg, false);
  cache_release_old(seg->idle_since_ms, false);
  hk_unlock(&hk_cache_lock);
}

/* Empty slots a live segment keeps committed before span retirement starts
 * decommitting (at most 256 KiB per 4 MiB segment stays resident; two slots
 * cost lean's example service 1 MB more peak RSS at the same rate). */
#define HK_WARM_FREE_SLOTS 1

/* Finds `slots` consecutive free slots: bit i of the result means slots
 * i..i+slots-1 are all free. */
static inline uint64_t runs_of(uint64_t free, unsigned slots) {
  uint64_t m = free;
  for (unsigned k = 1; k < slots; k++) m &= free >> k;
  return m;
}

static void span_init(hk_heap* heap, hk_segment* seg, unsigned idx, unsigned cls) {
  unsigned slots = hk_class_slots[cls];
  uint32_t size = hk_class_size[cls];
  hk_span* s = &seg->spans[idx];
  s->free = NULL;
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
  atomic_store_explicit(&s->owner, heap->owner_id, memory_order_relaxed);
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

/* A span of class cls from a segment the heap owns; NULL when none has room
 * or, with *failed set, when the backend would not commit the slots. */
static hk_span* span_from_owned(hk_heap* heap, unsigned cls, bool* failed) {
  unsigned slots = hk_class_slots[cls];
  for (hk_segment* seg = heap->segments; seg; seg = seg->next) {
    uint64_t m = runs_of(seg->free_slots, slots);
    if (m == 0) continue;
    /* Prefer slots still committed: reusing them costs no page faults. */
    uint64_t warm = runs_of(seg->free_slots & ~seg->decommitted_slots, slots);
    unsigned idx = (unsigned)__builtin_ctzll(warm ? warm : m);
    if (!slots_commit(seg, idx, slots)) {
      /* An owned segment without spans would never be released (that
       * happens when its last span goes): give it back now. */
      if (seg->used_spans == 0) {
        heap_unlink_segment(heap, seg);
        hk_segment_release(seg);
      }
      *failed = true;
      return NULL;
    }
    seg->free_slots &= ~slot_run(idx, slots);
    seg->used_spans++;
    span_init(heap, seg, idx, cls);
    return &seg->spans[idx];
  }
  return NULL;
}

hk_span* hk_segment_alloc_span(hk_heap* heap, unsigned cls) {
  bool failed = false;
  hk_span* s = span_from_owned(heap, cls, &failed);
  if (s || failed) return s;
  /* No room: take over segments whose thread exited before mapping more. */
  while (hk_segment_adopt_one(heap)) {
    if ((s = span_from_owned(heap, cls, &failed)) != NULL || failed) return s;
  }
  if (hk_segment_acquire(heap) == NULL) return NULL;
  return span_from_owned(heap, cls, &failed);
}

hk_decommit_mode hk_decommit_wanted_after(size_t bytes, uint64_t gone) {
  uint64_t committed = (uint64_t)atomic_load_explicit(&hk_stat.committed_bytes, memory_order_relaxed);
  return hk_active->decommit->on_empty(&hk_options.params, bytes, committed > gone ? committed - gone : 0);
}

hk_decommit_mode hk_decommit_wanted(size_t bytes) { return hk_decommit_wanted_after(bytes, 0); }

bool hk_segment_free_span(hk_heap* heap, hk_span* span) {
  hk_segment* seg = hk_segment_of(span);
  unsigned idx = span->slot_index;
  unsigned slots = span->slot_count;
  span_forget_trimmed(span);
  for (unsigned k = 0; k < slots; k++) {
    hk_span* t = &seg->spans[idx + k];
    t->block_size = 0;
    __atomic_store_n(&t->carved_bytes, 0, __ATOMIC_RELAXED);  /* from now on free() rejects pointers into it */
    t->slot_offset = 0;
    t->multi_head = NULL;
    t->in_use = 0;
    t->free = NULL;
    t->used = 0;
    t->pinned = 0;
    atomic_store_explicit(&t->owner, 0, memory_order_relaxed);
  }
  seg->free_slots |= slot_run(idx, slots);
  seg->used_spans--;
  bool released = false;
  if (seg->used_spans == 0 && heap != NULL) {
    heap_unlink_segment(heap, seg);
    hk_segment_release(seg);
    released = true;
  } else if (__builtin_popcountll(seg->free_slots & ~seg->decommitted_slots) > HK_WARM_FREE_SLOTS) {
    /* Hysteresis: a segment keeps a few empty slots committed, so a heap
     * whose spans empty and refill (a working set near the resident target)
     * does not pay madvise plus refaults on every cycle. */
    hk_decommit_mode mode = hk_decommit_wanted((size_t)slots << HK_SLOT_SHIFT);
    if (mode != HK_DECOMMIT_OFF) slots_decommit(seg, idx, slots, mode);
  }
  hk_release_tick(0);
  return released;
}

/* ---- abandonment ------------------------------------------------------- */
void hk_segment_abandon(hk_segment* seg) {
  for (unsigned i = 1; i < HK_SLOTS; i++) {
    hk_span* s = &seg->spans[i];
    if (s->in_use && s->slot_offset == 0) atomic_store_explicit(&s->owner, 0, memory_order_relaxed);
  }
  seg->heap = NULL;
  hk_lock(&hk_abandoned_lock);
  seg->prev = NULL;
  seg->next = hk_abandoned_head;
  hk_abandoned_head = seg;
  atomic_fetch_add_explicit(&hk_abandoned_count, 1, memory_order_relaxed);
  hk_unlock(&hk_abandoned_lock);
}

bool hk_segment_adopt_one(hk_heap* heap) {
  if (atomic_load_explicit(&hk_abandoned_count, memory_order_relaxed) == 0) return false;
  hk_lock(&hk_abandoned_lock);
  hk_segment* seg = hk_abandoned_head;
  if (seg) {
    hk_abandoned_head = seg->next;
    atomic_fetch_sub_explicit(&hk_abandoned_count, 1, memory_order_relaxed);
  }
  hk_unlock(&hk_abandoned_lock);
  if (seg == NULL) return false;
  /* The lock orders everything the exited thread wrote before us. */
  seg->next = seg->prev = NULL;
  heap_link_segment(heap, seg);
  for (unsigned i = 1; i < HK_SLOTS; i++) {
    hk_span* s = &seg->spans[i];
    if (!s->in_use || s->slot_offset != 0) continue;
    unsigned slots = s->slot_count;
    atomic_store_explicit(&s->owner, heap->owner_id, memory_order_relaxed);
    if (hk_span_adopt(heap, s)) break;  /* the span was its last: segment released */
    i += slots - 1u;
  }
  return true;
}

uint64_t hk_abandoned_segments(void) {
  return atomic_load_explicit(&hk_abandoned_count, memory_order_relaxed);
}
