/* The lean variant (//alloc:hakmem_lean): gives memory back. Empty memory is
 * decommitted with MADV_DONTNEED (RSS drops at once) whenever more than 16 MB
 * is committed, empty segments and large mappings are unmapped after 100 ms
 * idle or beyond 16 MB cached, and nothing is prewarmed. For many small
 * services sharing a machine, and programs with bursty peaks. Costs page
 * faults when a freed burst is allocated again; steady state pays nothing
 * (the fast path is the same code in every variant). */
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
        .cache_mb = 16,
        .resident_target_mb = 16,
        .prewarm_kb = 0,
        .span_keep_kb = 64,
        .warm_slots = 1,
        .big_warm_kb = 2048,
    },
};
