/* The few macros the core's C unit tests share (tests of modules whose
 * headers C++ cannot include). A test is a function; main runs each with
 * HK_RUN and returns non-zero when any HK_EXPECT failed, naming the test,
 * the condition and what it means. */
#ifndef HAKMEM_CORE_CHECK_TESTING_H
#define HAKMEM_CORE_CHECK_TESTING_H

#include <pthread.h>
#include <stdio.h>

static int hk_test_failures;
static const char* hk_test_name = "";

#define HK_EXPECT(cond, why)                                                                       \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: %s: expected %s: %s\n", __FILE__, __LINE__, hk_test_name, #cond, why); \
      hk_test_failures++;                                                                          \
    }                                                                                              \
  } while (0)

#define HK_RUN(test)                              \
  do {                                            \
    hk_test_name = #test;                         \
    int before = hk_test_failures;                \
    test();                                       \
    fprintf(stderr, "[%s] %s\n", hk_test_failures == before ? "  OK  " : "FAILED", #test); \
  } while (0)

#define HK_TEST_RESULT() (hk_test_failures == 0 ? 0 : 1)

/* A numbered handshake between a test and the threads it starts: one side
 * waits until the other has set the stage it needs. */
static pthread_mutex_t hk_stage_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hk_stage_cv = PTHREAD_COND_INITIALIZER;
static int hk_stage;

static inline void hk_wait_stage(int s) {
  pthread_mutex_lock(&hk_stage_mu);
  while (hk_stage < s) pthread_cond_wait(&hk_stage_cv, &hk_stage_mu);
  pthread_mutex_unlock(&hk_stage_mu);
}
static inline void hk_set_stage(int s) {
  pthread_mutex_lock(&hk_stage_mu);
  hk_stage = s;
  pthread_cond_broadcast(&hk_stage_cv);
  pthread_mutex_unlock(&hk_stage_mu);
}

#endif
