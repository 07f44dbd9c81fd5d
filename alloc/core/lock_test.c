/* The core's lock (lock.c) under more threads than cores: every increment
 * made under it counts (mutual exclusion), waiters whose holder is
 * preempted sleep in the kernel instead of spinning (sleeps are counted),
 * an uncontended lock makes no system call and counts nothing, try-lock
 * never waits, the fork steps leave the lock usable, the word names its
 * holder, and a thread that asks again for a lock it holds dies with a
 * message naming the lock instead of waiting for itself. */
#include "alloc/core/lock.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "alloc/core/check_testing.h"

#define THREADS 16
#define ROUNDS 20000

static hk_lock_t lock;  /* zeroed: kind HK_LOCK_OTHER, the tests' own */
static uint64_t counter;  /* plain: only ever touched under the lock */

static uint64_t contended(void) {
  return atomic_load_explicit(&hk_lock_counts[HK_LOCK_OTHER].contended, memory_order_relaxed);
}
static uint64_t sleeps(void) {
  return atomic_load_explicit(&hk_lock_counts[HK_LOCK_OTHER].sleeps, memory_order_relaxed);
}

static void* increment(void* arg) {
  (void)arg;
  hk_wait_stage(1);  /* all start together */
  for (unsigned i = 0; i < ROUNDS; i++) {
    hk_lock(&lock);
    uint64_t v = counter;
    /* Now and then hold the lock across a yield, as a holder preempted in
     * its section would: the others must sleep, not spin on it. */
    if (i % 64 == 0) sched_yield();
    counter = v + 1;
    hk_unlock(&lock);
  }
  return NULL;
}

static void ManyThreadsCountExactlyAndWaitersSleep(void) {
  counter = 0;
  uint64_t sleeps_before = sleeps(), contended_before = contended();
  pthread_t t[THREADS];
  for (unsigned i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, increment, NULL);
  hk_set_stage(1);
  for (unsigned i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  HK_EXPECT(counter == (uint64_t)THREADS * ROUNDS, "no increment made under the lock is lost");
  HK_EXPECT(contended() > contended_before, "16 threads on a few cores meet a held lock");
  HK_EXPECT(sleeps() > sleeps_before, "waiters of a holder that yielded its core sleep in the kernel");
  HK_EXPECT(atomic_load_explicit(&lock.state, memory_order_relaxed) == 0, "the lock is free at the end");
  fprintf(stderr, "  %u threads x %u: %llu contended acquisitions, %llu sleeps\n", THREADS, ROUNDS,
          (unsigned long long)(contended() - contended_before), (unsigned long long)(sleeps() - sleeps_before));
}

static void UncontendedLockCountsNothing(void) {
  uint64_t c = contended(), s = sleeps();
  for (unsigned i = 0; i < 1000; i++) {
    hk_lock(&lock);
    hk_unlock(&lock);
  }
  HK_EXPECT(contended() == c && sleeps() == s, "a free lock is taken on the fast path");
  HK_EXPECT(atomic_load_explicit(&lock.state, memory_order_relaxed) == 0, "and left free (0: no wake call)");
}

static void TrylockNeverWaits(void) {
  hk_lock(&lock);
  HK_EXPECT(!hk_trylock(&lock), "held, even by the caller: the lock is not recursive");
  hk_unlock(&lock);
  HK_EXPECT(hk_trylock(&lock), "free: taken");
  hk_unlock(&lock);
}

/* A thread that sleeps on the lock while it is held; the holder's unlock
 * must wake it (state 2 makes unlock call the kernel). */
static _Atomic int sleeper_done;
static void* sleeper(void* arg) {
  (void)arg;
  hk_lock(&lock);
  atomic_store(&sleeper_done, 1);
  hk_unlock(&lock);
  return NULL;
}

static void UnlockWakesASleeper(void) {
  uint64_t s = sleeps();
  atomic_store(&sleeper_done, 0);
  hk_lock(&lock);
  pthread_t t;
  pthread_create(&t, NULL, sleeper, NULL);
  /* Wait until it announced itself asleep (bit 0), then some more. */
  while (!(atomic_load_explicit(&lock.state, memory_order_relaxed) & 1)) sched_yield();
  struct timespec ms = {0, 20 * 1000 * 1000};
  nanosleep(&ms, NULL);
  HK_EXPECT(atomic_load(&sleeper_done) == 0, "the waiter does not get a held lock");
  hk_unlock(&lock);
  pthread_join(t, NULL);
  HK_EXPECT(atomic_load(&sleeper_done) == 1, "unlock woke it");
  HK_EXPECT(sleeps() > s, "its sleep was counted");
  HK_EXPECT(atomic_load_explicit(&lock.state, memory_order_relaxed) == 0, "free at the end");
}

static int gettid_word(void) { return (int)syscall(SYS_gettid) << 1; }

/* The fork steps: prepare takes the lock, the parent gives it back, the
 * child resets it even though a sleeper's bit was copied, and its thread
 * takes locks under its own new id (the parent's id in a child's word
 * could one day be a new thread's of the child: a false "relocked"). */
static void ForkStepsLeaveTheLockUsable(void) {
  hk_lock_fork(&lock, HK_FORK_PREPARE);
  int held = atomic_fetch_or_explicit(&lock.state, 1, memory_order_relaxed);  /* as if a thread slept on it */
  HK_EXPECT(held == gettid_word(), "the word holds the holder's thread id");
  pid_t pid = fork();
  if (pid == 0) {
    hk_lock_fork(&lock, HK_FORK_CHILD);
    bool ok = hk_trylock(&lock);
    bool mine = atomic_load_explicit(&lock.state, memory_order_relaxed) == gettid_word();
    hk_unlock(&lock);
    _exit(!ok ? 1 : !mine ? 2 : 0);
  }
  hk_lock_fork(&lock, HK_FORK_PARENT);  /* bit 0: calls the kernel to wake nobody, harmlessly */
  int status = 0;
  HK_EXPECT(pid > 0 && waitpid(pid, &status, 0) == pid, "the child ran");
  HK_EXPECT(WIFEXITED(status) && WEXITSTATUS(status) != 1, "the child's reset lock is free");
  HK_EXPECT(WIFEXITED(status) && WEXITSTATUS(status) != 2, "the child takes it under its own thread id");
  HK_EXPECT(hk_trylock(&lock), "the parent's lock is free after its step");
  hk_unlock(&lock);
}

/* Runs body in a child with stderr into a pipe; returns the child's wait
 * status and what it wrote. The child gets 10 s (SIGALRM): a hang is a
 * failure of its own, not a stuck test. */
static int run_child(void (*body)(void), char* out, size_t cap) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    alarm(10);
    body();
    _exit(0);
  }
  close(fds[1]);
  size_t n = 0;
  ssize_t r;
  while (n + 1 < cap && (r = read(fds[0], out + n, cap - 1 - n)) > 0) n += (size_t)r;
  out[n] = 0;
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

