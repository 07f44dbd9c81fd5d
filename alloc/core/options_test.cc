// The HAKMEM_* parser: accepted values, rejected values, ranges.
#include "alloc/core/options.h"

#include "gtest/gtest.h"

namespace {

TEST(Options, AcceptsDocumentedValues) {
  EXPECT_EQ(hk_option_parse("HAKMEM_DECOMMIT", "dontneed"), 0);
  EXPECT_EQ(hk_options.params.decommit_mode, HK_DECOMMIT_DONTNEED);
  EXPECT_EQ(hk_option_parse("HAKMEM_DECOMMIT", "free"), 0);
  EXPECT_EQ(hk_options.params.decommit_mode, HK_DECOMMIT_FREE);
  EXPECT_EQ(hk_option_parse("HAKMEM_RELEASE_DELAY_MS", "250"), 0);
  EXPECT_EQ(hk_options.params.release_delay_ms, 250u);
  EXPECT_EQ(hk_option_parse("HAKMEM_CACHE_MB", "0"), 0);
  EXPECT_EQ(hk_options.params.cache_mb, 0u);
  EXPECT_EQ(hk_option_parse("HAKMEM_STATS", "1"), 0);
  EXPECT_TRUE(hk_options.stats_at_exit);
  EXPECT_EQ(hk_option_parse("HAKMEM_STATS", "0"), 0);
}

TEST(Options, RejectsBadValuesAndKeepsThePreviousOne) {
  ASSERT_EQ(hk_option_parse("HAKMEM_RELEASE_DELAY_MS", "100"), 0);
  for (const char* bad : {"", "-1", "1e3", "12ms", " 5", "3600001", "99999999999999999999999"}) {
    EXPECT_EQ(hk_option_parse("HAKMEM_RELEASE_DELAY_MS", bad), -1) << bad;
    EXPECT_EQ(hk_options.params.release_delay_ms, 100u) << bad;
  }
  EXPECT_EQ(hk_option_parse("HAKMEM_DECOMMIT", "FREE"), -1);
  EXPECT_EQ(hk_option_parse("HAKMEM_STATS", "yes"), -1);
  EXPECT_EQ(hk_option_parse("HAKMEM_NO_SUCH_THING", "1"), -1);
}

}  // namespace
