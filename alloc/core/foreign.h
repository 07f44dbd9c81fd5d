/* Foreign blocks: pointers hakmem never handed out that free() and realloc()
 * may still be given in a correct program, because another allocator made
 * them before hakmem was reached or behind its back:
 *   - glibc's own heap: a block of glibc's malloc in the main program's
 *     brk heap (a library that kept glibc's malloc, through
 *     dlsym(RTLD_NEXT, "malloc") or from before hakmem was loaded);
 *   - ld.so's start-up allocator: the blocks ld.so hands out before any
 *     malloc is reachable, carved first from the rest of the last page of
 *     its own data segment.
 * Each is recognised only where it provably lives, so a wild pointer
 * anywhere else is still reported as "not from hakmem" by the caller.
 *
 * OS floor: reads the process's own layout (auxiliary vector, program
 * break, /proc/self/stat) and resolves glibc's free through the dynamic
 * linker, once, on the first pointer that is not hakmem's. Never on the
 * fast path; called only for pointers the segment map says are not hakmem's. */
#ifndef HAKMEM_CORE_FOREIGN_H
#define HAKMEM_CORE_FOREIGN_H

#include "alloc/core/base.h"

HK_HIDDEN_BEGIN
typedef enum {
  HK_FOREIGN_NONE = 0, /* nothing provable: the caller reports misuse */
  HK_FOREIGN_GLIBC,    /* an in-use chunk of glibc's brk heap */
  HK_FOREIGN_LDSO,     /* inside ld.so's start-up allocator's first area */
} hk_foreign_kind;

/* What p is; p must not be hakmem's (segment map: nothing there). */
hk_foreign_kind hk_foreign_kind_of(const void* p);
/* Bytes of p that may be read: glibc's malloc_usable_size, or for ld.so's
 * allocator (which keeps no sizes) what is left of its area after p. */
size_t hk_foreign_readable(const void* p, hk_foreign_kind kind);
/* Usable bytes the owner promises (glibc's malloc_usable_size); 0 for
 * ld.so's allocator, which keeps no sizes. */
size_t hk_foreign_usable(const void* p, hk_foreign_kind kind);
/* Gives p back to its allocator: glibc's free, or, for ld.so's allocator,
 * which cannot take blocks back, nothing. Both counted. */
void hk_foreign_free(void* p, hk_foreign_kind kind);

/* Since start: blocks handed to glibc's free, and ld.so blocks left alone. */
extern _Atomic uint64_t hk_foreign_glibc_frees;
extern _Atomic uint64_t hk_foreign_ldso_ignored;
HK_HIDDEN_END

#endif
