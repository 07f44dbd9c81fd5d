/* Target 4: the HAKMEM_* option parser (hk_option_parse, alloc/core/options.c).
 *
 * Property: for any byte string as name and value, hk_option_parse returns 0
 * exactly when the README documents the value for that variable, and then the
 * field holds what the value means; otherwise it returns -1 and leaves every
 * option as it was. An independent model of the documented grammar decides:
 *   HAKMEM_DECOMMIT            off | free | dontneed
 *   HAKMEM_RELEASE_DELAY_MS    decimal integer 0..3600000
 *   HAKMEM_CACHE_MB            decimal integer 0..1048576
 *   HAKMEM_RESIDENT_TARGET_MB  decimal integer 0..1048576
 *   HAKMEM_PREWARM_KB          decimal integer 0..65536
 *   HAKMEM_ON_ERROR            abort | warn
 *   HAKMEM_STATS               0 | 1 | json
 *   HAKMEM_STATS_FILE          a file path: any non-empty string that fits
 *                              hk_options.stats_file (longer ones rejected,
 *                              never truncated)
 *   HAKMEM_SHOW_CONFIG         0 | 1
 *   HAKMEM_PROF_SAMPLE         an integer 0..2^40
 *   HAKMEM_PROF_FILE           a file path, as HAKMEM_STATS_FILE
 *   HAKMEM_RECLAIM_THREAD      0 | 1
 *   HAKMEM_MEMORY_LIMIT_MB     decimal integer 0..1048576 | cgroup
 *   HAKMEM_THP                 default | never | madvise
 *   HAKMEM_THREAD_STATS        0 | 1
 * "Decimal integer" is one or more ASCII digits and nothing else (no sign,
 * space, or suffix); leading zeros are allowed, as the environment gives
 * them and the value is unambiguous. When README's table (generated from
 * alloc/core/options.c) gains a variable or a value, this model follows.
 *
 * Input: name and value separated by the first '=' (a NUL also ends the
 * name), like an environment entry. A first byte from 1 to the number of
 * documented names instead picks one of them, so mutation concentrates on
 * values. Either string
 * may contain any byte; the parser sees it up to its first NUL, as getenv
 * would give it. Options are restored after every input so the allocator in
 * this process keeps its configuration. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc/core/options.h"
#include "fuzz/fuzz_common.h"

typedef enum { K_DECOMMIT, K_U64, K_ON_ERROR, K_STATS, K_PATH, K_BOOL, K_LIMIT, K_THP } kind_t;

static const struct {
  const char* name;
  kind_t kind;
  uint64_t max;
} known[] = {
    {"HAKMEM_DECOMMIT", K_DECOMMIT, 0},
    {"HAKMEM_RELEASE_DELAY_MS", K_U64, 3600000},
    {"HAKMEM_CACHE_MB", K_U64, 1048576},
    {"HAKMEM_RESIDENT_TARGET_MB", K_U64, 1048576},
    {"HAKMEM_PREWARM_KB", K_U64, 65536},
    {"HAKMEM_ON_ERROR", K_ON_ERROR, 0},
    {"HAKMEM_STATS", K_STATS, 0},
    {"HAKMEM_STATS_FILE", K_PATH, sizeof(hk_options.stats_file) - 1},
    {"HAKMEM_SHOW_CONFIG", K_BOOL, 0},
    {"HAKMEM_PROF_SAMPLE", K_U64, (uint64_t)1 << 40},
    {"HAKMEM_PROF_FILE", K_PATH, sizeof(hk_options.prof_file) - 1},
    {"HAKMEM_RECLAIM_THREAD", K_U64, 1},
    {"HAKMEM_MEMORY_LIMIT_MB", K_LIMIT, 1048576},
    {"HAKMEM_THP", K_THP, 0},
    {"HAKMEM_THREAD_STATS", K_U64, 1},
    {"HAKMEM_PARK_GRACE_MS", K_U64, 3600000},
    {"HAKMEM_PARKED_MAX", K_U64, 4096},
    {"HAKMEM_HEAP_IDLE_MS", K_U64, 3600000},
};
#define NKNOWN (sizeof(known) / sizeof(known[0]))

/* A variable's value in one canonical spelling, so "what the model expects"
 * and "what the parser stored" compare as strings. */
#define VALUE_MAX (sizeof(hk_options.stats_file) + 32)

static bool is_one_of(const char* v, const char* const* words) {
  for (; *words; words++)
    if (!strcmp(v, *words)) return true;
  return false;
}

/* The documented meaning of value v for variable k, canonically spelled into
 * out; false when v is not a documented value. */
