/* The HAKMEM_* variables: one table, one parser, one printout. */
#include "alloc/core/options.h"

#include <stdlib.h>
#include <string.h>

#include "alloc/core/print.h"
#include "alloc/include/hakmem.h"

hk_options_t hk_options;

const char* hk_version(void) { return "hakmem 0.1.0"; }
const hk_variant* hk_active = &hk_variant_linked;

typedef enum { OPT_BOOL, OPT_U64, OPT_DECOMMIT, OPT_ON_ERROR, OPT_STATS, OPT_PATH, OPT_LIMIT, OPT_THP } opt_kind;
typedef enum { FROM_DEFAULT, FROM_VARIANT, FROM_ENV } opt_source;

typedef struct opt_desc {
  const char* name;      /* environment variable */
  opt_kind kind;
  void* field;           /* in hk_options */
  uint64_t max;          /* OPT_U64: largest accepted value */
  const char* accepted;  /* shown when a value is rejected, and in the README table */
  bool from_variant;     /* default comes from the variant's params */
  unsigned param;        /* HK_READS_* bit of the hk_params field it sets; 0 for process settings */
  opt_source source;     /* where the current value came from */
  bool runtime;          /* may change after start-up (hk_option_set) */
  const char* meaning;   /* one line for the README table (hk_options_doc); no '|' */
} opt_desc;

/* The one list of HAKMEM_* variables. README's configuration table is
 * generated from it (tools/options_table.py), and a test fails when the two
 * disagree. */
