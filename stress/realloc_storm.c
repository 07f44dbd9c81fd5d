/* realloc_storm: realloc across size classes and into large sizes, with every
 * allocation entry point and every power-of-two alignment mixed in.
 *
 * Each thread keeps --slots blocks. An empty slot is filled through a random
 * entry point: malloc, calloc (checked zeroed), realloc(NULL), aligned_alloc,
 * posix_memalign or memalign with an alignment in 16 .. --align-max, valloc
 * or pvalloc. A full slot is reallocated (small steps up or down, or a jump to
 * any size up to --max, crossing classes and the large threshold), freed, or
 * swapped with a shared exchange so other threads realloc and free it. Every
 * realloc checks that the preserved prefix arrived intact; now and then a
 * slot grows by doubling from a few bytes to a large size, like a string
 * builder. Every block is checked for alignment, for malloc_usable_size >=
 * request (a quarter of the blocks are then stamped over their whole usable
 * size), and (with hakmem linked) for being routed to the same allocator as
 * malloc's. reallocarray must reject an overflowing count. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stress/stress_common.h"

static struct {
  size_t min, max, align_max, large_from;
  size_t slots;
  uint64_t seed;
  size_t page;
  atomic_int stop;
  /* Blocks parked for other threads to pick up, guarded by xmu. */
  pthread_mutex_t xmu;
  stress_block* xchg;
  size_t nxchg;
  atomic_uint_fast64_t ops, reallocs, aligned, large;
} g = {.xmu = PTHREAD_MUTEX_INITIALIZER};

/* Mostly small and medium sizes, one in 16 large: large blocks are costly to
 * copy, but each of them crosses the large-allocation path twice. */
static size_t pick_size(stress_rng* r) {
  if (g.max > g.large_from && stress_rand(r) % 16 == 0)
    return stress_rand_log(r, g.large_from + 1, g.max);
  return stress_rand_log(r, g.min, g.max < g.large_from ? g.max : g.large_from);
}

/* Every power of two from 16 to --align-max equally often. */
static size_t pick_align(stress_rng* r) {
  int top = 63 - __builtin_clzll((unsigned long long)g.align_max);
  return (size_t)1 << (4 + stress_rand(r) % (uint32_t)(top - 3));
}

/* Checks what every fresh or reallocated block must satisfy. */
static void check_new(const void* p, size_t size, size_t align, const char* entry) {
  if (!p) stress_fail("%s(size %zu, alignment %zu) returned NULL (errno %d)", entry, size, align,
                      errno);
  if ((uintptr_t)p % align)
    stress_fail("%s(size %zu, alignment %zu) returned %p, which is not aligned", entry, size,
                align, p);
  size_t usable = sm_malloc_usable_size((void*)p);
  if (usable < size)
    stress_fail("%s(size %zu) returned %p with malloc_usable_size %zu < size", entry, size, p,
                usable);
  stress_check_routing(p, entry);
}

static void check_zero(const unsigned char* p, size_t size) {
  /* Every byte of the first 64 KiB, then every 256th: enough to catch a
   * recycled block handed out by calloc without being cleared. */
  for (size_t i = 0; i < size; i += i < 65536 ? 1 : 256)
    if (p[i]) stress_fail("calloc returned %p (size %zu) with byte %zu = %#x, not zero", (void*)p,
                          size, i, p[i]);
}

