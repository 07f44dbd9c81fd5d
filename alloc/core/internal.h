/* hakmem core: shared types, constants and tiny inline helpers.
 *
 * Layout of memory (see README "Design"):
 *   segment  4 MiB, aligned to 4 MiB, obtained from the backend. Slot 0 holds
 *            the segment header (this file's hk_segment); slots 1..15 (256
 *            KiB each) hold spans.
 *   span     1..8 consecutive slots carved into blocks of one size class.
 *            Its descriptor lives in the segment header, indexed by slot, so a
 *            block's span is found from its address by masking (lesson 3).
 *   arena    a request above HK_SMALL_MAX (256 KiB) up to HK_ARENA_MAX_BLOCK
 *            (16 MiB) is a run of 64 KiB pages in a 32 MiB chunk shared by
 *            all threads (arena.c); freed runs join their neighbours and
 *            serve any later request that fits.
 *   large    a bigger request, or one aligned beyond an arena page, gets its own
 *            4 MiB-aligned mapping with a hk_large header at the base.
 *   segmap   one byte per 4 MiB of address space saying what hakmem has there
 *            (nothing, a segment, an arena chunk, the head or the tail of a
 *            large mapping);
 *            it is how the core knows a pointer is its own before touching it.
 *
 * Ownership: every segment belongs to one thread heap (or to nobody when its
 * thread exited: "abandoned"). Only the owner allocates from its spans and
 * pushes onto their local free lists; other threads free by an atomic push onto
 * the span's remote list, which the owner collects on its slow path.
 *
 * Nothing here may call malloc. */
#ifndef HAKMEM_CORE_INTERNAL_H
#define HAKMEM_CORE_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc/backends/backend.h"
#include "alloc/include/hakmem.h"

/* Everything declared below is the core's own: hidden, so the compiler
 * addresses it directly instead of through the GOT (one load less per use
 * on the fast paths, e.g. hk_secret in free). */
#pragma GCC visibility push(hidden)

#define hk_likely(x) __builtin_expect(!!(x), 1)
#define hk_unlikely(x) __builtin_expect(!!(x), 0)
#define HK_NOINLINE __attribute__((noinline))
#define HK_INLINE static inline __attribute__((always_inline))
#define HK_TLS __thread __attribute__((tls_model("initial-exec")))

/* ---- geometry ---------------------------------------------------------- */
#define HK_SEGMENT_SHIFT 22                      /* 4 MiB segments */
#define HK_SEGMENT_SIZE ((size_t)1 << HK_SEGMENT_SHIFT)
#define HK_SEGMENT_MASK (HK_SEGMENT_SIZE - 1)
#define HK_SLOT_SHIFT 18                         /* 256 KiB slots: one span for every class up to 2 KiB */
#define HK_SLOT_SIZE ((size_t)1 << HK_SLOT_SHIFT)
#define HK_SLOTS (HK_SEGMENT_SIZE / HK_SLOT_SIZE) /* 16; slot 0 is the header */
#define HK_OS_PAGE 4096u
#define HK_ALIGN 16u                             /* alignof(max_align_t) */

/* User address space on x86-64 / aarch64 Linux is below 2^47 (4-level paging);
 * the segmap covers exactly that. A pointer above it is never ours. */
#define HK_ADDRESS_BITS 47
#define HK_SEGMAP_ENTRIES ((size_t)1 << (HK_ADDRESS_BITS - HK_SEGMENT_SHIFT))

/* ---- size classes ------------------------------------------------------ */
/* 16..128 in steps of 16, then 8 classes per doubling up to 256 KiB: waste
 * beyond the 16-byte alignment granule is under 1/9 (11.1%) of the block.
 * Blocks above 32 KiB ("medium") live in spans like the rest, so buffers of
 * a few hundred KiB are reused from the thread's spans instead of costing a
 * mapping each. */
