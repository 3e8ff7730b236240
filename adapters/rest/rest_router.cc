#include "adapters/rest/rest_router.h"

#include <algorithm>
#include <utility>

#include "adapters/rest/problem.h"
#include "core/request.h"

namespace polycrud::rest_adapter {
namespace {

// Splits "/a/b/c" into {"a", "b", "c"}; "/" gives {""}.
std::vector<std::string_view> Split(std::string_view path) {
  std::vector<std::string_view> out;
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  for (;;) {
    const std::size_t slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

constexpr std::string_view kParam = "{id}";

}  // namespace

void RestRouter::Add(http::verb method, std::string path_template, RouteHandler handler) {
  Route route{.info = {method, std::move(path_template)}, .segments = {}, .handler = {}};
  for (std::string_view s : Split(route.info.path_template)) route.segments.emplace_back(s);
  route.handler = std::move(handler);
  routes_.push_back(std::move(route));
}

bool RestRouter::Matches(const Route& route, std::string_view path, std::string_view& param) {
  const std::vector<std::string_view> parts = Split(path);
  if (parts.size() != route.segments.size()) return false;
  std::string_view captured;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (route.segments[i] == kParam) {
      if (parts[i].empty()) return false;
      captured = parts[i];
    } else if (route.segments[i] != parts[i]) {
      return false;
    }
  }
  param = captured;
  return true;
}

HttpResponse RestRouter::Dispatch(const HttpRequest& request) const {
  const std::string_view target(request.target().data(), request.target().size());
  const std::size_t question = target.find('?');
  const std::string_view path = target.substr(0, question);
  const std::string_view query =
      question == std::string_view::npos ? std::string_view() : target.substr(question + 1);
  const auto given = request.find(kRequestIdHeader);
  const std::string request_id = AcceptRequestId(
      given == request.end() ? std::string_view()
                             : std::string_view(given->value().data(), given->value().size()));
  const bool head = request.method() == http::verb::head;
  const http::verb method = head ? http::verb::get : request.method();

  // A literal path shadows a template it also matches: /v1/users/search
  // is never /v1/users/{id} with the id "search", whatever the method.
  const auto templated = [](const Route& route) {
    return std::find(route.segments.begin(), route.segments.end(), kParam) != route.segments.end();
  };
  bool literal_match = false;
  for (const Route& route : routes_) {
    std::string_view unused;
    literal_match = literal_match || (!templated(route) && Matches(route, path, unused));
  }
  HttpResponse response;
  bool found = false;
  std::string allow;
  for (const Route& route : routes_) {
    std::string_view param;
    if ((literal_match && templated(route)) || !Matches(route, path, param)) continue;
    const auto name = http::to_string(route.info.method);
    allow += (allow.empty() ? "" : ", ") + std::string(name.data(), name.size());
    if (route.info.method == http::verb::get) allow += ", HEAD";
    if (route.info.method == method && !found) {
      response = route.handler(
          request, RouteArgs{.path_param = param, .query = query, .request_id = request_id});
      found = true;
    }
  }
  if (!found && allow.empty()) {
    response = Problem(http::status::not_found, "NOT_FOUND", "no such route: " + std::string(path));
  } else if (!found) {
    response = Problem(http::status::method_not_allowed, "INVALID_ARGUMENT",
                       std::string(request.method_string()) + " is not allowed here");
    response.set(http::field::allow, allow);
  }
  response.set(kRequestIdHeader, request_id);
  response.version(request.version());
  response.keep_alive(request.keep_alive());
  response.prepare_payload();
  if (head) {
    // The headers of the GET answer, Content-Length included, without its body.
    const std::size_t length = response.body().size();
    response.body().clear();
    response.content_length(length);
  }
  return response;
}

std::vector<RouteInfo> RestRouter::routes() const {
  std::vector<RouteInfo> out;
  out.reserve(routes_.size());
  for (const Route& route : routes_) out.push_back(route.info);
  return out;
}

}  // namespace polycrud::rest_adapter
