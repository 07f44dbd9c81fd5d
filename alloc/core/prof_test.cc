// The heap profiler and runtime options through the hk_ API, so it runs
// under ASan and TSan too: samples are taken and forgotten, across threads
// (cross-thread frees, threads that exit), fork and a signal handler that
// dumps while the thread it interrupted samples; hk_option_set/get with bad
// names and values.
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "alloc/include/hakmem.h"
#include "gtest/gtest.h"

namespace {

std::string TmpPath(const char* name) {
  const char* dir = getenv("TEST_TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/" + name;
}

// "heap profile: <n>: <bytes> [<n>: <bytes>] @ heap_v2/<rate>" of a dump.
struct Header {
  long live_n = -1, live_bytes = -1, alloc_n = -1, alloc_bytes = -1, rate = -1;
};

Header DumpHeader(const std::string& path) {
  Header h;
  EXPECT_EQ(hk_prof_dump(path.c_str()), 0) << strerror(errno);
  FILE* f = fopen(path.c_str(), "r");
  if (f == nullptr) return h;
  EXPECT_EQ(fscanf(f, "heap profile: %ld: %ld [%ld: %ld] @ heap_v2/%ld", &h.live_n, &h.live_bytes, &h.alloc_n,
                   &h.alloc_bytes, &h.rate),
            5);
  fclose(f);
  return h;
}

class Prof : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(hk_option_set("HAKMEM_PROF_SAMPLE", "4096"), 0); }
  void TearDown() override { hk_option_set("HAKMEM_PROF_SAMPLE", "0"); }
};

__attribute__((noinline)) void AllocateBlocks(std::vector<void*>* out, size_t n, size_t size) {
  for (size_t i = 0; i < n; i++) out->push_back(hk_malloc(size));
  __asm__ volatile("" ::: "memory");
}

TEST(ProfOptions, SetAndGetValidateNamesValuesAndWhen) {
  char buf[64];
  EXPECT_EQ(hk_option_set("HAKMEM_NO_SUCH", "1"), ENOENT);
  EXPECT_EQ(hk_option_get("HAKMEM_NO_SUCH", buf, sizeof(buf)), ENOENT);
  EXPECT_EQ(hk_option_set("HAKMEM_CACHE_MB", "lots"), EINVAL) << "a bad value is refused";
  EXPECT_EQ(hk_option_set("HAKMEM_CACHE_MB", "1048577"), EINVAL) << "past the maximum";
  EXPECT_EQ(hk_option_set("HAKMEM_PROF_SAMPLE", "-1"), EINVAL);
  EXPECT_EQ(hk_option_set("HAKMEM_PROF_SAMPLE", "1099511627777"), EINVAL) << "past 2^40";
  EXPECT_EQ(hk_option_set("HAKMEM_PROF_SAMPLE", ""), EINVAL) << "an empty value is no number";
  EXPECT_EQ(hk_option_set(nullptr, "1"), ENOENT) << "no name is no variable";
  EXPECT_EQ(hk_option_get(nullptr, buf, sizeof(buf)), ENOENT);
  EXPECT_EQ(hk_option_set("HAKMEM_CACHE_MB", nullptr), EINVAL) << "no value is a bad value";
  EXPECT_EQ(hk_option_set("HAKMEM_SHOW_CONFIG", "1"), EPERM) << "start-up only";
  ASSERT_EQ(hk_option_get("HAKMEM_CACHE_MB", buf, sizeof(buf)), 0);
  std::string before = buf;
  EXPECT_EQ(hk_option_set("HAKMEM_CACHE_MB", "8"), 0);
  ASSERT_EQ(hk_option_get("HAKMEM_CACHE_MB", buf, sizeof(buf)), 0);
  EXPECT_STREQ(buf, "8");
  EXPECT_EQ(hk_option_set("HAKMEM_CACHE_MB", before.c_str()), 0);
  EXPECT_EQ(hk_option_set("HAKMEM_DECOMMIT", "dontneed"), 0);
  ASSERT_EQ(hk_option_get("HAKMEM_DECOMMIT", buf, sizeof(buf)), 0);
  EXPECT_STREQ(buf, "dontneed");
  EXPECT_EQ(hk_option_get("HAKMEM_DECOMMIT", buf, 3), ERANGE) << "too small a buffer";
  EXPECT_STREQ(buf, "do") << "truncated, NUL-terminated";
  EXPECT_EQ(hk_option_set("HAKMEM_DECOMMIT", "free"), 0);
  EXPECT_EQ(hk_option_get("HAKMEM_PROF_SAMPLE", buf, sizeof(buf)), 0);
  EXPECT_STREQ(buf, "0");
}

