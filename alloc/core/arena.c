#include "alloc/core/arena.h"

#include <string.h>

#include "alloc/core/aged.h"
#include "alloc/core/annotate.h"
#include "alloc/core/clock.h"
#include "alloc/core/counters.h"
#include "alloc/core/error.h"
#include "alloc/core/os.h"
#include "alloc/core/segmap.h"

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
  uint64_t fresh[HK_ARENA_WORDS];          /* bit i: page i, in a live block, was not committed when handed out: whether the program touched it is not known */
  uint16_t head[HK_ARENA_PAGES];           /* at a run's first page: length | RUN_LIVE or RUN_FREE; else 0 */
  uint16_t tail[HK_ARENA_PAGES];           /* at a run's last page: the same; else 0 */
  hk_aged_entry age[HK_ARENA_PAGES];       /* at a free run's first page: its entry in the arena cache while it holds committed pages */
} hk_arena;

_Static_assert(sizeof(hk_arena) <= HK_ARENA_PAGE, "the header fits page 0");

static hk_arena* hk_arena_chunks; /* every chunk, newest first; under the cache's lock */
static bool run_purge(hk_aged_entry* e);
static void release_empty_chunks(void);
/* Free runs holding committed pages; its lock guards every chunk. */
static hk_aged_cache hk_arena_cache = HK_AGED_CACHE_KIND("arena", run_purge, release_empty_chunks, HK_LOCK_ARENA);

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

/* ---- the cache of free runs (lock held) ------------------------------------ */
static inline bool run_cached(hk_arena* a, unsigned page) {
  hk_aged_entry* e = &a->age[page];
  return e->newer != NULL || e->older != NULL || hk_arena_cache.newest == e;
}

/* Takes the free run at page out of the cache; returns when it became free
 * (0 if it was not cached). */
static uint64_t run_uncache(hk_arena* a, unsigned page) {
  if (!run_cached(a, page)) return 0;
  uint64_t since = a->age[page].since_ms;
  hk_aged_remove(&hk_arena_cache, &a->age[page]);
  return since;
}

/* Puts the free run at page in the cache if it holds committed pages. */
static void run_cache(hk_arena* a, unsigned page, uint64_t since) {
  int64_t bytes = committed_bytes(a, page, run_len(a->head[page]));
  if (bytes != 0) hk_aged_push(&hk_arena_cache, &a->age[page], (uint64_t)bytes, since);
}

/* Gives a's committed pages in [first, first + n), all in free runs, back
 * with MADV_DONTNEED; false if the backend refused (they stay committed). */
static bool pages_purge(hk_arena* a, unsigned first, unsigned n) {
  int64_t bytes = committed_bytes(a, first, n);
  if (bytes == 0) return true;
  if (hk_os_decommit(page_addr(a, first), (size_t)n << HK_ARENA_PAGE_SHIFT, HK_DECOMMIT_DONTNEED, (size_t)bytes) != 0)
    return false;
  bits_set(a->committed, first, n, false);
  bits_set(a->dirty, first, n, false);  /* reads zeros from now on */
  return true;
}

/* Unmaps a if it is wholly free and purged; a chunk the backend would not
 * unmap stays, and every later purge or trim tries it again. */
static void chunk_release_if_empty(hk_arena* a) {
  if (a->free_pages != HK_ARENA_PAGES - 1 || bits_count(a->committed, 1, HK_ARENA_PAGES - 1) != 0) return;
  /* Clear the segmap first: from here on free() rejects pointers into it. */
  hk_segmap_set(a, HK_ARENA_SIZE, HK_MAP_NONE);
  hk_arena* prev = a->prev;
  hk_arena* next = a->next;
  if (hk_os_release(a, HK_ARENA_SIZE, HK_ARENA_PAGE) != 0) {
    hk_segmap_set(a, HK_ARENA_SIZE, HK_MAP_ARENA);
    return;
  }
  if (prev) prev->next = next; else hk_arena_chunks = next;
  if (next) next->prev = prev;
}

