#include "alloc/core/error.h"

#include <errno.h>
#include <stdlib.h>

#include "alloc/core/options.h"
#include "alloc/core/print.h"

static void hk_report(const char* what, const void* p, const char* func) {
  int saved = errno;
  hk_write_str(2, "hakmem: ");
  hk_write_str(2, what);
  hk_write_str(2, " of ");
  hk_write_hex(2, (uintptr_t)p);
  hk_write_str(2, " in ");
  hk_write_str(2, func);
  hk_write_str(2, "()\n");
  errno = saved;
}

void hk_fatal(const char* what, const void* p, const char* func) {
  hk_report(what, p, func);
  abort();
}

void hk_misuse(const char* what, const void* p, const char* func) {
  hk_report(what, p, func);
  if (!hk_options.on_error_warn) abort();
}
