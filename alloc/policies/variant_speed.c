/* The speed variant (//alloc:hakmem_speed): memory once faulted in stays
 * resident. Freed memory (free slots, empty segments, arena runs, big
 * mappings) waits ten seconds for reuse, up to 1 GiB, so a program that
 * frees a burst and allocates again pays neither syscalls nor page faults;
 * past the delay it goes back (MADV_DONTNEED, or unmapped) only while more
 * than 1 GiB is committed, and a class's emptied current span stays with
 * its heap below that. A new thread starts with the first page of the
 * hottest classes already faulted in (at most 64 KiB). For services that own
 * their machine. No reclaimer thread: a process that idles keeps what it
 * freed until its next slow-path free or hk_trim. */
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
        .span_keep_kb = 64,
    },
};
