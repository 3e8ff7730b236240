#include "cache/redis/redis_connection_pool.h"

#include <sys/time.h>

#include <string>
#include <utility>

namespace polycrud {
namespace {

timeval ToTimeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<decltype(tv.tv_sec)>(ms.count() / 1000);
  tv.tv_usec = static_cast<decltype(tv.tv_usec)>((ms.count() % 1000) * 1000);
  return tv;
}

}  // namespace

Status CacheUnavailable(std::string message) {
  return Status::Unavailable("cache: " + std::move(message));
}

StatusOr<RedisContextPtr> ConnectRedis(const RedisEndpoint& endpoint) {
  RedisContextPtr ctx(redisConnectWithTimeout(endpoint.host.c_str(), endpoint.port,
                                              ToTimeval(endpoint.connect_timeout)));
  if (ctx == nullptr) return CacheUnavailable("out of memory connecting");
  if (ctx->err != 0) return CacheUnavailable(std::string("cannot connect: ") + ctx->errstr);
  if (redisSetTimeout(ctx.get(), ToTimeval(endpoint.command_timeout)) != REDIS_OK) {
    return CacheUnavailable("cannot set the socket timeout");
  }
  redisEnableKeepAlive(ctx.get());
  if (!endpoint.user.empty() || !endpoint.password.empty()) {
    RedisReplyPtr reply(static_cast<redisReply*>(
        endpoint.user.empty()
            ? redisCommand(ctx.get(), "AUTH %b", endpoint.password.data(), endpoint.password.size())
            : redisCommand(ctx.get(), "AUTH %b %b", endpoint.user.data(), endpoint.user.size(),
                           endpoint.password.data(), endpoint.password.size())));
    if (reply == nullptr) {
      return CacheUnavailable(std::string("no answer to AUTH: ") + ctx->errstr);
    }
    if (reply->type == REDIS_REPLY_ERROR) {
      // Redis's answer (WRONGPASS, ...) never repeats the password.
      return CacheUnavailable("login as '" + endpoint.user +
                              "' refused: " + std::string(reply->str, reply->len));
    }
  }
  return ctx;
}

StatusOr<RedisContextPtr> RedisConnectionPool::Connect() const {
  return ConnectRedis(options_.endpoint);
}

StatusOr<RedisConnectionPool::Lease> RedisConnectionPool::Acquire() {
  std::unique_lock lock(mu_);
  const auto deadline = std::chrono::steady_clock::now() + options_.acquire_timeout;
  while (idle_.empty() && open_ >= options_.pool_size) {
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
        open_ >= options_.pool_size) {
      return Status::ResourceExhausted("cache connection pool exhausted", 100);
    }
  }
  if (!idle_.empty()) {
    RedisContextPtr ctx = std::move(idle_.back());
    idle_.pop_back();
    return Lease(this, std::move(ctx));
  }
  ++open_;
  lock.unlock();
  StatusOr<RedisContextPtr> ctx = Connect();
  if (!ctx.ok()) {
    lock.lock();
    --open_;
    cv_.notify_one();
    return ctx.status();
  }
  return Lease(this, std::move(*ctx));
}

void RedisConnectionPool::Release(RedisContextPtr ctx, bool broken) {
  std::lock_guard lock(mu_);
  if (broken || ctx == nullptr || ctx->err != 0) {
    --open_;
  } else {
    idle_.push_back(std::move(ctx));
  }
  cv_.notify_one();
}

int RedisConnectionPool::in_use() const {
  std::lock_guard lock(mu_);
  return open_ - static_cast<int>(idle_.size());
}

}  // namespace polycrud
