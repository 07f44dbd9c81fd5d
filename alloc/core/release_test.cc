// The release clock (the aged caches of segment.c, arena.c, mapping.c) in the
// lean variant: freed memory waits committed for the release delay, then goes
// back to the OS on the next slow-path free, even when the program never
// allocates again, down to the resident target; beyond the cache cap the
// oldest goes back at once. Nothing is decommitted the moment it is freed.
// Counters only (no RSS), so it runs under the sanitizers too.
#include <stdint.h>
#include <time.h>

#include <string>
#include <vector>

#include "alloc/core/options.h"
#include "alloc/core/stats_testing.h"
#include "alloc/include/hakmem.h"
#include "gtest/gtest.h"

namespace {

using hk_testing::kSlotBytes;
using hk_testing::ScopedOption;
using hk_testing::Stats;

void SleepMs(long ms) {
  timespec ts{ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, nullptr);
}

// Small blocks worth `bytes`, all in segments of this thread.
std::vector<void*> Burst(size_t bytes, size_t block) {
  std::vector<void*> v;
  for (size_t done = 0; done < bytes; done += block) {
    void* p = hk_malloc(block);
    EXPECT_NE(p, nullptr);
    static_cast<char*>(p)[0] = 1;
    v.push_back(p);
  }
  return v;
}

void FreeAll(std::vector<void*>* v) {
  for (void* p : *v) hk_free(p);
  v->clear();
}

class LeanRelease : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_STREQ(hk_active->name, "lean") << "this test links //alloc:hakmem_api_lean";
    // No floor unless a test sets one: this process commits far less than
    // lean's 16 MB target, which would keep everything by age alone.
    ASSERT_EQ(hk_option_set("HAKMEM_RESIDENT_TARGET_MB", "0"), 0);
    // The clock on slow paths is what these tests prove: no reclaimer
    // thread (BUILD sets HAKMEM_RECLAIM_THREAD=0; reclaim_test covers it).
    ASSERT_EQ(hk_options.params.reclaim_thread, 0u);
    hk_trim(0);
  }
  void TearDown() override {
    // Options a test set go back to the variant's values (ScopedOption).
    hk_option_reset("HAKMEM_RESIDENT_TARGET_MB");
    hk_trim(0);
  }
};

// Two spans of 48-byte blocks: the first full and no longer current, so
// freeing all its blocks retires it (the span-retire slow path).
struct Trailer {
  std::vector<void*> first_span;
  std::vector<void*> rest;
  Trailer() {
    const size_t per_span = kSlotBytes / 48;
    for (size_t i = 0; i < per_span; i++) first_span.push_back(hk_malloc(48));
    rest.push_back(hk_malloc(48));  // starts the second span, now current
  }
  ~Trailer() {
    FreeAll(&first_span);
    FreeAll(&rest);
  }
};

TEST_F(LeanRelease, CachedSegmentsGoBackOnTheNextSpanRetireAfterTheDelay) {
  Trailer trailer;
  std::vector<void*> burst = Burst(12u << 20, 4000);
  FreeAll(&burst);
  ASSERT_GT(Stats().bytes_cached, 0u) << "the freed burst should wait in the cache for the delay";
  SleepMs(static_cast<long>(hk_options.params.release_delay_ms) + 50);
  EXPECT_GT(Stats().bytes_cached, 0u) << "nothing ran, so nothing can have been released yet";
  FreeAll(&trailer.first_span);  // a free, no allocation: retires a span
  EXPECT_LE(Stats().bytes_cached, kSlotBytes)
      << "the span-retire path did not release memory idle past the delay (only the span retired just now may wait)";
}

TEST_F(LeanRelease, CachedSegmentsGoBackOnALargeFreeAfterTheDelay) {
  void* large = hk_malloc(1 << 20);
  std::vector<void*> burst = Burst(12u << 20, 4000);
  FreeAll(&burst);
  uint64_t cached = Stats().bytes_cached;
  ASSERT_GT(cached, 0u);
  SleepMs(static_cast<long>(hk_options.params.release_delay_ms) + 50);
  hk_free(large);
  EXPECT_LE(Stats().bytes_cached, (1u << 20) + 4096u) << "only the large block freed just now may wait";
}

TEST_F(LeanRelease, YoungCacheStaysUntilTheDelayAndTrimTakesItAtOnce) {
  ScopedOption delay("HAKMEM_RELEASE_DELAY_MS", "60000");
  ASSERT_TRUE(delay.ok());
  Trailer trailer;
  std::vector<void*> burst = Burst(8u << 20, 4000);
  FreeAll(&burst);
  FreeAll(&trailer.first_span);
  EXPECT_GT(Stats().bytes_cached, 0u) << "memory younger than the delay must stay cached";
  hk_trim(0);
  EXPECT_EQ(Stats().bytes_cached, 0u) << "hk_trim must release the cache whatever its age";
}

TEST_F(LeanRelease, AFreedBurstBeyondTheCacheCapGoesBackAtOnce) {
  ScopedOption small_cap("HAKMEM_CACHE_MB", "16");
  ASSERT_TRUE(small_cap.ok());
  const uint64_t cap = hk_options.params.cache_mb << 20;
  std::vector<void*> burst = Burst(64u << 20, 3000);
  std::vector<void*> large;
  for (int i = 0; i < 16; i++) large.push_back(hk_malloc(2u << 20));
  ASSERT_GT(Stats().bytes_committed, 64u << 20);
  uint64_t madvise_before = Stats().syscalls_madvise_dontneed;
  FreeAll(&burst);
  FreeAll(&large);
  hk_stats_t s = Stats();
  EXPECT_GT(s.syscalls_madvise_dontneed, madvise_before) << "lean decommits with MADV_DONTNEED";
  // What stays cached is at most the cap plus the entry that crossed it.
  EXPECT_LE(s.bytes_cached, cap + (4u << 20)) << "freed memory beyond the cache cap stayed";
}

