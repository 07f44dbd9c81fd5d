/* Large allocations (above HK_SMALL_MAX, or aligned beyond what a size class
 * can give). Up to HK_ARENA_MAX_BLOCK with alignment up to HK_ARENA_PAGE they come
 * from the arena (arena.c); the rest are each their own mapping, aligned to
 * 4 MiB so free() finds the header by masking, exactly as for segments. Freed mappings wait in a cache
 * for reuse (no syscall for a program that frees and reallocates big
 * buffers), bounded and aged by the release policy (cache_mb, delay) and
 * decommitted as the decommit policy says. realloc resizes a mapped block
 * without copying it (hk_large_resize): shrinking unmaps its tail, growing
 * moves its pages into a larger mapping. */
#include <errno.h>
#include <string.h>

#include "alloc/core/annotate.h"
#include "alloc/core/internal.h"
#include "alloc/core/options.h"
#include "alloc/core/stats_internal.h"

#define HK_LARGE_MAGIC 0x686b6c617267ull  /* "hklarg": live */
#define HK_LARGE_CACHED 0x686b63616368ull /* "hkcach": in the cache */
#define HK_LARGE_BINS 160                 /* size bins: 4 per doubling of the page count, up to 2^41 pages */
#define HK_LARGE_BIN_WALK 8               /* entries looked at per bin before trying the next */

/* At the base of every large mapping. Its page is never decommitted, so the
 * cache links entries through it and needs no memory of its own. */
typedef struct hk_large {
  uint64_t magic;            /* HK_LARGE_MAGIC while live, HK_LARGE_CACHED while cached */
  size_t map_size;           /* bytes mapped, a multiple of the OS page */
  size_t user_offset;        /* live: user pointer = base + user_offset */
  struct hk_large* older;    /* cached: age list, toward the oldest */
  struct hk_large* newer;    /* cached: age list, toward the newest */
  struct hk_large* bin_next; /* cached: same size bin, toward the oldest */
  struct hk_large* bin_prev; /* cached: same size bin, toward the newest */
  uint64_t idle_since_ms;    /* cached: when it was freed (monotonic ms) */
  bool decommitted;          /* cached: everything past the header page was decommitted */
} hk_large;

/* The cache of freed mappings, all under hk_large_lock_: an age list (the
 * release policy returns the oldest first) and size bins (allocation takes
 * a fitting one in a few steps however many are cached; the speed variant
 * keeps up to a GiB). */
static hk_lock_t hk_large_lock_;
static hk_large* hk_large_newest;
static hk_large* hk_large_oldest;
static hk_large* hk_large_bins[HK_LARGE_BINS];  /* newest first */
_Atomic uint64_t hk_large_due_ms;

void hk_large_lock(bool lock, bool reinit) {
  if (lock) hk_lock(&hk_large_lock_);
  else if (reinit) atomic_store_explicit(&hk_large_lock_.state, 0, memory_order_relaxed);
  else hk_unlock(&hk_large_lock_);
}

/* Bin of a mapping of `bytes`: pages 1..3 get bins 0..2, then four bins per
 * doubling; monotonic, so every entry of a higher bin is larger. */
static unsigned large_bin(size_t bytes) {
  uint64_t pages = bytes / HK_OS_PAGE;
  if (pages < 4) return pages ? (unsigned)pages - 1 : 0;
  unsigned lg = 63u - (unsigned)__builtin_clzll(pages);
  unsigned bin = 4 * lg + (unsigned)((pages >> (lg - 2)) & 3) - 5;
  return bin < HK_LARGE_BINS ? bin : HK_LARGE_BINS - 1;
}

/* What a mapping counts in committed_bytes. */
static inline uint64_t large_committed(const hk_large* h) {
  return h->decommitted ? HK_OS_PAGE : h->map_size;
}

/* ---- cache lists (lock held) ---------------------------------------------- */
/* Adds h as the newest entry, or as the oldest (a mapping the backend would
 * not unmap goes back where it was). */
/* Bytes of cached mappings still committed. Written under the cache lock,
 * read without it by hk_large_free as a hint. */
static uint64_t hk_large_warm_bytes;

/* Cached mappings kept committed up to this many bytes before freeing
 * decommits: a program that frees and reallocates big buffers at a high
 * rate (a service's request bodies) then reuses warm memory instead of paying
 * madvise plus a page fault per page on every cycle, while a freed burst
 * still goes back at once beyond it. */
