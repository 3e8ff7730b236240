// SpdlogEventLog: the core's EventLog written to the server's log, one line
// per event: "<event> [<request id>] <message>" at warning level (info for
// the breaker closing and repairs done). polycrud-server puts a
// RateLimitedEventLog in front of it. Thread-safe.
#pragma once

#include <string_view>

#include "core/event_log.h"

namespace polycrud::server {

class SpdlogEventLog final : public EventLog {
 public:
  void Record(Event event, std::string_view request_id, std::string_view message) override;
};

}  // namespace polycrud::server