TEST_F(LeanRelease, PurgingByAgeStopsAtTheResidentTarget) {
  Trailer trailer;
  std::vector<void*> burst = Burst(8u << 20, 4000);
  FreeAll(&burst);
  uint64_t cached = Stats().bytes_cached;
  ASSERT_GT(cached, 0u);
  {
    // A target above everything committed: nothing is due by age.
    ScopedOption floor("HAKMEM_RESIDENT_TARGET_MB", std::to_string((Stats().bytes_committed >> 20) + 64));
    ASSERT_TRUE(floor.ok());
    SleepMs(static_cast<long>(hk_options.params.release_delay_ms) + 50);
    hk_free(trailer.first_span.back());  // a slow-path free runs the clock
    trailer.first_span.pop_back();
    EXPECT_GE(Stats().bytes_cached, cached) << "memory under the resident target went back by age";
  }
  ASSERT_EQ(hk_option_set("HAKMEM_RESIDENT_TARGET_MB", "0"), 0);
  FreeAll(&trailer.first_span);  // retires a span: runs the clock again
  EXPECT_LE(Stats().bytes_cached, kSlotBytes)
      << "above the target, memory past its delay goes back (only the span retired just now may wait)";
}

// Freed arena pages (blocks of 256 KiB - 16 MiB) stay committed for reuse
// while under the resident target, and are purged once the release delay
// has passed, on the next slow-path free; the chunk left empty goes too.
TEST_F(LeanRelease, FreedArenaPagesArePurgedAfterTheDelayNotBefore) {
  Trailer trailer;
  hk_stats_t before = Stats();
  char* p = static_cast<char*>(hk_malloc(4u << 20));
  ASSERT_NE(p, nullptr);
  for (size_t i = 0; i < (4u << 20); i += 4096) p[i] = 1;
  hk_free(p);
  hk_stats_t freed = Stats();
  EXPECT_EQ(freed.bytes_cached, before.bytes_cached + (4u << 20)) << "freed pages wait for reuse";
  uint64_t madvise_before = freed.syscalls_madvise_dontneed;
  SleepMs(static_cast<long>(hk_options.params.release_delay_ms) + 50);
  EXPECT_EQ(Stats().bytes_cached, freed.bytes_cached) << "nothing ran, so nothing can have been purged yet";
  FreeAll(&trailer.first_span);  // a free, no allocation: retires a span, runs the clock
  hk_stats_t after = Stats();
  EXPECT_LE(after.bytes_cached, kSlotBytes) << "the freed arena pages were not purged after the delay";
  EXPECT_GT(after.syscalls_madvise_dontneed, madvise_before) << "purging is MADV_DONTNEED";
  EXPECT_LE(after.bytes_reserved + (32u << 20), freed.bytes_reserved) << "the empty chunk should be unmapped";
}

TEST_F(LeanRelease, AnArenaBlockFreedAndAllocatedAgainWithinTheDelayCostsNothing) {
  char* p = static_cast<char*>(hk_malloc(4u << 20));
  ASSERT_NE(p, nullptr);
  for (size_t i = 0; i < (4u << 20); i += 4096) p[i] = 1;
  hk_stats_t live = Stats();
  hk_free(p);
  hk_stats_t freed = Stats();
  EXPECT_EQ(freed.syscalls_madvise, live.syscalls_madvise) << "nothing is decommitted the moment it is freed";
  EXPECT_EQ(freed.bytes_cached, live.bytes_cached + (4u << 20)) << "the pages wait, committed, for reuse";
  char* q = static_cast<char*>(hk_malloc(4u << 20));
  ASSERT_EQ(q, p) << "the warm run is reused";
  for (size_t i = 0; i < (4u << 20); i += 4096) q[i] = 2;
  hk_stats_t again = Stats();
  EXPECT_EQ(again.syscalls_madvise + again.syscalls_mmap, live.syscalls_madvise + live.syscalls_mmap)
      << "reuse within the delay made a syscall";
  EXPECT_EQ(again.bytes_committed, live.bytes_committed);
  hk_free(q);
}

// Above the resident target a freed span is decommitted, but not the span
// malloc pops from while it is small: a request loop that allocates and
// frees a few blocks of a class (and empties that span every time) must not
// pay madvise plus page faults per request.
TEST_F(LeanRelease, AClassCyclingInItsCurrentSpanMakesNoMadviseAboveTheTarget) {
  ScopedOption always("HAKMEM_RESIDENT_TARGET_MB", "0");  // always above the target
  ASSERT_TRUE(always.ok());
  void* warm[4];
  for (void*& p : warm) p = hk_malloc(200);  // the class's current span
  for (void* p : warm) hk_free(p);           // emptied once: kept
  uint64_t madvise_before = Stats().syscalls_madvise;
  for (int round = 0; round < 10000; round++) {
    void* p[4];
    for (void*& q : p) {
      q = hk_malloc(200);
      ASSERT_NE(q, nullptr);
      static_cast<char*>(q)[199] = 1;
    }
    for (void* q : p) hk_free(q);
  }
  EXPECT_EQ(Stats().syscalls_madvise, madvise_before) << "the current span was decommitted and refaulted per cycle";
}

}  // namespace
