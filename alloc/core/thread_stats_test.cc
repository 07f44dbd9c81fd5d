// Per-thread counters (hk_thread_stats, HAKMEM_THREAD_STATS) through the hk_
// API, so it runs under ASan and TSan too. Every count is checked exactly
// against the usable sizes of the blocks involved: small blocks of several
// classes (enough to run through many spans), malloc(0), arena and mapped blocks,
// realloc (kept, moved, resized in place), calloc, the aligned family, a
// block freed by another thread, sampling on at the same time; the option
// switched at run time; the error codes.
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <atomic>
#include <thread>
#include <vector>

#include "alloc/include/hakmem.h"
#include "gtest/gtest.h"

namespace {

hk_thread_stats_t Read() {
  hk_thread_stats_t s;
  EXPECT_EQ(hk_thread_stats(&s), 0);
  return s;
}

class ThreadStats : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(hk_option_set("HAKMEM_THREAD_STATS", "1"), 0); }
  void TearDown() override {
    hk_option_set("HAKMEM_THREAD_STATS", "0");
    hk_option_set("HAKMEM_PROF_SAMPLE", "0");
  }
};

// Runs f on a thread of its own: its counters start with it.
template <typename F>
void OnThread(F f) {
  std::thread t(f);
  t.join();
}

TEST(ThreadStatsOff, NullIsEinvalOffIsEnotsupAndZeroed) {
  ASSERT_EQ(hk_option_set("HAKMEM_THREAD_STATS", "0"), 0);
  EXPECT_EQ(hk_thread_stats(nullptr), EINVAL);
  hk_thread_stats_t s;
  memset(&s, 0xab, sizeof(s));
  EXPECT_EQ(hk_thread_stats(&s), ENOTSUP);
  EXPECT_EQ(s.allocated, 0u);
  EXPECT_EQ(s.freed, 0u);
  void* p = hk_malloc(100);
  hk_free(p);
  memset(&s, 0xab, sizeof(s));
  EXPECT_EQ(hk_thread_stats(&s), ENOTSUP);
  EXPECT_EQ(s.allocated, 0u);
  ASSERT_EQ(hk_option_set("HAKMEM_THREAD_STATS", "1"), 0);
  EXPECT_EQ(hk_thread_stats(nullptr), EINVAL);
  ASSERT_EQ(hk_option_set("HAKMEM_THREAD_STATS", "0"), 0);
}

TEST(ThreadStatsOff, OptionValues) {
  char buf[8];
  EXPECT_EQ(hk_option_set("HAKMEM_THREAD_STATS", "2"), EINVAL);
  EXPECT_EQ(hk_option_set("HAKMEM_THREAD_STATS", "yes"), EINVAL);
  EXPECT_EQ(hk_option_set("HAKMEM_THREAD_STATS", ""), EINVAL);
  EXPECT_EQ(hk_option_get("HAKMEM_THREAD_STATS", buf, sizeof(buf)), 0);
  EXPECT_STREQ(buf, "0");
  EXPECT_EQ(hk_option_set("HAKMEM_THREAD_STATS", "1"), 0);
  EXPECT_EQ(hk_option_get("HAKMEM_THREAD_STATS", buf, sizeof(buf)), 0);
  EXPECT_STREQ(buf, "1");
  EXPECT_EQ(hk_option_set("HAKMEM_THREAD_STATS", "0"), 0);
}

// Allocates n blocks of each size, frees them all: exact at each step.
void SmallExact(const std::vector<size_t>& sizes, size_t n) {
  hk_thread_stats_t s0 = Read();
  EXPECT_EQ(s0.allocated, 0u);  // a fresh thread starts from 0
  EXPECT_EQ(s0.freed, 0u);
  std::vector<void*> blocks;
  blocks.reserve(sizes.size() * n);
  uint64_t usable = 0;
  for (size_t i = 0; i < n; i++) {
    for (size_t size : sizes) {
      void* p = hk_malloc(size);
      ASSERT_NE(p, nullptr);
      usable += hk_malloc_usable_size(p);
      blocks.push_back(p);
    }
    if (i % 97 == 0) {
      hk_thread_stats_t s = Read();
      ASSERT_EQ(s.allocated, usable) << "after " << i << " rounds";
      ASSERT_EQ(s.freed, 0u);
    }
  }
  hk_thread_stats_t s1 = Read();
  EXPECT_EQ(s1.allocated, usable);
  EXPECT_EQ(s1.freed, 0u);
  // Free every other one, then allocate again (blocks freed locally are
  // reused), then free everything.
  uint64_t freed = 0;
  for (size_t i = 0; i < blocks.size(); i += 2) {
    freed += hk_malloc_usable_size(blocks[i]);
    hk_free(blocks[i]);
    blocks[i] = nullptr;
  }
  EXPECT_EQ(Read().freed, freed);
  for (size_t i = 0; i < blocks.size(); i += 2) {
    blocks[i] = hk_malloc(sizes[(i / 2) % sizes.size()]);
    usable += hk_malloc_usable_size(blocks[i]);
  }
  EXPECT_EQ(Read().allocated, usable);
  for (void* p : blocks) {
    freed += hk_malloc_usable_size(p);
    hk_free(p);
  }
  hk_thread_stats_t s2 = Read();
  EXPECT_EQ(s2.allocated, usable);
  EXPECT_EQ(s2.freed, freed);
  EXPECT_EQ(s2.allocated - s2.freed, 0u);
}

