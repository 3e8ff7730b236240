#include "cache/redis/redis_pipes.h"

#include <utility>

namespace polycrud {
namespace {

Status ConnectionError(const redisContext* ctx) {
  return CacheUnavailable(ctx->err != 0 ? ctx->errstr : "no reply");
}

}  // namespace

StatusOr<std::vector<RedisReplyPtr>> RedisPooledPipe::Submit(std::string bytes, std::size_t count) {
  StatusOr<RedisConnectionPool::Lease> lease = pool_.Acquire();
  if (!lease.ok()) return lease.status();
  redisContext* ctx = lease->get();
  if (redisAppendFormattedCommand(ctx, bytes.data(), bytes.size()) != REDIS_OK) {
    lease->MarkBroken();
    return ConnectionError(ctx);
  }
  std::vector<RedisReplyPtr> replies;
  replies.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    void* raw = nullptr;
    if (redisGetReply(ctx, &raw) != REDIS_OK || raw == nullptr) {
      lease->MarkBroken();
      return ConnectionError(ctx);
    }
    replies.emplace_back(static_cast<redisReply*>(raw));
  }
  return replies;
}

RedisPipelinedGroup::RedisPipelinedGroup(const RedisPipelineOptions& options, int connections) {
  for (int i = 0; i < connections; ++i) {
    connections_.push_back(std::make_unique<RedisPipelinedConnection>(options));
  }
}

StatusOr<std::vector<RedisReplyPtr>> RedisPipelinedGroup::Submit(std::string bytes,
                                                                 std::size_t count) {
  const std::size_t i = next_.fetch_add(1, std::memory_order_relaxed) % connections_.size();
  return connections_[i]->Submit(std::move(bytes), count);
}

std::size_t RedisPipelinedGroup::busy() const {
  std::size_t busy = 0;
  for (const auto& connection : connections_) busy += connection->busy();
  return busy;
}

}  // namespace polycrud
