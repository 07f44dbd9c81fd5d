/* Target 5: cross-thread frees scripted by the input.
 *
 * Four worker threads share a table of block slots. The input is a script of
 * steps: a worker allocates into a slot, a slot is handed to another worker,
 * the worker holding a slot frees or reallocs it (a remote free when another
 * thread allocated it), a worker collects, trims, or exits (its heap is
 * retired and its segments abandoned with whatever is still live in them; a
 * fresh thread takes its place and adopts them), and "bursts" in which every
 * worker at once frees the blocks it holds from other threads and allocates
 * new ones.
 *
 * Reproducibility: every step except a burst runs on one worker while the
 * others wait (lockstep through a mutex and condition variable), so the
 * order of heap operations is exactly the script's. Bursts are the genuinely
 * concurrent part; each worker touches only its own slots in a burst, so the
 * outcome the checks see (which blocks are live, with what contents) does not
 * depend on the interleaving, only the allocator's internal order does.
 *
 * Checks: each block is aligned, big enough, never overlaps another live
 * block, keeps its contents until freed (checked by whichever thread frees
 * it), realloc preserves contents across threads; and after the input, with
 * every block freed and every worker exited, no thread heap or large mapping
 * is left, and abandoned segments stay bounded (no leak across inputs). */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc/core/size_class.h"
#include "alloc/include/hakmem.h"
#include "alloc/include/hakmem.h"
#include "fuzz/fuzz_common.h"

#define NT 4
#define NS 64
#define MAX_STEPS 512

typedef struct tslot {
  uint8_t* p;
  size_t req;
  size_t usable;
  uint32_t seed;
  int holder;  /* worker that may free it next */
  int maker;   /* worker that allocated it */
} tslot;

typedef enum { C_NONE, C_ALLOC, C_FREE, C_REALLOC, C_CHECK, C_COLLECT, C_TRIM, C_EXIT, C_BURST } cmd_kind;

typedef struct burst_plan {
  unsigned nfree, nalloc;
  unsigned free_slot[NS];
  unsigned alloc_slot[NS];
  size_t alloc_size[NS];
  bool collect;
} burst_plan;

typedef struct worker {
  pthread_t th;
  int index;
  cmd_kind cmd;  /* C_NONE: idle, waiting for a command */
  unsigned slot;
  size_t size;
  burst_plan burst;
} worker;

static tslot slots[NS];
static worker workers[NT];
static uint32_t next_seed;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv_cmd = PTHREAD_COND_INITIALIZER;   /* a command was posted */
static pthread_cond_t cv_done = PTHREAD_COND_INITIALIZER;  /* a command finished */

/* ---- what a worker does -------------------------------------------------- */

static void check_contents(const tslot* s, unsigned i, const char* when, int w) {
  size_t u = hk_malloc_usable_size(s->p);
  FUZZ_CHECK(u == s->usable, "%s on worker %d: slot %u usable %zu, was %zu", when, w, i, u, s->usable);
  size_t bad = fuzz_find_bad(s->p, s->usable, s->usable, s->seed);
  FUZZ_CHECK(bad == SIZE_MAX, "%s on worker %d: slot %u (%zu bytes from worker %d) corrupted at %zu", when, w, i,
             s->req, s->maker, bad);
}

static void fill(tslot* s, void* p, size_t req, int w) {
  FUZZ_CHECK(((uintptr_t)p & (HK_ALIGN - 1)) == 0, "worker %d: hk_malloc(%zu) = %p misaligned", w, req, p);
  size_t u = hk_malloc_usable_size(p);
  FUZZ_CHECK(u >= req, "worker %d: %zu bytes asked, usable %zu", w, req, u);
  s->p = p;
  s->req = req;
  s->usable = u;
  s->seed = __atomic_add_fetch(&next_seed, 1, __ATOMIC_RELAXED);
  s->maker = s->holder = w;
  fuzz_stamp(p, u, s->seed);
}

static void do_alloc(unsigned i, size_t n, int w) {
  tslot* s = &slots[i];
  errno = 0;
  void* p = hk_malloc(n);
  FUZZ_CHECK(p != NULL, "worker %d: hk_malloc(%zu) failed, errno %d", w, n, errno);
  fill(s, p, n, w);
}

static void do_free(unsigned i, int w) {
  tslot* s = &slots[i];
  check_contents(s, i, "free", w);
  if (s->seed & 1) hk_free(s->p);
  else hk_free_sized(s->p, s->req);
  memset(s, 0, sizeof(*s));
}

