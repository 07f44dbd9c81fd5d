/* The C library's allocation names, routed to hakmem. Linked by every
 * variant that replaces malloc (//alloc:hakmem*, libhakmem*.so); not by
 * //alloc:hakmem_api, which offers only the hk_ names. malloc and free inline
 * the fast path here rather than calling hk_malloc. */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "alloc/core/alloc_inline.h"
#include "alloc/core/api.h"
#include "alloc/core/free.h"
#include "alloc/core/options.h"
#include "alloc/core/stats.h"

#define HK_EXPORT __attribute__((visibility("default")))

/* malloc starts a cache line and free follows it (both are hot; together
 * they are 4 lines). Without the pin, any change elsewhere in the library
 * shifts them, and code placement alone moves benchmark results by a few
 * percent with identical instructions; of the placements tried, this one
 * ran best. */
HK_EXPORT __attribute__((aligned(64))) void* malloc(size_t size) { return hk_malloc_inline(size); }
HK_EXPORT void free(void* p) { hk_free_inline(p, "free"); }
HK_EXPORT void cfree(void* p) { hk_free_inline(p, "cfree"); }
HK_EXPORT void* calloc(size_t count, size_t size) { return hk_calloc_impl(count, size); }
HK_EXPORT void* realloc(void* p, size_t size) { return hk_realloc_impl(p, size, "realloc"); }
HK_EXPORT void* reallocarray(void* p, size_t count, size_t size) {
  return hk_reallocarray_impl(p, count, size, "reallocarray");
}
HK_EXPORT void free_sized(void* p, size_t size) { hk_free_sized_impl(p, size, false, "free_sized"); }
HK_EXPORT void free_aligned_sized(void* p, size_t align, size_t size) {
  (void)align;
  hk_free_sized_impl(p, size, true, "free_aligned_sized");
}
HK_EXPORT int posix_memalign(void** out, size_t align, size_t size) {
  return hk_posix_memalign_impl(out, align, size);
}
HK_EXPORT void* aligned_alloc(size_t align, size_t size) { return hk_aligned_alloc_impl(align, size); }
HK_EXPORT void* memalign(size_t align, size_t size) { return hk_memalign_impl(align, size); }
HK_EXPORT void* valloc(size_t size) { return hk_alloc_aligned(HK_OS_PAGE, size, false); }
HK_EXPORT void* pvalloc(size_t size) { return hk_pvalloc_impl(size); }
HK_EXPORT size_t malloc_usable_size(void* p) { return hk_usable_size_checked(p, "malloc_usable_size"); }

/* glibc's internal names, which glibc 2.36 still exports and some programs
 * and libraries call directly (to reach "the real malloc" past a wrapper of
 * their own). Without them such a call gets glibc's memory, and the free()
 * that follows reports a pointer hakmem never returned; with them every
 * path reaches hakmem, as under mimalloc and tcmalloc. cfree (above) is a
 * compat symbol of glibc 2.36 (cfree@GLIBC_2.2.5): only old binaries bind
 * to it, and they get hakmem's free. */
HK_EXPORT void* __libc_malloc(size_t size) { return hk_malloc_inline(size); }
HK_EXPORT void __libc_free(void* p) { hk_free_inline(p, "__libc_free"); }
HK_EXPORT void* __libc_calloc(size_t count, size_t size) { return hk_calloc_impl(count, size); }
HK_EXPORT void* __libc_realloc(void* p, size_t size) { return hk_realloc_impl(p, size, "__libc_realloc"); }
HK_EXPORT void* __libc_memalign(size_t align, size_t size) { return hk_memalign_impl(align, size); }
HK_EXPORT void* __libc_valloc(size_t size) { return hk_alloc_aligned(HK_OS_PAGE, size, false); }
HK_EXPORT void* __libc_pvalloc(size_t size) { return hk_pvalloc_impl(size); }

/* ---- glibc's statistics and trim entry points ---------------------------------
 * So tools and programs written for glibc keep working when hakmem is the
 * allocator. They read hk_stats_get (see hakmem.h for what its figures mean
 * and how consistent they are) and map it onto glibc's structures: hakmem has
 * no arenas, fastbins or heap top, so those fields are 0 or describe the one
 * process-wide heap. */
HK_EXPORT int malloc_trim(size_t pad) { return hk_trim(pad); }

/* glibc's fields, hakmem's meaning:
 *   arena     bytes committed (small-object segments and large mappings)
 *   ordblks   free blocks in spans + cached segments and large mappings
 *   hblks     live large allocations (each its own mapping, like glibc's mmapped chunks)
 *   hblkhd    bytes mapped for them
 *   uordblks  bytes in use, small and large (do not add hblkhd)
 *   fordblks  committed but not in use: arena - uordblks
 *   keepcost  cached empty memory malloc_trim would unmap
 *   smblks, usmblks, fsmblks  0: no fastbins, and glibc itself reports usmblks as 0 */
