/* Runtime control: hk_option_set and hk_option_get (hakmem.h). The option
 * table, its parser and its messages are options.c's; this floor adds what
 * changing a value after start-up means: start-up-only variables are
 * refused, and the modules that keep a copy of a setting are told (the
 * profiler's rate and counting, the statistics report at exit). Never allocates. */
#include <errno.h>
#include <string.h>

#include "alloc/core/init.h"
#include "alloc/core/options.h"
#include "alloc/core/prof.h"
#include "alloc/core/stats.h"

int hk_option_set(const char* name, const char* value) {
  hk_ensure_init();  /* init reads the environment: a value set before would be overwritten */
  int i = name != NULL ? hk_option_find(name) : -1;
  if (i < 0) return ENOENT;
  if (!hk_option_runtime((unsigned)i)) return EPERM;
  if (value == NULL || hk_option_parse(name, value) != 0) {
    hk_option_report_rejected(2, (unsigned)i, value ? value : "(null)", "keeping the current value");
    return EINVAL;
  }
  if (strcmp(name, "HAKMEM_PROF_SAMPLE") == 0 || strcmp(name, "HAKMEM_THREAD_STATS") == 0) hk_prof_configure();
  if (strcmp(name, "HAKMEM_STATS") == 0) hk_stats_arm_at_exit();
  return 0;
}

int hk_option_get(const char* name, char* buf, size_t len) {
  hk_ensure_init();
  int i = name != NULL ? hk_option_find(name) : -1;
  if (i < 0) return ENOENT;
  size_t n = hk_option_format((unsigned)i, buf, len);
  return n < len ? 0 : ERANGE;
}
