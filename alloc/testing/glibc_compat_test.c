/* glibc's contracts and entry points.
 *
 * Part 1, glibc's contracts: one row per case of README's table
 * "glibc's contracts" (function, case, glibc, hakmem). Each row calls the
 * function and describes what it saw in the table's words; the description
 * must equal the row's column for the allocator under test. The same source
 * runs three ways (alloc/testing/BUILD.bazel):
 *   - glibc_contracts_glibc_test: built without hakmem (HK_CONTRACTS_ONLY),
 *     checks the glibc column against this machine's glibc;
 *   - glibc_contracts_preload_test: that binary with libhakmem.so preloaded,
 *     checks the hakmem column;
 *   - glibc_compat_test: linked with //alloc:hakmem, checks the hakmem
 *     column, then part 2.
 * Given README.md's path, each also requires every row to be in README
 * verbatim, so the table cannot say what the code does not do.
 *
 * Part 2, glibc's statistics and trim entry points, with hakmem linked as
 * the program's malloc (//alloc:hakmem), glibc_compat_test only:
 *   - malloc_trim gives memory back: after a 200 MB burst is freed, RSS read
 *     from /proc falls to near the live set, also when a live thread
 *     allocated the burst and another thread freed it;
 *   - mallinfo2 / mallinfo: uordblks is the bytes in use, hblks/hblkhd the
 *     large mappings, arena = uordblks + fordblks;
 *   - malloc_stats prints glibc's summary lines and hakmem's report;
 *   - malloc_info writes well-formed XML shaped like glibc's.
 * Replaces malloc in-process, so not under ASan/TSan. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef HK_CONTRACTS_ONLY
#include "alloc/include/hakmem.h"
#endif

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


/* ==== part 1: glibc's contracts ============================================ */

/* glibc's exported internal names (no header declares them). */
void* __libc_malloc(size_t);
void __libc_free(void*);
/* cfree as an old binary binds it: glibc 2.36 keeps it only as the compat
 * symbol cfree@GLIBC_2.2.5, which new code cannot link against by name.
 * Linked with hakmem, the program's own cfree is hakmem's (override.c), as
 * for any program built with hakmem. */
#ifdef HK_CONTRACTS_ONLY
void hk_old_cfree(void*);
__asm__(".symver hk_old_cfree, cfree@GLIBC_2.2.5");
#else
void cfree(void*);
#define hk_old_cfree cfree
#endif

/* Any value no call below sets: errno still holding it is "unchanged". */
#define CANARY EDOM

static char seen[256];

static const char* errno_name(int e) {
  return e == ENOMEM ? "ENOMEM" : e == EINVAL ? "EINVAL" : e == CANARY ? "unchanged" : "other";
}

/* What a call returning a pointer did: "NULL, errno X" or "block aligned to
 * A" (plus what else the row asks about, appended by the row). */
static const char* said(void* p, int err, size_t align) {
  if (p == NULL) snprintf(seen, sizeof(seen), "NULL, errno %s", errno_name(err));
  else if ((uintptr_t)p % align != 0) snprintf(seen, sizeof(seen), "block NOT aligned to %zu", align);
  else snprintf(seen, sizeof(seen), "block aligned to %zu", align);
  return seen;
}

#define CALL(expr) (errno = CANARY, (expr))
#define ALIGNED(expr, align)      \
  do {                            \
    void* p_ = CALL(expr);        \
    int e_ = errno;               \
    said(p_, e_, align);          \
    free(p_);                     \
    return seen;                  \
  } while (0)

static const char* aligned_alloc_any_size(void) { ALIGNED(aligned_alloc(64, 100), 64); }
static const char* aligned_alloc_zero(void) { ALIGNED(aligned_alloc(64, 0), 64); }
static const char* aligned_alloc_non_pow2(void) { ALIGNED(aligned_alloc(24, 10), 32); }
static const char* aligned_alloc_align0(void) { ALIGNED(aligned_alloc(0, 10), 16); }
static const char* aligned_alloc_too_big_align(void) { ALIGNED(aligned_alloc(SIZE_MAX / 2 + 2, 10), 1); }
static const char* aligned_alloc_4mib(void) { ALIGNED(aligned_alloc((size_t)8 << 20, 100), (size_t)8 << 20); }
static const char* aligned_alloc_huge(void) { ALIGNED(aligned_alloc(64, SIZE_MAX), 64); }
static const char* memalign_non_pow2(void) { ALIGNED(memalign(24, 10), 32); }
static const char* memalign_3(void) { ALIGNED(memalign(3, 10), 4); }
static const char* memalign_too_big_align(void) { ALIGNED(memalign(SIZE_MAX / 2 + 2, 10), 1); }
static const char* valloc_zero(void) { ALIGNED(valloc(0), 4096); }
static const char* valloc_huge(void) { ALIGNED(valloc(SIZE_MAX - 4000), 4096); }
static const char* pvalloc_zero(void) { ALIGNED(pvalloc(0), 4096); }
static const char* pvalloc_huge(void) { ALIGNED(pvalloc(SIZE_MAX - 4000), 4096); }
static const char* malloc_huge(void) { ALIGNED(malloc((size_t)PTRDIFF_MAX + 1), 16); }
static const char* calloc_overflow(void) { ALIGNED(calloc(SIZE_MAX / 2, 3), 16); }
static const char* calloc_zero_count(void) { ALIGNED(calloc(0, SIZE_MAX), 16); }
static const char* realloc_null(void) { ALIGNED(realloc(NULL, 100), 16); }

