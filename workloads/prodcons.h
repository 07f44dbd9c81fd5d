/* prodcons: blocks allocated on one thread and freed on another, one
 * implementation for bench/prodcons (measured) and stress/prodcons (every
 * block checked; see block.h for the two builds).
 *
 * Blocks travel through bounded single-producer / single-consumer queues, so
 * every free is a free of another thread's block: the cross-thread (remote)
 * free path in its purest form. Two ways to wire the threads:
 *   - PRODCONS_PAIRS: per queue, a producer thread that only allocates and a
 *     consumer thread that only frees (bench/prodcons);
 *   - PRODCONS_RING: thread i allocates into queue i+1 and frees what arrives
 *     in queue i, so each thread's heap gets its blocks back only remotely; a
 *     thread whose outgoing queue is full frees its inbox meanwhile, so a full
 *     ring never deadlocks (stress/prodcons).
 * A producer draws each block's size uniformly in [min, max]; every
 * burst_every blocks (when burst > 0) it sends `burst` blocks of one size
 * back to back, which fill whole spans that the consumer then empties by
 * remote frees alone. Each consumer checks that blocks arrive in the order
 * they were made with their stamps intact (block.h's wl_in_order).
 *
 * Called by: the main thread of bench/prodcons.c and stress/prodcons.c, one
 * run at a time (the run's settings are process globals). */
#ifndef HAKMEM_WORKLOADS_PRODCONS_H
#define HAKMEM_WORKLOADS_PRODCONS_H

#include <stddef.h>
#include <stdint.h>

#include "bench/bench_common.h"

typedef enum { PRODCONS_PAIRS, PRODCONS_RING } prodcons_wiring;

typedef struct prodcons_params {
  prodcons_wiring wiring;
  uint64_t queues;      /* pairs: 2 threads per queue; ring: 1 thread per queue (>= 2) */
  uint64_t items;       /* blocks each producer sends; UINT64_MAX: until the stop flag */
  double seconds;       /* > 0: the main thread raises the stop flag after this long */
  size_t min, max;      /* block sizes, uniform; 1 <= min <= max */
  uint64_t capacity;    /* entries per queue, a power of two >= 2 */
  uint64_t seed;        /* producer i draws from bench_seed(seed + i * golden ratio) */
  uint64_t burst;       /* blocks per burst of one size; 0: no bursts */
  uint64_t burst_every; /* blocks sent between bursts */
} prodcons_params;

typedef struct prodcons_stats {
  bench_timer_t timed; /* from starting the threads to joining them */
  uint64_t sent;       /* blocks allocated and queued, all producers */
  uint64_t freed;      /* blocks received and freed, all consumers */
  uint64_t bursts;
  uint64_t errors;     /* blocks that arrived out of order or with a wrong stamp */
} prodcons_stats;

/* Runs the workload once and returns its counts. Every queue is drained
 * before it returns, so sent == freed unless a queue lost blocks. */
prodcons_stats prodcons_run(const prodcons_params* p);

#endif /* HAKMEM_WORKLOADS_PRODCONS_H */
