/* hakmem public API.
 *
 * hakmem replaces the C allocator when linked (//alloc:hakmem) or preloaded
 * (libhakmem.so): then malloc, free and the rest of the C API are hakmem's.
 * The hk_ functions below are the same allocator under stable names, for code
 * that links hakmem beside another allocator or wants its extensions
 * (statistics, trim). Every function is thread-safe.
 *
 * Errors: allocation failures return NULL and set errno (ENOMEM, or EINVAL for
 * a bad alignment); hk_posix_memalign returns the error code, as POSIX says.
 * Misuse (freeing a pointer hakmem did not hand out, double free, ...) prints
 * one line on stderr naming the error, the pointer and the function, then
 * aborts. */
#ifndef HAKMEM_H
#define HAKMEM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

void* hk_malloc(size_t size);
void* hk_calloc(size_t count, size_t size);
void* hk_realloc(void* p, size_t size);
void* hk_reallocarray(void* p, size_t count, size_t size);
void hk_free(void* p);
void hk_free_sized(void* p, size_t size);
void hk_free_aligned_sized(void* p, size_t alignment, size_t size);
void* hk_aligned_alloc(size_t alignment, size_t size);
int hk_posix_memalign(void** out, size_t alignment, size_t size);
void* hk_memalign(size_t alignment, size_t size);
void* hk_valloc(size_t size);
void* hk_pvalloc(size_t size);
size_t hk_malloc_usable_size(const void* p);

/* Returns 1 when p is a live or free block start, or any address inside memory
 * hakmem manages; 0 otherwise. Never aborts. */
int hk_owns(const void* p);

/* Returns free memory to the OS now: empties this thread's caches, returns
 * empty spans and segments, decommits cached memory. Returns 1 if anything was
 * released (glibc's malloc_trim convention). */
int hk_trim(size_t pad);

/* Frees what this thread can without releasing memory to the OS: collects
 * blocks other threads freed into this thread's spans and retires empty spans. */
void hk_collect(void);

/* Process-wide counters. Read with hk_stats_get(); fields are sampled with
 * relaxed atomics, so totals are consistent to within the operations in flight. */
typedef struct hk_stats {
  uint64_t bytes_reserved;      /* address space currently mapped from the OS */
  uint64_t segments_live;       /* small-object segments in use (owned or abandoned) */
  uint64_t segments_cached;     /* empty segments kept for reuse */
  uint64_t segments_abandoned;  /* segments whose thread exited, awaiting adoption */
  uint64_t large_live;          /* live large (directly mapped) allocations */
  uint64_t large_bytes;         /* bytes mapped for live large allocations */
  uint64_t threads_live;        /* threads with a heap */
  uint64_t syscalls_mmap;       /* mmap calls made by the backend */
  uint64_t syscalls_munmap;     /* munmap calls */
  uint64_t syscalls_madvise;    /* madvise calls */
  uint64_t syscalls_mprotect;   /* mprotect calls */
} hk_stats_t;

void hk_stats_get(hk_stats_t* out);

/* Writes a readable statistics report to file descriptor fd without allocating. */
void hk_stats_print(int fd);

/* The library's version string, e.g. "hakmem 0.1.0". Also a marker tests use to
 * prove hakmem is the allocator in a process. */
const char* hk_version(void);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif

#endif /* HAKMEM_H */