static const char* pvalloc_one(void) {
  void* p = CALL(pvalloc(1));
  said(p, errno, 4096);
  if (p != NULL && malloc_usable_size(p) >= 4096) strcat(seen, " of at least 4096 usable bytes");
  free(p);
  return seen;
}

/* Called through a volatile pointer: GCC assumes the builtin posix_memalign
 * leaves errno alone and would print the canary without reading errno. */
static int (*volatile posix_memalign_fn)(void**, size_t, size_t) = posix_memalign;

static const char* posix_memalign_case(size_t align, size_t size) {
  void* out = (void*)&seen;
  int rc = CALL(posix_memalign_fn(&out, align, size));
  int e = errno;
  if (rc == 0) {
    free(out);
    return "returns 0";
  }
  snprintf(seen, sizeof(seen), "returns %s, *out untouched, errno %s", errno_name(rc), errno_name(e));
  if (out != (void*)&seen) strcpy(seen, "*out changed on failure");
  return seen;
}
static const char* posix_memalign_24(void) { return posix_memalign_case(24, 10); }
static const char* posix_memalign_4(void) { return posix_memalign_case(4, 10); }
static const char* posix_memalign_0(void) { return posix_memalign_case(0, 10); }
static const char* posix_memalign_huge(void) { return posix_memalign_case(64, SIZE_MAX); }

static const char* malloc_zero(void) {
  void* p = CALL(malloc(0));
  void* q = malloc(0);
  if (p == NULL || q == NULL || p == q) {
    free(p);
    free(q);
    return "not a unique block";
  }
  snprintf(seen, sizeof(seen), "unique block, malloc_usable_size %zu", malloc_usable_size(p));
  free(p);
  free(q);
  return seen;
}

/* Bytes in use, as mallinfo2 reports them: 100 KB blocks stay below glibc's
 * mmap threshold, so both allocators count them in uordblks. */
static size_t in_use(void) { return mallinfo2().uordblks; }
enum { kProbe = 100000 };

static const char* realloc_to_zero(void) {
  char* p = malloc(kProbe);
  memset(p, 1, kProbe);
  size_t before = in_use();
  void* q = CALL(realloc(p, 0));
  int e = errno;
  bool freed = in_use() + kProbe <= before;
  snprintf(seen, sizeof(seen), "%s, returns %s, errno %s", freed ? "frees p" : "keeps p", q ? "a block" : "NULL",
           errno_name(e));
  free(q);
  return seen;
}

/* A failed resize: NULL, and p's bytes untouched. */
static const char* resize_fails(bool array) {
  char* p = malloc(100);
  memset(p, 7, 100);
  void* q = array ? CALL(reallocarray(p, SIZE_MAX / 2, 3)) : CALL(realloc(p, SIZE_MAX));
  said(q, errno, 16);
  bool intact = true;
  for (int i = 0; i < 100; i++) intact &= p[i] == 7;
  if (q == NULL) strcat(seen, intact ? ", p intact" : ", p CHANGED");
  free(q == NULL ? p : q);
  return seen;
}
static const char* realloc_huge(void) { return resize_fails(false); }
static const char* reallocarray_overflow(void) { return resize_fails(true); }

static const char* usable_size_null(void) {
  size_t n = CALL(malloc_usable_size(NULL));
  snprintf(seen, sizeof(seen), "%zu, errno %s", n, errno_name(errno));
  return seen;
}

static const char* frees_through(void (*release)(void*)) {
  char* p = malloc(kProbe);
  memset(p, 1, kProbe);
  size_t before = in_use();
  release(p);
  return in_use() + kProbe <= before ? "frees p" : "keeps p";
}
static const char* cfree_frees(void) { return frees_through(hk_old_cfree); }

