/* probe: a plain malloc program for the process-level variant tests
 * (variants_*_test.py). It links no allocator: the tests run it with
 * LD_PRELOAD=libhakmem_<variant>.so (or a peer allocator), so the same binary
 * measures every variant. When hakmem is preloaded, its counters are read
 * through dlsym (hk_stats_get), so the numbers come from the allocator under
 * test; otherwise those fields are left out.
 *
 *   probe config                 one malloc/free (for HAKMEM_SHOW_CONFIG and env tests)
 *   probe burst MB WAIT_MS       allocate and touch a MB-megabyte burst of mixed
 *                                small and large blocks, free it, wait, allocate it again
 *   probe steady WS ITERATIONS   random_mixed (bench/random_mixed.c) after warm-up: syscalls per op
 *   probe syscalls MB            a burst between strace markers (variants_syscalls_test)
 *   probe prewarm                a fresh thread's start-up and first allocations
 *
 * Output: one line "PROBE <mode> key=value ...". Nothing here allocates
 * except the workload itself: lines are formatted into stack buffers and
 * written with write(2), bookkeeping arrays come from mmap. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "alloc/include/hakmem.h"

/* ---- output -------------------------------------------------------------- */
static char line_buf[4096];
static size_t line_len;

static void out(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line_buf + line_len, sizeof(line_buf) - line_len, fmt, ap);
  va_end(ap);
  if (n > 0) line_len += (size_t)n;
  if (line_len >= sizeof(line_buf)) line_len = sizeof(line_buf) - 1;
}

static void out_end(void) {
  out("\n");
  if (write(1, line_buf, line_len) < 0) _exit(3);
  line_len = 0;
}

static void die(const char* what) {
  char buf[256];
  int n = snprintf(buf, sizeof(buf), "probe: %s\n", what);
  if (write(2, buf, (size_t)n) < 0) _exit(4);
  _exit(1);
}

