/* churn: threads that come and go in rounds and pass objects to each other
 * (DESIGN.md's "thread churn"), measured.
 *
 *   churn [threads=8 [rounds=50 [ops=20000 [slots=4096 [max=4194304 [seed=1]]]]]]
 *
 * Each round starts `threads` threads and joins them all; the next round's
 * threads are new ones. A thread does `ops` steps on a shared array of
 * `slots` pointers (the objects the threads pass to each other): take a
 * random slot (atomic exchange with NULL), free what it held (made by
 * another thread, often one that has exited), allocate a block and put it
 * there. Sizes: 7 in 8 draws are small (8 B .. 1 KiB), then medium (1 ..
 * 32 KiB), and 1 in 256 large (64 KiB .. max), each uniform in its range.
 * Every 64 steps the thread also grows a buffer of its own with realloc, by
 * a quarter plus 64 bytes, writing its new tail; past 1 MiB (or max) the
 * buffer goes to the shared array like any object and a new one starts.
 * A thread leaves its buffer in the array when it exits. Every block's
 * first and last bytes carry a stamp, checked when it is freed (a mismatch
 * counts in `errors` and makes the program exit 1).
 *
 * ops counts every malloc, realloc and free of the timed part (all rounds
 * and the final frees); minflt (every program's RESULT line has it) is what
 * the churn measure is about: the minor page faults of the timed
 * part, and minflt_per_kop the same per 1000 operations. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"

static struct {
  uint64_t threads, rounds, ops, slots;
  size_t max;
  uint64_t seed;
  _Atomic(unsigned char*)* shared; /* slots entries, mmap'd; a block's size sits in its first 8 bytes */
} g;

typedef struct worker {
  _Alignas(64) uint32_t rng;
  uint64_t mallocs, reallocs, frees, errors;
} worker_t;

/* Every block starts with its size (8 bytes) and ends with a stamp byte
 * derived from it, so whoever frees it can check it without bookkeeping. */
static inline unsigned char stamp_of(size_t size) { return (unsigned char)(size * 131u + 7u); }

static void block_stamp(unsigned char* p, size_t size) {
  memcpy(p, &size, sizeof size);
  p[size - 1] = stamp_of(size);
}

static void block_free(worker_t* w, unsigned char* p) {
  size_t size;
  memcpy(&size, p, sizeof size);
  if (size < 16 || p[size - 1] != stamp_of(size)) w->errors++;
  free(p);
  w->frees++;
}

static size_t draw_size(uint32_t* rng) {
  uint32_t r = bench_xorshift32(rng);
  uint32_t kind = r & 0xFF, v = r >> 8;
  size_t lo, hi;
  if (kind == 0) {
    lo = 64 << 10;
    hi = g.max;
  } else if ((kind & 7) == 0) {
    lo = 1024;
    hi = 32 << 10;
  } else {
    lo = 16;
    hi = 1024;
  }
  if (hi < lo) hi = lo;
  return lo + v % (hi - lo + 1);
}

/* Puts p in slot i; frees whatever someone else put there meanwhile. */
static void publish(worker_t* w, uint64_t i, unsigned char* p) {
  unsigned char* old = atomic_exchange_explicit(&g.shared[i], p, memory_order_acq_rel);
  if (old) block_free(w, old);
}

static void* churn_thread(void* arg) {
  worker_t* w = arg;
  size_t grow_limit = g.max < (1u << 20) ? g.max : (1u << 20);
  unsigned char* buf = NULL;
  size_t buf_size = 0;
  for (uint64_t k = 0; k < g.ops; k++) {
    uint64_t i = bench_xorshift32(&w->rng) % g.slots;
    /* acquire: pairs with the release half of the exchange that put it there */
    unsigned char* old = atomic_exchange_explicit(&g.shared[i], NULL, memory_order_acquire);
    if (old) block_free(w, old);
    size_t size = draw_size(&w->rng);
    unsigned char* p = malloc(size);
    if (!p) bench_fail("malloc(%zu) returned NULL", size);
    w->mallocs++;
    block_stamp(p, size);
    publish(w, i, p);
    if ((k & 63) == 0) {
      size_t next = buf_size + buf_size / 4 + 64;
      if (buf != NULL && next > grow_limit) {
        publish(w, bench_xorshift32(&w->rng) % g.slots, buf);
        buf = NULL;
        buf_size = 0;
        next = 64;
      }
      unsigned char* nb = realloc(buf, next);
      if (!nb) bench_fail("realloc(%zu) returned NULL", next);
      if (buf == NULL) w->mallocs++;
      else w->reallocs++;
      if (buf != NULL && nb[buf_size - 1] != stamp_of(buf_size)) w->errors++;
      memset(nb + buf_size, 0x5a, next - buf_size);  /* the new tail is written, as an append would */
      block_stamp(nb, next);
      buf = nb;
      buf_size = next;
    }
  }
  if (buf) publish(w, bench_xorshift32(&w->rng) % g.slots, buf);
  return NULL;
}

