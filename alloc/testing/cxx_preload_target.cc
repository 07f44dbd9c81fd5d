// A plain C++ program (it links no hakmem) that checks, when run with
// LD_PRELOAD=libhakmem.so, that operator new/delete are hakmem's and fail
// the standard way: std::bad_alloc after the new_handler loop, nullptr for
// nothrow. libhakmem.so's failure path hands the request to libstdc++'s
// operator new (alloc/core/new_fail_next.c); this proves the round trip.
// Prints PASS and exits 0, or prints what failed and exits 1; exits 3 when
// hakmem is not loaded at all.
#include <dlfcn.h>

#include <cstdio>
#include <cstdint>
#include <new>
#include <string>
#include <vector>

namespace {

int failures;
void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FAIL: %s\n", what);
    failures++;
  }
}

volatile std::size_t huge = std::size_t{1} << 62;
int handler_calls;
void GiveUpOnSecondCall() {
  if (++handler_calls == 2) std::set_new_handler(nullptr);
}

}  // namespace

int main() {
  auto owns = reinterpret_cast<int (*)(const void*)>(dlsym(RTLD_DEFAULT, "hk_owns"));
  if (owns == nullptr) {
    std::fprintf(stderr, "hakmem is not loaded (no hk_owns)\n");
    return 3;
  }
  int* i = new int(1);
  std::vector<double> v(1000);
  std::string s(300, 'x');
  void* a = ::operator new(100, std::align_val_t{256});
  Check(owns(i), "new int did not come from hakmem");
  Check(owns(v.data()), "std::vector did not allocate from hakmem");
  Check(owns(s.data()), "std::string did not allocate from hakmem");
  Check(owns(a) && (reinterpret_cast<std::uintptr_t>(a) & 255) == 0, "aligned new: not hakmem's or misaligned");
  delete i;
  ::operator delete(a, std::align_val_t{256});

  bool threw = false;
  try {
    void* p = ::operator new(huge);
    ::operator delete(p);
  } catch (const std::bad_alloc&) {
    threw = true;
  }
  Check(threw, "operator new of 2^62 bytes did not throw std::bad_alloc");
  threw = false;
  try {
    void* p = ::operator new[](huge, std::align_val_t{64});
    ::operator delete[](p, std::align_val_t{64});
  } catch (const std::bad_alloc&) {
    threw = true;
  }
  Check(threw, "aligned operator new[] of 2^62 bytes did not throw std::bad_alloc");
  Check(::operator new(huge, std::nothrow) == nullptr, "nothrow new of 2^62 bytes did not return nullptr");
  Check(::operator new(huge, std::align_val_t{64}, std::nothrow) == nullptr,
        "aligned nothrow new of 2^62 bytes did not return nullptr");
  std::set_new_handler(GiveUpOnSecondCall);
  threw = false;
  try {
    void* p = ::operator new(huge);
    ::operator delete(p);
  } catch (const std::bad_alloc&) {
    threw = true;
  }
  Check(threw && handler_calls == 2, "the new_handler was not called until it gave up");
  if (failures == 0) std::printf("PASS: operator new/delete are hakmem's and fail the standard way\n");
  return failures != 0;
}
