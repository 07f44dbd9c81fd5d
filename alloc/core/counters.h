/* Process-wide counters: statistics, and the inputs of the decommit and
 * release policies (committed and cached bytes). Updated on slow paths only
 * with relaxed atomics: they never order memory. Ground floor: every floor
 * may count; the OS floor (os.c) is the only writer of committed_bytes and
 * the aged caches (aged.c) the only writer of cached_bytes. */
#ifndef HAKMEM_CORE_COUNTERS_H
#define HAKMEM_CORE_COUNTERS_H

#include "alloc/core/base.h"

HK_HIDDEN_BEGIN
typedef struct hk_stat_counters {
  _Atomic int64_t segments_live;    /* segments owned by a heap or abandoned */
  _Atomic int64_t segments_cached;  /* empty segments waiting in the segment cache */
  _Atomic int64_t committed_bytes;  /* what may be resident: segment headers, slots not decommitted, arena pages, big mappings not decommitted */
  _Atomic int64_t cached_bytes;     /* committed, empty, kept for reuse: everything waiting in an aged cache */
  _Atomic int64_t large_live;       /* live blocks above the small classes (arena and big mappings) */
  _Atomic int64_t large_bytes;      /* bytes those blocks take (whole arena pages, whole mappings) */
  _Atomic int64_t threads_live;     /* live thread heaps */
  /* The memory limit (os.c), since start. */
  _Atomic int64_t limit_purges;     /* times committing past the limit made the aged caches give something back */
  _Atomic int64_t limit_purged_bytes; /* committed bytes those purges gave back */
  _Atomic int64_t limit_overruns;   /* times memory was committed past the limit anyway: nothing (more) was left to purge */
} hk_stat_counters;

extern hk_stat_counters hk_stat;

HK_INLINE void hk_stat_add(_Atomic int64_t* c, int64_t delta) {
  atomic_fetch_add_explicit(c, delta, memory_order_relaxed);
}
/* A counter read as a byte or object count: a transiently negative sum of
 * racing updates reads as 0. */
HK_INLINE uint64_t hk_stat_read(_Atomic int64_t* c) {
  int64_t v = atomic_load_explicit(c, memory_order_relaxed);
  return v > 0 ? (uint64_t)v : 0;
}
HK_HIDDEN_END

#endif
