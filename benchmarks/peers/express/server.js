'use strict';
// Benchmark peer: polycrud's REST routes (API.md) as a plain Node.js + Express
// service doing the same cache-aside directly against Redis (ioredis) and
// MariaDB (mysql2 promise pool).
//
// The Redis entries are polycrud's own (cache/redis/redis_user_cache.cc):
//   user:<id> = U|<version>|<id>|<created>|<updated>|<ulen>|<elen>|<username><email><full_name>
//             | D|<version>|   (tombstone after a delete)
//             | N|0|           (negative entry: the id does not exist)
// with byte lengths, filled by the same conditional Lua script, so this
// service and polycrud-server can share one Redis.

const cluster = require('node:cluster');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { parseArgs } = require('node:util');

const SERVER_NAME = 'polycrud-express-peer 0.1.0';

// polycrud's fill script (cache/redis/put_if_newer.lua), read from the one
// file polycrud-server embeds, so the SHA-1 and hence EVALSHA are shared.
const FILL_SCRIPT = fs.readFileSync(
  path.join(__dirname, '..', '..', '..', 'cache', 'redis', 'put_if_newer.lua'),
  'utf8',
);

const USER_COLUMNS = 'id, username, email, full_name, version, created_at_ms, updated_at_ms';
const SELECT_BY_ID = `SELECT ${USER_COLUMNS} FROM users WHERE id = ?`;
const SELECT_BY_IDS = `SELECT ${USER_COLUMNS} FROM users WHERE id IN (?)`;
const LIST_AFTER = `SELECT ${USER_COLUMNS} FROM users WHERE id > ? ORDER BY id LIMIT ?`;
const INSERT =
  'INSERT INTO users (username, email, full_name, version, created_at_ms, updated_at_ms) ' +
  'VALUES (?, ?, ?, 1, ?, ?)';
const UPDATE =
  'UPDATE users SET email = COALESCE(?, email), full_name = COALESCE(?, full_name), ' +
  'version = version + 1, updated_at_ms = ? WHERE id = ? AND (? = 0 OR version = ?)';
const SELECT_VERSION = 'SELECT version FROM users WHERE id = ?';
const DELETE = 'DELETE FROM users WHERE id = ? RETURNING version';

const MAX_BATCH_IDS = 1000;
const MAX_PAGE_LIMIT = 1000;
const DEFAULT_PAGE_LIMIT = 100;
const NEGATIVE_TTL_MS = 30000;
const TOMBSTONE_TTL_MS = 300000;
const INT64_MAX = 9223372036854775807n;

// MySQL errors: duplicate key, lost or refused connections, lock waits.
const ER_DUP_ENTRY = 1062;
const MYSQL_CONNECTION_ERRNOS = new Set([1053, 1927, 2002, 2003, 2005, 2006, 2013, 2026, 2055]);
const MYSQL_CONNECTION_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND',
  'PROTOCOL_CONNECTION_LOST', 'PROTOCOL_SEQUENCE_TIMEOUT', 'ER_SERVER_SHUTDOWN',
]);
const MYSQL_BUSY_ERRNOS = new Set([1205, 1213]);

const USERNAME_RE = /^[a-z0-9_.-]+$/;
// C0, DEL, C1, U+2028/U+2029 and the Zs space separators, as core/validation.cc.
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
const SPACE_RE = /[\u0020\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]/;
// A JS string is valid UTF-8 unless it holds a lone surrogate.
const LONE_SURROGATE_RE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const INTEGER_RE = /^-?[0-9]+$/;

// ------------------------------------------------------------- options --