static void release_empty_chunks(void) {
  hk_arena* next;
  for (hk_arena* a = hk_arena_chunks; a; a = next) {
    next = a->next;
    chunk_release_if_empty(a);
  }
}

/* The cache's give_back: purges a free run whose time has come. Always
 * MADV_DONTNEED: this is the arena's counterpart of unmapping a cached
 * mapping, so RSS must fall (and a purged run reads zeros, so calloc need
 * not clear it). */
static bool run_purge(hk_aged_entry* e) {
  hk_arena* a = (hk_arena*)((uintptr_t)e & ~(uintptr_t)(HK_ARENA_SIZE - 1));
  unsigned page = (unsigned)(e - a->age);
  if (!pages_purge(a, page, run_len(a->head[page]))) return false;
  release_empty_chunks();
  return true;
}

/* ---- allocation ------------------------------------------------------------------ */
/* The free run to cut n pages from: the one whose first n pages need the
 * fewest page faults (committed pages are reused as they are), then, when
 * `room` pages are wanted after the block, one that has them, then the
 * tightest fit. false when no chunk has room. */
static bool find_run(unsigned n, unsigned room, hk_arena** out_a, unsigned* out_page) {
  uint64_t best = UINT64_MAX;
  for (hk_arena* a = hk_arena_chunks; a && best != 0; a = a->next) {
    if (a->free_pages < n) continue;
    for (unsigned w = 0; w < HK_ARENA_WORDS && best != 0; w++) {
      for (uint64_t m = a->free_heads[w]; m && best != 0; m &= m - 1) {
        unsigned page = w * 64 + (unsigned)__builtin_ctzll(m);
        unsigned len = run_len(a->head[page]);
        if (len < n) continue;
        uint64_t cold = n - bits_count(a->committed, page, n);
        uint64_t cramped = len - n < room;
        uint64_t score = (cold * 2 + cramped) * HK_ARENA_PAGES + (len - n);
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
  /* The header page counts as committed, as a segment's does. */
  if (hk_os_reserve(HK_ARENA_SIZE, HK_ARENA_SIZE, &mem, HK_ARENA_PAGE) != 0) return false;
  hk_arena* a = mem; /* fresh mappings are zero: nothing committed, dirty, marked or cached */
  a->free_pages = HK_ARENA_PAGES - 1;
  run_mark(a, 1, HK_ARENA_PAGES - 1, RUN_FREE);
  a->prev = NULL;
  a->next = hk_arena_chunks;
  if (hk_arena_chunks) hk_arena_chunks->prev = a;
  hk_arena_chunks = a;
  hk_segmap_set(a, HK_ARENA_SIZE, HK_MAP_ARENA);
  return true;
}

/* Takes the first k pages of the free run at `first` (its head): commits
 * those that are not (false, nothing changed, if the backend refuses), and
 * leaves the rest of the run free with its age. The caller marks the taken
 * pages as (part of) a live run. *was_dirty: some taken page may hold old
 * bytes. */
static bool take_pages(hk_arena* a, unsigned first, unsigned k, bool* was_dirty) {
  int64_t warm = committed_bytes(a, first, k);
  int64_t bytes = (int64_t)k << HK_ARENA_PAGE_SHIFT;
  if (warm != bytes && hk_os_commit(page_addr(a, first), (size_t)bytes, (size_t)(bytes - warm)) != 0) return false;
  uint64_t since = run_uncache(a, first);
  unsigned len = run_len(a->head[first]);
  run_unmark(a, first, len);
  a->free_pages -= k;
  for (unsigned w = first / 64; w <= (first + k - 1) / 64; w++) a->fresh[w] |= word_mask(first, k, w) & ~a->committed[w];
  bits_set(a->committed, first, k, true);
  *was_dirty = bits_count(a->dirty, first, k) != 0;
  bits_set(a->dirty, first, k, true);
  if (len > k) {
    run_mark(a, first + k, len - k, RUN_FREE);
    if (since != 0) run_cache(a, first + k, since);
  }
  hk_stat_add(&hk_stat.large_bytes, bytes);
  return true;
}

void* hk_arena_alloc(size_t size, bool zero, bool growing) {
  unsigned n = pages_for(size);
  hk_arena* a = NULL;
  unsigned page = 0;
  bool was_dirty = false;
  hk_aged_lock(&hk_arena_cache);
  if (!find_run(n, growing ? n : 0, &a, &page)) {
    if (!chunk_add()) {
      hk_aged_unlock(&hk_arena_cache);
      return NULL;
    }
    a = hk_arena_chunks;
    page = 1;
  }
  if (!take_pages(a, page, n, &was_dirty)) {
    hk_aged_unlock(&hk_arena_cache);
    return NULL;
  }
  run_mark(a, page, n, RUN_LIVE);
  hk_stat_add(&hk_stat.large_live, 1);
  hk_aged_unlock(&hk_arena_cache);
  void* user = page_addr(a, page);
  /* A block of a huge page or more is used from end to end. */
  if ((size_t)n << HK_ARENA_PAGE_SHIFT >= HK_HUGE_PAGE) hk_os_advise_dense(user, (size_t)n << HK_ARENA_PAGE_SHIFT);
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
  hk_aged_lock(&hk_arena_cache);
  const char* misuse = live_block(p, &a, &page);
  size_t n = misuse == NULL ? (size_t)run_len(a->head[page]) << HK_ARENA_PAGE_SHIFT : 0;
  hk_aged_unlock(&hk_arena_cache);
  *freed = misuse == msg_double_free;
  return n;
}

/* Returns pages [first, first + n), just cut from a live run, to the free
 * runs, joined with free neighbours: they stay resident in the cache, so a
 * block allocated again within the release delay reuses them without a
 * page fault. Then gives back what the release policy no longer wants
 * (over the cache cap, or a policy without delay). */
static void release_pages(hk_arena* a, unsigned first, unsigned n, uint64_t now) {
  size_t bytes = (size_t)n << HK_ARENA_PAGE_SHIFT;
  a->free_pages += n;
  hk_stat_add(&hk_stat.large_bytes, -(int64_t)bytes);
  unsigned len = n;
  if (first > 1 && (a->tail[first - 1] & RUN_FREE)) {
    unsigned before = run_len(a->tail[first - 1]);
    run_uncache(a, first - before);
    run_unmark(a, first - before, before);
    first -= before;
    len += before;
  }
  if (first + len < HK_ARENA_PAGES && (a->head[first + len] & RUN_FREE)) {
    unsigned after = run_len(a->head[first + len]);
    run_uncache(a, first + len);
    run_unmark(a, first + len, after);
    len += after;
  }
  run_mark(a, first, len, RUN_FREE);
  run_cache(a, first, now);
  release_empty_chunks();
  hk_aged_sweep(&hk_arena_cache, now, false);
}

/* ---- which pages of a freed block were touched ------------------------------ */
/* A block's pages count as committed from the moment it is handed out, but
 * programs often touch only part of a big block (its header, its end): the
 * rest was never faulted in. Counted as committed, those pages would draw
 * the next block that wants warm pages (find_run) onto memory that faults
 * at every touch while pages really resident wait unused, and would inflate
 * the committed and cached bytes. So freeing a block asks the backend which
 * of its pages are resident (one mincore per 4 MiB, without the lock), and
 * the arena pages none of whose OS pages is stop counting as committed.
 * Only blocks that were handed pages not committed before are asked about
 * (a->fresh): a block reusing resident pages costs no system call. */
#define HK_ARENA_MAX_PAGES (HK_ARENA_MAX_BLOCK >> HK_ARENA_PAGE_SHIFT)
#define HK_OS_PER_ARENA_PAGE (HK_ARENA_PAGE / HK_OS_PAGE)

typedef struct untouched {
  unsigned pages;                          /* the block's length in pages; 0: nothing known */
  uint64_t bits[HK_ARENA_MAX_PAGES / 64];  /* bit k: page k of the block holds no resident OS page */
} untouched_t;

/* Fills u for the block of n pages at a's page `page`, still the caller's
 * (only for a block that got pages not committed before, a->fresh: pages
 * that were resident when handed out stay so).
 * The block's first page is never reported: nearly every program touches
 * it, and a chunk whose blocks were all freed untouched then waits out its
 * release delay like any other instead of being unmapped at once and mapped
 * again by the next big malloc. */
static void find_untouched(hk_arena* a, unsigned page, unsigned n, untouched_t* u) {
  unsigned char vec[1024];  /* 4 MiB of OS pages per call */
  const unsigned per_call = (unsigned)(sizeof vec / HK_OS_PER_ARENA_PAGE);
  memset(u, 0, sizeof *u);
  for (unsigned k0 = 0; k0 < n; k0 += per_call) {
    unsigned m = n - k0 < per_call ? n - k0 : per_call;
    if (!hk_os_resident(page_addr(a, page + k0), (size_t)m << HK_ARENA_PAGE_SHIFT, vec)) return;
    for (unsigned k = 0; k < m; k++) {
      unsigned char any = 0;
      for (unsigned j = 0; j < HK_OS_PER_ARENA_PAGE; j++) any |= vec[k * HK_OS_PER_ARENA_PAGE + j];
      if ((any & 1) == 0 && k0 + k != 0) u->bits[(k0 + k) / 64] |= (uint64_t)1 << ((k0 + k) % 64);
    }
  }
  u->pages = n;
}

/* The pages u found untouched stop counting as committed (lock held, the
 * block still live at the same length). */
static void forget_untouched(hk_arena* a, unsigned page, const untouched_t* u) {
  for (unsigned w = 0; w < HK_ARENA_MAX_PAGES / 64; w++) {
    for (uint64_t m = u->bits[w]; m; m &= m - 1) {
      unsigned k = page + w * 64 + (unsigned)__builtin_ctzll(m);
      if (bits_count(a->committed, k, 1) == 0) continue;
      bits_set(a->committed, k, 1, false);
      hk_stat_add(&hk_stat.committed_bytes, -(int64_t)HK_ARENA_PAGE);
    }
  }
}

void hk_arena_free(void* p, const char* func) {
  hk_arena* a;
  unsigned page;
  untouched_t untouched;
  untouched.pages = 0;
  hk_aged_lock(&hk_arena_cache);
  const char* misuse = live_block(p, &a, &page);
  if (misuse == NULL && bits_count(a->fresh, page, run_len(a->head[page])) != 0) {
    /* Asked without the lock (a system call), then checked again under it:
     * the block is the caller's, so it can only have changed by misuse. */
    unsigned n = run_len(a->head[page]);
    hk_aged_unlock(&hk_arena_cache);
    find_untouched(a, page, n, &untouched);
    hk_aged_lock(&hk_arena_cache);
    misuse = live_block(p, &a, &page);
  }
  if (misuse != NULL) {
    hk_aged_unlock(&hk_arena_cache);
    hk_misuse(misuse, p, func);
    return;
  }
  HK_VG_FREE(p);
  unsigned n = run_len(a->head[page]);
  if (untouched.pages == n) forget_untouched(a, page, &untouched);
  bits_set(a->fresh, page, n, false);
  run_unmark(a, page, n);
  hk_stat_add(&hk_stat.large_live, -1);
  uint64_t now = hk_now_ms();
  release_pages(a, page, n, now);
  hk_aged_unlock(&hk_arena_cache);
  hk_aged_tick(now); /* the other caches may be due too */
}

bool hk_arena_resize(void* p, size_t size) {
  unsigned want = pages_for(size);
  hk_arena* a;
  unsigned page;
  bool done = false;
  uint64_t now = 0;
  hk_aged_lock(&hk_arena_cache);
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
      bits_set(a->fresh, page + want, n - want, false);
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
  hk_aged_unlock(&hk_arena_cache);
  if (now != 0) hk_aged_tick(now);
  return done;
}