static opt_desc hk_opts[] = {
    {.name = "HAKMEM_DECOMMIT", .runtime = true, .kind = OPT_DECOMMIT, .field = &hk_options.params.decommit_mode,
     .accepted = "off, free or dontneed", .from_variant = true, .param = HK_READS_DECOMMIT_MODE,
     .meaning = "how free slots go back while their segment stays mapped (off: they stay resident)"},
    {.name = "HAKMEM_RELEASE_DELAY_MS", .runtime = true, .kind = OPT_U64, .field = &hk_options.params.release_delay_ms,
     .max = 3600000, .accepted = "an integer 0..3600000", .from_variant = true, .param = HK_READS_RELEASE_DELAY,
     .meaning = "freed memory idle this long goes back to the OS"},
    {.name = "HAKMEM_CACHE_MB", .runtime = true, .kind = OPT_U64, .field = &hk_options.params.cache_mb, .max = 1048576,
     .accepted = "an integer 0..1048576", .from_variant = true, .param = HK_READS_CACHE,
     .meaning = "freed memory kept for reuse at most; beyond it the oldest goes back at once"},
    {.name = "HAKMEM_RESIDENT_TARGET_MB", .runtime = true, .kind = OPT_U64, .field = &hk_options.params.resident_target_mb,
     .max = 1048576, .accepted = "an integer 0..1048576", .from_variant = true, .param = HK_READS_RESIDENT_TARGET,
     .meaning = "memory idle past the delay goes back only while more than this is committed"},
    {.name = "HAKMEM_PREWARM_KB", .runtime = true, .kind = OPT_U64, .field = &hk_options.params.prewarm_kb, .max = 65536,
     .accepted = "an integer 0..65536", .from_variant = true, .param = HK_READS_PREWARM,
     .meaning = "most a new thread may fault in before it asks"},
    {.name = "HAKMEM_RECLAIM_THREAD", .runtime = true, .kind = OPT_U64, .field = &hk_options.params.reclaim_thread, .max = 1,
     .accepted = "0 or 1", .from_variant = true,
     .meaning = "a background thread gives freed memory back on time while the program makes no allocator call"},
    {.name = "HAKMEM_PARK_GRACE_MS", .runtime = true, .kind = OPT_U64, .field = &hk_options.params.park_grace_ms,
     .max = 3600000, .accepted = "an integer 0..3600000", .from_variant = true,
     .meaning = "an exited thread's heap waits at least this long for a new thread to take it over whole before running threads may adopt its memory (longer while new threads recently took longer to come, twice their longest wait, or when its thread ran longer, as long as it ran; up to the release delay)"},
    {.name = "HAKMEM_PARKED_MAX", .runtime = true, .kind = OPT_U64, .field = &hk_options.params.parked_max,
     .max = 4096, .accepted = "an integer 0..4096", .from_variant = true,
     .meaning = "exited threads' heaps kept waiting at most; beyond it the oldest goes to running threads at once (0: none waits)"},
    {.name = "HAKMEM_HEAP_IDLE_MS", .runtime = true, .kind = OPT_U64, .field = &hk_options.params.heap_idle_ms,
     .max = 3600000, .accepted = "an integer 0..3600000 (0: never)", .from_variant = true,
     .meaning = "a thread that has not refilled a span for this long is idle: its spans that other threads' frees emptied go back, "
                "taken by the threads that need memory"},
    {.name = "HAKMEM_MEMORY_LIMIT_MB", .kind = OPT_LIMIT, .field = &hk_options.params.memory_limit_mb,
     .max = 1048576, .accepted = "an integer 0..1048576 (0: none) or cgroup", .from_variant = true,
     .meaning = "soft limit on committed memory: before going past it, everything the caches hold goes back, oldest first; "
                "cgroup: the process's cgroup memory limit"},
    {.name = "HAKMEM_THP", .kind = OPT_THP, .field = &hk_options.params.thp,
     .accepted = "default, never or madvise", .from_variant = true,
     .meaning = "transparent huge pages: madvise asks for them for dense memory (segments half in use, arena blocks "
                "of 2 MiB or more), never refuses them everywhere, default leaves the kernel's setting"},
    {.name = "HAKMEM_ON_ERROR", .runtime = true, .kind = OPT_ON_ERROR, .field = &hk_options.on_error_warn,
     .accepted = "abort or warn", .meaning = "what misuse does (warn: report it, leak the block, go on)"},
    {.name = "HAKMEM_STATS", .runtime = true, .kind = OPT_STATS, .field = &hk_options.stats_at_exit, .accepted = "0, 1 or json",
     .meaning = "print statistics at exit: 1 readable, json one JSON line"},
    {.name = "HAKMEM_STATS_FILE", .runtime = true, .kind = OPT_PATH, .field = hk_options.stats_file,
     .max = sizeof(hk_options.stats_file) - 1, .accepted = "a file path (%p: the process id)",
     .meaning = "append the HAKMEM_STATS report to this file instead of stderr"},
    {.name = "HAKMEM_SHOW_CONFIG", .kind = OPT_BOOL, .field = &hk_options.show_config, .accepted = "0 or 1",
     .meaning = "print the effective configuration at start-up"},
    {.name = "HAKMEM_PROF_SAMPLE", .runtime = true, .kind = OPT_U64, .field = &hk_options.prof_sample,
     .max = (uint64_t)1 << 40, .accepted = "an integer 0..1099511627776 (bytes; 0: off)",
     .meaning = "heap profiler: mean bytes allocated between samples (524288 is cheap enough to leave on)"},
    {.name = "HAKMEM_PROF_FILE", .runtime = true, .kind = OPT_PATH, .field = hk_options.prof_file,
     .max = sizeof(hk_options.prof_file) - 1, .accepted = "a file path (%p: the process id)",
     .meaning = "write the heap profile (gperftools format, for pprof) to this file at exit"},
    {.name = "HAKMEM_THREAD_STATS", .runtime = true, .kind = OPT_U64, .field = &hk_options.thread_stats, .max = 1,
     .accepted = "0 or 1",
     .meaning = "1: each thread counts the bytes it allocates and frees, read by hk_thread_stats (from its next allocation slow path)"},
};
#define HK_OPT_COUNT (sizeof(hk_opts) / sizeof(hk_opts[0]))

static const char* const hk_decommit_names[] = {"off", "free", "dontneed"};
static const char* const hk_thp_names[] = {"default", "never", "madvise"};

static int parse_u64(const char* s, uint64_t max, uint64_t* out) {
  if (*s == 0) return -1;
  uint64_t v = 0;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return -1;
    uint64_t d = (uint64_t)(*s - '0');
    if (d > max || v > (max - d) / 10) return -1;  /* also rejects anything past max */
    v = v * 10 + d;
  }
  *out = v;
  return 0;
}

