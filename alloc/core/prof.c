/* The sampling heap profiler: what prof.h describes. Layout of this file:
 * the count (per thread, no lock), the stack walk, the tables of sampled
 * blocks and stacks (under prof.lock), the profiler's own spans, and the
 * dump. */
#include "alloc/core/prof.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "alloc/core/options.h"
#include "alloc/core/os.h"
#include "alloc/core/print.h"
#include "alloc/core/size_class.h"

/* Sampled blocks now live in the arena or a mapping: their frees look in
 * the table only while this is not 0. */
static _Atomic uint64_t hk_prof_big_live;

/* ---- per thread: the count --------------------------------------------------- */
/* The count lives in the thread's words (hot.h, hk_tls.prof_*), on the line
 * malloc reads anyway, and the rate on the global line beside the secret:
 * a trip to the counted slow path that samples nothing reads no other
 * line.
 *
 * The largest budget granted: a rate change (or a thread's counters
 * switched on) reaches each allocating thread within this many bytes. An
 * exponential count is memoryless, so stopping at a cap and granting the
 * rest later changes no allocation's chance. A request at or above the
 * budget never takes the counted branch's pop: no cap above the small
 * sizes may let a big request through. */
#define PROF_GRANT_MAX ((uint64_t)256 << 10)
_Static_assert(PROF_GRANT_MAX <= (uint64_t)HK_SMALL_MAX + 1, "a budget never admits a request above the classes");
_Static_assert(PROF_GRANT_MAX <= UINT32_MAX, "hk_tls.prof_granted holds any grant");
/* Bytes to a sample while sampling is off (the thread counts): none is
 * ever due. */
#define PROF_NO_SAMPLE ((uint64_t)1 << 62)

/* What a thread needs only when it samples, on one line of its own. */
typedef struct prof_thread {
  uint64_t rng;                 /* xorshift state; 0: not seeded yet */
  uintptr_t stack_lo, stack_hi; /* [lo, hi) of this thread's stack, known to be mapped */
  /* Holds prof.lock: a signal handler that interrupts it and allocates
   * does not sample (it would wait for itself). */
  int busy;
  /* Frees of sampled big blocks made while this thread held prof.lock (a
   * signal handler): taken in by prof_leave. */
  unsigned deferred_big_n;
  uintptr_t deferred_big[8];
} __attribute__((aligned(64))) prof_thread;
static HK_TLS prof_thread prof_self;

HK_INLINE uint64_t prof_rate(void) { return __atomic_load_n(&hk_hot.prof_rate, __ATOMIC_RELAXED); }

/* ln(u) for u in (0, 1], without libm: u = m * 2^e, ln m by the atanh
 * series (|t| <= 0.172 after folding m into [0.707, 1.414]; error < 1e-8). */
static double ln01(double u) {
  union { double d; uint64_t b; } x = {u};
  int e = (int)((x.b >> 52) & 0x7ff) - 1023;
  x.b = (x.b & (((uint64_t)1 << 52) - 1)) | ((uint64_t)1023 << 52);
  double m = x.d;
  if (m > 1.4142135623730951) { m *= 0.5; e++; }
  double t = (m - 1) / (m + 1), t2 = t * t;
  double s = 2 * t * (1 + t2 * (1.0 / 3 + t2 * (1.0 / 5 + t2 * (1.0 / 7 + t2 / 9))));
  return s + e * 0.6931471805599453;
}

/* Bytes to the next sample: exponential with mean rate, at least 1. */
static uint64_t draw(uint64_t rate) {
  prof_thread* t = &prof_self;
  uint64_t x = t->rng;
  if (hk_unlikely(x == 0)) {
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    x = ((((uint64_t)hi << 32) | lo) ^ (uintptr_t)t) * 0x9E3779B97F4A7C15ull | 1;
  }
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  t->rng = x;
  double u = (double)(((x * 0x2545F4914F6CDD1Dull) >> 11) + 1) * (1.0 / 9007199254740992.0);
  double v = -ln01(u) * (double)rate;
  if (v > 4e18) v = 4e18;
  return (uint64_t)v + 1;
}

