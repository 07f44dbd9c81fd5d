#include "alloc/core/os.h"

#include <errno.h>

#include "alloc/core/counters.h"
#include "alloc/core/options.h"

static inline const hk_backend* backend(void) { return hk_active->backend; }

static inline void count(size_t bytes, int sign) {
  if (bytes != 0) hk_stat_add(&hk_stat.committed_bytes, sign * (int64_t)bytes);
}

int hk_os_reserve(size_t size, size_t align, void** out, size_t counted) {
  int err = backend()->reserve(size, align, out);
  if (err == 0) count(counted, +1);
  return err;
}

int hk_os_commit(void* p, size_t size, size_t counted) {
  int err = backend()->commit(p, size);
  if (err == 0) count(counted, +1);
  return err;
}

int hk_os_decommit(void* p, size_t size, hk_decommit_mode mode, size_t counted) {
  int err = backend()->decommit(p, size, mode);
  if (err == 0) count(counted, -1);
  return err;
}

int hk_os_release(void* p, size_t size, size_t counted) {
  int err = backend()->release(p, size);
  if (err == 0) count(counted, -1);
  return err;
}

int hk_os_move(void* old, size_t old_size, void* dst, size_t new_size) {
  if (backend()->move == NULL) return ENOSYS;
  int err = backend()->move(old, old_size, dst, new_size);
  if (err == 0) count(new_size - old_size, +1);
  return err;
}

size_t hk_os_decommit_wanted(size_t bytes) {
  uint64_t committed = hk_stat_read(&hk_stat.committed_bytes);
  size_t n = hk_active->decommit->decommit_bytes(&hk_options.params, bytes, committed);
  return n < bytes ? n : bytes;
}

hk_decommit_mode hk_os_decommit_mode(void) {
  hk_decommit_mode m = hk_options.params.decommit_mode;
  return m == HK_DECOMMIT_OFF ? HK_DECOMMIT_DONTNEED : m;
}