#define HK_SMALL_MAX 262144u
#define HK_CLASSES 96
#define HK_SIZE_INDEX(n) (((n) + 15) >> 4)       /* index into hk_class_of_index */

extern uint8_t hk_class_of_index[HK_SMALL_MAX / 16 + 1];
extern uint32_t hk_class_size[HK_CLASSES];
extern uint8_t hk_class_slots[HK_CLASSES];       /* slots per span of the class */
#define HK_SPAN_MIN_BLOCKS 256u                  /* blocks a span holds at least, ... */
#define HK_SPAN_MAX_SLOTS 8u                     /* ... unless that takes more than 8 slots (2 MiB) */
#define HK_SPAN_ONE_SLOT_BLOCKS 128u             /* but one slot wherever it holds this many (up to 2 KiB) */

void hk_size_classes_init(void);
/* The class for an aligned request: a class whose size is a multiple of align
 * (spans start on slot boundaries, so every block of it is aligned), or -1
 * when none fits and the request must go to a large mapping. */
int hk_class_for_aligned(size_t size, size_t align);

/* ---- blocks, spans, segments ------------------------------------------- */
/* A free block. Blocks are at least 16 bytes, so both words always fit.
 *   link  the free-list link, encoded with hk_secret and the block's own
 *         address (alloc_inline.h: hk_block_make_free_tagged), so a write
 *         into a freed block cannot steer malloc: every pop checks what it
 *         decodes before following it (issue 22).
 *   tag   address ^ hk_secret while the block is free, 0 once handed out:
 *         free() of a block whose tag is already set is a double free. */
typedef struct hk_block {
  uintptr_t link;
  uintptr_t tag;
} hk_block;

extern uintptr_t hk_secret;  /* random per process, set at init; never 0 after it */
HK_INLINE uintptr_t hk_free_tag(const void* b) { return (uintptr_t)b ^ hk_secret; }

struct hk_heap;

/* High bit of hk_span.used: the span is in its heap's full list (it had no
 * free block when last looked at). Folding it into the counter lets free's
 * fast path test "emptying, full or double free" with one compare. */
#define HK_USED_FULL 0x80000000u

/* hk_span.corrupt (freelist.c, page.c). */
#define HK_CORRUPT_CUT 1
#define HK_CORRUPT_OFF_LISTS 2

/* One per slot in the segment header. The first 64 bytes hold everything
 * malloc's and free's fast paths read, so each touches one line here. */
typedef struct hk_span {
  hk_block* free;               /* owner-only list of free blocks (LIFO, cache-warm) */
  uint32_t used;                /* blocks handed out and not yet returned to the owner, | HK_USED_FULL. Owner-only */
  uint8_t pinned;               /* 1 while the span is its heap's current one and `used` holds one extra count for it (page.c). Owner-only */
  uint8_t class_idx;            /* size class */
  uint8_t slot_offset;          /* for tail slots of a multi-slot span: distance to the head slot; 0 on the head */
  uint8_t in_use;               /* 1 while the slot belongs to a span (head or tail) */
  uint32_t block_size;          /* bytes per block; 0 while the slot is free */
  uint32_t carved_bytes;        /* bytes carved into blocks so far (lazy). Owner writes with relaxed atomic stores; free() on any thread reads it */
  uint64_t div_magic;           /* ceil(2^40 / block_size) << 24: the block-start test without a divide (hk_span_holds_block) */
  uintptr_t start;              /* address of block 0 */
  _Atomic uintptr_t owner;      /* hk_thread_id() of the thread whose heap owns it (may push locally); 0 when abandoned. Written by the owner (abandon) or the adopter, read relaxed by freeing threads */
  _Atomic(hk_block*) remote;    /* cross-thread frees; pushed with release CAS, taken by the owner with acquire exchange */
  struct hk_span* multi_head;   /* for every slot of a multi-slot span (its first included): that span; NULL for a single-slot span or a free slot, which are their own descriptor (hk_span_at) */
  /* ---- cold: slow paths only ---- */
  struct hk_span* next;         /* heap list (available or full) of its class */
  struct hk_span* prev;
  uint32_t capacity;            /* blocks the span can hold */
  uint8_t slot_count;           /* slots the span covers */
  uint8_t slot_index;           /* index of its head slot in the segment */
  uint8_t corrupt;              /* HAKMEM_ON_ERROR=warn found a corrupted free-list link in it: HK_CORRUPT_CUT, then HK_CORRUPT_OFF_LISTS once off its heap's lists for good (it never allocates again, leaks what it holds); 0 normally. Owner-only */
  uint32_t trimmed_from;        /* trim decommitted the pages from this offset (past the first block) to the end of its slot, which its slot bit does not say; 0 when not. Owner-only */
} __attribute__((aligned(64))) hk_span;

