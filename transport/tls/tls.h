// TLS for the faces and clients that do their own socket I/O
// (polycrud::tls, OpenSSL 3): the certificate files of a server or client
// (TlsFiles), OpenSSL contexts made from them (TLS 1.2 or later, peer
// certificates verified against the given CA; a server's certificate and
// key can be read again while it serves), and TlsChannel, a TLS session
// over a non-blocking socket whose reads, writes and handshake wait in
// runtime::WaitReady like the project's plain socket I/O (a fiber parks, a
// plain thread blocks in poll()).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "core/io_waiter.h"

typedef struct ssl_ctx_st SSL_CTX;  // NOLINT: OpenSSL's own spelling
typedef struct ssl_st SSL;          // NOLINT

namespace polycrud::tls {

// Where a server's (or a client's) certificate, its private key and the CA
// that signs the peer's certificates are. A server with `ca` set requires a
// client certificate signed by it (mutual TLS); a client with `ca` set
// verifies the server against it (else against the system's CAs), and sends
// `cert` when the server asks for one.
struct TlsFiles {
  std::string cert;  // PEM, the leaf first, then any intermediates
  std::string key;   // PEM private key (mode 0600)
  std::string ca;    // PEM CA certificates
  bool enabled() const { return !cert.empty() || !key.empty(); }
};

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const;
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;

// A server context: TLS 1.2+, `files.cert` and `files.key` (which must
// match), and with `files.ca` a required, verified client certificate.
// Throws std::runtime_error naming the file and OpenSSL's reason.
SslCtxPtr MakeServerContext(const TlsFiles& files);
// What ReloadServerCertificates did: how many server contexts took their
// files anew, and why each of the others did not.
struct CertificateReload {
  int reloaded = 0;
  std::vector<std::string> failures;
};
// Reads the certificate and key files of every server context that
// MakeServerContext made and that is still in use again (the server's
// SIGHUP): each handshake from then on presents the new pair, sessions
// already open go on with theirs. A context whose files fail to load (not
// readable, a key that does not match) keeps its pair. The client CA is
// read at start only.
CertificateReload ReloadServerCertificates();

// A client context: TLS 1.2+, the server verified against `files.ca` (or
// the system's CAs when empty); `files.cert`/`files.key` if set.
SslCtxPtr MakeClientContext(const TlsFiles& files);

// The whole content of a PEM file, for libraries that take PEM text (gRPC).
// Throws std::runtime_error if it cannot be read.
std::string ReadPemFile(const std::string& path);

// One TLS session over a connected, non-blocking socket `fd` (not owned: the
// caller closes it after the channel is gone). One thread (or fiber) at a
// time, like the socket itself.
class TlsChannel {
 public:
  // A server-side session on `ctx`.
  static std::unique_ptr<TlsChannel> Server(SSL_CTX* ctx, int fd);
  // A client-side session that sends `host` as SNI and verifies that the
  // server's certificate names it (a DNS name or an IP address).
  static std::unique_ptr<TlsChannel> Client(SSL_CTX* ctx, int fd, const std::string& host);
  ~TlsChannel();
  TlsChannel(const TlsChannel&) = delete;
  TlsChannel& operator=(const TlsChannel&) = delete;

  // Runs the handshake until done or `deadline` (errc::timed_out). A failed
  // handshake (a bad or missing certificate, not TLS at all) is
  // errc::protocol_error, a lost connection its errno; Error() says why.
  std::error_code Handshake(IoClock::time_point deadline);
  // Reads what has arrived (at least one byte, waiting until something has);
  // `received` 0 means the peer closed the stream. `wait_first` as in
  // runtime::RecvSome: waits for the socket first unless TLS already holds
  // decrypted bytes.
  std::error_code ReadSome(void* buffer, std::size_t size, IoClock::time_point deadline,
                           bool wait_first, std::size_t& received);
  // Writes all of data[0, size).
  std::error_code WriteAll(const void* data, std::size_t size, IoClock::time_point deadline);
  // Sends close_notify without waiting for the peer's.
  void Shutdown();

  // One try, without waiting, for callers that wait themselves (a reader
  // thread that polls, or a caller that must not wait at all). kWantRead /
  // kWantWrite: retry once the socket is readable / writable (a write with
  // the same bytes); kClosed: the peer ended the stream; kFailed: Error()
  // says why.
  enum class Io { kDone, kWantRead, kWantWrite, kClosed, kFailed };
  Io ReadNow(void* buffer, std::size_t size, std::size_t& received);
  Io WriteNow(const void* data, std::size_t size);
  // Whether decrypted bytes wait to be read (a read needs no socket wait).
  bool HasPending() const;
  // OpenSSL's reason for the last failure ("" if none).
  const std::string& Error() const { return error_; }

 private:
  TlsChannel(SSL* ssl, int fd);
  // Waits for what Classify says the last call needs, or fails.
  std::error_code AfterFailure(int result, IoClock::time_point deadline);
  // What SSL_get_error says about a failed call, Error() set on kFailed.
  Io Classify(int result);

  SSL* ssl_;
  int fd_;
  std::string error_;
  int failed_errno_ = 0;  // errno of the last kFailed that was the socket's
};

}  // namespace polycrud::tls