TEST_F(Prof, SamplesInProportionToBytesAndForgetsFreedBlocks) {
  Header base = DumpHeader(TmpPath("prof_base.heap"));
  std::vector<void*> blocks;
  AllocateBlocks(&blocks, 8192, 512);  // 4 MiB: about 1000 samples of 1 - exp(-512/4096)
  Header live = DumpHeader(TmpPath("prof_live.heap"));
  EXPECT_EQ(live.rate, 4096);
  long n = live.live_n - base.live_n;
  EXPECT_GT(n, 850) << "expected about 963 samples";
  EXPECT_LT(n, 1080) << "expected about 963 samples";
  for (void* p : blocks) hk_free(p);
  Header after = DumpHeader(TmpPath("prof_after.heap"));
  EXPECT_EQ(after.live_n, base.live_n) << "freed samples are forgotten";
  EXPECT_EQ(after.alloc_n - base.alloc_n, n) << "but still counted as allocated";
}

// Blocks freed and allocated again, most of them taken off the thread's
// sampling budget on the fast path, the rest on the slow path that grants
// the next budget: every allocation keeps its chance, 1 - exp(-size /
// rate). At this rate a sample in 32 allocations: a miscount of one
// allocation per budget (3% too many or too few) is 7 sd off.
TEST_F(Prof, ReusedBlocksAreSampledInProportionToBytes) {
  ASSERT_EQ(hk_option_set("HAKMEM_PROF_SAMPLE", "8192"), 0);
  Header base = DumpHeader(TmpPath("prof_reuse0.heap"));
  std::vector<void*> blocks;
  blocks.reserve(100);
  const int kRounds = 20000, kBlocks = 100;
  for (int r = 0; r < kRounds; r++) {
    AllocateBlocks(&blocks, kBlocks, 256);
    for (void* p : blocks) hk_free(p);
    blocks.clear();
  }
  Header after = DumpHeader(TmpPath("prof_reuse1.heap"));
  long n = after.alloc_n - base.alloc_n;
  // 2000000 allocations of 256 bytes: 61531 samples expected, sd 248.
  EXPECT_GT(n, 60540) << "expected about 61531 samples";
  EXPECT_LT(n, 62520) << "expected about 61531 samples";
  EXPECT_EQ(after.live_n, base.live_n) << "every sample was freed";
}

// Other threads' frees and thread exits: while this thread samples, a
// second one frees its blocks into its spans' remote lists, and threads
// exit with budgets not used up. No free list is reported corrupted, and
// the samples keep their rate.
TEST_F(Prof, SamplingSurvivesRemoteFreesAndThreadExits) {
  ASSERT_EQ(hk_option_set("HAKMEM_PROF_SAMPLE", "65536"), 0);
  Header base = DumpHeader(TmpPath("prof_remote0.heap"));
  constexpr int kThreads = 8, kRounds = 100, kBlocks = 500;
  std::atomic<void*> handoff[64];
  for (auto& h : handoff) h = nullptr;
  std::atomic<bool> done{false};
  std::thread freer([&] {
    while (!done) {
      for (auto& h : handoff) {
        void* p = h.exchange(nullptr);
        if (p != nullptr) hk_free(p);
      }
    }
  });
  long allocations = 0;
  for (int t = 0; t < kThreads; t++) {
    std::thread worker([&] {
      std::vector<void*> mine;
      for (int r = 0; r < kRounds; r++) {
        for (int i = 0; i < kBlocks; i++) {
          void* p = hk_malloc(192);
          // One block in 4 goes to the freer (a remote free), unless its
          // slot is taken.
          void* expected = nullptr;
          if (i % 4 != 0 || !handoff[i % 64].compare_exchange_strong(expected, p)) mine.push_back(p);
        }
        for (void* p : mine) hk_free(p);
        mine.clear();
      }
      // A few blocks more: the thread exits with most of its budget left.
      for (int i = 0; i < 10; i++) mine.push_back(hk_malloc(192));
      for (void* p : mine) hk_free(p);
    });
    worker.join();
    allocations += kRounds * kBlocks + 10;
  }
  done = true;
  freer.join();
  for (auto& h : handoff) hk_free(h.exchange(nullptr));
  Header after = DumpHeader(TmpPath("prof_remote1.heap"));
  long n = after.alloc_n - base.alloc_n;
  // 1 - exp(-192 / 65536) = 0.002926 of 400080 allocations: 1171, sd 34.
  EXPECT_EQ(allocations, 400080);
  EXPECT_GT(n, 1020) << "expected about 1171 samples";
  EXPECT_LT(n, 1320) << "expected about 1171 samples";
  EXPECT_EQ(after.live_n, base.live_n) << "every sample was freed";
}

