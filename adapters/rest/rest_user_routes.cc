#include "adapters/rest/rest_user_routes.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <exception>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>
#include <variant>
#include <vector>

#include "adapters/rest/problem.h"
#include "adapters/rest/user_json.h"

namespace polycrud::rest_adapter {
namespace {

using nlohmann::json;

// A route body's result: a response, or a status to map.
using Result = std::variant<HttpResponse, Status>;

std::string ETag(std::int64_t version) { return "\"" + std::to_string(version) + "\""; }

HttpResponse UserResponse(http::status status, const User& user) {
  HttpResponse response = JsonResponse(status, UserToJson(user));
  response.set(http::field::etag, ETag(user.version));
  return response;
}

// The bearer token of `Authorization: Bearer <token>` (a view into the
// request's header); empty if there is none (the core then answers
// UNAUTHENTICATED).
std::string_view BearerToken(const HttpRequest& request) {
  const auto it = request.find(http::field::authorization);
  if (it == request.end()) return {};
  std::string_view value(it->value().data(), it->value().size());
  constexpr std::string_view kScheme = "bearer ";
  if (value.size() < kScheme.size()) return {};
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(value[i])) != kScheme[i]) return {};
  }
  value.remove_prefix(kScheme.size());
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  return value;
}

// The caller of a route: its bearer token and request id, both views that
// live as long as the request.
Caller CallerOf(const HttpRequest& request, const RouteArgs& args) {
  return Caller(BearerToken(request), args.request_id);
}

