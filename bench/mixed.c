#define _GNU_SOURCE
#include "mixed.h"

void mixed_init(mixed_t* m, const bench_std_args_t* p, uint64_t prefault_iterations) {
  *m = (mixed_t){.ws = (uint32_t)p->ws, .min = p->min, .max = p->max};
  m->slots = bench_map(p->ws * sizeof(void*));
  m->rng = bench_prefault_seed(p->seed);
  mixed_run(m, prefault_iterations);
  m->rng = bench_seed(p->seed);
}

void mixed_run(mixed_t* m, uint64_t n) {
  /* A local copy whose address never escapes lets the compiler keep the RNG
   * state and counters in registers across the malloc/free calls, so the
   * loop adds as little as possible to what is measured. */
  mixed_t local = *m;
  for (uint64_t i = 0; i < n; i++) mixed_step(&local);
  *m = local;
}

uint64_t mixed_free_all(mixed_t* m) {
  uint64_t freed = bench_free_slots(m->slots, m->ws);
  m->frees += freed;
  return freed;
}

void mixed_destroy(mixed_t* m) {
  bench_unmap(m->slots, m->ws * sizeof(void*));
  m->slots = NULL;
}
