// MysqlUserStore: the UserStore port on MySQL/MariaDB through Connector/C++
// 1.1, with a bounded connection pool, prepared statements only, and the
// schema managed by the numbered migrations embedded from migrations/.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/ports.h"
#include "core/status.h"
#include "core/user.h"
#include "storage/mysql/mysql_connection_pool.h"

namespace polycrud {

// Every method is thread-safe and never throws; each one leases a pooled
// connection for its duration. Errors follow the UserStore contract:
// kUnavailable ("database unavailable") when the server cannot be reached,
// kResourceExhausted when no connection frees up within acquire_timeout_ms
// (or the server reports a deadlock or lock wait timeout), kConflict for
// duplicates and version mismatches, kInternal for anything unexpected, whose
// message carries the server's text for logs only.
class MysqlUserStore final : public UserStore {
 public:
  using Options = MysqlOptions;

  // Connects lazily: constructing the store does no I/O.
  explicit MysqlUserStore(Options options);
  ~MysqlUserStore() override;

  // Creates or upgrades the schema: ApplyMigrations (migrations.h) on this
  // store's database.
  Status Migrate();

  // UserStore
  StatusOr<User> Insert(const UserDraft& draft, std::int64_t now_ms) override;
  StatusOr<std::optional<User>> FindById(std::int64_t id) override;
  // One query per 1000 distinct ids. Duplicate ids in the input are answered once.
  StatusOr<std::vector<User>> FindByIds(std::span<const std::int64_t> ids) override;
  // One transaction: the conditional UPDATE, then the new row read back (or,
  // when nothing matched, the current version read to tell kNotFound from a
  // version mismatch). Any failure rolls the transaction back.
  StatusOr<User> Update(std::int64_t id, const UserPatch& patch, std::int64_t now_ms) override;
  StatusOr<std::int64_t> Delete(std::int64_t id) override;
  StatusOr<std::vector<User>> ListAfter(std::int64_t after_id, std::int32_t limit) override;
  StatusOr<std::vector<User>> SearchByPrefix(std::string_view prefix, std::int32_t limit) override;
  // The statement SearchByPrefix prepares, and its parameters for `prefix`
  // and `limit` in order (the tests show its plan).
  static const char* SearchStatement();
  static std::vector<std::string> SearchParameters(std::string_view prefix, std::int32_t limit);
  // Runs SELECT 1 on a pooled connection.
  Status Ping() override;

  // The pool, for metrics (open connections).
  const MysqlConnectionPool& pool() const { return pool_; }

 private:
  MysqlConnectionPool pool_;
};

}  // namespace polycrud
