/* Statistics: hk_stats_get, the readable and JSON reports, and the report
 * HAKMEM_STATS prints at exit.
 *
 * Sources, none of them on malloc's or free's fast path:
 *   - hk_stat (counters.h): counters slow paths keep with relaxed atomics;
 *   - hk_os (backend.h): the backend's syscall counters;
 *   - per-heap counters (refills, remote frees) each thread bumps on its own,
 *     summed by thread.c;
 *   - a walk over the span descriptors of every mapped segment, for bytes in
 *     use and the per-class figures. Segments are found through the registry
 *     below, not through heap lists (those are owner-only and change under
 *     a reader's feet).
 * Nothing here allocates: reports are formatted into a stack buffer and
 * written with write(2), so they work at exit, after stdio is gone, and from
 * inside a program whose allocator is hakmem. */
#include "alloc/core/stats.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc/backends/backend.h"
#include "alloc/core/counters.h"
#include "alloc/core/foreign.h"
#include "alloc/core/init.h"
#include "alloc/core/lock.h"
#include "alloc/core/options.h"
#include "alloc/core/os.h"
#include "alloc/core/print.h"
#include "alloc/core/prof.h"
#include "alloc/core/reclaim.h"
#include "alloc/core/segment.h"
#include "alloc/core/size_class.h"
#include "alloc/core/thread.h"

_Static_assert(HK_STATS_CLASSES == HK_CLASSES, "hk_stats_t has one entry per size class");

/* Reads the span descriptors of every segment. Descriptors are written by
 * their owner thread with plain stores; each field is read here once with a
 * relaxed load (no tearing, no re-read), and whatever mix of old and new
 * values a racing owner leaves is clamped to something sane (a class index in
 * range, used <= capacity). TSan is told not to watch: the race is the design,
 * documented in hakmem.h as the consistency promise. */
#define HK_LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

__attribute__((no_sanitize("thread"))) static void walk_segment(hk_segment* seg, void* arg) {
  hk_stats_t* out = arg;
  {
    for (unsigned i = 1; i < HK_SLOTS;) {
      hk_span* s = &seg->spans[i];
      unsigned slots = HK_LOAD(s->slot_count);
      if (slots == 0 || i + slots > HK_SLOTS) slots = 1;
      uint32_t size = HK_LOAD(s->block_size);
      unsigned cls = HK_LOAD(s->class_idx);
      /* A head slot of a span in use; tail slots and free slots are skipped. */
      if (!HK_LOAD(s->in_use) || HK_LOAD(s->slot_offset) != 0 || size == 0 || cls >= HK_CLASSES) {
        i++;
        continue;
      }
      uint64_t capacity = HK_LOAD(s->capacity);
      uint64_t counted = HK_LOAD(s->used) & ~HK_USED_FULL, pinned = HK_LOAD(s->pinned);
      uint64_t used = counted > pinned ? counted - pinned : 0;  /* the current span's own count is no block */
      uint64_t carved = HK_LOAD(s->carved_bytes) / size;
      if (used > capacity) used = capacity;
      hk_class_stats_t* c = &out->classes[cls];
      c->spans++;
      c->blocks_in_use += used;
      c->blocks_free += carved > used ? carved - used : 0;
      i += slots;
    }
  }
}

static void walk_spans(hk_stats_t* out) {
  for (unsigned c = 0; c < HK_CLASSES; c++) out->classes[c].block_size = hk_class_size[c];
  hk_segments_walk(walk_segment, out);
}

/* ---- hk_stats_get ------------------------------------------------------------ */
/* The whole process's RSS from /proc/self/statm ("size resident ..." in
 * pages), read into a stack buffer. 0 when /proc is unavailable. */
static uint64_t process_resident(void) {
  int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[128];
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  const char* p = buf;
  while (*p && *p != ' ') p++;  /* skip "size" */
  while (*p == ' ') p++;
  uint64_t pages = 0;
  for (; *p >= '0' && *p <= '9'; p++) pages = pages * 10 + (uint64_t)(*p - '0');
  long page = sysconf(_SC_PAGESIZE);
  return pages * (uint64_t)(page > 0 ? page : 4096);
}

