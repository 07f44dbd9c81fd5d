/* Memcheck annotations. With HAKMEM_VALGRIND=1 (--config=valgrind) hakmem
 * tells valgrind's memcheck which memory is a live block, so memcheck reports
 * use-after-free, leaks and invalid reads of hakmem blocks as it does for
 * glibc's. Otherwise every macro is empty: zero cost in other builds.
 *
 * A free block is "no access" for memcheck; hakmem's own free-list link
 * inside it is opened just around the allocator's read or write of it. */
#ifndef HAKMEM_CORE_ANNOTATE_H
#define HAKMEM_CORE_ANNOTATE_H

#if defined(HAKMEM_VALGRIND) && HAKMEM_VALGRIND
#include <valgrind/memcheck.h>
/* A block of `size` usable bytes was handed out. */
#define HK_VG_ALLOC(p, size) VALGRIND_MALLOCLIKE_BLOCK((p), (size), 0, 0)
/* A block was freed: from now on any access by the program is an error. */
#define HK_VG_FREE(p) VALGRIND_FREELIKE_BLOCK((p), 0)
/* The allocator is about to touch / is done touching a free block's link. */
#define HK_VG_LINK_OPEN(b) VALGRIND_MAKE_MEM_DEFINED((b), 2 * sizeof(void*))
#define HK_VG_LINK_CLOSE(b) VALGRIND_MAKE_MEM_NOACCESS((b), 2 * sizeof(void*))
/* Fresh blocks are carved: they are free blocks, so no access, whatever the
 * memory held before (it may have been blocks of another class). */
#define HK_VG_CARVE(p, size) VALGRIND_MAKE_MEM_NOACCESS((p), (size))
/* True when running under valgrind (realloc then never resizes in place, so
 * memcheck's view of block sizes stays exact). */
#define HK_VG_RUNNING() RUNNING_ON_VALGRIND
/* The allocator itself reads or writes a free block's body (checked builds). */
#define HK_VG_BODY_OPEN(p, size) VALGRIND_MAKE_MEM_DEFINED((p), (size))
#define HK_VG_BODY_CLOSE(p, size) VALGRIND_MAKE_MEM_NOACCESS((p), (size))
#else
#define HK_VG_ALLOC(p, size) ((void)0)
#define HK_VG_FREE(p) ((void)0)
#define HK_VG_LINK_OPEN(b) ((void)0)
#define HK_VG_LINK_CLOSE(b) ((void)0)
#define HK_VG_CARVE(p, size) ((void)0)
#define HK_VG_RUNNING() 0
#define HK_VG_BODY_OPEN(p, size) ((void)0)
#define HK_VG_BODY_CLOSE(p, size) ((void)0)
#endif

#endif
