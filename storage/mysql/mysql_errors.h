// How MySQL/MariaDB errors become core Statuses: the one mapping function of
// the MySQL driver, plus the classification the connection pool needs to
// decide whether a connection may be reused after an error.
#pragma once

#include <string_view>

#include "core/status.h"

namespace sql {
class SQLException;
}  // namespace sql

namespace polycrud {

// True for client-side errors that mean the connection itself is gone or
// unusable (cannot connect, server gone away, lost connection, killed, server
// shutting down, a Galera node that left the cluster's primary component). Such a connection must
// be discarded, never pooled again.
bool IsMysqlConnectionError(int error_code);

// True when an error leaves the connection in a state nobody can vouch for:
// every connection-level error and every other client-side (CR_*, 2000-2999)
// or driver-internal (code 0) error. Server errors (1000-1999, 3000+) leave
// the session usable.
bool IsMysqlConnectionPoisoned(int error_code);

// Maps a MySQL error to a core Status. This is the only such mapping:
//  - duplicate key (1062): kConflict/kDuplicate, "username already exists" or
//    "email already exists" depending on the unique key the server names;
//  - connection-level errors: kUnavailable "database unavailable";
//  - deadlock, lock wait timeout or statement timeout (1213, 1205, 1969):
//    kResourceExhausted "database busy" (the statement was rolled back;
//    retrying is safe);
//  - anything else: kInternal carrying the server's code and text, for logs.
// Client-facing messages never contain SQL or server text.
Status StatusFromMysqlError(int error_code, std::string_view sql_state,
                            std::string_view server_message);
Status StatusFromMysqlError(const sql::SQLException& error);

// True for the errors a Galera node that does not serve answers with: 1047
// to any statement, 1205 to a causal read (wsrep_sync_wait). 1205 is also a
// plain lock wait timeout, so the caller asks the node whether it serves
// (MysqlConnection::GaleraNodeReady) before calling it a refusal.
bool MayBeGaleraRefusal(int error_code);

// True for ER_STATEMENT_TIMEOUT (max_statement_time ran out).
bool IsMysqlStatementTimeout(int error_code);

// The Status for "no connection could be leased in time".
Status MysqlPoolExhaustedStatus();

}  // namespace polycrud
