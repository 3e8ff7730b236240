// MemoryUserStore: the UserStore port in memory, for unit tests. It keeps the
// rules the MySQL driver keeps (ids assigned in increasing order and never
// reused, unique username, email unique ignoring ASCII case, version 1 on
// insert and +1 on every update, the expected_version check inside the update)
// and adds what tests need: call counters, an outage switch, hooks that run
// inside a read so a test can interleave other operations deterministically,
// and direct access to the rows. Thread-safe.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/ports.h"

namespace polycrud::testing {

class MemoryUserStore final : public UserStore {
 public:
  // Runs inside FindById / FindByIds after the rows were read and before they
  // are returned, on the caller's thread and outside the store's lock. The
  // caller gets the rows as they were read, whatever the hook does meanwhile
  // (block, update or delete the row), which is how a test makes a read stale.
  using FindByIdHook = std::function<void(std::int64_t id)>;
  using FindByIdsHook = std::function<void(std::span<const std::int64_t> ids)>;

  // Ids are given from `first_id` on (tests that share a real cache with
  // others start far from them).
  explicit MemoryUserStore(std::int64_t first_id = 1) : next_id_(first_id) {}

  // UserStore:
  StatusOr<User> Insert(const UserDraft& draft, std::int64_t now_ms) override {
    insert_calls_.fetch_add(1);
    if (unavailable_.load()) return Outage();
    std::lock_guard lock(mu_);
    if (usernames_.contains(draft.username)) return Status::Duplicate("username is taken");
    std::string email_key = FoldEmail(draft.email);
    if (emails_.contains(email_key)) return Status::Duplicate("email is taken");
    User user{.id = next_id_++,
              .username = draft.username,
              .email = draft.email,
              .full_name = draft.full_name,
              .version = 1,
              .created_at_ms = now_ms,
              .updated_at_ms = now_ms};
    usernames_.insert(user.username);
    emails_.insert(std::move(email_key));
    rows_.emplace(user.id, user);
    return user;
  }

  StatusOr<std::optional<User>> FindById(std::int64_t id) override {
    find_by_id_calls_.fetch_add(1);
    if (unavailable_.load()) return Outage();
    std::optional<User> row;
    FindByIdHook hook;
    {
      std::lock_guard lock(mu_);
      if (auto it = rows_.find(id); it != rows_.end()) row = it->second;
      hook = find_by_id_hook_;
    }
    if (hook) hook(id);
    return row;
  }

  // Returns each existing id once, in descending id order, so that callers
  // cannot come to rely on an order the port does not promise.
  StatusOr<std::vector<User>> FindByIds(std::span<const std::int64_t> ids) override {
    find_by_ids_calls_.fetch_add(1);
    if (unavailable_.load()) return Outage();
    std::vector<User> found;
    FindByIdsHook hook;
    {
      std::lock_guard lock(mu_);
      last_find_by_ids_.assign(ids.begin(), ids.end());
      const std::set<std::int64_t, std::greater<>> unique(ids.begin(), ids.end());
      for (const std::int64_t id : unique) {
        if (auto it = rows_.find(id); it != rows_.end()) found.push_back(it->second);
      }
      hook = find_by_ids_hook_;
    }
    if (hook) hook(ids);
    return found;
  }

  StatusOr<User> Update(std::int64_t id, const UserPatch& patch, std::int64_t now_ms) override {
    update_calls_.fetch_add(1);
    if (unavailable_.load()) return Outage();
    std::lock_guard lock(mu_);
    auto it = rows_.find(id);
    if (it == rows_.end()) return Status::NotFound("user not found");
    User& row = it->second;
    if (patch.expected_version != 0 && patch.expected_version != row.version) {
      return Status::VersionMismatch("the user has another version");
    }
    if (patch.email) {
      std::string new_key = FoldEmail(*patch.email);
      std::string old_key = FoldEmail(row.email);
      if (new_key != old_key) {
        if (emails_.contains(new_key)) return Status::Duplicate("email is taken");
        emails_.erase(old_key);
        emails_.insert(std::move(new_key));
      }
      row.email = *patch.email;
    }
    if (patch.full_name) row.full_name = *patch.full_name;
    ++row.version;
    row.updated_at_ms = now_ms;
    if (lose_write_answers_.load()) return Outage();
    return row;
  }

  StatusOr<std::int64_t> Delete(std::int64_t id) override {
    delete_calls_.fetch_add(1);
    if (unavailable_.load()) return Outage();
    std::lock_guard lock(mu_);
    auto it = rows_.find(id);
    if (it == rows_.end()) return Status::NotFound("user not found");
    const std::int64_t version = it->second.version;
    usernames_.erase(it->second.username);
    emails_.erase(FoldEmail(it->second.email));
    rows_.erase(it);
    if (lose_write_answers_.load()) return Outage();
    return version;
  }

