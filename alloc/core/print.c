#include "alloc/core/print.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

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

int hk_expand_pid(char* out, size_t cap, const char* pattern) {
  size_t n = 0;
  for (const char* p = pattern; *p; p++) {
    char pid[24];
    const char* piece = pid;
    if (p[0] == '%' && p[1] == 'p') {
      char* q = pid + sizeof(pid);
      *--q = 0;
      uint64_t v = (uint64_t)getpid();
      do { *--q = (char)('0' + v % 10); v /= 10; } while (v);
      piece = q;
      p++;
    } else {
      pid[0] = *p;
      pid[1] = 0;
    }
    for (; *piece; piece++) {
      if (n + 1 >= cap) {
        out[n] = 0;
        return -1;
      }
      out[n++] = *piece;
    }
  }
  out[n] = 0;
  return 0;
}
