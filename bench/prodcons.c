/* prodcons: cross-thread producer/consumer, measured. The workload itself is
 * workloads/prodcons.h in its pairs wiring (shared with stress/prodcons,
 * which runs a ring and checks every block); this is its command line and
 * RESULT line.
 *
 *   prodcons [pairs=1 [items=4000000 [min=16 [max=1024 [seed=1 [ring=1024]]]]]]
 *
 * Each pair is a producer thread that mallocs `items` blocks of random size in
 * [min, max], stamps them and pushes them through a bounded queue of `ring`
 * entries, and a consumer thread that checks the stamp and frees them. The
 * timed part runs from starting the threads to joining them; ops counts
 * mallocs + frees. A wrong stamp (memory handed out twice or overwritten) is
 * counted in `errors` and makes the program exit 1. */
#include "bench_common.h"
#include "workloads/prodcons.h"

int main(int argc, char** argv) {
  bench_args_t a = {argc, argv, "[pairs=1 [items=4000000 [min=16 [max=1024 [seed=1 [ring=1024]]]]]]"};
  uint64_t pairs = bench_arg_u64(&a, 1, 1);
  uint64_t items = bench_arg_u64(&a, 2, 4000000);
  size_t min = bench_arg_u64(&a, 3, 16), max = bench_arg_u64(&a, 4, 1024);
  uint64_t seed = bench_arg_u64(&a, 5, 1);
  uint64_t capacity = bench_arg_u64(&a, 6, 1024);
  if (pairs == 0 || pairs > 512) bench_usage_exit(&a, "pairs must be in 1 .. 512");
  if (min == 0 || min > max) bench_usage_exit(&a, "need 0 < min <= max");
  if (capacity < 2 || (capacity & (capacity - 1)) || capacity > (1u << 24))
    bench_usage_exit(&a, "ring must be a power of two in 2 .. 2^24");
  prodcons_params p = {.wiring = PRODCONS_PAIRS, .queues = pairs, .items = items, .min = min,
                       .max = max, .capacity = capacity, .seed = seed};

  prodcons_stats st = prodcons_run(&p);

  bench_result_begin("prodcons", st.sent + st.freed, &st.timed);
  bench_field_u64("pairs", pairs);
  bench_field_u64("items", items);
  bench_field_u64("min", min);
  bench_field_u64("max", max);
  bench_field_u64("ring", capacity);
  bench_field_u64("mallocs", st.sent);
  bench_field_u64("frees", st.freed);
  bench_field_u64("errors", st.errors);
  bench_result_end();
  return st.errors ? 1 : 0;
}
