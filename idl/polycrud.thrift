/*
 * polycrud public Thrift contract (v1). Field ids and names are fixed:
 * add fields or methods, never rename or renumber.
 */
namespace cpp polycrud.thrift
namespace py polycrud
namespace js polycrud

/** A user record. Timestamps are Unix epoch milliseconds (server clock). */
struct User {
  1: i64 id
  2: string username
  3: string email
  4: string full_name
  5: i64 version
  6: i64 created_at_ms
  7: i64 updated_at_ms
}

/** Input of createUser. */
struct UserDraft {
  1: string username
  2: string email
  3: string full_name
}

/** Input of updateUser: unset fields are left unchanged. expected_version 0 = unconditional. */
struct UserPatch {
  1: optional string email
  2: optional string full_name
  3: i64 expected_version
}

/** One page of listUsers. next_after_id 0 means there is no further page. */
struct UserPage {
  1: list<User> users
  2: i64 next_after_id
}

/** The request was malformed; field names the offending input field when one applies. */
exception InvalidArgument {
  1: string message
  2: string field
}

/** The token is missing or unknown. */
exception Unauthenticated {
  1: string message
}

/** The token is valid but its role may not call this method. */
exception PermissionDenied {
  1: string message
}

/** The user does not exist. */
exception NotFound {
  1: string message
}

/** Duplicate username or email, or expected_version mismatch. */
exception Conflict {
  1: string message
}

/** Overloaded, rate limited, shutting down, or the database is down: retry after retry_after_ms. */
exception Unavailable {
  1: string message
  2: i64 retry_after_ms
}

service UserService {
  /** Server name and version; no auth, no I/O. */
  string ping()

  /** Admin only. */
  User createUser(1: string token, 2: UserDraft draft)
      throws (1: InvalidArgument invalid, 2: Unauthenticated unauthenticated,
              3: PermissionDenied denied, 4: Conflict conflict, 5: Unavailable unavailable)

  User getUser(1: string token, 2: i64 id)
      throws (1: InvalidArgument invalid, 2: Unauthenticated unauthenticated,
              3: PermissionDenied denied, 4: NotFound not_found, 5: Unavailable unavailable)

  /** 1-1000 ids; users found, in request order; missing ids omitted. */
  list<User> batchGetUsers(1: string token, 2: list<i64> ids)
      throws (1: InvalidArgument invalid, 2: Unauthenticated unauthenticated,
              3: PermissionDenied denied, 4: Unavailable unavailable)

  /** Admin only. */
  User updateUser(1: string token, 2: i64 id, 3: UserPatch patch)
      throws (1: InvalidArgument invalid, 2: Unauthenticated unauthenticated,
              3: PermissionDenied denied, 4: NotFound not_found, 5: Conflict conflict,
              6: Unavailable unavailable)

  /** Admin only. */
  void deleteUser(1: string token, 2: i64 id)
      throws (1: InvalidArgument invalid, 2: Unauthenticated unauthenticated,
              3: PermissionDenied denied, 4: NotFound not_found, 5: Unavailable unavailable)

  /** Keyset pagination: users with id > after_id in id order; limit 1-1000 (0 = default 100). */
  UserPage listUsers(1: string token, 2: i64 after_id, 3: i32 limit)
      throws (1: InvalidArgument invalid, 2: Unauthenticated unauthenticated,
              3: PermissionDenied denied, 4: Unavailable unavailable)

  /**
   * Users whose username or email starts with prefix (1-254 bytes, matched
   * case-insensitively; %, _ and \ are literal), ordered by username then id;
   * limit 1-100, 0 for the default 20. Reader or admin. Served from the
   * unique indexes, never a table scan.
   */
  list<User> searchUsers(1: string token, 2: string prefix, 3: i32 limit)
      throws (1: InvalidArgument invalid, 2: Unauthenticated unauthenticated,
              3: PermissionDenied denied, 4: Unavailable unavailable)
}