/* The bytes taken off the budget since it was granted (granted - left) are
 * counted down; a new rate draws the count afresh instead (memoryless: the
 * bytes counted under the old rate need not carry over), and so does a
 * count not drawn yet (0) or one that a signal handler's allocation upset
 * in between (used past it), which would otherwise wrap. */
static void count_used(hk_thread_words* w, uint64_t rate, uint64_t left) {
  uint64_t used = w->prof_granted - left;
  if (w->prof_rate_seen != rate || used >= w->prof_to_sample) {
    w->prof_rate_seen = rate;
    w->prof_to_sample = rate != 0 ? draw(rate) : PROF_NO_SAMPLE;
  } else if (rate != 0) {
    w->prof_to_sample -= used;  /* each request taken was below the budget left: to_sample stays >= 1 */
  }
}

uint64_t hk_prof_take(hk_thread_words* w, uint64_t left, size_t size, bool* sample) {
  *sample = false;
  if (w->prof_in_take) return left;
  w->prof_in_take = 1;
  atomic_signal_fence(memory_order_seq_cst);
  uint64_t rate = prof_rate();
  count_used(w, rate, left);
  if (rate != 0) {
    /* The count ends inside this request's bytes: it is the sample. */
    if (size >= w->prof_to_sample) {
      *sample = true;
      w->prof_to_sample = draw(rate);
    } else {
      w->prof_to_sample -= size;
    }
  }
  uint64_t grant = w->prof_to_sample < PROF_GRANT_MAX ? w->prof_to_sample : PROF_GRANT_MAX;
  w->prof_granted = (uint32_t)grant;
  atomic_signal_fence(memory_order_seq_cst);
  w->prof_in_take = 0;
  return grant;
}

void hk_prof_refund(hk_thread_words* w, size_t size) {
  if (w->prof_rate_seen != 0 && w->prof_to_sample != 0 && size < PROF_NO_SAMPLE - w->prof_to_sample)
    w->prof_to_sample += size;
}

/* ---- stack walk -------------------------------------------------------------
 * Frame pointers (Bazel compiles with -fno-omit-frame-pointer; code built
 * without them ends the chain or gives garbage, which the bounds stop): each
 * frame must lie above the last, inside this thread's stack, which is known
 * to be mapped: for threads glibc started, from the stack pointer up to the
 * thread pointer (the thread block sits above its stack); for the main
 * thread up to __libc_stack_end. Checked once per thread with mincore (no
 * fault, no allocation); elsewhere (a signal stack, a coroutine) only the
 * current page. Frames inside hakmem's allocation functions (section
 * hk_alloc_text, alloc.c) are left out, so a stack starts at the caller of
 * malloc, or at malloc itself, which pprof drops. */
extern void* __libc_stack_end;
extern const char __start_hk_alloc_text[] __attribute__((weak));
extern const char __stop_hk_alloc_text[] __attribute__((weak));

static HK_NOINLINE bool range_mapped(uintptr_t lo, uintptr_t hi) {
  unsigned char vec[256];
  for (uintptr_t a = lo; a < hi;) {
    size_t pages = (hi - a + HK_OS_PAGE - 1) / HK_OS_PAGE;
    if (pages > sizeof(vec)) pages = sizeof(vec);
    if (mincore((void*)a, pages * HK_OS_PAGE, vec) != 0) return false;
    a += pages * HK_OS_PAGE;
  }
  return true;
}

/* The top of the stack that holds sp, found and checked once per thread
 * (out of line: the walk itself keeps a small frame). */
static HK_NOINLINE uintptr_t stack_top_find(prof_thread* t, uintptr_t sp) {
  const uintptr_t most = (uintptr_t)64 << 20;
  uintptr_t tp = (uintptr_t)__builtin_thread_pointer();
  uintptr_t end = (uintptr_t)__libc_stack_end;
  uintptr_t hi = 0;
  if (tp > sp && tp - sp < most) hi = tp;
  else if (end > sp && end - sp < most) hi = end;
  uintptr_t lo = sp & ~(uintptr_t)(HK_OS_PAGE - 1);
  if (hi != 0 && range_mapped(lo, hi)) {
    t->stack_lo = lo;
    t->stack_hi = hi;
    return hi;
  }
  return lo + HK_OS_PAGE;  /* unknown stack: its current page only */
}

