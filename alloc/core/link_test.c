/* Free-list links (span.h) on their own: which words malloc's check lets a
 * pop hand out and follow. Intact free blocks of a span pass it, whichever
 * slots their successors lie in, so a span of several slots stays on the
 * fast path; the list's end fails it. Any write confined to one of a free
 * block's two words, and any write of up to 8 bytes anywhere in them, fails
 * it whatever the bytes written: so do a live block's address, an interior
 * pointer, another span's block, a fill, and another free block's words
 * copied whole (the far path then reports it: freelist_test pins the
 * message). Through the hk_ API and this thread's spans, linked with the
 * balanced variant. */
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

/* What malloc's fast path decides for a list whose head is `head`: hand it
 * out and follow its link (true), or go to the far path. The real
 * hk_span_pop_head, on a descriptor of the test's own that only names the
 * head: the check reads nothing else of the span. */
static bool pop_check(hk_block* head) {
  hk_span s = {.free = head};
  hk_block* b;
  hk_block* next;
  return hk_span_pop_head(&s, &b, &next);
}

/* pop_check of the free block `at` with its two words replaced by w (put
 * back afterwards: the test's own free blocks, one thread). */
static bool passes_check(hk_block* at, const hk_block* w) {
  hk_block saved = *at;
  *at = *w;
  bool passed = pop_check(at);
  *at = saved;
  return passed;
}

/* Allocates kBlocks blocks of `size`, keeps those of the first one's span
 * but the first in *kept, frees them in a random order and returns that
 * span. The first stays live (leaked), so the span is never retired. */