static void free_libc_block(void* p) { free(p); }
static const char* libc_malloc_then_free(void) {
  /* A block from __libc_malloc given to free, and one from malloc given to
   * __libc_free: the same allocator either way. */
  void* p = __libc_malloc(kProbe);
  if (p == NULL) return "NULL";
  memset(p, 2, kProbe);
  size_t before = in_use();
  free_libc_block(p);
  bool ok = in_use() + kProbe <= before;
  p = malloc(kProbe);
  memset(p, 3, kProbe);
  before = in_use();
  __libc_free(p);
  ok &= in_use() + kProbe <= before;
  return ok ? "one allocator: each frees the other's blocks" : "blocks not freed";
}

typedef struct {
  const char* func;   /* README column 1 (without the backquotes) */
  const char* what;   /* column 2 */
  const char* glibc;  /* column 3: this machine's glibc (2.36) */
  const char* hakmem; /* column 4 */
  const char* (*observe)(void);
} contract;

#define SAME(x) x, x
static const contract contracts[] = {
    {"aligned_alloc", "`(64, 100)`: size not a multiple of the alignment (C17 DR 460)", SAME("block aligned to 64"), aligned_alloc_any_size},
    {"aligned_alloc", "`(64, 0)`", SAME("block aligned to 64"), aligned_alloc_zero},
    {"aligned_alloc", "`(24, 10)`: alignment not a power of two (rounded up, as memalign; glibc 2.38+: EINVAL)", SAME("block aligned to 32"), aligned_alloc_non_pow2},
    {"aligned_alloc", "`(0, 10)`", SAME("block aligned to 16"), aligned_alloc_align0},
    {"aligned_alloc", "`(SIZE_MAX / 2 + 2, 10)`: no power of two to round up to", SAME("NULL, errno EINVAL"), aligned_alloc_too_big_align},
    {"aligned_alloc", "`(8 MiB, 100)`: alignment of 4 MiB or more", "block aligned to 8388608", "NULL, errno ENOMEM", aligned_alloc_4mib},
    {"aligned_alloc", "`(64, SIZE_MAX)`", SAME("NULL, errno ENOMEM"), aligned_alloc_huge},
    {"memalign", "`(24, 10)`: alignment not a power of two", SAME("block aligned to 32"), memalign_non_pow2},
    {"memalign", "`(3, 10)`", SAME("block aligned to 4"), memalign_3},
    {"memalign", "`(SIZE_MAX / 2 + 2, 10)`", SAME("NULL, errno EINVAL"), memalign_too_big_align},
    {"posix_memalign", "`(&out, 24, 10)`: not a power of two", SAME("returns EINVAL, *out untouched, errno unchanged"), posix_memalign_24},
    {"posix_memalign", "`(&out, 4, 10)`: below `sizeof(void*)`", SAME("returns EINVAL, *out untouched, errno unchanged"), posix_memalign_4},
    {"posix_memalign", "`(&out, 0, 10)`", SAME("returns EINVAL, *out untouched, errno unchanged"), posix_memalign_0},
    {"posix_memalign", "`(&out, 64, SIZE_MAX)`", "returns ENOMEM, *out untouched, errno ENOMEM", "returns ENOMEM, *out untouched, errno unchanged", posix_memalign_huge},
    {"valloc", "`(0)`", SAME("block aligned to 4096"), valloc_zero},
    {"valloc", "`(SIZE_MAX - 4000)`", SAME("NULL, errno ENOMEM"), valloc_huge},
    {"pvalloc", "`(0)`", SAME("block aligned to 4096"), pvalloc_zero},
    {"pvalloc", "`(1)`", SAME("block aligned to 4096 of at least 4096 usable bytes"), pvalloc_one},
    {"pvalloc", "`(SIZE_MAX - 4000)`: rounding up to a page overflows", SAME("NULL, errno ENOMEM"), pvalloc_huge},
    {"malloc", "`(0)`", "unique block, malloc_usable_size 24", "unique block, malloc_usable_size 16", malloc_zero},
    {"malloc", "`(PTRDIFF_MAX + 1)`", SAME("NULL, errno ENOMEM"), malloc_huge},
    {"calloc", "`(SIZE_MAX / 2, 3)`: count * size overflows", SAME("NULL, errno ENOMEM"), calloc_overflow},
    {"calloc", "`(0, SIZE_MAX)`", SAME("block aligned to 16"), calloc_zero_count},
    {"realloc", "`(p, 0)`", SAME("frees p, returns NULL, errno unchanged"), realloc_to_zero},
    {"realloc", "`(NULL, 100)`", SAME("block aligned to 16"), realloc_null},
    {"realloc", "`(p, SIZE_MAX)`", SAME("NULL, errno ENOMEM, p intact"), realloc_huge},
    {"reallocarray", "`(p, SIZE_MAX / 2, 3)`: count * size overflows", SAME("NULL, errno ENOMEM, p intact"), reallocarray_overflow},
    {"malloc_usable_size", "`(NULL)`", SAME("0, errno unchanged"), usable_size_null},
    {"cfree", "`(p)` from a binary linked against glibc before 2.26 (compat symbol)", SAME("frees p"), cfree_frees},
    {"__libc_malloc", "and `__libc_free` mixed with `malloc`/`free` (also `__libc_calloc`, `__libc_realloc`, `__libc_memalign`, `__libc_valloc`, `__libc_pvalloc`)", SAME("one allocator: each frees the other's blocks"), libc_malloc_then_free},
};

