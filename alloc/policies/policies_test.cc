// Each policy module's decision on known inputs: the modules are pure
// functions of hk_params and what the core tells them.
#include <stdint.h>

#include "alloc/core/policy.h"
#include "gtest/gtest.h"

namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;

hk_params Params() {
  hk_params p{};
  p.decommit_mode = HK_DECOMMIT_DONTNEED;
  p.release_delay_ms = 100;
  p.cache_mb = 16;
  p.resident_target_mb = 32;
  p.prewarm_kb = 64;
  return p;
}

TEST(ReleasePolicy, ImmediateReleasesEverythingAtOnce) {
  hk_params p = Params();
  EXPECT_TRUE(hk_release_immediate.release_oldest(&p, 0, 0));
  EXPECT_EQ(hk_release_immediate.hold_ms(&p), 0u);
}

TEST(ReleasePolicy, DelayedKeepsYoungEntriesUntilTheDelayOrTheCap) {
  hk_params p = Params();
  EXPECT_FALSE(hk_release_delayed.release_oldest(&p, 4 * kMiB, 99)) << "young entry under the cap must stay";
  EXPECT_TRUE(hk_release_delayed.release_oldest(&p, 4 * kMiB, 100)) << "entry idle for the whole delay must go";
  EXPECT_TRUE(hk_release_delayed.release_oldest(&p, 17 * kMiB, 0)) << "cache over cache_mb must shrink at once";
  EXPECT_FALSE(hk_release_delayed.release_oldest(&p, 16 * kMiB, 0)) << "exactly cache_mb is allowed";
  EXPECT_EQ(hk_release_delayed.hold_ms(&p), 100u);
}

TEST(ReleasePolicy, CappedIgnoresAgeAndHoldsForever) {
  hk_params p = Params();
  EXPECT_FALSE(hk_release_capped.release_oldest(&p, 16 * kMiB, UINT64_MAX / 2));
  EXPECT_TRUE(hk_release_capped.release_oldest(&p, 16 * kMiB + 1, 0));
  EXPECT_EQ(hk_release_capped.hold_ms(&p), HK_HOLD_FOREVER);
}

TEST(DecommitPolicy, ToTargetDecommitsOnlyWhileAboveTheTarget) {
  hk_params p = Params();
  EXPECT_EQ(hk_decommit_to_target.decommit_bytes(&p, 65536, 33 * kMiB), 65536u);
  EXPECT_EQ(hk_decommit_to_target.decommit_bytes(&p, 65536, 32 * kMiB), 0u)
      << "at the target nothing more is decommitted";
  p.decommit_mode = HK_DECOMMIT_FREE;
  EXPECT_EQ(hk_decommit_to_target.decommit_bytes(&p, 65536, 33 * kMiB), 65536u);
  p.decommit_mode = HK_DECOMMIT_OFF;
  EXPECT_EQ(hk_decommit_to_target.decommit_bytes(&p, 65536, 1024 * kMiB), 0u)
      << "HAKMEM_DECOMMIT=off must turn decommit off whatever the target";
  p.decommit_mode = HK_DECOMMIT_DONTNEED;
  p.resident_target_mb = 0;
  EXPECT_EQ(hk_decommit_to_target.decommit_bytes(&p, 4096, 4096), 4096u) << "target 0: always";
}

TEST(DecommitPolicy, ToTargetAnswersOnlyTheBytesAboveTheTarget) {
  hk_params p = Params();  // target 32 MiB
  EXPECT_EQ(hk_decommit_to_target.decommit_bytes(&p, 4 * kMiB, 33 * kMiB), 1 * kMiB)
      << "decommitting more than the excess would take the process below its target";
  EXPECT_EQ(hk_decommit_to_target.decommit_bytes(&p, 4 * kMiB, 32 * kMiB + 1), 1u);
}

TEST(DecommitPolicy, NeverKeepsEverythingResident) {
  hk_params p = Params();
  EXPECT_EQ(hk_decommit_never.decommit_bytes(&p, 1 << 22, UINT64_MAX), 0u);
}

TEST(PrewarmPolicy, HotClassesAsksForOnePageOfEachClassUpTo128Bytes) {
  hk_params p = Params();
  size_t total = 0;
  for (unsigned cls = 0; cls < 72; cls++) total += hk_prewarm_hot_classes.thread_bytes(&p, 16 * (cls + 1));
  EXPECT_EQ(total, 8u * 4096u);
  EXPECT_EQ(hk_prewarm_hot_classes.thread_bytes(&p, 144), 0u);
  for (unsigned cls = 0; cls < 72; cls++) EXPECT_EQ(hk_prewarm_none.thread_bytes(&p, 16), 0u);
}

TEST(Modules, DeclareTheParametersTheyRead) {
  // HAKMEM_SHOW_CONFIG marks settings no linked module reads; these bits are
  // what it goes by.
  EXPECT_EQ(hk_release_delayed.reads, unsigned{HK_READS_RELEASE_DELAY | HK_READS_CACHE});
  EXPECT_EQ(hk_release_capped.reads, unsigned{HK_READS_CACHE});
  EXPECT_EQ(hk_release_immediate.reads, 0u);
  EXPECT_EQ(hk_decommit_to_target.reads, unsigned{HK_READS_DECOMMIT_MODE | HK_READS_RESIDENT_TARGET});
  EXPECT_EQ(hk_decommit_never.reads, 0u);
  EXPECT_EQ(hk_prewarm_hot_classes.reads, unsigned{HK_READS_PREWARM});
  EXPECT_EQ(hk_prewarm_none.reads, 0u);
}

}  // namespace
