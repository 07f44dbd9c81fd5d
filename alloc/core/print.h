/* Text to a file descriptor without allocating: misuse reports, the options
 * printout and the statistics report all run where stdio (which may call
 * malloc) could recurse or deadlock. Ground floor: calls nothing of the core. */
#ifndef HAKMEM_CORE_PRINT_H
#define HAKMEM_CORE_PRINT_H

#include "alloc/core/base.h"

HK_HIDDEN_BEGIN
void hk_write_str(int fd, const char* s);
void hk_write_u64(int fd, uint64_t v);
void hk_write_hex(int fd, uintptr_t v);  /* 0x-prefixed, lower case */
/* Copies pattern to out (cap bytes) with each "%p" replaced by the process
 * id: the file names of HAKMEM_STATS_FILE and HAKMEM_PROF_FILE. Returns 0,
 * or -1 when it did not fit (out then holds a truncated name). */
int hk_expand_pid(char* out, size_t cap, const char* pattern);
HK_HIDDEN_END

#endif
