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
 * HAKMEM_THP=madvise was measured here (2026-12-06, bench/large 20000 and
 * bench/random_mixed, 3 runs each, preloaded): page faults fell from 15480
 * to 156 on large, but the timed throughput did not move (0.35-0.43 M ops/s
 * either way; random_mixed 73-77 M ops per CPU-second either way), while
 * peak RSS rose from 63 to 94 MB on large and from 2 to 12 MB on
 * random_mixed's small heap. A default that costs RSS for no measured speed
 * is not this variant's to take; programs with big dense heaps can ask for
 * it. No memory limit by default (HAKMEM_MEMORY_LIMIT_MB). */
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
        .memory_limit_mb = 0,
        .thp = HK_THP_DEFAULT,
        .span_keep_kb = 64,
    },
};
