// The REST gateway: API.md's REST routes under /api/v1/..., served by calling
// the C++ service over Thrift. It reproduces the C++ REST face
// (adapters/rest/rest_user_routes.cc, rest_router.cc) answer for answer: the
// same statuses, problem+json bodies (code, field), ETag, Location, If-Match,
// 404/405/413/415 behaviour and query validation, checked in that order.
// Input rejected before the service is called is answered 401/403 instead
// when the caller may not run the operation at all, as on the C++ face.
'use strict';

const crypto = require('node:crypto');
const express = require('express');
const { parseInt64, INT64_MAX } = require('./int64');
const { ServiceError } = require('./service_error');
const { sendJsonText, sendProblem, sendServiceError, userJson, usersJson } = require('./problem');

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The token of `Authorization: Bearer <token>`; '' if none (the service then answers UNAUTHENTICATED). */
function bearerToken(req) {
  const value = req.get('authorization');
  if (!value || value.length < 7 || value.slice(0, 7).toLowerCase() !== 'bearer ') return '';
  return value.slice(7).replace(/^ +| +$/g, '');
}

const badField = (message, field) => new ServiceError('INVALID_ARGUMENT', message, { field });

// A 400/415 answered by the adapter itself, before the service is called.
class Rejection {
  constructor(status, detail) {
    this.status = status;
    this.detail = detail;
  }
}

function pathId(param) {
  const id = parseInt64(param);
  if (id === null) throw badField('id must be a positive integer', 'id');
  return id;
}

function isJsonMediaType(req) {
  const header = req.get('content-type');
  if (!header) return false;
  const type = header.split(';')[0].replace(/ +$/, '').toLowerCase();
  return type === 'application/json' || (type.startsWith('application/') && type.length > 5 && type.endsWith('+json'));
}

// A JSON number as its literal text (see parseExactNumbers).
class JsonNumber {
  constructor(text) {
    this.text = text;
  }
}

/**
 * JSON.parse of a valid JSON text, with every number a JsonNumber holding
 * its literal, as the C++ face reads them: int64 ids beyond 2^53 stay exact,
 * and 1.0 or 1e2 are told apart from 1. Each number literal is swapped for a
 * string carrying a random nonce (unguessable, so no string in the body can
 * pose as one) and turned back afterwards. Any depth of nesting is read, as
 * the C++ face reads it.
 */
function parseExactNumbers(text) {
  const nonce = `${crypto.randomBytes(16).toString('hex')}:`;
  const literals = [];
  let out = '';
  let copied = 0;
  const isNumberChar = (c) => (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2b || c === 0x2e || c === 0x45 || c === 0x65;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) { // a string: on to its closing quote, over escapes
      for (i++; text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++;
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      let end = i + 1;
      while (end < text.length && isNumberChar(text.charCodeAt(end))) end++;
      out += `${text.slice(copied, i)}"${nonce}${literals.length}"`;
      literals.push(text.slice(i, end));
      copied = end;
      i = end - 1;
    }
  }
  out += text.slice(copied);
  // Turned back with an explicit stack rather than a JSON.parse reviver: the
  // reviver recurses once per level, and a deeply nested body (well within
  // the size limit) would overflow the call stack.
  const root = { value: JSON.parse(out) };
  const stack = [root];
  while (stack.length > 0) {
    const node = stack.pop();
    for (const key of Object.keys(node)) {
      const value = node[key];
      if (value !== null && typeof value === 'object') stack.push(value);
      else if (typeof value === 'string' && value.startsWith(nonce)) node[key] = new JsonNumber(literals[Number(value.slice(nonce.length))]);
    }
  }
  return root.value;
}

// The body as a JSON object, or a Rejection saying why not. exactNumbers:
// numbers as JsonNumber (parseExactNumbers).
function jsonBody(req, { exactNumbers = false } = {}) {
  if (!isJsonMediaType(req)) return new Rejection(415, 'the request body must be application/json');
  let body;
  const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
  let text;
  try {
    text = utf8.decode(raw);
  } catch (err) {
    return new Rejection(400, 'malformed JSON');
  }
  try {
    body = JSON.parse(text);
  } catch (err) {
    // Where, as the C++ face says it: the 1-based byte of the offending
    // character, one past the end for a truncated text. V8 gives a UTF-16
    // position for most errors (not all: then no position).
    const message = String(err.message);
    const position = /position (\d+)/.exec(message);
    let at = null;
    if (position) at = Buffer.byteLength(text.slice(0, Number(position[1]))) + 1;
    else if (/end of JSON input/.test(message)) at = raw.length + 1;
    return new Rejection(400, at !== null ? `malformed JSON at byte ${at}` : 'malformed JSON');
  }
  if (exactNumbers) body = parseExactNumbers(text);
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return new Rejection(400, 'the request body must be a JSON object');
  }
  return body;
}

