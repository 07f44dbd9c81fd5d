#include "alloc/core/hot.h"

#include "alloc/core/size_class.h"

/* Not 0 before initialization: a request made then takes the fast path's
 * pop, which misses on the empty heap and initializes on its far path; the
 * counted slow path, which reads the class table, is reached only once
 * initialization has set the limit (alloc.c; early_alloc_counted_test). */
__attribute__((aligned(64))) hk_hot_words hk_hot = {.small_limit = HK_SMALL_MAX + 1};
