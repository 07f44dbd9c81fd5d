/* The balanced variant (//alloc:hakmem, //alloc:hakmem_balanced): freed
 * memory waits a second for reuse (a span, arena run or big block freed and
 * allocated again within it costs no syscall and no page fault), then goes
 * back with MADV_DONTNEED, so RSS as /proc shows it falls to the live set
 * plus at most 8 MB (the resident target). Up to 1 GiB may wait: a program
 * churning big buffers keeps reusing them instead of faulting fresh pages
 * in (a smaller cap gave the oldest back while the next buffer was about to
 * need it). The reclaimer thread is on: the promise is memory back on time,
 * also in a process that stops calling the allocator. No prewarm.
 *
 * Transparent huge pages: no advice, the machine's setting decides (most
 * distributions ship "madvise", where hakmem memory then gets none; an
 * administrator who chose "always" gets what they chose). No memory limit by
 * default (HAKMEM_MEMORY_LIMIT_MB). */
#include "alloc/core/policy.h"

const hk_variant hk_variant_linked = {
    .name = "balanced",
    .backend = &hk_backend_linux,
    .release = &hk_release_delayed,
    .decommit = &hk_decommit_to_target,
    .prewarm = &hk_prewarm_none,
    .params = {
        .decommit_mode = HK_DECOMMIT_DONTNEED,
        .release_delay_ms = 1000,
        .cache_mb = 1024,
        .resident_target_mb = 8,
        .prewarm_kb = 0,
        .reclaim_thread = 1,
        .park_grace_ms = 10,
        .heap_idle_ms = 50,
        .parked_max = 64,
        .memory_limit_mb = 0,
        .thp = HK_THP_DEFAULT,
        .span_keep_kb = 256, /* a class's emptied current span of one slot stays; larger ones age out (example service: 40 MB peak RSS, 47 MB with 64 KiB) */
    },
};
