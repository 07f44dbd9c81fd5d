/* The large-block arena: blocks above HK_SMALL_MAX up to HK_ARENA_MAX_BLOCK
 * (16 MiB) are runs of 64 KiB pages inside 32 MiB chunks shared by every
 * thread. A freed run joins its free neighbours, and any later request that
 * fits reuses it, whatever sizes it was cut for before: a program that churns
 * big buffers of varied sizes keeps reusing the same resident pages instead
 * of mapping fresh memory and paying a page fault per 4 KiB each time (the
 * case a cache of whole mappings misses, since a mapping only serves
 * requests close to its own size).
 *
 * Free runs stay committed until the release policy says they have waited
 * long enough (or the cache is over its cap); then they are purged with
 * MADV_DONTNEED, and a chunk left wholly free and purged is unmapped. The
 * decommit policy can still ask for a freed run to go back at once (lean
 * above its resident target).
 *
 * One spin lock guards every chunk: a big block costs at least a page fault
 * or a memset per 4 KiB of it, so the few dozen instructions under the lock
 * are noise, and any thread can free any block without a remote-free
 * protocol. Nothing here runs on a fast path. */
#include <string.h>

#include "alloc/core/annotate.h"
#include "alloc/core/internal.h"
#include "alloc/core/options.h"
#include "alloc/core/stats_internal.h"

#define HK_ARENA_PAGES (HK_ARENA_SIZE >> HK_ARENA_PAGE_SHIFT) /* 512; page 0 holds the header */
#define HK_ARENA_WORDS (HK_ARENA_PAGES / 64)

/* Run markers, at the first page (head) and the last page (tail) of every
 * run, live or free: the run's length in pages and what it is. A page that is
 * neither is 0 there, so a pointer into the middle of a block is told from a
 * block start by one read. */
#define RUN_LIVE 0x8000u
#define RUN_FREE 0x4000u
#define RUN_LEN 0x3fffu

_Static_assert(HK_ARENA_PAGES <= RUN_LEN, "run lengths fit the marker");
_Static_assert(HK_ARENA_MAX_BLOCK <= HK_ARENA_SIZE / 2 && HK_ARENA_MAX_BLOCK > HK_SMALL_MAX,
               "arena blocks are large blocks of at most half a chunk");

typedef struct hk_arena {
  struct hk_arena* next;                   /* chunk list, newest first */
  struct hk_arena* prev;
  uint32_t free_pages;                     /* pages in free runs; HK_ARENA_PAGES - 1 when the chunk is empty */
  uint64_t free_heads[HK_ARENA_WORDS];     /* bit i: a free run starts at page i */
  uint64_t committed[HK_ARENA_WORDS];      /* bit i: page i may be resident (handed out, or freed and not purged) */
  uint64_t dirty[HK_ARENA_WORDS];          /* bit i: page i may hold old bytes, so calloc must clear it */
  uint16_t head[HK_ARENA_PAGES];           /* at a run's first page: length | RUN_LIVE or RUN_FREE; else 0 */
  uint16_t tail[HK_ARENA_PAGES];           /* at a run's last page: the same; else 0 */
  uint64_t idle_since_ms[HK_ARENA_PAGES];  /* at a free run's first page: when it last grew by a free */
} hk_arena;

_Static_assert(sizeof(hk_arena) <= HK_ARENA_PAGE, "the header fits page 0");

static hk_lock_t hk_arena_lock_;
static hk_arena* hk_arena_chunks; /* every chunk, newest first */
/* When the oldest committed free run is due for purging by time (monotonic
 * ms; 0: nothing waits). Written under the lock, read by hk_release_tick. */
_Atomic uint64_t hk_arena_due_ms;

void hk_arena_lock(bool lock, bool reinit) {
  if (lock) hk_lock(&hk_arena_lock_);
  else if (reinit) atomic_store_explicit(&hk_arena_lock_.state, 0, memory_order_relaxed);
  else hk_unlock(&hk_arena_lock_);
}