static hk_span* span_with_shuffled_free_list(size_t size, void** kept, unsigned* n) {
  void* all[kBlocks];
  for (unsigned i = 0; i < kBlocks; i++) all[i] = hk_malloc(size);
  hk_span* s = hk_span_at(all[0]);
  *n = 0;
  for (unsigned i = 1; i < kBlocks; i++) {
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

static void IntactBlocksPassTheCheckAcrossSlots(void) {
  const size_t sizes[] = {64, 4096};  /* one slot; four slots */
  for (unsigned k = 0; k < 2; k++) {
    void* kept[kBlocks];
    unsigned n;
    hk_span* s = span_with_shuffled_free_list(sizes[k], kept, &n);
    HK_EXPECT(n >= kBlocks / 2, "most blocks came from one span");
    unsigned blocks = 0, across = 0, failed = 0;
    hk_block* b = s->free;
    for (; b != HK_LIST_END && blocks <= s->capacity; b = (hk_block*)b->link) {
      hk_block* next = (hk_block*)b->link;
      blocks++;
      if (!pop_check(b) || !hk_link_ok(s, b)) failed++;
      if (next != HK_LIST_END && ((uintptr_t)next ^ (uintptr_t)b) >= HK_SLOT_SIZE) across++;
    }
    HK_EXPECT(b == HK_LIST_END, "the list ends at HK_LIST_END");
    HK_EXPECT(blocks >= n, "the freed blocks are on the span's list");
    HK_EXPECT(failed == 0, "every intact free block passes the check, and the walks' check");
    if (sizes[k] == 4096) HK_EXPECT(across > blocks / 2, "a shuffled four-slot span links across slots");
    /* An empty list's head is the end, whose words never pass. */
    HK_EXPECT(!pop_check(HK_LIST_END), "the list's end is not handed out");
    for (unsigned i = 0; i < n; i++) HK_EXPECT(hk_malloc(sizes[k]) != NULL, "the span hands its blocks out again");
  }
}

/* Free blocks that have a successor, half in a one-slot span, half in a
 * four-slot span: their addresses and their words. */
static unsigned sample_blocks(hk_block** at, hk_block* words, unsigned max) {
  const size_t sizes[] = {64, 4096};
  unsigned n = 0;
  for (unsigned k = 0; k < 2; k++) {
    void* kept[kBlocks];
    unsigned m;
    hk_span* s = span_with_shuffled_free_list(sizes[k], kept, &m);
    for (hk_block* b = s->free; b != HK_LIST_END && (hk_block*)b->link != HK_LIST_END && n < max / 2 * (k + 1);
         b = (hk_block*)b->link) {
      at[n] = b;
      words[n++] = *b;
    }
  }
  return n;
}

static void WritesIntoOneWordOrUpTo8BytesFailTheCheck(void) {
  hk_block* at[64];
  hk_block words[64];
  unsigned n = sample_blocks(at, words, 64);
  HK_EXPECT(n >= 32, "free blocks of both spans to sample");
  unsigned passed = 0, tried = 0;
  for (unsigned i = 0; i < n; i++) {
    /* Every value of every single byte of both words. */
    for (unsigned pos = 0; pos < 16; pos++) {
      for (unsigned v = 0; v < 256; v++) {
        hk_block w = words[i];
        memcpy((char*)&w + pos, &(uint8_t){(uint8_t)v}, 1);
        if (memcmp(&w, &words[i], sizeof(w)) == 0) continue;
        tried++;
        if (passes_check(at[i], &w)) passed++;
      }
    }
    /* Random runs of 1-8 bytes at any offset (crossing from the link into
     * the tag too), and random whole values of one word. */
    for (unsigned t = 0; t < 20000; t++) {
      uint64_t v = ((uint64_t)next_random() << 32) | next_random();
      hk_block w = words[i];
      if (t % 4 == 0) {
        memcpy((char*)&w + 8 * (t / 4 % 2), &v, 8);
      } else {
        unsigned len = 1 + next_random() % 8, pos = next_random() % (17 - len);
        memcpy((char*)&w + pos, &v, len);
      }
      if (memcmp(&w, &words[i], sizeof(w)) == 0) continue;
      tried++;
      if (passes_check(at[i], &w)) passed++;
    }
  }
  HK_EXPECT(tried > 1000000, "writes tried");
  HK_EXPECT(passed == 0, "no write into one word, nor of up to 8 bytes, passes the check");
}

/* The writes freelist_test corrupts real lists with, and copies of other
 * free blocks' words: whole words a program without the secret could
 * write. */
static void ForgedWordsFailTheCheck(void) {
  hk_block* at[64];
  hk_block words[64];
  unsigned n = sample_blocks(at, words, 64);
  void* live = hk_malloc(64);
  void* other_span = hk_malloc(1000);
  unsigned passed = 0;
  for (unsigned i = 0; i < n; i++) {
    const uintptr_t forged[] = {0, 0x00007f1234567890, (uintptr_t)live, (uintptr_t)live + 24, (uintptr_t)other_span,
                                (uintptr_t)at[(i + 1) % n], 0x4141414141414141};
    for (unsigned f = 0; f < sizeof(forged) / sizeof(forged[0]); f++) {
      hk_block w = words[i];
      w.link = forged[f];
      if (w.link != words[i].link && passes_check(at[i], &w)) passed++;
      w.tag = forged[f];  /* both words: a fill, a zeroed block */
      if (passes_check(at[i], &w)) passed++;
    }
    /* Another free block's words, copied whole or the link alone. */
    for (unsigned j = 0; j < n; j++) {
      if (j == i) continue;
      if (passes_check(at[i], &words[j])) passed++;
      hk_block w = {.link = words[j].link, .tag = words[i].tag};
      if (w.link != words[i].link && passes_check(at[i], &w)) passed++;
    }
  }
  HK_EXPECT(passed == 0, "no forged or copied word passes the check");
  hk_free(live);
  hk_free(other_span);
}

int main(void) {
  HK_RUN(IntactBlocksPassTheCheckAcrossSlots);
  HK_RUN(WritesIntoOneWordOrUpTo8BytesFailTheCheck);
  HK_RUN(ForgedWordsFailTheCheck);
  return HK_TEST_RESULT();
}
