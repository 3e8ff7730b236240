// A bounded pool of MySQL/MariaDB connections (Connector/C++ 1.1) and the
// connection wrapper it hands out. Connections are opened lazily, carry their
// own cache of prepared statements, and are discarded (never pooled again)
// after a connection-level error.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/status.h"

namespace sql {
class Connection;
class PreparedStatement;
class Statement;
}  // namespace sql

namespace polycrud {

// Where and how to connect. Timeouts are in milliseconds; the driver works in
// whole seconds, so they are rounded up to at least one second.
struct MysqlOptions {
  std::string host = "127.0.0.1";
  int port = 3306;
  std::string user;
  std::string password;
  std::string database;
  // At most this many connections are open at once (leased plus idle).
  std::size_t pool_size = 16;
  std::int64_t connect_timeout_ms = 2000;
  std::int64_t read_timeout_ms = 5000;
  std::int64_t write_timeout_ms = 5000;
  // A statement that waits this long for a row or table lock fails
  // (ER_LOCK_WAIT_TIMEOUT: kResourceExhausted "database busy", nothing
  // written) instead of holding its connection until the read timeout
  // drops it with an unknown outcome. The session's lock_wait_timeout
  // (metadata and table locks) and innodb_lock_wait_timeout (row locks).
  std::int64_t lock_wait_timeout_ms = 1000;
  // A statement still running after this long is aborted by the server
  // (max_statement_time; ER_STATEMENT_TIMEOUT: kResourceExhausted "database
  // busy", the statement rolled back) instead of holding its connection
  // until the read timeout drops it with an unknown outcome. 0: no limit
  // (migrations and the bulk seeder).
  std::int64_t statement_timeout_ms = 0;
  // How long Acquire() waits for a free connection before giving up.
  std::int64_t acquire_timeout_ms = 2000;
  // A pooled connection idle for longer than this is pinged before reuse, so
  // one the server dropped meanwhile (wait_timeout, restart) is not handed out.
  std::int64_t validate_after_idle_ms = 10000;
  // On a Galera node (wsrep_on), every session waits before a read, an
  // UPDATE or a DELETE until its node has applied every write the cluster
  // committed before (wsrep_sync_wait = 3), so a fill or a read after a
  // write never sees a node that is behind, e.g. the next writer just after
  // a failover. Has no effect on a server that is not a Galera node.
  bool causal_reads = true;
  // Allows LOAD DATA LOCAL INFILE on the connection (the bulk seeder only).
  bool local_infile = false;
  // The store writes a change event into the outbox (user_events) in the
  // transaction of every create, update and delete (docs/events.md).
  bool write_events = false;
  // With a CA (PEM) every connection is TLS 1.2+, the server's certificate
  // verified against it and against `host`; a server without TLS is
  // refused. tls_cert and tls_key: a client certificate, if MariaDB asks
  // for one (REQUIRE X509).
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
};

// One session: utf8mb4 with binary collation, strict SQL mode, READ COMMITTED
// isolation, lock waits bounded by lock_wait_timeout_ms, no automatic
// reconnect. Not thread-safe: one thread uses it at a
// time (the pool guarantees this for leased connections).
class MysqlConnection {
 public:
  // Opens and configures a session. Never throws: kUnavailable when the
  // server cannot be reached, kInternal for anything else.
  static StatusOr<std::unique_ptr<MysqlConnection>> Open(const MysqlOptions& options);

  ~MysqlConnection();
  MysqlConnection(const MysqlConnection&) = delete;
  MysqlConnection& operator=(const MysqlConnection&) = delete;

  // The statement prepared from `sql_text` on this session, prepared on first
  // use and cached for the life of the connection. Throws sql::SQLException.
  sql::PreparedStatement& Prepare(const std::string& sql_text);

  // Runs a statement that carries no user data (transaction control, session
  // settings, DDL), discarding any result set. Returns the affected row count
  // (0 for statements that return rows). Throws sql::SQLException.
  std::uint64_t Execute(const std::string& sql_text);

  // The driver connection, for what the wrappers above do not cover.
  sql::Connection& raw() { return *connection_; }

  // Marks the session unusable; the pool discards it on release.
  void MarkBroken() { broken_ = true; }
  bool broken() const { return broken_; }

  // Pings the server; marks the connection broken and returns false if it
  // does not answer.
  bool Validate();
  // True when the server is a Galera cluster node (wsrep_on).
  bool galera() const { return galera_; }
  // False when the server is a Galera node that does not serve now (outside
  // the primary component, or not synced: wsrep_ready OFF), or cannot say.
  // True for a server that is not a Galera node.
  bool GaleraNodeReady();

 private:
  friend class MysqlConnectionPool;
  explicit MysqlConnection(std::unique_ptr<sql::Connection> connection);

  // Declared first so that it is destroyed last, after its statements.
  std::unique_ptr<sql::Connection> connection_;
  std::unique_ptr<sql::Statement> plain_;
  std::unordered_map<std::string, std::unique_ptr<sql::PreparedStatement>> statements_;
  bool broken_ = false;
  bool galera_ = false;
  std::chrono::steady_clock::time_point idle_since_;
};

// At most options.pool_size connections, opened on demand and reused LIFO.
// Thread-safe. The pool must outlive every Lease it hands out.
class MysqlConnectionPool {
 public:
  // Exclusive use of one connection; returns it to the pool when destroyed
  // (or discards it if it was marked broken).
  class Lease {
   public:
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&& other) noexcept;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease();

    MysqlConnection& operator*() const { return *connection_; }
    MysqlConnection* operator->() const { return connection_.get(); }
    // True when the connection had served earlier leases (so it may have gone
    // stale), false when it was opened for this lease.
    bool reused() const { return reused_; }

   private:
    friend class MysqlConnectionPool;
    Lease(MysqlConnectionPool* pool, std::unique_ptr<MysqlConnection> connection, bool reused);
    void Return();

    MysqlConnectionPool* pool_ = nullptr;
    std::unique_ptr<MysqlConnection> connection_;
    bool reused_ = false;
  };

  explicit MysqlConnectionPool(MysqlOptions options);
  ~MysqlConnectionPool();
  MysqlConnectionPool(const MysqlConnectionPool&) = delete;
  MysqlConnectionPool& operator=(const MysqlConnectionPool&) = delete;

  // A connection for the caller's exclusive use: an idle one if any, else a
  // new one if fewer than pool_size are open, else waits up to
  // acquire_timeout_ms. kResourceExhausted ("database connection pool
  // exhausted") on timeout; kUnavailable if a new connection cannot be opened.
  StatusOr<Lease> Acquire();

  const MysqlOptions& options() const { return options_; }

  // Closes every idle connection. Called when a pooled connection turned out
  // dead: after a server restart all idle ones are, and handing them out one
  // by one would fail as many requests as the pool holds.
  void DropIdle();

  // Connections currently open, leased or idle.
  std::size_t open_connections() const;
  // Connections currently leased.
  std::size_t leased_connections() const;

 private:
  void Release(std::unique_ptr<MysqlConnection> connection);

  const MysqlOptions options_;
  mutable std::mutex mu_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<MysqlConnection>> idle_;  // guarded by mu_
  std::size_t open_ = 0;                                // guarded by mu_
};

}  // namespace polycrud
