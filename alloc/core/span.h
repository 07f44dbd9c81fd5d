/* Spans: 1..8 consecutive slots of a segment carved into blocks of one size
 * class. A span's state lives in the descriptor of its first slot (hk_span,
 * segment.h). This floor offers what one span does: hand out a free block
 * (hk_span_pop, inline for malloc's fast path), tell a block start from any
 * other pointer (hk_span_holds_block, for free), carve fresh blocks lazily,
 * take the blocks other threads freed into it, give back the pages past its
 * last live block, and the span lists heaps keep. It knows nothing of heaps.
 *
 * A free block's first two words are its free-list link and its tag; the
 * tag, the block's address and its link mixed with a per-process secret,
 * tells a free block from a live one (double free) and vouches for the
 * link (a write into freed memory cannot steer malloc). */
#ifndef HAKMEM_CORE_SPAN_H
#define HAKMEM_CORE_SPAN_H

#include "alloc/core/annotate.h"
#include "alloc/core/base.h"
#include "alloc/core/secret.h"
#include "alloc/core/segment.h"

#if defined(HAKMEM_CHECKED) && HAKMEM_CHECKED
#define HK_CHECKED 1
#else
#define HK_CHECKED 0
#endif

HK_HIDDEN_BEGIN
/* A free block. Blocks are at least 16 bytes, so both words always fit.
 *   link  the free-list link: its successor's address, as is.
 *   tag   hk_free_tag(block) ^ link while the block is free, 0 once handed
 *         out. It authenticates the pair: a block's words are a free
 *         block's (hk_block_is_free) only as hakmem wrote them, since making
 *         them agree takes the per-process secret. free() of a block whose
 *         words are a free block's is a double free; malloc follows a link
 *         only when its block's words agree (below). */
typedef struct hk_block {
  uintptr_t link;
  uintptr_t tag;
} hk_block;

/* A block's key: its address mixed with the secret. */
HK_INLINE uintptr_t hk_free_tag(const void* b) { return (uintptr_t)b ^ hk_hot.secret; }

/* True when b's two words are a free block's (key = hk_free_tag(b), passed
 * in when the caller has it). */
HK_INLINE bool hk_block_is_free(const hk_block* b, uintptr_t key) { return (b->tag ^ b->link) == key; }

/* The calling thread's identity for span ownership: its thread pointer
 * (%fs:0 on x86-64), one load without the TLS offset a heap pointer needs.
 * Unique among live threads; a thread's spans are abandoned (owner 0)
 * before it exits, so a later thread at the same address owns none. */
HK_INLINE uintptr_t hk_thread_id(void) { return (uintptr_t)__builtin_thread_pointer(); }

/* Blocks handed out and not returned, less the current span's own count
 * (heap.c pins the span malloc pops from). */
HK_INLINE uint32_t hk_span_live(const hk_span* s) { return (s->used & ~HK_USED_FULL) - s->pinned; }
HK_INLINE bool hk_span_is_full(const hk_span* s) { return (s->used & HK_USED_FULL) != 0; }

/* The end of every free list, an owner's or a remote one (never NULL): two
 * zero words that are no block of any span. They are never a free block's:
 * its address ^ 0 ^ 0 is not hk_hot.secret, which has its top bit set (a
 * user-space address has not) and is 0 only before initialization (an
 * address is not). So the pop of an empty list fails malloc's check and
 * goes to the far path: the fast path needs no empty-list test. Every link
 * hakmem writes is a block start or this, so every link can be read. */
extern const hk_block hk_list_end;
#define HK_LIST_END ((hk_block*)&hk_list_end)  /* read only: never written */

/* A span whose list is HK_LIST_END and carved range empty: a pop always
 * misses (heaps point a class without a span at it). */
extern hk_span hk_span_empty;

