// RedisUserCache: the UserCache port on Redis (hiredis), implementing the
// versioned cache protocol of docs/cache-protocol.md. Every user lives under one key,
// user:<id>, whose string value is one of
//   U|<version>|<id>|<created>|<updated>|<ulen>|<elen>|<username><email><full_name>
//   D|<version>|   tombstone of a deleted row (refuses fills of <= version)
//   N|0|           negative entry: the id does not exist
//   W|<n>|<guard>  write intent of n writers (write_intent.lua): reads miss;
//                  <guard> is the newest U or D value known, or empty
// Conditional writes run as one Lua script touching that one key, so the
// protocol holds unchanged on Redis Cluster. Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cache/redis/redis_pipelined_connection.h"
#include "core/ports.h"

namespace polycrud {

struct RedisCacheOptions {
  std::chrono::milliseconds user_ttl{std::chrono::hours(1)};
  std::chrono::milliseconds negative_ttl{std::chrono::seconds(30)};
  // Must outlast the slowest read that could still try a stale fill.
  std::chrono::milliseconds tombstone_ttl{std::chrono::minutes(5)};
  // Each TTL is spread uniformly over +-jitter so keys filled together do not
  // expire together.
  double ttl_jitter = 0.1;
  std::uint64_t jitter_seed = std::random_device{}();
};

class RedisUserCache final : public UserCache {
 public:
  // Sends every command through `pipe`, which must outlive this object: a
  // RedisPipelinedGroup or RedisPooledPipe (redis_pipes.h) for plain threads,
  // a RedisFiberConnection for the fibers of one thread.
  RedisUserCache(RedisCacheOptions options, RedisCommandPipe& pipe);

  // Encodes / decodes the value format above (exposed for tests).
  static std::string EncodeUser(const User& user);
  static std::optional<CacheEntry> Decode(std::string_view value);
  static std::string Key(std::int64_t id);

  // UserCache:
  StatusOr<CacheEntry> Get(std::int64_t id) override;
  StatusOr<std::vector<CacheEntry>> MultiGet(std::span<const std::int64_t> ids) override;
  StatusOr<bool> PutIfNewer(const User& user) override;
  // Pipelined: all scripts are sent before the first reply is read.
  StatusOr<std::size_t> PutManyIfNewer(std::span<const User> users) override;
  StatusOr<bool> PutAbsent(std::int64_t id) override;
  Status PutTombstone(std::int64_t id, std::int64_t deleted_version) override;
  Status BeginWrite(std::int64_t id) override;
  Status EndWrite(std::int64_t id, const WrittenEntry& written) override;
  Status SettleWrite(std::int64_t id, const WrittenEntry& written) override;
  Status Ping() override;

 private:
  // Runs one command (argv form); loads the Lua script again if Redis lost it
  // (NOSCRIPT after a restart).
  StatusOr<RedisReplyPtr> Command(const std::vector<std::string>& argv);
  // Sends every command before reading any reply (one round trip), loading
  // the script again if Redis lost it.
  StatusOr<std::vector<RedisReplyPtr>> Pipeline(const std::vector<std::vector<std::string>>& cmds);
  std::vector<std::string> PutIfNewerCommand(const User& user);
  // write_intent.lua in `mode` ("begin", "end", "settle") for `id`.
  Status WriteIntent(std::string_view mode, std::int64_t id, const WrittenEntry& written);
  std::int64_t JitteredTtlMs(std::chrono::milliseconds base);

  const RedisCacheOptions options_;
  RedisCommandPipe& pipe_;
  std::string fill_script_sha_;
  std::string intent_script_sha_;
  std::mutex rng_mu_;
  std::mt19937_64 rng_;
};

}  // namespace polycrud
