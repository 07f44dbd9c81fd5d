/* Shared machinery of the stress programs in stress/.
 *
 * Promises: one argument parser, one RNG, one block pattern (stamp/check), one
 * watchdog and one failure path, so every stress program fails the same way:
 * a single line "stress FAIL <program>: <what>" on stderr naming the seed and
 * arguments, then abort(). A hang is a failure too: the watchdog aborts with a
 * message when no worker made progress for --stall seconds or the whole run
 * exceeded --timeout seconds.
 *
 * Callers: the stress programs only. They link against whatever malloc the
 * build provides (hakmem via //alloc:hakmem, or glibc when built by hand);
 * hakmem's own API is referenced weakly so the programs also run on glibc.
 *
 * Must never: call malloc on the failure or watchdog paths (the allocator
 * under test may be the thing that is broken or holds a lock), or use stdio
 * in a forked child (stdio locks may be held by a thread that does not exist
 * there). Everything here that reports uses write(2) on a stack buffer. */
#ifndef HAKMEM_STRESS_COMMON_H
#define HAKMEM_STRESS_COMMON_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* ---- sanitizer detection: watchdog bounds stretch under slow builds ---- */
#if defined(__SANITIZE_THREAD__)
#define STRESS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define STRESS_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define STRESS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define STRESS_ASAN 1
#endif
#endif
#ifndef STRESS_TSAN
#define STRESS_TSAN 0
#endif
#ifndef STRESS_ASAN
#define STRESS_ASAN 0
#endif

/* ---- the allocator under test ----
 * By default the programs call the C library's names, which //alloc:hakmem
 * replaces: that tests the override itself (every entry point routed to
 * hakmem). Under ASan and TSan the sanitizer runtime owns malloc (its
 * interceptors come first), so there the programs call hakmem's hk_ names,
 * linked from //alloc:hakmem_api: hakmem's own code is what runs, instrumented.
 * -DSTRESS_HK_API=1/0 forces either mode (0 for hand builds against glibc
 * under a sanitizer). */
#ifndef STRESS_HK_API
#define STRESS_HK_API (STRESS_TSAN || STRESS_ASAN)
#endif

/* The sanitizer's own allocator serves the blocks (hand builds only): it
 * enforces C11's aligned_alloc size rule and tracks exact request sizes. */
#define STRESS_SANITIZER_MALLOC ((STRESS_TSAN || STRESS_ASAN) && !STRESS_HK_API)

#if STRESS_HK_API
#include "alloc/include/hakmem.h"
#define sm_malloc hk_malloc
#define sm_calloc hk_calloc
#define sm_realloc hk_realloc
#define sm_reallocarray hk_reallocarray
#define sm_free hk_free
#define sm_aligned_alloc hk_aligned_alloc
#define sm_posix_memalign hk_posix_memalign
#define sm_memalign hk_memalign
#define sm_valloc hk_valloc
#define sm_pvalloc hk_pvalloc
#define sm_malloc_usable_size hk_malloc_usable_size
#else
#include <malloc.h>
#include <stdlib.h>
#define sm_malloc malloc
#define sm_calloc calloc
#define sm_realloc realloc
#define sm_reallocarray reallocarray
#define sm_free free
#define sm_aligned_alloc aligned_alloc
#define sm_posix_memalign posix_memalign
#define sm_memalign memalign
#define sm_valloc valloc
#define sm_pvalloc pvalloc
#define sm_malloc_usable_size malloc_usable_size
#endif

/* ---- options ---- */

/* The options every program has. Program-specific ones are declared in a
 * stress_opt table and parsed by the same parser. */
typedef struct stress_args {
  int threads;       /* worker threads */
  double seconds;    /* run time; multiplied by $HK_STRESS_SCALE */
  size_t min_size;   /* smallest request size, bytes */
  size_t max_size;   /* largest request size, bytes */
  uint64_t seed;     /* base seed; every thread derives its own from it */
  double stall;      /* watchdog: fail when no progress for this long, s */
  double timeout;    /* watchdog: fail when the run takes longer than this, s;
                        0 = derived from seconds */
  int quiet;         /* no per-run lines, only the summary */
  int require_hakmem; /* fail at start unless hakmem serves the blocks */
} stress_args;

typedef enum { STRESS_OPT_INT, STRESS_OPT_SIZE, STRESS_OPT_U64, STRESS_OPT_DOUBLE } stress_opt_type;

typedef struct stress_opt {
  const char* name;  /* without the leading "--" */
  stress_opt_type type;
  void* value;       /* int*, size_t*, uint64_t* or double* by type */
  const char* help;
} stress_opt;

/* Parses argv: the common options (--threads --seconds --min --max --seed
 * --stall --timeout --quiet --require-hakmem) and `extra` (NULL-terminated by a zero entry).
 * Accepts "--name=value" and "--name value"; sizes take k/m suffixes (KiB,
 * MiB). Later occurrences win, so `bazel test --test_arg=--seed=7` overrides
 * the BUILD file's arguments. Exits 2 with usage on a bad argument.
 * `args` must hold the program's defaults on entry. Also records the program
 * name and the canonical argument line used in every failure message. */
void stress_parse(int argc, char** argv, const char* program, const char* what,
                  stress_args* args, const stress_opt* extra);

/* The program's name and its options as one line ("--threads=4 ..."), for
 * messages and for rerunning a failure by hand. */
const char* stress_program(void);
const char* stress_argline(void);

/* ---- failure ---- */

