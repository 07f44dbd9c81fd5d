/* Operation sequences over a slot table, checked against a shadow model.
 * See ops_model.h for what is checked. */
#include "fuzz/ops_model.h"

#include <errno.h>
#include <stdbool.h>

#include "alloc/core/segment.h"
#include "alloc/include/hakmem.h"

#define NSLOTS 64
/* Sum of requested bytes kept live at once. Requests that would pass it are
 * shrunk, so an input cannot make the fuzzer's RSS explode (libFuzzer's
 * default limit is 2 GiB and hakmem memory counts against it). */
#define LIVE_BUDGET ((size_t)256 << 20)
/* Largest request the decoder makes that is expected to succeed; "huge"
 * requests are all >= 2^47 and must fail. */
#define BIG_MAX ((size_t)16 << 20)
#define HUGE_MIN ((size_t)1 << 47)

typedef struct slot {
  uint8_t* p;
  size_t req;     /* bytes asked for (what realloc must preserve) */
  size_t usable;  /* hk_malloc_usable_size at allocation time */
  size_t align;   /* alignment asked for (1 for plain malloc) */
  uint32_t seed;  /* pattern seed; the block holds fuzz_pat(seed, i) at stamped offsets */
  bool aligned;   /* from an aligned call: sized frees go through free_aligned_sized */
  const char* how;  /* which call made it, for messages */
} slot;

static slot slots[NSLOTS];
static size_t live_bytes;
static uint32_t next_seed;
static const ops_hooks* hooks;

typedef enum { MUST_SUCCEED, MAY_FAIL, MUST_FAIL } expect_t;

static bool is_pow2(size_t x) { return x && !(x & (x - 1)); }

unsigned ops_live_count(void) {
  unsigned n = 0;
  for (unsigned i = 0; i < NSLOTS; i++) n += slots[i].p != NULL;
  return n;
}

/* ---- decoding --------------------------------------------------------- */

/* Sizes concentrate where allocators go wrong: tiny, class boundaries, the
 * small/large border, segment-sized, and (when allowed) near SIZE_MAX. */
static size_t decode_size(fi* in, bool allow_huge) {
  uint8_t b = fi_u8(in);
  switch (b & 7) {
    case 0: return b >> 3;                    /* 0..31 */
    case 1: return fi_u8(in);                 /* 0..255 */
    case 2: return fi_u16(in) & 4095;
    case 3: {                                 /* a class size, +-2 */
      size_t c = hk_class_size[fi_u8(in) % HK_CLASSES];
      int d = (int)(fi_u8(in) % 5) - 2;
      return d < 0 && c < (size_t)-d ? 0 : c + (size_t)(ptrdiff_t)d;
    }
    case 4: return fi_u16(in);                /* 0..65535 */
    case 5: {                                 /* around HK_SMALL_MAX or a segment */
      size_t base = (b & 8) ? HK_SMALL_MAX : HK_SEGMENT_SIZE;
      return base - 16 + fi_u8(in) % 33;
    }
    case 6: return (size_t)fi_u16(in) << (fi_u8(in) % 9);  /* up to 16 MiB */
    default:
      if (!allow_huge) return fi_u32(in) & (BIG_MAX - 1);
      if (b & 8) return SIZE_MAX - fi_u16(in);
      return (size_t)1 << (47 + fi_u8(in) % 17);
  }
}

/* Alignments: every power of two, some non-powers (rejected or rounded up
 * depending on the call), and absurd ones. */
static size_t decode_align(fi* in) {
  uint8_t b = fi_u8(in);
  switch (b & 3) {
    case 0:
    case 1: {
      /* 1 .. 4 MiB. HK_BUG_ALIGN_4M: stop below 4 MiB while it is open. */
      unsigned max_shift = HK_BUG_ALIGN_4M ? 21 : 22;
      return (size_t)1 << ((b >> 2) % (max_shift + 1));
    }
    case 2: return b >> 2;                    /* 0..63, mostly not powers of two */
    default: {
      unsigned shift = (b >> 2) % 64;
      /* Alignments between 4 MiB and 2^47 can succeed and then trip
       * HK_BUG_ALIGN_4M; from 2^47 on they must fail. */
      if (HK_BUG_ALIGN_4M && shift >= 22 && shift < 47) shift = 47;
      return (size_t)1 << shift;
    }
  }
}

