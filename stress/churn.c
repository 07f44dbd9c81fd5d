/* churn: short-lived threads whose blocks outlive them, freed by others while
 * the threads exit.
 *
 * --threads lanes each run a succession of short-lived threads. A churn thread
 * allocates --live blocks, works on them (--ops random replacements), frees
 * some blocks other (possibly dead) threads left in a shared pool, and
 * deposits half its live blocks in the pool half-way through its life and the
 * rest right before it returns. --freers long-lived threads take blocks out of
 * the pool and free them all the time, so blocks are freed into heaps whose
 * threads are running, exiting, or gone. A thread-specific-data destructor
 * also allocates and frees during thread exit, after (or before: the order is
 * unspecified) the allocator's own thread-exit work. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stress/stress_common.h"

/* The pool of orphaned blocks. A mutex is fine: the allocator is under test,
 * not the pool. */
static struct {
  pthread_mutex_t mu;
  stress_block* b;
  size_t n, cap;
} pool = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0};

static struct {
  size_t min, max, live;
  int ops;
  uint64_t seed;
  pthread_key_t key;
  atomic_int stop;      /* set by main when --seconds are over */
  atomic_int freer_stop; /* set by main after the last churn thread exited */
  atomic_uint_fast64_t threads_run, deposited, pool_frees, dtor_runs;
  atomic_uint_fast64_t next_tag; /* sequence-range tag of the next thread */
} g;

/* Puts a block in the pool; when full, the depositor frees a random pooled
 * block (allocated by some other thread) to make room. */
static void deposit(stress_block* b, stress_rng* r) {
  stress_block victim = {NULL, 0, 0};
  pthread_mutex_lock(&pool.mu);
  if (pool.n == pool.cap) {
    size_t i = stress_rand(r) % pool.n;
    victim = pool.b[i];
    pool.b[i] = *b;
  } else {
    pool.b[pool.n++] = *b;
  }
  pthread_mutex_unlock(&pool.mu);
  b->p = NULL;
  atomic_fetch_add_explicit(&g.deposited, 1, memory_order_relaxed);
  if (victim.p) {
    stress_block_free(&victim, "before free of a pooled block");
    atomic_fetch_add_explicit(&g.pool_frees, 1, memory_order_relaxed);
  }
}

/* Takes up to max random blocks out of the pool and frees them. */
static size_t take_and_free(stress_rng* r, size_t max) {
  stress_block got[64];
  size_t n = 0;
  if (max > 64) max = 64;
  pthread_mutex_lock(&pool.mu);
  while (n < max && pool.n > 0) {
    size_t i = stress_rand(r) % pool.n;
    got[n++] = pool.b[i];
    pool.b[i] = pool.b[--pool.n];
  }
  pthread_mutex_unlock(&pool.mu);
  for (size_t i = 0; i < n; i++) stress_block_free(&got[i], "before free of a pooled block");
  atomic_fetch_add_explicit(&g.pool_frees, n, memory_order_relaxed);
  return n;
}

/* Thread-specific data: a block (itself described by a malloc'd record) that
 * the destructor frees at thread exit, plus an allocation made during exit. */
typedef struct tsd {
  stress_block b;
  uint64_t seq;
  uint64_t stream;
} tsd;

static void tsd_destructor(void* v) {
  tsd* t = v;
  stress_block_free(&t->b, "in a thread-exit destructor");
  /* Allocate while the thread is exiting; the block goes to the pool, so
   * another thread frees a block from a heap that is being torn down. */
  stress_rng r;
  stress_rng_init(&r, g.seed, t->stream ^ 0x5a5a5a5aull);
  stress_block late;
  stress_block_alloc(&late, stress_rand_range(&r, g.min, g.max), t->seq);
  deposit(&late, &r);
  sm_free(t);
  atomic_fetch_add_explicit(&g.dtor_runs, 1, memory_order_relaxed);
}

typedef struct lane {
  int index;
  uint64_t generation; /* written by main before pthread_create */
} lane;

static void* churn_main(void* arg) {
  lane* l = arg;
  uint64_t stream = ((uint64_t)l->index << 32) | l->generation;
  stress_rng r;
  stress_rng_init(&r, g.seed, stream);
  /* A sequence range of its own for every thread of the run. */
  uint64_t seq = stress_seq_base(atomic_fetch_add(&g.next_tag, 1) + 1);

  tsd* t = sm_malloc(sizeof *t);
  if (!t) stress_fail("malloc(%zu) returned NULL", sizeof *t);
  t->stream = stream;
  stress_block_alloc(&t->b, stress_rand_range(&r, g.min, g.max), seq++);
  t->seq = seq++;
  if (pthread_setspecific(g.key, t)) stress_fail("pthread_setspecific failed");

  stress_block* blocks = sm_calloc(g.live, sizeof *blocks);
  if (!blocks) stress_fail("calloc(%zu) of the block table failed", g.live);
  for (size_t i = 0; i < g.live; i++)
    stress_block_alloc(&blocks[i], stress_rand_range(&r, g.min, g.max), seq++);
  for (int op = 0; op < g.ops; op++) {
    size_t i = stress_rand(&r) % g.live;
    stress_replace(&blocks[i], &r, g.min, g.max, &seq);
    if ((op & 31) == 0) {
      take_and_free(&r, 1 + stress_rand(&r) % 8);
      stress_progress(l->index, 32);
    }
    if (op == g.ops / 2) {
      /* Half-way: orphan the first half while this thread keeps running, so
       * remote frees land in a heap its owner is still using. */
      for (size_t k = 0; k < g.live / 2; k++) deposit(&blocks[k], &r);
      for (size_t k = 0; k < g.live / 2; k++)
        stress_block_alloc(&blocks[k], stress_rand_range(&r, g.min, g.max), seq++);
    }
  }
  /* Right before exit: orphan everything; the freers race with this thread's
   * exit (and with the allocator's thread-exit work). */
  for (size_t k = 0; k < g.live; k++) deposit(&blocks[k], &r);
  sm_free(blocks);
  atomic_fetch_add_explicit(&g.threads_run, 1, memory_order_relaxed);
  stress_progress(l->index, 1);
  return NULL;
}

