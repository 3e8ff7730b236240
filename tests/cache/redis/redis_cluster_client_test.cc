// RedisClusterClient against a real three-master Redis Cluster (private
// nodes on loopback): commands land on the master of their slot, pipelined
// per node, and a live reshard of one slot is followed: ASK while the slot
// migrates (a new key written on the importing node), MOVED once it has
// moved (the map read again, the command sent where MOVED says).
#include "cache/redis/redis_cluster_client.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <signal.h>

#include <array>
#include <chrono>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "clients/http_connection.h"
#include "tests/support/eventually.h"
#include "tests/support/server_process.h"
#include "tests/support/settings.h"
#include "tests/support/stack.h"

namespace polycrud {
namespace {

using ContextPtr = std::unique_ptr<redisContext, decltype(&redisFree)>;

std::string Ask(redisContext* ctx, const std::vector<std::string>& argv) {
  std::vector<const char*> args;
  std::vector<std::size_t> lens;
  for (const std::string& a : argv) {
    args.push_back(a.c_str());
    lens.push_back(a.size());
  }
  RedisReplyPtr reply(static_cast<redisReply*>(
      redisCommandArgv(ctx, static_cast<int>(args.size()), args.data(), lens.data())));
  if (reply == nullptr) throw std::runtime_error("no answer to " + argv[0]);
  if (reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_STATUS ||
      reply->type == REDIS_REPLY_ERROR) {
    return std::string(reply->str, reply->len);
  }
  if (reply->type == REDIS_REPLY_NIL) return "(nil)";
  if (reply->type == REDIS_REPLY_INTEGER) return std::to_string(reply->integer);
  return "";
}

// Three masters holding a third of the slots each, joined and agreeing.
class RedisClusterClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::array<std::pair<int, int>, 3> ranges = {{{0, 5460}, {5461, 10922}, {10923, 16383}}};
    for (int i = 0; i < 3; ++i) {
      nodes_.push_back(std::make_unique<testing::RedisInstance>(
          "redis-cluster-" + std::to_string(i), "", /*cluster=*/true));
      contexts_.emplace_back(testing::ConnectRedisAsAdmin(nodes_.back()->port()), &redisFree);
      ASSERT_EQ(Ask(ctx(i), {"CLUSTER", "ADDSLOTSRANGE", std::to_string(ranges[i].first),
                             std::to_string(ranges[i].second)}),
                "OK");
      ids_.push_back(Ask(ctx(i), {"CLUSTER", "MYID"}));
      range_end_[i] = ranges[i].second;
    }
    for (int i = 1; i < 3; ++i) {
      ASSERT_EQ(Ask(ctx(0), {"CLUSTER", "MEET", "127.0.0.1", std::to_string(port(i))}), "OK");
    }
    ASSERT_TRUE(testing::Eventually(
        [&] {
          for (int i = 0; i < 3; ++i) {
            // Every node up, and every node knowing the other two.
            const std::string info = Ask(ctx(i), {"CLUSTER", "INFO"});
            if (info.find("cluster_state:ok") == std::string::npos ||
                info.find("cluster_known_nodes:3") == std::string::npos) {
              return false;
            }
          }
          return true;
        },
        std::chrono::seconds(20)));
  }

  RedisClusterOptions Options() const {
    RedisClusterOptions options;
    options.seeds = {{.host = "127.0.0.1", .port = port(0)}};
    options.node.endpoint.user = "admin";
    options.node.endpoint.password = testing::Setting("POLYCRUD_TEST_REDIS_ADMIN_PASSWORD");
    options.node.endpoint.connect_timeout = std::chrono::milliseconds(1000);
    options.node.endpoint.command_timeout = std::chrono::milliseconds(2000);
    return options;
  }
  redisContext* ctx(int i) { return contexts_[static_cast<std::size_t>(i)].get(); }
  int port(int i) const { return nodes_[static_cast<std::size_t>(i)]->port(); }
  // The node whose slots hold `key` (as the test assigned them).
  int Owner(const std::string& key) const {
    const int slot = KeySlot(key);
    return slot <= range_end_[0] ? 0 : slot <= range_end_[1] ? 1 : 2;
  }

