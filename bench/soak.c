/* soak: long-run stability, steps of random_mixed for a fixed duration.
 *
 *   soak [seconds=30 [step_iterations=2000000 [ws=8192 [seed=1 [min=16 [max=1024 [max_steps=0]]]]]]]
 *
 * After random_mixed's prefault pass (step_iterations/10), runs steps of
 * step_iterations random_mixed operations on the same slots (the heap is never
 * emptied between steps) until `seconds` have passed or max_steps steps are
 * done (0 = no step limit). Each step prints
 *   STEP step=N t_s=... ops_per_s=... rss_kb=...
 * and the RESULT line carries the derived numbers of soak_stats.h, the peak
 * RSS, and the RSS once every block is freed at the end.
 *
 * max_steps makes runs of different lengths replay the same stream, which the
 * harness uses to count steady-state syscalls per op: the difference of two
 * strace'd runs of K and 2K steps cancels start-up and shutdown. */
#define _GNU_SOURCE
#include "bench_common.h"
#include "mixed.h"
#include "soak_stats.h"

int main(int argc, char** argv) {
  bench_args_t a = {argc, argv,
                    "[seconds=30 [step_iterations=2000000 [ws=8192 [seed=1 [min=16 [max=1024 [max_steps=0]]]]]]]"};
  double seconds = bench_arg_f64(&a, 1, 30);
  /* iterations here is the length of one step */
  bench_std_args_t p = bench_std_args(&a, 2, (bench_std_args_t){2000000, 8192, 1, 16, 1024});
  uint64_t step_iterations = p.iterations;
  uint64_t max_steps = bench_arg_u64(&a, 7, 0);
  if (step_iterations == 0) bench_usage_exit(&a, "step_iterations must be positive");

  /* The series lives in lazily committed mmap memory: reserving a million
   * steps costs nothing until they happen. */
  size_t capacity = max_steps && max_steps < (1u << 20) ? max_steps : (1u << 20);
  double* tput = bench_map(capacity * sizeof(double));
  double* rss = bench_map(capacity * sizeof(double));

  mixed_t m;
  mixed_init(&m, &p, step_iterations / 10);

  uint64_t start = bench_now_ns();
  uint64_t deadline = start + (uint64_t)(seconds * 1e9);
  bench_timer_t busy = {0, 0, 0}; /* the steps only, without the RSS readings and STEP lines */
  size_t steps = 0;
  do {
    bench_timer_t step = bench_timer_start();
    mixed_run(&m, step_iterations);
    bench_timer_stop(&step);
    busy.wall_ns += step.wall_ns;
    busy.cpu_ns += step.cpu_ns;
    busy.minflt += step.minflt;
    tput[steps] = (double)step_iterations / ((double)step.wall_ns / 1e9);
    rss[steps] = (double)bench_rss_kb();
    bench_line_begin("STEP");
    bench_field_u64("step", steps);
    bench_field_f64("t_s", (double)(bench_now_ns() - start) / 1e9);
    bench_field_f64("ops_per_s", tput[steps]);
    bench_field_f64("rss_kb", rss[steps]);
    bench_line_end();
    steps++;
  } while (steps < capacity && bench_now_ns() < deadline);

  mixed_free_all(&m);
  long rss_after_free = bench_rss_kb();

  soak_derived_t d;
  soak_derive(tput, rss, steps, &d);
  bench_result_begin("soak", steps * step_iterations, &busy);
  bench_field_u64("steps", steps);
  bench_field_u64("step_iterations", step_iterations);
  bench_field_std(&p);
  bench_field_f64("rss_first_kb", d.rss_first_kb);
  bench_field_f64("rss_last_kb", d.rss_last_kb);
  bench_field_f64("rss_drift_pct", d.rss_drift_pct);
  bench_field_f64("tput_first", d.tput_first);
  bench_field_f64("tput_last", d.tput_last);
  bench_field_f64("tput_drift_pct", d.tput_drift_pct);
  bench_field_f64("cv_pct", d.cv_pct);
  bench_field_i64("rss_after_free_kb", rss_after_free);
  bench_field_u64("mallocs", m.mallocs);
  bench_field_u64("frees", m.frees);
  bench_result_end();
  mixed_destroy(&m);
  bench_unmap(tput, capacity * sizeof(double));
  bench_unmap(rss, capacity * sizeof(double));
  return 0;
}
