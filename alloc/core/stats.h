/* Statistics: hk_stats_get, the readable and JSON reports (hakmem.h), and
 * glibc's malloc_stats() format. Reads counters, the segment registry and
 * the thread heaps' counters; never on a fast path, never allocates. */
#ifndef HAKMEM_CORE_STATS_H
#define HAKMEM_CORE_STATS_H

#include "alloc/core/base.h"
#include "alloc/include/hakmem.h"

HK_HIDDEN_BEGIN
/* malloc_stats(): glibc's summary lines, then the readable report. */
void hk_stats_print_malloc_stats(int fd);
/* Makes sure the HAKMEM_STATS report runs at exit (once registered, it
 * checks the option then): for HAKMEM_STATS set after start-up. */
void hk_stats_arm_at_exit(void);
HK_HIDDEN_END

#endif
