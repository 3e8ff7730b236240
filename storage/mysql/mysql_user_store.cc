#include "storage/mysql/mysql_user_store.h"

#include <cppconn/datatype.h>
#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <sys/random.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "storage/mysql/migrations.h"
#include "storage/mysql/mysql_call.h"
#include "storage/mysql/mysql_errors.h"

namespace polycrud {
namespace {

constexpr char kInsertSql[] =
    "INSERT INTO users (username, email, full_name, version, created_at_ms, updated_at_ms) "
    "VALUES (?, ?, ?, 1, ?, ?) RETURNING id";
constexpr char kSelectByIdSql[] =
    "SELECT id, username, email, full_name, version, created_at_ms, updated_at_ms "
    "FROM users WHERE id = ?";
constexpr char kSelectVersionSql[] = "SELECT version FROM users WHERE id = ?";
// The version check and the bump happen in this one statement, so concurrent
// updates serialize on the row lock and none is lost.
constexpr char kUpdateSql[] =
    "UPDATE users SET email = COALESCE(?, email), full_name = COALESCE(?, full_name), "
    "version = version + 1, updated_at_ms = ? "
    "WHERE id = ? AND (? = 0 OR version = ?)";
constexpr char kDeleteSql[] = "DELETE FROM users WHERE id = ? RETURNING version";
// The outbox row of a create or update: the user as this transaction wrote
// it, bound from the values the store holds (MariaDB's JSON_OBJECT escapes
// them). occurred_at_ms is the database's clock at the statement.
constexpr char kInsertUserEventSql[] =
    "INSERT INTO user_events (event_id, type, user_id, version, occurred_at_ms, body) "
    "SELECT ?, ?, ?, ?, at_ms, JSON_OBJECT('event_id', ?, 'type', ?, 'id', ?, 'version', ?, "
    "'occurred_at_ms', at_ms, 'user', JSON_OBJECT('id', ?, 'username', ?, 'email', ?, "
    "'full_name', ?, 'version', ?, 'created_at_ms', ?, 'updated_at_ms', ?)) "
    "FROM (SELECT CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED) AS at_ms) AS clock";
// A delete's event: the version after the last one the user had, so that
// ordering by version puts it after every update.
constexpr char kInsertDeleteEventSql[] =
    "INSERT INTO user_events (event_id, type, user_id, version, occurred_at_ms, body) "
    "SELECT ?, 'user.deleted', ?, ?, at_ms, JSON_OBJECT('event_id', ?, 'type', 'user.deleted', "
    "'id', ?, 'version', ?, 'occurred_at_ms', at_ms) "
    "FROM (SELECT CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED) AS at_ms) AS clock";
constexpr char kListAfterSql[] =
    "SELECT id, username, email, full_name, version, created_at_ms, updated_at_ms "
    "FROM users WHERE id > ? ORDER BY id LIMIT ?";
// A search: the prefix range of each unique index, merged and ordered by
// username. LIKE with a constant prefix and no leading wildcard is a range
// on the index; '!' escapes the wildcards (and itself), so every character
// of the prefix stands for itself. The username range is read in username
// order, so its first `limit` rows are all it can give; the e-mail range is
// read in e-mail order and cut at kSearchEmailRangeCap rows. Parameters:
// the username pattern ('' when the prefix cannot start a username: that
// matches no row), the limit, the e-mail pattern (lower-cased by MariaDB's
// LOWER, as email_lower is), the limit again. tests/storage shows the plan.
constexpr char kSearchSql[] =
    "SELECT id, username, email, full_name, version, created_at_ms, updated_at_ms FROM ("
    "(SELECT id, username, email, full_name, version, created_at_ms, updated_at_ms "
    "FROM users WHERE username LIKE ? ESCAPE '!' ORDER BY username LIMIT ?) "
    "UNION "
    "(SELECT id, username, email, full_name, version, created_at_ms, updated_at_ms "
    "FROM users WHERE email_lower LIKE LOWER(?) ESCAPE '!' ORDER BY email_lower LIMIT 500)"
    ") AS matches ORDER BY username, id LIMIT ?";
static_assert(kSearchEmailRangeCap == 500, "the LIMIT of kSearchSql's e-mail range");
constexpr char kPingSql[] = "SELECT 1";

// FindByIds pads each query up to one of these sizes (repeating an id is
// harmless in IN), so a connection caches a handful of statements instead of
// one per batch size; the server's max_prepared_stmt_count stays far away.
constexpr std::array<std::size_t, 11> kInListSizes = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000};
static_assert(kInListSizes.back() == kMaxBatchIds);

const std::string& SelectByIdsSql(std::size_t bucket) {
  static const std::array<std::string, kInListSizes.size()> kSql = [] {
    std::array<std::string, kInListSizes.size()> sql;
    for (std::size_t i = 0; i < kInListSizes.size(); ++i) {
      std::string& text = sql[i];
      text =
          "SELECT id, username, email, full_name, version, created_at_ms, updated_at_ms "
          "FROM users WHERE id IN (?";
      for (std::size_t j = 1; j < kInListSizes[i]; ++j) text += ",?";
      text += ")";
    }
    return sql;
  }();
  return kSql[bucket];
}

std::size_t InListBucket(std::size_t count) {
  const auto it = std::lower_bound(kInListSizes.begin(), kInListSizes.end(), count);
  return static_cast<std::size_t>(it - kInListSizes.begin());
}

User ReadUser(const sql::ResultSet& row);

// Every row of `rows` as a user.
std::vector<User> ReadUsers(sql::ResultSet& rows) {
  std::vector<User> users;
  users.reserve(rows.rowsCount());
  while (rows.next()) users.push_back(ReadUser(rows));
  return users;
}

User ReadUser(const sql::ResultSet& row) {
  User user;
  user.id = row.getInt64(1);
  user.username = row.getString(2);
  user.email = row.getString(3);
  user.full_name = row.getString(4);
  user.version = row.getInt64(5);
  user.created_at_ms = row.getInt64(6);
  user.updated_at_ms = row.getInt64(7);
  return user;
}

std::optional<User> SelectById(MysqlConnection& connection, std::int64_t id) {
  sql::PreparedStatement& select = connection.Prepare(kSelectByIdSql);
  select.setInt64(1, id);
  std::unique_ptr<sql::ResultSet> row(select.executeQuery());
  if (!row->next()) return std::nullopt;
  return ReadUser(*row);
}

// A random (version 4) UUID: an event's id, stable once written.
std::string NewEventId() {
  std::array<unsigned char, 16> bytes{};
  std::size_t filled = 0;
  while (filled < bytes.size()) {
    const ssize_t n = getrandom(bytes.data() + filled, bytes.size() - filled, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::runtime_error("getrandom failed");
    filled += static_cast<std::size_t>(n);
  }
  bytes[6] = static_cast<unsigned char>((bytes[6] & 0x0f) | 0x40);
  bytes[8] = static_cast<unsigned char>((bytes[8] & 0x3f) | 0x80);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  id.reserve(36);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) id += '-';
    id += kHex[bytes[i] >> 4];
    id += kHex[bytes[i] & 0x0f];
  }
  return id;
}