#define HK_LARGE_WARM_BYTES ((uint64_t)2 << 20)

static void warm_add(const hk_large* h, int sign) {
  if (h->decommitted) return;
  uint64_t v = __atomic_load_n(&hk_large_warm_bytes, __ATOMIC_RELAXED);
  __atomic_store_n(&hk_large_warm_bytes, sign > 0 ? v + h->map_size : v - h->map_size, __ATOMIC_RELAXED);
}

static void cache_push(hk_large* h, bool oldest) {
  warm_add(h, +1);
  if (oldest) {
    h->older = NULL;
    h->newer = hk_large_oldest;
    if (hk_large_oldest) hk_large_oldest->older = h; else hk_large_newest = h;
    hk_large_oldest = h;
  } else {
    h->newer = NULL;
    h->older = hk_large_newest;
    if (hk_large_newest) hk_large_newest->newer = h; else hk_large_oldest = h;
    hk_large_newest = h;
  }
  hk_large** bin = &hk_large_bins[large_bin(h->map_size)];
  h->bin_prev = NULL;
  h->bin_next = *bin;
  if (*bin) (*bin)->bin_prev = h;
  *bin = h;
  hk_stat_add(&hk_stat.cached_bytes, (int64_t)h->map_size);
}

static void cache_unlink(hk_large* h) {
  warm_add(h, -1);
  if (h->newer) h->newer->older = h->older; else hk_large_newest = h->older;
  if (h->older) h->older->newer = h->newer; else hk_large_oldest = h->newer;
  if (h->bin_prev) h->bin_prev->bin_next = h->bin_next; else hk_large_bins[large_bin(h->map_size)] = h->bin_next;
  if (h->bin_next) h->bin_next->bin_prev = h->bin_prev;
  h->older = h->newer = h->bin_next = h->bin_prev = NULL;
  hk_stat_add(&hk_stat.cached_bytes, -(int64_t)h->map_size);
}

static void cache_update_due(void) {
  uint64_t due = hk_large_oldest ? hk_release_due_ms(hk_large_oldest->idle_since_ms) : 0;
  atomic_store_explicit(&hk_large_due_ms, due, memory_order_relaxed);
}

/* Unmaps a mapping taken out of the cache; false (still mapped, segmap
 * restored) when the backend refuses. */
static bool large_unmap(hk_large* h) {
  void* base = h;
  size_t map_size = h->map_size;
  uint64_t committed = large_committed(h);
  hk_segmap_set(base, map_size, HK_MAP_NONE);
  if (hk_active->backend->release(base, map_size) != 0) {
    hk_segmap_set(base, map_size, HK_MAP_LARGE);
    return false;
  }
  hk_stat_add(&hk_stat.committed_bytes, -(int64_t)committed);
  return true;
}

/* Releases the oldest entries: all of them, or those the policy no longer
 * wants. Stops at the first the backend refuses (it stays, oldest). */
static void cache_release_old(uint64_t now, bool all) {
  while (hk_large_oldest != NULL) {
    hk_large* oldest = hk_large_oldest;
    if (!all) {
      if (!hk_release_wanted(oldest->idle_since_ms, now)) break;
    }
    cache_unlink(oldest);
    if (!large_unmap(oldest)) {
      cache_push(oldest, true);
      break;
    }
  }
  cache_update_due();
}

void hk_large_trim(void) {
  hk_lock(&hk_large_lock_);
  cache_release_old(0, true);
  hk_unlock(&hk_large_lock_);
  hk_arena_trim();
}

void hk_large_release_due(uint64_t now) {
  hk_lock(&hk_large_lock_);
  cache_release_old(now, false);
  hk_unlock(&hk_large_lock_);
}

/* A cached mapping of at least `need` bytes wasting at most half, newest
 * first within a bin, or NULL. Only the bins from need's to 2 * need's can
 * hold one. Lock held. */
static hk_large* cache_find(size_t need) {
  unsigned last = large_bin(need * 2);
  for (unsigned b = large_bin(need); b <= last; b++) {
    hk_large* h = hk_large_bins[b];
    for (unsigned walked = 0; h != NULL && walked < HK_LARGE_BIN_WALK; h = h->bin_next, walked++)
      if (h->map_size >= need && h->map_size / 2 <= need) return h;
  }
  return NULL;
}

