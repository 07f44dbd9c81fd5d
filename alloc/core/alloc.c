/* The allocation API: the hk_ functions of alloc/include/hakmem.h. The libc
 * names in override.c share these bodies (through alloc_inline.h, free.h and
 * the helpers here), so every entry point routes the same way, also for
 * allocations made during start-up. Which layer serves a request is decided
 * here: a size class (heaps and spans), the arena, or a big mapping. */
#include <errno.h>
#include <string.h>

#include "alloc/core/alloc_inline.h"
#include "alloc/core/api.h"
#include "alloc/core/arena.h"
#include "alloc/core/error.h"
#include "alloc/core/foreign.h"
#include "alloc/core/free.h"
#include "alloc/core/init.h"
#include "alloc/core/mapping.h"
#include "alloc/core/prof.h"
#include "alloc/core/reclaim.h"

/* The functions between a program's call and the heap profiler's stack
 * walk live in their own section, so the walk can leave them out of the
 * stacks it records (prof.c): the profile starts at the program's call. */
#define HK_ALLOC_TEXT __attribute__((section("hk_alloc_text")))

/* ---- slow paths ---------------------------------------------------------- */
/* A block above the small classes: the arena when it fits there, else a
 * mapping of its own. */
static void* big_alloc_plain(size_t size, size_t align, bool zero, bool growing) {
  hk_ensure_init();
  /* free() finds a mapping's header at the 4 MiB boundary below the
   * pointer, so the pointer must sit in the mapping's first 4 MiB:
   * alignments of 4 MiB and more cannot be served (ENOMEM, documented).
   * Checked first, so no size arithmetic below can wrap for alignments near
   * 2^63. */
  if (align >= HK_SEGMENT_SIZE) {
    errno = ENOMEM;
    return NULL;
  }
  /* A zero-byte request still gets a distinct block with usable bytes; with
   * a page-multiple offset it would otherwise end exactly at its mapping. */
  if (size == 0) size = 1;
  if (align <= HK_ARENA_PAGE && size <= HK_ARENA_MAX_BLOCK) {
    void* p = hk_arena_alloc(size, zero, growing);
    if (p != NULL) return p;
    /* No chunk could be mapped or committed (an address-space limit, a
     * backend's byte budget): a mapping of just this block may still fit. */
  }
  return hk_mapping_alloc(size, align, zero);
}

/* A request of `size` bytes counted off the fast path: the thread's
 * HAKMEM_THREAD_STATS switch first, then the profiler's count on the
 * thread's sampling budget (malloc's, or the one set aside while the
 * thread counts its bytes). True when this request is the sample. */
static bool count_request(hk_heap* heap, size_t size) {
  if (hk_unlikely(hk_count_changed())) hk_heap_count_sync(heap);
  bool sample = false;
  if (hk_prof_counting()) {
    uint64_t* budget = hk_tls.counts_on ? &hk_tls.counts_budget : &hk_tls.sample_budget;
    *budget = hk_prof_take(&hk_tls, *budget, size, &sample);
  }
  return sample;
}

/* Allocations counted (prof.h): a block above the classes is charged to
 * the count and, when it is the sample, recorded once it exists; a thread
 * that counts its bytes (or whose HAKMEM_THREAD_STATS changed) counts it
 * once it exists. */
/* Big block p, served for a request of `size` bytes that count_request
 * counted (sample: it is the sample): recorded by the profiler, added to
 * the thread's counters. */
static HK_ALLOC_TEXT void big_counted(void* p, size_t size, bool sample) {
  if (sample) hk_prof_record_big(p, size, __builtin_frame_address(0));
  if (hk_tls.counts_on) hk_tls.counts_allocated += hk_big_usable(p);
}

static HK_NOINLINE HK_ALLOC_TEXT void* big_alloc_counted(size_t size, size_t align, bool zero, bool growing) {
  bool sample = count_request(hk_tls.heap, size);
  void* p = big_alloc_plain(size, align, zero, growing);
  if (p == NULL) {
    if (!sample) hk_prof_refund(&hk_tls, size);
    return NULL;
  }
  big_counted(p, size, sample);
  return p;
}

