// RestOpsPages: the REST face's operational pages: GET /healthz (liveness),
// GET /readyz (MySQL and Redis reachable, not draining), GET /readyz/serving
// (for load balancers: MySQL or Redis reachable, not draining), GET /metrics (the Prometheus text
// of every protocol of the process, rendered by the server's wiring) and GET /openapi.json (the
// embedded API document). None needs a token. Thread-safe.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>

#include "adapters/rest/rest_router.h"
#include "core/user_service.h"

namespace polycrud::rest_adapter {

inline constexpr std::string_view kPrometheusContentType =
    "text/plain; version=0.0.4; charset=utf-8";

class RestOpsPages {
 public:
  // `metrics_text` returns the Prometheus text exposition (version 0.0.4) of
  // the process; empty: GET /metrics answers an empty exposition.
  RestOpsPages(UserService& service, std::function<std::string()> metrics_text)
      : service_(service), metrics_text_(std::move(metrics_text)) {}

  // Adds the four pages to `router`; this object must outlive it.
  void Register(RestRouter& router);

 private:
  // /readyz (both stores reachable) or /readyz/serving (`either_store`);
  // never ready while draining.
  HttpResponse Readiness(bool either_store);

  UserService& service_;
  std::function<std::string()> metrics_text_;
};

}  // namespace polycrud::rest_adapter