/* ---- free-list links -------------------------------------------------- */
/* A free block b whose successor is `next` holds
 *     link = next,   tag = hk_free_tag(b) ^ next = b ^ hk_hot.secret ^ next,
 * and a pop hands b out, and makes next the head, only when
 *     b ^ link ^ tag == hk_hot.secret   (hk_block_is_free).
 * The check sits beside the pop's dependent chain, not on it: the chain is
 * load head -> load link -> store head, as with unprotected links; the
 * secret's and the tag's loads and the compare run beside it, and the
 * branch is predicted. free()'s push stores the old head as is, so the
 * next pop's load of the link forwards from a store that waited on nothing.
 * Why this is enough (README "What hakmem detects" has the whole argument):
 * - a write into a freed block that changes its link alone, or its tag
 *   alone, or both but not by the same bits (any write of up to 8 bytes),
 *   fails the check: always, not with some probability. Making both agree
 *   for b takes b ^ hk_hot.secret, that is the secret; a copy of another free
 *   block's two words agrees for that block's address, not b's. (What is
 *   left, a block's own words read while free and written back after its
 *   span was carved again with another size: README.)
 * - so every head is a value hakmem wrote (a block of the span, or
 *   HK_LIST_END), and the pop's loads never fault, whatever was written.
 * - a block is handed out only as a head whose words agree, and handing it
 *   out zeroes its tag: a block that is on a list twice (its tag
 *   overwritten, then freed again; an old pair written back) fails the
 *   check when it is reached the second time, before it is handed out. */

/* True when the link of b, a block on one of span s's lists, may be
 * followed by a slow path that walks the list: b's words are a free
 * block's, and the link is HK_LIST_END or a block start s has carved. */
bool hk_link_ok(const hk_span* s, const hk_block* b);
/* True when b's two words are a free block's as hakmem wrote them (so its
 * link is one hakmem wrote), for walks of lists whose blocks belong to
 * several spans. */
bool hk_block_words_ok(const hk_block* b);
/* Walks the list of span s that starts at first (a block of s) to its last
 * block (*tail), each link checked (hk_link_ok) before it is followed;
 * returns the blocks counted, or 0 after reporting a corrupted link
 * (hk_freelist_corrupt; warn mode: s is cut, *tail not set). */
uint32_t hk_list_walk(hk_span* s, hk_block* first, hk_block** tail);

/* The link a block pushed on a remote list whose head is `head` stores: an
 * empty remote list is NULL (so a freeing thread's exchange and the owner's
 * test stay one compare), while every link, like every list, ends at
 * HK_LIST_END. */
HK_INLINE hk_block* hk_remote_link(hk_block* head) { return head != NULL ? head : HK_LIST_END; }

/* True when span s's owner list holds a block. */
HK_INLINE bool hk_span_has_free(const hk_span* s) { return s->free != HK_LIST_END; }

/* Marks b, a block of span s, free with its key (hk_free_tag(b), passed in
 * when the caller has it already) and links it before next (HK_LIST_END at
 * the end of any list). b may be no-access to memcheck, so the two words
 * are opened around the write. */
HK_INLINE void hk_block_make_free_tagged(const hk_span* s, hk_block* b, hk_block* next, uintptr_t key) {
  (void)s;  /* the span names the list; the words depend on b alone */
  HK_VG_LINK_OPEN(b);
  b->link = (uintptr_t)next;
  /* Two plain stores: GCC would otherwise pair them through a vector
   * register (more instructions, and a malloc right after must forward its
   * load of the link from a 16-byte store). */
  __asm__("" : "+m"(b->link));
  b->tag = key ^ (uintptr_t)next;
  HK_VG_LINK_CLOSE(b);
}

HK_INLINE void hk_block_make_free(const hk_span* s, hk_block* b, hk_block* next) {
  hk_block_make_free_tagged(s, b, next, hk_free_tag(b));
}

/* hk_span.corrupt: a corrupted link was found under HAKMEM_ON_ERROR=warn
 * (hk_freelist_corrupt cut the span's lists: CUT), then the span went off
 * its heap's lists for good (OFF_LISTS: it never allocates again). */
#define HK_CORRUPT_CUT 1
#define HK_CORRUPT_OFF_LISTS 2

/* Reports the corrupted link of free block `at` in span s ("hakmem:
 * corrupted free list at 0x... in malloc()") and aborts; under
 * HAKMEM_ON_ERROR=warn cuts s's lists and marks it HK_CORRUPT_CUT instead
 * (its heap then takes it off its lists). */
