/* Thread heaps (heap.c): which span serves a class, what happens to a span
 * that empties, adoption of an exited thread's segments and the trim
 * request other threads answer on their next slow path. Through the hk_ API
 * and this thread's heap (hk_tls_heap), linked with the balanced variant. */
#include "alloc/core/heap.h"

#include <pthread.h>

#include "alloc/core/check_testing.h"
#include "alloc/core/thread.h"

static unsigned class_of(size_t n) { return hk_class_of_index[HK_SIZE_INDEX(n)]; }

static void TheFirstBlockOfAClassMakesItsSpanCurrent(void) {
  void* p = hk_malloc(96);
  hk_heap* heap = hk_tls_heap;
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
  hk_heap* heap = hk_tls_heap;
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
  hk_heap* heap = hk_tls_heap;
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
  return NULL;  /* the thread exits with 64 live blocks: its segment is abandoned */
}

static void AnExitedThreadsSegmentIsAdoptedWithItsLiveBlocks(void) {
  hk_trim(0);  /* adopt and collect whatever earlier tests left */
  void* blocks[64];
  pthread_t t;
  pthread_create(&t, NULL, leave_blocks, blocks);
  pthread_join(t, NULL);
  HK_EXPECT(hk_abandoned_segments() == 1, "the exited thread left one segment with live blocks");
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

static hk_heap* other_heap;
static hk_span* other_kept;
static void* trims_on_request(void* arg) {
  (void)arg;
  void* p = hk_malloc(300);
  other_heap = hk_tls_heap;
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
  HK_RUN(AnExitedThreadsSegmentIsAdoptedWithItsLiveBlocks);
  HK_RUN(ATrimRequestIsAnsweredOnTheOtherThreadsNextSlowPath);
  return HK_TEST_RESULT();
}