void hk_stats_get(hk_stats_t* out) {
  hk_ensure_init();  /* the class table, and the variant the reports name */
  memset(out, 0, sizeof(*out));
  walk_spans(out);
  uint64_t small = 0, free_bytes = 0;
  for (unsigned c = 0; c < HK_CLASSES; c++) {
    small += out->classes[c].blocks_in_use * out->classes[c].block_size;
    free_bytes += out->classes[c].blocks_free * out->classes[c].block_size;
  }
  out->large_live = hk_stat_read(&hk_stat.large_live);
  out->large_bytes = hk_stat_read(&hk_stat.large_bytes);
  out->bytes_in_use = small + out->large_bytes;
  out->bytes_free_in_spans = free_bytes;
  out->bytes_committed = hk_stat_read(&hk_stat.committed_bytes);
  out->bytes_cached = hk_stat_read(&hk_stat.cached_bytes);
  out->bytes_reserved = hk_os_read(reserved_bytes);
  out->bytes_resident = process_resident();
  out->segments_live = hk_stat_read(&hk_stat.segments_live);
  out->segments_cached = hk_stat_read(&hk_stat.segments_cached);
  /* Parked heaps' segments too: their threads exited as well, and the
   * next thread or a thread short of memory takes them over. */
  out->segments_abandoned = hk_abandoned_segments() + hk_threads_parked_segments();
  out->threads_live = hk_stat_read(&hk_stat.threads_live);
  hk_threads_sum_counters(&out->thread_refills, &out->remote_frees);
  out->reclaim_running = hk_reclaim_running();
  out->reclaim_wakeups = hk_reclaim_wakeups();
  out->syscalls_mmap = hk_os_read(mmap);
  out->syscalls_munmap = hk_os_read(munmap);
  out->syscalls_madvise = hk_os_read(madvise);
  out->syscalls_madvise_free = hk_os_read(madvise_free);
  out->syscalls_madvise_dontneed = hk_os_read(madvise_dontneed);
  out->syscalls_madvise_hugepage = hk_os_read(madvise_hugepage);
  out->syscalls_madvise_nohugepage = hk_os_read(madvise_nohugepage);
  out->syscalls_mprotect = hk_os_read(mprotect);
  out->syscalls_mremap = hk_os_read(mremap);
  out->syscalls_mincore = hk_os_read(mincore);
  out->bytes_limit = hk_os_memory_limit();
  out->limit_purges = hk_stat_read(&hk_stat.limit_purges);
  out->bytes_limit_purged = hk_stat_read(&hk_stat.limit_purged_bytes);
  out->limit_overruns = hk_stat_read(&hk_stat.limit_overruns);
  out->lock_heaps_contended = atomic_load_explicit(&hk_lock_counts[HK_LOCK_HEAPS].contended, memory_order_relaxed);
  out->lock_heaps_sleeps = atomic_load_explicit(&hk_lock_counts[HK_LOCK_HEAPS].sleeps, memory_order_relaxed);
  out->lock_abandoned_contended = atomic_load_explicit(&hk_lock_counts[HK_LOCK_ABANDONED].contended, memory_order_relaxed);
  out->lock_abandoned_sleeps = atomic_load_explicit(&hk_lock_counts[HK_LOCK_ABANDONED].sleeps, memory_order_relaxed);
  out->lock_registry_contended = atomic_load_explicit(&hk_lock_counts[HK_LOCK_REGISTRY].contended, memory_order_relaxed);
  out->lock_registry_sleeps = atomic_load_explicit(&hk_lock_counts[HK_LOCK_REGISTRY].sleeps, memory_order_relaxed);
  out->lock_segments_contended = atomic_load_explicit(&hk_lock_counts[HK_LOCK_SEGMENTS].contended, memory_order_relaxed);
  out->lock_segments_sleeps = atomic_load_explicit(&hk_lock_counts[HK_LOCK_SEGMENTS].sleeps, memory_order_relaxed);
  out->lock_free_slots_contended = atomic_load_explicit(&hk_lock_counts[HK_LOCK_FREE_SLOTS].contended, memory_order_relaxed);
  out->lock_free_slots_sleeps = atomic_load_explicit(&hk_lock_counts[HK_LOCK_FREE_SLOTS].sleeps, memory_order_relaxed);
  out->lock_arena_contended = atomic_load_explicit(&hk_lock_counts[HK_LOCK_ARENA].contended, memory_order_relaxed);
  out->lock_arena_sleeps = atomic_load_explicit(&hk_lock_counts[HK_LOCK_ARENA].sleeps, memory_order_relaxed);
  out->lock_mappings_contended = atomic_load_explicit(&hk_lock_counts[HK_LOCK_MAPPINGS].contended, memory_order_relaxed);
  out->lock_mappings_sleeps = atomic_load_explicit(&hk_lock_counts[HK_LOCK_MAPPINGS].sleeps, memory_order_relaxed);
  out->lock_prof_contended = atomic_load_explicit(&hk_lock_counts[HK_LOCK_PROF].contended, memory_order_relaxed);
  out->lock_prof_sleeps = atomic_load_explicit(&hk_lock_counts[HK_LOCK_PROF].sleeps, memory_order_relaxed);
  out->lock_heap_contended = atomic_load_explicit(&hk_lock_counts[HK_LOCK_HEAP].contended, memory_order_relaxed);
  out->lock_heap_sleeps = atomic_load_explicit(&hk_lock_counts[HK_LOCK_HEAP].sleeps, memory_order_relaxed);
  out->foreign_glibc_frees = atomic_load_explicit(&hk_foreign_glibc_frees, memory_order_relaxed);
  out->foreign_ldso_ignored = atomic_load_explicit(&hk_foreign_ldso_ignored, memory_order_relaxed);
}

