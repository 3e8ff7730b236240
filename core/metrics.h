// Metrics: request counters, error counters by core code and latency
// histograms, per protocol and per operation, shared by every face of one
// server process. Recording is lock-free (relaxed atomics); a Snapshot can be
// taken at any time. Rendering (e.g. Prometheus text) is the adapters' job.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/status.h"

namespace polycrud {

enum class Protocol : std::uint8_t { kThrift, kGrpc, kSoap, kRest };
inline constexpr std::size_t kProtocolCount = 4;

enum class Operation : std::uint8_t {
  kPing,
  kCreateUser,
  kGetUser,
  kBatchGetUsers,
  kUpdateUser,
  kDeleteUser,
  kListUsers,
  kSearchUsers,
};
inline constexpr std::size_t kOperationCount = 8;
inline constexpr std::size_t kStatusCodeCount = 9;  // StatusCode::kOk .. kInternal

// Lower-case names used as label values: "thrift", "get_user", ...
std::string_view ProtocolName(Protocol protocol);
std::string_view OperationName(Operation operation);

// Upper bounds (seconds) of the latency buckets; the last bucket is +Inf.
inline constexpr std::array<double, 16> kLatencyBucketsSeconds = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025,   0.05,   0.1,     0.25,   0.5,   1.0,    2.5,   5.0};

class Metrics {
 public:
  struct Series {
    std::atomic<std::uint64_t> requests{0};
    std::array<std::atomic<std::uint64_t>, kStatusCodeCount> by_code{};
    // Non-cumulative counts per bucket; index kLatencyBucketsSeconds.size() is +Inf.
    std::array<std::atomic<std::uint64_t>, kLatencyBucketsSeconds.size() + 1> buckets{};
    std::atomic<std::uint64_t> latency_sum_ns{0};
  };

  // Records one finished call. Thread-safe.
  void Record(Protocol protocol, Operation operation, StatusCode code,
              std::chrono::nanoseconds latency);

  const Series& series(Protocol protocol, Operation operation) const {
    return series_[static_cast<std::size_t>(protocol)][static_cast<std::size_t>(operation)];
  }

 private:
  std::array<std::array<Series, kOperationCount>, kProtocolCount> series_{};
};

// Times one call from construction to Done() (or destruction, as INTERNAL if
// Done was never called, e.g. when an exception escaped).
class ScopedCall {
 public:
  ScopedCall(Metrics& metrics, Protocol protocol, Operation operation)
      : metrics_(metrics),
        protocol_(protocol),
        operation_(operation),
        start_(std::chrono::steady_clock::now()) {}
  ~ScopedCall() {
    if (!done_) Done(StatusCode::kInternal);
  }
  ScopedCall(const ScopedCall&) = delete;
  ScopedCall& operator=(const ScopedCall&) = delete;

  void Done(StatusCode code) {
    if (done_) return;
    done_ = true;
    metrics_.Record(protocol_, operation_, code, std::chrono::steady_clock::now() - start_);
  }

 private:
  Metrics& metrics_;
  const Protocol protocol_;
  const Operation operation_;
  const std::chrono::steady_clock::time_point start_;
  bool done_ = false;
};

}  // namespace polycrud
