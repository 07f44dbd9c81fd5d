#include "alloc/core/counters.h"

hk_stat_counters hk_stat;
