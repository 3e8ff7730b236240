// The ports the core needs from the outside world. Drivers implement them
// (MySQL, Redis, SHA-256 tokens, the system clock); unit tests use fakes.
// Every implementation must be safe to call from many threads at once.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/user.h"

namespace polycrud {

// How many rows of the e-mail index a search reads at most (UserStore::
// SearchByPrefix).
inline constexpr std::int32_t kSearchEmailRangeCap = 500;

// Durable storage of users: the source of truth.
// Errors: kUnavailable when the database cannot be reached (the write did not
// happen, or happened atomically), kResourceExhausted when its pool is
// exhausted, kInternal for anything unexpected.
class UserStore {
 public:
  virtual ~UserStore() = default;

  // Inserts a new user with version 1 and both timestamps = now_ms; returns it
  // with its new id. kConflict (duplicate) if the username or email is taken.
  virtual StatusOr<User> Insert(const UserDraft& draft, std::int64_t now_ms) = 0;
  // The user, or nullopt if no row has that id.
  virtual StatusOr<std::optional<User>> FindById(std::int64_t id) = 0;
  // The users that exist among `ids`, in any order.
  virtual StatusOr<std::vector<User>> FindByIds(std::span<const std::int64_t> ids) = 0;
  // Applies `patch` and bumps the version in one statement; the version check
  // (expected_version != 0) happens in that same statement. kNotFound or
  // kConflict (version mismatch, or email taken).
  virtual StatusOr<User> Update(std::int64_t id, const UserPatch& patch, std::int64_t now_ms) = 0;
  // Deletes the row and returns the version it had. kNotFound if absent.
  virtual StatusOr<std::int64_t> Delete(std::int64_t id) = 0;
  // Up to `limit` users with id > after_id, ascending.
  virtual StatusOr<std::vector<User>> ListAfter(std::int64_t after_id, std::int32_t limit) = 0;
  // Up to `limit` users whose username or e-mail starts with `prefix`,
  // compared case-insensitively as e-mail uniqueness is, ordered by username.
  // `%`, `_` and every other character stand for themselves. Served from
  // the unique indexes as prefix ranges, never a scan of the table: the
  // e-mail range is read in e-mail order and cut after kSearchEmailRangeCap
  // rows, so past that many e-mail matches, users matched by e-mail alone
  // are taken from the first ones in e-mail order (docs/search.md).
  virtual StatusOr<std::vector<User>> SearchByPrefix(std::string_view prefix,
                                                     std::int32_t limit) = 0;
  // Cheap reachability check.
  virtual Status Ping() = 0;
};

// What the cache knows about one id.
struct CacheEntry {
  enum class Kind : std::uint8_t {
    kMiss,    // nothing cached: ask the store
    kUser,    // `user` is the cached row
    kAbsent,  // the id is known not to exist (negative entry or tombstone)
    // A write of the id is in flight (a write intent, rule 10): ask the store,
    // and neither fill nor share another reader's load, which may predate
    // the write.
    kWriting,
  };
  Kind kind = Kind::kMiss;
  User user;
};

// What a write of one id left, for the cache: the row as written (`user`),
// a tombstone of `deleted_version` (the row's last version, when it was
// deleted), or neither (the write failed and changed nothing).
struct WrittenEntry {
  std::optional<User> user;
  std::int64_t deleted_version = 0;
};

// The versioned cache of docs/cache-protocol.md (key user:<id>). Any error means "the cache
// is not usable now": the core falls back to the store, never to the client.
class UserCache {
 public:
  virtual ~UserCache() = default;

