/* prodcons: see prodcons.h; block.h says what the plain and checked builds do
 * with each block. */
#define _GNU_SOURCE
#include "workloads/prodcons.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "workloads/block.h"

typedef struct queue {
  /* Producer-owned line: where it writes next, and its cached view of head. */
  _Alignas(64) atomic_uint_fast64_t tail; /* release-stored after the slot write; consumer acquires */
  uint64_t head_cache;
  /* Consumer-owned line: where it reads next, and its cached view of tail. */
  _Alignas(64) atomic_uint_fast64_t head; /* release-stored after the slot read; producer acquires */
  uint64_t tail_cache;
  uint64_t received;       /* blocks taken so far: the next one's place in the producer's order */
  _Alignas(64) wl_block* slots; /* capacity entries, mmap'd */
  uint64_t mask;           /* capacity - 1 */
  uint64_t seq_base;       /* the producer numbers its blocks seq_base, seq_base + 1, ... */
  atomic_int producer_done; /* release-stored after the producer's last push */
} queue_t;

/* Each on cache lines of its own: a pair's producer and consumer write
 * theirs while the other runs. */
typedef struct worker {
  _Alignas(64) int index; /* for the watchdog's progress counters */
  queue_t* out;    /* the queue this thread fills, or NULL */
  queue_t* in;     /* the queue this thread drains, or NULL */
  uint32_t rng;    /* the producer's size stream */
  uint64_t sent, freed, bursts, errors; /* written only by this thread */
} worker_t;

static struct {
  uint64_t items; /* per producer; UINT64_MAX: until the stop flag */
  size_t min, max;
  uint64_t burst, burst_every;
  atomic_int stop; /* relaxed: only needs to be seen eventually */
} g;

/* Waiting side: spin briefly (the other thread is usually running on the
 * other core), then yield so oversubscribed runs still make progress. */
static void backoff(unsigned* spins) {
  if (++*spins < 64) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
  } else {
    sched_yield();
  }
}

/* Frees up to `max` blocks waiting in the worker's inbox, checking each;
 * returns how many. Never waits. */
static uint64_t drain(worker_t* w, uint64_t max) {
  queue_t* q = w->in;
  uint64_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
  uint64_t received = q->received, n = 0, errors = 0;
  while (n < max) {
    if (head == q->tail_cache) {
      q->tail_cache = atomic_load_explicit(&q->tail, memory_order_acquire);
      if (head == q->tail_cache) break;
    }
    wl_block b = q->slots[head & q->mask];
    atomic_store_explicit(&q->head, ++head, memory_order_release);
    if (!wl_in_order(&b, q->seq_base + received)) errors++;
    received++;
    wl_release(&b, "before remote free");
    n++;
  }
  q->received = received;
  w->freed += n;
  w->errors += errors;
  if (WORKLOAD_CHECK && n) wl_progress(w->index, n);
  return n;
}

/* Sends blocks first .. first+n-1 into the worker's queue: one size for all
 * of them when `size` is non-zero (a burst), else each of a random size.
 * While the queue is full it frees the worker's own inbox (ring) or backs
 * off (pairs). Returns the next tail. This loop and malloc are what bench/
 * measures: keep it as it is (measured: with the wait moved out of line,
 * mimalloc's and tcmalloc's prodcons ran 15-20% slower). */
static inline __attribute__((always_inline)) uint64_t send(worker_t* w, uint64_t tail, uint32_t* rng,
                                                           uint64_t first, uint64_t n, size_t size) {
  queue_t* q = w->out;
  const uint64_t seq_base = q->seq_base;
  for (uint64_t i = first; i < first + n; i++) {
    wl_block b;
    wl_alloc(&b, size ? size : wl_random_size(rng, g.min, g.max), seq_base + i);
    unsigned spins = 0;
    while (tail - q->head_cache > q->mask) {
      q->head_cache = atomic_load_explicit(&q->head, memory_order_acquire);
      if (tail - q->head_cache > q->mask && !(w->in && drain(w, 64))) backoff(&spins);
    }
    q->slots[tail & q->mask] = b;
    atomic_store_explicit(&q->tail, ++tail, memory_order_release);
  }
  return tail;
}

/* Sends stretches of single blocks, each as long as it can be before the
 * next burst is due, the inbox (ring) wants draining or the stop flag wants
 * checking: the measured loop (pairs, no bursts) is send()'s alone. */
