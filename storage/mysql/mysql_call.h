// WithConnection: runs a function on a pooled MariaDB connection and turns
// every driver exception into a Status. Shared by the stores of storage/mysql.
#pragma once

#include <cppconn/exception.h>

#include <cstdint>
#include <exception>
#include <string>
#include <type_traits>

#include "core/status.h"
#include "storage/mysql/mysql_connection_pool.h"
#include "storage/mysql/mysql_errors.h"

namespace polycrud {

// Whether a failed call may run again on a fresh connection: only reads,
// and only when the failure was a pooled connection found dead.
enum class MysqlRetry : std::uint8_t { kNo, kOnStaleConnection };

// Leases a connection and runs `fn` on it, turning every exception into a
// Status: the one place where driver exceptions stop. A connection-level
// error marks the connection broken so that the pool discards it. So does a
// Galera node that stopped serving (cut off from its cluster): behind a
// balancer a new connection reaches a node that serves.
template <typename Fn>
auto WithConnection(MysqlConnectionPool& pool, MysqlRetry retry, Fn&& fn)
    -> std::invoke_result_t<Fn&, MysqlConnection&> {
  for (int attempt = 0;; ++attempt) {
    StatusOr<MysqlConnectionPool::Lease> lease = pool.Acquire();
    if (!lease.ok()) return lease.status();
    MysqlConnection& connection = **lease;
    try {
      return fn(connection);
    } catch (const sql::SQLException& e) {
      const int code = e.getErrorCode();
      if (IsMysqlConnectionPoisoned(code)) connection.MarkBroken();
      if (connection.galera() && MayBeGaleraRefusal(code) && !connection.GaleraNodeReady()) {
        connection.MarkBroken();
        pool.DropIdle();
        if (retry == MysqlRetry::kOnStaleConnection && attempt == 0) continue;
        return Status::Unavailable("database unavailable");
      }
      if (lease->reused() && IsMysqlConnectionError(code)) {
        // A pooled connection found dead: after a server restart every idle
        // one is, so none of them is handed out again.
        pool.DropIdle();
        if (retry == MysqlRetry::kOnStaleConnection && attempt == 0) continue;
      }
      return StatusFromMysqlError(e);
    } catch (const std::exception& e) {
      connection.MarkBroken();
      return Status::Internal(std::string("mysql driver: ") + e.what());
    }
  }
}

}  // namespace polycrud
