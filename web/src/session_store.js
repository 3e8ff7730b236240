// A bounded in-process session store for express-session. express-session's
// MemoryStore never evicts and grows without bound; this one holds at most
// `maxSessions` sessions, each for `ttlMs` after its last use (sliding), and
// evicts the least recently used session when full. A Map keeps insertion
// order, and every touch re-inserts, so the first key is always the oldest.
//
// Sessions live in this process only: a restart signs everybody out, and
// several console instances behind one name need sticky routing. The session
// holds the admin's bearer token, so keeping it out of any shared store is
// also the safer default.
'use strict';

const session = require('express-session');

class BoundedSessionStore extends session.Store {
  constructor({ maxSessions = 10000, ttlMs = 30 * 60 * 1000, now = Date.now } = {}) {
    super();
    this.maxSessions = maxSessions;
    this.ttlMs = ttlMs;
    this.now = now;
    this.sessions = new Map(); // sid -> { data (JSON text), expires }
    this.sweeper = setInterval(() => this.prune(), Math.min(60000, ttlMs)).unref();
  }

  get(sid, callback) {
    const entry = this.sessions.get(sid);
    if (!entry) return callback(null, null);
    if (entry.expires <= this.now()) {
      this.sessions.delete(sid);
      return callback(null, null);
    }
    return callback(null, JSON.parse(entry.data));
  }

  set(sid, sess, callback) {
    this.sessions.delete(sid);
    this.sessions.set(sid, { data: JSON.stringify(sess), expires: this.now() + this.ttlMs });
    while (this.sessions.size > this.maxSessions) {
      this.sessions.delete(this.sessions.keys().next().value);
    }
    if (callback) callback(null);
  }

  touch(sid, sess, callback) {
    const entry = this.sessions.get(sid);
    if (entry) {
      this.sessions.delete(sid);
      entry.expires = this.now() + this.ttlMs;
      this.sessions.set(sid, entry);
    }
    if (callback) callback(null);
  }

  destroy(sid, callback) {
    this.sessions.delete(sid);
    if (callback) callback(null);
  }

  length(callback) {
    this.prune();
    callback(null, this.sessions.size);
  }

  clear(callback) {
    this.sessions.clear();
    if (callback) callback(null);
  }

  /** Drops expired sessions; oldest first, so it stops at the first live one. */
  prune() {
    const now = this.now();
    for (const [sid, entry] of this.sessions) {
      if (entry.expires > now) break;
      this.sessions.delete(sid);
    }
  }

  close() {
    clearInterval(this.sweeper);
  }
}

module.exports = { BoundedSessionStore };
