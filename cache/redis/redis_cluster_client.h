// RedisClusterClient: commands routed to the Redis Cluster master that
// serves their key's slot, over one automatically pipelining connection per
// node (RedisPipelinedConnection, or a fiber thread's RedisFiberConnection). The slot map comes
// from CLUSTER SLOTS of the seed nodes (or of any node known so far) and is read again when a node
// answers MOVED; the command then goes where MOVED says. ASK (a slot being
// resharded) sends ASKING and the command to the node named, once, without
// touching the map. Errors other than redirections (CLUSTERDOWN, TRYAGAIN,
// CROSSSLOT) are returned as the error replies they are. Thread-safe.
//
// SCRIPT LOAD goes to every master (each keeps its own script cache). The
// cache's commands each carry one key, user:<id>; a read of several ids is
// sent as one GET per key (RedisClusterPipe::one_slot_per_command), as Redis
// Cluster refuses MGET across slots.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cache/redis/redis_cluster_slots.h"
#include "cache/redis/redis_pipelined_connection.h"
#include "core/status.h"

namespace polycrud {

struct RedisClusterOptions {
  // Where to read the slot map first (host and port).
  std::vector<RedisClusterNode> seeds;
  // Every node's connection settings; host and port are each node's own.
  RedisPipelineOptions node;
  // Redirections followed for one command before it fails.
  int max_redirects = 5;
  // Makes the connection to one node (its options). Empty: a
  // RedisPipelinedConnection (any thread); a fiber thread's client makes
  // RedisFiberConnections instead (its fibers park while they wait).
  std::function<std::unique_ptr<RedisCommandPipe>(RedisPipelineOptions)> connect;
};

class RedisClusterClient {
 public:
  explicit RedisClusterClient(RedisClusterOptions options);
  ~RedisClusterClient();
  RedisClusterClient(const RedisClusterClient&) = delete;
  RedisClusterClient& operator=(const RedisClusterClient&) = delete;

  // Reads the slot map from the first node that answers CLUSTER SLOTS. A
  // node that is a master in the new map but was none in the previous one
  // (a replica promoted by a failover) is emptied (FLUSHALL ASYNC) before
  // the map is used: replication is asynchronous, so it may lack the last
  // invalidations its old master acknowledged, and may hold entries that a
  // write made while its master was unreachable could not replace. A
  // reshard moves slots between masters and empties nothing. If the flush
  // fails, the old map stays (and the command that asked fails).
  Status Refresh();
  // One command (argv form): to the master of its key's slot (argv[1], or
  // the first key of EVAL/EVALSHA), following MOVED and ASK; a command
  // without a key goes to any master.
  StatusOr<RedisReplyPtr> Command(const std::vector<std::string>& argv);
  // Several: each node's share pipelined on its connection, the replies in
  // the order of `commands`.
  StatusOr<std::vector<RedisReplyPtr>> Commands(
      const std::vector<std::vector<std::string>>& commands);

  // The slot map in use (null before the first successful Refresh).
  std::shared_ptr<const RedisSlotMap> slot_map() const;
  // Times the map was read (the first one included).
  int refreshes() const;
  // Promoted masters emptied before use (see Refresh).
  int promotions_emptied() const { return promotions_emptied_.load(); }

 private:
  // The slot a command's key falls in, or -1 without a key.
  static int SlotOf(const std::vector<std::string>& argv);
  // The connection to `node`, made on first use.
  RedisCommandPipe& ConnectionTo(const RedisClusterNode& node);
  // Where `slot` goes now (refreshing an empty map first).
  StatusOr<RedisClusterNode> NodeFor(int slot);
  // FLUSHALL ASYNC on each master of `next` that was no master in the map in
  // use (see Refresh).
  Status EmptyPromotedMasters(const RedisSlotMap& next);
  // Sends `argv` to `node`, then follows what the answers say.
  StatusOr<RedisReplyPtr> SendFollowing(RedisClusterNode node, const std::vector<std::string>& argv,
                                        RedisReplyPtr first);

  const RedisClusterOptions options_;
  mutable std::mutex mu_;
  std::shared_ptr<const RedisSlotMap> map_;  // guarded by mu_
  int refreshes_ = 0;                        // guarded by mu_
  std::atomic<int> promotions_emptied_{0};
  std::map<std::string, std::unique_ptr<RedisCommandPipe>> connections_;  // guarded by mu_
};

// RedisUserCache's pipe on a cluster (--redis-cluster): commands routed by
// RedisClusterClient. It takes argv commands only; Submit, which carries
// commands already formatted, cannot be routed and fails.
class RedisClusterPipe final : public RedisCommandPipe {
 public:
  explicit RedisClusterPipe(RedisClusterOptions options) : client_(std::move(options)) {}

  // RedisCommandPipe:
  StatusOr<RedisReplyPtr> Command(const std::vector<std::string>& argv) override {
    return client_.Command(argv);
  }
  StatusOr<std::vector<RedisReplyPtr>> Commands(
      const std::vector<std::vector<std::string>>& commands) override {
    return client_.Commands(commands);
  }
  StatusOr<std::vector<RedisReplyPtr>> Submit(std::string bytes, std::size_t count) override;
  std::size_t busy() const override { return 0; }
  bool one_slot_per_command() const override { return true; }

  RedisClusterClient& client() { return client_; }

 private:
  RedisClusterClient client_;
};

// "host:port" as a node; kInvalidArgument if it is not one.
StatusOr<RedisClusterNode> ParseClusterNode(const std::string& text);

}  // namespace polycrud
