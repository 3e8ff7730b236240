#include "storage/mysql/mysql_errors.h"

#include <cppconn/exception.h>

#include <string>

namespace polycrud {
namespace {

// Server error codes (mysqld_error.h / MariaDB).
constexpr int kErDupEntry = 1062;
constexpr int kErServerShutdown = 1053;
// A Galera node outside the primary component, or not yet synced, refuses
// every statement ("WSREP has not yet prepared node for application use").
constexpr int kErUnknownComError = 1047;
constexpr int kErLockWaitTimeout = 1205;
constexpr int kErLockDeadlock = 1213;
constexpr int kErConnectionKilled = 1927;
constexpr int kErStatementTimeout = 1969;  // max_statement_time
// Client error codes (errmsg.h, MariaDB Connector/C).
constexpr int kCrConnectionError = 2002;
constexpr int kCrConnHostError = 2003;
constexpr int kCrUnknownHost = 2005;
constexpr int kCrServerGoneError = 2006;
constexpr int kCrServerLost = 2013;
constexpr int kCrSslConnectionError = 2026;
constexpr int kCrServerLostExtended = 2055;

constexpr std::int64_t kBusyRetryAfterMs = 100;
constexpr std::int64_t kPoolExhaustedRetryAfterMs = 100;

// The name of the unique key a duplicate-entry message blames, e.g.
// "Duplicate entry 'x' for key 'uk_users_email'" -> "uk_users_email". The key
// comes last, so searching from the end is not fooled by the duplicated value.
std::string_view DuplicateKeyName(std::string_view message) {
  constexpr std::string_view kMarker = "for key '";
  const std::size_t start = message.rfind(kMarker);
  if (start == std::string_view::npos) return {};
  std::string_view key = message.substr(start + kMarker.size());
  const std::size_t end = key.find('\'');
  if (end != std::string_view::npos) key = key.substr(0, end);
  // MySQL 8 qualifies the key with its table ("users.uk_users_email").
  const std::size_t dot = key.rfind('.');
  if (dot != std::string_view::npos) key = key.substr(dot + 1);
  return key;
}

}  // namespace

bool IsMysqlConnectionError(int error_code) {
  switch (error_code) {
    case kErServerShutdown:
    case kErUnknownComError:
    case kErConnectionKilled:
    case kCrConnectionError:
    case kCrConnHostError:
    case kCrUnknownHost:
    case kCrServerGoneError:
    case kCrServerLost:
    case kCrSslConnectionError:
    case kCrServerLostExtended:
      return true;
    default:
      return false;
  }
}

bool IsMysqlConnectionPoisoned(int error_code) {
  return error_code == 0 || IsMysqlConnectionError(error_code) ||
         (error_code >= 2000 && error_code < 3000);
}

Status StatusFromMysqlError(int error_code, std::string_view sql_state,
                            std::string_view server_message) {
  if (error_code == kErDupEntry) {
    const std::string_view key = DuplicateKeyName(server_message);
    if (key == "uk_users_username") return Status::Duplicate("username already exists");
    if (key == "uk_users_email") return Status::Duplicate("email already exists");
    return Status::Duplicate("user already exists");
  }
  if (IsMysqlConnectionError(error_code)) {
    return Status::Unavailable("database unavailable");
  }
  if (error_code == kErLockWaitTimeout || error_code == kErLockDeadlock ||
      error_code == kErStatementTimeout) {
    return Status::ResourceExhausted("database busy", kBusyRetryAfterMs);
  }
  std::string detail = "mysql error ";
  detail += std::to_string(error_code);
  detail += " (";
  detail += sql_state;
  detail += "): ";
  detail += server_message;
  return Status::Internal(std::move(detail));
}

Status StatusFromMysqlError(const sql::SQLException& error) {
  return StatusFromMysqlError(error.getErrorCode(), error.getSQLState(), error.what());
}

bool MayBeGaleraRefusal(int error_code) {
  return error_code == kErUnknownComError || error_code == kErLockWaitTimeout;
}

bool IsMysqlStatementTimeout(int error_code) { return error_code == kErStatementTimeout; }

Status MysqlPoolExhaustedStatus() {
  return Status::ResourceExhausted("database connection pool exhausted",
                                   kPoolExhaustedRetryAfterMs);
}

}  // namespace polycrud
