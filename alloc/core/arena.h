/* The arena: blocks above the small classes (HK_SMALL_MAX) up to
 * HK_ARENA_MAX_BLOCK (16 MiB) are runs of 64 KiB arena pages inside 32 MiB
 * chunks shared by every thread. A freed run joins its free neighbours, and
 * any later request that fits reuses it, whatever sizes it was cut for
 * before: a program that churns big buffers of varied sizes keeps reusing the
 * same resident pages instead of mapping fresh memory and faulting in every
 * 4 KiB each time.
 *
 * Free runs that still hold committed pages wait in an aged cache; when the
 * release policy says they waited long enough they are purged
 * (MADV_DONTNEED), and a chunk left wholly free and purged is unmapped. The
 * decommit policy can ask for part of a freed run to go back at once.
 *
 * One lock (the cache's) guards every chunk: a big block costs at least a
 * page fault or a memset per 4 KiB of it, so the few dozen instructions under
 * the lock are noise, and any thread frees any block without a remote-free
 * protocol. Nothing here runs on a fast path. */
#ifndef HAKMEM_CORE_ARENA_H
#define HAKMEM_CORE_ARENA_H

#include "alloc/core/base.h"
#include "alloc/core/size_class.h"

HK_HIDDEN_BEGIN
#define HK_ARENA_PAGE_SHIFT 16                        /* 64 KiB arena pages: a block wastes at most one */
#define HK_ARENA_PAGE ((size_t)1 << HK_ARENA_PAGE_SHIFT)
#define HK_ARENA_SHIFT 25                             /* 32 MiB chunks */
#define HK_ARENA_SIZE ((size_t)1 << HK_ARENA_SHIFT)
#define HK_ARENA_MAX_BLOCK (HK_ARENA_SIZE / 2)

/* A block of size bytes (in (0, HK_ARENA_MAX_BLOCK]), aligned to an arena
 * page; zeroed if `zero`. `growing` (realloc moving a block that grows):
 * placed, among runs as warm, where as many free pages follow it, so the
 * next growth happens in place (hk_arena_resize) instead of another copy.
 * NULL (errno untouched) when the backend refused a chunk or a commit. */
void* hk_arena_alloc(size_t size, bool zero, bool growing);
/* Frees the live arena block at p, or reports misuse (func names the entry
 * point the program called). */
void hk_arena_free(void* p, const char* func);
/* Makes the live arena block at p hold size bytes (in (HK_SMALL_MAX,
 * HK_ARENA_MAX_BLOCK]) where it is: shrinking gives back its tail, growing
 * takes the free pages right after it. False (block unchanged) when it
 * cannot grow in place. */
bool hk_arena_resize(void* p, size_t size);
/* Usable bytes of the live arena block at p, else 0 with *freed telling
 * whether p is the start of a freed one. */
size_t hk_arena_usable(const void* p, bool* freed);
HK_HIDDEN_END

#endif
