// How a thread's spans serve a class (heap.c, span.c): where the next block comes
// from when the span malloc pops from runs dry.
#include <stdint.h>
#include <string.h>

#include <algorithm>
#include <random>
#include <thread>
#include <vector>

#include "alloc/core/stats_testing.h"
#include "alloc/include/hakmem.h"
#include "gtest/gtest.h"

namespace {

using hk_testing::kSlotBytes;
using hk_testing::Stats;
using hk_testing::ClassOf;

// Each test runs in a thread of its own: a fresh heap, no spans of any class
// left by earlier tests.
template <typename F>
void InFreshThread(F f) {
  std::thread(f).join();
}

// Span A is full, span B (current) has used every block carved so far, and
// one block of A is freed. The next allocation must be that block, not fresh
// memory carved from B: blocks already resident come before pages not yet
// touched.
TEST(Span, AFreedBlockOfAnotherSpanIsReusedBeforeFreshMemoryIsCarved) {
  InFreshThread([] {
    const size_t kSize = 2800;  // one block per carved page: every refill carves exactly one
    std::vector<char*> blocks;
    char* first = static_cast<char*>(hk_malloc(kSize));
    ASSERT_NE(first, nullptr);
    const size_t stride = hk_malloc_usable_size(first);
    blocks.push_back(first);
    // Fill span A: blocks come in address order until the next span starts.
    char* in_b = nullptr;
    for (int i = 0; i < 100000 && in_b == nullptr; i++) {
      char* p = static_cast<char*>(hk_malloc(kSize));
      ASSERT_NE(p, nullptr);
      if (p != blocks.back() + stride) in_b = p;
      blocks.push_back(p);
    }
    ASSERT_NE(in_b, nullptr) << "never left the first span";
    ASSERT_GT(blocks.size(), 3u);
    char* freed = blocks[blocks.size() / 2];  // a block of A
    hk_free(freed);
    char* next = static_cast<char*>(hk_malloc(kSize));
    EXPECT_EQ(next, freed) << "fresh memory (" << static_cast<void*>(next) << ") was carved while block "
                           << static_cast<void*>(freed) << " of another span was free";
    hk_free(next);
    for (char* p : blocks)
      if (p != freed) hk_free(p);
  });
}

// A class drops to half its live count (frees spread over its spans) and
// climbs back: the blocks freed are resident already and must serve the
// climb before any fresh memory is carved, or the carved (resident) part of
// each class would creep towards the whole capacity of every span it ever
// used, as a long-running program's RSS.
TEST(Span, AClassClimbingBackToItsHighestLiveCountCarvesNothingNew) {
  InFreshThread([] {
    const size_t kSize = 2800;
    const int c = ClassOf(kSize);
    ASSERT_GE(c, 0);
    const int kLive = 1000;
    const hk_class_stats_t before = Stats().classes[c];  // other threads' blocks of the class
    std::vector<void*> blocks;
    for (int i = 0; i < kLive; i++) blocks.push_back(hk_malloc(kSize));
    const hk_class_stats_t peak = Stats().classes[c];
    const uint64_t carved_at_peak = (peak.blocks_in_use + peak.blocks_free) - (before.blocks_in_use + before.blocks_free);
    std::mt19937 rng(7);
    for (void*& p : blocks)
      if (rng() & 1) {
        hk_free(p);
        p = nullptr;
      }
    for (void*& p : blocks)
      if (p == nullptr) p = hk_malloc(kSize);
    const hk_class_stats_t after = Stats().classes[c];
    const uint64_t carved = (after.blocks_in_use + after.blocks_free) - (before.blocks_in_use + before.blocks_free);
    EXPECT_EQ(carved, carved_at_peak) << "back at " << kLive << " live blocks, " << carved - carved_at_peak
                                      << " more were carved while freed ones waited in other spans";
    for (void* p : blocks) hk_free(p);
  });
}

// A few blocks outlive a burst of their class allocated after them, in the
// same span. Once the burst is freed, trim must give back the span's pages
// past the live blocks (they would otherwise stay resident until the last
// live block goes), and the span must carve them again when the class grows.
void TrimGivesBackThePagesPastTheLastLiveBlock(size_t kSize, int burst_blocks) {
  InFreshThread([kSize, burst_blocks] {
    const int c = ClassOf(kSize);
    ASSERT_GE(c, 0);
    const hk_class_stats_t before = Stats().classes[c];  // other threads' blocks of the class
    std::vector<char*> live;
    for (int i = 0; i < 4; i++) {
      live.push_back(static_cast<char*>(hk_malloc(kSize)));
      memset(live.back(), 'a' + i, kSize);
    }
    const size_t stride = hk_malloc_usable_size(live[0]);
    const uint64_t page_blocks = 4096 / stride + 1;  // blocks touching one page
    std::vector<char*> burst;
    for (int i = 0; i < burst_blocks; i++) {  // several spans' worth: the live blocks' span is carved to its end
      burst.push_back(static_cast<char*>(hk_malloc(kSize)));
      memset(burst.back(), 'z', kSize);
    }
    const uint64_t dontneed_before = Stats().syscalls_madvise_dontneed;
    for (char* p : burst) hk_free(p);
    hk_trim(0);
    const hk_class_stats_t after = Stats().classes[c];
    const uint64_t carved = (after.blocks_in_use + after.blocks_free) - (before.blocks_in_use + before.blocks_free);
    EXPECT_EQ(after.blocks_in_use - before.blocks_in_use, live.size());
    EXPECT_LE(carved, live.size() + page_blocks)
        << "after trim the class keeps " << carved << " blocks carved for " << live.size()
        << " live ones; the pages past them hold only free blocks";
    EXPECT_GT(Stats().syscalls_madvise_dontneed, dontneed_before);
    for (size_t i = 0; i < live.size(); i++)
      for (size_t k = 0; k < kSize; k++) ASSERT_EQ(live[i][k], static_cast<char>('a' + i)) << "live block " << i;
    // The class grows again into the pages trim gave back.
    std::vector<char*> again;
    for (int i = 0; i < burst_blocks; i++) {
      again.push_back(static_cast<char*>(hk_malloc(kSize)));
      ASSERT_NE(again.back(), nullptr);
      memset(again.back(), 'y', kSize);
    }
    std::vector<char*> sorted = again;
    sorted.insert(sorted.end(), live.begin(), live.end());
    std::sort(sorted.begin(), sorted.end());
    for (size_t i = 1; i < sorted.size(); i++)
      ASSERT_GE(sorted[i], sorted[i - 1] + stride) << "two blocks overlap after the span was carved again";
    for (char* p : again) hk_free(p);
    for (char* p : live) hk_free(p);
  });
}

// 6000 bytes (the 6 KiB class): spans of six slots, so trim takes whole
// slots as well as the pages of the slot the live blocks are in.
TEST(Span, TrimGivesBackThePagesOfAMultiSlotSpanPastItsLastLiveBlock) {
  TrimGivesBackThePagesPastTheLastLiveBlock(6000, 1000);
}

// A span of one slot, which only pages can shrink: 64 bytes, and 2000 (the
// 2 KiB class, the largest whose spans are one slot).
TEST(Span, TrimGivesBackThePagesOfASingleSlotSpanPastItsLastLiveBlock) {
  TrimGivesBackThePagesPastTheLastLiveBlock(64, 3 * static_cast<int>(kSlotBytes / 64));
  TrimGivesBackThePagesPastTheLastLiveBlock(2000, 1000);
}

}  // namespace