/* Whether cache_take(need) would hand out a mapping still resident. */
static bool cache_has_warm_fit(size_t need) {
  hk_lock(&hk_large_lock_);
  hk_large* found = cache_find(need);
  bool warm = found != NULL && !found->decommitted;
  hk_unlock(&hk_large_lock_);
  return warm;
}

/* cache_find's mapping made usable again; NULL if none fits or the backend
 * refused to commit it. */
static hk_large* cache_take(size_t need) {
  hk_lock(&hk_large_lock_);
  hk_large* found = cache_find(need);
  if (found) {
    cache_unlink(found);
    if (found->decommitted) {
      if (hk_active->backend->commit((uint8_t*)found + HK_OS_PAGE, found->map_size - HK_OS_PAGE) != 0) {
        cache_push(found, false);
        found = NULL;
      } else {
        found->decommitted = false;
        hk_stat_add(&hk_stat.committed_bytes, (int64_t)(found->map_size - HK_OS_PAGE));
      }
    }
    cache_update_due();
  }
  hk_unlock(&hk_large_lock_);
  return found;
}

/* Bytes to map for a block of size bytes offset bytes past the base (whole
 * OS pages); 0 when that would overflow. */
static size_t large_map_bytes(size_t offset, size_t size) {
  if (size > SIZE_MAX / 2 - offset - HK_SEGMENT_SIZE) return 0;
  return (offset + size + HK_OS_PAGE - 1) & ~(size_t)(HK_OS_PAGE - 1);
}

void* hk_large_alloc(size_t size, size_t align, bool zero) {
  hk_ensure_init();
  /* free() finds the header at the 4 MiB boundary below the pointer, so the
   * pointer must sit in the mapping's first 4 MiB: alignments of 4 MiB and
   * more cannot be served (ENOMEM, documented). Checked first, so no size
   * arithmetic below can wrap for alignments near 2^63. */
  if (align >= HK_SEGMENT_SIZE) {
    errno = ENOMEM;
    return NULL;
  }
  /* A zero-byte request still gets a distinct block with usable bytes; with
   * a page-multiple offset it would otherwise end exactly at its mapping. */
  if (size == 0) size = 1;
  if (align <= HK_ARENA_PAGE && size <= HK_ARENA_MAX_BLOCK) {
    void* p = hk_arena_alloc(size, zero);
    if (p != NULL) return p;
    /* No chunk could be mapped or committed (an address-space limit, a
     * backend's byte budget): a mapping of just this block may still fit. */
  }
  if (align < HK_ALIGN) align = HK_ALIGN;
  /* The smallest multiple of align past the header. */
  size_t offset = (sizeof(hk_large) + align - 1) & ~(align - 1);
  size_t need = large_map_bytes(offset, size);
  if (need == 0) {
    errno = ENOMEM;
    return NULL;
  }
  hk_large* h = cache_take(need);
  bool fresh = h == NULL;
  if (h == NULL) {
    void* base = NULL;
    if (hk_active->backend->reserve(need, HK_SEGMENT_SIZE, &base) != 0) {
      errno = ENOMEM;
      return NULL;
    }
    h = base;
    h->map_size = need;
    hk_segmap_set(base, need, HK_MAP_LARGE);
    hk_stat_add(&hk_stat.committed_bytes, (int64_t)need);
  }
  h->magic = HK_LARGE_MAGIC;
  h->user_offset = offset;
  hk_stat_add(&hk_stat.large_live, 1);
  hk_stat_add(&hk_stat.large_bytes, (int64_t)h->map_size);
  void* user = (uint8_t*)h + offset;
  HK_VG_ALLOC(user, h->map_size - offset);
  if (zero && !fresh) memset(user, 0, size);  /* fresh mappings are zero already */
  return user;
}

/* Returns the header of a live large block starting exactly at p, or NULL. */
static hk_large* large_header(const void* p) {
  if (hk_segmap_kind((uintptr_t)p) != HK_MAP_LARGE) return NULL;
  hk_large* h = (hk_large*)hk_segment_of(p);
  if (h->magic != HK_LARGE_MAGIC || (uintptr_t)p != (uintptr_t)h + h->user_offset) return NULL;
  return h;
}

