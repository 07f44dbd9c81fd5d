/* Target 3: size-class and alignment arithmetic.
 *
 * Two halves:
 *  - the tables (hk_class_of_index, hk_class_size, hk_class_slots) and
 *    hk_class_for_aligned, checked against a brute-force model: every small
 *    size maps to the smallest class that holds it, every (size, alignment)
 *    to the smallest class that holds it and is a multiple of the alignment
 *    (or to -1 exactly when there is none), and waste stays within what the
 *    README promises;
 *  - the hk_ entry points with sizes and alignments drawn from the whole
 *    64-bit range, concentrated near SIZE_MAX, powers of two and the
 *    small/large border: a request either succeeds with a block that fits and
 *    is aligned, or fails cleanly (NULL + ENOMEM, EINVAL for a bad alignment),
 *    and requests that cannot be satisfied (>= 2^47 bytes or alignment) always
 *    fail; nothing wraps around into a small allocation.
 *
 * Input: a stream of records, each a kind byte followed by its operands. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc/core/segment.h"
#include "alloc/include/hakmem.h"
#include "alloc/include/hakmem.h"
#include "fuzz/fuzz_common.h"

#define IMPOSSIBLE ((size_t)1 << 47) /* more than the user address space */
#define SURE_OK ((size_t)64 << 20)    /* requests this small must succeed */

static bool is_pow2(size_t x) { return x && !(x & (x - 1)); }

/* ---- tables ------------------------------------------------------------- */

/* The smallest class with size >= n and size % align == 0, or -1: the
 * definition hk_class_for_aligned must agree with. */
static int model_class(size_t n, size_t align) {
  /* Spans start on slot boundaries: no class promises more. */
  if (n > HK_SMALL_MAX || align > HK_SLOT_SIZE) return -1;
  for (int c = 0; c < HK_CLASSES; c++)
    if (hk_class_size[c] >= n && hk_class_size[c] >= align && hk_class_size[c] % align == 0) return c;
  return -1;
}

/* Whole-table invariants, once per process (cheap, but no need to repeat). */
static void check_tables(void) {
  static bool done;
  if (done) return;
  done = true;
  FUZZ_CHECK(hk_class_size[HK_CLASSES - 1] == HK_SMALL_MAX, "largest class is %u, not HK_SMALL_MAX",
             hk_class_size[HK_CLASSES - 1]);
  for (unsigned c = 0; c < HK_CLASSES; c++) {
    uint32_t s = hk_class_size[c];
    FUZZ_CHECK(s % HK_ALIGN == 0, "class %u size %u is not a multiple of 16", c, s);
    FUZZ_CHECK(c == 0 || s > hk_class_size[c - 1], "class sizes not increasing at %u", c);
    unsigned slots = hk_class_slots[c];
    FUZZ_CHECK(slots >= 1 && slots < HK_SLOTS, "class %u spans %u slots", c, slots);
    size_t span = (size_t)slots << HK_SLOT_SHIFT;
    size_t blocks = span / s;
    /* One slot wherever a slot holds HK_SPAN_ONE_SLOT_BLOCKS blocks; else at
     * least HK_SPAN_MIN_BLOCKS blocks per span unless that would take more
     * than HK_SPAN_MAX_SLOTS slots; never fewer than 2 blocks, and tail waste
     * under 1/8 of the span. */
    FUZZ_CHECK(blocks >= 2 && slots <= HK_SPAN_MAX_SLOTS, "class %u (%u bytes): %zu blocks in %u slots", c, s, blocks,
               slots);
    bool one_slot = HK_SLOT_SIZE / s >= HK_SPAN_ONE_SLOT_BLOCKS;
    FUZZ_CHECK(one_slot == (slots == 1) || (size_t)HK_SPAN_MIN_BLOCKS * s <= HK_SLOT_SIZE,
               "class %u (%u bytes) spans %u slots", c, s, slots);
    FUZZ_CHECK(one_slot || blocks >= HK_SPAN_MIN_BLOCKS ||
                   (size_t)HK_SPAN_MIN_BLOCKS * s > ((size_t)HK_SPAN_MAX_SLOTS << HK_SLOT_SHIFT),
               "class %u (%u bytes) fits only %zu blocks per span", c, s, blocks);
    FUZZ_CHECK((span - blocks * s) * 8 < span, "class %u wastes %zu of a %zu-byte span", c, span - blocks * s, span);
    /* The span capacity the core computes fits the span's blocks in the
     * span's slots (blocks start at the span's first slot). */
    FUZZ_CHECK(blocks * s <= span, "class %u overflows its span", c);
  }
  /* Every power of two from 16 up is a class: the basis of the aligned
   * waste bound below. */
  for (size_t p = 16; p <= HK_SMALL_MAX; p <<= 1) FUZZ_CHECK(model_class(p, 1) >= 0 && hk_class_size[model_class(p, 1)] == p,
                                                               "power of two %zu is not a class", p);
}