const OPTIONS = {
  help: { type: 'boolean', short: 'h', env: null, doc: 'print this help and exit' },
  bind: { env: 'PEER_BIND', def: '127.0.0.1', doc: 'address to listen on' },
  port: { env: 'PEER_PORT', def: '8181', doc: 'port' },
  workers: {
    env: 'PEER_WORKERS', def: '1',
    doc: 'processes (node:cluster) sharing the port; 1 = a single process, no cluster',
  },
  'mysql-host': { env: 'POLYCRUD_MYSQL_HOST', def: '127.0.0.1', doc: 'MariaDB host' },
  'mysql-port': { env: 'POLYCRUD_MYSQL_PORT', def: '3306', doc: 'MariaDB port' },
  'mysql-user': { env: 'POLYCRUD_MYSQL_USER', def: 'polycrud', doc: 'MariaDB user' },
  'mysql-password': { env: 'POLYCRUD_MYSQL_PASSWORD', def: '', doc: 'MariaDB password' },
  'mysql-database': { env: 'POLYCRUD_MYSQL_DATABASE', def: 'polycrud', doc: 'database' },
  'mysql-pool-size': {
    env: 'PEER_MYSQL_POOL_SIZE', def: '16', doc: 'MariaDB connections per process at most',
  },
  'mysql-queue-limit': {
    env: 'PEER_MYSQL_QUEUE_LIMIT', def: '10000',
    doc: 'queries waiting for a connection at most; beyond: 429',
  },
  'redis-host': { env: 'POLYCRUD_REDIS_HOST', def: '127.0.0.1', doc: 'Redis host' },
  'redis-port': { env: 'POLYCRUD_REDIS_PORT', def: '6379', doc: 'Redis port' },
  'redis-user': { env: 'POLYCRUD_REDIS_USER', def: '', doc: 'Redis ACL user' },
  'redis-password': {
    env: 'POLYCRUD_REDIS_PASSWORD',
    def: '',
    doc: 'password of the Redis user (prefer the environment)',
  },
  'redis-auto-pipelining': {
    env: 'PEER_REDIS_AUTO_PIPELINING', def: '1',
    doc: 'ioredis enableAutoPipelining: commands of one event-loop tick share a write (1/0)',
  },
  'cache-ttl-s': { env: 'PEER_CACHE_TTL_S', def: '3600', doc: 'TTL of a cached user (10% jitter)' },
  'max-body-bytes': { env: 'PEER_MAX_BODY_BYTES', def: '1048576', doc: 'larger bodies get 413' },
  'admin-token-sha256': {
    env: 'POLYCRUD_ADMIN_TOKEN_SHA256', def: '', doc: 'comma-separated SHA-256 hex of admin tokens',
  },
  'reader-token-sha256': {
    env: 'POLYCRUD_READER_TOKEN_SHA256', def: '',
    doc: 'comma-separated SHA-256 hex of reader tokens',
  },
};

function usage() {
  const lines = [
    'Usage: node server.js [OPTIONS]',
    '',
    "Benchmark peer: polycrud's REST routes (API.md) as a Node.js + Express",
    'cache-aside service over Redis (ioredis) and MariaDB (mysql2). Every option',
    'defaults to the environment variable shown. Run with NODE_ENV=production.',
    '',
  ];
  for (const [name, o] of Object.entries(OPTIONS)) {
    const left = `  --${name}${o.type === 'boolean' ? '' : ' VALUE'}`;
    const env = o.env ? ` (env ${o.env}${o.def !== '' ? `, default ${o.def}` : ''})` : '';
    lines.push(`${left.padEnd(34)} ${o.doc}${env}`);
  }
  return lines.join('\n') + '\n';
}

function die(message) {
  process.stderr.write(`error: ${message}\n`);
  process.exit(2);
}