static hk_lock_t arena_like = HK_LOCK_INIT(HK_LOCK_ARENA);
static void take_twice(void) {
  hk_lock(&arena_like);
  hk_lock(&arena_like);
}

static void RelockOnTheSameThreadDiesNamingTheLock(void) {
  char out[512];
  int status = run_child(take_twice, out, sizeof(out));
  HK_EXPECT(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "aborted (SIGALRM: it waited for itself)");
  HK_EXPECT(strcmp(out, "hakmem: malloc or free called from a signal handler while this thread holds the arena "
                        "lock\n") == 0,
            "the one line naming the lock");
  if (strcmp(out, "") != 0) fprintf(stderr, "  child wrote: %s", out);
}

/* Another thread holding the lock is no relock: the waiter waits. */
static void* hold_briefly(void* arg) {
  (void)arg;
  hk_lock(&arena_like);
  hk_set_stage(2);
  struct timespec ms = {0, 20 * 1000 * 1000};
  nanosleep(&ms, NULL);
  hk_unlock(&arena_like);
  return NULL;
}
static void AnotherThreadsLockIsWaitedFor(void) {
  pthread_t t;
  pthread_create(&t, NULL, hold_briefly, NULL);
  hk_wait_stage(2);
  hk_lock(&arena_like);
  HK_EXPECT((atomic_load_explicit(&arena_like.state, memory_order_relaxed) & ~1) == gettid_word(),
            "taken after the holder let go, under this thread's id");
  hk_unlock(&arena_like);
  pthread_join(t, NULL);
}

int main(void) {
  HK_RUN(UncontendedLockCountsNothing);
  HK_RUN(TrylockNeverWaits);
  HK_RUN(UnlockWakesASleeper);
  HK_RUN(ManyThreadsCountExactlyAndWaitersSleep);
  HK_RUN(ForkStepsLeaveTheLockUsable);
  HK_RUN(RelockOnTheSameThreadDiesNamingTheLock);
  HK_RUN(AnotherThreadsLockIsWaitedFor);
  return HK_TEST_RESULT();
}
