/* glibc's statistics and trim entry points, with hakmem linked as the
 * program's malloc (//alloc:hakmem):
 *   - malloc_trim gives memory back: after a 200 MB burst is freed, RSS read
 *     from /proc falls to near the live set, also when a live thread
 *     allocated the burst and another thread freed it;
 *   - mallinfo2 / mallinfo: uordblks is the bytes in use, hblks/hblkhd the
 *     large mappings, arena = uordblks + fordblks;
 *   - malloc_stats prints glibc's summary lines and hakmem's report;
 *   - malloc_info writes well-formed XML shaped like glibc's.
 * Replaces malloc in-process, so not under ASan/TSan. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc/include/hakmem.h"

static int failures;
#define CHECK(cond, ...)                                           \
  do {                                                             \
    if (!(cond)) {                                                 \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);         \
      fprintf(stderr, __VA_ARGS__);                                \
      fprintf(stderr, "\n");                                       \
      failures++;                                                  \
    }                                                              \
  } while (0)

#define MB (1024.0 * 1024.0)

/* VmRSS from /proc/self/statm, in bytes. */
static size_t rss(void) {
  FILE* f = fopen("/proc/self/statm", "r");
  unsigned long size = 0, resident = 0;
  if (f == NULL || fscanf(f, "%lu %lu", &size, &resident) != 2) {
    fprintf(stderr, "cannot read /proc/self/statm\n");
    exit(2);
  }
  fclose(f);
  return resident * (size_t)sysconf(_SC_PAGESIZE);
}

static uint32_t rng = 2463534242u;
static uint32_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 17;
  rng ^= rng << 5;
  return rng;
}

/* Mixed sizes: mostly small blocks, one in 64 large (64 KiB..2 MiB). Every
 * block is written so it is really resident. */
static size_t burst(void** blocks, size_t max_blocks, size_t bytes) {
  size_t n = 0, total = 0;
  while (total < bytes && n < max_blocks) {
    uint32_t r = next();
    size_t size = (r & 63) == 0 ? (size_t)65536 << (r >> 8) % 6 : 16 + (r >> 8) % 16000;
    void* p = malloc(size);
    if (p == NULL) break;
    memset(p, (int)r, size);
    blocks[n++] = p;
    total += size;
  }
  return n;
}

static void trim_after_a_freed_burst(void) {
  enum { kMaxBlocks = 200000 };
  void** live = calloc(kMaxBlocks, sizeof(void*));
  void** tmp = calloc(kMaxBlocks, sizeof(void*));
  malloc_trim(0);
  size_t base = rss();
  size_t live_n = burst(live, kMaxBlocks, (size_t)24 << 20);
  size_t with_live = rss();
  size_t tmp_n = burst(tmp, kMaxBlocks, (size_t)200 << 20);
  size_t peak = rss();
  for (size_t i = 0; i < tmp_n; i++) free(tmp[i]);
  size_t freed = rss();
  int released = malloc_trim(0);
  size_t trimmed = rss();
  printf("malloc_trim: base %.1f MB, with 24 MB live %.1f MB, burst peak %.1f MB, freed %.1f MB, trimmed %.1f MB\n",
         base / MB, with_live / MB, peak / MB, freed / MB, trimmed / MB);
  CHECK(peak > with_live + ((size_t)180 << 20), "the burst did not make 180 MB resident (%.1f MB)",
        (peak - with_live) / MB);
  CHECK(released == 1, "malloc_trim returned %d after a 200 MB burst was freed", released);
  CHECK(trimmed < with_live + ((size_t)8 << 20),
        "RSS after malloc_trim is %.1f MB above the live set's (%.1f MB): free memory kept",
        (trimmed - with_live) / MB, with_live / MB);
  /* The live blocks survived untouched. */
  for (size_t i = 0; i < live_n; i++) CHECK(hk_owns(live[i]), "live block %zu lost", i);
  for (size_t i = 0; i < live_n; i++) free(live[i]);
  free(live);
  free(tmp);
}

