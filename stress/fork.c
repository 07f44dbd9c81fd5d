/* fork: fork while other threads allocate and free; the child must be able to
 * allocate, free what it inherited, and exit cleanly.
 *
 * --threads workers replace random blocks of their own all the time and now
 * and then hand a block to the main thread through a mailbox. The main thread
 * keeps the blocks it is handed (so it holds blocks from every worker's heap),
 * and forks at random moments, so the fork lands in the middle of workers'
 * mallocs and frees. With --busy (the default), three more threads keep the
 * allocator's other paths busy, so forks land inside them too:
 *   - trim and statistics: hk_trim and hk_stats_get in turn (the trim epoch,
 *     the segment and large caches, the statistics walk and its locks);
 *   - big blocks: arena (256 KiB - 16 MiB) and mapped (above) blocks made,
 *     grown and shrunk in place by realloc, freed; some handed to main, so
 *     children free inherited big blocks;
 *   - thread exit: short threads whose pthread key destructor allocates in
 *     every destructor round, so forks land in heap creation and retirement.
 * Every other fork is made by a new thread rather than main (--fork-thread),
 * so the child's only thread is not the process's first.
 * The child, which has only the forking thread:
 *   - checks and frees every held block: frees into heaps whose owners do not
 *     exist in the child;
 *   - runs its own replacement loop, reallocs, a big block, hk_trim and
 *     hk_stats_get, and (except under TSan, which does not support threads
 *     after a multithreaded fork) starts threads that allocate too;
 *   - exits through exit(), so the allocator's exit-time work runs.
 * A child that deadlocks (a lock left held by a thread that was not copied)
 * is killed by alarm() and reported as a hang; the parent fails on any child
 * status but exit 0. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alloc/include/hakmem.h"
#include "stress/stress_common.h"

/* Destructor rounds the exit-time key destructor allocates in: all of them,
 * but under TSan, which finishes a thread in the last round before the
 * destructors of later keys, where instrumented code cannot run. */
#if STRESS_TSAN
#define STRESS_KEY_ROUNDS (PTHREAD_DESTRUCTOR_ITERATIONS - 1)
#else
#define STRESS_KEY_ROUNDS PTHREAD_DESTRUCTOR_ITERATIONS
#endif

enum { MAILBOX = 64, MAX_WORKERS = 256, BUSY_THREADS = 3 };

#if STRESS_TSAN
/* TSan's exit handler sleeps a second when it thinks other threads are still
 * running, which a forked child always does (the parent's threads are in its
 * thread registry): that would make every child take a second. */
const char* __tsan_default_options(void) { return "atexit_sleep_ms=0"; }
#endif

