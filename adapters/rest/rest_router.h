// RestRouter: the REST face's route table. Maps (method, path) to a handler
// and answers what HTTP expects around it: 404 problem+json for an unknown
// path, 405 with `Allow` for a known path with another method, HEAD on every
// GET route. Paths are literal except for one "{id}" segment a template may
// carry; a literal path shadows the templates it also matches. Routes are
// added at set-up; Dispatch is then thread-safe.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "transport/http/http_server.h"

namespace polycrud::rest_adapter {

namespace http = boost::beast::http;
using http_transport::HttpRequest;
using http_transport::HttpResponse;

// What a handler gets besides the request.
// Where a client names its request, and where the answer repeats the name.
inline constexpr char kRequestIdHeader[] = "X-Request-Id";

struct RouteArgs {
  std::string_view path_param;  // the "{id}" segment; empty when the route has none
  std::string_view query;       // the raw query string (after '?'), possibly empty
  // The request's X-Request-Id if usable, else a new one; Dispatch echoes it
  // in the response's X-Request-Id.
  std::string_view request_id;
};
using RouteHandler = std::function<HttpResponse(const HttpRequest&, const RouteArgs&)>;

struct RouteInfo {
  http::verb method;
  std::string path_template;  // e.g. "/v1/users/{id}"
};

class RestRouter {
 public:
  // Adds a route. Not thread-safe: call before the first Dispatch.
  void Add(http::verb method, std::string path_template, RouteHandler handler);

  // The response to `request`, with its version and keep-alive set from the
  // request and its payload prepared. Handlers' exceptions propagate.
  HttpResponse Dispatch(const HttpRequest& request) const;

  // Every (method, template) served, in the order added (HEAD not listed).
  std::vector<RouteInfo> routes() const;

 private:
  struct Route {
    RouteInfo info;
    std::vector<std::string> segments;
    RouteHandler handler;
  };
  // True if `path` matches `route`; sets `param` to its "{id}" segment.
  static bool Matches(const Route& route, std::string_view path, std::string_view& param);

  std::vector<Route> routes_;
};

}  // namespace polycrud::rest_adapter
