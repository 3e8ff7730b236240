// Bulk loading of synthetic users for polycrud-seed: plans how many rows are
// missing, then adds them fast with LOAD DATA LOCAL INFILE of generated chunk
// files (or multi-row prepared INSERTs where the server refuses local files).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/status.h"
#include "storage/mysql/mysql_connection_pool.h"

namespace polycrud {

enum class SeedMethod : std::uint8_t {
  kAuto,      // LOAD DATA LOCAL INFILE, falling back to INSERT if refused
  kLoadData,  // LOAD DATA LOCAL INFILE only
  kInsert,    // multi-row prepared INSERTs only
};

struct SeedOptions {
  // The users table should end up holding at least this many rows.
  std::int64_t target_users = 8'000'000;
  // Rows per LOAD DATA statement, or per INSERT transaction.
  std::int64_t batch_rows = 100'000;
  SeedMethod method = SeedMethod::kAuto;
};

// What a run will do, decided by Plan().
struct SeedPlan {
  std::int64_t existing_rows = 0;
  std::int64_t rows_to_add = 0;
  // Seeded usernames are user<index, 8 digits>; the new ones start here.
  std::int64_t first_index = 1;
  // The new rows get consecutive ids from here: the table's next
  // AUTO_INCREMENT value, so no id is reused and none is skipped.
  std::int64_t first_id = 1;
  // The table was empty: uniqueness holds by construction, so the session may
  // skip unique checks.
  bool table_empty = true;
};

struct SeedResult {
  std::int64_t rows_added = 0;
  double seconds = 0;
  std::string method;  // "LOAD DATA LOCAL INFILE" or "INSERT"
};

// One seeding session on a dedicated connection (no read timeout worth
// speaking of: statements on millions of rows take long). Not thread-safe.
class UserSeeder {
 public:
  UserSeeder(MysqlOptions options, SeedOptions seed_options);
  ~UserSeeder();

  // Connects, counts the rows and finds where the seeded usernames end.
  StatusOr<SeedPlan> Plan();
  // Adds plan.rows_to_add users, calling `progress(rows_added_so_far)` after
  // every batch. Requires a successful Plan().
  StatusOr<SeedResult> Load(const SeedPlan& plan,
                            const std::function<void(std::int64_t)>& progress);
  // The users table's size on disk (data + indexes), after refreshing the
  // server's statistics.
  StatusOr<std::int64_t> TableBytes();

 private:
  // Sets `refused` when the server or client does not allow local files
  // and nothing was loaded yet.
  Status LoadData(const SeedPlan& plan, const std::function<void(std::int64_t)>& progress,
                  std::int64_t& rows_added, bool& refused);
  Status InsertRows(const SeedPlan& plan, const std::function<void(std::int64_t)>& progress,
                    std::int64_t& rows_added);

  MysqlOptions options_;
  SeedOptions seed_options_;
  std::unique_ptr<MysqlConnection> connection_;
};

// The synthetic user number `index`: user00000042, user00000042@example.com
// and a full name drawn from a fixed mix of ASCII and non-ASCII names.
// Deterministic, so reruns produce the same rows.
void SeedUserFields(std::int64_t index, std::string& username, std::string& email,
                    std::string& full_name);

}  // namespace polycrud