/* A thread that stays alive allocates the burst; main frees it (remote
 * frees into the worker's spans). malloc_trim on main cannot touch the
 * worker's heap; the worker trims itself at its next allocation slow path. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int stage;
static void* worker_blocks[40000];
/* Stores through a volatile pointer: GCC may delete a malloc whose block is
 * never used, and these tests need the calls to happen. */
static void* volatile sink;

static void wait_stage(int s) {
  pthread_mutex_lock(&mu);
  while (stage < s) pthread_cond_wait(&cv, &mu);
  pthread_mutex_unlock(&mu);
}
static void set_stage(int s) {
  pthread_mutex_lock(&mu);
  stage = s;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
}

static void* worker(void* arg) {
  (void)arg;
  for (size_t i = 0; i < 40000; i++) memset(worker_blocks[i] = malloc(4096), 7, 4096);  /* 160 MB */
  set_stage(1);
  wait_stage(2);
  /* Its span of the class is empty: the slow path sees the trim request. */
  sink = malloc(4096);
  free(sink);
  set_stage(3);
  wait_stage(4);
  return NULL;
}

static void trim_reaches_a_live_thread(void) {
  malloc_trim(0);
  size_t base = rss();
  pthread_t t;
  pthread_create(&t, NULL, worker, NULL);
  wait_stage(1);
  size_t peak = rss();
  for (size_t i = 0; i < 40000; i++) free(worker_blocks[i]);
  malloc_trim(0);
  size_t after_main = rss();
  set_stage(2);
  wait_stage(3);
  size_t after_worker = rss();
  printf("malloc_trim, live worker: base %.1f MB, peak %.1f MB, after trim on main %.1f MB, "
         "after the worker's next allocation %.1f MB\n",
         base / MB, peak / MB, after_main / MB, after_worker / MB);
  CHECK(after_worker < base + ((size_t)8 << 20), "the worker's empty spans were not returned (%.1f MB above base)",
        (after_worker - base) / MB);
  set_stage(4);
  pthread_join(t, NULL);
}

static void mallinfo_counts_bytes_in_use(void) {
  struct mallinfo2 m0 = mallinfo2();
  void* small[1000];
  for (int i = 0; i < 1000; i++) small[i] = malloc(100);
  size_t block = malloc_usable_size(small[0]);
  struct mallinfo2 m1 = mallinfo2();
  CHECK(m1.uordblks - m0.uordblks == 1000 * block, "uordblks grew by %zu, expected %zu", m1.uordblks - m0.uordblks,
        1000 * block);
  void* big = sink = malloc(5 << 20);
  struct mallinfo2 m2 = mallinfo2();
  CHECK(m2.hblks == m1.hblks + 1, "hblks %zu -> %zu: a large block is one mapping", m1.hblks, m2.hblks);
  CHECK(m2.hblkhd - m1.hblkhd >= (5u << 20), "hblkhd grew by only %zu", m2.hblkhd - m1.hblkhd);
  CHECK(m2.uordblks - m1.uordblks == m2.hblkhd - m1.hblkhd, "uordblks counts large blocks too");
  CHECK(m2.arena == m2.uordblks + m2.fordblks, "arena %zu != uordblks %zu + fordblks %zu", m2.arena, m2.uordblks,
        m2.fordblks);
  CHECK(m2.arena >= m2.uordblks, "arena below bytes in use");
  struct mallinfo m = mallinfo();
  CHECK((size_t)m.uordblks == m2.uordblks && (size_t)m.hblks == m2.hblks,
        "mallinfo disagrees with mallinfo2 (%d vs %zu)", m.uordblks, m2.uordblks);
  free(big);
  for (int i = 0; i < 1000; i++) free(small[i]);
  CHECK(mallinfo2().uordblks == m0.uordblks, "uordblks did not come back after freeing everything");
}

