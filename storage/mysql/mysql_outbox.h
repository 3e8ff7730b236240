// MysqlOutbox: the EventOutbox port on the user_events table (migration
// 0002) and the relay lease in event_relay_lease (MysqlLease), through a
// small connection pool of its own.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/ports.h"
#include "core/status.h"
#include "storage/mysql/mysql_connection_pool.h"
#include "storage/mysql/mysql_lease.h"

namespace polycrud {

class MysqlOutbox final : public EventOutbox {
 public:
  // `options` as the store's (its pool size is set to 2 here).
  MysqlOutbox(MysqlOptions options, std::int64_t lease_ms);
  ~MysqlOutbox() override;

  StatusOr<bool> HoldLease() override;
  Status ReleaseLease() override;
  StatusOr<std::vector<OutboxEvent>> Unsent(std::int32_t limit) override;
  Status MarkSent(std::span<const std::int64_t> seqs, std::int64_t now_ms) override;
  StatusOr<std::int64_t> Prune(std::int64_t sent_before_ms, std::int32_t limit) override;

  // Events not yet sent, and the commit time (occurred_at_ms) of the oldest
  // (0 when none): the backlog an operator watches.
  struct Backlog {
    std::int64_t events = 0;
    std::int64_t oldest_ms = 0;
  };
  StatusOr<Backlog> Pending();

  const MysqlLease& lease() const { return lease_; }

 private:
  MysqlConnectionPool pool_;
  MysqlLease lease_;
  bool held_ = false;  // HoldLease and ReleaseLease run on the relay's thread only
};

}  // namespace polycrud
