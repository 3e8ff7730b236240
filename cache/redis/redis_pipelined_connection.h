// RedisPipelinedConnection: one Redis connection shared by every thread, with
// automatic pipelining. A caller's command is appended to an output buffer;
// whichever caller finds no write in progress writes everything queued so far
// in one send(), so concurrent commands share a round trip. One reader thread
// parses the replies in order (hiredis redisReader) and completes each
// caller. Redis answers commands of one connection in the order it received
// them, which is what pairs replies with callers.
//
// Failure handling: a command gets kUnavailable when the connection is down,
// when it breaks while the command is outstanding (every outstanding caller is
// failed at once), or when no reply came within command_timeout (the
// connection is then closed too, since its remaining replies can no longer be
// trusted to arrive in time). The reader thread reconnects on its own, every
// reconnect_interval. More than max_pending outstanding commands get
// kResourceExhausted instead of queueing. Thread-safe.
#pragma once

#include <hiredis/hiredis.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "cache/redis/redis_connection_pool.h"
#include "core/status.h"

namespace polycrud {

struct RedisPipelineOptions {
  RedisEndpoint endpoint;
  // Pause between reconnection attempts while Redis is unreachable.
  std::chrono::milliseconds reconnect_interval{100};
  // Most commands sent or queued but not yet answered.
  std::size_t max_pending = 4096;
};

// A flag one thread sets and another waits for, on a futex: no spinning or
// yielding before sleeping (std::binary_semaphore yields, which costs
// context switches when many threads share two cores). For threads: fibers
// use RedisFiberConnection, which parks them instead.
class OneShotEvent {
 public:
  void Set();
  // True once Set() was called; false if `deadline` passed first.
  bool WaitUntil(std::chrono::steady_clock::time_point deadline);
  void Wait();

 private:
  std::atomic<std::uint32_t> state_{0};
};

// What the pipelined connections share: commands are formatted (RESP) and
// submitted as one block of bytes, whose replies come back in order.
class RedisCommandPipe {
 public:
  virtual ~RedisCommandPipe() = default;
  // Sends one command (argv form) and waits for its reply. A Redis error
  // reply (REDIS_REPLY_ERROR) is returned as a reply, not as a status.
  virtual StatusOr<RedisReplyPtr> Command(const std::vector<std::string>& argv);
  // Sends the commands back to back (nothing of another caller between them)
  // and waits for all their replies, returned in order.
  virtual StatusOr<std::vector<RedisReplyPtr>> Commands(
      const std::vector<std::vector<std::string>>& commands);
  // True when a command's keys must all share one hash slot (Redis
  // Cluster): a multi-key read is then sent as one command per key.
  virtual bool one_slot_per_command() const { return false; }
  // Sends `bytes`, `count` formatted commands, and waits for their replies.
  virtual StatusOr<std::vector<RedisReplyPtr>> Submit(std::string bytes, std::size_t count) = 0;
  // Commands sent and not yet answered, or connections busy with some (for
  // the pool gauges).
  virtual std::size_t busy() const = 0;

 private:
  StatusOr<std::vector<RedisReplyPtr>> FormatAndSubmit(
      std::span<const std::vector<std::string>> commands);
};

class RedisPipelinedConnection final : public RedisCommandPipe {
 public:
  // Connects once synchronously (so a reachable Redis is usable at once) and
  // starts the reader thread, which keeps reconnecting if that failed.
  explicit RedisPipelinedConnection(RedisPipelineOptions options);
  // Fails every outstanding command with kUnavailable and joins the reader.
  ~RedisPipelinedConnection();
  RedisPipelinedConnection(const RedisPipelinedConnection&) = delete;
  RedisPipelinedConnection& operator=(const RedisPipelinedConnection&) = delete;

  const RedisPipelineOptions& options() const { return options_; }
  // Commands sent or queued and not answered yet.
  std::size_t pending() const;
  bool connected() const;

  // RedisCommandPipe:
  StatusOr<std::vector<RedisReplyPtr>> Submit(std::string bytes, std::size_t count) override;
  std::size_t busy() const override { return pending() > 0 ? 1 : 0; }
  // Times the reader thread opened a connection (the first one included).
  std::uint64_t connects() const { return connects_.load(std::memory_order_relaxed); }
  // Writes so far; each carries every command queued when it started.
  std::uint64_t sends() const { return sends_.load(std::memory_order_relaxed); }

 private:
  // One caller's command(s): completed by the reader thread (or by a failure)
  // once `expected` replies have arrived.
  struct Waiter {
    explicit Waiter(std::size_t n) : expected(n) { replies.reserve(n); }
    const std::size_t expected;
    std::vector<RedisReplyPtr> replies;
    Status status;
    std::chrono::steady_clock::time_point deadline;
    bool completed = false;  // guarded by mu_
    bool abandoned = false;  // guarded by mu_: the caller timed out and left
    // Set once, by whoever completes the waiter.
    OneShotEvent done;
  };
  // The socket; shared so a sender can finish its send() on it while the
  // reader closes the connection.
  struct Socket {
    RedisContextPtr ctx;
    // TLS (RedisEndpoint::tls): the reader thread and the sender use the
    // session under tls_mu, never both at once; destroyed before ctx.
    std::unique_ptr<tls::TlsChannel> tls;
    std::mutex tls_mu;
    int fd() const { return ctx->fd; }
  };

  // Called by the sender that found no send in progress; mu_ is held.
  void FlushLocked(std::unique_lock<std::mutex>& lock);
  void ReaderLoop();
  StatusOr<std::shared_ptr<Socket>> Connect() const;
  // Closes the current socket (if it is still `socket`) and fails every
  // outstanding command with `status`; mu_ is held.
  void FailLocked(const std::shared_ptr<Socket>& socket, const Status& status);
  void Complete(std::vector<std::shared_ptr<Waiter>>& done);

  const RedisPipelineOptions options_;
  mutable std::mutex mu_;
  std::condition_variable reader_cv_;         // reconnect pause, interrupted by stop
  std::shared_ptr<Socket> socket_;            // guarded by mu_; null while disconnected
  std::string out_;                           // guarded by mu_: formatted, not sent yet
  std::deque<std::shared_ptr<Waiter>> fifo_;  // guarded by mu_: in send order
  std::size_t pending_replies_ = 0;           // guarded by mu_: replies fifo_ expects
  std::size_t queued_replies_ = 0;            // guarded by mu_: of which not sent yet
  bool flushing_ = false;                     // guarded by mu_
  bool stop_ = false;                         // guarded by mu_
  std::atomic<std::uint64_t> connects_{0};
  std::atomic<std::uint64_t> sends_{0};
  std::thread reader_;
};

}  // namespace polycrud
