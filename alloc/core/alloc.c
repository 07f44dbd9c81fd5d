/* The allocation API: the hk_ functions of alloc/include/hakmem.h. The libc
 * names in override.c share these bodies (through alloc_inline.h and the
 * helpers here), so every entry point routes the same way (lesson 4). */
#include <errno.h>
#include <string.h>

#include "alloc/core/alloc_inline.h"
#include "alloc/backends/backend.h"
#include "alloc/core/api.h"

/* ---- slow paths ---------------------------------------------------------- */
HK_NOINLINE void* hk_malloc_slow(size_t size, hk_heap* heap) {
  if (size > HK_SMALL_MAX) return hk_large_alloc(size, HK_ALIGN, false);
  if (hk_unlikely(!heap->is_live)) {
    heap = hk_heap_get_or_create();
    if (heap == NULL) { errno = ENOMEM; return NULL; }
  }
  void* p = hk_alloc_class_slow(heap, hk_class_of_index[HK_SIZE_INDEX(size)]);
  if (p == NULL) errno = ENOMEM;
  return p;
}

static void* alloc_class(unsigned cls) {
  hk_heap* heap = hk_tls_heap;
  void* p = hk_alloc_small_inline(heap, cls);
  if (hk_likely(p != NULL)) return p;
  if (!heap->is_live) {
    heap = hk_heap_get_or_create();
    if (heap == NULL) { errno = ENOMEM; return NULL; }
  }
  p = hk_alloc_class_slow(heap, cls);
  if (p == NULL) errno = ENOMEM;
  return p;
}

HK_NOINLINE void hk_free_slow(void* p, const char* func) {
  if (p == NULL) return;
  uintptr_t a = (uintptr_t)p;
  switch (hk_segmap_kind(a)) {
    case HK_MAP_LARGE:
      hk_large_free(p, func);
      return;
    case HK_MAP_ARENA:
      hk_arena_free(p, func);
      return;
    case HK_MAP_SEGMENT: {
      hk_span* s = hk_span_at(p);
      if (a & (HK_ALIGN - 1)) hk_misuse("free of a misaligned pointer", p, func);
      else if (s->in_use && a - s->start < __atomic_load_n(&s->carved_bytes, __ATOMIC_RELAXED)) hk_misuse("free of an interior pointer", p, func);
      else hk_misuse("invalid free (not an allocated block)", p, func);
      return;
    }
    case HK_MAP_LARGE_TAIL:
      hk_misuse("free of an interior pointer", p, func);
      return;
    default:
      hk_misuse("invalid free (pointer not from hakmem)", p, func);
      return;
  }
}

/* Remote free: the block belongs to another thread's span (or an abandoned
 * one). Lock-free push; the owner collects on its slow path. */
HK_NOINLINE void hk_free_remote(hk_segment* seg, hk_span* span, hk_block* b) {
  /* Statistics: the freeing thread's own counter, plain (owner-written, no
   * shared cache line). A thread without a heap is not counted: writing the
   * shared static empty heap would race. */
  hk_heap* self = hk_tls_heap;
  if (self->is_live) self->remote_frees++;
  /* Raise the hint before the push: after the push the block may be
   * collected, its span and segment freed, and seg must not be touched. */
  if (!atomic_load_explicit(&seg->remote_pending, memory_order_relaxed))
    atomic_store_explicit(&seg->remote_pending, 1, memory_order_relaxed);
  hk_block* head = atomic_load_explicit(&span->remote, memory_order_relaxed);
  do {
    hk_block_make_free(b, head);
    /* release: publishes b->next to the owner's acquire exchange. */
  } while (!atomic_compare_exchange_weak_explicit(&span->remote, &head, b, memory_order_release,
                                                  memory_order_relaxed));
}

/* ---- usable size ----------------------------------------------------------- */
size_t hk_usable_size_checked(const void* p, const char* func) {
  if (p == NULL) return 0;
  uintptr_t a = (uintptr_t)p;
  unsigned kind = hk_segmap_kind(a);
  if (kind == HK_MAP_SEGMENT) {
    hk_span* s = hk_span_of_block(p);
    if (s != NULL) {
      if (((const hk_block*)p)->tag == hk_free_tag(p)) {
        hk_misuse("use of a freed block", p, func);
        return 0;
      }
      return s->block_size;
    }
  } else if (kind == HK_MAP_LARGE) {
    size_t n = hk_large_usable(p);
    if (n) return n;
  } else if (kind == HK_MAP_ARENA) {
    bool freed = false;
    size_t n = hk_arena_usable(p, &freed);
    if (n) return n;
    if (freed) {
      hk_misuse("use of a freed block", p, func);
      return 0;
    }
  }
  hk_misuse("invalid pointer", p, func);
  return 0;
}

/* ---- aligned ---------------------------------------------------------------- */
void* hk_alloc_aligned(size_t align, size_t size, bool zero) {
  if (align <= HK_ALIGN) {
    void* p = hk_malloc_inline(size);
    if (zero && p) memset(p, 0, size);
    return p;
  }
  hk_ensure_init();
  int cls = hk_class_for_aligned(size, align);
  if (cls < 0) return hk_large_alloc(size, align, zero);
  void* p = alloc_class((unsigned)cls);
  if (zero && p) memset(p, 0, size);
  return p;
}

