/* The C library's allocation names, routed to hakmem. Linked by every
 * variant that replaces malloc (//alloc:hakmem*, libhakmem*.so); not by
 * //alloc:hakmem_api, which offers only the hk_ names. malloc and free inline
 * the fast path here rather than calling hk_malloc. */
#include <stddef.h>

#include "alloc/core/alloc_inline.h"
#include "alloc/core/api.h"

#define HK_EXPORT __attribute__((visibility("default")))

HK_EXPORT void* malloc(size_t size) { return hk_malloc_inline(size); }
HK_EXPORT void free(void* p) { hk_free_inline(p, "free"); }
HK_EXPORT void cfree(void* p) { hk_free_inline(p, "cfree"); }
HK_EXPORT void* calloc(size_t count, size_t size) { return hk_calloc_impl(count, size); }
HK_EXPORT void* realloc(void* p, size_t size) { return hk_realloc_impl(p, size, "realloc"); }
HK_EXPORT void* reallocarray(void* p, size_t count, size_t size) {
  return hk_reallocarray_impl(p, count, size, "reallocarray");
}
HK_EXPORT void free_sized(void* p, size_t size) { hk_free_sized_impl(p, size, "free_sized"); }
HK_EXPORT void free_aligned_sized(void* p, size_t align, size_t size) {
  (void)align;
  hk_free_sized_impl(p, size, "free_aligned_sized");
}
HK_EXPORT int posix_memalign(void** out, size_t align, size_t size) {
  return hk_posix_memalign_impl(out, align, size);
}
HK_EXPORT void* aligned_alloc(size_t align, size_t size) { return hk_aligned_alloc_impl(align, size); }
HK_EXPORT void* memalign(size_t align, size_t size) { return hk_memalign_impl(align, size); }
HK_EXPORT void* valloc(size_t size) { return hk_alloc_aligned(HK_OS_PAGE, size, false); }
HK_EXPORT void* pvalloc(size_t size) { return hk_pvalloc_impl(size); }
HK_EXPORT size_t malloc_usable_size(void* p) { return hk_usable_size_checked(p, "malloc_usable_size"); }