/* ---- page bitmaps ---------------------------------------------------------- */
/* Bits [first, first + n) of a chunk bitmap; n >= 1, first + n <= 512. */
static inline uint64_t word_mask(unsigned first, unsigned n, unsigned w) {
  unsigned lo = w * 64, hi = lo + 64;
  unsigned a = first > lo ? first : lo;
  unsigned b = first + n < hi ? first + n : hi;
  if (a >= b) return 0;
  unsigned len = b - a;
  return (len == 64 ? ~(uint64_t)0 : (((uint64_t)1 << len) - 1)) << (a - lo);
}

static unsigned bits_count(const uint64_t* bits, unsigned first, unsigned n) {
  unsigned c = 0;
  for (unsigned w = first / 64; w <= (first + n - 1) / 64; w++)
    c += (unsigned)__builtin_popcountll(bits[w] & word_mask(first, n, w));
  return c;
}

static void bits_set(uint64_t* bits, unsigned first, unsigned n, bool on) {
  for (unsigned w = first / 64; w <= (first + n - 1) / 64; w++) {
    uint64_t m = word_mask(first, n, w);
    bits[w] = on ? bits[w] | m : bits[w] & ~m;
  }
}

/* ---- runs (lock held) -------------------------------------------------------- */
static inline unsigned run_len(uint16_t marker) { return marker & RUN_LEN; }

static void run_mark(hk_arena* a, unsigned first, unsigned n, uint16_t kind) {
  a->head[first] = (uint16_t)(n | kind);
  a->tail[first + n - 1] = (uint16_t)(n | kind);
  bits_set(a->free_heads, first, 1, kind == RUN_FREE);
}

static void run_unmark(hk_arena* a, unsigned first, unsigned n) {
  a->head[first] = 0;
  a->tail[first + n - 1] = 0;
  bits_set(a->free_heads, first, 1, false);
}

/* Pages a block of `size` bytes takes. */
static inline unsigned pages_for(size_t size) {
  return (unsigned)((size + HK_ARENA_PAGE - 1) >> HK_ARENA_PAGE_SHIFT);
}

static inline uint8_t* page_addr(hk_arena* a, unsigned page) {
  return (uint8_t*)a + ((size_t)page << HK_ARENA_PAGE_SHIFT);
}

/* Bytes of a's pages [first, first + n) that are committed. */
static inline int64_t committed_bytes(const hk_arena* a, unsigned first, unsigned n) {
  return (int64_t)bits_count(a->committed, first, n) << HK_ARENA_PAGE_SHIFT;
}

/* ---- purging (lock held) ------------------------------------------------------- */
/* The committed free run idle the longest, or false when there is none. */
static bool oldest_committed_run(hk_arena** out_a, unsigned* out_page) {
  bool found = false;
  uint64_t oldest = UINT64_MAX;
  for (hk_arena* a = hk_arena_chunks; a; a = a->next) {
    for (unsigned w = 0; w < HK_ARENA_WORDS; w++) {
      for (uint64_t m = a->free_heads[w]; m; m &= m - 1) {
        unsigned page = w * 64 + (unsigned)__builtin_ctzll(m);
        if (a->idle_since_ms[page] >= oldest || bits_count(a->committed, page, run_len(a->head[page])) == 0) continue;
        oldest = a->idle_since_ms[page];
        *out_a = a;
        *out_page = page;
        found = true;
      }
    }
  }
  return found;
}

static void update_due(void) {
  hk_arena* a;
  unsigned page;
  uint64_t due = oldest_committed_run(&a, &page) ? hk_release_due_ms(a->idle_since_ms[page]) : 0;
  atomic_store_explicit(&hk_arena_due_ms, due, memory_order_relaxed);
}

/* Gives a's committed pages in [first, first + n), all in free runs (so
 * counted as cached), back with mode; false if the backend refused (they
 * stay committed and counted). */
static bool pages_decommit(hk_arena* a, unsigned first, unsigned n, hk_decommit_mode mode) {
  int64_t bytes = committed_bytes(a, first, n);
  if (bytes == 0) return true;
  if (hk_active->backend->decommit(page_addr(a, first), (size_t)n << HK_ARENA_PAGE_SHIFT, mode) != 0) return false;
  bits_set(a->committed, first, n, false);
  if (mode == HK_DECOMMIT_DONTNEED) bits_set(a->dirty, first, n, false);  /* reads zeros from now on */
  hk_stat_add(&hk_stat.committed_bytes, -bytes);
  hk_stat_add(&hk_stat.cached_bytes, -bytes);
  return true;
}