/* ---- formatting without malloc ------------------------------------------------ */
typedef struct hk_out {
  int fd;
  unsigned n;
  char buf[1024];
} hk_out;

static void out_flush(hk_out* o) {
  const char* p = o->buf;
  unsigned left = o->n;
  while (left > 0) {
    ssize_t w = write(o->fd, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;  /* a closed or full descriptor: the report is best effort */
    p += w;
    left -= (unsigned)w;
  }
  o->n = 0;
}

static void out_str(hk_out* o, const char* s) {
  for (; *s; s++) {
    if (o->n == sizeof(o->buf)) out_flush(o);
    o->buf[o->n++] = *s;
  }
}

/* Decimal digits of v at the end of tmp; returns where they start. */
static const char* fmt_u64(char tmp[24], uint64_t v) {
  char* p = tmp + 23;
  *p = 0;
  do { *--p = (char)('0' + v % 10); v /= 10; } while (v);
  return p;
}

static void out_u64_width(hk_out* o, uint64_t v, unsigned width) {
  char tmp[24];
  const char* p = fmt_u64(tmp, v);
  for (size_t len = strlen(p); len < width; len++) out_str(o, " ");
  out_str(o, p);
}

static void out_u64(hk_out* o, uint64_t v) { out_u64_width(o, v, 0); }

/* "12.3 MiB": one decimal, binary units, for the readable report. */
static void out_human(hk_out* o, uint64_t v) {
  static const char* const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  unsigned u = 0;
  uint64_t scale = 1;
  while (u < 4 && v >= scale * 1024) { scale *= 1024; u++; }
  out_u64(o, v / scale);
  if (u > 0) {
    out_str(o, ".");
    out_u64(o, (v % scale) * 10 / scale);
  }
  out_str(o, " ");
  out_str(o, units[u]);
}

/* The scalar fields, in report order. Both report formats and the diff tool
 * (tools/hkstats_diff.py) go by these names, which are the struct's. */
typedef struct stat_field {
  const char* name;
  unsigned offset;
  bool bytes;  /* shown with a unit in the readable report */
} stat_field;

#define HK_FIELD(f, b) {#f, (unsigned)offsetof(hk_stats_t, f), b}
static const stat_field hk_stat_fields[] = {
    HK_FIELD(bytes_in_use, true),
    HK_FIELD(bytes_free_in_spans, true),
    HK_FIELD(bytes_committed, true),
    HK_FIELD(bytes_cached, true),
    HK_FIELD(bytes_reserved, true),
    HK_FIELD(bytes_resident, true),
    HK_FIELD(segments_live, false),
    HK_FIELD(segments_cached, false),
    HK_FIELD(segments_abandoned, false),
    HK_FIELD(large_live, false),
    HK_FIELD(large_bytes, true),
    HK_FIELD(threads_live, false),
    HK_FIELD(thread_refills, false),
    HK_FIELD(remote_frees, false),
    HK_FIELD(reclaim_running, false),
    HK_FIELD(reclaim_wakeups, false),
    HK_FIELD(syscalls_mmap, false),
    HK_FIELD(syscalls_munmap, false),
    HK_FIELD(syscalls_madvise, false),
    HK_FIELD(syscalls_madvise_free, false),
    HK_FIELD(syscalls_madvise_dontneed, false),
    HK_FIELD(syscalls_madvise_hugepage, false),
    HK_FIELD(syscalls_madvise_nohugepage, false),
    HK_FIELD(syscalls_mprotect, false),
    HK_FIELD(syscalls_mremap, false),
    HK_FIELD(syscalls_mincore, false),
    HK_FIELD(bytes_limit, true),
    HK_FIELD(limit_purges, false),
    HK_FIELD(bytes_limit_purged, true),
    HK_FIELD(limit_overruns, false),
    HK_FIELD(lock_heaps_contended, false),
    HK_FIELD(lock_heaps_sleeps, false),
    HK_FIELD(lock_abandoned_contended, false),
    HK_FIELD(lock_abandoned_sleeps, false),
    HK_FIELD(lock_registry_contended, false),
    HK_FIELD(lock_registry_sleeps, false),
    HK_FIELD(lock_segments_contended, false),
    HK_FIELD(lock_segments_sleeps, false),
    HK_FIELD(lock_free_slots_contended, false),
    HK_FIELD(lock_free_slots_sleeps, false),
    HK_FIELD(lock_arena_contended, false),
    HK_FIELD(lock_arena_sleeps, false),
    HK_FIELD(lock_mappings_contended, false),
    HK_FIELD(lock_mappings_sleeps, false),
    HK_FIELD(lock_prof_contended, false),
    HK_FIELD(lock_prof_sleeps, false),
    HK_FIELD(lock_heap_contended, false),
    HK_FIELD(lock_heap_sleeps, false),
    HK_FIELD(foreign_glibc_frees, false),
    HK_FIELD(foreign_ldso_ignored, false),
};
#define HK_STAT_FIELDS (sizeof(hk_stat_fields) / sizeof(hk_stat_fields[0]))
_Static_assert(HK_STAT_FIELDS * sizeof(uint64_t) == offsetof(hk_stats_t, classes),
               "every scalar of hk_stats_t is in the report table");

static uint64_t field_value(const hk_stats_t* s, const stat_field* f) {
  uint64_t v;
  memcpy(&v, (const char*)s + f->offset, sizeof(v));
  return v;
}

static void write_text(int fd, const hk_stats_t* s) {
  hk_out o = {.fd = fd};
  out_str(&o, "hakmem: statistics (");
  out_str(&o, hk_version());
  out_str(&o, ", variant ");
  out_str(&o, hk_active->name);
  out_str(&o, ", pid ");
  out_u64(&o, (uint64_t)getpid());
  out_str(&o, ")\n");
  for (unsigned i = 0; i < HK_STAT_FIELDS; i++) {
    const stat_field* f = &hk_stat_fields[i];
    uint64_t v = field_value(s, f);
    out_str(&o, "hakmem:   ");
    out_str(&o, f->name);
    out_str(&o, " ");
    out_u64(&o, v);
    if (f->bytes && v >= 1024) {
      out_str(&o, " (");
      out_human(&o, v);
      out_str(&o, ")");
    }
    out_str(&o, "\n");
  }
  out_str(&o, "hakmem:   size classes in use: class block_size blocks_in_use bytes_in_use blocks_free spans\n");
  for (unsigned c = 0; c < HK_CLASSES; c++) {
    const hk_class_stats_t* k = &s->classes[c];
    if (k->spans == 0 && k->blocks_in_use == 0) continue;
    out_str(&o, "hakmem:   class");
    out_u64_width(&o, c, 3);
    out_u64_width(&o, k->block_size, 7);
    out_u64_width(&o, k->blocks_in_use, 12);
    out_u64_width(&o, k->blocks_in_use * k->block_size, 14);
    out_u64_width(&o, k->blocks_free, 12);
    out_u64_width(&o, k->spans, 8);
    out_str(&o, "\n");
  }
  out_flush(&o);
}

static void write_json(int fd, const hk_stats_t* s) {
  hk_out o = {.fd = fd};
  /* Version and variant names are fixed strings without quotes or
   * backslashes, so they need no escaping. */
  out_str(&o, "{\"hakmem\":\"");
  out_str(&o, hk_version());
  out_str(&o, "\",\"variant\":\"");
  out_str(&o, hk_active->name);
  out_str(&o, "\",\"pid\":");
  out_u64(&o, (uint64_t)getpid());
  for (unsigned i = 0; i < HK_STAT_FIELDS; i++) {
    out_str(&o, ",\"");
    out_str(&o, hk_stat_fields[i].name);
    out_str(&o, "\":");
    out_u64(&o, field_value(s, &hk_stat_fields[i]));
  }
  out_str(&o, ",\"classes\":[");
  bool first = true;
  for (unsigned c = 0; c < HK_CLASSES; c++) {
    const hk_class_stats_t* k = &s->classes[c];
    if (k->spans == 0 && k->blocks_in_use == 0) continue;
    out_str(&o, first ? "{\"class\":" : ",{\"class\":");
    first = false;
    out_u64(&o, c);
    out_str(&o, ",\"block_size\":");
    out_u64(&o, k->block_size);
    out_str(&o, ",\"blocks_in_use\":");
    out_u64(&o, k->blocks_in_use);
    out_str(&o, ",\"blocks_free\":");
    out_u64(&o, k->blocks_free);
    out_str(&o, ",\"spans\":");
    out_u64(&o, k->spans);
    out_str(&o, "}");
  }
  out_str(&o, "]}\n");
  out_flush(&o);
}

void hk_stats_print(int fd) {
  hk_stats_t s;
  hk_stats_get(&s);
  write_text(fd, &s);
}

void hk_stats_print_json(int fd) {
  hk_stats_t s;
  hk_stats_get(&s);
  write_json(fd, &s);
}

/* glibc's malloc_stats() prints a per-arena and a total summary; scripts
 * grep its "system bytes" and "in use bytes" lines, so those come first with
 * the same labels, then hakmem's own report. */
void hk_stats_print_malloc_stats(int fd) {
  hk_stats_t s;
  hk_stats_get(&s);
  static const char* const labels[] = {"system bytes     = ", "in use bytes     = ", "mmap regions     = ",
                                       "mmap bytes       = "};
  const uint64_t values[] = {s.bytes_committed, s.bytes_in_use, s.large_live, s.large_bytes};
  hk_out o = {.fd = fd};
  for (int total = 0; total < 2; total++) {
    out_str(&o, total ? "Total (incl. mmap):\n" : "Arena 0 (hakmem: every thread heap):\n");
    for (unsigned i = 0; i < (total ? 4u : 2u); i++) {
      out_str(&o, labels[i]);
      out_u64_width(&o, values[i], 10);
      out_str(&o, "\n");
    }
  }
  out_flush(&o);
  write_text(fd, &s);
}

/* ---- the report at exit ------------------------------------------------------ */
/* Opens HAKMEM_STATS_FILE with each "%p" replaced by the process id, for
 * appending: a program that forks without exec runs this at exit in every
 * process, and appending never loses one process's report to another's.
 * Returns -1 (after saying why on fallback_fd) when it cannot. */
static int open_stats_file(int fallback_fd) {
  char path[sizeof(hk_options.stats_file) + 32];
  hk_expand_pid(path, sizeof(path), hk_options.stats_file);
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    hk_write_str(fallback_fd, "hakmem: cannot open HAKMEM_STATS_FILE \"");
    hk_write_str(fallback_fd, path);
    hk_write_str(fallback_fd, "\"; statistics follow here\n");
  }
  return fd;
}