static void* freer_main(void* arg) {
  int index = (int)(intptr_t)arg;
  stress_rng r;
  stress_rng_init(&r, g.seed, 0xf000000000ull + (uint64_t)index);
  while (!atomic_load_explicit(&g.freer_stop, memory_order_relaxed)) {
    size_t n = take_and_free(&r, 16);
    if (n) stress_progress(index, n);
    else sched_yield();
  }
  return NULL;
}

int main(int argc, char** argv) {
  stress_args a = {.threads = 4, .seconds = 1, .min_size = 8, .max_size = 2048, .seed = 1,
                   .stall = 10};
  size_t live = 256, pool_cap = 4096;
  int ops = 2000, freers = 1;
  const stress_opt extra[] = {
      {"live", STRESS_OPT_SIZE, &live, "blocks each churn thread holds"},
      {"ops", STRESS_OPT_INT, &ops, "replacements per churn thread before it exits"},
      {"freers", STRESS_OPT_INT, &freers, "long-lived threads freeing orphaned blocks"},
      {"pool", STRESS_OPT_SIZE, &pool_cap, "orphaned blocks held at most"},
      {NULL, 0, NULL, NULL},
  };
  stress_parse(argc, argv, "churn",
               "Short-lived threads exit with live blocks that other threads free, while they "
               "exit and after.",
               &a, extra);
  if (live < 2 || ops < 1 || freers < 0 || pool_cap < 1) {
    fprintf(stderr, "churn: need live >= 2, ops >= 1, freers >= 0, pool >= 1\n");
    return 2;
  }
  g.min = a.min_size;
  g.max = a.max_size;
  g.live = live;
  g.ops = ops;
  g.seed = a.seed;
  pool.cap = pool_cap;
  pool.b = sm_calloc(pool_cap, sizeof *pool.b);
  if (!pool.b) stress_fail("calloc of the pool failed");
  if (pthread_key_create(&g.key, tsd_destructor)) stress_fail("pthread_key_create failed");

  int nl = a.threads;
  lane* lanes = sm_calloc((size_t)nl, sizeof *lanes);
  pthread_t* tids = sm_calloc((size_t)nl, sizeof *tids);
  pthread_t* ftids = sm_calloc((size_t)freers + 1, sizeof *ftids);
  if (!lanes || !tids || !ftids) stress_fail("out of memory for thread tables");
  stress_watchdog_start(&a, a.seconds);
  double t0 = stress_now();
  for (int i = 0; i < freers; i++) {
    /* Progress lines after the lanes', so the watchdog can tell them apart. */
    ftids[i] = stress_thread_start(freer_main, (void*)(intptr_t)(nl + i), "freer");
  }
  for (int i = 0; i < nl; i++) {
    lanes[i].index = i;
    tids[i] = stress_thread_start(churn_main, &lanes[i], "churn");
  }
  /* Round-robin: replace each lane's thread as soon as it is joined. */
  for (int i = 0; stress_now() - t0 < a.seconds; i = (i + 1) % nl) {
    pthread_join(tids[i], NULL);
    lanes[i].generation++;
    tids[i] = stress_thread_start(churn_main, &lanes[i], "churn");
  }
  for (int i = 0; i < nl; i++) pthread_join(tids[i], NULL);
  atomic_store_explicit(&g.freer_stop, 1, memory_order_relaxed);
  for (int i = 0; i < freers; i++) pthread_join(ftids[i], NULL);
  double secs = stress_now() - t0;
  stress_watchdog_stop();

  stress_rng r;
  stress_rng_init(&r, a.seed, 0xe000000000ull);
  while (take_and_free(&r, 64)) {
  }
  uint64_t dep = atomic_load(&g.deposited), freed = atomic_load(&g.pool_frees);
  if (dep != freed)
    stress_fail("%llu blocks deposited but %llu freed from the pool",
                (unsigned long long)dep, (unsigned long long)freed);
  pthread_key_delete(g.key);
  sm_free(pool.b);
  sm_free(lanes);
  sm_free(tids);
  sm_free(ftids);
  uint64_t nthreads = atomic_load(&g.threads_run), dtors = atomic_load(&g.dtor_runs);
  if (dtors != nthreads)
    stress_fail("%llu churn threads ran but %llu exit destructors ran",
                (unsigned long long)nthreads, (unsigned long long)dtors);
  printf("churn OK: %s; threads=%llu threads/s=%.0f orphaned-blocks=%llu allocator=%s\n",
         stress_argline(), (unsigned long long)nthreads, secs > 0 ? (double)nthreads / secs : 0.0,
         (unsigned long long)dep, stress_allocator());
  return 0;
}
