#include "storage/mysql/mysql_outbox.h"

#include <cppconn/connection.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <memory>
#include <string>
#include <utility>

#include "storage/mysql/mysql_call.h"

namespace polycrud {
namespace {

constexpr char kLeaseTable[] = "event_relay_lease";
constexpr char kUnsentSql[] =
    "SELECT seq, event_id, type, user_id, version, occurred_at_ms, body FROM user_events "
    "WHERE sent_at_ms IS NULL ORDER BY seq LIMIT ?";
constexpr char kPruneSql[] =
    "DELETE FROM user_events WHERE sent_at_ms IS NOT NULL AND sent_at_ms < ? LIMIT ?";
constexpr char kPendingSql[] =
    "SELECT COUNT(*), COALESCE(MIN(occurred_at_ms), 0) FROM user_events WHERE sent_at_ms IS NULL";

MysqlOptions OutboxPoolOptions(MysqlOptions options) {
  options.pool_size = 2;
  options.write_events = false;
  return options;
}

}  // namespace

MysqlOutbox::MysqlOutbox(MysqlOptions options, std::int64_t lease_ms)
    : pool_(OutboxPoolOptions(std::move(options))), lease_(kLeaseTable, lease_ms) {}

MysqlOutbox::~MysqlOutbox() = default;

StatusOr<bool> MysqlOutbox::HoldLease() {
  return WithConnection(pool_, MysqlRetry::kOnStaleConnection,
                        [&](MysqlConnection& connection) -> StatusOr<bool> {
                          if (held_ && lease_.Renew(connection)) return true;
                          held_ = lease_.TryTake(connection);
                          return held_;
                        });
}

Status MysqlOutbox::ReleaseLease() {
  if (!held_) return Status::Ok();
  held_ = false;
  return WithConnection(pool_, MysqlRetry::kOnStaleConnection,
                        [&](MysqlConnection& connection) -> Status {
                          lease_.Release(connection);
                          return Status::Ok();
                        });
}

StatusOr<std::vector<OutboxEvent>> MysqlOutbox::Unsent(std::int32_t limit) {
  return WithConnection(pool_, MysqlRetry::kOnStaleConnection,
                        [&](MysqlConnection& connection) -> StatusOr<std::vector<OutboxEvent>> {
                          sql::PreparedStatement& select = connection.Prepare(kUnsentSql);
                          select.setInt(1, limit);
                          std::unique_ptr<sql::ResultSet> rows(select.executeQuery());
                          std::vector<OutboxEvent> events;
                          events.reserve(rows->rowsCount());
                          while (rows->next()) {
                            OutboxEvent& event = events.emplace_back();
                            event.seq = rows->getInt64(1);
                            event.event_id = rows->getString(2);
                            event.type = rows->getString(3);
                            event.user_id = rows->getInt64(4);
                            event.version = rows->getInt64(5);
                            event.occurred_at_ms = rows->getInt64(6);
                            event.body = rows->getString(7);
                          }
                          return events;
                        });
}

Status MysqlOutbox::MarkSent(std::span<const std::int64_t> seqs, std::int64_t now_ms) {
  if (seqs.empty()) return Status::Ok();
  // Ids are integers: the list is built from them, never from text.
  std::string sql = "UPDATE user_events SET sent_at_ms = ? WHERE seq IN (";
  for (std::size_t i = 0; i < seqs.size(); ++i) {
    if (i > 0) sql += ',';
    sql += std::to_string(seqs[i]);
  }
  sql += ')';
  return WithConnection(pool_, MysqlRetry::kNo, [&](MysqlConnection& connection) -> Status {
    std::unique_ptr<sql::PreparedStatement> update(connection.raw().prepareStatement(sql));
    update->setInt64(1, now_ms);
    update->executeUpdate();
    return Status::Ok();
  });
}

StatusOr<std::int64_t> MysqlOutbox::Prune(std::int64_t sent_before_ms, std::int32_t limit) {
  return WithConnection(pool_, MysqlRetry::kNo,
                        [&](MysqlConnection& connection) -> StatusOr<std::int64_t> {
                          sql::PreparedStatement& prune = connection.Prepare(kPruneSql);
                          prune.setInt64(1, sent_before_ms);
                          prune.setInt(2, limit);
                          return static_cast<std::int64_t>(prune.executeUpdate());
                        });
}

StatusOr<MysqlOutbox::Backlog> MysqlOutbox::Pending() {
  return WithConnection(pool_, MysqlRetry::kOnStaleConnection,
                        [&](MysqlConnection& connection) -> StatusOr<Backlog> {
                          sql::PreparedStatement& select = connection.Prepare(kPendingSql);
                          std::unique_ptr<sql::ResultSet> row(select.executeQuery());
                          Backlog backlog;
                          if (row->next()) {
                            backlog.events = row->getInt64(1);
                            backlog.oldest_ms = row->getInt64(2);
                          }
                          return backlog;
                        });
}

}  // namespace polycrud
