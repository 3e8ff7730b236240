// The schema migrations compiled into the binary (the SQL files of
// storage/mysql/migrations/, embedded at build time by embed_migrations.cmake)
// and the runner that applies them.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "core/status.h"
#include "storage/mysql/mysql_connection_pool.h"

namespace polycrud {

// One numbered migration, from the file <version>_<name>.sql. `sql` may hold
// several statements separated by semicolons.
struct Migration {
  int version = 0;
  std::string_view name;
  std::string_view sql;
};

// Every embedded migration, in strictly increasing version order.
std::span<const Migration> EmbeddedMigrations();

// How migrators starting together take turns. The lock is a row in
// schema_migration_lock, a lease with an owner and an expiry, not GET_LOCK:
// a Galera cluster does not replicate GET_LOCK, so two servers behind a
// balancer that just moved its writer could both hold it. The row is
// replicated like any other write; two migrators inserting it on different
// nodes at once collide at certification (one gets a deadlock error and
// tries again). A migrator that died leaves its lease behind until it
// expires, then the next one takes it over.
struct MigrationLockOptions {
  // How long to wait for another migrator's lease to end.
  std::int64_t wait_ms = 30'000;
  // How long a lease lasts; it is renewed before each migration, so only a
  // single statement running longer than this lets another migrator in.
  std::int64_t lease_ms = 300'000;
  // Pause between two attempts to take the lease.
  std::int64_t poll_ms = 200;
};

// Creates or upgrades the schema of the database `options` names: applies,
// in version order, the embedded migrations not yet recorded in
// schema_migrations, recording each one after it succeeds, on a connection
// of its own without `options`' read and write timeouts (DDL on a large
// table may take long). Holds the migration lease meanwhile (see
// MigrationLockOptions), so servers starting together do not race;
// kUnavailable if it is not granted within lock.wait_ms, or if it was lost
// (expired and taken over) before a migration. Idempotent.
Status ApplyMigrations(MysqlOptions options, const MigrationLockOptions& lock = {});

}  // namespace polycrud
