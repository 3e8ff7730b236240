// RedisConnectionPool: a bounded pool of synchronous hiredis connections with
// connect and command timeouts. A connection that saw an I/O or protocol error
// is closed instead of being returned. Thread-safe.
#pragma once

#include <hiredis/hiredis.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "transport/tls/tls.h"

namespace polycrud {

// Where a Redis is and how to log in to it.
struct RedisEndpoint {
  std::string host = "127.0.0.1";
  int port = 6379;
  // ACL user and password, sent with AUTH on every new connection. An empty
  // user with a password logs in as the default user; both empty: no AUTH.
  std::string user;
  std::string password;
  std::chrono::milliseconds connect_timeout{200};
  // Longest wait for one reply; also bounds a blocked send().
  std::chrono::milliseconds command_timeout{500};
  // With a CA: TLS 1.2+, Redis's certificate verified against it and
  // `host`; cert and key are sent if Redis asks for a client certificate.
  // Only the pipelined and fiber connections speak TLS (hiredis 0.14, under
  // the pooled connections, has none).
  tls::TlsFiles tls;
  bool uses_tls() const { return !tls.ca.empty() || tls.enabled(); }
};

struct RedisOptions {
  RedisEndpoint endpoint;
  int pool_size = 16;
  // How long Acquire waits for a free connection before giving up.
  std::chrono::milliseconds acquire_timeout{500};
  // polycrud-server: shared auto-pipelining connections
  // (RedisPipelinedGroup) that carry the cache commands of plain threads; 0 sends each
  // command on a connection borrowed from this pool instead.
  int pipelined_connections = 1;
  // Most commands outstanding per pipelined connection (kResourceExhausted
  // beyond).
  std::size_t max_pending = 4096;
  // Redis Cluster: "host:port" of the nodes to read the slot map from (the
  // endpoint's host and port are then unused); empty: one Redis.
  std::vector<std::string> cluster_seeds;
};

struct RedisContextDeleter {
  void operator()(redisContext* c) const { redisFree(c); }
};
using RedisContextPtr = std::unique_ptr<redisContext, RedisContextDeleter>;

struct RedisReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using RedisReplyPtr = std::unique_ptr<redisReply, RedisReplyDeleter>;

// kUnavailable for the cache, "cache: <message>", retry after 1 s.
Status CacheUnavailable(std::string message);

// Opens a hiredis connection to `endpoint` within its connect_timeout, with
// TCP keep-alive, and logs in (AUTH) when the endpoint names a password;
// command_timeout bounds each blocking send and receive on it (a
// non-blocking call is not affected). kUnavailable if it cannot; a refused
// login says so, without the password.
//
// With endpoint.uses_tls() the TLS handshake follows the connect and AUTH
// goes through it; the session is put in `*tls` (which the caller destroys
// before the context), and the socket is left non-blocking: every later
// read and write must go through the session. A caller that passes no `tls`
// gets kUnavailable for such an endpoint.
StatusOr<RedisContextPtr> ConnectRedis(const RedisEndpoint& endpoint,
                                       std::unique_ptr<tls::TlsChannel>* tls = nullptr);

// A command's arguments as hiredis's *Argv functions take them: pointers
// into `argv` (which must outlive it) and their lengths.
class RedisArgv {
 public:
  explicit RedisArgv(const std::vector<std::string>& argv) {
    args_.reserve(argv.size());
    lens_.reserve(argv.size());
    for (const std::string& a : argv) {
      args_.push_back(a.data());
      lens_.push_back(a.size());
    }
  }
  int argc() const { return static_cast<int>(args_.size()); }
  const char** argv() { return args_.data(); }
  const std::size_t* lens() const { return lens_.data(); }

 private:
  std::vector<const char*> args_;
  std::vector<std::size_t> lens_;
};

class RedisConnectionPool {
 public:
  // A borrowed connection; returns itself to the pool when destroyed unless
  // MarkBroken() was called.
  class Lease {
   public:
    Lease(RedisConnectionPool* pool, RedisContextPtr ctx) : pool_(pool), ctx_(std::move(ctx)) {}
    Lease(Lease&& other) noexcept
        : pool_(std::exchange(other.pool_, nullptr)),
          ctx_(std::move(other.ctx_)),
          broken_(other.broken_) {}
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (pool_ != nullptr) pool_->Release(std::move(ctx_), broken_);
    }
    redisContext* get() const { return ctx_.get(); }
    void MarkBroken() { broken_ = true; }

   private:
    RedisConnectionPool* pool_;
    RedisContextPtr ctx_;
    bool broken_ = false;
  };

  explicit RedisConnectionPool(RedisOptions options) : options_(std::move(options)) {}

  // A connected context, or kUnavailable (cannot connect) / kResourceExhausted
  // (every connection busy for longer than acquire_timeout).
  StatusOr<Lease> Acquire();
  const RedisOptions& options() const { return options_; }
  int in_use() const;

 private:
  void Release(RedisContextPtr ctx, bool broken);
  StatusOr<RedisContextPtr> Connect() const;

  const RedisOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<RedisContextPtr> idle_;
  int open_ = 0;  // idle + leased
};

}  // namespace polycrud
