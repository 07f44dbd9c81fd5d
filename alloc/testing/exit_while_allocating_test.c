/* exit() while other threads still allocate: the exit
 * path (atexit handlers, among them HAKMEM_STATS's report, which walks every
 * segment) runs while four threads malloc, realloc and free small, arena and
 * mapped blocks. Each run is a child process (this program again, with
 * HAKMEM_STATS=1 so the report runs); it must exit with status 0, print the
 * report, and not hang (alarm). 20 runs, exit at a different moment in each.
 * Replaces malloc in-process, so not under ASan/TSan. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static atomic_int started;

static void* allocator_thread(void* arg) {
  uint32_t x = (uint32_t)(uintptr_t)arg * 2654435761u + 1;
  void* slots[64] = {0};
  atomic_fetch_add(&started, 1);
  for (;;) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    unsigned i = x % 64;
    size_t n = (x >> 8) % 16 == 0 ? ((size_t)256 << 10) + (x >> 12) % ((size_t)20 << 20) : 8 + (x >> 8) % 4000;
    if (slots[i] != NULL && (x & 0x100)) {
      void* p = realloc(slots[i], n);
      if (p != NULL) slots[i] = p;
    } else {
      free(slots[i]);
      slots[i] = malloc(n);
    }
    if (slots[i] != NULL) memset(slots[i], (int)i, n < 64 ? n : 64);
  }
  return NULL;
}

static int child(unsigned run) {
  alarm(10);  /* a hang in exit() kills the child with SIGALRM */
  for (uintptr_t t = 0; t < 4; t++) {
    pthread_t tid;
    if (pthread_create(&tid, NULL, allocator_thread, (void*)(t + 1 + 4 * run)) != 0) return 3;
  }
  while (atomic_load(&started) < 4) sched_yield();
  struct timespec ts = {0, (long)(run % 10) * 3000000L};
  nanosleep(&ts, NULL);
  exit(0);
}

int main(int argc, char** argv) {
  if (argc > 2 && strcmp(argv[1], "--child") == 0) return child((unsigned)atoi(argv[2]));
  int failures = 0;
  for (unsigned run = 0; run < 20; run++) {
    char report[] = "/tmp/hakmem_exit_XXXXXX";
    int fd = mkstemp(report);
    if (fd < 0) return 2;
    pid_t pid = fork();
    if (pid == 0) {
      dup2(fd, 2);
      char arg[16];
      snprintf(arg, sizeof(arg), "%u", run);
      setenv("HAKMEM_STATS", "1", 1);
      execl("/proc/self/exe", argv[0], "--child", arg, (char*)NULL);
      _exit(127);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    char buf[4096] = {0};
    ssize_t got = pread(fd, buf, sizeof(buf) - 1, 0);
    close(fd);
    unlink(report);
    if (WIFSIGNALED(st)) {
      fprintf(stderr, "FAIL: run %u: the child died by signal %d (%s)%s\n%s\n", run, WTERMSIG(st),
              strsignal(WTERMSIG(st)), WTERMSIG(st) == SIGALRM ? ": exit() hung" : "", got > 0 ? buf : "");
      failures++;
    } else if (WEXITSTATUS(st) != 0) {
      fprintf(stderr, "FAIL: run %u: the child exited with status %d\n%s\n", run, WEXITSTATUS(st), buf);
      failures++;
    } else if (strstr(buf, "hakmem: statistics") == NULL) {
      fprintf(stderr, "FAIL: run %u: no HAKMEM_STATS report at exit:\n%s\n", run, buf);
      failures++;
    }
  }
  if (failures == 0) printf("exit while allocating: 20 runs exited cleanly with their report\n");
  return failures != 0;
}