static void check_small_size(size_t n) {
  unsigned c = hk_class_of_index[HK_SIZE_INDEX(n)];
  FUZZ_CHECK(c < HK_CLASSES, "size %zu maps to class %u of %d", n, c, HK_CLASSES);
  size_t s = hk_class_size[c];
  FUZZ_CHECK(s >= n, "size %zu maps to class %u of %zu bytes", n, c, s);
  FUZZ_CHECK(c == 0 || hk_class_size[c - 1] < n, "size %zu maps to class %u (%zu) though class %u (%u) fits", n, c, s,
             c - 1, hk_class_size[c - 1]);
  /* README: waste beyond the 16-byte granule is under 1/9 of a block; above
   * 128 bytes even the raw waste is. */
  size_t granule = (n + 15) & ~(size_t)15;
  if (n <= 128) FUZZ_CHECK(s == (granule ? granule : 16), "size %zu maps to %zu, not its 16-byte granule", n, s);
  else FUZZ_CHECK((s - n) * 9 < s, "size %zu in class %zu wastes %zu bytes", n, s, s - n);
}

static void check_aligned_class(size_t n, size_t align) {
  int got = hk_class_for_aligned(n, align);
  int want = model_class(n, align);
  FUZZ_CHECK(got == want, "hk_class_for_aligned(%zu, %zu) = %d, model says %d", n, align, got, want);
  if (got >= 0) {
    size_t s = hk_class_size[got];
    size_t m = n > align ? n : align;
    FUZZ_CHECK(s >= n && s % align == 0, "aligned class %zu does not fit (%zu, %zu)", s, n, align);
    /* The next power of two is a class and a multiple of align. */
    FUZZ_CHECK(s < 2 * m || s == 16, "aligned class %zu for (%zu, %zu) wastes more than half", s, n, align);
  }
}

/* ---- API ---------------------------------------------------------------- */

/* Sizes from the whole range, biased to edges. */
static size_t decode_any_raw(fi* in);
static size_t decode_any(fi* in) {
  size_t n = decode_any_raw(in);
  /* Requests from 1 GiB to 64 TiB may well succeed (MAP_NORESERVE), and then
   * cost milliseconds each in segmap updates; they add nothing over the edges
   * of that range, so most are scaled down. */
  if (n > ((size_t)1 << 30) && n < ((size_t)1 << 46) && (n & 0xff) != 0) n >>= 16;
  return n;
}

static size_t decode_any_raw(fi* in) {
  uint8_t m = fi_u8(in);
  switch (m % 8) {
    case 0: return (size_t)fi_u64(in);
    case 1: return SIZE_MAX - fi_u16(in);
    case 2: {
      size_t p = (size_t)1 << (fi_u8(in) % 64);
      return p + (size_t)(int64_t)(int8_t)fi_u8(in);
    }
    case 3: return fi_u16(in);
    case 4: return HK_SMALL_MAX - 128 + fi_u8(in);
    case 5: return SIZE_MAX / 2 - (HK_SEGMENT_SIZE + 8192) + fi_u16(in); /* around hk_mapping_alloc's limit */
    case 6: return hk_class_size[fi_u8(in) % HK_CLASSES] + (size_t)(int64_t)(int8_t)fi_u8(in);
    default: return (size_t)fi_u32(in) << (fi_u8(in) % 33);
  }
}

static size_t decode_align_any(fi* in) {
  uint8_t m = fi_u8(in);
  size_t a;
  switch (m % 4) {
    case 0: a = (size_t)1 << ((m >> 2) % 64); break;
    case 1: a = decode_any(in); break;
    case 2: a = (size_t)1 << ((m >> 2) % 23); break;
    default: a = m >> 2; break;
  }
  /* HK_BUG_ALIGN_4M: powers of two from 4 MiB to 2^46 can succeed and then
   * cannot be freed; lift them to 2^47, where they must fail. */
  if (HK_BUG_ALIGN_4M && is_pow2(a) && a >= HK_SEGMENT_SIZE && a < IMPOSSIBLE) a = IMPOSSIBLE;
  return a;
}

