/* The memory limit and THP advice with the fault-injecting backend (the
 * "fault" test variant): a purge the backend refuses loses nothing (the
 * memory stays cached and counted, the allocation that asked still
 * succeeds, the next purge gives it back), and refused advice costs only the
 * advice. */
#include <stdio.h>
#include <string.h>

#include "alloc/backends/fault.h"
#include "alloc/core/check_testing.h"
#include "alloc/core/options.h"
#include "alloc/core/os.h"
#include "alloc/include/hakmem.h"

#define MiB ((uint64_t)1 << 20)

static void touch(void* p, size_t n) {
  for (size_t off = 0; off < n; off += 4096) ((volatile char*)p)[off] = 1;
}

static void RefusedAdviceCostsOnlyTheAdvice(void) {
  hk_thp_mode saved = hk_options.params.thp;
  hk_options.params.thp = HK_THP_MADVISE;
  hk_fault_plan plan = {.ops = HK_FAULT_ADVISE, .fail_every = 1};
  hk_fault_set(&plan);
  void* big = hk_malloc(8 << 20);
  void* small[512];
  for (int i = 0; i < 512; i++) small[i] = hk_malloc(4096);
  HK_EXPECT(big != NULL, "an arena block whose chunk's advice failed");
  for (int i = 0; i < 512; i++) HK_EXPECT(small[i] != NULL, "small blocks whose segment's advice failed");
  HK_EXPECT(hk_fault_failures() >= 1, "the new chunk's advice was asked for and refused");
  touch(big, 8 << 20);
  for (int i = 0; i < 512; i++) touch(small[i], 4096);
  hk_fault_clear();
  hk_free(big);
  for (int i = 0; i < 512; i++) hk_free(small[i]);
  hk_options.params.thp = saved;
  hk_trim(0);
}

static void ARefusedPurgeLosesNothing(void) {
  /* Keep what is freed, committed, however long: only the limit purges. */
  HK_EXPECT(hk_option_set("HAKMEM_CACHE_MB", "1024") == 0 && hk_option_set("HAKMEM_RELEASE_DELAY_MS", "3600000") == 0 &&
                hk_option_set("HAKMEM_RESIDENT_TARGET_MB", "1048576") == 0,
            "options");
  void* maps[3];
  for (int i = 0; i < 3; i++) {
    maps[i] = hk_malloc(20 << 20);
    touch(maps[i], 20 << 20);
  }
  for (int i = 0; i < 3; i++) hk_free(maps[i]);
  hk_stats_t before, s;
  hk_stats_get(&before);
  HK_EXPECT(before.bytes_cached >= 60 * MiB, "the freed big blocks wait in the mapping cache");
  hk_os_set_memory_limit(before.bytes_committed + MiB);

  /* The backend refuses every unmap: the purge gives nothing back. */
  hk_fault_plan plan = {.ops = HK_FAULT_RELEASE, .fail_every = 1};
  hk_fault_set(&plan);
  void* big = hk_malloc(8 << 20);  /* a new arena chunk: reserve asks for room */
  hk_fault_clear();
  HK_EXPECT(big != NULL, "a soft limit: the allocation succeeds");
  hk_stats_get(&s);
  HK_EXPECT(s.bytes_cached == before.bytes_cached, "the refused mappings stay cached");
  HK_EXPECT(s.bytes_committed >= before.bytes_committed, "and counted as committed: nothing lost");
  HK_EXPECT(s.limit_overruns > before.limit_overruns, "counted as an overrun");
  HK_EXPECT(s.limit_purges == before.limit_purges, "no purge happened");

  /* The backend works again: the next growth purges them. */
  void* small[512];
  for (int i = 0; i < 512; i++) small[i] = hk_malloc(4096);  /* a new segment */
  hk_stats_get(&s);
  HK_EXPECT(s.limit_purges > before.limit_purges, "the next purge gives them back");
  HK_EXPECT(s.bytes_cached < before.bytes_cached, "the cache shrank");
  fprintf(stderr, "  after the refused purge: cached %llu MiB -> %llu MiB, %llu purges gave back %llu MiB\n",
          (unsigned long long)(before.bytes_cached / MiB), (unsigned long long)(s.bytes_cached / MiB),
          (unsigned long long)(s.limit_purges - before.limit_purges),
          (unsigned long long)((s.bytes_limit_purged - before.bytes_limit_purged) / MiB));
  hk_free(big);
  for (int i = 0; i < 512; i++) hk_free(small[i]);
  hk_os_set_memory_limit(0);
  hk_trim(0);
  hk_stats_get(&s);
  HK_EXPECT(s.bytes_cached == 0, "trim gives everything back afterwards");
}

int main(void) {
  hk_free(hk_malloc(1));
  HK_RUN(RefusedAdviceCostsOnlyTheAdvice);
  HK_RUN(ARefusedPurgeLosesNothing);
  return HK_TEST_RESULT();
}