static int parse_into(opt_desc* o, const char* value) {
  switch (o->kind) {
    case OPT_BOOL:
      if (strcmp(value, "0") && strcmp(value, "1")) return -1;
      *(bool*)o->field = value[0] == '1';
      return 0;
    case OPT_U64: {
      uint64_t v;
      if (parse_u64(value, o->max, &v)) return -1;
      /* Atomic: runtime options change while other threads read them. */
      __atomic_store_n((uint64_t*)o->field, v, __ATOMIC_RELAXED);
      return 0;
    }
    case OPT_DECOMMIT:
      for (unsigned i = 0; i < 3; i++) {
        if (strcmp(value, hk_decommit_names[i]) == 0) {
          *(hk_decommit_mode*)o->field = (hk_decommit_mode)i;
          return 0;
        }
      }
      return -1;
    case OPT_ON_ERROR:
      if (strcmp(value, "abort") == 0) *(bool*)o->field = false;
      else if (strcmp(value, "warn") == 0) *(bool*)o->field = true;
      else return -1;
      return 0;
    case OPT_STATS:
      /* field is stats_at_exit; the format sits beside it in hk_options. */
      if (strcmp(value, "0") == 0) hk_options.stats_at_exit = hk_options.stats_json = false;
      else if (strcmp(value, "1") == 0) hk_options.stats_at_exit = true, hk_options.stats_json = false;
      else if (strcmp(value, "json") == 0) hk_options.stats_at_exit = hk_options.stats_json = true;
      else return -1;
      return 0;
    case OPT_LIMIT:
      if (strcmp(value, "cgroup") == 0) {
        *(uint64_t*)o->field = HK_MEMORY_LIMIT_CGROUP;
        return 0;
      }
      return parse_u64(value, o->max, (uint64_t*)o->field);
    case OPT_THP:
      for (unsigned i = 0; i < 3; i++) {
        if (strcmp(value, hk_thp_names[i]) == 0) {
          *(hk_thp_mode*)o->field = (hk_thp_mode)i;
          return 0;
        }
      }
      return -1;
    case OPT_PATH: {
      size_t n = strlen(value);
      if (n == 0 || n > o->max) return -1;
      memcpy(o->field, value, n + 1);  /* copied: the environment may change later */
      return 0;
    }
  }
  return -1;
}

/* The value of option o as stored at `base` (hk_options or a copy of it),
 * in the form the variable accepts; tmp holds numbers. */
static const char* value_str(const opt_desc* o, const hk_options_t* base, char tmp[24]) {
  const void* f = (const char*)base + ((const char*)o->field - (const char*)&hk_options);
  switch (o->kind) {
    case OPT_BOOL: return *(const bool*)f ? "1" : "0";
    case OPT_U64:
    case OPT_LIMIT: {
      uint64_t v = __atomic_load_n((const uint64_t*)f, __ATOMIC_RELAXED);
      if (o->kind == OPT_LIMIT && v == HK_MEMORY_LIMIT_CGROUP) return "cgroup";
      char* p = tmp + 24;
      *--p = 0;
      do { *--p = (char)('0' + v % 10); v /= 10; } while (v);
      return p;
    }
    case OPT_DECOMMIT: return hk_decommit_names[*(const hk_decommit_mode*)f];
    case OPT_ON_ERROR: return *(const bool*)f ? "warn" : "abort";
    case OPT_STATS: return !base->stats_at_exit ? "0" : base->stats_json ? "json" : "1";
    case OPT_PATH: return (const char*)f;
    case OPT_THP: return hk_thp_names[*(const hk_thp_mode*)f];
  }
  return "";
}

static void write_value(int fd, const opt_desc* o, const hk_options_t* base) {
  char tmp[24];
  hk_write_str(fd, value_str(o, base, tmp));
}

size_t hk_option_format(unsigned i, char* buf, size_t cap) {
  char tmp[24];
  const char* v = i < HK_OPT_COUNT ? value_str(&hk_opts[i], &hk_options, tmp) : "";
  size_t n = strlen(v);
  if (cap > 0) {
    size_t c = n < cap - 1 ? n : cap - 1;
    memcpy(buf, v, c);
    buf[c] = 0;
  }
  return n;
}

static unsigned variant_reads(void) {
  return hk_active->release->reads | hk_active->decommit->reads | hk_active->prewarm->reads;
}

void hk_options_doc(int fd) {
  /* Defaults as hk_options_init sets them with an empty environment. */
  static hk_options_t defaults;
  memset(&defaults, 0, sizeof(defaults));
  defaults.params = hk_active->params;
  unsigned reads = variant_reads();
  for (unsigned i = 0; i < HK_OPT_COUNT; i++) {
    const opt_desc* o = &hk_opts[i];
    hk_write_str(fd, o->name);
    hk_write_str(fd, "\t");
    hk_write_str(fd, o->meaning);
    hk_write_str(fd, "\t");
    hk_write_str(fd, o->accepted);
    hk_write_str(fd, "\t");
    write_value(fd, o, &defaults);
    hk_write_str(fd, "\t");
    hk_write_str(fd, o->param != 0 && (reads & o->param) == 0 ? "unused" : "used");
    hk_write_str(fd, "\t");
    hk_write_str(fd, o->runtime ? "runtime" : "start-up");
    hk_write_str(fd, "\n");
  }
}

