/* The memory limit, speed variant (keeps everything it
 * frees for 10 s, up to 1 GiB: without a limit nothing goes back):
 *   - the cgroup's limit read from files given by path (v2, v1, hybrid,
 *     ancestors, "max", a container's root-only view, missing and bad files);
 *   - hk_aged_purge: oldest first across caches, caches locked by anyone
 *     (the caller included) left out, a refused give-back kept;
 *   - the OS floor asks it before committing past the limit, not below it;
 *   - the target: under a 256 MB limit, repeated 200 MB bursts of
 *     small blocks, arena blocks and big blocks keep committed memory at or
 *     below the limit whenever something was left to purge.
 * Prints the peak committed per burst with and without the limit. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc/core/aged.h"
#include "alloc/core/check_testing.h"
#include "alloc/core/counters.h"
#include "alloc/core/init.h"
#include "alloc/core/options.h"
#include "alloc/core/os.h"
#include "alloc/include/hakmem.h"

#define MiB ((uint64_t)1 << 20)

/* ---- cgroup files ------------------------------------------------------------ */
static char root[512];

static void put(const char* rel, const char* text) {
  char path[1024];
  snprintf(path, sizeof(path), "%s/%s", root, rel);
  /* mkdir -p of the parent */
  for (char* p = path + strlen(root) + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    mkdir(path, 0755);
    *p = '/';
  }
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
    fprintf(stderr, "cannot write %s\n", path);
    exit(2);
  }
  close(fd);
}

/* A fresh tree under $TEST_TMPDIR for one case. */
static void fresh_root(const char* name) {
  const char* tmp = getenv("TEST_TMPDIR");
  snprintf(root, sizeof(root), "%s/cgroup-%s", tmp ? tmp : "/tmp", name);
  mkdir(root, 0755);
}

static uint64_t limit_of(void) {
  char proc[600], sys[600];
  snprintf(proc, sizeof(proc), "%s/proc-self-cgroup", root);
  snprintf(sys, sizeof(sys), "%s/sys", root);
  return hk_os_cgroup_limit(proc, sys);
}

static void CgroupV2MemoryMaxOfTheOwnCgroup(void) {
  fresh_root("v2");
  put("proc-self-cgroup", "0::/system.slice/app.service\n");
  put("sys/cgroup.controllers", "cpu memory\n");
  put("sys/system.slice/app.service/memory.max", "268435456\n");
  put("sys/system.slice/memory.max", "max\n");
  HK_EXPECT(limit_of() == 256 * MiB, "v2: memory.max of the process's cgroup");
  put("sys/system.slice/memory.max", "104857600\n");
  HK_EXPECT(limit_of() == 100 * MiB, "a parent's smaller limit binds the child too");
  put("sys/system.slice/memory.max", "max\n");
  put("sys/system.slice/app.service/memory.max", "max\n");
  HK_EXPECT(limit_of() == 0, "\"max\" everywhere: no limit");
}

static void CgroupV2OnAHybridSystemIsUnderUnified(void) {
  fresh_root("hybrid");
  put("proc-self-cgroup", "4:memory:/\n1:name=systemd:/user.slice\n0::/user.slice/job\n");
  put("sys/memory/memory.limit_in_bytes", "9223372036854771712\n");
  put("sys/unified/user.slice/job/memory.max", "536870912\n");
  HK_EXPECT(limit_of() == 512 * MiB, "v2 under sys/unified; v1's page-rounded LONG_MAX means no limit");
}

static void CgroupV1MemoryLimitInBytes(void) {
  fresh_root("v1");
  put("proc-self-cgroup", "9:name=systemd:/\n5:cpuacct,memory:/docker/abc\n2:cpu:/docker/abc\n0::/\n");
  put("sys/memory/docker/abc/memory.limit_in_bytes", "1073741824\n");
  put("sys/memory/memory.limit_in_bytes", "9223372036854771712\n");
  HK_EXPECT(limit_of() == 1024 * MiB, "v1: the memory controller's line, in a list of controllers");
  put("proc-self-cgroup", "5:cpuacct,memoryx:/docker/abc\n");
  HK_EXPECT(limit_of() == 0, "\"memoryx\" is not the memory controller");
}

static void AContainerSeesOnlyItsOwnCgroupAsTheRoot(void) {
  /* Without a cgroup namespace the path is the host's, but the mount shows
   * the container's cgroup as the root: the walk up reaches its file. */
  fresh_root("container");
  put("proc-self-cgroup", "4:memory:/process_api/6fe63fe5\n");
  put("sys/memory/memory.limit_in_bytes", "402653184\n");
  HK_EXPECT(limit_of() == 384 * MiB, "the root's limit when the own path is not mounted");
}

