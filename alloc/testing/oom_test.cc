// Out of memory for real: a child process under RLIMIT_AS allocates until
// hakmem gets no more address space. Every failure must be NULL + ENOMEM,
// every block handed out before must be intact, and allocation must work
// again once memory is freed.
#include <errno.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vector>

#include "alloc/include/hakmem.h"
#include "gtest/gtest.h"

namespace {

// A small, a mid-size, an arena and a mapped block.
constexpr size_t kSizes[] = {16, 1024, 40000, 300u << 10, 3u << 20, 20u << 20};

// calloc(1, n): NULL with errno ENOMEM (15), or n zero bytes (18).
int CallocZeroedOrEnomem(size_t n) {
  errno = 0;
  unsigned char* p = static_cast<unsigned char*>(hk_calloc(1, n));
  if (p == nullptr) return errno == ENOMEM ? 0 : 15;
  for (size_t k = 0; k < n; k++)
    if (p[k] != 0) return 18;
  hk_free(p);
  return 0;
}

// Runs in the child; returns the exit code (0 = all good).
int ExhaustAndRecover(size_t block) {
  struct rlimit lim;
  getrlimit(RLIMIT_AS, &lim);
  // Leave the current mappings plus 256 MiB.
  FILE* f = fopen("/proc/self/statm", "r");
  unsigned long pages = 0;
  if (f == nullptr || fscanf(f, "%lu", &pages) != 1) return 10;
  fclose(f);
  lim.rlim_cur = pages * 4096ul + (256ul << 20);
  if (setrlimit(RLIMIT_AS, &lim) != 0) return 11;

  std::vector<unsigned char*> blocks;
  blocks.reserve(1 << 20);
  for (;;) {
    errno = 0;
    auto* p = static_cast<unsigned char*>(hk_malloc(block));
    if (p == nullptr) {
      if (errno != ENOMEM) return 12;
      break;
    }
    memset(p, static_cast<int>(blocks.size() & 0xff), 64);
    blocks.push_back(p);
    if (blocks.size() > (1u << 20)) return 13;  // the limit never bit
  }
  if (blocks.size() < 8) return 14;
  // Out of memory, calloc and aligned_alloc of every kind of size fail
  // cleanly or return what they promise: NULL with ENOMEM, or a zeroed block.
  for (size_t n : kSizes) {
    int code = CallocZeroedOrEnomem(n);
    if (code != 0) return code;
    errno = 0;
    void* a = hk_aligned_alloc(4096, n);
    if (a == nullptr && errno != ENOMEM) return 19;
    hk_free(a);
  }
  for (size_t i = 0; i < blocks.size(); i++)
    for (int k = 0; k < 64; k++)
      if (blocks[i][k] != static_cast<unsigned char>(i & 0xff)) return 16;  // corrupted
  for (size_t i = 0; i < blocks.size(); i += 2) hk_free(blocks[i]);
  hk_trim(0);
  void* again = hk_malloc(block);
  if (again == nullptr) return 17;  // no recovery
  hk_free(again);
  // Recovered: calloc of the size that ran out reuses the stamped blocks
  // just freed, and must hand them out zeroed.
  unsigned char* z = static_cast<unsigned char*>(hk_calloc(1, block));
  if (z == nullptr) return 20;
  for (size_t k = 0; k < block; k++)
    if (z[k] != 0) return 18;
  hk_free(z);
  return 0;
}

void RunInChild(size_t block) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) _exit(ExhaustAndRecover(block));
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "child died of signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0) << "see ExhaustAndRecover for the meaning of the code";
}

TEST(OutOfMemory, SmallBlocksUnderRlimitAsFailWithEnomemAndRecover) { RunInChild(1024); }
TEST(OutOfMemory, LargeBlocksUnderRlimitAsFailWithEnomemAndRecover) { RunInChild(3 << 20); }

}  // namespace
