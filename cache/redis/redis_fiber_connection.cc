#include "cache/redis/redis_fiber_connection.h"

#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <utility>

#include "runtime/io_wait.h"

namespace polycrud {
namespace {

constexpr std::size_t kReadChunk = 64 * 1024;

// Lets the other fibers that are ready on this thread run first.
void Yield(runtime::IoWaiter& waiter) {
  std::atomic<bool> flag{false};
  waiter.Unpark(waiter.CurrentTicket(), flag);
  waiter.Park();
}

}  // namespace

// A fiber waiting for `expected` replies; lives on that fiber's stack.
struct RedisFiberConnection::Waiter {
  explicit Waiter(std::size_t n) : expected(n) { replies.reserve(n); }
  const std::size_t expected;
  std::vector<RedisReplyPtr> replies;
  Status status;
  std::chrono::steady_clock::time_point deadline;
  bool done = false;
  runtime::IoWaiter* waiter = nullptr;
  void* ticket = nullptr;
  std::atomic<bool> woken{false};
};

RedisFiberConnection::RedisFiberConnection(RedisPipelineOptions options)
    : options_(std::move(options)), parser_(nullptr, &redisReaderFree) {}

RedisFiberConnection::~RedisFiberConnection() = default;

Status RedisFiberConnection::EnsureConnected() {
  if (ctx_ != nullptr) return Status::Ok();
  const auto now = std::chrono::steady_clock::now();
  if (now < next_connect_) return CacheUnavailable("not connected to Redis");
  next_connect_ = now + options_.reconnect_interval;
  // Blocks the thread for at most connect_timeout, once per interval.
  StatusOr<RedisContextPtr> ctx = ConnectRedis(options_.endpoint, &tls_);
  if (!ctx.ok()) return ctx.status();
  ctx_ = std::move(*ctx);
  parser_.reset(redisReaderCreate());
  if (parser_ == nullptr) {
    tls_.reset();
    ctx_.reset();
    return CacheUnavailable("out of memory connecting");
  }
  ++connects_;
  return Status::Ok();
}

StatusOr<std::vector<RedisReplyPtr>> RedisFiberConnection::Submit(std::string bytes,
                                                                  std::size_t count) {
  runtime::IoWaiter* const io = runtime::ThreadIoWaiter();
  if (io == nullptr) return Status::Internal("cache: a fiber connection used off its fibers");
  if (Status connected = EnsureConnected(); !connected.ok()) return connected;
  if (pending_ + count > options_.max_pending) {
    return Status::ResourceExhausted("cache: too many commands waiting for Redis", 100);
  }
  Waiter self(count);
  self.deadline = std::chrono::steady_clock::now() + options_.endpoint.command_timeout;
  self.waiter = io;
  self.ticket = io->CurrentTicket();
  out_.append(bytes);
  fifo_.push_back(&self);
  pending_ += count;
  queued_ += count;
  // With nothing on the wire, send once the fibers that are ready now have
  // queued theirs. Otherwise the reader sends what accumulated as soon as
  // the replies in flight are in: the batch grows with the load.
  if (pending_ == queued_) {
    Yield(*io);
    if (pending_ == queued_ && !out_.empty()) Flush();
  }
  while (!self.done) {
    if (!reading_) {
      Read(self);
      break;
    }
    self.woken.store(false, std::memory_order_relaxed);
    while (!self.woken.load(std::memory_order_acquire)) io->Park();
  }
  if (!self.status.ok()) return self.status;
  return std::move(self.replies);
}

void RedisFiberConnection::Flush() {
  if (ctx_ == nullptr) return;
  ++sends_;
  std::string_view data = out_;
  if (tls_ != nullptr) {
    // All or nothing: a TLS write that would block cannot be left half done.
    const tls::TlsChannel::Io done = tls_->WriteNow(data.data(), data.size());
    if (done != tls::TlsChannel::Io::kDone) {
      Fail(CacheUnavailable(done == tls::TlsChannel::Io::kFailed
                                ? "send failed: " + tls_->Error()
                                : std::string("Redis is not reading its connection")));
      return;
    }
    data = {};
  }
  while (!data.empty()) {
    const ssize_t n = ::send(ctx_->fd, data.data(), data.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    // A socket buffer that will not take a batch means Redis stopped
    // reading; waiting here for it would stall the thread's reader too.
    Fail(CacheUnavailable(n < 0 && errno != EAGAIN && errno != EWOULDBLOCK
                              ? std::string("send failed: ") + std::strerror(errno)
                              : std::string("Redis is not reading its connection")));
    return;
  }
  out_.clear();
  queued_ = 0;
}

void RedisFiberConnection::Read(Waiter& self) {
  reading_ = true;
  if (chunk_.empty()) chunk_.resize(kReadChunk);
  std::vector<char>& chunk = chunk_;
  while (!self.done) {
    if (ctx_ == nullptr) {
      Fail(CacheUnavailable("not connected to Redis"));
      break;
    }
    const int fd = ctx_->fd;
    // Bytes TLS has decrypted already are read without a wait.
    if (tls_ == nullptr || !tls_->HasPending()) {
      const std::error_code ec = runtime::WaitReady(fd, POLLIN, fifo_.front()->deadline);
      if (ec == std::errc::timed_out) {
        Fail(CacheUnavailable("no reply within the command timeout"));
        break;
      }
    }
    ssize_t n = 0;
    if (tls_ != nullptr) {
      std::size_t received = 0;
      const tls::TlsChannel::Io done = tls_->ReadNow(chunk.data(), chunk.size(), received);
      if (done == tls::TlsChannel::Io::kWantRead) continue;
      if (done == tls::TlsChannel::Io::kWantWrite) {
        runtime::WaitReady(fd, POLLOUT, fifo_.front()->deadline);
        continue;
      }
      if (done == tls::TlsChannel::Io::kFailed) {
        Fail(CacheUnavailable("receive failed: " + tls_->Error()));
        break;
      }
      n = static_cast<ssize_t>(received);  // 0 when kClosed
    } else {
      n = ::recv(fd, chunk.data(), chunk.size(), MSG_DONTWAIT);
    }
    if (n == 0) {
      Fail(CacheUnavailable("connection closed by Redis"));
      break;
    }
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      Fail(CacheUnavailable(std::string("receive failed: ") + std::strerror(errno)));
      break;
    }
    if (redisReaderFeed(parser_.get(), chunk.data(), static_cast<std::size_t>(n)) != REDIS_OK) {
      Fail(CacheUnavailable("out of memory parsing replies"));
      break;
    }
    for (;;) {
      void* raw = nullptr;
      if (redisReaderGetReply(parser_.get(), &raw) != REDIS_OK) {
        Fail(CacheUnavailable(std::string("protocol error: ") + parser_->errstr));
        break;
      }
      if (raw == nullptr) break;
      RedisReplyPtr reply(static_cast<redisReply*>(raw));
      if (fifo_.empty()) {
        Fail(CacheUnavailable("a reply arrived that no command was waiting for"));
        break;
      }
      Waiter& front = *fifo_.front();
      front.replies.push_back(std::move(reply));
      --pending_;
      if (front.replies.size() == front.expected) {
        fifo_.pop_front();
        front.done = true;
        if (&front != &self) Wake(front);
      }
    }
    // Everything sent is answered: send what queued up meanwhile, before
    // the completed fibers run, so Redis works on it while they do.
    if (ctx_ != nullptr && pending_ == queued_ && !out_.empty()) Flush();
  }
  reading_ = false;
  // The oldest fiber still waiting reads on.
  if (!fifo_.empty()) Wake(*fifo_.front());
}

void RedisFiberConnection::Fail(const Status& status) {
  tls_.reset();
  ctx_.reset();
  parser_.reset();
  out_.clear();
  pending_ = 0;
  queued_ = 0;
  std::deque<Waiter*> failed;
  failed.swap(fifo_);
  for (Waiter* waiter : failed) {
    waiter->status = status;
    waiter->done = true;
    Wake(*waiter);
  }
}

void RedisFiberConnection::Wake(Waiter& waiter) {
  waiter.waiter->Unpark(waiter.ticket, waiter.woken);
}

}  // namespace polycrud