const char* hk_option_name(unsigned i) { return i < HK_OPT_COUNT ? hk_opts[i].name : NULL; }

int hk_option_find(const char* name) {
  for (unsigned i = 0; i < HK_OPT_COUNT; i++)
    if (strcmp(hk_opts[i].name, name) == 0) return (int)i;
  return -1;
}

bool hk_option_runtime(unsigned i) { return i < HK_OPT_COUNT && hk_opts[i].runtime; }

int hk_option_parse(const char* name, const char* value) {
  int i = hk_option_find(name);
  if (i < 0 || parse_into(&hk_opts[i], value)) return -1;
  hk_opts[i].source = FROM_ENV;
  return 0;
}

void hk_option_report_rejected(int fd, unsigned i, const char* value, const char* kept) {
  hk_write_str(fd, "hakmem: ignoring ");
  hk_write_str(fd, hk_opts[i].name);
  hk_write_str(fd, "=\"");
  hk_write_str(fd, value);
  hk_write_str(fd, "\": expected ");
  hk_write_str(fd, hk_opts[i].accepted);
  hk_write_str(fd, "; ");
  hk_write_str(fd, kept);
  hk_write_str(fd, "\n");
}

int hk_option_reset(const char* name) {
  for (unsigned i = 0; i < HK_OPT_COUNT; i++) {
    opt_desc* o = &hk_opts[i];
    if (strcmp(o->name, name) != 0) continue;
    if (o->from_variant) {
      /* The same field of the variant's defaults. */
      size_t off = (size_t)((const char*)o->field - (const char*)&hk_options.params);
      size_t size = o->kind == OPT_DECOMMIT ? sizeof(hk_decommit_mode)
                    : o->kind == OPT_THP    ? sizeof(hk_thp_mode)
                                            : sizeof(uint64_t);
      memcpy(o->field, (const char*)&hk_active->params + off, size);
      o->source = FROM_VARIANT;
    } else {
      switch (o->kind) {
        case OPT_PATH: ((char*)o->field)[0] = 0; break;
        case OPT_STATS: hk_options.stats_at_exit = hk_options.stats_json = false; break;
        /* A whole word: clearing one byte would leave 524288 as it was. */
        case OPT_U64: __atomic_store_n((uint64_t*)o->field, 0, __ATOMIC_RELAXED); break;
        default: *(bool*)o->field = false; break;
      }
      o->source = FROM_DEFAULT;
    }
    return 0;
  }
  return -1;
}

void hk_options_init(void) {
  memset(&hk_options, 0, sizeof(hk_options));
  hk_options.params = hk_active->params;
  for (unsigned i = 0; i < HK_OPT_COUNT; i++) {
    opt_desc* o = &hk_opts[i];
    o->source = o->from_variant ? FROM_VARIANT : FROM_DEFAULT;
    const char* value = getenv(o->name);
    if (value == NULL) continue;
    if (parse_into(o, value) == 0) {
      o->source = FROM_ENV;
      continue;
    }
    hk_option_report_rejected(2, i, value, "keeping the variant's value");
  }
}

void hk_options_print(int fd) {
  static const char* const source_names[] = {"default", "variant", "environment"};
  hk_write_str(fd, "hakmem: variant ");
  hk_write_str(fd, hk_active->name);
  hk_write_str(fd, " (backend ");
  hk_write_str(fd, hk_active->backend->name);
  hk_write_str(fd, ", release ");
  hk_write_str(fd, hk_active->release->name);
  hk_write_str(fd, ", decommit ");
  hk_write_str(fd, hk_active->decommit->name);
  hk_write_str(fd, ", prewarm ");
  hk_write_str(fd, hk_active->prewarm->name);
  hk_write_str(fd, ")\n");
  unsigned reads = variant_reads();
  for (unsigned i = 0; i < HK_OPT_COUNT; i++) {
    const opt_desc* o = &hk_opts[i];
    hk_write_str(fd, "hakmem:   ");
    hk_write_str(fd, o->name);
    hk_write_str(fd, "=");
    write_value(fd, o, &hk_options);
    hk_write_str(fd, " (");
    hk_write_str(fd, source_names[o->source]);
    /* A setting no linked module reads changes nothing: say so rather than
     * let someone tune it in vain. */
    if (o->param != 0 && (reads & o->param) == 0) hk_write_str(fd, "; unused by this variant's modules");
    hk_write_str(fd, ")\n");
  }
}