static void produce(worker_t* w) {
  queue_t* q = w->out;
  uint64_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
  uint64_t sent = 0;
  uint32_t rng = w->rng;
  const uint64_t items = g.items, burst = g.burst;
  uint64_t until_burst = burst ? g.burst_every : UINT64_MAX;
  while (sent < items && !atomic_load_explicit(&g.stop, memory_order_relaxed)) {
    uint64_t n = items - sent;
    if (n > until_burst) n = until_burst;
    if (n > (w->in ? 16 : 4096)) n = w->in ? 16 : 4096;
    tail = send(w, tail, &rng, sent, n, 0);
    sent += n;
    if (burst && (until_burst -= n) == 0) {
      /* One size for the whole burst: back-to-back blocks of one class fill
       * whole spans, which the consumer then empties remotely. */
      n = items - sent < burst ? items - sent : burst;
      tail = send(w, tail, &rng, sent, n, wl_random_size(&rng, g.min, g.max));
      sent += n;
      w->bursts++;
      until_burst = g.burst_every;
    }
    if (w->in) drain(w, 64);
    if (WORKLOAD_CHECK) wl_progress(w->index, n);
  }
  w->rng = rng;
  w->sent = sent;
  atomic_store_explicit(&q->producer_done, 1, memory_order_release);
}

/* Frees everything still coming until the producer is done. The flag is read
 * before the drain: if it was set (its acquire pairs with the producer's
 * release after its last push) and the drain then finds nothing, nothing
 * more can come. */
static void consume_rest(worker_t* w) {
  unsigned spins = 0;
  for (;;) {
    int done = atomic_load_explicit(&w->in->producer_done, memory_order_acquire);
    if (drain(w, UINT64_MAX)) {
      spins = 0;
    } else if (done) {
      return;
    } else {
      backoff(&spins);
    }
  }
}

static void* worker_main(void* arg) {
  worker_t* w = arg;
  if (w->out) produce(w);
  if (w->in) consume_rest(w);
  return NULL;
}

prodcons_stats prodcons_run(const prodcons_params* p) {
  g.items = p->items;
  g.min = p->min;
  g.max = p->max;
  g.burst = p->burst;
  g.burst_every = p->burst_every;
  atomic_store_explicit(&g.stop, 0, memory_order_relaxed);

  uint64_t nq = p->queues, nw = p->wiring == PRODCONS_PAIRS ? 2 * nq : nq;
  queue_t* queues = bench_map(nq * sizeof(queue_t));
  worker_t* workers = bench_map(nw * sizeof(worker_t));
  pthread_t* tids = bench_map(nw * sizeof(pthread_t));
  for (uint64_t i = 0; i < nq; i++) {
    queues[i].slots = bench_map(p->capacity * sizeof(wl_block));
    queues[i].mask = p->capacity - 1;
    queues[i].seq_base = wl_seq_base(i + 1);
  }
  /* Producer i fills queue i. Pairs: [consumer 0, producer 0, consumer 1,
   * ...], each consumer started before its producer. Ring: worker i fills
   * queue i and drains queue i-1. */
  for (uint64_t i = 0; i < nq; i++) {
    worker_t* prod = p->wiring == PRODCONS_PAIRS ? &workers[2 * i + 1] : &workers[i];
    prod->out = &queues[i];
    prod->rng = bench_seed(p->seed + i * 0x9E3779B97F4A7C15ull);
    if (p->wiring == PRODCONS_PAIRS)
      workers[2 * i].in = &queues[i];
    else
      workers[(i + 1) % nq].in = &queues[i];
  }
  for (uint64_t i = 0; i < nw; i++) workers[i].index = (int)i;

  prodcons_stats st = {0};
  st.timed = bench_timer_start();
  for (uint64_t i = 0; i < nw; i++) {
    int err = pthread_create(&tids[i], NULL, worker_main, &workers[i]);
    if (err) wl_fail("pthread_create: %s", strerror(err));
  }
  if (p->seconds > 0) {
    double s = p->seconds;
    struct timespec run = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&run, &run) != 0) {
    }
    atomic_store_explicit(&g.stop, 1, memory_order_relaxed);
  }
  for (uint64_t i = 0; i < nw; i++) pthread_join(tids[i], NULL);
  bench_timer_stop(&st.timed);

  for (uint64_t i = 0; i < nw; i++) {
    st.sent += workers[i].sent;
    st.freed += workers[i].freed;
    st.bursts += workers[i].bursts;
    st.errors += workers[i].errors;
  }
  for (uint64_t i = 0; i < nq; i++) bench_unmap(queues[i].slots, p->capacity * sizeof(wl_block));
  bench_unmap(tids, nw * sizeof(pthread_t));
  bench_unmap(workers, nw * sizeof(worker_t));
  bench_unmap(queues, nq * sizeof(queue_t));
  return st;
}
