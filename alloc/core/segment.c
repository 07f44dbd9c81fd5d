#include "alloc/core/segment.h"

#include "alloc/core/clock.h"
#include "alloc/core/counters.h"
#include "alloc/core/options.h"
#include "alloc/core/os.h"

/* ---- commit accounting -------------------------------------------------- */
/* A segment counts as committed: the header's pages and every span slot not
 * marked in decommitted_slots (the rest of slot 0 is never touched), less
 * the pages trim took from a slot that keeps live blocks
 * (hk_span.trimmed_from). A fresh segment marks all span slots (untouched
 * memory is not resident), taking slots commits them, decommit marks them
 * again. So the decommit policy sees what may really be resident. */
static inline uint64_t slot_run(unsigned first, unsigned count) {
  return (((uint64_t)1 << count) - 1) << first;  /* count < 64 */
}

#define HK_SEGMENT_HEADER_BYTES ((sizeof(hk_segment) + HK_OS_PAGE - 1) / HK_OS_PAGE * HK_OS_PAGE)

/* decommitted_slots: each bit is changed by one party at a time (the owner
 * for slots it holds, the free-slot cache for slots waiting there), but
 * they share the word, so every change is an atomic read-modify-write. */
static inline uint64_t decommitted(const hk_segment* seg) {
  return __atomic_load_n(&seg->decommitted_slots, __ATOMIC_RELAXED);
}
static inline void mark_decommitted(hk_segment* seg, uint64_t run) {
  __atomic_fetch_or(&seg->decommitted_slots, run, __ATOMIC_RELAXED);
}
static inline void mark_committed(hk_segment* seg, uint64_t run) {
  __atomic_fetch_and(&seg->decommitted_slots, ~run, __ATOMIC_RELAXED);
}

/* Bytes of the slots in run that are committed. */
static inline uint64_t run_committed(const hk_segment* seg, uint64_t run) {
  return (uint64_t)__builtin_popcountll(run & ~decommitted(seg)) << HK_SLOT_SHIFT;
}

static inline uint64_t segment_committed(const hk_segment* seg) {
  return HK_SEGMENT_HEADER_BYTES + run_committed(seg, HK_ALL_SPAN_SLOTS);
}

static inline void* slot_addr(hk_segment* seg, unsigned slot) { return (uint8_t*)seg + ((size_t)slot << HK_SLOT_SHIFT); }

/* touched[]: relaxed atomics, as its writers differ (see segment.h). */
static inline uint32_t touched_of(const hk_segment* seg, unsigned slot) {
  return __atomic_load_n(&seg->touched[slot], __ATOMIC_RELAXED);
}
static inline void touched_set(hk_segment* seg, unsigned slot, uint32_t bytes) {
  __atomic_store_n(&seg->touched[slot], bytes, __ATOMIC_RELAXED);
}
static void touched_clear(hk_segment* seg, uint64_t run) {
  for (; run; run &= run - 1) touched_set(seg, (unsigned)__builtin_ctzll(run), 0);
}

/* Bytes from the start of slot `first` that may be resident and follow
 * each other without a gap, over at most `count` slots: what a span placed
 * there carves without a page fault. */
static size_t resident_prefix(const hk_segment* seg, unsigned first, unsigned count) {
  size_t bytes = 0;
  for (unsigned k = 0; k < count; k++) {
    uint32_t t = touched_of(seg, first + k);
    bytes += t;
    if (t < HK_SLOT_SIZE) break;
  }
  return bytes;
}

/* Decommits slots first..first+count-1 if any of them is still committed. */
static bool slots_decommit(hk_segment* seg, unsigned first, unsigned count, hk_decommit_mode mode) {
  uint64_t run = slot_run(first, count);
  size_t counted = run_committed(seg, run);
  if (counted == 0) return true;
  if (hk_os_decommit(slot_addr(seg, first), (size_t)count << HK_SLOT_SHIFT, mode, counted) != 0)
    return false;  /* still resident: counted as committed */
  mark_decommitted(seg, run);
  touched_clear(seg, run);
  return true;
}

/* Makes slots first..first+count-1 usable. False if the backend refused. */
static bool slots_commit(hk_segment* seg, unsigned first, unsigned count) {
  uint64_t run = slot_run(first, count);
  uint64_t cold = run & decommitted(seg);
  if (cold == 0) return true;
  size_t counted = (size_t)__builtin_popcountll(cold) << HK_SLOT_SHIFT;
  if (hk_os_commit(slot_addr(seg, first), (size_t)count << HK_SLOT_SHIFT, counted) != 0) return false;
  mark_committed(seg, run);
  return true;
}

