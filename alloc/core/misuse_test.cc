// Each misuse the core detects gets one precise line on stderr and an abort
// (HAKMEM_ON_ERROR=warn: the line, and the program goes on).
#include <stdint.h>
#include <stdlib.h>

#include "alloc/core/options.h"
#include "alloc/include/hakmem.h"
#include "gtest/gtest.h"

namespace {

TEST(MisuseDeathTest, DoubleFreeOfSmallBlock) {
  EXPECT_DEATH(
      {
        void* keep = hk_malloc(48);  // keeps the span from being retired
        void* p = hk_malloc(48);
        hk_free(p);
        hk_free(p);
        hk_free(keep);
      },
      "hakmem: double free of 0x[0-9a-f]+ in hk_free\\(\\)");
}

TEST(MisuseDeathTest, DoubleFreeOfLargeBlock) {
  EXPECT_DEATH(
      {
        void* p = hk_malloc(1 << 20);
        hk_free(p);
        hk_free(p);
      },
      "hakmem: free of an interior or freed pointer of 0x[0-9a-f]+ in hk_free\\(\\)");
}

TEST(MisuseDeathTest, FreeOfStackPointer) {
  EXPECT_DEATH(
      {
        int x;
        hk_free(&x);
      },
      "hakmem: invalid free \\(pointer not from hakmem\\) of 0x[0-9a-f]+ in hk_free\\(\\)");
}

TEST(MisuseDeathTest, FreeOfInteriorPointer) {
  EXPECT_DEATH(
      {
        char* p = static_cast<char*>(hk_malloc(100));
        hk_free(p + 16);
      },
      "hakmem: free of an interior pointer of 0x[0-9a-f]+ in hk_free\\(\\)");
}

TEST(MisuseDeathTest, FreeOfMisalignedPointer) {
  EXPECT_DEATH(
      {
        char* p = static_cast<char*>(hk_malloc(100));
        hk_free(p + 3);
      },
      "hakmem: free of a misaligned pointer of 0x[0-9a-f]+ in hk_free\\(\\)");
}

TEST(MisuseDeathTest, UsableSizeOfForeignPointer) {
  static int global;
  EXPECT_DEATH(hk_malloc_usable_size(&global), "hakmem: invalid pointer of 0x[0-9a-f]+ in hk_malloc_usable_size\\(\\)");
}

TEST(Misuse, WarnModeReportsAndContinues) {
  ASSERT_EQ(hk_option_set("HAKMEM_ON_ERROR", "warn"), 0);
  int x;
  testing::internal::CaptureStderr();
  hk_free(&x);
  std::string err = testing::internal::GetCapturedStderr();
  ASSERT_EQ(hk_option_set("HAKMEM_ON_ERROR", "abort"), 0);
  EXPECT_NE(err.find("hakmem: invalid free (pointer not from hakmem) of 0x"), std::string::npos) << err;
  // The allocator still works.
  void* p = hk_malloc(10);
  EXPECT_NE(p, nullptr);
  hk_free(p);
}

}  // namespace
