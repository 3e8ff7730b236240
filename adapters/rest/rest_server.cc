#include "adapters/rest/rest_server.h"

#include <string>
#include <string_view>
#include <utility>

#include "adapters/rest/problem.h"

namespace polycrud::rest_adapter {
namespace {

http_transport::HttpServerOptions HttpOptions(const RestServerOptions& options) {
  return {.name = "rest",
          .bind_address = options.bind_address,
          .port = options.port,
          .threads = options.threads,
          .max_body_bytes = options.max_body_bytes,
          .max_header_bytes = options.max_header_bytes,
          .idle_timeout_ms = options.idle_timeout_ms,
          .io_timeout_ms = options.io_timeout_ms,
          .connections = options.connections,
          .tls = options.tls};
}

HttpResponse ReadErrorReply(http::status status, std::string_view message) {
  return Problem(status, "INVALID_ARGUMENT", std::string(message));
}

}  // namespace

RestServer::RestServer(UserService& service, Metrics& metrics,
                       std::function<std::string()> metrics_text, RestServerOptions options)
    : user_routes_(service, metrics),
      ops_pages_(service, std::move(metrics_text)),
      http_({.handle =
                 [this](http_transport::HttpRequest& request) { return router_.Dispatch(request); },
             .read_error = &ReadErrorReply,
             .internal_error =
                 [] {
                   return Problem(http::status::internal_server_error, "INTERNAL",
                                  "internal error");
                 }},
            HttpOptions(options)) {
  user_routes_.Register(router_);
  ops_pages_.Register(router_);
}

RestServer::~RestServer() { Stop(); }

void RestServer::Start() { http_.Start(); }
void RestServer::Stop() { http_.Stop(); }
int RestServer::port() const { return http_.port(); }
const RestRouter& RestServer::router() const { return router_; }

}  // namespace polycrud::rest_adapter