/* ---- the cache of free slots --------------------------------------------- */
/* A retired span's slots wait here, committed, so a span taken again within
 * the release delay costs no syscall and no page fault; past it they are
 * decommitted with the variant's mode. The owner takes slots out (under the
 * lock) when it reuses them; any thread may sweep the cache. */
static bool slot_run_decommit(hk_aged_entry* e);
static hk_aged_cache hk_free_slot_cache = HK_AGED_CACHE_KIND("free slots", slot_run_decommit, NULL, HK_LOCK_FREE_SLOTS);

#define run_of_entry(e) ((hk_slot_run*)(e))
_Static_assert(offsetof(hk_slot_run, age) == 0, "a run is found from its entry");

/* Adds slots [first, first + count) as one cached run, if any is committed. */
static void cache_run(hk_segment* seg, unsigned first, unsigned count, uint64_t since) {
  uint64_t bytes = run_committed(seg, slot_run(first, count));
  if (bytes == 0) return;
  hk_slot_run* r = &seg->runs[first];
  r->first = (uint8_t)first;
  r->count = (uint8_t)count;
  seg->cached_heads |= (uint64_t)1 << first;
  hk_aged_push(&hk_free_slot_cache, &r->age, bytes, since);
}

/* Takes every cached run overlapping `slots` out of the cache; the parts of
 * them outside `slots` go back in with their age. Lock held. */
static void uncache_runs(hk_segment* seg, uint64_t slots) {
  for (uint64_t heads = seg->cached_heads; heads; heads &= heads - 1) {
    unsigned first = (unsigned)__builtin_ctzll(heads);
    hk_slot_run* r = &seg->runs[first];
    uint64_t run = slot_run(r->first, r->count);
    if ((run & slots) == 0) continue;
    uint64_t since = r->age.since_ms;
    unsigned end = (unsigned)r->first + r->count;
    hk_aged_remove(&hk_free_slot_cache, &r->age);
    seg->cached_heads &= ~((uint64_t)1 << first);
    /* What is left on either side of `slots` stays cached as its own run. */
    unsigned lo = first, hi = first;
    while (hi < end && !((slots >> hi) & 1)) hi++;
    if (hi > lo) cache_run(seg, lo, hi - lo, since);
    lo = hi;
    while (lo < end && ((slots >> lo) & 1)) lo++;
    if (lo < end) cache_run(seg, lo, end - lo, since);
  }
}

/* The free-slot cache's give_back: decommits a run whose time has come. */
static bool slot_run_decommit(hk_aged_entry* e) {
  hk_slot_run* r = run_of_entry(e);
  hk_segment* seg = hk_segment_of(r);
  if (!slots_decommit(seg, r->first, r->count, hk_os_decommit_mode())) return false;
  seg->cached_heads &= ~((uint64_t)1 << r->first);
  return true;
}

/* The part of the slot holding `from` that lies at or past it. */
static inline size_t slot_rest(size_t from) { return (HK_SLOT_SIZE - (from & (HK_SLOT_SIZE - 1))) & (HK_SLOT_SIZE - 1); }

/* Pages trim took from the slot a span shares with live blocks count as
 * committed again, as that slot's bit says: for a span leaving its slots, or
 * before a new trim decides afresh. Nothing is called: the pages simply count
 * again, as the next touch commits them. */
static void span_forget_trimmed(hk_span* s) {
  if (s->trimmed_from == 0) return;
  hk_stat_add(&hk_stat.committed_bytes, (int64_t)slot_rest(s->trimmed_from));
  s->trimmed_from = 0;
}

void hk_segment_decommit_span_tail(hk_span* s, size_t from) {
  hk_segment* seg = hk_segment_of(s);
  size_t part = slot_rest(from);
  span_forget_trimmed(s);
  /* Pages inside a slot that stays committed (its first pages hold live
   * blocks): the slot bit cannot say it, the span remembers it. */
  if (part != 0 && hk_os_decommit((uint8_t*)s->start + from, part, HK_DECOMMIT_DONTNEED, part) == 0) {
    s->trimmed_from = (uint32_t)from;
    unsigned slot = s->slot_index + (unsigned)(from >> HK_SLOT_SHIFT);
    uint32_t kept = (uint32_t)(from & (HK_SLOT_SIZE - 1));
    if (touched_of(seg, slot) > kept) touched_set(seg, slot, kept);
  }
  unsigned first = (unsigned)((from + part) >> HK_SLOT_SHIFT);
  if (first < s->slot_count) slots_decommit(seg, s->slot_index + first, s->slot_count - first, HK_DECOMMIT_DONTNEED);
}

