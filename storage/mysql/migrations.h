// The schema migrations compiled into the binary: the SQL files of
// storage/mysql/migrations/, embedded at build time by embed_migrations.cmake.
#pragma once

#include <span>
#include <string_view>

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

}  // namespace polycrud
