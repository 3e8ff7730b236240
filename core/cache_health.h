// CacheHealth: what the process knows of its cache's health, shared by every
// path that talks to the cache (reads, writes' cache updates, repairs): the
// circuit breaker around it, the limit on reads that bypass it, and the cache
// protocol's counters. One per process, however many UserService objects
// (runtimes) share it. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>

#include "core/event_log.h"
#include "core/ports.h"
#include "core/resilience.h"
#include "core/status.h"

namespace polycrud {

// Counters of the cache protocol, readable at any time.
struct CacheStats {
  std::atomic<std::uint64_t> hits{0};
  std::atomic<std::uint64_t> negative_hits{0};
  std::atomic<std::uint64_t> misses{0};
  // Of misses: reads that found a write of the id in flight (rule 10).
  std::atomic<std::uint64_t> intent_misses{0};
  std::atomic<std::uint64_t> fills{0};
  std::atomic<std::uint64_t> refused_stale_fills{0};
  std::atomic<std::uint64_t> coalesced_misses{0};
  std::atomic<std::uint64_t> errors{0};
  // Of errors: the cache answered but refused (kResourceExhausted: Redis is
  // full, or a local queue or pool is): no step toward opening the breaker.
  std::atomic<std::uint64_t> refusals{0};
  std::atomic<std::uint64_t> bypassed_reads{0};
  std::atomic<std::uint64_t> overload_rejections{0};
  std::atomic<std::uint64_t> repairs{0};
  std::atomic<std::uint64_t> repairs_dropped{0};  // pending set full: heals by TTL
};

class CacheHealth {
 public:
  // The breaker opens after `failure_threshold` consecutive failures and
  // stays open `open_ms` (read from `clock`) before one probe; at most
  // `fallback_read_concurrency` reads bypass the cache at once.
  // Degraded modes are reported to `events` (null: nowhere), which must
  // outlive this object.
  CacheHealth(const Clock& clock, int failure_threshold, std::int64_t open_ms,
              int fallback_read_concurrency, EventLog* events = nullptr)
      : breaker_(clock, failure_threshold, open_ms),
        fallback_limit_(fallback_read_concurrency),
        events_(events != nullptr ? *events : null_events_) {}

  // True if the cache may be used now (the breaker is closed, or this call
  // is its half-open probe).
  bool Allow() { return breaker_.Allow(); }
  // A cache call answered.
  void Succeeded();
  // A cache call of request `request_id` failed: counted, reported, and one
  // step toward opening the breaker unless the cache only refused
  // (kResourceExhausted: it is up, but full or busy).
  void Failed(const Status& status, std::string_view request_id = {});
  // Succeeded() or Failed(status, request_id), as the cache call answered;
  // returns status.ok().
  bool Record(const Status& status, std::string_view request_id = {}) {
    if (!status.ok()) {
      Failed(status, request_id);
      return false;
    }
    Succeeded();
    return true;
  }
  // Reports `event` of request `request_id` (empty: background work).
  void Report(Event event, std::string_view request_id, std::string_view message) {
    events_.Record(event, request_id, message);
  }

  CacheStats& stats() { return stats_; }
  const CacheStats& stats() const { return stats_; }
  CircuitBreaker::State breaker_state() const { return breaker_.state(); }
  // The limit on reads that go to the store while the cache is unusable.
  ConcurrencyLimiter& fallback_limit() { return fallback_limit_; }

  // Adds one to `counter` (relaxed: counters need no ordering).
  static void Count(std::atomic<std::uint64_t>& counter, std::uint64_t n = 1) {
    counter.fetch_add(n, std::memory_order_relaxed);
  }

 private:
  CircuitBreaker breaker_;
  ConcurrencyLimiter fallback_limit_;
  CacheStats stats_;
  NullEventLog null_events_;
  EventLog& events_;
};

}  // namespace polycrud
