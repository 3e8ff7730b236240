#include "cache/redis/redis_user_cache.h"

#include <openssl/sha.h>

#include <atomic>
#include <charconv>
#include <utility>

#include "cache/redis/lua_scripts.h"

namespace polycrud {
namespace {

std::string Sha1Hex(std::string_view data) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (const unsigned char b : digest) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0x0F]);
  }
  return out;
}

// Reads one "<int>|" field at `pos`, advancing it.
bool ReadField(std::string_view s, std::size_t& pos, std::int64_t& out) {
  const char* begin = s.data() + pos;
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(begin, end, out);
  if (ec != std::errc() || ptr == end || *ptr != '|') return false;
  pos = static_cast<std::size_t>(ptr - s.data()) + 1;
  return true;
}

// An error reply as a status: kResourceExhausted when Redis is full (OOM
// under maxmemory with the noeviction policy: it answers, but stores nothing
// new), else kUnavailable.
Status ErrorReply(const redisReply* reply) {
  const std::string_view text(reply->str, reply->len);
  if (text.starts_with("OOM")) {
    return Status::ResourceExhausted("cache: full: " + std::string(text));
  }
  return Status::Unavailable("cache: " + std::string(text));
}

bool IsNoScript(const redisReply* reply) {
  return std::string_view(reply->str, reply->len).starts_with("NOSCRIPT");
}

}  // namespace

RedisUserCache::RedisUserCache(RedisCacheOptions options, RedisCommandPipe& pipe)
    : options_(std::move(options)),
      pipe_(pipe),
      fill_script_sha_(Sha1Hex(PutIfNewerScript())),
      intent_script_sha_(Sha1Hex(WriteIntentScript())),
      rng_(options_.jitter_seed) {}

std::string RedisUserCache::Key(std::int64_t id) { return "user:" + std::to_string(id); }

std::string RedisUserCache::EncodeUser(const User& u) {
  std::string out;
  out.reserve(64 + u.username.size() + u.email.size() + u.full_name.size());
  out += "U|";
  for (const std::int64_t field :
       {u.version, u.id, u.created_at_ms, u.updated_at_ms,
        static_cast<std::int64_t>(u.username.size()), static_cast<std::int64_t>(u.email.size())}) {
    out += std::to_string(field);
    out += '|';
  }
  out += u.username;
  out += u.email;
  out += u.full_name;
  return out;
}

std::optional<CacheEntry> RedisUserCache::Decode(std::string_view value) {
  CacheEntry entry;
  if (value.size() < 3 || value[1] != '|') return std::nullopt;
  if (value[0] == 'W') {
    entry.kind = CacheEntry::Kind::kWriting;
    return entry;
  }
  if (value[0] == 'N' || value[0] == 'D') {
    entry.kind = CacheEntry::Kind::kAbsent;
    return entry;
  }
  if (value[0] != 'U') return std::nullopt;
  std::size_t pos = 2;
  User& u = entry.user;
  std::int64_t ulen = 0;
  std::int64_t elen = 0;
  if (!ReadField(value, pos, u.version) || !ReadField(value, pos, u.id) ||
      !ReadField(value, pos, u.created_at_ms) || !ReadField(value, pos, u.updated_at_ms) ||
      !ReadField(value, pos, ulen) || !ReadField(value, pos, elen) || ulen < 0 || elen < 0 ||
      pos + static_cast<std::size_t>(ulen + elen) > value.size()) {
    return std::nullopt;
  }
  u.username = value.substr(pos, static_cast<std::size_t>(ulen));
  pos += static_cast<std::size_t>(ulen);
  u.email = value.substr(pos, static_cast<std::size_t>(elen));
  pos += static_cast<std::size_t>(elen);
  u.full_name = value.substr(pos);
  entry.kind = CacheEntry::Kind::kUser;
  return entry;
}

std::int64_t RedisUserCache::JitteredTtlMs(std::chrono::milliseconds base) {
  const double spread = static_cast<double>(base.count()) * options_.ttl_jitter;
  std::uniform_real_distribution<double> dist(-spread, spread);
  double jitter = 0;
  {
    std::lock_guard lock(rng_mu_);
    jitter = dist(rng_);
  }
  const auto ttl = static_cast<std::int64_t>(static_cast<double>(base.count()) + jitter);
  return ttl < 1 ? 1 : ttl;
}

