// Backend failures seen from the API: with the backend failing every Nth call
// (N swept), past a byte budget, or at random, hk_malloc and friends return
// NULL with errno ENOMEM, never hand out or damage memory, work again once
// the backend recovers, and leave nothing mapped once everything is freed and
// trimmed. Links the "fault" test variant (variant_fault.c).
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "alloc/backends/fault.h"
#include "alloc/include/hakmem.h"
#include "gtest/gtest.h"

namespace {

struct Block {
  uint8_t* p;
  size_t n;
  uint8_t seed;
};

uint32_t Next(uint32_t* x) {
  *x ^= *x << 13;
  *x ^= *x >> 17;
  *x ^= *x << 5;
  return *x;
}

uint8_t PatternAt(const Block& b, size_t i) { return static_cast<uint8_t>(b.seed + i * 131); }

// A stride through the block: every byte of small blocks, fewer in bigger
// ones (the sanitizer builds pay for every byte).
size_t Step(const Block& b) { return b.n <= 4096 ? 1 : b.n <= 65536 ? 61 : 4093; }

// Writes the block's pattern at every Step and at its last byte.
void Fill(const Block& b) {
  size_t step = Step(b);
  for (size_t i = 0; i < b.n; i += step) b.p[i] = PatternAt(b, i);
  b.p[b.n - 1] = PatternAt(b, b.n - 1);
}

// Checks what Fill wrote into the first `upto` bytes (all of them by default).
bool Intact(const Block& b, size_t upto = SIZE_MAX) {
  size_t step = Step(b);
  size_t end = upto < b.n ? upto : b.n;
  for (size_t i = 0; i < end; i += step)
    if (b.p[i] != PatternAt(b, i)) return false;
  return end < b.n || b.p[b.n - 1] == PatternAt(b, b.n - 1);
}

// Outcome of one faulty workload.
struct Round {
  std::vector<Block> live;
  uint64_t failures = 0;   // allocation calls that returned NULL
  uint64_t bad_errno = 0;  // ... without errno == ENOMEM
  uint64_t damaged = 0;    // blocks whose contents changed
};

// Mixed small and large mallocs, callocs, reallocs and frees; every failure
// is checked for errno, every survivor for its contents.
void Workload(uint32_t seed, int steps, Round* r) {
  uint32_t x = seed * 2654435761u + 1;
  for (int i = 0; i < steps; i++) {
    uint32_t v = Next(&x);
    unsigned what = v % 8;
    if (what < 2 && !r->live.empty()) {
      size_t k = Next(&x) % r->live.size();
      if (!Intact(r->live[k])) r->damaged++;
      hk_free(r->live[k].p);
      r->live[k] = r->live.back();
      r->live.pop_back();
      continue;
    }
    if (what == 2 && !r->live.empty()) {
      Block& b = r->live[Next(&x) % r->live.size()];
      size_t n = b.n < (1u << 20) ? b.n * 2 + 100 : b.n / 2;  // grow, but stay bounded
      errno = 0;
      void* q = hk_realloc(b.p, n);
      if (q == nullptr) {
        r->failures++;
        if (errno != ENOMEM) r->bad_errno++;
        if (!Intact(b)) r->damaged++;  // a failed realloc leaves the old block alone
      } else {
        Block moved{static_cast<uint8_t*>(q), b.n, b.seed};
        if (!Intact(moved, n)) r->damaged++;  // realloc kept the old contents (as far as they fit)
        b = Block{static_cast<uint8_t*>(q), n, static_cast<uint8_t>(v >> 8)};
        Fill(b);
      }
      continue;
    }
    size_t n = (what == 7) ? 33000 + Next(&x) % (1u << 20) : 1 + Next(&x) % 4000;
    errno = 0;
    void* p = (what == 6) ? hk_calloc(1, n) : hk_malloc(n);
    if (p == nullptr) {
      r->failures++;
      if (errno != ENOMEM) r->bad_errno++;
      continue;
    }
    if (what == 6 && (static_cast<uint8_t*>(p)[0] != 0 || static_cast<uint8_t*>(p)[n - 1] != 0)) r->damaged++;
    Block b{static_cast<uint8_t*>(p), n, static_cast<uint8_t>(v >> 8)};
    Fill(b);
    r->live.push_back(b);
  }
}

void FreeAll(Round* r) {
  for (const Block& b : r->live) {
    if (!Intact(b)) r->damaged++;
    hk_free(b.p);
  }
  r->live.clear();
}

class FaultSweep : public ::testing::Test {
 protected:
  void SetUp() override {
    hk_fault_clear();
    // The thread's heap and the heap-struct pool stay mapped for the life of
    // the process; create them before taking the baseline.
    hk_free(hk_malloc(1));
    std::thread([] { hk_free(hk_malloc(1)); }).join();
    hk_trim(0);
    baseline_ = Reserved();
  }
  void TearDown() override { hk_fault_clear(); }

  static uint64_t Reserved() {
    hk_stats_t s;
    hk_stats_get(&s);
    return s.bytes_reserved;
  }