/* A request for n bytes aligned to `align` (a power of two) either failed
 * cleanly or gave a usable block; impossible ones must fail. */
static void check_result(const char* how, void* p, int err, size_t n, size_t align) {
  bool impossible = n >= IMPOSSIBLE || align >= IMPOSSIBLE;
  bool sure = n <= SURE_OK && align <= ((size_t)2 << 20);
  if (p == NULL) {
    FUZZ_CHECK(!sure, "%s(size %zu, align %zu) failed (errno %d) though it is small", how, n, align, err);
    FUZZ_CHECK(err == ENOMEM, "%s(size %zu, align %zu) failed with errno %d, not ENOMEM", how, n, align, err);
    return;
  }
  FUZZ_CHECK(!impossible, "%s(size %zu, align %zu) succeeded with %p: that much cannot exist", how, n, align, p);
  FUZZ_CHECK(((uintptr_t)p & (HK_ALIGN - 1)) == 0 && ((uintptr_t)p & (align - 1)) == 0, "%s(size %zu, align %zu) = %p",
             how, n, align, p);
  size_t u = hk_malloc_usable_size(p);
  FUZZ_CHECK(u >= n, "%s(size %zu, align %zu) gave usable size %zu", how, n, align, u);
  /* Touch both ends: the block really is that big. */
  volatile uint8_t* b = (volatile uint8_t*)p;
  b[0] = 1;
  if (u) b[u - 1] = 2;
  hk_free(p);
}

static void api_malloc(fi* in) {
  size_t n = decode_any(in);
  errno = 0;
  void* p = hk_malloc(n);
  check_result("hk_malloc", p, errno, n, 1);
}

static void api_calloc(fi* in) {
  size_t count = decode_any(in), size = decode_any(in);
  if (fi_u8(in) & 1) count = size ? SIZE_MAX / size + (fi_u8(in) & 3) : count; /* straddle overflow */
  size_t total;
  bool overflow = __builtin_mul_overflow(count, size, &total);
  errno = 0;
  void* p = hk_calloc(count, size);
  if (overflow) {
    FUZZ_CHECK(p == NULL && errno == ENOMEM, "hk_calloc(%zu, %zu) overflows but gave %p errno %d", count, size, p, errno);
    return;
  }
  if (p && total <= ((size_t)1 << 20)) {
    size_t nz = fuzz_find_nonzero(p, total);
    FUZZ_CHECK(nz == SIZE_MAX, "hk_calloc(%zu, %zu) not zero at %zu", count, size, nz);
  }
  check_result("hk_calloc", p, errno, total, 1);
}

static void api_aligned(fi* in) {
  size_t a = decode_align_any(in), n = decode_any(in);
  if (HK_BUG_ALIGNED_ZERO && n == 0 && a > HK_SMALL_MAX) n = 1;
  uint8_t which = fi_u8(in) % 3;
  errno = 0;
  if (which == 1) {
    void* p = NULL;
    int rc = hk_posix_memalign(&p, a, n);
    if (!is_pow2(a) || a < sizeof(void*)) {
      FUZZ_CHECK(rc == EINVAL && p == NULL, "hk_posix_memalign(%zu, %zu) bad alignment gave rc %d, %p", a, n, rc, p);
      return;
    }
    FUZZ_CHECK(rc == 0 || (rc == ENOMEM && p == NULL), "hk_posix_memalign(%zu, %zu) rc %d, %p", a, n, rc, p);
    check_result("hk_posix_memalign", rc ? NULL : p, rc, n, a);
  } else {
    size_t eff = 1;
    while (eff < a && eff <= SIZE_MAX / 2) eff <<= 1;
    /* memalign rounds the alignment up to a power of two, which may land in
     * HK_BUG_ALIGN_4M's range: lift it past the address space instead. */
    if (HK_BUG_ALIGN_4M && eff >= a && eff >= HK_SEGMENT_SIZE && eff < IMPOSSIBLE) a = eff = IMPOSSIBLE;
    /* aligned_alloc (which 0) is memalign, as in glibc 2.36: any size (C17),
     * a non-power-of-two alignment rounded up. */
    const char* name = which == 0 ? "hk_aligned_alloc" : "hk_memalign";
    void* p = which == 0 ? hk_aligned_alloc(a, n) : hk_memalign(a, n);
    if (eff < a) {
      FUZZ_CHECK(p == NULL && errno == EINVAL, "%s(%zu, %zu) gave %p errno %d", name, a, n, p, errno);
      return;
    }
    check_result(name, p, errno, n, eff);
  }
}

