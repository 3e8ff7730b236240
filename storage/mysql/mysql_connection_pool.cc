#include "storage/mysql/mysql_connection_pool.h"

#include <cppconn/connection.h>
#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>
#include <mysql_driver.h>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>

#include "storage/mysql/mysql_errors.h"

namespace polycrud {
namespace {

int WholeSeconds(std::int64_t ms) {
  const std::int64_t seconds = (ms + 999) / 1000;
  return static_cast<int>(std::clamp<std::int64_t>(seconds, 1, 24 * 3600));
}

sql::mysql::MySQL_Driver* Driver() {
  // get_mysql_driver_instance() registers the driver in an unguarded map, so
  // it must run once; a function-local static makes that thread-safe.
  static sql::mysql::MySQL_Driver* const driver = sql::mysql::get_mysql_driver_instance();
  return driver;
}

// True when `show` (SHOW VARIABLES or SHOW STATUS LIKE one name) answers
// "ON". A server built without wsrep answers no row to its wsrep names,
// rather than an error. Throws sql::SQLException.
bool ShowsOn(sql::Connection& connection, const std::string& show) {
  std::unique_ptr<sql::Statement> statement(connection.createStatement());
  std::unique_ptr<sql::ResultSet> row(statement->executeQuery(show));
  return row->next() && std::string(row->getString(2)) == "ON";
}

}  // namespace

// MysqlConnection

MysqlConnection::MysqlConnection(std::unique_ptr<sql::Connection> connection)
    : connection_(std::move(connection)), idle_since_(std::chrono::steady_clock::now()) {}

MysqlConnection::~MysqlConnection() {
  // Statements first: closing them needs the session.
  statements_.clear();
  plain_.reset();
  try {
    if (connection_ && !connection_->isClosed()) connection_->close();
  } catch (const std::exception&) {
    // Nothing to do about a session that fails to close: it is gone anyway.
  }
}

StatusOr<std::unique_ptr<MysqlConnection>> MysqlConnection::Open(const MysqlOptions& options) {
  try {
    sql::ConnectOptionsMap properties;
    properties["hostName"] = sql::SQLString(options.host);
    properties["port"] = options.port;
    properties["userName"] = sql::SQLString(options.user);
    properties["password"] = sql::SQLString(options.password);
    properties["schema"] = sql::SQLString(options.database);
    properties["OPT_CONNECT_TIMEOUT"] = WholeSeconds(options.connect_timeout_ms);
    properties["OPT_READ_TIMEOUT"] = WholeSeconds(options.read_timeout_ms);
    properties["OPT_WRITE_TIMEOUT"] = WholeSeconds(options.write_timeout_ms);
    // A silent reconnect would lose session settings and any open transaction.
    properties["OPT_RECONNECT"] = false;
    properties["OPT_CHARSET_NAME"] = sql::SQLString("utf8mb4");
    if (options.local_infile) properties["OPT_LOCAL_INFILE"] = 1;
    if (!options.tls_ca.empty()) {
      properties["sslCA"] = sql::SQLString(options.tls_ca);
      properties["sslVerify"] = true;
      properties["sslEnforce"] = true;
      properties["OPT_TLS_VERSION"] = sql::SQLString("TLSv1.2,TLSv1.3");
      if (!options.tls_cert.empty()) {
        properties["sslCert"] = sql::SQLString(options.tls_cert);
        properties["sslKey"] = sql::SQLString(options.tls_key);
      }
    }

    std::unique_ptr<sql::Connection> raw(Driver()->connect(properties));
    std::unique_ptr<MysqlConnection> connection(new MysqlConnection(std::move(raw)));
    connection->Execute("SET NAMES utf8mb4 COLLATE utf8mb4_bin");
    // Strict mode for every table: an over-long value is an error, never a
    // silent truncation.
    connection->Execute(
        "SET SESSION sql_mode = 'STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO,"
        "NO_ENGINE_SUBSTITUTION'");
    // Every statement addresses rows by primary key; READ COMMITTED avoids
    // the gap locks REPEATABLE READ takes when such a row is missing.
    connection->Execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED");
    // MariaDB waits a day for a table lock by default, so a locked table
    // would keep every statement until the read timeout cut its connection.
    const std::string lock_wait = std::to_string(WholeSeconds(options.lock_wait_timeout_ms));
    connection->Execute("SET SESSION lock_wait_timeout = " + lock_wait +
                        ", innodb_lock_wait_timeout = " + lock_wait);
    // A statement that is merely slow (no lock to wait for) ends too.
    if (options.statement_timeout_ms > 0) {
      connection->Execute("SET SESSION max_statement_time = " +
                          std::to_string(options.statement_timeout_ms / 1000) + "." +
                          std::to_string(1000 + options.statement_timeout_ms % 1000).substr(1));
    }
    connection->galera_ = ShowsOn(connection->raw(), "SHOW VARIABLES LIKE 'wsrep_on'");
    if (connection->galera_ && options.causal_reads) {
      connection->Execute("SET SESSION wsrep_sync_wait = 3");
    }
    return connection;
  } catch (const sql::SQLException& e) {
    return StatusFromMysqlError(e);
  } catch (const std::exception& e) {
    return Status::Internal(std::string("mysql connect: ") + e.what());
  }
}

sql::PreparedStatement& MysqlConnection::Prepare(const std::string& sql_text) {
  auto it = statements_.find(sql_text);
  if (it == statements_.end()) {
    std::unique_ptr<sql::PreparedStatement> statement(connection_->prepareStatement(sql_text));
    it = statements_.emplace(sql_text, std::move(statement)).first;
  }
  return *it->second;
}

std::uint64_t MysqlConnection::Execute(const std::string& sql_text) {
  if (!plain_) plain_.reset(connection_->createStatement());
  if (plain_->execute(sql_text)) {
    // A result set nobody reads would leave the session out of sync.
    std::unique_ptr<sql::ResultSet> discarded(plain_->getResultSet());
    return 0;
  }
  return plain_->getUpdateCount();
}

bool MysqlConnection::GaleraNodeReady() {
  if (!galera_) return true;
  try {
    return ShowsOn(*connection_, "SHOW STATUS LIKE 'wsrep_ready'");
  } catch (const std::exception&) {
    return false;
  }
}

bool MysqlConnection::Validate() {
  try {
    if (!connection_->isClosed() && connection_->isValid()) return true;
  } catch (const std::exception&) {
    // Falls through: a connection that cannot even be checked is not usable.
  }
  broken_ = true;
  return false;
}

// MysqlConnectionPool::Lease

MysqlConnectionPool::Lease::Lease(MysqlConnectionPool* pool,
                                  std::unique_ptr<MysqlConnection> connection, bool reused)
    : pool_(pool), connection_(std::move(connection)), reused_(reused) {}

MysqlConnectionPool::Lease::Lease(Lease&& other) noexcept
    : pool_(std::exchange(other.pool_, nullptr)),
      connection_(std::move(other.connection_)),
      reused_(other.reused_) {}

MysqlConnectionPool::Lease& MysqlConnectionPool::Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    Return();
    pool_ = std::exchange(other.pool_, nullptr);
    connection_ = std::move(other.connection_);
    reused_ = other.reused_;
  }
  return *this;
}

