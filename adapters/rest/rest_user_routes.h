// RestUserRoutes: the REST face of UserService, exactly API.md's routes
// (GET /v1/ping, POST /v1/users, GET /v1/users, POST /v1/users:batchGet,
// GET/PATCH/DELETE /v1/users/{id}). It only translates JSON, path, query and
// headers (bearer token, If-Match) to core calls and maps the result: users
// get `ETag: "<version>"`, errors become problem+json (problem.h). Malformed
// HTTP input (wrong media type, bad JSON, wrong JSON types, a non-integer
// path id) is answered 400/415 before the core is called. Thread-safe.
#pragma once

#include <string>

#include "adapters/rest/rest_router.h"
#include "core/metrics.h"
#include "core/status.h"
#include "core/user_service.h"

namespace polycrud::rest_adapter {

class RestUserRoutes {
 public:
  RestUserRoutes(UserService& service, Metrics& metrics) : service_(service), metrics_(metrics) {}

  // Adds every route to `router`; this object must outlive it.
  void Register(RestRouter& router);

 private:
  HttpResponse Ping(const HttpRequest& request, const RouteArgs& args);
  HttpResponse CreateUser(const HttpRequest& request, const RouteArgs& args);
  HttpResponse GetUser(const HttpRequest& request, const RouteArgs& args);
  HttpResponse BatchGetUsers(const HttpRequest& request, const RouteArgs& args);
  HttpResponse UpdateUser(const HttpRequest& request, const RouteArgs& args);
  HttpResponse DeleteUser(const HttpRequest& request, const RouteArgs& args);
  HttpResponse ListUsers(const HttpRequest& request, const RouteArgs& args);
  HttpResponse SearchUsers(const HttpRequest& request, const RouteArgs& args);

  // Runs one route body under the operation's metrics: `fn` returns the
  // response for success or a Status; errors become problem+json.
  // Runs `fn(caller)`; logged lines carry the caller's request id. Input the
  // route rejected
  // before calling the core is answered 401/403 instead when the caller may
  // not run `operation` at all.
  template <typename Fn>
  HttpResponse Run(Operation operation, const Caller& caller, Fn&& fn);

  UserService& service_;
  Metrics& metrics_;
};

}  // namespace polycrud::rest_adapter
