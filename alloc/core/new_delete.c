/* C++ operator new and delete, every form (plain, array, nothrow, sized,
 * aligned, aligned+sized), routed straight to hakmem's inlined fast paths.
 *
 * Why C: the fast paths live in alloc_inline.h, which is C11 (_Atomic) and
 * cannot be included from C++. The operators are defined here under their
 * Itanium C++ ABI names (what g++ and clang++ emit on Linux for LP64), so
 * `new T` costs the same as malloc, with no extra call: libstdc++'s own
 * operator new would call malloc through the PLT. Only the failure path is
 * C++ (new_fail.cc: new_handler loop, std::bad_alloc), and this file is
 * built with -fexceptions so an exception thrown there unwinds through the
 * operator's frame.
 *
 * Sized deletes ignore the size: hakmem finds a block's size from its
 * address, and trusting a wrong size could only do harm. Aligned deletes
 * ignore the alignment for the same reason.
 *
 * Linked by //alloc:hakmem_cxx (and any variant plus //alloc/core:new_delete);
 * see README "C++" for why libhakmem.so does or does not carry it. */
#include <stddef.h>

#include "alloc/core/alloc_inline.h"
#include "alloc/core/api.h"
#include "alloc/core/free.h"

_Static_assert(sizeof(size_t) == 8 && sizeof(void*) == 8, "the mangled names below are those of LP64 targets");

#define HK_EXPORT __attribute__((visibility("default")))

/* new_fail.cc: calls the new_handler until it gives up, then throws
 * std::bad_alloc, or returns NULL for the nothrow forms. align 0: plain. */
void* hk_cxx_new_failed(size_t size, size_t align, int nothrow);

HK_INLINE void* cxx_new(size_t size, int nothrow) {
  void* p = hk_malloc_inline(size);
  if (hk_likely(p != NULL)) return p;
  return hk_cxx_new_failed(size, 0, nothrow);
}

HK_INLINE void* cxx_new_aligned(size_t size, size_t align, int nothrow) {
  void* p = hk_alloc_aligned(align, size, false);
  if (hk_likely(p != NULL)) return p;
  return hk_cxx_new_failed(size, align, nothrow);
}

HK_INLINE void cxx_delete(void* p) { hk_free_inline(p, "operator delete"); }

/* operator new / new[] (size_t), (size_t, nothrow_t const&) */
HK_EXPORT void* _Znwm(size_t n) { return cxx_new(n, 0); }
HK_EXPORT void* _Znam(size_t n) { return cxx_new(n, 0); }
HK_EXPORT void* _ZnwmRKSt9nothrow_t(size_t n, const void* nt) { (void)nt; return cxx_new(n, 1); }
HK_EXPORT void* _ZnamRKSt9nothrow_t(size_t n, const void* nt) { (void)nt; return cxx_new(n, 1); }
/* (size_t, align_val_t), (size_t, align_val_t, nothrow_t const&) */
HK_EXPORT void* _ZnwmSt11align_val_t(size_t n, size_t a) { return cxx_new_aligned(n, a, 0); }
HK_EXPORT void* _ZnamSt11align_val_t(size_t n, size_t a) { return cxx_new_aligned(n, a, 0); }
HK_EXPORT void* _ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t a, const void* nt) {
  (void)nt;
  return cxx_new_aligned(n, a, 1);
}
HK_EXPORT void* _ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t a, const void* nt) {
  (void)nt;
  return cxx_new_aligned(n, a, 1);
}

/* operator delete / delete[]: (void*), (void*, nothrow_t const&), (void*, size_t) */
HK_EXPORT void _ZdlPv(void* p) { cxx_delete(p); }
HK_EXPORT void _ZdaPv(void* p) { cxx_delete(p); }
HK_EXPORT void _ZdlPvRKSt9nothrow_t(void* p, const void* nt) { (void)nt; cxx_delete(p); }
HK_EXPORT void _ZdaPvRKSt9nothrow_t(void* p, const void* nt) { (void)nt; cxx_delete(p); }
HK_EXPORT void _ZdlPvm(void* p, size_t n) { (void)n; cxx_delete(p); }
HK_EXPORT void _ZdaPvm(void* p, size_t n) { (void)n; cxx_delete(p); }
/* (void*, align_val_t), (void*, align_val_t, nothrow_t const&), (void*, size_t, align_val_t) */
HK_EXPORT void _ZdlPvSt11align_val_t(void* p, size_t a) { (void)a; cxx_delete(p); }
HK_EXPORT void _ZdaPvSt11align_val_t(void* p, size_t a) { (void)a; cxx_delete(p); }
HK_EXPORT void _ZdlPvSt11align_val_tRKSt9nothrow_t(void* p, size_t a, const void* nt) {
  (void)a; (void)nt;
  cxx_delete(p);
}
HK_EXPORT void _ZdaPvSt11align_val_tRKSt9nothrow_t(void* p, size_t a, const void* nt) {
  (void)a; (void)nt;
  cxx_delete(p);
}
HK_EXPORT void _ZdlPvmSt11align_val_t(void* p, size_t n, size_t a) { (void)n; (void)a; cxx_delete(p); }
HK_EXPORT void _ZdaPvmSt11align_val_t(void* p, size_t n, size_t a) { (void)n; (void)a; cxx_delete(p); }
