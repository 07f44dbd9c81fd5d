/* block.h: how the shared workloads allocate, mark and release one block.
 *
 * Promises: one small vocabulary (wl_alloc, wl_release, wl_in_order,
 * wl_progress, wl_fail) in two builds of the same workload sources, chosen
 * at compile time by WORKLOAD_CHECK (see workloads/BUILD.bazel):
 *   - plain (0, for bench/): the process's malloc and free, one byte stamped
 *     at each end of a block (so every block is touched as an application
 *     would), nothing checked on free. No call, branch or field is added to
 *     the measured loops beyond that.
 *   - checked (1, for stress/): stress_common's full pattern, checked before
 *     every free; any mismatch aborts with the "stress FAIL" line. Blocks go
 *     through stress_common's sm_ names, so under sanitizers hakmem's hk_ API
 *     is what serves them.
 *
 * Called by: workloads/larson.c and workloads/prodcons.c only.
 *
 * Must never: allocate bookkeeping through the allocator under test (slot
 * arrays and queues come from bench_map), or make the plain build pay for
 * the checked one. */
#ifndef HAKMEM_WORKLOADS_BLOCK_H
#define HAKMEM_WORKLOADS_BLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "bench/bench_common.h"

#ifndef WORKLOAD_CHECK
#define WORKLOAD_CHECK 0
#endif

#if WORKLOAD_CHECK
#include "stress/stress_common.h"

/* A block with what its pattern was made from. */
typedef stress_block wl_block;

/* malloc + the full pattern of (p, size, seq); fails on NULL. */
static inline void wl_alloc(wl_block* b, size_t size, uint64_t seq) {
  stress_block_alloc(b, size, seq);
}

/* Checks the pattern (the block's moment named by `what`), frees, clears. */
static inline void wl_release(wl_block* b, const char* what) { stress_block_free(b, what); }

/* Whether a block that went through a queue is the one expected next. */
static inline int wl_in_order(const wl_block* b, uint64_t seq) { return b->seq == seq; }

/* Tells the watchdog that worker `worker` did n more operations. */
static inline void wl_progress(int worker, uint64_t n) { stress_progress(worker, n); }

#define wl_fail stress_fail

#else /* plain */
#include <stdlib.h>

/* Only the address: the same 8 bytes per slot the measurement always had. */
typedef struct wl_block {
  void* p;
} wl_block;

static inline void wl_alloc(wl_block* b, size_t size, uint64_t seq) {
  unsigned char* p = malloc(size);
  if (!p) bench_fail("malloc(%zu) returned NULL", size);
  p[0] = (unsigned char)seq;
  p[size - 1] = (unsigned char)seq;
  b->p = p;
}

/* Frees without clearing: every caller refills the slot or drops it, and a
 * store per free would be one more than the measurement ever had. */
static inline void wl_release(wl_block* b, const char* what) {
  (void)what;
  free(b->p);
}

/* The first byte's stamp: catches a block handed out twice or overwritten. */
static inline int wl_in_order(const wl_block* b, uint64_t seq) {
  return ((const unsigned char*)b->p)[0] == (unsigned char)seq;
}

static inline void wl_progress(int worker, uint64_t n) {
  (void)worker;
  (void)n;
}

#define wl_fail bench_fail

#endif /* WORKLOAD_CHECK */

/* Sequence numbers: (stream tag << 40) | counter, unique within a run, so a
 * checked block's pattern names who made it. */
static inline uint64_t wl_seq_base(uint64_t tag) { return tag << 40; }

/* Uniform in [min, max], one RNG draw (DESIGN.md's workloads). */
static inline size_t wl_random_size(uint32_t* rng, size_t min, size_t max) {
  return min + bench_xorshift32(rng) % (max - min + 1);
}

#endif /* HAKMEM_WORKLOADS_BLOCK_H */
