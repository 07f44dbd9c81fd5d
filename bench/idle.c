/* idle: a burst is freed, then the program stops calling the allocator.
 *
 *   idle [burst_mb=512 [live_kb=4096 [seed=1 [idle_ms=3000 [sample_ms=50]]]]]
 *
 * A small live set (blocks of 16 B .. 4 KiB, live_kb in all) stays; then a
 * burst of burst_mb in blocks of 1 KiB .. 1 MiB (log-uniform) is allocated,
 * every page written, and freed in random order. From that moment the
 * program makes no allocator call and samples VmRSS every sample_ms for
 * idle_ms: what an allocator keeps of a freed burst while its process idles
 * (a service between peaks) is what monitors bill it for.
 *
 * Reports rss_live_kb (before the burst), rss_freed_kb (right after the last
 * free), rss_<t>ms_kb at t = 250, 500, 1000, 1250, 2000 and the end, and
 * above_live_end_kb = VmRSS at the end minus rss_live_kb. ops = the burst's
 * mallocs and frees; its timed part is the burst only. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_common.h"

static void sleep_ms(uint64_t ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {}
}

static size_t draw_log(uint32_t* rng, unsigned lo_shift, unsigned hi_shift) {
  unsigned e = lo_shift + bench_xorshift32(rng) % (hi_shift - lo_shift);
  return ((size_t)1 << e) + (bench_xorshift32(rng) & (((size_t)1 << e) - 1));
}

int main(int argc, char** argv) {
  bench_args_t a = {argc, argv, "[burst_mb=512 [live_kb=4096 [seed=1 [idle_ms=3000 [sample_ms=50]]]]]"};
  uint64_t burst_mb = bench_arg_u64(&a, 1, 512);
  uint64_t live_kb = bench_arg_u64(&a, 2, 4096);
  uint32_t rng = bench_seed(bench_arg_u64(&a, 3, 1));
  uint64_t idle_ms = bench_arg_u64(&a, 4, 3000);
  uint64_t sample_ms = bench_arg_u64(&a, 5, 50);
  if (burst_mb == 0 || burst_mb > (1u << 20) || sample_ms == 0) bench_usage_exit(&a, "burst_mb in 1..2^20, sample_ms > 0");

  /* The live set. */
  size_t live_cap = (size_t)live_kb * 1024 / 16 + 1;
  void** live = bench_map(live_cap * sizeof(void*));
  size_t nlive = 0;
  for (uint64_t bytes = 0; bytes < live_kb * 1024 && nlive < live_cap; nlive++) {
    size_t n = draw_log(&rng, 4, 12);
    live[nlive] = malloc(n);
    if (!live[nlive]) bench_fail("malloc(%zu) failed", n);
    memset(live[nlive], 1, n);
    bytes += n;
  }
  long rss_live = bench_rss_kb();

  /* The burst. */
  size_t cap = (size_t)burst_mb * 1024 + 1;  /* blocks are at least 1 KiB */
  void** burst = bench_map(cap * sizeof(void*));
  size_t count = 0;
  bench_timer_t timed = bench_timer_start();
  for (uint64_t bytes = 0; bytes < burst_mb << 20 && count < cap; count++) {
    size_t n = draw_log(&rng, 10, 20);
    char* p = malloc(n);
    if (!p) bench_fail("malloc(%zu) failed", n);
    for (size_t i = 0; i < n; i += 4096) p[i] = 1;
    p[n - 1] = 1;
    burst[count] = p;
    bytes += n;
  }
  for (size_t i = count; i > 1; i--) {  /* free in random order */
    size_t j = bench_xorshift32(&rng) % i;
    void* t = burst[i - 1];
    burst[i - 1] = burst[j];
    burst[j] = t;
  }
  for (size_t i = 0; i < count; i++) free(burst[i]);
  bench_timer_stop(&timed);
  long rss_freed = bench_rss_kb();

  /* Idle: no allocator call from here to the end of the samples. */
  static const uint64_t marks[] = {250, 500, 1000, 1250, 2000};
  long at_mark[sizeof(marks) / sizeof(marks[0])];
  for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++) at_mark[i] = -1;
  uint64_t t0 = bench_now_ns();
  long rss = rss_freed;
  for (uint64_t t = 0; t < idle_ms;) {
    sleep_ms(sample_ms);
    t = (bench_now_ns() - t0) / 1000000u;
    rss = bench_rss_kb();
    for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++)
      if (at_mark[i] < 0 && t >= marks[i]) at_mark[i] = rss;
  }

  bench_result_begin("idle", 2 * (uint64_t)count, &timed);
  bench_field_u64("burst_mb", burst_mb);
  bench_field_u64("live_kb", live_kb);
  bench_field_u64("idle_ms", idle_ms);
  bench_field_i64("rss_live_kb", rss_live);
  bench_field_i64("rss_freed_kb", rss_freed);
  static const char* const names[] = {"rss_250ms_kb", "rss_500ms_kb", "rss_1000ms_kb", "rss_1250ms_kb", "rss_2000ms_kb"};
  for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++) bench_field_i64(names[i], at_mark[i]);
  bench_field_i64("rss_end_kb", rss);
  bench_field_i64("above_live_end_kb", rss - rss_live);
  bench_result_end();
  for (size_t i = 0; i < nlive; i++) free(live[i]);
  return 0;
}
