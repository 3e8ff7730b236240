// Status and StatusOr: the core's error model. The core never throws across its
// API; every fallible call returns one of these. Codes are the core codes of
// API.md's error table; each adapter maps them with one exhaustive switch.
#pragma once

#include <cassert>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace polycrud {

// The core error codes. Choose:
//  kInvalidArgument   the request itself is malformed (names the field);
//  kUnauthenticated   no token, or a token nobody configured;
//  kPermissionDenied  a valid token whose role may not do this;
//  kNotFound          the user does not exist;
//  kConflict          duplicate username/email, or expected_version mismatch;
//  kResourceExhausted overload or rate limit: the caller should back off;
//  kUnavailable       a dependency is down or the server is shutting down;
//  kInternal          a bug or an unexpected failure (message never sent to clients).
enum class StatusCode : std::uint8_t {
  kOk = 0,
  kInvalidArgument,
  kUnauthenticated,
  kPermissionDenied,
  kNotFound,
  kConflict,
  kResourceExhausted,
  kUnavailable,
  kInternal,
};

// The upper-case code name of API.md (e.g. "NOT_FOUND").
std::string_view StatusCodeName(StatusCode code);

// Refines kConflict so protocols that distinguish them (gRPC) can.
enum class ConflictKind : std::uint8_t { kNone = 0, kDuplicate, kVersionMismatch };

// Retry hint sent with kUnavailable and kResourceExhausted unless the code
// that fails knows better (a short queue-full wait, say).
inline constexpr std::int64_t kDefaultRetryAfterMs = 1000;

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK

  static Status Ok() { return {}; }
  static Status InvalidArgument(std::string message, std::string field) {
    Status s(StatusCode::kInvalidArgument, std::move(message));
    s.field_ = std::move(field);
    return s;
  }
  static Status Unauthenticated(std::string message) {
    return {StatusCode::kUnauthenticated, std::move(message)};
  }
  static Status PermissionDenied(std::string message) {
    return {StatusCode::kPermissionDenied, std::move(message)};
  }
  static Status NotFound(std::string message) {
    return {StatusCode::kNotFound, std::move(message)};
  }
  static Status Duplicate(std::string message) {
    Status s(StatusCode::kConflict, std::move(message));
    s.conflict_ = ConflictKind::kDuplicate;
    return s;
  }
  static Status VersionMismatch(std::string message) {
    Status s(StatusCode::kConflict, std::move(message));
    s.conflict_ = ConflictKind::kVersionMismatch;
    return s;
  }
  static Status ResourceExhausted(std::string message,
                                  std::int64_t retry_after_ms = kDefaultRetryAfterMs) {
    Status s(StatusCode::kResourceExhausted, std::move(message));
    s.retry_after_ms_ = retry_after_ms;
    return s;
  }
  static Status Unavailable(std::string message,
                            std::int64_t retry_after_ms = kDefaultRetryAfterMs) {
    Status s(StatusCode::kUnavailable, std::move(message));
    s.retry_after_ms_ = retry_after_ms;
    return s;
  }
  static Status Internal(std::string message) {
    return {StatusCode::kInternal, std::move(message)};
  }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  // For kInternal and kUnavailable this is for logs only, never for the wire.
  const std::string& message() const { return message_; }
  // The offending input field for kInvalidArgument, else empty.
  const std::string& field() const { return field_; }
  ConflictKind conflict_kind() const { return conflict_; }
  std::int64_t retry_after_ms() const { return retry_after_ms_; }

  // "CODE: message" for logs.
  std::string ToString() const;

 private:
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  StatusCode code_ = StatusCode::kOk;
  ConflictKind conflict_ = ConflictKind::kNone;
  std::int64_t retry_after_ms_ = 0;
  std::string message_;
  std::string field_;
};

// A value or a non-OK Status.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(T value) : value_(std::move(value)) {}         // NOLINT(google-explicit-constructor)
  StatusOr(Status status) : status_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!status_.ok());
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  const T& value() const& { return *value_; }
  T& value() & { return *value_; }
  T&& value() && { return std::move(*value_); }
  const T& operator*() const& { return *value_; }
  T& operator*() & { return *value_; }
  const T* operator->() const { return &*value_; }
  T* operator->() { return &*value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace polycrud
