// The sample messages of the micro-benchmarks and the message names.
#include <array>
#include <cstdio>
#include <string>
#include <string_view>

#include "benchmarks/micro/wire_codec.h"

namespace polycrud::micro_bench {
namespace {

// Two-word full names, each with exactly one accented (two-byte UTF-8) letter.
constexpr std::array<std::string_view, 8> kFullNames = {
    "Zoë Castillo",  "André Fischer", "Renée Kowalski", "José Martins",
    "Chloé Bernard", "Björn Larsen",  "Inès Moreau",    "Noël Williams"};

// 2025-01-01T00:00:00Z in Unix epoch milliseconds.
constexpr std::int64_t kYear2025Ms = 1'735'689'600'000;
constexpr std::int64_t kDayMs = 86'400'000;

constexpr std::int64_t kTypicalUserId = 4'012'345;
constexpr std::int64_t kBatchFirstId = 4'000'000;
constexpr std::int64_t kBatchIdStride = 3'989;  // 1000 ids spread over 4.0-8.0 million
constexpr int kPageSize = 100;
constexpr int kBatchSize = 1000;

// The user with `id`: username "user" + 8 digits (12 characters), e-mail
// username + "@mail.example" (25 bytes).
User SampleUser(std::int64_t id) {
  char username[32];  // room for any int64, so the output is never truncated
  std::snprintf(username, sizeof(username), "user%08lld", static_cast<long long>(id));
  const std::int64_t version = 1 + id % 5;
  const std::int64_t created = kYear2025Ms + (id * 7'919) % (300 * kDayMs);
  return User{
      .id = id,
      .username = username,
      .email = std::string(username) + "@mail.example",
      .full_name = std::string(kFullNames[static_cast<std::size_t>(id) % kFullNames.size()]),
      .version = version,
      .created_at_ms = created,
      .updated_at_ms = created + (version - 1) * kDayMs + id % 1'000};
}

}  // namespace

std::string_view MessageName(MessageKind kind) {
  switch (kind) {
    case MessageKind::kUser:
      return "user";
    case MessageKind::kList100:
      return "list_100";
    case MessageKind::kBatchRequest1000:
      return "batch_request_1000";
    case MessageKind::kBatchResponse1000:
      return "batch_response_1000";
  }
  return "unknown";
}

bool IsRequest(MessageKind kind) { return kind == MessageKind::kBatchRequest1000; }

MessageValue MakeSampleMessage(MessageKind kind) {
  MessageValue value;
  switch (kind) {
    case MessageKind::kUser:
      value.users.push_back(SampleUser(kTypicalUserId));
      break;
    case MessageKind::kList100:
      // The page after kTypicalUserId: the next 100 ids, in order.
      for (int i = 1; i <= kPageSize; ++i) value.users.push_back(SampleUser(kTypicalUserId + i));
      value.next_after_id = value.users.back().id;
      break;
    case MessageKind::kBatchRequest1000:
      for (int i = 0; i < kBatchSize; ++i) value.ids.push_back(kBatchFirstId + i * kBatchIdStride);
      break;
    case MessageKind::kBatchResponse1000:
      for (int i = 0; i < kBatchSize; ++i) {
        value.users.push_back(SampleUser(kBatchFirstId + i * kBatchIdStride));
      }
      break;
  }
  return value;
}

}  // namespace polycrud::micro_bench
