/* fork: fork while other threads allocate and free; the child must be able to
 * allocate, free what it inherited, and exit cleanly.
 *
 * --threads workers replace random blocks of their own all the time and now
 * and then hand a block to the main thread through a mailbox. The main thread
 * keeps the blocks it is handed (so it holds blocks from every worker's heap),
 * and forks at random moments, so the fork lands in the middle of workers'
 * mallocs and frees. The child, which has only the forking thread:
 *   - checks and frees every held block: frees into heaps whose owners do not
 *     exist in the child;
 *   - runs its own replacement loop, reallocs and (except under TSan, which
 *     does not support threads after a multithreaded fork) starts threads
 *     that allocate too;
 *   - exits through exit(), so the allocator's exit-time work runs.
 * A child that deadlocks (a lock left held by a thread that was not copied)
 * is killed by alarm() and reported as a hang; the parent fails on any child
 * status but exit 0. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stress/stress_common.h"

enum { MAILBOX = 64, MAX_WORKERS = 256 };

#if STRESS_TSAN
/* TSan's exit handler sleeps a second when it thinks other threads are still
 * running, which a forked child always does (the parent's threads are in its
 * thread registry): that would make every child take a second. */
const char* __tsan_default_options(void) { return "atexit_sleep_ms=0"; }
#endif

static struct {
  size_t min, max, chunks, held_cap;
  int child_ops, child_threads;
  double child_timeout;
  uint64_t seed;
  atomic_int stop;
  /* Workers post blocks here; main takes them. */
  pthread_mutex_t mu;
  stress_block mail[MAILBOX];
  size_t nmail;
  /* Reachable from globals, not only from the workers' stacks: in a child
   * the workers do not exist, and LeakSanitizer would call their blocks
   * leaked. */
  stress_block* worker_slots[MAX_WORKERS];
  stress_block* held;
} g = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void* worker_main(void* arg) {
  int index = (int)(intptr_t)arg;
  stress_rng r;
  stress_rng_init(&r, g.seed, (uint64_t)index);
  uint64_t seq = stress_seq_base((uint64_t)index + 2);
  stress_block* s = sm_calloc(g.chunks, sizeof *s);
  if (!s) stress_fail("calloc of %zu slots failed", g.chunks);
  g.worker_slots[index] = s;
  uint64_t ops = 0;
  while (!atomic_load_explicit(&g.stop, memory_order_relaxed)) {
    stress_block* b = &s[stress_rand(&r) % g.chunks];
    if (b->p && (ops & 255) == 0) {
      /* Give the block away instead of freeing it. */
      pthread_mutex_lock(&g.mu);
      if (g.nmail < MAILBOX) {
        g.mail[g.nmail++] = *b;
        b->p = NULL;
      }
      pthread_mutex_unlock(&g.mu);
    }
    stress_replace(b, &r, g.min, g.max, &seq);
    if ((++ops & 63) == 0) stress_progress(index, 64);
  }
  for (size_t i = 0; i < g.chunks; i++) stress_block_free(&s[i], "at end of run");
  sm_free(s);
  return NULL;
}

/* The child's own threads: allocate and free after the fork. */
static void* child_thread(void* arg) {
  uint64_t seq = (uint64_t)(uintptr_t)arg;
  stress_rng r;
  stress_rng_init(&r, g.seed, seq);
  stress_block s[64] = {{0}};
  for (int i = 0; i < g.child_ops; i++) stress_replace(&s[stress_rand(&r) % 64], &r, g.min, g.max, &seq);
  for (int i = 0; i < 64; i++) stress_block_free(&s[i], "in a child's thread");
  return NULL;
}

static void child_main(stress_block* held, size_t nheld, uint64_t fork_no) {
  /* Default SIGALRM action kills the child: the parent reports the hang. */
  alarm((unsigned)(g.child_timeout + 0.999));
  for (size_t i = 0; i < nheld; i++) stress_block_free(&held[i], "in the child (inherited block)");
  stress_rng r;
  stress_rng_init(&r, g.seed, 0xc000000000ull + fork_no);
  uint64_t seq = stress_seq_base(0xffffff) + 1;
  stress_block s[128] = {{0}};
  for (int i = 0; i < g.child_ops; i++) {
    stress_block* b = &s[stress_rand(&r) % 128];
    if (b->p && stress_rand(&r) % 4 == 0) {
      /* realloc in the child, checking the prefix survived. */
      size_t n = stress_rand_range(&r, g.min, g.max * 4);
      uintptr_t old = (uintptr_t)b->p;
      void* p = sm_realloc(b->p, n);
      if (!p) stress_fail("realloc(%zu) in the child returned NULL", n);
      stress_check_routing(p, "realloc in the child");
      stress_check_moved(p, old, b->size, b->seq, b->size < n ? b->size : n,
                         "after realloc in the child");
      stress_stamp(p, n, seq);
      *b = (stress_block){p, n, seq++};
    } else {
      stress_replace(b, &r, g.min, g.max, &seq);
      stress_check_routing(b->p, "malloc in the child");
    }
  }
  if (g.child_threads && !STRESS_TSAN) {
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
      void* arg = (void*)(uintptr_t)(seq + ((uint64_t)i + 1) * 1000000000ull);
      t[i] = stress_thread_start(child_thread, arg, "a child's");
    }
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  }
  for (int i = 0; i < 128; i++) stress_block_free(&s[i], "in the child");
  exit(0);
}