/* Unmaps chunks that are wholly free and purged. */
static void release_empty_chunks(void) {
  hk_arena* next;
  for (hk_arena* a = hk_arena_chunks; a; a = next) {
    next = a->next;
    if (a->free_pages != HK_ARENA_PAGES - 1 || bits_count(a->committed, 1, HK_ARENA_PAGES - 1) != 0) continue;
    hk_arena* prev = a->prev;
    /* Clear the segmap first: from here on free() rejects pointers into it. */
    hk_segmap_set(a, HK_ARENA_SIZE, HK_MAP_NONE);
    if (hk_active->backend->release(a, HK_ARENA_SIZE) != 0) {
      hk_segmap_set(a, HK_ARENA_SIZE, HK_MAP_ARENA);
      continue;  /* kept; tried again on the next purge */
    }
    if (prev) prev->next = next; else hk_arena_chunks = next;
    if (next) next->prev = prev;
    hk_stat_add(&hk_stat.committed_bytes, -(int64_t)HK_ARENA_PAGE);
  }
}

/* Purges committed free runs, oldest first: all of them, or while the
 * release policy wants them back. Always with MADV_DONTNEED: this is the
 * arena's counterpart of unmapping a cached mapping, so RSS must fall. */
static void purge(uint64_t now, bool all) {
  hk_arena* a;
  unsigned page;
  while (oldest_committed_run(&a, &page)) {
    if (!all && !hk_release_wanted(a->idle_since_ms[page], now)) break;
    if (!pages_decommit(a, page, run_len(a->head[page]), HK_DECOMMIT_DONTNEED)) break;
  }
  release_empty_chunks();
  update_due();
}

void hk_arena_trim(void) {
  hk_lock(&hk_arena_lock_);
  purge(0, true);
  hk_unlock(&hk_arena_lock_);
}

void hk_arena_release_due(uint64_t now) {
  hk_lock(&hk_arena_lock_);
  purge(now, false);
  hk_unlock(&hk_arena_lock_);
}

/* ---- allocation ------------------------------------------------------------------ */
/* The free run to cut n pages from: the one whose first n pages need the
 * fewest page faults (committed pages are reused as they are), then the
 * tightest fit. false when no chunk has room. */
static bool find_run(unsigned n, hk_arena** out_a, unsigned* out_page) {
  uint64_t best = UINT64_MAX;
  for (hk_arena* a = hk_arena_chunks; a && best != 0; a = a->next) {
    if (a->free_pages < n) continue;
    for (unsigned w = 0; w < HK_ARENA_WORDS && best != 0; w++) {
      for (uint64_t m = a->free_heads[w]; m && best != 0; m &= m - 1) {
        unsigned page = w * 64 + (unsigned)__builtin_ctzll(m);
        unsigned len = run_len(a->head[page]);
        if (len < n) continue;
        uint64_t cold = n - bits_count(a->committed, page, n);
        uint64_t score = cold * HK_ARENA_PAGES + (len - n);
        if (score < best) {
          best = score;
          *out_a = a;
          *out_page = page;
        }
      }
    }
  }
  return best != UINT64_MAX;
}

/* Maps a new chunk, one free run of every page but the header; false if
 * the backend has no memory. Lock held; the reserve call is a syscall, but
 * a program maps a new chunk once per 32 MiB of new peak. */
static bool chunk_add(void) {
  void* mem = NULL;
  if (hk_active->backend->reserve(HK_ARENA_SIZE, HK_ARENA_SIZE, &mem) != 0) return false;
  hk_arena* a = mem; /* fresh mappings are zero: nothing committed, dirty or marked */
  a->free_pages = HK_ARENA_PAGES - 1;
  run_mark(a, 1, HK_ARENA_PAGES - 1, RUN_FREE);
  a->idle_since_ms[1] = hk_now_ms();
  a->prev = NULL;
  a->next = hk_arena_chunks;
  if (hk_arena_chunks) hk_arena_chunks->prev = a;
  hk_arena_chunks = a;
  hk_stat_add(&hk_stat.committed_bytes, (int64_t)HK_ARENA_PAGE); /* the header page, as for segments */
  hk_segmap_set(a, HK_ARENA_SIZE, HK_MAP_ARENA);
  return true;
}