HK_INLINE uintptr_t stack_top(prof_thread* t, uintptr_t sp) {
  if (hk_likely(t->stack_hi != 0 && sp >= t->stack_lo && sp < t->stack_hi)) return t->stack_hi;
  return stack_top_find(t, sp);
}

/* Fills pcs with the return addresses of the frames from fp up, hakmem's
 * allocation functions left out; returns how many. Each frame pointer must
 * be 8-aligned, above the last and at least 16 bytes below the top. */
static HK_NOINLINE __attribute__((no_sanitize("address", "thread"))) unsigned
walk(uintptr_t fp, uintptr_t* pcs) {
  uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
  uintptr_t last = stack_top(&prof_self, sp) - 16;  /* the highest frame whose two words are in bounds */
  uintptr_t lo_text = (uintptr_t)__start_hk_alloc_text;
  uintptr_t text_bytes = (uintptr_t)__stop_hk_alloc_text - lo_text;
  if (fp < sp || fp > last || (fp & 7) != 0) return 0;
  /* hakmem's frames, innermost first (one compare: below lo_text wraps). */
  while (((const uintptr_t*)fp)[1] - lo_text < text_bytes) {
    uintptr_t next = ((const uintptr_t*)fp)[0];
    if (next <= fp || next > last || (next & 7) != 0) return 0;
    fp = next;
  }
  unsigned n = 0;
  for (;;) {
    uintptr_t ra = ((const uintptr_t*)fp)[1];
    if (ra < HK_OS_PAGE) break;
    pcs[n++] = ra;
    uintptr_t next = ((const uintptr_t*)fp)[0];
    if (n == HK_PROF_DEPTH || next <= fp || next > last || (next & 7) != 0) break;
    fp = next;
  }
  return n;
}

/* ---- tables (under prof.lock) ---------------------------------------------- */
/* Line-aligned (the array is mapped, its entries a whole number of lines):
 * a sample reads and writes the first line, and the second for a stack of
 * more than two frames. */
typedef struct prof_stack {
  uint64_t hash;
  uint32_t depth;
  uint32_t pad;
  uint64_t live_count, live_bytes;    /* sampled blocks not freed yet */
  uint64_t alloc_count, alloc_bytes;  /* every sample since start */
  uintptr_t pc[HK_PROF_DEPTH];
} __attribute__((aligned(64))) prof_stack;

static bool same_pcs(const uintptr_t* a, const uintptr_t* b, unsigned n) {
  for (unsigned i = 0; i < n; i++)
    if (a[i] != b[i]) return false;
  return true;
}

typedef struct prof_sample {
  uintptr_t addr;         /* 0: empty entry */
  uint64_t size;          /* bytes charged for it */
  uint64_t stack;         /* index in stacks */
} prof_sample;

/* The profiler's shared state, the words a sample touches together, on two
 * cache lines: the lock and the list of freed samples first, then the
 * tables. Stacks: an array that only grows (samples name a stack by its
 * index), found through an open-addressed index (entries are index + 1).
 * Samples: open addressing by address, linear probing. All under the lock
 * but `pending`. */
static struct {
  /* The tables and the profiler's spans. */
  hk_lock_t lock;
  /* Frees of sampled small blocks wait here (a lock-free stack, like a
   * span's remote list) for the next holder of the lock (the next sample,
   * of any thread, or a dump), so free never takes the lock: one lock round
   * trip per sample, not two. Until then a freed sampled block is neither
   * live in the profile (a dump drains first) nor reusable. */
  _Atomic(hk_block*) pending;
  prof_sample* samples;
  size_t samples_cap, samples_used;
  uint32_t* stack_index;
  size_t index_cap;
  prof_stack* stacks;
  size_t stacks_cap, stacks_used;
} __attribute__((aligned(64))) prof = {.lock = HK_LOCK_INIT(HK_LOCK_PROF)};