static inline bool is_pow2(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

void* hk_calloc_impl(size_t count, size_t size) {
  size_t bytes;
  if (hk_unlikely(__builtin_mul_overflow(count, size, &bytes))) {
    errno = ENOMEM;
    return NULL;
  }
  if (bytes > HK_SMALL_MAX) return hk_large_alloc(bytes, HK_ALIGN, true);
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
  void* q = hk_malloc_inline(want);
  if (q == NULL && want != size) q = hk_malloc_inline(size);
  if (q != NULL) memcpy(q, p, size < old ? size : old);
  return q;
}

/* Keep the block when the new size fits and would not waste over half
 * (never for size 0: the smallest block is 16 bytes). */
static inline bool realloc_fits(size_t old, size_t size) {
  return size <= old && size >= old / 2 && !HK_VG_RUNNING();
}

/* Everything but a live small block: NULL, arena and mapped blocks, and
 * pointers to report. */
static HK_NOINLINE void* realloc_other(void* p, size_t size, const char* func) {
  if (p == NULL) return hk_malloc_inline(size);
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
     * is when it can (its tail back, or the free pages after it taken). */
    if (kind == HK_MAP_ARENA && size <= HK_ARENA_MAX_BLOCK && hk_arena_resize(p, size)) return p;
    /* A mapped block that stays beyond the arena's range is resized without
     * a copy: its tail unmapped, or its pages moved to a larger mapping. */
    if (kind == HK_MAP_LARGE && size > HK_ARENA_MAX_BLOCK) {
      void* q = hk_large_resize(p, realloc_want(old, size));
      if (q != NULL) return q;
    }
  }
  void* q = realloc_move(p, old, size);
  if (q != NULL) hk_free_inline(p, func);
  return q;
}

void* hk_realloc_impl(void* p, size_t size, const char* func) {
  /* A live small block, checked once as free() would check it (segmap,
   * block start, not freed): kept, or moved and then given back without
   * checking it again. The rest of realloc is the slow path. */
  if (hk_likely(hk_segmap_kind((uintptr_t)p) == HK_MAP_SEGMENT)) {
    hk_span* s = hk_span_of_block(p);
    hk_block* b = (hk_block*)p;
    uintptr_t tag = hk_free_tag(b);
    if (hk_likely(s != NULL && b->tag != tag)) {
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
  }
  return realloc_other(p, size, func);
}

void* hk_reallocarray_impl(void* p, size_t count, size_t size, const char* func) {
  size_t bytes;
  if (__builtin_mul_overflow(count, size, &bytes)) {
    errno = ENOMEM;
    return NULL;
  }
  return hk_realloc_impl(p, bytes, func);
}

int hk_posix_memalign_impl(void** out, size_t align, size_t size) {
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

void* hk_aligned_alloc_impl(size_t align, size_t size) {
  /* C11 7.22.3.1: the alignment must be valid and size a multiple of it.
   * hakmem rejects both misuses instead of guessing what was meant. */
  if (!is_pow2(align) || (size & (align - 1)) != 0) {
    errno = EINVAL;
    return NULL;
  }
  return hk_alloc_aligned(align, size, false);
}

void* hk_memalign_impl(size_t align, size_t size) {
  /* glibc rounds a non-power-of-two alignment up; so do we. */
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

void* hk_pvalloc_impl(size_t size) {
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
void* hk_malloc(size_t size) { return hk_malloc_inline(size); }
void hk_free(void* p) { hk_free_inline(p, "hk_free"); }
void* hk_calloc(size_t count, size_t size) { return hk_calloc_impl(count, size); }
void* hk_realloc(void* p, size_t size) { return hk_realloc_impl(p, size, "hk_realloc"); }
void* hk_reallocarray(void* p, size_t count, size_t size) { return hk_reallocarray_impl(p, count, size, "hk_reallocarray"); }
void hk_free_sized(void* p, size_t size) { hk_free_sized_impl(p, size, false, "hk_free_sized"); }
void hk_free_aligned_sized(void* p, size_t align, size_t size) {
  (void)align;
  hk_free_sized_impl(p, size, true, "hk_free_aligned_sized");
}
void* hk_aligned_alloc(size_t align, size_t size) { return hk_aligned_alloc_impl(align, size); }
int hk_posix_memalign(void** out, size_t align, size_t size) { return hk_posix_memalign_impl(out, align, size); }
void* hk_memalign(size_t align, size_t size) { return hk_memalign_impl(align, size); }
void* hk_valloc(size_t size) { return hk_alloc_aligned(HK_OS_PAGE, size, false); }
void* hk_pvalloc(size_t size) { return hk_pvalloc_impl(size); }
size_t hk_malloc_usable_size(const void* p) { return hk_usable_size_checked(p, "hk_malloc_usable_size"); }

int hk_owns(const void* p) { return hk_segmap_kind((uintptr_t)p) != HK_MAP_NONE; }

void hk_collect(void) {
  hk_heap* heap = hk_tls_heap;
  if (heap->is_live) hk_heap_collect(heap, true);
}

/* hk_trim: trim.c */

const char* hk_version(void) { return "hakmem 0.1.0"; }