/* Gives back the mapping's pages past need (< its size) where it is. */
static bool large_shrink(hk_large* h, size_t need) {
  size_t old_size = h->map_size;
  /* 4 MiB pieces no longer part of it leave the segmap first: free() must
   * not trust them once they are unmapped. */
  size_t kept = (need + HK_SEGMENT_MASK) & ~(size_t)HK_SEGMENT_MASK;
  size_t had = (old_size + HK_SEGMENT_MASK) & ~(size_t)HK_SEGMENT_MASK;
  if (had > kept) hk_segmap_set((uint8_t*)h + kept, had - kept, HK_MAP_NONE);
  if (hk_active->backend->release((uint8_t*)h + need, old_size - need) != 0) {
    hk_segmap_set(h, old_size, HK_MAP_LARGE);
    return false;
  }
  h->map_size = need;
  hk_stat_add(&hk_stat.committed_bytes, -(int64_t)(old_size - need));
  hk_stat_add(&hk_stat.large_bytes, -(int64_t)(old_size - need));
  return true;
}

/* Moves the mapping's pages, header included, into a new 4 MiB-aligned
 * mapping of need (> its size) bytes. The new header, or NULL. */
static hk_large* large_move(hk_large* h, size_t need) {
  const hk_backend* backend = hk_active->backend;
  size_t old_size = h->map_size;
  void* dst = NULL;
  if (backend->move == NULL || backend->reserve(need, HK_SEGMENT_SIZE, &dst) != 0) return NULL;
  if (backend->move(h, old_size, dst, need) != 0) {
    backend->release(dst, need);  /* if even this fails, the range stays mapped, unused and counted */
    return NULL;
  }
  hk_segmap_set(h, old_size, HK_MAP_NONE);  /* h is unmapped now */
  h = dst;
  h->map_size = need;
  hk_segmap_set(h, need, HK_MAP_LARGE);
  hk_stat_add(&hk_stat.committed_bytes, (int64_t)(need - old_size));
  hk_stat_add(&hk_stat.large_bytes, (int64_t)(need - old_size));
  return h;
}

void* hk_large_resize(void* p, size_t size) {
  hk_large* h = large_header(p);
  if (h == NULL) return NULL;
  size_t need = large_map_bytes(h->user_offset, size);
  if (need == 0) return NULL;
  if (need <= h->map_size) return need == h->map_size || large_shrink(h, need) ? p : NULL;
  /* A resident cached mapping that fits is better filled by a copy: moved
   * pages would leave it idle and fault in the new part. NULL sends realloc
   * to the copy, which takes it. */
  if (cache_has_warm_fit(need)) return NULL;
  h = large_move(h, need);
  return h ? (uint8_t*)h + h->user_offset : NULL;
}

size_t hk_large_usable(const void* p) {
  hk_large* h = large_header(p);
  return h ? h->map_size - h->user_offset : 0;
}

void hk_large_free(void* p, const char* func) {
  hk_large* h = large_header(p);
  if (h == NULL) {
    hk_misuse(hk_segmap_kind((uintptr_t)p) == HK_MAP_NONE ? "invalid free" : "free of an interior or freed pointer", p, func);
    return;
  }
  HK_VG_FREE(p);
  /* A second free of p now fails the header check. */
  h->magic = HK_LARGE_CACHED;
  size_t map_size = h->map_size;
  hk_stat_add(&hk_stat.large_live, -1);
  hk_stat_add(&hk_stat.large_bytes, -(int64_t)map_size);

  h->decommitted = false;
  hk_decommit_mode mode = hk_decommit_wanted(map_size);
  bool warm_room = __atomic_load_n(&hk_large_warm_bytes, __ATOMIC_RELAXED) + map_size <= HK_LARGE_WARM_BYTES;
  /* Keep the header page: the cache links entries through it. */
  if (mode != HK_DECOMMIT_OFF && !warm_room && map_size > HK_OS_PAGE &&
      hk_active->backend->decommit((uint8_t*)h + HK_OS_PAGE, map_size - HK_OS_PAGE, mode) == 0) {
    h->decommitted = true;
    hk_stat_add(&hk_stat.committed_bytes, -(int64_t)(map_size - HK_OS_PAGE));
  }
  uint64_t now = hk_now_ms();
  h->idle_since_ms = now;
  hk_lock(&hk_large_lock_);
  cache_push(h, false);
  cache_release_old(now, false);
  hk_unlock(&hk_large_lock_);
  hk_release_tick(now);  /* the segment cache may be due too */
}
