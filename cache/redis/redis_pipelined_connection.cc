#include "cache/redis/redis_pipelined_connection.h"

#include <linux/futex.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace polycrud {
namespace {

// A caller whose reply the reader thread did not deliver by the deadline
// waits this much longer before it gives up on its own: the reader normally
// fails the connection right at the deadline, so this only matters if the
// reader thread itself is stuck.
constexpr std::chrono::milliseconds kCallerGrace{100};
constexpr std::size_t kReadChunk = 64 * 1024;

// Sends all of `data`; false (errno set) on an error or when SO_SNDTIMEO ran out.
bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// The same through TLS: each try holds the session's lock (the reader thread
// uses it too) and waits for the socket without it, up to `timeout`.
bool SendAllTls(int fd, tls::TlsChannel& channel, std::mutex& mu, std::string_view data,
                std::chrono::milliseconds timeout, std::string& error) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    tls::TlsChannel::Io done;
    {
      const std::lock_guard lock(mu);
      done = channel.WriteNow(data.data(), data.size());
      if (done == tls::TlsChannel::Io::kFailed) error = channel.Error();
    }
    if (done == tls::TlsChannel::Io::kDone) return true;
    if (done == tls::TlsChannel::Io::kFailed || done == tls::TlsChannel::Io::kClosed) {
      if (error.empty()) error = "connection closed by Redis";
      return false;
    }
    const auto left =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      error = "send timed out";
      return false;
    }
    if (done == tls::TlsChannel::Io::kWantWrite) {
      pollfd pfd{.fd = fd, .events = POLLOUT, .revents = 0};
      poll(&pfd, 1, static_cast<int>(left.count()));
    } else {
      // Wants to read first (a key update): the reader thread reads; look
      // again in a millisecond.
      poll(nullptr, 0, 1);
    }
  }
}

StatusOr<RedisReplyPtr> FirstReply(StatusOr<std::vector<RedisReplyPtr>> replies) {
  if (!replies.ok()) return replies.status();
  return std::move(replies->front());
}

struct ReaderDeleter {
  void operator()(redisReader* r) const { redisReaderFree(r); }
};

}  // namespace

void OneShotEvent::Set() {
  state_.store(1, std::memory_order_release);
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&state_), FUTEX_WAKE_PRIVATE, 1, nullptr,
          nullptr, 0);
}

bool OneShotEvent::WaitUntil(std::chrono::steady_clock::time_point deadline) {
  while (state_.load(std::memory_order_acquire) == 0) {
    const auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) return false;
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
    timespec timeout{.tv_sec = static_cast<time_t>(ns / 1'000'000'000),
                     .tv_nsec = static_cast<long>(ns % 1'000'000'000)};
    // Returns at once if state_ is no longer 0; EINTR and spurious wake-ups
    // just go round the loop.
    syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&state_), FUTEX_WAIT_PRIVATE, 0, &timeout,
            nullptr, 0);
  }
  return true;
}

void OneShotEvent::Wait() {
  while (state_.load(std::memory_order_acquire) == 0) {
    syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&state_), FUTEX_WAIT_PRIVATE, 0, nullptr,
            nullptr, 0);
  }
}

RedisPipelinedConnection::RedisPipelinedConnection(RedisPipelineOptions options)
    : options_(std::move(options)) {
  StatusOr<std::shared_ptr<Socket>> socket = Connect();
  if (socket.ok()) {
    socket_ = std::move(*socket);
    connects_.fetch_add(1, std::memory_order_relaxed);
  }
  reader_ = std::thread([this] { ReaderLoop(); });
}

RedisPipelinedConnection::~RedisPipelinedConnection() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    // Wakes the reader out of poll().
    if (socket_ != nullptr) shutdown(socket_->fd(), SHUT_RDWR);
  }
  reader_cv_.notify_all();
  reader_.join();
}

StatusOr<std::shared_ptr<RedisPipelinedConnection::Socket>> RedisPipelinedConnection::Connect()
    const {
  // The send timeout bounds a send() into a Redis that stopped reading; reads are polled.
  auto socket = std::make_shared<Socket>();
  StatusOr<RedisContextPtr> ctx = ConnectRedis(options_.endpoint, &socket->tls);
  if (!ctx.ok()) return ctx.status();
  socket->ctx = std::move(*ctx);
  return socket;
}

std::size_t RedisPipelinedConnection::pending() const {
  std::lock_guard lock(mu_);
  return pending_replies_;
}

bool RedisPipelinedConnection::connected() const {
  std::lock_guard lock(mu_);
  return socket_ != nullptr;
}

StatusOr<RedisReplyPtr> RedisCommandPipe::Command(const std::vector<std::string>& argv) {
  return FirstReply(FormatAndSubmit(std::span(&argv, 1)));
}