_Static_assert(sizeof(hk_span) == 128, "span descriptor is two cache lines");
_Static_assert(offsetof(hk_span, next) <= 64, "hot span fields fit one line");

typedef struct hk_segment {
  hk_span spans[HK_SLOTS];      /* spans[0] is never a span: slot 0 is this header */
  struct hk_heap* heap;         /* owner heap; NULL while abandoned. Owner-only (adopt under the abandoned-list lock) */
  struct hk_segment* next;      /* heap's segment list, abandoned list or segment cache */
  struct hk_segment* prev;
  uint64_t free_slots;          /* bit i set: slot i is free. Owner-only */
  uint32_t used_spans;          /* spans in use. Owner-only */
  _Atomic uint32_t remote_pending; /* set by a remote free before its push: the owner should scan this segment */
  uint64_t decommitted_slots;   /* bit i: slot i is decommitted (or never touched since mapping); span setup commits it again. Owner-only, or under the cache lock while cached */
  uint64_t idle_since_ms;       /* when it entered the cache (monotonic ms) */
  struct hk_segment* all_next;  /* registry of every mapped segment (stats.c), under its lock: */
  struct hk_segment* all_prev;  /*   how statistics walk spans without touching heap lists */
} hk_segment;

#define HK_ALL_SPAN_SLOTS ((((uint64_t)1 << HK_SLOTS) - 1) & ~(uint64_t)1) /* slots 1..HK_SLOTS-1 */

HK_INLINE uint32_t hk_span_live(const hk_span* s) { return (s->used & ~HK_USED_FULL) - s->pinned; }
HK_INLINE bool hk_span_is_full(const hk_span* s) { return (s->used & HK_USED_FULL) != 0; }

HK_INLINE hk_segment* hk_segment_of(const void* p) {
  return (hk_segment*)((uintptr_t)p & ~(uintptr_t)HK_SEGMENT_MASK);
}

/* The calling thread's identity for span ownership: its thread pointer
 * (%fs:0 on x86-64), one load without the TLS offset the heap pointer needs.
 * Unique among live threads; a thread's spans are abandoned (owner 0)
 * before it exits, so a later thread at the same address owns none. */
HK_INLINE uintptr_t hk_thread_id(void) { return (uintptr_t)__builtin_thread_pointer(); }

/* The descriptor of the slot holding p (p inside a segment). */
HK_INLINE hk_span* hk_slot_descriptor(const void* p) {
  return &hk_segment_of(p)->spans[((uintptr_t)p >> HK_SLOT_SHIFT) & (HK_SLOTS - 1)];
}

/* The span whose slots hold p (p inside a segment): the slot's own
 * descriptor, or for a slot of a multi-slot span the span's first one
 * (free() makes the same choice with a branch: hk_free_inline). */
HK_INLINE hk_span* hk_span_at(const void* p) {
  hk_span* s = hk_slot_descriptor(p);
  return s->multi_head != NULL ? s->multi_head : s;
}

