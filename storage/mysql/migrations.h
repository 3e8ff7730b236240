// The schema migrations compiled into the binary (the SQL files of
// storage/mysql/migrations/, embedded at build time by embed_migrations.cmake)
// and the runner that applies them.
#pragma once

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

// Creates or upgrades the schema of the database `options` names: applies,
// in version order, the embedded migrations not yet recorded in
// schema_migrations, recording each one after it succeeds, on a connection
// of its own without `options`' read and write timeouts (DDL on a large
// table may take long). Holds the server lock 'polycrud_migrations'
// meanwhile, so servers starting together do not race; kUnavailable if that
// lock is not granted within 30 s. Idempotent.
Status ApplyMigrations(MysqlOptions options);

}  // namespace polycrud
