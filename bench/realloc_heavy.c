/* realloc_heavy: growing buffers, the way string builders and vectors use realloc.
 *
 *   realloc_heavy [iterations=5000000 [ws=256 [seed=1 [min=16 [max=4096]]]]]
 *
 * Each step draws r = xorshift32(); idx = r % ws. An empty slot gets
 * malloc(min). A full slot grows by 1 .. 256 bytes (1 in 16 times it shrinks
 * to half instead) through realloc; when growing would pass `max`, the buffer
 * is freed and the slot cleared. Each buffer's first and last byte carry a
 * stamp that must survive every realloc (a mismatch counts in `errors` and
 * makes the program exit 1). Like random_mixed: an untimed prefault pass of
 * iterations/10 with another seed, then the timed loop plus freeing what is
 * left; ops counts every malloc, realloc and free call in the timed part. */
#define _GNU_SOURCE
#include <stdlib.h>

#include "bench_common.h"

typedef struct state {
  unsigned char** slots; /* ws entries, mmap'd */
  size_t* sizes;         /* current size of each slot's buffer, mmap'd */
  uint32_t ws, rng;
  size_t min, max;
  uint64_t mallocs, reallocs, frees, errors;
} state_t;

static void run(state_t* s, uint64_t n) {
  for (uint64_t i = 0; i < n; i++) {
    uint32_t r = bench_xorshift32(&s->rng);
    uint32_t idx = r % s->ws;
    unsigned char stamp = (unsigned char)idx;
    unsigned char* p = s->slots[idx];
    if (!p) {
      p = malloc(s->min);
      if (!p) bench_fail("malloc(%zu) returned NULL", s->min);
      p[0] = p[s->min - 1] = stamp;
      s->slots[idx] = p;
      s->sizes[idx] = s->min;
      s->mallocs++;
      continue;
    }
    size_t old = s->sizes[idx];
    if (p[0] != stamp || p[old - 1] != stamp) s->errors++;
    size_t size = ((r >> 24) & 15) == 0 ? old / 2 : old + 1 + ((r >> 12) & 0xFF);
    if (size < s->min) size = s->min;
    if (size > s->max) {
      free(p);
      s->slots[idx] = NULL;
      s->frees++;
      continue;
    }
    p = realloc(p, size);
    if (!p) bench_fail("realloc(%zu) returned NULL", size);
    if (p[0] != stamp) s->errors++;
    p[size - 1] = stamp;
    s->slots[idx] = p;
    s->sizes[idx] = size;
    s->reallocs++;
  }
}

int main(int argc, char** argv) {
  bench_args_t a = {argc, argv, "[iterations=5000000 [ws=256 [seed=1 [min=16 [max=4096]]]]]"};
  bench_std_args_t p = bench_std_args(&a, 1, (bench_std_args_t){5000000, 256, 1, 16, 4096});

  state_t s = {.ws = (uint32_t)p.ws, .min = p.min, .max = p.max};
  s.slots = bench_map(p.ws * sizeof(*s.slots));
  s.sizes = bench_map(p.ws * sizeof(*s.sizes));
  s.rng = bench_prefault_seed(p.seed);
  run(&s, p.iterations / 10);
  s.rng = bench_seed(p.seed);
  uint64_t before = s.mallocs + s.reallocs + s.frees;

  bench_timer_t timed = bench_timer_start();
  run(&s, p.iterations);
  s.frees += bench_free_slots((void**)s.slots, s.ws);
  bench_timer_stop(&timed);

  bench_result_begin("realloc", s.mallocs + s.reallocs + s.frees - before, &timed);
  bench_field_u64("iterations", p.iterations);
  bench_field_std(&p);
  bench_field_u64("mallocs", s.mallocs);
  bench_field_u64("reallocs", s.reallocs);
  bench_field_u64("frees", s.frees);
  bench_field_u64("errors", s.errors);
  bench_result_end();
  bench_unmap(s.slots, p.ws * sizeof(*s.slots));
  bench_unmap(s.sizes, p.ws * sizeof(*s.sizes));
  return s.errors ? 1 : 0;
}
