#include "alloc/core/secret.h"

#include <sys/random.h>

uintptr_t hk_secret;

/* getrandom() when the kernel has it; otherwise the cycle counter mixed with
 * ASLR'd addresses, still unknown to a program that did not read hakmem's
 * memory. Never 0, so a zeroed word is never a tag. */
void hk_secret_init(void) {
  uintptr_t s = 0;
  if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s)) {
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    s = (((uintptr_t)hi << 32) | lo) ^ (uintptr_t)&s ^ ((uintptr_t)&hk_secret << 17);
    s *= 0x9E3779B97F4A7C15ull;
  }
  hk_secret = s | 1;
}
