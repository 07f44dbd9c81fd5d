/* Big mappings: blocks the arena does not take (above HK_ARENA_MAX_BLOCK,
 * or aligned beyond an arena page), each its own mapping, aligned to 4 MiB
 * so free() finds the header by masking, exactly as for segments. Freed
 * mappings wait in an aged cache for reuse (no syscall for a program that
 * frees and reallocates big buffers), found by size bins, and go back to the
 * OS when the release policy says so. realloc resizes a mapped block
 * without copying it (hk_mapping_resize): shrinking unmaps its tail,
 * growing moves its pages into a larger mapping. Slow paths only. */
#include "alloc/core/mapping.h"

#include <errno.h>
#include <string.h>

#include "alloc/core/aged.h"
#include "alloc/core/annotate.h"
#include "alloc/core/clock.h"
#include "alloc/core/counters.h"
#include "alloc/core/error.h"
#include "alloc/core/options.h"
#include "alloc/core/os.h"
#include "alloc/core/segmap.h"

#define HK_MAPPING_MAGIC 0x686b6c617267ull  /* "hklarg": live */
#define HK_MAPPING_CACHED 0x686b63616368ull /* "hkcach": in the cache */
#define HK_MAPPING_BINS 160                 /* size bins: 4 per doubling of the page count, up to 2^41 pages */
#define HK_MAPPING_BIN_WALK 8               /* entries looked at per bin before trying the next */

/* At the base of every big mapping. Its page is never decommitted, so the
 * cache links entries through it and needs no memory of its own. */
typedef struct hk_mapping {
  uint64_t magic;              /* HK_MAPPING_MAGIC while live, HK_MAPPING_CACHED while cached */
  size_t map_size;             /* bytes mapped, a multiple of the OS page */
  size_t user_offset;          /* live: user pointer = base + user_offset */
  hk_aged_entry cached;        /* cached: its entry in the mapping cache (age order) */
  struct hk_mapping* bin_next; /* cached: same size bin, toward the oldest */
  struct hk_mapping* bin_prev; /* cached: same size bin, toward the newest */
} hk_mapping;

static bool mapping_unmap(hk_aged_entry* e);
/* Freed mappings, in age order; the size bins below are under its lock too
 * (allocation takes a fitting one in a few steps however many are cached:
 * the speed variant keeps up to a GiB). */
static hk_aged_cache hk_mapping_cache = HK_AGED_CACHE_KIND("mappings", mapping_unmap, NULL, HK_LOCK_MAPPINGS);
static hk_mapping* hk_mapping_bins[HK_MAPPING_BINS];  /* newest first */
#define mapping_of_entry(e) ((hk_mapping*)((uint8_t*)(e) - offsetof(hk_mapping, cached)))

/* Bin of a mapping of `bytes`: pages 1..3 get bins 0..2, then four bins per
 * doubling; monotonic, so every entry of a higher bin is larger. */
static unsigned mapping_bin(size_t bytes) {
  uint64_t pages = bytes / HK_OS_PAGE;
  if (pages < 4) return pages ? (unsigned)pages - 1 : 0;
  unsigned lg = 63u - (unsigned)__builtin_clzll(pages);
  unsigned bin = 4 * lg + (unsigned)((pages >> (lg - 2)) & 3) - 5;
  return bin < HK_MAPPING_BINS ? bin : HK_MAPPING_BINS - 1;
}


/* ---- cache (lock held) ------------------------------------------------------ */
static void cache_push(hk_mapping* h, uint64_t since) {
  hk_aged_push(&hk_mapping_cache, &h->cached, h->map_size, since);
  hk_mapping** bin = &hk_mapping_bins[mapping_bin(h->map_size)];
  h->bin_prev = NULL;
  h->bin_next = *bin;
  if (*bin) (*bin)->bin_prev = h;
  *bin = h;
}

/* Out of the bins; the caller takes it out of the age list (or the sweep
 * did). */
static void bin_unlink(hk_mapping* h) {
  if (h->bin_prev) h->bin_prev->bin_next = h->bin_next; else hk_mapping_bins[mapping_bin(h->map_size)] = h->bin_next;
  if (h->bin_next) h->bin_next->bin_prev = h->bin_prev;
  h->bin_next = h->bin_prev = NULL;
}

