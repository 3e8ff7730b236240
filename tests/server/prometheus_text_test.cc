// Unit tests of the Prometheus text exposition (server/prometheus_text.h).
#include "server/prometheus_text.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace polycrud::server {
namespace {

TEST(PrometheusTextTest, RendersEveryProtocolWithCumulativeBuckets) {
  Metrics metrics;
  using std::chrono::microseconds;
  metrics.Record(Protocol::kThrift, Operation::kGetUser, StatusCode::kOk, microseconds(80));
  metrics.Record(Protocol::kThrift, Operation::kGetUser, StatusCode::kNotFound, microseconds(700));
  metrics.Record(Protocol::kGrpc, Operation::kPing, StatusCode::kOk, std::chrono::seconds(9));
  CacheStats cache;
  cache.hits = 5;
  cache.refused_stale_fills = 2;
  const std::string text = RenderPrometheusText(metrics, cache, CircuitBreaker::State::kOpen,
                                                PoolUsage{.mysql_open = 3,
                                                          .mysql_in_use = 1,
                                                          .mysql_size = 16,
                                                          .redis_in_use = 2,
                                                          .redis_size = 8});
  auto has = [&](const std::string& line) {
    return text.find("\n" + line + "\n") != std::string::npos;
  };
  const std::string thrift_get = R"(protocol="thrift",operation="get_user")";
  EXPECT_TRUE(has("# TYPE polycrud_requests_total counter"));
  EXPECT_TRUE(has("polycrud_requests_total{" + thrift_get + "} 2"));
  EXPECT_TRUE(has(R"(polycrud_requests_total{protocol="soap",operation="list_users"} 0)"));
  EXPECT_TRUE(has(R"(polycrud_requests_total{protocol="rest",operation="ping"} 0)"));
  EXPECT_TRUE(has("polycrud_errors_total{" + thrift_get + R"(,code="NOT_FOUND"} 1)"));
  EXPECT_EQ(text.find(R"(code="OK")"), std::string::npos);
  EXPECT_TRUE(has("# TYPE polycrud_request_duration_seconds histogram"));
  EXPECT_TRUE(has("polycrud_request_duration_seconds_bucket{" + thrift_get + R"(,le="5e-05"} 0)"));
  EXPECT_TRUE(has("polycrud_request_duration_seconds_bucket{" + thrift_get + R"(,le="0.0001"} 1)"));
  EXPECT_TRUE(has("polycrud_request_duration_seconds_bucket{" + thrift_get + R"(,le="0.001"} 2)"));
  EXPECT_TRUE(has("polycrud_request_duration_seconds_bucket{" + thrift_get + R"(,le="+Inf"} 2)"));
  EXPECT_TRUE(has("polycrud_request_duration_seconds_sum{" + thrift_get + "} 0.00078"));
  EXPECT_TRUE(has("polycrud_request_duration_seconds_count{" + thrift_get + "} 2"));
  EXPECT_TRUE(has(
      R"(polycrud_request_duration_seconds_bucket{protocol="grpc",operation="ping",le="5"} 0)"));
  EXPECT_TRUE(has(
      R"(polycrud_request_duration_seconds_bucket{protocol="grpc",operation="ping",le="+Inf"} 1)"));
  EXPECT_TRUE(has("polycrud_cache_hits_total 5"));
  EXPECT_TRUE(has("polycrud_cache_refused_stale_fills_total 2"));
  EXPECT_TRUE(has("polycrud_cache_misses_total 0"));
  EXPECT_TRUE(has("polycrud_cache_breaker_state 1"));
  EXPECT_TRUE(has("polycrud_mysql_pool_open_connections 3"));
  EXPECT_TRUE(has("polycrud_mysql_pool_in_use_connections 1"));
  EXPECT_TRUE(has("polycrud_mysql_pool_size 16"));
  EXPECT_TRUE(has("polycrud_redis_pool_in_use_connections 2"));
  EXPECT_TRUE(has("polycrud_redis_pool_size 8"));
  EXPECT_EQ(text.back(), '\n');
}

}  // namespace
}  // namespace polycrud::server