static void fill(stress_block* b, stress_rng* r, uint64_t* seq) {
  size_t size = pick_size(r), align = 16;
  const char* entry;
  void* p = NULL;
  switch (stress_rand(r) % 10) {
    case 0:
    case 1:
    case 2:
      entry = "malloc";
      p = sm_malloc(size);
      break;
    case 3: {
      entry = "calloc";
      size_t n = 1 + stress_rand(r) % 8;
      size = (size + n - 1) / n * n;
      p = sm_calloc(n, size / n);
      if (p) check_zero(p, size);
      break;
    }
    case 4:
      entry = "realloc(NULL)";
      p = sm_realloc(NULL, size);
      break;
    case 5:
      /* A multiple of the alignment, as C11 requires (C17, glibc and hakmem
       * accept any size, the sanitizers' allocators do not): this program
       * tests concurrency, not that API choice. */
      entry = "aligned_alloc";
      align = pick_align(r);
      size = (size + align - 1) & ~(align - 1);
      p = sm_aligned_alloc(align, size);
      break;
    case 6: {
      entry = "posix_memalign";
      align = pick_align(r);
      int e = sm_posix_memalign(&p, align, size);
      if (e) stress_fail("posix_memalign(%zu, %zu) failed: %s", align, size, strerror(e));
      break;
    }
    case 7:
      entry = "memalign";
      align = pick_align(r);
      p = sm_memalign(align, size);
      break;
    case 8:
      entry = "valloc";
      align = g.page;
      p = sm_valloc(size);
      break;
    default:
      entry = "pvalloc";
      align = g.page;
      p = sm_pvalloc(size);
      if (p && sm_malloc_usable_size(p) < ((size + g.page - 1) & ~(g.page - 1)))
        stress_fail("pvalloc(%zu) returned %p with usable size %zu, less than whole pages", size,
                    p, sm_malloc_usable_size(p));
      break;
  }
  check_new(p, size, align, entry);
  /* malloc_usable_size promises the whole usable size may be written: for a
   * quarter of the blocks, use all of it, so an overstated usable size
   * corrupts a neighbour's pattern. Realloc then preserves usable bytes,
   * which an allocator that does not track request sizes does anyway. */
  if (!STRESS_SANITIZER_MALLOC && (stress_rand(r) & 3) == 0) size = sm_malloc_usable_size(p);
  if (align > 16) atomic_fetch_add_explicit(&g.aligned, 1, memory_order_relaxed);
  if (size > g.large_from) atomic_fetch_add_explicit(&g.large, 1, memory_order_relaxed);
  stress_stamp(p, size, *seq);
  *b = (stress_block){p, size, (*seq)++};
}

/* Reallocates b to `size`, checks the preserved prefix and restamps. */
static void resize(stress_block* b, size_t size, uint64_t* seq, const char* how) {
  stress_check(b->p, b->size, b->seq, "before realloc");
  uintptr_t old = (uintptr_t)b->p; /* its pattern's seed, once it is gone */
  void* p = sm_realloc(b->p, size);
  check_new(p, size, 16, how);
  size_t keep = b->size < size ? b->size : size;
  stress_check_moved(p, old, b->size, b->seq, keep, "after realloc (preserved prefix)");
  stress_stamp(p, size, *seq);
  *b = (stress_block){p, size, (*seq)++};
  atomic_fetch_add_explicit(&g.reallocs, 1, memory_order_relaxed);
}

/* Builds up a block like a growing string buffer: from a few bytes, doubling
 * to a random large target, then shrinks it to fit and frees it (kept, such
 * blocks would hold most of the memory of the run). */
static void grow_like_a_string(stress_block* b, stress_rng* r, uint64_t* seq) {
  stress_block_free(b, "before free");
  fill(b, r, seq);
  if (b->size > 64) resize(b, 1 + stress_rand(r) % 64, seq, "realloc (shrink to start)");
  size_t target = stress_rand_log(r, g.large_from < g.max ? g.large_from : g.min, g.max);
  while (b->size < target) {
    size_t next = b->size * 2 + stress_rand(r) % 16;
    resize(b, next < target ? next : target, seq, "realloc (doubling)");
  }
  resize(b, target - stress_rand_range(r, 0, target / 3), seq, "realloc (shrink to fit)");
  stress_block_free(b, "before free");
}

static void exchange(stress_block* b, stress_rng* r) {
  pthread_mutex_lock(&g.xmu);
  size_t i = stress_rand(r) % g.nxchg;
  stress_block t = g.xchg[i];
  g.xchg[i] = *b;
  *b = t;
  pthread_mutex_unlock(&g.xmu);
}

