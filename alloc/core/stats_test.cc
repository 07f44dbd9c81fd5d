// hk_stats_get, hk_collect and hk_trim through the hk_ API: exact figures when
// the process is quiescent, sane ones while other threads allocate (this test
// also runs under TSan and ASan), and the report formats.
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "alloc/core/options.h"
#include "alloc/core/stats_testing.h"
#include "alloc/include/hakmem.h"
#include "gtest/gtest.h"

namespace {

using hk_testing::kSlotBytes;
using hk_testing::Stats;
using hk_testing::ClassOf;

// The class hakmem serves a request of n bytes from (n <= 256 KiB).

uint64_t SumClasses(const hk_stats_t& s) {
  uint64_t b = 0;
  for (const hk_class_stats_t& c : s.classes) b += c.blocks_in_use * c.block_size;
  return b;
}

TEST(Stats, CountsBlocksOfEachClassExactlyWhenQuiescent) {
  int c64 = ClassOf(64), c1000 = ClassOf(1000);
  ASSERT_GE(c64, 0);
  ASSERT_GE(c1000, 0);
  size_t size1000 = Stats().classes[c1000].block_size;
  hk_stats_t before = Stats();
  std::vector<void*> blocks;
  const size_t n64 = 2 * (kSlotBytes / 64) + 1;  // more than two spans' worth
  for (size_t i = 0; i < n64; i++) blocks.push_back(hk_malloc(64));
  for (int i = 0; i < 200; i++) blocks.push_back(hk_malloc(1000));
  hk_stats_t during = Stats();
  EXPECT_EQ(during.classes[c64].blocks_in_use - before.classes[c64].blocks_in_use, n64);
  EXPECT_EQ(during.classes[c1000].blocks_in_use - before.classes[c1000].blocks_in_use, 200u);
  EXPECT_EQ(during.bytes_in_use - before.bytes_in_use, n64 * 64 + 200u * size1000)
      << "bytes_in_use must grow by exactly the blocks handed out";
  EXPECT_GE(during.classes[c64].spans, 3u) << n64 << " blocks of 64 B need three spans of one slot";
  EXPECT_EQ(during.bytes_in_use, SumClasses(during) + during.large_bytes);
  for (void* p : blocks) hk_free(p);
  hk_stats_t after = Stats();
  EXPECT_EQ(after.classes[c64].blocks_in_use, before.classes[c64].blocks_in_use);
  EXPECT_EQ(after.bytes_in_use, before.bytes_in_use) << "freeing everything must bring bytes_in_use back";
}

// A span of 1 KiB blocks is one slot: kSlotBytes / 1024 of them fill it and
// one more starts a second span. Pins kSlotBytes to the core's slot size.
TEST(Stats, OneKiBBlocksFillASpanOfOneSlot) {
  std::thread([] {
    int c = 0;  // found without allocating: this thread has no span of it yet
    while (c < HK_STATS_CLASSES && Stats().classes[c].block_size != 1024) c++;
    ASSERT_LT(c, HK_STATS_CLASSES) << "a class of exactly 1 KiB";
    const uint64_t spans_before = Stats().classes[c].spans;
    std::vector<void*> blocks;
    for (size_t i = 0; i < kSlotBytes / 1024; i++) blocks.push_back(hk_malloc(1024));
    EXPECT_EQ(Stats().classes[c].spans - spans_before, 1u) << "one slot's worth of 1 KiB blocks fits one span";
    blocks.push_back(hk_malloc(1024));
    EXPECT_EQ(Stats().classes[c].spans - spans_before, 2u) << "one block more needs a second span";
    for (void* p : blocks) hk_free(p);
  }).join();
}

TEST(Stats, LargeBlocksCountTheirMapping) {
  hk_stats_t before = Stats();
  void* p = hk_malloc(3 << 20);
  ASSERT_NE(p, nullptr);
  hk_stats_t during = Stats();
  EXPECT_EQ(during.large_live, before.large_live + 1);
  EXPECT_GE(during.large_bytes - before.large_bytes, 3u << 20);
  EXPECT_LT(during.large_bytes - before.large_bytes, (3u << 20) + 8192) << "a page of header and rounding at most";
  EXPECT_EQ(during.bytes_in_use - before.bytes_in_use, during.large_bytes - before.large_bytes);
  EXPECT_GE(during.bytes_committed, during.bytes_in_use);
  EXPECT_GE(during.bytes_reserved, during.bytes_committed);
  hk_free(p);
  EXPECT_EQ(Stats().large_live, before.large_live);
}

TEST(Stats, RemoteFreesCountAsInUseUntilTheOwnerCollects) {
  int c = ClassOf(48);
  hk_stats_t before = Stats();
  std::vector<void*> blocks;
  for (int i = 0; i < 1000; i++) blocks.push_back(hk_malloc(48));
  std::thread([&] {
    hk_free(hk_malloc(8));  // a heap of its own, so its remote frees are counted
    for (void* p : blocks) hk_free(p);
  }).join();
  hk_stats_t freed = Stats();
  EXPECT_EQ(freed.remote_frees - before.remote_frees, 1000u);
  EXPECT_EQ(freed.classes[c].blocks_in_use - before.classes[c].blocks_in_use, 1000u)
      << "blocks freed by another thread stay counted until their owner collects them";
  hk_collect();
  hk_stats_t collected = Stats();
  EXPECT_EQ(collected.classes[c].blocks_in_use, before.classes[c].blocks_in_use)
      << "hk_collect must take in the blocks other threads freed";
}

TEST(Stats, RefillsCountSlowPathAllocations) {
  hk_stats_t before = Stats();
  std::vector<void*> blocks;
  for (int i = 0; i < 5000; i++) blocks.push_back(hk_malloc(2048));  // about 160 pages of carving
  hk_stats_t after = Stats();
  EXPECT_GT(after.thread_refills, before.thread_refills + 10);
  EXPECT_LT(after.thread_refills, before.thread_refills + 5000) << "most allocations must be fast-path pops";
  for (void* p : blocks) hk_free(p);
}

TEST(Stats, ExitedThreadsKeepTheirCountsAndLeaveNoHeap) {
  hk_stats_t before = Stats();
  std::thread([] {
    std::vector<void*> v;
    for (int i = 0; i < 2000; i++) v.push_back(hk_malloc(200));
    for (void* p : v) hk_free(p);
  }).join();
  hk_stats_t after = Stats();
  EXPECT_EQ(after.threads_live, before.threads_live);
  EXPECT_GT(after.thread_refills, before.thread_refills) << "an exited thread's refills must stay in the total";
  EXPECT_EQ(after.bytes_in_use, before.bytes_in_use);
}

// Workers churn blocks (some freed by another worker) while the main thread
// reads statistics. Every sample must be sane; once the workers stop, the
// figures must be exact. Under TSan this is also the race check of the walk.
TEST(Stats, StaysSaneUnderConcurrentUseAndExactOnceQuiet) {
  constexpr int kWorkers = 3;
  constexpr int kKeep = 500;  // blocks of 96 B each worker leaves allocated
  int c96 = ClassOf(96);
  hk_trim(0);  // earlier tests' abandoned segments collected: an exact baseline
  hk_stats_t before = Stats();
  std::atomic<bool> stop{false};
  std::atomic<int> done{0};
  std::vector<std::vector<void*>> kept(kWorkers);
  std::vector<std::atomic<void*>> handoff(64);
  std::vector<std::thread> workers;
  for (int w = 0; w < kWorkers; w++) {
    workers.emplace_back([&, w] {
      uint32_t x = 12345u + w;
      std::vector<void*> mine(256, nullptr);
      while (!stop.load(std::memory_order_relaxed)) {
        for (int i = 0; i < 1000; i++) {
          x ^= x << 13; x ^= x >> 17; x ^= x << 5;
          size_t k = x % mine.size();
          if (mine[k]) {
            // Every eighth block goes to another worker to free: remote frees.
            void* old = (x & 7) == 0 ? handoff[x % handoff.size()].exchange(mine[k]) : mine[k];
            hk_free(old);
            mine[k] = nullptr;
          } else {
            mine[k] = hk_malloc(16 + (x >> 8) % 3000);
          }
        }
      }
      for (void* p : mine) hk_free(p);
      for (int i = 0; i < kKeep; i++) kept[w].push_back(hk_malloc(96));
      done.fetch_add(1);
    });
  }
  int samples = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(700);
  while (std::chrono::steady_clock::now() < deadline) {
    hk_stats_t s = Stats();
    samples++;
    EXPECT_EQ(s.bytes_in_use, SumClasses(s) + s.large_bytes);
    EXPECT_LT(s.bytes_in_use, uint64_t{1} << 36) << "an absurd figure: a torn or wrapped read";
    EXPECT_LE(s.bytes_in_use, s.bytes_reserved + (64u << 20)) << "in use far above what is mapped";
    for (const hk_class_stats_t& k : s.classes) EXPECT_LE(k.blocks_in_use, k.spans * kSlotBytes * 15 / 16 + 1);
  }
  stop = true;
  for (std::thread& t : workers) t.join();
  for (auto& h : handoff) hk_free(h.exchange(nullptr));
  // Blocks freed into the exited workers' spans wait on remote lists of
  // abandoned segments; hk_trim adopts those segments and collects them.
  hk_trim(0);
  EXPECT_GT(samples, 10);
  hk_stats_t quiet = Stats();
  EXPECT_GT(quiet.remote_frees, before.remote_frees);
  EXPECT_EQ(quiet.classes[c96].blocks_in_use - before.classes[c96].blocks_in_use, uint64_t{kWorkers} * kKeep)
      << "exact count of the blocks the workers left allocated";
  for (auto& v : kept)
    for (void* p : v) hk_free(p);
  hk_trim(0);  // adopts the abandoned segments and collects the frees above
  EXPECT_EQ(Stats().bytes_in_use, before.bytes_in_use) << "every block freed: back to the baseline";
}

TEST(Stats, TrimBringsCommittedMemoryBackToTheBaseline) {
  hk_trim(0);
  hk_stats_t base = Stats();
  std::vector<void*> blocks;
  for (int i = 0; i < 16384; i++) blocks.push_back(hk_malloc(4000));  // 64 MB of small blocks
  for (int i = 0; i < 8; i++) blocks.push_back(hk_malloc(2 << 20));   // 16 MB of large ones
  for (void* p : blocks) memset(p, 1, 4000);
  hk_stats_t full = Stats();
  EXPECT_GT(full.bytes_committed, base.bytes_committed + (70u << 20));
  for (void* p : blocks) hk_free(p);
  EXPECT_EQ(hk_trim(0), 1) << "hk_trim must report that it released memory";
  hk_stats_t trimmed = Stats();
  EXPECT_LT(trimmed.bytes_committed, base.bytes_committed + (1u << 20))
      << "committed " << trimmed.bytes_committed << " vs " << base.bytes_committed << " before the burst";
  EXPECT_EQ(trimmed.bytes_cached, 0u) << "hk_trim unmaps every cached segment and large mapping";
  EXPECT_EQ(trimmed.bytes_in_use, base.bytes_in_use);
}

// Reads what a report writer printed to a pipe.
template <typename F>
std::string Capture(F write_report) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  write_report(fds[1]);
  close(fds[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  return out;
}

TEST(Stats, TextReportHasEveryFieldAndTheClassesInUse) {
  void* p = hk_malloc(640);
  std::string text = Capture([](int fd) { hk_stats_print(fd); });
  hk_free(p);
  EXPECT_EQ(text.rfind("hakmem: statistics (hakmem ", 0), 0u) << text;
  for (const char* f : {"bytes_in_use", "bytes_committed", "bytes_reserved", "bytes_resident", "segments_live",
                        "thread_refills", "remote_frees", "syscalls_mmap", "syscalls_madvise_dontneed"})
    EXPECT_NE(text.find(std::string("\nhakmem:   ") + f + " "), std::string::npos) << f << " missing:\n" << text;
  EXPECT_NE(text.find("\nhakmem:   class"), std::string::npos) << text;
}

TEST(Stats, JsonReportIsOneObjectOnOneLine) {
  std::string json = Capture([](int fd) { hk_stats_print_json(fd); });
  ASSERT_FALSE(json.empty());
  EXPECT_EQ(json.front(), '{');
  EXPECT_EQ(json.substr(json.size() - 2), "}\n");
  EXPECT_EQ(json.find('\n'), json.size() - 1) << "JSON report must be a single line";
  EXPECT_NE(json.find("\"bytes_in_use\":"), std::string::npos);
  EXPECT_NE(json.find("\"classes\":["), std::string::npos);
}

TEST(Stats, StatsVariablesAcceptJsonAndAFilePath) {
  EXPECT_EQ(hk_option_parse("HAKMEM_STATS", "json"), 0);
  EXPECT_TRUE(hk_options.stats_at_exit);
  EXPECT_TRUE(hk_options.stats_json);
  EXPECT_EQ(hk_option_parse("HAKMEM_STATS", "1"), 0);
  EXPECT_FALSE(hk_options.stats_json);
  EXPECT_EQ(hk_option_parse("HAKMEM_STATS", "JSON"), -1);
  EXPECT_EQ(hk_option_parse("HAKMEM_STATS", "0"), 0);
  EXPECT_FALSE(hk_options.stats_at_exit);
  EXPECT_EQ(hk_option_parse("HAKMEM_STATS_FILE", "/tmp/report.%p.json"), 0);
  EXPECT_STREQ(hk_options.stats_file, "/tmp/report.%p.json");
  EXPECT_EQ(hk_option_parse("HAKMEM_STATS_FILE", ""), -1) << "an empty path is rejected";
  EXPECT_EQ(hk_option_parse("HAKMEM_STATS_FILE", std::string(600, 'x').c_str()), -1) << "too long a path is rejected";
  EXPECT_STREQ(hk_options.stats_file, "/tmp/report.%p.json") << "a rejected value keeps the previous one";
  EXPECT_EQ(hk_option_reset("HAKMEM_STATS_FILE"), 0);
  EXPECT_STREQ(hk_options.stats_file, "") << "reset puts the default back";
  EXPECT_EQ(hk_option_reset("HAKMEM_NO_SUCH"), -1);
}

}  // namespace