/* The cache's give_back: unmaps a mapping whose time has come; false (still
 * mapped, segmap restored, back in its bin) when the backend refuses. */
static bool mapping_unmap(hk_aged_entry* e) {
  hk_mapping* h = mapping_of_entry(e);
  bin_unlink(h);
  void* base = h;
  size_t map_size = h->map_size;
  hk_segmap_set(base, map_size, HK_MAP_NONE);
  if (hk_os_release(base, map_size, map_size) != 0) {
    hk_segmap_set(base, map_size, HK_MAP_MAPPING);
    hk_mapping** bin = &hk_mapping_bins[mapping_bin(h->map_size)];
    h->bin_prev = NULL;
    h->bin_next = *bin;
    if (*bin) (*bin)->bin_prev = h;
    *bin = h;
    return false;
  }
  return true;
}

/* A cached mapping of at least `need` bytes wasting at most half, newest
 * first within a bin, or NULL. Only the bins from need's to 2 * need's can
 * hold one. Lock held. */
static hk_mapping* cache_find(size_t need) {
  unsigned last = mapping_bin(need * 2);
  for (unsigned b = mapping_bin(need); b <= last; b++) {
    hk_mapping* h = hk_mapping_bins[b];
    for (unsigned walked = 0; h != NULL && walked < HK_MAPPING_BIN_WALK; h = h->bin_next, walked++)
      if (h->map_size >= need && h->map_size / 2 <= need) return h;
  }
  return NULL;
}

/* Whether cache_take(need) would hand out a mapping (cached mappings stay
 * resident until they go back to the OS). */
static bool cache_has_fit(size_t need) {
  hk_aged_lock(&hk_mapping_cache);
  bool found = cache_find(need) != NULL;
  hk_aged_unlock(&hk_mapping_cache);
  return found;
}

/* cache_find's mapping, out of the cache, or NULL if none fits. */
static hk_mapping* cache_take(size_t need) {
  hk_aged_lock(&hk_mapping_cache);
  hk_mapping* found = cache_find(need);
  if (found) {
    bin_unlink(found);
    hk_aged_remove(&hk_mapping_cache, &found->cached);
  }
  hk_aged_unlock(&hk_mapping_cache);
  return found;
}

/* Bytes to map for a block of size bytes offset bytes past the base (whole
 * OS pages); 0 when that would overflow. */
static size_t mapping_map_bytes(size_t offset, size_t size) {
  if (size > SIZE_MAX / 2 - offset - HK_SEGMENT_SIZE) return 0;
  return (offset + size + HK_OS_PAGE - 1) & ~(size_t)(HK_OS_PAGE - 1);
}

void* hk_mapping_alloc(size_t size, size_t align, bool zero) {
  if (align < HK_ALIGN) align = HK_ALIGN;
  /* The smallest multiple of align past the header. */
  size_t offset = (sizeof(hk_mapping) + align - 1) & ~(align - 1);
  size_t need = mapping_map_bytes(offset, size);
  if (need == 0) {
    errno = ENOMEM;
    return NULL;
  }
  hk_mapping* h = cache_take(need);
  bool fresh = h == NULL;
  if (h == NULL) {
    void* base = NULL;
    if (hk_os_reserve(need, HK_SEGMENT_SIZE, &base, need) != 0) {
      errno = ENOMEM;
      return NULL;
    }
    h = base;
    h->map_size = need;
    hk_segmap_set(base, need, HK_MAP_MAPPING);
  }
  h->magic = HK_MAPPING_MAGIC;
  h->user_offset = offset;
  hk_stat_add(&hk_stat.large_live, 1);
  hk_stat_add(&hk_stat.large_bytes, (int64_t)h->map_size);
  void* user = (uint8_t*)h + offset;
  HK_VG_ALLOC(user, h->map_size - offset);
  if (zero && !fresh) memset(user, 0, size);  /* fresh mappings are zero already */
  return user;
}