int main(int argc, char** argv) {
  bench_args_t a = {argc, argv, "[threads=8 [rounds=50 [ops=20000 [slots=4096 [max=4194304 [seed=1]]]]]]"};
  g.threads = bench_arg_u64(&a, 1, 8);
  g.rounds = bench_arg_u64(&a, 2, 50);
  g.ops = bench_arg_u64(&a, 3, 20000);
  g.slots = bench_arg_u64(&a, 4, 4096);
  g.max = bench_arg_u64(&a, 5, 4 << 20);
  g.seed = bench_arg_u64(&a, 6, 1);
  if (g.threads == 0 || g.threads > 1024) bench_usage_exit(&a, "threads must be in 1 .. 1024");
  if (g.rounds == 0) bench_usage_exit(&a, "rounds must be positive");
  if (g.slots == 0 || g.slots > (1u << 24)) bench_usage_exit(&a, "slots must be in 1 .. 2^24");
  if (g.max < 64 << 10) bench_usage_exit(&a, "max must be at least 65536");

  g.shared = bench_map(g.slots * sizeof g.shared[0]);
  worker_t* workers = bench_map(g.threads * sizeof(worker_t));
  pthread_t* tids = bench_map(g.threads * sizeof(pthread_t));
  bench_timer_t timed = bench_timer_start();
  for (uint64_t r = 0; r < g.rounds; r++) {
    for (uint64_t t = 0; t < g.threads; t++) {
      /* Each thread its own stream, different in every round. */
      workers[t].rng = bench_seed(g.seed + (r * g.threads + t) * 0x9E3779B97F4A7C15ull);
      int err = pthread_create(&tids[t], NULL, churn_thread, &workers[t]);
      if (err) bench_fail("pthread_create: %s", strerror(err));
    }
    for (uint64_t t = 0; t < g.threads; t++) pthread_join(tids[t], NULL);
  }
  worker_t last = {0};
  for (uint64_t i = 0; i < g.slots; i++) {
    unsigned char* p = atomic_exchange_explicit(&g.shared[i], NULL, memory_order_acquire);
    if (p) block_free(&last, p);
  }
  bench_timer_stop(&timed);

  uint64_t mallocs = 0, reallocs = 0, frees = last.frees, errors = last.errors;
  for (uint64_t t = 0; t < g.threads; t++) {
    mallocs += workers[t].mallocs;
    reallocs += workers[t].reallocs;
    frees += workers[t].frees;
    errors += workers[t].errors;
  }
  uint64_t ops = mallocs + reallocs + frees;
  bench_result_begin("churn", ops, &timed);
  bench_field_u64("threads", g.threads);
  bench_field_u64("rounds", g.rounds);
  bench_field_u64("ops_per_thread", g.ops);
  bench_field_u64("slots", g.slots);
  bench_field_u64("max", g.max);
  bench_field_u64("seed", g.seed);
  bench_field_u64("mallocs", mallocs);
  bench_field_u64("reallocs", reallocs);
  bench_field_u64("frees", frees);
  bench_field_u64("errors", errors);
  bench_result_end();
  bench_unmap(tids, g.threads * sizeof(pthread_t));
  bench_unmap(workers, g.threads * sizeof(worker_t));
  bench_unmap((void*)g.shared, g.slots * sizeof g.shared[0]);
  return errors ? 1 : 0;
}