/* Runs fn with fd 2 redirected into a temporary file; returns its contents. */
static char* capture_stderr(void (*fn)(void)) {
  static char buf[1 << 16];
  FILE* tmp = tmpfile();
  int saved = dup(2);
  fflush(stderr);
  dup2(fileno(tmp), 2);
  fn();
  dup2(saved, 2);
  close(saved);
  rewind(tmp);
  size_t n = fread(buf, 1, sizeof(buf) - 1, tmp);
  buf[n] = 0;
  fclose(tmp);
  return buf;
}

static void malloc_stats_prints_glibc_lines_and_the_report(void) {
  char* out = capture_stderr(malloc_stats);
  CHECK(strstr(out, "system bytes     = ") != NULL, "no 'system bytes' line:\n%s", out);
  CHECK(strstr(out, "in use bytes     = ") != NULL, "no 'in use bytes' line:\n%s", out);
  CHECK(strstr(out, "hakmem: statistics (hakmem ") != NULL, "no hakmem report:\n%s", out);
}

/* Well-formed enough for any XML parser: every element opened is closed in
 * order, attributes are quoted. Returns NULL or what is wrong. */
static const char* xml_problem(const char* x) {
  char stack[16][32];
  int depth = 0;
  while ((x = strchr(x, '<')) != NULL) {
    const char* end = strchr(x, '>');
    if (end == NULL) return "unterminated tag";
    int closing = x[1] == '/';
    int empty = end[-1] == '/';
    const char* name = x + 1 + closing;
    size_t len = strcspn(name, " />");
    if (len == 0 || len >= 32) return "bad element name";
    for (const char* q = name + len; q < end; q++)
      if (*q == '=' && q[1] != '"') return "unquoted attribute";
    if (closing) {
      if (depth == 0 || strncmp(stack[depth - 1], name, len) || stack[depth - 1][len]) return "mismatched close tag";
      depth--;
    } else if (!empty) {
      if (depth == 16) return "too deep";
      memcpy(stack[depth], name, len);
      stack[depth++][len] = 0;
    }
    x = end + 1;
  }
  return depth == 0 ? NULL : "unclosed element";
}

static void malloc_info_writes_glibc_shaped_xml(void) {
  void* big = malloc(3 << 20);
  void* small = malloc(40);
  sink = malloc(40);
  free(sink);  /* a free block in the class */
  char* xml = NULL;
  size_t len = 0;
  FILE* f = open_memstream(&xml, &len);
  CHECK(malloc_info(0, f) == 0, "malloc_info(0) failed");
  fclose(f);
  const char* problem = xml_problem(xml);
  CHECK(problem == NULL, "malloc_info XML: %s:\n%s", problem, xml);
  CHECK(strncmp(xml, "<malloc version=\"1\"", 19) == 0, "root element:\n%s", xml);
  static const char* const musts[] = {"<heap nr=\"0\">", "<sizes>", "<size from=", "<total type=\"rest\"",
                                      "<total type=\"mmap\" count=\"", "<system type=\"current\"",
                                      "<aspace type=\"total\""};
  for (size_t i = 0; i < sizeof(musts) / sizeof(musts[0]); i++)
    CHECK(strstr(xml, musts[i]) != NULL, "malloc_info lacks %s:\n%s", musts[i], xml);
  free(xml);
  errno = 0;
  CHECK(malloc_info(1, stdout) == -1 && errno == EINVAL, "malloc_info with options != 0 must fail with EINVAL");
  free(big);
  free(small);
}

int main(void) {
  mallinfo_counts_bytes_in_use();
  malloc_stats_prints_glibc_lines_and_the_report();
  malloc_info_writes_glibc_shaped_xml();
  trim_after_a_freed_burst();
  trim_reaches_a_live_thread();
  if (failures == 0) printf("glibc entry points: all checks passed\n");
  return failures != 0;
}
