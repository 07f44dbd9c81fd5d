/* An example of a variant defined outside //alloc (README "Variants"): a
 * service whose load comes in bursts at no fixed rhythm. Memory a burst
 * freed is kept (up to 256 MB, however long: the capped release module, so
 * no delay can guess wrong), handed back lazily with MADV_FREE once more than
 * 512 MB is committed, and new threads start with their hottest classes
 * faulted in. Built from the stock modules; nothing here is code but the
 * choice. */
#include "alloc/core/policy.h"

const hk_variant hk_variant_linked = {
    .name = "bursty",
    .backend = &hk_backend_linux,
    .release = &hk_release_capped,
    .decommit = &hk_decommit_to_target,
    .prewarm = &hk_prewarm_hot_classes,
    .params = {
        .decommit_mode = HK_DECOMMIT_FREE,
        .release_delay_ms = 0, /* not read by the capped module */
        .cache_mb = 256,
        .resident_target_mb = 512,
        .prewarm_kb = 32,
        .reclaim_thread = 0,
        .park_grace_ms = 10,
        .heap_idle_ms = 1000,
        .parked_max = 64,
        .span_keep_kb = 64,
    },
};
