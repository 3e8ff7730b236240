// ThriftStatusHandler: the status service of idl/status.thrift (in the style
// of fb303), served beside UserService on the Thrift port (ThriftProcessor).
// Its status rests on the core's own state: STARTING until every face
// listens, STOPPING while draining or shutting down, WARNING while MariaDB
// or Redis cannot be reached, ALIVE otherwise. Its counters are the samples
// of the process's /metrics text. Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "StatusService.h"
#include "core/user_service.h"

namespace polycrud::thrift_adapter {

namespace gen = ::polycrud::thrift;

// What the status service reports beyond the UserService's own state.
struct StatusSource {
  std::string name = "polycrud-server";
  std::string version;
  std::int64_t alive_since_s = 0;  // seconds since the Unix epoch
  // Whether every face of the process listens (empty: it does).
  std::function<bool()> started;
  // The Prometheus text of the process (empty: no counters).
  std::function<std::string()> metrics_text;
};

// The samples of a Prometheus text exposition, keyed by name and labels as
// written ('name{label="v"}'), each value rounded to an integer; comments,
// and values that are not finite numbers, are left out.
std::map<std::string, std::int64_t> PrometheusSamples(const std::string& text);

class ThriftStatusHandler final : public gen::StatusServiceIf {
 public:
  ThriftStatusHandler(UserService& service, StatusSource source)
      : service_(service), source_(std::move(source)) {}

  // gen::StatusServiceIf:
  void getName(std::string& out) override { out = source_.name; }
  void getVersion(std::string& out) override { out = source_.version; }
  gen::ServiceStatus::type getStatus() override;
  void getStatusDetails(std::string& out) override;
  std::int64_t aliveSince() override { return source_.alive_since_s; }
  void getCounters(std::map<std::string, std::int64_t>& out) override;
  std::int64_t getCounter(const std::string& key) override;

 private:
  struct State {
    gen::ServiceStatus::type status;
    std::string details;
  };
  // Asks MariaDB and Redis (a round trip each) unless starting or stopping.
  State Current();

  UserService& service_;
  const StatusSource source_;
};

}  // namespace polycrud::thrift_adapter