/* A request of n bytes with alignment a: what may happen. */
static expect_t expect_for(size_t n, size_t a) {
  /* Alignments of 4 MiB and more are refused with ENOMEM (README). */
  if (n >= HUGE_MIN || a >= HUGE_MIN || a >= HK_SEGMENT_SIZE) return MUST_FAIL;
  if (n > BIG_MAX * 2) return MAY_FAIL;
  if (hooks && hooks->may_fail && hooks->may_fail()) return MAY_FAIL;
  return MUST_SUCCEED;
}

/* Requests under the huge threshold that would pass the live budget shrink;
 * huge ones stay (they must fail and cost nothing). */
static size_t fit_budget(size_t n) {
  if (n >= HUGE_MIN) return n;
  if (n > LIVE_BUDGET - live_bytes) return n & 0xffff;
  return n;
}

/* Steers an aligned request around open bugs (fuzz/known_bugs.h). */
static size_t avoid_known_bugs(size_t n, size_t align) {
  if (HK_BUG_ALIGNED_ZERO && n == 0 && align > HK_SMALL_MAX) return 1;
  return n;
}

/* ---- checks ----------------------------------------------------------- */

/* Most a block of request n (alignment a) may occupy: the exact class for
 * small requests, twice the request for aligned classes (the next power of two
 * is always a class), and for large mappings the header offset plus twice the
 * request (the large cache hands out mappings up to twice what is needed). */
static size_t usable_bound(size_t n, size_t a) {
  if (a <= HK_ALIGN && n <= HK_SMALL_MAX) return hk_class_size[hk_class_of_index[HK_SIZE_INDEX(n)]];
  size_t m = n > a ? n : a;
  /* A class serves alignments up to the slot size; larger ones go large. */
  if (m <= HK_SMALL_MAX && a <= HK_SLOT_SIZE) return 2 * m + HK_ALIGN;
  size_t off = a > 64 ? a : 64;
  return off + 2 * n + 2 * HK_OS_PAGE;
}

static void check_block(const slot* s, unsigned i, const char* when) {
  uintptr_t a = (uintptr_t)s->p;
  FUZZ_CHECK((a & (HK_ALIGN - 1)) == 0, "%s: slot %u block %p from %s not 16-byte aligned", when, i, (void*)s->p, s->how);
  FUZZ_CHECK(s->align <= 1 || (a & (s->align - 1)) == 0, "%s: slot %u block %p from %s not aligned to %zu", when, i,
             (void*)s->p, s->how, s->align);
  FUZZ_CHECK(hk_owns(s->p), "%s: hk_owns(%p) is 0 for a live block from %s", when, (void*)s->p, s->how);
  size_t u = hk_malloc_usable_size(s->p);
  FUZZ_CHECK(u == s->usable, "%s: slot %u usable size changed from %zu to %zu (%s of %zu)", when, i, s->usable, u,
             s->how, s->req);
  size_t bad = fuzz_find_bad(s->p, s->usable, s->usable, s->seed);
  FUZZ_CHECK(bad == SIZE_MAX, "%s: slot %u block %p (%s of %zu, usable %zu) corrupted at offset %zu", when, i,
             (void*)s->p, s->how, s->req, s->usable, bad);
}

void ops_verify_all(const char* after) {
  for (unsigned i = 0; i < NSLOTS; i++)
    if (slots[i].p) check_block(&slots[i], i, after);
}