// The outbox row of a create or update of `user`, in the caller's transaction.
void InsertUserEvent(MysqlConnection& connection, const std::string& type, const User& user) {
  const std::string event_id = NewEventId();
  sql::PreparedStatement& insert = connection.Prepare(kInsertUserEventSql);
  insert.setString(1, event_id);
  insert.setString(2, type);
  insert.setInt64(3, user.id);
  insert.setInt64(4, user.version);
  insert.setString(5, event_id);
  insert.setString(6, type);
  insert.setInt64(7, user.id);
  insert.setInt64(8, user.version);
  insert.setInt64(9, user.id);
  insert.setString(10, user.username);
  insert.setString(11, user.email);
  insert.setString(12, user.full_name);
  insert.setInt64(13, user.version);
  insert.setInt64(14, user.created_at_ms);
  insert.setInt64(15, user.updated_at_ms);
  insert.executeUpdate();
}

// The outbox row of a delete of `id`, whose last version was `version`.
void InsertDeleteEvent(MysqlConnection& connection, std::int64_t id, std::int64_t version) {
  const std::string event_id = NewEventId();
  sql::PreparedStatement& insert = connection.Prepare(kInsertDeleteEventSql);
  insert.setString(1, event_id);
  insert.setInt64(2, id);
  insert.setInt64(3, version + 1);
  insert.setString(4, event_id);
  insert.setInt64(5, id);
  insert.setInt64(6, version + 1);
  insert.executeUpdate();
}

