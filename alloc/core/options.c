/* The HAKMEM_* variables: one table, one parser, one printout. */
#include "alloc/core/options.h"

#include <stdlib.h>
#include <string.h>

#include "alloc/core/internal.h"

hk_options_t hk_options;
const hk_variant* hk_active = &hk_variant_linked;

typedef enum { OPT_BOOL, OPT_U64, OPT_DECOMMIT, OPT_ON_ERROR } opt_kind;
typedef enum { FROM_DEFAULT, FROM_VARIANT, FROM_ENV } opt_source;

typedef struct opt_desc {
  const char* name;      /* environment variable */
  opt_kind kind;
  void* field;           /* in hk_options */
  uint64_t max;          /* OPT_U64: largest accepted value */
  const char* accepted;  /* shown when a value is rejected */
  bool from_variant;     /* default comes from the variant's params */
  opt_source source;
} opt_desc;

static opt_desc hk_opts[] = {
    {"HAKMEM_DECOMMIT", OPT_DECOMMIT, &hk_options.params.decommit_mode, 0, "off, free or dontneed", true, 0},
    {"HAKMEM_RELEASE_DELAY_MS", OPT_U64, &hk_options.params.release_delay_ms, 3600000, "an integer 0..3600000", true, 0},
    {"HAKMEM_CACHE_MB", OPT_U64, &hk_options.params.cache_mb, 1048576, "an integer 0..1048576", true, 0},
    {"HAKMEM_RESIDENT_TARGET_MB", OPT_U64, &hk_options.params.resident_target_mb, 1048576, "an integer 0..1048576", true, 0},
    {"HAKMEM_PREWARM_KB", OPT_U64, &hk_options.params.prewarm_kb, 65536, "an integer 0..65536", true, 0},
    {"HAKMEM_ON_ERROR", OPT_ON_ERROR, &hk_options.on_error_warn, 0, "abort or warn", false, 0},
    {"HAKMEM_STATS", OPT_BOOL, &hk_options.stats_at_exit, 0, "0 or 1", false, 0},
    {"HAKMEM_SHOW_CONFIG", OPT_BOOL, &hk_options.show_config, 0, "0 or 1", false, 0},
};
#define HK_OPT_COUNT (sizeof(hk_opts) / sizeof(hk_opts[0]))

static const char* const hk_decommit_names[] = {"off", "free", "dontneed"};

static int parse_u64(const char* s, uint64_t max, uint64_t* out) {
  if (*s == 0) return -1;
  uint64_t v = 0;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return -1;
    uint64_t d = (uint64_t)(*s - '0');
    if (v > (max - d) / 10) return -1;  /* also rejects anything past max */
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
      *(uint64_t*)o->field = v;
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
  }
  return -1;
}

int hk_option_set(const char* name, const char* value) {
  for (unsigned i = 0; i < HK_OPT_COUNT; i++) {
    if (strcmp(hk_opts[i].name, name) == 0) {
      if (parse_into(&hk_opts[i], value)) return -1;
      hk_opts[i].source = FROM_ENV;
      return 0;
    }
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
    hk_write_str(2, "hakmem: ignoring ");
    hk_write_str(2, o->name);
    hk_write_str(2, "=\"");
    hk_write_str(2, value);
    hk_write_str(2, "\": expected ");
    hk_write_str(2, o->accepted);
    hk_write_str(2, "; keeping the variant's value\n");
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
  for (unsigned i = 0; i < HK_OPT_COUNT; i++) {
    const opt_desc* o = &hk_opts[i];
    hk_write_str(fd, "hakmem:   ");
    hk_write_str(fd, o->name);
    hk_write_str(fd, "=");
    switch (o->kind) {
      case OPT_BOOL: hk_write_str(fd, *(bool*)o->field ? "1" : "0"); break;
      case OPT_U64: hk_write_u64(fd, *(uint64_t*)o->field); break;
      case OPT_DECOMMIT: hk_write_str(fd, hk_decommit_names[*(hk_decommit_mode*)o->field]); break;
      case OPT_ON_ERROR: hk_write_str(fd, *(bool*)o->field ? "warn" : "abort"); break;
    }
    hk_write_str(fd, " (");
    hk_write_str(fd, source_names[o->source]);
    hk_write_str(fd, ")\n");
  }
}
