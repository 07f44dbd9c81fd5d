/* Error reporting that never allocates: misuse is reported from inside free()
 * and malloc(), where calling stdio (which may malloc) could recurse or
 * deadlock. */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc/core/internal.h"
#include "alloc/core/options.h"

void hk_write_str(int fd, const char* s) {
  size_t n = strlen(s);
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    s += w;
    n -= (size_t)w;
  }
}

void hk_write_u64(int fd, uint64_t v) {
  char buf[24];
  char* p = buf + sizeof(buf);
  *--p = 0;
  do { *--p = (char)('0' + v % 10); v /= 10; } while (v);
  hk_write_str(fd, p);
}

void hk_write_hex(int fd, uintptr_t v) {
  char buf[2 + 16 + 1];
  char* p = buf + sizeof(buf);
  *--p = 0;
  do { *--p = "0123456789abcdef"[v & 15]; v >>= 4; } while (v);
  *--p = 'x';
  *--p = '0';
  hk_write_str(fd, p);
}

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

void hk_lock(hk_lock_t* l) {
  for (;;) {
    int expected = 0;
    if (atomic_compare_exchange_weak_explicit(&l->state, &expected, 1, memory_order_acquire,
                                              memory_order_relaxed))
      return;
    /* Held locks guard short, rare sections; yielding keeps a 2-core machine
     * from burning the holder's time slice. */
    while (atomic_load_explicit(&l->state, memory_order_relaxed)) sched_yield();
  }
}
