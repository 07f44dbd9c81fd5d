/* soak_stats: the derived numbers of a soak run (../shared/DESIGN.md), kept
 * apart from soak.c so a test can feed them a known series.
 *
 * Pure arithmetic on the per-step series; never allocates. */
#ifndef HAKMEM_BENCH_SOAK_STATS_H
#define HAKMEM_BENCH_SOAK_STATS_H

#include <stddef.h>

/* How many steps at each end the drifts compare. */
#define SOAK_EDGE_STEPS 5

typedef struct soak_derived {
  double rss_first_kb;   /* mean RSS of the first edge steps */
  double rss_last_kb;    /* mean RSS of the last edge steps */
  double rss_drift_pct;  /* rss_last / rss_first - 1, in percent */
  double tput_first;     /* mean ops/s of the first edge steps */
  double tput_last;      /* mean ops/s of the last edge steps */
  double tput_drift_pct; /* tput_last / tput_first - 1, in percent */
  double tput_mean;      /* mean ops/s over all steps */
  double cv_pct;         /* population standard deviation of ops/s / mean, in percent */
} soak_derived_t;

/* Derives the numbers from n steps. The edges are min(SOAK_EDGE_STEPS, n / 2)
 * steps wide so they never overlap; with fewer than 2 steps the drifts are 0.
 * A zero denominator yields 0 rather than inf/nan, so result lines stay
 * parseable. */
void soak_derive(const double* ops_per_s, const double* rss_kb, size_t n, soak_derived_t* out);

#endif /* HAKMEM_BENCH_SOAK_STATS_H */
