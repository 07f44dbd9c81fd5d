// The fault backend's triggers, called directly (no allocator): which calls
// fail, that failures touch nothing, and that a seed replays.
#include <errno.h>
#include <stdint.h>

#include <vector>

#include "alloc/backends/fault.h"
#include "gtest/gtest.h"

namespace {

constexpr size_t kPage = 4096;

// Reserves one page; returns the errno-style result and unmaps on success.
int ReserveOnce() {
  void* p = nullptr;
  int err = hk_backend_fault.reserve(kPage, kPage, &p);
  if (err == 0) {
    EXPECT_EQ(hk_backend_fault.release(p, kPage), 0);
  }
  return err;
}

class Fault : public ::testing::Test {
 protected:
  void TearDown() override { hk_fault_clear(); }
};

TEST_F(Fault, NoPlanPassesEveryCallThrough) {
  hk_fault_clear();
  for (int i = 0; i < 10; i++) EXPECT_EQ(ReserveOnce(), 0);
  EXPECT_EQ(hk_fault_failures(), 0u);
}

TEST_F(Fault, FailsExactlyTheNthCall) {
  hk_fault_plan plan{};
  plan.ops = HK_FAULT_RESERVE;  // releases are not counted
  plan.fail_nth = 3;
  hk_fault_set(&plan);
  std::vector<int> got;
  for (int i = 0; i < 6; i++) got.push_back(ReserveOnce());
  EXPECT_EQ(got, (std::vector<int>{0, 0, ENOMEM, 0, 0, 0}));
  EXPECT_EQ(hk_fault_calls(), 6u);
  EXPECT_EQ(hk_fault_failures(), 1u);
}

TEST_F(Fault, FailsEveryNthCall) {
  hk_fault_plan plan{};
  plan.ops = HK_FAULT_RESERVE;
  plan.fail_every = 2;
  hk_fault_set(&plan);
  std::vector<int> got;
  for (int i = 0; i < 6; i++) got.push_back(ReserveOnce());
  EXPECT_EQ(got, (std::vector<int>{0, ENOMEM, 0, ENOMEM, 0, ENOMEM}));
}

TEST_F(Fault, FailsReservesPastTheByteBudget) {
  uint64_t base = hk_os_read(reserved_bytes);
  hk_fault_plan plan{};
  plan.byte_budget = base + 3 * kPage;
  hk_fault_set(&plan);
  void* held[4] = {};
  int results[4];
  for (int i = 0; i < 4; i++) results[i] = hk_backend_fault.reserve(kPage, kPage, &held[i]);
  EXPECT_EQ(results[0], 0);
  EXPECT_EQ(results[1], 0);
  EXPECT_EQ(results[2], 0);
  EXPECT_EQ(results[3], ENOMEM) << "the fourth page is past the budget";
  EXPECT_EQ(held[3], nullptr) << "a failed reserve must not hand out memory";
  EXPECT_EQ(hk_backend_fault.release(held[0], kPage), 0);
  EXPECT_EQ(hk_backend_fault.reserve(kPage, kPage, &held[3]), 0) << "freeing a page makes room under the budget";
  for (int i = 1; i < 4; i++) EXPECT_EQ(hk_backend_fault.release(held[i], kPage), 0);
  EXPECT_EQ(hk_os_read(reserved_bytes), base);
}

TEST_F(Fault, FailedReleaseAndDecommitLeaveTheMappingAlone) {
  void* p = nullptr;
  ASSERT_EQ(hk_backend_fault.reserve(kPage, kPage, &p), 0);
  static_cast<char*>(p)[0] = 42;
  hk_fault_plan plan{};
  plan.ops = HK_FAULT_RELEASE | HK_FAULT_DECOMMIT | HK_FAULT_COMMIT;
  plan.fail_every = 1;
  hk_fault_set(&plan);
  EXPECT_EQ(hk_backend_fault.decommit(p, kPage, HK_DECOMMIT_DONTNEED), ENOMEM);
  EXPECT_EQ(hk_backend_fault.commit(p, kPage), ENOMEM);
  EXPECT_EQ(hk_backend_fault.release(p, kPage), ENOMEM);
  EXPECT_EQ(static_cast<char*>(p)[0], 42) << "a failed decommit or release must not touch the memory";
  hk_fault_clear();
  EXPECT_EQ(hk_backend_fault.release(p, kPage), 0);
}

TEST_F(Fault, RandomFailuresReplayForTheSameSeed) {
  auto run = [](uint32_t seed) {
    hk_fault_plan plan{};
    plan.ops = HK_FAULT_RESERVE;
    plan.random_seed = seed;
    plan.per_million = 300000;  // 30%
    hk_fault_set(&plan);
    std::vector<int> got;
    for (int i = 0; i < 200; i++) got.push_back(ReserveOnce());
    return got;
  };
  std::vector<int> a = run(7), b = run(7), c = run(8);
  EXPECT_EQ(a, b) << "the same seed must fail the same calls";
  EXPECT_NE(a, c) << "another seed should fail other calls";
  size_t failures = 0;
  for (int r : a) failures += r != 0;
  EXPECT_GT(failures, 30u);
  EXPECT_LT(failures, 90u) << "about 30% of 200 calls should fail";
}

}  // namespace
