/* operator new's failure path in the shared objects (libhakmem*.so, for
 * LD_PRELOAD): hand the request to the next operator new in symbol lookup
 * order, the C++ runtime's own (libstdc++'s or libc++'s). Any process whose
 * code calls operator new through the dynamic linker has that runtime loaded.
 * It runs the standard's loop (new_handler, then std::bad_alloc) around
 * malloc / aligned_alloc, which are hakmem's, so the outcome is the
 * standard's while libhakmem.so itself needs no C++ runtime: linking
 * new_fail.cc instead would load libstdc++ into every preloaded C program,
 * costing each about a megabyte of RSS and a slower start.
 *
 * Built with -fexceptions: the runtime's std::bad_alloc unwinds through this
 * frame and the operator's. Only ever reached after an allocation failed. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>

#include "alloc/core/print.h"

void* hk_cxx_new_failed(size_t size, size_t align, int nothrow);

void* hk_cxx_new_failed(size_t size, size_t align, int nothrow) {
  static const char nothrow_tag = 0;  /* std::nothrow_t is empty: any address serves as the reference */
  const char* name = align != 0 ? (nothrow ? "_ZnwmSt11align_val_tRKSt9nothrow_t" : "_ZnwmSt11align_val_t")
                                : (nothrow ? "_ZnwmRKSt9nothrow_t" : "_Znwm");
  void* next = dlsym(RTLD_NEXT, name);
  if (next == NULL) {
    if (nothrow) return NULL;
    /* No C++ runtime after us: nothing can throw std::bad_alloc. */
    hk_write_str(2, "hakmem: operator new failed and no C++ runtime follows libhakmem to throw std::bad_alloc\n");
    abort();
  }
  if (align != 0) {
    if (nothrow) return ((void* (*)(size_t, size_t, const void*))next)(size, align, &nothrow_tag);
    return ((void* (*)(size_t, size_t))next)(size, align);
  }
  if (nothrow) return ((void* (*)(size_t, const void*))next)(size, &nothrow_tag);
  return ((void* (*)(size_t))next)(size);
}