StatusOr<std::vector<RedisReplyPtr>> RedisCommandPipe::Commands(
    const std::vector<std::vector<std::string>>& commands) {
  if (commands.empty()) return std::vector<RedisReplyPtr>{};
  return FormatAndSubmit(commands);
}

StatusOr<std::vector<RedisReplyPtr>> RedisCommandPipe::FormatAndSubmit(
    std::span<const std::vector<std::string>> commands) {
  std::string bytes;
  for (const std::vector<std::string>& argv : commands) {
    RedisArgv args(argv);
    char* formatted = nullptr;
    const int len = redisFormatCommandArgv(&formatted, args.argc(), args.argv(), args.lens());
    if (len < 0 || formatted == nullptr) return Status::Internal("cache: cannot format a command");
    bytes.append(formatted, static_cast<std::size_t>(len));
    redisFreeCommand(formatted);
  }
  return Submit(std::move(bytes), commands.size());
}

StatusOr<std::vector<RedisReplyPtr>> RedisPipelinedConnection::Submit(std::string bytes,
                                                                      std::size_t count) {
  auto waiter = std::make_shared<Waiter>(count);
  {
    std::unique_lock lock(mu_);
    if (stop_ || socket_ == nullptr) return CacheUnavailable("not connected to Redis");
    if (pending_replies_ + count > options_.max_pending) {
      return Status::ResourceExhausted("cache: too many commands waiting for Redis", 100);
    }
    waiter->deadline = std::chrono::steady_clock::now() + options_.endpoint.command_timeout;
    out_.append(bytes);
    fifo_.push_back(waiter);
    pending_replies_ += count;
    queued_replies_ += count;
    // With nothing on the wire, send at once. Otherwise the reader sends what
    // accumulated as soon as the replies in flight are in: the batch grows
    // with the load instead of each command costing Redis a read and a write.
    if (!flushing_ && pending_replies_ == queued_replies_) FlushLocked(lock);
  }
  if (!waiter->done.WaitUntil(waiter->deadline + kCallerGrace)) {
    std::unique_lock lock(mu_);
    if (!waiter->completed) {
      waiter->abandoned = true;
      return CacheUnavailable("no reply within the command timeout");
    }
    lock.unlock();
    // Completed just now: the release follows right after the reader's unlock.
    waiter->done.Wait();
  }
  if (!waiter->status.ok()) return waiter->status;
  return std::move(waiter->replies);
}

void RedisPipelinedConnection::FlushLocked(std::unique_lock<std::mutex>& lock) {
  flushing_ = true;
  std::string batch;
  while (!out_.empty() && socket_ != nullptr) {
    batch.swap(out_);
    queued_replies_ = 0;
    sends_.fetch_add(1, std::memory_order_relaxed);
    std::shared_ptr<Socket> socket = socket_;
    lock.unlock();
    std::string tls_error;
    const bool sent = socket->tls != nullptr
                          ? SendAllTls(socket->fd(), *socket->tls, socket->tls_mu, batch,
                                       options_.endpoint.command_timeout, tls_error)
                          : SendAll(socket->fd(), batch);
    const int error = errno;
    lock.lock();
    batch.clear();
    if (!sent) {
      FailLocked(socket,
                 CacheUnavailable(!tls_error.empty() ? "send failed: " + tls_error
                                  : error == EAGAIN || error == EWOULDBLOCK
                                      ? "send timed out"
                                      : std::string("send failed: ") + std::strerror(error)));
    }
  }
  flushing_ = false;
}

void RedisPipelinedConnection::FailLocked(const std::shared_ptr<Socket>& socket,
                                          const Status& status) {
  // A failure seen on a socket that was already replaced concerns nobody
  // still waiting: fifo_ always belongs to the current socket.
  if (socket == nullptr || socket != socket_) return;
  shutdown(socket_->fd(), SHUT_RDWR);
  socket_.reset();
  out_.clear();
  pending_replies_ = 0;
  queued_replies_ = 0;
  for (const std::shared_ptr<Waiter>& waiter : fifo_) {
    waiter->status = status;
    waiter->completed = true;
    if (!waiter->abandoned) waiter->done.Set();
  }
  fifo_.clear();
}

void RedisPipelinedConnection::Complete(std::vector<std::shared_ptr<Waiter>>& done) {
  for (const std::shared_ptr<Waiter>& waiter : done) waiter->done.Set();
  done.clear();
}

