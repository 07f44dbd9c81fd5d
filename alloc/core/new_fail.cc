// What operator new does when hakmem has no memory (new_delete.c calls this
// only after an allocation failed): the standard's loop. While a new_handler
// is installed, call it and retry; without one, throw std::bad_alloc, or
// return nullptr for the nothrow forms (which also return nullptr when the
// handler itself throws).
#include <cstddef>
#include <new>

#include "alloc/include/hakmem.h"

extern "C" void* hk_cxx_new_failed(std::size_t size, std::size_t align, int nothrow) {
  for (;;) {
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) {
      if (nothrow) return nullptr;
      throw std::bad_alloc();
    }
    if (nothrow) {
      try {
        handler();
      } catch (...) {
        return nullptr;
      }
    } else {
      handler();
    }
    void* p = align != 0 ? hk_aligned_alloc(align, size) : hk_malloc(size);
    if (p != nullptr) return p;
  }
}
