#include "alloc/core/thread.h"

#include <limits.h>
#include <pthread.h>

#include "alloc/core/clock.h"
#include "alloc/core/counters.h"
#include "alloc/core/options.h"
#include "alloc/core/os.h"
#include "alloc/core/prof.h"

static pthread_key_t hk_heap_key;
/* Guards the pool and the live list. */
static hk_lock_t hk_heaps_lock = HK_LOCK_INIT(HK_LOCK_HEAPS);
static hk_heap* hk_heap_pool;       /* free heap structs (next_heap links) */
/* Heaps of exited threads kept whole (hk_heap_park) for the threads that
 * start next, newest first (next_heap / prev_heap links): a program whose
 * threads come and go then runs each new thread on memory its predecessors
 * left resident, where a fresh heap would fault fresh pages in while the
 * old memory waits to be adopted or aged out. A heap parked longer than
 * params.park_grace_ms goes to the abandoned list as soon as a running
 * thread needs memory it does not have (release_parked_heap), and more
 * than params.parked_max are never kept, so memory does not wait for
 * threads that never come. */
static hk_heap* hk_parked_newest;
static hk_heap* hk_parked_oldest;
static _Atomic uint64_t hk_parked_count; /* changed under hk_heaps_lock; read without it as a hint */
/* How long the parked heaps that new threads took had waited (ms): the
 * longest wait of the current window of params.release_delay_ms and of
 * the window before it (a wait seen counts for one to two windows, then
 * is forgotten). A program that replaces its threads in rounds (a pool
 * restarting its workers, a batch of threads per job) parks a heap as each
 * thread of a round ends and takes them all when the next round starts:
 * most take-overs wait a moment, a few up to a round, and those few say how
 * long a heap must wait (parked_wait_ms). A heap given up before any
 * thread came counts too, when the next thread then starts without one: it
 * would have waited that long (else no wait longer than the grace in force
 * would ever be seen). All under hk_heaps_lock. */
static uint64_t hk_takeover_wait_max[2];   /* [0] this window, [1] the one before */
static uint64_t hk_takeover_window_ms;     /* when this window started */
static uint64_t hk_given_up_parked_ms;     /* parked_ms of the last heap release_parked_heap gave up; 0 once a thread counted it */
static hk_heap* hk_heaps_live;      /* every live heap (next_heap / prev_heap links) */
static uint64_t hk_exited_refills;  /* counters of retired heaps, under hk_heaps_lock */
static uint64_t hk_exited_remote_frees;

static void heap_thread_done(void* arg);
static void heap_retire(hk_heap* heap);

/* Thread exit. The key destructor (heap_thread_done) retires the heap, but
 * other keys' destructors, run after it in the same round, may allocate
 * again. Such a heap must not outlive its thread: it would keep its
 * segments, one set per exited thread.
 *   - heap_thread_done counts the rounds it ran in (hk_tls_exit_rounds) and,
 *     before the last round, stores a non-NULL placeholder under the key so
 *     that glibc calls it in every later round too (it repeats rounds while
 *     any value is set, up to PTHREAD_DESTRUCTOR_ITERATIONS).
 *   - A heap created before the last round is published and registered as
 *     usual (the exiting thread keeps its fast path); the next round's
 *     heap_thread_done retires it.
 *   - After heap_thread_done of the last round, nothing runs again: a heap
 *     created then is transient (hk_tls_transient). It is not published, so
 *     every allocation takes the slow path, which gives the heap up again
 *     at once (hk_thread_exit_release): its segments are abandoned, and
 *     threads that need memory adopt them with the blocks still in them.
 * Left: a thread whose first allocation ever happens in a destructor of the
 * last round (heap_thread_done never ran for it, so it cannot know the
 * round) keeps that one heap. */
static HK_TLS unsigned hk_tls_exit_rounds;  /* heap_thread_done calls in this thread */
static HK_TLS hk_heap* hk_tls_transient;    /* the heap an allocation of the last round is using */
static HK_TLS hk_segment* hk_tls_freed_into; /* hk_thread_note_ownerless_free: before the first allocation */

/* ---- parked heaps (hk_heaps_lock held) ---------------------------------- */
/* The parked heap whose segments include seg, or NULL. A parked heap's
 * segment list does not change while it is parked. */
static hk_heap* parked_holding(const hk_segment* seg) {
  for (hk_heap* h = hk_parked_newest; h; h = h->next_heap)
    for (const hk_segment* g = h->segments.head; g; g = g->next)
      if (g == seg) return h;
  return NULL;
}

