#include "cache/redis/redis_connection_pool.h"

#include <fcntl.h>
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

// The AUTH command for `endpoint`, in the wire format.
std::string AuthCommand(const RedisEndpoint& endpoint) {
  const char* argv[3] = {"AUTH", endpoint.user.c_str(), endpoint.password.c_str()};
  std::size_t lens[3] = {4, endpoint.user.size(), endpoint.password.size()};
  const int argc = endpoint.user.empty() ? 2 : 3;
  if (endpoint.user.empty()) {
    argv[1] = endpoint.password.c_str();
    lens[1] = endpoint.password.size();
  }
  char* formatted = nullptr;
  const int len = redisFormatCommandArgv(&formatted, argc, argv, lens);
  std::string bytes = len > 0 && formatted != nullptr
                          ? std::string(formatted, static_cast<std::size_t>(len))
                          : std::string();
  redisFreeCommand(formatted);
  return bytes;
}

// TLS on the connected socket `fd`: the handshake, then AUTH through it.
StatusOr<std::unique_ptr<tls::TlsChannel>> StartTls(const RedisEndpoint& endpoint, int fd) {
  std::unique_ptr<tls::TlsChannel> channel;
  try {
    // Every session holds its own reference to the context.
    tls::SslCtxPtr context = tls::MakeClientContext(endpoint.tls);
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    channel = tls::TlsChannel::Client(context.get(), fd, endpoint.host);
  } catch (const std::exception& e) {
    return CacheUnavailable(e.what());
  }
  if (const std::error_code ec = channel->Handshake(IoClock::now() + endpoint.connect_timeout)) {
    return CacheUnavailable("TLS handshake failed: " +
                            (ec == std::errc::timed_out ? "timed out" : channel->Error()));
  }
  if (endpoint.user.empty() && endpoint.password.empty()) return channel;
  const std::string auth = AuthCommand(endpoint);
  const IoClock::time_point deadline = IoClock::now() + endpoint.command_timeout;
  if (auth.empty() || channel->WriteAll(auth.data(), auth.size(), deadline)) {
    return CacheUnavailable("cannot send AUTH: " + channel->Error());
  }
  std::unique_ptr<redisReader, decltype(&redisReaderFree)> parser(redisReaderCreate(),
                                                                  &redisReaderFree);
  for (;;) {
    void* raw = nullptr;
    if (redisReaderGetReply(parser.get(), &raw) != REDIS_OK) {
      return CacheUnavailable("protocol error in the answer to AUTH");
    }
    if (raw != nullptr) {
      RedisReplyPtr reply(static_cast<redisReply*>(raw));
      if (reply->type == REDIS_REPLY_ERROR) {
        return CacheUnavailable("login as '" + endpoint.user +
                                "' refused: " + std::string(reply->str, reply->len));
      }
      return channel;
    }
    char buffer[512];
    std::size_t n = 0;
    if (channel->ReadSome(buffer, sizeof buffer, deadline, false, n) || n == 0) {
      return CacheUnavailable("no answer to AUTH: " + channel->Error());
    }
    redisReaderFeed(parser.get(), buffer, n);
  }
}

}  // namespace

Status CacheUnavailable(std::string message) {
  return Status::Unavailable("cache: " + std::move(message));
}

StatusOr<RedisContextPtr> ConnectRedis(const RedisEndpoint& endpoint,
                                       std::unique_ptr<tls::TlsChannel>* tls) {
  if (endpoint.uses_tls() && tls == nullptr) {
    return CacheUnavailable(
        "TLS to Redis needs pipelined connections (--redis-pipelined-connections > 0)");
  }
  RedisContextPtr ctx(redisConnectWithTimeout(endpoint.host.c_str(), endpoint.port,
                                              ToTimeval(endpoint.connect_timeout)));
  if (ctx == nullptr) return CacheUnavailable("out of memory connecting");
  if (ctx->err != 0) return CacheUnavailable(std::string("cannot connect: ") + ctx->errstr);
  if (redisSetTimeout(ctx.get(), ToTimeval(endpoint.command_timeout)) != REDIS_OK) {
    return CacheUnavailable("cannot set the socket timeout");
  }
  redisEnableKeepAlive(ctx.get());
  if (endpoint.uses_tls()) {
    StatusOr<std::unique_ptr<tls::TlsChannel>> channel = StartTls(endpoint, ctx->fd);
    if (!channel.ok()) return channel.status();
    *tls = std::move(*channel);
    return ctx;
  }
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
