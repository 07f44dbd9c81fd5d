/* Free-list links (span.h) on their own: which words malloc's fast check
 * follows. An intact link between any two blocks of a span passes it,
 * whichever slots they lie in, so a span of several slots stays on the fast
 * path; a zeroed link, and any write into a link's first four bytes or into
 * its bytes 3-7 alone, fails it whatever the bytes written (the far path
 * then reports it: freelist_test pins the message). Through the hk_ API and
 * this thread's spans, linked with the balanced variant. */
#include "alloc/core/span.h"

#include <string.h>

#include "alloc/core/check_testing.h"
#include "alloc/include/hakmem.h"

enum { kBlocks = 200 };

static uint32_t rng = 2463534242u;
static uint32_t next_random(void) {
  rng ^= rng << 13;
  rng ^= rng >> 17;
  rng ^= rng << 5;
  return rng;
}

/* What hk_span_pop_nonempty tests before it follows a link word. */
static bool passes_fast_check(const hk_span* s, uintptr_t link) {
  hk_block b = {.link = link, .tag = 0};
  return hk_link_off_in_span(s, hk_block_link_off(&b));
}

/* Allocates kBlocks blocks of `size`, keeps those of the first one's span
 * in *kept, frees them in a random order and returns that span. */
static hk_span* span_with_shuffled_free_list(size_t size, void** kept, unsigned* n) {
  void* all[kBlocks];
  for (unsigned i = 0; i < kBlocks; i++) all[i] = hk_malloc(size);
  hk_span* s = hk_span_at(all[0]);
  *n = 0;
  for (unsigned i = 0; i < kBlocks; i++) {
    if (hk_span_at(all[i]) == s) kept[(*n)++] = all[i];
    else hk_free(all[i]);
  }
  for (unsigned i = *n - 1; i > 0; i--) {
    unsigned j = next_random() % (i + 1);
    void* t = kept[i];
    kept[i] = kept[j];
    kept[j] = t;
  }
  for (unsigned i = 0; i < *n; i++) hk_free(kept[i]);
  return s;
}

static void IntactLinksPassTheFastCheckAcrossSlots(void) {
  const size_t sizes[] = {64, 4096};  /* one slot; four slots */
  for (unsigned k = 0; k < 2; k++) {
    void* kept[kBlocks];
    unsigned n;
    hk_span* s = span_with_shuffled_free_list(sizes[k], kept, &n);
    HK_EXPECT(n >= kBlocks / 2, "most blocks came from one span");
    unsigned links = 0, across = 0, failed = 0;
    for (hk_block* b = s->free; b != HK_LIST_END;) {
      hk_block* next = hk_block_next(s, b);
      if (next == HK_LIST_END) break;
      links++;
      if (((uintptr_t)next ^ (uintptr_t)b) >= HK_SLOT_SIZE) across++;
      if (!passes_fast_check(s, b->link) || hk_span_at(next) != s) failed++;
      b = next;
    }
    HK_EXPECT(links + 1 >= n, "the freed blocks are on the span's list");
    HK_EXPECT(failed == 0, "every intact link between blocks of the span passes the fast check");
    if (sizes[k] == 4096) HK_EXPECT(across > links / 2, "a shuffled four-slot span links across slots");
    /* The end of the list goes to the far path, which takes HK_LIST_END. */
    hk_block* last = s->free;
    while (hk_block_next(s, last) != HK_LIST_END) last = hk_block_next(s, last);
    HK_EXPECT(!passes_fast_check(s, last->link), "the list's end is not followed as a block");
    for (unsigned i = 0; i < n; i++) HK_EXPECT(hk_malloc(sizes[k]) != NULL, "the span hands its blocks out again");
  }
}

/* Link words of free blocks that have a successor, half in a one-slot span,
 * half in a four-slot span carved far (the widest range the check accepts). */
static unsigned sample_links(uintptr_t* links, const hk_span** spans, unsigned max) {
  const size_t sizes[] = {64, 4096};
  unsigned n = 0;
  for (unsigned k = 0; k < 2; k++) {
    void* kept[kBlocks];
    unsigned m;
    hk_span* s = span_with_shuffled_free_list(sizes[k], kept, &m);
    for (hk_block* b = s->free; hk_block_next(s, b) != HK_LIST_END && n < max / 2 * (k + 1); b = hk_block_next(s, b)) {
      links[n] = b->link;
      spans[n++] = s;
    }
  }
  return n;
}

static void ZeroedAndPartlyWrittenLinksFailTheFastCheck(void) {
  uintptr_t links[64];
  const hk_span* spans[64];
  unsigned n = sample_links(links, spans, 64);
  HK_EXPECT(n >= 32, "free blocks of both spans to sample");
  unsigned passed = 0;
  for (unsigned i = 0; i < n; i++) {
    const hk_span* s = spans[i];
    if (passes_fast_check(s, 0)) passed++;
    /* Every value of every single byte. */
    for (unsigned at = 0; at < 8; at++) {
      for (unsigned v = 0; v < 256; v++) {
        uintptr_t w = links[i];
        memcpy((char*)&w + at, &(uint8_t){(uint8_t)v}, 1);
        if (w != links[i] && passes_fast_check(s, w)) passed++;
      }
    }
    /* Random writes of 2-4 bytes at the start, and of any length
     * confined to bytes 3-7. */
    for (unsigned t = 0; t < 20000; t++) {
      uint64_t v = ((uint64_t)next_random() << 32) | next_random();
      unsigned at, len;
      if (t & 1) {
        at = 0;
        len = 2 + next_random() % 3;
      } else {
        at = 3 + next_random() % 5;
        len = 1 + next_random() % (8 - at);
      }
      uintptr_t w = links[i];
      memcpy((char*)&w + at, &v, len);
      if (w != links[i] && passes_fast_check(s, w)) passed++;
    }
  }
  HK_EXPECT(passed == 0, "no zeroed or partly written link passes the fast check");
}

int main(void) {
  HK_RUN(IntactLinksPassTheFastCheckAcrossSlots);
  HK_RUN(ZeroedAndPartlyWrittenLinksFailTheFastCheck);
  return HK_TEST_RESULT();
}
