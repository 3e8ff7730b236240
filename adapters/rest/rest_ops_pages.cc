#include "adapters/rest/rest_ops_pages.h"

#include <nlohmann/json.hpp>
#include <string>

#include "adapters/rest/problem.h"
#include "openapi/openapi_json.h"

namespace polycrud::rest_adapter {

HttpResponse RestOpsPages::Readiness(bool either_store) {
  const bool draining = service_.draining();
  const bool mysql = service_.StoreReachable();
  const bool redis = service_.CacheReachable();
  const bool ready = !draining && (either_store ? mysql || redis : mysql && redis);
  return JsonResponse(ready ? http::status::ok : http::status::service_unavailable,
                      {{"status", draining ? "draining"
                                  : ready  ? "ok"
                                           : "unavailable"},
                       {"mysql", mysql ? "up" : "down"},
                       {"redis", redis ? "up" : "down"}});
}

void RestOpsPages::Register(RestRouter& router) {
  router.Add(http::verb::get, "/healthz", [](const HttpRequest&, const RouteArgs&) {
    return JsonResponse(http::status::ok, {{"status", "ok"}});
  });
  router.Add(http::verb::get, "/readyz", [this](const HttpRequest&, const RouteArgs&) {
    return Readiness(/*either_store=*/false);
  });
  // For load balancers: every server shares MySQL and Redis, so taking all
  // of them out because the cache is down would turn a degraded service
  // into none. 200 while this server answers calls at all (either
  // dependency up, not draining), as gRPC's health service reports.
  router.Add(http::verb::get, "/readyz/serving", [this](const HttpRequest&, const RouteArgs&) {
    return Readiness(/*either_store=*/true);
  });
  router.Add(http::verb::get, "/metrics", [this](const HttpRequest&, const RouteArgs&) {
    HttpResponse response{http::status::ok, 11};
    response.set(http::field::content_type, std::string(kPrometheusContentType));
    if (metrics_text_) response.body() = metrics_text_();
    return response;
  });
  router.Add(http::verb::get, "/openapi.json", [](const HttpRequest&, const RouteArgs&) {
    HttpResponse response{http::status::ok, 11};
    response.set(http::field::content_type, "application/json");
    response.body() = std::string(openapi::OpenApiJson());
    return response;
  });
}

}  // namespace polycrud::rest_adapter