  std::vector<std::unique_ptr<testing::RedisInstance>> nodes_;
  std::vector<ContextPtr> contexts_;
  std::vector<std::string> ids_;
  std::array<int, 3> range_end_{};
};

TEST_F(RedisClusterClientTest, CommandsLandOnTheMasterOfTheirSlot) {
  RedisClusterClient client(Options());
  std::vector<std::vector<std::string>> sets;
  for (int i = 0; i < 300; ++i) {
    sets.push_back({"SET", "user:" + std::to_string(i), "value " + std::to_string(i)});
  }
  StatusOr<std::vector<RedisReplyPtr>> replies = client.Commands(sets);
  ASSERT_TRUE(replies.ok()) << replies.status().ToString();
  int per_node[3] = {0, 0, 0};
  for (int i = 0; i < 300; ++i) {
    const std::string key = "user:" + std::to_string(i);
    ASSERT_EQ(std::string((*replies)[i]->str, (*replies)[i]->len), "OK") << key;
    // Stored on its slot's master, as that master itself says.
    EXPECT_EQ(Ask(ctx(Owner(key)), {"GET", key}), "value " + std::to_string(i)) << key;
    ++per_node[Owner(key)];
    StatusOr<RedisReplyPtr> read = client.Command({"GET", key});
    ASSERT_TRUE(read.ok());
    EXPECT_EQ(std::string((*read)->str, (*read)->len), "value " + std::to_string(i));
  }
  for (const int n : per_node) EXPECT_GT(n, 50);
  EXPECT_EQ(client.refreshes(), 1);  // no redirection on a stable cluster
}

TEST_F(RedisClusterClientTest, ALiveReshardIsFollowedThroughAskAndMoved) {
  RedisClusterClient client(Options());
  const std::string key = "user:7";
  ASSERT_TRUE(client.Command({"SET", key, "before"}).ok());
  const int slot = KeySlot(key);
  const int from = Owner(key);
  const int to = (from + 1) % 3;
  const std::string fresh = "{user:7}:fresh";  // the same slot, not yet written
  ASSERT_EQ(KeySlot(fresh), slot);

  // The slot starts to migrate: a key not yet on the old node goes, with
  // ASKING, to the new one; the map does not change.
  ASSERT_EQ(Ask(ctx(to), {"CLUSTER", "SETSLOT", std::to_string(slot), "IMPORTING", ids_[from]}),
            "OK");
  ASSERT_EQ(Ask(ctx(from), {"CLUSTER", "SETSLOT", std::to_string(slot), "MIGRATING", ids_[to]}),
            "OK");
  const int refreshes = client.refreshes();
  StatusOr<RedisReplyPtr> written = client.Command({"SET", fresh, "during"});
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  EXPECT_EQ(std::string((*written)->str, (*written)->len), "OK");
  EXPECT_EQ(client.refreshes(), refreshes);
  EXPECT_EQ(Ask(ctx(to), {"ASKING"}), "OK");
  EXPECT_EQ(Ask(ctx(to), {"GET", fresh}), "during");
  StatusOr<RedisReplyPtr> old_key = client.Command({"GET", key});  // still on the old node
  ASSERT_TRUE(old_key.ok());
  EXPECT_EQ(std::string((*old_key)->str, (*old_key)->len), "before");

  // The key moves and the slot is the new node's everywhere: MOVED.
  EXPECT_EQ(Ask(ctx(from),
                {"MIGRATE", "127.0.0.1", std::to_string(port(to)), "", "0", "5000", "AUTH2",
                 "admin", testing::Setting("POLYCRUD_TEST_REDIS_ADMIN_PASSWORD"), "KEYS", key}),
            "OK");
  // The new owner first, then the old one, then the rest (the order of the
  // Redis Cluster specification's resharding).
  for (const int i : {to, from, 3 - to - from}) {
    ASSERT_EQ(Ask(ctx(i), {"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", ids_[to]}), "OK")
        << "node " << i;
  }
  StatusOr<RedisReplyPtr> moved = client.Command({"GET", key});
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_EQ(std::string((*moved)->str, (*moved)->len), "before");
  EXPECT_GT(client.refreshes(), refreshes);
  ASSERT_NE(client.slot_map()->MasterOf(slot), nullptr);
  EXPECT_EQ(client.slot_map()->MasterOf(slot)->port, port(to));
  StatusOr<RedisReplyPtr> fresh_read = client.Command({"GET", fresh});
  ASSERT_TRUE(fresh_read.ok());
  EXPECT_EQ(std::string((*fresh_read)->str, (*fresh_read)->len), "during");
}