function loadConfig(argv) {
  const spec = {};
  for (const [name, o] of Object.entries(OPTIONS)) {
    spec[name] = { type: o.type || 'string' };
    if (o.short) spec[name].short = o.short;
  }
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: spec, strict: true, allowPositionals: false }));
  } catch (e) {
    die(`${e.message} (see --help)`);
  }
  if (values.help) {
    process.stdout.write(usage());
    process.exit(0);
  }
  const get = (name) => {
    if (values[name] !== undefined) return values[name];
    const o = OPTIONS[name];
    const fromEnv = o.env ? process.env[o.env] : undefined;
    return fromEnv !== undefined && fromEnv !== '' ? fromEnv : o.def;
  };
  const int = (name, min, max) => {
    const text = get(name);
    const n = Number(text);
    if (!Number.isInteger(n) || n < min || n > max) die(`--${name} must be an integer in [${min}, ${max}]`);
    return n;
  };
  const hashes = (name) =>
    get(name).split(',').map((s) => s.trim()).filter(Boolean).map((hex) => {
      if (!/^[0-9a-fA-F]{64}$/.test(hex)) die(`--${name}: a token hash must be 64 hex digits (SHA-256)`);
      return Buffer.from(hex, 'hex');
    });
  return {
    bind: get('bind'),
    port: int('port', 1, 65535),
    workers: int('workers', 1, 256),
    mysql: {
      host: get('mysql-host'),
      port: int('mysql-port', 1, 65535),
      user: get('mysql-user'),
      password: get('mysql-password'),
      database: get('mysql-database'),
      connectionLimit: int('mysql-pool-size', 1, 1024),
      queueLimit: int('mysql-queue-limit', 0, 1000000),
    },
    redis: {
      host: get('redis-host'),
      port: int('redis-port', 1, 65535),
      username: get('redis-user') || undefined,
      password: get('redis-password') || undefined,
      autoPipelining: get('redis-auto-pipelining') !== '0',
    },
    userTtlMs: int('cache-ttl-s', 1, 10 * 365 * 86400) * 1000,
    maxBodyBytes: int('max-body-bytes', 1, 64 * 1024 * 1024),
    adminHashes: hashes('admin-token-sha256'),
    readerHashes: hashes('reader-token-sha256'),
  };
}

function log(level, message) {
  process.stderr.write(`${new Date().toISOString()} ${process.pid} ${level} express-peer: ${message}\n`);
}

// -------------------------------------------------------------- errors --

class ApiError extends Error {
  constructor(status, code, detail, field, retryAfterMs) {
    super(detail);
    this.status = status;
    this.code = code;
    this.field = field;
    this.retryAfterMs = retryAfterMs;
  }
}

const invalid = (detail, field) => new ApiError(400, 'INVALID_ARGUMENT', detail, field);
const notFound = (detail) => new ApiError(404, 'NOT_FOUND', detail);
const conflict = (detail) => new ApiError(409, 'CONFLICT', detail);
const unavailable = (retryAfterMs) =>
  new ApiError(503, 'UNAVAILABLE', 'service unavailable, retry later', undefined, retryAfterMs);
const overloaded = (retryAfterMs) =>
  new ApiError(429, 'RESOURCE_EXHAUSTED', 'overloaded, retry later', undefined, retryAfterMs);

function sendProblem(res, err) {
  const body = {
    type: 'about:blank',
    title: http.STATUS_CODES[err.status] || 'Error',
    status: err.status,
    detail: err.message,
    code: err.code,
  };
  if (err.field) body.field = err.field;
  if (err.status === 401) res.setHeader('WWW-Authenticate', 'Bearer');
  if (err.retryAfterMs !== undefined) {
    res.setHeader('Retry-After', String(Math.max(1, Math.ceil(err.retryAfterMs / 1000))));
  }
  res.status(err.status).type('application/problem+json').send(JSON.stringify(body));
}

// Maps a mysql2 error to the contract's answer; unknown ones stay internal.
function mysqlError(err) {
  if (err instanceof ApiError) return err;
  if (err.errno === ER_DUP_ENTRY) {
    const m = /for key '(?:[^'.]*\.)?([^']*)'/.exec(err.sqlMessage || err.message || '');
    const key = m ? m[1] : '';
    if (key === 'uk_users_username') return conflict('username already exists');
    if (key === 'uk_users_email') return conflict('email already exists');
    return conflict('user already exists');
  }
  if (MYSQL_CONNECTION_ERRNOS.has(err.errno) || MYSQL_CONNECTION_CODES.has(err.code) || err.fatal) {
    log('warn', `mysql: ${err.code || err.errno}: ${err.message}`);
    return unavailable(1000);
  }
  if (MYSQL_BUSY_ERRNOS.has(err.errno)) {
    log('warn', `mysql: ${err.message}`);
    return unavailable(100);
  }
  if (/queue limit reached/i.test(err.message || '')) return overloaded(100);
  return err;
}