// What the counted branch is for: while sampling, a malloc right after a
// free of its class gets the block just freed, as with sampling off (the
// block is still in the first-level cache). Only the rare sampled malloc
// (about 0.6 of these 10000 at 1 MiB) gets a block of the profiler's.
TEST_F(Prof, WhileSamplingMallocReusesTheBlockJustFreed) {
  ASSERT_EQ(hk_option_set("HAKMEM_PROF_SAMPLE", "1048576"), 0);
  std::thread([] {
    void* keep = hk_malloc(64);  // the span stays this thread's current one
    int reused = 0;
    for (int i = 0; i < 10000; i++) {
      void* p = hk_malloc(64);
      hk_free(p);
      void* q = hk_malloc(64);
      reused += q == p;
      hk_free(q);
    }
    hk_free(keep);
    EXPECT_GE(reused, 9990) << "the block freed last is the one malloc reuses";
  }).join();
}

// A rate change reaches a thread that is allocating within the largest
// budget it can hold (256 KiB): before it, allocations are counted at the
// old rate (2^40: no sample); after it, at 1 byte, every one is sampled.
TEST_F(Prof, ARateChangeReachesAnAllocatingThreadWithin256KiB) {
  ASSERT_EQ(hk_option_set("HAKMEM_PROF_SAMPLE", "1099511627776"), 0);
  std::thread([] {
    std::vector<void*> blocks;
    blocks.reserve(8192);
    AllocateBlocks(&blocks, 1000, 64);  // a budget granted at the old rate
    for (void* p : blocks) hk_free(p);
    blocks.clear();
    Header base = DumpHeader(TmpPath("prof_change0.heap"));
    ASSERT_EQ(hk_option_set("HAKMEM_PROF_SAMPLE", "1"), 0);
    AllocateBlocks(&blocks, 8192, 64);  // 512 KiB
    Header after = DumpHeader(TmpPath("prof_change1.heap"));
    long n = after.live_n - base.live_n;
    EXPECT_GE(n, 8192 - 4096) << "every allocation after the first 256 KiB is sampled";
    EXPECT_LE(n, 8192);
    for (void* p : blocks) hk_free(p);
  }).join();
}

TEST_F(Prof, BigBlocksAndReallocMoveTheirSample) {
  Header base = DumpHeader(TmpPath("prof_big0.heap"));
  void* p = hk_malloc(1 << 20);  // 1 MiB at 4 KiB between samples: sampled for sure
  Header one = DumpHeader(TmpPath("prof_big1.heap"));
  EXPECT_EQ(one.live_n - base.live_n, 1);
  p = hk_realloc(p, 3 << 20);  // moved, and sampled anew
  Header moved = DumpHeader(TmpPath("prof_big2.heap"));
  EXPECT_EQ(moved.live_n - base.live_n, 1);
  hk_free(p);
  EXPECT_EQ(DumpHeader(TmpPath("prof_big3.heap")).live_n, base.live_n);
}

// A sampled big block is resized where it is, like any other, and its
// record follows: the old one goes, the new size is counted (and here, at
// 4 KiB between samples, sampled). Shrinking a mapped block below half its
// size unmaps its tail in place; before, a sampled block was copied instead.
TEST_F(Prof, ASampledBigBlockIsResizedInPlaceAndRecordedAtItsNewSize) {
  Header base = DumpHeader(TmpPath("prof_resize0.heap"));
  const size_t big = size_t{96} << 20, small = size_t{40} << 20;  // both beyond the arena's blocks
  char* p = static_cast<char*>(hk_malloc(big));
  ASSERT_NE(p, nullptr);
  p[0] = 1;
  p[small - 1] = 2;
  Header one = DumpHeader(TmpPath("prof_resize1.heap"));
  EXPECT_EQ(one.live_n - base.live_n, 1);
  EXPECT_EQ(one.live_bytes - base.live_bytes, static_cast<long>(big));
  char* q = static_cast<char*>(hk_realloc(p, small));
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q, p) << "resized in place, not copied";
  EXPECT_EQ(q[0], 1);
  EXPECT_EQ(q[small - 1], 2);
  Header resized = DumpHeader(TmpPath("prof_resize2.heap"));
  EXPECT_EQ(resized.live_n - base.live_n, 1) << "one record: the old one went";
  EXPECT_EQ(resized.live_bytes - base.live_bytes, static_cast<long>(small)) << "recorded at its new size";
  hk_free(q);
  Header freed = DumpHeader(TmpPath("prof_resize3.heap"));
  EXPECT_EQ(freed.live_n, base.live_n);
  EXPECT_EQ(freed.live_bytes, base.live_bytes);
}

