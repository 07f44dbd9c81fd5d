// API conformance of the hk_ functions (the libc names share their bodies;
// routing_test.cc checks that they reach them).
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <vector>

#include "alloc/include/hakmem.h"
#include "gtest/gtest.h"

namespace {

bool IsAligned(const void* p, size_t a) { return (reinterpret_cast<uintptr_t>(p) & (a - 1)) == 0; }

TEST(Api, EverySizeIsSixteenByteAlignedAndUsableSizeCoversRequest) {
  std::vector<void*> blocks;
  for (size_t n = 0; n <= 70000; n += (n < 4096 ? 1 : 97)) {
    void* p = hk_malloc(n);
    ASSERT_NE(p, nullptr) << "size " << n;
    EXPECT_TRUE(IsAligned(p, 16)) << "size " << n << " gave " << p;
    EXPECT_GE(hk_malloc_usable_size(p), n) << "size " << n;
    memset(p, 0xA5, n);
    blocks.push_back(p);
  }
  for (void* p : blocks) hk_free(p);
}

TEST(Api, SizeClassWasteStaysBoundedAbove128Bytes) {
  // Every size up to 32 KiB, then every 7th through the medium classes.
  for (size_t n = 129; n <= 262144; n += n < 32768 ? 1 : 7) {
    void* p = hk_malloc(n);
    ASSERT_NE(p, nullptr);
    size_t usable = hk_malloc_usable_size(p);
    // One class step is at most 1/8 of the class below it: waste < 1/9 of the block.
    EXPECT_LT((usable - n) * 9, usable) << "request " << n << " usable " << usable;
    hk_free(p);
  }
}

TEST(Api, AlignedAllocHonoursEveryPowerOfTwoUpTo1MiB) {
  for (size_t align = 1; align <= (1u << 20); align <<= 1) {
    for (size_t n : {size_t{1}, size_t{17}, align, align + 1, size_t{3} * align, size_t{100000}}) {
      if (align >= sizeof(void*)) {
        void* p = nullptr;
        ASSERT_EQ(hk_posix_memalign(&p, align, n), 0) << "align " << align << " size " << n;
        EXPECT_TRUE(IsAligned(p, align)) << "posix_memalign align " << align << " size " << n;
        EXPECT_GE(hk_malloc_usable_size(p), n);
        memset(p, 1, n);
        hk_free(p);
      }
      void* q = hk_aligned_alloc(align, (n + align - 1) & ~(align - 1));  // size a multiple of align
      ASSERT_NE(q, nullptr);
      EXPECT_TRUE(IsAligned(q, align)) << "aligned_alloc align " << align << " size " << n;
      memset(q, 2, n);
      hk_free(q);
      void* r = hk_memalign(align, n);
      ASSERT_NE(r, nullptr);
      EXPECT_TRUE(IsAligned(r, align)) << "memalign align " << align << " size " << n;
      hk_free(r);
    }
  }
}

TEST(Api, AlignmentOf4MiBOrMoreFailsWithEnomem) {
  for (size_t align = size_t{4} << 20; align != 0 && align <= (size_t{1} << 62); align <<= 4) {
    void* p = reinterpret_cast<void*>(0x1);
    EXPECT_EQ(hk_posix_memalign(&p, align, 1), ENOMEM) << align;
    errno = 0;
    EXPECT_EQ(hk_aligned_alloc(align, align), nullptr) << align;
    EXPECT_EQ(errno, ENOMEM) << align;
  }
}

TEST(Api, ZeroBytesWithLargeAlignmentIsAUsableBlock) {
  // Found by the ops fuzzer: this used to end exactly at its mapping.
  for (size_t align : {size_t{65536}, size_t{128} << 10, size_t{2} << 20}) {
    void* p = hk_aligned_alloc(align, 0);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(IsAligned(p, align));
    EXPECT_GE(hk_malloc_usable_size(p), 1u);
    p = hk_realloc(p, 16);
    ASSERT_NE(p, nullptr);
    hk_free(p);
  }
}

TEST(Api, BadAlignmentIsEinval) {
  void* p = reinterpret_cast<void*>(0x1);
  EXPECT_EQ(hk_posix_memalign(&p, 24, 10), EINVAL);
  EXPECT_EQ(hk_posix_memalign(&p, 4, 10), EINVAL);  // below sizeof(void*)
  EXPECT_EQ(hk_posix_memalign(&p, 0, 10), EINVAL);
  EXPECT_EQ(p, reinterpret_cast<void*>(0x1)) << "posix_memalign must not touch *out on failure";
  // Above the highest power of two a size_t holds: no alignment to round to.
  errno = 0;
  EXPECT_EQ(hk_aligned_alloc(SIZE_MAX / 2 + 2, 10), nullptr);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(hk_memalign(SIZE_MAX, 10), nullptr);
  EXPECT_EQ(errno, EINVAL);
}

// C17 (DR 460): any size; glibc 2.36: a non-power-of-two alignment is
// rounded up, as memalign does (README "glibc's contracts").
TEST(Api, AlignedAllocTakesAnySizeAndRoundsTheAlignmentUp) {
  for (size_t align : {size_t{1}, size_t{16}, size_t{64}, size_t{4096}, size_t{65536}, size_t{1} << 20}) {
    for (size_t n : {size_t{0}, size_t{1}, size_t{100}, size_t{4097}, size_t{300000}}) {
      void* p = hk_aligned_alloc(align, n);
      ASSERT_NE(p, nullptr) << align << " " << n;
      EXPECT_TRUE(IsAligned(p, align)) << align << " " << n;
      EXPECT_GE(hk_malloc_usable_size(p), n);
      memset(p, 1, n);
      hk_free(p);
    }
  }
  for (size_t align : {size_t{0}, size_t{3}, size_t{24}, size_t{48}, size_t{100}, size_t{5000}}) {
    size_t pow2 = 1;
    while (pow2 < align) pow2 <<= 1;
    void* p = hk_aligned_alloc(align, 100);
    ASSERT_NE(p, nullptr) << align;
    EXPECT_TRUE(IsAligned(p, pow2)) << align;
    hk_free(p);
    p = hk_memalign(align, 100);
    ASSERT_NE(p, nullptr) << align;
    EXPECT_TRUE(IsAligned(p, pow2)) << align;
    hk_free(p);
  }
}

TEST(Api, HugeRequestsFailWithEnomem) {
  for (size_t n : {SIZE_MAX, SIZE_MAX - 4096, SIZE_MAX / 2, (size_t{1} << 62)}) {
    errno = 0;
    EXPECT_EQ(hk_malloc(n), nullptr) << n;
    EXPECT_EQ(errno, ENOMEM) << n;
    errno = 0;
    EXPECT_EQ(hk_aligned_alloc(4096, n & ~size_t{4095}), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    void* p = hk_malloc(10);
    errno = 0;
    EXPECT_EQ(hk_realloc(p, n), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    hk_free(p);  // still valid after a failed realloc
  }
  errno = 0;
  EXPECT_EQ(hk_pvalloc(SIZE_MAX), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(hk_pvalloc(SIZE_MAX - 4095), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(hk_valloc(SIZE_MAX - 4095), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(hk_memalign(1 << 20, SIZE_MAX / 2), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  void* q = nullptr;
  EXPECT_EQ(hk_posix_memalign(&q, 64, SIZE_MAX), ENOMEM);
}

TEST(Api, CallocRejectsOverflow) {
  errno = 0;
  EXPECT_EQ(hk_calloc(SIZE_MAX / 2 + 1, 2), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(hk_calloc(size_t{1} << 33, size_t{1} << 33), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(hk_reallocarray(nullptr, SIZE_MAX / 3, 4), nullptr);
  EXPECT_EQ(errno, ENOMEM);
}

TEST(Api, CallocZeroesRecycledMemory) {
  for (size_t n : {size_t{16}, size_t{100}, size_t{1000}, size_t{20000}, size_t{100000}, size_t{3} << 20}) {
    // Dirty blocks of the same size, free them, then calloc must still zero.
    std::vector<unsigned char*> dirty;
    for (int i = 0; i < 64; i++) {
      auto* p = static_cast<unsigned char*>(hk_malloc(n));
      memset(p, 0xEE, n);
      dirty.push_back(p);
    }
    for (auto* p : dirty) hk_free(p);
    for (int i = 0; i < 64; i++) {
      auto* p = static_cast<unsigned char*>(hk_calloc(1, n));
      ASSERT_NE(p, nullptr);
      for (size_t k = 0; k < n; k++) ASSERT_EQ(p[k], 0) << "calloc(" << n << ") byte " << k;
      dirty[i] = p;
    }
    for (auto* p : dirty) hk_free(p);
  }
}

TEST(Api, ReallocGrowingByOneByteMovesLogarithmicallyOften) {
  // Growing 1 byte at a time from 16 B to 1 MiB crosses ~100 size classes and
  // the large threshold; each move takes at least a quarter more room, so
  // the block moves at most log(65536)/log(1.25) ~ 50 times.
  auto* p = static_cast<unsigned char*>(hk_malloc(16));
  ASSERT_NE(p, nullptr);
  for (size_t k = 0; k < 16; k++) p[k] = static_cast<unsigned char>(k * 13);
  int moves = 0;
  for (size_t n = 17; n <= (1u << 20); n++) {
    auto* q = static_cast<unsigned char*>(hk_realloc(p, n));
    ASSERT_NE(q, nullptr);
    if (q != p) {
      moves++;
      for (size_t k = 0; k < n - 1; k++) ASSERT_EQ(q[k], static_cast<unsigned char>(k * 13)) << "after growing to " << n;
    }
    q[n - 1] = static_cast<unsigned char>((n - 1) * 13);
    p = q;
  }
  EXPECT_LE(moves, 55);
  EXPECT_GE(hk_malloc_usable_size(p), size_t{1} << 20);
  hk_free(p);
}

TEST(Api, ReallocKeepsContentsAcrossClassesAndIntoAndOutOfLarge) {
  const size_t sizes[] = {1, 16, 17, 100, 1000, 4000, 9000, 32768, 32769, 100000, 262144, 262145, 5 << 20, 300, 24, 0};
  size_t cur = 8;
  auto* p = static_cast<unsigned char*>(hk_malloc(cur));
  for (size_t k = 0; k < cur; k++) p[k] = static_cast<unsigned char>(k * 7);
  for (size_t n : sizes) {
    if (n == 0) break;
    p = static_cast<unsigned char*>(hk_realloc(p, n));
    ASSERT_NE(p, nullptr);
    size_t keep = cur < n ? cur : n;
    for (size_t k = 0; k < keep; k++) ASSERT_EQ(p[k], static_cast<unsigned char>(k * 7)) << "after realloc to " << n;
    for (size_t k = keep; k < n; k++) p[k] = static_cast<unsigned char>(k * 7);
    cur = n;
  }
  hk_free(p);
}

TEST(Api, ReallocNullAndZeroBehaveLikeGlibc) {
  void* p = hk_realloc(nullptr, 40);
  ASSERT_NE(p, nullptr);
  EXPECT_GE(hk_malloc_usable_size(p), 40u);
  EXPECT_EQ(hk_realloc(p, 0), nullptr);  // frees p
  void* z = hk_malloc(0);
  EXPECT_NE(z, nullptr) << "malloc(0) returns a unique pointer";
  hk_free(z);
  hk_free(nullptr);
  EXPECT_EQ(hk_malloc_usable_size(nullptr), 0u);
}

TEST(Api, VallocAndPvallocArePageAligned) {
  void* v = hk_valloc(100);
  EXPECT_TRUE(IsAligned(v, 4096));
  void* pv = hk_pvalloc(5000);
  EXPECT_TRUE(IsAligned(pv, 4096));
  EXPECT_GE(hk_malloc_usable_size(pv), 8192u) << "pvalloc rounds up to whole pages";
  void* p0 = hk_pvalloc(0);
  EXPECT_GE(hk_malloc_usable_size(p0), 4096u);
  hk_free(v);
  hk_free(pv);
  hk_free(p0);
}

// The requested size is accepted (a wrong one dies: misuse_test) and the
// block is really given back: the thread's next request of the same size
// gets it again (a span's free list is last in, first out).
TEST(Api, FreeSizedAcceptsTheRequestedSize) {
  for (size_t n : {size_t{1}, size_t{64}, size_t{777}, size_t{40000}}) {
    void* keep = hk_malloc(n);  // so the span does not empty and go away
    void* p = hk_malloc(n);
    hk_free_sized(p, n);
    EXPECT_EQ(hk_malloc(n), p) << "free_sized(p, " << n << ") did not free p";
    hk_free(p);
    size_t rounded = (n + 255) & ~size_t{255};
    void* q = hk_aligned_alloc(256, rounded);
    hk_free_aligned_sized(q, 256, n);
    EXPECT_EQ(hk_aligned_alloc(256, rounded), q) << "free_aligned_sized(q, 256, " << n << ") did not free q";
    hk_free(q);
    hk_free(keep);
  }
}

TEST(Api, OwnsTellsHakmemMemoryFromOther) {
  int on_stack = 0;
  static int in_data = 0;
  void* p = hk_malloc(10);
  void* big = hk_malloc(1 << 20);
  EXPECT_TRUE(hk_owns(p));
  EXPECT_TRUE(hk_owns(big));
  EXPECT_FALSE(hk_owns(&on_stack));
  EXPECT_FALSE(hk_owns(&in_data));
  EXPECT_FALSE(hk_owns(reinterpret_cast<void*>(~uintptr_t{0})));
  hk_free(p);
  hk_free(big);
}

TEST(Api, ManyLiveBlocksStayDistinct) {
  // Writes a tag into each of 200k live blocks of mixed sizes, then checks
  // none was handed out twice or overwritten.
  const int kBlocks = 200000;
  std::vector<uint32_t*> v(kBlocks);
  uint32_t x = 12345;
  for (int i = 0; i < kBlocks; i++) {
    x ^= x << 13; x ^= x >> 17; x ^= x << 5;
    size_t n = 8 + (x % 2000);
    v[i] = static_cast<uint32_t*>(hk_malloc(n));
    v[i][0] = static_cast<uint32_t>(i);
    v[i][1] = ~static_cast<uint32_t>(i);
  }
  for (int i = 0; i < kBlocks; i++) {
    ASSERT_EQ(v[i][0], static_cast<uint32_t>(i));
    ASSERT_EQ(v[i][1], ~static_cast<uint32_t>(i));
  }
  for (int i = 0; i < kBlocks; i += 2) hk_free(v[i]);
  for (int i = 1; i < kBlocks; i += 2) ASSERT_EQ(v[i][0], static_cast<uint32_t>(i));
  for (int i = 1; i < kBlocks; i += 2) hk_free(v[i]);
}

TEST(Api, TrimReturnsFreedMemory) {
  hk_stats_t before, after;
  std::vector<void*> v;
  for (int i = 0; i < 20000; i++) v.push_back(hk_malloc(1000));  // ~20 MB in segments
  for (int i = 0; i < 8; i++) v.push_back(hk_malloc(4 << 20));
  hk_stats_get(&before);
  for (void* p : v) hk_free(p);
  hk_trim(0);
  hk_stats_get(&after);
  EXPECT_LT(after.bytes_reserved + (40u << 20), before.bytes_reserved)
      << "trim should unmap the freed segments and large mappings";
}

}  // namespace