// Three masters with a replica each: a master killed under reads.
class RedisClusterFailoverTest : public RedisClusterClientTest {
 protected:
  void SetUp() override {
    RedisClusterClientTest::SetUp();
    if (HasFatalFailure()) return;
    for (int i = 0; i < 3; ++i) {
      nodes_.push_back(std::make_unique<testing::RedisInstance>(
          "redis-cluster-replica-" + std::to_string(i), "", /*cluster=*/true));
      contexts_.emplace_back(testing::ConnectRedisAsAdmin(nodes_.back()->port()), &redisFree);
      ASSERT_EQ(Ask(ctx(0), {"CLUSTER", "MEET", "127.0.0.1", std::to_string(port(3 + i))}), "OK");
    }
    // A replica can follow a master once it knows it.
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(testing::Eventually(
          [&] {
            return Ask(ctx(3 + i), {"CLUSTER", "REPLICATE", ids_[i]}) == "OK";
          },
          std::chrono::seconds(20)));
    }
    ASSERT_TRUE(testing::Eventually(
        [&] {
          const std::string info = Ask(ctx(0), {"INFO", "replication"});
          return info.find("connected_slaves:1") != std::string::npos &&
                 Ask(ctx(1), {"INFO", "replication"}).find("connected_slaves:1") !=
                     std::string::npos &&
                 Ask(ctx(2), {"INFO", "replication"}).find("connected_slaves:1") !=
                     std::string::npos;
        },
        std::chrono::seconds(20)));
  }
};

// The replica of a killed master takes its slots over: reads of that shard
// fail for a bounded time and then succeed, and find it emptied (a promoted
// replica may lack invalidations its master acknowledged, so the client
// flushes it before use: a miss, never a stale entry), and the other shards
// are served throughout with their values.
TEST_F(RedisClusterFailoverTest, AKilledMastersReplicaTakesOverAndTheOtherShardsServeOn) {
  RedisClusterClient client(Options());
  std::vector<std::vector<std::string>> sets;
  for (int i = 0; i < 300; ++i)
    sets.push_back({"SET", "user:" + std::to_string(i), std::to_string(i)});
  ASSERT_TRUE(client.Commands(sets).ok());
  // Every write is on the replica too before the kill (replication is
  // asynchronous).
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(testing::Eventually(
        [&] {
          return Ask(ctx(i), {"WAIT", "1", "1000"}) == "1";
        },
        std::chrono::seconds(20)))
        << "master " << i << "'s replica did not acknowledge the writes";
  }

  nodes_[0]->Signal(SIGKILL);
  const auto killed = std::chrono::steady_clock::now();
  int other_failures = 0;
  int shard_failures = 0;
  std::string last_error;
  bool whole = false;
  // Bounded: the promotion takes the 2 s node timeout and an election; a
  // loaded machine may take longer.
  while (!whole && std::chrono::steady_clock::now() - killed < std::chrono::seconds(60)) {
    whole = true;
    for (int i = 0; i < 300; ++i) {
      const std::string key = "user:" + std::to_string(i);
      StatusOr<RedisReplyPtr> read = client.Command({"GET", key});
      const bool ok = read.ok() && (Owner(key) == 0 ? (*read)->type == REDIS_REPLY_NIL
                                                    : (*read)->type == REDIS_REPLY_STRING &&
                                                          std::string((*read)->str, (*read)->len) ==
                                                              std::to_string(i));
      if (ok) continue;
      last_error = !read.ok()                           ? read.status().ToString()
                   : (*read)->type == REDIS_REPLY_ERROR ? std::string((*read)->str, (*read)->len)
                                                        : "an unexpected reply";
      if (Owner(key) == 0) {
        ++shard_failures;
        whole = false;
      } else {
        ++other_failures;
      }
    }
    if (!whole) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  EXPECT_TRUE(whole) << "the killed master's shard was not served again within 60 s; last: "
                     << last_error << "\nCLUSTER NODES of master 1:\n"
                     << Ask(ctx(1), {"CLUSTER", "NODES"}) << "\nthe replica's INFO replication:\n"
                     << Ask(ctx(3), {"INFO", "replication"});
  EXPECT_EQ(other_failures, 0) << "last: " << last_error;
  EXPECT_GT(shard_failures, 0) << "the kill was not seen at all";
  ASSERT_NE(client.slot_map()->MasterOf(0), nullptr);
  EXPECT_EQ(client.slot_map()->MasterOf(0)->port, port(3));  // the replica, now master
  EXPECT_EQ(client.promotions_emptied(), 1);
  // Without the flush it would still hold what its master had.
  EXPECT_EQ(Ask(ctx(3), {"DBSIZE"}), "0");
  std::cout << "failover: the shard served again after " << took << " s (" << shard_failures
            << " failed reads meanwhile)\n";
}

