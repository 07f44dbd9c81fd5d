/* Mem-lean decommit policies: whether empty memory stays resident. */
#include "alloc/core/policy.h"

static size_t decommit_nothing(const hk_params* p, size_t bytes, uint64_t committed) {
  (void)p; (void)bytes; (void)committed;
  return 0;
}

/* Work back down to the resident target: only the bytes above it, so a
 * program under its target pays no madvise at all, and one just above it
 * gives back no more than takes it under. */
static size_t decommit_to_target(const hk_params* p, size_t bytes, uint64_t committed) {
  if (p->decommit_mode == HK_DECOMMIT_OFF) return 0;
  uint64_t target = p->resident_target_mb << 20;
  if (committed <= target) return 0;
  uint64_t over = committed - target;
  return over < bytes ? (size_t)over : bytes;
}

const hk_decommit_policy hk_decommit_never = {"never", 0, decommit_nothing};
const hk_decommit_policy hk_decommit_to_target = {"to-target", HK_READS_DECOMMIT_MODE | HK_READS_RESIDENT_TARGET,
                                                  decommit_to_target};
