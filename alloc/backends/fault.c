/* Fault-injecting backend (fault.h): hk_backend_linux with chosen calls
 * failing. The plan's fields are separate relaxed atomics rather than one
 * struct under a lock: a backend call may come from any thread, inside
 * malloc, and must not block. */
#include "alloc/backends/fault.h"

#include <errno.h>

/* The installed plan, one atomic per field (see hk_fault_plan). */
static uint32_t plan_ops;
static uint64_t plan_nth;
static uint64_t plan_every;
static uint64_t plan_budget;
static uint32_t plan_seed;
static uint32_t plan_per_million;

static uint64_t fault_calls;     /* counted calls since hk_fault_set */
static uint64_t fault_failures;  /* of which failed */

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

void hk_fault_set(const hk_fault_plan* p) {
  /* Disarm first so a concurrent call never sees a half-installed plan with
   * a trigger armed; ops last re-arms it. */
  STORE(plan_ops, 0u);
  STORE(plan_nth, p->fail_nth);
  STORE(plan_every, p->fail_every);
  STORE(plan_budget, p->byte_budget);
  STORE(plan_seed, p->random_seed);
  STORE(plan_per_million, p->per_million);
  STORE(fault_calls, 0);
  STORE(fault_failures, 0);
  STORE(plan_ops, p->ops ? p->ops : (uint32_t)HK_FAULT_ALL_OPS);
}

void hk_fault_clear(void) {
  hk_fault_plan none = {0};
  hk_fault_set(&none);
}

uint64_t hk_fault_calls(void) { return LOAD(fault_calls); }
uint64_t hk_fault_failures(void) { return LOAD(fault_failures); }

/* splitmix64 finalizer: a well-mixed hash of (seed, call number), so random
 * failures are reproducible without shared RNG state between threads. */
static uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/* Counts a call of kind op and decides whether it fails. reserve_bytes is the
 * size a reserve asks for (0 for other kinds). */
static int should_fail(uint32_t op, uint64_t reserve_bytes) {
  if ((LOAD(plan_ops) & op) == 0) return 0;
  uint64_t n = __atomic_add_fetch(&fault_calls, 1, __ATOMIC_RELAXED);
  uint64_t nth = LOAD(plan_nth), every = LOAD(plan_every), budget = LOAD(plan_budget);
  uint32_t per_million = LOAD(plan_per_million);
  int fail = (nth != 0 && n == nth) || (every != 0 && n % every == 0) ||
             (budget != 0 && reserve_bytes != 0 && hk_os_read(reserved_bytes) + reserve_bytes > budget) ||
             (per_million != 0 && mix(((uint64_t)LOAD(plan_seed) << 32) ^ n) % 1000000u < per_million);
  if (fail) __atomic_add_fetch(&fault_failures, 1, __ATOMIC_RELAXED);
  return fail;
}

static int fault_reserve(size_t size, size_t align, void** out) {
  if (should_fail(HK_FAULT_RESERVE, size)) return ENOMEM;
  return hk_backend_linux.reserve(size, align, out);
}

static int fault_commit(void* p, size_t size) {
  if (should_fail(HK_FAULT_COMMIT, 0)) return ENOMEM;
  return hk_backend_linux.commit(p, size);
}

static int fault_decommit(void* p, size_t size, hk_decommit_mode mode) {
  if (should_fail(HK_FAULT_DECOMMIT, 0)) return ENOMEM;
  return hk_backend_linux.decommit(p, size, mode);
}

static int fault_release(void* p, size_t size) {
  if (should_fail(HK_FAULT_RELEASE, 0)) return ENOMEM;
  return hk_backend_linux.release(p, size);
}

static int fault_move(void* old, size_t old_size, void* dst, size_t new_size) {
  if (should_fail(HK_FAULT_MOVE, 0)) return ENOMEM;
  return hk_backend_linux.move(old, old_size, dst, new_size);
}

static int fault_advise(void* p, size_t size, hk_advice advice) {
  if (should_fail(HK_FAULT_ADVISE, 0)) return ENOMEM;
  return hk_backend_linux.advise(p, size, advice);
}

/* Never fails on purpose: a failed query only makes the core take every
 * page as resident, which is what a backend without the call gets. */
static int fault_resident(void* p, size_t size, unsigned char* vec) {
  return hk_backend_linux.resident(p, size, vec);
}

const hk_backend hk_backend_fault = {
    .name = "fault(linux)",
    .reserve = fault_reserve,
    .commit = fault_commit,
    .decommit = fault_decommit,
    .release = fault_release,
    .move = fault_move,
    .advise = fault_advise,
    .resident = fault_resident,
};
