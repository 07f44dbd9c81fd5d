/* Thread heaps (heap.c): which span serves a class, what happens to a span
 * that empties, an exited thread's heap parked for the next thread (the
 * one that freed into it first, else the newest) or adopted by a running
 * one, and the trim
 * request other threads answer on their next slow path. Through the hk_ API
 * and this thread's heap (hk_tls.heap), linked with the balanced variant. */
#include "alloc/core/heap.h"

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>

#include "alloc/core/check_testing.h"
#include "alloc/core/clock.h"
#include "alloc/core/counters.h"
#include "alloc/core/os.h"
#include "alloc/core/thread.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define HK_UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define HK_UNDER_SANITIZER 1
#endif
#endif
#ifndef HK_UNDER_SANITIZER
#define HK_UNDER_SANITIZER 0
#endif

static unsigned class_of(size_t n) { return hk_class_of_index[HK_SIZE_INDEX(n)]; }

static void TheFirstBlockOfAClassMakesItsSpanCurrent(void) {
  void* p = hk_malloc(96);
  hk_heap* heap = hk_tls.heap;
  HK_EXPECT(heap->is_live, "the first allocation made this thread's heap");
  hk_span* cur = heap->current[class_of(96)];
  HK_EXPECT(cur != &hk_span_empty && hk_span_holds_block(cur, p), "the block came from the current span");
  HK_EXPECT(heap->avail[class_of(96)].head == cur, "the current span heads the available list");
  void* q = hk_malloc(96);
  HK_EXPECT(hk_span_holds_block(cur, q), "the next block comes from the same span");
  hk_free(q);
  hk_free(p);
}

static void AnEmptiedSmallCurrentSpanIsKept(void) {
  hk_heap* heap = hk_tls.heap;
  void* p = hk_malloc(200);
  hk_span* cur = heap->current[class_of(200)];
  uint64_t segments = heap->segments.count;
  hk_free(p);
  HK_EXPECT(heap->current[class_of(200)] == cur && cur->in_use, "the emptied current span stays for the next malloc");
  HK_EXPECT(heap->segments.count == segments, "no segment went back");
  hk_collect();
  HK_EXPECT(heap->current[class_of(200)] == &hk_span_empty, "collect gives back empty spans, current ones too");
}

static void AFullSpanMovesToTheFullList(void) {
  hk_heap* heap = hk_tls.heap;
  unsigned cls = class_of(2048);
  size_t per_span = HK_SLOT_SIZE / 2048;
  void* blocks[2 * (HK_SLOT_SIZE / 2048)];
  for (size_t i = 0; i < per_span + 1; i++) blocks[i] = hk_malloc(2048);
  hk_span* first = hk_span_at(blocks[0]);
  HK_EXPECT(hk_span_is_full(first) && heap->full[cls].head == first, "a span found without free blocks is filed full");
  HK_EXPECT(heap->current[cls] != first, "malloc moved on to a new span");
  hk_free(blocks[0]);
  HK_EXPECT(!hk_span_is_full(first), "a free into a full span brings it back");
  for (size_t i = 1; i < per_span + 1; i++) hk_free(blocks[i]);
  hk_collect();
}

static void* leave_blocks(void* arg) {
  void** out = arg;
  for (int i = 0; i < 64; i++) out[i] = hk_malloc(48);
  return NULL;  /* the thread exits with 64 live blocks: its heap is parked */
}

static hk_span* taker_span;
static uintptr_t taker_id;
static uint64_t taker_mmaps;
static void* take_over(void* arg) {
  void* p = hk_malloc(48);
  taker_span = hk_span_at(p);
  taker_id = hk_thread_id();
  taker_mmaps = hk_os_read(mmap);
  *(void**)arg = p;
  return NULL;
}

