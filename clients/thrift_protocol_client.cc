// ProtocolClient over the generated Thrift C++ client: framed transport,
// binary or compact protocol, one socket kept open across calls. After a
// transport or protocol failure the socket is closed (the stream may be out
// of step) and the next call opens a new one. Reads and writes wait in
// runtime::WaitReady, so a thread's IoWaiter may run other clients meanwhile.
#include <fcntl.h>
#include <thrift/TApplicationException.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/protocol/TCompactProtocol.h>
#include <thrift/protocol/TProtocolException.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TSocket.h>
#include <thrift/transport/TTransportException.h>
#include <thrift/transport/TVirtualTransport.h>

#include <chrono>
#include <memory>
#include <string>
#include <utility>

#include "UserService.h"
#include "clients/protocol_client.h"
#include "clients/protocol_clients.h"
#include "clients/thrift_user_convert.h"
#include "runtime/io_wait.h"
#include "transport/thrift/framed_transport.h"
#include "transport/thrift/waiting_socket_io.h"
#include "transport/tls/tls.h"

namespace polycrud::clients {
namespace {

using runtime::IoWaiter;
using runtime::WaitReady;

namespace gen = ::polycrud::thrift;

namespace transport = ::apache::thrift::transport;

// A TSocket that connects and closes as usual, while reads and writes go
// straight to its descriptor without blocking and, when it would block, wait
// in runtime::WaitReady up to the timeout (waiting_socket_io.h; TSocket's own
// would block the thread in recv()).
// With a TLS context, open() runs the handshake (verifying `host`) and
// reads and writes go through the session.
class WaitingSocket final : public transport::TVirtualTransport<WaitingSocket> {
 public:
  WaitingSocket(std::shared_ptr<transport::TSocket> socket, int timeout_ms,
                std::shared_ptr<SSL_CTX> tls = nullptr, std::string host = "")
      : socket_(std::move(socket)),
        timeout_(timeout_ms),
        tls_context_(std::move(tls)),
        host_(std::move(host)) {}

  bool isOpen() const override { return socket_->isOpen(); }
  void open() override {
    socket_->open();
    if (!tls_context_) return;
    const int fd = socket_->getSocketFD();
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    tls_ = tls::TlsChannel::Client(tls_context_.get(), fd, host_);
    if (const std::error_code ec = tls_->Handshake(runtime::IoClock::now() + timeout_)) {
      const std::string why = ec == std::errc::timed_out ? "timed out" : tls_->Error();
      close();
      throw transport::TTransportException(transport::TTransportException::NOT_OPEN,
                                           "TLS handshake failed: " + why);
    }
  }
  void close() override {
    tls_.reset();
    socket_->close();
  }

  std::uint32_t read(std::uint8_t* buf, std::uint32_t len) {
    const bool wait_first = std::exchange(sent_, false);
    if (tls_) return thrift_transport::ReadWaiting(*tls_, buf, len, timeout_, wait_first);
    return thrift_transport::ReadWaiting(socket_->getSocketFD(), buf, len, timeout_, wait_first);
  }

  void write(const std::uint8_t* buf, std::uint32_t len) {
    if (tls_) {
      thrift_transport::WriteWaiting(*tls_, buf, len, timeout_);
    } else {
      thrift_transport::WriteWaiting(socket_->getSocketFD(), buf, len, timeout_);
    }
    sent_ = true;
  }

 private:
  std::shared_ptr<transport::TSocket> socket_;
  std::chrono::milliseconds timeout_;
  std::shared_ptr<SSL_CTX> tls_context_;
  std::string host_;
  std::unique_ptr<tls::TlsChannel> tls_;
  bool sent_ = false;  // written since the last read
};

class ThriftProtocolClient final : public ProtocolClient {
 public:
  ThriftProtocolClient(const ClientOptions& options, std::string name)
      : options_(options), name_(std::move(name)) {
    Connect();
  }
  ~ThriftProtocolClient() override { Disconnect(); }
  std::string_view protocol() const override { return name_; }

