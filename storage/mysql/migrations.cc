#include "storage/mysql/migrations.h"

#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "storage/mysql/mysql_connection_pool.h"
#include "storage/mysql/mysql_errors.h"

namespace polycrud {
namespace {

constexpr std::int64_t kMigrationReadTimeoutMs = 3600 * 1000;
constexpr int kErDupEntry = 1062;
constexpr int kErLockDeadlock = 1213;
constexpr char kCreateLockTableSql[] =
    "CREATE TABLE IF NOT EXISTS schema_migration_lock ("
    "id TINYINT UNSIGNED NOT NULL PRIMARY KEY, "
    "owner VARCHAR(255) NOT NULL, "
    "expires_at DATETIME(3) NOT NULL"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";
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

// "host:pid:random", naming this migrator in the lock row (and in the log of
// a migrator that waits for it).
std::string LeaseOwner() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  std::random_device device;
  char random[17];
  std::snprintf(random, sizeof(random), "%08x%08x", device(), device());
  return std::string(host[0] != '\0' ? host : "unknown") + ":" + std::to_string(getpid()) + ":" +
         random;
}

// The migration lease: the row id 1 of schema_migration_lock. Every
// statement is autocommitted, so the row is visible (and, on Galera,
// replicated) as soon as it is taken. Throws sql::SQLException.
class MigrationLease {
 public:
  MigrationLease(MysqlConnection& connection, const MigrationLockOptions& options)
      : connection_(connection), options_(options), owner_(LeaseOwner()) {}

  // Takes the lease, waiting up to options.wait_ms for another owner's to
  // end or expire. False when it did not.
  bool Acquire() {
    connection_.Execute(kCreateLockTableSql);
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.wait_ms);
    bool told = false;
    while (true) {
      try {
        if (TryInsert() || TryTakeOverExpired()) return true;
      } catch (const sql::SQLException& e) {
        // Two migrators inserting on two Galera nodes at once: one loses at
        // certification and tries again.
        if (e.getErrorCode() != kErLockDeadlock) throw;
      }
      if (!told) {
        spdlog::info("waiting for the schema migration lock, held by {}", Holder());
        told = true;
      }
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(options_.poll_ms));
    }
  }

  // Extends the lease; false when it expired and another migrator took it.
  bool Renew() {
    sql::PreparedStatement& renew = connection_.Prepare(
        "UPDATE schema_migration_lock SET expires_at = NOW(3) + INTERVAL ? * 1000 MICROSECOND "
        "WHERE id = 1 AND owner = ?");
    renew.setInt64(1, options_.lease_ms);
    renew.setString(2, owner_);
    if (renew.executeUpdate() == 1) return true;
    // MariaDB counts changed rows: a renewal within the millisecond of the
    // last one changes nothing, and the row may still be this migrator's.
    sql::PreparedStatement& owner =
        connection_.Prepare("SELECT owner FROM schema_migration_lock WHERE id = 1");
    std::unique_ptr<sql::ResultSet> row(owner.executeQuery());
    return row->next() && std::string(row->getString(1)) == owner_;
  }

  // Ends the lease (if it is still this migrator's).
  void Release() {
    sql::PreparedStatement& release =
        connection_.Prepare("DELETE FROM schema_migration_lock WHERE id = 1 AND owner = ?");
    release.setString(1, owner_);
    release.executeUpdate();
  }

 private:
  bool TryInsert() {
    sql::PreparedStatement& insert = connection_.Prepare(
        "INSERT INTO schema_migration_lock (id, owner, expires_at) "
        "VALUES (1, ?, NOW(3) + INTERVAL ? * 1000 MICROSECOND)");
    insert.setString(1, owner_);
    insert.setInt64(2, options_.lease_ms);
    try {
      insert.executeUpdate();
      return true;
    } catch (const sql::SQLException& e) {
      if (e.getErrorCode() == kErDupEntry) return false;
      throw;
    }
  }

  // A migrator that died keeps its row; once the lease has expired the row
  // is taken over (one UPDATE: of two migrators trying, one wins).
  bool TryTakeOverExpired() {
    const std::string previous = Holder();
    sql::PreparedStatement& take = connection_.Prepare(
        "UPDATE schema_migration_lock SET owner = ?, "
        "expires_at = NOW(3) + INTERVAL ? * 1000 MICROSECOND "
        "WHERE id = 1 AND expires_at < NOW(3)");
    take.setString(1, owner_);
    take.setInt64(2, options_.lease_ms);
    if (take.executeUpdate() != 1) return false;
    spdlog::warn("took over the schema migration lock of {}, whose lease had expired", previous);
    return true;
  }

  std::string Holder() {
    sql::PreparedStatement& select = connection_.Prepare(
        "SELECT CONCAT(owner, ' until ', expires_at) FROM schema_migration_lock WHERE id = 1");
    std::unique_ptr<sql::ResultSet> row(select.executeQuery());
    return row->next() ? std::string(row->getString(1)) : std::string("nobody");
  }

  MysqlConnection& connection_;
  const MigrationLockOptions options_;
  const std::string owner_;
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