static void parked_push(hk_heap* heap) {
  heap->prev_heap = NULL;
  heap->next_heap = hk_parked_newest;
  if (hk_parked_newest) hk_parked_newest->prev_heap = heap; else hk_parked_oldest = heap;
  hk_parked_newest = heap;
  atomic_fetch_add_explicit(&hk_parked_count, 1, memory_order_relaxed);
}

static void parked_unlink(hk_heap* heap) {
  if (heap->prev_heap) heap->prev_heap->next_heap = heap->next_heap; else hk_parked_newest = heap->next_heap;
  if (heap->next_heap) heap->next_heap->prev_heap = heap->prev_heap; else hk_parked_oldest = heap->prev_heap;
  heap->next_heap = heap->prev_heap = NULL;
  atomic_fetch_sub_explicit(&hk_parked_count, 1, memory_order_relaxed);
}

/* A parked heap the caller took off the list: its segments go to the
 * abandoned list, its struct to the pool. */
static void heap_dissolve(hk_heap* heap) {
  hk_heap_abandon(heap);
  hk_lock(&hk_heaps_lock);
  heap->next_heap = hk_heap_pool;
  hk_heap_pool = heap;
  hk_unlock(&hk_heaps_lock);
}

/* How long a parked heap waits for a new thread before running threads
 * may adopt its memory: params.park_grace_ms (time for a thread that
 * replaces an exited one to start), or, if longer, twice what recent
 * take-overs waited or as long as the heap's last thread ran it, up to
 * params.release_delay_ms (how long empty memory waits anyway). A program
 * that replaces its threads in rounds starts the next round within about a
 * round of the first thread's end, and a round lasts about as long as its
 * threads do; with the grace alone the heaps of a round's first threads to
 * end were given up while its last threads still ran, and the next round's
 * threads started on fresh heaps, each carving a span of every class it
 * used anew while the old heaps' segments were adopted piecemeal. The run
 * time covers the first rounds, before any take-over was seen. Under
 * hk_heaps_lock. */
static uint64_t parked_wait_ms(const hk_heap* heap) {
  uint64_t seen = hk_takeover_wait_max[0] > hk_takeover_wait_max[1] ? hk_takeover_wait_max[0] : hk_takeover_wait_max[1];
  uint64_t wait = 2 * seen > heap->live_ms ? 2 * seen : heap->live_ms;
  uint64_t most = hk_options.params.release_delay_ms;
  if (wait > most) wait = most;
  uint64_t grace = hk_options.params.park_grace_ms;
  return wait > grace ? wait : grace;
}

/* A new thread started at `now` and took a heap parked since parked_ms,
 * or would have. */
static void note_takeover(uint64_t parked_ms, uint64_t now) {
  uint64_t window = hk_options.params.release_delay_ms;
  if (now - hk_takeover_window_ms >= window) {  /* also when the clock went back (tests' fake clock) */
    bool last_one = now - hk_takeover_window_ms < 2 * window;
    hk_takeover_wait_max[1] = last_one ? hk_takeover_wait_max[0] : 0;
    hk_takeover_wait_max[0] = 0;
    hk_takeover_window_ms = now;
  }
  uint64_t waited = now >= parked_ms ? now - parked_ms : 0;
  if (waited > hk_takeover_wait_max[0]) hk_takeover_wait_max[0] = waited;
}

/* hk_heap_release_parked: the oldest parked heap, once parked for
 * parked_wait_ms, is abandoned for the calling heap to adopt. */
static bool release_parked_heap(void) {
  if (atomic_load_explicit(&hk_parked_count, memory_order_relaxed) == 0) return false;
  uint64_t now = hk_now_ms();
  hk_lock(&hk_heaps_lock);
  hk_heap* heap = hk_parked_oldest;
  if (heap != NULL && now - heap->parked_ms >= parked_wait_ms(heap)) {
    parked_unlink(heap);
    hk_given_up_parked_ms = heap->parked_ms;
  } else {
    heap = NULL;
  }
  hk_unlock(&hk_heaps_lock);
  if (heap == NULL) return false;
  heap_dissolve(heap);
  return true;
}

/* hk_heap_reclaim_idle: every live heap whose thread has made no
 * allocation slow path for params.heap_idle_ms gives back the spans remote
 * frees emptied. Under the live list's lock, so no heap is retired
 * meanwhile; each heap's own lock is only tried (hk_heap_give_back_emptied):
 * the caller holds its own. */
