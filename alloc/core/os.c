#include "alloc/core/os.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "alloc/core/counters.h"
#include "alloc/core/options.h"

static inline const hk_backend* backend(void) { return hk_active->backend; }

static inline void count(size_t bytes, int sign) {
  if (bytes != 0) hk_stat_add(&hk_stat.committed_bytes, sign * (int64_t)bytes);
}

/* ---- the memory limit ------------------------------------------------------
 * Checked before every call that grows the committed count (reserve, commit,
 * move): when committing `counted` more bytes would pass the limit, the
 * pressure handler (aged.c's, registered by init.c: this floor cannot call
 * up) gives back what the aged caches hold, oldest first. A soft limit: the
 * call goes ahead whatever the handler managed. */
static _Atomic uint64_t hk_os_limit;                 /* bytes; 0: none */
static _Atomic(hk_os_pressure_fn) hk_os_pressure;
static HK_TLS bool hk_os_in_pressure;                /* this thread runs the handler */

void hk_os_set_pressure_handler(hk_os_pressure_fn fn) {
  atomic_store_explicit(&hk_os_pressure, fn, memory_order_release);
}

void hk_os_set_memory_limit(uint64_t bytes) { atomic_store_explicit(&hk_os_limit, bytes, memory_order_relaxed); }

uint64_t hk_os_memory_limit(void) { return atomic_load_explicit(&hk_os_limit, memory_order_relaxed); }

static void make_room(size_t counted) {
  uint64_t limit = atomic_load_explicit(&hk_os_limit, memory_order_relaxed);
  if (limit == 0 || counted == 0) return;
  uint64_t committed = hk_stat_read(&hk_stat.committed_bytes);
  if (committed + counted <= limit) return;
  hk_os_pressure_fn fn = atomic_load_explicit(&hk_os_pressure, memory_order_acquire);
  /* A handler's give_back only releases and decommits, which never come
   * here; the flag keeps a future one that did from recursing. */
  if (fn != NULL && !hk_os_in_pressure) {
    hk_os_in_pressure = true;
    uint64_t given = fn(committed + counted - limit);
    hk_os_in_pressure = false;
    if (given != 0) {
      hk_stat_add(&hk_stat.limit_purges, 1);
      hk_stat_add(&hk_stat.limit_purged_bytes, (int64_t)given);
    }
  }
  if (hk_stat_read(&hk_stat.committed_bytes) + counted > limit) hk_stat_add(&hk_stat.limit_overruns, 1);
}

/* ---- backend calls ------------------------------------------------------- */
int hk_os_reserve(size_t size, size_t align, void** out, size_t counted) {
  make_room(counted);
  int err = backend()->reserve(size, align, out);
  if (err == 0) count(counted, +1);
  /* Never, for any mapping that can hold a huge page: a process told not to
   * use them must not get them for its big blocks either. */
  if (err == 0 && hk_options.params.thp == HK_THP_NEVER && size >= HK_HUGE_PAGE)
    hk_os_advise(*out, size, HK_ADVISE_NOHUGEPAGE);
  return err;
}

void hk_os_advise_dense(void* p, size_t size) {
  if (hk_options.params.thp == HK_THP_MADVISE) hk_os_advise(p, size, HK_ADVISE_HUGEPAGE);
}

int hk_os_commit(void* p, size_t size, size_t counted) {
  make_room(counted);
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
  make_room(new_size - old_size);
  int err = backend()->move(old, old_size, dst, new_size);
  if (err == 0) count(new_size - old_size, +1);
  return err;
}

int hk_os_advise(void* p, size_t size, hk_advice advice) {
  if (backend()->advise == NULL) return ENOSYS;
  return backend()->advise(p, size, advice);
}