TEST_F(Prof, ThreadsFreeEachOthersSamplesAndExit) {
  Header base = DumpHeader(TmpPath("prof_t0.heap"));
  std::vector<void*> shared[4];
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++)
    threads.emplace_back([&shared, t] {
      for (int i = 0; i < 20000; i++) {
        void* p = hk_malloc(16 + (i * 37 + t) % 3000);
        if (i % 3) hk_free(p); else shared[t].push_back(p);
      }
    });
  for (auto& th : threads) th.join();
  // Freed by threads that did not allocate them (and after those exited).
  std::vector<std::thread> freers;
  for (int t = 0; t < 4; t++)
    freers.emplace_back([&shared, t] {
      for (void* p : shared[(t + 1) % 4]) hk_free(p);
    });
  for (auto& th : freers) th.join();
  Header after = DumpHeader(TmpPath("prof_t1.heap"));
  EXPECT_GT(after.alloc_n - base.alloc_n, 100) << "the threads were sampled";
  EXPECT_EQ(after.live_n, base.live_n) << "every sampled block was forgotten when freed";
}

TEST_F(Prof, ForkedChildProfilesItsOwnMemory) {
  std::vector<void*> blocks;
  AllocateBlocks(&blocks, 2000, 1024);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::vector<void*> mine;
    AllocateBlocks(&mine, 2000, 1024);
    for (void* p : blocks) hk_free(p);
    std::string path = TmpPath("prof_child.%p.heap");
    _exit(hk_prof_dump(path.c_str()) == 0 ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  std::string child = TmpPath(("prof_child." + std::to_string(pid) + ".heap").c_str());
  FILE* f = fopen(child.c_str(), "r");
  ASSERT_NE(f, nullptr) << "the child's %p file";
  fclose(f);
  Header parent = DumpHeader(TmpPath("prof_parent.heap"));
  EXPECT_GT(parent.live_n, 100) << "the parent's samples are its own";
  for (void* p : blocks) hk_free(p);
}

std::atomic<int> dumps_done{0}, dumps_refused{0};
char signal_dump_path[512];  // made before the handler runs: it must not allocate
void DumpFromHandler(int) {
  int saved = errno;
  if (hk_prof_dump(signal_dump_path) == 0) dumps_done++;
  else if (errno == EDEADLK) dumps_refused++;
  errno = saved;
}

TEST_F(Prof, SignalHandlerDumpsWhileTheThreadSamplesWithoutDeadlock) {
  ASSERT_EQ(hk_option_set("HAKMEM_PROF_SAMPLE", "64"), 0);  // nearly every allocation sampled
  snprintf(signal_dump_path, sizeof(signal_dump_path), "%s", TmpPath("prof_signal.heap").c_str());
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = DumpFromHandler;
  sa.sa_flags = SA_RESTART;
  ASSERT_EQ(sigaction(SIGUSR1, &sa, nullptr), 0);
  std::atomic<bool> stop{false};
  pthread_t target = pthread_self();
  // One signal at a time (a dump takes longer than the gap between signals
  // under TSan, and a storm would only starve the loop), 50 in all.
  std::thread kicker([&] {
    for (int k = 0; k < 50 && !stop; k++) {
      int before = dumps_done + dumps_refused;
      pthread_kill(target, SIGUSR1);
      while (!stop && dumps_done + dumps_refused == before) usleep(100);
      usleep(500);
    }
  });
  for (int i = 0; i < 2000000 && dumps_done + dumps_refused < 50; i++) hk_free(hk_malloc(16 + i % 4000));
  stop = true;
  kicker.join();
  signal(SIGUSR1, SIG_DFL);
  EXPECT_GT(dumps_done + dumps_refused, 0) << "the handler ran";
}

}  // namespace