/* ---- measurements ---------------------------------------------------------- */
static long rss_kb(void) {
  char buf[128];
  int fd = open("/proc/self/statm", O_RDONLY);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = 0;
  long size = 0, resident = 0;
  if (sscanf(buf, "%ld %ld", &size, &resident) != 2) return -1;
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* A field of /proc/self/smaps_rollup in kB (LazyFree: MADV_FREE pages the
 * kernel has not reclaimed yet, still counted in RSS). */
static long smaps_kb(const char* field) {
  static char buf[8192];
  int fd = open("/proc/self/smaps_rollup", O_RDONLY);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = 0;
  char* p = strstr(buf, field);
  if (p == NULL) return -1;
  return strtol(p + strlen(field) + 1, NULL, 10);
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static long minflt(int who) {
  struct rusage ru;
  getrusage(who, &ru);
  return ru.ru_minflt;
}

/* User + system CPU time of the process in ms: unlike wall time, it does not
 * grow while other processes have the CPU. */
static double cpu_ms(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static void* map(size_t bytes) {
  void* p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) die("mmap failed");
  return p;
}

/* Blocks whose only use is a later free go through here: the compiler may
 * otherwise drop the malloc/free pair altogether. */
static void* volatile sink;

static void* keep(void* p) {
  sink = p;
  return p;
}

/* hakmem's functions when it is the preloaded allocator, else NULL. */
static void (*stats_get)(hk_stats_t*);

static void find_hakmem(void) { stats_get = (void (*)(hk_stats_t*))dlsym(RTLD_DEFAULT, "hk_stats_get"); }

static uint64_t syscalls(const hk_stats_t* s) {
  return s->syscalls_mmap + s->syscalls_munmap + s->syscalls_madvise + s->syscalls_mprotect + s->syscalls_mremap +
         s->syscalls_mincore;
}

static void out_stats(const char* prefix) {
  if (!stats_get) return;
  hk_stats_t s;
  stats_get(&s);
  out(" %sreserved_kb=%llu %scommitted_kb=%llu %scached_kb=%llu %smmap=%llu %smunmap=%llu %smadvise=%llu "
      "%smadvise_free=%llu %smadvise_dontneed=%llu",
      prefix, (unsigned long long)s.bytes_reserved >> 10, prefix, (unsigned long long)s.bytes_committed >> 10,
      prefix, (unsigned long long)s.bytes_cached >> 10, prefix, (unsigned long long)s.syscalls_mmap, prefix,
      (unsigned long long)s.syscalls_munmap, prefix, (unsigned long long)s.syscalls_madvise, prefix,
      (unsigned long long)s.syscalls_madvise_free, prefix, (unsigned long long)s.syscalls_madvise_dontneed);
}

static uint32_t xorshift32(uint32_t* x) {
  *x ^= *x << 13;
  *x ^= *x >> 17;
  *x ^= *x << 5;
  return *x;
}

/* ---- burst ----------------------------------------------------------------- */
/* The burst: about `bytes` in blocks drawn from seed 1. One block in 64 is
 * big (64 KiB .. 1 MiB: a medium class up to 256 KiB, its own mapping
 * above), the rest small (16 B .. 32 KiB,
 * log-uniform, so every size class); about half the bytes are in each kind.
 * Every page is written, so all of it is resident. */
typedef struct burst {
  void** blocks;   /* mmap'd */
  size_t count;
  size_t capacity;
} burst_t;

static void burst_alloc(burst_t* b, size_t bytes) {
  uint32_t x = 1;
  size_t total = 0;
  b->count = 0;
  while (total < bytes && b->count < b->capacity) {
    uint32_t r = xorshift32(&x);
    bool large = (r & 63) == 0;
    size_t n = large ? 65536 + xorshift32(&x) % (960u << 10) : (size_t)16 << ((r >> 8) % 12);
    if (!large) n += xorshift32(&x) % n;
    if (!large && n > 32768) n = 32768;
    char* p = malloc(n);
    if (p == NULL) die("malloc failed in the burst");
    memset(p, (int)(r | 1), n);
    b->blocks[b->count++] = p;
    total += n;
  }
}

static void burst_free(burst_t* b) {
  for (size_t i = 0; i < b->count; i++) free(b->blocks[i]);
  b->count = 0;
}

static int mode_burst(size_t mb, unsigned wait_ms) {
  burst_t b = {NULL, 0, 1u << 20};
  b.blocks = map(b.capacity * sizeof(void*));
  /* Freed after the wait: a slow-path free that comes late, the way a
   * program's last frees trail its burst. */
  void* late = keep(malloc(1 << 20));
  memset(late, 1, 1 << 20);
  long rss0 = rss_kb();
  out("PROBE burst mb=%zu wait_ms=%u rss0_kb=%ld", mb, wait_ms, rss0);

  uint64_t t0 = now_ns();
  burst_alloc(&b, mb << 20);
  uint64_t t1 = now_ns();
  out(" blocks=%zu alloc_ms=%.1f peak_kb=%ld", b.count, (t1 - t0) / 1e6, rss_kb());
  burst_free(&b);
  out(" freed_kb=%ld lazyfree_kb=%ld", rss_kb(), smaps_kb("LazyFree:"));
  out_stats("freed_");

  if (wait_ms) {
    struct timespec ts = {wait_ms / 1000, (long)(wait_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
  }
  free(late);
  out(" waited_kb=%ld", rss_kb());
  out_stats("waited_");

  /* The same burst again: what keeping (or returning) the memory costs. */
  long f0 = minflt(RUSAGE_SELF);
  double c0 = cpu_ms();
  t0 = now_ns();
  burst_alloc(&b, mb << 20);
  t1 = now_ns();
  double c1 = cpu_ms();
  long f1 = minflt(RUSAGE_SELF);
  out(" again_ms=%.1f again_cpu_ms=%.1f again_minflt=%ld", (t1 - t0) / 1e6, c1 - c0, f1 - f0);
  burst_free(&b);
  out_end();
  return 0;
}

/* ---- steady state ------------------------------------------------------------ */
/* random_mixed as bench/mixed.c runs it (sizes 16..1040, about ws/2
 * blocks live), run until steady, then measured. */
static uint64_t mixed_run(void** slots, uint32_t ws, uint32_t* x, uint64_t iterations) {
  for (uint64_t i = 0; i < iterations; i++) {
    uint32_t r = xorshift32(x);
    void** slot = &slots[r % ws];
    if (*slot) {
      free(*slot);
      *slot = NULL;
    } else {
      char* p = malloc(16 + (r & 0x3FF));
      if (p == NULL) die("malloc failed in random_mixed");
      p[0] = (char)r;
      *slot = p;
    }
  }
  return iterations;
}

static int mode_steady(uint32_t ws, uint64_t iterations) {
  void** slots = map(ws * sizeof(void*));
  uint32_t x = 12345;
  /* Warm-up: the prefault pass plus a full run, so every span and segment
   * the working set needs exists before counting. */
  mixed_run(slots, ws, &x, iterations / 10 + iterations);
  hk_stats_t before = {0}, after = {0};
  if (stats_get) stats_get(&before);
  x = 1;
  uint64_t t0 = now_ns();
  uint64_t ops = mixed_run(slots, ws, &x, iterations);
  uint64_t t1 = now_ns();
  if (stats_get) stats_get(&after);
  out("PROBE steady ws=%u ops=%llu ops_per_s=%.0f", ws, (unsigned long long)ops, ops / ((t1 - t0) / 1e9));
  if (stats_get) out(" syscalls=%llu", (unsigned long long)(syscalls(&after) - syscalls(&before)));
  out_end();
  for (uint32_t i = 0; i < ws; i++) free(slots[i]);
  return 0;
}

/* ---- syscalls ---------------------------------------------------------------- */
/* Between a begin marker (a write to fd -1, which strace shows) and hakmem's
 * exit report, only hakmem maps, unmaps or advises: one thread, no stdio, no
 * dlopen. The counters at the marker are printed first, so the test compares
 * the exit report minus them with what strace saw after the marker. */
static int mode_syscalls(size_t mb) {
  burst_t b = {NULL, 0, 1u << 18};
  b.blocks = map(b.capacity * sizeof(void*));
  if (!stats_get) die("syscalls mode needs hakmem preloaded");
  hk_stats_t s;
  stats_get(&s);
  out("PROBE syscalls mmap=%llu munmap=%llu madvise=%llu", (unsigned long long)s.syscalls_mmap,
      (unsigned long long)s.syscalls_munmap, (unsigned long long)s.syscalls_madvise);
  out_end();
  if (write(-1, "probe-begin", 11) != -1) die("marker write succeeded");
  for (int round = 0; round < 3; round++) {
    burst_alloc(&b, mb << 20);
    burst_free(&b);
  }
  return 0;  /* hakmem's HAKMEM_STATS report follows at exit */
}

/* ---- prewarm ----------------------------------------------------------------- */
/* In a fresh thread: its first malloc creates its heap (and prewarms it);
 * then 64 blocks of each of the eight smallest classes, each written, are
 * "the first allocations". Minor faults are counted for the thread alone. */
static long prewarm_rss_before, prewarm_rss_created;
static long prewarm_faults_create, prewarm_faults_first;

static void* prewarm_thread(void* arg) {
  (void)arg;
  static void* blocks[8 * 64];
  /* statm's RSS is summed from per-CPU counters and can lag by hundreds of
   * kB; smaps_rollup walks the page tables, exact at page granularity. */
  prewarm_rss_before = smaps_kb("Rss:");
  long f0 = minflt(RUSAGE_THREAD);
  void* first = keep(malloc(200));  /* a class no prewarm touches: only the heap is made */
  long f1 = minflt(RUSAGE_THREAD);
  prewarm_rss_created = smaps_kb("Rss:");
  for (int i = 0; i < 8 * 64; i++) {
    blocks[i] = keep(malloc(16 * (1 + i / 64)));
    ((char*)blocks[i])[0] = 1;
  }
  long f2 = minflt(RUSAGE_THREAD);
  prewarm_faults_create = f1 - f0;
  prewarm_faults_first = f2 - f1;
  for (int i = 0; i < 8 * 64; i++) free(blocks[i]);
  free(first);
  return NULL;
}

static int mode_prewarm(void) {
  pthread_t t;
  if (pthread_create(&t, NULL, prewarm_thread, NULL) != 0) die("pthread_create failed");
  pthread_join(t, NULL);
  out("PROBE prewarm create_faults=%ld first_faults=%ld create_rss_kb=%ld", prewarm_faults_create,
      prewarm_faults_first, prewarm_rss_created - prewarm_rss_before);
  out_end();
  return 0;
}

int main(int argc, char** argv) {
  find_hakmem();
  const char* mode = argc > 1 ? argv[1] : "";
  if (strcmp(mode, "config") == 0) {
    free(malloc(1));
    return 0;
  }
  if (strcmp(mode, "burst") == 0 && argc == 4) return mode_burst(strtoul(argv[2], NULL, 10), (unsigned)atoi(argv[3]));
  if (strcmp(mode, "steady") == 0 && argc == 4)
    return mode_steady((uint32_t)strtoul(argv[2], NULL, 10), strtoull(argv[3], NULL, 10));
  if (strcmp(mode, "syscalls") == 0 && argc == 3) return mode_syscalls(strtoul(argv[2], NULL, 10));
  if (strcmp(mode, "prewarm") == 0) return mode_prewarm();
  die("usage: probe config | burst MB WAIT_MS | steady WS ITERATIONS | syscalls MB | prewarm");
  return 2;
}
