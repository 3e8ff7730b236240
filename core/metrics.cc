#include "core/metrics.h"

#include <algorithm>

namespace polycrud {

std::string_view ProtocolName(Protocol protocol) {
  switch (protocol) {
    case Protocol::kThrift:
      return "thrift";
    case Protocol::kGrpc:
      return "grpc";
    case Protocol::kSoap:
      return "soap";
    case Protocol::kRest:
      return "rest";
  }
  return "unknown";
}

std::string_view OperationName(Operation operation) {
  switch (operation) {
    case Operation::kPing:
      return "ping";
    case Operation::kCreateUser:
      return "create_user";
    case Operation::kGetUser:
      return "get_user";
    case Operation::kBatchGetUsers:
      return "batch_get_users";
    case Operation::kUpdateUser:
      return "update_user";
    case Operation::kDeleteUser:
      return "delete_user";
    case Operation::kListUsers:
      return "list_users";
    case Operation::kSearchUsers:
      return "search_users";
  }
  return "unknown";
}

void Metrics::Record(Protocol protocol, Operation operation, StatusCode code,
                     std::chrono::nanoseconds latency) {
  Series& s = series_[static_cast<std::size_t>(protocol)][static_cast<std::size_t>(operation)];
  s.requests.fetch_add(1, std::memory_order_relaxed);
  s.by_code[static_cast<std::size_t>(code)].fetch_add(1, std::memory_order_relaxed);
  const double seconds = std::chrono::duration<double>(latency).count();
  const auto bucket = static_cast<std::size_t>(
      std::lower_bound(kLatencyBucketsSeconds.begin(), kLatencyBucketsSeconds.end(), seconds) -
      kLatencyBucketsSeconds.begin());
  s.buckets[bucket].fetch_add(1, std::memory_order_relaxed);
  s.latency_sum_ns.fetch_add(static_cast<std::uint64_t>(latency.count()),
                             std::memory_order_relaxed);
}

}  // namespace polycrud
