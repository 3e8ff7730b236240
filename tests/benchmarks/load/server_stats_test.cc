#include "benchmarks/load/server_stats.h"

#include <gtest/gtest.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>

namespace polycrud::bench {
namespace {

TEST(ServerStatsTest, ParsesCpuTicksEvenWithSpacesAndParenthesesInTheName) {
  // Fields 14 and 15 (utime, stime) are 1234 and 56.
  const char* stat =
      "4242 (polycrud (x) srv) S 1 4242 4242 0 -1 4194560 500 0 0 0 1234 56 0 0 20 0 9 0 "
      "100 200000 300 18446744073709551615\n";
  EXPECT_EQ(ParseStatCpuTicks(stat), 1290u);
  EXPECT_FALSE(ParseStatCpuTicks("4242 (cut) S 1 2 3").has_value());
  EXPECT_FALSE(ParseStatCpuTicks("no parenthesis").has_value());
}

TEST(ServerStatsTest, ReadsTheCpuTimeOfALiveProcess) {
  const auto before = ProcessCpuSeconds(getpid());
  ASSERT_TRUE(before.has_value());
  // Burn 100 ms of this process's CPU (the /proc clock has 10 ms ticks).
  const auto cpu_ns = [] {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
  };
  const std::int64_t end = cpu_ns() + 100'000'000;
  volatile std::uint64_t x = 0;
  while (cpu_ns() < end) x = x + 1;
  const auto after = ProcessCpuSeconds(getpid());
  ASSERT_TRUE(after.has_value());
  EXPECT_GE(*after - *before, 0.05);
  EXPECT_FALSE(ProcessCpuSeconds(0x7ffffff0).has_value());
}

TEST(ServerStatsTest, ParsesThePrometheusCacheCounters) {
  const char* text =
      "# HELP polycrud_cache_hits_total Cache protocol: hits.\n"
      "# TYPE polycrud_cache_hits_total counter\n"
      "polycrud_cache_hits_total 120\n"
      "polycrud_cache_hits_total_bogus 7\n"
      "polycrud_cache_negative_hits_total 3\n"
      "polycrud_cache_misses_total 30\n"
      "polycrud_requests_total{protocol=\"thrift\",operation=\"getUser\"} 99\n";
  const auto counters = ParsePrometheusCache(text);
  ASSERT_TRUE(counters.has_value());
  EXPECT_EQ(counters->hits, 123u);  // hits + negative hits
  EXPECT_EQ(counters->negative_hits, 3u);
  EXPECT_EQ(counters->misses, 30u);
  EXPECT_FALSE(ParsePrometheusCache("polycrud_cache_hits_total 1\n").has_value());
}

TEST(ServerStatsTest, ParsesRedisInfo) {
  const char* text =
      "# Stats\r\ntotal_connections_received:5\r\nkeyspace_hits:4000\r\nkeyspace_misses:12\r\n";
  const auto counters = ParseRedisInfo(text);
  ASSERT_TRUE(counters.has_value());
  EXPECT_EQ(counters->hits, 4000u);
  EXPECT_EQ(counters->misses, 12u);
  EXPECT_FALSE(ParseRedisInfo("keyspace_hits:1\r\n").has_value());
}

TEST(ServerStatsTest, SplitsHttpUrls) {
  const auto url = ParseHttpUrl("http://127.0.0.1:8081/metrics");
  ASSERT_TRUE(url.has_value());
  EXPECT_EQ(url->host, "127.0.0.1");
  EXPECT_EQ(url->port, 8081);
  EXPECT_EQ(url->target, "/metrics");
  const auto bare = ParseHttpUrl("http://example.org");
  ASSERT_TRUE(bare.has_value());
  EXPECT_EQ(bare->port, 80);
  EXPECT_EQ(bare->target, "/");
  for (const char* bad : {"https://x/metrics", "127.0.0.1:8081/metrics", "http://:80/",
                          "http://h:0/", "http://h:99999/", "http://h:x/"}) {
    EXPECT_FALSE(ParseHttpUrl(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace polycrud::bench