/* growing: realloc moving a block that grows (hk_arena_alloc). */
static inline HK_ALLOC_TEXT void* big_alloc(size_t size, size_t align, bool zero, bool growing) {
  if (hk_unlikely(hk_prof_counting() || hk_count_changed())) return big_alloc_counted(size, align, zero, growing);
  return big_alloc_plain(size, align, zero, growing);
}

/* A block of class cls for a thread whose current span had none. */
static HK_ALLOC_TEXT void* class_slow(hk_heap* heap, unsigned cls) {
  /* HAKMEM_THREAD_STATS changed: this thread starts or stops counting. */
  if (hk_unlikely(hk_count_changed())) hk_heap_count_sync(heap);
  if (hk_unlikely(!heap->is_live)) {
    hk_ensure_init();
    heap = hk_thread_heap();
    if (heap == NULL) { errno = ENOMEM; return NULL; }
  }
  void* p = hk_heap_alloc_slow(heap, cls);
  hk_thread_exit_release(heap);
  hk_reclaim_poke();
  if (p == NULL) errno = ENOMEM;
  return p;
}

/* Allocations counted (prof.h): a request of `size` bytes in class cls that
 * did not fit the thread's sampling budget, or came off the fast path (an
 * aligned one). The profiler counts it and grants the next budget; the
 * sample comes from the profiler's spans with its stack recorded, any other
 * request from the heap as usual; a thread that counts its bytes adds the
 * block's usable size. */
static HK_NOINLINE HK_ALLOC_TEXT void* class_counted(hk_heap* heap, unsigned cls, size_t size) {
  bool sample = count_request(heap, size);
  void* p = NULL;
  if (hk_unlikely(sample)) p = hk_prof_alloc_small(cls, size, __builtin_frame_address(0));
  if (p == NULL) p = hk_span_pop(heap->current[cls]);
  if (p == NULL) p = class_slow(heap, cls);
  if (p == NULL && !sample) hk_prof_refund(&hk_tls, size);
  if (p != NULL && hk_tls.counts_on) hk_tls.counts_allocated += hk_class_size[cls];
  return p;
}

HK_NOINLINE HK_ALLOC_TEXT void* hk_malloc_slow(size_t size, hk_heap* heap) {
  if (size > HK_SMALL_MAX) return big_alloc(size, HK_ALIGN, false, false);
  /* A small request comes here only from the counted branch, taken because
   * hk_hot.small_limit was 0. Every value of the limit but its initial one
   * was stored by hk_prof_configure (prof.c) with release, after the class
   * table was filled, so this acquire load makes the table safe to read
   * whatever it returns. Not 0 now: counting has stopped. */
  bool counting = __atomic_load_n(&hk_hot.small_limit, __ATOMIC_ACQUIRE) == 0;
  unsigned cls = hk_class_of_index[HK_SIZE_INDEX(size)];
  if (hk_unlikely(!counting)) return class_slow(heap, cls);
  /* A thread that counts its bytes: every one of its allocations comes
   * here (malloc reads its budget as 0); most are served right here, as
   * the counted branch serves them, and counted. (It notices the option
   * going to 0 on class_counted's path, within a budget.) */
  if (hk_tls.counts_on && size < hk_tls.counts_budget) {
    hk_span* s = heap->current[cls];
    hk_block* b;
    hk_block* next;
    if (hk_likely(hk_span_pop_head(s, &b, &next))) {
      hk_tls.counts_budget -= size;
      hk_tls.counts_allocated += hk_class_size[cls];
      return hk_span_pop_take(s, b, next, true);
    }
  }
  return class_counted(heap, cls, size);
}

HK_NOINLINE HK_ALLOC_TEXT void* hk_malloc_far(size_t size, hk_heap* heap, hk_span* s) {
  void* p = hk_span_pop_far(s);
  if (hk_likely(p != NULL)) return p;
  /* Counted or not, this request was counted already (if at all): the
   * class's slow path serves it. */
  hk_ensure_init();
  return class_slow(heap, hk_class_of_index[HK_SIZE_INDEX(size)]);
}

/* For a pop that found its span's free list corrupted (warn mode): the
 * slow path quarantines the span and serves the class elsewhere. */
static void* refill_after_corruption(unsigned cls) { return class_slow(hk_tls.heap, cls); }
__attribute__((constructor)) static void register_refill(void) { hk_span_refill = refill_after_corruption; }

