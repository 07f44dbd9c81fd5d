/* Shared machinery of the stress programs; see stress_common.h. */
#define _GNU_SOURCE
#include "stress/stress_common.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc/include/hakmem.h"

/* Weak, so the programs also link and run against glibc when built by hand:
 * then these are NULL and the hakmem-specific checks are skipped. (In the
 * hk_ API mode they are always defined.) */
#pragma weak hk_version
#pragma weak hk_owns

static const char* g_program = "stress";
static char g_argline[512];

const char* stress_program(void) { return g_program; }
const char* stress_argline(void) { return g_argline; }

/* ---- failure and notes: vsnprintf into a stack buffer, then write(2) ---- */

static void write_all(int fd, const char* s, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;
    }
    s += w;
    n -= (size_t)w;
  }
}

static void vline(const char* prefix, const char* fmt, va_list ap) {
  char buf[2048];
  int n = snprintf(buf, sizeof buf, "%s", prefix);
  if (n < 0) n = 0;
  if ((size_t)n < sizeof buf) {
    int m = vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
    if (m > 0) n += m;
  }
  if ((size_t)n >= sizeof buf - 1) n = (int)sizeof buf - 2;
  buf[n++] = '\n';
  write_all(2, buf, (size_t)n);
}

static char g_context[128];

void stress_set_context(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_context, sizeof g_context, fmt, ap);
  va_end(ap);
}

void stress_fail(const char* fmt, ...) {
  char prefix[800];
  snprintf(prefix, sizeof prefix, "stress FAIL %s (%s%s%s): ", g_program, g_argline,
           g_context[0] ? "; " : "", g_context);
  va_list ap;
  va_start(ap, fmt);
  vline(prefix, fmt, ap);
  va_end(ap);
  abort();
}

void stress_note(const char* fmt, ...) {
  char prefix[64];
  snprintf(prefix, sizeof prefix, "%s: ", g_program);
  va_list ap;
  va_start(ap, fmt);
  vline(prefix, fmt, ap);
  va_end(ap);
}

/* ---- threads ---- */

pthread_t stress_thread_start(void* (*fn)(void*), void* arg, const char* who) {
  pthread_t t;
  int e = pthread_create(&t, NULL, fn, arg);
  if (e) stress_fail("cannot start %s thread: pthread_create: %s", who, strerror(e));
  return t;
}

/* ---- time ---- */

