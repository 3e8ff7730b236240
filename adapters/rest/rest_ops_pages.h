// RestOpsPages: the REST face's operational pages: GET /healthz (liveness),
// GET /readyz (MySQL and Redis reachable), GET /metrics (Prometheus text for
// every protocol of the process) and GET /openapi.json (the embedded API
// document). None needs a token. Thread-safe.
#pragma once

#include <functional>

#include "adapters/rest/prometheus_text.h"
#include "adapters/rest/rest_router.h"
#include "core/metrics.h"
#include "core/user_service.h"

namespace polycrud::rest_adapter {

class RestOpsPages {
 public:
  RestOpsPages(UserService& service, const Metrics& metrics, std::function<PoolGauges()> pools)
      : service_(service), metrics_(metrics), pools_(std::move(pools)) {}

  // Adds the four pages to `router`; this object must outlive it.
  void Register(RestRouter& router);

 private:
  UserService& service_;
  const Metrics& metrics_;
  std::function<PoolGauges()> pools_;
};

}  // namespace polycrud::rest_adapter
