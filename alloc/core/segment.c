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
static hk_segment* hk_cache_head;    /* empty segments, newest first (next links) */
static uint64_t hk_cache_count;
static hk_lock_t hk_abandoned_lock;  /* guards the abandoned list */
static hk_segment* hk_abandoned_head;
static _Atomic uint64_t hk_abandoned_count; /* read without the lock as a hint */

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

/* Returns the oldest cached segment to the backend while the release policy
 * says so. Caller holds hk_cache_lock. */
static void cache_release_old(uint64_t now) {
  while (hk_cache_head != NULL) {
    hk_segment* prev = NULL;
    hk_segment* oldest = hk_cache_head;
    while (oldest->next) { prev = oldest; oldest = oldest->next; }
    uint64_t idle = now - oldest->idle_since_ms;
    if (!hk_active->release->release_oldest(&hk_options.params, hk_cache_count * HK_SEGMENT_SIZE, idle)) return;
    if (prev) prev->next = NULL; else hk_cache_head = NULL;
    hk_cache_count--;
    hk_stat_add(&hk_stat.segments_cached, -1);
    if (!oldest->decommitted) hk_stat_add(&hk_stat.committed_bytes, -(int64_t)HK_SEGMENT_SIZE);
    hk_segmap_set(oldest, HK_SEGMENT_SIZE, HK_MAP_NONE);
    hk_active->backend->release(oldest, HK_SEGMENT_SIZE);
  }
}

void hk_segment_cache_trim(bool all) {
  hk_lock(&hk_cache_lock);
  if (all) {
    while (hk_cache_head) {
      hk_segment* s = hk_cache_head;
      hk_cache_head = s->next;
      hk_cache_count--;
      hk_stat_add(&hk_stat.segments_cached, -1);
      if (!s->decommitted) hk_stat_add(&hk_stat.committed_bytes, -(int64_t)HK_SEGMENT_SIZE);
      hk_segmap_set(s, HK_SEGMENT_SIZE, HK_MAP_NONE);
      hk_active->backend->release(s, HK_SEGMENT_SIZE);
    }
  } else {
    cache_release_old(hk_now_ms());
  }
  hk_unlock(&hk_cache_lock);
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
  if (hk_cache_head) {
    seg = hk_cache_head;
    hk_cache_head = seg->next;
    hk_cache_count--;
    hk_stat_add(&hk_stat.segments_cached, -1);
  }
  hk_unlock(&hk_cache_lock);
  if (seg == NULL) {
    void* mem = NULL;
    if (hk_active->backend->reserve(HK_SEGMENT_SIZE, HK_SEGMENT_SIZE, &mem) != 0) return NULL;
    seg = mem;  /* fresh mappings are zero: every span descriptor is free */
    hk_segmap_set(seg, HK_SEGMENT_SIZE, HK_MAP_SEGMENT);
    hk_stat_add(&hk_stat.committed_bytes, (int64_t)HK_SEGMENT_SIZE);
  } else if (seg->decommitted) {
    hk_stat_add(&hk_stat.committed_bytes, (int64_t)HK_SEGMENT_SIZE);
  }
  /* Every slot maps to itself until a span claims it: free() then reads a
   * descriptor with nothing carved and rejects the pointer. */
  for (unsigned i = 0; i < HK_SLOTS; i++) seg->spans[i].head = &seg->spans[i];
  seg->free_slots = HK_ALL_SPAN_SLOTS;
  seg->used_spans = 0;
  seg->decommitted = 0;
  atomic_store_explicit(&seg->remote_pending, 0, memory_order_relaxed);
  heap_link_segment(heap, seg);
  hk_stat_add(&hk_stat.segments_live, 1);
  return seg;
}