static void report_at_exit(int stderr_fd) {
  int fd = stderr_fd;
  int opened = -1;
  if (hk_options.stats_file[0] != 0) {
    opened = open_stats_file(stderr_fd);
    if (opened >= 0) fd = opened;
  }
  if (hk_options.stats_json) hk_stats_print_json(fd);
  else hk_stats_print(fd);
  if (opened >= 0) close(opened);
}

/* Programs may close stderr before exit (coreutils' close_stdout does), so
 * the report goes to a copy of fd 2 taken at start-up. */
static int hk_stats_fd = 2;
static void print_stats_at_exit(void) {
  if (hk_options.stats_at_exit) report_at_exit(hk_stats_fd);
}

static _Atomic int hk_stats_armed;
void hk_stats_arm_at_exit(void) {
  if (!hk_options.stats_at_exit || atomic_exchange(&hk_stats_armed, 1)) return;
  int fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
  if (fd >= 0) hk_stats_fd = fd;
  atexit(print_stats_at_exit);
}

/* HAKMEM_STATS: the report is registered at load, once the options are
 * read (or later, by hk_option_set). */
__attribute__((constructor)) static void stats_at_exit_init(void) {
  hk_ensure_init();
  hk_stats_arm_at_exit();
}

/* Per-thread counters (prof.h; hk_tls.counts_*, hot.h): this thread's own, so
 * plain reads. The call is a switching point like a slow path. */
int hk_thread_stats(hk_thread_stats_t* out) {
  if (out == NULL) return EINVAL;
  memset(out, 0, sizeof(*out));
  hk_ensure_init();
  if (hk_count_changed()) hk_heap_count_sync(hk_tls.heap);
  if (!hk_tls.counts_on) return ENOTSUP;
  out->allocated = hk_tls.counts_allocated;
  out->freed = hk_tls.counts_freed;
  return 0;
}