/* A thread holding the lock marks itself busy, so a signal handler that
 * interrupts it and allocates does not sample (it would wait for itself). */
static bool prof_enter(void) {
  if (prof_self.busy) return false;
  prof_self.busy = 1;
  hk_lock(&prof.lock);
  return true;
}

static void prof_drain(void);
static void prof_leave(void) {
  prof_drain();
  hk_unlock(&prof.lock);
  prof_self.busy = 0;
}

static void* prof_map(size_t bytes) {
  void* mem = NULL;
  return hk_os_reserve(bytes, HK_OS_PAGE, &mem, bytes) == 0 ? mem : NULL;
}

static uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return x;
}

static uint64_t stack_hash(const uintptr_t* pcs, unsigned n) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
  for (unsigned i = 0; i < n; i++) h = mix(h ^ pcs[i]) + i;
  return h;
}

/* Replaces *table (cap entries of size bytes) by a zeroed one of new_cap. */
static void* table_regrow(void* old, size_t old_bytes, size_t new_bytes) {
  void* t = prof_map(new_bytes);
  if (t != NULL && old != NULL) hk_os_release(old, old_bytes, old_bytes);
  return t;
}

static bool stacks_grow(void) {
  size_t cap = prof.stacks_cap ? prof.stacks_cap * 2 : 512;
  prof_stack* t = prof_map(cap * sizeof(prof_stack));
  if (t == NULL) return false;
  if (prof.stacks) {
    memcpy(t, prof.stacks, prof.stacks_used * sizeof(prof_stack));
    hk_os_release(prof.stacks, prof.stacks_cap * sizeof(prof_stack), prof.stacks_cap * sizeof(prof_stack));
  }
  prof.stacks = t;
  prof.stacks_cap = cap;
  size_t icap = cap * 2;
  uint32_t* idx = table_regrow(prof.stack_index, prof.index_cap * sizeof(uint32_t), icap * sizeof(uint32_t));
  if (idx == NULL) return false;  /* the old index was kept and still works */
  prof.stack_index = idx;
  prof.index_cap = icap;
  for (size_t i = 0; i < prof.stacks_used; i++) {
    size_t j = prof.stacks[i].hash & (icap - 1);
    while (idx[j] != 0) j = (j + 1) & (icap - 1);
    idx[j] = (uint32_t)(i + 1);
  }
  return true;
}

static bool samples_grow(void) {
  size_t cap = prof.samples_cap ? prof.samples_cap * 2 : 4096;
  prof_sample* t = prof_map(cap * sizeof(prof_sample));
  if (t == NULL) return false;
  for (size_t i = 0; i < prof.samples_cap; i++) {
    if (prof.samples[i].addr == 0) continue;
    size_t j = mix(prof.samples[i].addr) & (cap - 1);
    while (t[j].addr != 0) j = (j + 1) & (cap - 1);
    t[j] = prof.samples[i];
  }
  if (prof.samples) hk_os_release(prof.samples, prof.samples_cap * sizeof(prof_sample), prof.samples_cap * sizeof(prof_sample));
  prof.samples = t;
  prof.samples_cap = cap;
  return true;
}

static size_t stack_find_or_add(const uintptr_t* pcs, unsigned n) {
  uint64_t h = stack_hash(pcs, n);
  if (prof.index_cap != 0) {
    for (size_t j = h & (prof.index_cap - 1); prof.stack_index[j] != 0; j = (j + 1) & (prof.index_cap - 1)) {
      prof_stack* s = &prof.stacks[prof.stack_index[j] - 1];
      if (s->hash == h && s->depth == n && same_pcs(s->pc, pcs, n)) return prof.stack_index[j] - 1;
    }
  }
  if (prof.stacks_used == prof.stacks_cap && (prof.stacks_cap >= ((size_t)1 << 24) || !stacks_grow())) return SIZE_MAX;
  size_t i = prof.stacks_used++;
  memset(&prof.stacks[i], 0, sizeof(prof.stacks[i]));
  prof.stacks[i].hash = h;
  prof.stacks[i].depth = n;
  memcpy(prof.stacks[i].pc, pcs, n * sizeof(uintptr_t));
  size_t j = h & (prof.index_cap - 1);
  while (prof.stack_index[j] != 0) j = (j + 1) & (prof.index_cap - 1);
  prof.stack_index[j] = (uint32_t)(i + 1);
  return i;
}

