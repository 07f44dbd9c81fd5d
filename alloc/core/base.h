/* The words every floor of the core shares: branch hints, inline and TLS
 * attributes, and the two sizes no module owns (the OS page, malloc's
 * alignment). Nothing else belongs here: each module's types live in its own
 * header (README "Design" lists the floors and what each may call).
 *
 * Every core header wraps its declarations in HK_HIDDEN_BEGIN / _END: the
 * core's symbols are hidden, so the compiler addresses them directly instead
 * of through the GOT (one load less per use on the fast paths). */
#ifndef HAKMEM_CORE_BASE_H
#define HAKMEM_CORE_BASE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The public API: its declarations give the hk_ functions default
 * visibility wherever the core defines them. */
#include "alloc/include/hakmem.h"

#define HK_HIDDEN_BEGIN _Pragma("GCC visibility push(hidden)")
#define HK_HIDDEN_END _Pragma("GCC visibility pop")

#define hk_likely(x) __builtin_expect(!!(x), 1)
#define hk_unlikely(x) __builtin_expect(!!(x), 0)
#define HK_NOINLINE __attribute__((noinline))
#define HK_INLINE static inline __attribute__((always_inline))
#define HK_TLS __thread __attribute__((tls_model("initial-exec")))

#define HK_OS_PAGE 4096u
#define HK_ALIGN 16u /* alignof(max_align_t): every block is aligned to it */

#endif
