/* The heap profiler end to end (prof_pprof_test.sh): three call sites, one
 * keeping 64 MiB live, one 1 MiB, one allocating and freeing 256 MiB; the
 * profile is dumped while the blocks are live (argv[1], hk_prof_dump) and
 * again at exit (HAKMEM_PROF_FILE), and google-pprof must attribute the
 * memory to the sites. Sizes are mixed (small classes, arena and own
 * mappings) so every kind of sampled block is in the profile. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc/include/hakmem.h"

static uint32_t rng = 2463534242u;
static uint32_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 17;
  rng ^= rng << 5;
  return rng;
}

/* A size in [lo, hi], log-uniform enough for a mix of classes. */
static size_t pick(size_t lo, size_t hi) {
  size_t s = lo << (next_rand() % 8);
  if (s > hi) s = hi;
  return s + next_rand() % (s / 2 + 1);
}

static void* kept[200000];
static size_t nkept;

__attribute__((noinline)) void site_keeps_64mib(void) {
  size_t total = 0;
  while (total < ((size_t)64 << 20)) {
    size_t n = nkept % 64 == 63 ? pick(300 << 10, 2 << 20) : pick(16, 16384);
    if (total + n > ((size_t)64 << 20)) n = ((size_t)64 << 20) - total;
    void* p = malloc(n);
    memset(p, 1, n < 64 ? n : 64);
    kept[nkept++] = p;
    total += n;
  }
  __asm__ volatile("" ::: "memory");  /* not a tail call: keep this frame */
}

__attribute__((noinline)) void site_keeps_1mib(void) {
  for (size_t total = 0; total < ((size_t)1 << 20); total += 256) kept[nkept++] = malloc(256);
  __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void site_churns_256mib(void) {
  void* ring[64] = {0};
  size_t total = 0;
  for (unsigned i = 0; total < ((size_t)256 << 20); i++) {
    size_t n = i % 97 == 0 ? pick(300 << 10, 4 << 20) : pick(16, 65536);
    free(ring[i % 64]);
    ring[i % 64] = malloc(n);
    memset(ring[i % 64], 2, 16);
    total += n;
  }
  for (unsigned i = 0; i < 64; i++) free(ring[i]);
  __asm__ volatile("" ::: "memory");
}

int main(int argc, char** argv) {
  site_keeps_64mib();
  site_churns_256mib();
  site_keeps_1mib();
  if (argc > 1 && hk_prof_dump(argv[1]) != 0) {
    perror("hk_prof_dump");
    return 1;
  }
  /* Read every kept pointer, so no allocation can be optimized away. */
  uintptr_t sum = 0;
  for (size_t i = 0; i < nkept; i++) sum ^= (uintptr_t)kept[i];
  printf("kept %zu blocks (%zx)\n", nkept, (size_t)sum);
  return 0;
}
