/* latency: per-operation tail latency of malloc and free.
 *
 *   latency [iterations=5000000 [ws=8192 [seed=1 [min=16 [max=1024]]]]]
 *
 * Runs random_mixed's operation stream (same prefault pass) and reads the
 * cycle counter around every single operation: the window holds the RNG draw,
 * the slot load and the malloc or free call, so it overstates each by the same
 * few cycles for every allocator. The cost of reading the counter itself (the
 * minimum of many empty windows) is subtracted. Samples go into a log-linear
 * histogram (exact below 64 cycles, then 32 buckets per power of two: at most
 * 3% error) held in static memory, so recording costs no cache misses on big
 * arrays and allocates nothing. Reports p50 / p99 / p99.9 / max per operation
 * kind in nanoseconds (cycles converted with the counter rate measured over
 * the run). */
#define _GNU_SOURCE
#include <stdio.h>

#include "bench_common.h"
#include "mixed.h"

#define LINEAR_BUCKETS 64
#define SUB_BITS 5
#define HIST_BUCKETS (LINEAR_BUCKETS + (64 - 6) * (1 << SUB_BITS))

typedef struct hist {
  uint64_t count[HIST_BUCKETS];
  uint64_t total, max;
} hist_t;

static hist_t hists[2]; /* indexed by MIXED_FREE / MIXED_MALLOC */

static unsigned bucket_of(uint64_t v) {
  if (v < LINEAR_BUCKETS) return (unsigned)v;
  unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= 6 */
  unsigned sub = (unsigned)(v >> (e - SUB_BITS)) & ((1u << SUB_BITS) - 1);
  return LINEAR_BUCKETS + (e - 6) * (1u << SUB_BITS) + sub;
}

/* The middle of the bucket's value range. */
static double bucket_value(unsigned b) {
  if (b < LINEAR_BUCKETS) return b;
  unsigned e = (b - LINEAR_BUCKETS) / (1u << SUB_BITS) + 6;
  unsigned sub = (b - LINEAR_BUCKETS) % (1u << SUB_BITS);
  double width = (double)(1ull << (e - SUB_BITS));
  return (double)(1ull << e) + sub * width + width / 2;
}

static void record(hist_t* h, uint64_t v) {
  h->count[bucket_of(v)]++;
  h->total++;
  if (v > h->max) h->max = v;
}

/* Smallest value with at least q of the samples at or below it. Capped by the
 * exact maximum, which the bucket midpoint could otherwise exceed. */
static double percentile(const hist_t* h, double q) {
  uint64_t rank = (uint64_t)(q * (double)h->total + 0.999999), seen = 0;
  if (rank == 0) rank = 1;
  for (unsigned b = 0; b < HIST_BUCKETS; b++) {
    seen += h->count[b];
    if (seen >= rank) {
      double v = bucket_value(b);
      return v > (double)h->max ? (double)h->max : v;
    }
  }
  return (double)h->max;
}

static uint64_t gcd(uint64_t a, uint64_t b) {
  while (b) {
    uint64_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/* The cost of an empty window (its minimum over many tries, subtracted from
 * every sample) and the counter's step: some virtual machines advance the TSC
 * in coarse steps (26 cycles, 10 ns, on the AMD EPYC guests this project was
 * first measured on), which bounds how finely p50 can be resolved. Every
 * reading is a multiple of the step, so the gcd of the windows finds it. */
static void calibrate_counter(uint64_t* overhead, uint64_t* resolution) {
  *overhead = UINT64_MAX;
  *resolution = 0;
  for (int i = 0; i < 100000; i++) {
    uint64_t t0 = bench_cycles_begin();
    uint64_t t1 = bench_cycles_end();
    if (t1 - t0 < *overhead) *overhead = t1 - t0;
    *resolution = gcd(*resolution, t1 - t0);
  }
}

static void report(const char* kind, const hist_t* h, double cycles_per_ns) {
  static const struct {
    const char* name;
    double q;
  } points[] = {{"p50", 0.50}, {"p99", 0.99}, {"p999", 0.999}};
  char key[64];
  snprintf(key, sizeof key, "%s_samples", kind);
  bench_field_u64(key, h->total);
  for (unsigned i = 0; i < sizeof points / sizeof points[0]; i++) {
    snprintf(key, sizeof key, "%s_%s_ns", kind, points[i].name);
    bench_field_f64(key, percentile(h, points[i].q) / cycles_per_ns);
  }
  snprintf(key, sizeof key, "%s_max_ns", kind);
  bench_field_f64(key, (double)h->max / cycles_per_ns);
}

int main(int argc, char** argv) {
  bench_args_t a = {argc, argv, "[iterations=5000000 [ws=8192 [seed=1 [min=16 [max=1024]]]]]"};
  bench_std_args_t p = bench_std_args(&a, 1, (bench_std_args_t){5000000, 8192, 1, 16, 1024});
  uint64_t iterations = p.iterations;

  mixed_t m;
  mixed_init(&m, &p, iterations / 10);
  uint64_t overhead, resolution;
  calibrate_counter(&overhead, &resolution);

  mixed_t local = m; /* registers across the calls, as in mixed_run() */
  bench_timer_t timed = bench_timer_start();
  uint64_t c0 = bench_cycles_begin();
  for (uint64_t i = 0; i < iterations; i++) {
    uint64_t t0 = bench_cycles_begin();
    int kind = mixed_step(&local);
    uint64_t t1 = bench_cycles_end();
    uint64_t d = t1 - t0;
    record(&hists[kind], d > overhead ? d - overhead : 0);
  }
  uint64_t c1 = bench_cycles_end();
  bench_timer_stop(&timed);
  m = local;
  mixed_free_all(&m);
  double cycles_per_ns = (double)(c1 - c0) / (double)timed.wall_ns;

  bench_result_begin("latency", iterations, &timed);
  bench_field_std(&p);
  bench_field_f64("counter_ghz", cycles_per_ns);
  bench_field_u64("overhead_cycles", overhead);
  bench_field_f64("resolution_ns", (double)resolution / cycles_per_ns);
  report("malloc", &hists[MIXED_MALLOC], cycles_per_ns);
  report("free", &hists[MIXED_FREE], cycles_per_ns);
  bench_field_u64("mallocs", m.mallocs);
  bench_field_u64("frees", m.frees);
  bench_result_end();
  mixed_destroy(&m);
  return 0;
}
