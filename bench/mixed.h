/* mixed: the random_mixed kernel of ../shared/DESIGN.md, shared by the
 * random_mixed, soak and latency programs so all three run the same operation
 * stream.
 *
 * One step draws r = xorshift32(); idx = r % ws. A full slot is freed and
 * cleared; an empty one gets malloc(clamp(16 + (r & 0x3FF), min, max)) with
 * one byte written into it. Malloc and free settle near 50/50 with about ws/2
 * blocks live. The slot array comes from mmap, never from the allocator under
 * test. */
#ifndef HAKMEM_BENCH_MIXED_H
#define HAKMEM_BENCH_MIXED_H

#include <stdint.h>
#include <stdlib.h>

#include "bench_common.h"

typedef struct mixed {
  void** slots;      /* ws entries, mmap'd; NULL = empty */
  uint32_t ws;       /* working-set slots */
  uint32_t rng;      /* xorshift32 state */
  size_t min, max;   /* size clamp */
  uint64_t mallocs;  /* malloc calls made so far (all phases) */
  uint64_t frees;    /* free calls made so far (all phases) */
} mixed_t;

/* What one step did, so the latency program can file the sample. */
enum { MIXED_FREE = 0, MIXED_MALLOC = 1 };

static inline size_t mixed_size(uint32_t r, size_t min, size_t max) {
  size_t size = 16 + (r & 0x3FF);
  return size < min ? min : size > max ? max : size;
}

/* One operation. Inline so the timed loops pay no call of their own. */
static inline int mixed_step(mixed_t* m) {
  uint32_t r = bench_xorshift32(&m->rng);
  void** slot = &m->slots[r % m->ws];
  if (*slot) {
    free(*slot);
    *slot = NULL;
    m->frees++;
    return MIXED_FREE;
  }
  char* p = malloc(mixed_size(r, m->min, m->max));
  if (!p) bench_fail("malloc(%zu) returned NULL", mixed_size(r, m->min, m->max));
  p[0] = (char)r; /* touch it: a block nobody writes is not a realistic block */
  *slot = p;
  m->mallocs++;
  return MIXED_MALLOC;
}

/* Maps the slots for p->ws and runs the untimed prefault pass:
 * prefault_iterations steps with a seed derived from p->seed, slots left
 * populated. The RNG is then set to p->seed, ready for the measured steps. */
void mixed_init(mixed_t* m, const bench_std_args_t* p, uint64_t prefault_iterations);

/* Runs n steps. */
void mixed_run(mixed_t* m, uint64_t n);

/* Frees every remaining block; returns how many it freed. */
uint64_t mixed_free_all(mixed_t* m);

/* Unmaps the slot array (blocks must already be freed). */
void mixed_destroy(mixed_t* m);

#endif /* HAKMEM_BENCH_MIXED_H */