void hk_freelist_corrupt(hk_span* s, const void* at);
/* The pop of the head of s's free list when malloc's check failed: NULL
 * when the list is empty; else the head's words are not a free block's,
 * which is reported (hk_freelist_corrupt). After that report (warn mode)
 * the block comes from hk_span_refill instead. */
void* hk_span_pop_far(hk_span* s);
/* A block of class cls from the allocation slow path, for a pop that found
 * its span's list corrupted (warn mode): registered by the entry floor
 * (alloc.c) at load, since spans cannot call up into heaps. NULL: none. */
extern void* (*hk_span_refill)(unsigned cls);

/* Checked builds only (checked.c): verify a block before it is handed out,
 * poison it when it is freed. */
void hk_checked_pop(hk_span* s, hk_block* b, hk_block* next);
void hk_checked_free(hk_span* s, hk_block* b);

/* A pop in two halves, so that malloc's fast path can send a miss to its
 * own far path (hk_malloc_far) with what it needs for the slow path.
 * hk_span_pop_head reads the head of s's list (HK_LIST_END when empty) and
 * its link, and says whether the head's words let the pop hand it out and
 * follow the link; hk_span_pop_take then completes the pop. Owner thread
 * only. */
HK_INLINE bool hk_span_pop_head(hk_span* s, hk_block** head, hk_block** next) {
  hk_block* b = s->free;
#if defined(__x86_64__)
  /* b is malloc's return value: in the return register from the start, the
   * fast path ends without a move (GCC otherwise leaves the span there). */
  __asm__("" : "+a"(b));
#endif
  HK_VG_LINK_OPEN(b);
  uintptr_t link = b->link;
  *head = b;
  *next = (hk_block*)link;
  if (HK_CHECKED && b != HK_LIST_END) hk_checked_pop(s, b, *next == HK_LIST_END ? NULL : *next);
  /* hk_block_is_free(b, hk_free_tag(b)), grouped so that the secret is the
   * compare's memory operand. */
  return hk_likely(((uintptr_t)b ^ link ^ b->tag) == hk_hot.secret);
}

/* hint: the next pop of this list starts with loads from next, on its
 * dependent chain, so its line is asked for now (a prefetch, which never
 * faults, whatever next is; HK_LIST_END is read-only data). A constant at
 * every call: the branch folds away. */
HK_INLINE void* hk_span_pop_take(hk_span* s, hk_block* b, hk_block* next, bool hint) {
  if (hint) __builtin_prefetch(next);
  s->free = next;
  b->tag = 0;  /* live: a later free() of it is legitimate */
  s->used++;
  HK_VG_ALLOC(b, s->block_size);
  return b;
}

/* Pops a free block of span s, or NULL when its list is empty. Owner
 * thread only. */
HK_INLINE void* hk_span_pop(hk_span* s) {
  hk_block* b;
  hk_block* next;
  if (hk_span_pop_head(s, &b, &next)) return hk_span_pop_take(s, b, next, true);
  return hk_span_pop_far(s);
}

#if defined(__SANITIZE_THREAD__)
#define HK_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HK_TSAN 1
#endif
#endif

/* off < s->carved_bytes, read by any thread while the owner stores it with
 * relaxed atomic stores. The compare's memory operand is one aligned 8-byte
 * load, as atomic on x86-64 as a relaxed load; GCC never folds an atomic
 * load into a compare, so this saves free() an instruction.
 * ThreadSanitizer builds keep the atomic load, which it sees. */
HK_INLINE bool hk_span_below_carved(const hk_span* s, uintptr_t off) {
#if defined(__x86_64__) && !defined(HK_TSAN)
  bool below;
  __asm__("cmpq %2, %1" : "=@ccb"(below) : "r"(off), "m"(s->carved_bytes));
  return below;
#else
  return off < __atomic_load_n(&s->carved_bytes, __ATOMIC_RELAXED);
#endif
}