// An explicit transaction that rolls back unless committed. If even the
// rollback fails, the connection is marked broken: closing it makes the
// server roll back.
class Transaction {
 public:
  explicit Transaction(MysqlConnection& connection) : connection_(connection) {
    connection_.Execute("START TRANSACTION");
  }
  ~Transaction() {
    if (finished_) return;
    try {
      connection_.Execute("ROLLBACK");
    } catch (const std::exception&) {
      connection_.MarkBroken();
    }
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  void Commit() {
    connection_.Execute("COMMIT");
    finished_ = true;
  }

  // Commits; a COMMIT cut by the statement timeout may have committed or
  // not: the outcome is unknown (docs/cache-protocol.md, rule 9), never
  // "busy", so it answers UNAVAILABLE and drops the connection.
  Status CommitOrUnknown() {
    try {
      Commit();
      return Status::Ok();
    } catch (const sql::SQLException& e) {
      if (!IsMysqlStatementTimeout(e.getErrorCode())) throw;
      connection_.MarkBroken();
      return Status::Unavailable("database unavailable");
    }
  }

 private:
  MysqlConnection& connection_;
  bool finished_ = false;
};

}  // namespace

MysqlUserStore::MysqlUserStore(Options options) : pool_(std::move(options)) {}

MysqlUserStore::~MysqlUserStore() = default;

Status MysqlUserStore::Migrate() { return ApplyMigrations(pool_.options()); }

StatusOr<User> MysqlUserStore::Insert(const UserDraft& draft, std::int64_t now_ms) {
  const bool events = pool_.options().write_events;
  return WithConnection(pool_, MysqlRetry::kNo, [&](MysqlConnection& connection) -> StatusOr<User> {
    std::optional<Transaction> transaction;
    if (events) transaction.emplace(connection);
    sql::PreparedStatement& insert = connection.Prepare(kInsertSql);
    insert.setString(1, draft.username);
    insert.setString(2, draft.email);
    insert.setString(3, draft.full_name);
    insert.setInt64(4, now_ms);
    insert.setInt64(5, now_ms);
    std::unique_ptr<sql::ResultSet> returned(insert.executeQuery());
    if (!returned->next()) return Status::Internal("INSERT ... RETURNING id returned no row");
    User user;
    user.id = returned->getInt64(1);
    user.username = draft.username;
    user.email = draft.email;
    user.full_name = draft.full_name;
    user.version = 1;
    user.created_at_ms = now_ms;
    user.updated_at_ms = now_ms;
    if (events) {
      InsertUserEvent(connection, "user.created", user);
      if (Status s = transaction->CommitOrUnknown(); !s.ok()) return s;
    }
    return user;
  });
}

StatusOr<std::optional<User>> MysqlUserStore::FindById(std::int64_t id) {
  return WithConnection(pool_, MysqlRetry::kOnStaleConnection,
                        [&](MysqlConnection& connection) -> StatusOr<std::optional<User>> {
                          return SelectById(connection, id);
                        });
}

StatusOr<std::vector<User>> MysqlUserStore::FindByIds(std::span<const std::int64_t> ids) {
  std::vector<std::int64_t> distinct(ids.begin(), ids.end());
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  if (distinct.empty()) return std::vector<User>{};

  return WithConnection(
      pool_, MysqlRetry::kOnStaleConnection,
      [&](MysqlConnection& connection) -> StatusOr<std::vector<User>> {
        std::vector<User> users;
        users.reserve(distinct.size());
        for (std::size_t begin = 0; begin < distinct.size(); begin += kMaxBatchIds) {
          const std::size_t count = std::min(kMaxBatchIds, distinct.size() - begin);
          const std::size_t bucket = InListBucket(count);
          sql::PreparedStatement& select = connection.Prepare(SelectByIdsSql(bucket));
          for (std::size_t i = 0; i < kInListSizes[bucket]; ++i) {
            const std::int64_t id = distinct[begin + std::min(i, count - 1)];
            select.setInt64(static_cast<unsigned int>(i + 1), id);
          }
          std::unique_ptr<sql::ResultSet> rows(select.executeQuery());
          while (rows->next()) users.push_back(ReadUser(*rows));
        }
        return users;
      });
}

StatusOr<User> MysqlUserStore::Update(std::int64_t id, const UserPatch& patch,
                                      std::int64_t now_ms) {
  return WithConnection(pool_, MysqlRetry::kNo, [&](MysqlConnection& connection) -> StatusOr<User> {
    Transaction transaction(connection);
    sql::PreparedStatement& update = connection.Prepare(kUpdateSql);
    if (patch.email.has_value()) {
      update.setString(1, *patch.email);
    } else {
      update.setNull(1, sql::DataType::VARCHAR);
    }
    if (patch.full_name.has_value()) {
      update.setString(2, *patch.full_name);
    } else {
      update.setNull(2, sql::DataType::VARCHAR);
    }
    update.setInt64(3, now_ms);
    update.setInt64(4, id);
    update.setInt64(5, patch.expected_version);
    update.setInt64(6, patch.expected_version);
    if (update.executeUpdate() == 0) {
      sql::PreparedStatement& select = connection.Prepare(kSelectVersionSql);
      select.setInt64(1, id);
      std::unique_ptr<sql::ResultSet> row(select.executeQuery());
      if (!row->next()) return Status::NotFound("user not found");
      return Status::VersionMismatch("version mismatch: current version is " +
                                     std::to_string(row->getInt64(1)));
    }
    std::optional<User> updated = SelectById(connection, id);
    if (!updated.has_value()) return Status::Internal("updated row not found in its transaction");
    if (pool_.options().write_events) InsertUserEvent(connection, "user.updated", *updated);
    if (Status s = transaction.CommitOrUnknown(); !s.ok()) return s;
    return std::move(*updated);
  });
}

