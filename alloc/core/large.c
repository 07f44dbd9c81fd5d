/* Large allocations (above HK_SMALL_MAX, or aligned beyond what a size class
 * can give): each is its own mapping, aligned to 4 MiB so free() finds the
 * header by masking, exactly as for segments. Freed mappings wait in a small
 * cache for reuse (no syscall for a program that frees and reallocates big
 * buffers), governed by the release policy. */
#include <errno.h>
#include <string.h>

#include "alloc/core/annotate.h"
#include "alloc/core/internal.h"
#include "alloc/core/options.h"
#include "alloc/core/stats_internal.h"

#define HK_LARGE_MAGIC 0x686b6c617267ull /* "hklarg" */
#define HK_LARGE_CACHE_SLOTS 16

typedef struct hk_large {
  uint64_t magic;        /* HK_LARGE_MAGIC while live */
  size_t map_size;       /* bytes mapped, a multiple of the OS page */
  size_t user_offset;    /* user pointer = base + user_offset */
} hk_large;

typedef struct hk_large_cached {
  void* base;
  size_t map_size;
  uint64_t idle_since_ms;
  bool decommitted;
} hk_large_cached;

static hk_lock_t hk_large_lock_;
static hk_large_cached hk_large_cache[HK_LARGE_CACHE_SLOTS];
static unsigned hk_large_cache_count;
static uint64_t hk_large_cache_bytes;

void hk_large_lock(bool lock, bool reinit) {
  if (lock) hk_lock(&hk_large_lock_);
  else if (reinit) atomic_store_explicit(&hk_large_lock_.state, 0, memory_order_relaxed);
  else hk_unlock(&hk_large_lock_);
}

static void unmap_entry(const hk_large_cached* e) {
  if (!e->decommitted) hk_stat_add(&hk_stat.committed_bytes, -(int64_t)e->map_size);
  hk_segmap_set(e->base, e->map_size, HK_MAP_NONE);
  hk_active->backend->release(e->base, e->map_size);
}

static void cache_remove(unsigned i) {
  hk_large_cache_bytes -= hk_large_cache[i].map_size;
  hk_large_cache[i] = hk_large_cache[--hk_large_cache_count];
}

/* Releases entries the policy no longer wants (oldest first). Lock held. */
static void cache_release_old(uint64_t now, bool all) {
  while (hk_large_cache_count > 0) {
    unsigned oldest = 0;
    for (unsigned i = 1; i < hk_large_cache_count; i++)
      if (hk_large_cache[i].idle_since_ms < hk_large_cache[oldest].idle_since_ms) oldest = i;
    uint64_t idle = now - hk_large_cache[oldest].idle_since_ms;
    if (!all && !hk_active->release->release_oldest(&hk_options.params, hk_large_cache_bytes, idle)) return;
    hk_large_cached e = hk_large_cache[oldest];
    cache_remove(oldest);
    unmap_entry(&e);
  }
}

void hk_large_trim(void) {
  hk_lock(&hk_large_lock_);
  cache_release_old(0, true);
  hk_unlock(&hk_large_lock_);
}

void* hk_large_alloc(size_t size, size_t align, bool zero) {
  hk_ensure_init();
  if (align < HK_ALIGN) align = HK_ALIGN;
  size_t offset = align < sizeof(hk_large) ? sizeof(hk_large) : align;
  offset = (offset + HK_ALIGN - 1) & ~(size_t)(HK_ALIGN - 1);
  if (size > SIZE_MAX / 2 - offset - HK_SEGMENT_SIZE) {
    errno = ENOMEM;
    return NULL;
  }
  size_t need = (offset + size + HK_OS_PAGE - 1) & ~(size_t)(HK_OS_PAGE - 1);
  size_t map_align = align > HK_SEGMENT_SIZE ? align : HK_SEGMENT_SIZE;

  void* base = NULL;
  size_t map_size = 0;
  bool fresh = true;
  if (map_align == HK_SEGMENT_SIZE) {
    /* Best fit among cached mappings, wasting at most half. */
    hk_lock(&hk_large_lock_);
    int best = -1;
    for (unsigned i = 0; i < hk_large_cache_count; i++) {
      size_t m = hk_large_cache[i].map_size;
      if (m >= need && m / 2 <= need && (best < 0 || m < hk_large_cache[best].map_size)) best = (int)i;
    }
    if (best >= 0) {
      base = hk_large_cache[best].base;
      map_size = hk_large_cache[best].map_size;
      if (hk_large_cache[best].decommitted) hk_stat_add(&hk_stat.committed_bytes, (int64_t)map_size);
      cache_remove((unsigned)best);
      fresh = false;
    }
    hk_unlock(&hk_large_lock_);
  }
  if (base == NULL) {
    map_size = need;
    if (hk_active->backend->reserve(map_size, map_align, &base) != 0) {
      errno = ENOMEM;
      return NULL;
    }
    hk_segmap_set(base, map_size, HK_MAP_LARGE);
    hk_stat_add(&hk_stat.committed_bytes, (int64_t)map_size);
  }
  hk_large* h = base;
  h->magic = HK_LARGE_MAGIC;
  h->map_size = map_size;
  h->user_offset = offset;
  hk_stat_add(&hk_stat.large_live, 1);
  hk_stat_add(&hk_stat.large_bytes, (int64_t)map_size);
  void* user = (uint8_t*)base + offset;
  HK_VG_ALLOC(user, map_size - offset);
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
  h->magic = 0;  /* a second free of p now fails the header check */
  void* base = h;
  size_t map_size = h->map_size;
  hk_stat_add(&hk_stat.large_live, -1);
  hk_stat_add(&hk_stat.large_bytes, -(int64_t)map_size);

  hk_large_cached e = {base, map_size, hk_now_ms(), false};
  hk_decommit_mode mode = hk_active->decommit->on_empty(
      &hk_options.params, map_size, (uint64_t)atomic_load_explicit(&hk_stat.committed_bytes, memory_order_relaxed));
  /* Keep the header page: it is what large_header() and the cache read. */
  if (mode != HK_DECOMMIT_OFF && map_size > HK_OS_PAGE &&
      hk_active->backend->decommit((uint8_t*)base + HK_OS_PAGE, map_size - HK_OS_PAGE, mode) == 0) {
    e.decommitted = true;
    hk_stat_add(&hk_stat.committed_bytes, -(int64_t)map_size);
  }
  hk_lock(&hk_large_lock_);
  if (hk_large_cache_count == HK_LARGE_CACHE_SLOTS) {
    /* Full: the oldest entry makes room. */
    cache_release_old(e.idle_since_ms, false);
    if (hk_large_cache_count == HK_LARGE_CACHE_SLOTS) {
      unsigned oldest = 0;
      for (unsigned i = 1; i < hk_large_cache_count; i++)
        if (hk_large_cache[i].idle_since_ms < hk_large_cache[oldest].idle_since_ms) oldest = i;
      hk_large_cached old = hk_large_cache[oldest];
      cache_remove(oldest);
      unmap_entry(&old);
    }
  }
  hk_large_cache[hk_large_cache_count++] = e;
  hk_large_cache_bytes += map_size;
  cache_release_old(e.idle_since_ms, false);
  hk_unlock(&hk_large_lock_);
}
