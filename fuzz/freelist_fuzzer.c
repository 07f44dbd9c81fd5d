/* Target 6: writes into freed blocks. Operation sequences over a
 * 64-slot table that, besides malloc and free (local, or from another thread
 * onto the span's remote list), write into the first 16 bytes of a block that
 * was freed and not handed out since (its link and tag words): a run of
 * random bytes at a random offset, a whole word with another block's address
 * (live or freed, plus an offset), or a 0x41 fill. hakmem runs with
 * HAKMEM_ON_ERROR=warn, so a corrupted list is reported and quarantined
 * instead of aborting the run.
 *
 * Checked after every allocation: the block is 16-byte aligned, hakmem's,
 * and overlaps no live block (a live block returned twice, or a block that
 * was steered into one, fails here).
 *
 * Input: a stream of records, op byte then its operands:
 *   op % 8 = 0,1,2  malloc: slot byte, size byte (block_size: 1 B - 1 KiB in
 *                   one-slot spans, 2-8 KiB mostly in spans of 3-8 slots)
 *            3,4    free slot (local)
 *            5      free slot from another thread (remote list)
 *            6      corrupt a freed block: which byte, kind byte, value u64
 *            7      malloc a burst: slot byte, count byte (pops deep into lists)
 * Corruptions per process are capped (each quarantines a span, which leaks). */
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc/core/free.h"
#include "alloc/core/options.h"
#include "alloc/include/hakmem.h"
#include "fuzz/fuzz_common.h"

#define SLOTS 64
#define FREED 256            /* freed blocks remembered as corruption targets */
#define MAX_CORRUPTIONS 4000 /* per process: each may leak one span */

typedef struct {
  char* p;
  size_t size;  /* usable size */
} live_t;

static live_t live[SLOTS];
static char* freed[FREED];  /* freed and not handed out since (as far as we know) */
static size_t freed_n;
static unsigned long corruptions;

static void freed_forget(const char* p) {
  for (size_t i = 0; i < freed_n; i++) {
    if (freed[i] == p) {
      freed[i] = freed[--freed_n];
      return;
    }
  }
}

static void freed_add(char* p) {
  if (freed_n == FREED) memmove(freed, freed + 1, --freed_n * sizeof(freed[0]));
  freed[freed_n++] = p;
}

/* Size byte b: 16 * (1 + b % 64) - b / 64 (up to 1 KiB) below 192; above,
 * 2 KiB + 256 * (b % 24), whose spans (but 2 KiB's) have several slots and
 * links that cross them. */
static size_t block_size(uint8_t b) { return b < 192 ? 16u * (1 + b % 64) - b / 64 : 2048u + 256u * (b % 24); }

static void check_new(char* q, size_t size) {
  FUZZ_CHECK(((uintptr_t)q & 15) == 0, "misaligned block %p", (void*)q);
  FUZZ_CHECK(hk_owns(q), "block %p is not hakmem's", (void*)q);
  size_t usable = hk_malloc_usable_size(q);
  FUZZ_CHECK(usable >= size, "block %p holds %zu < %zu bytes", (void*)q, usable, size);
  for (int i = 0; i < SLOTS; i++) {
    if (live[i].p == NULL) continue;
    int disjoint = q + usable <= live[i].p || live[i].p + live[i].size <= q;
    FUZZ_CHECK(disjoint, "block %p (%zu bytes) overlaps live block %p (%zu bytes)", (void*)q, usable,
               (void*)live[i].p, live[i].size);
  }
  freed_forget(q);
}

static void take(int slot, size_t size) {
  char* q = hk_malloc(size);
  if (q == NULL) return;
  check_new(q, size);
  if (live[slot].p != NULL) {
    freed_add(live[slot].p);
    hk_free(live[slot].p);
  }
  live[slot].p = q;
  live[slot].size = hk_malloc_usable_size(q);
}

static void* free_remote(void* p) {
  hk_free(p);
  return NULL;
}

static void release(int slot, int remote) {
  char* p = live[slot].p;
  if (p == NULL) return;
  live[slot].p = NULL;
  freed_add(p);
  pthread_t t;
  if (remote && pthread_create(&t, NULL, free_remote, p) == 0) {
    pthread_join(t, NULL);
  } else {
    hk_free(p);
  }
}

/* True when p is still a free block of a live span (its span may have been
 * retired and its memory reused or unmapped since p was freed: writing there
 * would test the fuzzer, not hakmem). Reads hakmem's own tables. */
static int still_free(const char* p) {
  if (hk_segmap_kind((uintptr_t)p) != HK_MAP_SEGMENT) return 0;
  hk_span* s = hk_span_at(p);
  if (!s->in_use || s->corrupt || !hk_span_holds_block(s, p)) return 0;
  return hk_block_is_free((const hk_block*)p, hk_free_tag(p));
}

static void corrupt(fi* in) {
  uint8_t which = fi_u8(in), kind = fi_u8(in);
  uint64_t v = fi_u64(in);
  if (freed_n == 0 || corruptions >= MAX_CORRUPTIONS) return;
  char* p = freed[which % freed_n];
  if (!still_free(p)) return;
  corruptions++;
  switch (kind % 4) {
    case 0: {  /* a run of 1..8 bytes of v at offset 0..15 */
      unsigned off = (kind >> 2) % 16, n = 1 + (unsigned)(v >> 61);
      if (off + n > 16) n = 16 - off;
      memcpy(p + off, &v, n);
      break;
    }
    case 1: {  /* a live block's address, maybe shifted */
      char* target = live[v % SLOTS].p;
      if (target == NULL) target = p;
      uintptr_t w = (uintptr_t)target + (int8_t)(v >> 8);
      memcpy(p + ((kind >> 2) & 8), &w, sizeof(w));
      break;
    }
    case 2: {  /* another freed block's address (a forged but valid-looking link) */
      uintptr_t w = (uintptr_t)freed[(v >> 8) % freed_n];
      memcpy(p, &w, sizeof(w));
      break;
    }
    default:
      memset(p, 0x41, 16);
      break;
  }
}

int LLVMFuzzerInitialize(int* argc, char*** argv) {
  (void)argc;
  (void)argv;
  hk_option_set("HAKMEM_ON_ERROR", "warn");
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static int ready;
  if (!ready) {
    LLVMFuzzerInitialize(NULL, NULL);
    ready = 1;
  }
  fi in = {data, size};
  while (!fi_done(&in)) {
    uint8_t op = fi_u8(&in);
    switch (op % 8) {
      case 0: case 1: case 2: {
        int slot = fi_u8(&in) % SLOTS;
        uint8_t b = fi_u8(&in);
        take(slot, block_size(b));
        break;
      }
      case 3: case 4:
        release(fi_u8(&in) % SLOTS, 0);
        break;
      case 5:
        release(fi_u8(&in) % SLOTS, 1);
        break;
      case 6:
        corrupt(&in);
        break;
      default: {
        int slot = fi_u8(&in) % SLOTS;
        unsigned n = fi_u8(&in) % 64;
        uint8_t b = fi_u8(&in);
        for (unsigned i = 0; i < n; i++) take((slot + (int)i) % SLOTS, block_size(b));
        break;
      }
    }
  }
  /* Each input starts from an empty table; its freed blocks may be reused by
   * the next input, so they are no targets any more. */
  for (int i = 0; i < SLOTS; i++) release(i, 0);
  freed_n = 0;
  return 0;
}