static void api_realloc(fi* in) {
  /* Growing a live block to an absurd size fails and keeps the block. */
  size_t small = fi_u8(in);
  size_t n = decode_any(in);
  uint8_t* p = hk_malloc(small);
  FUZZ_CHECK(p != NULL, "hk_malloc(%zu) failed", small);
  memset(p, 0x5a, small);
  errno = 0;
  uint8_t* q;
  size_t total = n;
  bool overflow = false;
  if (fi_u8(in) & 1) {
    size_t count = decode_any(in);
    overflow = __builtin_mul_overflow(count, n, &total);
    q = hk_reallocarray(p, count, n);
  } else {
    q = hk_realloc(p, n);
  }
  int err = errno;
  if (q == NULL && total == 0 && !overflow) return; /* realloc(p, 0) freed p */
  if (q == NULL) {
    FUZZ_CHECK(overflow || total > SURE_OK, "hk_realloc(%zu -> %zu) failed errno %d", small, total, err);
    FUZZ_CHECK(err == ENOMEM, "hk_realloc(%zu -> %zu) failed with errno %d", small, total, err);
    for (size_t i = 0; i < small; i++) FUZZ_CHECK(p[i] == 0x5a, "failed realloc changed byte %zu", i);
    hk_free(p);
    return;
  }
  FUZZ_CHECK(!overflow, "hk_reallocarray overflowing to %zu succeeded", total);
  size_t keep = small < total ? small : total;
  for (size_t i = 0; i < keep; i++) FUZZ_CHECK(q[i] == 0x5a, "realloc(%zu -> %zu) lost byte %zu", small, total, i);
  check_result("hk_realloc", q, err, total, 1);
}

static void api_pages(fi* in) {
  size_t n = decode_any(in);
  errno = 0;
  if (fi_u8(in) & 1) {
    void* p = hk_valloc(n);
    check_result("hk_valloc", p, errno, n, HK_OS_PAGE);
    return;
  }
  void* p = hk_pvalloc(n);
  int err = errno;
  size_t rounded = (n + HK_OS_PAGE - 1) & ~(size_t)(HK_OS_PAGE - 1);
  if (rounded < n) {  /* rounding wrapped: must fail, not allocate a page */
    FUZZ_CHECK(p == NULL && err == ENOMEM, "hk_pvalloc(%zu) gave %p errno %d", n, p, err);
    return;
  }
  if (p) FUZZ_CHECK(hk_malloc_usable_size(p) >= (rounded ? rounded : HK_OS_PAGE), "hk_pvalloc(%zu) too small", n);
  check_result("hk_pvalloc", p, err, rounded, HK_OS_PAGE);
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  hk_free(hk_malloc(1)); /* the tables are filled at first use */
  check_tables();
  fi in = {data, size};
  for (unsigned steps = 0; !fi_done(&in) && steps < 1024; steps++) {
    switch (fi_u8(&in) % 8) {
      case 0: check_small_size(fi_u16(&in) % (HK_SMALL_MAX + 1)); break;
      case 1: {
        size_t n = fi_u16(&in) % (HK_SMALL_MAX + 2);
        check_aligned_class(n, (size_t)1 << (fi_u8(&in) % 17));
        break;
      }
      case 2: api_malloc(&in); break;
      case 3: api_calloc(&in); break;
      case 4: api_aligned(&in); break;
      case 5: api_realloc(&in); break;
      case 6: api_pages(&in); break;
      default: {
        /* hk_class_for_aligned with any size: nothing above HK_SMALL_MAX. */
        size_t n = decode_any(&in);
        size_t a = (size_t)1 << (fi_u8(&in) % 64);
        int c = hk_class_for_aligned(n, a);
        FUZZ_CHECK(c == model_class(n, a), "hk_class_for_aligned(%zu, %zu) = %d, model %d", n, a, c, model_class(n, a));
        break;
      }
    }
  }
  return 0;
}