bool hk_os_resident(void* p, size_t size, unsigned char* vec) {
  return backend()->resident != NULL && backend()->resident(p, size, vec) == 0;
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

/* ---- the cgroup's memory limit ----------------------------------------------
 * Read at start-up, before anything is allocated: open/read into stack
 * buffers, no stdio. */

/* Appends s to buf (of cap bytes, NUL-terminated at *len); false when it
 * does not fit. */
static bool path_add(char* buf, size_t cap, size_t* len, const char* s, size_t n) {
  if (*len + n + 1 > cap) return false;
  memcpy(buf + *len, s, n);
  *len += n;
  buf[*len] = 0;
  return true;
}

/* Reads up to cap - 1 bytes of the file at path, NUL-terminated; -1 when it
 * cannot be opened or read. */
static ssize_t read_small_file(const char* path, char* buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t n = 0;
  while (n < cap - 1) {
    ssize_t r = read(fd, buf + n, cap - 1 - n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    n += (size_t)r;
  }
  close(fd);
  buf[n] = 0;
  return (ssize_t)n;
}

/* Values at or above this mean "no limit" (cgroup v1 writes a page-rounded
 * LONG_MAX; nobody limits a process to 4 EiB). */
#define HK_NO_LIMIT_ABOVE ((uint64_t)1 << 62)

/* The limit a memory.max / memory.limit_in_bytes file says: 0 for "max",
 * unreadable or no limit. */
static uint64_t limit_file_value(const char* path) {
  char buf[64];
  if (read_small_file(path, buf, sizeof(buf)) <= 0) return 0;
  uint64_t v = 0;
  const char* s = buf;
  if (*s < '0' || *s > '9') return 0;  /* "max" */
  for (; *s >= '0' && *s <= '9'; s++) {
    if (v > (UINT64_MAX - 9) / 10) return 0;
    v = v * 10 + (uint64_t)(*s - '0');
  }
  return v >= HK_NO_LIMIT_ABOVE ? 0 : v;
}

/* The smallest limit of `file` in dir + cgroup_path and every ancestor up
 * to dir itself (a parent's limit binds its children too); 0 for none. The
 * walk also finds the limit when the cgroup path is not visible under dir
 * (a container whose mount shows only its own cgroup as the root). */
static uint64_t walk_limits(const char* dir, const char* cgroup_path, size_t path_len, const char* file) {
  char path[1024];
  uint64_t best = 0;
  for (;;) {
    size_t len = 0;
    path[0] = 0;
    bool ok = path_add(path, sizeof(path), &len, dir, strlen(dir)) &&
              path_add(path, sizeof(path), &len, cgroup_path, path_len) &&
              path_add(path, sizeof(path), &len, "/", 1) && path_add(path, sizeof(path), &len, file, strlen(file));
    if (ok) {
      uint64_t v = limit_file_value(path);
      if (v != 0 && (best == 0 || v < best)) best = v;
    }
    if (path_len == 0) break;
    while (path_len > 0 && cgroup_path[path_len - 1] != '/') path_len--;  /* to the parent */
    if (path_len > 0) path_len--;                                          /* drop the '/' */
  }
  return best;
}

/* Whether the comma-separated list [s, s+n) names `want`. */
static bool list_has(const char* s, size_t n, const char* want) {
  size_t w = strlen(want);
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && s[j] != ',') j++;
    if (j - i == w && memcmp(s + i, want, w) == 0) return true;
    i = j + 1;
  }
  return false;
}

uint64_t hk_os_cgroup_limit(const char* proc_self_cgroup, const char* cgroup_root) {
  char lines[4096];
  if (read_small_file(proc_self_cgroup, lines, sizeof(lines)) <= 0) return 0;
  char dir[512];
  uint64_t best = 0;
  /* Lines "id:controllers:path": v2 is "0::/path", v1's memory controller
   * a line whose list names "memory". */
  for (char* line = lines; *line;) {
    char* end = line;
    while (*end && *end != '\n') end++;
    char* c1 = line;
    while (c1 < end && *c1 != ':') c1++;
    char* c2 = c1 < end ? c1 + 1 : end;
    while (c2 < end && *c2 != ':') c2++;
    if (c2 < end) {
      const char* ctrl = c1 + 1;
      size_t ctrl_len = (size_t)(c2 - ctrl);
      const char* path = c2 + 1;
      size_t path_len = (size_t)(end - path);
      while (path_len > 0 && path[path_len - 1] == '/') path_len--;  /* "/" is the root: "" */
      uint64_t v = 0;
      size_t len = 0;
      if (ctrl_len == 0 && c1 - line == 1 && line[0] == '0') {
        /* cgroup v2: the unified hierarchy is the root itself, or
         * root/unified on hybrid systems. */
        if (path_add(dir, sizeof(dir), &len, cgroup_root, strlen(cgroup_root))) {
          v = walk_limits(dir, path, path_len, "memory.max");
          if (v == 0 && path_add(dir, sizeof(dir), &len, "/unified", 8)) v = walk_limits(dir, path, path_len, "memory.max");
        }
      } else if (list_has(ctrl, ctrl_len, "memory")) {
        if (path_add(dir, sizeof(dir), &len, cgroup_root, strlen(cgroup_root)) &&
            path_add(dir, sizeof(dir), &len, "/memory", 7))
          v = walk_limits(dir, path, path_len, "memory.limit_in_bytes");
      }
      if (v != 0 && (best == 0 || v < best)) best = v;
    }
    line = *end ? end + 1 : end;
  }
  return best;
}

void hk_os_limit_init(void) {
  uint64_t mb = hk_options.params.memory_limit_mb;
  uint64_t bytes = mb == HK_MEMORY_LIMIT_CGROUP ? hk_os_cgroup_limit("/proc/self/cgroup", "/sys/fs/cgroup") : mb << 20;
  hk_os_set_memory_limit(bytes);
}
