// Who makes a call and which request it is: the bearer token (or empty) and
// the request id that every log line of the call carries. A face takes the
// id from the client where its protocol has a place for it (REST and SOAP:
// the X-Request-Id header; gRPC: x-request-id metadata), checks it with
// AcceptRequestId, and echoes it back; otherwise (Thrift, or a client that
// sent none or an unusable one) the face uses NewRequestId().
#pragma once

#include <string>
#include <string_view>

namespace polycrud {

// Longest request id taken from a client.
inline constexpr std::size_t kMaxRequestIdBytes = 128;

struct Caller {
  // Implicit from a token alone (no request id): for tests and tools.
  Caller(std::string_view token_in, std::string_view request_id_in = {})  // NOLINT
      : token(token_in), request_id(request_id_in) {}
  Caller(const std::string& token_in)  // NOLINT
      : token(token_in) {}
  Caller(const char* token_in)  // NOLINT
      : token(token_in) {}

  std::string_view token;
  std::string_view request_id;
};

// A new request id, unique within the process and unlikely to repeat across
// processes: 16 hex digits. Thread-safe.
std::string NewRequestId();

// `from_client` if it is a usable request id (1 to kMaxRequestIdBytes
// characters, each a letter, digit or one of "-_.:/+="), else a new one.
std::string AcceptRequestId(std::string_view from_client);

}  // namespace polycrud