// ---------------------------------------------------------- validation --

function checkEmail(email) {
  const bytes = Buffer.byteLength(email);
  if (bytes < 1 || bytes > 254) throw invalid('email must be 1-254 bytes', 'email');
  if (LONE_SURROGATE_RE.test(email)) throw invalid('email is not valid UTF-8', 'email');
  if (CONTROL_RE.test(email) || SPACE_RE.test(email)) {
    throw invalid('email may not contain spaces or control characters', 'email');
  }
  const at = email.indexOf('@');
  if (at < 0 || email.indexOf('@', at + 1) >= 0) {
    throw invalid("email must contain exactly one '@'", 'email');
  }
  if (at === 0 || at === email.length - 1) {
    throw invalid('email needs a local part and a domain', 'email');
  }
}

function checkFullName(fullName) {
  if (LONE_SURROGATE_RE.test(fullName)) throw invalid('full_name is not valid UTF-8', 'full_name');
  if (CONTROL_RE.test(fullName)) {
    throw invalid('full_name may not contain control characters', 'full_name');
  }
  let codePoints = 0;
  for (const _ of fullName) codePoints++; // eslint-disable-line no-unused-vars
  if (codePoints < 1 || codePoints > 128) {
    throw invalid('full_name must be 1-128 characters', 'full_name');
  }
}

function checkUsername(username) {
  const bytes = Buffer.byteLength(username);
  if (bytes < 3 || bytes > 32) throw invalid('username must be 3-32 characters', 'username');
  if (!USERNAME_RE.test(username)) {
    throw invalid("username may contain only a-z, 0-9, '_', '.' and '-'", 'username');
  }
}

// A string member of the body: absent or null is undefined.
function optionalString(body, name) {
  const value = body[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw invalid(`${name} must be a string`, name);
  return value;
}

// The path id as a number. Malformed: 400 before the token is checked, as
// polycrud does; ids past 2^53 cannot exist here and are answered 404 later.
function pathId(text) {
  if (!INTEGER_RE.test(text)) throw invalid('id must be a positive integer', 'id');
  const id = Number(text);
  if (!Number.isSafeInteger(id)) {
    const big = BigInt(text);
    if (big > INT64_MAX || big < -INT64_MAX - 1n) throw invalid('id must be a positive integer', 'id');
    return big > 0n ? Infinity : -1;
  }
  return id;
}

function requireJsonBody(req) {
  if (!req.is(['application/json', 'application/*+json'])) {
    throw new ApiError(415, 'INVALID_ARGUMENT', 'the request body must be application/json');
  }
  const body = req.body;
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw invalid('the request body must be a JSON object');
  }
  return body;
}

// --------------------------------------------------------------- cache --

const key = (id) => `user:${id}`;

function jitter(ttlMs) {
  return Math.max(1, Math.round(ttlMs * (0.9 + 0.2 * Math.random())));
}

function encode(u) {
  return `U|${u.version}|${u.id}|${u.created_at_ms}|${u.updated_at_ms}|` +
    `${Buffer.byteLength(u.username)}|${Buffer.byteLength(u.email)}|` +
    `${u.username}${u.email}${u.full_name}`;
}

const ABSENT = null; // the id is known not to exist (tombstone or negative entry)

// A cached Buffer: a user object, ABSENT, or undefined (miss or unreadable).
function decode(buf) {
  if (buf === null || buf === undefined || buf.length < 3 || buf[1] !== 0x7c) return undefined;
  const kind = buf[0];
  if (kind === 0x44 || kind === 0x4e) return ABSENT; // 'D' or 'N'
  if (kind !== 0x55) return undefined; // not 'U'
  const fields = [0, 0, 0, 0, 0, 0];
  let pos = 2;
  for (let f = 0; f < 6; f++) {
    let n = 0;
    const start = pos;
    let c;
    while (pos < buf.length && (c = buf[pos]) !== 0x7c) {
      if (c < 0x30 || c > 0x39) return undefined;
      n = n * 10 + (c - 0x30);
      pos++;
    }
    if (pos === start || pos >= buf.length) return undefined;
    fields[f] = n;
    pos++; // the '|'
  }
  const [version, id, created, updated, ulen, elen] = fields;
  if (pos + ulen + elen > buf.length) return undefined;
  return {
    id,
    username: buf.toString('utf8', pos, pos + ulen),
    email: buf.toString('utf8', pos + ulen, pos + ulen + elen),
    full_name: buf.toString('utf8', pos + ulen + elen),
    version,
    created_at_ms: created,
    updated_at_ms: updated,
  };
}