/* The README row of contract c. */
static void row(const contract* c, char* out, size_t cap) {
  snprintf(out, cap, "| `%s` | %s | %s | %s |", c->func, c->what, c->glibc, c->hakmem);
}

static char* read_file(const char* path) {
  FILE* f = fopen(path, "r");
  if (f == NULL) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  rewind(f);
  char* buf = malloc((size_t)n + 1);
  size_t got = fread(buf, 1, (size_t)n, f);
  buf[got] = 0;
  fclose(f);
  return buf;
}

static void check_contracts(bool hakmem, const char* readme_path) {
  char* readme = readme_path ? read_file(readme_path) : NULL;
  if (readme_path) CHECK(readme != NULL, "cannot read %s", readme_path);
  size_t n = sizeof(contracts) / sizeof(contracts[0]), missing = 0;
  for (size_t i = 0; i < n; i++) {
    const contract* c = &contracts[i];
    const char* want = hakmem ? c->hakmem : c->glibc;
    const char* got = c->observe();
    CHECK(strcmp(got, want) == 0, "%s %s under %s: saw \"%s\", the table says \"%s\"", c->func, c->what,
          hakmem ? "hakmem" : "glibc", got, want);
    if (readme) {
      char r[1024];
      row(c, r, sizeof(r));
      if (strstr(readme, r) == NULL) missing++;
      CHECK(strstr(readme, r) != NULL, "README.md lacks the row\n%s", r);
    }
  }
  free(readme);
  printf("glibc's contracts: %zu cases checked against the %s column%s\n", n, hakmem ? "hakmem" : "glibc",
         !readme ? "" : missing ? ", rows missing from README.md" : ", every row found in README.md");
}

/* --print-table: the rows, to paste into README. */
static void print_table(void) {
  printf("| function | case | glibc 2.36 | hakmem |\n|---|---|---|---|\n");
  for (size_t i = 0; i < sizeof(contracts) / sizeof(contracts[0]); i++) {
    char r[1024];
    row(&contracts[i], r, sizeof(r));
    printf("%s\n", r);
  }
}

/* ==== part 2: statistics and trim (hakmem linked in) ========================= */
#ifndef HK_CONTRACTS_ONLY

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

#endif /* HK_CONTRACTS_ONLY */

/* glibc_compat_test [--expect=glibc|hakmem] [--print-table] [README.md] */
int main(int argc, char** argv) {
  const char* readme = NULL;
  const char* expect = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--print-table") == 0) {
      print_table();
      return 0;
    }
    if (strncmp(argv[i], "--expect=", 9) == 0) expect = argv[i] + 9;
    else readme = argv[i];
  }
#ifdef HK_CONTRACTS_ONLY
  /* Which allocator this process has: hakmem's API is there only when
   * libhakmem.so was preloaded. The caller says which it meant to test. */
  bool hakmem = dlsym(RTLD_DEFAULT, "hk_version") != NULL;
  if (expect == NULL || strcmp(expect, hakmem ? "hakmem" : "glibc") != 0) {
    fprintf(stderr, "FAIL: expected %s, but the allocator is %s\n", expect ? expect : "(no --expect)",
            hakmem ? "hakmem" : "glibc");
    return 1;
  }
#else
  bool hakmem = true;
  CHECK(expect == NULL || strcmp(expect, "hakmem") == 0, "linked with hakmem, yet asked for --expect=%s", expect);
#endif
  check_contracts(hakmem, readme);
#ifndef HK_CONTRACTS_ONLY
  mallinfo_counts_bytes_in_use();
  malloc_stats_prints_glibc_lines_and_the_report();
  malloc_info_writes_glibc_shaped_xml();
  trim_after_a_freed_burst();
  trim_reaches_a_live_thread();
#endif
  if (failures == 0) printf("glibc compat: all checks passed\n");
  return failures != 0;
}