StatusOr<std::int64_t> MysqlUserStore::Delete(std::int64_t id) {
  const bool events = pool_.options().write_events;
  return WithConnection(pool_, MysqlRetry::kNo,
                        [&](MysqlConnection& connection) -> StatusOr<std::int64_t> {
                          std::optional<Transaction> transaction;
                          if (events) transaction.emplace(connection);
                          sql::PreparedStatement& remove = connection.Prepare(kDeleteSql);
                          remove.setInt64(1, id);
                          std::unique_ptr<sql::ResultSet> row(remove.executeQuery());
                          if (!row->next()) return Status::NotFound("user not found");
                          const std::int64_t version = row->getInt64(1);
                          if (events) {
                            InsertDeleteEvent(connection, id, version);
                            if (Status s = transaction->CommitOrUnknown(); !s.ok()) return s;
                          }
                          return version;
                        });
}

StatusOr<std::vector<User>> MysqlUserStore::ListAfter(std::int64_t after_id, std::int32_t limit) {
  if (limit <= 0) return std::vector<User>{};
  return WithConnection(pool_, MysqlRetry::kOnStaleConnection,
                        [&](MysqlConnection& connection) -> StatusOr<std::vector<User>> {
                          sql::PreparedStatement& select = connection.Prepare(kListAfterSql);
                          select.setInt64(1, after_id);
                          select.setInt(2, limit);
                          std::unique_ptr<sql::ResultSet> rows(select.executeQuery());
                          return ReadUsers(*rows);
                        });
}

namespace {

// `prefix` as a LIKE pattern with '!' as the escape character, then '%'.
std::string PrefixPattern(std::string_view prefix) {
  std::string pattern;
  pattern.reserve(prefix.size() + 8);
  for (const char c : prefix) {
    if (c == '%' || c == '_' || c == '!') pattern += '!';
    pattern += c;
  }
  pattern += '%';
  return pattern;
}

// The username pattern: the prefix lower-cased (usernames are lower-case
// ASCII), or '' if it holds a character no username has.
std::string UsernamePattern(std::string_view prefix) {
  std::string lower(prefix);
  for (char& c : lower) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    const bool allowed =
        (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
    if (!allowed) return "";
  }
  return PrefixPattern(lower);
}

}  // namespace

const char* MysqlUserStore::SearchStatement() { return kSearchSql; }

std::vector<std::string> MysqlUserStore::SearchParameters(std::string_view prefix,
                                                          std::int32_t limit) {
  return {UsernamePattern(prefix), std::to_string(limit), PrefixPattern(prefix),
          std::to_string(limit)};
}

StatusOr<std::vector<User>> MysqlUserStore::SearchByPrefix(std::string_view prefix,
                                                           std::int32_t limit) {
  if (limit <= 0 || prefix.empty()) return std::vector<User>{};
  const std::string username_pattern = UsernamePattern(prefix);
  const std::string email_pattern = PrefixPattern(prefix);
  return WithConnection(pool_, MysqlRetry::kOnStaleConnection,
                        [&](MysqlConnection& connection) -> StatusOr<std::vector<User>> {
                          sql::PreparedStatement& select = connection.Prepare(kSearchSql);
                          select.setString(1, username_pattern);
                          select.setInt(2, limit);
                          select.setString(3, email_pattern);
                          select.setInt(4, limit);
                          std::unique_ptr<sql::ResultSet> rows(select.executeQuery());
                          return ReadUsers(*rows);
                        });
}

Status MysqlUserStore::Ping() {
  return WithConnection(pool_, MysqlRetry::kOnStaleConnection,
                        [](MysqlConnection& connection) -> Status {
                          sql::PreparedStatement& ping = connection.Prepare(kPingSql);
                          std::unique_ptr<sql::ResultSet> row(ping.executeQuery());
                          if (!row->next()) return Status::Internal("SELECT 1 returned no row");
                          return Status::Ok();
                        });
}

}  // namespace polycrud
