/* The OS layer behind a vtable.
 *
 * The core asks a backend for address space and tells it what it no longer
 * needs resident. Backends only do what they are told (no policy) and return
 * 0 or an errno value. They are called on slow paths only: segment and large
 * mapping acquisition, span and segment return, trim; never from malloc's or
 * free's fast path. Every syscall a backend makes is counted in hk_os, which
 * the stats API reports.
 *
 * Implementations: hk_backend_linux (linux.c) and, for tests, the
 * fault-injecting wrapper of fault.h. A variant (alloc/policies/variant_*.c)
 * names the one it uses. */
#ifndef HAKMEM_BACKENDS_BACKEND_H
#define HAKMEM_BACKENDS_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum hk_decommit_mode {
  HK_DECOMMIT_OFF = 0,       /* keep memory resident */
  HK_DECOMMIT_FREE = 1,      /* MADV_FREE: kernel reclaims lazily, under pressure */
  HK_DECOMMIT_DONTNEED = 2,  /* MADV_DONTNEED: RSS drops at once, refault costs a zero page */
} hk_decommit_mode;

/* Advice about transparent huge pages for a whole reserved range. */
typedef enum hk_advice {
  HK_ADVISE_HUGEPAGE = 1,    /* MADV_HUGEPAGE: back it with 2 MiB pages where the kernel can */
  HK_ADVISE_NOHUGEPAGE = 2,  /* MADV_NOHUGEPAGE: never, even when the kernel's THP mode is "always" */
} hk_advice;

typedef struct hk_backend {
  const char* name;  /* shown by HAKMEM_SHOW_CONFIG and the statistics report */
  /* Maps size bytes (a multiple of the OS page) aligned to align (a power of
   * two >= the OS page), readable and writable; pages are committed lazily on
   * first touch. */
  int (*reserve)(size_t size, size_t align, void** out);
  /* Makes a decommitted range usable again before the core hands it out. On
   * Linux first touch commits, so this costs nothing; a backend that decommits
   * by protection or accounting does its work here. A failure makes the
   * allocation that needed the range fail with ENOMEM. */
  int (*commit)(void* p, size_t size);
  /* Tells the OS the contents of [p, p+size) are no longer needed. The range
   * stays mapped; its next touch reads zeros (DONTNEED) or old or zero bytes (FREE). */
  int (*decommit)(void* p, size_t size, hk_decommit_mode mode);
  /* Unmaps [p, p+size) entirely. On failure the range stays mapped and the
   * core keeps it (cached) to try again later. */
  int (*release)(void* p, size_t size);
  /* Moves the pages of [old, old+old_size) to dst, a range of new_size >=
   * old_size bytes that reserve() returned, without copying them: dst then
   * starts with old's contents and reads zeros past them, and old is unmapped
   * (dst's own reservation is replaced). On failure both ranges stay as they
   * were. NULL: the backend cannot, and the core copies instead. */
  int (*move)(void* old, size_t old_size, void* dst, size_t new_size);
  /* Gives the kernel advice about [p, p+size), a range reserve() returned;
   * changes no contents and nothing counted as committed. A failure (a
   * kernel without THP says EINVAL) leaves the range as it was and only
   * costs the advice. NULL: the backend takes no advice. */
  int (*advise)(void* p, size_t size, hk_advice advice);
  /* Which OS pages of [p, p+size) (page-aligned, inside a range reserve()
   * returned) are resident: vec gets one byte per page, bit 0 set where it
   * is, as mincore(2) reports. A page the program never touched, or whose
   * contents were given back, is not. NULL: the backend cannot tell, and the
   * core takes every page it handed out as resident. */
  int (*resident)(void* p, size_t size, unsigned char* vec);
} hk_backend;

/* Syscall counters, incremented by backends with relaxed __atomic builtins
 * (statistics only; plain fields keep this header usable from C++ tests). */
typedef struct hk_os_counters {
  uint64_t mmap;             /* mmap calls, successful or not */
  uint64_t munmap;           /* munmap calls, including trims of over-sized maps */
  uint64_t madvise;          /* madvise calls of any advice */
  uint64_t madvise_free;     /* ... of which MADV_FREE */
  uint64_t madvise_dontneed; /* ... of which MADV_DONTNEED (also the fallback where MADV_FREE is missing) */
  uint64_t madvise_hugepage;   /* ... of which MADV_HUGEPAGE */
  uint64_t madvise_nohugepage; /* ... of which MADV_NOHUGEPAGE */
  uint64_t mprotect;         /* mprotect calls (none on Linux today; kept so reports stay comparable) */
  uint64_t mremap;           /* mremap calls (moving a large block's pages when realloc grows it) */
  uint64_t mincore;          /* mincore calls (which pages of a freed arena block the program touched) */
  uint64_t reserved_bytes;   /* currently mapped by hakmem */
} hk_os_counters;

#define hk_os_count(field, n) __atomic_fetch_add(&hk_os.field, (n), __ATOMIC_RELAXED)
#define hk_os_read(field) __atomic_load_n(&hk_os.field, __ATOMIC_RELAXED)

extern hk_os_counters hk_os;

/* The Linux implementation (mmap / munmap / madvise / mremap / mincore). */
extern const hk_backend hk_backend_linux;

#ifdef __cplusplus
}
#endif

#endif
