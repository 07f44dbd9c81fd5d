// The large-block arena (arena.c): blocks above 256 KiB up to 16 MiB are
// runs of 64 KiB pages in shared 32 MiB chunks; freed runs join their free
// neighbours and serve any later request that fits, warm pages first.
// Each test starts from hk_trim(0), which unmaps every empty chunk, so the
// first block of a test starts a fresh chunk and addresses are predictable.
#include <stdint.h>
#include <string.h>

#include <atomic>
#include <initializer_list>
#include <thread>
#include <vector>

#include "alloc/core/stats_testing.h"
#include "alloc/include/hakmem.h"
#include "gtest/gtest.h"

namespace {

using hk_testing::Stats;

constexpr size_t kKiB = 1024, kMiB = 1024 * 1024;
constexpr size_t kPage = 64 * kKiB;

class Arena : public ::testing::Test {
 protected:
  void SetUp() override { hk_trim(0); }
  void TearDown() override { hk_trim(0); }
};

void FreeAll(std::initializer_list<void*> blocks) {
  for (void* p : blocks) hk_free(p);
}

char* Alloc(size_t n) {
  char* p = static_cast<char*>(hk_malloc(n));
  EXPECT_NE(p, nullptr);
  return p;
}

TEST_F(Arena, BlocksAreWholePagesAligned64KiB) {
  for (size_t n : {256 * kKiB + 1, 300 * kKiB, kMiB, 3 * kMiB + 5, 16 * kMiB}) {
    char* p = Alloc(n);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % kPage, 0u) << n;
    size_t usable = hk_malloc_usable_size(p);
    EXPECT_EQ(usable, (n + kPage - 1) / kPage * kPage) << n;
    memset(p, 0x5a, usable);
    hk_free(p);
  }
}

TEST_F(Arena, ConsecutiveBlocksAreCutFromOneRun) {
  char* a = Alloc(kMiB);
  char* b = Alloc(kMiB);
  char* c = Alloc(kMiB);
  EXPECT_EQ(b, a + kMiB);
  EXPECT_EQ(c, b + kMiB);
  FreeAll({a, b, c});
}

TEST_F(Arena, AFreedBlockServesAnySmallerRequestFromItsWarmPages) {
  char* big = Alloc(8 * kMiB);
  memset(big, 1, 8 * kMiB);
  hk_free(big);
  // The freed pages are committed; the rest of the chunk never was: the
  // smaller requests reuse the warm ones, whatever their sizes.
  char* a = Alloc(3 * kMiB);
  char* b = Alloc(300 * kKiB);
  char* c = Alloc(4 * kMiB);
  EXPECT_EQ(a, big);
  EXPECT_GE(b, big);
  EXPECT_LT(b, big + 8 * kMiB);
  EXPECT_GE(c, big);
  EXPECT_LE(c + 4 * kMiB, big + 8 * kMiB);
  FreeAll({a, b, c});
}

TEST_F(Arena, FreedNeighboursJoinIntoOneRun) {
  char* a = Alloc(kMiB);
  char* b = Alloc(2 * kMiB);
  char* c = Alloc(kMiB);
  char* keep = Alloc(kMiB);  // so the three do not join the chunk's untouched tail
  memset(a, 1, kMiB);
  memset(b, 1, 2 * kMiB);
  memset(c, 1, kMiB);
  hk_free(a);
  hk_free(c);
  hk_free(b);  // joins both sides
  char* whole = Alloc(4 * kMiB);
  EXPECT_EQ(whole, a) << "the three freed blocks should make one 4 MiB run";
  FreeAll({whole, keep});
}

TEST_F(Arena, CallocOfRecycledPagesIsZero) {
  char* p = Alloc(2 * kMiB);
  memset(p, 0xab, 2 * kMiB);
  hk_free(p);
  char* q = static_cast<char*>(hk_calloc(1, 2 * kMiB - 100));
  ASSERT_EQ(q, p) << "calloc should reuse the warm pages";
  for (size_t i = 0; i < 2 * kMiB - 100; i += 997) ASSERT_EQ(q[i], 0) << i;
  ASSERT_EQ(q[2 * kMiB - 101], 0);
  hk_free(q);
}

