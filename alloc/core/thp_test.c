/* Transparent huge pages: HAKMEM_THP=madvise gives
 * dense memory MADV_HUGEPAGE (a segment once half its slots are taken, an
 * arena block of a huge page or more), never gives every reservation of
 * a huge page or more MADV_NOHUGEPAGE, default gives no advice. Each mode
 * runs in a child process started with the variable set (options are read
 * once, at start-up). A child writes an 8 MiB arena block and 3 MiB of
 * 1 KiB blocks, then reads /proc/self/smaps for the mappings holding them:
 * the kernel's VmFlags (hg, nh) prove the advice arrived, AnonHugePages
 * what it did. Where the kernel's THP mode is "never" huge pages cannot
 * appear, and the test says so and checks the advice calls and flags only;
 * under "always" the never mode must show no huge pages at all. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alloc/core/check_testing.h"
#include "alloc/include/hakmem.h"

typedef struct vma {
  bool found;
  bool hg, nh;             /* VmFlags: MADV_HUGEPAGE, MADV_NOHUGEPAGE */
  unsigned long anon_huge_kb;
} vma;

/* The smaps entry of the mapping holding p. */
static vma vma_of(const void* p) {
  vma v = {0};
  FILE* f = fopen("/proc/self/smaps", "r");
  if (f == NULL) return v;
  char line[1024];
  bool in = false;
  uintptr_t a = (uintptr_t)p;
  while (fgets(line, sizeof(line), f)) {
    unsigned long start, end;
    if (sscanf(line, "%lx-%lx ", &start, &end) == 2 && strchr(line, ':') != NULL && line[0] != 'V') {
      in = a >= start && a < end;
      if (in) v.found = true;
      continue;
    }
    if (!in) continue;
    unsigned long kb;
    if (sscanf(line, "AnonHugePages: %lu kB", &kb) == 1) v.anon_huge_kb = kb;
    if (strncmp(line, "VmFlags:", 8) == 0) {
      v.hg = strstr(line, " hg") != NULL;
      v.nh = strstr(line, " nh") != NULL;
    }
  }
  fclose(f);
  return v;
}

/* The kernel's THP mode: the bracketed word of the sysfs file. */
static void kernel_mode(const char* file, char* out, size_t cap) {
  snprintf(out, cap, "unknown");
  FILE* f = fopen(file, "r");
  if (f == NULL) return;
  char line[256];
  if (fgets(line, sizeof(line), f)) {
    char* open = strchr(line, '[');
    char* close = open ? strchr(open, ']') : NULL;
    if (open && close && (size_t)(close - open) < cap) {
      memcpy(out, open + 1, (size_t)(close - open - 1));
      out[close - open - 1] = 0;
    }
  }
  fclose(f);
}

static char enabled[32], defrag[32];

static void touch(void* p, size_t n) {
  for (size_t off = 0; off < n; off += 4096) ((volatile char*)p)[off] = 1;
}