/* Takes the first k pages of the free run at `first` (its head): commits
 * those that are not (false, nothing changed, if the backend refuses), and
 * leaves the rest of the run free with its idle time. The caller marks the
 * taken pages as (part of) a live run. *was_dirty: some taken page may hold
 * old bytes. */
static bool take_pages(hk_arena* a, unsigned first, unsigned k, bool* was_dirty) {
  int64_t warm = committed_bytes(a, first, k);
  int64_t bytes = (int64_t)k << HK_ARENA_PAGE_SHIFT;
  if (warm != bytes && hk_active->backend->commit(page_addr(a, first), (size_t)bytes) != 0) return false;
  unsigned len = run_len(a->head[first]);
  run_unmark(a, first, len);
  if (len > k) {
    run_mark(a, first + k, len - k, RUN_FREE);
    a->idle_since_ms[first + k] = a->idle_since_ms[first];
  }
  a->free_pages -= k;
  bits_set(a->committed, first, k, true);
  *was_dirty = bits_count(a->dirty, first, k) != 0;
  bits_set(a->dirty, first, k, true);
  hk_stat_add(&hk_stat.committed_bytes, bytes - warm);
  hk_stat_add(&hk_stat.cached_bytes, -warm);
  hk_stat_add(&hk_stat.large_bytes, bytes);
  if (warm != 0) update_due(); /* the run that was due may be gone */
  return true;
}

void* hk_arena_alloc(size_t size, bool zero) {
  unsigned n = pages_for(size);
  hk_arena* a = NULL;
  unsigned page = 0;
  bool was_dirty = false;
  hk_lock(&hk_arena_lock_);
  if (!find_run(n, &a, &page)) {
    if (!chunk_add()) {
      hk_unlock(&hk_arena_lock_);
      return NULL;
    }
    a = hk_arena_chunks;
    page = 1;
  }
  if (!take_pages(a, page, n, &was_dirty)) {
    hk_unlock(&hk_arena_lock_);
    return NULL;
  }
  run_mark(a, page, n, RUN_LIVE);
  hk_stat_add(&hk_stat.large_live, 1);
  hk_unlock(&hk_arena_lock_);
  void* user = page_addr(a, page);
  HK_VG_ALLOC(user, (size_t)n << HK_ARENA_PAGE_SHIFT);
  if (zero && was_dirty) memset(user, 0, size);
  return user;
}

/* ---- free ----------------------------------------------------------------------------- */
static const char msg_double_free[] = "double free";

/* What p is in a, for a pointer that is not a live block's start (lock held). */
static const char* misuse_of(hk_arena* a, uintptr_t off) {
  unsigned page = (unsigned)(off >> HK_ARENA_PAGE_SHIFT);
  if (page == 0) return "invalid free (not an allocated block)";
  /* The run holding the page: walk back to the nearest head. */
  unsigned first = page;
  while (first > 1 && a->head[first] == 0) first--;
  bool live = (a->head[first] & RUN_LIVE) != 0;
  if (!live) return (off & (HK_ARENA_PAGE - 1)) == 0 ? msg_double_free : "invalid free (not an allocated block)";
  return "free of an interior pointer";
}

/* The chunk of p and p's page when p starts a live block (lock held), else
 * the misuse message. */
static const char* live_block(const void* p, hk_arena** out_a, unsigned* out_page) {
  /* Checked again under the lock: a chunk is unmapped (segmap cleared
   * first) only with the lock held, so the header read below is safe. */
  if (hk_segmap_kind((uintptr_t)p) != HK_MAP_ARENA) return "invalid free (pointer not from hakmem)";
  hk_arena* a = (hk_arena*)((uintptr_t)p & ~(uintptr_t)(HK_ARENA_SIZE - 1));
  uintptr_t off = (uintptr_t)p - (uintptr_t)a;
  unsigned page = (unsigned)(off >> HK_ARENA_PAGE_SHIFT);
  if ((off & (HK_ARENA_PAGE - 1)) != 0 || page == 0 || (a->head[page] & RUN_LIVE) == 0) return misuse_of(a, off);
  *out_a = a;
  *out_page = page;
  return NULL;
}

