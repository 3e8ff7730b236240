// EventLog: the port through which the core reports its degraded modes (the
// cache failing, the breaker opening and closing, reads refused for
// overload, repairs), each with the request id of the call that met it
// (empty for background work). polycrud-server writes them to its log
// (server/spdlog_event_log.h); tests record them.
//
// RateLimitedEventLog sits in front of another log so that an outage does
// not flood it: per kind of event at most `per_second` lines a second
// (clock-injected); the next line that passes says how many of its kind were
// left out. Thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <string_view>

#include "core/ports.h"

namespace polycrud {

enum class Event : std::uint8_t {
  kCacheFailed,    // a cache call failed (the read falls back to the store)
  kBreakerOpened,  // the cache breaker opened: reads bypass the cache
  kBreakerClosed,  // it closed again
  kOverloaded,     // a read bypassing the cache was refused (fallback limit)
  kRepairPending,  // a write's cache update failed: the id waits for repair
  kRepaired,       // entries repaired from the store
  kRepairDropped,  // too many ids pending: one heals by TTL only
  kRelayActive,    // this server's outbox relay took the lease: it publishes
  kRelayStandby,   // it lost or gave up the lease
  kEventsFailed,   // publishing change events (or consuming them) failed
  kEventsFlowing,  // they flow again
};
inline constexpr std::size_t kEventKinds = 11;

// Lower-case name of `event` ("cache_failed", ...).
std::string_view EventName(Event event);

class EventLog {
 public:
  virtual ~EventLog() = default;
  // `message` says what happened; it may hold internal detail (the log is
  // the operator's, never a client's). Thread-safe.
  virtual void Record(Event event, std::string_view request_id, std::string_view message) = 0;
};

// Drops every event.
class NullEventLog final : public EventLog {
 public:
  void Record(Event, std::string_view, std::string_view) override {}
};

class RateLimitedEventLog final : public EventLog {
 public:
  // `inner` and `clock` must outlive this object.
  RateLimitedEventLog(EventLog& inner, const Clock& clock, int per_second = 5)
      : inner_(inner), clock_(clock), per_second_(per_second) {}

  void Record(Event event, std::string_view request_id, std::string_view message) override;

 private:
  struct Window {
    std::int64_t start_ms = -1;
    int recorded = 0;
    std::uint64_t suppressed = 0;  // since the last line of this kind
  };

  EventLog& inner_;
  const Clock& clock_;
  const int per_second_;
  std::mutex mu_;
  std::array<Window, kEventKinds> windows_;  // guarded by mu_
};

}  // namespace polycrud
