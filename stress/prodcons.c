/* prodcons: blocks allocated on one thread and freed on another, at a high
 * rate, with bursts that empty whole spans remotely.
 *
 * --threads threads form a ring: thread i allocates blocks and sends them to
 * thread i+1 through a single-producer/single-consumer queue, and frees what
 * thread i-1 sends it. So every free is a cross-thread free, and each thread's
 * heap only ever gets its blocks back remotely. Every --burst-every blocks a
 * thread sends a burst of --burst blocks of one size, allocated back to back
 * so they fill whole spans; the receiver frees the whole burst, so those spans
 * become empty through remote frees alone. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stress/stress_common.h"

/* Single-producer/single-consumer queue of blocks. The producer owns tail,
 * the consumer owns head; each reads the other's index with acquire, pairing
 * with the release store that publishes (tail) or retires (head) an entry. */
typedef struct ring {
  _Alignas(64) atomic_size_t head;
  _Alignas(64) atomic_size_t tail;
  _Alignas(64) size_t mask;
  stress_block* buf;
  atomic_int producer_done; /* release-stored after the producer's last push */
} ring;

static int ring_push(ring* q, const stress_block* b) {
  size_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
  size_t h = atomic_load_explicit(&q->head, memory_order_acquire);
  if (t - h > q->mask) return 0;
  q->buf[t & q->mask] = *b;
  atomic_store_explicit(&q->tail, t + 1, memory_order_release);
  return 1;
}

static int ring_pop(ring* q, stress_block* b) {
  size_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
  size_t t = atomic_load_explicit(&q->tail, memory_order_acquire);
  if (h == t) return 0;
  *b = q->buf[h & q->mask];
  atomic_store_explicit(&q->head, h + 1, memory_order_release);
  return 1;
}

typedef struct worker {
  int index;
  ring* in;   /* filled by the previous thread, drained here */
  ring* out;  /* the next thread's inbox */
  uint64_t sent, freed, bursts;
} worker;

static struct {
  size_t min, max, burst, burst_every;
  uint64_t seed;
  atomic_int stop;
} g;

/* Frees up to `max` received blocks, checking each. */
static size_t drain(worker* w, size_t max) {
  stress_block b;
  size_t n = 0;
  while (n < max && ring_pop(w->in, &b)) {
    stress_block_free(&b, "before remote free");
    n++;
  }
  w->freed += n;
  if (n) stress_progress(w->index, n);
  return n;
}

/* Sends a block; while the receiver's queue is full, frees our own inbox so a
 * full ring of threads can never wait on each other forever. */
static void send(worker* w, const stress_block* b) {
  while (!ring_push(w->out, b)) {
    if (!drain(w, 64)) sched_yield();
  }
  w->sent++;
}

static void* worker_main(void* arg) {
  worker* w = arg;
  stress_rng r;
  stress_rng_init(&r, g.seed, (uint64_t)w->index);
  uint64_t seq = stress_seq_base((uint64_t)w->index + 1);
  uint64_t since_burst = 0;
  while (!atomic_load_explicit(&g.stop, memory_order_relaxed)) {
    stress_block b;
    if (g.burst && since_burst >= g.burst_every) {
      /* One size for the whole burst: back-to-back blocks of one class fill
       * whole spans, which the receiver then empties remotely. */
      size_t size = stress_rand_range(&r, g.min, g.max);
      for (size_t i = 0; i < g.burst; i++) {
        stress_block_alloc(&b, size, seq++);
        send(w, &b);
      }
      w->bursts++;
      since_burst = 0;
    } else {
      size_t n = 1 + stress_rand(&r) % 32;
      for (size_t i = 0; i < n; i++) {
        stress_block_alloc(&b, stress_rand_range(&r, g.min, g.max), seq++);
        send(w, &b);
      }
      since_burst += n;
    }
    drain(w, 64);
    stress_progress(w->index, 1);
  }
  atomic_store_explicit(&w->out->producer_done, 1, memory_order_release);
  /* Free everything still coming: once the sender is done (acquire pairs with
   * its release above, so all its pushes are visible), one more empty drain
   * means the queue is empty for good. */
  for (;;) {
    int done = atomic_load_explicit(&w->in->producer_done, memory_order_acquire);
    if (!drain(w, (size_t)-1)) {
      if (done) break;
      sched_yield();
    }
  }
  return NULL;
}

