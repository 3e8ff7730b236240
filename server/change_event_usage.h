// What /metrics shows of the change events (server/change_events.h), as
// plain values, so the Prometheus text is rendered without the drivers.
#pragma once

#include <array>
#include <cstdint>

namespace polycrud::server {

// Upper bounds of the propagation histogram: commit (the event's
// occurred_at_ms) to this server's invalidation.
inline constexpr std::array<double, 18> kPropagationBucketsSeconds = {
    0.0005, 0.001, 0.0015, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01,
    0.015,  0.02,  0.03,   0.05,  0.1,   0.2,   0.5,   1,      5};

// What /metrics shows of the change events at one instant.
struct ChangeEventUsage {
  bool relay_active = false;
  std::uint64_t published = 0;
  std::uint64_t relay_failures = 0;
  std::uint64_t pruned = 0;
  std::int64_t backlog_events = -1;  // -1: unknown (MariaDB unreachable)
  std::int64_t backlog_oldest_age_ms = 0;
  bool subscribed = false;
  std::uint64_t received = 0;
  std::uint64_t invalidations = 0;
  std::uint64_t malformed = 0;
  std::array<std::uint64_t, kPropagationBucketsSeconds.size() + 1> propagation{};  // last: +Inf
  double propagation_sum_s = 0;
};

}  // namespace polycrud::server
