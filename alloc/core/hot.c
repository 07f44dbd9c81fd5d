#include "alloc/core/hot.h"

#include "alloc/core/size_class.h"

__attribute__((aligned(64))) hk_hot_words hk_hot = {.small_limit = HK_SMALL_MAX + 1};
