/* The balanced variant (//alloc:hakmem, //alloc:hakmem_balanced): keeps empty
 * memory for a second for reuse, then returns it; above 256 MB committed,
 * empty memory is handed back lazily (MADV_FREE) at once; no prewarm. */
#include "alloc/core/policy.h"

const hk_variant hk_variant_linked = {
    .name = "balanced",
    .backend = &hk_backend_linux,
    .release = &hk_release_delayed,
    .decommit = &hk_decommit_to_target,
    .prewarm = &hk_prewarm_none,
    .params = {
        .decommit_mode = HK_DECOMMIT_FREE,
        .release_delay_ms = 1000,
        .cache_mb = 64,
        .resident_target_mb = 256,
        .prewarm_kb = 0,
        .span_keep_kb = 64,
        .warm_slots = 1,
        .big_warm_kb = 2048,
    },
};