  // Runs the workload under `plan` on this thread and on a fresh thread (its
  // heap creation and prewarm fail too), then recovers and checks the round.
  void RunRound(const hk_fault_plan& plan, const char* what, uint64_t* total_failures) {
    SCOPED_TRACE(what);
    Round main_round, thread_round;
    hk_fault_set(&plan);
    Workload(plan.fail_every * 7919 + plan.random_seed + 1, 500, &main_round);
    std::thread([&] {
      Workload(plan.fail_every * 104729 + plan.random_seed + 2, 200, &thread_round);
      FreeAll(&thread_round);  // blocks freed by their own thread before it exits
    }).join();
    uint64_t backend_failures = hk_fault_failures();
    hk_fault_clear();

    // The backend recovered: allocation works again, small and large, on an
    // existing and on a new thread.
    void* small = hk_malloc(100);
    void* large = hk_malloc(1 << 20);
    ASSERT_NE(small, nullptr) << "small malloc still failing after the backend recovered";
    ASSERT_NE(large, nullptr) << "large malloc still failing after the backend recovered";
    memset(large, 1, 1 << 20);
    hk_free(small);
    hk_free(large);
    bool thread_ok = false;
    std::thread([&] {
      void* p = hk_malloc(64);
      thread_ok = p != nullptr;
      hk_free(p);
    }).join();
    EXPECT_TRUE(thread_ok) << "a new thread cannot allocate after the backend recovered";

    FreeAll(&main_round);
    for (const Round* r : {&main_round, &thread_round}) {
      EXPECT_EQ(r->bad_errno, 0u) << "allocation failed without errno ENOMEM";
      EXPECT_EQ(r->damaged, 0u) << "block contents changed";
    }
    EXPECT_LE(main_round.failures + thread_round.failures, backend_failures)
        << "more allocations failed than the backend refused calls";
    hk_trim(0);
    EXPECT_EQ(Reserved(), baseline_) << "mapped bytes did not return to the baseline after free + trim";
    *total_failures += main_round.failures + thread_round.failures;
  }

  uint64_t baseline_ = 0;
};

// One instance per N, so gtest's sharding spreads the sweep.
class EveryNthCall : public FaultSweep, public ::testing::WithParamInterface<uint64_t> {};

TEST_P(EveryNthCall, FailingGivesEnomemAndNothingLeaks) {
  uint64_t failures = 0;
  hk_fault_plan plan{};
  plan.fail_every = GetParam();
  RunRound(plan, ("fail every " + std::to_string(GetParam()) + "th backend call").c_str(), &failures);
  EXPECT_GT(failures, 0u) << "no allocation failed: this N tested nothing";
}

INSTANTIATE_TEST_SUITE_P(Sweep, EveryNthCall, ::testing::Range<uint64_t>(1, 13));

// Only unmapping, or only decommitting (and committing), fails: memory the
// backend would not unmap or decommit must still be tracked and given back
// later; a failed commit fails only the allocation that needed it.
class OnlyReleaseOrDecommit : public FaultSweep,
                              public ::testing::WithParamInterface<std::tuple<uint32_t, uint64_t>> {};

TEST_P(OnlyReleaseOrDecommit, FailingLosesNothing) {
  uint64_t failures = 0;
  hk_fault_plan plan{};
  plan.ops = std::get<0>(GetParam());
  plan.fail_every = std::get<1>(GetParam());
  RunRound(plan, ("ops " + std::to_string(plan.ops) + " every " + std::to_string(plan.fail_every)).c_str(),
           &failures);
}

INSTANTIATE_TEST_SUITE_P(Sweep, OnlyReleaseOrDecommit,
                         ::testing::Combine(::testing::Values(uint32_t{HK_FAULT_RELEASE}, uint32_t{HK_FAULT_DECOMMIT},
                                                              uint32_t{HK_FAULT_COMMIT | HK_FAULT_DECOMMIT}),
                                            ::testing::Values(uint64_t{1}, uint64_t{3})));

TEST_F(FaultSweep, ByteBudgetFailsOnlyPastTheBudget) {
  uint64_t failures = 0;
  hk_fault_plan plan{};
  plan.byte_budget = baseline_ + (24u << 20);
  RunRound(plan, "24 MiB budget", &failures);
  EXPECT_GT(failures, 0u) << "a 24 MiB budget should stop a workload with multi-MiB blocks";
  // Within the budget nothing fails.
  hk_fault_set(&plan);
  void* p = hk_malloc(1 << 20);
  EXPECT_NE(p, nullptr) << "1 MiB under a 24 MiB budget must succeed";
  hk_free(p);
}

TEST_F(FaultSweep, RandomFailuresWithASeed) {
  uint64_t failures = 0;
  for (uint32_t seed = 1; seed <= 4; seed++) {
    hk_fault_plan plan{};
    plan.random_seed = seed;
    plan.per_million = 200000;
    RunRound(plan, ("random seed " + std::to_string(seed)).c_str(), &failures);
    if (HasFatalFailure()) return;
  }
  EXPECT_GT(failures, 0u);
}

// realloc grows a block above 16 MiB by moving its pages (the backend's
// move). When the move fails, realloc copies instead: same contents, the
// old range still the old block's until it is freed, nothing lost.
TEST_F(FaultSweep, AFailedPageMoveFallsBackToCopying) {
  Block b{static_cast<uint8_t*>(hk_malloc(20u << 20)), 20u << 20, 9};
  ASSERT_NE(b.p, nullptr);
  Fill(b);
  hk_stats_t before;
  hk_stats_get(&before);
  hk_fault_plan plan{};
  plan.ops = HK_FAULT_MOVE;
  plan.fail_every = 1;
  hk_fault_set(&plan);
  uint8_t* q = static_cast<uint8_t*>(hk_realloc(b.p, 40u << 20));
  EXPECT_GT(hk_fault_failures(), 0u) << "the move was not attempted";
  hk_fault_clear();
  ASSERT_NE(q, nullptr);
  hk_stats_t after;
  hk_stats_get(&after);
  EXPECT_EQ(after.syscalls_mremap, before.syscalls_mremap) << "a failed move makes no mremap";
  b.p = q;
  EXPECT_TRUE(Intact(b)) << "contents lost when the move failed";
  EXPECT_EQ(after.large_live, before.large_live) << "the old block was not freed after the copy";
  hk_free(q);
}

}  // namespace