static size_t sample_slot(uintptr_t addr) {
  if (prof.samples_cap == 0) return SIZE_MAX;
  size_t j = mix(addr) & (prof.samples_cap - 1);
  for (; prof.samples[j].addr != 0; j = (j + 1) & (prof.samples_cap - 1))
    if (prof.samples[j].addr == addr) return j;
  return SIZE_MAX;
}

static void sample_forget(uintptr_t addr) {
  size_t j = sample_slot(addr);
  if (j == SIZE_MAX) return;
  prof_stack* st = &prof.stacks[prof.samples[j].stack];
  st->live_count--;
  st->live_bytes -= prof.samples[j].size;
  prof.samples_used--;
  /* Linear probing: move later entries of the run back into the hole. */
  size_t mask = prof.samples_cap - 1;
  for (size_t k = (j + 1) & mask; prof.samples[k].addr != 0; k = (k + 1) & mask) {
    size_t home = mix(prof.samples[k].addr) & mask;
    if (((k - home) & mask) >= ((k - j) & mask)) {
      prof.samples[j] = prof.samples[k];
      j = k;
    }
  }
  prof.samples[j].addr = 0;
}

/* may_be_stale: addr is a big block's, which may have a record left from a
 * block at the same address whose free was lost (deferred_big full). A
 * small block's record always goes before its block is reused (prof_drain
 * forgets it, and leaks the block instead when its words were
 * overwritten). */
static void sample_add(uintptr_t addr, size_t size, const uintptr_t* pcs, unsigned n, bool may_be_stale) {
  if (may_be_stale) sample_forget(addr);
  if ((prof.samples_used + 1) * 2 > prof.samples_cap && !samples_grow()) return;
  size_t st = stack_find_or_add(pcs, n);
  if (st == SIZE_MAX) return;
  size_t j = mix(addr) & (prof.samples_cap - 1);
  while (prof.samples[j].addr != 0) j = (j + 1) & (prof.samples_cap - 1);
  prof.samples[j] = (prof_sample){.addr = addr, .size = size, .stack = st};
  prof.samples_used++;
  prof.stacks[st].live_count++;
  prof.stacks[st].live_bytes += size;
  prof.stacks[st].alloc_count++;
  prof.stacks[st].alloc_bytes += size;
}

/* ---- sampled blocks ------------------------------------------------------------ */
/* The profiler's spans: owner HK_PROF_OWNER, so every free of their blocks
 * takes the remote path (free.c), which hands them here. */
static hk_segment_set prof_set = {.owner_id = HK_PROF_OWNER};
static hk_span* prof_spans[HK_CLASSES];  /* per class, linked through next */

static void prof_drain(void) {
  while (prof_self.deferred_big_n > 0) sample_forget(prof_self.deferred_big[--prof_self.deferred_big_n]);
  if (atomic_load_explicit(&prof.pending, memory_order_relaxed) == NULL) return;
  /* acquire: pairs with the release CAS in hk_prof_free_small. */
  hk_block* b = atomic_exchange_explicit(&prof.pending, NULL, memory_order_acquire);
  while (b != NULL) {
    hk_span* s = hk_span_at(b);
    /* Written into after its free: its link is not followed (warn mode:
     * the rest of the list leaks; nothing is handed out twice). */
    if (hk_unlikely(!hk_block_words_ok(b))) {
      hk_freelist_corrupt(s, b);
      return;
    }
    hk_block* next = hk_block_link(s, b);
    sample_forget((uintptr_t)b);
    hk_block_make_free(s, b, s->free);
    s->free = b;
    s->used--;
    b = next;
  }
}