MysqlConnectionPool::Lease::~Lease() { Return(); }

void MysqlConnectionPool::Lease::Return() {
  if (pool_ != nullptr && connection_ != nullptr) pool_->Release(std::move(connection_));
  pool_ = nullptr;
}

// MysqlConnectionPool

MysqlConnectionPool::MysqlConnectionPool(MysqlOptions options) : options_(std::move(options)) {
  Driver();
}

MysqlConnectionPool::~MysqlConnectionPool() {
  std::vector<std::unique_ptr<MysqlConnection>> idle;
  {
    std::lock_guard<std::mutex> lock(mu_);
    idle.swap(idle_);
  }
}

StatusOr<MysqlConnectionPool::Lease> MysqlConnectionPool::Acquire() {
  const auto now = std::chrono::steady_clock::now();
  const auto deadline = now + std::chrono::milliseconds(options_.acquire_timeout_ms);
  const auto max_idle = std::chrono::milliseconds(options_.validate_after_idle_ms);
  const std::size_t capacity = std::max<std::size_t>(options_.pool_size, 1);

  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (!available_.wait_until(lock, deadline,
                               [&] { return !idle_.empty() || open_ < capacity; })) {
      return MysqlPoolExhaustedStatus();
    }
    if (!idle_.empty()) {
      std::unique_ptr<MysqlConnection> connection = std::move(idle_.back());
      idle_.pop_back();
      lock.unlock();
      if (std::chrono::steady_clock::now() - connection->idle_since_ <= max_idle ||
          connection->Validate()) {
        return Lease(this, std::move(connection), /*reused=*/true);
      }
      connection.reset();  // closes the dead session outside the lock
      lock.lock();
      --open_;
      continue;
    }
    // Reserve a slot, then connect without holding the lock.
    ++open_;
    lock.unlock();
    StatusOr<std::unique_ptr<MysqlConnection>> opened = MysqlConnection::Open(options_);
    if (!opened.ok()) {
      lock.lock();
      --open_;
      lock.unlock();
      available_.notify_one();
      return opened.status();
    }
    return Lease(this, std::move(opened).value(), /*reused=*/false);
  }
}

void MysqlConnectionPool::DropIdle() {
  std::vector<std::unique_ptr<MysqlConnection>> idle;
  {
    std::lock_guard<std::mutex> lock(mu_);
    idle.swap(idle_);
    open_ -= idle.size();
  }
  idle.clear();  // closes them outside the lock
  available_.notify_all();
}

void MysqlConnectionPool::Release(std::unique_ptr<MysqlConnection> connection) {
  bool keep = !connection->broken();
  if (keep) {
    try {
      keep = !connection->raw().isClosed();
    } catch (const std::exception&) {
      keep = false;
    }
  }
  if (keep) {
    connection->idle_since_ = std::chrono::steady_clock::now();
    std::lock_guard<std::mutex> lock(mu_);
    idle_.push_back(std::move(connection));
  } else {
    connection.reset();  // closes outside the lock
    std::lock_guard<std::mutex> lock(mu_);
    --open_;
  }
  available_.notify_one();
}

std::size_t MysqlConnectionPool::open_connections() const {
  std::lock_guard<std::mutex> lock(mu_);
  return open_;
}

std::size_t MysqlConnectionPool::leased_connections() const {
  std::lock_guard lock(mu_);
  return open_ - idle_.size();
}

}  // namespace polycrud