static struct mallinfo2 mallinfo_from(const hk_stats_t* s) {
  struct mallinfo2 m;
  memset(&m, 0, sizeof(m));
  uint64_t free_blocks = 0;
  for (unsigned c = 0; c < HK_STATS_CLASSES; c++) free_blocks += s->classes[c].blocks_free;
  m.arena = s->bytes_committed;
  m.ordblks = free_blocks + s->segments_cached;
  m.hblks = s->large_live;
  m.hblkhd = s->large_bytes;
  m.uordblks = s->bytes_in_use;
  m.fordblks = s->bytes_committed > s->bytes_in_use ? s->bytes_committed - s->bytes_in_use : 0;
  m.keepcost = s->bytes_cached;
  return m;
}

HK_EXPORT struct mallinfo2 mallinfo2(void) {
  hk_stats_t s;
  hk_stats_get(&s);
  return mallinfo_from(&s);
}

/* The old int fields saturate at INT_MAX rather than wrap as glibc's do. */
static int sat(size_t v) { return v > INT_MAX ? INT_MAX : (int)v; }

HK_EXPORT struct mallinfo mallinfo(void) {
  struct mallinfo2 m2 = mallinfo2();
  struct mallinfo m = {
      .arena = sat(m2.arena), .ordblks = sat(m2.ordblks), .smblks = sat(m2.smblks), .hblks = sat(m2.hblks),
      .hblkhd = sat(m2.hblkhd), .usmblks = sat(m2.usmblks), .fsmblks = sat(m2.fsmblks),
      .uordblks = sat(m2.uordblks), .fordblks = sat(m2.fordblks), .keepcost = sat(m2.keepcost)};
  return m;
}

/* glibc's summary lines, then hakmem's report, on stderr; written with
 * write(2): no stdio, no malloc (stats.c). */
HK_EXPORT void malloc_stats(void) { hk_stats_print_malloc_stats(2); }

/* XML shaped like glibc's (same elements and attributes, so existing parsers
 * read it), describing hakmem's one process-wide heap: <sizes> lists the free
 * blocks of each size class, as glibc lists its free chunks by size. hakmem
 * adds <inuse> and an allocator attribute. Uses stdio: stats are read first,
 * so whatever fprintf allocates happens while no hakmem lock is held. */
HK_EXPORT int malloc_info(int options, FILE* fp) {
  if (options != 0) {
    errno = EINVAL;
    return -1;
  }
  hk_stats_t s;
  hk_stats_get(&s);
  uint64_t free_count = 0, free_bytes = 0, used_count = 0;
  fprintf(fp, "<malloc version=\"1\" allocator=\"%s\" variant=\"%s\">\n", hk_version(), hk_active->name);
  fprintf(fp, "<heap nr=\"0\">\n<sizes>\n");
  uint64_t from = 1;
  for (unsigned c = 0; c < HK_STATS_CLASSES; c++) {
    const hk_class_stats_t* k = &s.classes[c];
    if (k->blocks_free != 0)
      fprintf(fp, "  <size from=\"%llu\" to=\"%llu\" total=\"%llu\" count=\"%llu\"/>\n", (unsigned long long)from,
              (unsigned long long)k->block_size, (unsigned long long)(k->blocks_free * k->block_size),
              (unsigned long long)k->blocks_free);
    free_count += k->blocks_free;
    free_bytes += k->blocks_free * k->block_size;
    used_count += k->blocks_in_use;
    from = k->block_size + 1;
  }
  fprintf(fp, "</sizes>\n");
  fprintf(fp, "<total type=\"fast\" count=\"0\" size=\"0\"/>\n");
  fprintf(fp, "<total type=\"rest\" count=\"%llu\" size=\"%llu\"/>\n", (unsigned long long)free_count,
          (unsigned long long)(free_bytes + s.bytes_cached));
  fprintf(fp, "<inuse count=\"%llu\" size=\"%llu\"/>\n", (unsigned long long)(used_count + s.large_live),
          (unsigned long long)s.bytes_in_use);
  fprintf(fp, "<system type=\"current\" size=\"%llu\"/>\n", (unsigned long long)s.bytes_committed);
  fprintf(fp, "<aspace type=\"total\" size=\"%llu\"/>\n", (unsigned long long)s.bytes_reserved);
  fprintf(fp, "<aspace type=\"mprotect\" size=\"%llu\"/>\n", (unsigned long long)s.bytes_reserved);
  fprintf(fp, "</heap>\n");
  fprintf(fp, "<total type=\"fast\" count=\"0\" size=\"0\"/>\n");
  fprintf(fp, "<total type=\"rest\" count=\"%llu\" size=\"%llu\"/>\n", (unsigned long long)free_count,
          (unsigned long long)(free_bytes + s.bytes_cached));
  fprintf(fp, "<total type=\"mmap\" count=\"%llu\" size=\"%llu\"/>\n", (unsigned long long)s.large_live,
          (unsigned long long)s.large_bytes);
  fprintf(fp, "<system type=\"current\" size=\"%llu\"/>\n", (unsigned long long)s.bytes_committed);
  fprintf(fp, "<aspace type=\"total\" size=\"%llu\"/>\n", (unsigned long long)s.bytes_reserved);
  fprintf(fp, "<aspace type=\"mprotect\" size=\"%llu\"/>\n", (unsigned long long)s.bytes_reserved);
  fprintf(fp, "</malloc>\n");
  return 0;
}
