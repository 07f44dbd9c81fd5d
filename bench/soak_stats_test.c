/* Tests of soak_derive() on series whose derived numbers are known by hand. */
#include <math.h>
#include <stdio.h>

#include "soak_stats.h"

static int failures;

static void expect_near(const char* test, const char* what, double got, double want) {
  if (fabs(got - want) > 1e-9 * (fabs(want) > 1 ? fabs(want) : 1)) {
    fprintf(stderr, "FAIL %s: %s = %.12g, want %.12g\n", test, what, got, want);
    failures++;
  }
}

/* 12 steps: RSS 1000 kB for the first 5, 1100 kB for the last 5 (the two in
 * between must not count), throughput 100 then 90: +10% RSS, -10% ops/s. */
static void DriftComparesMeansOfFirstAndLastFiveSteps(void) {
  double tput[12] = {100, 100, 100, 100, 100, 50, 200, 90, 90, 90, 90, 90};
  double rss[12] = {1000, 1000, 1000, 1000, 1000, 5000, 5000, 1100, 1100, 1100, 1100, 1100};
  soak_derived_t d;
  soak_derive(tput, rss, 12, &d);
  const char* t = __func__;
  expect_near(t, "rss_first_kb", d.rss_first_kb, 1000);
  expect_near(t, "rss_last_kb", d.rss_last_kb, 1100);
  expect_near(t, "rss_drift_pct", d.rss_drift_pct, 10.0);
  expect_near(t, "tput_first", d.tput_first, 100);
  expect_near(t, "tput_last", d.tput_last, 90);
  expect_near(t, "tput_drift_pct", d.tput_drift_pct, -10.0);
  expect_near(t, "tput_mean", d.tput_mean, 1200.0 / 12);
}

/* ops/s 2, 4, 4, 4, 5, 5, 7, 9: mean 5, population standard deviation 2,
 * so the coefficient of variation is 40%. */
static void CoefficientOfVariationUsesPopulationDeviation(void) {
  double tput[8] = {2, 4, 4, 4, 5, 5, 7, 9};
  double rss[8] = {1, 1, 1, 1, 1, 1, 1, 1};
  soak_derived_t d;
  soak_derive(tput, rss, 8, &d);
  expect_near(__func__, "tput_mean", d.tput_mean, 5);
  expect_near(__func__, "cv_pct", d.cv_pct, 40);
  expect_near(__func__, "rss_drift_pct", d.rss_drift_pct, 0);
  /* 8 steps: edges are 4 wide, never overlapping. */
  expect_near(__func__, "tput_first", d.tput_first, (2 + 4 + 4 + 4) / 4.0);
  expect_near(__func__, "tput_last", d.tput_last, (5 + 5 + 7 + 9) / 4.0);
}

/* A steady series has no drift and no variation. */
static void SteadySeriesHasNoDriftOrVariation(void) {
  double tput[20], rss[20];
  for (int i = 0; i < 20; i++) tput[i] = 5e7, rss[i] = 2048;
  soak_derived_t d;
  soak_derive(tput, rss, 20, &d);
  expect_near(__func__, "rss_drift_pct", d.rss_drift_pct, 0);
  expect_near(__func__, "tput_drift_pct", d.tput_drift_pct, 0);
  expect_near(__func__, "cv_pct", d.cv_pct, 0);
}

/* Degenerate inputs give zeros, never nan or inf (result lines must parse). */
static void ShortOrZeroSeriesGiveZerosNotNan(void) {
  double one_t[1] = {7}, one_r[1] = {100};
  soak_derived_t d;
  soak_derive(one_t, one_r, 1, &d);
  expect_near(__func__, "1 step rss_drift_pct", d.rss_drift_pct, 0);
  expect_near(__func__, "1 step cv_pct", d.cv_pct, 0);
  expect_near(__func__, "1 step tput_mean", d.tput_mean, 7);
  soak_derive(one_t, one_r, 0, &d);
  expect_near(__func__, "0 steps tput_mean", d.tput_mean, 0);
  double zero_t[4] = {0, 0, 0, 0}, zero_r[4] = {0, 0, 0, 0};
  soak_derive(zero_t, zero_r, 4, &d);
  expect_near(__func__, "zero rss_drift_pct", d.rss_drift_pct, 0);
  expect_near(__func__, "zero tput_drift_pct", d.tput_drift_pct, 0);
  expect_near(__func__, "zero cv_pct", d.cv_pct, 0);
}

int main(void) {
  DriftComparesMeansOfFirstAndLastFiveSteps();
  CoefficientOfVariationUsesPopulationDeviation();
  SteadySeriesHasNoDriftOrVariation();
  ShortOrZeroSeriesGiveZerosNotNan();
  if (failures) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("soak_stats_test: all checks passed\n");
  return 0;
}
