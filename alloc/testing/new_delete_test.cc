// C++ operator new and delete with //alloc:hakmem_cxx: every form reaches
// hakmem, aligned forms align, failure throws std::bad_alloc (after the
// new_handler loop) or returns nullptr for nothrow, and the standard
// library's containers allocate from hakmem. Replaces the program's
// allocator, so not under ASan/TSan.
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "alloc/include/hakmem.h"
#include "gtest/gtest.h"

namespace {

// Sizes no allocator can serve, read through a volatile so the compiler
// cannot fold the failing call away.
volatile std::size_t huge = std::size_t{1} << 62;
void* volatile escape;

bool Aligned(const void* p, std::size_t a) { return (reinterpret_cast<std::uintptr_t>(p) & (a - 1)) == 0; }

TEST(NewDelete, EveryNewFormReturnsAHakmemBlock) {
  void* p[8];
  p[0] = ::operator new(24);
  p[1] = ::operator new[](100);
  p[2] = ::operator new(24, std::nothrow);
  p[3] = ::operator new[](100, std::nothrow);
  p[4] = ::operator new(24, std::align_val_t{64});
  p[5] = ::operator new[](100, std::align_val_t{4096});
  p[6] = ::operator new(24, std::align_val_t{256}, std::nothrow);
  p[7] = ::operator new[](100000, std::align_val_t{1 << 16}, std::nothrow);
  for (int i = 0; i < 8; i++) {
    ASSERT_NE(p[i], nullptr) << "form " << i;
    EXPECT_TRUE(hk_owns(p[i])) << "form " << i << " did not come from hakmem";
  }
  EXPECT_TRUE(Aligned(p[4], 64));
  EXPECT_TRUE(Aligned(p[5], 4096));
  EXPECT_TRUE(Aligned(p[6], 256));
  EXPECT_TRUE(Aligned(p[7], 1 << 16));
  ::operator delete(p[0]);
  ::operator delete[](p[1]);
  ::operator delete(p[2], std::nothrow);
  ::operator delete[](p[3], std::nothrow);
  ::operator delete(p[4], std::align_val_t{64});
  ::operator delete[](p[5], std::align_val_t{4096});
  ::operator delete(p[6], std::align_val_t{256}, std::nothrow);
  ::operator delete[](p[7], std::align_val_t{1 << 16}, std::nothrow);
}

TEST(NewDelete, SizedAndAlignedSizedDeletesFreeTheBlock) {
  hk_stats_t before, after;
  hk_stats_get(&before);
  void* a = ::operator new(40);
  void* b = ::operator new[](400);
  void* c = ::operator new(40, std::align_val_t{128});
  void* d = ::operator new[](4000, std::align_val_t{512});
  ::operator delete(a, 40);
  ::operator delete[](b, 400);
  ::operator delete(c, 40, std::align_val_t{128});
  ::operator delete[](d, 4000, std::align_val_t{512});
  hk_stats_get(&after);
  EXPECT_EQ(after.bytes_in_use, before.bytes_in_use) << "a sized delete left its block allocated";
}

TEST(NewDelete, NewExpressionsAndContainersUseHakmem) {
  auto* i = new int(7);
  auto* arr = new double[1000];
  struct alignas(128) Wide { char c[300]; };
  auto* w = new Wide;
  EXPECT_TRUE(hk_owns(i));
  EXPECT_TRUE(hk_owns(arr));
  EXPECT_TRUE(hk_owns(w));
  EXPECT_TRUE(Aligned(w, 128)) << "over-aligned new-expression must use the aligned form";
  delete i;
  delete[] arr;
  delete w;
  std::vector<int> v(1000, 1);
  std::string s(500, 'x');
  std::map<int, std::string> m{{1, std::string(100, 'y')}};
  auto sp = std::make_shared<std::vector<char>>(100000);
  EXPECT_TRUE(hk_owns(v.data()));
  EXPECT_TRUE(hk_owns(s.data()));
  EXPECT_TRUE(hk_owns(m[1].data()));
  EXPECT_TRUE(hk_owns(sp->data()));
}

TEST(NewDelete, ZeroBytesGivesDistinctBlocks) {
  void* a = ::operator new(0);
  void* b = ::operator new(0);
  EXPECT_NE(a, nullptr);
  EXPECT_NE(a, b);
  ::operator delete(a);
  ::operator delete(b);
}

TEST(NewDelete, FailureThrowsBadAlloc) {
  EXPECT_THROW(::operator new(huge), std::bad_alloc);
  EXPECT_THROW(::operator new[](huge), std::bad_alloc);
  EXPECT_THROW(::operator new(huge, std::align_val_t{64}), std::bad_alloc);
  EXPECT_THROW(::operator new[](huge, std::align_val_t{4096}), std::bad_alloc);
  std::size_t n = huge / sizeof(std::uint64_t);
  // The block escapes through a volatile: a new/delete pair whose block is
  // never used may be elided by the compiler, and this one must happen.
  EXPECT_THROW(
      {
        std::uint64_t* p = new std::uint64_t[n];
        escape = p;
        delete[] p;
      },
      std::bad_alloc);
}

TEST(NewDelete, NothrowFailureReturnsNull) {
  EXPECT_EQ(::operator new(huge, std::nothrow), nullptr);
  EXPECT_EQ(::operator new[](huge, std::nothrow), nullptr);
  EXPECT_EQ(::operator new(huge, std::align_val_t{64}, std::nothrow), nullptr);
  EXPECT_EQ(::operator new[](huge, std::align_val_t{64}, std::nothrow), nullptr);
}

int handler_calls;
void GiveUpOnThirdCall() {
  if (++handler_calls == 3) std::set_new_handler(nullptr);
}
void ThrowFromHandler() {
  ++handler_calls;
  throw std::bad_alloc();
}

TEST(NewDelete, NewHandlerIsCalledUntilItGivesUp) {
  handler_calls = 0;
  std::set_new_handler(GiveUpOnThirdCall);
  EXPECT_THROW(::operator new(huge), std::bad_alloc);
  EXPECT_EQ(handler_calls, 3) << "the new_handler must be called until it uninstalls itself";
  handler_calls = 0;
  std::set_new_handler(ThrowFromHandler);
  EXPECT_EQ(::operator new(huge, std::nothrow), nullptr) << "nothrow new must swallow the handler's exception";
  EXPECT_EQ(handler_calls, 1);
  std::set_new_handler(nullptr);
}

}  // namespace
