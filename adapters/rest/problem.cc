#include "adapters/rest/problem.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "adapters/rest/user_json.h"

namespace polycrud::rest_adapter {
namespace {

// Seconds for Retry-After: at least 1, rounded up.
std::int64_t RetryAfterSeconds(std::int64_t retry_after_ms) {
  return std::max<std::int64_t>(1, (retry_after_ms + 999) / 1000);
}

}  // namespace

http::status HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return http::status::ok;
    case StatusCode::kInvalidArgument:
      return http::status::bad_request;
    case StatusCode::kUnauthenticated:
      return http::status::unauthorized;
    case StatusCode::kPermissionDenied:
      return http::status::forbidden;
    case StatusCode::kNotFound:
      return http::status::not_found;
    case StatusCode::kConflict:
      return http::status::conflict;
    case StatusCode::kResourceExhausted:
      return http::status::too_many_requests;
    case StatusCode::kUnavailable:
      return http::status::service_unavailable;
    case StatusCode::kInternal:
      return http::status::internal_server_error;
  }
  return http::status::internal_server_error;
}

HttpResponse JsonResponse(http::status status, const nlohmann::ordered_json& body) {
  HttpResponse response{status, 11};
  response.set(http::field::content_type, "application/json");
  response.body() = DumpBody(body);
  return response;
}

HttpResponse Problem(http::status status, std::string_view code, std::string detail,
                     std::string field) {
  nlohmann::ordered_json body = {
      {"type", "about:blank"},
      {"title", std::string(http::obsolete_reason(status))},
      {"status", static_cast<int>(status)},
      {"detail", std::move(detail)},
      {"code", code},
  };
  if (!field.empty()) body["field"] = std::move(field);
  HttpResponse response = JsonResponse(status, body);
  response.set(http::field::content_type, "application/problem+json");
  return response;
}

HttpResponse StatusProblem(const Status& status, std::string_view request_id) {
  const http::status http_status = HttpStatusFor(status.code());
  const std::string_view code = StatusCodeName(status.code());
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
      return Problem(http_status, code, status.message(), status.field());
    case StatusCode::kUnauthenticated: {
      HttpResponse response = Problem(http_status, code, status.message());
      response.set(http::field::www_authenticate, "Bearer");
      return response;
    }
    case StatusCode::kPermissionDenied:
    case StatusCode::kNotFound:
    case StatusCode::kConflict:
      return Problem(http_status, code, status.message());
    case StatusCode::kResourceExhausted:
    case StatusCode::kUnavailable: {
      spdlog::warn("rest [{}]: {}", request_id, status.ToString());
      HttpResponse response =
          Problem(http_status, code,
                  status.code() == StatusCode::kUnavailable ? "service unavailable, retry later"
                                                            : "overloaded, retry later");
      response.set(http::field::retry_after,
                   std::to_string(RetryAfterSeconds(status.retry_after_ms())));
      return response;
    }
    case StatusCode::kInternal:
      spdlog::error("rest [{}]: {}", request_id, status.ToString());
      return Problem(http_status, code, "internal error");
    case StatusCode::kOk:
      break;
  }
  spdlog::error("rest [{}]: OK status passed to StatusProblem", request_id);
  return Problem(http::status::internal_server_error, "INTERNAL", "internal error");
}

}  // namespace polycrud::rest_adapter
