/* Mem-lean decommit policies: whether empty memory stays resident. */
#include "alloc/policies/policy.h"

static hk_decommit_mode decommit_off(const hk_params* p, size_t bytes, uint64_t committed) {
  (void)p; (void)bytes; (void)committed;
  return HK_DECOMMIT_OFF;
}

/* Work back down to the resident target: only while above it, so a program
 * under its target pays no madvise at all. */
static hk_decommit_mode decommit_to_target(const hk_params* p, size_t bytes, uint64_t committed) {
  (void)bytes;
  if (p->decommit_mode == HK_DECOMMIT_OFF) return HK_DECOMMIT_OFF;
  return committed > (p->resident_target_mb << 20) ? p->decommit_mode : HK_DECOMMIT_OFF;
}

const hk_decommit_policy hk_decommit_never = {"never", 0, decommit_off};
const hk_decommit_policy hk_decommit_to_target = {"to-target", HK_READS_DECOMMIT_MODE | HK_READS_RESIDENT_TARGET,
                                                  decommit_to_target};