static void MissingOrBadFilesMeanNoLimit(void) {
  fresh_root("missing");
  HK_EXPECT(limit_of() == 0, "no /proc/self/cgroup");
  put("proc-self-cgroup", "0::/a\n");
  HK_EXPECT(limit_of() == 0, "no memory.max anywhere");
  put("sys/a/memory.max", "lots\n");
  HK_EXPECT(limit_of() == 0, "a value that is no number");
  put("sys/a/memory.max", "99999999999999999999999\n");
  HK_EXPECT(limit_of() == 0, "a number past 64 bits");
  put("proc-self-cgroup", "garbage without colons");
  HK_EXPECT(limit_of() == 0, "a line that is not id:controllers:path");
}

static void TheOptionResolvesAtStartUp(void) {
  uint64_t saved = hk_options.params.memory_limit_mb;
  hk_options.params.memory_limit_mb = 256;
  hk_os_limit_init();
  HK_EXPECT(hk_os_memory_limit() == 256 * MiB, "HAKMEM_MEMORY_LIMIT_MB is in MiB");
  hk_options.params.memory_limit_mb = HK_MEMORY_LIMIT_CGROUP;
  hk_os_limit_init();
  fprintf(stderr, "  this process's cgroup limit: %llu bytes (0: none)\n", (unsigned long long)hk_os_memory_limit());
  HK_EXPECT(hk_os_memory_limit() == hk_os_cgroup_limit("/proc/self/cgroup", "/sys/fs/cgroup"),
            "cgroup: this process's own files");
  hk_options.params.memory_limit_mb = saved;
  hk_os_limit_init();
  HK_EXPECT(hk_os_memory_limit() == 0, "the speed variant has no limit");
}

/* ---- hk_aged_purge with caches of the test's own --------------------------- */
static hk_aged_entry* given[16];
static unsigned given_count;
static bool refuse;

/* A give_back that gives back what the entry counts, as an owner's would. */
static bool give(hk_aged_entry* e) {
  if (refuse) return false;
  given[given_count++] = e;
  hk_stat_add(&hk_stat.committed_bytes, -(int64_t)e->bytes);
  return true;
}

static hk_aged_cache cache_a = HK_AGED_CACHE("test a", give, NULL);
static hk_aged_cache cache_b = HK_AGED_CACHE("test b", give, NULL);

static void push(hk_aged_cache* c, hk_aged_entry* e, uint64_t since) {
  hk_aged_lock(c);
  hk_aged_push(c, e, MiB, since);
  hk_stat_add(&hk_stat.committed_bytes, (int64_t)MiB);
  hk_aged_unlock(c);
}

static void empty_test_caches(void) {
  refuse = false;
  hk_aged_purge(UINT64_MAX / 2);
  given_count = 0;
}

static void PurgeTakesTheOldestAcrossCaches(void) {
  empty_test_caches();
  hk_aged_entry a1, a2, b1, b2;
  push(&cache_a, &a1, 100);
  push(&cache_b, &b1, 200);
  push(&cache_a, &a2, 300);
  push(&cache_b, &b2, 400);
  uint64_t got = hk_aged_purge(3 * MiB);
  HK_EXPECT(got == 3 * MiB, "reports what went back");
  HK_EXPECT(given_count == 3 && given[0] == &a1 && given[1] == &b1 && given[2] == &a2,
            "oldest first, whichever cache holds it, and no more than asked");
  HK_EXPECT(cache_b.oldest == &b2 && cache_a.oldest == NULL, "the youngest stays");
  empty_test_caches();
}

static void PurgeLeavesOutACacheTheCallerHolds(void) {
  empty_test_caches();
  hk_aged_entry a1, b1;
  push(&cache_a, &a1, 100);
  push(&cache_b, &b1, 200);
  hk_aged_lock(&cache_a);  /* as the arena holds its cache's lock while it maps a chunk */
  uint64_t got = hk_aged_purge(2 * MiB);
  HK_EXPECT(got == MiB && given_count == 1 && given[0] == &b1,
            "the held cache is left out (a wait would never end), the other purged");
  HK_EXPECT(cache_a.oldest == &a1, "the held cache's entries stay");
  hk_aged_unlock(&cache_a);
  empty_test_caches();
}

static void ARefusedGiveBackStaysCountedAndCached(void) {
  empty_test_caches();
  hk_aged_entry a1;
  push(&cache_a, &a1, 100);
  uint64_t committed = hk_stat_read(&hk_stat.committed_bytes);
  uint64_t cached = hk_stat_read(&hk_stat.cached_bytes);
  refuse = true;
  HK_EXPECT(hk_aged_purge(MiB) == 0, "nothing went back");
  HK_EXPECT(cache_a.oldest == &a1 && cache_a.entries == 1, "the refused entry is kept, nothing lost");
  HK_EXPECT(hk_stat_read(&hk_stat.committed_bytes) == committed && hk_stat_read(&hk_stat.cached_bytes) == cached,
            "still counted as committed and cached");
  empty_test_caches();
}

