-- The transactional outbox of change events (docs/events.md): every create,
-- update and delete inserts its event here in the same transaction as the
-- change, so an event exists exactly when its change committed. The relay
-- publishes the rows not yet sent in seq order and stamps sent_at_ms once
-- the broker confirmed them; sent rows are pruned after the retention
-- period. Per user, seq follows commit order: the change takes the user's
-- row lock before its event row is inserted.
CREATE TABLE IF NOT EXISTS user_events (
  seq BIGINT NOT NULL AUTO_INCREMENT,
  event_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  type VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  user_id BIGINT NOT NULL,
  version BIGINT NOT NULL,
  occurred_at_ms BIGINT NOT NULL,
  body TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  sent_at_ms BIGINT NULL,
  PRIMARY KEY (seq),
  UNIQUE KEY uk_user_events_event_id (event_id),
  KEY ix_user_events_sent (sent_at_ms, seq)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The relay's lease (storage/mysql/mysql_lease.h): one relay publishes at a
-- time, among every server.
CREATE TABLE IF NOT EXISTS event_relay_lease (
  id TINYINT UNSIGNED NOT NULL PRIMARY KEY,
  owner VARCHAR(255) NOT NULL,
  expires_at DATETIME(3) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