static void ANewThreadTakesOverAnExitedThreadsHeapWhole(void) {
  hk_trim(0);  /* adopt and collect whatever earlier tests left */
  void* blocks[64];
  pthread_t t;
  pthread_create(&t, NULL, leave_blocks, blocks);
  pthread_join(t, NULL);
  hk_span* s = hk_span_at(blocks[0]);
  HK_EXPECT(hk_threads_parked() == 1, "the exited thread's heap waits whole for the next thread");
  HK_EXPECT(hk_abandoned_segments() == 0, "its segment is not abandoned");
  HK_EXPECT(atomic_load(&s->owner) == 0, "its spans are ownerless while parked: every free into them is remote");
  uint64_t mmaps = hk_os_read(mmap);
  void* fresh = NULL;
  pthread_create(&t, NULL, take_over, &fresh);
  pthread_join(t, NULL);
  HK_EXPECT(taker_span == s, "the next thread allocates from the span its predecessor left");
  HK_EXPECT(taker_mmaps == mmaps, "and maps nothing to start");
  HK_EXPECT(hk_threads_parked() == 1, "it exits in turn, parking the same heap");
  hk_free(fresh);
  for (int i = 0; i < 64; i++) hk_free(blocks[i]);  /* remote frees into the parked heap */
  (void)taker_id;
  hk_trim(0);
  HK_EXPECT(hk_threads_parked() == 0, "trim gives parked heaps up and adopts them");
}

static pthread_barrier_t both_allocated;
static void* parks_first;
static void* leave_blocks_together(void* arg) {
  leave_blocks(arg);
  pthread_barrier_wait(&both_allocated);  /* both heaps live at once: two heaps park */
  /* The other one parks first, so this one's heap is the newest. */
  if (arg != parks_first) while (hk_threads_parked() == 0) sched_yield();
  return NULL;
}

static void** successor_blocks;
static bool successor_frees_local;
static void* free_first_then_allocate(void* arg) {
  /* The predecessor's work first: this thread has no heap yet. */
  hk_free(successor_blocks[0]);
  void* p = hk_malloc(48);
  successor_frees_local = atomic_load(&hk_span_at(successor_blocks[1])->owner) == hk_thread_id();
  for (int i = 1; i < 64; i++) hk_free(successor_blocks[i]);
  *(void**)arg = p;
  return NULL;
}

static void ANewThreadThatFreesFirstTakesTheHeapItFreedInto(void) {
  hk_trim(0);
  static void* older[64];
  static void* newer[64];
  pthread_t t, u;
  pthread_barrier_init(&both_allocated, NULL, 2);
  parks_first = older;
  pthread_create(&t, NULL, leave_blocks_together, older);
  pthread_create(&u, NULL, leave_blocks_together, newer);
  pthread_join(t, NULL);
  pthread_join(u, NULL);
  pthread_barrier_destroy(&both_allocated);
  hk_span* older_span = hk_span_at(older[0]);
  HK_EXPECT(hk_threads_parked() == 2, "both exited threads' heaps are parked");
  HK_EXPECT(hk_segment_of(older[0]) != hk_segment_of(newer[0]), "each in segments of its own");
  successor_blocks = older;
  void* fresh = NULL;
  pthread_create(&t, NULL, free_first_then_allocate, &fresh);
  pthread_join(t, NULL);
  /* Without the remembered free the thread would take the newest heap. */
  HK_EXPECT(hk_span_at(fresh) == older_span, "its first block comes from the span it freed into");
  HK_EXPECT(successor_frees_local, "so its frees of its predecessor's blocks are local");
  HK_EXPECT(hk_threads_parked() == 2, "the newer heap still waits, and the taken one is parked again");
  hk_free(fresh);
  for (int i = 0; i < 64; i++) hk_free(newer[i]);
  hk_trim(0);
  HK_EXPECT(hk_threads_parked() == 0, "trim gives them up");
}

