// RFC 9457 problem documents and JSON responses of the REST face, and the one
// mapping from core status codes to HTTP statuses (API.md, Error model).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "adapters/rest/rest_router.h"
#include "core/status.h"

namespace polycrud::rest_adapter {

// The HTTP status of a core code (exhaustive over StatusCode).
http::status HttpStatusFor(StatusCode code);

// The problem+json response for a non-OK core status. Messages of client
// errors are sent; INTERNAL and UNAVAILABLE/RESOURCE_EXHAUSTED details are
// logged and replaced by a generic text. 429/503 carry `Retry-After`
// (seconds), 401 carries `WWW-Authenticate: Bearer`.
// Logged lines carry `request_id`.
HttpResponse StatusProblem(const Status& status, std::string_view request_id = {});

// A problem+json response for an HTTP-level error (routing, media type,
// malformed body); `code` is the core code name it stands for and `field`, if
// not empty, the offending input.
HttpResponse Problem(http::status status, std::string_view code, std::string detail,
                     std::string field = "");

// An application/json response with `body` serialised (members in insertion
// order, invalid UTF-8 replaced).
HttpResponse JsonResponse(http::status status, const nlohmann::ordered_json& body);

}  // namespace polycrud::rest_adapter