static void TheOsFloorPurgesOnlyPastTheLimit(void) {
  empty_test_caches();
  hk_aged_entry a1, a2;
  push(&cache_a, &a1, 100);
  push(&cache_a, &a2, 200);
  static char page[4096] __attribute__((aligned(4096)));
  uint64_t committed = hk_stat_read(&hk_stat.committed_bytes);
  hk_stats_t before, after;
  hk_stats_get(&before);
  hk_os_set_memory_limit(committed + 2 * MiB);
  /* Linux commits on first touch: hk_os_commit only counts. */
  HK_EXPECT(hk_os_commit(page, sizeof(page), 2 * MiB) == 0, "commit");
  HK_EXPECT(given_count == 0, "up to the limit: nothing purged");
  HK_EXPECT(hk_os_commit(page, sizeof(page), MiB) == 0, "commit past the limit still succeeds");
  HK_EXPECT(given_count == 1 && given[0] == &a1, "past it: the oldest entry went back first, just enough");
  hk_stats_get(&after);
  HK_EXPECT(after.bytes_limit == committed + 2 * MiB, "statistics show the limit");
  HK_EXPECT(after.limit_purges == before.limit_purges + 1 && after.bytes_limit_purged == before.bytes_limit_purged + MiB,
            "statistics count the forced purge and its bytes");
  HK_EXPECT(after.limit_overruns == before.limit_overruns, "back under the limit: no overrun");
  HK_EXPECT(hk_os_commit(page, sizeof(page), 2 * MiB) == 0, "soft: commits with too little left to purge");
  hk_stats_get(&after);
  HK_EXPECT(after.limit_overruns == before.limit_overruns + 1, "an overrun is counted when not enough could go back");
  HK_EXPECT(cache_a.oldest == NULL, "everything that waited went back first");
  hk_stat_add(&hk_stat.committed_bytes, -(int64_t)(5 * MiB));  /* the test's commits */
  hk_os_set_memory_limit(0);
  empty_test_caches();
}

/* ---- the target ------------------------------------------------------- */
typedef struct burst_kind {
  const char* name;
  size_t block;
} burst_kind;

static const burst_kind kinds[] = {
    {"small 4 KiB", 4096},
    {"arena 1 MiB", 1 << 20},
    {"mapping 20 MiB", 20 << 20},
    {"small 48 KiB", 48 << 10},
    {"arena 3 MiB", 3 << 20},
};
#define KINDS (sizeof(kinds) / sizeof(kinds[0]))
#define BURST (200 * MiB)
#define LIMIT (256 * MiB)

static void* blocks[BURST / 4096];

/* One 200 MB burst: allocated and written, then freed. Returns the peak
 * committed; counts samples above the limit with something left to purge. */
static uint64_t burst(const burst_kind* k, uint64_t limit, unsigned* bad) {
  size_t n = BURST / k->block;
  uint64_t peak = 0;
  size_t sample_every = k->block >= MiB ? 1 : MiB / k->block;
  hk_stats_t s;
  for (size_t i = 0; i < n; i++) {
    blocks[i] = hk_malloc(k->block);
    if (blocks[i] == NULL) {
      fprintf(stderr, "  %s: malloc failed\n", k->name);
      (*bad)++;
      return peak;
    }
    for (size_t off = 0; off < k->block; off += 4096) ((volatile char*)blocks[i])[off] = 1;
    if (i % sample_every == 0 || i + 1 == n) {
      hk_stats_get(&s);
      if (s.bytes_committed > peak) peak = s.bytes_committed;
      /* What is cached could have been purged (nothing else is: live
       * blocks, and free slots of live segments, stay). */
      if (limit != 0 && s.bytes_committed > limit && s.bytes_cached != 0) {
        if (*bad < 5)
          fprintf(stderr, "  %s block %zu: committed %llu MiB over the limit with %llu MiB cached\n", k->name, i,
                  (unsigned long long)(s.bytes_committed / MiB), (unsigned long long)(s.bytes_cached / MiB));
        (*bad)++;
      }
    }
  }
  for (size_t i = 0; i < n; i++) hk_free(blocks[i]);
  return peak;
}

