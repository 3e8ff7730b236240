#include "transport/tls/tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <utility>
#include <vector>

#include "runtime/io_wait.h"

namespace polycrud::tls {
namespace {

// OpenSSL's reasons queued on this thread, oldest first, and clears them.
std::string TakeErrors() {
  std::string text;
  while (const unsigned long code = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    if (!text.empty()) text += "; ";
    text += buf;
  }
  return text;
}

[[noreturn]] void Fail(const std::string& what) {
  std::string reason = TakeErrors();
  throw std::runtime_error("TLS: " + what + (reason.empty() ? "" : ": " + reason));
}

// A socket BIO writes with write(): to a peer that has gone that raises
// SIGPIPE, which must be an error instead.
void IgnoreSigpipe() {
  static std::once_flag once;
  std::call_once(once, [] { std::signal(SIGPIPE, SIG_IGN); });
}

SslCtxPtr NewContext(const SSL_METHOD* method) {
  SslCtxPtr ctx(SSL_CTX_new(method));
  if (!ctx) Fail("cannot create a context");
  if (SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION) != 1) Fail("TLS 1.2 minimum");
  // A peer that closes without close_notify ends the stream like one that
  // sends it: every message on it is framed (Thrift frames, HTTP lengths),
  // so a cut shows as a short message, never as a complete one.
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
  return ctx;
}

void LoadOwnCertificate(SSL_CTX* ctx, const TlsFiles& files) {
  if (SSL_CTX_use_certificate_chain_file(ctx, files.cert.c_str()) != 1) {
    Fail("cannot load the certificate " + files.cert);
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, files.key.c_str(), SSL_FILETYPE_PEM) != 1) {
    Fail("cannot load the private key " + files.key);
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    Fail("the key " + files.key + " does not match the certificate " + files.cert);
  }
}

bool IsIpAddress(const std::string& host) {
  unsigned char addr[16];
  return inet_pton(AF_INET, host.c_str(), addr) == 1 ||
         inet_pton(AF_INET6, host.c_str(), addr) == 1;
}

// The certificate and key a server context hands out, re-read on
// ReloadServerCertificates. A pair is held in a context of its own (loaded
// and checked by OpenSSL as at start), never changed after: a handshake
// takes the current one (UseCurrent) while a reload swaps in the next.
class ServerIdentity {
 public:
  explicit ServerIdentity(TlsFiles files) : files_(std::move(files)) { Load(); }

  // Loads the files again; throws (keeping the pair in force) if they fail.
  void Load() {
    SslCtxPtr pair = NewContext(TLS_server_method());
    LoadOwnCertificate(pair.get(), files_);
    current_.store(std::shared_ptr<SSL_CTX>(pair.release(), SSL_CTX_free));
  }

  // OpenSSL's certificate callback: the current pair for this handshake.
  static int UseCurrent(SSL* ssl, void* arg) {
    const std::shared_ptr<SSL_CTX> pair = static_cast<ServerIdentity*>(arg)->current_.load();
    STACK_OF(X509)* chain = nullptr;
    SSL_CTX_get0_chain_certs(pair.get(), &chain);
    return SSL_use_cert_and_key(ssl, SSL_CTX_get0_certificate(pair.get()),
                                SSL_CTX_get0_privatekey(pair.get()), chain, 1) == 1
               ? 1
               : 0;
  }

  const TlsFiles& files() const { return files_; }

 private:
  const TlsFiles files_;
  std::atomic<std::shared_ptr<SSL_CTX>> current_;
};

// Every server context's identity, for ReloadServerCertificates. A context
// owns its identity through its ex_data (freed with it, however it is freed:
// asio frees the contexts it took over itself); the registry only looks.
struct IdentityRegistry {
  std::mutex mu;
  std::vector<std::weak_ptr<ServerIdentity>> identities;
};
IdentityRegistry& Registry() {
  static IdentityRegistry* registry = new IdentityRegistry;  // never destroyed
  return *registry;
}

void FreeIdentity(void* /*parent*/, void* ptr, CRYPTO_EX_DATA* /*ad*/, int /*idx*/, long /*argl*/,
                  void* /*argp*/) {
  delete static_cast<std::shared_ptr<ServerIdentity>*>(ptr);
}

int IdentityIndex() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, FreeIdentity);
  return index;
}

}  // namespace

void SslCtxFree::operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }

SslCtxPtr MakeServerContext(const TlsFiles& files) {
  if (files.cert.empty() || files.key.empty()) {
    throw std::runtime_error("TLS: a server needs both a certificate and a key");
  }
  // The certificate and key are loaded (and checked) once, into the
  // identity; the context hands them out from it at each handshake.
  auto identity = std::make_shared<ServerIdentity>(files);
  SslCtxPtr ctx = NewContext(TLS_server_method());
  auto* owned = new std::shared_ptr<ServerIdentity>(identity);
  if (IdentityIndex() < 0 || SSL_CTX_set_ex_data(ctx.get(), IdentityIndex(), owned) != 1) {
    delete owned;
    Fail("cannot attach the certificate to its context");
  }
  SSL_CTX_set_cert_cb(ctx.get(), &ServerIdentity::UseCurrent, identity.get());
  {
    IdentityRegistry& registry = Registry();
    const std::lock_guard lock(registry.mu);
    std::erase_if(registry.identities, [](const auto& weak) { return weak.expired(); });
    registry.identities.push_back(identity);
  }
  if (!files.ca.empty()) {
    if (SSL_CTX_load_verify_locations(ctx.get(), files.ca.c_str(), nullptr) != 1) {
      Fail("cannot load the client CA " + files.ca);
    }
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(files.ca.c_str());
    if (names == nullptr) Fail("no CA certificate in " + files.ca);
    SSL_CTX_set_client_CA_list(ctx.get(), names);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  return ctx;
}

SslCtxPtr MakeClientContext(const TlsFiles& files) {
  SslCtxPtr ctx = NewContext(TLS_client_method());
  if (files.ca.empty()) {
    if (SSL_CTX_set_default_verify_paths(ctx.get()) != 1) Fail("cannot load the system's CAs");
  } else if (SSL_CTX_load_verify_locations(ctx.get(), files.ca.c_str(), nullptr) != 1) {
    Fail("cannot load the CA " + files.ca);
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  if (!files.cert.empty()) LoadOwnCertificate(ctx.get(), files);
  return ctx;
}

CertificateReload ReloadServerCertificates() {
  std::vector<std::shared_ptr<ServerIdentity>> live;
  {
    IdentityRegistry& registry = Registry();
    const std::lock_guard lock(registry.mu);
    std::erase_if(registry.identities, [](const auto& weak) { return weak.expired(); });
    for (const auto& weak : registry.identities) {
      if (auto identity = weak.lock()) live.push_back(std::move(identity));
    }
  }
  CertificateReload report;
  for (const auto& identity : live) {
    try {
      identity->Load();
      ++report.reloaded;
    } catch (const std::exception& e) {
      // Faces that share files fail alike: one message for them all.
      std::string failure =
          std::string(e.what()) + " (the certificate " + identity->files().cert + " in use stays)";
      if (std::find(report.failures.begin(), report.failures.end(), failure) ==
          report.failures.end()) {
        report.failures.push_back(std::move(failure));
      }
    }
  }
  return report;
}

std::string ReadPemFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("TLS: cannot read " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::unique_ptr<TlsChannel> TlsChannel::Server(SSL_CTX* ctx, int fd) {
  IgnoreSigpipe();
  SSL* ssl = SSL_new(ctx);
  if (ssl == nullptr) Fail("cannot create a session");
  std::unique_ptr<TlsChannel> channel(new TlsChannel(ssl, fd));
  if (SSL_set_fd(ssl, fd) != 1) Fail("cannot attach the socket");
  SSL_set_accept_state(ssl);
  return channel;
}

std::unique_ptr<TlsChannel> TlsChannel::Client(SSL_CTX* ctx, int fd, const std::string& host) {
  IgnoreSigpipe();
  SSL* ssl = SSL_new(ctx);
  if (ssl == nullptr) Fail("cannot create a session");
  std::unique_ptr<TlsChannel> channel(new TlsChannel(ssl, fd));
  if (SSL_set_fd(ssl, fd) != 1) Fail("cannot attach the socket");
  if (IsIpAddress(host)) {
    if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str()) != 1) {
      Fail("bad address " + host);
    }
  } else {
    if (SSL_set_tlsext_host_name(ssl, host.c_str()) != 1 || SSL_set1_host(ssl, host.c_str()) != 1) {
      Fail("bad host name " + host);
    }
  }
  SSL_set_connect_state(ssl);
  return channel;
}

TlsChannel::TlsChannel(SSL* ssl, int fd) : ssl_(ssl), fd_(fd) {}

TlsChannel::~TlsChannel() { SSL_free(ssl_); }

std::error_code TlsChannel::AfterFailure(int result, IoClock::time_point deadline) {
  switch (Classify(result)) {
    case Io::kWantRead:
      return runtime::WaitReady(fd_, POLLIN, deadline);
    case Io::kWantWrite:
      return runtime::WaitReady(fd_, POLLOUT, deadline);
    case Io::kFailed:
      // The socket's own errno when it failed, else a failure of TLS itself.
      if (failed_errno_ != 0) return {failed_errno_, std::generic_category()};
      return std::make_error_code(std::errc::protocol_error);
    default:  // kClosed in a handshake or a write: the peer is gone
      error_ = "the peer closed the TLS session";
      return std::make_error_code(std::errc::protocol_error);
  }
}

std::error_code TlsChannel::Handshake(IoClock::time_point deadline) {
  for (;;) {
    ERR_clear_error();
    errno = 0;
    const int result = SSL_do_handshake(ssl_);
    if (result == 1) return {};
    if (const std::error_code ec = AfterFailure(result, deadline)) return ec;
  }
}

std::error_code TlsChannel::ReadSome(void* buffer, std::size_t size, IoClock::time_point deadline,
                                     bool wait_first, std::size_t& received) {
  received = 0;
  if (wait_first && SSL_pending(ssl_) == 0) {
    if (const std::error_code ec = runtime::WaitReady(fd_, POLLIN, deadline)) return ec;
  }
  for (;;) {
    ERR_clear_error();
    errno = 0;
    const int result = SSL_read_ex(ssl_, buffer, size, &received);
    if (result == 1) return {};
    if (SSL_get_error(ssl_, result) == SSL_ERROR_ZERO_RETURN) {
      received = 0;  // close_notify, or (SSL_OP_IGNORE_UNEXPECTED_EOF) a plain close
      return {};
    }
    if (const std::error_code ec = AfterFailure(result, deadline)) return ec;
  }
}

std::error_code TlsChannel::WriteAll(const void* data, std::size_t size,
                                     IoClock::time_point deadline) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  while (size > 0) {
    ERR_clear_error();
    errno = 0;
    std::size_t written = 0;
    // A retry after WANT_* repeats the same buffer, as OpenSSL requires.
    const int result = SSL_write_ex(ssl_, bytes, size, &written);
    if (result == 1) {
      bytes += written;
      size -= written;
      continue;
    }
    if (const std::error_code ec = AfterFailure(result, deadline)) return ec;
  }
  return {};
}