static struct {
  size_t min, max, chunks, held_cap;
  int child_ops, child_threads, busy;
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


/* Hands b to the main thread if the mailbox has room; else frees it. */
static void post_or_free(stress_block* b, const char* what) {
  pthread_mutex_lock(&g.mu);
  if (g.nmail < MAILBOX) {
    g.mail[g.nmail++] = *b;
    b->p = NULL;
  }
  pthread_mutex_unlock(&g.mu);
  if (b->p) stress_block_free(b, what);
}

/* ---- --busy threads: the allocator's other paths, for forks to land in ---- */
static void* trim_stats_main(void* arg) {
  int index = (int)(intptr_t)arg;
  while (!atomic_load_explicit(&g.stop, memory_order_relaxed)) {
    hk_trim(0);
    hk_stats_t st;
    hk_stats_get(&st);
    if (st.bytes_in_use > st.bytes_reserved + ((uint64_t)1 << 30))
      stress_fail("statistics: %llu bytes in use, %llu reserved", (unsigned long long)st.bytes_in_use,
                  (unsigned long long)st.bytes_reserved);
    stress_progress(index, 1);
    stress_sleep(200e-6);
  }
  return NULL;
}

/* Arena blocks (256 KiB - 16 MiB) and mapped ones (above), resized in place
 * by realloc when they can be. At most two live at a time (40 MiB). */
static void* big_main(void* arg) {
  int index = (int)(intptr_t)arg;
  stress_rng r;
  stress_rng_init(&r, g.seed, 0xb000000000ull);
  uint64_t seq = stress_seq_base((uint64_t)MAX_WORKERS + 2);
  stress_block b[2] = {{0}};
  while (!atomic_load_explicit(&g.stop, memory_order_relaxed)) {
    stress_block* x = &b[stress_rand(&r) % 2];
    if (x->p && stress_rand(&r) % 2 == 0) {
      size_t n = stress_rand_log(&r, (size_t)300 << 10, (size_t)20 << 20);
      uintptr_t old = (uintptr_t)x->p;
      void* p = sm_realloc(x->p, n);
      if (!p) stress_fail("realloc of a big block to %zu returned NULL", n);
      stress_check_moved(p, old, x->size, x->seq, x->size < n ? x->size : n, "after realloc of a big block");
      stress_stamp(p, n, seq);
      *x = (stress_block){p, n, seq++};
    } else if (x->p && stress_rand(&r) % 8 == 0) {
      post_or_free(x, "before free of a big block");
    } else {
      if (x->p) stress_block_free(x, "before free of a big block");
      stress_block_alloc(x, stress_rand_log(&r, (size_t)300 << 10, (size_t)20 << 20), seq++);
    }
    stress_progress(index, 1);
  }
  for (int i = 0; i < 2; i++) stress_block_free(&b[i], "at end of run");
  return NULL;
}

/* Short threads whose key destructor allocates in every destructor round:
 * forks land in heap creation, retirement and segment abandonment. */
static pthread_key_t exit_key;
static __thread unsigned exit_rounds;

static void exit_destructor(void* value) {
  sm_free(value);
  void* scratch = sm_malloc(100 + 50 * ++exit_rounds);
  if (!scratch) stress_fail("malloc in a key destructor returned NULL");
  memset(scratch, 1, 100);
  sm_free(scratch);
  if (exit_rounds < STRESS_KEY_ROUNDS) pthread_setspecific(exit_key, sm_malloc(64));
}

static void* short_thread(void* arg) {
  stress_rng r;
  stress_rng_init(&r, g.seed, (uint64_t)(uintptr_t)arg);
  for (int i = 0; i < 16; i++) sm_free(sm_malloc(stress_rand_range(&r, 8, 3000)));
  pthread_setspecific(exit_key, sm_malloc(64));
  return NULL;
}

static void* exiter_main(void* arg) {
  int index = (int)(intptr_t)arg;
  /* gcc's ThreadSanitizer runtime corrupts its own clocks when a process
   * forks while another thread is exiting (the exiting thread crashes
   * inside __tsan::SyncClock); the default build covers forks into thread
   * exit. */
  if (STRESS_TSAN) return NULL;
  for (uint64_t n = 0; !atomic_load_explicit(&g.stop, memory_order_relaxed); n++) {
    pthread_t t = stress_thread_start(short_thread, (void*)(uintptr_t)(0xe000000000ull + n), "short-lived");
    pthread_join(t, NULL);
    stress_progress(index, 1);
  }
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
  /* A big block of its own, trim and statistics: the arena, large-mapping,
   * cache and statistics locks work in the child. */
  stress_block big = {0};
  stress_block_alloc(&big, (size_t)3 << 20, seq++);
  uintptr_t big_old = (uintptr_t)big.p;
  void* grown = sm_realloc(big.p, (size_t)18 << 20);
  if (!grown) stress_fail("realloc of a big block in the child returned NULL");
  stress_check_moved(grown, big_old, big.size, big.seq, big.size, "after realloc of a big block in the child");
  sm_free(grown);
  hk_trim(0);
  hk_stats_t st;
  hk_stats_get(&st);
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

/* Forks; the child runs child_main, the caller waits for it. Run by main or
 * by a thread made for one fork. */
struct fork_job {
  stress_block* held;
  size_t nheld;
  uint64_t fork_no;
  int status;
};

static void* fork_and_wait(void* arg) {
  struct fork_job* job = arg;
  pid_t pid = fork();
  if (pid < 0) stress_fail("fork failed: %s", strerror(errno));
  if (pid == 0) child_main(job->held, job->nheld, job->fork_no);
  while (waitpid(pid, &job->status, 0) < 0) {
    if (errno != EINTR) stress_fail("waitpid: %s", strerror(errno));
  }
  return NULL;
}

int main(int argc, char** argv) {
  stress_args a = {.threads = 3, .seconds = 1, .min_size = 8, .max_size = 2048, .seed = 1,
                   .stall = 10};
  size_t chunks = 256, held_cap = 128;
  int max_forks = 0, child_ops = 4096, child_threads = 1, busy = 1, fork_thread = 1;
  double child_timeout = 10;
  const stress_opt extra[] = {
      {"chunks", STRESS_OPT_SIZE, &chunks, "blocks per worker"},
      {"held", STRESS_OPT_SIZE, &held_cap, "blocks the forking thread holds (from all workers)"},
      {"forks", STRESS_OPT_INT, &max_forks, "stop after this many forks (0 = run for --seconds)"},
      {"child-ops", STRESS_OPT_INT, &child_ops, "replacements the child does"},
      {"child-threads", STRESS_OPT_INT, &child_threads, "1 = the child starts threads (not under TSan)"},
      {"child-timeout", STRESS_OPT_DOUBLE, &child_timeout, "seconds before a child counts as hung"},
      {"busy", STRESS_OPT_INT, &busy, "1 = also run trim/statistics, big-block and thread-exit threads"},
      {"fork-thread", STRESS_OPT_INT, &fork_thread, "1 = every other fork is made by a new thread, not main"},
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
  g.busy = busy;
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
  pthread_t busy_tids[BUSY_THREADS];
  if (busy) {
    if (pthread_key_create(&exit_key, exit_destructor) != 0) stress_fail("pthread_key_create failed");
    void* (*const busy_main[BUSY_THREADS])(void*) = {trim_stats_main, big_main, exiter_main};
    static const char* const busy_name[BUSY_THREADS] = {"trim/statistics", "big-block", "thread-exit"};
    for (int i = 0; i < BUSY_THREADS; i++)
      busy_tids[i] = stress_thread_start(busy_main[i], (void*)(intptr_t)(a.threads + 1 + i), busy_name[i]);
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
    struct fork_job job = {held, nheld, forks, 0};
    if (fork_thread && forks % 2 == 1) {
      pthread_join(stress_thread_start(fork_and_wait, &job, "forking"), NULL);
    } else {
      fork_and_wait(&job);
    }
    int st = job.status;
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
  if (busy)
    for (int i = 0; i < BUSY_THREADS; i++) pthread_join(busy_tids[i], NULL);
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