bool hk_segment_commit_span_bytes(hk_span* s, size_t from, size_t to) {
  if (s->trimmed_from != 0 && to > s->trimmed_from) {
    size_t part = slot_rest(s->trimmed_from);
    if (hk_os_commit((uint8_t*)s->start + s->trimmed_from, part, part) != 0) return false;
    s->trimmed_from = 0;
  }
  unsigned first = (unsigned)(from >> HK_SLOT_SHIFT);
  unsigned last = (unsigned)((to - 1) >> HK_SLOT_SHIFT);
  return slots_commit(hk_segment_of(s), s->slot_index + first, last - first + 1);
}

bool hk_segment_decommit_free_slots(hk_segment* seg) {
  /* Every free slot, committed or not: a slot decommitted with MADV_FREE is
   * still resident until the kernel needs the memory, and trim promises RSS
   * falls now. One madvise per run of free slots. */
  hk_aged_lock(&hk_free_slot_cache);
  uncache_runs(seg, HK_ALL_SPAN_SLOTS);
  uint64_t todo = seg->free_slots & HK_ALL_SPAN_SLOTS;
  bool any = false;
  while (todo) {
    unsigned first = (unsigned)__builtin_ctzll(todo);
    unsigned count = (unsigned)__builtin_ctzll(~(todo >> first));  /* run length; todo has bit 63 at most */
    if (first + count > HK_SLOTS) count = HK_SLOTS - first;
    uint64_t run = slot_run(first, count);
    if (hk_os_decommit(slot_addr(seg, first), (size_t)count << HK_SLOT_SHIFT, HK_DECOMMIT_DONTNEED,
                       run_committed(seg, run)) == 0) {
      mark_decommitted(seg, run);
      touched_clear(seg, run);
      any = true;
    }
    todo &= ~run;
  }
  hk_aged_unlock(&hk_free_slot_cache);
  return any;
}

/* ---- registry ------------------------------------------------------------ */
/* Every mapped segment (owned, abandoned or cached), linked through
 * all_next/all_prev. A segment joins when it is mapped and leaves before it
 * is unmapped, both under hk_registry_lock; a walk holds the same lock, so
 * an unmap waits for it and the walk never reads unmapped memory. Lock
 * order: the segment cache's lock (held around unmaps) before this one. */
static hk_lock_t hk_registry_lock = HK_LOCK_INIT(HK_LOCK_REGISTRY);
static hk_segment* hk_registry;

static void registry_add(hk_segment* seg) {
  hk_lock(&hk_registry_lock);
  seg->all_prev = NULL;
  seg->all_next = hk_registry;
  if (hk_registry) hk_registry->all_prev = seg;
  hk_registry = seg;
  hk_unlock(&hk_registry_lock);
}

static void registry_remove(hk_segment* seg) {
  hk_lock(&hk_registry_lock);
  if (seg->all_prev) seg->all_prev->all_next = seg->all_next; else hk_registry = seg->all_next;
  if (seg->all_next) seg->all_next->all_prev = seg->all_prev;
  seg->all_next = seg->all_prev = NULL;
  hk_unlock(&hk_registry_lock);
}

void hk_segments_walk(void (*fn)(hk_segment* seg, void* arg), void* arg) {
  hk_lock(&hk_registry_lock);
  for (hk_segment* seg = hk_registry; seg; seg = seg->all_next) fn(seg, arg);
  hk_unlock(&hk_registry_lock);
}

/* ---- segment cache ------------------------------------------------------ */
#define segment_of_entry(e) ((hk_segment*)((uint8_t*)(e) - offsetof(hk_segment, cached)))

/* Gives a cached segment back to the backend. On failure it stays mapped
 * and visible in the segmap, and the cache keeps it. */