/* ---- segmap ------------------------------------------------------------ */
enum {
  HK_MAP_NONE = 0,       /* not hakmem's */
  HK_MAP_SEGMENT = 1,    /* a small-object segment */
  HK_MAP_LARGE = 2,      /* first 4 MiB of a large mapping: header at its base */
  HK_MAP_LARGE_TAIL = 3, /* later 4 MiB pieces of a large mapping */
  HK_MAP_ARENA = 4,      /* a 4 MiB piece of an arena chunk: header at the 32 MiB boundary below */
};
extern uint8_t hk_segmap[HK_SEGMAP_ENTRIES];

HK_INLINE unsigned hk_segmap_kind(uintptr_t a) {
  /* One shift serves both the bound and the index. */
  uintptr_t i = a >> HK_SEGMENT_SHIFT;
  if (hk_unlikely(i >= HK_SEGMAP_ENTRIES)) return HK_MAP_NONE;
  return __atomic_load_n(&hk_segmap[i], __ATOMIC_RELAXED);
}
void hk_segmap_set(void* base, size_t size, unsigned kind);

/* ---- heaps ------------------------------------------------------------- */
typedef struct hk_span_list { hk_span* head; hk_span* tail; } hk_span_list;

typedef struct hk_heap {
  hk_span* current[HK_CLASSES];   /* span malloc pops from; &hk_span_empty when none. Fast path */
  hk_span_list avail[HK_CLASSES]; /* spans with (maybe) free blocks; current is the head */
  hk_span_list full[HK_CLASSES];  /* spans found without free blocks */
  hk_segment* segments;           /* owned segments (doubly linked via next/prev) */
  uint64_t segment_count;         /* owned segments */
  struct hk_heap* next_heap;      /* global list of live heaps (fork handling) */
  struct hk_heap* prev_heap;
  struct hk_heap* next_free;      /* heap pool free list */
  uint64_t remote_frees;          /* blocks this thread pushed to other threads' spans */
  uint64_t refills;               /* slow-path allocations */
  bool is_live;                   /* false for the static empty heap */
  uintptr_t owner_id;             /* hk_thread_id() of its thread: what its spans' owner fields hold */
  uint64_t trim_epoch;            /* hk_trim_epoch when this heap last trimmed itself (trim.c). Owner-only */
} hk_heap;

extern hk_heap hk_heap_empty;    /* all current[] point at hk_span_empty */
extern hk_span hk_span_empty;    /* free == NULL: forces the slow path */
extern HK_TLS hk_heap* hk_tls_heap;

hk_heap* hk_heap_get_or_create(void);   /* slow path: makes this thread's heap */
void hk_heap_abandon_all_but(hk_heap* keep); /* after fork in the child */
void hk_heap_lock_all(void);
void hk_heap_unlock_all(bool reinit);

/* ---- slow paths (page.c / segment.c / large.c) --------------------------- */
/* size first: malloc's fast path keeps it where it arrived (one move less). */
void* hk_malloc_slow(size_t size, hk_heap* heap);
void* hk_alloc_class_slow(hk_heap* heap, unsigned cls);
/* A local free found the span flagged, emptying, or with nothing handed out. */
void hk_span_free_local_slow(hk_heap* heap, hk_span* span, hk_block* b, const char* func);
void hk_free_remote(hk_segment* seg, hk_span* span, hk_block* b);
void hk_heap_collect(hk_heap* heap, bool force);
void hk_heap_release_all(hk_heap* heap);

hk_segment* hk_segment_acquire(hk_heap* heap);
void hk_segment_release(hk_segment* seg);
hk_span* hk_segment_alloc_span(hk_heap* heap, unsigned cls);
bool hk_segment_free_span(hk_heap* heap, hk_span* span); /* true: its segment was released too */
/* The decommit policy's verdict on `bytes` that just became empty, given
 * what is committed now: HK_DECOMMIT_OFF to keep them resident. */
