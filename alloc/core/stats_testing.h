// Helpers the core's tests share: reading hakmem's statistics, and setting
// HAKMEM_* options through the same parser the environment goes through.
#ifndef HAKMEM_CORE_STATS_TESTING_H
#define HAKMEM_CORE_STATS_TESTING_H

#include <stddef.h>

#include <string>

#include "alloc/core/options.h"
#include "alloc/include/hakmem.h"

namespace hk_testing {

// Bytes in a segment slot: a span of blocks up to 1 KiB is one slot
// (HK_SLOT_SIZE in alloc/core/size_class.h, which C++ cannot include).
// Stats.OneKiBBlocksFillASpanOfOneSlot pins the two together.
constexpr size_t kSlotBytes = size_t{256} << 10;

// The statistics as of now.
inline hk_stats_t Stats() {
  hk_stats_t s;
  hk_stats_get(&s);
  return s;
}

// Index in hk_stats_t::classes of the class a request of n bytes gets, or
// -1 if no small class serves it.
inline int ClassOf(size_t n) {
  void* p = hk_malloc(n);
  size_t usable = hk_malloc_usable_size(p);
  hk_free(p);
  hk_stats_t s = Stats();
  for (int c = 0; c < HK_STATS_CLASSES; c++)
    if (s.classes[c].block_size == usable) return c;
  return -1;
}

// Sets a HAKMEM_* variable as the environment would for the scope, then
// puts it back to the variant's value. Fails the test if the value is
// rejected.
class ScopedOption {
 public:
  ScopedOption(const char* name, const std::string& value) : name_(name) {
    ok_ = hk_option_parse(name, value.c_str()) == 0;
  }
  ~ScopedOption() { hk_option_reset(name_); }
  bool ok() const { return ok_; }

 private:
  const char* name_;
  bool ok_;
};

}  // namespace hk_testing

#endif