static bool model(unsigned k, const char* v, char* out) {
  static const char* const decommit[] = {"off", "free", "dontneed", NULL};
  static const char* const on_error[] = {"abort", "warn", NULL};
  static const char* const stats[] = {"0", "1", "json", NULL};
  static const char* const boolean[] = {"0", "1", NULL};
  static const char* const thp[] = {"default", "never", "madvise", NULL};
  switch (known[k].kind) {
    case K_THP: if (!is_one_of(v, thp)) return false; break;
    case K_DECOMMIT: if (!is_one_of(v, decommit)) return false; break;
    case K_ON_ERROR: if (!is_one_of(v, on_error)) return false; break;
    case K_STATS: if (!is_one_of(v, stats)) return false; break;
    case K_BOOL: if (!is_one_of(v, boolean)) return false; break;
    case K_PATH:
      if (*v == 0 || strlen(v) > known[k].max) return false;
      break;
    case K_LIMIT: /* "cgroup", or a number as K_U64 */
    case K_U64: {
      if (known[k].kind == K_LIMIT && !strcmp(v, "cgroup")) break;
      if (*v == 0) return false;
      /* Digits only; compared in a wide type so no input wraps. */
      unsigned __int128 x = 0;
      for (const char* p = v; *p; p++) {
        if (*p < '0' || *p > '9') return false;
        x = x * 10 + (unsigned)(*p - '0');
        if (x > known[k].max) return false;
      }
      snprintf(out, VALUE_MAX, "%llu", (unsigned long long)x);
      return true;
    }
  }
  snprintf(out, VALUE_MAX, "%s", v);
  return true;
}

/* What the parser stored for variable k, spelled as model() spells it. */
static void field(unsigned k, char* out) {
  static const char* const decommit[] = {"off", "free", "dontneed"};
  unsigned long long n = 0;
  const char* str = NULL;
  switch (k) {
    case 0: {
      unsigned m = (unsigned)hk_options.params.decommit_mode;
      str = m < 3 ? decommit[m] : "?";
      break;
    }
    case 1: n = hk_options.params.release_delay_ms; break;
    case 2: n = hk_options.params.cache_mb; break;
    case 3: n = hk_options.params.resident_target_mb; break;
    case 4: n = hk_options.params.prewarm_kb; break;
    case 5: str = hk_options.on_error_warn ? "warn" : "abort"; break;
    case 6: str = !hk_options.stats_at_exit ? "0" : hk_options.stats_json ? "json" : "1"; break;
    case 7: str = hk_options.stats_file; break;
    case 8: str = hk_options.show_config ? "1" : "0"; break;
    case 9: n = hk_options.prof_sample; break;
    case 10: str = hk_options.prof_file; break;
    case 11: n = hk_options.params.reclaim_thread; break;
    case 12:
      if (hk_options.params.memory_limit_mb == HK_MEMORY_LIMIT_CGROUP) str = "cgroup";
      else n = hk_options.params.memory_limit_mb;
      break;
    case 14: n = hk_options.thread_stats; break;
    case 15: n = hk_options.params.park_grace_ms; break;
    case 16: n = hk_options.params.parked_max; break;
    case 17: n = hk_options.params.heap_idle_ms; break;
    default: {
      static const char* const thp[] = {"default", "never", "madvise"};
      unsigned m = (unsigned)hk_options.params.thp;
      str = m < 3 ? thp[m] : "?";
      break;
    }
  }
  if (str) snprintf(out, VALUE_MAX, "%s", str);
  else snprintf(out, VALUE_MAX, "%llu", n);
}

static hk_options_t saved;
static bool saved_once;

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (!saved_once) {
    saved = hk_options;
    saved_once = true;
  }
  /* NUL-terminated copies: name up to the first '=' (or NUL), value after. */
  char* name;
  char* value;
  if (size > 0 && data[0] >= 1 && data[0] <= NKNOWN) {  /* 1..NKNOWN: a known name */
    name = strdup(known[data[0] - 1].name);
    value = malloc(size);
    memcpy(value, data + 1, size - 1);
    value[size - 1] = 0;
  } else {
    size_t eq = 0;
    while (eq < size && data[eq] != '=') eq++;
    name = malloc(eq + 1);
    memcpy(name, data, eq);
    name[eq] = 0;
    size_t vlen = eq < size ? size - eq - 1 : 0;
    value = malloc(vlen + 1);
    if (vlen) memcpy(value, data + eq + 1, vlen);
    value[vlen] = 0;
  }

  int k = -1;
  for (unsigned i = 0; i < NKNOWN; i++)
    if (!strcmp(name, known[i].name)) k = (int)i;

  hk_options_t before = hk_options;
  int rc = hk_option_parse(name, value);
  static char want[VALUE_MAX], got[VALUE_MAX], old[VALUE_MAX];
  bool valid = k >= 0 && model((unsigned)k, value, want);

  /* Every variable but the one named keeps its value, accepted or not. */
  hk_options_t after = hk_options;
  for (unsigned j = 0; j < NKNOWN; j++) {
    if ((int)j == k && valid) continue;
    hk_options = before;
    field(j, old);
    hk_options = after;
    field(j, got);
    FUZZ_CHECK(!strcmp(old, got), "hk_option_parse(\"%.40s\", \"%.40s\") (%s) changed %s from \"%.40s\" to \"%.40s\"",
               name, value, valid ? "accepted" : "rejected", known[j].name, old, got);
  }
  if (!valid) {
    FUZZ_CHECK(rc == -1, "hk_option_parse(\"%.60s\", \"%.60s\") = %d for an undocumented %s", name, value, rc,
               k < 0 ? "name" : "value");
  } else {
    FUZZ_CHECK(rc == 0, "hk_option_parse(\"%s\", \"%.60s\") = %d for a documented value", name, value, rc);
    field((unsigned)k, got);
    FUZZ_CHECK(!strcmp(got, want), "hk_option_parse(\"%s\", \"%.60s\") stored \"%.60s\", expected \"%.60s\"", name,
               value, got, want);
  }
  hk_options = saved;
  free(name);
  free(value);
  return 0;
}