static void reclaim_idle_heaps(hk_heap* self, uint64_t now) {
  uint64_t idle = hk_options.params.heap_idle_ms;
  hk_lock(&hk_heaps_lock);
  for (hk_heap* h = hk_heaps_live; h; h = h->next_heap) {
    uint64_t active = atomic_load_explicit(&h->active_ms, memory_order_relaxed);
    if (h != self && active <= now && now - active >= idle) hk_heap_give_back_emptied(h);
  }
  hk_unlock(&hk_heaps_lock);
}

void hk_threads_release_parked(void) {
  for (;;) {
    hk_lock(&hk_heaps_lock);
    hk_heap* heap = hk_parked_oldest;
    if (heap != NULL) parked_unlink(heap);
    hk_unlock(&hk_heaps_lock);
    if (heap == NULL) return;
    heap_dissolve(heap);
  }
}

uint64_t hk_threads_parked(void) { return atomic_load_explicit(&hk_parked_count, memory_order_relaxed); }

uint64_t hk_threads_parked_segments(void) {
  uint64_t n = 0;
  hk_lock(&hk_heaps_lock);
  for (hk_heap* h = hk_parked_newest; h; h = h->next_heap) n += h->segments.count;
  hk_unlock(&hk_heaps_lock);
  return n;
}

void hk_threads_init(void) {
  hk_heap_release_parked = release_parked_heap;
  hk_heap_reclaim_idle = reclaim_idle_heaps;
  pthread_key_create(&hk_heap_key, heap_thread_done);
}

static hk_heap* heap_struct_alloc(void) {
  hk_lock(&hk_heaps_lock);
  if (hk_heap_pool == NULL) {
    /* 64 KiB of heap structs at a time. */
    void* mem = NULL;
    size_t bytes = 64 * 1024;
    if (hk_os_reserve(bytes, HK_OS_PAGE, &mem, 0) != 0) {
      hk_unlock(&hk_heaps_lock);
      return NULL;
    }
    size_t stride = (sizeof(hk_heap) + 63) & ~(size_t)63;
    for (size_t off = 0; off + stride <= bytes; off += stride) {
      hk_heap* h = (hk_heap*)((uint8_t*)mem + off);
      h->next_heap = hk_heap_pool;
      hk_heap_pool = h;
    }
  }
  hk_heap* h = hk_heap_pool;
  hk_heap_pool = h->next_heap;
  hk_unlock(&hk_heaps_lock);
  return h;
}

hk_heap* hk_thread_heap(void) {
  hk_heap* heap = hk_tls.heap;
  if (heap->is_live) return heap;
  if (hk_unlikely(hk_tls_transient != NULL)) return hk_tls_transient;  /* re-entered while one is in use */
  /* The parked heap this thread freed into before it allocated (the work
   * it took over), else the newest: the warmest memory. */
  hk_lock(&hk_heaps_lock);
  heap = hk_tls_freed_into != NULL ? parked_holding(hk_tls_freed_into) : NULL;
  hk_tls_freed_into = NULL;
  if (heap == NULL) heap = hk_parked_newest;
  if (heap != NULL) {
    parked_unlink(heap);
    note_takeover(heap->parked_ms, hk_now_ms());
  } else if (hk_given_up_parked_ms != 0) {
    note_takeover(hk_given_up_parked_ms, hk_now_ms());
  }
  hk_given_up_parked_ms = 0;
  hk_unlock(&hk_heaps_lock);
  bool fresh = heap == NULL;
  /* A thread that counts its bytes (prof.h) tags its spans from the start. */
  if (fresh) {
    heap = heap_struct_alloc();
    if (heap == NULL) return NULL;
    hk_heap_init(heap, hk_count_owner_id());
  } else {
    hk_heap_unpark(heap, hk_count_owner_id());
  }
  heap->live_ms = hk_now_ms();
  hk_lock(&hk_heaps_lock);
  heap->prev_heap = NULL;
  heap->next_heap = hk_heaps_live;
  if (hk_heaps_live) hk_heaps_live->prev_heap = heap;
  hk_heaps_live = heap;
  hk_unlock(&hk_heaps_lock);
  hk_stat_add(&hk_stat.threads_live, 1);
  if (hk_unlikely(hk_tls_exit_rounds >= PTHREAD_DESTRUCTOR_ITERATIONS)) {
    /* The last destructor round is past this heap's chance to be retired:
     * the caller gives it up after its allocation (hk_thread_exit_release). */
    hk_tls_transient = heap;
    return heap;
  }
  /* Publish before pthread_setspecific: it may allocate, and that allocation
   * must find this heap rather than create another. */
  hk_tls.heap = heap;
  pthread_setspecific(hk_heap_key, heap);
  if (fresh && hk_tls_exit_rounds == 0) hk_heap_prewarm(heap);  /* not for a thread that is exiting, nor a warm heap */
  return heap;
}

