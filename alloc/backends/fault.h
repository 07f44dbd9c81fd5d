/* A fault-injecting backend for tests: every call goes to hk_backend_linux
 * unless the current plan says this call fails, in which case it returns
 * ENOMEM without touching the OS (so a failed release leaves the range
 * mapped, a failed decommit leaves it resident, as a real failure would).
 *
 * A plan can combine three triggers; a call fails if any of them fires:
 *   - fail_nth:   exactly the nth counted call after hk_fault_set (1-based);
 *   - fail_every: every call whose count is a multiple of it;
 *   - budget:     a reserve that would take the backend's mapped bytes
 *                 (hk_os.reserved_bytes) past byte_budget;
 *   - random:     each counted call with probability per_million / 10^6,
 *                 decided by a hash of (seed, call number), so a seed replays
 *                 the same failures for the same sequence of calls.
 * Only calls whose kind is in `ops` are counted and may fail.
 *
 * Tests call hk_fault_set / hk_fault_clear between phases; the plan is read
 * with relaxed atomics, so changing it while other threads allocate is safe
 * (a call racing the change sees the old or the new plan). Never linked into
 * a production variant. */
#ifndef HAKMEM_BACKENDS_FAULT_H
#define HAKMEM_BACKENDS_FAULT_H

#include <stdint.h>

#include "alloc/backends/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Kinds of backend call, for hk_fault_plan.ops. */
enum {
  HK_FAULT_RESERVE = 1u << 0,
  HK_FAULT_COMMIT = 1u << 1,
  HK_FAULT_DECOMMIT = 1u << 2,
  HK_FAULT_RELEASE = 1u << 3,
  HK_FAULT_MOVE = 1u << 4,
  HK_FAULT_ADVISE = 1u << 5,
  HK_FAULT_ALL_OPS = 0x3fu,
};

typedef struct hk_fault_plan {
  uint32_t ops;           /* HK_FAULT_* kinds that are counted and may fail; 0 means all */
  uint64_t fail_nth;      /* fail the nth counted call (1-based); 0: off */
  uint64_t fail_every;    /* fail every counted call whose number is a multiple of this; 0: off */
  uint64_t byte_budget;   /* fail a reserve that would map more than this in total; 0: no budget */
  uint32_t random_seed;   /* seed of the random trigger */
  uint32_t per_million;   /* random trigger: failures per million counted calls; 0: off */
} hk_fault_plan;

/* Installs a plan and restarts the call count at 0. */
void hk_fault_set(const hk_fault_plan* plan);
/* No more failures (the same as an all-zero plan). */
void hk_fault_clear(void);

/* Counted calls since the last hk_fault_set, and how many of them failed. */
uint64_t hk_fault_calls(void);
uint64_t hk_fault_failures(void);

extern const hk_backend hk_backend_fault;

#ifdef __cplusplus
}
#endif

#endif