// Optional string member: absent or null gives undefined.
function optionalString(body, name) {
  const value = Object.prototype.hasOwnProperty.call(body, name) ? body[name] : null;
  if (value === null || value === undefined) return undefined;
  if (typeof value !== 'string') throw badField(`${name} must be a string`, name);
  return value;
}

// If-Match as the expected version: absent or "*" is 0n (unconditional).
function expectedVersion(req) {
  const header = req.get('if-match');
  if (header === undefined) return 0n;
  const value = header.replace(/^ +| +$/g, '');
  if (value === '*') return 0n;
  if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
    const version = parseInt64(value.slice(1, -1));
    if (version !== null && version > 0n) return version;
  }
  throw badField('If-Match must be a quoted version, e.g. "3"', 'If-Match');
}

/**
 * Whether the caller of `req` may run an operation of `role` ('admin' or
 * 'reader'), asked of the service without side effects: the service checks
 * the token and the role before it validates, so an operation on id 0 (never
 * valid) answers INVALID_ARGUMENT exactly when the caller is admitted.
 * Resolves to null when admitted, else to the service's error.
 */
async function admissionError(client, req, role) {
  try {
    if (role === 'admin') await client.deleteUser(bearerToken(req), 0n);
    else await client.getUser(bearerToken(req), 0n);
  } catch (err) {
    if (err instanceof ServiceError) return err.code === 'INVALID_ARGUMENT' ? null : err;
    throw err;
  }
  return null;
}

/** The request's query string as URLSearchParams (of the original URL). */
function queryOf(req) {
  const at = req.originalUrl.indexOf('?');
  return new URLSearchParams(at >= 0 ? req.originalUrl.slice(at + 1) : '');
}

function sendUser(res, status, user) {
  res.set('ETag', `"${user.version}"`);
  sendJsonText(res, status, userJson(user));
}

/** Builds the route table; `prefix` is where the gateway is mounted ('/api'). */
function routes(client, prefix) {
  return [
    ['GET', '/v1/ping', null, async (req, res) => {
      sendJsonText(res, 200, JSON.stringify({ server: await client.ping() }));
    }],
    ['POST', '/v1/users', 'admin', async (req, res) => {
      const body = jsonBody(req);
      if (body instanceof Rejection) return body;
      const draft = {};
      for (const name of ['username', 'email', 'full_name']) draft[name] = optionalString(body, name) ?? '';
      const user = await client.createUser(bearerToken(req), draft);
      res.set('Location', `${prefix}/v1/users/${user.id}`);
      sendUser(res, 201, user);
    }],
    ['GET', '/v1/users', 'reader', async (req, res) => {
      const query = queryOf(req);
      const values = { after_id: 0n, limit: 0n };
      for (const name of ['after_id', 'limit']) {
        const text = query.get(name);
        if (text === null) continue;
        const value = parseInt64(text);
        if (value === null) throw badField(`${name} must be an integer`, name);
        values[name] = value;
      }
      // Out of int32 range is as invalid as any limit above the maximum.
      const limit = values.limit > BigInt(INT32_MAX) || values.limit < BigInt(INT32_MIN) ? INT32_MAX : Number(values.limit);
      const page = await client.listUsers(bearerToken(req), values.after_id, limit);
      sendJsonText(res, 200, `{"users":${usersJson(page.users)},"next_after_id":${page.next_after_id}}`);
    }],
    ['GET', '/v1/users/search', 'reader', async (req, res) => {
      const query = queryOf(req);
      // A missing prefix is as empty as prefix= (the service says what it must be).
      const prefix = query.get('prefix') ?? '';
      let limit = 0;
      const text = query.get('limit');
      if (text !== null) {
        const value = parseInt64(text);
        if (value === null) throw badField('limit must be an integer', 'limit');
        limit = value > BigInt(INT32_MAX) ? INT32_MAX : value < -1n ? -1 : Number(value);
      }
      const users = await client.searchUsers(bearerToken(req), prefix, limit);
      sendJsonText(res, 200, `{"users":${usersJson(users)}}`);
    }],
    ['POST', '/v1/users:batchGet', 'reader', async (req, res) => {
      const body = jsonBody(req, { exactNumbers: true });
      if (body instanceof Rejection) return body;
      let ids = [];
      const raw = Object.prototype.hasOwnProperty.call(body, 'ids') ? body.ids : null;
      if (raw !== null && raw !== undefined) {
        if (!Array.isArray(raw)) throw badField('ids must be an array of integers', 'ids');
        // Integer literals within int64 only, exact beyond 2^53 (no 1.0, 1e2 or "1").
        const exact = raw.map((id) => (id instanceof JsonNumber && /^-?[0-9]+$/.test(id.text) ? parseInt64(id.text) : null));
        if (exact.some((id) => id === null)) throw badField('ids must be an array of 64-bit integers', 'ids');
        ids = exact;
      }
      const users = await client.batchGetUsers(bearerToken(req), ids);
      sendJsonText(res, 200, `{"users":${usersJson(users)}}`);
    }],
    ['GET', '/v1/users/{id}', 'reader', async (req, res, param) => {
      sendUser(res, 200, await client.getUser(bearerToken(req), pathId(param)));
    }],
    ['PATCH', '/v1/users/{id}', 'admin', async (req, res, param) => {
      const id = pathId(param);
      const expected = expectedVersion(req);
      const body = jsonBody(req);
      if (body instanceof Rejection) return body;
      const patch = { expected_version: expected, email: optionalString(body, 'email'), full_name: optionalString(body, 'full_name') };
      sendUser(res, 200, await client.updateUser(bearerToken(req), id, patch));
    }],
    ['DELETE', '/v1/users/{id}', 'admin', async (req, res, param) => {
      await client.deleteUser(bearerToken(req), pathId(param));
      res.status(204).end();
    }],
  ].map(([method, template, role, handler]) => ({ method, segments: split(template), role, handler }));
}

