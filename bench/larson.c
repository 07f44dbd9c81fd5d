/* larson: the multithreaded server-like benchmark of ../shared/DESIGN.md.
 *
 *   larson [threads=2 [seconds=1 [min=8 [max=128 [chunks=1024 [rounds=100 [seed=1]]]]]]]
 *
 * `threads` lanes run at once. A lane is a slot array of `chunks` blocks plus
 * an RNG; the thread running it repeatedly frees a random slot and mallocs a
 * block of random size in [min, max] there. After rounds * chunks such
 * replacements the thread starts a new thread, hands it the lane and exits,
 * so blocks allocated by one thread are freed by another (as in the original
 * Larson & Krishnan benchmark, which also lets the main thread allocate the
 * initial blocks). After `seconds` the main thread raises a stop flag, waits
 * for every lane's last thread, and frees what is left.
 *
 * ops counts the timed mallocs and frees of all threads; mallocs/frees cover
 * the whole run (initial fill and final cleanup too), so a clean run reports
 * them equal. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_common.h"

typedef struct lane {
  void** slots;              /* chunks entries, mmap'd */
  uint32_t rng;              /* carried across hand-offs: the stream is per lane */
  uint64_t mallocs, frees;   /* timed operations, written only by the lane's current thread */
  uint64_t threads_started;  /* threads that have run this lane */
  pthread_t prev;            /* predecessor to reap; written before creating the successor */
  int has_prev;
  pthread_t last;            /* the thread that saw the stop flag; read by main after `done` */
  atomic_int done;           /* release-stored by the last thread, acquire-loaded by main */
  char pad[64];              /* lanes are written by different threads: keep them apart */
} lane_t;

static struct {
  uint32_t chunks;
  size_t min, max;
  uint64_t ops_per_thread; /* rounds * chunks */
  atomic_int stop;          /* relaxed: only needs to be seen eventually */
} g;

static size_t random_size(uint32_t* rng) {
  return g.min + bench_xorshift32(rng) % (g.max - g.min + 1);
}

static void* lane_thread(void* arg) {
  lane_t* l = arg;
  /* Reaping the predecessor keeps the number of unjoined threads bounded and
   * guarantees its exit (and the allocator's thread teardown) is complete
   * before this thread touches the lane's blocks. */
  if (l->has_prev) pthread_join(l->prev, NULL);
  l->threads_started++;

  uint32_t rng = l->rng;
  uint64_t done_ops = 0;
  while (done_ops < g.ops_per_thread && !atomic_load_explicit(&g.stop, memory_order_relaxed)) {
    uint32_t idx = bench_xorshift32(&rng) % g.chunks;
    free(l->slots[idx]);
    size_t size = random_size(&rng);
    char* p = malloc(size);
    if (!p) bench_fail("malloc(%zu) returned NULL", size);
    p[0] = 'a';
    p[size - 1] = 'b';
    l->slots[idx] = p;
    done_ops++;
  }
  l->rng = rng;
  l->frees += done_ops;
  l->mallocs += done_ops;

  if (!atomic_load_explicit(&g.stop, memory_order_relaxed)) {
    l->prev = pthread_self();
    l->has_prev = 1;
    pthread_t next;
    int err = pthread_create(&next, NULL, lane_thread, l);
    if (err == 0) return NULL;
    /* Could not hand off (resource limits): finish the lane here instead. */
    dprintf(2, "larson: pthread_create failed (%s); lane stops early\n", strerror(err));
    l->has_prev = 0;
  }
  l->last = pthread_self();
  atomic_store_explicit(&l->done, 1, memory_order_release);
  return NULL;
}

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

  g.chunks = (uint32_t)chunks;
  g.min = min;
  g.max = max;
  g.ops_per_thread = rounds * chunks;

  lane_t* lanes = bench_map(threads * sizeof(lane_t));
  uint64_t fill_mallocs = 0;
  for (uint64_t t = 0; t < threads; t++) {
    lane_t* l = &lanes[t];
    l->slots = bench_map(chunks * sizeof(void*));
    l->rng = bench_seed(seed + t * 0x9E3779B97F4A7C15ull);
    for (uint64_t i = 0; i < chunks; i++) {
      size_t size = random_size(&l->rng);
      char* p = malloc(size);
      if (!p) bench_fail("malloc(%zu) returned NULL", size);
      p[0] = 'a';
      l->slots[i] = p;
      fill_mallocs++;
    }
  }

  bench_timer_t timed = bench_timer_start();
  for (uint64_t t = 0; t < threads; t++) {
    pthread_t tid;
    int err = pthread_create(&tid, NULL, lane_thread, &lanes[t]);
    if (err) bench_fail("pthread_create: %s", strerror(err));
    /* Not joined here: the lane's last thread is joined below, the others by
     * their successors. */
  }
  struct timespec run = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
  while (nanosleep(&run, &run) != 0) {
  }
  atomic_store_explicit(&g.stop, 1, memory_order_relaxed);
  for (uint64_t t = 0; t < threads; t++) {
    struct timespec tick = {0, 100000};
    while (!atomic_load_explicit(&lanes[t].done, memory_order_acquire)) nanosleep(&tick, NULL);
    pthread_join(lanes[t].last, NULL);
  }
  bench_timer_stop(&timed);

  uint64_t mallocs = fill_mallocs, frees = 0, timed_ops = 0, started = 0;
  for (uint64_t t = 0; t < threads; t++) {
    lane_t* l = &lanes[t];
    mallocs += l->mallocs;
    frees += l->frees;
    timed_ops += l->mallocs + l->frees;
    started += l->threads_started;
    for (uint64_t i = 0; i < chunks; i++) {
      free(l->slots[i]);
      frees++;
    }
    bench_unmap(l->slots, chunks * sizeof(void*));
  }
  bench_unmap(lanes, threads * sizeof(lane_t));

  bench_result_begin("larson", timed_ops, &timed);
  bench_field_u64("threads", threads);
  bench_field_u64("min", min);
  bench_field_u64("max", max);
  bench_field_u64("chunks", chunks);
  bench_field_u64("rounds", rounds);
  bench_field_u64("seed", seed);
  bench_field_u64("threads_started", started);
  bench_field_u64("mallocs", mallocs);
  bench_field_u64("frees", frees);
  bench_result_end();
  return 0;
}