StatusOr<RedisReplyPtr> RedisUserCache::Command(const std::vector<std::string>& argv) {
  StatusOr<RedisReplyPtr> reply = pipe_.Command(argv);
  if (!reply.ok()) return reply.status();
  if ((*reply)->type != REDIS_REPLY_ERROR) return reply;
  if (IsNoScript(reply->get()) && argv[0] == "EVALSHA") {
    // Redis restarted (it is a pure cache): send the script itself once.
    std::vector<std::string> eval = argv;
    eval[0] = "EVAL";
    eval[1] = std::string(argv[1] == fill_script_sha_ ? PutIfNewerScript() : WriteIntentScript());
    reply = pipe_.Command(eval);
    if (!reply.ok()) return reply.status();
    if ((*reply)->type != REDIS_REPLY_ERROR) return reply;
  }
  return ErrorReply(reply->get());
}

StatusOr<CacheEntry> RedisUserCache::Get(std::int64_t id) {
  StatusOr<RedisReplyPtr> reply = Command({"GET", Key(id)});
  if (!reply.ok()) return reply.status();
  const redisReply* r = reply->get();
  if (r->type == REDIS_REPLY_NIL) return CacheEntry{};
  if (r->type != REDIS_REPLY_STRING) return Status::Unavailable("cache: unexpected reply");
  std::optional<CacheEntry> entry = Decode(std::string_view(r->str, r->len));
  // An undecodable value is treated as a miss; the next fill replaces it.
  return entry ? std::move(*entry) : CacheEntry{};
}

StatusOr<std::vector<CacheEntry>> RedisUserCache::MultiGet(std::span<const std::int64_t> ids) {
  if (pipe_.one_slot_per_command()) {
    // Redis Cluster: one GET per id, pipelined per node.
    std::vector<std::vector<std::string>> gets;
    gets.reserve(ids.size());
    for (const std::int64_t id : ids) gets.push_back({"GET", Key(id)});
    StatusOr<std::vector<RedisReplyPtr>> replies = pipe_.Commands(gets);
    if (!replies.ok()) return replies.status();
    std::vector<CacheEntry> out(ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const redisReply* e = (*replies)[i].get();
      if (e->type == REDIS_REPLY_ERROR) return ErrorReply(e);
      if (e->type != REDIS_REPLY_STRING) continue;
      std::optional<CacheEntry> entry = Decode(std::string_view(e->str, e->len));
      if (entry) out[i] = std::move(*entry);
    }
    return out;
  }
  std::vector<std::string> argv;
  argv.reserve(ids.size() + 1);
  argv.emplace_back("MGET");
  for (const std::int64_t id : ids) argv.push_back(Key(id));
  StatusOr<RedisReplyPtr> reply = Command(argv);
  if (!reply.ok()) return reply.status();
  const redisReply* r = reply->get();
  if (r->type != REDIS_REPLY_ARRAY || r->elements != ids.size()) {
    return Status::Unavailable("cache: unexpected MGET reply");
  }
  std::vector<CacheEntry> out(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const redisReply* e = r->element[i];
    if (e->type != REDIS_REPLY_STRING) continue;
    std::optional<CacheEntry> entry = Decode(std::string_view(e->str, e->len));
    if (entry) out[i] = std::move(*entry);
  }
  return out;
}

std::vector<std::string> RedisUserCache::PutIfNewerCommand(const User& user) {
  return {"EVALSHA",
          fill_script_sha_,
          "1",
          Key(user.id),
          std::to_string(user.version),
          EncodeUser(user),
          std::to_string(JitteredTtlMs(options_.user_ttl))};
}

StatusOr<bool> RedisUserCache::PutIfNewer(const User& user) {
  StatusOr<RedisReplyPtr> reply = Command(PutIfNewerCommand(user));
  if (!reply.ok()) return reply.status();
  const redisReply* r = reply->get();
  if (r->type != REDIS_REPLY_INTEGER) return Status::Unavailable("cache: unexpected reply");
  return r->integer == 1;
}

