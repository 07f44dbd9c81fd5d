#include "alloc/core/thread.h"

#include <pthread.h>

#include "alloc/core/counters.h"
#include "alloc/core/os.h"

HK_TLS hk_heap* hk_tls_heap = &hk_heap_empty;

static pthread_key_t hk_heap_key;
static hk_lock_t hk_heaps_lock;     /* guards the pool and the live list */
static hk_heap* hk_heap_pool;       /* free heap structs (next_heap links) */
static hk_heap* hk_heaps_live;      /* every live heap (next_heap / prev_heap links) */
static uint64_t hk_exited_refills;  /* counters of retired heaps, under hk_heaps_lock */
static uint64_t hk_exited_remote_frees;

static void heap_thread_done(void* arg);

void hk_threads_init(void) { pthread_key_create(&hk_heap_key, heap_thread_done); }

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
  hk_heap* heap = hk_tls_heap;
  if (heap->is_live) return heap;
  heap = heap_struct_alloc();
  if (heap == NULL) return NULL;
  hk_heap_init(heap, hk_thread_id());
  hk_lock(&hk_heaps_lock);
  heap->prev_heap = NULL;
  heap->next_heap = hk_heaps_live;
  if (hk_heaps_live) hk_heaps_live->prev_heap = heap;
  hk_heaps_live = heap;
  hk_unlock(&hk_heaps_lock);
  hk_stat_add(&hk_stat.threads_live, 1);
  /* Publish before pthread_setspecific: it may allocate, and that allocation
   * must find this heap rather than create another. */
  hk_tls_heap = heap;
  pthread_setspecific(hk_heap_key, heap);
  hk_heap_prewarm(heap);
  return heap;
}

static void heap_unlink_live(hk_heap* heap) {
  if (heap->prev_heap) heap->prev_heap->next_heap = heap->next_heap;
  else hk_heaps_live = heap->next_heap;
  if (heap->next_heap) heap->next_heap->prev_heap = heap->prev_heap;
  heap->next_heap = heap->prev_heap = NULL;
}

static void heap_retire(hk_heap* heap) {
  hk_heap_release_all(heap);
  heap->is_live = false;
  hk_stat_add(&hk_stat.threads_live, -1);
  hk_lock(&hk_heaps_lock);
  /* Under the lock that guards the live list: hk_threads_sum_counters sees
   * these counts either in the heap or in the totals, never in both. */
  hk_exited_refills += heap->refills;
  hk_exited_remote_frees += heap->remote_frees;
  heap_unlink_live(heap);
  heap->next_heap = hk_heap_pool;
  hk_heap_pool = heap;
  hk_unlock(&hk_heaps_lock);
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

/* pthread key destructor. Destructors of other keys may still allocate after
 * this; they then get a fresh heap, whose own destructor runs in the next
 * destructor round (glibc repeats rounds while values are set). */
static void heap_thread_done(void* arg) {
  hk_heap* heap = arg;
  if (heap == NULL || !heap->is_live) return;
  hk_tls_heap = &hk_heap_empty;
  heap_retire(heap);
}

void hk_threads_fork(hk_fork_step step) { hk_lock_fork(&hk_heaps_lock, step); }
