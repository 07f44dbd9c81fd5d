/* hk_trim (trim.c): what it gives back and what it reports, through the hk_
 * API with the balanced variant (whose 1 s delay keeps freed memory cached
 * unless trimmed). */
#include <pthread.h>
#include <string.h>

#include "alloc/core/check_testing.h"
#include "alloc/include/hakmem.h"

static hk_stats_t stats(void) {
  hk_stats_t s;
  hk_stats_get(&s);
  return s;
}

static void ABurstFreedIsGivenBackAndReported(void) {
  hk_trim(0);
  hk_stats_t base = stats();
  void* small[4096];
  for (int i = 0; i < 4096; i++) memset(small[i] = hk_malloc(2000), 1, 2000);
  void* big = hk_malloc(40u << 20);
  memset(big, 1, 40u << 20);
  for (int i = 0; i < 4096; i++) hk_free(small[i]);
  hk_free(big);
  HK_EXPECT(stats().bytes_cached > 0, "freed memory waits in the caches within the delay");
  HK_EXPECT(hk_trim(0) == 1, "trim reports that it gave memory back");
  hk_stats_t after = stats();
  HK_EXPECT(after.bytes_cached == 0, "nothing stays cached");
  HK_EXPECT(after.bytes_committed <= base.bytes_committed, "committed memory is back to the baseline");
  HK_EXPECT(hk_trim(0) == 0, "a second trim has nothing to give and says so");
}

static void* exit_with_freed_blocks(void* arg) {
  void** out = arg;
  for (int i = 0; i < 32; i++) out[i] = hk_malloc(64);
  return NULL;
}

static void SegmentsOfExitedThreadsAreAdoptedAndReleased(void) {
  hk_trim(0);
  void* blocks[32];
  pthread_t t;
  pthread_create(&t, NULL, exit_with_freed_blocks, blocks);
  pthread_join(t, NULL);
  for (int i = 0; i < 32; i++) hk_free(blocks[i]);  /* remote frees into an exited thread's segment */
  HK_EXPECT(stats().segments_abandoned == 1, "the exited thread's segment waits with only free blocks");
  hk_trim(0);
  hk_stats_t s = stats();
  HK_EXPECT(s.segments_abandoned == 0, "trim adopted it");
  HK_EXPECT(s.bytes_cached == 0, "and, every block free, gave it back");
}

int main(void) {
  HK_RUN(ABurstFreedIsGivenBackAndReported);
  HK_RUN(SegmentsOfExitedThreadsAreAdoptedAndReleased);
  return HK_TEST_RESULT();
}
