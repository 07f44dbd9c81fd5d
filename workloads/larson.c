/* larson: see larson.h; block.h says what the plain and checked builds do
 * with each block. */
#define _GNU_SOURCE
#include "workloads/larson.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "workloads/block.h"

typedef struct lane {
  wl_block* slots;          /* chunks entries, mmap'd */
  int index;                /* for the watchdog's progress counters */
  uint32_t rng;             /* carried across hand-offs: the stream is per lane */
  uint64_t seq;             /* next block's sequence number, carried likewise */
  uint64_t replacements;    /* timed, written only by the lane's current thread */
  uint64_t threads_started; /* threads that have run this lane */
  int cut_short;            /* a hand-off failed; the lane stopped early */
  pthread_t prev;           /* predecessor to reap; written before creating the successor */
  int has_prev;
  pthread_t last;           /* the thread that saw the stop flag; read by main after `done` */
  atomic_int done;          /* release-stored by the last thread, acquire-loaded by main */
  char pad[64];             /* lanes are written by different threads: keep them apart */
} lane_t;

static struct {
  uint32_t chunks; /* <= 2^28; 32 bits keep the slot pick a 32-bit division */
  size_t min, max;
  uint64_t ops_per_thread; /* rounds * chunks */
  atomic_int stop;         /* relaxed: only needs to be seen eventually */
} g;

static void* lane_thread(void* arg) {
  lane_t* l = arg;
  /* Reaping the predecessor keeps the number of unjoined threads bounded and
   * guarantees its exit (and the allocator's thread teardown) is complete
   * before this thread touches the lane's blocks. */
  if (l->has_prev) pthread_join(l->prev, NULL);
  l->threads_started++;

  uint32_t rng = l->rng;
  uint64_t seq = l->seq, done_ops = 0;
  while (done_ops < g.ops_per_thread && !atomic_load_explicit(&g.stop, memory_order_relaxed)) {
    wl_block* slot = &l->slots[bench_xorshift32(&rng) % g.chunks];
    wl_release(slot, "before free");
    wl_alloc(slot, wl_random_size(&rng, g.min, g.max), seq++);
    done_ops++;
    if (WORKLOAD_CHECK && (done_ops & 63) == 0) wl_progress(l->index, 64);
  }
  l->rng = rng;
  l->seq = seq;
  l->replacements += done_ops;

  if (!atomic_load_explicit(&g.stop, memory_order_relaxed)) {
    l->prev = pthread_self();
    l->has_prev = 1;
    pthread_t next;
    int err = pthread_create(&next, NULL, lane_thread, l);
    if (err == 0) return NULL; /* *l now belongs to the successor */
    /* Could not hand off (resource limits): finish the lane here instead. */
    dprintf(2, "larson: pthread_create failed (%s); lane stops early\n", strerror(err));
    l->has_prev = 0;
    l->cut_short = 1;
  }
  l->last = pthread_self();
  atomic_store_explicit(&l->done, 1, memory_order_release);
  return NULL;
}

larson_stats larson_run(const larson_params* p) {
  g.chunks = (uint32_t)p->chunks;
  g.min = p->min;
  g.max = p->max;
  g.ops_per_thread = p->rounds * p->chunks;
  atomic_store_explicit(&g.stop, 0, memory_order_relaxed);

  larson_stats st = {0};
  lane_t* lanes = bench_map(p->threads * sizeof(lane_t));
  for (uint64_t t = 0; t < p->threads; t++) {
    lane_t* l = &lanes[t];
    l->index = (int)t;
    l->slots = bench_map(p->chunks * sizeof(wl_block));
    l->rng = bench_seed(p->seed + t * 0x9E3779B97F4A7C15ull);
    l->seq = wl_seq_base(t + 1);
    for (uint64_t i = 0; i < p->chunks; i++)
      wl_alloc(&l->slots[i], wl_random_size(&l->rng, g.min, g.max), l->seq++);
    st.mallocs += p->chunks;
  }

  st.timed = bench_timer_start();
  for (uint64_t t = 0; t < p->threads; t++) {
    pthread_t tid;
    int err = pthread_create(&tid, NULL, lane_thread, &lanes[t]);
    if (err) wl_fail("pthread_create: %s", strerror(err));
    /* Not joined here: the lane's last thread is joined below, the others by
     * their successors. */
  }
  double s = p->seconds;
  struct timespec run = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  while (nanosleep(&run, &run) != 0) {
  }
  atomic_store_explicit(&g.stop, 1, memory_order_relaxed);
  for (uint64_t t = 0; t < p->threads; t++) {
    struct timespec tick = {0, 100000};
    while (!atomic_load_explicit(&lanes[t].done, memory_order_acquire)) nanosleep(&tick, NULL);
    pthread_join(lanes[t].last, NULL);
  }
  bench_timer_stop(&st.timed);

  for (uint64_t t = 0; t < p->threads; t++) {
    lane_t* l = &lanes[t];
    st.replacements += l->replacements;
    st.threads_started += l->threads_started;
    st.lanes_cut_short += (uint64_t)l->cut_short;
    for (uint64_t i = 0; i < p->chunks; i++) wl_release(&l->slots[i], "at end of run");
    bench_unmap(l->slots, p->chunks * sizeof(wl_block));
  }
  st.mallocs += st.replacements;
  st.frees = st.replacements + p->threads * p->chunks;
  bench_unmap(lanes, p->threads * sizeof(lane_t));
  return st;
}
