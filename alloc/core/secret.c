#include "alloc/core/secret.h"

#include <sys/random.h>

/* getrandom() when the kernel has it; otherwise the cycle counter mixed with
 * ASLR'd addresses, still unknown to a program that did not read hakmem's
 * memory. Its top bit is set: a zeroed free-list link then decodes to an
 * offset of 2^63 or more, never inside a span (span.h), and a tag
 * (address ^ secret) is never a user-space address, so a live block holding
 * a pointer in its second word is never taken for a free one. */
void hk_secret_init(void) {
  uintptr_t s = 0;
  if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s)) {
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    s = (((uintptr_t)hi << 32) | lo) ^ (uintptr_t)&s ^ ((uintptr_t)&hk_hot.secret << 17);
    s *= 0x9E3779B97F4A7C15ull;
  }
  hk_hot.secret = s | 1 | ((uintptr_t)1 << 63);
}
