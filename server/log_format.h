// The server's log lines: text (the default; "2026-12-07T19:40:00.123+0000
// info [1234] message") or JSON, one object a line, for journald and log
// shippers: {"time":"...","level":"info","thread":1234,"logger":"audit",
// "msg":"..."} (--log-format json), the message escaped by nlohmann::json
// (bytes that are not UTF-8 become U+FFFD).
#pragma once

#include <spdlog/formatter.h>

#include <memory>
#include <string_view>

namespace polycrud::server {

enum class LogFormat { kText, kJson };

// A formatter for the default logger and every logger of the process.
std::unique_ptr<spdlog::formatter> MakeLogFormatter(LogFormat format);

// Makes every logger, now and later, write in `format`.
void SetLogFormat(LogFormat format);

}  // namespace polycrud::server