/* Prints "stress FAIL <program> (<argline>): <message>" to stderr and aborts.
 * Never allocates; safe in forked children and on the watchdog thread. */
void stress_fail(const char* fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* Sets a note that every later failure message includes, e.g. the seed of
 * the current run when a program repeats runs. Call only while no worker
 * threads run (between runs). */
void stress_set_context(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

/* Writes a line to stderr without stdio (for forked children). */
void stress_note(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- threads ---- */

/* pthread_create, failing the run with a message (naming `who`) when the
 * thread cannot be started. Returns the thread. */
pthread_t stress_thread_start(void* (*fn)(void*), void* arg, const char* who);

/* ---- time ---- */
double stress_now(void);        /* monotonic seconds */
void stress_sleep(double s);

/* ---- RNG ---- */

/* xorshift32, the generator DESIGN.md's workloads use; state never zero. */
typedef struct stress_rng {
  uint32_t x;
} stress_rng;

/* Seeds from (seed, stream) so threads and generations get independent,
 * reproducible sequences from one --seed. */
void stress_rng_init(stress_rng* r, uint64_t seed, uint64_t stream);

static inline uint32_t stress_rand(stress_rng* r) {
  uint32_t x = r->x;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  r->x = x;
  return x;
}

/* Uniform in [lo, hi] (inclusive). Modulo bias is irrelevant for stress. */
static inline size_t stress_rand_range(stress_rng* r, size_t lo, size_t hi) {
  if (hi <= lo) return lo;
  uint64_t span = (uint64_t)(hi - lo) + 1;
  uint64_t v = ((uint64_t)stress_rand(r) << 32) | stress_rand(r);
  return lo + (size_t)(v % span);
}

/* Log-uniform in [lo, hi]: every power-of-two octave equally likely, so small
 * classes, medium sizes and large mappings all get exercised. */
size_t stress_rand_log(stress_rng* r, size_t lo, size_t hi);

uint64_t stress_mix64(uint64_t x);

/* ---- block pattern ---- */

/* A block as the programs track it. `seq` is unique per allocation in the run
 * (thread id in the high bits), so a block handed out twice, or a write
 * through a stale pointer, shows up as a pattern mismatch when checked. */
typedef struct stress_block {
  void* p;
  size_t size;
  uint64_t seq;
} stress_block;

/* Writes the pattern of (p, size, seq) into the block: every byte of the
 * first 256 and the last 64, and one word in every 4 KiB between (so large
 * blocks touch every page without costing a full memset). */
void stress_stamp(void* p, size_t size, uint64_t seq);

/* Checks the pattern of a block stamped with stress_stamp(p, size, seq).
 * Fails (stress_fail) with the block, offset, expected and found bytes. `what`
 * names the moment of the check ("before free", ...). */
void stress_check(const void* p, size_t size, uint64_t seq, const char* what);

/* Checks only the stamped bytes below `limit` of a pattern stamped for a block
 * at address `orig` of `size`, reading them at `p` (for realloc: the block
 * moved, its prefix must have been copied unchanged). `orig` is an integer
 * because the old block is gone: only its address feeds the pattern. */
void stress_check_moved(const void* p, uintptr_t orig, size_t size, uint64_t seq, size_t limit,
                        const char* what);

/* Check, then free. Clears the slot. */
void stress_block_free(stress_block* b, const char* what);

/* malloc + stamp into *b; fails on NULL (the stress sizes are always
 * satisfiable). */
void stress_block_alloc(stress_block* b, size_t size, uint64_t seq);

/* ---- progress and watchdog ---- */

/* Progress counters, one cache line each, indexed by worker number (mod
 * STRESS_MAX_PROGRESS). Workers bump theirs with a relaxed add; the watchdog
 * only compares sums, so no ordering is needed. */
#define STRESS_MAX_PROGRESS 64
void stress_progress(int worker, uint64_t n);

/* Starts the watchdog thread: fails when the progress sum stays unchanged for
 * args->stall seconds or the run exceeds args->timeout, which defaults to
 * twice `planned_seconds` (the run's intended length) plus a grace. Both
 * bounds stretch under sanitizers. Call after stress_parse, before starting
 * workers. */
void stress_watchdog_start(const stress_args* args, double planned_seconds);
void stress_watchdog_stop(void);

/* ---- allocator identity ---- */

/* Describes which allocator serves sm_malloc: hakmem's version string (and
 * whether it is reached through the libc names or the hk_ API) when its blocks
 * are hakmem's, "other (...)" otherwise. */
const char* stress_allocator(void);

/* Checks that an allocation made through `entry` routed the same way as
 * sm_malloc: with hakmem linked, a block from any entry point must be
 * hakmem's exactly when malloc's blocks are (a mixed routing is the
 * predecessor's "free(): invalid pointer" bug). No-op without hakmem. */
void stress_check_routing(const void* p, const char* entry);

/* ---- the slot-replacement step (larson's inner loop, reused by others) ---- */

/* Frees slots[idx] (checking its pattern) if occupied, then allocates a block
 * of a size uniform in [min, max] there and stamps it with *seq (incremented). */
void stress_replace(stress_block* slot, stress_rng* r, size_t min, size_t max, uint64_t* seq);

/* Sequence numbers: (thread tag << 40) | counter keeps them unique per run. */
static inline uint64_t stress_seq_base(uint64_t tag) { return tag << 40; }

#endif /* HAKMEM_STRESS_COMMON_H */
