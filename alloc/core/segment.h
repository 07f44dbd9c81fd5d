/* Segments: 4 MiB units of memory, aligned to 4 MiB, that hold spans.
 *
 *   slot 0        the segment header (hk_segment): one descriptor per slot,
 *                 so a block's span descriptor is found from its address by
 *                 masking and shifting, with no load;
 *   slots 1..15   256 KiB each; a span takes 1..8 consecutive slots.
 *
 * This floor owns the slots (which are free, which are committed), the cache
 * of free slots and the cache of empty segments (both aged caches), the list of abandoned segments (their
 * thread exited with live blocks in them) and the registry of every mapped
 * segment, which statistics walk. It knows nothing of heaps: a heap hands in
 * its hk_segment_set, and it is the heap floor that adopts an abandoned
 * segment's spans. Slow paths only; the global lists take locks a heap
 * touches once per 4 MiB, not per allocation. */
#ifndef HAKMEM_CORE_SEGMENT_H
#define HAKMEM_CORE_SEGMENT_H

#include "alloc/core/aged.h"
#include "alloc/core/base.h"
#include "alloc/core/lock.h"
#include "alloc/core/segmap.h"
#include "alloc/core/size_class.h"

HK_HIDDEN_BEGIN
#define HK_SLOTS (HK_SEGMENT_SIZE / HK_SLOT_SIZE) /* 16; slot 0 is the header */
#define HK_ALL_SPAN_SLOTS ((((uint64_t)1 << HK_SLOTS) - 1) & ~(uint64_t)1) /* slots 1..HK_SLOTS-1 */

struct hk_block;  /* a free block (span.h) */

/* High bit of hk_span.used: the span is in its heap's full list (it had no
 * free block when last looked at). Folding it into the counter lets free's
 * fast path test "emptying, full or double free" with one compare. */
#define HK_USED_FULL 0x80000000u

/* One descriptor per slot, in the segment header. A span's state lives in
 * the descriptor of its first slot; span.h says what spans offer. The first
 * 64 bytes hold everything malloc's and free's fast paths read, so each
 * touches one line here. */
typedef struct hk_span {
  struct hk_block* free;        /* owner-only list of free blocks (LIFO, cache-warm) */
  uint32_t used;                /* blocks handed out and not yet returned to the owner, | HK_USED_FULL. Owner-only */
  uint8_t pinned;               /* 1 while the span is its heap's current one and `used` holds one extra count for it (heap.c). Owner-only */
  uint8_t class_idx;            /* size class */
  uint8_t slot_offset;          /* for tail slots of a multi-slot span: distance to the head slot; 0 on the head */
  uint8_t in_use;               /* 1 while the slot belongs to a span (head or tail) */
  uint64_t carved_bytes;        /* bytes carved into blocks so far (lazy). Owner writes with relaxed atomic stores; free() on any thread reads it. 64 bits so that free's block-start test compares a 64-bit offset with it in one instruction */
  uint64_t div_magic;           /* ceil(2^40 / block_size) << 24: the block-start test without a divide (hk_span_holds_block) */
  uintptr_t start;              /* address of block 0 */
  _Atomic uintptr_t owner;      /* thread id (span.h) of the owner, which may push locally; 0 when abandoned. Written by the owner (abandon) or the adopter, read relaxed by freeing threads */
  _Atomic(struct hk_block*) remote; /* cross-thread frees; pushed with release CAS, taken by the owner with acquire exchange */
  struct hk_span* multi_head;   /* for every slot of a multi-slot span (its first included): that span; NULL for a single-slot span or a free slot, which are their own descriptor */
  /* ---- cold: slow paths only ---- */
  struct hk_span* next;         /* heap list (available or full) of its class */
  struct hk_span* prev;
  uint32_t capacity;            /* blocks the span can hold */
  uint32_t block_size;          /* bytes per block; 0 while the slot is free. Not read by the default build's fast paths */
  uint8_t slot_count;           /* slots the span covers */
  uint8_t slot_index;           /* index of its head slot in the segment */
  uint8_t corrupt;              /* HK_CORRUPT_* (span.h) once HAKMEM_ON_ERROR=warn found a corrupted free-list link in it: it never allocates again, leaks what it holds; 0 normally. Owner-only */
  uint32_t trimmed_from;        /* trim decommitted the pages from this offset (past the first block) to the end of its slot, which its slot bit does not say; 0 when not. Owner-only */
} __attribute__((aligned(64))) hk_span;

_Static_assert(sizeof(hk_span) == 128, "span descriptor is two cache lines");
_Static_assert(offsetof(hk_span, next) <= 64, "hot span fields fit one line");

/* Slots a retired span gave back while they wait, still committed, in the
 * cache of free slots: reused within the release delay they cost no page
 * fault; past it they are decommitted. */
typedef struct hk_slot_run {
  hk_aged_entry age;            /* its entry in the free-slot cache */
  uint8_t first;                /* the run's first slot */
  uint8_t count;                /* slots in the run */
} hk_slot_run;