static void AHeapParkedPastItsGraceIsAdoptedByAThreadThatNeedsMemory(void) {
  hk_trim(0);
  void* blocks[64];
  pthread_t t;
  hk_clock_set_fake(1000);
  HK_EXPECT(hk_option_set("HAKMEM_PARK_GRACE_MS", "50") == 0, "the grace is an option");
  pthread_create(&t, NULL, leave_blocks, blocks);
  pthread_join(t, NULL);
  HK_EXPECT(hk_threads_parked() == 1, "parked at exit");
  hk_clock_set_fake(1000 + 49);
  HK_EXPECT(!hk_heap_release_parked(), "kept within its grace: a new thread is likely to take it");
  hk_clock_set_fake(1000 + 50);
  HK_EXPECT(hk_heap_release_parked(), "given up once the grace has passed");
  hk_clock_set_fake(0);
  hk_option_set("HAKMEM_PARK_GRACE_MS", "10");
  HK_EXPECT(hk_threads_parked() == 0 && hk_abandoned_segments() == 1, "its segment waits on the abandoned list");
  hk_heap* heap = hk_thread_heap();
  HK_EXPECT(hk_heap_adopt_one(heap), "this heap adopts it");
  HK_EXPECT(hk_abandoned_segments() == 0, "nothing waits any more");
  hk_span* s = hk_span_at(blocks[0]);
  HK_EXPECT(atomic_load(&s->owner) == heap->segments.owner_id, "its spans are this thread's now");
  HK_EXPECT(heap->avail[class_of(48)].head != NULL, "and filed in this heap's lists");
  for (int i = 0; i < 64; i++) hk_free(blocks[i]);  /* local frees now */
  HK_EXPECT(!hk_heap_adopt_one(heap), "false when none waits");
  hk_collect();
}

static pthread_barrier_t all_allocated;
static void* leave_one(void* arg) {
  *(void**)arg = hk_malloc(48);
  pthread_barrier_wait(&all_allocated);  /* every heap live at once: each parks on its own */
  return NULL;
}

static void ParkedHeapsBeyondTheBoundGoToTheAbandonedList(void) {
  hk_trim(0);
  void* blocks[3];
  pthread_t t[3];
  HK_EXPECT(hk_option_set("HAKMEM_PARKED_MAX", "2") == 0, "the bound is an option");
  /* Three heaps live at once, so three park. */
  pthread_barrier_init(&all_allocated, NULL, 3);
  for (int i = 0; i < 3; i++) pthread_create(&t[i], NULL, leave_one, &blocks[i]);
  for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
  pthread_barrier_destroy(&all_allocated);
  HK_EXPECT(hk_threads_parked() == 2, "two wait for new threads");
  HK_EXPECT(hk_abandoned_segments() == 1, "the oldest went to the abandoned list at once");
  HK_EXPECT(hk_option_set("HAKMEM_PARKED_MAX", "0") == 0, "none may wait");
  pthread_barrier_init(&all_allocated, NULL, 1);
  void* more = NULL;
  pthread_create(&t[0], NULL, leave_one, &more);  /* takes one parked heap over, and exits */
  pthread_join(t[0], NULL);
  pthread_barrier_destroy(&all_allocated);
  HK_EXPECT(hk_threads_parked() == 0, "with the bound lowered, the next exit gives up every waiting heap, its own too");
  HK_EXPECT(hk_abandoned_segments() == 3, "all three segments wait for adoption");
  hk_option_set("HAKMEM_PARKED_MAX", "64");
  for (int i = 0; i < 3; i++) hk_free(blocks[i]);
  hk_free(more);
  hk_trim(0);
  HK_EXPECT(hk_abandoned_segments() == 0, "trim adopts them all");
}

static void* free_all(void* arg) {
  void** blocks = arg;
  for (int i = 0; i < 16; i++) hk_free(blocks[i]);
  return NULL;
}

static void ACurrentSpanEmptiedByRemoteFreesStaysCurrent(void) {
  hk_trim(0);
  hk_heap* heap = hk_tls.heap;
  /* Committed far above the resident target: the decommit policy wants
   * memory back, so only the rule under test keeps the span. */
  void* big = hk_malloc(64u << 20);
  void* blocks[16];
  for (int i = 0; i < 16; i++) blocks[i] = hk_malloc(20000);  /* 320 KB carved: more than span_keep_kb */
  hk_span* s = hk_span_at(blocks[0]);
  HK_EXPECT(heap->current[class_of(20000)] == s && !s->pinned, "a current span carved past the keep bound");
  pthread_t t;
  pthread_create(&t, NULL, free_all, blocks);
  pthread_join(t, NULL);
  void* other = hk_malloc(100000);  /* a class this heap never used: its slow path collects remote frees */
  HK_EXPECT(s->in_use && hk_span_live(s) == 0, "the span took its blocks back and is empty");
  HK_EXPECT(heap->current[class_of(20000)] == s, "and stays current for the next malloc of its class");
  void* again = hk_malloc(20000);
  HK_EXPECT(hk_span_at(again) == s, "which it serves");
  hk_free(again);
  hk_free(other);
  hk_free(big);
  hk_collect();
}

