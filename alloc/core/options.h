/* Run-time options: the linked variant's parameters, overridden at start-up
 * by HAKMEM_* environment variables. One table (options.c) lists every
 * variable with its meaning, accepted values and default; the parser, the
 * validation messages and HAKMEM_SHOW_CONFIG all read that table.
 * Read once in hk_init_slow, before any heap exists; afterwards the ones
 * marked "runtime" in the table may change through hk_option_set
 * (hakmem.h, control.c), and take effect on the slow paths that read them. */
#ifndef HAKMEM_CORE_OPTIONS_H
#define HAKMEM_CORE_OPTIONS_H

#include <stdbool.h>

#include "alloc/core/policy.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hk_options_t {
  hk_params params;     /* what the policies read */
  bool on_error_warn;   /* HAKMEM_ON_ERROR=warn: report misuse, leak the block, go on */
  bool stats_at_exit;   /* HAKMEM_STATS=1 or json: print statistics at exit */
  bool stats_json;      /* HAKMEM_STATS=json: as one line of JSON */
  char stats_file[512]; /* HAKMEM_STATS_FILE: append the report here ("": stderr) */
  bool show_config;     /* HAKMEM_SHOW_CONFIG=1: print the effective configuration at start */
  uint64_t prof_sample; /* HAKMEM_PROF_SAMPLE: mean bytes between heap profile samples; 0: off (prof.h) */
  char prof_file[512];  /* HAKMEM_PROF_FILE: write the heap profile here at exit ("": do not) */
  uint64_t thread_stats; /* HAKMEM_THREAD_STATS: 1: threads count their bytes (hk_thread_stats, prof.h); read relaxed */
} hk_options_t;

extern hk_options_t hk_options;
extern const hk_variant* hk_active;   /* the linked variant's modules */

/* Fills hk_options from the variant and the environment; prints one line per
 * rejected value. Never allocates. */
void hk_options_init(void);

/* Parses one variable's value as the environment would give it. Returns 0 and
 * stores it, or -1 (value untouched). Any variable, at any time: for tests
 * and the fuzzers (programs call hk_option_set, which checks more). */
int hk_option_parse(const char* name, const char* value);

/* The table index of a variable, or -1. */
int hk_option_find(const char* name);
/* Whether variable i may change after start-up. */
bool hk_option_runtime(unsigned i);
/* The value of variable i as the environment would give it, NUL-terminated
 * in buf (cap bytes, truncated to fit). Returns its full length. */
size_t hk_option_format(unsigned i, char* buf, size_t cap);
/* Says on fd that `value` was rejected for variable i and what is accepted,
 * ending with `kept` (what happens instead): the one message for start-up
 * and for hk_option_set. */
void hk_option_report_rejected(int fd, unsigned i, const char* value, const char* kept);

/* Puts one variable back to the linked variant's value (or the process
 * default). Returns 0, or -1 for an unknown name. */
int hk_option_reset(const char* name);

/* The name of the ith variable of the table (NULL past the end), so tests can
 * prove they cover every one. */
const char* hk_option_name(unsigned i);

/* Prints the effective configuration with where each value came from. */
void hk_options_print(int fd);

/* Prints the table behind README's configuration section: per variable one
 * line "name TAB meaning TAB accepted TAB default TAB used|unused", the
 * default being the linked variant's and "unused" meaning none of its modules
 * reads the setting. tools/options_table.py builds the README table from one
 * such printout per variant. */
void hk_options_doc(int fd);

#ifdef __cplusplus
}
#endif

#endif
