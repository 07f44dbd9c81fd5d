/* Big mappings: a block the arena does not take (above HK_ARENA_MAX_BLOCK,
 * or aligned beyond an arena page) is its own mapping, 4 MiB-aligned, with a
 * header at its base. Freed mappings wait in an aged cache for reuse.
 * Slow paths only. */
#ifndef HAKMEM_CORE_MAPPING_H
#define HAKMEM_CORE_MAPPING_H

#include "alloc/core/base.h"

HK_HIDDEN_BEGIN
/* A mapped block of size bytes aligned to align (< HK_SEGMENT_SIZE: the
 * header is found at the 4 MiB boundary below the pointer); zeroed if
 * `zero`. NULL with errno ENOMEM when it cannot be mapped. */
void* hk_mapping_alloc(size_t size, size_t align, bool zero);
/* Frees the live mapped block at p, or reports misuse. */
void hk_mapping_free(void* p, const char* func);
/* Usable bytes of the live mapped block at p, else 0. */
size_t hk_mapping_usable(const void* p);
/* Makes the live mapped block at p hold size bytes without copying it:
 * shrinking unmaps the pages past it (same pointer), growing moves its pages
 * (backend move: mremap on Linux) to a larger mapping, with no page fault.
 * Returns the block's pointer, or NULL (block unchanged) when p is not a
 * mapped block, the backend could not, or a cached mapping could take the
 * contents by copy instead. */
void* hk_mapping_resize(void* p, size_t size);
HK_HIDDEN_END

#endif
