// Redis Cluster's key space: which of the 16384 hash slots a key belongs to
// (KeySlot: CRC16-XMODEM of the key, or of its hash tag), and which node
// serves each slot (RedisSlotMap, read from a node's CLUSTER SLOTS answer).
// The first pieces of the cluster-aware cache driver (docs/cache-protocol.md);
// a single Redis stays the default for one box.
#pragma once

#include <hiredis/hiredis.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace polycrud {

inline constexpr int kRedisClusterSlots = 16384;

// CRC16-XMODEM (polynomial 0x1021, initial value 0), as Redis Cluster uses it.
std::uint16_t Crc16Xmodem(std::string_view data);

// The slot of `key`: CRC16 of the whole key modulo 16384, or, when the key
// holds a '{' followed later by a '}' with at least one byte between them,
// of the bytes between the first '{' and the first '}' after it (the hash
// tag: "{user:42}:a" and "{user:42}:b" share a slot).
int KeySlot(std::string_view key);

struct RedisClusterNode {
  std::string host;
  int port = 0;
  std::string id;
  bool operator==(const RedisClusterNode&) const = default;
};

// A cluster node's redirection of a command: "MOVED <slot> <host>:<port>"
// (the slot lives there now: update the map) or "ASK <slot> <host>:<port>"
// (during a reshard: send ASKING, then the command, to that node once).
struct RedisRedirect {
  enum class Kind { kMoved, kAsk };
  Kind kind = Kind::kMoved;
  int slot = 0;
  RedisClusterNode node;  // host and port; the id is not given
};
// The redirection an error reply's text names, if it is one. The host is
// everything before the last ':' (an IPv6 address has colons of its own);
// an empty host (a node that does not know its address) is `asked_host`.
std::optional<RedisRedirect> ParseRedirect(std::string_view error, const std::string& asked_host);

// Which node serves each slot: the masters, and each slot's master index
// (or none while the slot is unassigned), with each master's replicas.
class RedisSlotMap {
 public:
  // Reads a CLUSTER SLOTS reply: an array of [start, end, master, replica...]
  // where each node is [host, port, id, ...] (Redis 7 adds a map of
  // metadata, ignored). A node whose host is empty or NULL (one that does
  // not know its own address) is taken to be `asked_host`, the host the
  // command was sent to. kInternal if the reply has another shape.
  static StatusOr<RedisSlotMap> FromClusterSlots(const redisReply& reply,
                                                 const std::string& asked_host);

  // The master serving `slot` (0..16383), if any.
  const RedisClusterNode* MasterOf(int slot) const;
  // The master serving `key`'s slot, if any.
  const RedisClusterNode* MasterOfKey(std::string_view key) const { return MasterOf(KeySlot(key)); }
  const std::vector<RedisClusterNode>& masters() const { return masters_; }
  // The replicas of masters()[i].
  const std::vector<RedisClusterNode>& replicas(std::size_t i) const { return replicas_[i]; }
  // Slots with a master.
  int covered_slots() const;

 private:
  static constexpr std::uint16_t kNone = 0xFFFF;
  std::vector<RedisClusterNode> masters_;
  std::vector<std::vector<RedisClusterNode>> replicas_;
  std::array<std::uint16_t, kRedisClusterSlots> owner_{};  // index into masters_, or kNone
};

}  // namespace polycrud
