/* Shared helpers for hakmem's fuzz targets: an input reader, a failure macro
 * and the byte pattern the shadow models write into blocks.
 *
 * Every target is plain C, has the libFuzzer entry point and nothing else, so
 * the same object links three ways: with libFuzzer (--config=fuzz), with
 * fuzz/replay_main.c as a normal cc_test (default gcc build), and with
 * whatever $LIB_FUZZING_ENGINE OSS-Fuzz provides.
 *
 * The reader never fails: past the end of the input it returns zeros, and
 * targets stop their operation loop once fi_done() says the input is used up.
 * That keeps every byte string a valid program, which is what a mutation
 * fuzzer needs to make progress. */
#ifndef HAKMEM_FUZZ_COMMON_H
#define HAKMEM_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/known_bugs.h"

typedef struct fi {
  const uint8_t* p;
  size_t n;
} fi;

static inline int fi_done(const fi* in) { return in->n == 0; }

static inline uint8_t fi_u8(fi* in) {
  if (in->n == 0) return 0;
  in->n--;
  return *in->p++;
}

static inline uint16_t fi_u16(fi* in) {
  uint16_t lo = fi_u8(in);
  return (uint16_t)(lo | (uint16_t)fi_u8(in) << 8);
}

static inline uint32_t fi_u32(fi* in) {
  uint32_t lo = fi_u16(in);
  return lo | (uint32_t)fi_u16(in) << 16;
}

static inline uint64_t fi_u64(fi* in) {
  uint64_t lo = fi_u32(in);
  return lo | (uint64_t)fi_u32(in) << 32;
}

/* A failed check names itself and aborts: libFuzzer saves the input as a
 * crash, the replay test fails with the message in its log. */
