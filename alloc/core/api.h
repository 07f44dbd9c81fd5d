/* Bodies shared by the hk_ API (alloc.c) and the libc names (override.c).
 * `func` names the entry point the program called, for misuse reports. */
#ifndef HAKMEM_CORE_API_H
#define HAKMEM_CORE_API_H

#include <stdbool.h>
#include <stddef.h>

void* hk_alloc_aligned(size_t align, size_t size, bool zero);
void* hk_calloc_impl(size_t count, size_t size);
void* hk_realloc_impl(void* p, size_t size, const char* func);
void* hk_reallocarray_impl(void* p, size_t count, size_t size, const char* func);
int hk_posix_memalign_impl(void** out, size_t align, size_t size);
void* hk_aligned_alloc_impl(size_t align, size_t size);
void* hk_memalign_impl(size_t align, size_t size);
void* hk_pvalloc_impl(size_t size);
void hk_free_sized_impl(void* p, size_t size, bool aligned, const char* func);

#endif