/* A thread that allocates blocks that fill spans, then stops allocating
 * (it waits, as a main thread waits for its workers) while another thread
 * frees them all. */
#define IDLE_BLOCKS 600  /* 3 KiB blocks: two full spans of 256 and part of a third */
static hk_heap* idle_heap;
static void* allocate_then_idle(void* arg) {
  void** blocks = arg;
  for (int i = 0; i < IDLE_BLOCKS; i++) blocks[i] = hk_malloc(3000);
  idle_heap = hk_tls.heap;
  hk_set_stage(11);
  hk_wait_stage(12);
  return NULL;
}

static unsigned full_spans(const hk_heap* heap, unsigned cls) {
  unsigned n = 0;
  for (const hk_span* s = heap->full[cls].head; s; s = s->next) n++;
  return n;
}

static void AnIdleThreadsSpansEmptiedByOthersGoBackWhenAThreadGrows(void) {
  hk_trim(0);
  unsigned cls = class_of(3000);
  static void* blocks[IDLE_BLOCKS];
  hk_clock_set_fake(20000);
  HK_EXPECT(hk_option_set("HAKMEM_HEAP_IDLE_MS", "50") == 0, "the idle time is an option");
  pthread_t t;
  pthread_create(&t, NULL, allocate_then_idle, blocks);
  hk_wait_stage(11);
  HK_EXPECT(full_spans(idle_heap, cls) == 2, "the idle thread's first two spans are full");
  hk_span* first = hk_span_at(blocks[0]);
  unsigned first_slot = first->slot_index, span_slots = first->slot_count;
  HK_EXPECT(hk_span_at(blocks[256]) == first + span_slots, "the second follows the first in the segment");
  for (int i = 0; i < IDLE_BLOCKS; i++) hk_free(blocks[i]);  /* remote frees: its thread does not collect them */
  void* grow[3];
  hk_clock_set_fake(20000 + 49);
  grow[0] = hk_malloc(60000);  /* a new span of a class this thread never used: it grows */
  HK_EXPECT(full_spans(idle_heap, cls) == 2, "a thread that allocated 49 ms ago is not idle: its spans stay");
  hk_clock_set_fake(20000 + 200);
  hk_option_set("HAKMEM_HEAP_IDLE_MS", "0");
  grow[1] = hk_malloc(90000);
  HK_EXPECT(full_spans(idle_heap, cls) == 2, "with the option off, nothing is taken from an idle heap");
  hk_option_set("HAKMEM_HEAP_IDLE_MS", "50");
  hk_clock_set_fake(20000 + 400);
  grow[2] = hk_malloc(120000);
  HK_EXPECT(full_spans(idle_heap, cls) == 0, "idle 400 ms: the spans others' frees emptied went back");
  hk_segment* seg = hk_segment_of(first);
  uint64_t slots = ((1ull << (2 * span_slots)) - 1) << first_slot;  /* the two spans' slots */
  HK_EXPECT(!first->in_use && (seg->free_slots & slots) == slots, "their slots are free");
  HK_EXPECT((__atomic_load_n(&seg->decommitted_slots, __ATOMIC_RELAXED) & slots) == slots,
            "and decommitted at once, not kept for a heap that does not allocate");
  HK_EXPECT(idle_heap->current[cls] != &hk_span_empty && idle_heap->current[cls]->in_use,
            "its current span stays: its thread may allocate from it at any time");
  hk_set_stage(12);
  pthread_join(t, NULL);
  hk_set_stage(0);  /* the stages of later tests start again from 1 */
  hk_option_set("HAKMEM_HEAP_IDLE_MS", "50");
  hk_clock_set_fake(0);
  for (int i = 0; i < 3; i++) hk_free(grow[i]);
  hk_trim(0);
}

