#include "cache/redis/redis_cluster_client.h"

#include <strings.h>

#include <algorithm>
#include <optional>
#include <utility>

namespace polycrud {
namespace {

std::string NodeKey(const RedisClusterNode& node) {
  return node.host + ":" + std::to_string(node.port);
}

bool Is(const std::string& word, const char* name) { return strcasecmp(word.c_str(), name) == 0; }

// The redirection an error reply names, if it is one.
std::optional<RedisRedirect> RedirectOf(const redisReply& reply, const std::string& asked_host) {
  if (reply.type != REDIS_REPLY_ERROR) return std::nullopt;
  return ParseRedirect(std::string_view(reply.str, reply.len), asked_host);
}

}  // namespace

RedisClusterClient::RedisClusterClient(RedisClusterOptions options)
    : options_(std::move(options)) {}

RedisClusterClient::~RedisClusterClient() = default;

int RedisClusterClient::SlotOf(const std::vector<std::string>& argv) {
  if (argv.size() < 2) return -1;
  if (Is(argv[0], "EVAL") || Is(argv[0], "EVALSHA")) {
    // EVAL script numkeys key...: the first key decides (one slot per script).
    if (argv.size() < 4 || argv[2] == "0") return -1;
    return KeySlot(argv[3]);
  }
  if (Is(argv[0], "PING") || Is(argv[0], "SCRIPT") || Is(argv[0], "CLUSTER") ||
      Is(argv[0], "INFO")) {
    return -1;
  }
  return KeySlot(argv[1]);
}

RedisCommandPipe& RedisClusterClient::ConnectionTo(const RedisClusterNode& node) {
  const std::lock_guard lock(mu_);
  std::unique_ptr<RedisCommandPipe>& connection = connections_[NodeKey(node)];
  if (connection == nullptr) {
    RedisPipelineOptions options = options_.node;
    options.endpoint.host = node.host;
    options.endpoint.port = node.port;
    connection = options_.connect ? options_.connect(std::move(options))
                                  : std::make_unique<RedisPipelinedConnection>(std::move(options));
  }
  return *connection;
}

Status RedisClusterClient::Refresh() {
  std::vector<RedisClusterNode> candidates;
  if (std::shared_ptr<const RedisSlotMap> map = slot_map()) candidates = map->masters();
  candidates.insert(candidates.end(), options_.seeds.begin(), options_.seeds.end());
  for (const RedisClusterNode& node : candidates) {
    StatusOr<RedisReplyPtr> reply = ConnectionTo(node).Command({"CLUSTER", "SLOTS"});
    if (!reply.ok() || (*reply)->type != REDIS_REPLY_ARRAY) continue;
    StatusOr<RedisSlotMap> map = RedisSlotMap::FromClusterSlots(**reply, node.host);
    if (!map.ok() || map->covered_slots() == 0) continue;
    if (Status emptied = EmptyPromotedMasters(*map); !emptied.ok()) return emptied;
    const std::lock_guard lock(mu_);
    map_ = std::make_shared<const RedisSlotMap>(std::move(*map));
    ++refreshes_;
    return Status::Ok();
  }
  return CacheUnavailable("no cluster node answered CLUSTER SLOTS");
}

Status RedisClusterClient::EmptyPromotedMasters(const RedisSlotMap& next) {
  const std::shared_ptr<const RedisSlotMap> previous = slot_map();
  // The first map: nothing is known about the nodes' past.
  if (previous == nullptr) return Status::Ok();
  for (const RedisClusterNode& master : next.masters()) {
    const bool was_master = std::any_of(previous->masters().begin(), previous->masters().end(),
                                        [&](const RedisClusterNode& old) {
                                          return old.host == master.host && old.port == master.port;
                                        });
    if (was_master) continue;
    StatusOr<RedisReplyPtr> flushed = ConnectionTo(master).Command({"FLUSHALL", "ASYNC"});
    if (!flushed.ok()) return flushed.status();
    if ((*flushed)->type == REDIS_REPLY_ERROR) {
      return CacheUnavailable("cannot empty the promoted master " + master.host + ":" +
                              std::to_string(master.port) + ": " +
                              std::string((*flushed)->str, (*flushed)->len));
    }
    ++promotions_emptied_;
  }
  return Status::Ok();
}

std::shared_ptr<const RedisSlotMap> RedisClusterClient::slot_map() const {
  const std::lock_guard lock(mu_);
  return map_;
}

int RedisClusterClient::refreshes() const {
  const std::lock_guard lock(mu_);
  return refreshes_;
}

StatusOr<RedisClusterNode> RedisClusterClient::NodeFor(int slot) {
  std::shared_ptr<const RedisSlotMap> map = slot_map();
  if (map == nullptr) {
    if (Status refreshed = Refresh(); !refreshed.ok()) return refreshed;
    map = slot_map();
  }
  if (slot < 0) {
    if (map->masters().empty()) return CacheUnavailable("the cluster has no master");
    return map->masters().front();
  }
  const RedisClusterNode* master = map->MasterOf(slot);
  if (master == nullptr) return CacheUnavailable("slot " + std::to_string(slot) + " has no master");
  return *master;
}

StatusOr<RedisReplyPtr> RedisClusterClient::SendFollowing(RedisClusterNode node,
                                                          const std::vector<std::string>& argv,
                                                          RedisReplyPtr reply) {
  for (int redirects = 0;; ++redirects) {
    std::optional<RedisRedirect> redirect = RedirectOf(*reply, node.host);
    if (!redirect) return reply;
    if (redirects >= options_.max_redirects) {
      return CacheUnavailable("more than " + std::to_string(options_.max_redirects) +
                              " cluster redirections for one command");
    }
    node = redirect->node;
    if (redirect->kind == RedisRedirect::Kind::kMoved) {
      // The slot moved for good: the whole map is read again (one round
      // trip), and a promoted master emptied, before the command follows.
      if (Status refreshed = Refresh(); !refreshed.ok()) return refreshed;
      StatusOr<RedisReplyPtr> next = ConnectionTo(node).Command(argv);
      if (!next.ok()) return next.status();
      reply = std::move(*next);
    } else {
      // Mid-reshard: this command only, on the importing node.
      StatusOr<std::vector<RedisReplyPtr>> next = ConnectionTo(node).Commands({{"ASKING"}, argv});
      if (!next.ok()) return next.status();
      reply = std::move((*next)[1]);
    }
  }
}

StatusOr<RedisReplyPtr> RedisClusterClient::Command(const std::vector<std::string>& argv) {
  if (argv.size() >= 2 && Is(argv[0], "SCRIPT") && Is(argv[1], "LOAD")) {
    // Every master keeps its own script cache.
    if (slot_map() == nullptr) {
      if (Status refreshed = Refresh(); !refreshed.ok()) return refreshed;
    }
    StatusOr<RedisReplyPtr> first = CacheUnavailable("the cluster has no master");
    for (const RedisClusterNode& master : slot_map()->masters()) {
      StatusOr<RedisReplyPtr> loaded = ConnectionTo(master).Command(argv);
      if (!loaded.ok() || (*loaded)->type == REDIS_REPLY_ERROR) return loaded;
      if (!first.ok()) first = std::move(loaded);
    }
    return first;
  }
  StatusOr<RedisClusterNode> node = NodeFor(SlotOf(argv));
  if (!node.ok()) return node.status();
  StatusOr<RedisReplyPtr> reply = ConnectionTo(*node).Command(argv);
  if (!reply.ok()) {
    // The node may be gone (a failover): the next command reads the map anew.
    static_cast<void>(Refresh());  // if it fails, the next command tries again
    return reply.status();
  }
  return SendFollowing(std::move(*node), argv, std::move(*reply));
}

StatusOr<std::vector<RedisReplyPtr>> RedisClusterClient::Commands(
    const std::vector<std::vector<std::string>>& commands) {
  // Each node's commands, with their positions in `commands`.
  struct Share {
    RedisClusterNode node;
    std::vector<std::vector<std::string>> commands;
    std::vector<std::size_t> positions;
  };
  std::map<std::string, Share> shares;
  for (std::size_t i = 0; i < commands.size(); ++i) {
    StatusOr<RedisClusterNode> node = NodeFor(SlotOf(commands[i]));
    if (!node.ok()) return node.status();
    Share& share = shares[NodeKey(*node)];
    share.node = *node;
    share.commands.push_back(commands[i]);
    share.positions.push_back(i);
  }
  std::vector<RedisReplyPtr> replies(commands.size());
  std::vector<RedisClusterNode> sent_to(commands.size());
  for (auto& [key, share] : shares) {
    StatusOr<std::vector<RedisReplyPtr>> answered =
        ConnectionTo(share.node).Commands(share.commands);
    if (!answered.ok()) {
      static_cast<void>(Refresh());  // if it fails, the next command tries again
      return answered.status();
    }
    for (std::size_t j = 0; j < share.positions.size(); ++j) {
      replies[share.positions[j]] = std::move((*answered)[j]);
      sent_to[share.positions[j]] = share.node;
    }
  }
  for (std::size_t i = 0; i < replies.size(); ++i) {
    if (!RedirectOf(*replies[i], sent_to[i].host)) continue;
    StatusOr<RedisReplyPtr> followed =
        SendFollowing(sent_to[i], commands[i], std::move(replies[i]));
    if (!followed.ok()) return followed.status();
    replies[i] = std::move(*followed);
  }
  return replies;
}

StatusOr<std::vector<RedisReplyPtr>> RedisClusterPipe::Submit(std::string /*bytes*/,
                                                              std::size_t /*count*/) {
  return Status::Internal("cache: formatted commands cannot be routed in a cluster");
}

StatusOr<RedisClusterNode> ParseClusterNode(const std::string& text) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) {
    return Status::InvalidArgument("not host:port: " + text, "redis-cluster");
  }
  int port = 0;
  for (const char c : text.substr(colon + 1)) {
    if (c < '0' || c > '9' || port > 65535)
      return Status::InvalidArgument("bad port in " + text, "redis-cluster");
    port = port * 10 + (c - '0');
  }
  if (port <= 0 || port > 65535)
    return Status::InvalidArgument("bad port in " + text, "redis-cluster");
  return RedisClusterNode{.host = text.substr(0, colon), .port = port};
}

}  // namespace polycrud