  virtual StatusOr<CacheEntry> Get(std::int64_t id) = 0;
  // One round trip for all ids; the result is parallel to `ids`.
  virtual StatusOr<std::vector<CacheEntry>> MultiGet(std::span<const std::int64_t> ids) = 0;
  // Atomically stores `user` unless the key holds the same or a newer version
  // or a newer tombstone. Returns false when refused as stale. Used both for
  // fills after a miss and for replace-on-write.
  virtual StatusOr<bool> PutIfNewer(const User& user) = 0;
  // PutIfNewer for each user, in one round trip where the cache can; returns
  // how many were refused as stale. The default calls PutIfNewer in turn.
  virtual StatusOr<std::size_t> PutManyIfNewer(std::span<const User> users) {
    std::size_t refused = 0;
    for (const User& user : users) {
      StatusOr<bool> stored = PutIfNewer(user);
      if (!stored.ok()) return stored.status();
      if (!*stored) ++refused;
    }
    return refused;
  }
  // Caches "this id does not exist" briefly, only if the key is empty.
  virtual StatusOr<bool> PutAbsent(std::int64_t id) = 0;
  // Replaces the entry with a short-lived tombstone of the deleted version, so
  // that any fill of that version or older arriving later is refused.
  virtual Status PutTombstone(std::int64_t id, std::int64_t deleted_version) = 0;
  // Write intents (rule 10). Before a writer writes the store it marks the
  // key of `id`: until every writer that began has ended, reads of it miss
  // and fills of it are refused, so a writer that dies between its commit
  // and EndWrite leaves no stale entry behind; a mark whose writers never
  // end expires by itself (the tombstone TTL). The newest entry the key held
  // is kept inside the mark as its guard.
  virtual Status BeginWrite(std::int64_t id) = 0;
  // One writer of `id` is done: `written` is merged into the guard (the newer
  // version wins; at the same version a tombstone wins over the user), and
  // when it was the last writer the guard becomes the entry again (nothing
  // known: a miss). With no mark (it expired, or BeginWrite failed) this
  // stores `written` unless the key holds the same or something newer.
  virtual Status EndWrite(std::int64_t id, const WrittenEntry& written) = 0;
  // The repair: EndWrite of every writer at once, whatever marks are open
  // (their writers are gone, or their outcome was unknown and `written` is
  // what the store holds now).
  virtual Status SettleWrite(std::int64_t id, const WrittenEntry& written) = 0;
  virtual Status Ping() = 0;
};

// Maps a bearer token to its role. kUnauthenticated if missing or unknown.
class TokenVerifier {
 public:
  virtual ~TokenVerifier() = default;
  virtual StatusOr<Role> Verify(std::string_view token) const = 0;
  // A name for `token` in logs that does not reveal it (the audit log's
  // token id), whether or not the token is valid.
  virtual std::string TokenId(std::string_view token) const = 0;
};

// One change event as the outbox holds it (docs/events.md): written in the
// transaction of its change, published by the relay.
struct OutboxEvent {
  std::int64_t seq = 0;  // outbox order; per user, commit order
  std::string event_id;  // unique, the same on every redelivery
  std::string type;      // user.created, user.updated, user.deleted (the routing key)
  std::int64_t user_id = 0;
  std::int64_t version = 0;
  std::int64_t occurred_at_ms = 0;
  std::string body;  // the message body (JSON), fixed when the change committed

  bool operator==(const OutboxEvent&) const = default;
};

// The outbox of change events, seen by the relay.
class EventOutbox {
 public:
  virtual ~EventOutbox() = default;
  // Takes or extends the relay lease: true while this relay is the one that
  // publishes (for the next lease_ms), false while another one is.
  virtual StatusOr<bool> HoldLease() = 0;
  // Gives the lease up, if this relay holds it.
  virtual Status ReleaseLease() = 0;
  // Up to `limit` events not yet marked sent, in seq order.
  virtual StatusOr<std::vector<OutboxEvent>> Unsent(std::int32_t limit) = 0;
  // Marks these events sent (the broker confirmed them) at `now_ms`.
  virtual Status MarkSent(std::span<const std::int64_t> seqs, std::int64_t now_ms) = 0;
  // Deletes up to `limit` events sent before `sent_before_ms`; how many.
  virtual StatusOr<std::int64_t> Prune(std::int64_t sent_before_ms, std::int32_t limit) = 0;
};

// Where the relay publishes (a RabbitMQ exchange).
class EventPublisher {
 public:
  virtual ~EventPublisher() = default;
  // Whether a connection is open (Publish would not need to connect first).
  virtual bool connected() const = 0;
  // Opens the connection, bounded by the publisher's timeouts.
  virtual Status Connect() = 0;
  // Publishes `events` in order, each persistent, and returns once the
  // broker confirmed every one; an error when any was refused or the
  // broker could not be reached within the publisher's timeout (some may
  // have been delivered: at least once). Connects first if need be.
  virtual Status Publish(std::span<const OutboxEvent> events) = 0;
  // Drops the connection (the next Publish connects again).
  virtual void Disconnect() = 0;
};

// Server wall clock, injectable for tests.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::int64_t NowMs() const = 0;
  // Monotonic milliseconds for timeouts and circuit breakers.
  virtual std::int64_t MonotonicMs() const = 0;
};

// The real clock.
class SystemClock final : public Clock {
 public:
  std::int64_t NowMs() const override;
  std::int64_t MonotonicMs() const override;
};

}  // namespace polycrud
