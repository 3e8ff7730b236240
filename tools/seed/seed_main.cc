// polycrud-seed: migrates the schema, then tops the users table up to N
// synthetic users as fast as the server allows, with a progress bar on
// stderr. Idempotent: a table already holding N users is left alone.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>

#include "storage/mysql/mysql_user_store.h"
#include "tools/seed/progress_bar.h"
#include "tools/seed/user_seeder.h"

namespace polycrud {
namespace {

int Run(const MysqlOptions& mysql, const SeedOptions& seed) {
  spdlog::info("migrating schema of {} on {}:{}", mysql.database, mysql.host, mysql.port);
  MysqlUserStore store(mysql);
  if (Status migrated = store.Migrate(); !migrated.ok()) {
    spdlog::error("migration failed: {}", migrated.ToString());
    return 1;
  }

  UserSeeder seeder(mysql, seed);
  StatusOr<SeedPlan> plan = seeder.Plan();
  if (!plan.ok()) {
    spdlog::error("cannot inspect the users table: {}", plan.status().ToString());
    return 1;
  }
  if (plan->rows_to_add == 0) {
    std::printf("users already holds %s rows (target %s): nothing to do\n",
                ProgressBar::FormatCount(plan->existing_rows).c_str(),
                ProgressBar::FormatCount(seed.target_users).c_str());
    return 0;
  }
  spdlog::info("adding {} users from user{:08d} to the {} already there",
               ProgressBar::FormatCount(plan->rows_to_add), plan->first_index,
               ProgressBar::FormatCount(plan->existing_rows));

  ProgressBar bar(plan->rows_to_add, "rows", stderr);
  StatusOr<SeedResult> result = seeder.Load(*plan, [&](std::int64_t done) { bar.Update(done); });
  if (!result.ok()) {
    bar.Abandon();
    spdlog::error("seeding failed: {}", result.status().ToString());
    return 1;
  }
  bar.Finish();

  const double rate =
      result->seconds > 0 ? static_cast<double>(result->rows_added) / result->seconds : 0.0;
  std::printf("added %s users in %.1f s (%s rows/s) with %s; users now holds %s rows\n",
              ProgressBar::FormatCount(result->rows_added).c_str(), result->seconds,
              ProgressBar::FormatCount(static_cast<std::int64_t>(rate)).c_str(),
              result->method.c_str(),
              ProgressBar::FormatCount(plan->existing_rows + result->rows_added).c_str());
  StatusOr<std::int64_t> bytes = seeder.TableBytes();
  if (bytes.ok()) {
    std::printf("users table on disk (data + indexes): %.1f MiB\n",
                static_cast<double>(*bytes) / (1024.0 * 1024.0));
  } else {
    spdlog::warn("cannot read the table size: {}", bytes.status().ToString());
  }
  return 0;
}

}  // namespace
}  // namespace polycrud

int main(int argc, char** argv) {
  using polycrud::SeedMethod;
  polycrud::MysqlOptions mysql;
  mysql.host = "127.0.0.1";
  mysql.port = 3306;
  mysql.user = "polycrud";
  mysql.database = "polycrud";
  polycrud::SeedOptions seed;
  std::string method = "auto";

  CLI::App app{"Loads N synthetic users into the polycrud database (after migrating its schema)."};
  app.set_version_flag("--version", POLYCRUD_VERSION);
  app.add_option("--host", mysql.host, "MySQL/MariaDB host")
      ->envname("POLYCRUD_MYSQL_HOST")
      ->capture_default_str();
  app.add_option("--port", mysql.port, "MySQL/MariaDB port")
      ->envname("POLYCRUD_MYSQL_PORT")
      ->check(CLI::Range(1, 65535))
      ->capture_default_str();
  app.add_option("--user", mysql.user, "database user")
      ->envname("POLYCRUD_MYSQL_USER")
      ->capture_default_str();
  app.add_option("--password", mysql.password,
                 "database password (prefer the environment variable: flags show in ps)")
      ->envname("POLYCRUD_MYSQL_PASSWORD");
  app.add_option("--database", mysql.database, "database (schema) name")
      ->envname("POLYCRUD_MYSQL_DATABASE")
      ->capture_default_str();
  app.add_option("--users", seed.target_users,
                 "number of users the table should hold; missing ones are added")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{99'999'999}))
      ->capture_default_str();
  app.add_option("--batch", seed.batch_rows,
                 "rows per LOAD DATA statement (at most 10000 on a Galera node), or per INSERT "
                 "transaction")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{10'000'000}))
      ->capture_default_str();
  app.add_option("--method", method,
                 "auto (LOAD DATA LOCAL INFILE, INSERT if the server refuses), load-data, insert")
      ->check(CLI::IsMember({"auto", "load-data", "insert"}))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  static const std::map<std::string, SeedMethod> kMethods = {{"auto", SeedMethod::kAuto},
                                                             {"load-data", SeedMethod::kLoadData},
                                                             {"insert", SeedMethod::kInsert}};
  seed.method = kMethods.at(method);

  spdlog::set_default_logger(spdlog::stderr_color_mt("polycrud-seed"));
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  return polycrud::Run(mysql, seed);
}