  StatusOr<std::vector<User>> ListAfter(std::int64_t after_id, std::int32_t limit) override {
    list_after_calls_.fetch_add(1);
    if (unavailable_.load()) return Outage();
    std::lock_guard lock(mu_);
    std::vector<User> page;
    for (auto it = rows_.upper_bound(after_id);
         it != rows_.end() && page.size() < static_cast<std::size_t>(std::max(limit, 0)); ++it) {
      page.push_back(it->second);
    }
    return page;
  }

  // Every row, no cut of the e-mail range (it has no index to read).
  StatusOr<std::vector<User>> SearchByPrefix(std::string_view prefix, std::int32_t limit) override {
    if (unavailable_.load()) return Outage();
    const std::string folded = FoldEmail(prefix);
    std::lock_guard lock(mu_);
    std::vector<User> found;
    for (const auto& [id, row] : rows_) {
      if (FoldEmail(row.username).starts_with(folded) || FoldEmail(row.email).starts_with(folded)) {
        found.push_back(row);
      }
    }
    std::sort(found.begin(), found.end(),
              [](const User& a, const User& b) { return a.username < b.username; });
    if (found.size() > static_cast<std::size_t>(std::max(limit, 0))) {
      found.resize(static_cast<std::size_t>(std::max(limit, 0)));
    }
    return found;
  }

  Status Ping() override {
    ping_calls_.fetch_add(1);
    if (unavailable_.load()) return Outage();
    return Status::Ok();
  }

  // Test controls.

  // While set, every call fails with kUnavailable and changes nothing.
  void SetUnavailable(bool unavailable) { unavailable_.store(unavailable); }
  // While set, Update and Delete commit and then answer kUnavailable, as
  // when the connection drops after COMMIT: the outcome looks unknown.
  void SetLoseWriteAnswers(bool lose) { lose_write_answers_.store(lose); }
  void SetFindByIdHook(FindByIdHook hook) {
    std::lock_guard lock(mu_);
    find_by_id_hook_ = std::move(hook);
  }
  void SetFindByIdsHook(FindByIdsHook hook) {
    std::lock_guard lock(mu_);
    find_by_ids_hook_ = std::move(hook);
  }

  // The row as stored, or nullopt; counts as no call.
  std::optional<User> Peek(std::int64_t id) const {
    std::lock_guard lock(mu_);
    if (auto it = rows_.find(id); it != rows_.end()) return it->second;
    return std::nullopt;
  }
  std::size_t size() const {
    std::lock_guard lock(mu_);
    return rows_.size();
  }
  // The highest id handed out so far (0 before the first insert).
  std::int64_t last_id() const {
    std::lock_guard lock(mu_);
    return next_id_ - 1;
  }
  // The ids argument of the latest FindByIds call, as passed.
  std::vector<std::int64_t> last_find_by_ids() const {
    std::lock_guard lock(mu_);
    return last_find_by_ids_;
  }

  // Calls received, failed ones included.
  int insert_calls() const { return insert_calls_.load(); }
  int find_by_id_calls() const { return find_by_id_calls_.load(); }
  int find_by_ids_calls() const { return find_by_ids_calls_.load(); }
  int update_calls() const { return update_calls_.load(); }
  int delete_calls() const { return delete_calls_.load(); }
  int list_after_calls() const { return list_after_calls_.load(); }
  int ping_calls() const { return ping_calls_.load(); }

 private:
  static Status Outage() { return Status::Unavailable("store: injected outage"); }

  // Email uniqueness ignores ASCII case, like the utf8mb4 collation of the
  // MySQL column does for the addresses that matter here.
  static std::string FoldEmail(std::string_view email) {
    std::string out(email);
    for (char& c : out) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
  }

  mutable std::mutex mu_;
  std::map<std::int64_t, User> rows_;
  std::unordered_set<std::string> usernames_;
  std::unordered_set<std::string> emails_;
  std::int64_t next_id_;
  std::vector<std::int64_t> last_find_by_ids_;
  FindByIdHook find_by_id_hook_;
  FindByIdsHook find_by_ids_hook_;

  std::atomic<bool> unavailable_{false};
  std::atomic<bool> lose_write_answers_{false};
  std::atomic<int> insert_calls_{0};
  std::atomic<int> find_by_id_calls_{0};
  std::atomic<int> find_by_ids_calls_{0};
  std::atomic<int> update_calls_{0};
  std::atomic<int> delete_calls_{0};
  std::atomic<int> list_after_calls_{0};
  std::atomic<int> ping_calls_{0};
};

}  // namespace polycrud::testing
