// The misuse catalogue: each misuse the core detects gets one precise line on
// stderr naming the error, the pointer and the function, then abort()
// (HAKMEM_ON_ERROR=warn: the line, the block is leaked, the program goes on).
// Death tests run the statement in a child process and match its stderr.
#include <dlfcn.h>
#include <gnu/lib-names.h>
#include <stdint.h>
#include <stdlib.h>

#include <thread>
#include <vector>

#include "alloc/core/options.h"
#include "alloc/include/hakmem.h"
#include "gtest/gtest.h"

namespace {

#define PTR "0x[0-9a-f]+"

TEST(MisuseDeathTest, DoubleFreeOfSmallBlockAmongLiveBlocks) {
  EXPECT_DEATH(
      {
        std::vector<void*> live;
        for (int i = 0; i < 100; i++) live.push_back(hk_malloc(48));
        hk_free(live[50]);
        hk_free(live[50]);
      },
      "hakmem: double free of " PTR " in hk_free\\(\\)");
}

// Trim took the pages of the freed block out of its span (span.c): the
// block is no longer one the span has carved, which free() reports as such.
TEST(MisuseDeathTest, DoubleFreeOfABlockWhosePageTrimGaveBack) {
  EXPECT_DEATH(
      {
        std::vector<void*> blocks;
        for (int i = 0; i < 1000; i++) blocks.push_back(hk_malloc(2800));
        for (size_t i = 1; i < blocks.size(); i++) hk_free(blocks[i]);
        hk_trim(0);
        hk_free(blocks[30]);  // blocks[0]'s span, past the page blocks[0] is in
      },
      "hakmem: invalid free \\(not an allocated block\\) of " PTR " in hk_free\\(\\)");
}

TEST(MisuseDeathTest, DoubleFreeFromAnotherThread) {
  EXPECT_DEATH(
      {
        void* p = hk_malloc(200);
        void* keep = hk_malloc(200);
        std::thread t([p] {
          hk_free(p);
          hk_free(p);
        });
        t.join();
        hk_free(keep);
      },
      "hakmem: double free of " PTR " in hk_free\\(\\)");
}

TEST(MisuseDeathTest, DoubleFreeOfArenaBlock) {
  EXPECT_DEATH(
      {
        void* p = hk_malloc(1 << 20);
        hk_free(p);
        hk_free(p);
      },
      "hakmem: double free of " PTR " in hk_free\\(\\)");
}

TEST(MisuseDeathTest, DoubleFreeOfArenaBlockMergedWithItsNeighbours) {
  // Once freed, the block's pages join the free run before it: the second
  // free finds a page-aligned address inside a free run.
  EXPECT_DEATH(
      {
        void* a = hk_malloc(1 << 20);
        void* b = hk_malloc(1 << 20);
        void* keep = hk_malloc(1 << 20);
        hk_free(a);
        hk_free(b);
        hk_free(b);
        hk_free(keep);
      },
      "hakmem: double free of " PTR " in hk_free\\(\\)");
}

TEST(MisuseDeathTest, DoubleFreeOfMappedLargeBlock) {
  // Above the arena's 16 MiB a block is its own mapping; a freed one waits
  // in the mapping cache, where the second free cannot tell it from a
  // pointer into another cached mapping.
  EXPECT_DEATH(
      {
        void* p = hk_malloc(20 << 20);
        hk_free(p);
        hk_free(p);
      },
      "hakmem: free of an interior or freed pointer of " PTR " in hk_free\\(\\)");
}

TEST(MisuseDeathTest, FreeOfStackPointer) {
  EXPECT_DEATH(
      {
        int x;
        hk_free(&x);
      },
      "hakmem: invalid free \\(pointer not from hakmem\\) of " PTR " in hk_free\\(\\)");
}

TEST(MisuseDeathTest, FreeOfGlobal) {
  static char global[64];
  EXPECT_DEATH(hk_free(global), "hakmem: invalid free \\(pointer not from hakmem\\) of " PTR " in hk_free\\(\\)");
}

TEST(MisuseDeathTest, FreeOfAnotherAllocatorsBlock) {
  // This test links //alloc:hakmem_api, so malloc here is the C library's.
  // A block glibc mapped on its own lies outside glibc's heap, where
  // nothing proves whose it is.
  EXPECT_DEATH(
      {
        void* p = malloc(4 << 20);
        hk_free(p);
      },
      "hakmem: invalid free \\(pointer not from hakmem\\) of " PTR " in hk_free\\(\\)");
}

TEST(Misuse, GlibcHeapBlockGoesBackToGlibc) {
  // glibc's own malloc, from libc's scope (a sanitizer's malloc comes first
  // in the global one): a block of its brk heap given to hk_free is handed
  // to glibc's free (alloc/core/foreign.h), which glibc's next malloc of
  // that size shows by reusing it.
  void* libc = dlopen(LIBC_SO, RTLD_LAZY | RTLD_NOLOAD);
  ASSERT_NE(libc, nullptr);
  auto glibc_malloc = reinterpret_cast<void* (*)(size_t)>(dlsym(libc, "malloc"));
  auto glibc_free = reinterpret_cast<void (*)(void*)>(dlsym(libc, "free"));
  ASSERT_TRUE(glibc_malloc != nullptr && glibc_free != nullptr);
  void* p = glibc_malloc(40);
  ASSERT_FALSE(hk_owns(p));
  hk_stats_t before, after;
  hk_stats_get(&before);
  hk_free(p);
  hk_stats_get(&after);
  EXPECT_EQ(after.foreign_glibc_frees, before.foreign_glibc_frees + 1) << "the statistics count it";
  void* q = glibc_malloc(40);
  EXPECT_EQ(q, p) << "glibc did not get its block back";
  glibc_free(q);
  dlclose(libc);
}

TEST(MisuseDeathTest, FreeOfInteriorPointer) {
  EXPECT_DEATH(
      {
        char* p = static_cast<char*>(hk_malloc(100));
        hk_free(p + 16);
      },
      "hakmem: free of an interior pointer of " PTR " in hk_free\\(\\)");
}

TEST(MisuseDeathTest, FreeOfInteriorPointerOfArenaBlock) {
  EXPECT_DEATH(
      {
        char* p = static_cast<char*>(hk_malloc(10 << 20));
        hk_free(p + (5 << 20));  // a page boundary inside the block
      },
      "hakmem: free of an interior pointer of " PTR " in hk_free\\(\\)");
  EXPECT_DEATH(
      {
        char* p = static_cast<char*>(hk_malloc(1 << 20));
        hk_free(p + 4096);
      },
      "hakmem: free of an interior pointer of " PTR " in hk_free\\(\\)");
}

TEST(MisuseDeathTest, FreeIntoAFreedArenaBlockIsInvalid) {
  EXPECT_DEATH(
      {
        char* p = static_cast<char*>(hk_malloc(1 << 20));
        char* keep = static_cast<char*>(hk_malloc(1 << 20));
        hk_free(p);
        hk_free(p + 4096);
        hk_free(keep);
      },
      "hakmem: invalid free \\(not an allocated block\\) of " PTR " in hk_free\\(\\)");
}

TEST(MisuseDeathTest, FreeOfInteriorPointerOfMappedLargeBlock) {
  EXPECT_DEATH(
      {
        char* p = static_cast<char*>(hk_malloc(20 << 20));
        hk_free(p + (5 << 20));
      },
      "hakmem: free of an interior pointer of " PTR " in hk_free\\(\\)");
}

TEST(MisuseDeathTest, FreeOfMisalignedPointer) {
  EXPECT_DEATH(
      {
        char* p = static_cast<char*>(hk_malloc(100));
        hk_free(p + 3);
      },
      "hakmem: free of a misaligned pointer of " PTR " in hk_free\\(\\)");
}

TEST(MisuseDeathTest, FreeSizedWithWrongSize) {
  EXPECT_DEATH(
      {
        void* p = hk_malloc(1000);
        hk_free_sized(p, 2000);
      },
      "hakmem: free_sized with a size that does not match the block of " PTR " in hk_free_sized\\(\\)");
  EXPECT_DEATH(
      {
        void* p = hk_malloc(1000);
        hk_free_sized(p, 100);
      },
      "hakmem: free_sized with a size that does not match the block of " PTR " in hk_free_sized\\(\\)");
}

TEST(MisuseDeathTest, ReallocOfFreedPointer) {
  EXPECT_DEATH(
      {
        void* keep = hk_malloc(64);
        void* p = hk_malloc(64);
        hk_free(p);
        hk_realloc(p, 128);
        hk_free(keep);
      },
      "hakmem: use of a freed block of " PTR " in hk_realloc\\(\\)");
}

TEST(MisuseDeathTest, ReallocOfFreedArenaBlock) {
  EXPECT_DEATH(
      {
        void* p = hk_malloc(1 << 20);
        void* keep = hk_malloc(1 << 20);
        hk_free(p);
        hk_realloc(p, 2 << 20);
        hk_free(keep);
      },
      "hakmem: use of a freed block of " PTR " in hk_realloc\\(\\)");
}

TEST(MisuseDeathTest, ReallocOfForeignPointer) {
  static char global[64];
  EXPECT_DEATH(hk_realloc(global, 10), "hakmem: invalid pointer of " PTR " in hk_realloc\\(\\)");
}

TEST(MisuseDeathTest, ReallocOfInteriorPointerOfSmallBlock) {
  EXPECT_DEATH(
      {
        char* p = static_cast<char*>(hk_malloc(256));
        hk_realloc(p + 16, 100);  // would fit in place: must still be refused
        hk_free(p);
      },
      "hakmem: invalid pointer of " PTR " in hk_realloc\\(\\)");
}

TEST(MisuseDeathTest, ReallocToZeroFreesSoASecondFreeIsADoubleFree) {
  EXPECT_DEATH(
      {
        void* keep = hk_malloc(48);
        void* p = hk_malloc(48);
        EXPECT_EQ(hk_realloc(p, 0), nullptr);
        hk_free(p);
        hk_free(keep);
      },
      "hakmem: double free of " PTR " in hk_free\\(\\)");
}

TEST(MisuseDeathTest, UsableSizeOfForeignPointer) {
  static int global;
  EXPECT_DEATH(hk_malloc_usable_size(&global), "hakmem: invalid pointer of " PTR " in hk_malloc_usable_size\\(\\)");
}

TEST(Misuse, WarnModeReportsLeaksAndContinues) {
  ASSERT_EQ(hk_option_parse("HAKMEM_ON_ERROR", "warn"), 0);
  int x;
  void* keep = hk_malloc(32);
  void* p = hk_malloc(32);
  hk_free(p);
  testing::internal::CaptureStderr();
  hk_free(&x);
  hk_free(p);  // double free: reported, list left intact
  std::string err = testing::internal::GetCapturedStderr();
  ASSERT_EQ(hk_option_parse("HAKMEM_ON_ERROR", "abort"), 0);
  EXPECT_NE(err.find("hakmem: invalid free (pointer not from hakmem) of 0x"), std::string::npos) << err;
  EXPECT_NE(err.find("hakmem: double free of 0x"), std::string::npos) << err;
  // The free list was not corrupted: two allocations give two distinct blocks.
  void* a = hk_malloc(32);
  void* b = hk_malloc(32);
  EXPECT_NE(a, b);
  hk_free(a);
  hk_free(b);
  hk_free(keep);
}

}  // namespace
