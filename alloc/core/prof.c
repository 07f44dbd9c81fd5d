/* The sampling heap profiler: what prof.h describes. Layout of this file:
 * the count (per thread, no lock), the stack walk, the tables of sampled
 * blocks and stacks (under prof_lock), the profiler's own spans, and the
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

_Atomic uint64_t hk_prof_rate;
_Atomic uint64_t hk_prof_big_live;
HK_TLS hk_thread_counts hk_tcounts;

/* ---- per thread: the count --------------------------------------------------- */
/* The largest budget granted: a rate change (or a thread's counters
 * switched on) reaches each allocating thread within this many bytes. An
 * exponential count is memoryless, so stopping at a cap and granting the
 * rest later changes no allocation's chance. A request at or above the
 * budget never takes the counted branch's pop: no cap above the small
 * sizes may let a big request through. */
#define PROF_GRANT_MAX ((uint64_t)256 << 10)
_Static_assert(PROF_GRANT_MAX <= (uint64_t)HK_SMALL_MAX + 1, "a budget never admits a request above the classes");
/* Bytes to a sample while sampling is off (the thread counts): none is
 * ever due. */
#define PROF_NO_SAMPLE ((uint64_t)1 << 62)

typedef struct prof_thread {
  uint64_t to_sample;           /* bytes to the next sample, from the last grant on; >= 1 */
  uint64_t granted;             /* the budget last granted (hk_tls.sample_budget then) */
  uint64_t rate_seen;           /* the rate to_sample was drawn for; UINT64_MAX: none yet */
  uint64_t rng;                 /* xorshift state; 0: not seeded yet */
  uintptr_t stack_lo, stack_hi; /* [lo, hi) of this thread's stack, known to be mapped */
  int in_take;                  /* inside hk_prof_take (signal handlers) */
} prof_thread;
static HK_TLS prof_thread prof_self = {.rate_seen = UINT64_MAX};

/* One lock for the tables and the profiler's spans. A thread that holds it
 * marks itself busy, so a signal handler that interrupts it and allocates
 * does not sample (it would wait for itself). */
static hk_lock_t prof_lock = HK_LOCK_INIT(HK_LOCK_PROF);
static HK_TLS int prof_busy;

static bool prof_enter(void) {
  if (prof_busy) return false;
  prof_busy = 1;
  hk_lock(&prof_lock);
  return true;
}

static void prof_drain(void);
static void prof_leave(void) {
  prof_drain();
  hk_unlock(&prof_lock);
  prof_busy = 0;
}

static void* prof_map(size_t bytes) {
  void* mem = NULL;
  return hk_os_reserve(bytes, HK_OS_PAGE, &mem, bytes) == 0 ? mem : NULL;
}

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
static uint64_t draw(prof_thread* t, uint64_t rate) {
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
 * count that a signal handler's allocation upset in between (used past
 * it), which would otherwise wrap. */
static void count_used(prof_thread* t, uint64_t rate, uint64_t left) {
  uint64_t used = t->granted - left;
  if (t->rate_seen != rate || used >= t->to_sample) {
    t->rate_seen = rate;
    t->to_sample = rate != 0 ? draw(t, rate) : PROF_NO_SAMPLE;
  } else if (rate != 0) {
    t->to_sample -= used;  /* each request taken was below the budget left: to_sample stays >= 1 */
  }
}

uint64_t hk_prof_take(uint64_t left, size_t size, bool* sample) {
  prof_thread* t = &prof_self;
  *sample = false;
  if (t->in_take) return left;
  t->in_take = 1;
  atomic_signal_fence(memory_order_seq_cst);
  uint64_t rate = atomic_load_explicit(&hk_prof_rate, memory_order_relaxed);
  count_used(t, rate, left);
  if (rate != 0) {
    /* The count ends inside this request's bytes: it is the sample. */
    if (size >= t->to_sample) {
      *sample = true;
      t->to_sample = draw(t, rate);
    } else {
      t->to_sample -= size;
    }
  }
  uint64_t grant = t->to_sample < PROF_GRANT_MAX ? t->to_sample : PROF_GRANT_MAX;
  t->granted = grant;
  atomic_signal_fence(memory_order_seq_cst);
  t->in_take = 0;
  return grant;
}

