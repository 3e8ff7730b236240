#include "storage/mysql/migrations.h"

#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <spdlog/spdlog.h>

#include <cctype>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "storage/mysql/mysql_connection_pool.h"
#include "storage/mysql/mysql_errors.h"
#include "storage/mysql/mysql_lease.h"

namespace polycrud {
namespace {

constexpr std::int64_t kMigrationReadTimeoutMs = 3600 * 1000;
constexpr char kCreateMigrationsTableSql[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "version INT NOT NULL PRIMARY KEY, "
    "name VARCHAR(255) NOT NULL, "
    "applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";

// Splits a migration into statements at semicolons outside quotes and
// comments. Comments are dropped, so a trailing comment is no empty query.
std::vector<std::string> SplitSqlStatements(std::string_view script) {
  std::vector<std::string> statements;
  std::string current;
  auto flush = [&] {
    const auto first = current.find_first_not_of(" \t\r\n");
    if (first != std::string::npos) {
      const auto last = current.find_last_not_of(" \t\r\n");
      statements.push_back(current.substr(first, last - first + 1));
    }
    current.clear();
  };
  std::size_t i = 0;
  while (i < script.size()) {
    const char c = script[i];
    const char next = i + 1 < script.size() ? script[i + 1] : '\0';
    if (c == '\'' || c == '"' || c == '`') {
      // Copies a quoted run verbatim; a backslash escapes the next character
      // inside string literals, and a doubled quote stands for itself.
      current += c;
      ++i;
      while (i < script.size()) {
        const char q = script[i];
        current += q;
        ++i;
        if (q == '\\' && c != '`' && i < script.size()) {
          current += script[i++];
        } else if (q == c) {
          if (i < script.size() && script[i] == c) {
            current += script[i++];
          } else {
            break;
          }
        }
      }
    } else if ((c == '-' && next == '-' &&
                (i + 2 >= script.size() ||
                 std::isspace(static_cast<unsigned char>(script[i + 2])))) ||
               c == '#') {
      while (i < script.size() && script[i] != '\n') ++i;
      current += ' ';
    } else if (c == '/' && next == '*') {
      const std::size_t end = script.find("*/", i + 2);
      i = end == std::string_view::npos ? script.size() : end + 2;
      current += ' ';
    } else if (c == ';') {
      flush();
      ++i;
    } else {
      current += c;
      ++i;
    }
  }
  flush();
  return statements;
}

// The migration lease: row 1 of schema_migration_lock (MysqlLease), taken
// with waiting. Throws sql::SQLException.
class MigrationLease {
 public:
  MigrationLease(MysqlConnection& connection, const MigrationLockOptions& options)
      : connection_(connection), options_(options), lease_(kLockTable, options.lease_ms) {}

  // Takes the lease, waiting up to options.wait_ms for another owner's to
  // end or expire. False when it did not.
  bool Acquire() {
    connection_.Execute(MysqlLease::CreateTableSql(kLockTable));
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.wait_ms);
    bool told = false;
    while (true) {
      std::string previous;
      if (lease_.TryTake(connection_, &previous)) {
        if (!previous.empty()) {
          spdlog::warn("took over the schema migration lock of {}, whose lease had expired",
                       previous);
        }
        return true;
      }
      if (!told) {
        spdlog::info("waiting for the schema migration lock, held by {}",
                     lease_.Holder(connection_));
        told = true;
      }
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(options_.poll_ms));
    }
  }

  // Extends the lease; false when it expired and another migrator took it.
  bool Renew() { return lease_.Renew(connection_); }
  // Ends the lease (if it is still this migrator's).
  void Release() { lease_.Release(connection_); }

 private:
  static constexpr char kLockTable[] = "schema_migration_lock";

  MysqlConnection& connection_;
  const MigrationLockOptions options_;
  MysqlLease lease_;
};

// A failed migration gives the lease back, so the next migrator need not
// wait for it to expire; if even that fails, the lease expires by itself.
void ReleaseAfterFailure(MigrationLease& lease, bool held) {
  if (!held) return;
  try {
    lease.Release();
  } catch (const std::exception& e) {
    spdlog::warn("could not release the schema migration lock ({}); it expires by itself",
                 e.what());
  }
}

}  // namespace

Status ApplyMigrations(MysqlOptions options, const MigrationLockOptions& lock_options) {
  options.read_timeout_ms = kMigrationReadTimeoutMs;
  options.write_timeout_ms = kMigrationReadTimeoutMs;
  // A migration may wait for the statements of running servers to finish.
  options.lock_wait_timeout_ms = kMigrationReadTimeoutMs;
  options.statement_timeout_ms = 0;
  StatusOr<std::unique_ptr<MysqlConnection>> opened = MysqlConnection::Open(options);
  if (!opened.ok()) return opened.status();
  MysqlConnection& connection = **opened;

  const Migration* current = nullptr;
  MigrationLease lease(connection, lock_options);
  bool held = false;
  try {
    if (!lease.Acquire()) {
      return Status::Unavailable("timed out waiting for the schema migration lock");
    }
    held = true;

    connection.Execute(kCreateMigrationsTableSql);
    std::set<int> applied;
    {
      sql::PreparedStatement& select = connection.Prepare("SELECT version FROM schema_migrations");
      std::unique_ptr<sql::ResultSet> rows(select.executeQuery());
      while (rows->next()) applied.insert(rows->getInt(1));
    }

    for (const Migration& migration : EmbeddedMigrations()) {
      if (applied.contains(migration.version)) continue;
      current = &migration;
      if (!lease.Renew()) {
        held = false;
        return Status::Unavailable("lost the schema migration lock (its lease expired)");
      }
      // DDL commits implicitly, so a migration is not atomic: it is recorded
      // only once all its statements succeeded, and each statement is
      // written to be safe to run again (IF NOT EXISTS).
      for (const std::string& statement : SplitSqlStatements(migration.sql)) {
        connection.Execute(statement);
      }
      sql::PreparedStatement& record =
          connection.Prepare("INSERT INTO schema_migrations (version, name) VALUES (?, ?)");
      record.setInt(1, migration.version);
      record.setString(2, std::string(migration.name));
      record.executeUpdate();
    }
    current = nullptr;
    held = false;
    lease.Release();
    return Status::Ok();
  } catch (const sql::SQLException& e) {
    ReleaseAfterFailure(lease, held);
    Status status = StatusFromMysqlError(e);
    if (current != nullptr && status.code() == StatusCode::kInternal) {
      return Status::Internal("migration " + std::to_string(current->version) + " (" +
                              std::string(current->name) + "): " + status.message());
    }
    return status;
  } catch (const std::exception& e) {
    ReleaseAfterFailure(lease, held);
    return Status::Internal(std::string("mysql driver: ") + e.what());
  }
}

}  // namespace polycrud
