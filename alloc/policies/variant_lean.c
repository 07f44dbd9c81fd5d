/* The lean variant (//alloc:hakmem_lean): gives memory back soon. Freed
 * memory waits 100 ms for reuse, then goes back with MADV_DONTNEED while
 * more than 16 MB is committed. Nothing is decommitted the moment it
 * empties, so a span or buffer freed and allocated again within the delay
 * costs no syscall and no page fault, and lean runs as fast as balanced;
 * steady state pays nothing (the fast path is the same code in every
 * variant). The reclaimer thread is on, so an idle process is back at its
 * target 100 ms after its last free. No prewarm. For many small services
 * sharing a machine, and programs with bursty peaks. */
#include "alloc/core/policy.h"

const hk_variant hk_variant_linked = {
    .name = "lean",
    .backend = &hk_backend_linux,
    .release = &hk_release_delayed,
    .decommit = &hk_decommit_to_target,
    .prewarm = &hk_prewarm_none,
    .params = {
        .decommit_mode = HK_DECOMMIT_DONTNEED,
        .release_delay_ms = 100,
        .cache_mb = 1024,
        .resident_target_mb = 16,
        .prewarm_kb = 0,
        .reclaim_thread = 1,
        .span_keep_kb = 64,
    },
};
