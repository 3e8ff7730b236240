#include "tools/seed/user_seeder.h"

#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <stdlib.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <future>
#include <string_view>
#include <system_error>
#include <utility>

#include "storage/mysql/mysql_errors.h"

namespace polycrud {
namespace {

// Seeded usernames are "user" + 8 digits, so they sort in numeric order.
constexpr std::int64_t kMaxSeedIndex = 99'999'999;
// A Galera node replicates a LOAD DATA of more rows in streaming fragments,
// which failed here (the fragment's file could not be written, and the
// other nodes then voted the loading node out of the cluster); chunks of at
// most this many rows replicate as one ordinary write set each.
constexpr std::int64_t kGaleraLoadDataRows = 10'000;
constexpr std::int64_t kLongStatementTimeoutMs = 3600 * 1000;
constexpr std::size_t kRowsPerInsert = 1000;

// Server or client refusing LOAD DATA LOCAL INFILE: ER_NOT_ALLOWED_COMMAND,
// CR_LOAD_DATA_LOCAL_INFILE_REJECTED, ER_LOAD_INFILE_CAPABILITY_DISABLED.
bool IsLocalInfileRefused(int error_code) {
  return error_code == 1148 || error_code == 2068 || error_code == 4166;
}

// Names for the synthetic full names: mostly Latin script with accents, some
// Cyrillic, Greek, CJK and Vietnamese, apostrophes; never a tab, newline or
// backslash (the LOAD DATA file format relies on that).
constexpr std::array<std::string_view, 28> kFirstNames = {
    "Ada",     "Alan",   "Grace",  "Linus",  "Zoë",     "José",   "Chloé",
    "Łukasz",  "Søren",  "Björn",  "Ólafur", "Siobhán", "Mei",    "Dmitri",
    "Дмитрий", "Анна",   "Παύλος", "美咲",   "Aarav",   "Fatima", "Oğuz",
    "Renée",   "Jürgen", "Thảo",   "Nnamdi", "Inés",    "Kofi",   "Ewa"};
constexpr std::array<std::string_view, 28> kLastNames = {
    "Lovelace",     "Turing",   "Hopper",       "Torvalds", "Müller", "García",    "O'Brien",
    "Kowalski",     "Nakamura", "Østergaard",   "Иванов",   "Núñez",  "D'Angelo",  "Smith",
    "Dubois",       "Łęcka",    "Papadopoulos", "山田",     "Đặng",   "Kovač",     "Fernández",
    "van der Berg", "Ahmed",    "Šimić",        "Okafor",   "Nguyễn", "Johansson", "Brown"};
constexpr std::array<std::string_view, 4> kDecorations = {" 🚀", " ☕", " 🌍", " ✨"};

std::uint64_t Mix(std::uint64_t x) {
  // splitmix64 finalizer: a cheap, well-spread hash of the row number.
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A private temporary directory, removed with everything in it.
class TempDir {
 public:
  static StatusOr<std::unique_ptr<TempDir>> Create() {
    std::error_code error;
    std::string pattern =
        (std::filesystem::temp_directory_path(error) / "polycrud-seed-XXXXXX").string();
    if (error) return Status::Internal("no temporary directory: " + error.message());
    if (mkdtemp(pattern.data()) == nullptr) {
      return Status::Internal("cannot create a directory like " + pattern);
    }
    return std::unique_ptr<TempDir>(new TempDir(pattern));
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  explicit TempDir(std::filesystem::path path) : path_(std::move(path)) {}
  std::filesystem::path path_;
};

// Writes `count` rows from user number `first_index` and id `first_id` on as
// LOAD DATA input.
Status WriteChunk(const std::filesystem::path& path, std::int64_t first_index,
                  std::int64_t first_id, std::int64_t count, std::int64_t now_ms) {
  std::string buffer;
  buffer.reserve(static_cast<std::size_t>(count) * 96);
  const std::string timestamps = "\t1\t" + std::to_string(now_ms) + "\t" + std::to_string(now_ms);
  std::string username;
  std::string email;
  std::string full_name;
  for (std::int64_t offset = 0; offset < count; ++offset) {
    SeedUserFields(first_index + offset, username, email, full_name);
    buffer += std::to_string(first_id + offset);
    buffer += '\t';
    buffer += username;
    buffer += '\t';
    buffer += email;
    buffer += '\t';
    buffer += full_name;
    buffer += timestamps;
    buffer += '\n';
  }
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) return Status::Internal("cannot write " + path.string());
  const bool written = std::fwrite(buffer.data(), 1, buffer.size(), file) == buffer.size();
  const bool closed = std::fclose(file) == 0;
  if (!written || !closed) return Status::Internal("cannot write " + path.string());
  return Status::Ok();
}

// A file name as a SQL string literal. The path is ours (a temporary
// directory), never user input; quoting still keeps any path valid.
std::string QuoteSqlString(const std::string& text) {
  std::string quoted = "'";
  for (const char c : text) {
    if (c == '\'' || c == '\\') quoted += '\\';
    quoted += c;
  }
  quoted += '\'';
  return quoted;
}

std::string MultiRowInsertSql(std::size_t rows) {
  std::string sql =
      "INSERT INTO users (id, username, email, full_name, version, created_at_ms, "
      "updated_at_ms) VALUES ";
  for (std::size_t i = 0; i < rows; ++i) sql += i == 0 ? "(?,?,?,?,1,?,?)" : ",(?,?,?,?,1,?,?)";
  return sql;
}

}  // namespace

void SeedUserFields(std::int64_t index, std::string& username, std::string& email,
                    std::string& full_name) {
  char name[32];
  std::snprintf(name, sizeof(name), "user%08lld", static_cast<long long>(index));
  username.assign(name);
  email.assign(username).append("@example.com");

  const std::uint64_t hash = Mix(static_cast<std::uint64_t>(index));
  full_name.assign(kFirstNames[hash % kFirstNames.size()]);
  if ((hash >> 20) % 8 == 0) {
    full_name += ' ';
    full_name += static_cast<char>('A' + (hash >> 24) % 26);
    full_name += '.';
  }
  full_name += ' ';
  full_name += kLastNames[(hash >> 8) % kLastNames.size()];
  if ((hash >> 32) % 50 == 0) full_name += kDecorations[(hash >> 40) % kDecorations.size()];
}

UserSeeder::UserSeeder(MysqlOptions options, SeedOptions seed_options)
    : options_(std::move(options)), seed_options_(seed_options) {
  options_.read_timeout_ms = kLongStatementTimeoutMs;
  options_.write_timeout_ms = kLongStatementTimeoutMs;
  options_.local_infile = seed_options_.method != SeedMethod::kInsert;
}

UserSeeder::~UserSeeder() = default;

StatusOr<SeedPlan> UserSeeder::Plan() {
  StatusOr<std::unique_ptr<MysqlConnection>> opened = MysqlConnection::Open(options_);
  if (!opened.ok()) return opened.status();
  connection_ = std::move(opened).value();
  try {
    SeedPlan plan;
    {
      sql::PreparedStatement& count = connection_->Prepare("SELECT COUNT(*) FROM users");
      std::unique_ptr<sql::ResultSet> row(count.executeQuery());
      row->next();
      plan.existing_rows = row->getInt64(1);
    }
    plan.table_empty = plan.existing_rows == 0;
    plan.rows_to_add = std::max<std::int64_t>(0, seed_options_.target_users - plan.existing_rows);
    if (!plan.table_empty) {
      // Scans the username index backwards from the top of the seeded range:
      // the first name of the exact seeded shape is the highest index.
      sql::PreparedStatement& last = connection_->Prepare(
          "SELECT username FROM users WHERE username BETWEEN ? AND ? "
          "AND username REGEXP '^user[0-9]{8}$' ORDER BY username DESC LIMIT 1");
      last.setString(1, "user00000000");
      last.setString(2, "user99999999");
      std::unique_ptr<sql::ResultSet> row(last.executeQuery());
      if (row->next()) {
        const std::string username = row->getString(1);
        plan.first_index = std::stoll(username.substr(4)) + 1;
      }
    }
    {
      // Explicit ids: LOAD DATA reserves AUTO_INCREMENT values in growing
      // blocks and would leave gaps of up to a third of the ids.
      sql::PreparedStatement& next_id = connection_->Prepare(
          "SELECT GREATEST(COALESCE((SELECT AUTO_INCREMENT FROM information_schema.TABLES "
          "WHERE table_schema = DATABASE() AND table_name = 'users'), 1), "
          "COALESCE((SELECT MAX(id) FROM users), 0) + 1)");
      std::unique_ptr<sql::ResultSet> row(next_id.executeQuery());
      row->next();
      plan.first_id = row->getInt64(1);
    }
    if (plan.first_index + plan.rows_to_add - 1 > kMaxSeedIndex) {
      return Status::InvalidArgument("seeded usernames would run past user99999999", "users");
    }
    return plan;
  } catch (const sql::SQLException& e) {
    return StatusFromMysqlError(e);
  } catch (const std::exception& e) {
    return Status::Internal(std::string("seed plan: ") + e.what());
  }
}

StatusOr<SeedResult> UserSeeder::Load(const SeedPlan& plan,
                                      const std::function<void(std::int64_t)>& progress) {
  if (connection_ == nullptr) return Status::Internal("UserSeeder::Load before Plan");
  const auto start = std::chrono::steady_clock::now();
  SeedResult result;
  Status status;
  try {
    // Uniqueness holds by construction only in an empty table; with rows
    // already there, skipping the checks could let a duplicate in. A Galera
    // node keeps them: certification works on the unique keys' entries.
    const bool skip_checks = plan.table_empty && !connection_->galera();
    if (skip_checks) {
      connection_->Execute("SET SESSION unique_checks = 0, foreign_key_checks = 0");
    }
    bool use_insert = seed_options_.method == SeedMethod::kInsert;
    if (!use_insert) {
      result.method = "LOAD DATA LOCAL INFILE";
      bool refused = false;
      status = LoadData(plan, progress, result.rows_added, refused);
      use_insert = refused && seed_options_.method == SeedMethod::kAuto;
    }
    if (use_insert) {
      result.method = "INSERT";
      status = InsertRows(plan, progress, result.rows_added);
    }
    if (skip_checks) {
      connection_->Execute("SET SESSION unique_checks = 1, foreign_key_checks = 1");
    }
  } catch (const sql::SQLException& e) {
    if (status.ok()) status = StatusFromMysqlError(e);
  } catch (const std::exception& e) {
    if (status.ok()) status = Status::Internal(std::string("seed load: ") + e.what());
  }
  if (!status.ok()) return status;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

Status UserSeeder::LoadData(const SeedPlan& plan, const std::function<void(std::int64_t)>& progress,
                            std::int64_t& rows_added, bool& refused) {
  StatusOr<std::unique_ptr<TempDir>> dir = TempDir::Create();
  if (!dir.ok()) return dir.status();
  const std::array<std::filesystem::path, 2> files = {(*dir)->path() / "chunk-0.tsv",
                                                      (*dir)->path() / "chunk-1.tsv"};
  const std::int64_t batch = std::max<std::int64_t>(
      1, connection_->galera() ? std::min(seed_options_.batch_rows, kGaleraLoadDataRows)
                               : seed_options_.batch_rows);
  const std::int64_t now_ms = NowMs();
  auto chunk_rows = [&](std::int64_t offset) { return std::min(batch, plan.rows_to_add - offset); };

  // Double buffering: the next chunk file is generated while the server
  // loads the current one.
  std::future<Status> pending;
  if (plan.rows_to_add > 0) {
    pending = std::async(std::launch::async, WriteChunk, files[0], plan.first_index, plan.first_id,
                         chunk_rows(0), now_ms);
  }
  std::size_t slot = 0;
  for (std::int64_t offset = 0; offset < plan.rows_to_add; offset += batch) {
    Status written = pending.get();
    if (!written.ok()) return written;
    const std::int64_t rows = chunk_rows(offset);
    if (offset + rows < plan.rows_to_add) {
      pending = std::async(std::launch::async, WriteChunk, files[1 - slot],
                           plan.first_index + offset + rows, plan.first_id + offset + rows,
                           chunk_rows(offset + rows), now_ms);
    }
    std::uint64_t stored = 0;
    try {
      stored = connection_->Execute(
          "LOAD DATA LOCAL INFILE " + QuoteSqlString(files[slot].string()) +
          " INTO TABLE users CHARACTER SET utf8mb4"
          " FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n'"
          " (id, username, email, full_name, version, created_at_ms, updated_at_ms)");
    } catch (const sql::SQLException& e) {
      if (IsLocalInfileRefused(e.getErrorCode())) {
        refused = rows_added == 0;
        return Status::Internal(
            "LOAD DATA LOCAL INFILE refused (local_infile is off on the "
            "server or client; --method insert avoids it): " +
            std::string(e.what()));
      }
      return StatusFromMysqlError(e);
    }
    // With LOCAL the server skips bad or duplicate rows with a warning
    // instead of failing, so the count is the only sign of trouble.
    if (stored != static_cast<std::uint64_t>(rows)) {
      return Status::Internal("LOAD DATA stored " + std::to_string(stored) + " of " +
                              std::to_string(rows) + " rows (duplicates or invalid rows)");
    }
    rows_added += rows;
    progress(rows_added);
    slot = 1 - slot;
  }
  return Status::Ok();
}

Status UserSeeder::InsertRows(const SeedPlan& plan,
                              const std::function<void(std::int64_t)>& progress,
                              std::int64_t& rows_added) {
  const std::int64_t batch = std::max<std::int64_t>(1, seed_options_.batch_rows);
  const std::int64_t now_ms = NowMs();
  std::string username;
  std::string email;
  std::string full_name;
  try {
    std::int64_t offset = 0;
    while (offset < plan.rows_to_add) {
      const std::int64_t transaction_end = std::min(plan.rows_to_add, offset + batch);
      connection_->Execute("START TRANSACTION");
      while (offset < transaction_end) {
        const auto rows = static_cast<std::size_t>(std::min<std::int64_t>(
            static_cast<std::int64_t>(kRowsPerInsert), transaction_end - offset));
        sql::PreparedStatement& insert = connection_->Prepare(MultiRowInsertSql(rows));
        unsigned int parameter = 1;
        for (std::size_t i = 0; i < rows; ++i) {
          const std::int64_t row = offset + static_cast<std::int64_t>(i);
          SeedUserFields(plan.first_index + row, username, email, full_name);
          insert.setInt64(parameter++, plan.first_id + row);
          insert.setString(parameter++, username);
          insert.setString(parameter++, email);
          insert.setString(parameter++, full_name);
          insert.setInt64(parameter++, now_ms);
          insert.setInt64(parameter++, now_ms);
        }
        insert.executeUpdate();
        offset += static_cast<std::int64_t>(rows);
      }
      connection_->Execute("COMMIT");
      rows_added = offset;
      progress(rows_added);
    }
  } catch (const sql::SQLException& e) {
    // Batches already reported stay committed; the current one goes.
    try {
      connection_->Execute("ROLLBACK");
    } catch (const sql::SQLException&) {
      connection_->MarkBroken();  // closing the session rolls back instead
    }
    return StatusFromMysqlError(e);
  }
  return Status::Ok();
}

StatusOr<std::int64_t> UserSeeder::TableBytes() {
  if (connection_ == nullptr) return Status::Internal("UserSeeder::TableBytes before Plan");
  try {
    connection_->Execute("ANALYZE TABLE users");
    sql::PreparedStatement& size = connection_->Prepare(
        "SELECT data_length + index_length FROM information_schema.TABLES "
        "WHERE table_schema = DATABASE() AND table_name = 'users'");
    std::unique_ptr<sql::ResultSet> row(size.executeQuery());
    if (!row->next()) return Status::Internal("users table not in information_schema");
    return row->getInt64(1);
  } catch (const sql::SQLException& e) {
    return StatusFromMysqlError(e);
  }
}

}  // namespace polycrud