static void* worker_main(void* arg) {
  int index = (int)(intptr_t)arg;
  stress_rng r;
  stress_rng_init(&r, g.seed, (uint64_t)index);
  uint64_t seq = stress_seq_base((uint64_t)index + 1);
  stress_block* s = sm_calloc(g.slots, sizeof *s);
  if (!s) stress_fail("calloc of %zu slots failed", g.slots);
  uint64_t ops = 0;
  while (!atomic_load_explicit(&g.stop, memory_order_relaxed)) {
    stress_block* b = &s[stress_rand(&r) % g.slots];
    uint32_t c = stress_rand(&r) % 1024;
    if (!b->p) {
      fill(b, &r, &seq);
    } else if (c < 300) {
      /* A small step up or down: usually stays in or next to its class. */
      size_t d = 1 + stress_rand(&r) % (b->size / 4 + 16);
      size_t n = stress_rand(&r) & 1 ? b->size + d : (b->size > d ? b->size - d : 1);
      resize(b, n, &seq, "realloc (step)");
    } else if (c < 550) {
      resize(b, pick_size(&r), &seq, "realloc (jump)");
    } else if (c < 600) {
      resize(b, b->size, &seq, "realloc (same size)");
    } else if (c < 900) {
      stress_block_free(b, "before free");
    } else if (c < 1020) {
      exchange(b, &r);
    } else if (c < 1022) {
      grow_like_a_string(b, &r, &seq);
    } else if (!STRESS_ASAN && !STRESS_TSAN) {
      /* reallocarray must reject an overflowing count and leave the block
       * untouched. (Not under sanitizers: if their interceptors serve it,
       * they abort on the overflow by design.) */
      volatile size_t huge = SIZE_MAX / 2 + 2; /* volatile: no compile-time warning */
      errno = 0;
      void* p = sm_reallocarray(b->p, huge, 2);
      if (p || errno != ENOMEM)
        stress_fail("reallocarray(%p, SIZE_MAX/2+2, 2) returned %p errno %d, want NULL/ENOMEM",
                    b->p, p, errno);
      stress_check(b->p, b->size, b->seq, "after a failed reallocarray");
    }
    ops++;
    if ((ops & 15) == 0) stress_progress(index, 16);
  }
  for (size_t i = 0; i < g.slots; i++) stress_block_free(&s[i], "at end of run");
  sm_free(s);
  atomic_fetch_add_explicit(&g.ops, ops, memory_order_relaxed);
  return NULL;
}

int main(int argc, char** argv) {
  stress_args a = {.threads = 4, .seconds = 1, .min_size = 1, .max_size = 4 << 20, .seed = 1,
                   .stall = 10};
  size_t slots = 64, align_max = 1 << 20, large_from = 256 << 10, nxchg = 16;
  const stress_opt extra[] = {
      {"slots", STRESS_OPT_SIZE, &slots, "blocks per thread"},
      {"align-max", STRESS_OPT_SIZE, &align_max, "largest alignment (power of two >= 16)"},
      {"large-from", STRESS_OPT_SIZE, &large_from, "sizes above this are drawn 1 time in 16"},
      {"exchange", STRESS_OPT_SIZE, &nxchg, "blocks parked for other threads"},
      {NULL, 0, NULL, NULL},
  };
  stress_parse(argc, argv, "realloc_storm",
               "realloc across classes into large sizes, with calloc/aligned_alloc/posix_memalign/"
               "memalign/valloc/pvalloc mixed in; every block checked.",
               &a, extra);
  if (slots < 1 || nxchg < 1 || align_max < 16 || (align_max & (align_max - 1))) {
    fprintf(stderr, "realloc_storm: need slots, exchange >= 1 and a power-of-two align-max >= 16\n");
    return 2;
  }
  g.min = a.min_size;
  g.max = a.max_size;
  g.align_max = align_max;
  g.large_from = large_from;
  g.slots = slots;
  g.seed = a.seed;
  g.page = (size_t)sysconf(_SC_PAGESIZE);
  g.nxchg = nxchg;
  g.xchg = sm_calloc(nxchg, sizeof *g.xchg);
  pthread_t* tids = sm_calloc((size_t)a.threads, sizeof *tids);
  if (!g.xchg || !tids) stress_fail("out of memory for thread tables");
  stress_watchdog_start(&a, a.seconds);
  double t0 = stress_now();
  for (int i = 0; i < a.threads; i++) {
    tids[i] = stress_thread_start(worker_main, (void*)(intptr_t)i, "worker");
  }
  stress_sleep(a.seconds);
  atomic_store_explicit(&g.stop, 1, memory_order_relaxed);
  for (int i = 0; i < a.threads; i++) pthread_join(tids[i], NULL);
  double secs = stress_now() - t0;
  stress_watchdog_stop();
  for (size_t i = 0; i < nxchg; i++) stress_block_free(&g.xchg[i], "at end of run");
  sm_free(g.xchg);
  sm_free(tids);
  uint64_t ops = atomic_load(&g.ops);
  printf("realloc_storm OK: %s; ops=%llu ops/s=%.0f reallocs=%llu aligned=%llu large=%llu "
         "allocator=%s\n",
         stress_argline(), (unsigned long long)ops, secs > 0 ? (double)ops / secs : 0.0,
         (unsigned long long)atomic_load(&g.reallocs), (unsigned long long)atomic_load(&g.aligned),
         (unsigned long long)atomic_load(&g.large), stress_allocator());
  return 0;
}
