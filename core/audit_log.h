// AuditLog: the core's record of every attempt at an admin write (create,
// update, delete), whatever its result: who (the token's id, never the
// token), what, which user, how it ended, and the request id that ties it to
// the face's log line. polycrud-server writes it to its log
// (server/spdlog_audit_log.h); docs/operations.md, "Audit log".
#pragma once

#include <cstdint>
#include <string_view>

#include "core/metrics.h"
#include "core/status.h"

namespace polycrud {

struct AuditRecord {
  // TokenVerifier::TokenId of the caller's token; "-" without a token.
  std::string_view token_id;
  Operation operation = Operation::kCreateUser;
  std::int64_t user_id = 0;  // 0: none known (a create that failed, a bad id)
  StatusCode result = StatusCode::kOk;
  std::string_view request_id;
};

class AuditLog {
 public:
  virtual ~AuditLog() = default;
  // Must not block for long: it runs on the request's path. Thread-safe.
  virtual void Record(const AuditRecord& record) = 0;
};

}  // namespace polycrud
