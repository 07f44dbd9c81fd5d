/* Linux backend: mmap, munmap, madvise and mremap, nothing else.
 *
 * Alignment: the core wants 4 MiB-aligned segments. Mapping size+align and
 * trimming costs three syscalls, so we first ask for the address right after
 * the previous aligned mapping (a hint, never MAP_FIXED): the kernel usually
 * grants it and the mapping is aligned in one call.
 *
 * Transparent huge pages: segments are 4 MiB-aligned, so with THP in "always"
 * mode the kernel may back them with 2 MiB pages, which raises RSS for sparse
 * use. The backend gives MADV_HUGEPAGE or MADV_NOHUGEPAGE only when the core
 * asks (advise, from os.c, per the variant's THP setting); without advice
 * the kernel's mode decides. Decommitting part of a huge page splits it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mremap */
#endif
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>

#include "alloc/backends/backend.h"

hk_os_counters hk_os;

static _Atomic uintptr_t hk_next_hint;

static void* hk_mmap(void* hint, size_t size) {
  hk_os_count(mmap, 1);
  void* p = mmap(hint, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

static int hk_munmap(void* p, size_t size) {
  hk_os_count(munmap, 1);
  return munmap(p, size) == 0 ? 0 : errno;
}

static int linux_reserve(size_t size, size_t align, void** out) {
  uintptr_t hint = atomic_load_explicit(&hk_next_hint, memory_order_relaxed);
  if (hint != 0 && (hint & (align - 1)) == 0) {
    void* p = hk_mmap((void*)hint, size);
    if (p == NULL) return errno ? errno : ENOMEM;
    if (((uintptr_t)p & (align - 1)) == 0) {
      atomic_store_explicit(&hk_next_hint, (uintptr_t)p + ((size + align - 1) & ~(align - 1)), memory_order_relaxed);
      hk_os_count(reserved_bytes, size);
      *out = p;
      return 0;
    }
    hk_munmap(p, size);
  }
  /* Over-map and trim both ends. */
  size_t over = size + align;
  if (over < size) return ENOMEM;
  uint8_t* raw = hk_mmap(NULL, over);
  if (raw == NULL) return errno ? errno : ENOMEM;
  uintptr_t aligned = ((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1);
  size_t head = aligned - (uintptr_t)raw;
  size_t tail = over - head - size;
  if (head) hk_munmap(raw, head);
  if (tail) hk_munmap((void*)(aligned + size), tail);
  atomic_store_explicit(&hk_next_hint, aligned + ((size + align - 1) & ~(align - 1)), memory_order_relaxed);
  hk_os_count(reserved_bytes, size);
  *out = (void*)aligned;
  return 0;
}

static int linux_release(void* p, size_t size) {
  int err = hk_munmap(p, size);
  if (err == 0) hk_os_count(reserved_bytes, -(int64_t)(size));
  return err;
}

/* First touch commits on Linux: nothing to do, no syscall. */
static int linux_commit(void* p, size_t size) {
  (void)p; (void)size;
  return 0;
}

static int linux_decommit(void* p, size_t size, hk_decommit_mode mode) {
  if (mode == HK_DECOMMIT_OFF || size == 0) return 0;
  hk_os_count(madvise, 1);
  if (mode == HK_DECOMMIT_FREE) {
    hk_os_count(madvise_free, 1);
    if (madvise(p, size, MADV_FREE) == 0) return 0;
    if (errno != EINVAL) return errno;
    /* Kernels before 4.5 lack MADV_FREE. */
    hk_os_count(madvise, 1);
  }
  hk_os_count(madvise_dontneed, 1);
  return madvise(p, size, MADV_DONTNEED) == 0 ? 0 : errno;
}

/* mremap moves page table entries: a block of any size changes address
 * without its bytes being copied or faulted in again. */
static int linux_move(void* old, size_t old_size, void* dst, size_t new_size) {
  hk_os_count(mremap, 1);
  if (mremap(old, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, dst) == MAP_FAILED) return errno;
  hk_os_count(reserved_bytes, -(int64_t)old_size);
  return 0;
}

static int linux_advise(void* p, size_t size, hk_advice advice) {
  hk_os_count(madvise, 1);
  if (advice == HK_ADVISE_HUGEPAGE) {
    hk_os_count(madvise_hugepage, 1);
    return madvise(p, size, MADV_HUGEPAGE) == 0 ? 0 : errno;
  }
  hk_os_count(madvise_nohugepage, 1);
  return madvise(p, size, MADV_NOHUGEPAGE) == 0 ? 0 : errno;
}

static int linux_resident(void* p, size_t size, unsigned char* vec) {
  hk_os_count(mincore, 1);
  return mincore(p, size, vec) == 0 ? 0 : errno;
}

const hk_backend hk_backend_linux = {
    .name = "linux",
    .reserve = linux_reserve,
    .commit = linux_commit,
    .decommit = linux_decommit,
    .release = linux_release,
    .move = linux_move,
    .advise = linux_advise,
    .resident = linux_resident,
};
