// Checked builds (core_checked, HAKMEM_CHECKED=1) catch a write to a freed
// block when the block is handed out again.
#include <string.h>

#include "alloc/include/hakmem.h"
#include "gtest/gtest.h"

namespace {

#define PTR "0x[0-9a-f]+"

TEST(CheckedDeathTest, WriteAfterFreeToBodyIsReportedOnReuse) {
  EXPECT_DEATH(
      {
        char* keep = static_cast<char*>(hk_malloc(128));
        char* p = static_cast<char*>(hk_malloc(128));
        hk_free(p);
        p[100] = 'x';        // write after free
        hk_malloc(128);      // LIFO: reuses p
        hk_free(keep);
      },
      "hakmem: write after free \\(freed block modified\\) of " PTR " in malloc\\(\\)");
}

TEST(CheckedDeathTest, OverwrittenFreeListLinkIsNotFollowed) {
  EXPECT_DEATH(
      {
        void* keep = hk_malloc(64);
        void** p = static_cast<void**>(hk_malloc(64));
        hk_free(p);
        p[0] = reinterpret_cast<void*>(0x41414141);  // forge the link
        hk_malloc(64);
        hk_free(keep);
      },
      "hakmem: write after free \\(free-list link overwritten\\) of " PTR " in malloc\\(\\)");
}

TEST(Checked, CleanUseRaisesNothing) {
  for (int round = 0; round < 50; round++) {
    void* v[200];
    for (int i = 0; i < 200; i++) {
      v[i] = hk_malloc(16 + i * 24);
      memset(v[i], i, 16 + i * 24);
    }
    for (int i = 0; i < 200; i++) hk_free(v[i]);
  }
}

}  // namespace
