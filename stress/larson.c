/* larson: DESIGN.md's server-like multithread workload, with every block
 * checked. The workload itself is workloads/larson.h, built with
 * WORKLOAD_CHECK (workloads/block.h) so every block carries stress_common's
 * pattern and is checked before it is freed; bench/larson measures the same
 * code unchecked. This is its command line, its repeats and its watchdog.
 *
 * The main thread fills every lane's slots first (so the first generation
 * frees blocks another thread allocated); each lane's thread replaces random
 * slots and, after --rounds x --chunks replacements, hands the lane to a new
 * thread: the new thread frees blocks its predecessor allocated, while the
 * predecessor's heap is being torn down. After --seconds the last generation
 * stops and the main thread frees what is left, into the heaps of threads
 * that no longer exist. --repeat runs the whole thing again with seeds seed,
 * seed+1, ...; the predecessor's crash case is
 * `--threads=4 --chunks=1024 --min=8 --max=128`. */
#include <stdio.h>

#include "stress/stress_common.h"
#include "workloads/larson.h"

int main(int argc, char** argv) {
  stress_args a = {.threads = 4, .seconds = 1, .min_size = 8, .max_size = 128, .seed = 1,
                   .stall = 10};
  size_t chunks = 1024;
  int rounds = 4, repeat = 1;
  const stress_opt extra[] = {
      {"chunks", STRESS_OPT_SIZE, &chunks, "slots per thread"},
      {"rounds", STRESS_OPT_INT, &rounds, "replacements per thread generation, in units of chunks"},
      {"repeat", STRESS_OPT_INT, &repeat, "runs, with seeds seed, seed+1, ..."},
      {NULL, 0, NULL, NULL},
  };
  stress_parse(argc, argv, "larson",
               "Larson server workload (DESIGN.md): per-thread slot arrays handed to new threads; "
               "every block's pattern checked before free.",
               &a, extra);
  if (chunks < 1 || chunks > (1u << 28) || rounds < 1 || repeat < 1) {
    fprintf(stderr, "larson: need chunks in 1 .. 2^28, rounds and repeat >= 1\n");
    return 2;
  }
  larson_params p = {.threads = (uint64_t)a.threads, .seconds = a.seconds, .min = a.min_size,
                     .max = a.max_size, .chunks = chunks, .rounds = (uint64_t)rounds};
  stress_watchdog_start(&a, a.seconds * repeat);
  uint64_t ops = 0, gens = 0;
  double secs = 0;
  for (int i = 0; i < repeat; i++) {
    p.seed = a.seed + (uint64_t)i;
    if (repeat > 1)
      stress_set_context("run %d/%d, seed %llu", i + 1, repeat, (unsigned long long)p.seed);
    larson_stats r = larson_run(&p);
    if (r.lanes_cut_short)
      stress_fail("%llu lanes stopped early: a hand-off could not start its thread",
                  (unsigned long long)r.lanes_cut_short);
    ops += r.replacements;
    gens += r.threads_started;
    secs += (double)r.timed.wall_ns / 1e9;
    if (repeat > 1 && !a.quiet)
      printf("larson: run %d/%d seed=%llu ops=%llu threads-started=%llu ok\n", i + 1, repeat,
             (unsigned long long)p.seed, (unsigned long long)r.replacements,
             (unsigned long long)r.threads_started);
  }
  stress_watchdog_stop();
  printf("larson OK: %s; runs=%d ops=%llu ops/s=%.0f threads-started=%llu allocator=%s\n",
         stress_argline(), repeat, (unsigned long long)ops, secs > 0 ? (double)ops / secs : 0.0,
         (unsigned long long)gens, stress_allocator());
  return 0;
}
