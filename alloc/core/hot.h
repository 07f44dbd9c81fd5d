/* The globals every malloc reads, on one cache line: the free-list check
 * loads it anyway, so the gate beside it costs malloc no extra line. Data
 * only, the lowest floor; written where each word's comment says. */
#ifndef HAKMEM_CORE_HOT_H
#define HAKMEM_CORE_HOT_H

#include "alloc/core/base.h"

HK_HIDDEN_BEGIN
typedef struct hk_hot_words {
  /* The per-process secret free-block tags are made with (secret.h): set
   * once at process init. */
  uintptr_t secret;
  /* malloc's fast path serves the requests below this (alloc_inline.h):
   * HK_SMALL_MAX + 1, every small class; 0 while allocations are counted
   * (the heap profiler samples or threads count their bytes), so every
   * request takes the counted branch. Set by the profiler (prof.c). */
  size_t small_limit;
} hk_hot_words;
extern hk_hot_words hk_hot;
HK_HIDDEN_END

#endif