TEST_F(ThreadStats, SmallBlocksOfSeveralClassesExact) {
  OnThread([] { SmallExact({0, 1, 16, 24, 100, 1000, 3000, 40000, 200000}, 2000); });
}

TEST_F(ThreadStats, OneClassManySpans) {
  OnThread([] { SmallExact({48}, 50000); });
}

TEST_F(ThreadStats, ExactWhileSamplingToo) {
  ASSERT_EQ(hk_option_set("HAKMEM_PROF_SAMPLE", "4096"), 0);
  OnThread([] { SmallExact({0, 16, 100, 1000, 3000, 40000}, 2000); });
}

TEST_F(ThreadStats, BigBlocksArenaAndMapped) {
  OnThread([] {
    Read();
    void* a = hk_malloc(1 << 20);         // arena
    void* m = hk_malloc(40u << 20);       // a mapping of its own
    void* z = hk_calloc(3, 300000);       // arena, zeroed
    void* al = hk_aligned_alloc(1 << 20, 5u << 20);  // mapping (alignment above the arena's)
    ASSERT_TRUE(a && m && z && al);
    uint64_t usable = hk_malloc_usable_size(a) + hk_malloc_usable_size(m) + hk_malloc_usable_size(z) +
                      hk_malloc_usable_size(al);
    EXPECT_GE(usable, (1u << 20) + (40u << 20) + 900000u + (5u << 20));
    hk_thread_stats_t s = Read();
    EXPECT_EQ(s.allocated, usable);
    EXPECT_EQ(s.freed, 0u);
    hk_free(a);
    hk_free(m);
    hk_free(z);
    hk_free(al);
    s = Read();
    EXPECT_EQ(s.allocated, usable);
    EXPECT_EQ(s.freed, usable);
  });
}

TEST_F(ThreadStats, CallocAndAlignedSmall) {
  OnThread([] {
    Read();
    uint64_t usable = 0;
    std::vector<void*> blocks;
    for (int i = 0; i < 300; i++) {
      blocks.push_back(hk_calloc(7, 13));
      blocks.push_back(hk_aligned_alloc(64, 200));
      blocks.push_back(hk_memalign(4096, 5000));
      void* p = nullptr;
      ASSERT_EQ(hk_posix_memalign(&p, 256, 700), 0);
      blocks.push_back(p);
    }
    for (void* p : blocks) usable += hk_malloc_usable_size(p);
    EXPECT_EQ(Read().allocated, usable);
    for (void* p : blocks) hk_free(p);
    hk_thread_stats_t s = Read();
    EXPECT_EQ(s.allocated, usable);
    EXPECT_EQ(s.freed, usable);
  });
}

// realloc: each step changes allocated - freed by exactly the change of
// the block's usable size; freed grows by the old size or not at all.
TEST_F(ThreadStats, ReallocGrowthAndShrink) {
  OnThread([] {
    Read();
    void* p = hk_malloc(1);
    size_t old = hk_malloc_usable_size(p);
    hk_thread_stats_t prev = Read();
    EXPECT_EQ(prev.allocated, old);
    std::vector<size_t> steps;
    for (size_t n = 2; n < (48u << 20); n = n * 3 / 2 + 1) steps.push_back(n);
    for (size_t n = 48u << 20; n > 8; n /= 3) steps.push_back(n);
    for (size_t n : steps) {
      p = hk_realloc(p, n);
      ASSERT_NE(p, nullptr);
      size_t now = hk_malloc_usable_size(p);
      hk_thread_stats_t s = Read();
      ASSERT_EQ((s.allocated - prev.allocated) - (s.freed - prev.freed), now - old) << "realloc to " << n;
      ASSERT_TRUE(s.freed == prev.freed || s.freed - prev.freed == old) << "realloc to " << n;
      prev = s;
      old = now;
    }
    hk_free(p);
    hk_thread_stats_t s = Read();
    EXPECT_EQ(s.allocated, s.freed);
    EXPECT_GT(s.freed, 48u << 20);
  });
}