TlsChannel::Io TlsChannel::ReadNow(void* buffer, std::size_t size, std::size_t& received) {
  received = 0;
  ERR_clear_error();
  errno = 0;
  const int result = SSL_read_ex(ssl_, buffer, size, &received);
  if (result == 1) return Io::kDone;
  return Classify(result);
}

TlsChannel::Io TlsChannel::WriteNow(const void* data, std::size_t size) {
  ERR_clear_error();
  errno = 0;
  std::size_t written = 0;
  // Without SSL_MODE_ENABLE_PARTIAL_WRITE a success wrote everything.
  const int result = SSL_write_ex(ssl_, data, size, &written);
  if (result == 1) return Io::kDone;
  return Classify(result);
}

bool TlsChannel::HasPending() const { return SSL_pending(ssl_) > 0; }

TlsChannel::Io TlsChannel::Classify(int result) {
  const int saved_errno = errno;
  switch (SSL_get_error(ssl_, result)) {
    case SSL_ERROR_WANT_READ:
      return Io::kWantRead;
    case SSL_ERROR_WANT_WRITE:
      return Io::kWantWrite;
    case SSL_ERROR_ZERO_RETURN:
      return Io::kClosed;
    case SSL_ERROR_SYSCALL:
      failed_errno_ = saved_errno != 0 ? saved_errno : ECONNRESET;
      error_ = TakeErrors();
      if (error_.empty()) error_ = std::generic_category().message(failed_errno_);
      return Io::kFailed;
    default:
      failed_errno_ = 0;
      error_ = TakeErrors();
      if (error_.empty()) error_ = "TLS protocol error";
      return Io::kFailed;
  }
}

void TlsChannel::Shutdown() {
  ERR_clear_error();
  // One try, without waiting: the connection is closed right after.
  if (SSL_shutdown(ssl_) < 0) ERR_clear_error();
}

}  // namespace polycrud::tls
