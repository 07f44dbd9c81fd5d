#include "soak_stats.h"

#include <math.h>

static double mean(const double* v, size_t n) {
  double sum = 0;
  for (size_t i = 0; i < n; i++) sum += v[i];
  return n ? sum / (double)n : 0.0;
}

static double pct_change(double from, double to) { return from != 0 ? (to / from - 1.0) * 100.0 : 0.0; }

void soak_derive(const double* ops_per_s, const double* rss_kb, size_t n, soak_derived_t* out) {
  size_t edge = n / 2 < SOAK_EDGE_STEPS ? n / 2 : SOAK_EDGE_STEPS;
  *out = (soak_derived_t){0};
  out->tput_mean = mean(ops_per_s, n);
  if (n > 0) {
    double var = 0;
    for (size_t i = 0; i < n; i++) var += (ops_per_s[i] - out->tput_mean) * (ops_per_s[i] - out->tput_mean);
    out->cv_pct = out->tput_mean != 0 ? sqrt(var / (double)n) / out->tput_mean * 100.0 : 0.0;
  }
  if (edge == 0) return;
  out->rss_first_kb = mean(rss_kb, edge);
  out->rss_last_kb = mean(rss_kb + n - edge, edge);
  out->rss_drift_pct = pct_change(out->rss_first_kb, out->rss_last_kb);
  out->tput_first = mean(ops_per_s, edge);
  out->tput_last = mean(ops_per_s + n - edge, edge);
  out->tput_drift_pct = pct_change(out->tput_first, out->tput_last);
}
