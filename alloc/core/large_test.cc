// Blocks above the arena's range (16 MiB), each its own mapping (large.c):
// realloc grows them by moving their pages, not by copying them.
#include <stdint.h>
#include <sys/resource.h>

#include "alloc/core/stats_testing.h"
#include "alloc/include/hakmem.h"
#include "gtest/gtest.h"

namespace {

using hk_testing::Stats;

constexpr size_t kMiB = size_t{1} << 20;
constexpr size_t kPage = 4096;

long MinorFaults() {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

void Fill(uint64_t* p, size_t bytes) {
  for (size_t i = 0; i < bytes / 8; i += kPage / 8) p[i] = i * 2654435761u;
}

bool Intact(const uint64_t* p, size_t bytes) {
  for (size_t i = 0; i < bytes / 8; i += kPage / 8)
    if (p[i] != i * 2654435761u) return false;
  return true;
}

// A copy into fresh memory would fault in every page of the destination
// (6144 for 24 MiB); moving the pages faults none and makes one mremap.
TEST(Large, GrowingAMappedBlockMovesItsPagesInsteadOfCopyingThem) {
  const size_t kOld = 24 * kMiB, kNew = 40 * kMiB;
  uint64_t* p = static_cast<uint64_t*>(hk_malloc(kOld));
  ASSERT_NE(p, nullptr);
  Fill(p, kOld);
  const hk_stats_t before = Stats();
  const long faults_before = MinorFaults();
  uint64_t* q = static_cast<uint64_t*>(hk_realloc(p, kNew));
  const long faults = MinorFaults() - faults_before;
  const hk_stats_t after = Stats();
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(after.syscalls_mremap, before.syscalls_mremap + 1);
  EXPECT_LT(faults, 64) << "the old contents were copied into fresh pages";
  EXPECT_TRUE(Intact(q, kOld)) << "contents lost in the move";
  EXPECT_GE(hk_malloc_usable_size(q), kNew);
  EXPECT_EQ(after.large_live, before.large_live) << "still one block";
  EXPECT_GE(after.large_bytes, before.large_bytes + (kNew - kOld));
  EXPECT_EQ(hk_owns(p), q == p ? 1 : 0) << "the old range must not stay hakmem's";
  q[kNew / 8 - 1] = 7;  // the grown part is usable
  hk_free(q);
  EXPECT_EQ(Stats().large_live, before.large_live - 1);
}

// The moved block is an ordinary mapped block: it grows again, shrinks in
// place while it keeps half, and frees; realloc of the pointer it had
// before the move is reported, not honoured.
TEST(Large, AMovedBlockBehavesLikeAnyOther) {
  uint64_t* p = static_cast<uint64_t*>(hk_malloc(20 * kMiB));
  ASSERT_NE(p, nullptr);
  Fill(p, 20 * kMiB);
  uint64_t* q = static_cast<uint64_t*>(hk_realloc(p, 30 * kMiB));
  ASSERT_NE(q, nullptr);
  uint64_t* r = static_cast<uint64_t*>(hk_realloc(q, 60 * kMiB));
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(Intact(r, 20 * kMiB));
  EXPECT_EQ(hk_realloc(r, 31 * kMiB), r) << "a block keeping over half its size stays where it is";
  EXPECT_TRUE(Intact(r, 20 * kMiB));
  hk_free(r);
}

TEST(LargeDeathTest, ReallocOfThePointerABlockHadBeforeItMovedIsInvalid) {
  EXPECT_DEATH(
      {
        void* p = hk_malloc(20 * kMiB);
        void* q = hk_realloc(p, 40 * kMiB);
        if (q != p) hk_realloc(p, 50 * kMiB);
        hk_free(q);
        if (q == p) hk_free(p);  // never moved: a double free, reported too
      },
      "hakmem: (invalid pointer|double free|free of an interior or freed pointer) of 0x[0-9a-f]+ in hk_(realloc|free)\\(\\)");
}

}  // namespace
