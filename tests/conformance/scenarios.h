// The conformance scenarios: one table of scenarios every protocol must
// pass alike through its real client (clients/protocol_client.h), and the
// flow of one record through all four faces. The conformance suite runs them
// against a server of its own, the cluster suite through the load balancer of
// the multi-host layout. Tokens: the test tokens (tests/support).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "clients/protocol_client.h"
#include "core/status.h"
#include "core/user.h"

namespace polycrud::testing {

// The protocols the scenarios run on (each face of polycrud-server once).
std::vector<std::string> ConformanceProtocols();

// A username unique to this run.
std::string Unique(const std::string& prefix);

UserDraft Draft(const std::string& username, const std::string& full_name = "Conformance User");

// Checks an outcome's code (and the field / conflict kind where given).
template <typename T>
void ExpectCode(const clients::Outcome<T>& out, StatusCode code, const std::string& field = "",
                ConflictKind kind = ConflictKind::kNone) {
  EXPECT_EQ(StatusCodeName(out.status.code), StatusCodeName(code)) << out.status.message;
  if (!field.empty()) {
    EXPECT_EQ(out.status.field, field);
  }
  // Protocols that cannot tell conflict kinds apart report kNone.
  if (kind != ConflictKind::kNone && out.status.conflict != ConflictKind::kNone) {
    EXPECT_EQ(static_cast<int>(out.status.conflict), static_cast<int>(kind));
  }
}

User MustCreate(clients::ProtocolClient& c, const UserDraft& draft);

struct Scenario {
  const char* name;
  std::function<void(clients::ProtocolClient&)> run;
};

const std::vector<Scenario>& Scenarios();

// The cache entry of a user id as stored ("U|<version>|..." or
// "D|<version>|"), or nullopt when there is none.
using CachedEntry = std::function<std::optional<std::string>(std::int64_t id)>;

// One record through every face: created over SOAP, read over gRPC, updated
// over REST, deleted over Thrift, the cache entry checked at every step.
// `stale_allowance`: how long a read through another server may still show
// the version before a write (servers with the near cache, whose entries the
// change events or their lifetime replace; docs/reliability.md); reads are
// repeated until then. Zero (one server): every read must be current.
void RunCrossProtocolFlow(clients::ProtocolClient& soap, clients::ProtocolClient& grpc,
                          clients::ProtocolClient& rest, clients::ProtocolClient& thrift,
                          const CachedEntry& cached,
                          std::chrono::milliseconds stale_allowance = std::chrono::milliseconds(0));

}  // namespace polycrud::testing
