// RedisFiberConnection: one Redis connection for the fibers of one thread
// (a fiber server's scheduler thread, see runtime::FiberScheduler), with the
// automatic pipelining of RedisPipelinedConnection but no thread of its own
// and no lock: everything runs on the owning thread. A fiber's command is
// appended to the output buffer and the fiber yields once, so the fibers
// that are ready on the thread queue theirs too; the first to run again
// sends them all in one send(). The replies are read by one of the waiting
// fibers (the first that finds nobody reading): it waits for the socket in
// the scheduler, with the thread's client sockets, parses every reply that
// came, completes each waiting fiber in order, and once its own reply is in
// hands the reading on to the oldest fiber still waiting. So a cached read
// costs its thread no sleep and wake-up of its own.
//
// Failure handling as in RedisPipelinedConnection: kUnavailable while the
// connection is down (a connect is tried at most every reconnect_interval,
// on the first command after it), when it breaks with commands outstanding
// (all of them fail), when the oldest command's reply did not come within
// command_timeout (the connection is closed, all fail), or when the socket
// would not take a batch at once (Redis stopped reading); more than
// max_pending outstanding commands get kResourceExhausted.
//
// Use only from fibers of one thread: polycrud-server gives each fiber
// thread of the Thrift face a connection of its own when it wires the faces.
#pragma once

#include <hiredis/hiredis.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "cache/redis/redis_connection_pool.h"
#include "cache/redis/redis_pipelined_connection.h"
#include "core/status.h"

namespace polycrud {

class RedisFiberConnection final : public RedisCommandPipe {
 public:
  explicit RedisFiberConnection(RedisPipelineOptions options);
  ~RedisFiberConnection();
  RedisFiberConnection(const RedisFiberConnection&) = delete;
  RedisFiberConnection& operator=(const RedisFiberConnection&) = delete;

  // Times a connection was opened; sends so far.
  std::uint64_t connects() const { return connects_; }
  std::uint64_t sends() const { return sends_; }

  // RedisCommandPipe:
  StatusOr<std::vector<RedisReplyPtr>> Submit(std::string bytes, std::size_t count) override;
  std::size_t busy() const override { return pending_ > 0 ? 1 : 0; }

 private:
  struct Waiter;

  Status EnsureConnected();
  // Sends the output buffer; fails the connection if it would block.
  void Flush();
  // Reads replies until `self` is complete; then wakes the next reader.
  void Read(Waiter& self);
  void Fail(const Status& status);
  void Wake(Waiter& waiter);

  const RedisPipelineOptions options_;
  RedisContextPtr ctx_;  // null while disconnected
  // TLS on ctx_'s socket (RedisEndpoint::tls), destroyed before it.
  std::unique_ptr<tls::TlsChannel> tls_;
  std::unique_ptr<redisReader, void (*)(redisReader*)> parser_;
  std::chrono::steady_clock::time_point next_connect_{};
  std::string out_;           // formatted, not sent yet
  std::vector<char> chunk_;   // what recv() filled
  std::deque<Waiter*> fifo_;  // in send order
  std::size_t pending_ = 0;   // replies fifo_ expects
  std::size_t queued_ = 0;    // of which for commands not sent yet
  bool reading_ = false;      // a fiber is in Read()
  std::uint64_t connects_ = 0;
  std::uint64_t sends_ = 0;
};

}  // namespace polycrud
