/* Prewarm policies: what a new thread faults in before it asks. Bounded by
 * prewarm_kb in the core, so prewarm can never make a small program's RSS
 * many times its live set. */
#include "alloc/core/policy.h"

static size_t prewarm_nothing(const hk_params* p, size_t class_size) {
  (void)p; (void)class_size;
  return 0;
}

/* One OS page of each class up to 128 bytes: the sizes most programs
 * allocate first (32 KiB in all with 16-byte steps, before the prewarm_kb cap). */
static size_t prewarm_first_page(const hk_params* p, size_t class_size) {
  (void)p;
  return class_size <= 128 ? 4096 : 0;
}

const hk_prewarm_policy hk_prewarm_none = {"none", 0, prewarm_nothing};
const hk_prewarm_policy hk_prewarm_hot_classes = {"hot-classes", HK_READS_PREWARM, prewarm_first_page};
