#include "storage/mysql/mysql_lease.h"

#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <random>
#include <utility>

namespace polycrud {
namespace {

constexpr int kErDupEntry = 1062;
constexpr int kErLockDeadlock = 1213;

std::string NewOwner() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  std::random_device device;
  char random[17];
  std::snprintf(random, sizeof(random), "%08x%08x", device(), device());
  return std::string(host[0] != '\0' ? host : "unknown") + ":" + std::to_string(getpid()) + ":" +
         random;
}

}  // namespace

MysqlLease::MysqlLease(std::string table, std::int64_t lease_ms)
    : owner_(NewOwner()),
      lease_ms_(lease_ms),
      insert_sql_("INSERT INTO " + table +
                  " (id, owner, expires_at) VALUES (1, ?, NOW(3) + INTERVAL ? * 1000 MICROSECOND)"),
      take_over_sql_("UPDATE " + table +
                     " SET owner = ?, expires_at = NOW(3) + INTERVAL ? * 1000 MICROSECOND "
                     "WHERE id = 1 AND expires_at < NOW(3)"),
      renew_sql_("UPDATE " + table +
                 " SET expires_at = NOW(3) + INTERVAL ? * 1000 MICROSECOND "
                 "WHERE id = 1 AND owner = ?"),
      owner_sql_("SELECT owner FROM " + table + " WHERE id = 1"),
      release_sql_("DELETE FROM " + table + " WHERE id = 1 AND owner = ?"),
      holder_sql_("SELECT CONCAT(owner, ' until ', expires_at) FROM " + table + " WHERE id = 1") {}

std::string MysqlLease::CreateTableSql(const std::string& table) {
  return "CREATE TABLE IF NOT EXISTS " + table +
         " (id TINYINT UNSIGNED NOT NULL PRIMARY KEY, owner VARCHAR(255) NOT NULL, "
         "expires_at DATETIME(3) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";
}

bool MysqlLease::TryTake(MysqlConnection& connection, std::string* previous) {
  try {
    return TryInsert(connection) || TryTakeOverExpired(connection, previous);
  } catch (const sql::SQLException& e) {
    // Two takers inserting on two Galera nodes at once: one loses at
    // certification and tries again later.
    if (e.getErrorCode() == kErLockDeadlock) return false;
    throw;
  }
}

bool MysqlLease::Renew(MysqlConnection& connection) {
  sql::PreparedStatement& renew = connection.Prepare(renew_sql_);
  renew.setInt64(1, lease_ms_);
  renew.setString(2, owner_);
  if (renew.executeUpdate() == 1) return true;
  // MariaDB counts changed rows: a renewal within the millisecond of the
  // last one changes nothing, and the row may still be this owner's.
  sql::PreparedStatement& owner = connection.Prepare(owner_sql_);
  std::unique_ptr<sql::ResultSet> row(owner.executeQuery());
  return row->next() && std::string(row->getString(1)) == owner_;
}

void MysqlLease::Release(MysqlConnection& connection) {
  sql::PreparedStatement& release = connection.Prepare(release_sql_);
  release.setString(1, owner_);
  release.executeUpdate();
}

std::string MysqlLease::Holder(MysqlConnection& connection) {
  sql::PreparedStatement& select = connection.Prepare(holder_sql_);
  std::unique_ptr<sql::ResultSet> row(select.executeQuery());
  return row->next() ? std::string(row->getString(1)) : std::string("nobody");
}

bool MysqlLease::TryInsert(MysqlConnection& connection) {
  sql::PreparedStatement& insert = connection.Prepare(insert_sql_);
  insert.setString(1, owner_);
  insert.setInt64(2, lease_ms_);
  try {
    insert.executeUpdate();
    return true;
  } catch (const sql::SQLException& e) {
    if (e.getErrorCode() == kErDupEntry) return false;
    throw;
  }
}

// A holder that died keeps its row; once the lease has expired the row is
// taken over (one UPDATE: of two takers, one wins).
bool MysqlLease::TryTakeOverExpired(MysqlConnection& connection, std::string* previous) {
  std::string holder = Holder(connection);
  sql::PreparedStatement& take = connection.Prepare(take_over_sql_);
  take.setString(1, owner_);
  take.setInt64(2, lease_ms_);
  if (take.executeUpdate() != 1) return false;
  if (previous != nullptr) *previous = std::move(holder);
  return true;
}

}  // namespace polycrud
