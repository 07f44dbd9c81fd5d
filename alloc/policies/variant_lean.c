/* The lean variant (//alloc:hakmem_lean): gives memory back soon. Freed
 * memory waits 100 ms for reuse, then goes back with MADV_DONTNEED while
 * more than 16 MB is committed. Nothing is decommitted the moment it
 * empties, so a span or buffer freed and allocated again within the delay
 * costs no syscall and no page fault, and lean runs as fast as balanced;
 * steady state pays nothing (the fast path is the same code in every
 * variant). The reclaimer thread is on, so an idle process is back at its
 * target 100 ms after its last free. No prewarm. For many small services
 * sharing a machine, and programs with bursty peaks.
 *
 * Transparent huge pages: never. Where the kernel's mode is "always", a
 * touched page of a sparsely used segment would otherwise bring in 2 MiB,
 * and give it back only when the whole huge page is free: lean promises RSS
 * that follows what is used. No memory limit by default
 * (HAKMEM_MEMORY_LIMIT_MB; "cgroup" suits a lean container). */
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
        .park_grace_ms = 10,
        .heap_idle_ms = 50,
        .parked_max = 64,
        .memory_limit_mb = 0,
        .thp = HK_THP_NEVER,
        .span_keep_kb = 256, /* as balanced: a class's emptied current span of one slot stays (64 KiB: the example service peaked at 45-57 MB instead of 39) */
    },
};