  Outcome<std::string> Ping() override {
    return Call<std::string>([&] {
      std::string out;
      client_->ping(out);
      return out;
    });
  }
  Outcome<User> CreateUser(const std::string& token, const UserDraft& draft) override {
    return Call<User>([&] {
      gen::UserDraft d;
      d.username = draft.username;
      d.email = draft.email;
      d.full_name = draft.full_name;
      gen::User out;
      client_->createUser(out, token, d);
      return FromThrift(out);
    });
  }
  Outcome<User> GetUser(const std::string& token, std::int64_t id) override {
    return Call<User>([&] {
      gen::User out;
      client_->getUser(out, token, id);
      return FromThrift(out);
    });
  }
  Outcome<std::vector<User>> BatchGetUsers(const std::string& token,
                                           const std::vector<std::int64_t>& ids) override {
    return Call<std::vector<User>>([&] {
      std::vector<gen::User> out;
      client_->batchGetUsers(out, token, ids);
      std::vector<User> users;
      for (const auto& u : out) users.push_back(FromThrift(u));
      return users;
    });
  }
  Outcome<User> UpdateUser(const std::string& token, std::int64_t id,
                           const UserPatch& patch) override {
    return Call<User>([&] {
      gen::UserPatch p;
      if (patch.email) p.__set_email(*patch.email);
      if (patch.full_name) p.__set_full_name(*patch.full_name);
      p.expected_version = patch.expected_version;
      gen::User out;
      client_->updateUser(out, token, id, p);
      return FromThrift(out);
    });
  }
  Outcome<Empty> DeleteUser(const std::string& token, std::int64_t id) override {
    return Call<Empty>([&] {
      client_->deleteUser(token, id);
      return Empty{};
    });
  }
  Outcome<std::vector<User>> SearchUsers(const std::string& token, const std::string& prefix,
                                         std::int32_t limit) override {
    return Call<std::vector<User>>([&] {
      std::vector<gen::User> out;
      client_->searchUsers(out, token, prefix, limit);
      std::vector<User> users;
      for (const auto& u : out) users.push_back(FromThrift(u));
      return users;
    });
  }
  Outcome<UserPage> ListUsers(const std::string& token, std::int64_t after_id,
                              std::int32_t limit) override {
    return Call<UserPage>([&] {
      gen::UserPage out;
      client_->listUsers(out, token, after_id, limit);
      UserPage page;
      for (const auto& u : out.users) page.users.push_back(FromThrift(u));
      page.next_after_id = out.next_after_id;
      return page;
    });
  }

 private:
  // Runs one call and maps the IDL exceptions back to core codes.
  template <typename T, typename Fn>
  Outcome<T> Call(Fn&& fn) {
    Outcome<T> out;
    try {
      if (client_ == nullptr) Connect();
      out.value = std::forward<Fn>(fn)();
    } catch (const gen::InvalidArgument& e) {
      out.status = {StatusCode::kInvalidArgument, ConflictKind::kNone, e.field, e.message};
    } catch (const gen::Unauthenticated& e) {
      out.status = {StatusCode::kUnauthenticated, ConflictKind::kNone, "", e.message};
    } catch (const gen::PermissionDenied& e) {
      out.status = {StatusCode::kPermissionDenied, ConflictKind::kNone, "", e.message};
    } catch (const gen::NotFound& e) {
      out.status = {StatusCode::kNotFound, ConflictKind::kNone, "", e.message};
    } catch (const gen::Conflict& e) {
      out.status = {StatusCode::kConflict, ConflictKind::kNone, "", e.message};
    } catch (const gen::Unavailable& e) {
      // Thrift has one exception for both; the retry hint is always set.
      out.status = {StatusCode::kUnavailable, ConflictKind::kNone, "", e.message};
    } catch (const apache::thrift::TApplicationException& e) {
      out.status = {StatusCode::kInternal, ConflictKind::kNone, "", e.what()};
    } catch (const apache::thrift::TException& e) {
      // TTransportException, TProtocolException: no usable answer arrived.
      Disconnect();
      out.value.reset();
      out.status = {StatusCode::kInternal, ConflictKind::kNone, "", e.what(), true};
    }
    return out;
  }

  // Opens the socket; throws TTransportException when it cannot.
  void Connect() {
    using namespace ::apache::thrift;
    auto socket = std::make_shared<transport::TSocket>(options_.host, options_.port);
    socket->setConnTimeout(options_.timeout_ms);
    socket->setNoDelay(true);
    // One frame's budget per read, however long the connection lives.
    if (!tls_context_ && (!options_.tls.ca.empty() || options_.tls.enabled())) {
      tls_context_ = tls::MakeClientContext(options_.tls);
    }
    auto framed = thrift_transport::MakeFramedTransport(std::make_shared<WaitingSocket>(
        std::move(socket), options_.timeout_ms, tls_context_, options_.host));
    std::shared_ptr<protocol::TProtocol> proto;
    if (options_.thrift_compact) {
      proto = std::make_shared<protocol::TCompactProtocol>(framed);
    } else {
      proto = std::make_shared<protocol::TBinaryProtocol>(framed);
    }
    framed->open();
    transport_ = std::move(framed);
    client_ = std::make_unique<gen::UserServiceClient>(proto);
  }

  void Disconnect() {
    client_.reset();
    if (transport_ != nullptr) {
      try {
        transport_->close();
      } catch (const apache::thrift::TException&) {  // already broken
      }
      transport_.reset();
    }
  }

  ClientOptions options_;
  std::shared_ptr<SSL_CTX> tls_context_;  // made on the first TLS connect
  std::string name_;
  std::shared_ptr<apache::thrift::transport::TTransport> transport_;
  std::unique_ptr<gen::UserServiceClient> client_;
};

}  // namespace

std::unique_ptr<ProtocolClient> MakeThriftProtocolClient(const ClientOptions& options,
                                                         std::string name) {
  return std::make_unique<ThriftProtocolClient>(options, std::move(name));
}

}  // namespace polycrud::clients
