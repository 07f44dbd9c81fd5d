/* The speed variant (//alloc:hakmem_speed): memory once faulted in stays
 * resident. Nothing is decommitted; empty segments and large mappings are
 * kept (up to 1 GiB) for ten seconds, so a program that frees a burst and
 * allocates again pays neither syscalls nor page faults; a new thread starts
 * with the first page of the hottest classes already faulted in (at most
 * 64 KiB). For services that own their machine. */
#include "alloc/core/policy.h"

const hk_variant hk_variant_linked = {
    .name = "speed",
    .backend = &hk_backend_linux,
    .release = &hk_release_delayed,
    .decommit = &hk_decommit_never,
    .prewarm = &hk_prewarm_hot_classes,
    .params = {
        .decommit_mode = HK_DECOMMIT_OFF,
        .release_delay_ms = 10000,
        .cache_mb = 1024,
        .resident_target_mb = 0,  /* not read: the never module keeps everything */
        .prewarm_kb = 64,
        .span_keep_kb = 64,
        .warm_slots = 1,
        .big_warm_kb = 2048,
    },
};