TEST_F(Arena, FreedPagesAreCachedUntilTrimThenTheChunkIsUnmapped) {
  hk_stats_t before = Stats();
  char* p = Alloc(4 * kMiB);
  memset(p, 1, 4 * kMiB);  // every page resident
  hk_stats_t live = Stats();
  EXPECT_EQ(live.large_live, before.large_live + 1);
  EXPECT_EQ(live.large_bytes, before.large_bytes + 4 * kMiB);
  EXPECT_GE(live.bytes_committed, before.bytes_committed + 4 * kMiB);
  EXPECT_GE(live.bytes_reserved, before.bytes_reserved + 32 * kMiB) << "a new 32 MiB chunk";
  hk_free(p);
  hk_stats_t freed = Stats();
  EXPECT_EQ(freed.large_live, before.large_live);
  EXPECT_EQ(freed.large_bytes, before.large_bytes);
  EXPECT_EQ(freed.bytes_cached, before.bytes_cached + 4 * kMiB) << "freed pages stay resident for reuse";
  EXPECT_EQ(hk_trim(0), 1);
  hk_stats_t trimmed = Stats();
  EXPECT_EQ(trimmed.bytes_cached, 0u);
  EXPECT_LE(trimmed.bytes_committed + 4 * kMiB, freed.bytes_committed);
  EXPECT_LE(trimmed.bytes_reserved + 32 * kMiB, freed.bytes_reserved) << "the empty chunk should be unmapped";
}

TEST_F(Arena, AFreedBlocksUntouchedPagesStopCountingAsCommitted) {
  hk_stats_t before = Stats();
  char* p = Alloc(4 * kMiB);
  p[0] = 1;
  p[4 * kMiB - 1] = 1;  // its first and last pages only
  EXPECT_GE(Stats().bytes_committed, before.bytes_committed + 4 * kMiB) << "handed out, all of it may be touched";
  hk_free(p);
  hk_stats_t freed = Stats();
  EXPECT_EQ(freed.bytes_cached, before.bytes_cached + 2 * kPage)
      << "only the two pages the program touched wait as warm memory";
  EXPECT_EQ(freed.syscalls_mincore, before.syscalls_mincore + 1) << "one query for a block of 4 MiB";
  // Never touched at all: its first page still counts, so the chunk waits
  // for reuse instead of being unmapped at once.
  p = Alloc(kMiB);
  hk_free(p);
  EXPECT_GE(Stats().bytes_reserved, freed.bytes_reserved) << "the chunk stays mapped";
}

TEST_F(Arena, ABlockHandedOutOnResidentPagesIsNotAskedAbout) {
  char* p = Alloc(4 * kMiB);
  memset(p, 1, 4 * kMiB);
  hk_free(p);
  hk_stats_t before = Stats();
  char* q = Alloc(4 * kMiB);
  ASSERT_EQ(q, p) << "the warm pages are reused";
  hk_free(q);
  EXPECT_EQ(Stats().syscalls_mincore, before.syscalls_mincore) << "its pages were resident when handed out, and stay so";
  EXPECT_EQ(Stats().bytes_cached, before.bytes_cached) << "and count as committed";
}

TEST_F(Arena, ANewBlockGoesWhereFreedPagesAreResident) {
  char* a = Alloc(kMiB);
  a[0] = 1;  // only its first page touched
  char* wall1 = Alloc(kMiB);
  char* b = Alloc(kMiB);
  memset(b, 1, kMiB);
  char* wall2 = Alloc(kMiB);
  ASSERT_LT(a, b);
  hk_free(a);
  hk_free(b);
  char* c = Alloc(kMiB);
  EXPECT_EQ(c, b) << "b's pages are all resident, a's are not: the lower run would fault 15 pages";
  FreeAll({c, wall1, wall2});
}

