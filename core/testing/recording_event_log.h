// RecordingEventLog: an EventLog that keeps every event, for tests.
#pragma once

#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/event_log.h"

namespace polycrud::testing {

class RecordingEventLog final : public EventLog {
 public:
  struct Entry {
    Event event;
    std::string request_id;
    std::string message;
  };

  void Record(Event event, std::string_view request_id, std::string_view message) override {
    const std::lock_guard lock(mu_);
    entries_.push_back({event, std::string(request_id), std::string(message)});
  }

  std::vector<Entry> entries() const {
    const std::lock_guard lock(mu_);
    return entries_;
  }
  // The entries of one kind.
  std::vector<Entry> Of(Event event) const {
    std::vector<Entry> out;
    for (Entry& entry : entries()) {
      if (entry.event == event) out.push_back(std::move(entry));
    }
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::vector<Entry> entries_;
};

}  // namespace polycrud::testing
