// The two ways RedisUserCache's commands reach Redis from plain threads,
// chosen once when polycrud-server is wired (--redis-pipelined-connections):
// RedisPipelinedGroup shares a few automatically pipelining connections among
// all callers, RedisPooledPipe lends each command a connection of its own.
// The fiber threads of the Thrift face use a RedisFiberConnection each
// (redis_fiber_connection.h). All three are RedisCommandPipes.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "cache/redis/redis_connection_pool.h"
#include "cache/redis/redis_pipelined_connection.h"
#include "core/status.h"

namespace polycrud {

// Each submission borrows a pooled hiredis connection, sends its commands and
// reads their replies on it (the caller's thread blocks meanwhile). A
// connection that fails is closed, not returned. Thread-safe.
class RedisPooledPipe final : public RedisCommandPipe {
 public:
  explicit RedisPooledPipe(RedisOptions options) : pool_(std::move(options)) {}

  // RedisCommandPipe:
  StatusOr<std::vector<RedisReplyPtr>> Submit(std::string bytes, std::size_t count) override;
  // Connections lent out now.
  std::size_t busy() const override { return static_cast<std::size_t>(pool_.in_use()); }

 private:
  RedisConnectionPool pool_;
};

// `connections` RedisPipelinedConnections taken in turn, so concurrent
// callers share round trips. Thread-safe.
class RedisPipelinedGroup final : public RedisCommandPipe {
 public:
  // `connections` >= 1.
  RedisPipelinedGroup(const RedisPipelineOptions& options, int connections);

  // RedisCommandPipe:
  StatusOr<std::vector<RedisReplyPtr>> Submit(std::string bytes, std::size_t count) override;
  // Connections with a command outstanding.
  std::size_t busy() const override;

 private:
  std::vector<std::unique_ptr<RedisPipelinedConnection>> connections_;
  std::atomic<std::size_t> next_{0};
};

}  // namespace polycrud
