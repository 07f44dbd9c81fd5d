/* larson: the multithreaded server-like benchmark of ../shared/DESIGN.md,
 * measured. The workload itself is workloads/larson.h (shared with
 * stress/larson, which checks every block); this is its command line and
 * RESULT line.
 *
 *   larson [threads=2 [seconds=1 [min=8 [max=128 [chunks=1024 [rounds=100 [seed=1]]]]]]]
 *
 * ops counts the timed mallocs and frees of all threads; mallocs/frees cover
 * the whole run (initial fill and final cleanup too), so a clean run reports
 * them equal. */
#include "bench_common.h"
#include "workloads/larson.h"

int main(int argc, char** argv) {
  bench_args_t a = {argc, argv,
                    "[threads=2 [seconds=1 [min=8 [max=128 [chunks=1024 [rounds=100 [seed=1]]]]]]]"};
  uint64_t threads = bench_arg_u64(&a, 1, 2);
  double seconds = bench_arg_f64(&a, 2, 1.0);
  uint64_t min = bench_arg_u64(&a, 3, 8);
  uint64_t max = bench_arg_u64(&a, 4, 128);
  uint64_t chunks = bench_arg_u64(&a, 5, 1024);
  uint64_t rounds = bench_arg_u64(&a, 6, 100);
  uint64_t seed = bench_arg_u64(&a, 7, 1);
  if (threads == 0 || threads > 1024) bench_usage_exit(&a, "threads must be in 1 .. 1024");
  if (min < 2 || min > max) bench_usage_exit(&a, "need 2 <= min <= max");
  if (chunks == 0 || chunks > (1u << 28)) bench_usage_exit(&a, "chunks must be in 1 .. 2^28");
  if (rounds == 0) bench_usage_exit(&a, "rounds must be positive");
  larson_params p = {threads, seconds, min, max, chunks, rounds, seed};

  larson_stats st = larson_run(&p);

  bench_result_begin("larson", 2 * st.replacements, &st.timed);
  bench_field_u64("threads", threads);
  bench_field_u64("min", min);
  bench_field_u64("max", max);
  bench_field_u64("chunks", chunks);
  bench_field_u64("rounds", rounds);
  bench_field_u64("seed", seed);
  bench_field_u64("threads_started", st.threads_started);
  bench_field_u64("mallocs", st.mallocs);
  bench_field_u64("frees", st.frees);
  bench_result_end();
  return 0;
}
