#include "adapters/thrift/thrift_status_handler.h"

#include <cmath>
#include <cstdlib>
#include <sstream>
#include <string>

namespace polycrud::thrift_adapter {

std::map<std::string, std::int64_t> PrometheusSamples(const std::string& text) {
  std::map<std::string, std::int64_t> samples;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] == '#') continue;
    // The value follows the last space (label values may hold spaces, the
    // value never does); no sample of ours carries a timestamp.
    const std::size_t space = line.rfind(' ');
    if (space == std::string::npos || space == 0) continue;
    const std::string value = line.substr(space + 1);
    char* end = nullptr;
    const double number = std::strtod(value.c_str(), &end);
    if (end == value.c_str() || *end != '\0' || !std::isfinite(number)) continue;
    samples[line.substr(0, space)] = std::llround(number);
  }
  return samples;
}

ThriftStatusHandler::State ThriftStatusHandler::Current() {
  if (source_.started && !source_.started()) return {gen::ServiceStatus::STARTING, "starting"};
  if (service_.shutting_down()) return {gen::ServiceStatus::STOPPING, "shutting down"};
  if (service_.draining()) return {gen::ServiceStatus::STOPPING, "draining"};
  const bool mysql = service_.StoreReachable();
  const bool redis = service_.CacheReachable();
  std::string details =
      std::string("mysql ") + (mysql ? "up" : "down") + ", redis " + (redis ? "up" : "down");
  return {mysql && redis ? gen::ServiceStatus::ALIVE : gen::ServiceStatus::WARNING,
          std::move(details)};
}

gen::ServiceStatus::type ThriftStatusHandler::getStatus() { return Current().status; }

void ThriftStatusHandler::getStatusDetails(std::string& out) { out = Current().details; }

void ThriftStatusHandler::getCounters(std::map<std::string, std::int64_t>& out) {
  out = source_.metrics_text ? PrometheusSamples(source_.metrics_text())
                             : std::map<std::string, std::int64_t>{};
}

std::int64_t ThriftStatusHandler::getCounter(const std::string& key) {
  std::map<std::string, std::int64_t> counters;
  getCounters(counters);
  auto it = counters.find(key);
  return it == counters.end() ? 0 : it->second;
}

}  // namespace polycrud::thrift_adapter
