// Regression tests for long-lived Thrift connections. Apache Thrift 0.17's
// TFramedTransport counts the bytes a protocol reads through it against
// TConfiguration's max message size (100 MiB) and restores the count only in
// flush(). The threadpool server reads each connection through a transport of
// its own that never flushes, so a connection was closed ("MaxMessageSize
// reached") once about 100 MiB of requests had arrived on it in total, however
// small each one. These tests read more than that over one connection, on the
// server side (large requests, both server models) and on the client side
// (large responses).
#include <gtest/gtest.h>
#include <thrift/TConfiguration.h>
#include <thrift/Thrift.h>

#include <chrono>
#include <cstdint>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "clients/protocol_client.h"
#include "tests/support/server_process.h"

namespace polycrud::testing {
namespace {

// The budget Thrift 0.17 never reset (a copy: the constant has no
// out-of-line definition to bind a reference to).
const std::int64_t kMaxMessageBytes = ::apache::thrift::TConfiguration::DEFAULT_MAX_MESSAGE_SIZE;
// How far past that budget each test reads: more than any single frame.
constexpr std::int64_t kMarginBytes = 8 * 1024 * 1024;

// A username unique to this run, so reruns against one database never clash.
std::string UniqueName(const std::string& prefix) {
  static int counter = 0;
  static const auto run = std::to_string(std::random_device{}() % 1'000'000);
  return prefix + "_" + run + "_" + std::to_string(counter++);
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

class ThriftServerTest : public ::testing::TestWithParam<std::string> {};

// Requests: ~1,800 getUser calls, each carrying a bogus 60,000-byte token
// (under the 64 KiB string limit), over one connection. Each must be
// answered Unauthenticated, and the connection must then still serve a call.
TEST_P(ThriftServerTest, LongLivedConnectionSurvivesMoreThanMaxMessageSize) {
  ServerProcess server({.extra_args = {"--thrift-server", GetParam()}});
  ThriftClient client(server.thrift_port());
  const std::string token(60'000, 't');
  std::int64_t sent_bytes = 0;
  int calls = 0;
  const auto start = std::chrono::steady_clock::now();
  while (sent_bytes <= kMaxMessageBytes + kMarginBytes) {
    ++calls;
    gen::User out;
    try {
      client->getUser(out, token, 1);
      FAIL() << "call " << calls << " with a bogus token was served";
    } catch (const gen::Unauthenticated&) {
      // The expected answer.
    } catch (const ::apache::thrift::TException& e) {
      FAIL() << "call " << calls << ", after " << sent_bytes
             << " bytes on this connection, failed: " << e.what();
    }
    sent_bytes += static_cast<std::int64_t>(token.size());
  }
  std::cout << GetParam() << ": " << calls << " calls, " << sent_bytes / (1024 * 1024)
            << " MiB of tokens on one connection in " << SecondsSince(start) << " s\n";
  std::string pong;
  ASSERT_NO_THROW(client->ping(pong));
  EXPECT_FALSE(pong.empty());
}

INSTANTIATE_TEST_SUITE_P(ServerModels, ThriftServerTest,
                         ::testing::Values("threadpool", "nonblocking", "fibers"),
                         [](const auto& param_info) { return param_info.param; });

// Responses: batchGetUsers answers of users with the longest strings the API
// allows, read by polycrud::clients' Thrift client over one connection until
// more than the budget has arrived. Every call must succeed without a
// transport failure (the client would silently reconnect after one). The
// clients send and receive through one transport, whose flush() of each
// request also restores the budget; their PerFrameFramedTransport keeps them
// safe without relying on that.
TEST(ThriftClientTest, LongLivedConnectionSurvivesMoreThanMaxMessageSize) {
  ServerProcess server;
  auto client = clients::MakeProtocolClient("thrift", server.thrift_port());
  constexpr int kUsers = 200;
  std::string full_name;
  for (int i = 0; i < 128; ++i) full_name += "\xF0\x9F\x98\x80";  // U+1F600, 4 bytes
  std::vector<std::int64_t> ids;
  for (int i = 0; i < kUsers; ++i) {
    UserDraft draft;
    draft.username = UniqueName("long");
    // A 254-byte email, the longest allowed.
    draft.email = draft.username + "@";
    draft.email += std::string(254 - draft.email.size() - 4, 'd') + ".com";
    draft.full_name = full_name;
    const auto created = client->CreateUser(kAdminToken, draft);
    ASSERT_TRUE(created.ok()) << created.status.message;
    ids.push_back(created.value->id);
  }
  std::vector<std::int64_t> batch;
  for (int i = 0; i < 1000; ++i) batch.push_back(ids[static_cast<std::size_t>(i % kUsers)]);

  std::int64_t received_bytes = 0;
  int calls = 0;
  const auto start = std::chrono::steady_clock::now();
  while (received_bytes <= kMaxMessageBytes + kMarginBytes) {
    ++calls;
    const auto got = client->BatchGetUsers(kReaderToken, batch);
    ASSERT_TRUE(got.ok()) << "call " << calls << ", after " << received_bytes
                          << " bytes on this connection, failed"
                          << (got.status.transport_failure ? " (transport)" : "") << ": "
                          << got.status.message;
    ASSERT_FALSE(got.value->empty());
    for (const User& u : *got.value) {
      ASSERT_EQ(u.full_name, full_name);
      received_bytes +=
          static_cast<std::int64_t>(u.username.size() + u.email.size() + u.full_name.size());
    }
  }
  std::cout << calls << " batchGetUsers calls, " << received_bytes / (1024 * 1024)
            << " MiB of strings on one connection in " << SecondsSince(start) << " s\n";
}

}  // namespace
}  // namespace polycrud::testing