void RedisPipelinedConnection::ReaderLoop() {
  std::unique_ptr<redisReader, ReaderDeleter> parser(redisReaderCreate());
  std::shared_ptr<Socket> parsed_socket;  // the socket `parser` holds state for
  std::vector<char> chunk(kReadChunk);
  std::vector<RedisReplyPtr> replies;
  std::vector<std::shared_ptr<Waiter>> done;

  std::unique_lock lock(mu_);
  while (!stop_) {
    if (socket_ == nullptr) {
      lock.unlock();
      StatusOr<std::shared_ptr<Socket>> socket = Connect();
      lock.lock();
      if (stop_) break;
      if (socket.ok()) {
        socket_ = std::move(*socket);
        connects_.fetch_add(1, std::memory_order_relaxed);
      } else {
        reader_cv_.wait_for(lock, options_.reconnect_interval, [this] { return stop_; });
      }
      continue;
    }
    std::shared_ptr<Socket> socket = socket_;
    if (socket != parsed_socket) {
      parser.reset(redisReaderCreate());
      parsed_socket = socket;
    }
    // Wake up at the oldest command's deadline; a command queued later has a
    // later deadline than a full timeout from now.
    const auto now = std::chrono::steady_clock::now();
    auto wait = options_.endpoint.command_timeout;
    if (!fifo_.empty()) {
      wait = std::chrono::ceil<std::chrono::milliseconds>(fifo_.front()->deadline - now);
    }
    lock.unlock();

    bool pending = false;
    if (socket->tls != nullptr) {
      const std::lock_guard tls_lock(socket->tls_mu);
      pending = socket->tls->HasPending();
    }
    pollfd pfd{.fd = socket->fd(), .events = POLLIN, .revents = 0};
    const int ready = pending             ? 1
                      : wait.count() <= 0 ? 0
                                          : poll(&pfd, 1, static_cast<int>(wait.count()));
    Status failure;
    if (ready > 0) {
      ssize_t n = 0;
      if (socket->tls != nullptr) {
        std::size_t received = 0;
        tls::TlsChannel::Io read;
        {
          const std::lock_guard tls_lock(socket->tls_mu);
          read = socket->tls->ReadNow(chunk.data(), chunk.size(), received);
          if (read == tls::TlsChannel::Io::kFailed) {
            failure = CacheUnavailable("receive failed: " + socket->tls->Error());
          }
        }
        // kWantRead/kWantWrite: no whole record yet: poll again.
        n = read == tls::TlsChannel::Io::kDone || read == tls::TlsChannel::Io::kClosed
                ? static_cast<ssize_t>(received)
                : -1;
        if (n < 0) errno = EAGAIN;
      } else {
        n = recv(socket->fd(), chunk.data(), chunk.size(), 0);
      }
      if (!failure.ok()) {
        // the TLS session failed (above)
      } else if (n == 0) {
        failure = CacheUnavailable("connection closed by Redis");
      } else if (n < 0 && errno != EINTR && errno != EAGAIN) {
        failure = CacheUnavailable(std::string("receive failed: ") + std::strerror(errno));
      } else if (n > 0) {
        if (redisReaderFeed(parser.get(), chunk.data(), static_cast<std::size_t>(n)) != REDIS_OK) {
          failure = CacheUnavailable("out of memory parsing replies");
        }
        while (failure.ok()) {
          void* raw = nullptr;
          if (redisReaderGetReply(parser.get(), &raw) != REDIS_OK) {
            failure = CacheUnavailable(std::string("protocol error: ") + parser->errstr);
          } else if (raw == nullptr) {
            break;
          } else {
            replies.emplace_back(static_cast<redisReply*>(raw));
          }
        }
      }
    } else if (ready < 0 && errno != EINTR) {
      failure = CacheUnavailable(std::string("poll failed: ") + std::strerror(errno));
    }

    lock.lock();
    if (socket != socket_) {
      // A sender failed this socket meanwhile; its commands are answered.
      replies.clear();
      continue;
    }
    for (RedisReplyPtr& reply : replies) {
      if (fifo_.empty()) {
        failure = CacheUnavailable("a reply arrived that no command was waiting for");
        break;
      }
      const std::shared_ptr<Waiter>& front = fifo_.front();
      front->replies.push_back(std::move(reply));
      --pending_replies_;
      if (front->replies.size() == front->expected) {
        front->completed = true;
        if (!front->abandoned) done.push_back(front);
        fifo_.pop_front();
      }
    }
    replies.clear();
    if (failure.ok() && !fifo_.empty() &&
        fifo_.front()->deadline <= std::chrono::steady_clock::now()) {
      failure = CacheUnavailable("no reply within the command timeout");
    }
    if (!failure.ok()) FailLocked(socket, failure);
    // Everything sent is answered: send what queued up meanwhile, before
    // waking the callers, so Redis works on it while they run.
    if (!flushing_ && !out_.empty() && pending_replies_ == queued_replies_) FlushLocked(lock);
    if (!done.empty()) {
      lock.unlock();
      Complete(done);
      lock.lock();
    }
  }
  FailLocked(socket_, CacheUnavailable("the connection is shutting down"));
}

}  // namespace polycrud