TEST_F(Arena, ReallocWithinTheArenaKeepsContents) {
  char* p = Alloc(300 * kKiB);
  for (size_t i = 0; i < 300 * kKiB; i++) p[i] = static_cast<char>(i * 7);
  p = static_cast<char*>(hk_realloc(p, 5 * kMiB));
  ASSERT_NE(p, nullptr);
  for (size_t i = 0; i < 300 * kKiB; i++) ASSERT_EQ(p[i], static_cast<char>(i * 7)) << i;
  p = static_cast<char*>(hk_realloc(p, 200 * kKiB));  // back into a size class
  ASSERT_NE(p, nullptr);
  for (size_t i = 0; i < 200 * kKiB; i++) ASSERT_EQ(p[i], static_cast<char>(i * 7)) << i;
  hk_free(p);
}

TEST_F(Arena, ReallocGrowsIntoTheFreePagesAfterTheBlockWithoutMoving) {
  char* p = Alloc(300 * kKiB);
  memset(p, 7, 300 * kKiB);
  hk_stats_t before = Stats();
  for (size_t n = 400 * kKiB; n <= 12 * kMiB; n += 300 * kKiB) {
    char* q = static_cast<char*>(hk_realloc(p, n));
    ASSERT_EQ(q, p) << "the pages after the block are free: it should grow in place to " << n;
    ASSERT_EQ(hk_malloc_usable_size(q), (n + kPage - 1) / kPage * kPage);
    q[n - 1] = 7;
  }
  EXPECT_EQ(Stats().large_live, before.large_live);
  for (size_t i = 0; i < 300 * kKiB; i += 4096) ASSERT_EQ(p[i], 7);
  hk_free(p);
}

TEST_F(Arena, ReallocMovesWhenTheNextPagesAreTaken) {
  char* p = Alloc(kMiB);
  char* wall = Alloc(kMiB);  // right after p
  ASSERT_EQ(wall, p + kMiB);
  memset(p, 3, kMiB);
  char* q = static_cast<char*>(hk_realloc(p, 2 * kMiB));
  ASSERT_NE(q, nullptr);
  EXPECT_NE(q, p);
  for (size_t i = 0; i < kMiB; i += 4096) ASSERT_EQ(q[i], 3);
  hk_free(q);
  hk_free(wall);
}

TEST_F(Arena, ABlockReallocMovesToGrowLandsWhereItCanGrowAgainInPlace) {
  char* p = Alloc(kMiB);
  char* wall = Alloc(kMiB);  // p cannot grow where it is
  char* tight = Alloc(kMiB + kMiB / 2);
  char* wall2 = Alloc(kMiB);
  char* roomy = Alloc(4 * kMiB);
  char* wall3 = Alloc(kMiB);
  ASSERT_EQ(wall, p + kMiB);
  ASSERT_EQ(roomy, wall2 + kMiB);
  for (char* b : {p, tight, roomy}) memset(b, 5, hk_malloc_usable_size(b));
  FreeAll({tight, roomy});
  // Both holes are warm; the 1.5 MiB one fits exactly, the 4 MiB one leaves
  // room to grow.
  char* q = static_cast<char*>(hk_realloc(p, kMiB + kMiB / 2));
  EXPECT_EQ(q, roomy) << "the growing block goes where free pages follow it";
  char* r = static_cast<char*>(hk_realloc(q, 3 * kMiB));
  EXPECT_EQ(r, q) << "so its next growth needs no copy";
  for (size_t i = 0; i < kMiB; i += 4096) ASSERT_EQ(r[i], 5);
  char* other = Alloc(kMiB + kMiB / 2);
  EXPECT_EQ(other, tight) << "a plain malloc still takes the tightest warm fit";
  FreeAll({r, wall, wall2, wall3, other});
}

