/* The monotonic clock the aged caches measure idle time with, in ms. Tests
 * may replace it with a fake one (hk_clock_set_fake) to prove age-based
 * behaviour without sleeping. Ground floor. */
#ifndef HAKMEM_CORE_CLOCK_H
#define HAKMEM_CORE_CLOCK_H

#include "alloc/core/base.h"

HK_HIDDEN_BEGIN
uint64_t hk_now_ms(void);
/* Tests: makes hk_now_ms return now_ms from here on (0: the real clock
 * again), so age-based behaviour is proved without sleeping. */
void hk_clock_set_fake(uint64_t now_ms);
HK_HIDDEN_END

#endif
