/* prodcons: cross-thread producer/consumer.
 *
 *   prodcons [pairs=1 [items=4000000 [min=16 [max=1024 [seed=1 [ring=1024]]]]]]
 *
 * Each pair is a producer thread that mallocs `items` blocks of random size in
 * [min, max], stamps them and pushes them through a bounded single-producer /
 * single-consumer ring, and a consumer thread that checks the stamp and frees
 * them. Every free is therefore a free of another thread's block: this is the
 * cross-thread (remote) free path in its purest form. The timed part runs from
 * starting the threads to joining them; ops counts mallocs + frees. A wrong
 * stamp (memory handed out twice or overwritten) is counted in `errors` and
 * makes the program exit 1. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"

typedef struct ring {
  /* Producer-owned line: where it writes next, and its cached view of head. */
  _Alignas(64) atomic_uint_fast64_t tail; /* release-stored after the slot write; consumer acquires */
  uint64_t head_cache;
  /* Consumer-owned line. */
  _Alignas(64) atomic_uint_fast64_t head; /* release-stored after the slot read; producer acquires */
  uint64_t tail_cache;
  _Alignas(64) void** slots; /* capacity entries, mmap'd */
  uint64_t mask;             /* capacity - 1 (capacity is a power of two) */
  uint32_t seed;
  uint64_t items;
  uint64_t errors;           /* written by the consumer */
} ring_t;

static size_t g_min, g_max;

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

static void* producer(void* arg) {
  ring_t* q = arg;
  uint32_t rng = q->seed;
  uint64_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
  for (uint64_t i = 0; i < q->items; i++) {
    size_t size = g_min + bench_xorshift32(&rng) % (g_max - g_min + 1);
    unsigned char* p = malloc(size);
    if (!p) bench_fail("malloc(%zu) returned NULL", size);
    p[0] = (unsigned char)i;
    p[size - 1] = (unsigned char)i;
    unsigned spins = 0;
    while (tail - q->head_cache > q->mask) {
      q->head_cache = atomic_load_explicit(&q->head, memory_order_acquire);
      if (tail - q->head_cache > q->mask) backoff(&spins);
    }
    q->slots[tail & q->mask] = p;
    atomic_store_explicit(&q->tail, ++tail, memory_order_release);
  }
  return NULL;
}

static void* consumer(void* arg) {
  ring_t* q = arg;
  uint64_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
  for (uint64_t i = 0; i < q->items; i++) {
    unsigned spins = 0;
    while (head == q->tail_cache) {
      q->tail_cache = atomic_load_explicit(&q->tail, memory_order_acquire);
      if (head == q->tail_cache) backoff(&spins);
    }
    unsigned char* p = q->slots[head & q->mask];
    atomic_store_explicit(&q->head, ++head, memory_order_release);
    if (p[0] != (unsigned char)i) q->errors++;
    free(p);
  }
  return NULL;
}

int main(int argc, char** argv) {
  bench_args_t a = {argc, argv, "[pairs=1 [items=4000000 [min=16 [max=1024 [seed=1 [ring=1024]]]]]]"};
  uint64_t pairs = bench_arg_u64(&a, 1, 1);
  uint64_t items = bench_arg_u64(&a, 2, 4000000);
  g_min = bench_arg_u64(&a, 3, 16);
  g_max = bench_arg_u64(&a, 4, 1024);
  uint64_t seed = bench_arg_u64(&a, 5, 1);
  uint64_t capacity = bench_arg_u64(&a, 6, 1024);
  if (pairs == 0 || pairs > 512) bench_usage_exit(&a, "pairs must be in 1 .. 512");
  if (g_min == 0 || g_min > g_max) bench_usage_exit(&a, "need 0 < min <= max");
  if (capacity < 2 || (capacity & (capacity - 1)) || capacity > (1u << 24))
    bench_usage_exit(&a, "ring must be a power of two in 2 .. 2^24");

  ring_t* rings = bench_map(pairs * sizeof(ring_t));
  pthread_t* tids = bench_map(2 * pairs * sizeof(pthread_t));
  for (uint64_t i = 0; i < pairs; i++) {
    rings[i].slots = bench_map(capacity * sizeof(void*));
    rings[i].mask = capacity - 1;
    rings[i].seed = bench_seed(seed + i * 0x9E3779B97F4A7C15ull);
    rings[i].items = items;
  }

  bench_timer_t timed = bench_timer_start();
  for (uint64_t i = 0; i < pairs; i++) {
    int err = pthread_create(&tids[2 * i], NULL, consumer, &rings[i]);
    if (!err) err = pthread_create(&tids[2 * i + 1], NULL, producer, &rings[i]);
    if (err) bench_fail("pthread_create: %s", strerror(err));
  }
  for (uint64_t i = 0; i < 2 * pairs; i++) pthread_join(tids[i], NULL);
  bench_timer_stop(&timed);

  uint64_t errors = 0;
  for (uint64_t i = 0; i < pairs; i++) {
    errors += rings[i].errors;
    bench_unmap(rings[i].slots, capacity * sizeof(void*));
  }
  bench_unmap(tids, 2 * pairs * sizeof(pthread_t));
  bench_unmap(rings, pairs * sizeof(ring_t));

  bench_result_begin("prodcons", 2 * pairs * items, &timed);
  bench_field_u64("pairs", pairs);
  bench_field_u64("items", items);
  bench_field_u64("min", g_min);
  bench_field_u64("max", g_max);
  bench_field_u64("ring", capacity);
  bench_field_u64("mallocs", pairs * items);
  bench_field_u64("frees", pairs * items);
  bench_field_u64("errors", errors);
  bench_result_end();
  return errors ? 1 : 0;
}
