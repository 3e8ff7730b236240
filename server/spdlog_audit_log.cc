#include "server/spdlog_audit_log.h"

#include <spdlog/spdlog.h>

#include <string>

namespace polycrud::server {

SpdlogAuditLog::SpdlogAuditLog(LogFormat format) {
  const auto& sinks = spdlog::default_logger()->sinks();
  logger_ = std::make_shared<spdlog::logger>("audit", sinks.begin(), sinks.end());
  logger_->set_formatter(MakeLogFormatter(format));
  logger_->set_level(spdlog::level::info);  // whatever the server's log level
  logger_->flush_on(spdlog::level::info);
}

void SpdlogAuditLog::Record(const AuditRecord& record) {
  logger_->info("audit op={} user={} result={} token={} request={}",
                OperationName(record.operation), record.user_id, StatusCodeName(record.result),
                record.token_id, record.request_id.empty() ? "-" : record.request_id);
}

}  // namespace polycrud::server
