/* realloc_large: one big buffer grown by doubling with realloc, the way a
 * program reads a file or a socket of unknown length into memory.
 *
 *   realloc_large [rounds=4 [min=1048576 [max=268435456]]]
 *
 * Each round mallocs min bytes, fills the buffer (one byte per 4 KiB page,
 * as data arriving would touch every page), doubles it with realloc, fills
 * the new half, and so on until the buffer holds max bytes; it then checks
 * one stamp per MiB and frees it. An allocator that copies on every growth
 * moves about max bytes per round and faults in every destination page; one
 * that can move pages (mremap) does neither. ops = mallocs + reallocs +
 * frees; errors counts stamps that did not survive (exit 1). */
#define _GNU_SOURCE
#include <stdlib.h>

#include "bench_common.h"

#define PAGE 4096u

static unsigned char stamp_at(size_t i) { return (unsigned char)(i / PAGE * 31 + 7); }

int main(int argc, char** argv) {
  bench_args_t a = {argc, argv, "[rounds=4 [min=1048576 [max=268435456]]]"};
  uint64_t rounds = bench_arg_u64(&a, 1, 4);
  uint64_t min = bench_arg_u64(&a, 2, 1u << 20);
  uint64_t max = bench_arg_u64(&a, 3, 256u << 20);
  if (rounds == 0) bench_usage_exit(&a, "rounds must be positive");
  if (min < PAGE || min > max || max > ((uint64_t)1 << 40)) bench_usage_exit(&a, "need 4096 <= min <= max <= 2^40");

  uint64_t mallocs = 0, reallocs = 0, frees = 0, errors = 0;
  bench_timer_t timed = bench_timer_start();
  for (uint64_t r = 0; r < rounds; r++) {
    size_t size = (size_t)min, filled = 0;
    unsigned char* p = malloc(size);
    if (p == NULL) bench_fail("malloc(%zu) returned NULL", size);
    mallocs++;
    for (;;) {
      for (; filled < size; filled += PAGE) p[filled] = stamp_at(filled);
      if (size >= max) break;
      size_t next = size * 2 < max ? size * 2 : (size_t)max;
      unsigned char* q = realloc(p, next);
      if (q == NULL) bench_fail("realloc(%zu) returned NULL", next);
      reallocs++;
      p = q;
      size = next;
    }
    for (size_t i = 0; i < filled; i += (size_t)1 << 20)
      if (p[i] != stamp_at(i)) errors++;
    free(p);
    frees++;
  }
  bench_timer_stop(&timed);

  bench_result_begin("realloc_large", mallocs + reallocs + frees, &timed);
  bench_field_u64("rounds", rounds);
  bench_field_u64("min", min);
  bench_field_u64("max", max);
  bench_field_u64("mallocs", mallocs);
  bench_field_u64("reallocs", reallocs);
  bench_field_u64("frees", frees);
  bench_field_u64("errors", errors);
  bench_result_end();
  return errors ? 1 : 0;
}