int main(int argc, char** argv) {
  stress_args a = {.threads = 3, .seconds = 1, .min_size = 8, .max_size = 2048, .seed = 1,
                   .stall = 10};
  size_t chunks = 256, held_cap = 128;
  int max_forks = 0, child_ops = 4096, child_threads = 1;
  double child_timeout = 10;
  const stress_opt extra[] = {
      {"chunks", STRESS_OPT_SIZE, &chunks, "blocks per worker"},
      {"held", STRESS_OPT_SIZE, &held_cap, "blocks the forking thread holds (from all workers)"},
      {"forks", STRESS_OPT_INT, &max_forks, "stop after this many forks (0 = run for --seconds)"},
      {"child-ops", STRESS_OPT_INT, &child_ops, "replacements the child does"},
      {"child-threads", STRESS_OPT_INT, &child_threads, "1 = the child starts threads (not under TSan)"},
      {"child-timeout", STRESS_OPT_DOUBLE, &child_timeout, "seconds before a child counts as hung"},
      {NULL, 0, NULL, NULL},
  };
  stress_parse(argc, argv, "fork",
               "Fork while threads allocate and free; the child frees inherited blocks, allocates "
               "and exits cleanly.",
               &a, extra);
  if (chunks < 1 || held_cap < 1 || child_ops < 0 || child_timeout <= 0 ||
      a.threads > MAX_WORKERS) {
    fprintf(stderr, "fork: need chunks, held >= 1, child-ops >= 0, child-timeout > 0, "
                    "threads <= %d\n", MAX_WORKERS);
    return 2;
  }
  g.min = a.min_size;
  g.max = a.max_size;
  g.chunks = chunks;
  g.held_cap = held_cap;
  g.child_ops = child_ops;
  g.child_threads = child_threads;
  /* Same stretch as the watchdog's: a slow child under a sanitizer is not a
   * hung one. */
  g.child_timeout = child_timeout * (STRESS_TSAN ? 10 : STRESS_ASAN ? 4 : 1);
  g.seed = a.seed;

  stress_block* held = g.held = sm_calloc(held_cap, sizeof *held);
  pthread_t* tids = sm_calloc((size_t)a.threads, sizeof *tids);
  if (!held || !tids) stress_fail("out of memory for thread tables");
  int main_progress = a.threads;
  stress_watchdog_start(&a, a.seconds);
  double t0 = stress_now();
  for (int i = 0; i < a.threads; i++) {
    tids[i] = stress_thread_start(worker_main, (void*)(intptr_t)i, "worker");
  }
  stress_rng r;
  stress_rng_init(&r, a.seed, 0xa000000000ull);
  uint64_t seq = stress_seq_base(1), forks = 0;
  size_t nheld = 0;
  while (stress_now() - t0 < a.seconds && (max_forks == 0 || forks < (uint64_t)max_forks)) {
    /* Take the workers' blocks; when full, free random held ones (those are
     * remote frees too: most came from workers). */
    stress_block got[MAILBOX];
    size_t ngot = 0;
    pthread_mutex_lock(&g.mu);
    memcpy(got, g.mail, g.nmail * sizeof *got);
    ngot = g.nmail;
    g.nmail = 0;
    pthread_mutex_unlock(&g.mu);
    for (size_t i = 0; i < ngot; i++) {
      if (nheld < held_cap) {
        held[nheld++] = got[i];
      } else {
        size_t v = stress_rand(&r) % held_cap;
        stress_block_free(&held[v], "before free of a held block");
        held[v] = got[i];
      }
    }
    /* Some of main's own blocks too. */
    for (int i = 0; i < 8; i++) {
      if (nheld < held_cap) {
        stress_block_alloc(&held[nheld++], stress_rand_range(&r, a.min_size, a.max_size), seq++);
      } else {
        stress_replace(&held[stress_rand(&r) % held_cap], &r, a.min_size, a.max_size, &seq);
      }
    }
    /* A random moment inside the workers' loops. */
    stress_sleep((double)(stress_rand(&r) % 2000) * 1e-6);
    fflush(NULL); /* or the child's exit() would print our buffered output again */
    pid_t pid = fork();
    if (pid < 0) stress_fail("fork failed: %s", strerror(errno));
    if (pid == 0) child_main(held, nheld, forks);
    int st;
    while (waitpid(pid, &st, 0) < 0) {
      if (errno != EINTR) stress_fail("waitpid: %s", strerror(errno));
    }
    if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
      stress_fail("child of fork #%llu hung for %.0f s and was killed (deadlock after fork?)",
                  (unsigned long long)forks, g.child_timeout);
    if (WIFSIGNALED(st))
      stress_fail("child of fork #%llu was killed by signal %d (%s)", (unsigned long long)forks,
                  WTERMSIG(st), strsignal(WTERMSIG(st)));
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
      stress_fail("child of fork #%llu exited with status %d", (unsigned long long)forks,
                  WEXITSTATUS(st));
    forks++;
    stress_progress(main_progress, 1);
  }
  atomic_store_explicit(&g.stop, 1, memory_order_relaxed);
  for (int i = 0; i < a.threads; i++) pthread_join(tids[i], NULL);
  double secs = stress_now() - t0;
  stress_watchdog_stop();
  for (size_t i = 0; i < nheld; i++) stress_block_free(&held[i], "at end of run");
  for (size_t i = 0; i < g.nmail; i++) stress_block_free(&g.mail[i], "at end of run");
  sm_free(held);
  sm_free(tids);
  if (forks == 0) stress_fail("no fork completed in %.1f s", secs);
  printf("fork OK: %s; forks=%llu forks/s=%.0f allocator=%s\n", stress_argline(),
         (unsigned long long)forks, secs > 0 ? (double)forks / secs : 0.0, stress_allocator());
  return 0;
}