/* True when p is exactly a block start span s has handed out at some point. */
HK_INLINE bool hk_span_holds_block(const hk_span* s, const void* p) {
  uintptr_t off = (uintptr_t)p - s->start;
  if (hk_unlikely(!hk_span_below_carved(s, off))) return false;
  /* Block-start test without a divide. With magic = ceil(2^40 / size), the
   * low 40 bits of off * magic are below off < 2^21 when size divides off
   * and at least 2^40 / size >= 2^22 otherwise (spans are at most
   * HK_SPAN_MAX_SLOTS * HK_SLOT_SIZE = 2 MiB, so off < 2^21; size <= 2^18),
   * so one multiply and a test against 2^21 tell a block start from an
   * interior pointer. div_magic holds magic << 24, which puts those 40 bits
   * at the top of the product: the test is a shift by 45 (no 64-bit mask to
   * load). */
  return hk_likely(((off * s->div_magic) >> 45) == 0);
}

_Static_assert((uint64_t)HK_SPAN_MAX_SLOTS * HK_SLOT_SIZE <= ((uint64_t)1 << 21) && HK_SMALL_MAX <= (1u << 18),
               "the block-start test needs offsets below 2^21 and sizes up to 2^18");

/* ---- slow paths (owner thread) ------------------------------------------ */
/* A new span of class cls in one of set's segments (the caller maps or
 * adopts segments when there is no room), owned by set->owner_id; with
 * warm_only, only in slots still committed. NULL when no owned segment has
 * room, or, with *failed set, when the backend would not commit the slots. */
hk_span* hk_span_new(hk_segment_set* set, unsigned cls, bool warm_only, bool* failed);
/* Returns an empty span's slots to its segment; true when the segment left
 * the set with it (its memory must not be read any more). */
bool hk_span_free(hk_segment_set* set, hk_span* s);
/* Takes the blocks other threads freed into s; returns how many. Each link
 * is checked before it is followed; a corrupted one is reported (warn mode:
 * s is left HK_CORRUPT_CUT with nothing collected). */
uint32_t hk_span_collect_remote(hk_span* s);
/* For a span its owner does not touch meanwhile (full, not current; heap.c
 * holds its heap's lock): true when the blocks other threads freed into it
 * are all its live blocks, which are then taken (the caller gives the
 * span back; its lists need not be kept); otherwise they stay on its
 * remote list for the owner. A corrupted link is reported as by
 * hk_span_collect_remote. */
bool hk_span_take_remote_if_emptied(hk_span* s);
/* Bytes of s not yet carved into blocks. */
HK_INLINE size_t hk_span_uncarved_bytes(const hk_span* s) {
  return (size_t)s->capacity * s->block_size - s->carved_bytes;
}
/* Carves up to one OS page of fresh blocks (at least one block) onto s's
 * free list, so a span only becomes resident as far as it is used. False
 * when nothing is left to carve or the backend refused the pages. */
bool hk_span_carve(hk_span* s);
/* Gives back the pages of s past its last live block (trim). Walking the
 * free list checks each link (warn mode: s is left HK_CORRUPT_CUT). */
void hk_span_release_tail(hk_span* s);
/* The successor of free block b of span s, as its link says, for slow
 * paths that walk a list (hk_link_ok says whether to follow it). */
hk_block* hk_block_link(const hk_span* s, hk_block* b);

/* ---- span lists ----------------------------------------------------------- */
typedef struct hk_span_list { hk_span* head; hk_span* tail; } hk_span_list;

HK_INLINE void hk_span_list_remove(hk_span_list* l, hk_span* s) {
  if (s->prev) s->prev->next = s->next; else l->head = s->next;
  if (s->next) s->next->prev = s->prev; else l->tail = s->prev;
  s->next = s->prev = NULL;
}

HK_INLINE void hk_span_list_push_front(hk_span_list* l, hk_span* s) {
  s->prev = NULL;
  s->next = l->head;
  if (l->head) l->head->prev = s; else l->tail = s;
  l->head = s;
}

HK_INLINE void hk_span_list_push_back(hk_span_list* l, hk_span* s) {
  s->next = NULL;
  s->prev = l->tail;
  if (l->tail) l->tail->next = s; else l->head = s;
  l->tail = s;
}
HK_HIDDEN_END

#endif
