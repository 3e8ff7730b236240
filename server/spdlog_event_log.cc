#include "server/spdlog_event_log.h"

#include <spdlog/spdlog.h>

namespace polycrud::server {

void SpdlogEventLog::Record(Event event, std::string_view request_id, std::string_view message) {
  const bool good_news = event == Event::kBreakerClosed || event == Event::kRepaired ||
                         event == Event::kRelayActive || event == Event::kRelayStandby ||
                         event == Event::kEventsFlowing;
  spdlog::log(good_news ? spdlog::level::info : spdlog::level::warn, "{} [{}] {}", EventName(event),
              request_id.empty() ? "-" : request_id, message);
}

}  // namespace polycrud::server