/* One mode, in this (child) process. */
static int child(const char* mode) {
  hk_stats_t before, after;
  hk_stats_get(&before);
  void* big = hk_malloc(8 << 20);  /* an arena block: a fresh 32 MiB chunk */
  touch(big, 8 << 20);
  enum { SMALL = 3 * 1024 };
  static void* small[SMALL];
  for (int i = 0; i < SMALL; i++) {
    small[i] = hk_malloc(1024);
    touch(small[i], 1024);
  }
  hk_stats_get(&after);
  vma chunk = vma_of(big), seg = vma_of(small[0]);
  uint64_t hg = after.syscalls_madvise_hugepage - before.syscalls_madvise_hugepage;
  uint64_t nh = after.syscalls_madvise_nohugepage - before.syscalls_madvise_nohugepage;
  fprintf(stderr,
          "  HAKMEM_THP=%s (kernel: enabled [%s], defrag [%s]): MADV_HUGEPAGE %llu, MADV_NOHUGEPAGE %llu calls "
          "(since start %llu, %llu); arena chunk: VmFlags hg %d nh %d, AnonHugePages %lu kB; segment: hg %d nh %d, "
          "AnonHugePages %lu kB\n",
          mode, enabled, defrag, (unsigned long long)hg, (unsigned long long)nh,
          (unsigned long long)after.syscalls_madvise_hugepage, (unsigned long long)after.syscalls_madvise_nohugepage,
          chunk.hg, chunk.nh, chunk.anon_huge_kb, seg.hg, seg.nh, seg.anon_huge_kb);
  HK_EXPECT(chunk.found && seg.found, "the blocks' mappings are in smaps");
  if (strcmp(mode, "madvise") == 0) {
    HK_EXPECT(after.syscalls_madvise_hugepage >= 2, "the dense segment and the 8 MiB arena block were advised MADV_HUGEPAGE");
    HK_EXPECT(after.syscalls_madvise_nohugepage == 0, "and never the opposite");
    HK_EXPECT(chunk.hg && seg.hg && !chunk.nh && !seg.nh, "the kernel has the advice (VmFlags hg)");
    if (strcmp(enabled, "never") == 0) {
      fprintf(stderr, "  the kernel's THP mode is never: no huge pages can appear; advice checked through the counters\n");
    } else if (strcmp(defrag, "never") == 0 || strcmp(defrag, "defer") == 0) {
      fprintf(stderr, "  defrag [%s]: a fault does not compact for a huge page; AnonHugePages not required\n", defrag);
    } else {
      HK_EXPECT(chunk.anon_huge_kb >= 2048, "an 8 MiB block written page by page sits on huge pages");
    }
  } else if (strcmp(mode, "never") == 0) {
    HK_EXPECT(after.syscalls_madvise_nohugepage >= 2, "the segment and the chunk were advised MADV_NOHUGEPAGE");
    HK_EXPECT(after.syscalls_madvise_hugepage == 0, "and never the opposite");
    HK_EXPECT(chunk.nh && seg.nh && !chunk.hg && !seg.hg, "the kernel has the advice (VmFlags nh)");
    HK_EXPECT(chunk.anon_huge_kb == 0 && seg.anon_huge_kb == 0,
              "no huge pages, whatever the kernel's mode (this is what \"always\" would break)");
  } else {
    HK_EXPECT(after.syscalls_madvise_hugepage == 0 && after.syscalls_madvise_nohugepage == 0,
              "default: no advice");
    HK_EXPECT(!chunk.hg && !chunk.nh && !seg.hg && !seg.nh, "default: the kernel's mode alone decides");
  }
  hk_free(big);
  for (int i = 0; i < SMALL; i++) hk_free(small[i]);
  return HK_TEST_RESULT();
}

static void run_mode(const char* mode) {
  pid_t pid = fork();
  if (pid == 0) {
    setenv("HAKMEM_THP", mode, 1);
    execl("/proc/self/exe", "thp_test", "--child", mode, (char*)NULL);
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  HK_EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0, mode);
}

static void MadviseAsksForHugePages(void) { run_mode("madvise"); }
static void NeverRefusesThem(void) { run_mode("never"); }
static void DefaultGivesNoAdvice(void) { run_mode("default"); }

int main(int argc, char** argv) {
  kernel_mode("/sys/kernel/mm/transparent_hugepage/enabled", enabled, sizeof(enabled));
  kernel_mode("/sys/kernel/mm/transparent_hugepage/defrag", defrag, sizeof(defrag));
  if (argc == 3 && strcmp(argv[1], "--child") == 0) return child(argv[2]);
  fprintf(stderr, "kernel THP mode: enabled [%s], defrag [%s]\n", enabled, defrag);
  HK_RUN(MadviseAsksForHugePages);
  HK_RUN(NeverRefusesThem);
  HK_RUN(DefaultGivesNoAdvice);
  return HK_TEST_RESULT();
}
