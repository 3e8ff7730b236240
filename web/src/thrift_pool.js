// A pool of persistent Thrift connections (framed transport, binary or
// compact protocol) to polycrud-server, with per-call timeouts, bounded
// queues, reconnect with backoff, and idle connections closed before the
// server's own idle timeout closes them under a call.
//
// Each connection carries several calls at once (Thrift matches replies by
// sequence id); a call goes to the open connection with the fewest calls in
// flight. Transport failures reject with ServiceError UNAVAILABLE; a call that
// times out also drops its connection, since its reply may still arrive. A
// call that may have reached the service without an answer coming back (it
// timed out, or its open connection was lost) is marked outcomeUnknown.
//
// With a secureContext the connections are Thrift over TLS (the same framed
// protocol inside TLS) and behave the same; a connection counts as open once
// its handshake is done. A server that requires a client certificate may
// only refuse it after that (TLS 1.3: its alert follows the client's last
// handshake message): a TLS alert before any reply ends a connection that
// never carried a call to the service, so it counts as a failed connect.
'use strict';

const net = require('node:net');
const thrift = require('thrift');
const { ServiceError, fromThriftError } = require('./service_error');
const { frameReader, dispatchReply } = require('./thrift_frames');

const MAX_BACKOFF_MS = 5000;

class ThriftPool {
  /**
   * options: host, port, size (connections), callTimeoutMs, connectTimeoutMs,
   * idleMs (close a connection unused this long), maxInFlight (calls per
   * connection before the pool answers RESOURCE_EXHAUSTED), protocol
   * ('binary' | 'compact'), service and ttypes (generated code), logger (pino),
   * secureContext (optional: Thrift over TLS with this tls.SecureContext; the
   * server's certificate must name host).
   */
  constructor(options) {
    this.options = options;
    this.closed = false;
    this.slots = Array.from({ length: options.size }, (_, index) => ({
      index,
      conn: null,
      client: null,
      connected: false,
      pending: new Map(),
      lastUsed: 0,
      failures: 0,
      retryAt: 0,
    }));
    this.nextCallId = 0;
    this.sweeper = setInterval(() => this.closeIdle(), Math.max(250, Math.floor(options.idleMs / 4)));
    this.sweeper.unref();
  }

  /** Calls method(...args) on some connection; resolves with the result or rejects with a ServiceError. */
  call(method, ...args) {
    if (this.closed) {
      return Promise.reject(new ServiceError('UNAVAILABLE', 'shutting down', { retryAfterMs: 1000 }));
    }
    const now = Date.now();
    let best = null;
    let waiting = 0;
    for (const slot of this.slots) {
      if (!slot.conn && slot.retryAt > now) {
        waiting++;
        continue;
      }
      if (slot.pending.size >= this.options.maxInFlight) continue;
      // Prefer open connections, then the fewest calls in flight.
      const score = (slot.connected ? 0 : 1e9) + slot.pending.size;
      if (!best || score < best.score) best = { slot, score };
    }
    if (!best) {
      if (waiting === this.slots.length) {
        return Promise.reject(
          new ServiceError('UNAVAILABLE', 'cannot reach the polycrud service', { retryAfterMs: 1000 }));
      }
      return Promise.reject(
        new ServiceError('RESOURCE_EXHAUSTED', 'too many calls in flight', { retryAfterMs: 1000 }));
    }
    return this.callOn(best.slot, method, args);
  }