#define FUZZ_CHECK(cond, ...)                                             \
  do {                                                                   \
    if (!(cond)) {                                                       \
      fprintf(stderr, "fuzz check failed at %s:%d: %s\n  ", __FILE__,    \
              __LINE__, #cond);                                          \
      fprintf(stderr, __VA_ARGS__);                                      \
      fputc('\n', stderr);                                               \
      abort();                                                           \
    }                                                                    \
  } while (0)

/* ---- block contents ------------------------------------------------------
 * A block of usable size U is stamped with a pattern that depends on a
 * per-allocation seed and on the byte offset, so a block that overlaps
 * another, or a realloc that copied from the wrong place, reads back wrong.
 * Large blocks are stamped only at a subset of offsets (the first 64 KiB,
 * 64 bytes of every later 64 KiB, and the last 64 bytes) to keep megabyte
 * blocks cheap while still touching every region a bug could hit. The subset
 * depends only on the offset and U, so a realloc check can ask "was this
 * offset stamped in the old block?". */
#define FUZZ_FULL_BYTES 65536u
#define FUZZ_STRIDE 65536u
#define FUZZ_EDGE 64u

/* The byte loops below run over megabytes per input. Coverage
 * instrumentation (with its per-comparison hooks) would make them the
 * fuzzer's bottleneck and teaches it nothing about hakmem, so they are left
 * uninstrumented, and not inlined (inlined into an instrumented caller they
 * would be instrumented after all). */
#if defined(__clang__)
#define FUZZ_NO_COVERAGE __attribute__((no_sanitize("coverage"), noinline, unused))
#else
#define FUZZ_NO_COVERAGE __attribute__((unused))
#endif

/* Pattern word k (bytes 8k..8k+7) of a block stamped with seed: a cheap
 * multiplicative hash, so neighbouring words and seeds differ. */
static inline uint64_t fuzz_word(uint32_t seed, size_t k) {
  return ((uint64_t)seed + 1) * 0x9E3779B97F4A7C15ull ^ ((uint64_t)k + 1) * 0xC2B2AE3D27D4EB4Full;
}

static inline uint8_t fuzz_pat(uint32_t seed, size_t i) {
  return (uint8_t)(fuzz_word(seed, i / 8) >> (i % 8 * 8));
}

/* The stamped offsets of a block of usable size u come in ascending runs.
 * fuzz_next_stamped: the first stamped offset >= pos (u when none).
 * fuzz_run_end: where the run containing the stamped offset pos ends. */
static inline size_t fuzz_tail(size_t u) { return u > FUZZ_EDGE ? u - FUZZ_EDGE : 0; }

static inline size_t fuzz_next_stamped(size_t pos, size_t u) {
  if (pos >= u) return u;
  if (pos < FUZZ_FULL_BYTES || pos >= fuzz_tail(u) || pos % FUZZ_STRIDE < FUZZ_EDGE) return pos;
  size_t next = pos - pos % FUZZ_STRIDE + FUZZ_STRIDE;
  return next < fuzz_tail(u) ? next : fuzz_tail(u);
}

static inline size_t fuzz_run_end(size_t pos, size_t u) {
  if (pos >= fuzz_tail(u)) return u;
  size_t end = pos < FUZZ_FULL_BYTES ? FUZZ_FULL_BYTES : pos - pos % FUZZ_STRIDE + FUZZ_EDGE;
  if (end >= fuzz_tail(u)) end = u;  /* the run reaches into the tail: merged */
  return end < u ? end : u;
}

/* Writes the pattern to [from, to): whole words where aligned, bytes at the
 * edges (memcpy keeps unaligned-looking accesses defined). */
FUZZ_NO_COVERAGE static void fuzz_fill(uint8_t* b, size_t from, size_t to, uint32_t seed) {
  size_t i = from;
  for (; i < to && i % 8; i++) b[i] = fuzz_pat(seed, i);
  for (; i + 8 <= to; i += 8) {
    uint64_t w = fuzz_word(seed, i / 8);
    memcpy(b + i, &w, 8);
  }
  for (; i < to; i++) b[i] = fuzz_pat(seed, i);
}

/* The first offset in [from, to) not holding the pattern, or SIZE_MAX. */
FUZZ_NO_COVERAGE static size_t fuzz_compare(const uint8_t* b, size_t from, size_t to, uint32_t seed) {
  size_t i = from;
  for (; i < to && i % 8; i++)
    if (b[i] != fuzz_pat(seed, i)) return i;
  for (; i + 8 <= to; i += 8) {
    uint64_t w;
    memcpy(&w, b + i, 8);
    if (w != fuzz_word(seed, i / 8)) break;  /* the byte loop below finds which */
  }
  for (; i < to; i++)
    if (b[i] != fuzz_pat(seed, i)) return i;
  return SIZE_MAX;
}

static inline void fuzz_stamp(void* p, size_t usable, uint32_t seed) {
  for (size_t pos = fuzz_next_stamped(0, usable); pos < usable;) {
    size_t end = fuzz_run_end(pos, usable);
    fuzz_fill((uint8_t*)p, pos, end, seed);
    pos = fuzz_next_stamped(end, usable);
  }
}

/* Returns the first offset below limit that was stamped in a block of usable
 * size usable and no longer holds the pattern; SIZE_MAX when all do. */
static inline size_t fuzz_find_bad(const void* p, size_t usable, size_t limit, uint32_t seed) {
  if (limit > usable) limit = usable;
  for (size_t pos = fuzz_next_stamped(0, usable); pos < limit;) {
    size_t end = fuzz_run_end(pos, usable);
    if (end > limit) end = limit;
    size_t bad = fuzz_compare((const uint8_t*)p, pos, end, seed);
    if (bad != SIZE_MAX) return bad;
    pos = fuzz_next_stamped(end, usable);
  }
  return SIZE_MAX;
}

/* The first nonzero byte of [from, to), or SIZE_MAX. */
FUZZ_NO_COVERAGE static size_t fuzz_nonzero_in(const uint8_t* b, size_t from, size_t to) {
  size_t i = from;
  for (; i + 8 <= to; i += 8) {
    uint64_t w;
    memcpy(&w, b + i, 8);
    if (w) break;
  }
  for (; i < to; i++)
    if (b[i]) return i;
  return SIZE_MAX;
}

/* calloc: [0, n) reads zero. Checked in full up to 256 KiB; beyond that the
 * first and last 64 bytes of every 4 KiB page, because zeroing goes wrong a
 * page or a mapping at a time (a reused mapping not cleared, a decommitted
 * page coming back dirty), and reading every byte of a 16 MiB calloc would
 * dominate the fuzzer's time. */
static inline size_t fuzz_find_nonzero(const void* p, size_t n) {
  const uint8_t* b = (const uint8_t*)p;
  size_t full = n < (256u << 10) ? n : (256u << 10);
  size_t bad = fuzz_nonzero_in(b, 0, full);
  for (size_t page = full; bad == SIZE_MAX && page < n; page += 4096) {
    size_t end = page + 4096 < n ? page + 4096 : n;
    bad = fuzz_nonzero_in(b, page, page + 64 < end ? page + 64 : end);
    if (bad == SIZE_MAX && end - page > 64) bad = fuzz_nonzero_in(b, end - 64, end);
  }
  return bad;
}

#endif
