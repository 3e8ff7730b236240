#include "core/event_log.h"

#include <string>

namespace polycrud {

std::string_view EventName(Event event) {
  switch (event) {
    case Event::kCacheFailed:
      return "cache_failed";
    case Event::kBreakerOpened:
      return "cache_breaker_opened";
    case Event::kBreakerClosed:
      return "cache_breaker_closed";
    case Event::kOverloaded:
      return "overloaded";
    case Event::kRepairPending:
      return "repair_pending";
    case Event::kRepaired:
      return "repaired";
    case Event::kRepairDropped:
      return "repair_dropped";
    case Event::kRelayActive:
      return "relay_active";
    case Event::kRelayStandby:
      return "relay_standby";
    case Event::kEventsFailed:
      return "events_failed";
    case Event::kEventsFlowing:
      return "events_flowing";
  }
  return "unknown";
}

void RateLimitedEventLog::Record(Event event, std::string_view request_id,
                                 std::string_view message) {
  std::uint64_t suppressed = 0;
  {
    const std::lock_guard lock(mu_);
    Window& window = windows_[static_cast<std::size_t>(event)];
    const std::int64_t now = clock_.MonotonicMs();
    if (window.start_ms < 0 || now - window.start_ms >= 1000) {
      window.start_ms = now;
      window.recorded = 0;
    }
    if (window.recorded >= per_second_) {
      ++window.suppressed;
      return;
    }
    ++window.recorded;
    suppressed = window.suppressed;
    window.suppressed = 0;
  }
  if (suppressed == 0) {
    inner_.Record(event, request_id, message);
    return;
  }
  inner_.Record(
      event, request_id,
      std::string(message) + " (" + std::to_string(suppressed) + " more of this kind not logged)");
}

}  // namespace polycrud