/* A block of class cls for an aligned request of `size` bytes. */
static HK_ALLOC_TEXT void* alloc_class(unsigned cls, size_t size) {
  hk_heap* heap = hk_tls.heap;
  if (hk_unlikely(hk_prof_counting())) return class_counted(heap, cls, size);
  void* p = hk_span_pop(heap->current[cls]);
  if (hk_likely(p != NULL)) return p;
  return class_slow(heap, cls);
}

/* ---- aligned ---------------------------------------------------------------- */
HK_ALLOC_TEXT void* hk_alloc_aligned(size_t align, size_t size, bool zero) {
  if (align <= HK_ALIGN) {
    void* p = hk_malloc_inline(size);
    if (zero && p) memset(p, 0, size);
    return p;
  }
  hk_ensure_init();
  int cls = hk_class_for_aligned(size, align);
  if (cls < 0) return big_alloc(size, align, zero, false);
  void* p = alloc_class((unsigned)cls, size);
  if (zero && p) memset(p, 0, size);
  return p;
}

static inline bool is_pow2(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

HK_ALLOC_TEXT void* hk_calloc_impl(size_t count, size_t size) {
  size_t bytes;
  if (hk_unlikely(__builtin_mul_overflow(count, size, &bytes))) {
    errno = ENOMEM;
    return NULL;
  }
  if (bytes > HK_SMALL_MAX) return big_alloc(bytes, HK_ALIGN, true, false);
  void* p = hk_malloc_inline(bytes);
  if (hk_likely(p != NULL)) memset(p, 0, bytes);
  return p;
}

/* realloc's new size for a block of `old` usable bytes that must move:
 * growing takes at least a quarter more than the block had, so a buffer
 * grown a few bytes at a time (string builders, vectors appending) is
 * copied O(log n) times, not once per class step. Under memcheck the block
 * is exactly what was asked, so its view of sizes stays exact. */
static size_t realloc_want(size_t old, size_t size) {
  size_t grown = old + old / 4;  /* old is a block's usable size, far below SIZE_MAX */
  return size > old && size < grown && !HK_VG_RUNNING() ? grown : size;
}

/* The block p moved to, its contents copied; the caller frees p once this
 * succeeded. NULL (errno set) leaves p alone, as POSIX says. */
static void* realloc_move(void* p, size_t old, size_t size) {
  size_t want = realloc_want(old, size);
  /* A block growing past the classes goes where it can grow again in place. */
  void* q = want > HK_SMALL_MAX && size > old ? big_alloc(want, HK_ALIGN, false, true) : hk_malloc_inline(want);
  if (q == NULL && want != size) q = hk_malloc_inline(size);
  if (q != NULL) memcpy(q, p, size < old ? size : old);
  return q;
}

/* Keep the block when the new size fits and would not waste over half
 * (never for size 0: the smallest block is 16 bytes). */
static inline bool realloc_fits(size_t old, size_t size) {
  return size <= old && size >= old / 2 && !HK_VG_RUNNING();
}

/* A block of glibc's heap or of ld.so's start-up allocator (foreign.h):
 * always moved into hakmem's memory, so the program holds a hakmem block
 * from here on. glibc's usable size bounds the copy; an ld.so block has no
 * size, so what is left of its area after it does (reading its neighbours'
 * bytes too, which the new block may hold as it holds any junk). */
static void* realloc_foreign(void* p, hk_foreign_kind kind, size_t size) {
  if (size == 0) {
    hk_foreign_free(p, kind);
    return NULL;
  }
  void* q = realloc_move(p, hk_foreign_readable(p, kind), size);
  if (q != NULL) hk_foreign_free(p, kind);
  return q;
}

/* A big block resized without malloc or free (of `old` usable bytes, now
 * q for a request of `size`): counted as when it moves, as the old block's
 * free and a new block's allocation. The profiler counts the request (the
 * old record is gone already) and may sample q; the per-thread counters
 * free the old size and allocate the new one. */
static HK_NOINLINE HK_ALLOC_TEXT void* realloc_resized(size_t old, void* q, size_t size) {
  bool sample = hk_unlikely(hk_prof_counting() || hk_count_changed()) && count_request(hk_tls.heap, size);
  if (hk_unlikely(hk_tls.counts_on)) hk_tls.counts_freed += old;
  big_counted(q, size, sample);
  return q;
}

/* Everything but a live small block: NULL, arena and mapped blocks, foreign
 * blocks, and pointers to report. */
static HK_NOINLINE HK_ALLOC_TEXT void* realloc_other(void* p, size_t size, const char* func) {
  if (p == NULL) return hk_malloc_inline(size);
  if (hk_segmap_kind((uintptr_t)p) == HK_MAP_NONE) {
    hk_foreign_kind kind = hk_foreign_kind_of(p);
    if (kind != HK_FOREIGN_NONE) return realloc_foreign(p, kind, size);
  }
  size_t old = hk_usable_size_checked(p, func);
  if (old == 0) return NULL;  /* misuse reported (warn mode): leave p alone */
  if (size == 0) {
    /* glibc frees and returns NULL. */
    hk_free_inline(p, func);
    return NULL;
  }
  if (realloc_fits(old, size)) return p;
  if (size > HK_SMALL_MAX && !HK_VG_RUNNING()) {
    unsigned kind = hk_segmap_kind((uintptr_t)p);
    /* An arena block that stays in the arena's range changes size where it
     * is when it can (its tail back, or the free pages after it taken); a
     * mapped block that stays beyond the arena's range is resized without a
     * copy (its tail unmapped, or its pages moved to a larger mapping). */
    bool arena = kind == HK_MAP_ARENA && size <= HK_ARENA_MAX_BLOCK;
    bool mapped = kind == HK_MAP_MAPPING && size > HK_ARENA_MAX_BLOCK;
    if (arena || mapped) {
      /* To the profiler a resize is the old block's free and a new block's
       * allocation, as a move is. Its record goes first: once resized away,
       * p's address may be another thread's new block. (Should the resize
       * fail and the move below fail too, the block stays unrecorded.) */
      hk_prof_forget_big(p);
      void* q = arena ? (hk_arena_resize(p, size) ? p : NULL) : hk_mapping_resize(p, realloc_want(old, size));
      if (q != NULL) return realloc_resized(old, q, size);
    }
  }
  void* q = realloc_move(p, old, size);
  if (q != NULL) hk_free_inline(p, func);
  return q;
}

HK_ALLOC_TEXT void* hk_realloc_impl(void* p, size_t size, const char* func) {
  /* A live small block, checked once as free() would check it (segmap,
   * block start, not freed): kept, or moved and then given back without
   * checking it again. The rest of realloc is the slow path. */
  hk_span* s = hk_small_live_block(p);
  if (hk_likely(s != NULL)) {
    hk_block* b = (hk_block*)p;
    uintptr_t tag = hk_free_tag(b);
    size_t old = s->block_size;
    if (realloc_fits(old, size)) return p;
    if (size == 0) {
      hk_free_block(s, b, tag, func);  /* glibc frees and returns NULL */
      return NULL;
    }
    void* q = realloc_move(p, old, size);
    if (q != NULL) hk_free_block(s, b, tag, func);
    return q;
  }
  return realloc_other(p, size, func);
}

HK_ALLOC_TEXT void* hk_reallocarray_impl(void* p, size_t count, size_t size, const char* func) {
  size_t bytes;
  if (__builtin_mul_overflow(count, size, &bytes)) {
    errno = ENOMEM;
    return NULL;
  }
  return hk_realloc_impl(p, bytes, func);
}

HK_ALLOC_TEXT int hk_posix_memalign_impl(void** out, size_t align, size_t size) {
  if (!is_pow2(align) || align < sizeof(void*)) return EINVAL;
  int saved = errno;
  void* p = hk_alloc_aligned(align, size, false);
  if (p == NULL) {
    errno = saved;  /* posix_memalign reports through its result, not errno */
    return ENOMEM;
  }
  *out = p;
  return 0;
}

HK_ALLOC_TEXT void* hk_aligned_alloc_impl(size_t align, size_t size) {
  /* C17 (DR 460) dropped C11's rule that size be a multiple of the
   * alignment: aligned_alloc(64, 100) returns memory, as under glibc,
   * tcmalloc and mimalloc. glibc 2.36 (Debian 12) makes aligned_alloc the
   * same function as memalign, so a non-power-of-two alignment is rounded
   * up here as well (glibc 2.38 and later return EINVAL for it instead;
   * accepting it breaks no program written for either). README "glibc's
   * contracts" lists every case. */
  return hk_memalign_impl(align, size);
}

HK_ALLOC_TEXT void* hk_memalign_impl(size_t align, size_t size) {
  /* glibc rounds a non-power-of-two alignment up to the next power of two
   * (0 and 1 ask for nothing beyond malloc's); one above the highest power
   * of two that fits a size_t is EINVAL. */
  if (!is_pow2(align)) {
    if (align > ((size_t)1 << (sizeof(size_t) * 8 - 1))) {
      errno = EINVAL;
      return NULL;
    }
    size_t a = 1;
    while (a < align) a <<= 1;
    align = a;
  }
  return hk_alloc_aligned(align, size, false);
}

HK_ALLOC_TEXT void* hk_pvalloc_impl(size_t size) {
  size_t rounded = (size + HK_OS_PAGE - 1) & ~(size_t)(HK_OS_PAGE - 1);
  if (rounded < size) {
    errno = ENOMEM;
    return NULL;
  }
  return hk_alloc_aligned(HK_OS_PAGE, rounded ? rounded : HK_OS_PAGE, false);
}

/* free_sized(p, size): size must be what p was allocated (or last
 * reallocated) with. hakmem cannot know the exact request, but it knows the
 * range a request for this block can have had: at most its usable size and,
 * above 128 bytes, at least half of it (a smaller request would have got a
 * smaller class, and realloc keeps a block only down to half its size).
 * `aligned` requests (free_aligned_sized) may sit in a much larger class, so
 * only the upper bound applies to them. */
void hk_free_sized_impl(void* p, size_t size, bool aligned, const char* func) {
  if (p == NULL) return;
  size_t usable = hk_usable_size_checked(p, func);
  if (usable == 0) return;
  bool small = usable <= HK_SMALL_MAX && hk_segmap_kind((uintptr_t)p) == HK_MAP_SEGMENT;
  if (size > usable || (!aligned && small && usable > 128 && size < usable / 2)) {
    hk_misuse("free_sized with a size that does not match the block", p, func);
    return;
  }
  hk_free_inline(p, func);
}

/* ---- hk_ API ----------------------------------------------------------------- */
HK_ALLOC_TEXT void* hk_malloc(size_t size) { return hk_malloc_inline(size); }
void hk_free(void* p) { hk_free_inline(p, "hk_free"); }
HK_ALLOC_TEXT void* hk_calloc(size_t count, size_t size) { return hk_calloc_impl(count, size); }
HK_ALLOC_TEXT void* hk_realloc(void* p, size_t size) { return hk_realloc_impl(p, size, "hk_realloc"); }
HK_ALLOC_TEXT void* hk_reallocarray(void* p, size_t count, size_t size) { return hk_reallocarray_impl(p, count, size, "hk_reallocarray"); }
void hk_free_sized(void* p, size_t size) { hk_free_sized_impl(p, size, false, "hk_free_sized"); }
void hk_free_aligned_sized(void* p, size_t align, size_t size) {
  (void)align;
  hk_free_sized_impl(p, size, true, "hk_free_aligned_sized");
}
HK_ALLOC_TEXT void* hk_aligned_alloc(size_t align, size_t size) { return hk_aligned_alloc_impl(align, size); }
HK_ALLOC_TEXT int hk_posix_memalign(void** out, size_t align, size_t size) { return hk_posix_memalign_impl(out, align, size); }
HK_ALLOC_TEXT void* hk_memalign(size_t align, size_t size) { return hk_memalign_impl(align, size); }
HK_ALLOC_TEXT void* hk_valloc(size_t size) { return hk_alloc_aligned(HK_OS_PAGE, size, false); }
HK_ALLOC_TEXT void* hk_pvalloc(size_t size) { return hk_pvalloc_impl(size); }
size_t hk_malloc_usable_size(const void* p) { return hk_usable_size_checked(p, "hk_malloc_usable_size"); }

int hk_owns(const void* p) { return hk_segmap_kind((uintptr_t)p) != HK_MAP_NONE; }

void hk_collect(void) {
  hk_heap* heap = hk_tls.heap;
  if (heap->is_live) hk_heap_collect(heap, true);
}

/* hk_trim: trim.c */