static void do_realloc(unsigned i, size_t n, int w) {
  tslot* s = &slots[i];
  check_contents(s, i, "realloc", w);
  errno = 0;
  uint8_t* q = hk_realloc(s->p, n);
  if (n == 0 && q == NULL) {  /* realloc(p, 0) frees, as in glibc */
    memset(s, 0, sizeof(*s));
    return;
  }
  FUZZ_CHECK(q != NULL, "worker %d: hk_realloc(%zu -> %zu) failed, errno %d", w, s->req, n, errno);
  size_t keep = s->req < n ? s->req : n;
  size_t bad = fuzz_find_bad(q, s->usable, keep, s->seed);
  FUZZ_CHECK(bad == SIZE_MAX, "worker %d: realloc of slot %u (from worker %d) lost byte %zu", w, i, s->maker, bad);
  fill(s, q, n, w);
}

static void run_burst(worker* me) {
  burst_plan* b = &me->burst;
  for (unsigned k = 0; k < b->nfree; k++) do_free(b->free_slot[k], me->index);
  if (b->collect) hk_collect();
  for (unsigned k = 0; k < b->nalloc; k++) do_alloc(b->alloc_slot[k], b->alloc_size[k], me->index);
}

static void* worker_main(void* arg) {
  worker* me = arg;
  pthread_mutex_lock(&mu);
  for (;;) {
    while (me->cmd == C_NONE) pthread_cond_wait(&cv_cmd, &mu);
    cmd_kind c = me->cmd;
    if (c == C_EXIT) {
      me->cmd = C_NONE;
      pthread_cond_broadcast(&cv_done);
      pthread_mutex_unlock(&mu);
      return NULL;  /* the heap is retired by hakmem's thread-exit hook */
    }
    /* Lockstep commands keep the mutex: nothing else runs meanwhile. Bursts
     * drop it so the workers run together. */
    if (c == C_BURST) pthread_mutex_unlock(&mu);
    switch (c) {
      case C_ALLOC: do_alloc(me->slot, me->size, me->index); break;
      case C_FREE: do_free(me->slot, me->index); break;
      case C_REALLOC: do_realloc(me->slot, me->size, me->index); break;
      case C_CHECK: check_contents(&slots[me->slot], me->slot, "check", me->index); break;
      case C_COLLECT: hk_collect(); break;
      case C_TRIM: hk_trim(0); break;
      case C_BURST: run_burst(me); break;
      default: break;
    }
    if (c == C_BURST) pthread_mutex_lock(&mu);
    me->cmd = C_NONE;
    pthread_cond_broadcast(&cv_done);
  }
}

/* ---- the coordinator (the fuzzer's thread) -------------------------------- */

static void start_worker(int w) {
  workers[w].index = w;
  workers[w].cmd = C_NONE;
  int rc = pthread_create(&workers[w].th, NULL, worker_main, &workers[w]);
  FUZZ_CHECK(rc == 0, "pthread_create failed: %d", rc);
}

/* Posts cmd to worker w and waits until it is done (mutex held by caller). */
static void run_on(int w, cmd_kind c, unsigned slot, size_t size) {
  workers[w].slot = slot;
  workers[w].size = size;
  workers[w].cmd = c;
  pthread_cond_broadcast(&cv_cmd);
  while (workers[w].cmd != C_NONE) pthread_cond_wait(&cv_done, &mu);
}

static void exit_worker(int w) {
  run_on(w, C_EXIT, 0, 0);
  pthread_mutex_unlock(&mu);
  pthread_join(workers[w].th, NULL);
  pthread_mutex_lock(&mu);
}

/* No two live blocks overlap (run after anything allocated). */
static void check_no_overlap(void) {
  for (unsigned i = 0; i < NS; i++) {
    if (!slots[i].p) continue;
    uintptr_t a = (uintptr_t)slots[i].p;
    for (unsigned j = i + 1; j < NS; j++) {
      if (!slots[j].p) continue;
      uintptr_t b = (uintptr_t)slots[j].p;
      FUZZ_CHECK(a + slots[i].usable <= b || b + slots[j].usable <= a,
                 "live slots %u [%p,+%zu) (worker %d) and %u [%p,+%zu) (worker %d) overlap", i, (void*)slots[i].p,
                 slots[i].usable, slots[i].maker, j, (void*)slots[j].p, slots[j].usable, slots[j].maker);
    }
  }
}

static size_t decode_size(fi* in) {
  uint8_t b = fi_u8(in);
  switch (b & 3) {
    case 0: return b >> 2;                                         /* 0..63 */
    case 1: return fi_u8(in) * 4u;                                 /* ..1 KiB */
    case 2: return hk_class_size[fi_u8(in) % HK_CLASSES] - (b >> 7);
    default: return (size_t)fi_u16(in) << (b >> 6);                /* ..512 KiB: large too */
  }
}