/* A thread that only frees what another allocates, round after round. */
#define HANDOFF_BLOCKS 2000
static void* handoff_blocks[HANDOFF_BLOCKS];
static pthread_barrier_t handoff_barrier;
static bool freer_made_a_heap;
static void* free_only(void* arg) {
  (void)arg;
  for (int round = 0; round < 40; round++) {
    pthread_barrier_wait(&handoff_barrier);  /* the blocks are ready */
    for (int i = 0; i < HANDOFF_BLOCKS; i++) hk_free(handoff_blocks[i]);
    pthread_barrier_wait(&handoff_barrier);  /* all freed */
  }
  freer_made_a_heap = hk_tls.heap->is_live;
  return NULL;
}

static void AThreadThatOnlyFreesDoesNotMakeTheProcessGrow(void) {
  hk_trim(0);
  pthread_barrier_init(&handoff_barrier, NULL, 2);
  pthread_t t;
  pthread_create(&t, NULL, free_only, NULL);
  uint32_t x = 777;
  uint64_t committed = 0;
  for (int round = 0; round < 40; round++) {
    if (round == 5) committed = hk_stat_read(&hk_stat.committed_bytes);  /* warmed up */
    for (int i = 0; i < HANDOFF_BLOCKS; i++) {
      x ^= x << 13; x ^= x >> 17; x ^= x << 5;
      char* p = hk_malloc(16 + x % 4096);
      p[0] = 1;
      handoff_blocks[i] = p;
    }
    pthread_barrier_wait(&handoff_barrier);
    pthread_barrier_wait(&handoff_barrier);
  }
  pthread_join(t, NULL);
  pthread_barrier_destroy(&handoff_barrier);
  int64_t grown = (int64_t)(hk_stat_read(&hk_stat.committed_bytes) - committed);
  fprintf(stderr, "  35 rounds of %d blocks freed by another thread: committed grew %lld bytes\n", HANDOFF_BLOCKS,
          (long long)grown);
  HK_EXPECT(!freer_made_a_heap, "the freeing thread has no heap");
  HK_EXPECT(grown <= 0, "the allocating thread reuses what the other freed: committed memory stays flat");
  hk_trim(0);
}

/* One thread of a churn: allocates blocks of many sizes, frees half of
 * them, and leaves the rest to the main thread, which frees them after the
 * thread exited (remote frees into its heap). The threads of a round meet
 * at a barrier, so each round has CHURN_THREADS heaps live at once. */
#define CHURN_BLOCKS 400
#define CHURN_THREADS 8
static pthread_barrier_t churn_barrier;
static void* churn_once(void* arg) {
  void** left = arg;
  void* own[CHURN_BLOCKS / 2];
  uint32_t x = 12345;
  for (int i = 0; i < CHURN_BLOCKS; i++) {
    x ^= x << 13; x ^= x >> 17; x ^= x << 5;
    size_t size = 16 + x % (i % 8 == 0 ? 32768 : 1024);
    char* p = hk_malloc(size);
    p[0] = p[size - 1] = 1;  /* touched, as a program would */
    if (i % 2) own[i / 2] = p; else left[i / 2] = p;
  }
  pthread_barrier_wait(&churn_barrier);
  for (int i = 0; i < CHURN_BLOCKS / 2; i++) hk_free(own[i]);
  return NULL;
}

static long minor_faults(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_minflt;
}

static void* idle_thread(void* arg) {
  volatile char stack[CHURN_BLOCKS / 2 * sizeof(void*)];  /* the stack churn_once uses */
  stack[0] = 1;
  pthread_barrier_wait(&churn_barrier);
  return arg;
}

/* Minor faults of a round of CHURN_THREADS threads that do not allocate:
 * what creating threads costs whatever the allocator does (stacks, TLS). */
static long thread_round_faults(void) {
  long before = minor_faults();
  for (int round = 0; round < 30; round++) {
    pthread_t t[CHURN_THREADS];
    for (int i = 0; i < CHURN_THREADS; i++) pthread_create(&t[i], NULL, idle_thread, NULL);
    for (int i = 0; i < CHURN_THREADS; i++) pthread_join(t[i], NULL);
  }
  return (minor_faults() - before) / 30;
}

