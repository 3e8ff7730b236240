// A lease held in one row of a MariaDB table: an owner and an expiry, taken
// by inserting the row, kept by renewing it, taken over by another owner once
// it has expired. Unlike GET_LOCK it is an ordinary row, so a Galera cluster
// replicates it and it survives the connection that took it. Used by the
// schema migrations (one migrator at a time) and by the outbox relay (one
// publisher at a time).
#pragma once

#include <cstdint>
#include <string>

#include "storage/mysql/mysql_connection_pool.h"

namespace polycrud {

class MysqlLease {
 public:
  // `table` has the columns of CreateTableSql; the lease is its row id 1.
  MysqlLease(std::string table, std::int64_t lease_ms);

  // CREATE TABLE IF NOT EXISTS for a lease table named `table`.
  static std::string CreateTableSql(const std::string& table);

  // "host:pid:random": names this holder in the row and in others' logs.
  const std::string& owner() const { return owner_; }
  std::int64_t lease_ms() const { return lease_ms_; }

  // One attempt to take the lease: inserts the row, or takes over a row
  // whose lease has expired (`previous` then gets its former holder). False
  // when another owner holds it, or when two takers collided at Galera
  // certification (try again). Every statement is autocommitted. These
  // methods throw sql::SQLException.
  bool TryTake(MysqlConnection& connection, std::string* previous = nullptr);
  // Extends the lease by lease_ms from now; false when it is no longer this
  // owner's (it expired and another took it).
  bool Renew(MysqlConnection& connection);
  // Ends the lease if it is still this owner's.
  void Release(MysqlConnection& connection);
  // "owner until expiry", or "nobody".
  std::string Holder(MysqlConnection& connection);

 private:
  bool TryInsert(MysqlConnection& connection);
  bool TryTakeOverExpired(MysqlConnection& connection, std::string* previous);

  const std::string owner_;
  const std::int64_t lease_ms_;
  const std::string insert_sql_;
  const std::string take_over_sql_;
  const std::string renew_sql_;
  const std::string owner_sql_;
  const std::string release_sql_;
  const std::string holder_sql_;
};

}  // namespace polycrud
