#define _GNU_SOURCE
#include "bench_common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

uint32_t bench_seed(uint64_t seed) {
  /* Fold 64 bits into 32 so large seeds still differ; 0 would stay 0 forever. */
  uint32_t s = (uint32_t)(seed ^ (seed >> 32));
  return s ? s : 0x9E3779B9u;
}

uint32_t bench_prefault_seed(uint64_t seed) { return bench_seed(seed ^ 0x5BD1E995u); }

static uint64_t clock_ns(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t bench_now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

static uint64_t minor_faults(void) {
  struct rusage ru;
  return getrusage(RUSAGE_SELF, &ru) == 0 ? (uint64_t)ru.ru_minflt : 0;
}

bench_timer_t bench_timer_start(void) {
  return (bench_timer_t){.wall_ns = bench_now_ns(), .cpu_ns = clock_ns(CLOCK_PROCESS_CPUTIME_ID),
                         .minflt = minor_faults()};
}

void bench_timer_stop(bench_timer_t* t) {
  t->wall_ns = bench_now_ns() - t->wall_ns;
  t->cpu_ns = clock_ns(CLOCK_PROCESS_CPUTIME_ID) - t->cpu_ns;
  t->minflt = minor_faults() - t->minflt;
}

void bench_fail(const char* fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  dprintf(2, "%s: %s\n", program_invocation_short_name, msg);
  exit(1);
}

void* bench_map(size_t bytes) {
  if (bytes == 0) bytes = 1;
  void* p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) bench_fail("mmap of %zu bytes failed: %s", bytes, strerror(errno));
  return p;
}

void bench_unmap(void* p, size_t bytes) {
  if (p) munmap(p, bytes ? bytes : 1);
}

uint64_t bench_free_slots(void** slots, size_t n) {
  uint64_t freed = 0;
  for (size_t i = 0; i < n; i++) {
    if (slots[i]) {
      free(slots[i]);
      slots[i] = NULL;
      freed++;
    }
  }
  return freed;
}

/* Reads one "Key:   N kB" field of /proc/self/status without allocating. */
static long status_field_kb(const char* key) {
  char buf[8192];
  int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  size_t klen = strlen(key);
  for (char* line = buf; line;) {
    if (strncmp(line, key, klen) == 0 && line[klen] == ':') return strtol(line + klen + 1, NULL, 10);
    char* nl = strchr(line, '\n');
    line = nl ? nl + 1 : NULL;
  }
  return -1;
}

long bench_rss_kb(void) { return status_field_kb("VmRSS"); }

long bench_peak_rss_kb(void) {
  long kb = status_field_kb("VmHWM");
  if (kb >= 0) return kb;
  struct rusage ru;
  return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1;
}

/* ---- arguments ------------------------------------------------------------ */

void bench_usage_exit(const bench_args_t* a, const char* reason) {
  dprintf(2, "usage: %s %s\n%s%s", a->argv[0], a->usage, reason ? reason : "", reason ? "\n" : "");
  exit(2);
}

static const char* arg_text(const bench_args_t* a, int index) {
  if (a->argc > 1 && (strcmp(a->argv[1], "-h") == 0 || strcmp(a->argv[1], "--help") == 0))
    bench_usage_exit(a, NULL);
  return index < a->argc ? a->argv[index] : NULL;
}

uint64_t bench_arg_u64(const bench_args_t* a, int index, uint64_t def) {
  const char* s = arg_text(a, index);
  if (!s) return def;
  char* end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 0);
  if (errno || end == s || *end || *s == '-') {
    char why[128];
    snprintf(why, sizeof why, "argument %d ('%s') is not a non-negative integer", index, s);
    bench_usage_exit(a, why);
  }
  return v;
}

double bench_arg_f64(const bench_args_t* a, int index, double def) {
  const char* s = arg_text(a, index);
  if (!s) return def;
  char* end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || v < 0) {
    char why[128];
    snprintf(why, sizeof why, "argument %d ('%s') is not a non-negative number", index, s);
    bench_usage_exit(a, why);
  }
  return v;
}

bench_std_args_t bench_std_args(const bench_args_t* a, int first, bench_std_args_t def) {
  bench_std_args_t p = {
      .iterations = bench_arg_u64(a, first, def.iterations),
      .ws = bench_arg_u64(a, first + 1, def.ws),
      .seed = bench_arg_u64(a, first + 2, def.seed),
      .min = bench_arg_u64(a, first + 3, def.min),
      .max = bench_arg_u64(a, first + 4, def.max),
  };
  if (p.ws == 0 || p.ws > (1u << 28)) bench_usage_exit(a, "ws must be in 1 .. 2^28");
  if (p.min == 0 || p.min > p.max) bench_usage_exit(a, "need 0 < min <= max");
  return p;
}

/* ---- result lines --------------------------------------------------------- */

/* One line at a time; programs print from their main thread only. */
static char line_buf[4096];
static size_t line_len;

static void line_append(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
static void line_append(const char* fmt, ...) {
  if (line_len >= sizeof line_buf) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line_buf + line_len, sizeof line_buf - line_len, fmt, ap);
  va_end(ap);
  if (n > 0) line_len += (size_t)n;
  if (line_len > sizeof line_buf - 2) line_len = sizeof line_buf - 2; /* room for '\n' */
}

void bench_line_begin(const char* tag) {
  line_len = 0;
  line_append("%s", tag);
}

void bench_field_u64(const char* key, uint64_t value) { line_append(" %s=%llu", key, (unsigned long long)value); }
void bench_field_i64(const char* key, int64_t value) { line_append(" %s=%lld", key, (long long)value); }
void bench_field_f64(const char* key, double value) { line_append(" %s=%.9g", key, value); }
void bench_field_str(const char* key, const char* value) { line_append(" %s=%s", key, value); }

void bench_line_end(void) {
  line_buf[line_len++] = '\n';
  const char* p = line_buf;
  size_t left = line_len;
  while (left > 0) {
    ssize_t n = write(1, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    p += n;
    left -= (size_t)n;
  }
  line_len = 0;
}

void bench_result_begin(const char* workload, uint64_t ops, const bench_timer_t* timed) {
  double seconds = (double)timed->wall_ns / 1e9, cpu_seconds = (double)timed->cpu_ns / 1e9;
  bench_line_begin("RESULT");
  bench_field_str("workload", workload);
  bench_field_u64("ops", ops);
  bench_field_f64("seconds", seconds);
  bench_field_f64("ops_per_s", seconds > 0 ? (double)ops / seconds : 0.0);
  bench_field_f64("cpu_seconds", cpu_seconds);
  bench_field_f64("ops_per_cpu_s", cpu_seconds > 0 ? (double)ops / cpu_seconds : 0.0);
  bench_field_u64("minflt", timed->minflt);
  bench_field_f64("minflt_per_kop", ops > 0 ? 1000.0 * (double)timed->minflt / (double)ops : 0.0);
}

void bench_field_std(const bench_std_args_t* p) {
  bench_field_u64("ws", p->ws);
  bench_field_u64("seed", p->seed);
  bench_field_u64("min", p->min);
  bench_field_u64("max", p->max);
}

void bench_result_end(void) {
  bench_field_i64("peak_rss_kb", bench_peak_rss_kb());
  bench_line_end();
}