int main(int argc, char** argv) {
  stress_args a = {.threads = 4, .seconds = 1, .min_size = 8, .max_size = 1024, .seed = 1,
                   .stall = 10};
  size_t ring_size = 4096, burst = 2048, burst_every = 20000;
  const stress_opt extra[] = {
      {"ring", STRESS_OPT_SIZE, &ring_size, "queue capacity per thread, blocks (power of two)"},
      {"burst", STRESS_OPT_SIZE, &burst, "blocks per burst of one size (0 = no bursts)"},
      {"burst-every", STRESS_OPT_SIZE, &burst_every, "blocks sent between bursts"},
      {NULL, 0, NULL, NULL},
  };
  stress_parse(argc, argv, "prodcons",
               "Ring of threads: each allocates blocks and sends them to the next, which checks and "
               "frees them; bursts of one size empty whole spans remotely.",
               &a, extra);
  if (a.threads < 2 || ring_size < 2 || (ring_size & (ring_size - 1))) {
    fprintf(stderr, "prodcons: need threads >= 2 and a power-of-two ring >= 2\n");
    return 2;
  }
  g.min = a.min_size;
  g.max = a.max_size;
  g.burst = burst;
  g.burst_every = burst_every;
  g.seed = a.seed;
  int n = a.threads;
  ring* rings = sm_aligned_alloc(64, sizeof(ring) * (size_t)n);
  worker* ws = sm_calloc((size_t)n, sizeof *ws);
  pthread_t* tids = sm_calloc((size_t)n, sizeof *tids);
  if (!rings || !ws || !tids) stress_fail("out of memory setting up %d threads", n);
  memset(rings, 0, sizeof(ring) * (size_t)n);
  for (int i = 0; i < n; i++) {
    rings[i].mask = ring_size - 1;
    rings[i].buf = sm_calloc(ring_size, sizeof(stress_block));
    if (!rings[i].buf) stress_fail("out of memory for a ring of %zu", ring_size);
  }
  for (int i = 0; i < n; i++) {
    ws[i].index = i;
    ws[i].in = &rings[i];
    ws[i].out = &rings[(i + 1) % n];
  }
  stress_watchdog_start(&a, a.seconds);
  double t0 = stress_now();
  for (int i = 0; i < n; i++) {
    tids[i] = stress_thread_start(worker_main, &ws[i], "worker");
  }
  stress_sleep(a.seconds);
  atomic_store_explicit(&g.stop, 1, memory_order_relaxed);
  for (int i = 0; i < n; i++) pthread_join(tids[i], NULL);
  double secs = stress_now() - t0;
  stress_watchdog_stop();
  uint64_t sent = 0, freed = 0, bursts = 0;
  for (int i = 0; i < n; i++) {
    sent += ws[i].sent;
    freed += ws[i].freed;
    bursts += ws[i].bursts;
    sm_free(rings[i].buf);
  }
  if (sent != freed)
    stress_fail("%llu blocks sent but %llu freed: the queues lost blocks",
                (unsigned long long)sent, (unsigned long long)freed);
  sm_free(rings);
  sm_free(ws);
  sm_free(tids);
  printf("prodcons OK: %s; blocks=%llu blocks/s=%.0f bursts=%llu allocator=%s\n", stress_argline(),
         (unsigned long long)sent, secs > 0 ? (double)sent / secs : 0.0,
         (unsigned long long)bursts, stress_allocator());
  return 0;
}
