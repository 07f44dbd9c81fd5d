/* prodcons: blocks allocated on one thread and freed on another, at a high
 * rate, with bursts that empty whole spans remotely, every block checked.
 * The workload itself is workloads/prodcons.h in its ring wiring, built with
 * WORKLOAD_CHECK (workloads/block.h) so every block carries stress_common's
 * pattern and is checked before it is freed; bench/prodcons measures the same
 * code unchecked, wired as pairs. This is its command line and watchdog.
 *
 * --threads threads form a ring: thread i allocates blocks and sends them to
 * thread i+1 through a single-producer/single-consumer queue, and frees what
 * thread i-1 sends it. So every free is a cross-thread free, and each thread's
 * heap only ever gets its blocks back remotely. Every --burst-every blocks a
 * thread sends a burst of --burst blocks of one size, allocated back to back
 * so they fill whole spans; the receiver frees the whole burst, so those spans
 * become empty through remote frees alone. */
#include <stdio.h>

#include "stress/stress_common.h"
#include "workloads/prodcons.h"

int main(int argc, char** argv) {
  stress_args a = {.threads = 4, .seconds = 1, .min_size = 8, .max_size = 1024, .seed = 1,
                   .stall = 10};
  size_t ring_size = 4096, burst = 2048, burst_every = 20000;
  const stress_opt extra[] = {
      {"ring", STRESS_OPT_SIZE, &ring_size, "queue capacity per thread, blocks (power of two)"},
      {"burst", STRESS_OPT_SIZE, &burst, "blocks per burst of one size (0 = no bursts)"},
      {"burst-every", STRESS_OPT_SIZE, &burst_every, "blocks sent between bursts"},
      {NULL, 0, NULL, NULL},
  };
  stress_parse(argc, argv, "prodcons",
               "Ring of threads: each allocates blocks and sends them to the next, which checks and "
               "frees them; bursts of one size empty whole spans remotely.",
               &a, extra);
  if (a.threads < 2 || ring_size < 2 || (ring_size & (ring_size - 1))) {
    fprintf(stderr, "prodcons: need threads >= 2 and a power-of-two ring >= 2\n");
    return 2;
  }
  prodcons_params p = {.wiring = PRODCONS_RING, .queues = (uint64_t)a.threads, .items = UINT64_MAX,
                       .seconds = a.seconds, .min = a.min_size, .max = a.max_size,
                       .capacity = ring_size, .seed = a.seed, .burst = burst,
                       .burst_every = burst_every};
  stress_watchdog_start(&a, a.seconds);
  prodcons_stats r = prodcons_run(&p);
  stress_watchdog_stop();
  if (r.errors)
    stress_fail("%llu blocks arrived out of the order they were sent in",
                (unsigned long long)r.errors);
  if (r.sent != r.freed)
    stress_fail("%llu blocks sent but %llu freed: the queues lost blocks",
                (unsigned long long)r.sent, (unsigned long long)r.freed);
  double secs = (double)r.timed.wall_ns / 1e9;
  printf("prodcons OK: %s; blocks=%llu blocks/s=%.0f bursts=%llu allocator=%s\n", stress_argline(),
         (unsigned long long)r.sent, secs > 0 ? (double)r.sent / secs : 0.0,
         (unsigned long long)r.bursts, stress_allocator());
  return 0;
}