static hk_stats_t baseline;
static bool have_baseline;

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fi in = {data, size};
  if (!have_baseline) {
    hk_stats_get(&baseline);
    have_baseline = true;
  }
  pthread_mutex_lock(&mu);
  for (int w = 0; w < NT; w++) start_worker(w);

  for (unsigned step = 0; step < MAX_STEPS && !fi_done(&in); step++) {
    uint8_t op = fi_u8(&in);
    int w = (op >> 4) % NT;
    unsigned i = fi_u8(&in) % NS;
    switch (op % 10) {
      case 0:
      case 1: { /* allocate into slot i on worker w (its holder frees what was there) */
        size_t n = decode_size(&in);
        if (slots[i].p) run_on(slots[i].holder, C_FREE, i, 0);
        run_on(w, C_ALLOC, i, n);
        check_no_overlap();
        break;
      }
      case 2: /* hand slot i to worker w */
        if (slots[i].p) slots[i].holder = w;
        break;
      case 3:
        if (slots[i].p) run_on(slots[i].holder, C_FREE, i, 0);
        break;
      case 4: {
        size_t n = decode_size(&in);
        if (slots[i].p) {
          run_on(slots[i].holder, C_REALLOC, i, n);
          check_no_overlap();
        }
        break;
      }
      case 5:
        if (slots[i].p) run_on(w, C_CHECK, i, 0);  /* any thread may read a block */
        break;
      case 6:
        run_on(w, (op & 8) ? C_TRIM : C_COLLECT, 0, 0);
        break;
      case 7: /* worker w's thread exits; a new thread takes its place */
        exit_worker(w);
        start_worker(w);
        break;
      default: { /* burst */
        for (int v = 0; v < NT; v++) {
          burst_plan* b = &workers[v].burst;
          b->nfree = b->nalloc = 0;
          b->collect = (op >> (4 + v)) & 1;
        }
        /* Each worker frees what it holds from other threads... */
        for (unsigned s = 0; s < NS; s++)
          if (slots[s].p && slots[s].holder != slots[s].maker) {
            burst_plan* b = &workers[slots[s].holder].burst;
            b->free_slot[b->nfree++] = s;
          }
        /* ...and allocates into empty slots it is given (slot s goes to
         * worker s % NT), as many as the input asks. */
        unsigned want = fi_u8(&in) % 16;
        for (unsigned s = 0; s < NS && want > 0; s++) {
          unsigned t = (i + s) % NS;
          bool freed_now = false;
          for (int v = 0; v < NT; v++)
            for (unsigned k = 0; k < workers[v].burst.nfree; k++) freed_now |= workers[v].burst.free_slot[k] == t;
          if (slots[t].p || freed_now) continue;
          burst_plan* b = &workers[t % NT].burst;
          b->alloc_slot[b->nalloc] = t;
          b->alloc_size[b->nalloc++] = decode_size(&in);
          want--;
        }
        for (int v = 0; v < NT; v++) workers[v].cmd = C_BURST;
        pthread_cond_broadcast(&cv_cmd);
        for (int v = 0; v < NT; v++)
          while (workers[v].cmd != C_NONE) pthread_cond_wait(&cv_done, &mu);
        check_no_overlap();
        break;
      }
    }
  }

  /* Everything is freed by its holder (remote frees included), then every
   * worker exits. */
  for (unsigned i = 0; i < NS; i++)
    if (slots[i].p) run_on(slots[i].holder, C_FREE, i, 0);
  for (int w = 0; w < NT; w++) exit_worker(w);
  pthread_mutex_unlock(&mu);

  hk_stats_t st;
  hk_stats_get(&st);
  FUZZ_CHECK(st.threads_live == baseline.threads_live, "%llu thread heaps live after every worker exited (baseline %llu)",
             (unsigned long long)st.threads_live, (unsigned long long)baseline.threads_live);
  FUZZ_CHECK(st.large_live == baseline.large_live, "%llu large blocks live after everything was freed (baseline %llu)",
             (unsigned long long)st.large_live, (unsigned long long)baseline.large_live);
  /* With no thread left, any segment still live is abandoned, waiting for
   * adoption, and adoption by the next input's threads keeps that bounded. */
  if (baseline.threads_live == 0)
    FUZZ_CHECK(st.segments_live == st.segments_abandoned, "%llu segments live but only %llu abandoned with no thread left",
               (unsigned long long)st.segments_live, (unsigned long long)st.segments_abandoned);
  FUZZ_CHECK(st.segments_abandoned <= 4 * NS, "%llu abandoned segments: leaking across inputs",
             (unsigned long long)st.segments_abandoned);
  return 0;
}
