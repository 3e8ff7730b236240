#include "server/prometheus_text.h"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <utility>

namespace polycrud::server {
namespace {

constexpr std::array<Protocol, kProtocolCount> kProtocols = {Protocol::kThrift, Protocol::kGrpc,
                                                             Protocol::kSoap, Protocol::kRest};
constexpr std::array<Operation, kOperationCount> kOperations = {
    Operation::kPing,          Operation::kCreateUser, Operation::kGetUser,
    Operation::kBatchGetUsers, Operation::kUpdateUser, Operation::kDeleteUser,
    Operation::kListUsers,     Operation::kSearchUsers};

// Shortest text that reads back as the same double (Prometheus float syntax).
std::string Number(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.17g", value);
  // Prefer the short form when it round-trips (0.00025 rather than 0.00025000000000000001).
  for (int precision = 1; precision < 17; ++precision) {
    char shorter[32];
    std::snprintf(shorter, sizeof(shorter), "%.*g", precision, value);
    if (std::strtod(shorter, nullptr) == value) return shorter;
  }
  return buffer;
}

void Header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

void Sample(std::string& out, std::string_view name, std::string_view labels,
            const std::string& value) {
  out.append(name);
  if (!labels.empty()) out.append("{").append(labels).append("}");
  out.append(" ").append(value).append("\n");
}

std::string Labels(Protocol protocol, Operation operation) {
  return "protocol=\"" + std::string(ProtocolName(protocol)) + "\",operation=\"" +
         std::string(OperationName(operation)) + "\"";
}

void AppendChangeEvents(std::string& out, const ChangeEventUsage& events) {
  const std::pair<const char*, std::uint64_t> counters[] = {
      {"polycrud_events_published_total", events.published},
      {"polycrud_events_relay_failures_total", events.relay_failures},
      {"polycrud_events_pruned_total", events.pruned},
      {"polycrud_events_received_total", events.received},
      {"polycrud_events_invalidations_total", events.invalidations},
      {"polycrud_events_malformed_total", events.malformed},
  };
  for (const auto& [name, value] : counters) {
    Header(out, name, "counter", "Change events (docs/events.md).");
    Sample(out, name, "", std::to_string(value));
  }
  const std::pair<const char*, std::int64_t> gauges[] = {
      {"polycrud_events_relay_active", events.relay_active ? 1 : 0},
      {"polycrud_events_subscribed", events.subscribed ? 1 : 0},
      {"polycrud_events_backlog", events.backlog_events},
      {"polycrud_events_backlog_oldest_age_ms", events.backlog_oldest_age_ms},
  };
  for (const auto& [name, value] : gauges) {
    Header(out, name, "gauge", "Change events (docs/events.md); backlog -1: unknown.");
    Sample(out, name, "", std::to_string(value));
  }
  Header(out, "polycrud_events_propagation_seconds", "histogram",
         "From a change's commit to this server's near-cache invalidation.");
  std::uint64_t cumulative = 0;
  for (std::size_t b = 0; b < events.propagation.size(); ++b) {
    cumulative += events.propagation[b];
    const std::string le =
        b < kPropagationBucketsSeconds.size() ? Number(kPropagationBucketsSeconds[b]) : "+Inf";
    Sample(out, "polycrud_events_propagation_seconds_bucket", "le=\"" + le + "\"",
           std::to_string(cumulative));
  }
  Sample(out, "polycrud_events_propagation_seconds_sum", "", Number(events.propagation_sum_s));
  Sample(out, "polycrud_events_propagation_seconds_count", "", std::to_string(cumulative));
}

}  // namespace

std::string RenderPrometheusText(const Metrics& metrics, const CacheStats& cache,
                                 CircuitBreaker::State cache_breaker, const PoolUsage& pools,
                                 const ChangeEventUsage* events) {
  std::string out;
  out.reserve(64 * 1024);
  constexpr auto kRelaxed = std::memory_order_relaxed;

  Header(out, "polycrud_requests_total", "counter", "Calls finished, by protocol and operation.");
  for (Protocol p : kProtocols) {
    for (Operation o : kOperations) {
      Sample(out, "polycrud_requests_total", Labels(p, o),
             std::to_string(metrics.series(p, o).requests.load(kRelaxed)));
    }
  }

  Header(out, "polycrud_errors_total", "counter",
         "Calls that failed, by protocol, operation and core error code.");
  for (Protocol p : kProtocols) {
    for (Operation o : kOperations) {
      const Metrics::Series& series = metrics.series(p, o);
      for (std::size_t c = 1; c < kStatusCodeCount; ++c) {
        const std::uint64_t count = series.by_code[c].load(kRelaxed);
        if (count == 0) continue;
        Sample(out, "polycrud_errors_total",
               Labels(p, o) + ",code=\"" + std::string(StatusCodeName(static_cast<StatusCode>(c))) +
                   "\"",
               std::to_string(count));
      }
    }
  }

  Header(out, "polycrud_request_duration_seconds", "histogram",
         "Call latency inside the server, by protocol and operation.");
  for (Protocol p : kProtocols) {
    for (Operation o : kOperations) {
      const Metrics::Series& series = metrics.series(p, o);
      const std::string labels = Labels(p, o);
      std::uint64_t cumulative = 0;
      for (std::size_t b = 0; b < series.buckets.size(); ++b) {
        cumulative += series.buckets[b].load(kRelaxed);
        const std::string le =
            b < kLatencyBucketsSeconds.size() ? Number(kLatencyBucketsSeconds[b]) : "+Inf";
        Sample(out, "polycrud_request_duration_seconds_bucket", labels + ",le=\"" + le + "\"",
               std::to_string(cumulative));
      }
      const double sum_s = static_cast<double>(series.latency_sum_ns.load(kRelaxed)) / 1e9;
      Sample(out, "polycrud_request_duration_seconds_sum", labels, Number(sum_s));
      Sample(out, "polycrud_request_duration_seconds_count", labels, std::to_string(cumulative));
    }
  }

  const std::pair<const char*, const std::atomic<std::uint64_t>*> cache_counters[] = {
      {"hits", &cache.hits},
      {"negative_hits", &cache.negative_hits},
      {"misses", &cache.misses},
      {"intent_misses", &cache.intent_misses},
      {"fills", &cache.fills},
      {"refused_stale_fills", &cache.refused_stale_fills},
      {"coalesced_misses", &cache.coalesced_misses},
      {"errors", &cache.errors},
      {"refusals", &cache.refusals},
      {"bypassed_reads", &cache.bypassed_reads},
      {"overload_rejections", &cache.overload_rejections},
      {"repairs", &cache.repairs},
      {"repairs_dropped", &cache.repairs_dropped},
  };
  for (const auto& [name, counter] : cache_counters) {
    const std::string metric = std::string("polycrud_cache_") + name + "_total";
    Header(out, metric, "counter", std::string("Cache protocol: ") + name + ".");
    Sample(out, metric, "", std::to_string(counter->load(kRelaxed)));
  }
  Header(out, "polycrud_cache_breaker_state", "gauge",
         "Breaker around Redis: 0 closed, 1 open, 2 half-open.");
  Sample(out, "polycrud_cache_breaker_state", "",
         std::to_string(static_cast<int>(cache_breaker == CircuitBreaker::State::kClosed ? 0
                                         : cache_breaker == CircuitBreaker::State::kOpen ? 1
                                                                                         : 2)));

  const std::pair<const char*, std::int64_t> gauges[] = {
      {"polycrud_mysql_pool_open_connections", pools.mysql_open},
      {"polycrud_mysql_pool_in_use_connections", pools.mysql_in_use},
      {"polycrud_mysql_pool_size", pools.mysql_size},
      {"polycrud_redis_pool_in_use_connections", pools.redis_in_use},
      {"polycrud_redis_pool_size", pools.redis_size},
  };
  for (const auto& [name, value] : gauges) {
    Header(out, name, "gauge", "Connection pool usage.");
    Sample(out, name, "", std::to_string(value));
  }
  if (events != nullptr) AppendChangeEvents(out, *events);
  return out;
}

}  // namespace polycrud::server
