// ProtocolClient: one interface over the real client library of each
// protocol (generated Thrift C++ client, gRPC stub, gSOAP proxy, Boost.Beast
// HTTP), so that a scenario or a load written once runs on all of them. The
// conformance suite and polycrud-bench both drive servers through it.
// Results come back as core types, and each protocol's native error is mapped
// back to the core code it stands for (API.md, Error model), so a wrong
// mapping on any protocol shows up as a different outcome. A failure below
// the protocol (connection refused or reset, timeout, garbled answer) is
// flagged as a transport failure; the client reconnects on its next call.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/user.h"
#include "transport/tls/tls.h"

namespace polycrud::clients {

// What a call produced, normalised across protocols.
struct CallStatus {
  StatusCode code = StatusCode::kOk;
  // For kConflict: which kind, where the protocol tells them apart (gRPC
  // ALREADY_EXISTS vs ABORTED); kNone where it cannot.
  ConflictKind conflict = ConflictKind::kNone;
  std::string field;    // offending field, where the protocol carries it
  std::string message;  // for failure messages only
  // True when no answer of the server arrived (connect, send or receive
  // failed or timed out, or the byte stream broke off); `code` is then
  // kInternal (kUnavailable for gRPC, whose channel reports it so).
  bool transport_failure = false;
};

template <typename T>
struct Outcome {
  CallStatus status;
  std::optional<T> value;  // set when status.code == kOk
  bool ok() const { return status.code == StatusCode::kOk; }
};

struct Empty {};

// Where and how to connect. Every client holds one connection (gRPC: one
// channel with a subchannel of its own, so N clients are N TCP connections),
// kept alive across calls and reopened after the server closed it.
struct ClientOptions {
  std::string host = "127.0.0.1";
  int port = 0;
  // REST only: prefix of every route, e.g. "/api" for the web gateway, whose
  // routes are /api/v1/...; empty for the C++ REST face (/v1/...).
  std::string rest_prefix;
  // Thrift only: TCompactProtocol instead of TBinaryProtocol (both framed).
  bool thrift_compact = false;
  // Bound of connect, send and receive (and of a gRPC call's deadline).
  int timeout_ms = 30'000;
  // TLS when set (Thrift, gRPC, REST and the web gateway; SOAP has none):
  // the server verified against `tls.ca` and `host`, `tls.cert`/`tls.key`
  // sent for mutual TLS.
  tls::TlsFiles tls;
};

// One connection to one server. Not thread-safe: use one per thread.
class ProtocolClient {
 public:
  virtual ~ProtocolClient() = default;
  // The protocol name it was made for ("thrift", "thrift-compact", ...).
  virtual std::string_view protocol() const = 0;

  virtual Outcome<std::string> Ping() = 0;
  virtual Outcome<User> CreateUser(const std::string& token, const UserDraft& draft) = 0;
  virtual Outcome<User> GetUser(const std::string& token, std::int64_t id) = 0;
  virtual Outcome<std::vector<User>> BatchGetUsers(const std::string& token,
                                                   const std::vector<std::int64_t>& ids) = 0;
  virtual Outcome<User> UpdateUser(const std::string& token, std::int64_t id,
                                   const UserPatch& patch) = 0;
  virtual Outcome<Empty> DeleteUser(const std::string& token, std::int64_t id) = 0;
  // limit 0: the server's default (20).
  virtual Outcome<std::vector<User>> SearchUsers(const std::string& token,
                                                 const std::string& prefix, std::int32_t limit) = 0;
  virtual Outcome<UserPage> ListUsers(const std::string& token, std::int64_t after_id,
                                      std::int32_t limit) = 0;
};

// The protocol names MakeProtocolClient knows: "thrift" (framed binary),
// "thrift-compact" (framed compact), "grpc", "soap", "rest" (the C++ REST
// face) and "web" (the REST client with rest_prefix "/api": the web gateway).
const std::vector<std::string>& KnownProtocols();

// A client of `protocol` for the server at options.host:options.port. Thrift
// and REST connect at once and throw std::exception when they cannot; gRPC
// and SOAP connect on their first call. Throws std::invalid_argument for a
// protocol it does not know.
std::unique_ptr<ProtocolClient> MakeProtocolClient(std::string_view protocol,
                                                   const ClientOptions& options);
// The same for 127.0.0.1:port with the default options.
std::unique_ptr<ProtocolClient> MakeProtocolClient(std::string_view protocol, int port);

}  // namespace polycrud::clients
