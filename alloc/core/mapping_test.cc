// Blocks above the arena's range (16 MiB), each its own mapping (mapping.c):
// realloc resizes them without copying (tail unmapped, or pages moved).
#include <stdio.h>
#include <stdint.h>
#include <errno.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "alloc/core/stats_testing.h"
#include "alloc/include/hakmem.h"
#include "gtest/gtest.h"

namespace {

using hk_testing::Stats;

// ThreadSanitizer's shadow memory faults in pages of its own whenever the
// test's memory is touched or copied, so page-fault counts only mean
// something in the other builds.
#if defined(__SANITIZE_THREAD__)
constexpr bool kFaultsAreOurs = false;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
constexpr bool kFaultsAreOurs = false;
#else
constexpr bool kFaultsAreOurs = true;
#endif
#else
constexpr bool kFaultsAreOurs = true;
#endif

constexpr size_t kMiB = size_t{1} << 20;
constexpr size_t kPage = 4096;

long MinorFaults() {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

// Fewer than 64 minor faults for a move of many MiB: no page was faulted
// in. Under ThreadSanitizer the count is not ours (above), and the log says
// the check did not run.
void ExpectFewFaults(long faults, const char* why) {
  if (!kFaultsAreOurs) {
    fprintf(stderr, "page-fault check not run: ThreadSanitizer's shadow memory faults pages of its own (%s)\n", why);
    return;
  }
  EXPECT_LT(faults, 64) << why;
}

void Fill(uint64_t* p, size_t bytes) {
  for (size_t i = 0; i < bytes / 8; i += kPage / 8) p[i] = i * 2654435761u;
}

bool Intact(const uint64_t* p, size_t bytes) {
  for (size_t i = 0; i < bytes / 8; i += kPage / 8)
    if (p[i] != i * 2654435761u) return false;
  return true;
}

// A block of `size` bytes, filled over its first `filled` bytes, then
// realloc'd to new_size: the statistics and this process's minor page faults
// around the realloc alone.
struct Resized {
  uint64_t* p;  // before
  uint64_t* q;  // after (nullptr: realloc failed)
  hk_stats_t before, after;
  long faults;
};

Resized FillAndRealloc(size_t size, size_t filled, size_t new_size) {
  Resized r{};
  r.p = static_cast<uint64_t*>(hk_malloc(size));
  if (r.p == nullptr) return r;
  Fill(r.p, filled);
  r.before = Stats();
  const long faults_before = MinorFaults();
  r.q = static_cast<uint64_t*>(hk_realloc(r.p, new_size));
  r.faults = MinorFaults() - faults_before;
  r.after = Stats();
  return r;
}

// A copy into fresh memory would fault in every page of the destination
// (6144 for 24 MiB); moving the pages faults none and makes one mremap.
TEST(Mapping, GrowingAMappedBlockMovesItsPagesInsteadOfCopyingThem) {
  const size_t kOld = 24 * kMiB, kNew = 40 * kMiB;
  const Resized r = FillAndRealloc(kOld, kOld, kNew);
  ASSERT_NE(r.p, nullptr);
  ASSERT_NE(r.q, nullptr);
  uint64_t *p = r.p, *q = r.q;
  const hk_stats_t &before = r.before, &after = r.after;
  const long faults = r.faults;
  EXPECT_EQ(after.syscalls_mremap, before.syscalls_mremap + 1);
  ExpectFewFaults(faults, "the old contents were copied into fresh pages");
  EXPECT_TRUE(Intact(q, kOld)) << "contents lost in the move";
  EXPECT_GE(hk_malloc_usable_size(q), kNew);
  EXPECT_EQ(after.large_live, before.large_live) << "still one block";
  EXPECT_GE(after.large_bytes, before.large_bytes + (kNew - kOld));
  EXPECT_EQ(hk_owns(p), q == p ? 1 : 0) << "the old range must not stay hakmem's";
  q[kNew / 8 - 1] = 7;  // the grown part is usable
  hk_free(q);
  EXPECT_EQ(Stats().large_live, before.large_live - 1);
}

// Shrinking a mapped block below half its size, to a size still above the
// arena's range, unmaps its tail where it is: same pointer, no copy.
TEST(Mapping, ShrinkingAMappedBlockGivesBackItsTailInPlace) {
  const size_t kOld = 100 * kMiB, kNew = 40 * kMiB;
  const Resized r = FillAndRealloc(kOld, kNew, kNew);
  ASSERT_NE(r.p, nullptr);
  uint64_t* q = r.q;
  const hk_stats_t &before = r.before, &after = r.after;
  EXPECT_EQ(q, r.p) << "a shrinking mapped block moved";
  EXPECT_TRUE(Intact(q, kNew));
  EXPECT_EQ(after.syscalls_munmap, before.syscalls_munmap + 1);
  EXPECT_EQ(after.bytes_reserved + (kOld - kNew), before.bytes_reserved) << "the tail was not unmapped";
  EXPECT_GE(hk_malloc_usable_size(q), kNew);
  EXPECT_LT(hk_malloc_usable_size(q), kNew + kPage);
  EXPECT_EQ(hk_owns(reinterpret_cast<char*>(q) + 64 * kMiB), 0) << "the unmapped tail is still hakmem's";
  q[kNew / 8 - 1] = 1;
  hk_free(q);
}

// With a resident mapping of the right size in the cache, growing copies
// into it instead: its pages are faulted in already, where moving would
// leave it idle and fault in the new half.
TEST(Mapping, GrowingPrefersAResidentCachedMappingToMovingPages) {
  hk_trim(0);  // no cached mapping left by earlier tests
  const size_t kCached = 48 * kMiB, kOld = 20 * kMiB, kNew = 40 * kMiB;
  uint64_t* cached = static_cast<uint64_t*>(hk_malloc(kCached));
  ASSERT_NE(cached, nullptr);
  Fill(cached, kCached);  // resident
  hk_free(cached);        // kept for reuse, still resident
  ASSERT_GE(Stats().bytes_cached, kCached);
  // kOld is too small for the cached mapping: it gets a mapping of its own.
  const Resized r = FillAndRealloc(kOld, kOld, kNew);
  ASSERT_NE(r.p, nullptr);
  ASSERT_NE(r.q, nullptr);
  EXPECT_EQ(r.q, cached) << "the resident cached mapping was not reused";
  EXPECT_EQ(r.after.syscalls_mremap, r.before.syscalls_mremap) << "pages were moved although resident ones waited";
  ExpectFewFaults(r.faults, "copying into resident pages must not fault");
  EXPECT_TRUE(Intact(r.q, kOld));
  hk_free(r.q);
}

// The moved block is an ordinary mapped block: it grows again, shrinks in
// place while it keeps half, and frees; realloc of the pointer it had
// before the move is reported, not honoured.
TEST(Mapping, AMovedBlockBehavesLikeAnyOther) {
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

TEST(MappingDeathTest, ReallocOfThePointerABlockHadBeforeItMovedIsInvalid) {
  // The pages right after the block are taken, so growing it must move it;
  // its old address is then nobody's.
  char* p = static_cast<char*>(hk_malloc(20 * kMiB));
  ASSERT_NE(p, nullptr);
  uintptr_t end = (reinterpret_cast<uintptr_t>(p) + hk_malloc_usable_size(p) + kPage - 1) & ~(kPage - 1);
  void* blocker = mmap(reinterpret_cast<void*>(end), kPage, PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  bool blocked = blocker != MAP_FAILED && blocker == reinterpret_cast<void*>(end);
  ASSERT_TRUE(blocked || errno == EEXIST) << "the page after the block could not be taken";
  void* q = hk_realloc(p, 40 * kMiB);
  ASSERT_NE(q, nullptr);
  ASSERT_NE(q, static_cast<void*>(p)) << "grew in place although the next page was taken";
  char pattern[64];
  snprintf(pattern, sizeof pattern, "hakmem: invalid pointer of %p in hk_realloc\\(\\)", static_cast<void*>(p));
  EXPECT_DEATH(hk_realloc(p, 50 * kMiB), pattern);
  hk_free(q);
  hk_trim(0);  // the cached 40 MiB mapping must not serve the tests below
  if (blocked) munmap(blocker, kPage);
}

}  // namespace
