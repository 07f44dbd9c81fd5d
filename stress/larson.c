/* larson: DESIGN.md's server-like multithread workload, with every block
 * checked.
 *
 * Each of --threads lanes owns --chunks slots. The main thread fills every
 * slot first (so the first generation frees blocks another thread allocated).
 * A lane's thread then repeatedly picks a random slot, frees its block and
 * allocates a new one of a random size in [--min, --max] there. After
 * --rounds x --chunks replacements it starts a new thread, hands it the slot
 * array and exits: the new thread frees blocks its predecessor allocated,
 * while the predecessor's heap is being torn down. After --seconds the last
 * generation stops and the main thread frees what is left, into the heaps of
 * threads that no longer exist. --repeat runs the whole thing again with
 * seeds seed, seed+1, ...; the predecessor's crash case is
 * `--threads=4 --chunks=1024 --min=8 --max=128`. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stress/stress_common.h"

typedef struct lane {
  int index;
  stress_block* slots;  /* chunks entries; owned by the lane's current thread */
  uint64_t seq;         /* next sequence number of the lane */
  uint64_t ops;         /* replacements done by all generations so far */
  uint64_t generation;  /* how many threads have run this lane before */
  pthread_t prev;       /* the thread that started the current one; it joins it */
  /* Handshake with main: the last generation sets done and names itself. */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done;
  pthread_t last;
} lane;

static struct {
  size_t chunks;
  int rounds;
  size_t min, max;
  uint64_t seed;
  atomic_int stop; /* set by main after --seconds; workers poll it */
} g;

static void* lane_main(void* arg) {
  lane* l = arg;
  /* Reap the predecessor so at most one thread per lane exists for long;
   * pthread_create in the predecessor orders all its writes to *l before us. */
  if (l->generation > 0) pthread_join(l->prev, NULL);
  stress_rng r;
  stress_rng_init(&r, g.seed, ((uint64_t)l->index << 32) | l->generation);
  uint64_t n = (uint64_t)g.rounds * g.chunks, i;
  for (i = 0; i < n; i++) {
    if ((i & 63) == 0) {
      if (atomic_load_explicit(&g.stop, memory_order_relaxed)) break;
      stress_progress(l->index, 64);
    }
    size_t victim = stress_rand(&r) % g.chunks;
    stress_replace(&l->slots[victim], &r, g.min, g.max, &l->seq);
  }
  l->ops += i;
  if (atomic_load_explicit(&g.stop, memory_order_relaxed)) {
    pthread_mutex_lock(&l->mu);
    l->done = 1;
    l->last = pthread_self();
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    return NULL;
  }
  /* Hand the slot array to a new thread. Once it is started, *l
   * belongs to the successor: touch nothing of it. */
  l->generation++;
  l->prev = pthread_self();
  stress_thread_start(lane_main, l, "the next generation's");
  return NULL;
}

typedef struct {
  uint64_t ops, generations;
  double secs;
} run_result;

static run_result run_once(int threads, double seconds) {
  lane* lanes = sm_calloc((size_t)threads, sizeof *lanes);
  if (!lanes) stress_fail("calloc of %d lanes failed", threads);
  atomic_store(&g.stop, 0);
  for (int i = 0; i < threads; i++) {
    lane* l = &lanes[i];
    l->index = i;
    l->seq = stress_seq_base((uint64_t)i + 1);
    l->slots = sm_calloc(g.chunks, sizeof *l->slots);
    if (!l->slots) stress_fail("calloc of %zu slots failed", g.chunks);
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    /* Warm-up as in the original larson: the main thread allocates every
     * lane's first blocks, so generation 0 already frees remotely. */
    stress_rng r;
    stress_rng_init(&r, g.seed, ((uint64_t)i << 32) | 0xffffffffu);
    for (size_t c = 0; c < g.chunks; c++)
      stress_block_alloc(&l->slots[c], stress_rand_range(&r, g.min, g.max), l->seq++);
  }
  double t0 = stress_now();
  for (int i = 0; i < threads; i++) stress_thread_start(lane_main, &lanes[i], "lane");
  stress_sleep(seconds);
  atomic_store_explicit(&g.stop, 1, memory_order_relaxed);
  run_result res = {0, 0, 0};
  for (int i = 0; i < threads; i++) {
    lane* l = &lanes[i];
    pthread_mutex_lock(&l->mu);
    while (!l->done) pthread_cond_wait(&l->cv, &l->mu);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->last, NULL);
  }
  res.secs = stress_now() - t0;
  for (int i = 0; i < threads; i++) {
    lane* l = &lanes[i];
    res.ops += l->ops;
    res.generations += l->generation + 1;
    /* Free into the heaps of threads that have all exited. */
    for (size_t c = 0; c < g.chunks; c++) stress_block_free(&l->slots[c], "at end of run");
    sm_free(l->slots);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
  }
  sm_free(lanes);
  return res;
}

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
  if (chunks < 1 || rounds < 1 || repeat < 1) {
    fprintf(stderr, "larson: need chunks, rounds and repeat >= 1\n");
    return 2;
  }
  g.chunks = chunks;
  g.rounds = rounds;
  g.min = a.min_size;
  g.max = a.max_size;
  stress_watchdog_start(&a, a.seconds * repeat);
  uint64_t ops = 0, gens = 0;
  double secs = 0;
  for (int i = 0; i < repeat; i++) {
    g.seed = a.seed + (uint64_t)i;
    if (repeat > 1) stress_set_context("run %d/%d, seed %llu", i + 1, repeat, (unsigned long long)g.seed);
    run_result r = run_once(a.threads, a.seconds);
    ops += r.ops;
    gens += r.generations;
    secs += r.secs;
    if (repeat > 1 && !a.quiet)
      printf("larson: run %d/%d seed=%llu ops=%llu threads-started=%llu ok\n", i + 1, repeat,
             (unsigned long long)g.seed, (unsigned long long)r.ops,
             (unsigned long long)r.generations);
  }
  stress_watchdog_stop();
  printf("larson OK: %s; runs=%d ops=%llu ops/s=%.0f threads-started=%llu allocator=%s\n",
         stress_argline(), repeat, (unsigned long long)ops, secs > 0 ? (double)ops / secs : 0.0,
         (unsigned long long)gens, stress_allocator());
  return 0;
}
