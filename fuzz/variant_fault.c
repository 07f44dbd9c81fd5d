/* The variant policy_fuzzer links: the fault-injecting backend
 * (alloc/backends/fault.h) under the delayed release and to-target decommit
 * modules. (//alloc/testing:hakmem_api_fault is the same idea but not visible
 * outside alloc/testing, and its immediate release policy would make the
 * fuzzer's HAKMEM_RELEASE_DELAY_MS / HAKMEM_CACHE_MB switches moot.)
 *
 * The defaults send empty memory back at once (decommit with MADV_DONTNEED
 * above a 0 MB target, release after 0 ms, no cache), so a fault plan reaches
 * every backend call site; the fuzzer's option events then move each
 * parameter between that and keeping memory cached and resident. */
#include "alloc/backends/fault.h"
#include "alloc/core/policy.h"

const hk_variant hk_variant_linked = {
    .name = "fuzz-fault",
    .backend = &hk_backend_fault,
    .release = &hk_release_delayed,
    .decommit = &hk_decommit_to_target,
    .prewarm = &hk_prewarm_none,
    .params = {
        .decommit_mode = HK_DECOMMIT_DONTNEED,
        .release_delay_ms = 0,
        .cache_mb = 0,
        .resident_target_mb = 0,
        .prewarm_kb = 0,
        .reclaim_thread = 0,
        .park_grace_ms = 10,
        .heap_idle_ms = 1000,
        .parked_max = 64,
        .span_keep_kb = 64,
    },
};