size_t hk_arena_usable(const void* p, bool* freed) {
  hk_arena* a;
  unsigned page;
  hk_lock(&hk_arena_lock_);
  const char* misuse = live_block(p, &a, &page);
  size_t n = misuse == NULL ? (size_t)run_len(a->head[page]) << HK_ARENA_PAGE_SHIFT : 0;
  hk_unlock(&hk_arena_lock_);
  *freed = misuse == msg_double_free;
  return n;
}

/* Returns pages [first, first + n), just cut from a live run, to the free
 * runs: decommitted at once if the decommit policy says so, else kept
 * resident (cached) for reuse; joined with free neighbours. Then purges
 * what the release policy no longer wants (over the cache cap, or a
 * policy without delay). */
static void release_pages(hk_arena* a, unsigned first, unsigned n, uint64_t now) {
  int64_t bytes = (int64_t)n << HK_ARENA_PAGE_SHIFT;
  a->free_pages += n;
  hk_stat_add(&hk_stat.large_bytes, -bytes);
  hk_stat_add(&hk_stat.cached_bytes, bytes); /* live pages are all committed */
  hk_decommit_mode mode = hk_decommit_wanted((size_t)bytes);
  if (mode != HK_DECOMMIT_OFF) {
    /* Only as many pages as take the process back to the resident target
     * (the fewest the policy is content with), from the run's end: the
     * rest stay warm for the next big block, which takes the warm front. */
    unsigned lo = 1, hi = n;
    while (lo < hi) {
      unsigned mid = lo + (hi - lo) / 2;
      if (hk_decommit_wanted_after((size_t)bytes, (uint64_t)mid << HK_ARENA_PAGE_SHIFT) == HK_DECOMMIT_OFF) hi = mid;
      else lo = mid + 1;
    }
    pages_decommit(a, first + n - lo, lo, mode);
  }
  unsigned len = n;
  if (first > 1 && (a->tail[first - 1] & RUN_FREE)) {
    unsigned before = run_len(a->tail[first - 1]);
    run_unmark(a, first - before, before);
    first -= before;
    len += before;
  }
  if (first + len < HK_ARENA_PAGES && (a->head[first + len] & RUN_FREE)) {
    unsigned after = run_len(a->head[first + len]);
    run_unmark(a, first + len, after);
    len += after;
  }
  run_mark(a, first, len, RUN_FREE);
  a->idle_since_ms[first] = now;
  purge(now, false);
}

void hk_arena_free(void* p, const char* func) {
  hk_arena* a;
  unsigned page;
  hk_lock(&hk_arena_lock_);
  const char* misuse = live_block(p, &a, &page);
  if (misuse != NULL) {
    hk_unlock(&hk_arena_lock_);
    hk_misuse(misuse, p, func);
    return;
  }
  HK_VG_FREE(p);
  unsigned n = run_len(a->head[page]);
  run_unmark(a, page, n);
  hk_stat_add(&hk_stat.large_live, -1);
  uint64_t now = hk_now_ms();
  release_pages(a, page, n, now);
  hk_unlock(&hk_arena_lock_);
  hk_release_tick(now); /* the segment and mapping caches may be due too */
}

bool hk_arena_resize(void* p, size_t size) {
  unsigned want = pages_for(size);
  hk_arena* a;
  unsigned page;
  bool done = false;
  uint64_t now = 0;
  hk_lock(&hk_arena_lock_);
  if (live_block(p, &a, &page) == NULL) {
    unsigned n = run_len(a->head[page]);
    unsigned next = page + n;
    bool was_dirty;
    if (want == n) {
      done = true;
    } else if (want < n) {
      /* Shrink: the tail goes back as free pages, no copy. */
      run_unmark(a, page, n);
      run_mark(a, page, want, RUN_LIVE);
      now = hk_now_ms();
      release_pages(a, page + want, n - want, now);
      done = true;
    } else if (next < HK_ARENA_PAGES && (a->head[next] & RUN_FREE) && run_len(a->head[next]) >= want - n &&
               take_pages(a, next, want - n, &was_dirty)) {
      /* Grow into the free run that follows: no copy, and the pages added
       * are warm if they were used before. */
      run_unmark(a, page, n);
      run_mark(a, page, want, RUN_LIVE);
      done = true;
    }
  }
  hk_unlock(&hk_arena_lock_);
  if (now != 0) hk_release_tick(now);
  return done;
}
