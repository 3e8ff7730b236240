#include "cache/redis/redis_cluster_slots.h"

#include <algorithm>
#include <utility>

namespace polycrud {
namespace {

// The CRC16-XMODEM table, built at compile time.
constexpr std::array<std::uint16_t, 256> MakeCrc16Table() {
  std::array<std::uint16_t, 256> table{};
  for (int byte = 0; byte < 256; ++byte) {
    auto crc = static_cast<std::uint16_t>(byte << 8);
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 0x8000) != 0 ? static_cast<std::uint16_t>((crc << 1) ^ 0x1021)
                                : static_cast<std::uint16_t>(crc << 1);
    }
    table[static_cast<std::size_t>(byte)] = crc;
  }
  return table;
}
constexpr std::array<std::uint16_t, 256> kCrc16Table = MakeCrc16Table();

// [host, port, id, ...] of a CLUSTER SLOTS entry.
std::optional<RedisClusterNode> ReadNode(const redisReply& node, const std::string& asked_host) {
  if (node.type != REDIS_REPLY_ARRAY || node.elements < 2) return std::nullopt;
  const redisReply& host = *node.element[0];
  const redisReply& port = *node.element[1];
  if ((host.type != REDIS_REPLY_STRING && host.type != REDIS_REPLY_NIL) ||
      port.type != REDIS_REPLY_INTEGER || port.integer <= 0 || port.integer > 65535) {
    return std::nullopt;
  }
  RedisClusterNode out;
  out.host = host.type == REDIS_REPLY_STRING ? std::string(host.str, host.len) : std::string();
  // Empty or NULL: a node that does not know its own address (a one-node
  // cluster) means the one asked. "?" (no hostname configured) stays: an
  // endpoint nobody can reach, left to the caller.
  if (out.host.empty()) out.host = asked_host;
  out.port = static_cast<int>(port.integer);
  if (node.elements >= 3 && node.element[2]->type == REDIS_REPLY_STRING) {
    out.id.assign(node.element[2]->str, node.element[2]->len);
  }
  return out;
}

}  // namespace

std::uint16_t Crc16Xmodem(std::string_view data) {
  std::uint16_t crc = 0;
  for (const char c : data) {
    const auto index = static_cast<std::uint8_t>((crc >> 8) ^ static_cast<std::uint8_t>(c));
    crc = static_cast<std::uint16_t>((crc << 8) ^ kCrc16Table[index]);
  }
  return crc;
}

int KeySlot(std::string_view key) {
  const std::size_t open = key.find('{');
  if (open != std::string_view::npos) {
    const std::size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  return Crc16Xmodem(key) & (kRedisClusterSlots - 1);
}

std::optional<RedisRedirect> ParseRedirect(std::string_view error, const std::string& asked_host) {
  RedisRedirect redirect;
  if (error.starts_with("MOVED ")) {
    redirect.kind = RedisRedirect::Kind::kMoved;
    error.remove_prefix(6);
  } else if (error.starts_with("ASK ")) {
    redirect.kind = RedisRedirect::Kind::kAsk;
    error.remove_prefix(4);
  } else {
    return std::nullopt;
  }
  const std::size_t space = error.find(' ');
  if (space == std::string_view::npos || space == 0) return std::nullopt;
  int slot = 0;
  for (const char c : error.substr(0, space)) {
    if (c < '0' || c > '9' || slot >= kRedisClusterSlots) return std::nullopt;
    slot = slot * 10 + (c - '0');
  }
  if (slot >= kRedisClusterSlots) return std::nullopt;
  const std::string_view endpoint = error.substr(space + 1);
  const std::size_t colon = endpoint.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == endpoint.size()) return std::nullopt;
  int port = 0;
  for (const char c : endpoint.substr(colon + 1)) {
    if (c < '0' || c > '9' || port > 65535) return std::nullopt;
    port = port * 10 + (c - '0');
  }
  if (port <= 0 || port > 65535) return std::nullopt;
  redirect.slot = slot;
  redirect.node.host = std::string(endpoint.substr(0, colon));
  if (redirect.node.host.empty()) redirect.node.host = asked_host;
  redirect.node.port = port;
  return redirect;
}

StatusOr<RedisSlotMap> RedisSlotMap::FromClusterSlots(const redisReply& reply,
                                                      const std::string& asked_host) {
  const auto malformed = [] {
    return Status::Internal("cache: a CLUSTER SLOTS answer of another shape");
  };
  if (reply.type != REDIS_REPLY_ARRAY) return malformed();
  RedisSlotMap map;
  map.owner_.fill(kNone);
  for (std::size_t i = 0; i < reply.elements; ++i) {
    const redisReply& range = *reply.element[i];
    if (range.type != REDIS_REPLY_ARRAY || range.elements < 3 ||
        range.element[0]->type != REDIS_REPLY_INTEGER ||
        range.element[1]->type != REDIS_REPLY_INTEGER) {
      return malformed();
    }
    const long long start = range.element[0]->integer;
    const long long end = range.element[1]->integer;
    if (start < 0 || end < start || end >= kRedisClusterSlots) return malformed();
    std::optional<RedisClusterNode> master = ReadNode(*range.element[2], asked_host);
    if (!master) return malformed();
    auto it = std::find(map.masters_.begin(), map.masters_.end(), *master);
    if (it == map.masters_.end()) {
      map.masters_.push_back(*master);
      map.replicas_.emplace_back();
      it = map.masters_.end() - 1;
    }
    const auto index = static_cast<std::size_t>(it - map.masters_.begin());
    for (std::size_t r = 3; r < range.elements; ++r) {
      std::optional<RedisClusterNode> replica = ReadNode(*range.element[r], asked_host);
      if (!replica) return malformed();
      std::vector<RedisClusterNode>& replicas = map.replicas_[index];
      if (std::find(replicas.begin(), replicas.end(), *replica) == replicas.end()) {
        replicas.push_back(std::move(*replica));
      }
    }
    std::fill(map.owner_.begin() + start, map.owner_.begin() + end + 1,
              static_cast<std::uint16_t>(index));
  }
  return map;
}

const RedisClusterNode* RedisSlotMap::MasterOf(int slot) const {
  if (slot < 0 || slot >= kRedisClusterSlots) return nullptr;
  const std::uint16_t index = owner_[static_cast<std::size_t>(slot)];
  return index == kNone ? nullptr : &masters_[index];
}

int RedisSlotMap::covered_slots() const {
  return static_cast<int>(
      std::count_if(owner_.begin(), owner_.end(), [](std::uint16_t o) { return o != kNone; }));
}

}  // namespace polycrud