hk_decommit_mode hk_decommit_wanted(size_t bytes);
/* The same verdict as if `gone` more bytes had been decommitted already:
 * lets a caller holding a big range decommit only what takes the process
 * back to the resident target. */
hk_decommit_mode hk_decommit_wanted_after(size_t bytes, uint64_t gone);
bool hk_segment_adopt_one(hk_heap* heap);
void hk_segment_abandon(hk_segment* seg);
bool hk_span_adopt(hk_heap* heap, hk_span* span);
void hk_heap_prewarm(hk_heap* heap);
void hk_heap_key_create(void);  /* collect and file a span of an adopted segment */
void hk_segment_cache_trim(bool all);
uint64_t hk_abandoned_segments(void);
uint64_t hk_now_ms(void);
/* Release-policy clock, called on slow-path frees (span retired, large block
 * freed): returns cached memory whose delay has passed, so memory goes back
 * even when the program stops allocating. One relaxed load per cache while
 * nothing waits; reads the clock only when something does. now: a fresh
 * hk_now_ms() if the caller has one, else 0. */
void hk_release_tick(uint64_t now);
/* True when the release policy wants a cached entry idle since idle_since_ms
 * returned now (segment.c; shared by the segment and large caches). */
bool hk_release_wanted(uint64_t idle_since_ms, uint64_t now);
/* When a cache entry idle since idle_since_ms is due for release by time
 * under the linked release policy (monotonic ms; 0: never by time alone). */
uint64_t hk_release_due_ms(uint64_t idle_since_ms);
void hk_segments_lock(bool lock, bool reinit);
/* Decommits (MADV_DONTNEED) every free slot of seg, also those a lazy
 * MADV_FREE left resident; owner or under the lock that holds seg. True if
 * anything was advised. For trim only. */
bool hk_segment_decommit_free_slots(hk_segment* seg);
/* Decommits (MADV_DONTNEED) span s from byte `from` (a page boundary, an
 * offset from its first block) to its end: that part holds no carved block
 * any more. Owner only; for trim. */
void hk_segment_decommit_span_tail(hk_span* s, size_t from);
/* Commits the pages holding bytes [from, to) of span s (offsets from its
 * first block) if trim gave them back. False if the backend refused. */
bool hk_segment_commit_span_bytes(hk_span* s, size_t from, size_t to);
/* Gives back the pages past the last live block of every span the heap
 * owns (page.c). For trim. */
void hk_heap_release_span_tails(hk_heap* heap);

/* ---- trim (trim.c) ------------------------------------------------------ */
/* Bumped by hk_trim; a heap whose trim_epoch differs trims itself on its next
 * allocation slow path, so threads other than the caller give back their
 * empty spans too (no thread ever touches another's heap). */
extern _Atomic uint64_t hk_trim_epoch;
void hk_heap_trim(hk_heap* heap);

/* ---- statistics (stats.c) ------------------------------------------------ */
/* The segment registry: mapped segments in one list, so hk_stats_get can walk
 * span descriptors. A segment leaves it before it is unmapped, under the same
 * lock the walk holds, so the walk never reads unmapped memory. */
void hk_stats_segment_mapped(hk_segment* seg);
void hk_stats_segment_unmapping(hk_segment* seg);
void hk_stats_lock(bool lock, bool reinit);  /* fork handling, like hk_segments_lock */
/* The HAKMEM_STATS report: to HAKMEM_STATS_FILE if set, else stderr_fd. */
void hk_stats_report_at_exit(int stderr_fd);
/* malloc_stats(): glibc's summary lines, then the readable report. */
void hk_stats_print_malloc_stats(int fd);
/* Per-heap counters summed over live heaps plus those of exited threads. */
void hk_heaps_sum_counters(uint64_t* refills, uint64_t* remote_frees);