/* An empty segment leaves its heap: into the cache, or back to the OS. */
void hk_segment_release(hk_segment* seg) {
  hk_stat_add(&hk_stat.segments_live, -1);
  seg->heap = NULL;
  hk_decommit_mode mode = hk_active->decommit->on_empty(
      &hk_options.params, HK_SEGMENT_SIZE, (uint64_t)atomic_load_explicit(&hk_stat.committed_bytes, memory_order_relaxed));
  if (mode != HK_DECOMMIT_OFF &&
      hk_active->backend->decommit((uint8_t*)seg + HK_SLOT_SIZE, HK_SEGMENT_SIZE - HK_SLOT_SIZE, mode) == 0) {
    seg->decommitted = 1;
    hk_stat_add(&hk_stat.committed_bytes, -(int64_t)HK_SEGMENT_SIZE);
  }
  seg->idle_since_ms = hk_now_ms();
  hk_lock(&hk_cache_lock);
  seg->next = hk_cache_head;
  hk_cache_head = seg;
  hk_cache_count++;
  hk_stat_add(&hk_stat.segments_cached, 1);
  cache_release_old(seg->idle_since_ms);
  hk_unlock(&hk_cache_lock);
}

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
  s->class_idx = (uint8_t)cls;
  s->slot_offset = 0;
  s->in_use = 1;
  s->block_size = size;
  __atomic_store_n(&s->carved_bytes, 0, __ATOMIC_RELAXED);
  s->div_magic = (((uint64_t)1 << 40) + size - 1) / size;
  s->start = (uintptr_t)seg + ((uintptr_t)idx << HK_SLOT_SHIFT);
  atomic_store_explicit(&s->remote, NULL, memory_order_relaxed);
  atomic_store_explicit(&s->owner, heap, memory_order_relaxed);
  s->next = s->prev = NULL;
  s->capacity = (uint32_t)(((size_t)slots << HK_SLOT_SHIFT) / size);
  s->slot_count = (uint8_t)slots;
  s->slot_index = (uint8_t)idx;
  s->head = s;
  for (unsigned k = 1; k < slots; k++) {
    seg->spans[idx + k].slot_offset = (uint8_t)k;
    seg->spans[idx + k].in_use = 1;
    seg->spans[idx + k].head = s;
  }
}

static hk_span* span_from_owned(hk_heap* heap, unsigned cls) {
  unsigned slots = hk_class_slots[cls];
  for (hk_segment* seg = heap->segments; seg; seg = seg->next) {
    uint64_t m = runs_of(seg->free_slots, slots);
    if (m == 0) continue;
    unsigned idx = (unsigned)__builtin_ctzll(m);
    seg->free_slots &= ~(((1ull << slots) - 1) << idx);
    seg->used_spans++;
    span_init(heap, seg, idx, cls);
    return &seg->spans[idx];
  }
  return NULL;
}

hk_span* hk_segment_alloc_span(hk_heap* heap, unsigned cls) {
  hk_span* s = span_from_owned(heap, cls);
  if (s) return s;
  /* No room: take over segments whose thread exited before mapping more. */
  while (hk_segment_adopt_one(heap)) {
    if ((s = span_from_owned(heap, cls)) != NULL) return s;
  }
  if (hk_segment_acquire(heap) == NULL) return NULL;
  return span_from_owned(heap, cls);
}

bool hk_segment_free_span(hk_heap* heap, hk_span* span) {
  hk_segment* seg = hk_segment_of(span);
  unsigned idx = span->slot_index;
  unsigned slots = span->slot_count;
  size_t bytes = (size_t)slots << HK_SLOT_SHIFT;
  for (unsigned k = 0; k < slots; k++) {
    hk_span* t = &seg->spans[idx + k];
    t->block_size = 0;
    __atomic_store_n(&t->carved_bytes, 0, __ATOMIC_RELAXED);  /* from now on free() rejects pointers into it */
    t->slot_offset = 0;
    t->head = t;
    t->in_use = 0;
    t->free = NULL;
    t->used = 0;
    atomic_store_explicit(&t->owner, NULL, memory_order_relaxed);
  }
  seg->free_slots |= ((1ull << slots) - 1) << idx;  /* slots < 64 */
  seg->used_spans--;
  if (seg->used_spans == 0 && heap != NULL) {
    heap_unlink_segment(heap, seg);
    hk_segment_release(seg);
    return true;
  }
  hk_decommit_mode mode = hk_active->decommit->on_empty(
      &hk_options.params, bytes, (uint64_t)atomic_load_explicit(&hk_stat.committed_bytes, memory_order_relaxed));
  if (mode != HK_DECOMMIT_OFF) hk_active->backend->decommit((void*)span->start, bytes, mode);
  return false;
}

/* ---- abandonment ------------------------------------------------------- */
void hk_segment_abandon(hk_segment* seg) {
  for (unsigned i = 1; i < HK_SLOTS; i++) {
    hk_span* s = &seg->spans[i];
    if (s->in_use && s->slot_offset == 0) atomic_store_explicit(&s->owner, NULL, memory_order_relaxed);
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
    atomic_store_explicit(&s->owner, heap, memory_order_relaxed);
    if (hk_span_adopt(heap, s)) break;  /* the span was its last: segment released */
    i += slots - 1u;
  }
  return true;
}

uint64_t hk_abandoned_segments(void) {
  return atomic_load_explicit(&hk_abandoned_count, memory_order_relaxed);
}
