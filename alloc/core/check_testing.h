/* The few macros the core's C unit tests share (tests of modules whose
 * headers C++ cannot include). A test is a function; main runs each with
 * HK_RUN and returns non-zero when any HK_EXPECT failed, naming the test,
 * the condition and what it means. */
#ifndef HAKMEM_CORE_CHECK_TESTING_H
#define HAKMEM_CORE_CHECK_TESTING_H

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

#endif