// Parses a whole decimal int64 (optional leading '-').
std::optional<std::int64_t> ParseInt64(std::string_view text) {
  std::int64_t value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

Status BadField(std::string message, std::string field) {
  return Status::InvalidArgument(std::move(message), std::move(field));
}

// The path id: any integer goes to the core (which validates it after the
// token); anything else is malformed.
StatusOr<std::int64_t> PathId(const RouteArgs& args) {
  std::optional<std::int64_t> id = ParseInt64(args.path_param);
  if (!id) return BadField("id must be a positive integer", "id");
  return *id;
}

// Percent-decodes a query component ('+' is a space).
std::string DecodeComponent(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out += ' ';
    } else if (in[i] == '%' && i + 2 < in.size() &&
               std::isxdigit(static_cast<unsigned char>(in[i + 1])) &&
               std::isxdigit(static_cast<unsigned char>(in[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(in.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += in[i];
    }
  }
  return out;
}

// The value of query parameter `name`, if present.
std::optional<std::string> QueryParam(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const std::size_t eq = pair.find('=');
    if (DecodeComponent(pair.substr(0, eq)) == name) {
      return eq == std::string_view::npos ? std::string() : DecodeComponent(pair.substr(eq + 1));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

// True for application/json and any application/*+json, parameters ignored.
bool IsJsonMediaType(const HttpRequest& request) {
  const auto it = request.find(http::field::content_type);
  if (it == request.end()) return false;
  std::string type(it->value().data(), it->value().size());
  type = type.substr(0, type.find(';'));
  while (!type.empty() && type.back() == ' ') type.pop_back();
  for (char& c : type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return type == "application/json" || (type.rfind("application/", 0) == 0 && type.size() > 5 &&
                                        type.compare(type.size() - 5, 5, "+json") == 0);
}

// The request body as a JSON object, or the 415/400 response saying why not.
std::variant<json, HttpResponse> JsonBody(const HttpRequest& request) {
  if (!IsJsonMediaType(request)) {
    return Problem(http::status::unsupported_media_type, "INVALID_ARGUMENT",
                   "the request body must be application/json");
  }
  json body;
  try {
    body = json::parse(request.body());
  } catch (const json::parse_error& e) {
    // Only the position is sent, not the library's text.
    return Problem(http::status::bad_request, "INVALID_ARGUMENT",
                   "malformed JSON at byte " + std::to_string(e.byte));
  } catch (const json::out_of_range&) {
    // A number too large for a double (1E400): well-formed JSON the
    // service cannot hold, so the caller's error too, never a 500.
    return Problem(http::status::bad_request, "INVALID_ARGUMENT",
                   "a number in the request body is out of range");
  }
  if (!body.is_object()) {
    return Problem(http::status::bad_request, "INVALID_ARGUMENT",
                   "the request body must be a JSON object");
  }
  return body;
}

// Reads optional string member `name`: absent or null leaves `out` unset.
Status OptionalString(const json& body, const char* name, std::optional<std::string>& out) {
  const auto it = body.find(name);
  if (it == body.end() || it->is_null()) return Status::Ok();
  if (!it->is_string()) return BadField(std::string(name) + " must be a string", name);
  out = it->get<std::string>();
  return Status::Ok();
}

// Reads string member `name` (absent: empty, which the core rejects by name).
Status RequiredString(const json& body, const char* name, std::string& out) {
  std::optional<std::string> value;
  Status status = OptionalString(body, name, value);
  if (status.ok() && value) out = std::move(*value);
  return status;
}

// Parses If-Match into an expected version: absent or "*" is 0
// (unconditional), `"<positive integer>"` is that version.
StatusOr<std::int64_t> ExpectedVersion(const HttpRequest& request) {
  const auto it = request.find(http::field::if_match);
  if (it == request.end()) return std::int64_t{0};
  std::string_view value(it->value().data(), it->value().size());
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value == "*") return std::int64_t{0};
  if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
    std::optional<std::int64_t> version = ParseInt64(value.substr(1, value.size() - 2));
    if (version && *version > 0) return *version;
  }
  return BadField("If-Match must be a quoted version, e.g. \"3\"", "If-Match");
}

}  // namespace

template <typename Fn>
HttpResponse RestUserRoutes::Run(Operation operation, const Caller& caller, Fn&& fn) {
  const std::string_view request_id = caller.request_id;
  ScopedCall call(metrics_, Protocol::kRest, operation);
  Result result = Status::Internal("no result");
  try {
    result = std::forward<Fn>(fn)(caller);
  } catch (const std::exception& e) {
    spdlog::error("rest {} [{}]: unexpected exception: {}", OperationName(operation), request_id,
                  e.what());
    result = Status::Internal(e.what());
  }
  // Input the route rejected before the core saw it (path, query, media
  // type, body): a caller that may not run the operation learns that first.
  const bool rejected_input = std::holds_alternative<HttpResponse>(result)
                                  ? std::get<HttpResponse>(result).result_int() >= 400
                                  : std::get<Status>(result).code() == StatusCode::kInvalidArgument;
  if (rejected_input) {
    if (Status admitted = service_.Admit(caller, operation); !admitted.ok()) result = admitted;
  }
  if (auto* response = std::get_if<HttpResponse>(&result)) {
    const unsigned code = response->result_int();
    // Adapter-level rejections (400/415) count as invalid arguments.
    call.Done(code < 400 ? StatusCode::kOk : StatusCode::kInvalidArgument);
    return std::move(*response);
  }
  const Status& status = std::get<Status>(result);
  call.Done(status.code());
  return StatusProblem(status, request_id);
}

void RestUserRoutes::Register(RestRouter& router) {
  auto bind = [this](HttpResponse (RestUserRoutes::*method)(const HttpRequest&, const RouteArgs&)) {
    return [this, method](const HttpRequest& request, const RouteArgs& args) {
      return (this->*method)(request, args);
    };
  };
  router.Add(http::verb::get, "/v1/ping", bind(&RestUserRoutes::Ping));
  router.Add(http::verb::post, "/v1/users", bind(&RestUserRoutes::CreateUser));
  router.Add(http::verb::get, "/v1/users", bind(&RestUserRoutes::ListUsers));
  router.Add(http::verb::post, "/v1/users:batchGet", bind(&RestUserRoutes::BatchGetUsers));
  router.Add(http::verb::get, "/v1/users/search", bind(&RestUserRoutes::SearchUsers));
  router.Add(http::verb::get, "/v1/users/{id}", bind(&RestUserRoutes::GetUser));
  router.Add(http::verb::patch, "/v1/users/{id}", bind(&RestUserRoutes::UpdateUser));
  router.Add(http::verb::delete_, "/v1/users/{id}", bind(&RestUserRoutes::DeleteUser));
}

HttpResponse RestUserRoutes::Ping(const HttpRequest& request, const RouteArgs& args) {
  return Run(Operation::kPing, CallerOf(request, args), [&](const Caller&) -> Result {
    return JsonResponse(http::status::ok, {{"server", service_.Ping()}});
  });
}

HttpResponse RestUserRoutes::CreateUser(const HttpRequest& request, const RouteArgs& args) {
  return Run(Operation::kCreateUser, CallerOf(request, args), [&](const Caller& caller) -> Result {
    auto body = JsonBody(request);
    if (auto* error = std::get_if<HttpResponse>(&body)) return std::move(*error);
    const json& object = std::get<json>(body);
    UserDraft draft;
    for (auto [name, out] :
         {std::pair{"username", &draft.username}, std::pair{"email", &draft.email},
          std::pair{"full_name", &draft.full_name}}) {
      if (Status s = RequiredString(object, name, *out); !s.ok()) return s;
    }
    StatusOr<User> user = service_.CreateUser(caller, draft);
    if (!user.ok()) return user.status();
    HttpResponse response = UserResponse(http::status::created, *user);
    response.set(http::field::location, "/v1/users/" + std::to_string(user->id));
    return response;
  });
}

HttpResponse RestUserRoutes::GetUser(const HttpRequest& request, const RouteArgs& args) {
  return Run(Operation::kGetUser, CallerOf(request, args), [&](const Caller& caller) -> Result {
    StatusOr<std::int64_t> id = PathId(args);
    if (!id.ok()) return id.status();
    StatusOr<User> user = service_.GetUser(caller, *id);
    if (!user.ok()) return user.status();
    return UserResponse(http::status::ok, *user);
  });
}

HttpResponse RestUserRoutes::BatchGetUsers(const HttpRequest& request, const RouteArgs& args) {
  return Run(Operation::kBatchGetUsers, CallerOf(request, args),
             [&](const Caller& caller) -> Result {
               auto body = JsonBody(request);
               if (auto* error = std::get_if<HttpResponse>(&body)) return std::move(*error);
               StatusOr<std::vector<std::int64_t>> ids = BatchIdsFromJson(std::get<json>(body));
               if (!ids.ok()) return ids.status();
               StatusOr<std::vector<User>> users = service_.BatchGetUsers(caller, *ids);
               if (!users.ok()) return users.status();
               return JsonResponse(http::status::ok, {{"users", UsersToJson(*users)}});
             });
}

HttpResponse RestUserRoutes::UpdateUser(const HttpRequest& request, const RouteArgs& args) {
  return Run(Operation::kUpdateUser, CallerOf(request, args), [&](const Caller& caller) -> Result {
    StatusOr<std::int64_t> id = PathId(args);
    if (!id.ok()) return id.status();
    StatusOr<std::int64_t> expected = ExpectedVersion(request);
    if (!expected.ok()) return expected.status();
    auto body = JsonBody(request);
    if (auto* error = std::get_if<HttpResponse>(&body)) return std::move(*error);
    const json& object = std::get<json>(body);
    UserPatch patch;
    patch.expected_version = *expected;
    if (Status s = OptionalString(object, "email", patch.email); !s.ok()) return s;
    if (Status s = OptionalString(object, "full_name", patch.full_name); !s.ok()) return s;
    StatusOr<User> user = service_.UpdateUser(caller, *id, patch);
    if (!user.ok()) return user.status();
    return UserResponse(http::status::ok, *user);
  });
}

HttpResponse RestUserRoutes::DeleteUser(const HttpRequest& request, const RouteArgs& args) {
  return Run(Operation::kDeleteUser, CallerOf(request, args), [&](const Caller& caller) -> Result {
    StatusOr<std::int64_t> id = PathId(args);
    if (!id.ok()) return id.status();
    if (Status s = service_.DeleteUser(caller, *id); !s.ok()) return s;
    return HttpResponse{http::status::no_content, 11};
  });
}

HttpResponse RestUserRoutes::ListUsers(const HttpRequest& request, const RouteArgs& args) {
  return Run(Operation::kListUsers, CallerOf(request, args), [&](const Caller& caller) -> Result {
    std::int64_t after_id = 0;
    std::int64_t limit = 0;
    for (auto [name, out] : {std::pair{"after_id", &after_id}, std::pair{"limit", &limit}}) {
      std::optional<std::string> text = QueryParam(args.query, name);
      if (!text) continue;
      std::optional<std::int64_t> value = ParseInt64(*text);
      if (!value) return BadField(std::string(name) + " must be an integer", name);
      *out = *value;
    }
    // Out of int32 range is as invalid as any limit above the maximum.
    if (limit > std::numeric_limits<std::int32_t>::max() ||
        limit < std::numeric_limits<std::int32_t>::min()) {
      limit = std::numeric_limits<std::int32_t>::max();
    }
    StatusOr<UserPage> page =
        service_.ListUsers(caller, after_id, static_cast<std::int32_t>(limit));
    if (!page.ok()) return page.status();
    return JsonResponse(http::status::ok, {{"users", UsersToJson(page->users)},
                                           {"next_after_id", page->next_after_id}});
  });
}

HttpResponse RestUserRoutes::SearchUsers(const HttpRequest& request, const RouteArgs& args) {
  return Run(Operation::kSearchUsers, CallerOf(request, args), [&](const Caller& caller) -> Result {
    // A missing prefix is as empty as prefix= (the core says what it must be).
    const std::string prefix = QueryParam(args.query, "prefix").value_or("");
    std::int64_t limit = 0;
    if (std::optional<std::string> text = QueryParam(args.query, "limit")) {
      std::optional<std::int64_t> value = ParseInt64(*text);
      if (!value) return BadField("limit must be an integer", "limit");
      limit = std::clamp<std::int64_t>(*value, -1, std::numeric_limits<std::int32_t>::max());
    }
    StatusOr<std::vector<User>> users =
        service_.SearchUsers(caller, prefix, static_cast<std::int32_t>(limit));
    if (!users.ok()) return users.status();
    return JsonResponse(http::status::ok, {{"users", UsersToJson(*users)}});
  });
}

}  // namespace polycrud::rest_adapter
