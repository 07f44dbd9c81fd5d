/* A signal handler that calls malloc and free while the interrupted thread
 * is itself inside malloc or free. malloc is not async-signal-safe (POSIX),
 * but a program that does it anyway must get a defined outcome, never a
 * hang: either the handler's call works, or, when the interrupted call
 * holds one of hakmem's locks the handler's call needs, the process dies
 * with one line naming that lock.
 *
 * Each run is a child process: one thread allocates and frees in a loop
 * through the paths that take locks (arena blocks, mapped blocks, new spans
 * of every class, which come from new segments), while a timer sends that
 * thread a signal every 50 us whose handler allocates and frees an arena
 * block and a mapped block. The child runs 1.5 s; it must exit 0 or abort
 * with exactly the message, and the parent kills it after 20 s and fails
 * (a hang). The handler allocates only blocks of the lock-taking kinds: a
 * small block's fast path takes no lock, and a handler interrupting it is
 * outside what hakmem defines (README "Errors").
 *
 * Replaces malloc in-process, so not under ASan/TSan. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

static volatile sig_atomic_t handled;

static void on_timer(int sig) {
  (void)sig;
  int saved = errno;
  char* a = malloc(300 << 10);   /* arena */
  char* m = malloc(20 << 20);    /* its own mapping */
  if (a != NULL) a[0] = 1;
  if (m != NULL) m[0] = 1;
  free(m);
  free(a);
  handled++;
  errno = saved;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* The child: the loop under the timer. Returns normally when it worked. */
static void child(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_timer;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGRTMIN, &sa, NULL);
  /* Sent to this thread, not the process: hakmem's reclaimer thread must
   * not take it. */
  struct sigevent ev;
  memset(&ev, 0, sizeof(ev));
  ev.sigev_notify = SIGEV_THREAD_ID;
  ev.sigev_signo = SIGRTMIN;
  ev.sigev_notify_thread_id = (pid_t)syscall(SYS_gettid);
  timer_t timer;
  if (timer_create(CLOCK_MONOTONIC, &ev, &timer) != 0) {
    perror("timer_create");
    _exit(3);
  }
  struct itimerspec every = {{0, 50 * 1000}, {0, 50 * 1000}};
  timer_settime(timer, 0, &every, NULL);

  void* keep[64] = {0};
  uint32_t x = 12345;
  double end = now() + 1.5;
  while (now() < end) {
    for (unsigned i = 0; i < 64; i++) {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      size_t n;
      switch (x % 4) {
        case 0: n = ((size_t)256 << 10) + x % ((size_t)8 << 20); break;   /* arena */
        case 1: n = ((size_t)17 << 20) + x % ((size_t)8 << 20); break;    /* mapping */
        default: n = 16 + x % (200 << 10); break;                         /* any class */
      }
      free(keep[i]);
      keep[i] = malloc(n);
      if (keep[i] != NULL) ((char*)keep[i])[0] = 1;
    }
  }
  struct itimerspec off = {{0, 0}, {0, 0}};
  timer_settime(timer, 0, &off, NULL);
  for (unsigned i = 0; i < 64; i++) free(keep[i]);
  fprintf(stderr, "handler ran %d times\n", (int)handled);
}

static const char kPrefix[] = "hakmem: malloc or free called from a signal handler while this thread holds the ";
static const char* const kLocks[] = {"heaps", "abandoned", "registry", "segments", "free_slots",
                                     "arena", "mappings", "prof", "heap"};

/* stderr is exactly the one line naming a lock of the core. */
static int is_relock_message(const char* out) {
  if (strncmp(out, kPrefix, sizeof(kPrefix) - 1) != 0) return 0;
  const char* rest = out + sizeof(kPrefix) - 1;
  for (unsigned i = 0; i < sizeof(kLocks) / sizeof(kLocks[0]); i++) {
    size_t n = strlen(kLocks[i]);
    if (strncmp(rest, kLocks[i], n) == 0 && strcmp(rest + n, " lock\n") == 0) return 1;
  }
  return 0;
}

int main(void) {
  int worked = 0, died = 0;
  for (int run = 0; run < 4; run++) {
    int fds[2];
    if (pipe(fds) != 0) return 2;
    pid_t pid = fork();
    if (pid == 0) {
      dup2(fds[1], 2);
      close(fds[0]);
      child();
      _exit(0);
    }
    close(fds[1]);
    /* Read what the child writes until it closes stderr (it exits), with
     * the parent's own deadline: a child stuck on a lock never closes it. */
    char out[1024];
    size_t n = 0;
    double deadline = now() + 20;
    int hung = 0;
    for (;;) {
      struct timespec ms = {0, 10 * 1000 * 1000};
      int status;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        ssize_t r;
        while (n + 1 < sizeof(out) && (r = read(fds[0], out + n, sizeof(out) - 1 - n)) > 0) n += (size_t)r;
        out[n] = 0;
        close(fds[0]);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && strncmp(out, "handler ran ", 12) == 0) {
          worked++;
          fprintf(stderr, "run %d: worked, %s", run, out);
        } else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT && is_relock_message(out)) {
          died++;
          fprintf(stderr, "run %d: died as defined: %s", run, out);
        } else {
          fprintf(stderr, "FAIL run %d: status 0x%x, stderr: \"%s\"\n", run, status, out);
          return 1;
        }
        break;
      }
      if (now() > deadline) {
        hung = 1;
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        break;
      }
      nanosleep(&ms, NULL);
    }
    if (hung) {
      fprintf(stderr, "FAIL run %d: the child hung (killed after 20 s)\n", run);
      return 1;
    }
  }
  fprintf(stderr, "%d runs worked, %d died with the message\n", worked, died);
  return 0;
}