static bool segment_unmap(hk_aged_entry* e) {
  hk_segment* seg = segment_of_entry(e);
  /* Clear the segmap first: from here on free() rejects pointers into it
   * without reading memory that is about to disappear. */
  hk_segmap_set(seg, HK_SEGMENT_SIZE, HK_MAP_NONE);
  registry_remove(seg);  /* waits for a statistics walk reading it */
  if (hk_os_release(seg, HK_SEGMENT_SIZE, segment_committed(seg)) != 0) {
    hk_segmap_set(seg, HK_SEGMENT_SIZE, HK_MAP_SEGMENT);
    registry_add(seg);
    return false;
  }
  hk_stat_add(&hk_stat.segments_cached, -1);
  return true;
}

static hk_aged_cache hk_segment_cache = HK_AGED_CACHE_KIND("segments", segment_unmap, NULL, HK_LOCK_SEGMENTS);

/* ---- sets ----------------------------------------------------------------- */
/* A segment taken from the segment cache: its committed slots go back to
 * the free-slot cache with the age they had when it was cached. Without
 * that they would be owned and committed but waiting in no cache, so a
 * segment reused within the release delay (thread churn reuses them every
 * few milliseconds) would keep every page any earlier span touched, for
 * as long as it cycles, whatever the new spans need. Slots that no span
 * takes now age out as they would in a segment that stayed owned. */
static void recache_warm_slots(hk_segment* seg) {
  uint64_t warm = HK_ALL_SPAN_SLOTS & ~decommitted(seg);
  if (warm == 0) return;
  hk_aged_lock(&hk_free_slot_cache);
  while (warm) {
    unsigned first = (unsigned)__builtin_ctzll(warm);
    unsigned end = first + 1;
    while (end < HK_SLOTS && ((warm >> end) & 1) && seg->slot_free_ms[end] == seg->slot_free_ms[first]) end++;
    cache_run(seg, first, end - first, seg->slot_free_ms[first]);
    warm &= ~slot_run(first, end - first);
  }
  hk_aged_sweep(&hk_free_slot_cache, hk_now_ms(), false);  /* some may be due already */
  hk_aged_unlock(&hk_free_slot_cache);
}

static void set_link(hk_segment_set* set, hk_segment* seg) {
  seg->prev = NULL;
  seg->next = set->head;
  if (set->head) set->head->prev = seg;
  set->head = seg;
  set->count++;
}

static void set_unlink(hk_segment_set* set, hk_segment* seg) {
  if (seg->prev) seg->prev->next = seg->next; else set->head = seg->next;
  if (seg->next) seg->next->prev = seg->prev;
  seg->next = seg->prev = NULL;
  set->count--;
}

/* Makes seg (empty, cached or fresh) a segment of set. */
static hk_segment* set_adopt_empty(hk_segment_set* set, hk_segment* seg) {
  /* Every slot is its own descriptor until a multi-slot span claims it:
   * free() then reads a descriptor with nothing carved and rejects the
   * pointer. */
  for (unsigned i = 0; i < HK_SLOTS; i++) seg->spans[i].multi_head = NULL;
  seg->free_slots = HK_ALL_SPAN_SLOTS;
  seg->used_spans = 0;
  seg->cached_heads = 0;
  atomic_store_explicit(&seg->remote_pending, 0, memory_order_relaxed);
  set_link(set, seg);
  hk_stat_add(&hk_stat.segments_live, 1);
  recache_warm_slots(seg);
  return seg;
}

hk_segment* hk_segment_acquire_cached(hk_segment_set* set) {
  hk_segment* seg = NULL;
  hk_aged_lock(&hk_segment_cache);
  if (hk_segment_cache.newest) {
    /* Newest first: the most likely to be still resident and cache-warm. */
    seg = segment_of_entry(hk_segment_cache.newest);
    hk_aged_remove(&hk_segment_cache, &seg->cached);
    hk_stat_add(&hk_stat.segments_cached, -1);
  }
  hk_aged_unlock(&hk_segment_cache);
  return seg != NULL ? set_adopt_empty(set, seg) : NULL;
}

hk_segment* hk_segment_acquire(hk_segment_set* set) {
  hk_segment* seg = hk_segment_acquire_cached(set);
  if (seg != NULL) return seg;
  {
    void* mem = NULL;
    if (hk_os_reserve(HK_SEGMENT_SIZE, HK_SEGMENT_SIZE, &mem, HK_SEGMENT_HEADER_BYTES) != 0) return NULL;
    seg = mem;  /* fresh mappings are zero: every span descriptor is free */
    mark_decommitted(seg, HK_ALL_SPAN_SLOTS);  /* untouched: only the header will be resident */
    hk_segmap_set(seg, HK_SEGMENT_SIZE, HK_MAP_SEGMENT);
    registry_add(seg);
  }
  return set_adopt_empty(set, seg);
}

