/* larson: the multithreaded server-like workload of ../shared/DESIGN.md,
 * one implementation for bench/larson (measured) and stress/larson (every
 * block checked; see block.h for the two builds).
 *
 * `threads` lanes run at once. A lane is a slot array of `chunks` blocks plus
 * an RNG; the thread running it repeatedly frees a random slot and allocates
 * a block of random size in [min, max] there. After rounds * chunks such
 * replacements the thread starts a new thread, hands it the lane and exits,
 * so blocks allocated by one thread are freed by another (as in Larson &
 * Krishnan's benchmark, which also lets the main thread allocate the initial
 * blocks). After `seconds` the main thread raises a stop flag, waits for
 * every lane's last thread, and frees what is left, into the heaps of
 * threads that no longer exist.
 *
 * Called by: the main thread of bench/larson.c and stress/larson.c, one run
 * at a time (the run's settings are process globals). */
#ifndef HAKMEM_WORKLOADS_LARSON_H
#define HAKMEM_WORKLOADS_LARSON_H

#include <stddef.h>
#include <stdint.h>

#include "bench/bench_common.h"

typedef struct larson_params {
  uint64_t threads; /* lanes running at once, 1 .. 1024 */
  double seconds;   /* how long the lanes run before the stop flag */
  size_t min, max;  /* block sizes, uniform; 1 <= min <= max */
  uint64_t chunks;  /* slots per lane, 1 .. 2^28 */
  uint64_t rounds;  /* a thread does rounds * chunks replacements, then hands off */
  uint64_t seed;    /* lane t draws from bench_seed(seed + t * golden ratio) */
} larson_params;

typedef struct larson_stats {
  bench_timer_t timed;      /* from starting the lanes to joining their last threads */
  uint64_t replacements;    /* timed free + malloc pairs, all threads */
  uint64_t mallocs, frees;  /* the whole run: fill, timed part and final frees */
  uint64_t threads_started; /* threads that ran a lane (>= threads) */
  uint64_t lanes_cut_short; /* lanes that stopped early: a hand-off's pthread_create failed */
} larson_stats;

/* Runs the workload once and returns its counts. Fails (bench_fail, or
 * stress_fail in the checked build) when a lane's first thread cannot start. */
larson_stats larson_run(const larson_params* p);

#endif /* HAKMEM_WORKLOADS_LARSON_H */