void hk_prof_refund(size_t size) {
  prof_thread* t = &prof_self;
  if (t->rate_seen != 0 && t->rate_seen != UINT64_MAX && size < PROF_NO_SAMPLE - t->to_sample) t->to_sample += size;
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

static bool range_mapped(uintptr_t lo, uintptr_t hi) {
  unsigned char vec[256];
  for (uintptr_t a = lo; a < hi;) {
    size_t pages = (hi - a + HK_OS_PAGE - 1) / HK_OS_PAGE;
    if (pages > sizeof(vec)) pages = sizeof(vec);
    if (mincore((void*)a, pages * HK_OS_PAGE, vec) != 0) return false;
    a += pages * HK_OS_PAGE;
  }
  return true;
}

static uintptr_t stack_top(prof_thread* t, uintptr_t sp) {
  if (t->stack_hi != 0 && sp >= t->stack_lo && sp < t->stack_hi) return t->stack_hi;
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

static HK_NOINLINE __attribute__((no_sanitize("address", "thread"))) unsigned
walk(uintptr_t fp, uintptr_t* pcs, prof_thread* t) {
  uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
  uintptr_t hi = stack_top(t, sp);
  uintptr_t lo_text = (uintptr_t)__start_hk_alloc_text, hi_text = (uintptr_t)__stop_hk_alloc_text;
  unsigned n = 0;
  bool inside = true;
  while (n < HK_PROF_DEPTH && fp >= sp && fp <= hi - 16 && (fp & 7) == 0) {
    uintptr_t next = ((const uintptr_t*)fp)[0];
    uintptr_t ra = ((const uintptr_t*)fp)[1];
    if (ra < HK_OS_PAGE) break;
    if (!(inside && ra >= lo_text && ra < hi_text)) {
      inside = false;
      pcs[n++] = ra;
    }
    if (next <= fp) break;
    fp = next;
  }
  return n;
}

/* ---- tables (under prof_lock) ---------------------------------------------- */
typedef struct prof_stack {
  uint64_t hash;
  uint32_t depth;
  uint32_t pad;
  uint64_t live_count, live_bytes;    /* sampled blocks not freed yet */
  uint64_t alloc_count, alloc_bytes;  /* every sample since start */
  uintptr_t pc[HK_PROF_DEPTH];
} prof_stack;

typedef struct prof_sample {
  uintptr_t addr;         /* 0: empty entry */
  uint64_t size;          /* bytes charged for it */
  uint64_t stack;         /* index in stacks */
} prof_sample;

/* Stacks: an array that only grows (samples name a stack by its index),
 * found through an open-addressed index (entries are index + 1). Samples:
 * open addressing by address, linear probing. */
static prof_stack* stacks;
static size_t stacks_cap, stacks_used;
static uint32_t* stack_index;
static size_t index_cap;
static prof_sample* samples;
static size_t samples_cap, samples_used;

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
  size_t cap = stacks_cap ? stacks_cap * 2 : 512;
  prof_stack* t = prof_map(cap * sizeof(prof_stack));
  if (t == NULL) return false;
  if (stacks) {
    memcpy(t, stacks, stacks_used * sizeof(prof_stack));
    hk_os_release(stacks, stacks_cap * sizeof(prof_stack), stacks_cap * sizeof(prof_stack));
  }
  stacks = t;
  stacks_cap = cap;
  size_t icap = cap * 2;
  uint32_t* idx = table_regrow(stack_index, index_cap * sizeof(uint32_t), icap * sizeof(uint32_t));
  if (idx == NULL) return false;  /* the old index was kept and still works */
  stack_index = idx;
  index_cap = icap;
  for (size_t i = 0; i < stacks_used; i++) {
    size_t j = stacks[i].hash & (icap - 1);
    while (idx[j] != 0) j = (j + 1) & (icap - 1);
    idx[j] = (uint32_t)(i + 1);
  }
  return true;
}

static bool samples_grow(void) {
  size_t cap = samples_cap ? samples_cap * 2 : 4096;
  prof_sample* t = prof_map(cap * sizeof(prof_sample));
  if (t == NULL) return false;
  for (size_t i = 0; i < samples_cap; i++) {
    if (samples[i].addr == 0) continue;
    size_t j = mix(samples[i].addr) & (cap - 1);
    while (t[j].addr != 0) j = (j + 1) & (cap - 1);
    t[j] = samples[i];
  }
  if (samples) hk_os_release(samples, samples_cap * sizeof(prof_sample), samples_cap * sizeof(prof_sample));
  samples = t;
  samples_cap = cap;
  return true;
}

static size_t stack_find_or_add(const uintptr_t* pcs, unsigned n) {
  uint64_t h = stack_hash(pcs, n);
  if (index_cap != 0) {
    for (size_t j = h & (index_cap - 1); stack_index[j] != 0; j = (j + 1) & (index_cap - 1)) {
      prof_stack* s = &stacks[stack_index[j] - 1];
      if (s->hash == h && s->depth == n && memcmp(s->pc, pcs, n * sizeof(uintptr_t)) == 0) return stack_index[j] - 1;
    }
  }
  if (stacks_used == stacks_cap && (stacks_cap >= ((size_t)1 << 24) || !stacks_grow())) return SIZE_MAX;
  size_t i = stacks_used++;
  memset(&stacks[i], 0, sizeof(stacks[i]));
  stacks[i].hash = h;
  stacks[i].depth = n;
  memcpy(stacks[i].pc, pcs, n * sizeof(uintptr_t));
  size_t j = h & (index_cap - 1);
  while (stack_index[j] != 0) j = (j + 1) & (index_cap - 1);
  stack_index[j] = (uint32_t)(i + 1);
  return i;
}

static size_t sample_slot(uintptr_t addr) {
  if (samples_cap == 0) return SIZE_MAX;
  size_t j = mix(addr) & (samples_cap - 1);
  for (; samples[j].addr != 0; j = (j + 1) & (samples_cap - 1))
    if (samples[j].addr == addr) return j;
  return SIZE_MAX;
}

static void sample_forget(uintptr_t addr) {
  size_t j = sample_slot(addr);
  if (j == SIZE_MAX) return;
  prof_stack* st = &stacks[samples[j].stack];
  st->live_count--;
  st->live_bytes -= samples[j].size;
  samples_used--;
  /* Linear probing: move later entries of the run back into the hole. */
  size_t mask = samples_cap - 1;
  for (size_t k = (j + 1) & mask; samples[k].addr != 0; k = (k + 1) & mask) {
    size_t home = mix(samples[k].addr) & mask;
    if (((k - home) & mask) >= ((k - j) & mask)) {
      samples[j] = samples[k];
      j = k;
    }
  }
  samples[j].addr = 0;
}

/* may_be_stale: addr is a big block's, which may have a record left from a
 * block at the same address whose free was lost (deferred_big full). A
 * small block's record always goes before its block is reused (prof_drain
 * forgets it, and leaks the block instead when its words were
 * overwritten). */
static void sample_add(uintptr_t addr, size_t size, const uintptr_t* pcs, unsigned n, bool may_be_stale) {
  if (may_be_stale) sample_forget(addr);
  if ((samples_used + 1) * 2 > samples_cap && !samples_grow()) return;
  size_t st = stack_find_or_add(pcs, n);
  if (st == SIZE_MAX) return;
  size_t j = mix(addr) & (samples_cap - 1);
  while (samples[j].addr != 0) j = (j + 1) & (samples_cap - 1);
  samples[j] = (prof_sample){.addr = addr, .size = size, .stack = st};
  samples_used++;
  stacks[st].live_count++;
  stacks[st].live_bytes += size;
  stacks[st].alloc_count++;
  stacks[st].alloc_bytes += size;
}

/* ---- sampled blocks ------------------------------------------------------------ */
/* The profiler's spans: owner HK_PROF_OWNER, so every free of their blocks
 * takes the remote path (free.c), which hands them here. */
static hk_segment_set prof_set = {.owner_id = HK_PROF_OWNER};
static hk_span* prof_spans[HK_CLASSES];  /* per class, linked through next */

/* Frees of sampled small blocks wait here (a lock-free stack, like a span's
 * remote list) for the next holder of prof_lock (the next sample, of any
 * thread, or a dump), so free never takes the lock: one lock round trip
 * per sample, not two. Until then a freed sampled block is neither live in
 * the profile (a dump drains first) nor reusable. */
static _Atomic(hk_block*) prof_pending;
/* Frees of sampled big blocks made while this thread held prof_lock (a
 * signal handler): taken in by prof_leave. */
static HK_TLS uintptr_t deferred_big[8];
static HK_TLS unsigned deferred_big_n;

static void prof_drain(void) {
  while (deferred_big_n > 0) sample_forget(deferred_big[--deferred_big_n]);
  if (atomic_load_explicit(&prof_pending, memory_order_relaxed) == NULL) return;
  /* acquire: pairs with the release CAS in hk_prof_free_small. */
  hk_block* b = atomic_exchange_explicit(&prof_pending, NULL, memory_order_acquire);
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
  prof_thread* t = &prof_self;
  uintptr_t pcs[HK_PROF_DEPTH];
  unsigned n = walk((uintptr_t)frame, pcs, t);
  if (!prof_enter()) return NULL;
  void* p = prof_span_pop(cls);
  if (p != NULL) sample_add((uintptr_t)p, size, pcs, n, false);
  prof_leave();
  return p;
}

void hk_prof_free_small(hk_span* s, hk_block* b) {
  hk_block* head = atomic_load_explicit(&prof_pending, memory_order_relaxed);
  do {
    /* Encoded with b's own span, which prof_drain finds from b again. */
    hk_block_make_free(s, b, head);  /* tagged free at once: a second free is a double free */
  } while (!atomic_compare_exchange_weak_explicit(&prof_pending, &head, b, memory_order_release,
                                                  memory_order_relaxed));
}

void hk_prof_record_big(void* p, size_t size, void* frame) {
  prof_thread* t = &prof_self;
  uintptr_t pcs[HK_PROF_DEPTH];
  unsigned n = walk((uintptr_t)frame, pcs, t);
  if (!prof_enter()) return;
  sample_add((uintptr_t)p, size, pcs, n, true);
  prof_leave();
  atomic_fetch_add_explicit(&hk_prof_big_live, 1, memory_order_relaxed);
}

void hk_prof_forget_big(const void* p) {
  if (atomic_load_explicit(&hk_prof_big_live, memory_order_relaxed) == 0) return;
  if (!prof_enter()) {
    if (deferred_big_n < 8) deferred_big[deferred_big_n++] = (uintptr_t)p;
    return;
  }
  bool found = sample_slot((uintptr_t)p) != SIZE_MAX;
  if (found) sample_forget((uintptr_t)p);
  prof_leave();
  if (found) atomic_fetch_sub_explicit(&hk_prof_big_live, 1, memory_order_relaxed);
}

bool hk_prof_is_sampled_big(const void* p) {
  if (atomic_load_explicit(&hk_prof_big_live, memory_order_relaxed) == 0 || !prof_enter()) return false;
  bool found = sample_slot((uintptr_t)p) != SIZE_MAX;
  prof_leave();
  return found;
}

void hk_prof_configure(void) {
  uint64_t rate = __atomic_load_n(&hk_options.prof_sample, __ATOMIC_RELAXED);
  atomic_store_explicit(&hk_prof_rate, rate, memory_order_relaxed);
  bool counted = rate != 0 || __atomic_load_n(&hk_options.thread_stats, __ATOMIC_RELAXED) != 0;
  __atomic_store_n(&hk_hot.small_limit, counted ? 0 : (size_t)HK_SMALL_MAX + 1, __ATOMIC_RELAXED);
}

void hk_prof_fork(hk_fork_step step) {
  if (step == HK_FORK_CHILD) prof_busy = 0;
  hk_lock_fork(&prof_lock, step);
}

/* ---- the dump ------------------------------------------------------------------
 * gperftools' heap profile, text:
 *   heap profile: <live n>: <live bytes> [<alloc n>: <alloc bytes>] @ heap_v2/<rate>
 *   <live n>: <live bytes> [<alloc n>: <alloc bytes>] @ <pc> <pc> ...   one per stack
 *   (blank line) MAPPED_LIBRARIES: and /proc/self/maps
 * The counts are the samples themselves; pprof scales each stack by
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
  static prof_out o;  /* under prof_lock: one dump at a time */
  if (!prof_enter()) {
    close(fd);
    errno = EDEADLK;
    return -1;
  }
  prof_drain();
  o.fd = fd;
  o.n = 0;
  uint64_t t[4] = {0, 0, 0, 0};
  for (size_t i = 0; i < stacks_used; i++) {
    t[0] += stacks[i].live_count;
    t[1] += stacks[i].live_bytes;
    t[2] += stacks[i].alloc_count;
    t[3] += stacks[i].alloc_bytes;
  }
  uint64_t rate = atomic_load_explicit(&hk_prof_rate, memory_order_relaxed);
  if (rate == 0) rate = __atomic_load_n(&hk_options.prof_sample, __ATOMIC_RELAXED);
  out_str(&o, "heap profile: ");
  out_counts(&o, t[0], t[1], t[2], t[3]);
  out_str(&o, " heap_v2/");
  out_num(&o, rate ? rate : 1, 10);
  out_str(&o, "\n");
  for (size_t i = 0; i < stacks_used; i++) {
    const prof_stack* s = &stacks[i];
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
  if (hk_options.prof_file[0] != 0 && (stacks_used != 0 || atomic_load_explicit(&hk_prof_rate, memory_order_relaxed)))
    hk_prof_dump(hk_options.prof_file);
}