static void ThreadsThatComeAndGoReuseTheirPredecessorsMemory(void) {
  hk_trim(0);
  /* Time stands still: no parked heap outlives its grace, no cache ages, on
   * however loaded a machine; what is measured is where memory goes. */
  hk_clock_set_fake(5000);
  pthread_barrier_init(&churn_barrier, NULL, CHURN_THREADS);
  long baseline = thread_round_faults();
  static void* left[CHURN_THREADS][CHURN_BLOCKS / 2];
  uint64_t committed = 0;
  long faults = 0;
  for (int round = 0; round < 40; round++) {
    if (round == 10) {  /* warmed up */
      committed = hk_stat_read(&hk_stat.committed_bytes);
      faults = minor_faults();
    }
    pthread_t t[CHURN_THREADS];
    for (int i = 0; i < CHURN_THREADS; i++) pthread_create(&t[i], NULL, churn_once, left[i]);
    for (int i = 0; i < CHURN_THREADS; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < CHURN_THREADS; i++)
      for (int j = 0; j < CHURN_BLOCKS / 2; j++) hk_free(left[i][j]);
  }
  int64_t grown = (int64_t)(hk_stat_read(&hk_stat.committed_bytes) - committed);
  long per_round = (minor_faults() - faults) / 30;
  fprintf(stderr, "  30 rounds of %d threads: committed grew %lld bytes, %ld minor faults a round (%ld without allocating)\n",
          CHURN_THREADS, (long long)grown, per_round, baseline);
  HK_EXPECT(grown <= 0, "committed memory stays flat while threads come and go");
  /* Measured: none over the baseline; 108-138 a round, and committed
   * growing by up to a segment, when an exited thread's segments were only
   * abandoned for running threads to adopt. */
  if (!HK_UNDER_SANITIZER)  /* its shadow memory faults on its own schedule */
    HK_EXPECT(per_round - baseline <= 16, "new threads fault in few pages: their predecessors' memory is resident");
  pthread_barrier_destroy(&churn_barrier);
  hk_clock_set_fake(0);
  hk_trim(0);
}

/* ---- how long a parked heap waits ---- */
static void* allocate_and_exit(void* arg) {
  *(void**)arg = hk_malloc(48);
  return NULL;  /* parks its heap (or the one it took) with the block live */
}

static void start_thread_at(uint64_t now_ms, void** block) {
  hk_clock_set_fake(now_ms);
  pthread_t t;
  pthread_create(&t, NULL, allocate_and_exit, block);
  pthread_join(t, NULL);
}

static void AParkedHeapWaitsTwiceAsLongAsRecentTakeOversWaited(void) {
  hk_trim(0);  /* nothing parked */
  HK_EXPECT(hk_option_set("HAKMEM_PARK_GRACE_MS", "10") == 0, "the least grace is an option");
  void* blocks[4];
  const uint64_t t0 = 100000000;  /* far from any window earlier tests opened */
  start_thread_at(t0, &blocks[0]);
  start_thread_at(t0, &blocks[1]);  /* takes it at once: a window opens, nothing waited */
  HK_EXPECT(hk_threads_parked() == 1, "one heap, parked again");
  start_thread_at(t0 + 200, &blocks[2]);  /* the next thread took 200 ms to come */
  HK_EXPECT(hk_threads_parked() == 1 && hk_span_at(blocks[2]) == hk_span_at(blocks[0]), "and took the same heap");
  /* With the option alone it would be given up after 10 ms. */
  hk_clock_set_fake(t0 + 200 + 399);
  HK_EXPECT(!hk_heap_release_parked(), "kept for twice the longest recent take-over's wait");
  hk_clock_set_fake(t0 + 200 + 400);
  HK_EXPECT(hk_heap_release_parked(), "given up after that");
  HK_EXPECT(hk_threads_parked() == 0, "nothing waits for the next thread");
  /* That heap would have waited 700 ms for the next thread: that counts,
   * up to the release delay (1 s in balanced). */
  start_thread_at(t0 + 200 + 700, &blocks[3]);
  hk_clock_set_fake(t0 + 900 + 999);
  HK_EXPECT(!hk_heap_release_parked(), "a heap given up too early teaches a longer grace");
  hk_clock_set_fake(t0 + 900 + 1000);
  HK_EXPECT(hk_heap_release_parked(), "but never longer than the release delay");
  hk_clock_set_fake(0);
  for (int i = 0; i < 4; i++) hk_free(blocks[i]);
  hk_trim(0);
}