/* A fresh block from a successful call: check it and file it in slot i. */
static void adopt(unsigned i, void* p, size_t req, size_t align, const char* how, bool zeroed, bool is_realloc) {
  slot* s = &slots[i];
  uintptr_t a = (uintptr_t)p;
  FUZZ_CHECK((a & (HK_ALIGN - 1)) == 0, "%s(%zu) returned %p, not 16-byte aligned", how, req, p);
  FUZZ_CHECK(align <= 1 || (a & (align - 1)) == 0, "%s(align %zu, %zu) returned %p", how, align, req, p);
  FUZZ_CHECK(hk_owns(p), "hk_owns(%p) is 0 right after %s(%zu)", p, how, req);
  size_t u = hk_malloc_usable_size(p);
  FUZZ_CHECK(u >= req, "%s(%zu) gave usable size %zu", how, req, u);
  size_t bound = usable_bound(req, align);
  /* realloc keeps a block that is at most twice the new size, and a growing
   * realloc asks for up to a quarter more than the new size. */
  if (is_realloc) {
    size_t grown = usable_bound(req + req / 4, align);
    if (bound < grown) bound = grown;
    if (bound < 2 * req + HK_ALIGN) bound = 2 * req + HK_ALIGN;
  }
  FUZZ_CHECK(u <= bound, "%s(%zu, align %zu) gave usable size %zu, more than the bound %zu", how, req, align, u, bound);
  for (unsigned j = 0; j < NSLOTS; j++) {
    const slot* o = &slots[j];
    if (j == i || o->p == NULL) continue;
    FUZZ_CHECK((uintptr_t)o->p + o->usable <= a || a + u <= (uintptr_t)o->p,
               "%s(%zu) returned [%p, +%zu) overlapping live slot %u [%p, +%zu) from %s", how, req, p, u, j,
               (void*)o->p, o->usable, o->how);
  }
  if (zeroed) {
    size_t nz = fuzz_find_nonzero(p, req);
    FUZZ_CHECK(nz == SIZE_MAX, "%s(%zu) returned %p with a nonzero byte at offset %zu", how, req, p, nz);
  }
  s->p = p;
  s->req = req;
  s->usable = u;
  s->align = align;
  s->aligned = align > 1;
  s->how = how;
  s->seed = ++next_seed;
  fuzz_stamp(p, u, s->seed);
  live_bytes += req;
}

/* A failed call: NULL with the expected errno, allowed for this request. */
static void failed(expect_t e, int err, int want_err, const char* how, size_t req, size_t align) {
  FUZZ_CHECK(e != MUST_SUCCEED, "%s(%zu, align %zu) failed (errno %d) where it must succeed", how, req, align, err);
  FUZZ_CHECK(err == want_err, "%s(%zu, align %zu) failed with errno %d, expected %d", how, req, align, err, want_err);
  /* A failure must not disturb anything already allocated. */
  ops_verify_all("after a failed allocation");
}

static void drop(unsigned i) {
  live_bytes -= slots[i].req;
  memset(&slots[i], 0, sizeof(slots[i]));
}

/* Frees slot i with a call chosen by sel, after checking it. The sized
 * frees get the size the block was asked for, through the function C23
 * pairs with how it was allocated (hakmem checks the size is plausible). */
static void free_slot(unsigned i, unsigned sel) {
  slot* s = &slots[i];
  if (s->p == NULL) return;
  check_block(s, i, "before free");
  if (sel % 2 == 0) hk_free(s->p);
  else if (!s->aligned) hk_free_sized(s->p, s->req);
  else hk_free_aligned_sized(s->p, s->align, s->req);
  drop(i);
}

static void call_alloc(unsigned i, void* p, int err, expect_t e, size_t req, size_t align, const char* how, bool zero) {
  if (p) {
    FUZZ_CHECK(e != MUST_FAIL, "%s(%zu, align %zu) succeeded with %p; it must fail", how, req, align, p);
    adopt(i, p, req, align, how, zero, false);
  } else {
    failed(e, err, ENOMEM, how, req, align);
  }
}

/* ---- operations ------------------------------------------------------- */

enum {
  OP_MALLOC,
  OP_CALLOC,
  OP_REALLOC,
  OP_REALLOCARRAY,
  OP_ALIGNED_ALLOC,
  OP_POSIX_MEMALIGN,
  OP_MEMALIGN,
  OP_VALLOC,
  OP_PVALLOC,
  OP_FREE,
  OP_CHECK,
  OP_CHECK_ALL,
  OP_NOT_OURS,
  OP_COUNT
};

/* count * size for calloc-like calls: mostly a product that fits, sometimes
 * one that overflows size_t (must fail). */
static void decode_count_size(fi* in, size_t* count, size_t* size) {
  uint8_t mode = fi_u8(in);
  *size = decode_size(in, false);
  if ((mode & 7) == 7 && *size > 1) {
    *count = SIZE_MAX / *size + 1 + fi_u8(in);  /* count * size overflows */
    return;
  }
  *count = mode >> 3;
  if (*size && *count > (BIG_MAX / *size)) *count = BIG_MAX / *size;
  while (*count > 1 && *count * *size > LIVE_BUDGET - live_bytes) *count /= 2;
  if (*count * *size > LIVE_BUDGET - live_bytes) *size &= 0xff;
}

