// The Redis Cluster key space: the slot function against the Redis Cluster
// specification's examples and against a real cluster node's own CLUSTER
// KEYSLOT answers, and the slot map read from CLUSTER SLOTS (a written-out
// answer with three masters and replicas, and a real node's).
#include "cache/redis/redis_cluster_slots.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <chrono>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "cache/redis/redis_connection_pool.h"
#include "tests/support/eventually.h"
#include "tests/support/stack.h"

namespace polycrud {
namespace {

// A reply parsed from RESP text by hiredis's own reader.
RedisReplyPtr Parse(const std::string& resp) {
  std::unique_ptr<redisReader, decltype(&redisReaderFree)> reader(redisReaderCreate(),
                                                                  &redisReaderFree);
  redisReaderFeed(reader.get(), resp.data(), resp.size());
  void* reply = nullptr;
  if (redisReaderGetReply(reader.get(), &reply) != REDIS_OK || reply == nullptr) {
    throw std::runtime_error("not one whole RESP reply");
  }
  return RedisReplyPtr(static_cast<redisReply*>(reply));
}

std::string Bulk(const std::string& s) {
  return "$" + std::to_string(s.size()) + "\r\n" + s + "\r\n";
}
std::string Node(const std::string& host, int port, const std::string& id) {
  return "*3\r\n" + Bulk(host) + ":" + std::to_string(port) + "\r\n" + Bulk(id);
}

TEST(RedisClusterSlotsTest, Crc16AndHashTagsFollowTheClusterSpecification) {
  EXPECT_EQ(Crc16Xmodem("123456789"), 0x31C3);  // the specification's test vector
  EXPECT_EQ(KeySlot("somekey"), 11058);         // CLUSTER KEYSLOT's documented examples
  EXPECT_EQ(KeySlot("foo{hash_tag}"), 2515);
  EXPECT_EQ(KeySlot("bar{hash_tag}"), 2515);
  EXPECT_EQ(KeySlot("{user1000}.following"), KeySlot("{user1000}.followers"));
  EXPECT_EQ(KeySlot("foo{}{bar}"), Crc16Xmodem("foo{}{bar}") & 16383);  // empty tag: whole key
  EXPECT_EQ(KeySlot("foo{{bar}}zap"), Crc16Xmodem("{bar") & 16383);     // first '{' to first '}'
  EXPECT_EQ(KeySlot("foo{bar}{zap}"), Crc16Xmodem("bar") & 16383);      // the first tag only
  EXPECT_EQ(KeySlot("no tag here"), Crc16Xmodem("no tag here") & 16383);
  EXPECT_EQ(KeySlot(""), 0);
}

TEST(RedisClusterSlotsTest, TheSlotMapReadsMastersRangesAndReplicas) {
  const std::string resp =
      "*4\r\n"
      "*4\r\n:0\r\n:5460\r\n" +
      Node("10.0.0.1", 7000, "a") + Node("10.0.0.4", 7003, "d") + "*3\r\n:5461\r\n:10922\r\n" +
      Node("", 7001, "b") + "*3\r\n:10923\r\n:16000\r\n" + Node("10.0.0.3", 7002, "c") +
      // a second range of the first master
      "*3\r\n:16001\r\n:16383\r\n" + Node("10.0.0.1", 7000, "a");
  StatusOr<RedisSlotMap> map = RedisSlotMap::FromClusterSlots(*Parse(resp), "seed.example");
  ASSERT_TRUE(map.ok()) << map.status().ToString();
  EXPECT_EQ(map->covered_slots(), 16384);
  ASSERT_EQ(map->masters().size(), 3u);
  EXPECT_EQ(map->MasterOf(0)->id, "a");
  EXPECT_EQ(map->MasterOf(16383)->id, "a");
  EXPECT_EQ(map->MasterOf(5461)->host, "seed.example");  // it did not know its address
  EXPECT_EQ(map->MasterOf(10922)->port, 7001);
  EXPECT_EQ(map->MasterOf(12000)->id, "c");
  ASSERT_EQ(map->replicas(0).size(), 1u);
  EXPECT_EQ(map->replicas(0)[0].port, 7003);
  EXPECT_EQ(map->MasterOf(16384), nullptr);
  EXPECT_EQ(map->MasterOfKey("user:42")->id, map->MasterOf(KeySlot("user:42"))->id);

  const StatusOr<RedisSlotMap> partial = RedisSlotMap::FromClusterSlots(
      *Parse("*1\r\n*3\r\n:100\r\n:199\r\n" + Node("h", 1, "x")), "seed");
  ASSERT_TRUE(partial.ok());
  EXPECT_EQ(partial->covered_slots(), 100);
  EXPECT_EQ(partial->MasterOf(99), nullptr);
  for (const std::string& bad : {std::string("+OK\r\n"), std::string("*1\r\n*2\r\n:0\r\n:1\r\n"),
                                 "*1\r\n*3\r\n:10\r\n:5\r\n" + Node("h", 1, "x"),
                                 "*1\r\n*3\r\n:0\r\n:16384\r\n" + Node("h", 1, "x")}) {
    EXPECT_FALSE(RedisSlotMap::FromClusterSlots(*Parse(bad), "seed").ok()) << bad;
  }
}

TEST(RedisClusterSlotsTest, RedirectionsAreReadFromTheErrorText) {
  std::optional<RedisRedirect> moved = ParseRedirect("MOVED 3999 127.0.0.1:6381", "seed");
  ASSERT_TRUE(moved.has_value());
  EXPECT_EQ(moved->kind, RedisRedirect::Kind::kMoved);
  EXPECT_EQ(moved->slot, 3999);
  EXPECT_EQ(moved->node.host, "127.0.0.1");
  EXPECT_EQ(moved->node.port, 6381);
  std::optional<RedisRedirect> ask = ParseRedirect("ASK 16383 cache-2.internal:7000", "seed");
  ASSERT_TRUE(ask.has_value());
  EXPECT_EQ(ask->kind, RedisRedirect::Kind::kAsk);
  EXPECT_EQ(ask->node.host, "cache-2.internal");
  std::optional<RedisRedirect> ipv6 = ParseRedirect("MOVED 0 ::1:7001", "seed");
  ASSERT_TRUE(ipv6.has_value());
  EXPECT_EQ(ipv6->node.host, "::1");
  EXPECT_EQ(ipv6->node.port, 7001);
  EXPECT_EQ(ParseRedirect("MOVED 12 :7002", "seed")->node.host, "seed");
  for (const char* other : {"ERR unknown command", "MOVED", "MOVED 16384 h:1", "MOVED x h:1",
                            "ASK 1 h", "ASK 1 h:", "ASK 1 h:70000", "MOVED  h:1", "TRYAGAIN"}) {
    EXPECT_FALSE(ParseRedirect(other, "seed").has_value()) << other;
  }
}

// A real cluster node (one master holding every slot): its CLUSTER KEYSLOT
// for 2,000 keys (the cache's own, random bytes, hash tags) and its CLUSTER
// SLOTS answer.
TEST(RedisClusterSlotsIntegrationTest, KeySlotAgreesWithARealClusterNode) {
  testing::RedisInstance node("redis-cluster-node", "", /*cluster=*/true);
  std::unique_ptr<redisContext, decltype(&redisFree)> ctx(testing::ConnectRedisAsAdmin(node.port()),
                                                          &redisFree);
  RedisReplyPtr added(
      static_cast<redisReply*>(redisCommand(ctx.get(), "CLUSTER ADDSLOTSRANGE 0 16383")));
  ASSERT_NE(added, nullptr);
  ASSERT_EQ(added->type, REDIS_REPLY_STATUS) << std::string(added->str, added->len);

  std::mt19937 random(7);
  std::uniform_int_distribution<int> byte(0, 255), length(0, 40);
  for (int i = 0; i < 2000; ++i) {
    std::string key;
    if (i < 500) {
      key = "user:" + std::to_string(i * 7919);
    } else {
      for (int n = length(random); n > 0; --n) key.push_back(static_cast<char>(byte(random)));
      if (i % 3 == 0) key.insert(key.size() / 2, "{tag" + std::to_string(i % 17) + "}");
      if (i % 5 == 0) key += "{}";
    }
    RedisReplyPtr slot(static_cast<redisReply*>(
        redisCommand(ctx.get(), "CLUSTER KEYSLOT %b", key.data(), key.size())));
    ASSERT_NE(slot, nullptr);
    ASSERT_EQ(slot->type, REDIS_REPLY_INTEGER);
    EXPECT_EQ(KeySlot(key), slot->integer) << "key of " << key.size() << " bytes";
  }

  RedisReplyPtr slots(static_cast<redisReply*>(redisCommand(ctx.get(), "CLUSTER SLOTS")));
  ASSERT_NE(slots, nullptr);
  StatusOr<RedisSlotMap> map = RedisSlotMap::FromClusterSlots(*slots, "127.0.0.1");
  ASSERT_TRUE(map.ok()) << map.status().ToString();
  EXPECT_EQ(map->covered_slots(), 16384);
  ASSERT_EQ(map->masters().size(), 1u);
  EXPECT_EQ(map->masters()[0].port, node.port());
  EXPECT_EQ(map->masters()[0].host, "127.0.0.1");
  EXPECT_EQ(map->masters()[0].id.size(), 40u);
}

using RedisContextHolder = std::unique_ptr<redisContext, decltype(&redisFree)>;

RedisReplyPtr Command(redisContext* ctx, const std::string& text) {
  RedisReplyPtr reply(static_cast<redisReply*>(redisCommand(ctx, text.c_str())));
  if (reply == nullptr) throw std::runtime_error("no answer to " + text);
  return reply;
}

// Two cluster nodes, each holding half the slots, joined with CLUSTER MEET:
// a key of the other half sent to the first node is answered MOVED, to the
// node and slot ParseRedirect, KeySlot and the first node's slot map name.
TEST(RedisClusterSlotsIntegrationTest, ARealMovedNamesTheSlotAndNodeOfTheSlotMap) {
  testing::RedisInstance first("redis-cluster-a", "", /*cluster=*/true);
  testing::RedisInstance second("redis-cluster-b", "", /*cluster=*/true);
  RedisContextHolder a(testing::ConnectRedisAsAdmin(first.port()), &redisFree);
  RedisContextHolder b(testing::ConnectRedisAsAdmin(second.port()), &redisFree);
  ASSERT_EQ(Command(a.get(), "CLUSTER ADDSLOTSRANGE 0 8191")->type, REDIS_REPLY_STATUS);
  ASSERT_EQ(Command(b.get(), "CLUSTER ADDSLOTSRANGE 8192 16383")->type, REDIS_REPLY_STATUS);
  ASSERT_EQ(Command(a.get(), "CLUSTER MEET 127.0.0.1 " + std::to_string(second.port()))->type,
            REDIS_REPLY_STATUS);
  std::optional<RedisSlotMap> map;
  ASSERT_TRUE(testing::Eventually(
      [&] {
        StatusOr<RedisSlotMap> read =
            RedisSlotMap::FromClusterSlots(*Command(a.get(), "CLUSTER SLOTS"), "127.0.0.1");
        if (!read.ok() || read->covered_slots() != kRedisClusterSlots) return false;
        map = std::move(*read);
        // Until both see the other as up the cluster answers CLUSTERDOWN.
        const auto ok = [](redisContext* ctx) {
          const RedisReplyPtr info = Command(ctx, "CLUSTER INFO");
          return std::string(info->str, info->len).find("cluster_state:ok") != std::string::npos;
        };
        return map->masters().size() == 2 && ok(a.get()) && ok(b.get());
      },
      std::chrono::seconds(20)))
      << "the two nodes did not learn each other's slots";
  int moved = 0;
  for (int i = 0; i < 200; ++i) {
    const std::string key = "user:" + std::to_string(i);
    RedisReplyPtr reply(
        static_cast<redisReply*>(redisCommand(a.get(), "GET %b", key.data(), key.size())));
    ASSERT_NE(reply, nullptr);
    const int slot = KeySlot(key);
    const RedisClusterNode* owner = map->MasterOfKey(key);
    ASSERT_NE(owner, nullptr);
    if (slot < 8192) {
      EXPECT_EQ(reply->type, REDIS_REPLY_NIL) << key;
      EXPECT_EQ(owner->port, first.port());
      continue;
    }
    ASSERT_EQ(reply->type, REDIS_REPLY_ERROR) << key;
    std::optional<RedisRedirect> redirect =
        ParseRedirect(std::string_view(reply->str, reply->len), "127.0.0.1");
    ASSERT_TRUE(redirect.has_value()) << std::string(reply->str, reply->len);
    EXPECT_EQ(redirect->kind, RedisRedirect::Kind::kMoved);
    EXPECT_EQ(redirect->slot, slot);
    EXPECT_EQ(redirect->node.port, second.port());
    EXPECT_EQ(owner->port, second.port());
    ++moved;
  }
  EXPECT_GT(moved, 50);
}

}  // namespace
}  // namespace polycrud