  callOn(slot, method, args) {
    if (!slot.conn) this.connect(slot);
    slot.lastUsed = Date.now();
    const id = ++this.nextCallId;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (!slot.pending.delete(id)) return;
        reject(new ServiceError('UNAVAILABLE', `the polycrud service did not answer ${method} in time`,
                                { retryAfterMs: 1000, outcomeUnknown: true }));
        this.options.logger.warn({ method, connection: slot.index }, 'thrift call timed out; reconnecting');
        this.drop(slot, 'call timed out');
      }, this.options.callTimeoutMs);
      slot.pending.set(id, { reject, timer });
      const done = (err, result) => {
        if (!slot.pending.delete(id)) return; // timed out or connection lost already
        clearTimeout(timer);
        slot.lastUsed = Date.now();
        if (err) reject(fromThriftError(err, this.options.ttypes));
        else resolve(result);
      };
      try {
        slot.client[method](...args, done);
      } catch (err) {
        // Serialisation errors (a value the protocol cannot write) are ours.
        done(new ServiceError('INTERNAL', 'internal error', { cause: err }));
      }
    });
  }

  connect(slot) {
    const { host, port, connectTimeoutMs, protocol, service, logger, secureContext } = this.options;
    const Protocol = protocol === 'compact' ? thrift.TCompactProtocol : thrift.TBinaryProtocol;
    const options = {
      transport: thrift.TFramedTransport,
      protocol: Protocol,
      connect_timeout: connectTimeoutMs,
    };
    let conn;
    if (secureContext) {
      // Passed on to tls.connect, which checks the certificate against host
      // (an IP address against the certificate's IP SANs). The context sets
      // the versions and files: thrift's own secureProtocol default is unused.
      options.secureContext = secureContext;
      options.rejectUnauthorized = true;
      if (!net.isIP(host)) options.servername = host;
      conn = thrift.createSSLConnection(host, port, options);
    } else {
      conn = thrift.createConnection(host, port, options);
    }
    slot.conn = conn;
    slot.connected = false;
    slot.client = thrift.createClient(service, conn);
    this.readAndWriteFast(slot, conn, Protocol);
    const failuresBefore = slot.failures;
    let lastError = null;
    let replied = false; // bytes came from the server on this connection
    let refused = false; // the server ended the TLS handshake with an alert
    if (secureContext) conn.connection.once('data', () => { replied = true; });
    const connectTimer = setTimeout(() => {
      if (slot.conn === conn && !slot.connected) conn.destroy();
    }, connectTimeoutMs);
    conn.on('connect', () => {
      clearTimeout(connectTimer);
      if (slot.conn !== conn) return;
      slot.connected = true;
      slot.failures = 0;
      logger.debug({ connection: slot.index, host, port }, 'thrift connected');
    });
    conn.on('error', (err) => {
      lastError = err;
      if (secureContext && !replied && /^ERR_SSL_\w*_ALERT_/.test(err.code || '')) refused = true;
      if (slot.conn === conn) logger.debug({ connection: slot.index, err: err.message }, 'thrift connection error');
    });
    conn.on('close', () => {
      clearTimeout(connectTimer);
      if (slot.conn !== conn) return;
      if (refused && slot.connected) {
        // Refused after the client's side of the handshake: never open, and
        // the calls written meanwhile were never read by the service.
        slot.connected = false;
        slot.failures = failuresBefore;
      }
      if (!slot.connected) {
        slot.failures++;
        slot.retryAt = Date.now() + Math.min(MAX_BACKOFF_MS, 100 * 2 ** Math.min(slot.failures, 10));
        const why = lastError ? { err: lastError.message.trim(), code: lastError.code } : {};
        logger.warn({ connection: slot.index, host, port, failures: slot.failures, ...why }, 'cannot connect to the polycrud service');
      }
      this.detach(slot, 'connection lost');
    });
  }

  // Replies are read by thrift_frames (the package's reader is slow), and
  // the calls written in one turn of the event loop (from every request read
  // in it) leave in one system call: the socket is corked at the first and
  // uncorked once the turn's I/O callbacks are done (setImmediate).
  readAndWriteFast(slot, conn, Protocol) {
    const socket = conn.connection;
    socket.removeAllListeners('data');
    const client = slot.client;
    const read = frameReader((frame) => dispatchReply(client, Protocol, frame));
    socket.on('data', (data) => {
      try {
        read(data);
      } catch (err) {
        this.options.logger.warn({ connection: slot.index, err: err.message }, 'bad reply from the polycrud service; reconnecting');
        socket.destroy();
      }
    });
    let corked = false;
    const uncork = () => {
      corked = false;
      socket.uncork();
    };
    const write = conn.write.bind(conn);
    conn.write = (data) => {
      if (conn.connected && !corked) {
        corked = true;
        socket.cork();
        setImmediate(uncork);
      }
      write(data);
    };
  }

  // Forgets the slot's connection and fails the calls it carried. Calls on a
  // connection that never opened were never sent; on an open one they may
  // have reached the service.
  detach(slot, why) {
    const outcomeUnknown = slot.connected;
    slot.conn = null;
    slot.client = null;
    slot.connected = false;
    for (const { reject, timer } of slot.pending.values()) {
      clearTimeout(timer);
      reject(new ServiceError('UNAVAILABLE', `the polycrud service is unreachable (${why})`, { retryAfterMs: 1000, outcomeUnknown }));
    }
    slot.pending.clear();
  }

  drop(slot, why) {
    const conn = slot.conn;
    this.detach(slot, why);
    if (conn) conn.destroy();
  }

  closeIdle() {
    const cutoff = Date.now() - this.options.idleMs;
    for (const slot of this.slots) {
      if (slot.conn && slot.pending.size === 0 && slot.lastUsed < cutoff) this.drop(slot, 'idle');
    }
  }

  /** Connections open and calls in flight, for /readyz and logs. */
  stats() {
    return {
      connections: this.slots.filter((s) => s.connected).length,
      size: this.slots.length,
      in_flight: this.slots.reduce((n, s) => n + s.pending.size, 0),
    };
  }

  /** Closes every connection; calls still in flight fail with UNAVAILABLE. */
  close() {
    this.closed = true;
    clearInterval(this.sweeper);
    for (const slot of this.slots) this.drop(slot, 'shutting down');
  }
}

module.exports = { ThriftPool };