static void* prof_span_pop(unsigned cls) {
  hk_span* s;
  for (s = prof_spans[cls]; s != NULL; s = s->next) {
    if (!hk_span_has_free(s)) hk_span_carve(s);
    if (hk_span_has_free(s)) return hk_span_pop(s);
  }
  bool failed = false;
  s = hk_span_new(&prof_set, cls, false, &failed);
  if (s == NULL && !failed && hk_segment_acquire(&prof_set) != NULL) s = hk_span_new(&prof_set, cls, false, &failed);
  if (s == NULL) return NULL;
  s->next = prof_spans[cls];
  prof_spans[cls] = s;
  hk_span_carve(s);
  return hk_span_pop(s);
}

void* hk_prof_alloc_small(unsigned cls, size_t size, void* frame) {
  uintptr_t pcs[HK_PROF_DEPTH];
  unsigned n = walk((uintptr_t)frame, pcs);
  if (!prof_enter()) return NULL;
  void* p = prof_span_pop(cls);
  if (p != NULL) sample_add((uintptr_t)p, size, pcs, n, false);
  prof_leave();
  return p;
}

void hk_prof_free_small(hk_span* s, hk_block* b) {
  hk_block* head = atomic_load_explicit(&prof.pending, memory_order_relaxed);
  do {
    /* Encoded with b's own span, which prof_drain finds from b again. */
    hk_block_make_free(s, b, head);  /* tagged free at once: a second free is a double free */
  } while (!atomic_compare_exchange_weak_explicit(&prof.pending, &head, b, memory_order_release,
                                                  memory_order_relaxed));
}

void hk_prof_record_big(void* p, size_t size, void* frame) {
  uintptr_t pcs[HK_PROF_DEPTH];
  unsigned n = walk((uintptr_t)frame, pcs);
  if (!prof_enter()) return;
  sample_add((uintptr_t)p, size, pcs, n, true);
  prof_leave();
  atomic_fetch_add_explicit(&hk_prof_big_live, 1, memory_order_relaxed);
}

void hk_prof_forget_big(const void* p) {
  if (atomic_load_explicit(&hk_prof_big_live, memory_order_relaxed) == 0) return;
  if (!prof_enter()) {
    if (prof_self.deferred_big_n < 8) prof_self.deferred_big[prof_self.deferred_big_n++] = (uintptr_t)p;
    return;
  }
  bool found = sample_slot((uintptr_t)p) != SIZE_MAX;
  if (found) sample_forget((uintptr_t)p);
  prof_leave();
  if (found) atomic_fetch_sub_explicit(&hk_prof_big_live, 1, memory_order_relaxed);
}

void hk_prof_configure(void) {
  uint64_t rate = __atomic_load_n(&hk_options.prof_sample, __ATOMIC_RELAXED);
  uint32_t thread_stats = __atomic_load_n(&hk_options.thread_stats, __ATOMIC_RELAXED) != 0;
  __atomic_store_n(&hk_hot.prof_rate, rate, __ATOMIC_RELAXED);
  __atomic_store_n(&hk_hot.thread_stats, thread_stats, __ATOMIC_RELAXED);
  /* release: the size classes (initialized before this) for a slow path
   * that finds the limit 0 (alloc.c, hk_malloc_slow). */
  bool counted = rate != 0 || thread_stats != 0;
  __atomic_store_n(&hk_hot.small_limit, counted ? 0 : (size_t)HK_SMALL_MAX + 1, __ATOMIC_RELEASE);
}

void hk_prof_fork(hk_fork_step step) {
  if (step == HK_FORK_CHILD) prof_self.busy = 0;
  hk_lock_fork(&prof.lock, step);
}

/* ---- the dump ------------------------------------------------------------------
 * gperftools' heap profile, text:
 *   heap profile: <live n>: <live bytes> [<alloc n>: <alloc bytes>] @ heap_v2/<rate>
 *   <live n>: <live bytes> [<alloc n>: <alloc bytes>] @ <pc> <pc> ...   one per stack
 *   (blank line) MAPPED_LIBRARIES: and /proc/self/maps
 * The counts are the prof.samples themselves; pprof scales each stack by
 * 1 / (1 - exp(-mean size / rate)) ("heap_v2"), the chance a block of that
 * size had to be sampled. */