StatusOr<std::size_t> RedisUserCache::PutManyIfNewer(std::span<const User> users) {
  std::vector<std::vector<std::string>> commands;
  commands.reserve(users.size());
  for (const User& user : users) commands.push_back(PutIfNewerCommand(user));
  StatusOr<std::vector<RedisReplyPtr>> replies = Pipeline(commands);
  if (!replies.ok()) return replies.status();
  std::size_t refused = 0;
  for (const RedisReplyPtr& r : *replies) {
    if (r->type != REDIS_REPLY_INTEGER) return Status::Unavailable("cache: unexpected reply");
    if (r->integer != 1) ++refused;
  }
  return refused;
}

StatusOr<std::vector<RedisReplyPtr>> RedisUserCache::Pipeline(
    const std::vector<std::vector<std::string>>& cmds) {
  // Twice at most: the second pass only after loading a script Redis lost.
  for (int attempt = 0; attempt < 2; ++attempt) {
    StatusOr<std::vector<RedisReplyPtr>> replies = pipe_.Commands(cmds);
    if (!replies.ok()) return replies.status();
    bool lost_script = false;
    for (const RedisReplyPtr& reply : *replies) {
      if (reply->type != REDIS_REPLY_ERROR) continue;
      if (!IsNoScript(reply.get())) return ErrorReply(reply.get());
      lost_script = true;
    }
    if (!lost_script) return replies;
    for (const std::string_view script : {PutIfNewerScript(), WriteIntentScript()}) {
      StatusOr<RedisReplyPtr> loaded = pipe_.Command({"SCRIPT", "LOAD", std::string(script)});
      if (!loaded.ok()) return loaded.status();
      if ((*loaded)->type == REDIS_REPLY_ERROR) return ErrorReply(loaded->get());
    }
  }
  return Status::Unavailable("cache: the Lua scripts could not be loaded");
}

StatusOr<bool> RedisUserCache::PutAbsent(std::int64_t id) {
  StatusOr<RedisReplyPtr> reply = Command(
      {"SET", Key(id), "N|0|", "PX", std::to_string(JitteredTtlMs(options_.negative_ttl)), "NX"});
  if (!reply.ok()) return reply.status();
  return (*reply)->type == REDIS_REPLY_STATUS;  // NIL when the key already exists
}

Status RedisUserCache::PutTombstone(std::int64_t id, std::int64_t deleted_version) {
  // Unconditional: no cached version can be newer than the row's last one,
  // and ids are never reused.
  StatusOr<RedisReplyPtr> reply =
      Command({"SET", Key(id), "D|" + std::to_string(deleted_version) + "|", "PX",
               std::to_string(JitteredTtlMs(options_.tombstone_ttl))});
  return reply.status();
}

Status RedisUserCache::WriteIntent(std::string_view mode, std::int64_t id,
                                   const WrittenEntry& written) {
  std::string entry;
  if (written.user) {
    entry = EncodeUser(*written.user);
  } else if (written.deleted_version > 0) {
    entry = "D|" + std::to_string(written.deleted_version) + "|";
  }
  StatusOr<RedisReplyPtr> reply =
      Command({"EVALSHA", intent_script_sha_, "1", Key(id), std::string(mode), entry,
               std::to_string(JitteredTtlMs(options_.user_ttl)),
               std::to_string(JitteredTtlMs(options_.tombstone_ttl)),
               std::to_string(options_.tombstone_ttl.count())});
  if (!reply.ok()) return reply.status();
  if ((*reply)->type != REDIS_REPLY_INTEGER) return Status::Unavailable("cache: unexpected reply");
  return Status::Ok();
}

Status RedisUserCache::BeginWrite(std::int64_t id) { return WriteIntent("begin", id, {}); }

Status RedisUserCache::EndWrite(std::int64_t id, const WrittenEntry& written) {
  return WriteIntent("end", id, written);
}

Status RedisUserCache::SettleWrite(std::int64_t id, const WrittenEntry& written) {
  return WriteIntent("settle", id, written);
}

Status RedisUserCache::Ping() {
  StatusOr<RedisReplyPtr> reply = Command({"PING"});
  return reply.status();
}

}  // namespace polycrud
