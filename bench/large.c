/* large: large allocations, 64 KiB - 8 MiB.
 *
 *   large [iterations=20000 [ws=16 [seed=1 [min=65536 [max=8388608 [stride=4096]]]]]]
 *
 * The random_mixed pattern (idx = r % ws; free a full slot, fill an empty one)
 * with sizes spread evenly over powers of two between min and max (a uniform
 * draw would make almost every block a few MiB). Each new block is written
 * every `stride` bytes and at its last byte, as a program filling a buffer
 * would, so an allocator that hands back fresh pages pays the page faults
 * that one reusing committed memory avoids (stride 0: first and last byte
 * only). Untimed prefault pass of iterations/10 with another seed; the timed
 * part is the loop plus freeing what is left; ops = mallocs + frees in it. */
#define _GNU_SOURCE
#include <stdlib.h>

#include "bench_common.h"

static unsigned log2_floor(uint64_t v) { return 63u - (unsigned)__builtin_clzll(v); }

typedef struct state {
  char** slots; /* ws entries, mmap'd */
  uint32_t ws, rng;
  uint64_t min, max, stride;
  unsigned lo, span; /* octaves: [2^lo, 2^(lo+span)) covers [min, max] */
  uint64_t mallocs, frees, bytes;
} state_t;

static uint64_t draw_size(state_t* s) {
  unsigned e = s->lo + bench_xorshift32(&s->rng) % s->span;
  uint64_t size = (1ull << e) + (bench_xorshift32(&s->rng) & ((1ull << e) - 1));
  return size < s->min ? s->min : size > s->max ? s->max : size;
}

static void run(state_t* s, uint64_t n) {
  for (uint64_t i = 0; i < n; i++) {
    char** slot = &s->slots[bench_xorshift32(&s->rng) % s->ws];
    if (*slot) {
      free(*slot);
      *slot = NULL;
      s->frees++;
      continue;
    }
    uint64_t size = draw_size(s);
    char* p = malloc(size);
    if (!p) bench_fail("malloc(%llu) returned NULL", (unsigned long long)size);
    if (s->stride)
      for (uint64_t off = 0; off < size; off += s->stride) p[off] = 1;
    p[0] = p[size - 1] = 1;
    *slot = p;
    s->mallocs++;
    s->bytes += size;
  }
}

int main(int argc, char** argv) {
  bench_args_t a = {argc, argv,
                    "[iterations=20000 [ws=16 [seed=1 [min=65536 [max=8388608 [stride=4096]]]]]]"};
  bench_std_args_t p = bench_std_args(&a, 1, (bench_std_args_t){20000, 16, 1, 65536, 8388608});
  uint64_t stride = bench_arg_u64(&a, 6, 4096);
  if (p.max > (1ull << 40)) bench_usage_exit(&a, "max must be at most 2^40");

  state_t s = {.ws = (uint32_t)p.ws, .min = p.min, .max = p.max, .stride = stride};
  s.lo = log2_floor(p.min);
  /* max - 1 so that a power-of-two max ends the last octave instead of
   * starting one that the clamp would squash onto max. */
  s.span = (p.max > p.min ? log2_floor(p.max - 1) : s.lo) - s.lo + 1;
  s.slots = bench_map(p.ws * sizeof(*s.slots));
  s.rng = bench_prefault_seed(p.seed);
  run(&s, p.iterations / 10);
  s.rng = bench_seed(p.seed);
  uint64_t before = s.mallocs + s.frees, bytes_before = s.bytes;

  bench_timer_t timed = bench_timer_start();
  run(&s, p.iterations);
  s.frees += bench_free_slots((void**)s.slots, s.ws);
  bench_timer_stop(&timed);

  bench_result_begin("large", s.mallocs + s.frees - before, &timed);
  bench_field_u64("iterations", p.iterations);
  bench_field_std(&p);
  bench_field_u64("stride", stride);
  bench_field_f64("gib_per_s", (double)(s.bytes - bytes_before) / (1u << 30) / ((double)timed.wall_ns / 1e9));
  bench_field_u64("mallocs", s.mallocs);
  bench_field_u64("frees", s.frees);
  bench_result_end();
  bench_unmap(s.slots, p.ws * sizeof(*s.slots));
  return 0;
}