typedef struct prof_out {
  int fd;
  size_t n;
  char buf[4096];
} prof_out;

static void out_flush(prof_out* o) {
  for (size_t off = 0; off < o->n;) {
    ssize_t w = write(o->fd, o->buf + off, o->n - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    off += (size_t)w;
  }
  o->n = 0;
}

static void out_str(prof_out* o, const char* s) {
  for (; *s; s++) {
    if (o->n == sizeof(o->buf)) out_flush(o);
    o->buf[o->n++] = *s;
  }
}

static void out_num(prof_out* o, uint64_t v, unsigned base) {
  char tmp[24];
  char* p = tmp + sizeof(tmp);
  *--p = 0;
  do { *--p = "0123456789abcdef"[v % base]; v /= base; } while (v);
  if (base == 16) out_str(o, "0x");
  out_str(o, p);
}

static void out_counts(prof_out* o, uint64_t ln, uint64_t lb, uint64_t an, uint64_t ab) {
  out_num(o, ln, 10);
  out_str(o, ": ");
  out_num(o, lb, 10);
  out_str(o, " [");
  out_num(o, an, 10);
  out_str(o, ": ");
  out_num(o, ab, 10);
  out_str(o, "] @");
}

int hk_prof_dump(const char* path) {
  if (path == NULL || path[0] == 0) {
    errno = EINVAL;
    return -1;
  }
  char full[1024];
  if (hk_expand_pid(full, sizeof(full), path) != 0) {
    errno = ENAMETOOLONG;
    return -1;
  }
  int fd = open(full, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  static prof_out o;  /* under prof.lock: one dump at a time */
  if (!prof_enter()) {
    close(fd);
    errno = EDEADLK;
    return -1;
  }
  prof_drain();
  o.fd = fd;
  o.n = 0;
  uint64_t t[4] = {0, 0, 0, 0};
  for (size_t i = 0; i < prof.stacks_used; i++) {
    t[0] += prof.stacks[i].live_count;
    t[1] += prof.stacks[i].live_bytes;
    t[2] += prof.stacks[i].alloc_count;
    t[3] += prof.stacks[i].alloc_bytes;
  }
  uint64_t rate = prof_rate();
  if (rate == 0) rate = __atomic_load_n(&hk_options.prof_sample, __ATOMIC_RELAXED);
  out_str(&o, "heap profile: ");
  out_counts(&o, t[0], t[1], t[2], t[3]);
  out_str(&o, " heap_v2/");
  out_num(&o, rate ? rate : 1, 10);
  out_str(&o, "\n");
  for (size_t i = 0; i < prof.stacks_used; i++) {
    const prof_stack* s = &prof.stacks[i];
    out_counts(&o, s->live_count, s->live_bytes, s->alloc_count, s->alloc_bytes);
    for (unsigned k = 0; k < s->depth; k++) {
      out_str(&o, " ");
      out_num(&o, s->pc[k], 16);
    }
    if (s->depth == 0) out_str(&o, " 0x0");
    out_str(&o, "\n");
  }
  out_str(&o, "\nMAPPED_LIBRARIES:\n");
  out_flush(&o);
  prof_leave();
  /* The mappings, copied as they are (no allocation: a buffer on the stack). */
  int maps = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (maps >= 0) {
    char buf[4096];
    for (;;) {
      ssize_t r = read(maps, buf, sizeof(buf));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      for (ssize_t off = 0; off < r;) {
        ssize_t w = write(fd, buf + off, (size_t)(r - off));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        off += w;
      }
    }
    close(maps);
  }
  return close(fd);
}

/* HAKMEM_PROF_FILE: the profile at exit, if sampling was ever on. */
__attribute__((destructor)) static void prof_at_exit(void) {
  if (hk_options.prof_file[0] != 0 && (prof.stacks_used != 0 || prof_rate()))
    hk_prof_dump(hk_options.prof_file);
}