void* hk_large_alloc(size_t size, size_t align, bool zero);
/* The arena (arena.c): blocks above HK_SMALL_MAX up to HK_ARENA_MAX_BLOCK,
 * runs of 64 KiB pages (so 64 KiB-aligned) in 32 MiB chunks. Its page is its
 * own: finer than a segment's slot, so a block wastes at most 64 KiB. */
#define HK_ARENA_PAGE_SHIFT 16
#define HK_ARENA_PAGE ((size_t)1 << HK_ARENA_PAGE_SHIFT)
#define HK_ARENA_SHIFT 25
#define HK_ARENA_SIZE ((size_t)1 << HK_ARENA_SHIFT)
#define HK_ARENA_MAX_BLOCK (HK_ARENA_SIZE / 2)
/* size in (0, HK_ARENA_MAX_BLOCK]; NULL (errno untouched) when the backend
 * refused a chunk or a commit. */
void* hk_arena_alloc(size_t size, bool zero);
void hk_arena_free(void* p, const char* func);
/* Makes the live arena block at p hold size bytes (in (HK_SMALL_MAX,
 * HK_ARENA_MAX_BLOCK]) where it is: shrinking gives back its tail, growing
 * takes the free pages right after it. False (block unchanged) when it
 * cannot grow in place. */
bool hk_arena_resize(void* p, size_t size);
/* Usable bytes of the live arena block at p, else 0 with *freed telling
 * whether p is the start of a freed one. */
size_t hk_arena_usable(const void* p, bool* freed);
void hk_arena_lock(bool lock, bool reinit);
void hk_arena_trim(void);                      /* purges every free run, unmaps empty chunks */
/* When the oldest committed free run is due for purging (monotonic ms, 0:
 * nothing waits); written under the arena lock. */
extern _Atomic uint64_t hk_arena_due_ms;
void hk_arena_release_due(uint64_t now);
void hk_large_free(void* p, const char* func);
size_t hk_large_usable(const void* p);
/* Makes the live mapped block at p hold size bytes without copying it:
 * shrinking unmaps the pages past it (same pointer), growing moves its pages
 * (backend move: mremap on Linux) to a larger mapping, with no page fault.
 * Returns the block's pointer, or NULL (block unchanged) when p is not a
 * mapped block, the backend could not, or a cached mapping could take the
 * contents by copy instead. */
void* hk_large_resize(void* p, size_t size);
void hk_large_lock(bool lock, bool reinit);
void hk_large_trim(void);
/* When the oldest cached large mapping is due for release by time (monotonic
 * ms, 0: nothing waits); written under the large-cache lock. */
extern _Atomic uint64_t hk_large_due_ms;
void hk_large_release_due(uint64_t now);

/* ---- process ----------------------------------------------------------- */
void hk_init_slow(void);
extern _Atomic int hk_init_state;  /* 0 none, 1 running, 2 done */
HK_INLINE void hk_ensure_init(void) {
  if (hk_unlikely(atomic_load_explicit(&hk_init_state, memory_order_acquire) != 2)) hk_init_slow();
}

/* ---- errors (error.c): one line on stderr, no malloc, then abort ------- */
__attribute__((noreturn, cold)) void hk_fatal(const char* what, const void* p, const char* func);
/* Misuse report: aborts unless HAKMEM_ON_ERROR=warn, in which case it returns
 * and the caller leaks the block. */
__attribute__((cold)) void hk_misuse(const char* what, const void* p, const char* func);
void hk_write_str(int fd, const char* s);
void hk_write_u64(int fd, uint64_t v);
void hk_write_hex(int fd, uintptr_t v);

/* ---- spin lock for rare global structures (segment cache, heap pool): never on a fast path; no pthread so it is safe inside fork and init ------------- */
typedef struct { _Atomic int state; } hk_lock_t;
void hk_lock(hk_lock_t* l);
HK_INLINE void hk_unlock(hk_lock_t* l) { atomic_store_explicit(&l->state, 0, memory_order_release); }

#pragma GCC visibility pop

#endif
