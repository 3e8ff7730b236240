// SpdlogAuditLog: the core's AuditLog written to the server's log through a
// logger of its own, "audit", that writes whatever --log-level says, one
// line per admin write attempt:
//   audit op=update_user user=42 result=CONFLICT token=1f2e3d4c5b6a request=9c1d...
// (docs/operations.md, "Audit log"). Thread-safe.
#pragma once

#include <spdlog/logger.h>

#include <memory>

#include "core/audit_log.h"
#include "server/log_format.h"

namespace polycrud::server {

class SpdlogAuditLog final : public AuditLog {
 public:
  // Writes to the sinks of the default logger, in the server's `format`.
  explicit SpdlogAuditLog(LogFormat format);
  void Record(const AuditRecord& record) override;

 private:
  std::shared_ptr<spdlog::logger> logger_;
};

}  // namespace polycrud::server
