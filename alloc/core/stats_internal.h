/* Process-wide counters behind hk_stats_get(). Updated on slow paths only
 * (segment, span and large-mapping events), with relaxed atomics: they are
 * statistics and policy inputs, never used to order memory. */
#ifndef HAKMEM_CORE_STATS_INTERNAL_H
#define HAKMEM_CORE_STATS_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct hk_stat_counters {
  _Atomic int64_t segments_live;
  _Atomic int64_t segments_cached;
  _Atomic int64_t committed_bytes;  /* what may be resident: segment headers, slots not decommitted, large mappings not decommitted */
  _Atomic int64_t cached_bytes;     /* empty, kept resident for reuse: cached segments, cached large mappings, free arena pages not purged */
  _Atomic int64_t large_live;
  _Atomic int64_t large_bytes;
  _Atomic int64_t threads_live;
} hk_stat_counters;

extern hk_stat_counters hk_stat;

static inline void hk_stat_add(_Atomic int64_t* c, int64_t delta) {
  atomic_fetch_add_explicit(c, delta, memory_order_relaxed);
}

#endif