static void* long_lived_block;
static void* allocate_wait_and_exit(void* arg) {
  (void)arg;
  long_lived_block = hk_malloc(48);
  hk_set_stage(21);
  hk_wait_stage(22);
  return NULL;  /* parks its heap, run for as long as the main thread let the clock go */
}

static void AParkedHeapWaitsAsLongAsItsThreadRan(void) {
  hk_trim(0);  /* nothing parked */
  void* blocks[2];
  const uint64_t t0 = 200000000;  /* far from any window earlier tests opened */
  start_thread_at(t0, &blocks[0]);
  start_thread_at(t0, &blocks[1]);  /* takes it at once: the windows start again, nothing waited */
  pthread_t t;
  pthread_create(&t, NULL, allocate_wait_and_exit, NULL);  /* takes it too */
  hk_wait_stage(21);
  hk_clock_set_fake(t0 + 300);
  hk_set_stage(22);
  pthread_join(t, NULL);
  HK_EXPECT(hk_threads_parked() == 1, "its heap is parked");
  hk_clock_set_fake(t0 + 300 + 299);
  HK_EXPECT(!hk_heap_release_parked(), "kept as long as its thread ran (300 ms), where no take-over waited");
  hk_clock_set_fake(t0 + 300 + 300);
  HK_EXPECT(hk_heap_release_parked(), "given up after that");
  hk_set_stage(0);
  hk_clock_set_fake(0);
  for (int i = 0; i < 2; i++) hk_free(blocks[i]);
  hk_free(long_lived_block);
  hk_trim(0);
}

static hk_heap* other_heap;
static hk_span* other_kept;
static void* trims_on_request(void* arg) {
  (void)arg;
  void* p = hk_malloc(300);
  other_heap = hk_tls.heap;
  other_kept = other_heap->current[class_of(300)];
  hk_free(p);  /* emptied, kept as current */
  hk_set_stage(1);
  hk_wait_stage(2);
  void* q = hk_malloc(5000);  /* a slow path: answers the trim request */
  hk_free(q);
  hk_set_stage(3);
  hk_wait_stage(4);
  return NULL;
}

static void ATrimRequestIsAnsweredOnTheOtherThreadsNextSlowPath(void) {
  pthread_t t;
  pthread_create(&t, NULL, trims_on_request, NULL);
  hk_wait_stage(1);
  HK_EXPECT(other_kept->in_use, "the other thread keeps its emptied current span");
  hk_heaps_request_trim();
  hk_set_stage(2);
  hk_wait_stage(3);
  HK_EXPECT(other_heap->current[class_of(300)] == &hk_span_empty, "its next slow path trimmed it");
  hk_set_stage(4);
  pthread_join(t, NULL);
}

int main(void) {
  HK_RUN(TheFirstBlockOfAClassMakesItsSpanCurrent);
  HK_RUN(AnEmptiedSmallCurrentSpanIsKept);
  HK_RUN(AFullSpanMovesToTheFullList);
  HK_RUN(ANewThreadTakesOverAnExitedThreadsHeapWhole);
  HK_RUN(ANewThreadThatFreesFirstTakesTheHeapItFreedInto);
  HK_RUN(AHeapParkedPastItsGraceIsAdoptedByAThreadThatNeedsMemory);
  HK_RUN(ParkedHeapsBeyondTheBoundGoToTheAbandonedList);
  HK_RUN(ACurrentSpanEmptiedByRemoteFreesStaysCurrent);
  HK_RUN(AnIdleThreadsSpansEmptiedByOthersGoBackWhenAThreadGrows);
  HK_RUN(AThreadThatOnlyFreesDoesNotMakeTheProcessGrow);
  HK_RUN(ThreadsThatComeAndGoReuseTheirPredecessorsMemory);
  HK_RUN(ATrimRequestIsAnsweredOnTheOtherThreadsNextSlowPath);
  HK_RUN(AParkedHeapWaitsAsLongAsItsThreadRan);
  HK_RUN(AParkedHeapWaitsTwiceAsLongAsRecentTakeOversWaited);  /* last: it leaves take-over waits behind */
  return HK_TEST_RESULT();
}
