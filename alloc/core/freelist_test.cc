// Corrupted free lists: a write into a freed block's first word
// (its encoded free-list link) never makes malloc hand out a live block or
// memory outside its spans. Each way of corrupting a link, on the owner's
// local list and on a span's remote-free list, is reported with one exact
// line, then abort() (death tests); under HAKMEM_ON_ERROR=warn the same line,
// the span is quarantined (never allocates again) and malloc goes on with
// other memory.
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

#include "alloc/core/options.h"
#include "alloc/include/hakmem.h"
#include "gtest/gtest.h"

namespace {

// The classes under test: 64 B (one-slot spans) and 4 KiB (spans of four
// slots, whose links cross slot boundaries: malloc's fast check covers the
// whole span, so those must be caught the same way).
constexpr size_t kSize = 64;
constexpr size_t kMultiSlotSize = 4096;
constexpr uintptr_t kSlot = 256 << 10;  // HK_SLOT_SIZE: a one-slot span is one slot

enum Corruption { kWild, kLiveBlock, kMidBlock, kOtherSpan, kByteFill };
enum List { kLocal, kRemote };

// Live blocks the corrupting writes point at; allocated before the block
// whose link is corrupted, kept live for the whole test.
struct Targets {
  void* live;        // a live block of the same class (same span)
  void* other_span;  // a live block of another class: another span
};

Targets MakeTargets(size_t size) { return Targets{hk_malloc(size), hk_malloc(size == kSize ? 1000 : 64)}; }

// Writes into freed block p (of `size` bytes) what a use-after-free or an
// overflow would.
void Corrupt(void* p, size_t size, Corruption c, const Targets& t) {
  void** word = static_cast<void**>(p);
  switch (c) {
    case kWild: *word = reinterpret_cast<void*>(uintptr_t{0x00007f1234567890}); break;
    case kLiveBlock: *word = t.live; break;
    case kMidBlock: *word = static_cast<char*>(t.live) + 24; break;
    case kOtherSpan: *word = t.other_span; break;
    case kByteFill: memset(p, 0x41, size); break;  // the tag word too
  }
}

std::string Expected(const void* p) {
  char buf[96];
  snprintf(buf, sizeof(buf), "hakmem: corrupted free list at %p in malloc\\(\\)", p);
  return buf;
}

// Frees p so that its link is on the list under test: the owner's local list,
// or (freed by another thread) the span's remote list.
void FreeOnto(void* p, List list) {
  if (list == kLocal) {
    hk_free(p);
  } else {
    std::thread([p] { hk_free(p); }).join();
  }
}

// Allocates until the corrupted link is read: the next malloc pops p (local,
// LIFO), or the span's local list runs dry and its remote list is collected.
std::vector<void*> AllocateThrough(size_t size, size_t n) {
  std::vector<void*> got;
  for (size_t i = 0; i < n; i++) got.push_back(hk_malloc(size));
  return got;
}

struct Case {
  const char* name;
  Corruption corruption;
  List list;
  size_t size;
};

const Case kCases[] = {
    {"LocalWild", kWild, kLocal, kSize},
    {"LocalLiveBlock", kLiveBlock, kLocal, kSize},
    {"LocalMidBlock", kMidBlock, kLocal, kSize},
    {"LocalOtherSpan", kOtherSpan, kLocal, kSize},
    {"LocalByteFill", kByteFill, kLocal, kSize},
    {"RemoteWild", kWild, kRemote, kSize},
    {"RemoteLiveBlock", kLiveBlock, kRemote, kSize},
    {"RemoteMidBlock", kMidBlock, kRemote, kSize},
    {"RemoteOtherSpan", kOtherSpan, kRemote, kSize},
    {"RemoteByteFill", kByteFill, kRemote, kSize},
    {"MultiSlotLocalWild", kWild, kLocal, kMultiSlotSize},
    {"MultiSlotLocalLiveBlock", kLiveBlock, kLocal, kMultiSlotSize},
    {"MultiSlotLocalMidBlock", kMidBlock, kLocal, kMultiSlotSize},
    {"MultiSlotLocalOtherSpan", kOtherSpan, kLocal, kMultiSlotSize},
    {"MultiSlotLocalByteFill", kByteFill, kLocal, kMultiSlotSize},
    {"MultiSlotRemoteWild", kWild, kRemote, kMultiSlotSize},
    {"MultiSlotRemoteLiveBlock", kLiveBlock, kRemote, kMultiSlotSize},
    {"MultiSlotRemoteMidBlock", kMidBlock, kRemote, kMultiSlotSize},
    {"MultiSlotRemoteOtherSpan", kOtherSpan, kRemote, kMultiSlotSize},
    {"MultiSlotRemoteByteFill", kByteFill, kRemote, kMultiSlotSize},
};

class FreeListDeathTest : public testing::TestWithParam<Case> {};

// Abort mode: p is allocated and (remote list) freed by another thread
// before the death test forks, so the expected line can name p; the child
// writes into p and reads its link: the next malloc pops p (local list), or
// hk_collect walks the span's remote list (the walk malloc's slow path runs
// when the span's local blocks are gone; the warn tests below take that
// path).
TEST_P(FreeListDeathTest, ReportedAndAborts) {
  const Case& c = GetParam();
  Targets t = MakeTargets(c.size);
  void* p = hk_malloc(c.size);
  if (c.list == kRemote) FreeOnto(p, kRemote);
  EXPECT_DEATH(
      {
        if (c.list == kLocal) hk_free(p);
        Corrupt(p, c.size, c.corruption, t);
        if (c.list == kLocal) {
          hk_malloc(c.size);
        } else {
          hk_collect();
        }
      },
      Expected(p));
  if (c.list == kLocal) hk_free(p);
  hk_free(t.live);
  hk_free(t.other_span);
}

INSTANTIATE_TEST_SUITE_P(All, FreeListDeathTest, testing::ValuesIn(kCases),
                         [](const testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

class FreeListWarnTest : public testing::TestWithParam<Case> {
 protected:
  void SetUp() override { ASSERT_EQ(hk_option_set("HAKMEM_ON_ERROR", "warn"), 0); }
  void TearDown() override { ASSERT_EQ(hk_option_set("HAKMEM_ON_ERROR", "abort"), 0); }
};

// Warn mode: the same line; nothing live is handed out, nothing twice, and
// p's span allocates nothing again.
TEST_P(FreeListWarnTest, ReportedAndSpanQuarantined) {
  const Case& c = GetParam();
  std::string err, expected;
  std::vector<void*> got, after;
  std::set<void*> live;
  uintptr_t slot = 0;  // p's slot, which belongs to p's span alone
  // The thread below must start on a fresh heap, not on the parked heap of
  // the previous case's thread (whose spans of this size would serve first).
  hk_trim(0);
  std::thread([&] {
    Targets t = MakeTargets(c.size);
    std::vector<void*> keep;  // live blocks of the span under test
    for (int i = 0; i < 20; i++) keep.push_back(hk_malloc(c.size));
    void* p = hk_malloc(c.size);
    slot = reinterpret_cast<uintptr_t>(p) & ~(kSlot - 1);
    expected = Expected(p);
    live = {t.live, t.other_span};
    live.insert(keep.begin(), keep.end());
    FreeOnto(p, c.list);
    Corrupt(p, c.size, c.corruption, t);
    testing::internal::CaptureStderr();
    got = AllocateThrough(c.size, c.list == kLocal ? 1 : 300);
    err = testing::internal::GetCapturedStderr();
    after = AllocateThrough(c.size, c.size == kSize ? 2000 : 300);  // more than p's span holds
    // Freeing blocks of the quarantined span leaks them; nothing breaks.
    for (void* q : keep) hk_free(q);
    for (void* q : got) hk_free(q);
    for (void* q : after) hk_free(q);
    hk_free(t.live);
    hk_free(t.other_span);
  }).join();
  // One report line, exactly (the regex escapes dropped).
  std::string line = expected;
  line.replace(line.find("\\(\\)"), 4, "()");
  EXPECT_EQ(err, line + "\n");
  std::set<void*> seen;
  for (const std::vector<void*>* v : {&got, &after}) {
    for (void* q : *v) {
      ASSERT_NE(q, nullptr);
      EXPECT_EQ(live.count(q), 0u) << "a live block handed out: " << q;
      EXPECT_TRUE(seen.insert(q).second) << "handed out twice: " << q;
    }
  }
  // Nothing comes from p's span once the report is out: the local pop that
  // found it was p's first reuse; the remote walk ran once the span's local
  // blocks were gone (those came from it before the report). Seen through
  // p's slot: the whole span for 64 B, one of its four slots for 4 KiB.
  auto in_p_slot = [slot](void* q) { return (reinterpret_cast<uintptr_t>(q) & ~(kSlot - 1)) == slot; };
  if (c.list == kLocal) {
    for (void* q : got) EXPECT_FALSE(in_p_slot(q)) << q;
  }
  for (void* q : after) EXPECT_FALSE(in_p_slot(q)) << q;
}

INSTANTIATE_TEST_SUITE_P(All, FreeListWarnTest, testing::ValuesIn(kCases),
                         [](const testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

// A write into a freed block's tag word makes free() take the block for a
// live one, so a second free of it is no double free: the block is then on
// the list twice (here at its head, linked to itself). It is handed out once;
// the pop that reaches it again finds its tag zeroed by the first and
// reports it instead of handing out a live block a second time.
void FreeTwiceAfterTagWrite(void* p) {
  hk_free(p);
  static_cast<volatile char*>(p)[8] ^= 1;  // the tag word, not the link
  hk_free(p);                               // taken for live: pushed again
}

TEST(FreeListTagDeathTest, BlockOnTheListTwiceIsReportedNotHandedOutTwice) {
  std::vector<void*> keep;  // the span's blocks stay live: no empty-span path
  for (int i = 0; i < 8; i++) keep.push_back(hk_malloc(kSize));
  void* p = hk_malloc(kSize);
  EXPECT_DEATH(
      {
        FreeTwiceAfterTagWrite(p);
        if (hk_malloc(kSize) != p) abort();
        hk_malloc(kSize);
      },
      Expected(p));
  for (void* q : keep) hk_free(q);
  hk_free(p);
}

TEST(FreeListTagWarnTest, BlockOnTheListTwiceIsReportedNotHandedOutTwice) {
  ASSERT_EQ(hk_option_set("HAKMEM_ON_ERROR", "warn"), 0);
  std::string err, expected;
  void* first = nullptr;
  void* second = nullptr;
  void* p = nullptr;
  hk_trim(0);
  std::thread([&] {
    std::vector<void*> keep;
    for (int i = 0; i < 8; i++) keep.push_back(hk_malloc(kSize));
    p = hk_malloc(kSize);
    expected = Expected(p);
    FreeTwiceAfterTagWrite(p);
    testing::internal::CaptureStderr();
    first = hk_malloc(kSize);
    second = hk_malloc(kSize);
    err = testing::internal::GetCapturedStderr();
    for (void* q : keep) hk_free(q);  // the quarantined span leaks them
    hk_free(first);
    hk_free(second);
  }).join();
  ASSERT_EQ(hk_option_set("HAKMEM_ON_ERROR", "abort"), 0);
  std::string line = expected;
  line.replace(line.find("\\(\\)"), 4, "()");
  EXPECT_EQ(err, line + "\n");
  EXPECT_EQ(first, p);
  EXPECT_NE(second, p);
  EXPECT_NE(second, nullptr);
}

// A block the heap profiler sampled goes, when freed, onto the profiler's
// list of frees to take back (hk_prof_free_small), linked like any free
// block; a write into it before the profiler takes it back is reported then,
// not followed.
TEST(FreeListProfDeathTest, SampledBlockWrittenAfterItsFreeIsReported) {
  void* p = nullptr;
  EXPECT_DEATH(
      {
        if (hk_option_set("HAKMEM_PROF_SAMPLE", "1") != 0) abort();  // every allocation sampled
        std::thread([&] {  // a new heap: its first allocation sees the rate
          p = hk_malloc(kSize);
          hk_free(p);
          fprintf(stderr, "freed\n");
          static_cast<volatile char*>(p)[0] ^= 1;  // its link
        }).join();
        hk_prof_dump("/dev/null");  // takes the freed samples back, if exit did not
      },
      "freed\nhakmem: corrupted free list at 0x[0-9a-f]+ in malloc\\(\\)");
}

// A clean program never trips the checks: blocks of every small class freed
// locally and remotely, in mixed orders, then reused.
TEST(FreeList, CleanUseRaisesNothing) {
  std::vector<void*> v;
  for (int round = 0; round < 20; round++) {
    for (size_t i = 0; i < 500; i++) v.push_back(hk_malloc(16 + (i * 37) % 9000));
    std::vector<void*> remote(v.begin(), v.begin() + v.size() / 2);
    std::thread([&remote] {
      for (void* p : remote) hk_free(p);
    }).join();
    for (size_t i = v.size() / 2; i < v.size(); i += 2) hk_free(v[i]);
    for (size_t i = v.size() / 2 + 1; i < v.size(); i += 2) hk_free(v[i]);
    v.clear();
  }
  hk_collect();
}

}  // namespace