typedef struct hk_segment {
  hk_span spans[HK_SLOTS];      /* spans[0] is never a span: slot 0 is this header */
  hk_slot_run runs[HK_SLOTS];   /* at a cached run's first slot; under the free-slot cache's lock */
  uint64_t cached_heads;        /* bit i: runs[i] is in the free-slot cache. Under its lock */
  uint32_t touched[HK_SLOTS];   /* for a free slot: bytes from its start that earlier spans carved since it was last decommitted (page-rounded), so may be resident. Where a new span goes (hk_segment_take_slots). Relaxed atomics: the owner writes it when a span leaves, the free-slot cache when it decommits */
  uint64_t slot_free_ms[HK_SLOTS]; /* for a free slot: when it became free (hk_now_ms). Its age in the free-slot cache, kept while the segment waits in the segment cache, so a slot that no span takes ages out however often its segment is reused */
  bool huge_advised;            /* dense once (half its slots taken): advised MADV_HUGEPAGE under HAKMEM_THP=madvise (hk_os_advise_dense); the advice stays with the mapping */
  struct hk_segment* next;      /* its set's list or the abandoned list */
  struct hk_segment* prev;
  uint64_t free_slots;          /* bit i set: slot i is free. Owner-only */
  uint32_t used_spans;          /* spans in use. Owner-only */
  _Atomic uint32_t remote_pending; /* set by a remote free before its push: the owner should scan this segment */
  uint64_t decommitted_slots;   /* bit i: slot i is decommitted (or never touched since mapping); taking it commits it again. Changed with atomic read-modify-writes: the owner changes the bits of slots it holds, the free-slot cache (under its lock) those of slots waiting there */
  hk_aged_entry cached;         /* its entry in the segment cache while empty */
  struct hk_segment* all_next;  /* registry of every mapped segment, under its lock: */
  struct hk_segment* all_prev;  /*   how statistics walk spans without touching heap lists */
} hk_segment;

/* The segments one heap owns. */
typedef struct hk_segment_set {
  hk_segment* head;             /* doubly linked through next/prev */
  uint64_t count;
  uintptr_t owner_id;           /* what the owner's spans hold in hk_span.owner */
} hk_segment_set;

HK_INLINE hk_segment* hk_segment_of(const void* p) {
  return (hk_segment*)((uintptr_t)p & ~(uintptr_t)HK_SEGMENT_MASK);
}

/* The descriptor of the slot holding p (p inside a segment). */
HK_INLINE hk_span* hk_slot_descriptor(const void* p) {
  return &hk_segment_of(p)->spans[((uintptr_t)p >> HK_SLOT_SHIFT) & (HK_SLOTS - 1)];
}

/* The span whose slots hold p (p inside a segment): the slot's own
 * descriptor, or for a slot of a multi-slot span the span's first one. */
HK_INLINE hk_span* hk_span_at(const void* p) {
  hk_span* s = hk_slot_descriptor(p);
  return s->multi_head != NULL ? s->multi_head : s;
}

/* `slots` consecutive free slots in one of set's segments, committed and
 * marked used; returns the descriptor of the first (the caller makes it a
 * span). Where earlier spans left the most resident bytes at the run's
 * start: a span carves from its start, so those are reused without a page
 * fault and no other page gets touched meanwhile. With warm_only, only
 * slots still committed are taken. NULL when no owned segment has room, or,
 * with *failed set, when the backend would not commit the slots. */
hk_span* hk_segment_take_slots(hk_segment_set* set, unsigned slots, bool warm_only, bool* failed);
/* The newest empty segment of the segment cache, now in set, or NULL. */
hk_segment* hk_segment_acquire_cached(hk_segment_set* set);
/* An empty segment for set: the newest cached one, else a fresh mapping.
 * NULL when the backend has no memory. */
hk_segment* hk_segment_acquire(hk_segment_set* set);
/* The span's slots become free again, still committed: they wait in the
 * free-slot cache until the release policy wants them decommitted. When that
 * empties the segment it leaves set for the segment cache (true is
 * returned: the segment may be gone). */
bool hk_segment_free_slots(hk_segment_set* set, hk_span* span);

/* A segment whose thread exited, now in set, or NULL when none waits. Its
 * in-use spans still hold the old owner's state: the caller files them. */
hk_segment* hk_segment_adopt_one(hk_segment_set* set);
/* set's owner id becomes id, and so does the owner of every span in its
 * segments (0: ownerless, every free is remote). The caller holds the set
 * alone: a parked heap's (heap.c) taken by a new thread, or its own. */
void hk_segment_set_owner(hk_segment_set* set, uintptr_t id);
/* Every segment of set goes to the abandoned list, its spans ownerless. */
void hk_segment_abandon_all(hk_segment_set* set);
uint64_t hk_abandoned_segments(void);

/* Trim: decommits (MADV_DONTNEED) every free slot of seg, also those a lazy
 * MADV_FREE left resident. True if anything was advised. */
bool hk_segment_decommit_free_slots(hk_segment* seg);
/* Decommits span s from byte `from` (a page boundary, an offset from its
 * first block) to its end: that part holds no carved block any more. */
void hk_segment_decommit_span_tail(hk_span* s, size_t from);
/* Commits the pages holding bytes [from, to) of span s if trim gave them
 * back. False if the backend refused. */
bool hk_segment_commit_span_bytes(hk_span* s, size_t from, size_t to);

/* Calls fn on every mapped segment (owned, abandoned or cached) with the
 * registry locked: no segment is unmapped during the walk. */
void hk_segments_walk(void (*fn)(hk_segment* seg, void* arg), void* arg);
/* Fork handlers: the abandoned list and the registry (the segment cache is
 * an aged cache: hk_aged_fork). */
void hk_segments_fork(hk_fork_step step);
HK_HIDDEN_END

#endif