void hk_thread_note_ownerless_free(hk_segment* seg) {
  /* Not once the thread is exiting: no heap it makes then lives on. */
  if (hk_tls_freed_into == NULL && hk_tls_exit_rounds == 0) hk_tls_freed_into = seg;
}

void hk_thread_exit_release(hk_heap* heap) {
  if (hk_likely(heap != hk_tls_transient)) return;
  hk_tls_transient = NULL;
  heap_retire(heap);
}

static void heap_unlink_live(hk_heap* heap) {
  if (heap->prev_heap) heap->prev_heap->next_heap = heap->next_heap;
  else hk_heaps_live = heap->next_heap;
  if (heap->next_heap) heap->next_heap->prev_heap = heap->prev_heap;
  heap->next_heap = heap->prev_heap = NULL;
}

static void heap_retire(hk_heap* heap) {
  hk_heap_park(heap);
  /* The thread stops counting its bytes (a heap a later destructor makes
   * starts again from 0). */
  if (hk_tls.counts_on) hk_heap_count_sync(heap);
  hk_stat_add(&hk_stat.threads_live, -1);
  uint64_t now = hk_now_ms();
  hk_lock(&hk_heaps_lock);
  /* Under the lock that guards the live list: hk_threads_sum_counters sees
   * these counts either in the heap or in the totals, never in both. */
  hk_exited_refills += heap->refills;
  hk_exited_remote_frees += heap->remote_frees;
  heap->refills = heap->remote_frees = 0;
  heap_unlink_live(heap);
  heap->live_ms = now >= heap->live_ms ? now - heap->live_ms : 0;
  heap->parked_ms = now;
  parked_push(heap);
  hk_unlock(&hk_heaps_lock);
  /* Past the bound the oldest go (this one too when none may wait); more
   * than one when the bound was lowered at run time. */
  for (;;) {
    hk_lock(&hk_heaps_lock);
    hk_heap* evicted = NULL;
    if (atomic_load_explicit(&hk_parked_count, memory_order_relaxed) > hk_options.params.parked_max) {
      evicted = hk_parked_oldest;
      parked_unlink(evicted);
    }
    hk_unlock(&hk_heaps_lock);
    if (evicted == NULL) return;
    heap_dissolve(evicted);
  }
}

/* Statistics. The owner bumps its counters with plain stores (no atomic on
 * any allocation path); this reads them with relaxed loads, so a count may
 * lag by the operations in flight but is never torn (aligned 64-bit words).
 * TSan is told not to watch these reads: the race is the design. */
__attribute__((no_sanitize("thread"))) void hk_threads_sum_counters(uint64_t* refills, uint64_t* remote_frees) {
  hk_lock(&hk_heaps_lock);
  uint64_t r = hk_exited_refills, f = hk_exited_remote_frees;
  for (hk_heap* h = hk_heaps_live; h; h = h->next_heap) {
    r += __atomic_load_n(&h->refills, __ATOMIC_RELAXED);
    f += __atomic_load_n(&h->remote_frees, __ATOMIC_RELAXED);
  }
  hk_unlock(&hk_heaps_lock);
  *refills = r;
  *remote_frees = f;
}

/* pthread key destructor: gives the heap up, and asks to be called in the
 * next destructor round too, so that a heap other destructors create after
 * this one ran is retired there (see "Thread exit" above). */
static void heap_thread_done(void* arg) {
  hk_heap* heap = arg;
  unsigned round = ++hk_tls_exit_rounds;
  if (heap != NULL && heap->is_live) {
    hk_tls.heap = &hk_heap_empty;
    heap_retire(heap);
  }
  /* A non-NULL value keeps glibc's rounds going; &hk_heap_empty is no live
   * heap, so the next call only counts the round. Our key is one of the
   * first a process creates, so setting it never allocates. */
  if (round < PTHREAD_DESTRUCTOR_ITERATIONS) pthread_setspecific(hk_heap_key, &hk_heap_empty);
}

void hk_threads_fork(hk_fork_step step) { hk_lock_fork(&hk_heaps_lock, step); }