/* An empty segment leaves its set for the cache, where the release policy
 * decides when it is unmapped. */
static void segment_release(hk_segment_set* set, hk_segment* seg) {
  set_unlink(set, seg);
  hk_stat_add(&hk_stat.segments_live, -1);
  /* Its free slots leave their cache: the segment waits as a whole. */
  hk_aged_lock(&hk_free_slot_cache);
  uncache_runs(seg, HK_ALL_SPAN_SLOTS);
  uint64_t span_bytes = run_committed(seg, HK_ALL_SPAN_SLOTS);
  hk_aged_unlock(&hk_free_slot_cache);
  uint64_t now = hk_now_ms();
  hk_aged_lock(&hk_segment_cache);
  hk_aged_push(&hk_segment_cache, &seg->cached, span_bytes, now);
  hk_stat_add(&hk_stat.segments_cached, 1);
  hk_aged_sweep(&hk_segment_cache, now, false);
  hk_aged_unlock(&hk_segment_cache);
}

/* Finds `slots` consecutive free slots: bit i of the result means slots
 * i..i+slots-1 are all free. */
static inline uint64_t runs_of(uint64_t free, unsigned slots) {
  uint64_t m = free;
  for (unsigned k = 1; k < slots; k++) m &= free >> k;
  return m;
}

/* Where in seg a span of `slots` slots would go: the run of free slots
 * (all committed with warm_only) whose start holds the most resident bytes
 * (resident_prefix), the lowest on a tie; committed runs before others when
 * neither holds any. *score: those bytes, plus one if the run is committed
 * (taking it needs no commit). HK_SLOTS when there is none. Reads the
 * owner's bitmap and relaxed atomics: a hint, checked again under the
 * free-slot cache's lock by the commit. */
static unsigned find_slots(const hk_segment* seg, unsigned slots, bool warm_only, size_t* score) {
  uint64_t warm = runs_of(seg->free_slots & ~decommitted(seg), slots);
  uint64_t any = warm_only ? warm : runs_of(seg->free_slots, slots);
  unsigned best = HK_SLOTS;
  size_t best_score = 0;
  for (uint64_t m = any; m; m &= m - 1) {
    unsigned idx = (unsigned)__builtin_ctzll(m);
    size_t sc = (((warm >> idx) & 1) ? resident_prefix(seg, idx, slots) * 2 + 1 : 0);
    if (best == HK_SLOTS || sc > best_score) {
      best = idx;
      best_score = sc;
    }
  }
  *score = best_score;
  return best;
}

hk_span* hk_segment_take_slots(hk_segment_set* set, unsigned slots, bool warm_only, bool* failed) {
  /* The owned segment whose free slots hold the most resident bytes where
   * the span would start: the first found if none holds any. */
  hk_segment* seg = NULL;
  unsigned idx = HK_SLOTS;
  size_t best = 0;
  for (hk_segment* s = set->head; s; s = s->next) {
    if (runs_of(s->free_slots, slots) == 0) continue;
    size_t score;
    unsigned i = find_slots(s, slots, warm_only, &score);
    if (i == HK_SLOTS || (seg != NULL && score <= best)) continue;
    seg = s;
    idx = i;
    best = score;
    if (score > (size_t)HK_SLOT_SIZE * 2 * slots) break;  /* every slot of the run resident: none does better */
  }
  if (seg == NULL) return NULL;
  hk_aged_lock(&hk_free_slot_cache);
  uncache_runs(seg, slot_run(idx, slots));
  bool committed = slots_commit(seg, idx, slots);
  hk_aged_unlock(&hk_free_slot_cache);
  if (!committed) {
    /* An owned segment without spans would never be released (that
     * happens when its last span goes): give it back now. */
    if (seg->used_spans == 0) segment_release(set, seg);
    *failed = true;
    return NULL;
  }
  seg->free_slots &= ~slot_run(idx, slots);
  seg->used_spans++;
  if (!seg->huge_advised && __builtin_popcountll(HK_ALL_SPAN_SLOTS & ~seg->free_slots) >= (int)HK_SLOTS / 2) {
    seg->huge_advised = true;
    hk_os_advise_dense(seg, HK_SEGMENT_SIZE);
  }
  return &seg->spans[idx];
}