// polycrud-server with --redis-cluster on the three masters: the Thrift
// face's creates and reads and the REST face's batch reads fill and use the
// cache on every shard, each user:<id> on its slot's master.
TEST_F(RedisClusterClientTest, TheServerCachesOnTheClusterThroughEveryFace) {
  testing::ServerProcess server(
      {.protocols = {"thrift", "rest"},
       .redis_port = port(0),
       .extra_args = {"--redis-cluster", "127.0.0.1:" + std::to_string(port(1))}});
  testing::ThriftClient thrift(server.thrift_port());
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 30; ++i) {
    testing::gen::User created;
    thrift->createUser(created, testing::kAdminToken,
                       testing::TestDraft(testing::UniqueName("clu")));
    ids.push_back(created.id);
  }
  std::string body = "{\"ids\":[";
  for (std::size_t i = 0; i < ids.size(); ++i) body += (i ? "," : "") + std::to_string(ids[i]);
  body += "]}";
  clients::HttpConnection rest(server.port("rest"));
  for (int round = 0; round < 2; ++round) {
    const clients::HttpResponse batch =
        rest.Send(clients::http::verb::post, "/v1/users:batchGet", body, testing::kAdminToken);
    ASSERT_EQ(batch.result_int(), 200u) << batch.body();
    for (const std::int64_t id : ids) {
      EXPECT_NE(batch.body().find("\"id\":" + std::to_string(id)), std::string::npos) << id;
    }
  }
  // The second batch was answered from the cache (GETs split per node, as a
  // cross-slot MGET would fail), with no cache error at all.
  const std::string metrics = rest.Send(clients::http::verb::get, "/metrics").body();
  const auto counter = [&](const std::string& name) {
    const std::size_t at = metrics.find("\n" + name + " ");
    return at == std::string::npos ? -1L : std::stol(metrics.substr(at + name.size() + 2));
  };
  // On a failure, the server's own account of its cache errors.
  const auto server_log = [&] {
    std::ifstream in(server.log_path());
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  EXPECT_GE(counter("polycrud_cache_hits_total"), 30) << metrics << server_log();
  EXPECT_EQ(counter("polycrud_cache_errors_total"), 0) << server_log();
  int per_node[3] = {0, 0, 0};
  for (const std::int64_t id : ids) {
    const std::string key = "user:" + std::to_string(id);
    EXPECT_EQ(Ask(ctx(Owner(key)), {"GET", key}).rfind("U|1|", 0), 0u) << key;
    ++per_node[Owner(key)];
    testing::gen::User fetched;
    thrift->getUser(fetched, testing::kAdminToken, id);
    EXPECT_EQ(fetched.id, id);
  }
  for (const int n : per_node) EXPECT_GT(n, 0);
}

}  // namespace
}  // namespace polycrud