static void RepeatedBurstsStayUnderTheLimit(void) {
  empty_test_caches();
  hk_trim(0);
  /* Without a limit first: what the speed variant keeps. */
  unsigned bad = 0;
  uint64_t peak_free = 0;
  for (unsigned round = 0; round < 2; round++)
    for (unsigned k = 0; k < KINDS; k++) {
      uint64_t p = burst(&kinds[k], 0, &bad);
      if (p > peak_free) peak_free = p;
    }
  hk_stats_t s;
  hk_stats_get(&s);
  fprintf(stderr, "  no limit: peak committed %llu MiB, %llu MiB committed after the bursts\n",
          (unsigned long long)(peak_free / MiB), (unsigned long long)(s.bytes_committed / MiB));
  HK_EXPECT(peak_free > LIMIT, "without a limit the bursts together keep more than 256 MB (else this test proves nothing)");

  hk_trim(0);
  hk_stats_t before;
  hk_stats_get(&before);
  hk_os_set_memory_limit(LIMIT);
  uint64_t peak = 0;
  for (unsigned round = 0; round < 3; round++) {
    for (unsigned k = 0; k < KINDS; k++) {
      uint64_t p = burst(&kinds[k], LIMIT, &bad);
      if (p > peak) peak = p;
      if (round == 2) fprintf(stderr, "  limit 256 MiB: %-15s peak committed %llu MiB\n", kinds[k].name, (unsigned long long)(p / MiB));
    }
  }
  hk_stats_get(&s);
  fprintf(stderr,
          "  limit 256 MiB: peak committed %llu MiB; %llu forced purges gave back %llu MiB; %llu overruns; %llu MiB "
          "committed after the bursts\n",
          (unsigned long long)(peak / MiB), (unsigned long long)(s.limit_purges - before.limit_purges),
          (unsigned long long)((s.bytes_limit_purged - before.bytes_limit_purged) / MiB),
          (unsigned long long)(s.limit_overruns - before.limit_overruns), (unsigned long long)(s.bytes_committed / MiB));
  HK_EXPECT(bad == 0, "committed memory stayed at or below the limit whenever something was cached");
  HK_EXPECT(peak <= LIMIT, "these bursts always leave something to purge: the peak stays under the limit");
  HK_EXPECT(s.limit_purges > before.limit_purges, "the limit forced purges");
  hk_os_set_memory_limit(0);
  hk_trim(0);
}

/* Threads that each hold a different cache's lock when they grow (the arena
 * maps chunks under its lock, a cached mapping is committed under the
 * mapping cache's) all reach the purge at once: it must never wait for one
 * another's locks. Run under TSan too. */
static void* churn(void* arg) {
  uint32_t x = (uint32_t)(uintptr_t)arg * 2654435761u + 1;
  void* live[32] = {0};
  for (int i = 0; i < 3000; i++) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    unsigned slot = x % 32;
    if (live[slot]) hk_free(live[slot]);
    size_t size = (x >> 8) % 3 == 0 ? 4096 + (x >> 12) % 65536 : (x >> 8) % 3 == 1 ? ((x >> 12) % 4 + 1) << 20 : 17 << 20;
    live[slot] = hk_malloc(size);
    if (live[slot]) ((volatile char*)live[slot])[0] = 1;
  }
  for (int i = 0; i < 32; i++) hk_free(live[i]);
  return NULL;
}

static void ThreadsUnderALimitNeverWaitForEachOther(void) {
  hk_trim(0);
  hk_stats_t before, after;
  hk_stats_get(&before);
  hk_os_set_memory_limit(before.bytes_committed + 64 * MiB);
  pthread_t t[3];
  for (uintptr_t i = 0; i < 3; i++) pthread_create(&t[i], NULL, churn, (void*)i);
  for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
  hk_stats_get(&after);
  fprintf(stderr, "  3 threads, limit +64 MiB: %llu forced purges, %llu overruns\n",
          (unsigned long long)(after.limit_purges - before.limit_purges),
          (unsigned long long)(after.limit_overruns - before.limit_overruns));
  HK_EXPECT(after.limit_purges > before.limit_purges, "the limit forced purges while threads raced");
  hk_os_set_memory_limit(0);
  hk_trim(0);
}

int main(void) {
  hk_ensure_init();
  if (hk_options.params.release_delay_ms < 10000 || hk_options.params.cache_mb < 1024) {
    fprintf(stderr, "limit_test expects the speed variant (it keeps what it frees)\n");
    return 1;
  }
  HK_RUN(CgroupV2MemoryMaxOfTheOwnCgroup);
  HK_RUN(CgroupV2OnAHybridSystemIsUnderUnified);
  HK_RUN(CgroupV1MemoryLimitInBytes);
  HK_RUN(AContainerSeesOnlyItsOwnCgroupAsTheRoot);
  HK_RUN(MissingOrBadFilesMeanNoLimit);
  HK_RUN(TheOptionResolvesAtStartUp);
  HK_RUN(PurgeTakesTheOldestAcrossCaches);
  HK_RUN(PurgeLeavesOutACacheTheCallerHolds);
  HK_RUN(ARefusedGiveBackStaysCountedAndCached);
  HK_RUN(TheOsFloorPurgesOnlyPastTheLimit);
  HK_RUN(RepeatedBurstsStayUnderTheLimit);
  HK_RUN(ThreadsUnderALimitNeverWaitForEachOther);
  return HK_TEST_RESULT();
}