static void op_realloc(unsigned i, size_t n, size_t count, bool array, int overflow) {
  slot* s = &slots[i];
  const char* how = array ? "hk_reallocarray" : "hk_realloc";
  if (s->p) check_block(s, i, "before realloc");
  size_t total = array ? count * n : n;
  expect_t e = overflow ? MUST_FAIL : expect_for(total, 1);
  errno = 0;
  void* q = array ? hk_reallocarray(s->p, count, n) : hk_realloc(s->p, n);
  int err = errno;
  if (s->p == NULL) {
    /* realloc(NULL, n) is malloc(n). */
    call_alloc(i, q, err, e, total, 1, how, false);
    return;
  }
  if (q == NULL && total == 0 && !overflow) {
    /* hakmem follows glibc: realloc(p, 0) frees p and returns NULL. */
    drop(i);
    return;
  }
  if (q == NULL) {
    failed(e, err, ENOMEM, how, total, 1);  /* also re-checks s: still intact */
    return;
  }
  FUZZ_CHECK(e != MUST_FAIL, "%s(%p, %zu) succeeded; it must fail", how, (void*)s->p, total);
  /* Contents up to the smaller of the old and new requests survive. */
  size_t keep = s->req < total ? s->req : total;
  size_t bad = fuzz_find_bad(q, s->usable, keep, s->seed);
  FUZZ_CHECK(bad == SIZE_MAX, "%s(%p, %zu) -> %p lost the old contents at offset %zu (old %s of %zu, usable %zu)", how,
             (void*)s->p, total, q, bad, s->how, s->req, s->usable);
  drop(i);
  adopt(i, q, total, 1, how, false, true);
}

