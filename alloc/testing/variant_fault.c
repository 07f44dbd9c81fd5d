/* Test-only variant: the fault-injecting backend (alloc/backends/fault.h)
 * with parameters that call it as often as possible, so a sweep of failing
 * calls reaches every backend call site: empty memory is decommitted at once
 * (target 0) and unmapped at once (no delay, no cache), and new threads
 * prewarm. The delayed module, not the immediate one, so tests may also turn
 * HAKMEM_RELEASE_DELAY_MS and HAKMEM_CACHE_MB up. */
#include "alloc/backends/fault.h"
#include "alloc/core/policy.h"

const hk_variant hk_variant_linked = {
    .name = "fault",
    .backend = &hk_backend_fault,
    .release = &hk_release_delayed,
    .decommit = &hk_decommit_to_target,
    .prewarm = &hk_prewarm_hot_classes,
    .params = {
        .decommit_mode = HK_DECOMMIT_DONTNEED,
        .release_delay_ms = 0,
        .cache_mb = 0,
        .resident_target_mb = 0,
        .prewarm_kb = 16,
        .reclaim_thread = 0,
        .park_grace_ms = 10,
        .heap_idle_ms = 1000,
        .parked_max = 64,
        .span_keep_kb = 64,
    },
};
