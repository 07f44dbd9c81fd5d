/* random_mixed: the headline single-thread benchmark of ../shared/DESIGN.md.
 *
 *   random_mixed [iterations [ws [seed [min [max]]]]]
 *
 * Fixed-size runs are this program with min == max. The timed part is the
 * main loop plus freeing every remaining slot; ops counts every malloc and
 * free call inside it (iterations + the final frees). mallocs/frees cover the
 * whole run including the prefault pass, so a clean run reports them equal. */
#define _GNU_SOURCE
#include "bench_common.h"
#include "mixed.h"

int main(int argc, char** argv) {
  bench_args_t a = {argc, argv, "[iterations=20000000 [ws=400 [seed=1 [min=16 [max=1024]]]]]"};
  bench_std_args_t p = bench_std_args(&a, 1, (bench_std_args_t){20000000, 400, 1, 16, 1024});

  mixed_t m;
  mixed_init(&m, &p, p.iterations / 10);

  bench_timer_t timed = bench_timer_start();
  mixed_run(&m, p.iterations);
  uint64_t final_frees = mixed_free_all(&m);
  bench_timer_stop(&timed);

  bench_result_begin(p.min == p.max ? "fixed" : "random_mixed", p.iterations + final_frees, &timed);
  bench_field_u64("iterations", p.iterations);
  bench_field_std(&p);
  bench_field_u64("mallocs", m.mallocs);
  bench_field_u64("frees", m.frees);
  bench_result_end();
  mixed_destroy(&m);
  return 0;
}
