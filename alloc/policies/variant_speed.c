/* The speed variant (//alloc:hakmem_speed): memory once faulted in stays
 * resident. Freed memory (free slots, empty segments, arena runs, big
 * mappings) waits ten seconds for reuse, up to 1 GiB, so a program that
 * frees a burst and allocates again pays neither syscalls nor page faults;
 * past the delay it goes back (MADV_DONTNEED, or unmapped) only while more
 * than 1 GiB is committed, and a class's emptied current span stays with
 * its heap below that. A new thread starts with the first page of the
 * hottest classes already faulted in (at most 64 KiB). For services that own
 * their machine. No reclaimer thread: a process that idles keeps what it
 * freed until its next slow-path free or hk_trim.
 *
 * Transparent huge pages: no advice, the machine's setting decides.
 * HAKMEM_THP=madvise measured here (2026-12-06, kernel THP mode madvise,
 * preloaded, 3 runs each): bench/large 20000 ran 0.73-0.75 M ops/s against
 * 0.70-0.71 M (page faults 156 against 15480) but peaked at 94 MB RSS
 * against 63 MB; bench/random_mixed ran the same (77-78 M ops per
 * CPU-second) at 12 MB against 2 MB. A huge page is faulted in whole, so
 * a new thread's prewarm (at most 64 KiB, above) would bring in 2 MiB: the
 * 5% on big blocks is for programs with big dense heaps to ask for, not a
 * default. No memory limit by default (HAKMEM_MEMORY_LIMIT_MB).
 */
#include "alloc/core/policy.h"

const hk_variant hk_variant_linked = {
    .name = "speed",
    .backend = &hk_backend_linux,
    .release = &hk_release_delayed,
    .decommit = &hk_decommit_to_target,
    .prewarm = &hk_prewarm_hot_classes,
    .params = {
        .decommit_mode = HK_DECOMMIT_DONTNEED,
        .release_delay_ms = 10000,
        .cache_mb = 1024,
        .resident_target_mb = 1024,
        .prewarm_kb = 64,
        .reclaim_thread = 0,
        .park_grace_ms = 10,
        .heap_idle_ms = 1000,
        .parked_max = 64,
        .memory_limit_mb = 0,
        .thp = HK_THP_DEFAULT,
        .span_keep_kb = 64,
    },
};
