/* Prewarm policies: what a new thread faults in before it asks. Bounded by
 * prewarm_kb in the core, so prewarm can never cost what the predecessor paid
 * (33 MB resident for a 100 KB live set). */
#include "alloc/policies/policy.h"

static size_t prewarm_nothing(const hk_params* p, unsigned cls, size_t class_size) {
  (void)p; (void)cls; (void)class_size;
  return 0;
}

/* One OS page of each of the eight smallest classes (16..128 B): the sizes
 * most programs allocate first. 32 KiB in all, before the prewarm_kb cap. */
static size_t prewarm_first_page(const hk_params* p, unsigned cls, size_t class_size) {
  (void)p; (void)class_size;
  return cls < 8 ? 4096 : 0;
}

const hk_prewarm_policy hk_prewarm_none = {"none", 0, prewarm_nothing};
const hk_prewarm_policy hk_prewarm_hot_classes = {"hot-classes", HK_READS_PREWARM, prewarm_first_page};