// "/a/b/c" as ['a', 'b', 'c']; "/" as [''].
function split(path) {
  return (path.startsWith('/') ? path.slice(1) : path).split('/');
}

function match(route, parts) {
  if (parts.length !== route.segments.length) return null;
  let param = null;
  for (let i = 0; i < parts.length; i++) {
    if (route.segments[i] === '{id}') {
      if (parts[i] === '') return null;
      param = parts[i];
    } else if (route.segments[i] !== parts[i]) {
      return null;
    }
  }
  return { param };
}

/**
 * An Express router for the gateway, to mount at `prefix`. options:
 * maxBodyBytes (413 beyond), logger.
 */
function createGateway(client, { prefix = '/api', maxBodyBytes = 1024 * 1024 } = {}) {
  const table = routes(client, prefix);
  const router = express.Router();
  router.use(express.raw({ type: () => true, limit: maxBodyBytes }));
  router.use(async (req, res, next) => {
    const method = req.method === 'HEAD' ? 'GET' : req.method;
    const parts = split(req.path);
    const allow = [];
    let found = null;
    // A literal path shadows a template it also matches: /v1/users/search
    // is never /v1/users/{id} with the id "search", whatever the method.
    const templated = (route) => route.segments.includes('{id}');
    const literal = table.some((route) => !templated(route) && match(route, parts));
    for (const route of table) {
      if (literal && templated(route)) continue;
      const m = match(route, parts);
      if (!m) continue;
      allow.push(route.method);
      if (route.method === 'GET') allow.push('HEAD');
      if (route.method === method && !found) found = { route, param: m.param };
    }
    try {
      if (!found && allow.length === 0) {
        return sendProblem(res, 404, 'NOT_FOUND', `no such route: ${prefix}${req.path}`);
      }
      if (!found) {
        res.set('Allow', allow.join(', '));
        return sendProblem(res, 405, 'INVALID_ARGUMENT', `${req.method} is not allowed here`);
      }
      const result = await found.route.handler(req, res, found.param);
      if (result instanceof Rejection) {
        const refused = found.route.role ? await admissionError(client, req, found.route.role) : null;
        if (refused) return sendServiceError(res, refused, req.log);
        sendProblem(res, result.status, 'INVALID_ARGUMENT', result.detail);
      }
    } catch (err) {
      if (err instanceof ServiceError) {
        if (err.code === 'INVALID_ARGUMENT' && found && found.route.role) {
          const refused = await admissionError(client, req, found.route.role).catch(() => null);
          if (refused) return sendServiceError(res, refused, req.log);
        }
        return sendServiceError(res, err, req.log);
      }
      next(err);
    }
  });
  // Body-parser failures (too large, bad encoding) as problem documents.
  router.use((err, req, res, next) => {
    if (err && err.type === 'entity.too.large') {
      return sendProblem(res, 413, 'INVALID_ARGUMENT', 'the request body is larger than the server accepts');
    }
    if (err && err.status >= 400 && err.status < 500) {
      return sendProblem(res, 400, 'INVALID_ARGUMENT', 'malformed HTTP request');
    }
    req.log.error({ err }, 'gateway: unexpected error');
    if (res.headersSent) return next(err);
    return sendProblem(res, 500, 'INTERNAL', 'internal error');
  });
  return router;
}

module.exports = { createGateway, admissionError, bearerToken, queryOf, parseExactNumbers, JsonNumber, INT64_MAX };
