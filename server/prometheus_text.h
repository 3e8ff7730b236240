// Renders polycrud's metrics in the Prometheus text exposition format
// (version 0.0.4): request/error counters and latency histograms of every
// protocol (core/metrics.h), the cache protocol's counters
// (UserService::cache_stats()), connection-pool gauges and the change
// events (relay, backlog, propagation to this server). Pure function of
// its inputs, so it is testable without a server.
#pragma once

#include <cstdint>
#include <string>

#include "core/metrics.h"
#include "core/resilience.h"
#include "core/user_service.h"
#include "server/change_event_usage.h"

namespace polycrud::server {

// Connection-pool usage at one instant.
struct PoolUsage {
  std::int64_t mysql_open = 0;
  std::int64_t mysql_in_use = 0;
  std::int64_t mysql_size = 0;
  std::int64_t redis_in_use = 0;
  std::int64_t redis_size = 0;
};

// The whole exposition, with the change events when `events` is not null.
// Reads the atomics relaxed: each value is exact, the set is not one atomic
// snapshot. Thread-safe.
std::string RenderPrometheusText(const Metrics& metrics, const CacheStats& cache,
                                 CircuitBreaker::State cache_breaker, const PoolUsage& pools,
                                 const ChangeEventUsage* events = nullptr);

}  // namespace polycrud::server