// -------------------------------------------------------------- server --

function startServer(config) {
  const express = require('express');
  const Redis = require('ioredis');
  const mysql = require('mysql2/promise');

  const pool = mysql.createPool({
    host: config.mysql.host,
    port: config.mysql.port,
    user: config.mysql.user,
    password: config.mysql.password,
    database: config.mysql.database,
    connectionLimit: config.mysql.connectionLimit,
    maxIdle: config.mysql.connectionLimit,
    queueLimit: config.mysql.queueLimit,
    waitForConnections: true,
    charset: 'utf8mb4',
    supportBigNumbers: true,
    enableKeepAlive: true,
    connectTimeout: 5000,
  });
  const redis = new Redis({
    host: config.redis.host,
    port: config.redis.port,
    username: config.redis.username,
    password: config.redis.password,
    enableAutoPipelining: config.redis.autoPipelining,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false, // Redis down: fail fast and read MariaDB
    commandTimeout: 2000,
    retryStrategy: (times) => Math.min(times * 100, 1000),
  });
  let redisDownLogged = false;
  redis.on('error', (e) => {
    if (!redisDownLogged) log('warn', `redis: ${e.message}`);
    redisDownLogged = true;
  });
  redis.on('ready', () => {
    if (redisDownLogged) log('info', 'redis: connected');
    redisDownLogged = false;
  });
  redis.defineCommand('polycrudFill', { numberOfKeys: 1, lua: FILL_SCRIPT });

  const db = async (fn) => {
    try {
      return await fn();
    } catch (e) {
      throw mysqlError(e);
    }
  };
  const fill = (u, client = redis) =>
    client.polycrudFill(key(u.id), u.version, encode(u), jitter(config.userTtlMs));
  // After a committed write: the new version, or a tombstone.
  const cacheWrite = async (id, user, deletedVersion) => {
    try {
      if (user) await fill(user);
      else await redis.set(key(id), `D|${deletedVersion}|`, 'PX', jitter(TOMBSTONE_TTL_MS));
    } catch (e) {
      log('warn', `redis: cache update of user ${id} failed: ${e.message}`);
    }
  };

  function authorize(req, adminNeeded) {
    const header = req.headers.authorization;
    let token = '';
    if (header !== undefined && header.length > 7 && header.slice(0, 7).toLowerCase() === 'bearer ') {
      token = header.slice(7).trim();
    }
    if (token === '') throw new ApiError(401, 'UNAUTHENTICATED', 'a bearer token is required');
    const digest = crypto.createHash('sha256').update(token).digest();
    // Every hash is compared, in constant time, without stopping early.
    let admin = false;
    let reader = false;
    for (const h of config.adminHashes) admin = crypto.timingSafeEqual(h, digest) || admin;
    for (const h of config.readerHashes) reader = crypto.timingSafeEqual(h, digest) || reader;
    if (!admin && !reader) throw new ApiError(401, 'UNAUTHENTICATED', 'the token is not valid');
    if (adminNeeded && !admin) {
      throw new ApiError(403, 'PERMISSION_DENIED', 'this operation needs the admin role');
    }
  }

  const sendUser = (res, status, user) => {
    res.status(status).set('ETag', `"${user.version}"`).json(user);
  };

  const methodNotAllowed = (allow) => (req, res) => {
    res.setHeader('Allow', allow);
    sendProblem(res, new ApiError(405, 'INVALID_ARGUMENT', `${req.method} is not allowed here`));
  };

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false); // users carry their version as ETag; no body hashing
  app.use(express.json({
    limit: config.maxBodyBytes,
    type: ['application/json', 'application/*+json'],
  }));

  app.get('/v1/ping', (req, res) => {
    res.json({ server: SERVER_NAME });
  });

  app.get('/healthz', (req, res) => {
    res.json({ status: 'ok' });
  });

  app.get('/readyz', async (req, res) => {
    const down = [];
    await Promise.all([
      pool.query('SELECT 1').catch(() => down.push('mysql')),
      redis.ping().catch(() => down.push('redis')),
    ]);
    if (down.length === 0) res.json({ status: 'ready' });
    else sendProblem(res, new ApiError(503, 'UNAVAILABLE', `not ready: ${down.join(', ')} unreachable`));
  });

  app.route('/v1/users')
    .post(async (req, res) => {
      const body = requireJsonBody(req);
      const username = optionalString(body, 'username') ?? '';
      const email = optionalString(body, 'email') ?? '';
      const fullName = optionalString(body, 'full_name') ?? '';
      authorize(req, true);
      checkUsername(username);
      checkEmail(email);
      checkFullName(fullName);
      const now = Date.now();
      const [result] = await db(() => pool.execute(INSERT, [username, email, fullName, now, now]));
      const user = {
        id: result.insertId,
        username,
        email,
        full_name: fullName,
        version: 1,
        created_at_ms: now,
        updated_at_ms: now,
      };
      await cacheWrite(user.id, user); // also replaces a negative entry
      res.setHeader('Location', `/v1/users/${user.id}`);
      sendUser(res, 201, user);
    })
    .get(async (req, res) => {
      let afterId = 0;
      let limit = 0;
      for (const name of ['after_id', 'limit']) {
        const text = req.query[name];
        if (text === undefined) continue;
        if (typeof text !== 'string' || !INTEGER_RE.test(text)) {
          throw invalid(`${name} must be an integer`, name);
        }
        if (name === 'limit') limit = Number(text);
        else afterId = Number(text);
      }
      authorize(req, false);
      if (afterId < 0) throw invalid('after_id must be >= 0', 'after_id');
      if (limit < 0 || limit > MAX_PAGE_LIMIT) throw invalid('limit must be 1-1000', 'limit');
      const size = limit === 0 ? DEFAULT_PAGE_LIMIT : limit;
      const [users] = await db(() => pool.query(LIST_AFTER, [afterId, size + 1]));
      let nextAfterId = 0;
      if (users.length > size) {
        users.length = size;
        nextAfterId = users[size - 1].id;
      }
      res.json({ users, next_after_id: nextAfterId });
    })
    .all(methodNotAllowed('POST, GET, HEAD'));

  app.route('/v1/users\\:batchGet')
    .post(async (req, res) => {
      const body = requireJsonBody(req);
      let ids = body.ids;
      if (ids === undefined || ids === null) ids = [];
      if (!Array.isArray(ids)) throw invalid('ids must be an array of integers', 'ids');
      for (const id of ids) {
        if (!Number.isSafeInteger(id)) throw invalid('ids must be an array of 64-bit integers', 'ids');
      }
      authorize(req, false);
      if (ids.length === 0 || ids.length > MAX_BATCH_IDS) throw invalid('ids must hold 1-1000 ids', 'ids');
      for (const id of ids) {
        if (id <= 0) throw invalid('every id must be a positive integer', 'ids');
      }
      const found = new Map();
      const misses = new Set();
      let cacheOk = true;
      let values;
      try {
        values = await redis.mgetBuffer(ids.map(key));
      } catch (e) {
        log('warn', `redis: MGET failed, reading MariaDB: ${e.message}`);
        cacheOk = false;
        values = new Array(ids.length).fill(null);
      }
      for (let i = 0; i < ids.length; i++) {
        const cached = decode(values[i]);
        if (cached) found.set(ids[i], cached);
        else if (cached === undefined) misses.add(ids[i]);
      }
      if (misses.size > 0) {
        const [rows] = await db(() => pool.query(SELECT_BY_IDS, [[...misses]]));
        if (rows.length > 0 && cacheOk) {
          const pipeline = redis.pipeline();
          for (const u of rows) fill(u, pipeline);
          try {
            await pipeline.exec();
          } catch (e) {
            log('warn', `redis: batch fill failed: ${e.message}`);
          }
        }
        for (const u of rows) found.set(u.id, u);
      }
      const users = [];
      for (const id of ids) {
        const u = found.get(id);
        if (u) users.push(u);
      }
      res.json({ users });
    })
    .all(methodNotAllowed('POST'));

  app.route('/v1/users/:id')
    .get(async (req, res) => {
      const id = pathId(req.params.id);
      authorize(req, false);
      if (id <= 0) throw invalid('id must be a positive integer', 'id');
      if (id === Infinity) throw notFound(`user ${req.params.id} not found`);
      const k = key(id);
      let cacheOk = true;
      let cached;
      try {
        cached = decode(await redis.getBuffer(k));
      } catch (e) {
        log('warn', `redis: GET failed, reading MariaDB: ${e.message}`);
        cacheOk = false;
      }
      if (cached) return sendUser(res, 200, cached);
      if (cached === ABSENT) throw notFound(`user ${id} not found`);
      const [rows] = await db(() => pool.execute(SELECT_BY_ID, [id]));
      const user = rows[0];
      if (cacheOk) {
        try {
          if (user) await fill(user);
          else await redis.set(k, 'N|0|', 'PX', jitter(NEGATIVE_TTL_MS), 'NX');
        } catch (e) {
          log('warn', `redis: fill failed: ${e.message}`);
        }
      }
      if (!user) throw notFound(`user ${id} not found`);
      return sendUser(res, 200, user);
    })
    .patch(async (req, res) => {
      const id = pathId(req.params.id);
      let expected = 0;
      const ifMatch = req.headers['if-match'];
      if (ifMatch !== undefined && ifMatch.trim() !== '*') {
        const m = /^"([0-9]+)"$/.exec(ifMatch.trim());
        expected = m ? Number(m[1]) : 0;
        if (!m || expected <= 0 || !Number.isSafeInteger(expected)) {
          throw invalid('If-Match must be a quoted version, e.g. "3"', 'If-Match');
        }
      }
      const body = requireJsonBody(req);
      const email = optionalString(body, 'email');
      const fullName = optionalString(body, 'full_name');
      authorize(req, true);
      if (id <= 0) throw invalid('id must be a positive integer', 'id');
      if (email === undefined && fullName === undefined) {
        throw invalid('the update sets no field (email or full_name)', 'patch');
      }
      if (email !== undefined) checkEmail(email);
      if (fullName !== undefined) checkFullName(fullName);
      if (id === Infinity) throw notFound('user not found');
      const now = Date.now();
      const user = await db(async () => {
        const conn = await pool.getConnection();
        let open = false;
        try {
          await conn.beginTransaction();
          open = true;
          const [result] = await conn.execute(
            UPDATE, [email ?? null, fullName ?? null, now, id, expected, expected]);
          if (result.affectedRows === 0) {
            const [rows] = await conn.execute(SELECT_VERSION, [id]);
            await conn.rollback();
            open = false;
            if (rows.length === 0) throw notFound('user not found');
            throw conflict(`version mismatch: current version is ${rows[0].version}`);
          }
          const [rows] = await conn.execute(SELECT_BY_ID, [id]);
          await conn.commit();
          open = false;
          return rows[0];
        } finally {
          let broken = false;
          if (open) {
            try {
              await conn.rollback();
            } catch (e) {
              broken = true; // closing the connection rolls back on the server
            }
          }
          if (broken) conn.destroy();
          else conn.release();
        }
      });
      await cacheWrite(id, user);
      sendUser(res, 200, user);
    })
    .delete(async (req, res) => {
      const id = pathId(req.params.id);
      authorize(req, true);
      if (id <= 0) throw invalid('id must be a positive integer', 'id');
      if (id === Infinity) throw notFound('user not found');
      const [rows] = await db(() => pool.execute(DELETE, [id]));
      if (rows.length === 0) throw notFound('user not found');
      await cacheWrite(id, null, rows[0].version);
      res.status(204).end();
    })
    .all(methodNotAllowed('GET, HEAD, PATCH, DELETE'));

  app.use((req, res) => {
    sendProblem(res, new ApiError(404, 'NOT_FOUND', `no such route: ${req.path}`));
  });

  // eslint-disable-next-line no-unused-vars
  app.use((err, req, res, next) => {
    if (err instanceof ApiError) return sendProblem(res, err);
    if (err.type === 'entity.parse.failed') {
      return sendProblem(res, invalid('malformed JSON'));
    }
    if (err.type === 'entity.too.large') {
      return sendProblem(res, new ApiError(413, 'INVALID_ARGUMENT', 'the request body is too large'));
    }
    if (err.type === 'charset.unsupported' || err.type === 'encoding.unsupported') {
      return sendProblem(res, new ApiError(415, 'INVALID_ARGUMENT', err.message));
    }
    if (err.status >= 400 && err.status < 500) {
      return sendProblem(res, new ApiError(err.status, 'INVALID_ARGUMENT', 'bad request'));
    }
    log('error', `${req.method} ${req.path}: ${err.stack || err}`);
    return sendProblem(res, new ApiError(500, 'INTERNAL', 'internal error'));
  });

  const server = http.createServer({ noDelay: true, keepAlive: true }, app);
  server.keepAliveTimeout = 30000; // idle keep-alive connections, as polycrud's REST face
  server.headersTimeout = 31000;
  server.requestTimeout = 31000;
  server.on('error', (e) => {
    log('error', `listen ${config.bind}:${config.port}: ${e.message}`);
    process.exit(1);
  });
  server.listen(config.port, config.bind, () => {
    log('info', `${SERVER_NAME} listening on ${config.bind}:${config.port} (node ${process.version}, ` +
      `NODE_ENV=${process.env.NODE_ENV || ''}, ${cluster.isWorker ? 'cluster worker' : 'single process'}); ` +
      `MariaDB ${config.mysql.host}:${config.mysql.port}/${config.mysql.database} pool ` +
      `${config.mysql.connectionLimit}, Redis ${config.redis.host}:${config.redis.port} ` +
      `(auto-pipelining ${config.redis.autoPipelining ? 'on' : 'off'})`);
  });

  let stopping = false;
  const stop = (signal) => {
    if (stopping) return;
    stopping = true;
    log('info', `${signal}: stopping`);
    const force = setTimeout(() => {
      log('warn', 'requests still running after 10 s: exiting');
      process.exit(0);
    }, 10000);
    force.unref();
    server.close(async () => {
      await Promise.allSettled([redis.quit(), pool.end()]);
      log('info', 'stopped');
      process.exit(0);
    });
    if (server.closeIdleConnections) server.closeIdleConnections();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

function main() {
  const config = loadConfig(process.argv.slice(2));
  if (config.adminHashes.length === 0 && config.readerHashes.length === 0) {
    log('warn', 'no token hashes configured: every route but /v1/ping is refused');
  }
  if (config.workers > 1 && cluster.isPrimary) {
    log('info', `cluster: starting ${config.workers} workers on port ${config.port}`);
    let stopping = false;
    for (let i = 0; i < config.workers; i++) cluster.fork();
    cluster.on('exit', (worker, code, signal) => {
      if (stopping) {
        if (Object.keys(cluster.workers).length === 0) process.exit(0);
        return;
      }
      log('error', `worker ${worker.process.pid} exited (${signal || code}): restarting`);
      cluster.fork();
    });
    const stop = (signal) => {
      if (stopping) return;
      stopping = true;
      log('info', `${signal}: stopping the workers`);
      for (const w of Object.values(cluster.workers)) w.process.kill('SIGTERM');
      if (Object.keys(cluster.workers).length === 0) process.exit(0);
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    return;
  }
  startServer(config);
}

main();