bool hk_segment_free_slots(hk_segment_set* set, hk_span* span) {
  hk_segment* seg = hk_segment_of(span);
  unsigned idx = span->slot_index;
  unsigned slots = span->slot_count;
  /* What its blocks touched stays resident with the slots: the next span
   * placed here carves it without page faults. */
  size_t carved = ((size_t)span->carved_bytes + HK_OS_PAGE - 1) & ~(size_t)(HK_OS_PAGE - 1);
  for (unsigned k = 0; k < slots && ((size_t)k << HK_SLOT_SHIFT) < carved; k++) {
    size_t in_slot = carved - ((size_t)k << HK_SLOT_SHIFT);
    uint32_t t = in_slot < HK_SLOT_SIZE ? (uint32_t)in_slot : (uint32_t)HK_SLOT_SIZE;
    if (t > touched_of(seg, idx + k)) touched_set(seg, idx + k, t);
  }
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
  uint64_t now = hk_now_ms();
  for (unsigned k = 0; k < slots; k++) seg->slot_free_ms[idx + k] = now;
  bool released = false;
  if (seg->used_spans == 0) {
    segment_release(set, seg);
    released = true;
  } else {
    hk_aged_lock(&hk_free_slot_cache);
    cache_run(seg, idx, slots, now);
    hk_aged_sweep(&hk_free_slot_cache, now, false);  /* over the cap, or an immediate policy */
    hk_aged_unlock(&hk_free_slot_cache);
  }
  hk_aged_tick(0);
  return released;
}

/* ---- abandonment ------------------------------------------------------- */
/* Guards the abandoned list. */
static hk_lock_t hk_abandoned_lock = HK_LOCK_INIT(HK_LOCK_ABANDONED);
static hk_segment* hk_abandoned_head;
static _Atomic uint64_t hk_abandoned_count; /* read without the lock as a hint */

/* Every span of seg (quarantined ones too) gets owner `id`; 0 sends every
 * free into it, the former owner's included, down the remote path. */
static void segment_set_owner(hk_segment* seg, uintptr_t id) {
  for (unsigned i = 1; i < HK_SLOTS; i++) {
    hk_span* s = &seg->spans[i];
    if (s->in_use && s->slot_offset == 0) atomic_store_explicit(&s->owner, id, memory_order_relaxed);
  }
}

void hk_segment_set_owner(hk_segment_set* set, uintptr_t id) {
  set->owner_id = id;
  for (hk_segment* seg = set->head; seg; seg = seg->next) segment_set_owner(seg, id);
}

void hk_segment_abandon_all(hk_segment_set* set) {
  while (set->head) {
    hk_segment* seg = set->head;
    set_unlink(set, seg);
    segment_set_owner(seg, 0);
    hk_lock(&hk_abandoned_lock);
    seg->prev = NULL;
    seg->next = hk_abandoned_head;
    hk_abandoned_head = seg;
    atomic_fetch_add_explicit(&hk_abandoned_count, 1, memory_order_relaxed);
    hk_unlock(&hk_abandoned_lock);
  }
}

hk_segment* hk_segment_adopt_one(hk_segment_set* set) {
  if (atomic_load_explicit(&hk_abandoned_count, memory_order_relaxed) == 0) return NULL;
  hk_lock(&hk_abandoned_lock);
  hk_segment* seg = hk_abandoned_head;
  if (seg) {
    hk_abandoned_head = seg->next;
    atomic_fetch_sub_explicit(&hk_abandoned_count, 1, memory_order_relaxed);
  }
  hk_unlock(&hk_abandoned_lock);
  if (seg == NULL) return NULL;
  /* The lock orders everything the exited thread wrote before us. */
  seg->next = seg->prev = NULL;
  set_link(set, seg);
  return seg;
}

uint64_t hk_abandoned_segments(void) {
  return atomic_load_explicit(&hk_abandoned_count, memory_order_relaxed);
}

void hk_segments_fork(hk_fork_step step) {
  /* Prepare after the caches' locks (an unmap holds the cache lock, then
   * takes the registry's); parent and child release in any order. */
  hk_lock_fork(&hk_abandoned_lock, step);
  hk_lock_fork(&hk_registry_lock, step);
}
