/* Statistics: counters the slow paths maintain (stats_internal.h) plus the
 * backend's syscall counts, read without allocating. */
#include "alloc/core/internal.h"
#include "alloc/core/options.h"
#include "alloc/core/stats_internal.h"

hk_stat_counters hk_stat;

static uint64_t nonneg(_Atomic int64_t* c) {
  int64_t v = atomic_load_explicit(c, memory_order_relaxed);
  return v < 0 ? 0 : (uint64_t)v;
}

void hk_stats_get(hk_stats_t* out) {
  out->bytes_reserved = hk_os_read(reserved_bytes);
  out->segments_live = nonneg(&hk_stat.segments_live);
  out->segments_cached = nonneg(&hk_stat.segments_cached);
  out->segments_abandoned = hk_abandoned_segments();
  out->large_live = nonneg(&hk_stat.large_live);
  out->large_bytes = nonneg(&hk_stat.large_bytes);
  out->threads_live = nonneg(&hk_stat.threads_live);
  out->syscalls_mmap = hk_os_read(mmap);
  out->syscalls_munmap = hk_os_read(munmap);
  out->syscalls_madvise = hk_os_read(madvise);
  out->syscalls_mprotect = hk_os_read(mprotect);
}

static void line(int fd, const char* name, uint64_t v) {
  hk_write_str(fd, "hakmem:   ");
  hk_write_str(fd, name);
  hk_write_str(fd, " ");
  hk_write_u64(fd, v);
  hk_write_str(fd, "\n");
}

void hk_stats_print(int fd) {
  hk_stats_t s;
  hk_stats_get(&s);
  hk_write_str(fd, "hakmem: statistics (");
  hk_write_str(fd, hk_version());
  hk_write_str(fd, ", variant ");
  hk_write_str(fd, hk_active->name);
  hk_write_str(fd, ")\n");
  line(fd, "bytes_reserved", s.bytes_reserved);
  line(fd, "segments_live", s.segments_live);
  line(fd, "segments_cached", s.segments_cached);
  line(fd, "segments_abandoned", s.segments_abandoned);
  line(fd, "large_live", s.large_live);
  line(fd, "large_bytes", s.large_bytes);
  line(fd, "threads_live", s.threads_live);
  line(fd, "syscalls_mmap", s.syscalls_mmap);
  line(fd, "syscalls_munmap", s.syscalls_munmap);
  line(fd, "syscalls_madvise", s.syscalls_madvise);
  line(fd, "syscalls_mprotect", s.syscalls_mprotect);
}