/* Returns the header of a live mapped block starting exactly at p, or NULL. */
static hk_mapping* mapping_header(const void* p) {
  if (hk_segmap_kind((uintptr_t)p) != HK_MAP_MAPPING) return NULL;
  hk_mapping* h = (hk_mapping*)((uintptr_t)p & ~(uintptr_t)HK_SEGMENT_MASK);
  if (h->magic != HK_MAPPING_MAGIC || (uintptr_t)p != (uintptr_t)h + h->user_offset) return NULL;
  return h;
}

/* Gives back the mapping's pages past need (< its size) where it is. */
static bool mapping_shrink(hk_mapping* h, size_t need) {
  size_t old_size = h->map_size;
  /* 4 MiB pieces no longer part of it leave the segmap first: free() must
   * not trust them once they are unmapped. */
  size_t kept = (need + HK_SEGMENT_MASK) & ~(size_t)HK_SEGMENT_MASK;
  size_t had = (old_size + HK_SEGMENT_MASK) & ~(size_t)HK_SEGMENT_MASK;
  if (had > kept) hk_segmap_set((uint8_t*)h + kept, had - kept, HK_MAP_NONE);
  if (hk_os_release((uint8_t*)h + need, old_size - need, old_size - need) != 0) {
    hk_segmap_set(h, old_size, HK_MAP_MAPPING);
    return false;
  }
  h->map_size = need;
  hk_stat_add(&hk_stat.large_bytes, -(int64_t)(old_size - need));
  return true;
}

/* Moves the mapping's pages, header included, into a new 4 MiB-aligned
 * mapping of need (> its size) bytes. The new header, or NULL. */
static hk_mapping* mapping_move(hk_mapping* h, size_t need) {
  size_t old_size = h->map_size;
  void* dst = NULL;
  if (hk_os_reserve(need, HK_SEGMENT_SIZE, &dst, 0) != 0) return NULL;
  if (hk_os_move(h, old_size, dst, need) != 0) {
    hk_os_release(dst, need, 0);  /* if even this fails, the range stays mapped and unused */
    return NULL;
  }
  hk_segmap_set(h, old_size, HK_MAP_NONE);  /* h is unmapped now */
  h = dst;
  h->map_size = need;
  hk_segmap_set(h, need, HK_MAP_MAPPING);
  hk_stat_add(&hk_stat.large_bytes, (int64_t)(need - old_size));
  return h;
}

void* hk_mapping_resize(void* p, size_t size) {
  hk_mapping* h = mapping_header(p);
  if (h == NULL) return NULL;
  size_t need = mapping_map_bytes(h->user_offset, size);
  if (need == 0) return NULL;
  if (need <= h->map_size) return need == h->map_size || mapping_shrink(h, need) ? p : NULL;
  /* A resident cached mapping that fits is better filled by a copy: moved
   * pages would leave it idle and fault in the new part. NULL sends realloc
   * to the copy, which takes it. */
  if (cache_has_fit(need)) return NULL;
  h = mapping_move(h, need);
  return h ? (uint8_t*)h + h->user_offset : NULL;
}

size_t hk_mapping_usable(const void* p) {
  hk_mapping* h = mapping_header(p);
  return h ? h->map_size - h->user_offset : 0;
}

void hk_mapping_free(void* p, const char* func) {
  hk_mapping* h = mapping_header(p);
  if (h == NULL) {
    hk_misuse(hk_segmap_kind((uintptr_t)p) == HK_MAP_NONE ? "invalid free" : "free of an interior or freed pointer", p, func);
    return;
  }
  HK_VG_FREE(p);
  /* A second free of p now fails the header check. */
  h->magic = HK_MAPPING_CACHED;
  size_t map_size = h->map_size;
  hk_stat_add(&hk_stat.large_live, -1);
  hk_stat_add(&hk_stat.large_bytes, -(int64_t)map_size);

  /* Kept committed: a program that frees and reallocates big buffers
   * reuses them within the release delay without a page fault. */
  uint64_t now = hk_now_ms();
  hk_aged_lock(&hk_mapping_cache);
  cache_push(h, now);
  hk_aged_sweep(&hk_mapping_cache, now, false);
  hk_aged_unlock(&hk_mapping_cache);
  hk_aged_tick(now);  /* the other caches may be due too */
}
