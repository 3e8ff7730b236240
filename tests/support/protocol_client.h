// ProtocolClient: one interface over the real client of each protocol
// (Thrift, gRPC, SOAP, REST), so a scenario written once runs on all four.
// Results come back as core types, and each protocol's native error is
// mapped back to the core code it stands for (API.md, Error model), so a
// wrong mapping on any protocol shows up as a different outcome.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/user.h"

namespace polycrud::testing {

// What a call produced, normalised across protocols.
struct CallStatus {
  StatusCode code = StatusCode::kOk;
  // For kConflict: which kind, where the protocol tells them apart (gRPC
  // ALREADY_EXISTS vs ABORTED); kNone where it cannot.
  ConflictKind conflict = ConflictKind::kNone;
  std::string field;    // offending field, where the protocol carries it
  std::string message;  // for failure messages only
};

template <typename T>
struct Outcome {
  CallStatus status;
  std::optional<T> value;  // set when status.code == kOk
  bool ok() const { return status.code == StatusCode::kOk; }
};

struct Empty {};

class ProtocolClient {
 public:
  virtual ~ProtocolClient() = default;
  virtual std::string_view protocol() const = 0;

  virtual Outcome<std::string> Ping() = 0;
  virtual Outcome<User> CreateUser(const std::string& token, const UserDraft& draft) = 0;
  virtual Outcome<User> GetUser(const std::string& token, std::int64_t id) = 0;
  virtual Outcome<std::vector<User>> BatchGetUsers(const std::string& token,
                                                   const std::vector<std::int64_t>& ids) = 0;
  virtual Outcome<User> UpdateUser(const std::string& token, std::int64_t id,
                                   const UserPatch& patch) = 0;
  virtual Outcome<Empty> DeleteUser(const std::string& token, std::int64_t id) = 0;
  virtual Outcome<UserPage> ListUsers(const std::string& token, std::int64_t after_id,
                                      std::int32_t limit) = 0;
};

// A client of `protocol` ("thrift", "grpc", "soap", "rest") connected to a
// server on 127.0.0.1:port. Throws for a protocol it does not know.
std::unique_ptr<ProtocolClient> MakeProtocolClient(std::string_view protocol, int port);

// The protocols MakeProtocolClient knows, i.e. those the conformance suite runs on.
std::vector<std::string> ConformanceProtocols();

}  // namespace polycrud::testing
