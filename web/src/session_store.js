// A bounded in-process session store for express-session. express-session's
// MemoryStore never evicts and grows without bound; this one holds each
// session for `ttlMs` after its last use (sliding) and evicts the least
// recently used one when full. A Map keeps insertion order, and every touch
// re-inserts, so the first key is always the oldest.
//
// Signed-in sessions (those holding a token) and visitors' sessions (only a
// sign-in form's CSRF token or a flash) are kept apart, each at most
// `maxSessions`: anyone can create visitor sessions by loading the sign-in
// page, and a flood of them must never evict a signed-in admin. Only a
// successful, rate-limited sign-in creates a signed-in session.
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
    // sid -> { data (JSON text), expires }; a sid is in at most one of them.
    this.signedIn = new Map();
    this.visitors = new Map();
    this.sweeper = setInterval(() => this.prune(), Math.min(60000, ttlMs)).unref();
  }

  /** Sessions held, both kinds. */
  get size() {
    return this.signedIn.size + this.visitors.size;
  }

  entry(sid) {
    return this.signedIn.get(sid) || this.visitors.get(sid);
  }

  get(sid, callback) {
    const entry = this.entry(sid);
    if (!entry) return callback(null, null);
    if (entry.expires <= this.now()) {
      this.signedIn.delete(sid);
      this.visitors.delete(sid);
      return callback(null, null);
    }
    return callback(null, JSON.parse(entry.data));
  }

  set(sid, sess, callback) {
    this.signedIn.delete(sid);
    this.visitors.delete(sid);
    const map = sess && sess.token ? this.signedIn : this.visitors;
    map.set(sid, { data: JSON.stringify(sess), expires: this.now() + this.ttlMs });
    while (map.size > this.maxSessions) map.delete(map.keys().next().value);
    if (callback) callback(null);
  }

  touch(sid, sess, callback) {
    for (const map of [this.signedIn, this.visitors]) {
      const entry = map.get(sid);
      if (!entry) continue;
      map.delete(sid);
      entry.expires = this.now() + this.ttlMs;
      map.set(sid, entry);
    }
    if (callback) callback(null);
  }

  destroy(sid, callback) {
    this.signedIn.delete(sid);
    this.visitors.delete(sid);
    if (callback) callback(null);
  }

  length(callback) {
    this.prune();
    callback(null, this.size);
  }

  clear(callback) {
    this.signedIn.clear();
    this.visitors.clear();
    if (callback) callback(null);
  }

  /** Drops expired sessions; oldest first, so it stops at the first live one. */
  prune() {
    const now = this.now();
    for (const map of [this.signedIn, this.visitors]) {
      for (const [sid, entry] of map) {
        if (entry.expires > now) break;
        map.delete(sid);
      }
    }
  }

  close() {
    clearInterval(this.sweeper);
  }
}

module.exports = { BoundedSessionStore };
