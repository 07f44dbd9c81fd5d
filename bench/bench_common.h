/* bench_common: the pieces every hakmem workload shares.
 *
 * Promises: the RNG of ../shared/DESIGN.md (xorshift32), a monotonic clock,
 * RSS readings, memory for the workloads' own bookkeeping that does not come
 * from the allocator under test, positional argument parsing, and the one
 * machine-readable line each program prints.
 *
 * Called by: every bench/ program. The allocator under test is whatever
 * LD_PRELOAD supplies, so nothing here may allocate through malloc while a
 * measurement runs (RSS readings use open/read into stack buffers, result
 * lines are formatted into a static buffer and written with write(2)). */
#ifndef HAKMEM_BENCH_COMMON_H
#define HAKMEM_BENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* ---- RNG ---------------------------------------------------------------- */

/* xorshift32 exactly as DESIGN.md defines it. State 0 is a fixed point, so
 * seeds go through bench_seed() first. */
static inline uint32_t bench_xorshift32(uint32_t* state) {
  uint32_t x = *state;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  *state = x;
  return x;
}

/* Maps any seed to a valid (non-zero) xorshift32 state. */
uint32_t bench_seed(uint64_t seed);

/* The state for the untimed prefault pass that precedes a measured run with
 * `seed`: another stream, or the measured pass would begin by freeing exactly
 * what it is about to allocate. */
uint32_t bench_prefault_seed(uint64_t seed);

/* ---- time ----------------------------------------------------------------- */

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

/* The timed part of a run, on two clocks: wall time, and the CPU time of the
 * whole process (all threads, user + system). On a busy machine the wall
 * clock also counts the time the process sat preempted; CPU time does not,
 * which keeps single-thread results usable there. Also the process's minor
 * page faults over the same span (getrusage ru_minflt): memory an allocator
 * hands out fresh, or decommitted and touched again, costs one per page. */
typedef struct bench_timer {
  uint64_t wall_ns, cpu_ns;
  uint64_t minflt;
} bench_timer_t;

/* Reads both clocks; bench_timer_stop() turns them into the span since. */
bench_timer_t bench_timer_start(void);
void bench_timer_stop(bench_timer_t* t);

/* Cycle counter for per-operation latency. On x86-64 the fences keep the
 * measured call from drifting outside the [begin, end] window; elsewhere it
 * falls back to the monotonic clock (then "cycles" are nanoseconds). */
#if defined(__x86_64__)
static inline uint64_t bench_cycles_begin(void) {
  uint32_t lo, hi;
  __asm__ __volatile__("lfence\n\trdtsc\n\tlfence" : "=a"(lo), "=d"(hi)::"memory");
  return ((uint64_t)hi << 32) | lo;
}
static inline uint64_t bench_cycles_end(void) {
  uint32_t lo, hi, aux;
  __asm__ __volatile__("rdtscp\n\tlfence" : "=a"(lo), "=d"(hi), "=c"(aux)::"memory");
  return ((uint64_t)hi << 32) | lo;
}
#else
static inline uint64_t bench_cycles_begin(void) { return bench_now_ns(); }
static inline uint64_t bench_cycles_end(void) { return bench_now_ns(); }
#endif

/* ---- memory the workload owns -------------------------------------------- */

/* Zeroed anonymous memory straight from mmap, for slot arrays and series, so
 * the allocator under test never sees the benchmark's own bookkeeping. Exits
 * with a message on failure. */
void* bench_map(size_t bytes);
void bench_unmap(void* p, size_t bytes);

/* Frees every non-NULL entry of a slot array and clears it; returns how many
 * it freed (the final "free what is left" of the timed parts). */
uint64_t bench_free_slots(void** slots, size_t n);

/* Resident set size now (VmRSS) and its high-water mark (VmHWM), in KiB;
 * -1 if /proc is unavailable (peak then falls back to getrusage). */
long bench_rss_kb(void);
long bench_peak_rss_kb(void);

/* ---- arguments ------------------------------------------------------------ */

/* Positional arguments with defaults: argv[index] if present, else def.
 * A malformed value prints the program's usage and exits 2. */
typedef struct bench_args {
  int argc;
  char** argv;
  const char* usage; /* e.g. "iterations ws seed min max" */
} bench_args_t;

uint64_t bench_arg_u64(const bench_args_t* a, int index, uint64_t def);
double bench_arg_f64(const bench_args_t* a, int index, double def);

/* The five leading arguments of the single-thread workloads, in this order:
 * iterations, ws (slots), seed, min and max block size. */
typedef struct bench_std_args {
  uint64_t iterations, ws, seed, min, max;
} bench_std_args_t;

/* Reads them from argv[first .. first+4], each defaulting to the field of
 * `def`, and checks 1 <= ws <= 2^28 (slot arrays stay under 2 GiB) and
 * 0 < min <= max. */
bench_std_args_t bench_std_args(const bench_args_t* a, int first, bench_std_args_t def);

/* Prints "usage: prog <usage>" and a reason on stderr, then exits 2. */
void bench_usage_exit(const bench_args_t* a, const char* reason);

/* Prints "prog: message" on stderr and exits 1. */
void bench_fail(const char* fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* ---- result lines --------------------------------------------------------- */

/* A line is "TAG key=value key=value ...\n", written with one write(2) so
 * lines from concurrent programs never interleave mid-line. The harness
 * parses them (tools/bench/benchlib.py); keys are [a-z0-9_]+, values carry no
 * spaces. */
void bench_line_begin(const char* tag);
void bench_field_u64(const char* key, uint64_t value);
void bench_field_i64(const char* key, int64_t value);
void bench_field_f64(const char* key, double value);
void bench_field_str(const char* key, const char* value);
void bench_line_end(void);

/* The one RESULT line every program ends with. begin() writes the fields all
 * workloads share (workload, ops, seconds, ops_per_s, cpu_seconds,
 * ops_per_cpu_s) for ops operations timed by `timed`; the program adds its
 * own; end() appends peak_rss_kb and writes the line. The shared fields
 * include minflt (minor faults of the timed part) and minflt_per_kop. */
void bench_result_begin(const char* workload, uint64_t ops, const bench_timer_t* timed);
void bench_result_end(void);

/* Adds ws, seed, min and max to the current line. */
void bench_field_std(const bench_std_args_t* p);

#endif /* HAKMEM_BENCH_COMMON_H */