double stress_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void stress_sleep(double s) {
  if (s <= 0) return;
  struct timespec ts;
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* ---- RNG ---- */

uint64_t stress_mix64(uint64_t x) {
  /* splitmix64's finalizer: every input bit affects every output bit, so
   * neighbouring addresses and sequence numbers give unrelated patterns. */
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

void stress_rng_init(stress_rng* r, uint64_t seed, uint64_t stream) {
  uint32_t x = (uint32_t)stress_mix64(seed * 0x9e3779b97f4a7c15ULL + stream + 1);
  r->x = x ? x : 0x2545f491u; /* xorshift's one forbidden state */
}

size_t stress_rand_log(stress_rng* r, size_t lo, size_t hi) {
  if (lo < 1) lo = 1;
  if (hi <= lo) return lo;
  int lo_bits = 63 - __builtin_clzll((unsigned long long)lo);
  int hi_bits = 63 - __builtin_clzll((unsigned long long)hi);
  int bits = lo_bits + (int)(stress_rand(r) % (uint32_t)(hi_bits - lo_bits + 1));
  size_t base = (size_t)1 << bits;
  size_t v = base + stress_rand_range(r, 0, base - 1);
  if (v < lo) v = lo;
  if (v > hi) v = hi;
  return v;
}

/* ---- block pattern ----
 * The pattern is a word stream: word k of a block is h ^ (k * golden), with h
 * derived from (address, size, seq). A byte at offset o is byte (o % 8) of
 * word (o / 8). Deriving h from the address makes two blocks that overlap (a
 * block handed out twice) overwrite each other's pattern; deriving it from
 * seq makes a stale pointer's writes, or a block freed and handed out again
 * while still tracked, mismatch. */

enum { HEAD_BYTES = 256, TAIL_BYTES = 64, PAGE_STRIDE = 4096 };

static inline uint64_t pattern_seed(uintptr_t addr, size_t size, uint64_t seq) {
  return stress_mix64((uint64_t)addr ^ stress_mix64(seq ^ ((uint64_t)size << 44)));
}

static inline uint8_t pattern_byte(uint64_t h, size_t o) {
  uint64_t w = h ^ ((uint64_t)(o >> 3) * 0x9e3779b97f4a7c15ULL);
  return (uint8_t)(w >> ((o & 7) * 8));
}

/* Calls fn on each stamped byte range [a, b) of a block of `size`, in
 * increasing order, without overlap. */
typedef int (*range_fn)(void* ctx, size_t a, size_t b);

static int for_each_range(size_t size, range_fn fn, void* ctx) {
  size_t head = size < HEAD_BYTES ? size : HEAD_BYTES;
  if (head && fn(ctx, 0, head)) return 1;
  size_t tail_start = size > head + TAIL_BYTES ? size - TAIL_BYTES : head;
  /* One word per page-sized stride between head and tail. */
  for (size_t o = PAGE_STRIDE; o + 8 <= tail_start; o += PAGE_STRIDE) {
    if (o >= head && fn(ctx, o, o + 8)) return 1;
  }
  if (tail_start < size && fn(ctx, tail_start, size)) return 1;
  return 0;
}

typedef struct {
  uint8_t* p;
  uint64_t h;
} stamp_ctx;

static int stamp_range(void* c, size_t a, size_t b) {
  stamp_ctx* s = c;
  size_t o = a;
  /* Word-sized stores where the word is entirely inside the range. */
  while (o < b && (o & 7)) {
    s->p[o] = pattern_byte(s->h, o);
    o++;
  }
  for (; o + 8 <= b; o += 8) {
    uint64_t w = s->h ^ ((uint64_t)(o >> 3) * 0x9e3779b97f4a7c15ULL);
    memcpy(s->p + o, &w, 8); /* the block may be only 8-aligned at an odd offset */
  }
  for (; o < b; o++) s->p[o] = pattern_byte(s->h, o);
  return 0;
}

void stress_stamp(void* p, size_t size, uint64_t seq) {
  stamp_ctx s = {p, pattern_seed((uintptr_t)p, size, seq)};
  for_each_range(size, stamp_range, &s);
}

typedef struct {
  const uint8_t* p;
  uint64_t h;
  size_t limit;
  size_t bad;     /* offset of the first mismatch */
  size_t bad_end; /* end of the stamped range holding it */
} check_ctx;

static int check_range(void* c, size_t a, size_t b) {
  check_ctx* s = c;
  if (b > s->limit) b = s->limit;
  size_t o = a;
  while (o < b && (o & 7)) {
    if (s->p[o] != pattern_byte(s->h, o)) goto bad;
    o++;
  }
  for (; o + 8 <= b; o += 8) {
    uint64_t w = s->h ^ ((uint64_t)(o >> 3) * 0x9e3779b97f4a7c15ULL), got;
    memcpy(&got, s->p + o, 8);
    if (got != w) break; /* find the exact byte below */
  }
  for (; o < b; o++) {
    if (s->p[o] != pattern_byte(s->h, o)) goto bad;
  }
  return a >= s->limit; /* ranges are increasing: stop once past the limit */
bad:
  s->bad = o;
  s->bad_end = b;
  return 1;
}

static void check_common(const void* p, uintptr_t orig, size_t size, uint64_t seq, size_t limit,
                         const char* what) {
  check_ctx s = {p, pattern_seed(orig, size, seq), limit, (size_t)-1, 0};
  for_each_range(size, check_range, &s);
  if (s.bad == (size_t)-1) return;
  const uint8_t* q = p;
  size_t o = s.bad;
  /* Show up to 16 bytes from the mismatch: a run of another block's pattern
   * points at a double hand-out, zeros or a free-list pointer at a
   * use-after-free or a block reused while live. */
  char got[64], exp[64];
  int gn = 0, en = 0;
  for (size_t i = o; i < o + 16 && i < s.bad_end; i++) {
    gn += snprintf(got + gn, sizeof got - (size_t)gn, "%02x", q[i]);
    en += snprintf(exp + en, sizeof exp - (size_t)en, "%02x", pattern_byte(s.h, i));
  }
  stress_fail("pattern mismatch %s: block %p (stamped at %p) size %zu seq %#llx, offset %zu: "
              "found %s expected %s (corruption, double hand-out or lost realloc data)",
              what, p, (void*)orig, size, (unsigned long long)seq, o, got, exp);
}

void stress_check(const void* p, size_t size, uint64_t seq, const char* what) {
  check_common(p, (uintptr_t)p, size, seq, size, what);
}

void stress_check_moved(const void* p, uintptr_t orig, size_t size, uint64_t seq, size_t limit,
                        const char* what) {
  check_common(p, orig, size, seq, limit, what);
}

void stress_block_free(stress_block* b, const char* what) {
  if (!b->p) return;
  stress_check(b->p, b->size, b->seq, what);
  sm_free(b->p);
  b->p = NULL;
}

void stress_block_alloc(stress_block* b, size_t size, uint64_t seq) {
  void* p = sm_malloc(size);
  if (!p) stress_fail("malloc(%zu) returned NULL (errno %d)", size, errno);
  if (((uintptr_t)p & 15) != 0 && size >= 16)
    stress_fail("malloc(%zu) returned %p, not 16-byte aligned", size, p);
  stress_stamp(p, size, seq);
  b->p = p;
  b->size = size;
  b->seq = seq;
}

void stress_replace(stress_block* slot, stress_rng* r, size_t min, size_t max, uint64_t* seq) {
  stress_block_free(slot, "before free");
  stress_block_alloc(slot, stress_rand_range(r, min, max), (*seq)++);
}

/* ---- progress and watchdog ---- */

typedef struct {
  _Alignas(64) atomic_uint_fast64_t n;
} progress_line;

static progress_line g_progress[STRESS_MAX_PROGRESS];

void stress_progress(int worker, uint64_t n) {
  atomic_fetch_add_explicit(&g_progress[(unsigned)worker % STRESS_MAX_PROGRESS].n, n,
                            memory_order_relaxed);
}

static uint64_t progress_sum(void) {
  uint64_t s = 0;
  for (int i = 0; i < STRESS_MAX_PROGRESS; i++)
    s += atomic_load_explicit(&g_progress[i].n, memory_order_relaxed);
  return s;
}

static struct {
  pthread_t thread;
  int running;
  atomic_int stop;
  double stall, timeout;
} g_wd;

static void* watchdog_main(void* arg) {
  (void)arg;
  double start = stress_now(), last_change = start;
  uint64_t last = progress_sum();
  while (!atomic_load_explicit(&g_wd.stop, memory_order_acquire)) {
    stress_sleep(0.05);
    double now = stress_now();
    uint64_t cur = progress_sum();
    if (cur != last) {
      last = cur;
      last_change = now;
    }
    if (now - last_change > g_wd.stall || now - start > g_wd.timeout) {
      /* List the per-worker counters: a hung worker is the one whose count
       * stopped moving, which tells where to attach gdb. */
      char buf[600];
      int n = 0;
      for (int i = 0; i < STRESS_MAX_PROGRESS && n < (int)sizeof buf - 32; i++) {
        uint64_t v = atomic_load_explicit(&g_progress[i].n, memory_order_relaxed);
        if (v) n += snprintf(buf + n, sizeof buf - (size_t)n, " w%d=%llu", i, (unsigned long long)v);
      }
      if (n == 0) snprintf(buf, sizeof buf, " (none)");
      if (now - last_change > g_wd.stall)
        stress_fail("watchdog: no progress for %.1f s (hang or deadlock); progress per worker:%s",
                    now - last_change, buf);
      stress_fail("watchdog: run exceeded its time bound of %.1f s; progress per worker:%s",
                  g_wd.timeout, buf);
    }
  }
  return NULL;
}

/* Sanitizers slow everything down; the bounds exist to catch hangs, not to
 * measure speed, so they stretch generously there. */
static double slow_factor(void) {
  if (STRESS_TSAN) return 10.0;
  if (STRESS_ASAN) return 4.0;
  return 1.0;
}

void stress_watchdog_start(const stress_args* a, double planned_seconds) {
  g_wd.stall = a->stall * slow_factor();
  g_wd.timeout = a->timeout > 0 ? a->timeout : planned_seconds * 2 + 30 * slow_factor();
  atomic_store(&g_wd.stop, 0);
  g_wd.thread = stress_thread_start(watchdog_main, NULL, "the watchdog");
  g_wd.running = 1;
}

void stress_watchdog_stop(void) {
  if (!g_wd.running) return;
  atomic_store_explicit(&g_wd.stop, 1, memory_order_release);
  pthread_join(g_wd.thread, NULL);
  g_wd.running = 0;
}

/* ---- allocator identity ---- */

static int g_malloc_is_hakmem = -1; /* set once in stress_parse, before threads */

static void probe_allocator(void) {
  g_malloc_is_hakmem = 0;
  if (!hk_owns) return;
  void* p = sm_malloc(24);
  if (!p) stress_fail("malloc(24) returned NULL at start-up");
  g_malloc_is_hakmem = hk_owns(p) ? 1 : 0;
  sm_free(p);
}

const char* stress_allocator(void) {
  static char buf[96];
  if (g_malloc_is_hakmem == 1)
    snprintf(buf, sizeof buf, "%s (%s)", hk_version ? hk_version() : "hakmem",
             STRESS_HK_API ? "hk_ API" : "libc names");
  else if (hk_version)
    snprintf(buf, sizeof buf, "other (hakmem linked but malloc not routed to it)");
  else
    snprintf(buf, sizeof buf, "other (hakmem not linked)");
  return buf;
}

void stress_check_routing(const void* p, const char* entry) {
  if (!hk_owns || !p) return;
  int mine = hk_owns(p) ? 1 : 0;
  if (mine != g_malloc_is_hakmem)
    stress_fail("%s returned %p, which hakmem %s, but malloc's blocks %s hakmem's: entry points "
                "route to different allocators",
                entry, p, mine ? "owns" : "does not own", g_malloc_is_hakmem ? "are" : "are not");
}

/* ---- argument parsing ---- */

static int parse_size(const char* s, size_t* out) {
  char* end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 0);
  if (errno || end == s) return -1;
  if (*end == 'k' || *end == 'K') v <<= 10, end++;
  else if (*end == 'm' || *end == 'M') v <<= 20, end++;
  else if (*end == 'g' || *end == 'G') v <<= 30, end++;
  if (*end) return -1;
  *out = (size_t)v;
  return 0;
}

static int set_opt(const stress_opt* o, const char* val) {
  char* end;
  errno = 0;
  switch (o->type) {
    case STRESS_OPT_INT: {
      long v = strtol(val, &end, 0);
      if (errno || end == val || *end) return -1;
      *(int*)o->value = (int)v;
      return 0;
    }
    case STRESS_OPT_SIZE:
      return parse_size(val, (size_t*)o->value);
    case STRESS_OPT_U64: {
      unsigned long long v = strtoull(val, &end, 0);
      if (errno || end == val || *end) return -1;
      *(uint64_t*)o->value = v;
      return 0;
    }
    case STRESS_OPT_DOUBLE: {
      double v = strtod(val, &end);
      if (errno || end == val || *end) return -1;
      *(double*)o->value = v;
      return 0;
    }
  }
  return -1;
}

static int fmt_opt(char* buf, size_t n, const stress_opt* o) {
  switch (o->type) {
    case STRESS_OPT_INT: return snprintf(buf, n, "--%s=%d", o->name, *(int*)o->value);
    case STRESS_OPT_SIZE: return snprintf(buf, n, "--%s=%zu", o->name, *(size_t*)o->value);
    case STRESS_OPT_U64:
      return snprintf(buf, n, "--%s=%llu", o->name, (unsigned long long)*(uint64_t*)o->value);
    case STRESS_OPT_DOUBLE: return snprintf(buf, n, "--%s=%g", o->name, *(double*)o->value);
  }
  return 0;
}

static void usage(const char* what, const stress_opt* common, const stress_opt* extra, int code) {
  FILE* f = code ? stderr : stdout;
  fprintf(f, "usage: %s [options]\n%s\n\noptions (current value in brackets):\n", g_program, what);
  for (int pass = 0; pass < 2; pass++) {
    for (const stress_opt* o = pass ? extra : common; o && o->name; o++) {
      char cur[96];
      fmt_opt(cur, sizeof cur, o);
      fprintf(f, "  %-24s %s [%s]\n", o->name, o->help, strchr(cur, '=') + 1);
    }
  }
  fprintf(f, "  %-24s %s\n", "quiet", "summary line only");
  fprintf(f, "  %-24s %s\n", "require-hakmem", "fail unless hakmem serves the blocks (Bazel tests)");
  fprintf(f, "\nenvironment: HK_STRESS_SCALE multiplies --seconds (soak runs)\n");
  exit(code);
}

void stress_parse(int argc, char** argv, const char* program, const char* what, stress_args* a,
                  const stress_opt* extra) {
  g_program = program;
  const stress_opt common[] = {
      {"threads", STRESS_OPT_INT, &a->threads, "worker threads"},
      {"seconds", STRESS_OPT_DOUBLE, &a->seconds, "run time in seconds"},
      {"min", STRESS_OPT_SIZE, &a->min_size, "smallest request, bytes (k/m suffix ok)"},
      {"max", STRESS_OPT_SIZE, &a->max_size, "largest request, bytes"},
      {"seed", STRESS_OPT_U64, &a->seed, "base seed"},
      {"stall", STRESS_OPT_DOUBLE, &a->stall, "watchdog: max seconds without progress"},
      {"timeout", STRESS_OPT_DOUBLE, &a->timeout, "watchdog: max run seconds (0 = derived)"},
      {NULL, 0, NULL, NULL},
  };
  for (int i = 1; i < argc; i++) {
    const char* arg = argv[i];
    if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) usage(what, common, extra, 0);
    if (!strcmp(arg, "--quiet")) {
      a->quiet = 1;
      continue;
    }
    if (!strcmp(arg, "--require-hakmem")) {
      a->require_hakmem = 1;
      continue;
    }
    if (strncmp(arg, "--", 2) != 0) {
      fprintf(stderr, "%s: unexpected argument '%s'\n", program, arg);
      usage(what, common, extra, 2);
    }
    const char* name = arg + 2;
    const char* eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const stress_opt* found = NULL;
    for (int pass = 0; pass < 2 && !found; pass++)
      for (const stress_opt* o = pass ? extra : common; o && o->name; o++)
        if (strlen(o->name) == len && !strncmp(o->name, name, len)) {
          found = o;
          break;
        }
    if (!found) {
      fprintf(stderr, "%s: unknown option '%s'\n", program, arg);
      usage(what, common, extra, 2);
    }
    const char* val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
    if (!val || set_opt(found, val)) {
      fprintf(stderr, "%s: bad value for --%s\n", program, found->name);
      usage(what, common, extra, 2);
    }
  }
  const char* scale = getenv("HK_STRESS_SCALE");
  if (scale && *scale) {
    char* end;
    double s = strtod(scale, &end);
    if (*end || s <= 0) {
      fprintf(stderr, "%s: HK_STRESS_SCALE must be a positive number, got '%s'\n", program, scale);
      exit(2);
    }
    a->seconds *= s;
  }
  if (a->threads < 1 || a->min_size < 1 || a->max_size < a->min_size || a->seconds < 0 ||
      a->stall <= 0) {
    fprintf(stderr, "%s: need threads >= 1, 1 <= min <= max, seconds >= 0, stall > 0\n", program);
    exit(2);
  }
  /* The canonical argument line: every option with its final value, so a
   * failure message is a complete command to reproduce the run. */
  size_t n = 0;
  for (int pass = 0; pass < 2; pass++)
    for (const stress_opt* o = pass ? extra : common; o && o->name; o++) {
      if (n >= sizeof g_argline - 1) break;
      if (n) g_argline[n++] = ' ';
      int m = fmt_opt(g_argline + n, sizeof g_argline - n, o);
      if (m > 0) n += (size_t)m;
      if (n >= sizeof g_argline) n = sizeof g_argline - 1;
    }
  g_argline[n] = 0;
  probe_allocator();
  /* A test that silently ran on another allocator (override not linked, or
   * not winning symbol resolution) would pass without testing anything. */
  if (a->require_hakmem && g_malloc_is_hakmem != 1)
    stress_fail("the blocks are not hakmem's: allocator is %s", stress_allocator());
}