TEST_F(Arena, ReallocShrinkingBelowHalfGivesTheTailBackInPlace) {
  char* p = Alloc(8 * kMiB);
  memset(p, 9, 8 * kMiB);
  hk_stats_t before = Stats();
  char* q = static_cast<char*>(hk_realloc(p, 3 * kMiB));
  ASSERT_EQ(q, p);
  EXPECT_EQ(hk_malloc_usable_size(q), 3 * kMiB);
  hk_stats_t after = Stats();
  EXPECT_EQ(after.large_bytes + 5 * kMiB, before.large_bytes);
  EXPECT_EQ(after.bytes_cached, before.bytes_cached + 5 * kMiB) << "the tail stays resident for reuse";
  char* r = Alloc(5 * kMiB);
  EXPECT_EQ(r, p + 3 * kMiB) << "the freed tail is warm: the next block takes it";
  for (size_t i = 0; i < 3 * kMiB; i += 4096) ASSERT_EQ(q[i], 9);
  hk_free(r);
  hk_free(q);
}

// Blocks allocated on one thread and freed on another: the arena has no
// owners, so every thread frees directly, and the counters add up after.
TEST_F(Arena, ThreadsFreeEachOthersBlocks) {
  hk_stats_t before = Stats();
  constexpr int kThreads = 4, kRounds = 300, kSlots = 8;
  std::vector<std::atomic<char*>> shared(kThreads * kSlots);
  for (auto& s : shared) s.store(nullptr);
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([t, &shared, &bad] {
      uint32_t x = 0x9e3779b9u * static_cast<uint32_t>(t + 1);
      for (int r = 0; r < kRounds; r++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        size_t n = 256 * kKiB + 1 + x % (3 * kMiB);
        char* p = static_cast<char*>(hk_malloc(n));
        if (p == nullptr) {
          bad++;
          continue;
        }
        // Stamp the size at the start, and bytes derived from it at the
        // middle and the last byte, so whichever thread frees the block can
        // tell that it was neither moved nor overlapped by another block.
        memcpy(p, &n, sizeof(n));
        p[n / 2] = static_cast<char>(n >> 3);
        p[n - 1] = static_cast<char>(n ^ 0x5a);
        // Swap into a slot any thread may own; free whatever was there.
        char* old = shared[x % shared.size()].exchange(p);
        if (old != nullptr) {
          size_t m = hk_malloc_usable_size(old), was = 0;
          memcpy(&was, old, sizeof(was));
          if (m < 256 * kKiB || was < 256 * kKiB || was > m || old[was / 2] != static_cast<char>(was >> 3) ||
              old[was - 1] != static_cast<char>(was ^ 0x5a))
            bad++;
          hk_free(old);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0) << "blocks that failed, were too small, or lost their stamps";
  for (auto& s : shared) hk_free(s.load());
  hk_stats_t after = Stats();
  EXPECT_EQ(after.large_live, before.large_live);
  EXPECT_EQ(after.large_bytes, before.large_bytes);
}

// Above 16 MiB (or aligned beyond 64 KiB) a block is its own mapping.
TEST_F(Arena, BiggerOrStricterAlignedBlocksAreTheirOwnMapping) {
  char* a = Alloc(16 * kMiB);
  char* b = Alloc(16 * kMiB + 1);
  void* c = nullptr;
  ASSERT_EQ(hk_posix_memalign(&c, 128 * kKiB, kMiB), 0);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % kPage, 0u);
  EXPECT_NE(reinterpret_cast<uintptr_t>(b) % kPage, 0u) << "a mapping starts after its header";
  EXPECT_EQ(reinterpret_cast<uintptr_t>(c) % (128 * kKiB), 0u);
  memset(b, 1, 16 * kMiB + 1);
  memset(c, 1, kMiB);
  FreeAll({a, b, c});
}

}  // namespace