// A block counts for the thread that frees it.
TEST_F(ThreadStats, FreedByAnotherThreadCountsThere) {
  std::vector<void*> blocks;
  uint64_t usable = 0;
  OnThread([&] {
    Read();
    for (int i = 0; i < 5000; i++) blocks.push_back(hk_malloc(16 + (i % 64) * 16));
    blocks.push_back(hk_malloc(2u << 20));
    for (void* p : blocks) usable += hk_malloc_usable_size(p);
    hk_thread_stats_t s = Read();
    EXPECT_EQ(s.allocated, usable);
    EXPECT_EQ(s.freed, 0u);
    std::thread freer([&] {
      EXPECT_EQ(Read().freed, 0u);
      for (void* p : blocks) hk_free(p);
      hk_thread_stats_t f = Read();
      EXPECT_EQ(f.freed, usable);
      EXPECT_EQ(f.allocated, 0u);
    });
    freer.join();
    s = Read();
    EXPECT_EQ(s.allocated, usable);
    EXPECT_EQ(s.freed, 0u);
    // The blocks come back to this thread's spans (remote frees collected):
    // allocating them again is counted as usual.
    void* again = hk_malloc(32);
    EXPECT_EQ(Read().allocated, usable + hk_malloc_usable_size(again));
    hk_free(again);
  });
}

// Switched at run time: a thread starts from 0 at its next slow path (or
// hk_thread_stats call), stops when the option is 0, starts from 0 again.
TEST_F(ThreadStats, ToggleAtRunTime) {
  OnThread([] {
    ASSERT_EQ(hk_option_set("HAKMEM_THREAD_STATS", "0"), 0);
    std::vector<void*> before;
    for (int i = 0; i < 1000; i++) before.push_back(hk_malloc(64));
    hk_thread_stats_t s;
    EXPECT_EQ(hk_thread_stats(&s), ENOTSUP);
    ASSERT_EQ(hk_option_set("HAKMEM_THREAD_STATS", "1"), 0);
    s = Read();
    EXPECT_EQ(s.allocated, 0u);  // the blocks above were before
    EXPECT_EQ(s.freed, 0u);
    // Blocks allocated before still count when this thread frees them, and
    // blocks taken from the current span it had before are counted.
    uint64_t usable = 0, freed = 0;
    std::vector<void*> after;
    for (int i = 0; i < 1000; i++) {
      after.push_back(hk_malloc(64));
      usable += hk_malloc_usable_size(after.back());
    }
    for (void* p : before) {
      freed += hk_malloc_usable_size(p);
      hk_free(p);
    }
    s = Read();
    EXPECT_EQ(s.allocated, usable);
    EXPECT_EQ(s.freed, freed);
    // Off: the counters are gone; frees go back to the fast path.
    ASSERT_EQ(hk_option_set("HAKMEM_THREAD_STATS", "0"), 0);
    for (void* p : after) hk_free(p);
    EXPECT_EQ(hk_thread_stats(&s), ENOTSUP);
    for (int round = 0; round < 3; round++) {
      void* p = hk_malloc(64);
      hk_free(p);
    }
    // On again: from 0.
    ASSERT_EQ(hk_option_set("HAKMEM_THREAD_STATS", "1"), 0);
    void* p = hk_malloc(64);  // the slow path that switches, or a pop
    s = Read();
    EXPECT_TRUE(s.allocated == 0 || s.allocated == hk_malloc_usable_size(p));
    uint64_t base = s.allocated;
    void* q = hk_malloc(64);
    uint64_t uq = hk_malloc_usable_size(q);
    EXPECT_EQ(hk_malloc_usable_size(p), uq);
    hk_free(p);
    hk_free(q);
    s = Read();
    EXPECT_EQ(s.allocated, base + uq);
    EXPECT_EQ(s.freed, 2 * uq);
  });
}

// Counting in one thread leaves another thread's fast path and counters
// alone, and both stay exact while they free into each other's spans.
TEST_F(ThreadStats, TwoThreadsExchangingBlocks) {
  const int kRounds = 200, kBlocks = 64;
  std::vector<void*> box[2];
  uint64_t alloc[2] = {0, 0}, freed[2] = {0, 0};
  hk_thread_stats_t got[2];
  std::atomic<int> turn{0};
  auto worker = [&](int me) {
    Read();
    for (int r = 0; r < kRounds; r++) {
      while (turn.load() % 2 != me) std::this_thread::yield();
      // Free what the other thread left, allocate for it.
      for (void* p : box[me]) {
        freed[me] += hk_malloc_usable_size(p);
        hk_free(p);
      }
      box[me].clear();
      for (int i = 0; i < kBlocks; i++) {
        void* p = hk_malloc(8 + (size_t)((r * kBlocks + i) % 300) * 8);
        alloc[me] += hk_malloc_usable_size(p);
        box[1 - me].push_back(p);
      }
      turn.fetch_add(1);
    }
    while (turn.load() != 2 * kRounds + me) std::this_thread::yield();
    for (void* p : box[me]) {
      freed[me] += hk_malloc_usable_size(p);
      hk_free(p);
    }
    box[me].clear();
    got[me] = Read();
    turn.fetch_add(1);
  };
  std::thread a(worker, 0), b(worker, 1);
  a.join();
  b.join();
  for (int i = 0; i < 2; i++) {
    EXPECT_EQ(got[i].allocated, alloc[i]) << "thread " << i;
    EXPECT_EQ(got[i].freed, freed[i]) << "thread " << i;
  }
  EXPECT_EQ(alloc[0] + alloc[1], freed[0] + freed[1]);
}

}  // namespace
