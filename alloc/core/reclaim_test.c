/* The idle reclaimer (reclaim.c) with the balanced variant, its delay
 * shortened to 100 ms through the option parser: freed memory goes back
 * while the program makes no allocator call; nothing wakes it while nothing
 * waits; a forked child starts its own. */
#include "alloc/core/reclaim.h"

#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "alloc/core/check_testing.h"
#include "alloc/core/options.h"

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {}
}

static hk_stats_t stats(void) {
  hk_stats_t s;
  hk_stats_get(&s);
  return s;
}

/* 32 MiB in blocks of 1 KiB .. 1 MiB, written, then freed. */
static void burst(void) {
  static void* blocks[4096];
  size_t n = 0, bytes = 0;
  for (size_t size = 1024; bytes < (32u << 20) && n < 4096; size = size >= (1u << 20) ? 1024 : size * 2) {
    char* p = hk_malloc(size);
    memset(p, 1, size);
    blocks[n++] = p;
    bytes += size;
  }
  for (size_t i = 0; i < n; i++) hk_free(blocks[i]);
}

static void AnIdleProcessGetsItsMemoryBackWithoutAllocatorCalls(void) {
  burst();
  hk_stats_t freed = stats();
  HK_EXPECT(freed.bytes_cached > (8u << 20), "the freed burst waits for the delay");
  HK_EXPECT(freed.reclaim_running == 1, "the first memory that waited started the reclaimer");
  sleep_ms(100 + 300);  /* the delay, plus room for a slow machine: no allocator call meanwhile */
  hk_stats_t idle = stats();
  HK_EXPECT(idle.bytes_cached == 0, "the reclaimer gave back what waited past the delay");
  HK_EXPECT(idle.reclaim_wakeups >= 1 && idle.reclaim_wakeups <= 16, "it woke for the due time, a few times at most");
}

static void NothingWakesItWhileNothingWaits(void) {
  HK_EXPECT(stats().bytes_cached == 0, "nothing waits");
  uint64_t before = stats().reclaim_wakeups;
  sleep_ms(1500);
  HK_EXPECT(stats().reclaim_wakeups == before, "no wake-up while the caches are empty");
}

#if defined(__SANITIZE_THREAD__)
#define CHILD_RECLAIMS 0 /* ThreadSanitizer cannot start threads in a forked child */
#else
#define CHILD_RECLAIMS 1
#endif

static void AForkedChildStartsItsOwnReclaimer(void) {
  for (int i = 0; i < 8; i++) {
    burst();  /* the parent's reclaimer sweeps around the fork */
    sleep_ms(20 * i);
    void* kept = hk_malloc(4000);
    pid_t pid = fork();
    if (pid == 0) {
      hk_stats_t s = stats();
      if (s.reclaim_running != 0) _exit(2);  /* the thread did not survive the fork */
      hk_free(kept);                          /* a parent's block */
      burst();
      if (stats().reclaim_running != CHILD_RECLAIMS) _exit(3);
      if (!CHILD_RECLAIMS) {
        fprintf(stderr, "  the child's sweep not checked: ThreadSanitizer cannot start its reclaimer thread\n");
        _exit(0);
      }
      sleep_ms(400);
      _exit(stats().bytes_cached == 0 ? 0 : 4);
    }
    HK_EXPECT(pid > 0, "fork");
    int status = 0;
    waitpid(pid, &status, 0);
    HK_EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "the child (exit 2: reclaimer inherited, 3: none started, 4: memory kept) failed");
    hk_free(kept);
  }
}

int main(void) {
  hk_option_set("HAKMEM_RELEASE_DELAY_MS", "100");
  hk_option_set("HAKMEM_RESIDENT_TARGET_MB", "0");
  if (hk_options.params.reclaim_thread != 1) {
    fprintf(stderr, "reclaim_test expects the balanced variant, whose reclaimer is on\n");
    return 1;
  }
  HK_RUN(AnIdleProcessGetsItsMemoryBackWithoutAllocatorCalls);
  HK_RUN(NothingWakesItWhileNothingWaits);
  HK_RUN(AForkedChildStartsItsOwnReclaimer);
  return HK_TEST_RESULT();
}