static void run_op(unsigned op, fi* in) {
  unsigned i = fi_u8(in) % NSLOTS;
  switch (op) {
    case OP_MALLOC: {
      size_t n = fit_budget(decode_size(in, true));
      free_slot(i, 0);
      errno = 0;
      void* p = hk_malloc(n);
      call_alloc(i, p, errno, expect_for(n, 1), n, 1, "hk_malloc", false);
      break;
    }
    case OP_CALLOC: {
      size_t count, size;
      free_slot(i, 1);
      decode_count_size(in, &count, &size);
      size_t total;
      bool overflow = __builtin_mul_overflow(count, size, &total);
      errno = 0;
      void* p = hk_calloc(count, size);
      int err = errno;
      if (overflow) {
        FUZZ_CHECK(p == NULL && err == ENOMEM, "hk_calloc(%zu, %zu) overflows size_t but returned %p errno %d", count,
                   size, p, err);
        ops_verify_all("after a failed calloc");
      } else {
        call_alloc(i, p, err, expect_for(total, 1), total, 1, "hk_calloc", true);
      }
      break;
    }
    case OP_REALLOC: {
      size_t n = fit_budget(decode_size(in, true));
      op_realloc(i, n, 1, false, 0);
      break;
    }
    case OP_REALLOCARRAY: {
      size_t count, size, total;
      decode_count_size(in, &count, &size);
      int overflow = __builtin_mul_overflow(count, size, &total);
      op_realloc(i, size, count, true, overflow);
      break;
    }
    case OP_POSIX_MEMALIGN: {
      size_t a = decode_align(in);
      size_t n = avoid_known_bugs(fit_budget(decode_size(in, true)), a);
      free_slot(i, 0);
      void* sentinel = (void*)&slots[i];
      void* p = sentinel;
      errno = 12345;
      int rc = hk_posix_memalign(&p, a, n);
      /* posix_memalign reports through its result and leaves errno alone. */
      FUZZ_CHECK(errno == 12345, "hk_posix_memalign(%zu, %zu) changed errno to %d", a, n, errno);
      if (!is_pow2(a) || a < sizeof(void*)) {
        FUZZ_CHECK(rc == EINVAL && p == sentinel, "hk_posix_memalign(%zu, %zu): bad alignment gave rc %d, out %p", a, n,
                   rc, p);
        break;
      }
      if (rc == 0) {
        call_alloc(i, p, 0, expect_for(n, a), n, a, "hk_posix_memalign", false);
      } else {
        FUZZ_CHECK(p == sentinel, "hk_posix_memalign(%zu, %zu) failed (%d) but wrote %p", a, n, rc, p);
        failed(expect_for(n, a), rc, ENOMEM, "hk_posix_memalign", n, a);
      }
      break;
    }
    case OP_ALIGNED_ALLOC:
    case OP_MEMALIGN: {
      /* aligned_alloc and memalign are one function, as in glibc 2.36: any
       * size (C17), a non-power-of-two alignment rounded up. */
      bool via_aligned_alloc = op == OP_ALIGNED_ALLOC;
      const char* name = via_aligned_alloc ? "hk_aligned_alloc" : "hk_memalign";
      size_t a = decode_align(in);
      size_t eff = 1;
      while (eff < a && eff <= SIZE_MAX / 2) eff <<= 1;
      size_t n = avoid_known_bugs(fit_budget(decode_size(in, true)), eff);
      free_slot(i, 1);
      errno = 0;
      void* p = via_aligned_alloc ? hk_aligned_alloc(a, n) : hk_memalign(a, n);
      int err = errno;
      if (eff < a) {
        FUZZ_CHECK(p == NULL && err == EINVAL, "%s(%zu, %zu) gave %p errno %d", name, a, n, p, err);
        break;
      }
      call_alloc(i, p, err, expect_for(n, eff), n, eff, name, false);
      break;
    }
    case OP_VALLOC: {
      size_t n = fit_budget(decode_size(in, true));
      free_slot(i, 2);
      errno = 0;
      void* p = hk_valloc(n);
      call_alloc(i, p, errno, expect_for(n, HK_OS_PAGE), n, HK_OS_PAGE, "hk_valloc", false);
      break;
    }
    case OP_PVALLOC: {
      size_t n = fit_budget(decode_size(in, true));
      free_slot(i, 0);
      errno = 0;
      void* p = hk_pvalloc(n);
      int err = errno;
      /* pvalloc rounds the size up to whole pages (0 to one page). */
      size_t rounded = n > SIZE_MAX - (HK_OS_PAGE - 1) ? 0 : (n + HK_OS_PAGE - 1) & ~(size_t)(HK_OS_PAGE - 1);
      expect_t e = rounded == 0 && n ? MUST_FAIL : expect_for(rounded, HK_OS_PAGE);
      if (rounded == 0) rounded = n ? n : HK_OS_PAGE;
      if (p) {
        FUZZ_CHECK(hk_malloc_usable_size(p) >= rounded, "hk_pvalloc(%zu) gave usable size %zu < %zu", n,
                   hk_malloc_usable_size(p), rounded);
      }
      call_alloc(i, p, err, e, n, HK_OS_PAGE, "hk_pvalloc", false);
      break;
    }
    case OP_FREE:
      free_slot(i, fi_u8(in));
      break;
    case OP_CHECK:
      if (slots[i].p) check_block(&slots[i], i, "check");
      break;
    case OP_CHECK_ALL:
      ops_verify_all("check all");
      break;
    case OP_NOT_OURS: {
      /* Memory hakmem never handed out is not its own. */
      int local = 0;
      FUZZ_CHECK(!hk_owns(&local), "hk_owns says a stack address %p is hakmem's", (void*)&local);
      FUZZ_CHECK(!hk_owns(slots), "hk_owns says a global %p is hakmem's", (void*)slots);
      FUZZ_CHECK(!hk_owns(NULL), "hk_owns(NULL) is not 0");
      FUZZ_CHECK(hk_malloc_usable_size(NULL) == 0, "hk_malloc_usable_size(NULL) is not 0");
      hk_free(NULL);
      hk_free_sized(NULL, 0);
      break;
    }
  }
}

void ops_run(const uint8_t* data, size_t size, const ops_hooks* h) {
  hooks = h;
  fi in = {data, size};
  hk_stats_t before;
  hk_stats_get(&before);
  unsigned nops = OP_COUNT + (h ? h->extra_ops : 0);
  /* A bound on operations keeps a single input fast whatever its length. */
  for (unsigned steps = 0; !fi_done(&in) && steps < 4096; steps++) {
    unsigned op = fi_u8(&in) % nops;
    if (op < OP_COUNT) run_op(op, &in);
    else h->extra(op - OP_COUNT, &in);
  }
  ops_verify_all("end of input");
  for (unsigned i = 0; i < NSLOTS; i++) free_slot(i, i);
  FUZZ_CHECK(live_bytes == 0, "shadow model lost track: %zu live bytes after freeing everything", live_bytes);
  /* Single-threaded: every large mapping this input made is gone again. */
  hk_stats_t after;
  hk_stats_get(&after);
  FUZZ_CHECK(after.large_live == before.large_live, "large_live went from %llu to %llu across an input that freed everything",
             (unsigned long long)before.large_live, (unsigned long long)after.large_live);
  if (h && h->end) h->end();
  hooks = NULL;
}
